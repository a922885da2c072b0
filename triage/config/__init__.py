"""Every knob of the service, in one place.

Each field reads the environment variable of the same name with the ``TRIAGE_`` prefix, e.g.
``TRIAGE_DATABASE_URL``. Stages receive the values they need as plain arguments, so they stay
testable without a Settings object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from functools import lru_cache
from typing import Any, TypeVar

from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.config.delivery import DeliverySettings
from triage.config.diagnosis import DiagnosisSettings
from triage.config.pipeline import PipelineSettings
from triage.config.service import ServiceSettings


# One class a user configures; its fields are grouped by part of the product in the modules
# beside this one, so each group reads on one screen. pydantic takes the fields of the last base
# first: listed backwards, they keep the data-flow order (service, pipeline, diagnosis, delivery).
class Settings(
    BaseSettings, DeliverySettings, DiagnosisSettings, PipelineSettings, ServiceSettings
):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")


Params = TypeVar("Params")


def defaults_of(prefix: str) -> Callable[[str], Any]:
    """``name`` -> the Settings default of ``{prefix}_{name}``: a stage's dataclass of knobs
    takes its defaults from here, so each knob has one home."""

    def default(name: str) -> Any:
        return Settings.model_fields[f"{prefix}_{name}"].default

    return default


def params_from(cls: type[Params], settings: Settings, prefix: str) -> Params:
    """``cls``, a dataclass of a stage's knobs, with each field ``f`` read from
    ``settings.{prefix}_{f}``."""
    return cls(**{f.name: getattr(settings, f"{prefix}_{f.name}") for f in fields(cls)})  # type: ignore[arg-type]


@lru_cache
def get_settings() -> Settings:
    return Settings()
