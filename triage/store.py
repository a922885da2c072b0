"""Every database query, as functions with keyword-only arguments.

Routes, the CLI and the pipeline call these; none of them writes SQL of its own. Functions take
an open ``Session`` and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, exists, func, insert, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from triage.errors import ConflictError, InvalidInputError, NotFoundError
from triage.models import (
    ApiKey,
    AuditLog,
    Digest,
    Embedding,
    Feedback,
    FeedbackAccepted,
    FeedbackCreate,
    FeedbackStatus,
    Issue,
    Link,
    Membership,
    ModelOutput,
    ModelOutputAccepted,
    ModelOutputCreate,
    PipelineRun,
    Scope,
    Unit,
    utcnow,
)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _page(
    session: Session,
    model: Any,
    conditions: list[Any],
    order: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """One page of ``model`` rows matching ``conditions``, and how many match in all."""
    total = session.exec(select(func.count()).select_from(model).where(*conditions)).one()
    rows = session.exec(
        select(model).where(*conditions).order_by(*order).offset(offset).limit(limit)
    ).all()
    return list(rows), int(total)


# --- feedback ---------------------------------------------------------------------------------


def _insert_idempotent(
    session: Session, *, table: Any, rows: list[dict[str, Any]], keys: tuple[str, ...], digest: str
) -> tuple[list[tuple[dict[str, Any], Any, bool]], list[dict[str, Any]]]:
    """Insert the rows whose ``keys`` are new, then read every row back.

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` makes concurrent identical requests safe:
    exactly one row is written, every request reads it back, and RETURNING names only the rows
    this statement wrote, so "duplicate" stays exact even when identical requests race. Returns
    (sent row, stored row, duplicate) per row, and the conflicts: keys stored with another
    ``digest``. The caller raises on conflicts, so its transaction stores nothing of the batch.
    """
    key_columns = [table.c[k] for k in keys]
    statement = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*key_columns)
    )
    inserted = {tuple(r) for r in session.execute(statement, rows)}
    wanted = list(dict.fromkeys(tuple(row[k] for k in keys) for row in rows))
    key_expression = tuple_(*key_columns) if len(keys) > 1 else key_columns[0]
    # Not the whole row: a batch of long texts would be read back for nothing.
    read_back = [*key_columns, table.c.id, table.c[digest]]
    if "status" in table.c:
        read_back.append(table.c.status)
    stored = {}
    # Chunked so a 1,000-item batch stays well under every driver's parameter limit.
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        values = chunk if len(keys) > 1 else [key[0] for key in chunk]
        found = session.execute(select(*read_back).where(key_expression.in_(values))).mappings()
        stored.update({tuple(r[k] for k in keys): r for r in found})

    results, conflicts, seen = [], [], set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        if stored[key][digest] != row[digest]:
            conflicts.append({**dict(zip(keys, key, strict=True)), "id": stored[key]["id"]})
            continue
        results.append((row, stored[key], key not in inserted or key in seen))
        seen.add(key)
    return results, conflicts


def add_feedback(session: Session, *, items: Sequence[FeedbackCreate]) -> list[FeedbackAccepted]:
    """Store tickets idempotently on ``(source, external_id)``; answer one line per item."""
    if not items:
        return []
    rows = [
        {
            "source": item.source,
            "external_id": item.external_id,
            "text": item.text,
            "text_sha256": sha256_hex(item.text),
            "created_at": item.created_at,
            "customer_id": item.customer_id,
            "customer_value": item.customer_value,
            "user_id": item.user_id,
            "session_id": item.session_id,
            "output_id": item.output_id,
            "metadata": item.meta,
            "received_at": utcnow(),
            "status": FeedbackStatus.pending.value,
            "attempts": 0,
        }
        for item in items
    ]
    results, conflicts = _insert_idempotent(
        session, table=Feedback.__table__, rows=rows, keys=("source", "external_id"),
        digest="text_sha256",
    )  # fmt: skip
    if conflicts:
        raise ConflictError(
            f"{len(conflicts)} item(s) reuse a (source, external_id) that is already stored with "
            "a different text. Feedback is immutable: send it under a new external_id. Nothing "
            "from this request was stored.",
            details={"conflicts": conflicts},
        )
    return [
        FeedbackAccepted(
            id=stored["id"],
            source=row["source"],
            external_id=row["external_id"],
            status=stored["status"],
            duplicate=duplicate,
        )
        for row, stored, duplicate in results
    ]


def list_feedback(
    session: Session,
    *,
    source: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Feedback], int]:
    conditions = []
    if source is not None:
        conditions.append(col(Feedback.source) == source)
    if status is not None:
        conditions.append(col(Feedback.status) == status)
    if since is not None:
        conditions.append(col(Feedback.received_at) >= since)
    return _page(session, Feedback, conditions, (col(Feedback.id),), limit=limit, offset=offset)


def get_feedback(session: Session, *, feedback_id: int) -> Feedback:
    feedback = session.get(Feedback, feedback_id)
    if feedback is None:
        raise NotFoundError(f"No feedback with id {feedback_id}.")
    return feedback


def issue_ids_by_feedback(session: Session, *, feedback_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each ticket's issues, the one holding most of its units first (its main issue)."""
    if not feedback_ids:
        return {}
    statement = (
        select(Unit.feedback_id, Membership.issue_id, func.count())
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Unit.feedback_id).in_(list(feedback_ids)))
        .group_by(col(Unit.feedback_id), col(Membership.issue_id))
    )
    counts: dict[int, list[tuple[int, int]]] = {}
    for feedback_id, issue_id, count in session.exec(statement):
        counts.setdefault(feedback_id, []).append((count, issue_id))
    return {
        feedback_id: [issue_id for _, issue_id in sorted(pairs, key=lambda p: (-p[0], p[1]))]
        for feedback_id, pairs in counts.items()
    }


# --- model outputs ----------------------------------------------------------------------------


def add_model_outputs(
    session: Session, *, items: Sequence[ModelOutputCreate]
) -> list[ModelOutputAccepted]:
    """Store logged outputs idempotently on ``output_id`` (same contract as ``add_feedback``)."""
    if not items:
        return []
    rows = []
    for item in items:
        row = item.model_dump(mode="json", by_alias=True)
        row.update(
            created_at=item.created_at,
            content_sha256=sha256_hex(json.dumps(row, sort_keys=True, ensure_ascii=False)),
            received_at=utcnow(),
        )
        rows.append(row)
    results, conflicts = _insert_idempotent(
        session, table=ModelOutput.__table__, rows=rows, keys=("output_id",),
        digest="content_sha256",
    )  # fmt: skip
    if conflicts:
        raise ConflictError(
            f"{len(conflicts)} output(s) reuse an output_id already stored with different "
            "content. Logged outputs are immutable. Nothing from this request was stored.",
            details={"conflicts": conflicts},
        )
    return [
        ModelOutputAccepted(id=stored["id"], output_id=row["output_id"], duplicate=duplicate)
        for row, stored, duplicate in results
    ]


# --- issues -----------------------------------------------------------------------------------

ISSUE_SORTS = {
    "priority": (col(Issue.priority).desc(), col(Issue.id)),
    "size": (col(Issue.size).desc(), col(Issue.id)),
    "updated": (col(Issue.updated_at).desc(), col(Issue.id)),
    "id": (col(Issue.id),),
}


def list_issues(
    session: Session,
    *,
    category: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    sort: str = "priority",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Issue], int]:
    if sort not in ISSUE_SORTS:
        raise InvalidInputError(
            f"Unknown sort {sort!r}; use one of {', '.join(ISSUE_SORTS)}.",
            details={"field": "sort"},
        )
    # Merged issues live on only as pointers to their survivor.
    conditions = [col(Issue.merged_into).is_(None), col(Issue.size) > 0]
    if category is not None:
        conditions.append(col(Issue.category) == category)
    if status is not None:
        conditions.append(col(Issue.status) == status)
    if since is not None:
        conditions.append(col(Issue.updated_at) >= since)
    return _page(session, Issue, conditions, ISSUE_SORTS[sort], limit=limit, offset=offset)


def get_issue(session: Session, *, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFoundError(f"No issue with id {issue_id}.")
    return issue


# --- API keys ---------------------------------------------------------------------------------

KEY_PREFIX = "trg_"


def hash_key(secret: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 is enough; a slow KDF protects guessable
    # passwords, which these are not.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, *, scope: Scope, name: str = "") -> tuple[ApiKey, str]:
    """Returns the stored key and its secret; the secret is not kept anywhere."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, scope=scope.value, prefix=secret[:10], key_hash=hash_key(secret))
    session.add(key)
    session.flush()
    return key, secret


def find_api_key(session: Session, *, secret: str) -> ApiKey | None:
    """The active key for ``secret``, or None. Revoked keys are never returned."""
    digest = hash_key(secret)
    key = session.exec(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
    # The lookup is by hash, so timing cannot reveal the secret; the constant-time compare
    # guards against a database collation treating near-equal strings as equal.
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at:
        return None
    return key


def touch_api_key(session: Session, *, key_id: int) -> None:
    session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=utcnow()))


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))).all())


def revoke_api_key(session: Session, *, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"No API key with id {key_id}; `triage keys list` shows them.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    return key


# --- audit ------------------------------------------------------------------------------------


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


# --- processing -------------------------------------------------------------------------------


def claim_pending(session: Session, *, limit: int) -> list[Any]:
    """Lock up to ``limit`` pending tickets for this transaction: rows of (id, text, attempts),
    to be written back with ``update_feedback``.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers claim disjoint batches; on
    SQLite the caller's session holds the write lock (``session_scope(write_lock=True)``). A
    worker killed mid-batch never commits, so its tickets simply stay pending.
    """
    statement = (
        select(Feedback.id, Feedback.text, Feedback.attempts)
        .where(col(Feedback.status) == FeedbackStatus.pending.value)
        .order_by(col(Feedback.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return list(session.exec(statement).all())


def update_feedback(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Write processing results, one dict of changed fields per ticket, keyed by ``id``
    (an UPDATE by primary key, executed once per set of fields)."""
    if rows:
        session.execute(update(Feedback), list(rows))


def count_feedback_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(select(Feedback.status, func.count()).group_by(col(Feedback.status)))
    return {status: int(count) for status, count in rows}


def requeue_failed(session: Session) -> int:
    result = session.execute(
        update(Feedback)
        .where(col(Feedback.status) == FeedbackStatus.failed.value)
        .values(status=FeedbackStatus.pending.value)
    )
    return int(result.rowcount or 0)


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
    statement = _insert(session, Embedding.__table__).on_conflict_do_nothing(
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


def unit_vectors(
    session: Session, *, model_id: str
) -> tuple[list[int], list[str], list[str], list[bytes]]:
    """Every unit with its vector: (ids, texts, lemma strings, vectors), in id order."""
    statement = (
        select(Unit.id, Unit.text, Unit.lemmas, Embedding.vector)
        .join(
            Embedding,
            (col(Embedding.text_hash) == col(Unit.text_hash))
            & (col(Embedding.model_id) == model_id),
        )
        .order_by(col(Unit.id))
    )
    ids, texts, lemmas, vectors = [], [], [], []
    for unit_id, unit_text, lemma_string, vector in session.exec(statement):
        ids.append(unit_id)
        texts.append(unit_text)
        lemmas.append(lemma_string)
        vectors.append(vector)
    return ids, texts, lemmas, vectors


def memberships(session: Session) -> list[Membership]:
    return list(session.exec(select(Membership)).all())


def membership_map(session: Session) -> dict[int, tuple[int, str]]:
    """unit id -> (issue id, method) of every membership, as plain values: a refresh reads
    this once rather than loading thousands of ``Membership`` objects per step."""
    rows = session.exec(select(Membership.unit_id, Membership.issue_id, Membership.method))
    return {unit_id: (issue_id, method) for unit_id, issue_id, method in rows}


def active_issues(session: Session) -> list[Issue]:
    """Issues that can still receive units: not merged away."""
    return list(
        session.exec(
            select(Issue).where(col(Issue.merged_into).is_(None)).order_by(col(Issue.id))
        ).all()
    )


def issue_centroids(session: Session, *, statuses: Iterable[str]) -> dict[int, tuple[bytes, str]]:
    """issue id -> (centroid, status) of every active issue in ``statuses`` with a centroid:
    what placing a new unit needs, without loading whole issues for every batch."""
    rows = session.exec(
        select(Issue.id, Issue.centroid, Issue.status).where(
            col(Issue.merged_into).is_(None),
            col(Issue.status).in_([str(status) for status in statuses]),
            col(Issue.centroid).is_not(None),
        )
    )
    return {issue_id: (centroid, status) for issue_id, centroid, status in rows if centroid}


def add_memberships(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert memberships (unit_id, issue_id, method, similarity) in one statement."""
    if rows:
        session.execute(insert(Membership), list(rows))


def set_memberships(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the machine's memberships with ``rows`` (unit_id, issue_id, method, similarity);
    manual ones are never touched. One bulk INSERT, not one ORM object per unit."""
    session.execute(delete(Membership).where(col(Membership.method) != "manual"))
    add_memberships(session, rows=rows)


def refresh_issue_sizes(session: Session) -> None:
    """Size and distinct customers are derived from memberships, never counted separately.

    One UPDATE with correlated counts, written only where a figure changed; issues loaded in
    the session see the new figures (``fetch`` expires them)."""
    size = select(func.count()).where(col(Membership.issue_id) == col(Issue.id)).scalar_subquery()
    customers = (
        select(func.count(func.distinct(col(Feedback.customer_id))))
        .select_from(Membership)
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(col(Membership.issue_id) == col(Issue.id))
        .scalar_subquery()
    )
    session.execute(
        update(Issue)
        .where((col(Issue.size) != size) | (col(Issue.customers) != customers))
        .values(size=size, customers=customers)
        .execution_options(synchronize_session="fetch")
    )


def lock_issues(session: Session) -> None:
    """Serialise issue refreshes: one at a time, whichever worker runs them.

    SQLite already holds its write lock; PostgreSQL takes a transaction-level advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7273)"))


def export_feedback(session: Session, *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """One row per ticket, in id order, with its main issue and that issue's category.

    Only redacted text leaves the database. Streams in chunks so a large export stays small in
    memory.
    """
    categories = dict(session.exec(select(Issue.id, Issue.category)).all())
    last_id = 0
    while True:
        rows = session.exec(
            select(Feedback)
            .where(col(Feedback.id) > last_id)
            .order_by(col(Feedback.id))
            .limit(chunk)
        ).all()
        if not rows:
            return
        issues = issue_ids_by_feedback(session, feedback_ids=[row.id for row in rows])
        for row in rows:
            issue_ids = issues.get(row.id, [])
            main = issue_ids[0] if issue_ids else None
            yield {
                "id": row.id,
                "external_id": row.external_id,
                "source": row.source,
                "status": row.status,
                "issue_id": main,
                "issue_ids": issue_ids,
                "category": categories.get(main) if main is not None else None,
                "created_at": row.created_at,
                "customer_id": row.customer_id,
                "text": row.redacted_text,
                "last_error": row.last_error,
            }
        last_id = rows[-1].id


# --- corrections --------------------------------------------------------------------------------

AUDITED_FIELDS = ("title", "category", "status", "assignee", "external_url", "merged_into")


def _snapshot(issue: Issue) -> dict[str, Any]:
    return {name: getattr(issue, name) for name in AUDITED_FIELDS}


def update_issue(
    session: Session, *, issue_id: int, changes: dict[str, Any], api_key_id: int | None, actor: str
) -> Issue:
    """Apply a person's edit, remember which fields a person owns now, and audit it."""
    issue = get_issue(session, issue_id=issue_id)
    if issue.merged_into is not None:
        raise InvalidInputError(
            f"Issue {issue_id} was merged into issue {issue.merged_into}; edit that one."
        )
    before = _snapshot(issue)
    for name, value in changes.items():
        setattr(issue, name, value.value if hasattr(value, "value") else value)
    if "status" in changes:
        issue.resolved_at = utcnow() if issue.status == "resolved" else None
    issue.human_fields = sorted(set(issue.human_fields) | set(changes))
    issue.updated_at = utcnow()
    session.add(issue)
    record_audit(
        session,
        action="issue.update",
        target_type="issue",
        target_id=issue_id,
        before=before,
        after=_snapshot(issue),
        api_key_id=api_key_id,
        actor=actor,
    )
    return issue


def move_units(
    session: Session, *, unit_ids: Sequence[int], issue_id: int, api_key_id: int | None, actor: str
) -> Issue:
    """Put units into an issue by hand; a manual membership survives every re-clustering."""
    issue = get_issue(session, issue_id=issue_id)
    if issue.merged_into is not None:
        raise InvalidInputError(f"Issue {issue_id} was merged into issue {issue.merged_into}.")
    found = set(session.exec(select(Unit.id).where(col(Unit.id).in_(list(unit_ids)))).all())
    missing = sorted(set(unit_ids) - found)
    if missing:
        raise NotFoundError(f"No units with ids {missing[:20]}.", details={"missing": missing})
    before = {
        m.unit_id: m.issue_id
        for m in session.exec(select(Membership).where(col(Membership.unit_id).in_(found))).all()
    }
    session.execute(delete(Membership).where(col(Membership.unit_id).in_(found)))
    session.add_all(
        Membership(unit_id=unit_id, issue_id=issue_id, method="manual") for unit_id in sorted(found)
    )
    session.flush()
    record_audit(
        session,
        action="issue.move_units",
        target_type="issue",
        target_id=issue_id,
        before={"issues_of_units": {str(k): v for k, v in before.items()}},
        after={"unit_ids": sorted(found)},
        api_key_id=api_key_id,
        actor=actor,
    )
    refresh_issue_sizes(session)
    return issue


def merge_issues(
    session: Session, *, issue_id: int, into: int, api_key_id: int | None, actor: str
) -> Issue:
    if issue_id == into:
        raise InvalidInputError("An issue cannot be merged into itself.")
    source, target = get_issue(session, issue_id=issue_id), get_issue(session, issue_id=into)
    for issue in (source, target):
        if issue.merged_into is not None:
            raise InvalidInputError(
                f"Issue {issue.id} was already merged into issue {issue.merged_into}."
            )
    before = _snapshot(source)
    unit_ids = session.exec(
        select(Membership.unit_id).where(col(Membership.issue_id) == issue_id)
    ).all()
    session.execute(delete(Membership).where(col(Membership.issue_id) == issue_id))
    session.add_all(Membership(unit_id=u, issue_id=into, method="manual") for u in unit_ids)
    now = utcnow().isoformat()
    source.merged_into = into
    source.lineage = [
        *source.lineage,
        {"event": "merged_into", "other_issue_id": into, "at": now, "by": "person"},
    ]
    target.lineage = [
        *target.lineage,
        {"event": "merged_from", "other_issue_id": issue_id, "at": now, "by": "person"},
    ]
    session.add_all([source, target])
    session.flush()
    record_audit(
        session,
        action="issue.merge",
        target_type="issue",
        target_id=issue_id,
        before=before,
        after=_snapshot(source),
        api_key_id=api_key_id,
        actor=actor,
    )
    refresh_issue_sizes(session)
    return target


def split_issue(
    session: Session, *, issue_id: int, unit_ids: Sequence[int], api_key_id: int | None, actor: str
) -> Issue:
    """Move some of an issue's units into a new issue of their own."""
    issue = get_issue(session, issue_id=issue_id)
    members = set(
        session.exec(select(Membership.unit_id).where(col(Membership.issue_id) == issue_id)).all()
    )
    strangers = sorted(set(unit_ids) - members)
    if strangers:
        raise InvalidInputError(
            f"Units {strangers[:20]} are not in issue {issue_id}.", details={"units": strangers}
        )
    now = utcnow().isoformat()
    new = Issue(
        category=issue.category,
        lineage=[{"event": "split_from", "other_issue_id": issue_id, "at": now, "by": "person"}],
    )
    session.add(new)
    session.flush()
    issue.lineage = [
        *issue.lineage,
        {"event": "split_into", "other_issue_id": new.id, "at": now, "by": "person"},
    ]
    session.add(issue)
    move_units(session, unit_ids=unit_ids, issue_id=new.id, api_key_id=api_key_id, actor=actor)  # type: ignore[arg-type]
    return new


def audit_entries(session: Session, *, target_type: str, target_id: str) -> list[AuditLog]:
    return list(
        session.exec(
            select(AuditLog)
            .where(col(AuditLog.target_type) == target_type, col(AuditLog.target_id) == target_id)
            .order_by(col(AuditLog.id))
        ).all()
    )


def record_run(session: Session, *, kind: str, stats: dict[str, Any]) -> PipelineRun:
    run = PipelineRun(kind=kind, stats=stats, status="done", finished_at=utcnow())
    session.add(run)
    return run


# --- links and diagnosis ---------------------------------------------------------------------


def feedback_to_link(session: Session) -> list[Any]:
    """Processed tickets whose links have not been decided yet: rows with the fields linking
    reads (id, created_at, received_at, redacted_text, user, session, output and customer),
    not ``Feedback`` objects, which the session would otherwise track by the thousand."""
    return list(
        session.exec(
            select(
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
    """Outputs a ticket may be about: named explicitly, or of the same user or session in the
    time window. Chunked so thousands of tickets stay under driver parameter limits."""
    found: dict[int, ModelOutput] = {}
    for column, values, windowed in (
        (ModelOutput.output_id, output_ids, False),
        (ModelOutput.user_id, user_ids, True),
        (ModelOutput.session_id, session_ids, True),
    ):
        unique = sorted(set(values))
        for start in range(0, len(unique), 500):
            conditions = [col(column).in_(unique[start : start + 500])]
            if windowed:
                conditions += [col(ModelOutput.created_at) >= since,
                               col(ModelOutput.created_at) <= until]  # fmt: skip
            for output in session.exec(select(ModelOutput).where(*conditions)).all():
                found[output.id] = output  # type: ignore[index]
    return [found[k] for k in sorted(found)]


def add_links(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        statement = _insert(session, Link.__table__).on_conflict_do_nothing(
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


def unit_context(session: Session) -> dict[int, tuple[int, datetime, str | None, float | None]]:
    """unit id -> (feedback id, when the ticket was written, customer, customer value)."""
    rows = session.exec(
        select(
            Unit.id,
            Feedback.id,
            func.coalesce(Feedback.created_at, Feedback.received_at),
            Feedback.customer_id,
            Feedback.customer_value,
        ).join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
    ).all()
    return {unit_id: (fid, at, customer, value) for unit_id, fid, at, customer, value in rows}


def links_by_feedback(session: Session) -> dict[int, list[int]]:
    links: dict[int, list[int]] = {}
    for feedback_id, output_pk in session.exec(select(Link.feedback_id, Link.model_output_id)):
        links.setdefault(feedback_id, []).append(output_pk)
    return links


def all_model_outputs(session: Session) -> list[ModelOutput]:
    return list(session.exec(select(ModelOutput).order_by(col(ModelOutput.id))).all())


def corrected_units(session: Session) -> list[tuple[str, str]]:
    """(unit text, category) for every unit of an issue whose category a person set: the
    corrections ``triage train`` learns from."""
    issues = {
        issue.id: issue.category
        for issue in active_issues(session)
        if "category" in issue.human_fields and issue.category
    }
    if not issues:
        return []
    rows = session.exec(
        select(Unit.text, Membership.issue_id)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Membership.issue_id).in_(list(issues)))
        .order_by(col(Unit.id))
    ).all()
    return [(text_, issues[issue_id]) for text_, issue_id in rows]


# --- digest -------------------------------------------------------------------------------------


def feedback_time() -> Any:
    """When a ticket was written: the source's created_at, else when we received it."""
    return func.coalesce(col(Feedback.created_at), col(Feedback.received_at))


def _feedback_between(start: datetime, end: datetime) -> list[Any]:
    when = feedback_time()
    return [when >= start, when < end]


def digest_feedback_figures(session: Session, *, start: datetime, end: datetime) -> dict[str, int]:
    """Tickets written in [start, end), their distinct customers, how many are linked to a
    model output, and their units with how many of those are in no issue."""
    period = _feedback_between(start, end)
    tickets, customers = session.exec(
        select(func.count(), func.count(func.distinct(col(Feedback.customer_id)))).where(*period)
    ).one()
    linked = session.exec(
        select(func.count())
        .select_from(Feedback)
        .where(*period, exists().where(col(Link.feedback_id) == col(Feedback.id)))
    ).one()
    units, assigned = session.exec(
        select(func.count(col(Unit.id)), func.count(col(Membership.unit_id)))
        .select_from(Unit)
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .outerjoin(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(*period)
    ).one()
    return {
        "tickets": int(tickets),
        "customers": int(customers),
        "linked": int(linked),
        "units": int(units),
        "unassigned": int(units) - int(assigned),
    }


def digest_issue_volumes(session: Session, *, start: datetime, end: datetime) -> dict[int, int]:
    """Distinct tickets per issue written in [start, end); a ticket with two statements in one
    issue counts once."""
    rows = session.exec(
        select(Membership.issue_id, func.count(func.distinct(col(Unit.feedback_id))))
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(*_feedback_between(start, end))
        .group_by(col(Membership.issue_id))
    )
    return {issue_id: int(count) for issue_id, count in rows}


def digest_category_volumes(
    session: Session, *, start: datetime, end: datetime
) -> dict[str | None, int]:
    """Statements (units) in issues, per issue category, written in [start, end)."""
    rows = session.exec(
        select(Issue.category, func.count())
        .select_from(Membership)
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .join(Issue, col(Issue.id) == col(Membership.issue_id))
        .where(*_feedback_between(start, end))
        .group_by(col(Issue.category))
    )
    return {category: int(count) for category, count in rows}


def digest_issue_first_seen(session: Session) -> dict[int, datetime]:
    """When each issue's earliest ticket was written."""
    rows = session.exec(
        select(Membership.issue_id, func.min(feedback_time()))
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .group_by(col(Membership.issue_id))
    )
    return {issue_id: first for issue_id, first in rows if first is not None}


def digest_issues(session: Session) -> list[Issue]:
    """Every issue, merged ones included (corrections name them), without centroids."""
    return list(
        session.exec(select(Issue).options(defer(Issue.centroid)).order_by(col(Issue.id))).all()  # type: ignore[arg-type]
    )


def digest_linked_examples(
    session: Session, *, issue_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[ModelOutput, Link]]:
    """Model outputs linked to the issue's tickets: the period's first, surest link first."""
    tickets = (
        select(Unit.feedback_id)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Membership.issue_id) == issue_id)
    )
    when = feedback_time()
    rows = session.exec(
        select(ModelOutput, Link)
        .join(Link, col(Link.model_output_id) == col(ModelOutput.id))
        .join(Feedback, col(Feedback.id) == col(Link.feedback_id))
        .where(col(Link.feedback_id).in_(tickets), when < end)
        .order_by(
            case((when >= start, 0), else_=1),
            col(Link.confidence).desc(),
            col(Link.id),
        )
        .limit(limit * 4)
    ).all()
    found: list[tuple[ModelOutput, Link]] = []
    seen: set[int] = set()
    for output, link in rows:
        if output.id not in seen:
            seen.add(output.id)  # type: ignore[arg-type]
            found.append((output, link))
    return found[:limit]


def digest_recent_unit_texts(
    session: Session, *, issue_id: int, end: datetime, limit: int
) -> list[str]:
    """The issue's newest distinct redacted statements written before ``end``."""
    when = feedback_time()
    texts = session.exec(
        select(Unit.text)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(col(Membership.issue_id) == issue_id, when < end)
        .order_by(when.desc(), col(Unit.id))
        .limit(limit * 10)
    ).all()
    return list(dict.fromkeys(texts))[:limit]


def digest_audit_entries(session: Session, *, start: datetime, end: datetime) -> list[AuditLog]:
    """People's changes to issues in [start, end), oldest first."""
    return list(
        session.exec(
            select(AuditLog)
            .where(
                col(AuditLog.target_type) == "issue",
                col(AuditLog.at) >= start,
                col(AuditLog.at) < end,
            )
            .order_by(col(AuditLog.at), col(AuditLog.id))
        ).all()
    )


def digest_model_traffic(
    session: Session, *, start: datetime, end: datetime
) -> dict[tuple[str, str | None], int]:
    """Outputs made in [start, end) per (model, model_version)."""
    when = func.coalesce(col(ModelOutput.created_at), col(ModelOutput.received_at))
    rows = session.exec(
        select(ModelOutput.model, ModelOutput.model_version, func.count())
        .where(when >= start, when < end)
        .group_by(col(ModelOutput.model), col(ModelOutput.model_version))
    )
    return {(model, version): int(count) for model, version, count in rows}


def digest_model_complaints(
    session: Session, *, start: datetime, end: datetime
) -> dict[tuple[str, str | None], int]:
    """Distinct tickets written in [start, end) linked to an output, per (model, version)."""
    rows = session.exec(
        select(
            ModelOutput.model,
            ModelOutput.model_version,
            func.count(func.distinct(col(Link.feedback_id))),
        )
        .join(Link, col(Link.model_output_id) == col(ModelOutput.id))
        .join(Feedback, col(Feedback.id) == col(Link.feedback_id))
        .where(*_feedback_between(start, end))
        .group_by(col(ModelOutput.model), col(ModelOutput.model_version))
    )
    return {(model, version): int(count) for model, version, count in rows}


def get_digest(session: Session, *, week: str, fmt: str) -> Digest | None:
    return session.exec(
        select(Digest)
        .where(col(Digest.week) == week, col(Digest.format) == fmt)
        .execution_options(populate_existing=True)
    ).first()


def digest_summary(session: Session, *, week: str) -> dict[str, Any] | None:
    """The stored summary of a week's digest in any format, if one was generated."""
    summary = session.exec(
        select(Digest.summary).where(col(Digest.week) == week).order_by(col(Digest.id))
    ).first()
    return summary


def save_digest(
    session: Session,
    *,
    week: str,
    fmt: str,
    content: str,
    summary: dict[str, Any],
    generated_at: datetime,
    replace: bool = False,
) -> Digest:
    """Store a digest once per (week, format) and return the stored row.

    Without ``replace`` a digest already stored wins, so two processes generating the same
    week at once both end up returning the same row; with it, content and summary are
    replaced and ``delivered_at`` is kept.
    """
    values = {
        "week": week,
        "format": fmt,
        "content": content,
        "summary": summary,
        "generated_at": generated_at,
    }
    statement = _insert(session, Digest.__table__).values(**values)
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=["week", "format"],
            set_={k: values[k] for k in ("content", "summary", "generated_at")},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["week", "format"])
    session.execute(statement)
    stored = get_digest(session, week=week, fmt=fmt)
    assert stored is not None
    return stored


def claim_digest_delivery(session: Session, *, digest_id: int, at: datetime) -> bool:
    """Mark a digest delivered unless it already is; True when this caller got to deliver it."""
    result = session.execute(
        update(Digest)
        .where(col(Digest.id) == digest_id, col(Digest.delivered_at).is_(None))
        .values(delivered_at=at)
    )
    return bool(result.rowcount)


def release_digest_delivery(
    session: Session, *, digest_id: int, failed_at: datetime, error: str
) -> None:
    """Undo a claim after a failed delivery, noting when and why in the summary."""
    digest = session.get(Digest, digest_id)
    if digest is None:
        return
    digest.delivered_at = None
    digest.summary = {
        **digest.summary,
        "delivery": {"failed_at": failed_at.isoformat(), "error": error},
    }
    session.add(digest)
