"""Each ticket's own category, and an issue's category as the aggregate of its members'.

Every processed ticket, in an issue or not, is decided from its own statements (its units'
texts and vectors), its own linked outputs and their context (``categorize.ticket_contexts``,
the same numbers ``triage train`` learned from). An issue's category is then the mean of its
members' probabilities, with the issue's own output evidence beside it: the issue never
overwrites a member's category.

Each ticket is read against its database's other tickets: its vector centred on their mean
(``categorize.domain``), as training centres each product on its own; then its own
probabilities are mixed with its nearest tickets' own by the weight training learned
(``categorize.neighbours``). Once the issues have formed, the other tickets of its issues are
heard the same way (``categorize.issue_peers``, ``TicketDecisions.shown``); the issue's
own category stays the mean of its members' decisions before that. What is stored is its own
decision's probabilities, to keep, and the decision as mixed, to show; a ticket whose
neighbours or issue peers moved is written again (``pipeline.peers``).

A ticket whose inputs did not change since the last refresh (``pipeline.keys``) keeps the
decision stored then: a refresh decides only new tickets and those whose evidence moved.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlmodel import Session

from triage import store
from triage.categorize import (
    CATEGORIES,
    Categorizer,
    CategoryDecision,
    Evidence,
    ranked,
    score_outputs,
)
from triage.categorize.abstain import mark_uncertain
from triage.categorize.context import TicketLinks, complaint_counts, ticket_contexts
from triage.categorize.decision import TicketInputs
from triage.categorize.domain import DomainCentre, ladder_window, shrunk_mean
from triage.link import OutputRecord, OutputSignals, TrafficProfile
from triage.models import as_utc
from triage.pipeline.keys import digest, ticket_key
from triage.pipeline.peers import BORROWED, decision_of, with_issue_peers, with_neighbours
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
    """A ticket's decision as the last refresh stored it, with what it was decided from: its
    key and its own probabilities (``category_probabilities``), and the category, confidence and
    evidence shown, which its nearest tickets may have moved (``with_neighbours``)."""

    key: str
    category: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[dict[str, Any]]

    def decision(self) -> CategoryDecision:
        """The ticket's own decision, before its neighbours and its issue were heard."""
        own = [Evidence(**e) for e in self.evidence if e.get("signal") not in BORROWED]
        if len(own) < len(self.evidence):
            return decision_of(self.probabilities, own)
        # Shown as it was decided (nothing borrowed): category and confidence as stored.
        decided = decision_of(self.probabilities, own)
        runner_up = next((n for n in ranked(decided.probabilities) if n != self.category), None)
        return replace(
            decided, category=self.category, confidence=self.confidence, runner_up=runner_up
        )

    def shows(self, decision: CategoryDecision) -> bool:
        """Whether what is stored for people is ``decision``'s."""
        first = self.evidence[0].get("reason") if self.evidence else None
        shown = decision.evidence[0].reason if decision.evidence else None
        return (self.category, self.confidence, first) == (
            decision.category, decision.confidence, shown,
        )  # fmt: skip


@dataclass
class TicketDecisions:
    # feedback id -> its decision with its neighbours heard: what the issues form with and
    # aggregate; ``shown`` adds what its issue says and whether it is uncertain
    decisions: dict[int, CategoryDecision]
    keys: dict[int, str | None]  # feedback id -> what it was decided from (``keys``)
    decided: set[int]  # decided in this refresh; the others kept their stored decision
    # feedback id -> its own probabilities (stored, for the next refresh to keep)
    own: dict[int, dict[str, float]] = field(default_factory=dict)
    # feedback ids -> their whole tickets' vectors (embedded or from the cache, each once per
    # refresh); None without an embedder
    whole: Callable[[Sequence[int]], np.ndarray] | None = None
    # feedback id -> its decision as the last refresh stored it
    stored: Mapping[int, StoredDecision] = field(default_factory=dict)

    @property
    def changed(self) -> set[int]:
        """What is written back: the tickets decided in this refresh and those shown otherwise
        than stored (their neighbours or their issue moved)."""
        return self.decided | {
            f for f, d in self.decisions.items() if f in self.stored and not self.stored[f].shows(d)
        }

    def shown(
        self, issues_of: Mapping[int, Collection[int]], *, weight: float, uncertain_below: float
    ) -> TicketDecisions:
        """These decisions as people read them: with the other tickets of each one's issues
        heard (``peers.with_issue_peers``; ``issues_of``: feedback id -> its issues' ids) and
        the uncertain ones saying so (``abstain.mark_uncertain``). The issues aggregate the
        decisions before (``self``), which their keys are computed from."""
        heard = with_issue_peers(self.decisions, issues_of, weight)
        return replace(self, decisions=mark_uncertain(heard, uncertain_below))

    def shown_key(self, feedback_id: int) -> str | None:
        """What the ticket's decision as shown comes from: its key and what its neighbours
        added (the issue's key is computed from this)."""
        key = self.keys.get(feedback_id)
        if key is None:
            return None
        return digest("shown", key, self.decisions[feedback_id].probabilities)


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

    # A one-statement ticket read whole is its statement, whose vector is at hand.
    known = {f: units.vectors[rows[0]] for f, rows in rows_of.items() if len(rows) == 1}
    whole_vectors = None if embed is None else _once_per_ticket(embed, whole_text, known)
    domain = domain_centre(categorizer, sorted(rows_of), whole_vectors)
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
    if whole_vectors is not None:
        # Each ticket whole, as `triage train` saw the labelled ones: one text, one vector.
        whole = [whole_text(f) for f in todo]
        todo_vectors = domain.apply(whole_vectors(todo))
        whole_docs = docs.parse(whole)  # a one-statement ticket's is its statement's
        examples = categorizer.examples_scores([todo_vectors[i : i + 1] for i in range(len(todo))])
    else:
        docs.rows([r for f in todo for r in rows_of[f]])  # one parsing pass
        examples = [None] * len(todo)
    inputs = []
    for i, (feedback_id, ticket_words) in enumerate(zip(todo, words, strict=True)):
        rows = rows_of[feedback_id]
        signals, ticket_context = judged[feedback_id]
        if whole_vectors is not None:
            texts, vectors, parsed = [whole[i]], todo_vectors[i : i + 1], [whole_docs[i]]
        else:
            texts, vectors, parsed = (
                [units.texts[r] for r in rows],
                domain.apply(units.vectors[rows]),
                docs.rows(rows),
            )
        inputs.append(
            TicketInputs(
                texts,
                vectors,
                signals,
                docs=parsed,
                context=ticket_context,
                words=ticket_words,
                examples=examples[i],
            )
        )
    # All at once: each signal in one pass, the combiner over every ticket's features together.
    decisions.update(zip(todo, categorizer.decide_many(inputs), strict=True))
    own = decisions
    # Without an embedder (a correction in the API), the tickets' own decisions: the next
    # refresh decides those again.
    if whole_vectors is not None and categorizer.neighbour_weight > 0:
        order = sorted(rows_of)
        # Every ticket as the classifier reads it; from the vector cache but the new ones.
        vectors = domain.apply(whole_vectors(order))
        decisions = with_neighbours(own, vectors, order, categorizer.neighbour_weight)
    return TicketDecisions(
        decisions, keys, set(todo),
        own={f: d.probabilities for f, d in own.items()}, whole=whole_vectors, stored=stored,
    )  # fmt: skip


def _once_per_ticket(
    embed: Callable[[list[str]], np.ndarray],
    whole_text: Callable[[int], str],
    known: Mapping[int, np.ndarray],
) -> Callable[[Sequence[int]], np.ndarray]:
    """feedback ids -> their tickets' whole-text vectors, each embedded (or read from the vector
    cache) once per refresh however many steps want it: the centre's window, the tickets
    decided, the neighbours. ``known``: vectors at hand already (the same the cache holds)."""
    fetched: dict[int, np.ndarray] = dict(known)

    def whole_vectors(feedback_ids: Sequence[int]) -> np.ndarray:
        if not feedback_ids:
            return np.asarray(embed([]), dtype=np.float32)  # (0, dim)
        missing = [f for f in feedback_ids if f not in fetched]
        if missing:
            fetched.update(zip(missing, embed([whole_text(f) for f in missing]), strict=True))
        return np.array([fetched[f] for f in feedback_ids], dtype=np.float32)

    return whole_vectors


def domain_centre(
    categorizer: Categorizer,
    tickets: Sequence[int],
    whole_vectors: Callable[[Sequence[int]], np.ndarray] | None,
) -> DomainCentre:
    """What the database's tickets (feedback ids in the order they were stored) are centred on
    when the classifier was trained on centred vectors (``categorize.domain``): the shrunk mean
    of a window of them read whole (``whole_vectors``: feedback ids -> vectors), which moves only
    at the steps of ``ladder_window``. Without ``whole_vectors`` (a correction in the API, no
    embedder), the prior: the next refresh decides those again."""
    prior = categorizer.domain_prior
    if prior is None:
        return DomainCentre()
    if whole_vectors is None:
        return DomainCentre(prior)
    start, stop = ladder_window(len(tickets))
    window = list(tickets[start:stop])
    vectors = whole_vectors(window) if window else np.empty((0, len(prior)), dtype=np.float32)
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
                "category_probabilities": judged.own.get(feedback_id, decision.probabilities),
                "category_key": judged.keys.get(feedback_id),
            }
            for feedback_id, decision in sorted(judged.decisions.items())
            if feedback_id in judged.changed
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
    order = ranked(mean)
    category, runner_up = order[0], order[1]
    votes = sum(1 for m in members if m.category == category)
    shares = ", ".join(f"{name} {mean[name]:.2f}" for name in order if mean[name] >= 0.005)
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
