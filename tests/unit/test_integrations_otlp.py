"""triage.integrations.otlp: OTLP spans -> model outputs, without a database or a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from triage.errors import InvalidInputError
from triage.integrations import otlp
from triage.link import FeedbackRecord, OutputRecord, link_feedback
from triage.link.linking import trace_id_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "integrations"
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def attr(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: object) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    assert isinstance(value, dict)
    return AnyValue(kvlist_value=KeyValueList(values=[attr(k, v) for k, v in value.items()]))


def request_of(*spans: Span) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attr("service.name", "doc-qa"))
    resource_spans.scope_spans.add().spans.extend(spans)
    return request


def span(span_id: str, *attributes: KeyValue, end: int = 2_000_000_000) -> Span:
    return Span(
        trace_id=TRACE, span_id=bytes.fromhex(span_id), name="chat", attributes=attributes,
        start_time_unix_nano=1_000_000_000, end_time_unix_nano=end,
    )  # fmt: skip


def test_otlp_fixtures_json_and_protobuf_are_the_same_request() -> None:
    from_json = otlp.parse_json((FIXTURES / "otlp_traces.json").read_bytes())
    from_protobuf = otlp.parse_protobuf((FIXTURES / "otlp_traces.pb").read_bytes())
    assert from_json == from_protobuf
    batch = otlp.to_model_outputs(from_json)
    assert (batch.skipped, batch.rejected) == (1, [])
    genai, openinference = batch.outputs
    assert genai.output_id == "eee19b7ec3c1b173"
    assert (genai.model, genai.model_version) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert genai.input is not None and genai.input.endswith("la facture de mars est en double.")
    assert genai.output == "The March invoice was charged twice."
    assert (genai.user_id, genai.session_id, genai.latency_ms) == ("u-1042", "conv-7f3a", 2250.0)
    assert genai.meta is not None and genai.meta["otel"]["provider"] == "openai"
    assert trace_id_of(genai.meta) == "5b8efff798038103d269b633813fc60c"
    assert openinference.model == "claude-sonnet-4-5"
    assert openinference.output is not None and openinference.output.startswith("Your refund")
    assert (openinference.user_id, openinference.session_id) == ("u-2001", "sess-88")
    # OpenInference's metadata is the output's metadata; its feature names the feature.
    assert openinference.feature == "reply-drafter"
    assert openinference.meta is not None and openinference.meta["prompt_version"] == "v12"


def test_otlp_structured_messages_and_system_instructions() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Summarise page 3"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "Page 3 says..."}]}]
    batch = otlp.to_model_outputs(request_of(span(
        "00000000000000a1",
        attr("gen_ai.request.model", "gpt-4.1"),
        attr("gen_ai.system_instructions", [{"type": "text", "content": "Be brief."}]),
        attr("gen_ai.input.messages", messages),
        attr("gen_ai.output.messages", json.dumps(answer)),
    )))  # fmt: skip
    (output,) = batch.outputs
    assert output.input == "Be brief.\nSummarise page 3"
    assert output.output == "Page 3 says..."
    assert output.feature == "doc-qa"


def test_otlp_older_conventions_events_and_flattened_messages() -> None:
    events = span("00000000000000b1", attr("gen_ai.request.model", "gpt-4o"),
                  attr("gen_ai.system", "openai"))  # fmt: skip
    events.events.add(name="gen_ai.user.message", attributes=[attr("content", "Hi")])
    events.events.add(name="gen_ai.choice",
                      attributes=[attr("message", json.dumps({"content": "Hello!"}))])  # fmt: skip
    flattened = span("00000000000000b2", attr("llm.model_name", "mistral-large"),
                     attr("llm.input_messages.1.message.content", "second"),
                     attr("llm.input_messages.0.message.content", "first"),
                     attr("llm.output_messages.0.message.content", "answer"))  # fmt: skip
    first, second = otlp.to_model_outputs(request_of(events, flattened)).outputs
    assert (first.input, first.output, first.meta["otel"]["provider"]) == ("Hi", "Hello!", "openai")  # type: ignore[index]
    assert (second.input, second.output) == ("first\nsecond", "answer")


def test_otlp_non_llm_spans_skipped_bad_llm_spans_rejected() -> None:
    batch = otlp.to_model_outputs(request_of(
        span("00000000000000c1", attr("http.route", "/chat")),
        span("00000000000000c2", attr("db.system.name", "postgresql")),
        span("00000000000000c3", attr("openinference.span.kind", "LLM")),  # no model
        span("00000000000000c4", attr("llm.model_name", "m"), attr("input.value", "a\x00b")),
        span("00000000000000c5", attr("llm.model_name", "m"), attr("output.value", "x" * 200_000)),
    ))  # fmt: skip
    assert batch.skipped == 2
    assert [r.split(":")[0] for r in batch.rejected] == ["span 00000000000000c3",
                                                         "span 00000000000000c4"]  # fmt: skip
    (long,) = batch.outputs
    # Cut to the stored limit, not refused, and said so.
    assert len(long.output or "") == otlp.MAX_TEXT and long.meta["otel"]["truncated"] == ["output"]  # type: ignore[index]
    answer = otlp.response(batch)
    assert answer.partial_success.rejected_spans == 2
    assert "without gen_ai.request.model" in answer.partial_success.error_message
    assert json.loads(otlp.response_json(answer))["partialSuccess"]["rejectedSpans"] == "2"


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "zz"}]}]}]}',
        b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["truncated", "id not hex", "nested too deep"],
)
def test_otlp_json_errors_say_what_is_wrong(body: bytes) -> None:
    with pytest.raises(InvalidInputError, match="OTLP/JSON"):
        otlp.parse_json(body)


def test_otlp_deep_json_in_attributes_is_kept_as_text() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    batch = otlp.to_model_outputs(request_of(span(
        "00000000000000e1", attr("llm.model_name", "m"), attr("gen_ai.input.messages", deep),
        attr("metadata", "{" + deep),
    )))  # fmt: skip
    assert batch.outputs[0].input == deep[: otlp.MAX_TEXT]


def test_otlp_protobuf_garbage_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="protobuf"):
        otlp.parse_protobuf(b"\xff\xff\xff")


def test_link_trace_id_names_the_trace_last_output() -> None:
    from datetime import UTC, datetime, timedelta

    at = datetime(2026, 1, 5, tzinfo=UTC)
    meta = {"otel": {"trace_id": TRACE.hex()}}
    outputs = [
        OutputRecord(id=1, output_id="00000000000000d1", created_at=at, model="m", meta=meta),
        OutputRecord(
            id=2,
            output_id="00000000000000d2",
            created_at=at + timedelta(seconds=2),
            model="m",
            meta=meta,
        ),
    ]
    later = at + timedelta(hours=1)
    tickets = [
        FeedbackRecord(id=10, created_at=later, text="wrong", output_id=TRACE.hex().upper()),
        FeedbackRecord(id=11, created_at=later, text="wrong", output_id="00000000000000d1"),
    ]
    decisions = link_feedback(tickets, outputs)
    assert [(d.feedback_id, d.model_output_id, d.method) for d in decisions] == [
        (10, 2, "explicit"), (11, 1, "explicit"),
    ]  # fmt: skip
