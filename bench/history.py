"""Clustering quality on our own feedback history: 3,445 tickets from 33 known issues.

    .venv/bin/python -m bench.history              # our Clusterer
    .venv/bin/python -m bench.history --baseline   # and BERTopic's default recipe beside it

``run(...)`` returns the figures as a dict. Banking77 (``bench/cluster.py``) has 77 fine-grained
intents of ~40 short queries each; the history has broad issues of ~100 tickets each, phrased many
ways, with greetings, typos and second topics. A recipe has to be good on both.

The tickets go through the pipeline's own preprocessing (redaction, unit splitting) and embedder;
the unit vectors are cached in ``.cache/`` under the pinned model hash and the unit texts' hash.
Scoring is per ticket against ``fixtures/history/truth.jsonl``: a ticket's issue is the cluster
most of its units are in (ties to the lower label), and a ticket with no unit in any cluster
counts as its own singleton, so leaving tickets out is never free.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.cluster import score, umap_recipe
from triage.cluster import Clusterer, ClusterParams
from triage.embed import SentenceTransformerEmbedder, load_pin

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "fixtures" / "history"
CACHE = ROOT / ".cache"


def load_history(folder: Path = HISTORY) -> tuple[list[str], list[str]]:
    """(ticket texts, true issue keys), in the order of ``feedback.jsonl``."""

    def rows(name: str) -> list[dict[str, Any]]:
        with (folder / name).open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    truth = {(row["source"], row["external_id"]): row["issue"] for row in rows("truth.jsonl")}
    tickets = rows("feedback.jsonl")
    return [t["text"] for t in tickets], [truth[t["source"], t["external_id"]] for t in tickets]


def units_of(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Units as the pipeline makes them: statements, then neighbours that are about the same
    thing joined on their embeddings. Returns unit texts, their vectors and the ticket index
    of each unit."""
    from triage.config import Settings
    from triage.preprocess import Preprocessor, topic_units

    settings = Settings()
    processed = Preprocessor.from_settings(settings).process(texts)
    per_ticket, vectors = topic_units(
        [(item.redacted_text, item.units) for item in processed],
        embed_cached([u.text for item in processed for u in item.units]),
        min_similarity=settings.preprocess_join_similarity,
    )
    unit_texts = [unit.text for units in per_ticket for unit in units]
    ticket = [i for i, units in enumerate(per_ticket) for _ in units]
    return unit_texts, vectors, np.asarray(ticket, dtype=np.int64)


def embed_cached(texts: list[str], *, cache_dir: Path = CACHE) -> np.ndarray:
    """Like ``bench.cluster.embed_cached``: keyed by the pinned model hash and the texts' hash."""
    texts_hash = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    path = cache_dir / f"history-units-{load_pin()['sha256'][:16]}-{texts_hash[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = SentenceTransformerEmbedder().embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def ticket_labels(unit_labels: np.ndarray, ticket: np.ndarray, n_tickets: int) -> np.ndarray:
    """Each ticket's main cluster: the one most of its units are in; -1 when none is."""
    votes: dict[int, Counter] = {}
    for label, i in zip(unit_labels.tolist(), ticket.tolist(), strict=True):
        if label >= 0:
            votes.setdefault(i, Counter())[label] += 1
    labels = np.full(n_tickets, -1, dtype=np.int64)
    for i, counter in votes.items():
        labels[i] = min(counter.items(), key=lambda item: (-item[1], item[0]))[0]
    return labels


def run(
    *,
    folder: Path = HISTORY,
    params: ClusterParams | None = None,
    baseline: bool = False,
    log=print,
) -> dict[str, Any]:
    texts, issues = load_history(folder)
    start = time.perf_counter()
    unit_texts, vectors, ticket = units_of(texts)
    log(
        f"{len(texts):,} tickets -> {len(unit_texts):,} units, embedded in "
        f"{time.perf_counter() - start:.1f}s (vectors cached in .cache/)"
    )
    results: dict[str, Any] = {
        "tickets": len(texts),
        "units": len(unit_texts),
        "issues": len(set(issues)),
    }
    recipes = {"ours": lambda v: Clusterer(params).fit(v).labels}
    if baseline:
        recipes["umap_hdbscan"] = umap_recipe
    for name, recipe in recipes.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # UMAP warns about n_jobs, sklearn about renames
            start = time.perf_counter()
            unit_labels = np.asarray(recipe(vectors))
            seconds = time.perf_counter() - start
        results[name] = {
            **score(ticket_labels(unit_labels, ticket, len(texts)), issues),
            # Issues a person would see, not just those some ticket's majority landed in.
            "clusters": len(np.unique(unit_labels[unit_labels >= 0])),
            "unassigned_units": float(np.mean(unit_labels < 0)),
            "seconds": seconds,
        }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Feedback history: {results['tickets']:,} tickets ({results['units']:,} units), "
        f"{results['issues']} true issues",
        "",
        "| recipe | ARI | NMI | clusters | unassigned tickets | unassigned units | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"ours": "triage Clusterer", "umap_hdbscan": "BERTopic default (UMAP + HDBSCAN)"}
    for key, name in names.items():
        if key in results:
            r = results[key]
            lines.append(
                f"| {name} | {r['ari']:.3f} | {r['nmi']:.3f} | {r['clusters']} "
                f"| {r['unassigned']:.1%} | {r['unassigned_units']:.1%} | {r['seconds']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--baseline", action="store_true", help="also run the UMAP recipe")
    args = parser.parse_args(argv)
    print(table(run(baseline=args.baseline)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
