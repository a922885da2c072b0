"""Units, their memberships in issues, and the vectors cache keyed by text hash."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, insert
from sqlmodel import Session, col, select

from triage.models import Embedding, Feedback, Membership, Unit
from triage.store._common import dialect_insert, table_of


def cached_vectors(
    session: Session, *, text_hashes: Sequence[str], model_id: str
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    unique = list(dict.fromkeys(text_hashes))
    for start in range(0, len(unique), 500):
        statement = select(Embedding.text_hash, Embedding.vector).where(
            col(Embedding.model_id) == model_id,
            col(Embedding.text_hash).in_(unique[start : start + 500]),
        )
        found.update(dict(session.exec(statement).all()))
    return found


def add_vectors(session: Session, *, vectors: dict[str, bytes], model_id: str, dim: int) -> None:
    if not vectors:
        return
    rows = [
        {"text_hash": h, "model_id": model_id, "dim": dim, "vector": v} for h, v in vectors.items()
    ]
    statement = dialect_insert(session, table_of(Embedding)).on_conflict_do_nothing(
        index_elements=["text_hash", "model_id"]
    )
    session.execute(statement, rows)


def add_units(session: Session, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert units (feedback_id, position, text, lemmas, text_hash) in one statement; their
    ids, in the order of ``rows``."""
    if not rows:
        return []
    statement = insert(Unit).returning(col(Unit.id), sort_by_parameter_order=True)
    return list(session.scalars(statement, list(rows)))


def units_without_vector(session: Session, *, model_id: str) -> dict[str, str]:
    """text hash -> text of each unit text that has no vector of ``model_id``: processed
    while another embedding model was configured (a backend changed, or a newer export)."""
    has_vector = exists().where(
        col(Embedding.text_hash) == col(Unit.text_hash), col(Embedding.model_id) == model_id
    )
    statement = select(Unit.text_hash, Unit.text).where(~has_vector).distinct()
    return {text_hash: text for text_hash, text in session.exec(statement)}


def unit_vectors(
    session: Session, *, model_id: str, issue_ids: Sequence[int] | None = None
) -> tuple[list[int], list[str], list[str], list[bytes]]:
    """Every unit with its vector: (ids, texts, lemma strings, vectors), in id order. With
    ``issue_ids``, only the units of tickets that have a statement in one of those issues."""
    statement = (
        select(Unit.id, Unit.text, Unit.lemmas, Embedding.vector)
        .join(
            Embedding,
            (col(Embedding.text_hash) == col(Unit.text_hash))
            & (col(Embedding.model_id) == model_id),
        )
        .order_by(col(Unit.id))
    )
    if issue_ids is not None:
        tickets = (
            select(Unit.feedback_id)
            .join(Membership, col(Membership.unit_id) == col(Unit.id))
            .where(col(Membership.issue_id).in_(list(issue_ids)))
        )
        statement = statement.where(col(Unit.feedback_id).in_(tickets))
    ids, texts, lemmas, vectors = [], [], [], []
    for unit_id, unit_text, lemma_string, vector in session.exec(statement):
        ids.append(unit_id)
        texts.append(unit_text)
        lemmas.append(lemma_string)
        vectors.append(vector)
    return ids, texts, lemmas, vectors  # type: ignore[return-value]


def latest_vector_model(session: Session) -> str | None:
    """The model id of the vectors stored last: the one the refreshes use now."""
    return session.exec(
        select(Embedding.model_id).order_by(col(Embedding.id).desc()).limit(1)
    ).first()


def memberships(session: Session) -> list[Membership]:
    return list(session.exec(select(Membership)).all())


def membership_map(session: Session) -> dict[int, tuple[int, str]]:
    """unit id -> (issue id, method) of every membership, as plain values: a refresh reads
    this once rather than loading thousands of ``Membership`` objects per step."""
    rows = session.exec(select(Membership.unit_id, Membership.issue_id, Membership.method))
    return {unit_id: (issue_id, method) for unit_id, issue_id, method in rows}


def add_memberships(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert memberships (unit_id, issue_id, method, similarity) in one statement."""
    if rows:
        session.execute(insert(Membership), list(rows))


def set_memberships(
    session: Session, *, rows: Sequence[dict[str, Any]], keep: Sequence[int] = ()
) -> None:
    """Replace the machine's memberships with ``rows`` (unit_id, issue_id, method, similarity);
    manual ones and those of the units in ``keep`` are never touched. One bulk INSERT, not one
    ORM object per unit."""
    stale = delete(Membership).where(col(Membership.method) != "manual")
    if keep:
        stale = stale.where(col(Membership.unit_id).not_in(list(keep)))
    session.execute(stale)
    add_memberships(session, rows=rows)


def unit_context(session: Session) -> dict[int, tuple[int, datetime, str | None, float | None]]:
    """unit id -> (feedback id, when the ticket was written, customer, customer value)."""
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Unit.id,
            Feedback.id,
            func.coalesce(Feedback.created_at, Feedback.received_at),
            Feedback.customer_id,
            Feedback.customer_value,
        ).join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
    ).all()
    return {unit_id: (fid, at, customer, value) for unit_id, fid, at, customer, value in rows}


def corrected_units(session: Session) -> list[tuple[str, str]]:
    """(unit text, category) for every statement whose category a person confirmed: the
    corrections ``triage train`` learns from. A category set on a whole issue labels only the
    statements the person confirmed with it, never every member of a mixed issue."""
    rows = session.exec(
        select(Unit.text, Unit.confirmed_category)
        .where(col(Unit.confirmed_category).is_not(None))
        .order_by(col(Unit.id))
    ).all()
    return [(text_, category) for text_, category in rows if category]
