"""The learned decision: the combiner's (``combiner``) probabilities decide, and each signal it
weighs adds one piece of evidence, carrying what it added to the decided category's logit next to
an average ticket, with the signal's reason sentence. Many tickets are decided at once (one
feature matrix, one pass of the combiner), each as it would be alone.

A quick reaction (a ticket written within ``REACTION_MINUTES`` of the answer it is linked to) is
a group the combiner learns like the others: the fixtures' two chat assistants hold the
reactions typed right after a wrong answer that the other labelled sets lack. Where a combiner
gives it no weight (the selection removed it, or a folder trained before), a hand-set prior
stands in, because issue 13 asks that such a reaction count against the model unless the text
says otherwise: a quick reaction whose words name no other category's cue has
``reaction_prior`` added to the model's log-odds (``quick_reaction``; README, "How it works")"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from triage.categorize.combiner import LearnedCombiner, feature_vector
from triage.categorize.context import REACTION_MINUTES, TicketContext
from triage.categorize.evidence import CategoryDecision, Evidence, ranked
from triage.categorize.examples import CATEGORIES
from triage.categorize.signals import SignalScore


def _elapsed(minutes: float) -> str:
    """How long after the answer, as a person would say it: "1 minute", "3 hours", "2 days"."""
    if minutes < 90:
        n, unit = max(round(minutes), 0), "minute"
    elif minutes < 48 * 60:
        n, unit = round(minutes / 60), "hour"
    else:
        n, unit = round(minutes / (24 * 60)), "day"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _context_reason(group: str, context: TicketContext) -> str:
    if group == "reaction":
        minutes = context.minutes_after_output
        if minutes is None:
            return "not linked to an answer it could react to"
        kind = "a quick reaction" if context.reacted else "not a quick reaction"
        return f"written {_elapsed(minutes)} after the answer it is about: {kind}"
    if not context.linked:
        return "no linked output to judge"
    parts = []
    if context.complaint_share is not None and context.traffic_share is not None:
        parts.append(
            f"{context.model} {context.version} carries {100 * context.complaint_share:.0f}% of "
            f"that model's other linked complaints vs {100 * context.traffic_share:.0f}% of its "
            "traffic"
        )
    # A source only when its complaints outnumber its traffic share: then it may be the cause.
    if context.source is not None and context.source_log_lift > 0:
        parts.append(
            f"its source {context.source} is cited by "
            f"{100 * (context.source_complaint_share or 0.0):.0f}% of that model's other linked "
            f"complaints vs {100 * (context.source_traffic_share or 0.0):.0f}% of its traffic"
        )
    parts.append(
        f"linked confidence lower than {100 * (1 - context.low_confidence):.0f}% of traffic"
    )
    if context.stale_share:
        parts.append(f"{100 * context.stale_share:.0f}% of its sources stale")
    return "; ".join(parts)


def quick_reaction(scored: Mapping[str, SignalScore], context: TicketContext) -> bool:
    """Written within ``REACTION_MINUTES`` of the answer it is linked to, with no cue word of
    a category other than model: the text does not say otherwise."""
    if not context.reacted:
        return False
    cues = scored.get("cues")
    return not (cues and any(v > 0 for name, v in cues.scores.items() if name != "model"))


def decide_learned_many(
    combiner: LearnedCombiner,
    scored: Sequence[Mapping[str, SignalScore]],
    contexts: Sequence[TicketContext],
    *,
    reaction_prior: float = 0.0,
) -> list[CategoryDecision]:
    """Each ticket's decision (its signals' scores and its context), with one piece of
    evidence per signal the combiner weighs: the combiner reads all their feature rows in one
    pass, which gives each row the numbers it gives alone.
    A quick reaction's model log-odds get ``reaction_prior`` more (module docstring)."""
    if not scored:
        return []
    full = np.array([feature_vector(s, c) for s, c in zip(scored, contexts, strict=True)])
    proba = combiner.predict_proba(full)
    priors = [
        reaction_prior if reaction_prior > 0 and quick_reaction(s, c) else 0.0
        for s, c in zip(scored, contexts, strict=True)
    ]
    if "model" in combiner.classes and any(priors):
        proba[:, combiner.classes.index("model")] *= np.exp(priors)
        proba /= proba.sum(axis=1, keepdims=True)
    contributions = combiner.contributions(full).tolist()  # tickets x classes x groups
    return [
        _explained(combiner, *ticket)
        for ticket in zip(scored, contexts, proba.tolist(), contributions, priors, strict=True)
    ]


def _explained(
    combiner: LearnedCombiner,
    scored: Mapping[str, SignalScore],
    context: TicketContext,
    proba: Sequence[float],
    per_class: Sequence[Sequence[float]],
    prior: float = 0.0,
) -> CategoryDecision:
    """One ticket's decision from its row of the combiner's probabilities and contributions
    (classes x kept groups), with its evidence; ``prior``: what its quick reaction added to
    the model's log-odds."""
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
    if prior > 0:
        minutes = context.minutes_after_output or 0.0
        evidence.append(
            Evidence(
                f"written {_elapsed(minutes)} after the answer it is linked to, and its words "
                f"name no other cause: a quick reaction counts against the model (its odds "
                f"x{np.exp(prior):.1f})",
                "reaction",
                "model",
                round(prior, 4),
                {"minutes_after_output": round(minutes, 1), "within_minutes": REACTION_MINUTES},
            )
        )
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
