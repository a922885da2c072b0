"""What left triage for other tools.

Which trackers an issue was exported to is kept in its lineage (the issue's own history, which
re-clustering extends but never rewrites): an ``export_started`` claim while the tracker is
being called, replaced by ``exported`` with the ticket once it answers. Those functions take
the issues lock first (``lock_issues``: the pipeline's, on PostgreSQL; SQLite's write lock, with
``session_scope(write_lock=True)``), so a refresh that rewrites the lineage of the same issue
cannot lose an export, and two exports cannot both claim.

Whether the digest was posted to chat is kept in its summary, under the channel's name.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from triage.errors import ConflictError, InvalidInputError
from triage.models import Digest, Issue, as_utc
from triage.store.audit import record_audit
from triage.store.issues import get_issue, lock_issues

STARTED, EXPORTED = "export_started", "exported"


def issue_exports(issue: Issue) -> dict[str, dict[str, Any]]:
    """tracker -> its ``exported`` event, the ticket (``ticket_id``, ``key``, ``url``)."""
    return {
        str(event["tracker"]): event
        for event in issue.lineage
        if isinstance(event, dict) and event.get("event") == EXPORTED and event.get("tracker")
    }


def _locked(session: Session, issue_id: int) -> Issue:
    lock_issues(session)
    issue = get_issue(session, issue_id=issue_id)
    session.refresh(issue)  # read after the lock, not whatever the session held
    return issue


def claim_issue_export(
    session: Session, *, issue_id: int, tracker: str, claim: str, at: datetime, lease: timedelta
) -> tuple[Issue, dict[str, Any] | None]:
    """The issue and its ticket in ``tracker`` if it has one already; otherwise the issue, with
    ``claim`` recorded so a concurrent export waits for this one instead of filing twice."""
    issue = _locked(session, issue_id)
    if issue.merged_into is not None:
        raise InvalidInputError(
            f"Issue {issue_id} was merged into issue {issue.merged_into}; export that one."
        )
    existing = issue_exports(issue).get(tracker)
    if existing is not None:
        return issue, existing
    for event in issue.lineage:
        if (
            isinstance(event, dict)
            and event.get("event") == STARTED
            and event.get("tracker") == tracker
        ):
            started = as_utc(datetime.fromisoformat(str(event["at"])))
            # A claim older than its lease belongs to a process that died mid-call.
            if at - started < lease:
                raise ConflictError(
                    f"Issue {issue_id} is being exported to {tracker} right now; "
                    "try again in a few seconds to get its ticket."
                )
    issue.lineage = [
        *_without_claims(issue, tracker),
        {"event": STARTED, "tracker": tracker, "claim": claim, "at": at.isoformat()},
    ]
    session.add(issue)
    return issue, None


def _without_claims(issue: Issue, tracker: str) -> list[dict[str, Any]]:
    return [
        event
        for event in issue.lineage
        if not (isinstance(event, dict) and event.get("event") == STARTED
                and event.get("tracker") == tracker)
    ]  # fmt: skip


def release_issue_export(session: Session, *, issue_id: int, tracker: str) -> None:
    """Drop the claim after a failed call, so the next export tries at once."""
    issue = _locked(session, issue_id)
    issue.lineage = _without_claims(issue, tracker)
    session.add(issue)


def record_issue_export(
    session: Session,
    *,
    issue_id: int,
    tracker: str,
    ticket: dict[str, str],
    at: datetime,
    api_key_id: int | None,
    actor: str,
) -> dict[str, Any]:
    """Replace the claim with the ticket, point ``external_url`` at it unless a person set that
    field, and audit it. Returns the ``exported`` event."""
    issue = _locked(session, issue_id)
    before = issue.external_url
    event = {"event": EXPORTED, "tracker": tracker, **ticket, "at": at.isoformat(), "by": actor}
    issue.lineage = [*_without_claims(issue, tracker), event]
    # The first ticket is the link people follow; later ones stay in the lineage.
    if "external_url" not in issue.human_fields and not issue.external_url:
        issue.external_url = ticket["url"]
    session.add(issue)
    record_audit(
        session,
        action="issue.export",
        target_type="issue",
        target_id=issue_id,
        before={"external_url": before},
        after={"external_url": issue.external_url, "tracker": tracker, **ticket},
        api_key_id=api_key_id,
        actor=actor,
    )
    return event


# --- the digest posted to chat: its state in the digest's summary, under the channel's name ---


def digest_posted(digest: Digest, *, channel: str) -> bool:
    return bool((digest.summary.get(channel) or {}).get("posted_at"))


def claim_digest_post(
    session: Session, *, digest_id: int, channel: str, at: datetime, until: datetime,
    retry_after: timedelta,
) -> bool:  # fmt: skip
    """Whether this worker may post the digest now: not posted, no other worker's live claim,
    and no failure younger than ``retry_after``. Records the claim when it may."""
    digest = session.exec(select(Digest).where(col(Digest.id) == digest_id).with_for_update()).one()
    state = dict(digest.summary.get(channel) or {})
    claimed, failed = _moment(state.get("claimed_until")), _moment(state.get("failed_at"))
    if (
        state.get("posted_at")
        or (claimed is not None and at < claimed)
        or (failed is not None and at < failed + retry_after)
    ):
        return False
    digest.summary = {**digest.summary, channel: {**state, "claimed_until": until.isoformat()}}
    session.add(digest)
    return True


def finish_digest_post(
    session: Session, *, digest_id: int, channel: str, at: datetime, error: str | None = None
) -> None:
    """Release the claim: posted, or failed with ``error``."""
    digest = session.exec(select(Digest).where(col(Digest.id) == digest_id).with_for_update()).one()
    state = {k: v for k, v in (digest.summary.get(channel) or {}).items() if k != "claimed_until"}
    if error is None:
        state.update(posted_at=at.isoformat(), error=None)
    else:
        state.update(failed_at=at.isoformat(), error=error)
    digest.summary = {**digest.summary, channel: state}
    session.add(digest)


def _moment(value: Any) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(str(value))) if value else None
    except ValueError:
        return None
