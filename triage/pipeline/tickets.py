"""Each ticket's own category, and an issue's category as the aggregate of its members'.

Every processed ticket, in an issue or not, is decided from its own statements (its units'
texts and vectors), its own linked outputs and their context (``categorize.ticket_contexts``,
the same numbers ``triage train`` learned from). An issue's category is then the mean of its
members' probabilities, with the issue's own output evidence beside it: the issue never
overwrites a member's category.

Each ticket is read against its database's other tickets: its vector centred on their mean
(``categorize.domain``), as training centres each product on its own.

A ticket whose inputs did not change since the last refresh (``pipeline.keys``) keeps the
decision stored then: a refresh decides only new tickets and those whose evidence moved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlmodel import Session

from triage import store
from triage.categorize import CATEGORIES, Categorizer, CategoryDecision, Evidence, score_outputs
from triage.categorize.context import TicketLinks, complaint_counts, ticket_contexts
from triage.categorize.domain import DomainCentre, ladder_window, shrunk_mean
from triage.lexicon import lemma_docs
from triage.link import OutputRecord, OutputSignals, TrafficProfile
from triage.models import as_utc
from triage.pipeline.keys import ticket_key
from triage.pipeline.units import ParsedTexts, UnitMatrix


def rows_by_ticket(
    units: UnitMatrix, context: Mapping[int, tuple[int, datetime, Any, Any]]
) -> dict[int, list[int]]:
    """feedback id -> its rows in ``units``, in position order."""
    rows: dict[int, list[int]] = {}
    for row, unit_id in enumerate(units.ids):
        rows.setdefault(context[unit_id][0], []).append(row)
    return rows


@dataclass(frozen=True)
class StoredDecision:
    """A ticket's decision as the last refresh stored it, with what it was decided from."""

    key: str
    category: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[dict[str, Any]]

    def decision(self) -> CategoryDecision:
        probabilities = {name: float(self.probabilities.get(name, 0.0)) for name in CATEGORIES}
        ranked = sorted(CATEGORIES, key=lambda n: (-probabilities[n], CATEGORIES.index(n)))
        return CategoryDecision(
            category=self.category,
            confidence=self.confidence,
            runner_up=next((n for n in ranked if n != self.category), None),
            evidence=[Evidence(**e) for e in self.evidence],
            contributions={},
            totals=probabilities,
            probabilities=probabilities,
        )


@dataclass
class TicketDecisions:
    decisions: dict[int, CategoryDecision]  # feedback id -> its decision
    keys: dict[int, str | None]  # feedback id -> what it was decided from (``keys``)
    decided: set[int]  # decided in this refresh; the others kept their stored decision


def decide_tickets(
    units: UnitMatrix,
    categorizer: Categorizer,
    *,
    context: Mapping[int, tuple[int, datetime, Any, Any]],
    links: Mapping[int, list[int]],
    outputs: Mapping[int, OutputRecord],
    traffic: TrafficProfile,
    docs: ParsedTexts,
    model_id: str,
    stored: Mapping[int, StoredDecision] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> TicketDecisions:
    """Every processed ticket's category from its own evidence. A ticket whose key matches its
    ``stored`` decision keeps it; the others are decided (their texts parsed, their words scored,
    in one pass each). With ``embed`` (texts -> vectors), each is decided on its statements read
    as one text with that text's vector, as the classifier was trained on whole tickets;
    without, on its statements' vectors (the API's corrections, which load no embedder: the
    next refresh decides those tickets again). Reads nothing and writes nothing."""
    stored = stored or {}
    rows_of = rows_by_ticket(units, context)
    tickets = {
        feedback_id: TicketLinks(
            as_utc(context[units.ids[rows[0]]][1]),
            [outputs[o] for o in links.get(feedback_id, []) if o in outputs],
        )
        for feedback_id, rows in rows_of.items()
    }
    complaints = complaint_counts(tickets)

    def whole_text(feedback_id: int) -> str:
        return " ".join(units.texts[r] for r in rows_of[feedback_id])

    domain = domain_centre(categorizer, sorted(rows_of), whole_text, embed)
    keys: dict[int, str | None] = {}
    decisions: dict[int, CategoryDecision] = {}
    for feedback_id, rows in rows_of.items():
        key = ticket_key(
            categorizer.fingerprint, model_id, [units.ids[r] for r in rows],
            tickets[feedback_id], traffic=traffic, complaints=complaints,
            whole=embed is not None, centre=domain.digest,
        )  # fmt: skip
        keys[feedback_id] = key
        kept = stored.get(feedback_id)
        if key is not None and kept is not None and kept.key == key:
            decisions[feedback_id] = kept.decision()
    todo = sorted(f for f in rows_of if f not in decisions)
    judged = ticket_contexts(tickets, list(outputs.values()), traffic, only=set(todo))
    # The word model reads every ticket in one pass (one vectorizer call, one product).
    words = categorizer.words_scores([[units.texts[r] for r in rows_of[f]] for f in todo])
    if embed is not None:
        # Each ticket whole, as `triage train` saw the labelled ones: one text, one vector.
        whole = [whole_text(f) for f in todo]
        whole_vectors, whole_docs = domain.apply(embed(whole)), lemma_docs(whole)
    else:
        docs.rows([r for f in todo for r in rows_of[f]])  # one parsing pass
    for i, (feedback_id, ticket_words) in enumerate(zip(todo, words, strict=True)):
        rows = rows_of[feedback_id]
        signals, ticket_context = judged[feedback_id]
        if embed is not None:
            texts, vectors, parsed = [whole[i]], whole_vectors[i : i + 1], [whole_docs[i]]
        else:
            texts, vectors, parsed = (
                [units.texts[r] for r in rows],
                domain.apply(units.vectors[rows]),
                docs.rows(rows),
            )
        decisions[feedback_id] = categorizer.decide(
            texts, vectors, signals, docs=parsed, context=ticket_context, words=ticket_words
        )
    return TicketDecisions(decisions, keys, set(todo))


def domain_centre(
    categorizer: Categorizer,
    tickets: Sequence[int],
    whole_text: Callable[[int], str],
    embed: Callable[[list[str]], np.ndarray] | None,
) -> DomainCentre:
    """What the database's tickets (feedback ids in the order they were stored) are centred on
    when the classifier was trained on centred vectors (``categorize.domain``): the shrunk mean
    of a window of them read whole, which moves only at the steps of ``ladder_window``. Without
    ``embed`` (a correction in the API), the prior: the next refresh decides those again."""
    prior = categorizer.domain_prior
    if prior is None:
        return DomainCentre()
    if embed is None:
        return DomainCentre(prior)
    start, stop = ladder_window(len(tickets))
    window = [whole_text(f) for f in tickets[start:stop]]
    vectors = embed(window) if window else np.empty((0, len(prior)), dtype=np.float32)
    return DomainCentre(shrunk_mean(vectors, prior))


def store_ticket_categories(
    session: Session, judged: TicketDecisions, *, max_evidence: int
) -> None:
    """Write each ticket decided in this refresh: category, confidence, its first evidence
    lines, its probabilities and what it was decided from."""
    store.update_feedback(
        session,
        rows=[
            {
                "id": feedback_id,
                "category": decision.category,
                "category_confidence": decision.confidence,
                "category_evidence": [e.to_dict() for e in decision.evidence[:max_evidence]],
                "category_probabilities": decision.probabilities,
                "category_key": judged.keys.get(feedback_id),
            }
            for feedback_id, decision in sorted(judged.decisions.items())
            if feedback_id in judged.decided
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
