"""Clustering at every size for ``make eval``: triage's Clusterer with the settings' parameters
against BERTopic's default recipe (bench.cluster.umap_recipe) on the same embeddings, in the same
run, on Banking77 test, Banking77 train and HWU64. Unassigned texts count as singletons
(bench.cluster.score).

Our figures are the mean over ``SEEDS`` seeds (``cluster_random_state``: which units HDBSCAN
sees above ``cluster_max_units``, and PCA's), each seed's kept in the results: on Banking77
train one seed's NMI ranged from 0.798 to 0.806 across eight seeds (2026-12-07), wider than the
differences the bars are about. BERTopic's recipe runs once; UMAP is unseeded, as BERTopic's
default is.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.cluster import resample, score, timed, umap_recipe

SEEDS = 5
FIGURES = ("ari", "nmi", "unassigned", "clusters", "seconds")
# Small samples, as a team's first few hundred tickets are: (intents, texts of each), drawn
# DRAWS times from each set below with fixed seeds; a mean over the draws.
SMALL = ((12, 25), (30, 10))
DRAWS = 3
SMALL_SETS = ("Banking77 test", "HWU64")
SETS = {
    "Banking77 test": ("banking77", "test.csv"),
    "Banking77 train": ("banking77", "train.csv"),
    "HWU64": ("hwu64", "test.csv"),
}


def load_csv(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["category"] for row in rows]


def embed_cached(texts: list[str], embedder: Any, *, name: str, cache_dir: Path) -> np.ndarray:
    """The embedder's vectors of ``texts``, cached under its model id and the texts' hash."""
    texts_hash = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder.model_id)
    path = cache_dir / f"{name}-{model}-{texts_hash[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder.embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def clustering(
    data: Path,
    embedder: Any,
    *,
    cache_dir: Path,
    baseline: bool = True,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from triage.cluster import Clusterer, ClusterParams
    from triage.config import Settings

    params = ClusterParams.from_settings(Settings())
    results: dict[str, Any] = {"embedder": embedder.model_id, "sets": {}, "small": {}}
    # Warm-up, not timed: numba compiles UMAP's exact (< 4,096 points) and approximate
    # neighbour searches on first use, and both recipes import their libraries.
    warm = False
    for label, (folder, file) in SETS.items():
        started = time.perf_counter()
        texts, truth = load_csv(data / folder / file)
        slug = f"{folder}-{Path(file).stem}"
        log(f"[clustering {label}] embedding {len(texts):,} texts (cached in {cache_dir})")
        vectors = embed_cached(texts, embedder, name=slug, cache_dir=cache_dir)
        if not warm:
            log("[clustering] warming both recipes up (not timed)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # UMAP warns about n_jobs, sklearn about renames
                Clusterer(params).fit(vectors[:500])
                if baseline:
                    umap_recipe(vectors[:500])
                    umap_recipe(resample(vectors, 5000)[0])
            warm = True
        log(f"[clustering {label}] triage Clusterer, {SEEDS} seeds")
        runs = []
        for seed in range(SEEDS):
            seeded = dataclasses.replace(params, random_state=seed)
            labels, seconds = timed(
                lambda v, p=seeded: Clusterer(p).fit(v).labels, vectors, 1, params.blas_threads
            )
            runs.append({**score(labels, truth), "seconds": seconds, "seed": seed})
        row: dict[str, Any] = {
            "texts": len(texts),
            "intents": len(set(truth)),
            "ours": {
                **{key: float(np.mean([r[key] for r in runs])) for key in FIGURES},
                "seeds": runs,
            },
        }
        if baseline:
            log(f"[clustering {label}] BERTopic default (UMAP + HDBSCAN)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # UMAP warns about n_jobs, sklearn about renames
                labels, seconds = timed(umap_recipe, vectors, 1, params.blas_threads)
            row["bertopic"] = {**score(labels, truth), "seconds": seconds}
        row["seconds"] = time.perf_counter() - started
        results["sets"][label] = row
        if label in SMALL_SETS:
            log(f"[clustering {label}] small samples {SMALL}, {DRAWS} draws each")
            for intents, each in SMALL:
                results["small"][f"{label}, {intents} x {each}"] = small_samples(
                    vectors, truth, intents=intents, each=each, params=params, baseline=baseline
                )
    return results


def draw(truth: list[str], *, intents: int, each: int, seed: int) -> np.ndarray:
    """Rows of ``each`` texts of each of ``intents`` intents drawn at random (``seed``), from
    the intents with at least ``each`` texts."""
    rng = np.random.default_rng(seed)
    labels = np.array(truth)
    names = sorted(n for n in set(truth) if np.sum(labels == n) >= each)
    chosen = rng.choice(names, size=min(intents, len(names)), replace=False)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == n), size=each, replace=False) for n in chosen]
    )


def small_samples(
    vectors: np.ndarray,
    truth: list[str],
    *,
    intents: int,
    each: int,
    params: Any,
    baseline: bool,
) -> dict[str, Any]:
    """Both recipes on ``DRAWS`` small samples (``draw``): each figure's mean over the draws."""
    from triage.cluster import Clusterer

    runs: dict[str, list[dict[str, float]]] = {"ours": [], "bertopic": []}
    for seed in range(DRAWS):
        rows = draw(truth, intents=intents, each=each, seed=seed)
        sample, labels = vectors[rows], [truth[r] for r in rows]
        runs["ours"].append(score(Clusterer(params).fit(sample).labels, labels))
        if baseline:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # UMAP warns about n_jobs
                runs["bertopic"].append(score(umap_recipe(sample), labels))
    result: dict[str, Any] = {"texts": intents * each, "intents": intents, "draws": DRAWS}
    for recipe, found in runs.items():
        if found:
            result[recipe] = {k: float(np.mean([r[k] for r in found])) for k in found[0]}
    return result
