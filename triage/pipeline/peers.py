"""What a ticket's category borrows from the tickets around it, after its own evidence: its
nearest tickets before the issues form (``categorize.neighbours``), then the other tickets of
the issues it joined (``categorize.issue_peers``). Each adds one evidence line saying what it
borrowed and how much; a stored decision read back drops both lines (``BORROWED``) to get the
ticket's own decision.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from triage.categorize import CATEGORIES, CategoryDecision, Evidence, ranked
from triage.categorize.issue_peers import ISSUE_SIGNAL, peers
from triage.categorize.neighbours import NEIGHBOURS_SIGNAL, nearest, smooth

# The evidence lines that say what a ticket's nearest tickets (``with_neighbours``) and the
# other tickets of its issues (``with_issue_peers``) lean to.
BORROWED = frozenset({NEIGHBOURS_SIGNAL, ISSUE_SIGNAL})


def decision_of(probabilities: Mapping[str, float], evidence: list[Evidence]) -> CategoryDecision:
    """The decision that ``probabilities`` make, with ``evidence``."""
    probabilities = {name: float(probabilities.get(name, 0.0)) for name in CATEGORIES}
    first, second = ranked(probabilities)[:2]
    return CategoryDecision(
        category=first,
        confidence=probabilities[first],
        runner_up=second,
        evidence=evidence,
        contributions={},
        totals=probabilities,
        probabilities=probabilities,
    )


def _matrix(decisions: Mapping[int, CategoryDecision], order: Sequence[int]) -> np.ndarray:
    return np.array(
        [[decisions[f].probabilities.get(c, 0.0) for c in CATEGORIES] for f in order],
        dtype=np.float64,
    ).reshape(len(order), len(CATEGORIES))


def _rows(matrix: np.ndarray) -> list[dict[str, float]]:
    """Each row as ``{category: probability}``, rounded to 4 places (one pass for all rows:
    a refresh does this for every ticket)."""
    return [dict(zip(CATEGORIES, row, strict=True)) for row in np.round(matrix, 4).tolist()]


def _borrowed(
    mine: CategoryDecision,
    mixed: dict[str, float],
    *,
    who: str,
    mean: dict[str, float],
    weight: float,
    signal: str,
    data: dict[str, Any],
) -> CategoryDecision:
    """``mine`` decided again on ``mixed``, its evidence led by the line that says what
    ``who`` ("its 5 most similar tickets") lean to on their own (``mean``) and how much that
    weighed; ``data`` goes with the line, beside the weight and the mean (rows of ``_rows``)."""
    lean = max(CATEGORIES, key=mean.__getitem__)
    # Its own category and probability as a stored decision read back gives them (a decision
    # without any signal has confidence 0 but even probabilities).
    own = f"{mine.category} {mine.probabilities.get(mine.category, 0.0):.2f}"
    line = Evidence(
        f"{who} lean {lean} on their own evidence ({mean[lean]:.2f}), weighing {weight:g} "
        f"against its own ({own})",
        signal,
        lean,
        round(weight * mean[lean], 4),
        {**data, "weight": weight, "mean_probabilities": mean},
    )
    return decision_of(mixed, [line, *mine.evidence])


def with_neighbours(
    own: Mapping[int, CategoryDecision], vectors: np.ndarray, order: Sequence[int], weight: float
) -> dict[int, CategoryDecision]:
    """Each ticket's decision with its ``NEIGHBOURS`` nearest tickets' own probabilities
    weighing ``weight`` (``categorize.neighbours``); ``vectors``: the tickets of ``order``
    (feedback ids in the order they were stored) as the classifier reads them."""
    if weight <= 0 or len(order) < 2:
        return dict(own)
    matrix = _matrix(own, order)
    near = nearest(vectors)
    mixed, means = _rows(smooth(matrix, near, weight)), _rows(matrix[near].mean(axis=1))
    result = {}
    for row, feedback_id in enumerate(order):
        result[feedback_id] = _borrowed(
            own[feedback_id], mixed[row], who=f"its {near.shape[1]} most similar tickets",
            mean=means[row], weight=weight, signal=NEIGHBOURS_SIGNAL,
            data={"neighbours": near.shape[1]},
        )  # fmt: skip
    return result


def with_issue_peers(
    decisions: Mapping[int, CategoryDecision],
    issues_of: Mapping[int, Collection[int]],
    weight: float,
) -> dict[int, CategoryDecision]:
    """Each ticket's decision with the mean of the other tickets of its issues weighing
    ``weight`` (``categorize.issue_peers``): ``issues_of`` maps a feedback id to the ids of
    the issues its statements joined. A ticket in no issue, or alone in its issues, keeps its
    decision. The line says what the peers lean to and keeps the probabilities before the mix
    (``before``), so the mix at another weight can be worked out from what is stored."""
    if weight <= 0:
        return dict(decisions)
    order = sorted(decisions)
    matrix = _matrix(decisions, order)
    heard = peers(matrix, [issues_of.get(f, ()) for f in order])
    mixed, means, before = _rows(heard.mix(matrix, weight)), _rows(heard.means), _rows(matrix)
    result: dict[int, CategoryDecision] = {}
    for row, feedback_id in enumerate(order):
        mine, count = decisions[feedback_id], int(heard.counts[row])
        if not count:
            result[feedback_id] = mine
            continue
        issues = sorted(issues_of[feedback_id])
        where = ("issue #" if len(issues) == 1 else "issues #") + ", #".join(map(str, issues))
        result[feedback_id] = _borrowed(
            mine, mixed[row], who=f"the {count} other tickets of its {where}",
            mean=means[row], weight=weight, signal=ISSUE_SIGNAL,
            data={"issues": issues, "peers": count, "before": before[row]},
        )  # fmt: skip
    return result
