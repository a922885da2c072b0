"""Inbound webhooks (Zendesk, Intercom, the generic signed one) and the edge rules every ingestion
path shares: numeric ids, HTML bodies, unknown fields and ``?strict=true``. Issue 15.

Payloads are the shapes under fixtures/integrations/, signed here the way each vendor signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import auth
from triage import db
from triage.config import Settings
from triage.digest.deliver import sign
from triage.models import Feedback, Scope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "integrations"
ZENDESK_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
INTERCOM_SECRET = "intercom-client-secret-for-tests"
INGEST_SECRET = "generic-webhook-secret-for-tests"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def zendesk_headers(body: bytes, *, secret: str = ZENDESK_SECRET, at: datetime | None = None):  # type: ignore[no-untyped-def]
    timestamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def intercom_headers(body: bytes, *, secret: str = INTERCOM_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": f"sha1={digest}"}


def rows(engine) -> list[Feedback]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return list(session.exec(select(Feedback).order_by(Feedback.id)).all())  # type: ignore[arg-type]


def count(engine) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(Feedback)).one()


@pytest.fixture
def secrets(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "zendesk_webhook_secret": SecretStr(ZENDESK_SECRET),
            "intercom_client_secret": SecretStr(INTERCOM_SECRET),
            "ingest_webhook_secret": SecretStr(INGEST_SECRET),
        }
    )


@pytest.fixture
def hooks(secrets: Settings):  # type: ignore[no-untyped-def]
    from api.main import create_app

    with TestClient(create_app(secrets)) as test_client:
        yield test_client


# --- Zendesk ----------------------------------------------------------------------------------


def test_integrations_zendesk_ticket_created_is_stored_once(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("zendesk_ticket_created")
    first = hooks.post("/v1/integrations/zendesk", content=body, headers=zendesk_headers(body))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["ignored"] is None and answer["items"][0]["external_id"] == "35436"
    # Zendesk retries a delivery it thinks failed: same ticket, nothing new.
    again = hooks.post("/v1/integrations/zendesk", content=body, headers=zendesk_headers(body))
    assert again.json()["items"][0]["duplicate"] is True
    [row] = rows(engine)
    assert (row.source, row.external_id) == ("zendesk", "35436")
    assert (row.user_id, row.customer_id) == ("8447388090494", "8447346622462")
    assert row.text.startswith("Summary is in the wrong language\n\nHi, the meeting summary")
    assert row.meta["tags"] == ["summarizer", "language"]


def test_integrations_zendesk_comment_is_its_own_ticket_as_text(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("zendesk_comment_added")
    response = hooks.post("/v1/integrations/zendesk", content=body, headers=zendesk_headers(body))
    assert response.status_code == 200, response.text
    [row] = rows(engine)
    assert row.external_id == "35436#29384756102938"
    assert row.text == (
        "Happened again just now: the action items are in German too, and the follow-up e-mail "
        "draft is empty."
    )


def test_integrations_zendesk_agent_comment_is_ignored(hooks, engine):  # type: ignore[no-untyped-def]
    payload = json.loads(fixture("zendesk_comment_added"))
    payload["event"]["comment"]["author"]["is_staff"] = True
    body = json.dumps(payload).encode()
    response = hooks.post("/v1/integrations/zendesk", content=body, headers=zendesk_headers(body))
    assert response.status_code == 200 and "agent" in response.json()["ignored"]
    assert count(engine) == 0


def test_integrations_zendesk_trigger_body_numeric_ids_and_warnings(hooks, engine):  # type: ignore[no-untyped-def]
    payload = json.loads(fixture("zendesk_trigger"))
    payload["ticket"]["requestor_id"] = 1  # a typo in the hand-written trigger body
    body = json.dumps(payload).encode()
    response = hooks.post("/v1/integrations/zendesk", content=body, headers=zendesk_headers(body))
    assert response.status_code == 200, response.text
    assert [w["field"] for w in response.json()["warnings"]] == ["ticket.requestor_id"]
    [row] = rows(engine)
    assert (row.external_id, row.user_id, row.customer_id) == ("35437", "8447388091122", None)
    assert row.meta["tags"] == ["forecaster", "dashboard"]

    strict = hooks.post(
        "/v1/integrations/zendesk?strict=true", content=body, headers=zendesk_headers(body)
    )
    assert strict.status_code == 422 and strict.json()["error"]["code"] == "unknown_fields"


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: zendesk_headers(body, secret="not-the-secret"),
        lambda body: zendesk_headers(body, at=datetime.now(UTC) - timedelta(minutes=6)),
        lambda body: {"Content-Type": "application/json"},
    ],
    ids=["wrong-secret", "stale", "unsigned"],
)
def test_integrations_zendesk_bad_signature_is_401_nothing_stored(hooks, engine, headers):  # type: ignore[no-untyped-def]
    body = fixture("zendesk_ticket_created")
    response = hooks.post("/v1/integrations/zendesk", content=body, headers=headers(body))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert count(engine) == 0


def test_integrations_zendesk_tampered_body_is_401(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("zendesk_ticket_created")
    tampered = body.replace(b"German", b"French")
    response = hooks.post(
        "/v1/integrations/zendesk", content=tampered, headers=zendesk_headers(body)
    )
    assert response.status_code == 401 and count(engine) == 0


def test_integrations_unconfigured_endpoints_are_404(client):  # type: ignore[no-untyped-def]
    for tool in ("zendesk", "intercom", "webhook"):
        response = client.post(f"/v1/integrations/{tool}", content=b"{}")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "integration_not_configured" and "TRIAGE_" in error["message"]


# --- Intercom ---------------------------------------------------------------------------------


def test_integrations_intercom_conversation_and_reply(hooks, engine):  # type: ignore[no-untyped-def]
    for name in ("intercom_conversation_user_created", "intercom_conversation_user_replied"):
        body = fixture(name)
        response = hooks.post("/v1/integrations/intercom", content=body,
                              headers=intercom_headers(body))  # fmt: skip
        assert response.status_code == 200, response.text
    first, reply = rows(engine)
    assert (first.source, first.external_id, first.user_id) == ("intercom", "1911149811", "u-20417")
    assert first.text == (
        "The reply drafter keeps quoting a refund policy we retired in October.\n\n"
        "Customers are getting told they have 60 days when it is 30 now."
    )
    assert reply.external_id == "1911149811#31807345621"
    assert '"60-day returns"' in reply.text and "<p>" not in reply.text


def test_integrations_intercom_ping_stores_nothing(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("intercom_ping")
    response = hooks.post("/v1/integrations/intercom", content=body, headers=intercom_headers(body))
    assert response.status_code == 200 and "ping" in response.json()["ignored"]
    assert count(engine) == 0


def test_integrations_intercom_bad_signature_is_401(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("intercom_conversation_user_created")
    for headers in (intercom_headers(body, secret="wrong"), {}):
        response = hooks.post("/v1/integrations/intercom", content=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    assert count(engine) == 0


# --- the generic signed webhook -----------------------------------------------------------------


def test_integrations_generic_webhook_signed_like_the_digest(hooks, engine):  # type: ignore[no-untyped-def]
    body = fixture("signed_webhook")
    now = int(time.time())
    headers = {"X-Triage-Signature": sign(INGEST_SECRET, now, body)}
    response = hooks.post("/v1/integrations/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["external_id"] == "88123"
    stale = {"X-Triage-Signature": sign(INGEST_SECRET, now - 3600, body)}
    assert hooks.post("/v1/integrations/webhook", content=body, headers=stale).status_code == 401
    assert count(engine) == 1


def test_integrations_generic_webhook_invalid_body_is_the_usual_422(hooks):  # type: ignore[no-untyped-def]
    body = json.dumps({"source": "typeform", "external_id": "1"}).encode()
    headers = {"X-Triage-Signature": sign(INGEST_SECRET, int(time.time()), body)}
    response = hooks.post("/v1/integrations/webhook", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_fields"
    assert response.json()["error"]["details"][0]["field"] == "text"


# --- /v1/feedback: the same rules with a bearer key ---------------------------------------------


def test_integrations_feedback_numeric_ids_and_html(client, make_key, engine):  # type: ignore[no-untyped-def]
    ticket: dict[str, Any] = {
        "source": "zendesk", "external_id": 35436, "user_id": 8447388090494,
        "text": "<p>The summary is in the <b>wrong</b> language</p>",
    }  # fmt: skip
    response = client.post("/v1/feedback", json=ticket, headers=auth(make_key(Scope.ingest)))
    assert response.status_code == 202, response.text
    [row] = rows(engine)
    assert (row.external_id, row.user_id) == ("35436", "8447388090494")
    assert row.text == "The summary is in the wrong language"


def test_integrations_feedback_text_that_mentions_tags_is_kept(client, make_key, engine):  # type: ignore[no-untyped-def]
    text = "The answer came back as <div>raw markup</div> instead of a sentence."
    ticket = {"source": "s", "external_id": "1", "text": text}
    client.post("/v1/feedback", json=ticket, headers=auth(make_key(Scope.ingest)))
    assert rows(engine)[0].text == text


def test_integrations_feedback_unknown_field_warns_or_strict_422(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = make_key(Scope.ingest)
    ticket = {"source": "s", "external_id": "1", "text": "Export is broken.", "customer": "acme"}
    strict = client.post("/v1/feedback?strict=true", json=ticket, headers=auth(key))
    assert strict.status_code == 422
    assert strict.json()["error"]["code"] == "unknown_fields" and count(engine) == 0

    answer = client.post("/v1/feedback", json=ticket, headers=auth(key)).json()
    assert answer["warnings"] == [
        {"field": "customer", "message": "Unknown field, ignored; did you mean 'customer_id'?"}
    ]
    batch = {"items": [ticket], "extra": 1}
    answer = client.post("/v1/feedback", json=batch, headers=auth(key)).json()
    assert answer["items"][0]["warnings"][0]["field"] == "items.0.customer"
    assert answer["warnings"][0]["field"] == "extra"


# --- end to end: a real `triage serve` --------------------------------------------------------


def test_integrations_end_to_end_against_triage_serve(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    import httpx

    from tests.conftest import _free_port

    port = _free_port()
    env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": settings.database_url,
        "TRIAGE_EMBEDDING_BACKEND": "fake",
        "TRIAGE_ZENDESK_WEBHOOK_SECRET": ZENDESK_SECRET,
        "TRIAGE_INTERCOM_CLIENT_SECRET": INTERCOM_SECRET,
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "serve", "--no-worker", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "triage serve did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as http:
            for name in ("zendesk_ticket_created", "zendesk_comment_added", "zendesk_trigger"):
                body = fixture(name)
                answer = http.post("/v1/integrations/zendesk", content=body,
                                   headers=zendesk_headers(body))  # fmt: skip
                assert answer.status_code == 200, answer.text
            for name in ("intercom_ping", "intercom_conversation_user_created",
                         "intercom_conversation_user_replied"):  # fmt: skip
                body = fixture(name)
                answer = http.post("/v1/integrations/intercom", content=body,
                                   headers=intercom_headers(body))  # fmt: skip
                assert answer.status_code == 200, answer.text
            body = fixture("zendesk_ticket_created")
            forged = http.post("/v1/integrations/zendesk", content=body,
                               headers=zendesk_headers(body, secret="forged"))  # fmt: skip
            assert forged.status_code == 401
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    assert sorted((r.source, r.external_id) for r in rows(engine)) == [
        ("intercom", "1911149811"),
        ("intercom", "1911149811#31807345621"),
        ("zendesk", "35436"),
        ("zendesk", "35436#29384756102938"),
        ("zendesk", "35437"),
    ]
