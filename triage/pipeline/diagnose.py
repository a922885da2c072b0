"""Where the categorize and rank stages meet the database: each ticket's own category
(``tickets``), each issue's category as the aggregate of its members' with its evidence, the
model versions behind it, and its priority with the breakdown.

A category a person set (``human_fields``) stays the answer; the machine's view is kept beside it
as evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlmodel import Session

from triage import store
from triage.categorize import CATEGORIES, Categorizer, CategoryDecision
from triage.cluster import facet_rows
from triage.config import Settings
from triage.embed import base_model
from triage.link import OutputRecord, OutputSignals, SignalParams, TrafficProfile, output_signals
from triage.models import Issue, as_utc
from triage.pipeline.keys import issue_key
from triage.pipeline.links import output_record
from triage.pipeline.tickets import (
    StoredDecision,
    TicketDecisions,
    aggregate,
    decide_tickets,
    store_ticket_categories,
)
from triage.pipeline.units import ParsedTexts, UnitMatrix
from triage.rank import (
    IssueStats,
    RankConfig,
    iso_week_start,
    load_severity,
    prioritize,
    with_recency,
)
from triage.rollups import load_traffic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiagnoseParams:
    max_evidence: int  # evidence lines kept per issue
    signals: SignalParams
    rank: RankConfig

    @classmethod
    def from_settings(cls, settings: Settings) -> DiagnoseParams:
        return cls(
            max_evidence=settings.categorize_max_evidence,
            signals=SignalParams.from_settings(settings),
            rank=RankConfig.from_settings(settings),
        )


def for_embedder(categorizer: Categorizer, model_id: str) -> Categorizer:
    """``categorizer`` without its classifier and examples when they were trained on the vectors
    of a model other than ``model_id``."""
    trained_on = (
        categorizer.classifier.card.get("embedding_model") if categorizer.classifier else None
    )
    # The int8 ONNX export of the same weights gives vectors within cosine 0.99 of the torch
    # ones, so a classifier trained on either serves both.
    if trained_on and base_model(trained_on) != base_model(model_id):
        # Vectors of another model mean nothing to this classifier: decide on cue words and
        # linked outputs alone rather than on noise.
        logger.warning(
            "classifier was trained on %s vectors; using cues and outputs only", trained_on
        )
        categorizer.classifier = categorizer.examples = categorizer.combiner = None
        if categorizer.fingerprint:
            categorizer.fingerprint += ":without-classifier"
    return categorizer


@dataclass
class Judged:
    """Every processed ticket's own decision and what it was decided from, loaded once per
    refresh: the issues form with the decisions (``cluster.Clusterer.fit(causes=...)``) and
    are then diagnosed from the same numbers."""

    decided: TicketDecisions
    context: Mapping[int, tuple[int, datetime, Any, Any]]  # unit id -> (feedback id, at, ...)
    links: Mapping[int, list[int]]  # feedback id -> linked output ids
    outputs: dict[int, OutputRecord]
    traffic: TrafficProfile
    docs: ParsedTexts  # the units' texts as the lexicons match them, parsed on demand

    @property
    def tickets(self) -> dict[int, CategoryDecision]:
        return self.decided.decisions

    def causes(self, units: UnitMatrix) -> np.ndarray:
        """One row per unit: its ticket's category probabilities, in ``CATEGORIES`` order."""
        return np.array(
            [
                [self.tickets[self.context[u][0]].probabilities.get(c, 0.0) for c in CATEGORIES]
                for u in units.ids
            ],
            dtype=np.float32,
        ).reshape(len(units.ids), len(CATEGORIES))

    def contexts(self, units: UnitMatrix) -> np.ndarray | None:
        """One row per unit: its whole ticket's vector, as the ticket was decided; None without
        an embedder."""
        if self.decided.whole is None or not units.ids:
            return None
        tickets = [self.context[u][0] for u in units.ids]
        order = sorted(set(tickets))
        row = {feedback_id: i for i, feedback_id in enumerate(order)}
        return self.decided.whole(order)[[row[f] for f in tickets]]

    def facets(self, units: UnitMatrix) -> np.ndarray | None:
        """One row per unit: the model and feature of each output its ticket is linked to,
        as ``cluster.facet_rows`` counts them; None when fewer than two occur."""
        names: dict[int, list[str]] = {}
        for feedback_id, output_ids in self.links.items():
            records = (self.outputs[o] for o in output_ids if o in self.outputs)
            names[feedback_id] = [f"{r.model}/{r.feature or ''}" for r in records]
        return facet_rows([names.get(self.context[u][0], []) for u in units.ids])


def judge_tickets(
    session: Session,
    units: UnitMatrix,
    categorizer: Categorizer,
    *,
    params: DiagnoseParams,
    model_id: str,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> Judged:
    """Every processed ticket's own category, in an issue or not: kept from the last refresh
    when nothing it was decided from changed, else decided. Only reads, so it runs outside the
    refresh's write transaction (``diagnose`` stores the decisions)."""
    context = store.unit_context(session)
    links = store.links_by_feedback(session)
    # Only the outputs linked to tickets row by row; all traffic from its rollups.
    linked_ids = {o for ids in links.values() for o in ids}
    outputs = {
        o.id: output_record(o)
        for o in store.model_outputs_by_id(session, ids=linked_ids)
        if o.id is not None
    }
    traffic = load_traffic(session, params=params.signals)
    stored = {
        feedback_id: StoredDecision(key, category, confidence, probabilities, evidence or [])
        for feedback_id, key, category, confidence, probabilities, evidence
        in store.stored_decisions(session)
        if category is not None and probabilities
    }  # fmt: skip
    docs = ParsedTexts(units.texts)
    decided = decide_tickets(
        units, categorizer, context=context, links=links, outputs=outputs, traffic=traffic,
        docs=docs, model_id=model_id, stored=stored, embed=embed,
    )  # fmt: skip
    return Judged(decided, context, links, outputs, traffic, docs)


def issue_keys(
    units: UnitMatrix,
    rows_of: Mapping[int, list[int]],
    judged: Judged,
    issues: Mapping[int, Issue],
    *,
    week_end: datetime,
    params: str,
) -> dict[int, str | None]:
    """issue id -> what its labels, category and priority are computed from (``keys``), for
    each of ``issues`` (by id) with units."""
    keys: dict[int, str | None] = {}
    for issue_id, issue in issues.items():
        rows = rows_of.get(issue_id)
        if not rows:
            continue
        members = {}
        for r in rows:
            feedback_id, at, customer, value = judged.context[units.ids[r]]
            members[feedback_id] = (judged.decided.shown_key(feedback_id), at, customer, value)
        person = {f: getattr(issue, f) for f in sorted(issue.human_fields)}
        keys[issue_id] = issue_key(
            unit_ids=[units.ids[r] for r in rows],
            tickets=members,
            linked_ids=sorted({o for f in members for o in judged.links.get(f, [])}),
            traffic_n=judged.traffic.n,
            week_end=week_end,
            person={"fields": person, "status": issue.status},
            params=params,
        )
    return keys


def changed_issues(issues: Mapping[int, Issue], keys: Mapping[int, str | None]) -> set[int]:
    """The issues (by id) whose key differs from the one stored, or is unknown."""
    return {
        issue_id
        for issue_id, issue in issues.items()
        if issue_id in keys and (keys[issue_id] is None or keys[issue_id] != issue.refresh_key)
    }


def diagnose(
    session: Session,
    units: UnitMatrix,
    issue_of: Mapping[int, int],
    categorizer: Categorizer,
    judged: Judged,
    *,
    params: DiagnoseParams,
    now: datetime,
    week_end: datetime | None = None,
    keys: Mapping[int, str | None] | None = None,
) -> None:
    """Store every ticket decided in ``judged``; then category with evidence (the aggregate of
    its tickets' decisions), linked model versions, and priority with its breakdown, for every
    issue with units. ``issue_of``: unit id -> issue id. The trend's week ends at ``week_end``:
    by default the last complete ISO week, the one the weekly digest reports, so the issue list
    and the digest agree. With ``keys`` (``issue_keys``), an issue whose stored key is the same
    only has its recency, the part of its priority the clock moves, brought up to date."""
    week_end = week_end or iso_week_start(now)
    context, links, outputs, traffic = judged.context, judged.links, judged.outputs, judged.traffic
    tickets = judged.tickets  # before their issues are heard: what each issue aggregates
    rows_of = units.rows_by_issue(issue_of)
    issues = [
        (issue, rows_of[issue_id])
        for issue_id, issue in store.active_issues_by_id(session).items()
        if issue_id in rows_of
    ]
    issues_of: dict[int, set[int]] = {}
    for issue, rows in issues:
        for r in rows:
            issues_of.setdefault(context[units.ids[r]][0], set()).add(issue.id or 0)
    shown = judged.decided.shown(
        issues_of,
        weight=categorizer.params.issue_weight,
        uncertain_below=categorizer.uncertain_below,
    )
    store_ticket_categories(session, shown, max_evidence=params.max_evidence)
    severity = load_severity(params.rank.severity_path)
    keys = keys or {}
    changed = []
    for issue, rows in issues:
        key = keys.get(issue.id or 0)
        if key is None or key != issue.refresh_key:
            changed.append((issue, rows))
            continue
        last = max(as_utc(context[units.ids[r]][1]) for r in rows)
        issue.priority_breakdown = with_recency(issue.priority_breakdown, last, now, params.rank)
        issue.priority = round(sum(issue.priority_breakdown.values()), 6)
        session.add(issue)
    # The changed issues' texts parsed in one pass (most were parsed to decide their tickets).
    judged.docs.rows([r for _, rows in changed for r in rows])
    for issue, rows in changed:
        texts = [units.texts[r] for r in rows]
        docs = judged.docs.rows(rows)
        feedback_ids = sorted({context[units.ids[r]][0] for r in rows})
        linked_ids = sorted({o for f in feedback_ids for o in links.get(f, [])})
        linked = [outputs[o] for o in linked_ids if o in outputs]
        signals = output_signals(linked, traffic) if linked else None
        decision = aggregate([tickets[f] for f in feedback_ids], signals, categorizer)
        apply_category(issue, decision, max_evidence=params.max_evidence)
        issue.model_versions = model_versions(signals, n_linked=len(linked))
        customers: dict[str, float | None] = {}
        written: dict[int, datetime] = {}
        for r in rows:
            feedback_id, at, customer, value = context[units.ids[r]]
            written[feedback_id] = as_utc(at)
            if customer:
                customers[customer] = max(value or 0.0, customers.get(customer) or 0.0) or None
        # One ticket, one voice: a ticket of 240 statements is one ticket in volume, trend and
        # severity, as its customer is one customer in reach.
        priority = prioritize(
            IssueStats(
                timestamps=list(written.values()),
                customers=customers,
                texts=texts,
                category_confidence=issue.category_confidence,
                now=now,
                week_end=week_end,
                text_tickets=[context[units.ids[r]][0] for r in rows],
            ),
            config=params.rank,
            severity_lexicon=severity,
            docs=docs,
        )
        issue.priority = round(priority.score, 6)
        issue.priority_breakdown = {k: round(v, 6) for k, v in priority.breakdown.items()}
        issue.trend = priority.trend.to_dict()
        issue.refresh_key = keys.get(issue.id or 0)
        session.add(issue)


def model_versions(signals: OutputSignals | None, *, n_linked: int) -> list[dict[str, Any]]:
    """The model versions behind an issue's linked outputs, suspect ones first, then the most
    linked: each with its count, its share of the issue's linked outputs (``issue_share``), its
    share of that model's linked outputs (``share``) and of that model's traffic at the time."""
    groups = [g for g in (signals.groups if signals else []) if g.field == "model_version"]
    groups.sort(key=lambda g: (not g.significant, -g.linked_count, g.value))
    return [
        {
            "model": g.within, "version": g.value, "linked": g.linked_count,
            "issue_share": round(g.linked_count / n_linked, 3) if n_linked else None,
            "share": round(g.linked_share, 3), "traffic_share": round(g.traffic_share, 3),
            "lift": round(g.lift, 2), "p_value": g.p_value, "significant": g.significant,
        }
        for g in groups[:5]
    ]  # fmt: skip


def apply_category(issue: Issue, decision: CategoryDecision, *, max_evidence: int) -> None:
    evidence = [e.to_dict() for e in decision.evidence[:max_evidence]]
    if "category" in issue.human_fields:
        # A person decided; the machine's view stays visible as evidence, never as the answer.
        issue.category_confidence = 1.0
        issue.category_runner_up = (
            decision.category if decision.category != issue.category else decision.runner_up
        )
        by_person = {"reason": "category set by a person", "signal": "human",
                     "category": issue.category, "contribution": 1.0}  # fmt: skip
        issue.evidence = [by_person, *evidence]
        return
    issue.category = decision.category
    issue.category_confidence = decision.confidence
    issue.category_runner_up = decision.runner_up
    issue.evidence = evidence
