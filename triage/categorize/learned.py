"""The learned decision: the combiner's (``combiner``) probabilities decide, and each signal it
weighs adds one piece of evidence, carrying what it added to the decided category's logit next to
an average ticket, with the signal's reason sentence. Many tickets are decided at once (one
feature matrix, one pass of the combiner), each as it would be alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from triage.categorize.combiner import LearnedCombiner, feature_vector
from triage.categorize.context import TicketContext
from triage.categorize.evidence import CategoryDecision, Evidence, ranked
from triage.categorize.examples import CATEGORIES
from triage.categorize.signals import SignalScore


def _context_reason(group: str, context: TicketContext) -> str:
    if group == "reaction":
        if context.minutes_after_output is None:
            return "not linked to an answer it could react to"
        return f"written {context.minutes_after_output:.0f} minutes after the answer it is about"
    if not context.linked:
        return "no linked output to judge"
    parts = []
    if context.complaint_share is not None and context.traffic_share is not None:
        parts.append(
            f"{context.model} {context.version} carries {100 * context.complaint_share:.0f}% of "
            f"that model's other linked complaints vs {100 * context.traffic_share:.0f}% of its "
            "traffic"
        )
    parts.append(
        f"linked confidence lower than {100 * (1 - context.low_confidence):.0f}% of traffic"
    )
    if context.stale_share:
        parts.append(f"{100 * context.stale_share:.0f}% of its sources stale")
    return "; ".join(parts)


def decide_learned(
    combiner: LearnedCombiner, scored: Mapping[str, SignalScore], context: TicketContext
) -> CategoryDecision:
    """The combiner's decision, with one piece of evidence per signal it weighs."""
    return decide_learned_many(combiner, [scored], [context])[0]


def decide_learned_many(
    combiner: LearnedCombiner,
    scored: Sequence[Mapping[str, SignalScore]],
    contexts: Sequence[TicketContext],
) -> list[CategoryDecision]:
    """``decide_learned`` of each ticket (its signals' scores and its context): the combiner
    reads all their feature rows in one pass, which gives each row the numbers it gives alone."""
    if not scored:
        return []
    full = np.array([feature_vector(s, c) for s, c in zip(scored, contexts, strict=True)])
    probabilities = combiner.predict_proba(full).tolist()
    contributions = combiner.contributions(full).tolist()  # tickets x classes x groups
    return [
        _explained(combiner, *ticket)
        for ticket in zip(scored, contexts, probabilities, contributions, strict=True)
    ]


def _explained(
    combiner: LearnedCombiner,
    scored: Mapping[str, SignalScore],
    context: TicketContext,
    proba: Sequence[float],
    per_class: Sequence[Sequence[float]],
) -> CategoryDecision:
    """One ticket's decision from its row of the combiner's probabilities and contributions
    (classes x kept groups), with its evidence."""
    probabilities = {name: 0.0 for name in CATEGORIES}
    for name, p in zip(combiner.classes, proba, strict=True):
        probabilities[name] = round(p, 4)
    category, runner_up = ranked(probabilities)[:2]
    every = {
        name: dict(zip(combiner.kept_groups, row, strict=True))
        for name, row in zip(combiner.classes, per_class, strict=True)
    }
    contributions = {name: every.get(name, {}) for name in CATEGORIES}
    evidence = []
    for group, value in contributions[category].items():
        score = scored.get(group)
        if score is not None and score.scores:
            reason = score.reasons.get(category)
            if reason is None:
                # Say what the signal pointed to instead, so a negative weight reads right.
                best = max(score.scores, key=lambda n: score.scores[n])
                reason = f"points to {best}: {score.reasons.get(best, 'no sentence')}"
            data = score.data
        elif group in ("context", "reaction"):
            reason, data = _context_reason(group, context), {}
        else:
            reason, data = f"no {group} signal for this text", {}
        evidence.append(Evidence(reason, group, category, round(value, 4), data))
    evidence.sort(key=lambda e: -e.contribution)
    by_signal: dict[str, dict[str, float]] = {}
    for name, per_group in contributions.items():
        for group, value in per_group.items():
            by_signal.setdefault(group, {})[name] = round(value, 4)
    return CategoryDecision(
        category=category,
        confidence=probabilities[category],
        runner_up=runner_up,
        evidence=evidence,
        contributions=by_signal,
        totals=probabilities,
        probabilities=probabilities,
    )
