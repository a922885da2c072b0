"""An OTLP/HTTP trace receiver: point an OpenTelemetry exporter here and its LLM spans become
model outputs (triage.integrations.otlp says which spans and how). README, Model outputs from
traces, has the exporter settings.

The answer follows OTLP/HTTP: 200 with an ``ExportTraceServiceResponse`` in the request's content
type, ``partial_success`` counting the LLM spans that could not be stored and why. Spans that
are not LLM calls are accepted and skipped (an exporter sends every span of the service), counted
in the ``X-Triage-Skipped-Spans`` header.
"""

from __future__ import annotations

import logging
import zlib
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import IngestKey, RawBody, SettingsDep, WriteSessionDep
from api.errors import ApiError, ErrorResponse, error_responses
from triage import store
from triage.errors import ConflictError, InvalidInputError
from triage.integrations import otlp

logger = logging.getLogger("triage.api")

router = APIRouter(
    tags=["model outputs"],
    responses={
        **error_responses(400, 401, 403, 413, 422, 429, 503),
        415: {"model": ErrorResponse, "description": "Not OTLP protobuf or JSON, or not gzip"},
    },
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before gzip, refused once it passes ``limit`` bytes: the size limit holds
    for what is parsed, not only for what crossed the wire (a small gzip can inflate to GBs)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent.")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise ApiError(400, "invalid_body", f"The body is not valid gzip ({e}).") from e
    if len(data) > limit:
        raise ApiError(
            413,
            "body_too_large",
            f"The request body is over {limit} bytes once decompressed. Export fewer spans per "
            "request (the batch span processor's OTEL_BSP_MAX_EXPORT_BATCH_SIZE).",
        )
    if not inflater.eof:
        raise ApiError(400, "invalid_body", "The gzip body is truncated.")
    return data


@router.post(
    "/v1/traces",
    summary="Receive OTLP/HTTP traces; LLM spans become model outputs",
    description="OTLP/HTTP export (protobuf or JSON, optionally gzip). Spans carrying "
    "gen_ai.request.model, gen_ai.response.model or llm.model_name are stored as model outputs "
    "with the span id (hex) as output_id; other spans are skipped. The answer is an OTLP "
    "ExportTraceServiceResponse in the request's content type.",
    response_class=Response,
    responses={200: {"content": {PROTOBUF: {}, JSON: {}}}},
)
def receive_traces(
    # The key first: an unauthenticated request is refused before its body is read.
    _key: IngestKey,
    body: RawBody,
    session: WriteSessionDep,
    settings: SettingsDep,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send OTLP as {PROTOBUF} or {JSON}, not {media or 'no Content-Type'}.",
        )
    data = _decompress(body, content_encoding, settings.max_body_bytes)
    try:
        request = otlp.parse_protobuf(data) if media == PROTOBUF else otlp.parse_json(data)
    except InvalidInputError as e:
        # OTLP/HTTP asks for a 400 here, which exporters take as "do not retry".
        raise ApiError(400, "invalid_body", str(e)) from e
    batch = otlp.to_model_outputs(request)
    outputs = batch.outputs
    while outputs:
        try:
            store.add_model_outputs(session, items=outputs)
            break
        except ConflictError as e:
            # Outputs are immutable: a span id already stored with other content is refused on
            # its own, and the rest of the export is stored.
            session.rollback()
            taken = {c["output_id"] for c in e.details["conflicts"]}
            batch.rejected += [f"span {span_id}: already stored with different content"
                               for span_id in sorted(taken)]  # fmt: skip
            outputs = [o for o in outputs if o.output_id not in taken]
    session.commit()
    logger.info(
        "traces: %d LLM span(s) stored, %d skipped, %d rejected",
        len(outputs), batch.skipped, len(batch.rejected),
    )  # fmt: skip
    answer = otlp.response(batch)
    content = answer.SerializeToString() if media == PROTOBUF else otlp.response_json(answer)
    headers = {"X-Triage-Stored-Spans": str(len(outputs)),
               "X-Triage-Skipped-Spans": str(batch.skipped)}  # fmt: skip
    return Response(content, media_type=media, headers=headers)
