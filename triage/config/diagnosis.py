"""Link, categorize and rank: how an issue gets its cause and its priority."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DiagnosisSettings(BaseModel):
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
    categorize_reaction_prior: float = Field(
        default=0.69,
        ge=0,
        description="Added to the model's log-odds of a ticket written within 10 minutes of the "
        "answer it is linked to whose words name no other category's cue (0.69: the odds "
        "doubled); 0 turns it off. Set by hand, not learned: see the README.",
    )
    categorize_issue_weight: float = Field(
        default=0.5,
        ge=0,
        le=0.5,
        description="How much the other tickets of a ticket's issues weigh in its category "
        "(their mean probabilities against its own); at most 0.5, so its own evidence counts "
        "at least as much; 0 turns it off. Chosen by leave-one-product-out on feedback-dev "
        "through the user path (make eval): see the README.",
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
