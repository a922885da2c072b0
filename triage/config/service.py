"""Storage, the API, security and the worker: the settings of the service around the pipeline."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator


class ServiceSettings(BaseModel):
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
    max_metadata_bytes: int = Field(
        default=16 * 1024,
        ge=2,
        description="Largest `metadata` of one ticket, serialised as compact UTF-8 JSON; larger "
        "is a 422 (an invalid item in a batch). Every read of a ticket carries it.",
    )
    api_key_touch_seconds: float = Field(
        default=60.0, ge=0, description="How often a key's last_used_at is refreshed."
    )

    # --- security ---
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests a minute each API key may make on average, per API process; "
        "0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        default=120,
        ge=1,
        description="Requests a key may make at once before the per-minute rate applies.",
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description="Failed authentications a client address may make a minute, per API "
        "process, before it gets 429s; 0 turns this off. Each unknown key costs a database "
        "lookup, and keys must not be guessable at that speed.",
    )
    auth_failures_burst: int = Field(
        default=10, ge=1, description="Failed authentications allowed at once, per address."
    )
    ui_secret: SecretStr | None = Field(
        default=None,
        description="Signs the web app's session cookies. Unset: a random one per process, so "
        "a restart signs everyone out; set it when several API processes serve /ui/.",
    )
    api_threads: int = Field(
        default=8,
        ge=1,
        description="Requests the API handles at once (threads for its database calls); more "
        "wait their turn. With AnyIO's default of 40, a 2-core server at its limit fell behind "
        "for good: threads fighting over the GIL cost more CPU than they saved (README, "
        "Ingestion under load).",
    )

    # --- worker ---
    worker_batch_size: int = Field(default=64, ge=1, description="Feedback items claimed at once.")
    worker_poll_seconds: float = Field(default=2.0, gt=0)
    worker_refresh_seconds: float = Field(
        default=60.0, gt=0, description="How often the in-process worker refreshes issues."
    )

    @field_validator("ui_secret", mode="before")
    @classmethod
    def _blank_ui_secret_is_unset(cls, value: object) -> object:
        # A blank variable means "make one per process", never an empty key anyone can sign with.
        return None if value == "" else value
