"""The digest, issue trackers, chat and inbound webhooks: what goes out and comes in."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


class DeliverySettings(BaseModel):
    # --- digest ---
    digest_top_issues: int = Field(default=10, ge=1, le=100, description="Issues in the top list.")
    digest_weeks: int = Field(
        default=8, ge=2, le=52, description="Weeks in the sparklines and the category-mix chart."
    )
    digest_quotes: int = Field(default=3, ge=0, le=5, description="Quotes per top issue.")
    digest_evidence: int = Field(default=3, ge=0, le=10, description="Evidence lines per issue.")
    digest_examples: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Linked model outputs shown per top issue, their inputs and outputs "
        "redacted like tickets; 0 leaves them out of the digest.",
    )
    digest_excerpt_chars: int = Field(
        default=220, ge=40, description="Quotes, inputs and outputs are shortened to this."
    )
    digest_growing_min_change: float = Field(
        default=0.5, ge=0, description="Relative change over the trailing mean to count as growing."
    )
    digest_growing_min_count: int = Field(
        default=3, ge=1, description="Items this week an issue needs to count as growing."
    )
    digest_weekday: int = Field(
        default=0, ge=0, le=6, description="Day the worker makes the digest (0 = Monday), UTC."
    )
    digest_hour: int = Field(default=8, ge=0, le=23, description="Hour (UTC) on that day.")
    digest_dir: str | None = Field(
        default=None, description="Folder the worker also writes each digest file to."
    )
    digest_base_url: str | None = Field(
        default=None,
        description="Public URL of this API, e.g. https://triage.example.com; the webhook's link.",
    )
    digest_webhook_url: str | None = Field(
        default=None, description="Receives a JSON summary of each scheduled digest."
    )
    digest_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook delivery (X-Triage-Signature, HMAC-SHA256); the worker "
        "posts nothing without it. A long random string, e.g. `openssl rand -hex 32`.",
    )
    digest_webhook_attempts: int = Field(default=5, ge=1, le=20)
    digest_webhook_backoff_seconds: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles on each attempt."
    )
    digest_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    digest_retry_minutes: float = Field(
        default=30.0, ge=0, description="Pause after a failed delivery before the worker retries."
    )

    @field_validator("digest_webhook_secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        # A blank variable (an empty line in .env) must read as "no secret", which the worker
        # reports, not as an empty HMAC key that anyone can sign with.
        return None if value == "" else value

    # --- issue trackers (`triage issues export`, POST /v1/issues/{id}/export) and chat ---
    github_api_url: str = Field(
        default="https://api.github.com", description="GitHub's REST API; GHE: https://HOST/api/v3."
    )
    github_repo: str | None = Field(default=None, description="owner/name that receives issues.")
    github_token: SecretStr | None = Field(
        default=None, description="Fine-grained token with Issues: read and write on that repo."
    )
    jira_api_url: str | None = Field(
        default=None, description="Your Jira Cloud site, e.g. https://acme.atlassian.net."
    )
    jira_email: str | None = Field(default=None, description="The Atlassian account's e-mail.")
    jira_token: SecretStr | None = Field(default=None, description="That account's API token.")
    jira_project_key: str | None = Field(default=None, description="Project key, e.g. ENG.")
    jira_issue_type: str = Field(default="Task", description="Issue type name in that project.")
    linear_api_url: str = Field(default="https://api.linear.app/graphql")
    linear_token: SecretStr | None = Field(
        default=None, description="Personal API key (lin_api_...) or an OAuth access token."
    )
    linear_team_id: str | None = Field(default=None, description="The team's UUID.")
    tracker_timeout_seconds: float = Field(default=15.0, gt=0)
    slack_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack incoming webhook; the scheduled digest is also posted there. Its "
        "path is its secret.",
    )

    @field_validator(
        "github_repo", "github_token", "jira_api_url", "jira_email", "jira_token",
        "jira_project_key", "linear_token", "linear_team_id", "slack_webhook_url",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty line in .env means "not configured", which the export reports by name.
        return None if isinstance(value, str) and not value.strip() else value

    # --- inbound webhooks from support tools (README, Integrations) ---
    zendesk_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The Zendesk webhook's signing secret; /v1/integrations/zendesk answers 404 "
        "integration_not_configured without it.",
    )
    intercom_client_secret: SecretStr | None = Field(
        default=None,
        description="The Intercom app's client secret, which signs its webhooks; "
        "/v1/integrations/intercom answers 404 integration_not_configured without it.",
    )
    ingest_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Checks X-Triage-Signature on /v1/integrations/webhook, the generic signed "
        "webhook; it answers 404 integration_not_configured without it.",
    )
    webhook_max_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A signed webhook whose timestamp is further than this from the server's "
        "clock is refused (401), so a captured request cannot be replayed later.",
    )

    @field_validator(
        "zendesk_webhook_secret", "intercom_client_secret", "ingest_webhook_secret", mode="before"
    )
    @classmethod
    def _blank_webhook_secret_is_unset(cls, value: object) -> object:
        # An empty line in .env means "off" (404), never an empty HMAC key anyone can sign with.
        return None if isinstance(value, str) and not value.strip() else value
