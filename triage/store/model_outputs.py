"""Logged model outputs: idempotent ingestion, and the full list (tests and tools; the refresh
reads rollups, ``store.rollups``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlmodel import Session, col, select

from triage.errors import ConflictError, NotFoundError
from triage.models import ModelOutput, ModelOutputAccepted, ModelOutputCreate, utcnow
from triage.store._common import insert_idempotent, sha256_hex, table_of
from triage.store.partitions import OUTPUT_KEY
from triage.store.rollups import lock_output_inserts


def add_model_outputs(
    session: Session, *, items: Sequence[ModelOutputCreate]
) -> list[ModelOutputAccepted]:
    """Store logged outputs idempotently on ``output_id`` (same contract as ``add_feedback``)."""
    if not items:
        return []
    rows = []
    for item in items:
        # Only the fields a model output has: unknown ones are reported to the caller, not kept.
        row = item.model_dump(mode="json", by_alias=True, include=set(type(item).model_fields))
        row.update(
            created_at=item.created_at,
            content_sha256=sha256_hex(json.dumps(row, sort_keys=True, ensure_ascii=False)),
            received_at=utcnow(),
        )
        rows.append(row)
    # A roll-up must not read past an id an insert still in flight may commit below.
    lock_output_inserts(session)
    # PostgreSQL's partitioned table cannot hold UNIQUE(output_id): its key table does.
    postgres = session.get_bind().dialect.name == "postgresql"
    answers = insert_idempotent(
        session, table=table_of(ModelOutput), rows=rows, keys=("output_id",),
        digest="content_sha256", claim_in=OUTPUT_KEY if postgres else None,
    )  # fmt: skip
    conflicts = [
        # Only ids stored before this request: the caller rolls it back.
        {"output_id": row["output_id"], "id": answer.stored["id"] if answer.prior else None}
        for row, answer in zip(rows, answers, strict=True)
        if answer.conflict
    ]
    if conflicts:
        raise ConflictError(
            f"{len(conflicts)} output(s) reuse an output_id already stored with different "
            "content. Logged outputs are immutable. Nothing from this request was stored.",
            details={"conflicts": conflicts},
        )
    return [
        ModelOutputAccepted(id=a.stored["id"], output_id=row["output_id"], duplicate=a.duplicate)
        for row, a in zip(rows, answers, strict=True)
    ]


def all_model_outputs(session: Session) -> list[ModelOutput]:
    return list(session.exec(select(ModelOutput).order_by(col(ModelOutput.id))).all())


def get_model_output(session: Session, *, output_id: str) -> ModelOutput:
    output = session.exec(
        select(ModelOutput).where(col(ModelOutput.output_id) == output_id)
    ).first()
    if output is None:
        raise NotFoundError(f"No model output with output_id {output_id!r}.")
    return output
