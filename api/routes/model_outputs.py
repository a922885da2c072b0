"""Logged model outputs from the ML service (ingest scope to store, read scope to read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.deps import IngestKey, ReadKey, RedactDep, SessionDep, WriteSessionDep
from api.errors import API_ERRORS
from triage import store
from triage.models import (
    MAX_BATCH_ITEMS,
    MODEL_OUTPUT_REDACTED_ON_READ,
    ModelOutputAccepted,
    ModelOutputBatchAccepted,
    ModelOutputBatchCreate,
    ModelOutputPayload,
    ModelOutputPublic,
    refuse_if_strict,
    unknown_field_warnings,
)

router = APIRouter(prefix="/v1/model-outputs", tags=["model outputs"], responses=API_ERRORS)


@router.post(
    "",
    status_code=202,
    response_model=ModelOutputAccepted | ModelOutputBatchAccepted,
    summary="Store one logged output, or a batch of up to 1,000",
    description=(
        "Idempotent per output_id; the same id with different content is a 409 and nothing "
        f'is stored. A batch is `{{"items": [...]}}` with at most {MAX_BATCH_ITEMS} outputs. '
        "Fields the API does not know are listed in `warnings`; with `?strict=true` they are "
        "a 422 `unknown_fields` and nothing is stored. Numeric ids are stored as text."
    ),
)
def create_model_outputs(
    payload: Annotated[ModelOutputPayload, Body()],
    session: WriteSessionDep,
    _key: IngestKey,
    strict: Annotated[bool, Query(description="Refuse unknown fields with a 422.")] = False,
) -> ModelOutputAccepted | ModelOutputBatchAccepted:
    if isinstance(payload, ModelOutputBatchCreate):
        items, outer = payload.items, unknown_field_warnings(payload)
        warnings = [
            unknown_field_warnings(item, prefix=f"items.{index}.")
            for index, item in enumerate(items)
        ]
    else:
        items, outer, warnings = [payload], [], [unknown_field_warnings(payload)]
    refuse_if_strict(strict, outer + [w for found in warnings for w in found])
    accepted = store.add_model_outputs(session, items=items)
    session.commit()
    answers = [
        answer.model_copy(update={"warnings": found})
        for answer, found in zip(accepted, warnings, strict=True)
    ]
    if isinstance(payload, ModelOutputBatchCreate):
        return ModelOutputBatchAccepted(items=answers, warnings=outer)
    return answers[0]


@router.get(
    "/{output_id}",
    response_model=ModelOutputPublic,
    summary="One logged output",
    description="By output_id (a span id, in hex, for outputs from POST /v1/traces); what came "
    "from outside is shown redacted.",
)
def get_model_output(
    output_id: Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00]*$")],
    session: SessionDep,
    _key: ReadKey,
    redact: RedactDep,
) -> ModelOutputPublic:
    output = store.get_model_output(session, output_id=output_id)
    row = {**output.model_dump(exclude={"meta"}), "metadata": output.meta}
    shown = redact([{name: row[name] for name in MODEL_OUTPUT_REDACTED_ON_READ}])[0]
    return ModelOutputPublic.model_validate({**row, **shown})
