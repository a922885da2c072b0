"""How well the categorizer does on issues whose category is known."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from triage.categorize.decision import Categorizer
from triage.categorize.examples import CATEGORIES
from triage.link import OutputSignals


@dataclass(frozen=True)
class LabelledIssue:
    """One issue with its true category, for ``evaluate``."""

    texts: list[str]
    vectors: np.ndarray
    label: str
    signals: OutputSignals | None = None
    key: str = ""  # e.g. the fixture's external_id, to name the items that were missed


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: truth)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = [name for name in CATEGORIES if name in set(y_true) | set(y_pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n": len(y_true),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "accuracy": float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def evaluate(categorizer: Categorizer, issues: Sequence[LabelledIssue]) -> dict[str, Any]:
    """Decide every issue and score the decisions; ``errors`` lists the misses."""
    decisions = [categorizer.decide(i.texts, i.vectors, i.signals) for i in issues]
    metrics = classification_metrics([i.label for i in issues], [d.category for d in decisions])
    metrics["errors"] = [
        {
            "key": issue.key,
            "text": " / ".join(issue.texts)[:200],
            "label": issue.label,
            "predicted": decision.category,
            "confidence": decision.confidence,
            "totals": decision.totals,
            "reasons": [f"[{e.signal}→{e.category}] {e.reason}" for e in decision.evidence[:4]],
        }
        for issue, decision in zip(issues, decisions, strict=True)
        if decision.category != issue.label
    ]
    return metrics
