"""Links between tickets and the model outputs they are about."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from triage.models import TRACE_ID_PATH, Feedback, FeedbackStatus, Link, ModelOutput, utcnow
from triage.store._common import dialect_insert, table_of

TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


def feedback_to_link(session: Session) -> list[Any]:
    """Processed tickets whose links have not been decided yet: rows with the fields linking
    reads (id, created_at, received_at, redacted_text, user, session, output and customer),
    not ``Feedback`` objects, which the session would otherwise track by the thousand."""
    return list(
        session.exec(
            select(  # type: ignore[call-overload, misc]
                Feedback.id,
                Feedback.created_at,
                Feedback.received_at,
                Feedback.redacted_text,
                Feedback.user_id,
                Feedback.session_id,
                Feedback.output_id,
                Feedback.customer_id,
                Feedback.customer_value,
            )
            .where(
                col(Feedback.status) == FeedbackStatus.processed.value,
                col(Feedback.linked_at).is_(None),
            )
            .order_by(col(Feedback.id))
        ).all()
    )


def link_candidates(
    session: Session,
    *,
    output_ids: Sequence[str],
    user_ids: Sequence[str],
    session_ids: Sequence[str],
    since: datetime,
    until: datetime,
) -> list[ModelOutput]:
    """Outputs a ticket may be about: named explicitly (by output_id, or by the trace id of
    outputs from ``POST /v1/traces``), or of the same user or session in the time window.
    Chunked so thousands of tickets stay under driver parameter limits."""
    found: dict[int, ModelOutput] = {}
    # Only ids shaped like a W3C trace id are looked up in metadata: that lookup scans the
    # table's JSON (no index), so it is spent on the ids that can match.
    trace_ids = sorted({v.lower() for v in output_ids if TRACE_ID.fullmatch(v)})
    trace_id = col(ModelOutput.meta)[TRACE_ID_PATH].as_string()
    for start in range(0, len(trace_ids), 500):
        condition = trace_id.in_(trace_ids[start : start + 500])
        for output in session.exec(select(ModelOutput).where(condition)).all():
            found[output.id] = output  # type: ignore[index]
    for column, values, windowed in (
        (ModelOutput.output_id, output_ids, False),
        (ModelOutput.user_id, user_ids, True),
        (ModelOutput.session_id, session_ids, True),
    ):
        unique = sorted(set(values))
        for start in range(0, len(unique), 500):
            conditions: list[ColumnElement[bool]] = [col(column).in_(unique[start : start + 500])]
            if windowed:
                conditions += [col(ModelOutput.created_at) >= since,
                               col(ModelOutput.created_at) <= until]  # fmt: skip
            for output in session.exec(select(ModelOutput).where(*conditions)).all():
                found[output.id] = output  # type: ignore[index]
    return [found[k] for k in sorted(found)]


def add_links(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        statement = dialect_insert(session, table_of(Link)).on_conflict_do_nothing(
            index_elements=["feedback_id", "model_output_id"]
        )
        session.execute(statement, list(rows))


def mark_linked(session: Session, *, feedback_ids: Sequence[int]) -> None:
    for start in range(0, len(feedback_ids), 500):
        session.execute(
            update(Feedback)
            .where(col(Feedback.id).in_(list(feedback_ids[start : start + 500])))
            .values(linked_at=utcnow())
        )


def links_by_feedback(session: Session) -> dict[int, list[int]]:
    links: dict[int, list[int]] = {}
    for feedback_id, output_pk in session.exec(select(Link.feedback_id, Link.model_output_id)):
        links.setdefault(feedback_id, []).append(output_pk)
    return links
