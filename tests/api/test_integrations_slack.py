"""Issue 15, "Digest to chat": the scheduled digest also goes to a Slack incoming webhook (here a
loopback server) as Block Kit within Slack's limits, once, retried after a failure."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete
from sqlmodel import select

from tests.api.test_integrations_trackers import FakeTracker, fake  # noqa: F401  (a fixture)
from tests.db.test_digest import AFTER, WEEK, seed
from triage import db
from triage.digest.schedule import maybe_generate_digest, schedule_enabled
from triage.integrations.slack import slack_message
from triage.models import Digest, Issue

HOOK = "/services/T0000/B0000/XXXXXXXXXXXX"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "integrations" / "slack_digest.json"


def identity(records: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


def check_limits(message: dict[str, Any]) -> None:
    """Slack's documented limits for a message's blocks."""
    assert message["text"] and len(message["blocks"]) <= 50
    for block in message["blocks"]:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10


def test_slack_message_stays_within_limits_and_escapes_titles():  # type: ignore[no-untyped-def]
    top = [
        {"id": i, "title": "<!channel> " + "long title " * 60, "category": "ui",
         "priority": 0.5, "this_week": 3, "ticket_url": "https://github.com/a/b/issues/1"}
        for i in range(100)
    ]  # fmt: skip
    digest = Digest(week=WEEK, format="html", content="", summary={
        "headline": {"feedback": {"this_week": 120, "last_week": 100}}, "top_issues": top,
    })  # fmt: skip
    message = slack_message(digest, link="https://triage.example.com/v1/digests/x", redact=identity)
    check_limits(message)
    text = json.dumps(message)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://github.com/a/b/issues/1|ticket>" in text
    assert "<https://triage.example.com/v1/digests/x|Read the whole digest>" in text
    check_limits(json.loads(FIXTURE.read_text(encoding="utf-8"))["request"]["body"])


def test_slack_scheduled_digest_posted_once_and_retried(engine, settings, fake):  # type: ignore[no-untyped-def]  # noqa: F811
    with db.session_scope(engine) as session:
        session.execute(delete(Digest))
    ids = seed(engine)
    with db.session_scope(engine) as session:
        issue = session.get(Issue, ids["export"])
        issue.external_url = "https://github.com/acme/assistant/issues/1347"
        session.add(issue)
    configured = settings.model_copy(update={
        "slack_webhook_url": SecretStr(fake.url + HOOK),
        "digest_base_url": "https://triage.example.com", "tracker_timeout_seconds": 5.0,
    })  # fmt: skip
    assert schedule_enabled(configured)
    fake.queued[HOOK] = [(500, "internal_error")]
    fake.defaults[HOOK] = (200, "ok")
    maybe_generate_digest(engine, configured, now=AFTER)
    assert len(fake.requests) == 1
    with db.session_scope(engine) as session:
        [stored] = [d for d in session.exec(select(Digest)).all() if d.format == "html"]
        assert stored.summary["slack"]["error"].startswith("Slack refused the digest with HTTP 500")
    # Within digest_retry_minutes nothing is sent; after it, the post goes through, once.
    maybe_generate_digest(engine, configured, now=AFTER + timedelta(minutes=1))
    assert len(fake.requests) == 1
    later = AFTER + timedelta(minutes=configured.digest_retry_minutes + 1)
    maybe_generate_digest(engine, configured, now=later)
    maybe_generate_digest(engine, configured, now=later + timedelta(hours=1))
    assert len(fake.requests) == 2
    sent = fake.requests[-1]
    assert sent.path == HOOK and sent.headers["content-type"] == "application/json"
    check_limits(sent.body)
    assert set(sent.body) == {"text", "blocks"}
    assert sent.body["blocks"][0] == {
        "type": "header", "text": {"type": "plain_text", "text": f"Feedback digest {WEEK}"},
    }  # fmt: skip
    text = json.dumps(sent.body)
    assert "Export button does nothing" in text
    assert "<https://github.com/acme/assistant/issues/1347|ticket>" in text
    assert (
        f"<https://triage.example.com/v1/digests/{WEEK}?format=html|Read the whole digest>" in text
    )
