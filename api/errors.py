"""One JSON shape for every error: ``{"error": {"code", "message", "details"}}``.

Clients branch on ``code``, which is stable; ``message`` tells a person what to do.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage.errors import TriageError

logger = logging.getLogger("triage.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _clean_location(loc: tuple[Any, ...]) -> list[Any]:
    # Drop pydantic's union tags ("single", "batch") and function-after wrappers from the path,
    # so the field is named the way the client sent it.
    return [part for part in loc if part not in ("single", "batch") and "[" not in str(part)]


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        details.append(
            {
                "field": ".".join(str(p) for p in _clean_location(tuple(error["loc"]))[1:])
                or error["loc"][0],
                "location": _clean_location(tuple(error["loc"])),
                "message": error["msg"],
                "type": error["type"],
            }
        )
    return details


async def _on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(error["type"] == "json_invalid" for error in errors):
        return error_response(
            400,
            "malformed_json",
            "The request body is not valid JSON (or not UTF-8).",
            details=[{"message": e.get("ctx", {}).get("error", e["msg"])} for e in errors],
        )
    details = _validation_details(exc)
    if [d["location"] for d in details] == [["body"]]:
        return error_response(
            422,
            "invalid_body",
            'The body must be a JSON object: one item, or {"items": [...]} for a batch.',
            details,
        )
    fields = ", ".join(sorted({d["field"] for d in details if d["field"]}))
    return error_response(422, "invalid_fields", f"Invalid or missing fields: {fields}.", details)


async def _on_api_error(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details)


async def _on_triage_error(_request: Request, exc: TriageError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.error("%s: %s", exc.code, exc.message)
    return error_response(exc.http_status, exc.code, exc.message, exc.details)


async def _on_http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal", "Something went wrong on our side; it was logged.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(TriageError, _on_triage_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


class BodySizeLimit:
    """Answer 413 before parsing a body over ``max_bytes``.

    Checks Content-Length up front, and counts the bytes of chunked bodies as they arrive, so a
    client cannot stream past the limit by leaving the header out.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(scope, receive, send)
                return

        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Frameworks turn exceptions raised here into their own 400, so stop the
                    # body as a disconnect and answer for the app instead.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "body_too_large",
            f"The request body is over {self.max_bytes} bytes. Send fewer items per request.",
            details={"max_bytes": self.max_bytes},
        )
        await response(scope, receive, send)
