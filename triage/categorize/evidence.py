"""What a categorisation decides and why: a ``CategoryDecision`` with its ``Evidence``, and the
one order of categories (``ranked``) every decision reads its winner from. Apart from the
categorizer (``decision``) so the learned decision (``learned``) can build them too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triage.categorize.examples import CATEGORIES


@dataclass(frozen=True)
class Evidence:
    reason: str  # one sentence a person can check
    signal: str  # cues, examples, outputs or classifier
    category: str  # the category this evidence supports
    contribution: float  # what it added to that category's total
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "signal": self.signal,
            "category": self.category,
            "contribution": self.contribution,
            "data": self.data,
        }


def ranked(scores: Mapping[str, float]) -> list[str]:
    """``CATEGORIES`` from the highest score down; ties go to the earlier category, so the same
    scores always give one answer."""
    return sorted(CATEGORIES, key=lambda name: (-scores.get(name, 0.0), CATEGORIES.index(name)))


@dataclass(frozen=True)
class CategoryDecision:
    category: str
    confidence: float
    runner_up: str | None
    evidence: list[Evidence]  # strongest support for the decided category first
    contributions: dict[str, dict[str, float]]  # signal -> category -> share of the total
    totals: dict[str, float]
    probabilities: dict[str, float] = field(default_factory=dict)  # category -> probability
