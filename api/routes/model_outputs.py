"""Logged model outputs from the ML service (ingest scope to store, read scope to read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import IngestKey, ReadKey, RedactDep, SessionDep, WriteSessionDep
from api.errors import API_ERRORS
from triage import store
from triage.models import (
    MODEL_OUTPUT_REDACTED_ON_READ,
    ModelOutputBatchAccepted,
    ModelOutputBatchCreate,
    ModelOutputPublic,
)

router = APIRouter(prefix="/v1/model-outputs", tags=["model outputs"], responses=API_ERRORS)


@router.post(
    "",
    status_code=202,
    response_model=ModelOutputBatchAccepted,
    summary="Store up to 1,000 logged outputs",
    description="Idempotent per output_id; the same id with different content is a 409.",
)
def create_model_outputs(
    payload: ModelOutputBatchCreate, session: WriteSessionDep, _key: IngestKey
) -> ModelOutputBatchAccepted:
    accepted = store.add_model_outputs(session, items=payload.items)
    session.commit()
    return ModelOutputBatchAccepted(items=accepted)


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
