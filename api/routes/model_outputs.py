"""Logged model outputs from the ML service (ingest scope)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import IngestKey, WriteSessionDep
from api.errors import API_ERRORS
from triage import store
from triage.models import ModelOutputBatchAccepted, ModelOutputBatchCreate

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
