"""Where the link stage meets the database: each processed ticket, once, gets its links to the
model outputs it was about."""

from __future__ import annotations

from sqlmodel import Session

from triage import store
from triage.link import FeedbackRecord, LinkParams, OutputRecord, Similarity, link_feedback
from triage.models import ModelOutput, as_utc


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
    candidates = store.link_candidates(
        session,
        output_ids=[r.output_id for r in records if r.output_id],
        user_ids=[r.user_id for r in records if r.user_id],
        session_ids=[r.session_id for r in records if r.session_id],
        since=min(r.created_at for r in records) - params.window,
        until=max(r.created_at for r in records),
    )
    decisions = link_feedback(
        records, [output_record(o) for o in candidates], params, similarity=similarity
    )
    store.add_links(session, rows=[vars(d) for d in decisions])
    store.mark_linked(session, feedback_ids=[r.id for r in records])
    return len(decisions)
