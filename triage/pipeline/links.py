"""Where the link stage meets the database: each processed ticket, once, gets its links to the
model outputs it was about."""

from __future__ import annotations

from sqlmodel import Session

from triage import store
from triage.link import FeedbackRecord, LinkParams, OutputRecord, Similarity, link_feedback
from triage.models import ModelOutput, as_utc

# Tickets whose candidate outputs are looked up together (see ``link_pending``).
CANDIDATE_CHUNK = 50


def output_record(output: ModelOutput) -> OutputRecord:
    return OutputRecord(
        id=output.id,  # type: ignore[arg-type]
        output_id=output.output_id,
        created_at=as_utc(output.created_at or output.received_at),
        model=output.model,
        model_version=output.model_version,
        feature=output.feature,
        input=output.input,
        output=output.output,
        confidence=output.confidence,
        latency_ms=output.latency_ms,
        user_id=output.user_id,
        session_id=output.session_id,
        meta=output.meta,
    )


def link_pending(session: Session, *, params: LinkParams, similarity: Similarity | None) -> int:
    """Decide the links of every processed ticket not linked yet; returns links made."""
    feedback = store.feedback_to_link(session)
    if not feedback:
        return 0
    records = [
        FeedbackRecord(
            id=f.id,
            created_at=as_utc(f.created_at or f.received_at),
            text=f.redacted_text or "",
            user_id=f.user_id,
            session_id=f.session_id,
            output_id=f.output_id,
            customer_id=f.customer_id,
            customer_value=f.customer_value,
        )
        for f in feedback
    ]
    # Tickets in time order, a few at a time: each lookup reads a user's or session's outputs
    # in the window of those tickets only. One window over a batch spread across weeks would
    # read every output of every user in it, which grows with traffic, not with feedback.
    candidates: dict[int, ModelOutput] = {}
    ordered = sorted(records, key=lambda r: r.created_at)
    for start in range(0, len(ordered), CANDIDATE_CHUNK):
        part = ordered[start : start + CANDIDATE_CHUNK]
        for output in store.link_candidates(
            session,
            output_ids=[r.output_id for r in part if r.output_id],
            user_ids=[r.user_id for r in part if r.user_id],
            session_ids=[r.session_id for r in part if r.session_id],
            since=part[0].created_at - params.window,
            until=part[-1].created_at,
        ):
            candidates[output.id] = output  # type: ignore[index]
    decisions = link_feedback(
        records,
        [output_record(candidates[k]) for k in sorted(candidates)],
        params,
        similarity=similarity,
    )
    store.add_links(session, rows=[vars(d) for d in decisions])
    store.mark_linked(session, feedback_ids=[r.id for r in records])
    return len(decisions)
