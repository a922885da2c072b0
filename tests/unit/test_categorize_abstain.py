"""When a ticket's category is a guess (``triage.categorize.abstain``): the threshold learned
from cross-validated decisions, and the evidence line and flag it gives. Hand-made numbers."""

from __future__ import annotations

import numpy as np

from triage.categorize.abstain import ACCURACY, fit_uncertain_below, mark_uncertain
from triage.categorize.evidence import CategoryDecision, Evidence
from triage.models import FeedbackPublic
from triage.models.feedback import is_uncertain


def test_threshold_is_where_cross_validated_accuracy_reaches_one_half():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.25, 1.0, 4000)
    # Right with probability equal to the confidence: calibrated, so 0.5 is the threshold.
    correct = rng.uniform(size=4000) < confidence
    found = fit_uncertain_below(confidence, correct)
    assert 0.44 < found["below"] < 0.56
    assert found["accuracy_below"] < ACCURACY < found["accuracy_at_or_above"]
    assert abs(found["share_below"] - np.mean(confidence < found["below"])) < 1e-3
    assert found["rows"] == 4000


def test_threshold_is_the_lowest_confidence_when_all_are_mostly_right_and_one_when_none_is():
    confidence = np.array([0.3, 0.4, 0.6, 0.9])
    assert fit_uncertain_below(confidence, np.array([1, 1, 1, 1], bool))["below"] == 0.3
    never = fit_uncertain_below(confidence, np.zeros(4, bool))
    assert never["below"] == 1.0 and never["share_below"] == 1.0
    assert fit_uncertain_below(np.array([]), np.array([], bool)) == {"below": 0.0, "rows": 0}


def _decision(confidence: float, evidence: list[Evidence] | None = None) -> CategoryDecision:
    rest = (1 - confidence) / 3
    probabilities = {"ui": confidence, "data": rest, "model": rest, "expectation": rest}
    return CategoryDecision(
        category="ui", confidence=confidence, runner_up="data",
        evidence=evidence or [Evidence("words point to ui", "words", "ui", 1.0)],
        contributions={}, totals={}, probabilities=probabilities,
    )  # fmt: skip


def test_a_decision_below_the_threshold_says_so_first_and_the_flag_follows():
    marked = mark_uncertain({1: _decision(0.4), 2: _decision(0.8)}, 0.5)
    first = marked[1].evidence[0]
    assert first.signal == "uncertain" and first.category == "ui"
    assert "ui at 40%" in first.reason and "data at 20%" in first.reason
    assert [e.signal for e in marked[1].evidence[1:]] == ["words"]
    assert marked[2] == _decision(0.8)
    stored = [e.to_dict() for e in marked[1].evidence]
    assert is_uncertain(stored) and not is_uncertain([e.to_dict() for e in marked[2].evidence])
    public = FeedbackPublic.model_validate(
        {"source": "s", "external_id": "1", "id": 1, "received_at": "2026-12-01T00:00:00Z",
         "status": "processed", "category_evidence": stored}
    )  # fmt: skip
    assert public.model_dump()["category_uncertain"] is True


def test_a_decision_mixed_again_keeps_one_line_and_loses_it_above_the_threshold():
    once = mark_uncertain({1: _decision(0.4)}, 0.5)[1]
    again = mark_uncertain({1: once}, 0.5)[1]
    assert [e.signal for e in again.evidence] == ["uncertain", "words"]
    risen = _decision(0.7, once.evidence)
    assert [e.signal for e in mark_uncertain({1: risen}, 0.5)[1].evidence] == ["words"]
    assert mark_uncertain({1: once}, 0.0)[1].evidence[0].signal == "words"
