"""The fallback decision for classifier folders trained before the learned combiner existed: a
readable weighted sum of the signals, with evidence.

With ``w_s`` the weight of signal ``s`` and ``W`` the sum of the weights of the signals that had
something to say (no linked outputs: no ``outputs`` signal),
``contribution[s][c] = w_s / W * score_s[c]`` and ``total[c] = sum_s contribution[s][c]``.
The category is the largest total, the runner-up the second, and the confidence is the winner's
share of all totals. Every signal adds one piece of evidence with a sentence a person can check.
"""

from __future__ import annotations

from collections.abc import Mapping

from triage.categorize.evidence import CategoryDecision, Evidence, ranked
from triage.categorize.examples import CATEGORIES
from triage.categorize.signals import SignalScore


def combine(scored: Mapping[str, SignalScore], weights: Mapping[str, float]) -> CategoryDecision:
    """The weighted sum of the module docstring, with evidence."""
    active = {s: score for s, score in scored.items() if score.scores and weights.get(s, 0) > 0}
    weight_sum = sum(weights[s] for s in active)
    contributions = {
        s: {name: weights[s] / weight_sum * score.scores.get(name, 0.0) for name in CATEGORIES}
        for s, score in active.items()
    }
    totals = {name: sum(c[name] for c in contributions.values()) for name in CATEGORIES}
    order = ranked(totals)
    mass = sum(totals.values())
    if mass <= 0:
        # Nothing to go on (no cue, no examples, no outputs): say so rather than guess loudly.
        return CategoryDecision(
            category=order[0],
            confidence=0.0,
            runner_up=None,
            evidence=[Evidence("no signal had anything to say", "none", order[0], 0.0)],
            contributions=contributions,
            totals=totals,
            probabilities={name: 1 / len(CATEGORIES) for name in CATEGORIES},
        )
    category, runner_up = order[0], order[1]
    evidence = []
    for s, score in active.items():
        for name, reason in score.reasons.items():
            if contributions[s][name] > 0:
                evidence.append(
                    Evidence(
                        reason=reason,
                        signal=s,
                        category=name,
                        contribution=round(contributions[s][name], 4),
                        data=score.data,
                    )
                )
    # The decided category's support first, strongest first; then what argues for the others.
    evidence.sort(key=lambda e: (e.category != category, -e.contribution, e.signal, e.category))
    return CategoryDecision(
        category=category,
        confidence=round(totals[category] / mass, 4),
        runner_up=runner_up if totals[runner_up] > 0 else None,
        evidence=evidence,
        contributions={s: {n: round(v, 4) for n, v in c.items()} for s, c in contributions.items()},
        totals={name: round(value, 4) for name, value in totals.items()},
        probabilities={name: round(value / mass, 4) for name, value in totals.items()},
    )
