"""API keys: only a hash of each secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import Session, col, select

from triage.errors import InvalidInputError, NotFoundError
from triage.models import ApiKey, Scope, utcnow

KEY_PREFIX = "trg_"


def hash_key(secret: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 is enough; a slow KDF protects guessable
    # passwords, which these are not.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, scope: Scope, name: str = "", sources: Sequence[str] = ()
) -> tuple[ApiKey, str]:
    """Returns the stored key and its secret; the secret is not kept anywhere. ``sources``
    binds an ingest key to the sources it may write; none leaves it free to write any."""
    if sources and scope is not Scope.ingest:
        raise InvalidInputError(
            f"Only ingest keys are bound to sources; this key's scope is '{scope.value}'."
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        scope=scope.value,
        prefix=secret[:10],
        key_hash=hash_key(secret),
        sources=sorted(set(sources)) or None,
    )
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
