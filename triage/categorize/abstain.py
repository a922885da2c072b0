"""When a ticket's category is a guess: the confidence below which cross-validated decisions were
more often wrong than right, learned by `triage train`, and the evidence line that says so.

Every ticket still gets its most likely category (a category for every ticket), but one decided
below ``uncertain_below`` says first that it is uncertain and why, so nobody reads it as a
finding. The threshold is not set by hand: ``fit_uncertain_below`` fits the accuracy of the
combiner's leave-one-product-out decisions as a non-decreasing function of their confidence
(isotonic regression, scikit-learn) and takes the lowest confidence at which that accuracy
reaches ``ACCURACY``. It is the same calibration a new product's tickets meet: each product's
decisions were made by a combiner that never saw it. A combiner trained before this has no
threshold and marks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from triage.categorize.evidence import CategoryDecision, Evidence
from triage.models.feedback import UNCERTAIN_SIGNAL

# Below this cross-validated accuracy a decision is more often wrong than right.
ACCURACY = 0.5


def fit_uncertain_below(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """The lowest confidence at which the isotonic fit of ``correct`` (bool per decision) on
    ``confidence`` reaches ``ACCURACY`` (the lowest confidence seen when it does everywhere; 1
    when it never does), with the share of decisions below it and the accuracy on each side."""
    from sklearn.isotonic import IsotonicRegression

    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if not len(confidence):
        return {"below": 0.0, "rows": 0}
    fitted = IsotonicRegression(increasing=True, out_of_bounds="clip").fit_transform(
        confidence, correct
    )
    reached = confidence[fitted >= ACCURACY]
    below = float(reached.min()) if len(reached) else 1.0
    under = confidence < below

    def accuracy(rows: np.ndarray) -> float | None:
        return round(float(correct[rows].mean()), 4) if rows.any() else None

    return {
        "below": round(below, 4),
        "rows": len(confidence),
        "share_below": round(float(under.mean()), 4),
        "accuracy_below": accuracy(under),
        "accuracy_at_or_above": accuracy(~under),
    }


def mark_uncertain(
    decisions: Mapping[int, CategoryDecision], below: float
) -> dict[int, CategoryDecision]:
    """Each decision with the line that says it is uncertain first when its confidence is under
    ``below``, and without one otherwise (a stored decision mixed again may have one)."""
    marked = {}
    for key, decision in decisions.items():
        evidence = [e for e in decision.evidence if e.signal != UNCERTAIN_SIGNAL]
        if decision.confidence < below:
            runner_up = decision.runner_up or decision.category
            second = decision.probabilities.get(runner_up, 0.0)
            line = Evidence(
                f"uncertain: {decision.category} at {decision.confidence:.0%}, {runner_up} "
                f"at {second:.0%}; below {below:.0%}, decisions on products the model had not "
                f"seen were more often wrong than right, so check it",
                UNCERTAIN_SIGNAL,
                decision.category,
                0.0,
                {"confidence": round(decision.confidence, 4), "uncertain_below": below},
            )
            evidence = [line, *evidence]
        if evidence != decision.evidence:
            decision = replace(decision, evidence=evidence)
        marked[key] = decision
    return marked
