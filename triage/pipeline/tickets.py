"""Each ticket's own category, and an issue's category as the aggregate of its members'.

Every processed ticket, in an issue or not, is decided from its own statements (its units'
texts and vectors), its own linked outputs and their context (``categorize.ticket_contexts``,
the same numbers ``triage train`` learned from). An issue's category is then the mean of its
members' probabilities, with the issue's own output evidence beside it: the issue never
overwrites a member's category.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlmodel import Session

from triage import store
from triage.categorize import CATEGORIES, Categorizer, CategoryDecision, Evidence, score_outputs
from triage.categorize.context import TicketLinks, ticket_contexts
from triage.link import OutputRecord, OutputSignals, TrafficProfile
from triage.models import as_utc
from triage.pipeline.units import UnitMatrix


def rows_by_ticket(
    units: UnitMatrix, context: Mapping[int, tuple[int, datetime, Any, Any]]
) -> dict[int, list[int]]:
    """feedback id -> its rows in ``units``, in position order."""
    rows: dict[int, list[int]] = {}
    for row, unit_id in enumerate(units.ids):
        rows.setdefault(context[unit_id][0], []).append(row)
    return rows


def decide_tickets(
    units: UnitMatrix,
    categorizer: Categorizer,
    *,
    context: Mapping[int, tuple[int, datetime, Any, Any]],
    links: Mapping[int, list[int]],
    outputs: Mapping[int, OutputRecord],
    traffic: TrafficProfile,
    docs: Sequence[Any],
) -> dict[int, CategoryDecision]:
    """Every processed ticket's category from its own evidence; feedback id -> decision.
    ``docs``: ``lemma_docs`` of ``units.texts``. Reads nothing and writes nothing."""
    rows_of = rows_by_ticket(units, context)
    tickets = {
        feedback_id: TicketLinks(
            as_utc(context[units.ids[rows[0]]][1]),
            [outputs[o] for o in links.get(feedback_id, []) if o in outputs],
        )
        for feedback_id, rows in rows_of.items()
    }
    judged = ticket_contexts(tickets, list(outputs.values()), traffic)
    ordered = sorted(rows_of.items())
    # The word model reads every ticket in one pass (one vectorizer call, one product).
    words = categorizer.words_scores([[units.texts[r] for r in rows] for _, rows in ordered])
    decisions: dict[int, CategoryDecision] = {}
    for (feedback_id, rows), ticket_words in zip(ordered, words, strict=True):
        signals, ticket_context = judged[feedback_id]
        decisions[feedback_id] = categorizer.decide(
            [units.texts[r] for r in rows],
            units.vectors[rows],
            signals,
            docs=[docs[r] for r in rows],
            context=ticket_context,
            words=ticket_words,
        )
    return decisions


def store_ticket_categories(
    session: Session, decisions: Mapping[int, CategoryDecision], *, max_evidence: int
) -> None:
    """Write each ticket's decision: category, confidence and its first evidence lines."""
    store.update_feedback(
        session,
        rows=[
            {
                "id": feedback_id,
                "category": decision.category,
                "category_confidence": decision.confidence,
                "category_evidence": [e.to_dict() for e in decision.evidence[:max_evidence]],
            }
            for feedback_id, decision in sorted(decisions.items())
        ],
    )


def aggregate(
    members: Sequence[CategoryDecision],
    signals: OutputSignals | None,
    categorizer: Categorizer,
) -> CategoryDecision:
    """The issue's decision: the mean of its members' probabilities, then the issue's own
    linked-output evidence (version concentration, stale sources) for a person to check."""
    mean = {
        name: float(np.mean([m.probabilities.get(name, 0.0) for m in members]))
        for name in CATEGORIES
    }
    ranked = sorted(CATEGORIES, key=lambda n: (-mean[n], CATEGORIES.index(n)))
    category, runner_up = ranked[0], ranked[1]
    votes = sum(1 for m in members if m.category == category)
    shares = ", ".join(f"{name} {mean[name]:.2f}" for name in ranked if mean[name] >= 0.005)
    evidence = [
        Evidence(
            f"{votes} of its {len(members)} tickets are {category} on their own evidence "
            f"(mean probabilities: {shares})",
            "tickets",
            category,
            round(mean[category], 4),
        )
    ]
    if signals is not None:
        outputs = score_outputs(signals, categorizer.params.thresholds)
        evidence += sorted(
            (
                Evidence(reason, "outputs", name, round(outputs.scores[name], 4), outputs.data)
                for name, reason in outputs.reasons.items()
            ),
            key=lambda e: (e.category != category, -e.contribution),
        )
    rounded = {name: round(value, 4) for name, value in mean.items()}
    return CategoryDecision(
        category=category,
        confidence=rounded[category],
        runner_up=runner_up if mean[runner_up] > 0 else None,
        evidence=evidence,
        contributions={"tickets": rounded},
        totals=rounded,
        probabilities=rounded,
    )
