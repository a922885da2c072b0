"""Webhooks that support tools send tickets to, each verified by its sender's signature instead of
an API key (Zendesk and Intercom cannot send our bearer header). README, Integrations, says what
to paste where on the other side.

Order matters: the secret is checked to be configured (404), then the signature over the raw
body (401), and only then is the body parsed, so an unsigned request costs no JSON parsing and
stores nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr, ValidationError
from sqlmodel import Session

from api.deps import RawBody, SettingsDep, WriteSessionDep
from api.errors import ApiError, error_responses
from api.routes.feedback import accept_feedback
from triage import store
from triage.errors import IntegrationNotConfiguredError
from triage.integrations import intercom, zendesk
from triage.integrations.signatures import (
    INTERCOM_SIGNATURE_HEADER,
    TRIAGE_SIGNATURE_HEADER,
    ZENDESK_SIGNATURE_HEADER,
    ZENDESK_TIMESTAMP_HEADER,
    verify_intercom,
    verify_triage,
    verify_zendesk,
)
from triage.integrations.tickets import Tickets
from triage.models import (
    FeedbackAccepted,
    FeedbackBatchAccepted,
    FeedbackBatchCreate,
    FeedbackCreate,
    WebhookAccepted,
    refuse_if_strict,
)

router = APIRouter(
    prefix="/v1/integrations",
    tags=["integrations"],
    responses=error_responses(400, 401, 404, 409, 413, 422, 503),
)

Strict = Annotated[
    bool, Query(description="Refuse unknown fields with a 422 unknown_fields; nothing stored.")
]

# Answered with 200, not /v1/feedback's 202: Intercom documents a 200 as the sign of delivery.
OK = 200


def _secret(value: SecretStr | None, tool: str, variable: str) -> str:
    if value is None:
        raise IntegrationNotConfiguredError(
            f"{tool} webhooks are off on this server: set {variable} to the secret shown on the "
            f"{tool} side and restart (README, Integrations)."
        )
    return value.get_secret_value()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "malformed_json", "The body is not valid JSON (or not UTF-8).") from e


def _accept(session: Session, tickets: Tickets, *, strict: bool) -> WebhookAccepted:
    refuse_if_strict(strict, tickets.warnings)
    accepted: list[FeedbackAccepted] = []
    if tickets.items:
        accepted = store.add_feedback(session, items=tickets.items)
        session.commit()
    return WebhookAccepted(items=accepted, warnings=tickets.warnings, ignored=tickets.ignored)


@router.post(
    "/zendesk",
    status_code=OK,
    response_model=WebhookAccepted,
    summary="A Zendesk webhook: a ticket event or a trigger body",
    description=(
        "Event subscriptions (`zen:event-type:ticket.created`, `ticket.comment_added`) and "
        'trigger or automation bodies (`{"ticket": {...}}`, README). Verified by '
        f"`{ZENDESK_SIGNATURE_HEADER}` over `{ZENDESK_TIMESTAMP_HEADER}` + the body with "
        "`TRIAGE_ZENDESK_WEBHOOK_SECRET`; a bad or stale signature is a 401 and nothing is "
        "stored. Idempotent per ticket (and comment): Zendesk's retries store nothing new. "
        "Events with no customer text answer 200 with `ignored` saying why."
    ),
)
def zendesk_webhook(
    request: Request,
    body: RawBody,
    settings: SettingsDep,
    session: WriteSessionDep,
    strict: Strict = False,
) -> WebhookAccepted:
    verify_zendesk(
        secret=_secret(settings.zendesk_webhook_secret, "Zendesk", "TRIAGE_ZENDESK_WEBHOOK_SECRET"),
        body=body,
        signature=request.headers.get(ZENDESK_SIGNATURE_HEADER),
        timestamp=request.headers.get(ZENDESK_TIMESTAMP_HEADER),
        max_age=settings.webhook_max_age_seconds,
    )
    return _accept(session, zendesk.from_payload(_json(body)), strict=strict)


@router.post(
    "/intercom",
    status_code=OK,
    response_model=WebhookAccepted,
    summary="An Intercom webhook notification",
    description=(
        "Topics `conversation.user.created` and `conversation.user.replied`; `ping` and other "
        f"topics answer 200 with `ignored`. Verified by `{INTERCOM_SIGNATURE_HEADER}` "
        "(`sha1=` + hex HMAC-SHA1 of the body) with `TRIAGE_INTERCOM_CLIENT_SECRET`; a bad "
        "signature is a 401 and nothing is stored."
    ),
)
def intercom_webhook(
    request: Request,
    body: RawBody,
    settings: SettingsDep,
    session: WriteSessionDep,
    strict: Strict = False,
) -> WebhookAccepted:
    verify_intercom(
        secret=_secret(
            settings.intercom_client_secret, "Intercom", "TRIAGE_INTERCOM_CLIENT_SECRET"
        ),
        body=body,
        signature=request.headers.get(INTERCOM_SIGNATURE_HEADER),
    )
    return _accept(session, intercom.from_payload(_json(body)), strict=strict)


@router.post(
    "/webhook",
    status_code=OK,
    response_model=FeedbackAccepted | FeedbackBatchAccepted,
    summary="Any tool: the /v1/feedback body, signed instead of a bearer key",
    description=(
        "For tools that can sign but cannot send an Authorization header. The body is "
        '/v1/feedback\'s (one ticket, or `{"items": [...]}`); '
        f'`{TRIAGE_SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` '
        "with `TRIAGE_INGEST_WEBHOOK_SECRET`, the scheme the digest webhook signs with."
    ),
)
def generic_webhook(
    request: Request,
    body: RawBody,
    settings: SettingsDep,
    session: WriteSessionDep,
    strict: Strict = False,
) -> FeedbackAccepted | FeedbackBatchAccepted:
    verify_triage(
        secret=_secret(settings.ingest_webhook_secret, "Signed", "TRIAGE_INGEST_WEBHOOK_SECRET"),
        body=body,
        signature=request.headers.get(TRIAGE_SIGNATURE_HEADER),
        max_age=settings.webhook_max_age_seconds,
    )
    data = _json(body)
    model = FeedbackBatchCreate if isinstance(data, dict) and "items" in data else FeedbackCreate
    try:
        payload = model.model_validate(data)
    except ValidationError as e:
        # The API's own 422 shape, fields named as in /v1/feedback.
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        ) from e
    return accept_feedback(
        session, payload, strict=strict, max_metadata_bytes=settings.max_metadata_bytes
    )
