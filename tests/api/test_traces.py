"""POST /v1/traces and GET /v1/model-outputs/{output_id}: through the app, and end to end with the
real OpenTelemetry SDK exporting to a running ``triage serve``."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlmodel import select

from tests.conftest import _free_port, auth
from triage import db
from triage.config import Settings
from triage.models import Feedback, Link, ModelOutput, Scope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "integrations"
JSON_BODY = (FIXTURES / "otlp_traces.json").read_bytes()
PROTOBUF_BODY = (FIXTURES / "otlp_traces.pb").read_bytes()
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def stored(engine) -> dict[str, ModelOutput]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return {o.output_id: o for o in session.exec(select(ModelOutput)).all()}


def test_traces_protobuf_stores_llm_spans_skips_the_rest(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = auth(make_key(Scope.ingest))
    answer = client.post("/v1/traces", content=PROTOBUF_BODY, headers={**key, **PROTOBUF})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(answer.content) == ExportTraceServiceResponse()
    assert (answer.headers["x-triage-stored-spans"], answer.headers["x-triage-skipped-spans"]) == (
        "2", "1",
    )  # fmt: skip
    assert sorted(stored(engine)) == ["b7ad6b7169203331", "eee19b7ec3c1b173"]
    # An exporter's retry of the same spans is a no-op, in the other encoding too.
    again = client.post("/v1/traces", content=JSON_BODY, headers={**key, **JSON})
    assert (again.status_code, again.json()) == (200, {})
    assert len(stored(engine)) == 2


def test_traces_gzip_and_its_decompressed_size_limit(settings, make_key, engine):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    small = settings.model_copy(update={"max_body_bytes": len(JSON_BODY) + 100})
    with TestClient(create_app(small)) as client:
        key = auth(make_key(Scope.ingest))
        zipped = {**key, **JSON, "Content-Encoding": "gzip"}
        ok = client.post("/v1/traces", content=gzip.compress(JSON_BODY), headers=zipped)
        assert ok.status_code == 200, ok.text
        # A few KB on the wire, over the limit once inflated: refused before parsing.
        bomb = gzip.compress(JSON_BODY + b" " * len(JSON_BODY))
        assert len(bomb) < small.max_body_bytes
        too_big = client.post("/v1/traces", content=bomb, headers=zipped)
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "body_too_large"
        broken = client.post("/v1/traces", content=gzip.compress(JSON_BODY)[:-20], headers=zipped)
        assert broken.status_code == 400
        deflate = client.post("/v1/traces", content=JSON_BODY,
                              headers={**key, **JSON, "Content-Encoding": "br"})  # fmt: skip
        assert deflate.status_code == 415
    assert len(stored(engine)) == 2


def test_traces_refusals(client, make_key):  # type: ignore[no-untyped-def]
    assert client.post("/v1/traces", content=PROTOBUF_BODY, headers=PROTOBUF).status_code == 401
    read = auth(make_key(Scope.read))
    assert client.post("/v1/traces", content=JSON_BODY, headers={**read, **JSON}).status_code == 403
    key = auth(make_key(Scope.ingest))
    text = client.post("/v1/traces", content=JSON_BODY,
                       headers={**key, "Content-Type": "text/plain"})  # fmt: skip
    assert text.status_code == 415 and "application/x-protobuf" in text.json()["error"]["message"]
    garbage = client.post("/v1/traces", content=b"\xff\xff", headers={**key, **PROTOBUF})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_body"
    not_json = client.post("/v1/traces", content=b"{", headers={**key, **JSON})
    assert not_json.status_code == 400 and "OTLP/JSON" in not_json.json()["error"]["message"]


def test_traces_partial_success_names_rejected_spans(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = auth(make_key(Scope.ingest))
    client.post("/v1/traces", content=JSON_BODY, headers={**key, **JSON})
    changed = json.loads(JSON_BODY)
    spans = changed["resourceSpans"][0]["scopeSpans"]
    # The same span id with another answer: immutable, so refused alone; the new span is stored.
    spans[2]["spans"][0]["attributes"][5]["value"]["stringValue"] = "A different answer."
    spans[1]["spans"][0]["spanId"] = "eee19b7ec3c1b999"
    answer = client.post("/v1/traces", content=json.dumps(changed), headers={**key, **JSON})
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "b7ad6b7169203331: already stored with different content" in partial["errorMessage"]
    assert "eee19b7ec3c1b999" in stored(engine)
    assert stored(engine)["b7ad6b7169203331"].output.startswith("Your refund")  # type: ignore[union-attr]


def test_model_outputs_get_one_redacted(client, make_key):  # type: ignore[no-untyped-def]
    body = json.loads(JSON_BODY)
    attributes = body["resourceSpans"][0]["scopeSpans"][2]["spans"][0]["attributes"]
    attributes[3]["value"]["stringValue"] = "Email me at jane.doe@example.com about my refund"
    ingest = auth(make_key(Scope.ingest))
    client.post("/v1/traces", content=json.dumps(body), headers={**ingest, **JSON})
    read = auth(make_key(Scope.read))
    answer = client.get("/v1/model-outputs/b7ad6b7169203331", headers=read)
    assert answer.status_code == 200, answer.text
    output = answer.json()
    assert (output["model"], output["output_id"]) == ("claude-sonnet-4-5", "b7ad6b7169203331")
    assert "jane.doe@example.com" not in output["input"]
    assert output["metadata"]["otel"]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    missing = client.get("/v1/model-outputs/0000000000000000", headers=read)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    ingest_only = client.get("/v1/model-outputs/b7ad6b7169203331", headers=ingest)
    assert ingest_only.status_code == 403


@contextmanager
def triage_serve(settings: Settings, log: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "TRIAGE_DATABASE_URL": settings.database_url,
           "TRIAGE_EMBEDDING_BACKEND": "fake"}  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "triage.cli", "serve", "--no-worker", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "triage serve did not start"
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            server.wait(20)


def test_traces_end_to_end_sdk_exporter_and_linking(  # type: ignore[no-untyped-def]
    settings, engine, make_key, tmp_path, monkeypatch
):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from typer.testing import CliRunner

    from triage.cli import app

    ingest, read = make_key(Scope.ingest), make_key(Scope.read)
    with triage_serve(settings, tmp_path / "serve.log") as base:
        # Configured the way the README tells a user to: environment variables only.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{base}/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{ingest}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        provider = TracerProvider(resource=Resource.create({"service.name": "summarizer"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("POST /summarize") as request_span:
            with tracer.start_as_current_span("chat gpt-4o") as first:
                first.set_attributes({
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "user.id": "u-7",
                    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                        {"type": "text", "content": "Summarise the meeting notes"}]}]),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                        {"type": "text", "content": "Draft summary"}]}]),
                })  # fmt: skip
            with tracer.start_as_current_span("ChatCompletion") as final:
                final.set_attributes({
                    "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                    "input.value": "Shorten: Draft summary", "output.value": "Résumé court",
                    "session.id": "s-1", "metadata": json.dumps({"prompt_version": "v3"}),
                })  # fmt: skip
        assert provider.force_flush(30_000)
        provider.shutdown()
        trace_id = format(request_span.get_span_context().trace_id, "032x")
        first_id = format(first.get_span_context().span_id, "016x")
        final_id = format(final.get_span_context().span_id, "016x")

        with httpx.Client(base_url=base, headers=auth(read), timeout=10) as http:
            shown = http.get(f"/v1/model-outputs/{final_id}").json()
            assert (shown["model"], shown["output"], shown["session_id"]) == (
                "gpt-4o-mini", "Résumé court", "s-1",
            )  # fmt: skip
            assert shown["metadata"]["otel"]["trace_id"] == trace_id
            assert shown["feature"] == "summarizer"
            assert http.get(f"/v1/model-outputs/{first_id}").json()["input"] == (
                "Summarise the meeting notes"
            )
            tickets = [
                {"source": "support", "external_id": "t-trace", "output_id": trace_id,
                 "text": "The summary is in the wrong language."},
                {"source": "support", "external_id": "t-span", "output_id": first_id,
                 "text": "The draft summary missed the action items."},
            ]  # fmt: skip
            sent = http.post("/v1/feedback", json={"items": tickets},
                             headers=auth(ingest))  # fmt: skip
            assert sent.status_code == 202, sent.text
    # Only LLM spans were stored: the HTTP request span was skipped.
    assert sorted(stored(engine)) == sorted([first_id, final_id])

    result = CliRunner().invoke(app, ["run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with db.session_scope(engine) as session:
        links = session.exec(
            select(Feedback.external_id, ModelOutput.output_id, Link.method)
            .join(Link, Link.feedback_id == Feedback.id)  # type: ignore[arg-type]
            .join(ModelOutput, ModelOutput.id == Link.model_output_id)  # type: ignore[arg-type]
        ).all()
    # The trace id links to the trace's last output, the answer the user saw.
    assert sorted(links) == [("t-span", first_id, "explicit"), ("t-trace", final_id, "explicit")]
