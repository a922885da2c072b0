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
    api_key_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long an API process trusts a key it has looked up. A key revoked in "
        "the web app stops working at once; one revoked by `triage keys revoke` or another API "
        "process stops within this many seconds. 0 looks the key up on every request.",
    )
    api_db_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for one of the API's database connections (one "
        "per TRIAGE_API_THREADS, plus 4 spare) while all are busy; then it is answered 503 "
        "`server_busy` with Retry-After.",
    )

    # --- security ---
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests a minute each API key may make on average: across every API "
        "process when TRIAGE_REDIS_URL is set, else per API process; 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        default=120,
        ge=1,
        description="Requests a key may make at once before the per-minute rate applies.",
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description="Failed authentications a client address may make a minute (across every "
        "API process when TRIAGE_REDIS_URL is set, else per process) before it gets 429s; 0 "
        "turns this off. Each unknown key costs a database lookup, and keys must not be "
        "guessable at that speed.",
    )
    auth_failures_burst: int = Field(
        default=10, ge=1, description="Failed authentications allowed at once, per address."
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="redis://[:password@]host:port/db. Set, the rate limits above are shared by "
        "every API process through it (a token bucket per key, updated atomically by a Lua "
        "script); unset, each process keeps its own. While Redis cannot be reached, each process "
        "falls back to its own limits and logs a warning.",
    )
    redis_key_prefix: str = Field(
        default="triage",
        min_length=1,
        description="Prefix of every Redis key triage writes, so deployments can share a Redis.",
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

    # --- retention ---
    output_retention_days: int = Field(
        default=90,
        ge=0,
        description="Model outputs linked to no ticket are deleted by `triage db prune` (and by "
        "the worker, at most once a day) once both their created_at and their arrival are this "
        "many days old; linked outputs stay as long as their tickets. 0 keeps everything.",
    )

    @field_validator("ui_secret", "redis_url", mode="before")
    @classmethod
    def _blank_ui_secret_is_unset(cls, value: object) -> object:
        # A blank variable means "make one per process", never an empty key anyone can sign
        # with; a blank TRIAGE_REDIS_URL means no Redis.
        return None if value == "" else value
