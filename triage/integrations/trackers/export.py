"""Exporting an issue: at most one ticket per tracker, however often or concurrently it is asked.

Three short transactions around one HTTP call, so no database lock is held while the tracker
answers: claim (or find the ticket made before), create the ticket, record it (or drop the
claim if the tracker refused). A process that dies between the call and the record leaves a
claim that runs out after ``lease``; that is the one case a second ticket can be filed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from triage import db
from triage.integrations.trackers._base import IssueTracker
from triage.integrations.trackers.ticket import build_ticket
from triage.models import utcnow
from triage.redaction import RedactRecords
from triage.store.exports import claim_issue_export, record_issue_export, release_issue_export


@dataclass(frozen=True)
class ExportResult:
    issue_id: int
    tracker: str
    ticket_id: str
    key: str
    url: str
    created: bool  # false: an earlier export made this ticket
    exported_at: datetime


def export_issue(
    engine: Engine,
    *,
    issue_id: int,
    tracker: IssueTracker,
    redact: RedactRecords,
    base_url: str | None,
    timeout: float,
    actor: str,
    api_key_id: int | None = None,
    client: httpx.Client | None = None,
) -> ExportResult:
    now = utcnow()
    claim = uuid.uuid4().hex
    # Room for connecting and reading, each up to ``timeout``, and for redacting first.
    lease = timedelta(seconds=2 * timeout + 60)
    with db.session_scope(engine, write_lock=True) as session:
        issue, existing = claim_issue_export(
            session, issue_id=issue_id, tracker=tracker.name, claim=claim, at=now, lease=lease
        )
    if existing is not None:
        return _result(issue_id, tracker.name, existing, created=False)
    own_client = client is None
    try:
        ticket = build_ticket(issue, redact=redact, base_url=base_url)
        client = client or httpx.Client(timeout=timeout)
        created = tracker.create(ticket, client)
    except BaseException:
        with db.session_scope(engine, write_lock=True) as session:
            release_issue_export(session, issue_id=issue_id, tracker=tracker.name)
        raise
    finally:
        if own_client and client is not None:
            client.close()
    with db.session_scope(engine, write_lock=True) as session:
        event = record_issue_export(
            session,
            issue_id=issue_id,
            tracker=tracker.name,
            ticket={"ticket_id": created.ticket_id, "key": created.key, "url": created.url},
            at=utcnow(),
            api_key_id=api_key_id,
            actor=actor,
        )
    return _result(issue_id, tracker.name, event, created=True)


def _result(issue_id: int, tracker: str, event: dict, *, created: bool) -> ExportResult:
    return ExportResult(
        issue_id=issue_id,
        tracker=tracker,
        ticket_id=str(event.get("ticket_id")),
        key=str(event.get("key")),
        url=str(event.get("url")),
        created=created,
        exported_at=datetime.fromisoformat(str(event["at"])),
    )
