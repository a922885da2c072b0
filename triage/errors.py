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


class SignatureError(TriageError):
    """A webhook's signature is missing, wrong or too old; nothing was stored."""

    code = "invalid_signature"
    http_status = 401


class IntegrationNotConfiguredError(TriageError):
    """A webhook endpoint whose secret is unset. 404, not 503: senders retry a 503, and the
    endpoint stays off until an operator sets the secret, so there is nothing to retry."""

    code = "integration_not_configured"
    http_status = 404


class UnknownFieldsError(TriageError):
    """``?strict=true`` and the body has fields we do not read (a typo, most often)."""

    code = "unknown_fields"
    http_status = 422


class TrackerNotConfiguredError(TriageError):
    """An export named a tracker whose settings are missing."""

    code = "tracker_not_configured"
    http_status = 422


class TrackerError(TriageError):
    """The issue tracker refused the ticket or could not be reached; nothing was stored."""

    code = "tracker_failed"
    http_status = 502
