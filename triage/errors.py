"""Every error the library raises on purpose.

Each carries a stable ``code`` (the API returns it as ``error.code``) and a message that tells the
user what to do. Wrap lower-level exceptions with ``raise XError(...) from e``.
"""

from __future__ import annotations

from typing import Any


class TriageError(Exception):
    code = "triage_error"
    http_status = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(TriageError):
    code = "config_error"


class SchemaOutdatedError(TriageError):
    code = "schema_outdated"
    http_status = 503


class DatabaseUnavailableError(TriageError):
    code = "database_unavailable"
    http_status = 503


class ModelIntegrityError(TriageError):
    """The embedding model on disk is not the one pinned in models/."""

    code = "model_integrity"


class ModelNotFoundError(TriageError):
    code = "model_not_found"


class ConflictError(TriageError):
    """An idempotency key was reused with different content."""

    code = "conflict"
    http_status = 409


class NotFoundError(TriageError):
    code = "not_found"
    http_status = 404


class InvalidInputError(TriageError):
    code = "invalid_input"
    http_status = 422


class StageError(TriageError):
    """A pipeline stage could not handle one feedback item; the item is marked failed."""

    code = "stage_failed"


class DigestDeliveryError(TriageError):
    """The digest webhook did not accept the summary after every retry."""

    code = "digest_delivery_failed"
    http_status = 502
