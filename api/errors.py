"""One JSON shape for every error: ``{"error": {"code", "message", "details"}}``.

Clients branch on ``code``, which is stable; ``message`` tells a person what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage.errors import TriageError

logger = logging.getLogger("triage.api")


# The documented error shape; every route lists it for the statuses it can answer.
class ErrorBody(BaseModel):
    code: str = Field(description="Stable; clients branch on it, e.g. rate_limited.")
    message: str = Field(description="What happened and what to do, for a person.")
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a router: each status with the error shape."""
    text = {
        400: "Malformed JSON, or not UTF-8",
        401: "No, unknown or revoked API key",
        403: "The key's scope does not allow this",
        404: "Not found",
        409: "An idempotency key reused with different content",
        413: "Body over the size limit",
        422: "Invalid fields, each named in details",
        429: "Rate limited; see the Retry-After header",
        503: "Database unreachable, schema outdated or every database connection busy; "
        "retry after the Retry-After header",
    }
    return {status: {"model": ErrorResponse, "description": text[status]} for status in statuses}


API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _clean_location(loc: tuple[Any, ...]) -> list[Any]:
    # Drop pydantic's union tags ("single", "batch") and function-after wrappers from the path,
    # so the field is named the way the client sent it.
    return [part for part in loc if part not in ("single", "batch") and "[" not in str(part)]


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return validation_details(exc.errors())


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as the API names them; each ``loc`` starts where the value came from
    (``body``, ``query``)."""
    details = []
    for error in errors:
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
    return error_response(exc.status, exc.code, exc.message, exc.details, headers=exc.headers)


async def _on_triage_error(_request: Request, exc: TriageError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.error("%s: %s", exc.code, exc.message)
    return error_response(exc.http_status, exc.code, exc.message, exc.details)


async def _on_database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # A restarting PostgreSQL or a SQLite lock held past its timeout: nothing was stored (the
    # transaction did not commit), so the client may retry; ingestion is idempotent.
    logger.warning("database unavailable: %s", type(exc).__name__)
    return error_response(
        503,
        "database_unavailable",
        "The database is unavailable for a moment; nothing was stored. Retry the request.",
        headers={"Retry-After": "1"},
    )


async def _on_pool_timeout(_request: Request, _exc: Exception) -> JSONResponse:
    # No connection came free within TRIAGE_API_DB_WAIT_SECONDS: the server is at capacity, not
    # broken. Requests hold a slot sized to the pool (api.deps), so this is rare: what runs
    # outside a request's own session (the web app's viewer lookup, /readyz) ran the spare dry.
    logger.warning("database pool exhausted")
    return error_response(
        503,
        "server_busy",
        "Every database connection of this server was busy; nothing was done. Retry after "
        "the number of seconds in the Retry-After header.",
        details={"retry_after_seconds": 1},
        headers={"Retry-After": "1"},
    )


async def _on_data_error(_request: Request, exc: DataError) -> JSONResponse:
    # The database refused a value the edge let through: a client's input, not our failure.
    # The driver's message is not echoed, since it may quote the rejected value.
    logger.warning("database refused a value: %s", type(exc.orig).__name__)
    return error_response(
        422, "invalid_input", "A value in the request cannot be stored; check its range and text."
    )


async def _on_http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI raises a bare 400 when a body is valid JSON syntax that cannot be decoded
    # (nesting past Python's recursion limit, integers over 4,300 digits).
    codes = {
        400: "malformed_json",
        404: "not_found",
        405: "method_not_allowed",
        401: "unauthorized",
    }
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
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(InterfaceError, _on_database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _on_pool_timeout)
    app.add_exception_handler(DataError, _on_data_error)  # type: ignore[arg-type]
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
