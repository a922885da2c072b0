"""Clustering quality and speed: our Clusterer against BERTopic's default recipe on Banking77.

    .venv/bin/python -m bench.cluster                       # full run, prints a Markdown table
    .venv/bin/python -m bench.cluster --sizes 10000 --repeats 1 --no-baseline   # quick

``run(...)`` returns the same figures as a dict for ``make bench`` and the README.

Both recipes cluster the same embeddings in the same process. Every text left unassigned counts
as its own singleton cluster, so leaving texts out is never free. The UMAP recipe is warmed up
once on a few hundred texts first (its numba JIT compile is not counted against it), and both run
with the same BLAS/OpenMP thread limit. The scale runs resample the Banking77 embeddings with a
small Gaussian perturbation (renormalised), so they also have intents to score against.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from triage.cluster import Clusterer, ClusterParams
from triage.embed import SentenceTransformerEmbedder, load_pin

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "banking77" / "test.csv"
CACHE = ROOT / ".cache"

BAR = {"ari": 0.50, "nmi": 0.80, "unassigned": 0.05, "speedup": 10.0, "seconds_100k": 60.0}


def load_banking77(path: Path = DATA) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows], [row["category"] for row in rows]


def embed_cached(texts: Sequence[str], *, cache_dir: Path = CACHE) -> np.ndarray:
    """Embeddings of ``texts``, cached under the pinned model hash and the texts' hash; the
    embedder refuses any other weights, so the pin identifies the vectors."""
    texts_hash = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    path = cache_dir / f"banking77-{load_pin()['sha256'][:16]}-{texts_hash[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = SentenceTransformerEmbedder().embed(list(texts))
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def score(labels: np.ndarray, truth: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels).copy()
    unassigned = labels < 0
    labels[unassigned] = labels.max(initial=-1) + 1 + np.arange(unassigned.sum())
    return {
        "ari": float(adjusted_rand_score(truth, labels)),
        "nmi": float(normalized_mutual_info_score(truth, labels)),
        "unassigned": float(unassigned.mean()),
        "clusters": len(np.unique(labels[~unassigned])),
    }


def ours(vectors: np.ndarray, params: ClusterParams | None = None) -> np.ndarray:
    return Clusterer(params).fit(vectors).labels


def umap_recipe(vectors: np.ndarray) -> np.ndarray:
    """BERTopic's defaults (bertopic/_bertopic.py): UMAP to 5 dims, then HDBSCAN."""
    try:
        import umap
    except ImportError as e:
        raise SystemExit("The baseline needs umap-learn: pip install umap-learn==0.5.12") from e
    import hdbscan

    reduced = umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine")
    hdb = hdbscan.HDBSCAN(
        min_cluster_size=10,
        metric="euclidean",
        cluster_selection_method="eom",
        prediction_data=True,
    )
    return hdb.fit(reduced.fit_transform(vectors)).labels_


def timed(recipe, vectors: np.ndarray, repeats: int, threads: int) -> tuple[np.ndarray, float]:
    """Labels of the last run and the fastest of ``repeats`` wall times (the machine is
    shared; the minimum is the least disturbed run)."""
    from threadpoolctl import threadpool_limits

    times = []
    for _ in range(repeats):
        with threadpool_limits(limits=threads):
            start = time.perf_counter()
            labels = recipe(vectors)
            times.append(time.perf_counter() - start)
    return labels, min(times)


def resample(
    vectors: np.ndarray, n: int, *, noise: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """n rows drawn with replacement, each moved by Gaussian noise of expected norm ``noise``
    and renormalised; returns (vectors, index of the source row)."""
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(vectors), n)
    moved = vectors[source] + rng.normal(
        0, noise / np.sqrt(vectors.shape[1]), (n, vectors.shape[1])
    )
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    return moved.astype(np.float32), source


def run(
    *,
    data: Path = DATA,
    sizes: Sequence[int] = (10_000, 50_000, 100_000),
    repeats: int = 2,
    baseline: bool = True,
    params: ClusterParams | None = None,
    log=print,
) -> dict[str, Any]:
    params = params or ClusterParams()
    texts, intents = load_banking77(data)
    start = time.perf_counter()
    vectors = embed_cached(texts)
    log(f"embeddings: {vectors.shape} in {time.perf_counter() - start:.1f}s (cached in .cache/)")

    results: dict[str, Any] = {
        "dataset": str(data),
        "units": len(texts),
        "intents": len(set(intents)),
    }
    labels, seconds = timed(lambda v: ours(v, params), vectors, repeats, params.blas_threads)
    results["ours"] = {**score(labels, intents), "seconds": seconds}
    if baseline:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # UMAP warns about n_jobs, sklearn about renames
            umap_recipe(vectors[:500])  # JIT warm-up, not timed
            labels, seconds = timed(umap_recipe, vectors, repeats, params.blas_threads)
        results["umap_hdbscan"] = {**score(labels, intents), "seconds": seconds}
        results["speedup"] = seconds / results["ours"]["seconds"]

    results["scale"] = []
    truth = np.asarray(intents)
    for n in sizes:
        moved, source = resample(vectors, n)
        labels, seconds = timed(lambda v: ours(v, params), moved, 1, params.blas_threads)
        results["scale"].append({"units": n, "seconds": seconds, **score(labels, truth[source])})
        log(f"  {n:>7,} units: {seconds:.1f}s")
    results["passed"] = _check(results)
    return results


def _check(results: dict[str, Any]) -> dict[str, bool]:
    mine = results["ours"]
    checks = {
        "ari": mine["ari"] >= BAR["ari"],
        "nmi": mine["nmi"] >= BAR["nmi"],
        "unassigned": mine["unassigned"] <= BAR["unassigned"],
    }
    if "speedup" in results:
        checks["speedup"] = results["speedup"] >= BAR["speedup"]
    big = [row for row in results["scale"] if row["units"] >= 100_000]
    if big:
        checks["seconds_100k"] = all(row["seconds"] < BAR["seconds_100k"] for row in big)
    return checks


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Banking77 test: {results['units']:,} queries, {results['intents']} intents",
        "",
        "| recipe | ARI | NMI | unassigned | clusters | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"ours": "triage Clusterer", "umap_hdbscan": "BERTopic default (UMAP + HDBSCAN)"}
    for key, name in names.items():
        if key in results:
            r = results[key]
            lines.append(
                f"| {name} | {r['ari']:.3f} | {r['nmi']:.3f} | {r['unassigned']:.1%} "
                f"| {r['clusters']} | {r['seconds']:.2f} |"
            )
    if "speedup" in results:
        lines += ["", f"speed: triage is {results['speedup']:.1f}x faster"]
    if results["scale"]:
        lines += [
            "",
            "| units (resampled + noise) | seconds | ARI | NMI | unassigned |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['units']:,} | {r['seconds']:.1f} | {r['ari']:.3f} | {r['nmi']:.3f} "
            f"| {r['unassigned']:.1%} |"
            for r in results["scale"]
        ]
    bar = ", ".join(f"{k} {'ok' if ok else 'FAILED'}" for k, ok in results["passed"].items())
    lines += ["", f"bar: {bar}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000, 100_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true", help="skip the UMAP recipe")
    args = parser.parse_args(argv)
    results = run(
        data=args.data, sizes=args.sizes, repeats=args.repeats, baseline=not args.no_baseline
    )
    print(table(results))
    return 0 if all(results["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
