"""The ticket sections of ``make eval``: feedback-dev leave-one-product-out, title quality, and
the fixtures' held-out split, each through the user path (bench/eval_userpath.py).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.eval_score import (
    CATEGORIES,
    by_product,
    category_scores,
    issue_scores,
    issue_weight_scores,
    majority,
    nearest_description,
    title_quality,
    uncertain_scores,
)
from bench.eval_userpath import Workspace, read_jsonl, strip, ticket_result
from triage.cli.app import FIXTURE_SETS

GOLD_FIELDS = ("gold_category", "gold_issue")
FIXTURE_LABEL_FIELDS = ("label", "split", "product")

Log = Callable[[str], None]


def product_of(ticket: dict[str, Any]) -> str:
    return (ticket.get("metadata") or {}).get("product", "")


def fixtures_labelled() -> list[dict[str, Any]]:
    return [row for labelled, _ in FIXTURE_SETS for row in read_jsonl(labelled)]


def fixtures_outputs() -> list[dict[str, Any]]:
    return [row for _, outputs in FIXTURE_SETS for row in read_jsonl(outputs)]


def subsample(rows: list[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """``share`` of ``rows`` drawn at random (``seed``), in their order; all of them at 1. How
    far a figure moves when training loses a few rows is the retraining's own noise
    (``python -m bench.eval --train-share``)."""
    if share >= 1.0:
        return list(rows)
    keep = np.random.default_rng(seed).permutation(len(rows))[: round(share * len(rows))]
    return [rows[i] for i in sorted(keep)]


def fixtures_train() -> list[dict[str, Any]]:
    return [strip(r, ("split",)) for r in fixtures_labelled() if r["split"] == "train"]


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")


def _share(counts: dict[str, int]) -> float:
    units = counts["units"]
    return counts["unassigned_units"] / units if units else float("nan")


def _tickets(
    exported: list[dict[str, Any]],
    sent: list[dict[str, Any]],
    extra: Callable[[dict[str, Any]], dict[str, Any]],
    issue_lines: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per ticket: the gold fields (from ``extra``), what the export says, what it heard from
    its issue (``issue_lines``, ``Workspace.issue_lines``), no text."""
    keys = [(t.get("source"), t.get("external_id")) for t in sent]
    rows = []
    for key, ticket, row in zip(keys, sent, ticket_result(exported, keys), strict=True):
        record = {
            "external_id": ticket.get("external_id"),
            **extra(ticket),
            "status": row.get("status"),
            "category": row.get("category"),
            "issue_id": row.get("issue_id"),
            "issue_ids": row.get("issue_ids") or [],
        }
        if "issue_category" in row:
            record["issue_category"] = row["issue_category"]
        if "category_uncertain" in row:
            record["category_uncertain"] = bool(row["category_uncertain"])
        heard = (issue_lines or {}).get(key)  # type: ignore[arg-type]
        if heard is not None:
            record["issue_mix"] = {"before": heard["before"], "mean": heard["mean_probabilities"]}
        rows.append(record)
    return rows


def _category_block(tickets: list[dict[str, Any]], gold: str) -> dict[str, Any]:
    scores = category_scores([t[gold] for t in tickets], [t["category"] for t in tickets])
    if any("issue_category" in t for t in tickets):
        scores["issue_category"] = category_scores(
            [t[gold] for t in tickets], [t.get("issue_category") for t in tickets]
        )
    if any("category_uncertain" in t for t in tickets):
        scores["uncertain"] = uncertain_scores(
            [t[gold] for t in tickets],
            [t["category"] for t in tickets],
            [bool(t.get("category_uncertain")) for t in tickets],
        )
    return scores


# --- feedback-dev, leave one product out ---------------------------------------------------------


def feedback_dev_fold(
    product: str,
    tickets: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    *,
    log: Log,
    train_share: float = 1.0,
    train_seed: int = 0,
) -> dict[str, Any]:
    """Train on the other products and fixtures' train split, run the held-out product's
    tickets and its models' outputs through the user path, score per ticket."""
    started = time.perf_counter()
    heldout = [t for t in tickets if product_of(t) == product]
    train = [
        {**strip(t, GOLD_FIELDS), "label": t["gold_category"]}
        for t in tickets
        if product_of(t) != product
    ] + fixtures_train()
    train = subsample(train, train_share, train_seed)
    output_model = {o["output_id"]: o["model"] for o in outputs}
    models = {output_model[t["output_id"]] for t in heldout if t.get("output_id") in output_model}
    fold_outputs = [o for o in outputs if o["model"] in models]
    # The held-out product's models' outputs never reach training.
    train_outputs = [o for o in outputs if o["model"] not in models] + fixtures_outputs()
    with tempfile.TemporaryDirectory(prefix=f"triage-eval-{product}-") as folder:
        workspace = Workspace(Path(folder))
        log(f"[feedback-dev {product}] train on {len(train)} labelled tickets")
        workspace.train(train, train_outputs)
        log(
            f"[feedback-dev {product}] ingest {len(heldout)} tickets and {len(fold_outputs)} "
            f"outputs of {', '.join(sorted(models)) or 'no model'}"
        )
        workspace.ingest_outputs(fold_outputs)
        workspace.ingest_feedback([strip(t, GOLD_FIELDS) for t in heldout])
        log(f"[feedback-dev {product}] triage run")
        workspace.run()
        log(f"[feedback-dev {product}] export and score")
        exported = workspace.export()
        issues = workspace.issues()
        counts = workspace.counts()
        issue_lines = workspace.issue_lines()
    rows = _tickets(
        exported,
        heldout,
        lambda t: {
            "product": product,
            "gold_category": t["gold_category"],
            "gold_issue": t["gold_issue"],
        },
        issue_lines,
    )
    return {
        "product": product,
        "train_tickets": len(train),
        "models": sorted(models),
        "outputs": len(fold_outputs),
        "categories": _category_block(rows, "gold_category"),
        "issues": issue_scores([t["gold_issue"] for t in rows], [t["issue_id"] for t in rows]),
        **counts,
        "unassigned": _share(counts),
        "issue_list": _issue_list(issues, rows),
        "tickets": rows,
        "seconds": time.perf_counter() - started,
        "step_seconds": {k: round(v, 1) for k, v in workspace.seconds.items()},
    }


def _issue_list(issues: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each issue the run made, with its own gold issue: the majority of its tickets'."""
    result = []
    for issue in issues:
        members = [t["gold_issue"] for t in rows if issue["id"] in t["issue_ids"]]
        own = majority(members)
        result.append(
            {
                "id": issue["id"],
                "title": issue["title"],
                "category": issue["category"],
                "size": issue["size"],
                "tickets": len(members),
                "own": own,
                "own_share": members.count(own) / len(members) if members else 0.0,
            }
        )
    return result


def feedback_dev(
    data: Path,
    *,
    products: Sequence[str] | None = None,
    log: Log,
    train_share: float = 1.0,
    train_seed: int = 0,
) -> dict[str, Any]:
    tickets = read_jsonl(data / "feedback-dev" / "feedback.jsonl")
    outputs = read_jsonl(data / "feedback-dev" / "model_outputs.jsonl")
    every = sorted({product_of(t) for t in tickets})
    unknown = set(products or ()) - set(every)
    if unknown:
        raise SystemExit(f"unknown products {sorted(unknown)}; feedback-dev has {every}")
    folds = [
        feedback_dev_fold(
            product, tickets, outputs, log=log, train_share=train_share, train_seed=train_seed
        )
        for product in products or every
    ]
    return {
        "folds": folds,
        "mean": _mean_of(folds),
        "pooled": _pooled(folds),
        "issue_weight": issue_weight_scores({f["product"]: f["tickets"] for f in folds}),
    }


def _mean_of(folds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "macro_f1": _mean([f["categories"]["macro_f1"] for f in folds]),
        "per_class_f1": {
            c: _mean([f["categories"]["per_class"][c]["f1"] for f in folds]) for c in CATEGORIES
        },
        "ari": _mean([f["issues"]["ari"] for f in folds]),
        "nmi": _mean([f["issues"]["nmi"] for f in folds]),
        "purity": _mean([f["issues"]["purity"] for f in folds]),
        "unassigned": _mean([f["unassigned"] for f in folds]),
    }


def _pooled(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """All folds' tickets as one set; issue ids carry the product, since each fold is its own
    database (so pooled ARI and NMI also credit telling products apart)."""
    rows = [t for f in folds for t in f["tickets"]]
    issue = [f"{t['product']}:{t['issue_id']}" if t["issue_id"] is not None else None for t in rows]
    units = sum(f["units"] for f in folds)
    return {
        "categories": _category_block(rows, "gold_category"),
        "issues": issue_scores([f"{t['product']}:{t['gold_issue']}" for t in rows], issue),
        "units": units,
        "unassigned": sum(f["unassigned_units"] for f in folds) / units if units else float("nan"),
    }


# --- title quality -------------------------------------------------------------------------------


def titles(data: Path, folds: list[dict[str, Any]], embedder: Any, *, log: Log) -> dict[str, Any]:
    """For each issue of every fold: is its title closest (cosine, the product's embedder) to
    its own gold issue's description among that product's gold issues?"""
    gold = read_jsonl(data / "feedback-dev" / "issues.jsonl")
    log(f"[titles] embedding {sum(len(f['issue_list']) for f in folds)} titles")
    per_product = {}
    own_all: list[str | None] = []
    nearest_all: list[str] = []
    for fold in folds:
        described = [g for g in gold if g["product"] == fold["product"]]
        issues = fold["issue_list"]
        if not issues or not described:
            continue
        vectors = embedder.embed([i["title"] or "" for i in issues])
        descriptions = embedder.embed([g["description"] for g in described])
        nearest = [described[j]["issue"] for j in nearest_description(vectors, descriptions)]
        for issue, match in zip(issues, nearest, strict=True):
            issue["nearest"] = match
        own = [i["own"] for i in issues]
        per_product[fold["product"]] = title_quality(own, nearest)
        own_all += own
        nearest_all += nearest
    return {"embedder": embedder.model_id, "per_product": per_product,
            **title_quality(own_all, nearest_all)}  # fmt: skip


# --- fixtures, held out --------------------------------------------------------------------------


def fixtures_heldout(*, log: Log, train_share: float = 1.0, train_seed: int = 0) -> dict[str, Any]:
    started = time.perf_counter()
    labelled = fixtures_labelled()
    heldout = [r for r in labelled if r["split"] == "heldout"]
    outputs = fixtures_outputs()
    with tempfile.TemporaryDirectory(prefix="triage-eval-fixtures-") as folder:
        workspace = Workspace(Path(folder))
        log(f"[fixtures] train on {len(labelled) - len(heldout)} labelled tickets")
        workspace.train(subsample(fixtures_train(), train_share, train_seed), outputs)
        log(f"[fixtures] ingest {len(heldout)} held-out tickets and {len(outputs)} outputs")
        workspace.ingest_outputs(outputs)
        workspace.ingest_feedback([strip(r, FIXTURE_LABEL_FIELDS) for r in heldout])
        log("[fixtures] triage run")
        workspace.run()
        exported = workspace.export()
        counts = workspace.counts()
        issue_lines = workspace.issue_lines()
    rows = _tickets(exported, heldout, lambda r: {"product": r.get("product"),
                                                  "gold_category": r["label"]},
                    issue_lines)  # fmt: skip
    return {
        "categories": _category_block(rows, "gold_category"),
        "issue_weight": issue_weight_scores(by_product(rows)),
        "issues": len({t["issue_id"] for t in rows if t["issue_id"] is not None}),
        "without_issue": sum(1 for t in rows if t["issue_id"] is None),
        **counts,
        "unassigned": _share(counts),
        "tickets": rows,
        "seconds": time.perf_counter() - started,
        "step_seconds": {k: round(v, 1) for k, v in workspace.seconds.items()},
    }
