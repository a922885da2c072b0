"""OTLP trace export requests -> logged model outputs (``POST /v1/traces``). No web code.

An LLM span is one that carries a model name under either convention:

- OpenTelemetry GenAI semantic conventions: ``gen_ai.request.model`` / ``gen_ai.response.model``,
  ``gen_ai.provider.name`` (``gen_ai.system`` before 1.37), ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (JSON, each message a role and its ``parts``), with the older
  ``gen_ai.prompt`` / ``gen_ai.completion`` attributes and ``gen_ai.user.message`` /
  ``gen_ai.choice`` events still read, since instrumentations in the wild emit all of them.
- OpenInference: ``llm.model_name``, ``input.value``, ``output.value``, ``session.id``,
  ``user.id``, ``metadata`` (a JSON object).

Every other span (HTTP, database, retrieval, ...) is skipped and counted. The span id, as hex, is
the ``output_id``; the trace id is kept at ``TRACE_ID_PATH`` in the metadata so a ticket naming
the trace links too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from triage.errors import InvalidInputError
from triage.models import TRACE_ID_PATH, ModelOutputBase, ModelOutputCreate

# The longest input and output a model output keeps; longer prompts are cut, not refused, so a
# long RAG context does not lose the answer it led to.
MAX_TEXT = ModelOutputBase.model_fields["input"].metadata[0].max_length
# OTLP/JSON encodes these ids as hex, where protobuf's JSON mapping expects base64 for bytes.
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
MODEL_ATTRIBUTES = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")


@dataclass
class TraceBatch:
    """What one export request held: outputs to store, spans skipped, spans refused and why."""

    outputs: list[ModelOutputCreate] = field(default_factory=list)
    skipped: int = 0
    rejected: list[str] = field(default_factory=list)


# --- decoding ----------------------------------------------------------------------------------


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as e:
        raise InvalidInputError(
            f"The body is not an OTLP ExportTraceServiceRequest in protobuf ({e})."
        ) from e
    return request


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(body)
        for resource_spans in document.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    _hex_to_base64(span)
                    for link in span.get("links", []):
                        _hex_to_base64(link)
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    # RecursionError: JSON nested deeper than Python's stack, which json.loads cannot parse.
    except (ValueError, AttributeError, TypeError, RecursionError, json_format.ParseError) as e:
        raise InvalidInputError(
            f"The body is not an OTLP/JSON ExportTraceServiceRequest ({e}). Trace and span ids "
            "are hex strings, as the OTLP specification encodes them in JSON."
        ) from e


def _hex_to_base64(obj: dict[str, Any]) -> None:
    for key in _HEX_ID_FIELDS:
        if obj.get(key):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(obj[key])).decode()
            except (ValueError, TypeError) as e:
                raise ValueError(f"{key} {obj[key]!r} is not hex") from e


def response(batch: TraceBatch) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    if batch.rejected:
        answer.partial_success.rejected_spans = len(batch.rejected)
        # The first reasons only: the message is for a human reading the exporter's log.
        reasons = "; ".join(batch.rejected[:5])
        more = f" (and {len(batch.rejected) - 5} more)" if len(batch.rejected) > 5 else ""
        answer.partial_success.error_message = (
            f"Rejected {len(batch.rejected)} span(s): {reasons}{more}"
        )
    return answer


def response_json(answer: ExportTraceServiceResponse) -> bytes:
    return json_format.MessageToJson(answer, indent=None).encode()


# --- mapping -----------------------------------------------------------------------------------


def to_model_outputs(request: ExportTraceServiceRequest) -> TraceBatch:
    batch = TraceBatch()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
                if not _is_llm(attributes):
                    batch.skipped += 1
                    continue
                try:
                    batch.outputs.append(span_output(span, attributes, resource))
                except (ValueError, ValidationError) as e:
                    batch.rejected.append(f"span {span.span_id.hex() or '(no id)'}: {_reason(e)}")
    return batch


def _is_llm(attributes: dict[str, Any]) -> bool:
    return any(k in attributes for k in MODEL_ATTRIBUTES) or (
        attributes.get("openinference.span.kind") == "LLM"
    )


def span_output(
    span: Span, attributes: dict[str, Any], resource: dict[str, Any]
) -> ModelOutputCreate:
    if len(span.span_id) != 8 or len(span.trace_id) != 16:
        raise ValueError("a span needs an 8-byte span id and a 16-byte trace id")
    requested = _text(attributes.get("gen_ai.request.model") or attributes.get("llm.model_name"))
    answered = _text(attributes.get("gen_ai.response.model"))
    model = requested or answered
    if not model:
        raise ValueError("an LLM span without gen_ai.request.model or llm.model_name")
    events = [(event.name, _attributes(event.attributes)) for event in span.events]
    # Content recorded on the inference-details event instead of the span (conventions 1.37+).
    for name, details in events:
        if name == "gen_ai.client.inference.operation.details":
            attributes = {**details, **attributes}
    prompt = _prompt(attributes, events)
    completion = _completion(attributes, events)
    truncated = [name for name, value in (("input", prompt), ("output", completion))
                 if value is not None and len(value) > MAX_TEXT]  # fmt: skip
    otel = {
        TRACE_ID_PATH[1]: span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "span_name": span.name,
        "service_name": resource.get("service.name"),
        "provider": attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system")
        or attributes.get("llm.provider") or attributes.get("llm.system"),
        "operation": attributes.get("gen_ai.operation.name"),
        "input_tokens": attributes.get("gen_ai.usage.input_tokens")
        or attributes.get("llm.token_count.prompt"),
        "output_tokens": attributes.get("gen_ai.usage.output_tokens")
        or attributes.get("llm.token_count.completion"),
        "status": Status.StatusCode.Name(span.status.code) if span.status.code else None,
        "truncated": truncated or None,
    }  # fmt: skip
    meta = _json_object(attributes.get("metadata"))
    meta[TRACE_ID_PATH[0]] = {k: v for k, v in otel.items() if v not in (None, "")}
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    return ModelOutputCreate(
        output_id=span.span_id.hex(),
        model=model,
        # The dated snapshot the provider answered with ("gpt-4o-2024-08-06" for "gpt-4o").
        model_version=answered if answered and answered != model else None,
        feature=_text(attributes.get("triage.feature") or meta.get("feature"))
        or _text(resource.get("service.name")),
        input=prompt[:MAX_TEXT] if prompt else None,
        output=completion[:MAX_TEXT] if completion else None,
        latency_ms=(end - start) / 1e6 if start and end >= start else None,
        # When the answer was shown: the span's end; a ticket about it comes after.
        created_at=datetime.fromtimestamp((end or start) / 1e9, UTC) if end or start else None,
        user_id=_text(attributes.get("user.id") or attributes.get("enduser.id")),
        session_id=_text(attributes.get("session.id") or attributes.get("gen_ai.conversation.id")),
        metadata=meta,
    )


def _prompt(attributes: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> str | None:
    if "gen_ai.input.messages" in attributes:
        # Since 1.37 instructions given apart from the chat history have their own attribute.
        parts = (attributes.get("gen_ai.system_instructions"), attributes["gen_ai.input.messages"])
        return "\n".join(t for t in map(_messages_text, parts) if t) or None
    if "input.value" in attributes:
        return _text(attributes["input.value"])
    if "gen_ai.prompt" in attributes:
        return _text(attributes["gen_ai.prompt"])
    asked = [_event_content(a) for name, a in events
             if name in ("gen_ai.system.message", "gen_ai.user.message")]  # fmt: skip
    return (
        "\n".join(t for t in asked if t)
        or _indexed(attributes, "llm.input_messages", "message.content")
        or _indexed(attributes, "gen_ai.prompt", "content")
    )


def _completion(attributes: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> str | None:
    if "gen_ai.output.messages" in attributes:
        return _messages_text(attributes["gen_ai.output.messages"])
    if "output.value" in attributes:
        return _text(attributes["output.value"])
    if "gen_ai.completion" in attributes:
        return _text(attributes["gen_ai.completion"])
    answered = [_event_content(a) for name, a in events if name == "gen_ai.choice"]
    return (
        "\n".join(t for t in answered if t)
        or _indexed(attributes, "llm.output_messages", "message.content")
        or _indexed(attributes, "gen_ai.completion", "content")
    )


def _messages_text(value: Any) -> str | None:
    """The text parts of GenAI messages (``[{"role", "parts": [{"type": "text", "content"}]}]``),
    one line per part; a value that is not that shape is kept as it came. Either a JSON string or
    structured (an OTLP array of key-value lists), as the conventions allow both."""
    if value is None:
        return None
    try:
        messages = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    except (ValueError, RecursionError):
        return _text(value)
    if not isinstance(messages, list):
        return _text(value)
    texts = []
    for message in messages:
        parts = message.get("parts") if isinstance(message, dict) else None
        if isinstance(parts, list):
            texts += [p["content"] for p in parts if isinstance(p, dict) and p.get("type") == "text"
                      and isinstance(p.get("content"), str)]  # fmt: skip
        elif isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return "\n".join(texts) or _text(value)


def _event_content(attributes: dict[str, Any]) -> str | None:
    if isinstance(attributes.get("content"), str):
        return attributes["content"]
    message = _json_object(attributes.get("message"))
    return message.get("content") if isinstance(message.get("content"), str) else None


def _indexed(attributes: dict[str, Any], prefix: str, suffix: str) -> str | None:
    # Flattened messages, in order: OpenInference's llm.input_messages.0.message.content and
    # OpenLLMetry's gen_ai.prompt.0.content.
    found = []
    for key, value in attributes.items():
        index, _, rest = key.removeprefix(prefix + ".").partition(".")
        if key.startswith(prefix + ".") and index.isdigit() and rest == suffix:
            found.append((int(index), str(value)))
    return "\n".join(text for _, text in sorted(found)) or None


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return binascii.hexlify(value.bytes_value).decode()
    return getattr(value, kind)
