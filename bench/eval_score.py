"""Scoring for ``make eval`` (bench/eval.py): per-ticket categories, issues and titles.

Pure functions on plain lists and arrays, so tests/unit/test_bench_eval.py can check them on
hand-made data. A ticket without a category counts as wrong; a ticket (or text) without an issue
counts as its own singleton, so leaving things out is never free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

CATEGORIES = ("ui", "data", "model", "expectation")
NO_CATEGORY = "(none)"


def category_scores(gold: Sequence[str], predicted: Sequence[str | None]) -> dict[str, Any]:
    """Macro-F1 over the four categories and per-class precision, recall and F1. A missing
    prediction becomes a label outside the four: a miss for its true class, a false positive
    for none of them."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    guesses = [p if p else NO_CATEGORY for p in predicted]
    labels = list(CATEGORIES)
    if not gold:
        return {"tickets": 0, "macro_f1": float("nan"), "accuracy": float("nan"),
                "without_category": 0, "per_class": {}}  # fmt: skip
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, guesses, labels=labels, average=None, zero_division=0
    )
    return {
        "tickets": len(gold),
        "macro_f1": float(f1_score(gold, guesses, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(np.mean([g == p for g, p in zip(gold, guesses, strict=True)])),
        "without_category": sum(1 for p in predicted if not p),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
    }


def uncertain_scores(
    gold: Sequence[str], predicted: Sequence[str | None], uncertain: Sequence[bool]
) -> dict[str, Any]:
    """How many tickets said their category is uncertain (``category_uncertain``), and how
    often the category was right among them and among the others."""
    right = np.array([g == p for g, p in zip(gold, predicted, strict=True)], dtype=bool)
    flagged = np.array(uncertain, dtype=bool)

    def accuracy(rows: np.ndarray) -> float:
        return float(right[rows].mean()) if rows.any() else float("nan")

    return {
        "tickets": int(flagged.sum()),
        "share": float(flagged.mean()) if len(flagged) else float("nan"),
        "accuracy_uncertain": accuracy(flagged),
        "accuracy_rest": accuracy(~flagged),
    }


def by_product(tickets: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tickets of each product, products in name order."""
    products: dict[str, list[dict[str, Any]]] = {}
    for ticket in sorted(tickets, key=lambda t: str(t["product"])):
        products.setdefault(str(ticket["product"]), []).append(ticket)
    return products


def category_at_weight(ticket: dict[str, Any], weight: float) -> str | None:
    """The ticket's category had it heard the other tickets of its issue at ``weight``: its
    probabilities before (``issue_mix``, as the run stored them) times (1 - weight) plus its
    peers' mean times weight; a ticket that heard nothing keeps its exported category."""
    heard = ticket.get("issue_mix")
    if not heard:
        return ticket.get("category")
    mixed = {c: (1 - weight) * heard["before"][c] + weight * heard["mean"][c] for c in CATEGORIES}
    return max(CATEGORIES, key=mixed.__getitem__)


def issue_weight_scores(
    by_product: dict[str, list[dict[str, Any]]], weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """The pooled macro-F1 at each weight a ticket could give its issue's other tickets
    (``categorize.issue_peers.WEIGHTS``), worked out from one run per product; and nested:
    for each product, the weight best on the other products' tickets (ties to the smaller),
    and the pooled macro-F1 of every product's tickets at the weight chosen without it."""
    from triage.categorize.issue_peers import WEIGHTS

    weights = list(WEIGHTS if weights is None else weights)

    def macro(tickets: list[dict[str, Any]], weight: float) -> float:
        gold = [t["gold_category"] for t in tickets]
        return float(
            category_scores(gold, [category_at_weight(t, weight) for t in tickets])["macro_f1"]
        )

    everyone = [t for tickets in by_product.values() for t in tickets]
    chosen: dict[str, float] = {}
    for product in by_product:
        others = [t for name, tickets in by_product.items() if name != product for t in tickets]
        scores = [macro(others, w) for w in weights]
        chosen[product] = weights[max(range(len(weights)), key=lambda i: (round(scores[i], 9), -i))]
    gold = [t["gold_category"] for name in by_product for t in by_product[name]]
    nested = [category_at_weight(t, chosen[name]) for name in by_product for t in by_product[name]]
    return {
        "by_weight": {f"{w:g}": macro(everyone, w) for w in weights},
        "chosen_without": chosen,
        "nested_macro_f1": float(category_scores(gold, nested)["macro_f1"]),
        "tickets_heard": sum(1 for t in everyone if t.get("issue_mix")),
    }


def with_singletons(labels: Sequence[Hashable | None]) -> list[str]:
    """Cluster labels as strings, every missing label (None or a negative number) its own
    singleton."""
    result = []
    for i, label in enumerate(labels):
        missing = label is None or (isinstance(label, int | np.integer) and label < 0)
        result.append(f"\0singleton-{i}" if missing else f"c:{label}")
    return result


def purity(gold: Sequence[Hashable], predicted: Sequence[Hashable | None]) -> float:
    """Share of the tickets in an issue that belong to its majority gold issue (tickets without
    an issue left out); NaN when no ticket has one."""
    members: dict[Hashable, Counter] = {}
    for truth, label in zip(gold, predicted, strict=True):
        if label is not None:
            members.setdefault(label, Counter())[truth] += 1
    assigned = sum(sum(c.values()) for c in members.values())
    if not assigned:
        return float("nan")
    return sum(c.most_common(1)[0][1] for c in members.values()) / assigned


def issue_scores(gold: Sequence[Hashable], predicted: Sequence[Hashable | None]) -> dict[str, Any]:
    """ARI and NMI of the predicted issues against the gold ones, each ticket without an issue
    a singleton; plus how many issues, how many tickets without one, and purity."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold issues but {len(predicted)} predictions")
    labels = with_singletons(predicted)
    truth = [str(g) for g in gold]
    return {
        "ari": float(adjusted_rand_score(truth, labels)),
        "nmi": float(normalized_mutual_info_score(truth, labels)),
        "issues": len({p for p in predicted if p is not None}),
        "gold_issues": len(set(truth)),
        "without_issue": sum(1 for p in predicted if p is None),
        "purity": purity(gold, predicted),
    }


def majority(values: Sequence[Hashable]) -> Hashable | None:
    """The most common value; ties go to the one seen first."""
    return Counter(values).most_common(1)[0][0] if values else None


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def nearest_description(title_vectors: np.ndarray, description_vectors: np.ndarray) -> np.ndarray:
    """For each title, the index of the most cosine-similar description."""
    similarity = normalise(title_vectors) @ normalise(description_vectors).T
    return similarity.argmax(axis=1)


def title_quality(own: Sequence[str | None], nearest: Sequence[str]) -> dict[str, Any]:
    """Share of issues whose title is most similar to their own gold issue's description; an
    issue without an own gold issue counts as a miss."""
    good = [o is not None and o == n for o, n in zip(own, nearest, strict=True)]
    return {"issues": len(good), "good": sum(good),
            "share": sum(good) / len(good) if good else float("nan")}  # fmt: skip


def bootstrap_interval(
    groups: Sequence[Sequence[Any]],
    statistic: Callable[[list[Any]], float],
    *,
    draws: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` percentile interval of ``statistic`` over ``draws`` resamples of
    ``groups`` with replacement, each draw pooling the items of the groups it drew. With the
    products as groups it asks how the figure would move with another set of products of the
    same kind, the way a new customer's data differs from these (Efron's percentile
    bootstrap; a handful of groups makes it coarse, and it leaves out the retraining's own
    noise, so it is a floor on the uncertainty, not the whole of it)."""
    rng = np.random.default_rng(seed)
    values = [
        statistic([item for i in rng.integers(0, len(groups), len(groups)) for item in groups[i]])
        for _ in range(draws)
    ]
    low, high = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)
