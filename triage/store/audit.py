"""The audit log of people's changes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from triage.models import AuditLog


def record_audit(
    session: Session,
    *,
    action: str,
    target_type: str,
    target_id: str | int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    api_key_id: int | None = None,
    actor: str = "",
) -> AuditLog:
    entry = AuditLog(
        api_key_id=api_key_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def audit_entries(session: Session, *, target_type: str, target_id: str) -> list[AuditLog]:
    return list(
        session.exec(
            select(AuditLog)
            .where(col(AuditLog.target_type) == target_type, col(AuditLog.target_id) == target_id)
            .order_by(col(AuditLog.id))
        ).all()
    )
