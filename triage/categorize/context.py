"""What a ticket's own linked outputs say beyond the ``outputs`` signal: how stale, how unsure,
how over-represented its model version and its cited sources are among that model's complaints,
how soon it came after the answer. Computed by the same function at training
(``triage train --outputs``) and in the refresh, so the learned combiner sees the same numbers in
both places.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from triage.link import (
    OutputRecord,
    OutputSignals,
    TrafficProfile,
    cited_sources,
    output_signals,
)

# A reaction this soon after the answer is about that answer ("no, that's wrong").
REACTION_MINUTES = 10.0


@dataclass(frozen=True)
class TicketContext:
    linked: bool = False
    stale_share: float = 0.0
    low_confidence: float = 0.0  # 1 - percentile of the linked confidence in traffic
    low_eval: float = 0.0
    version_log_lift: float = 0.0  # log(share of its model's other complaints / traffic share)
    # The same for the dated source its output cites that is most over-represented among the
    # model's other complaints: a fault in one feed shows in the outputs that read it.
    source_log_lift: float = 0.0
    minutes_after_output: float | None = None
    model: str | None = None
    version: str | None = None
    complaint_share: float | None = None
    traffic_share: float | None = None
    source: str | None = None  # the source of ``source_log_lift``
    source_complaint_share: float | None = None
    source_traffic_share: float | None = None

    @property
    def reacted(self) -> bool:
        m = self.minutes_after_output
        return m is not None and 0.0 <= m <= REACTION_MINUTES


@dataclass(frozen=True)
class TicketLinks:
    """One ticket's linked outputs and when it was written."""

    created_at: datetime
    outputs: Sequence[OutputRecord]


def _percentile_low(distribution: object) -> float:
    # Unknown sits in the middle, so a missing score neither accuses nor clears the model.
    value = getattr(distribution, "linked_percentile", None)
    return 1.0 - value if value is not None else 0.5


@dataclass(frozen=True)
class Complaints:
    """Linked tickets per (model, version), per model and per (model, cited source), each
    counted by its first output."""

    by_version: Counter[tuple[str, str | None]]
    by_model: Counter[str]
    by_source: Counter[tuple[str, str]]


def complaint_counts(tickets: Mapping[int, TicketLinks]) -> Complaints:
    """``Complaints`` of the linked ones among ``tickets``."""
    counted = Complaints(Counter(), Counter(), Counter())
    for links in tickets.values():
        if links.outputs:
            first = links.outputs[0]
            counted.by_version[(first.model, first.model_version)] += 1
            counted.by_model[first.model] += 1
            for source in cited_sources(first):
                counted.by_source[(first.model, source)] += 1
    return counted


def _shares(complaints: int, others: int, served: int, served_model: int) -> tuple[float, float]:
    """(share of the model's other complaints, share of the model's traffic), the ticket itself
    left out; half a count of smoothing keeps a lone complaint or an unseen value finite."""
    return (complaints - 1 + 0.5) / (others - 1 + 1), (served + 0.5) / (served_model + 1)


def _log_lift(shares: tuple[float, float]) -> float:
    return math.log(max(shares[0], 1e-3) / shares[1])


def ticket_contexts(
    tickets: Mapping[int, TicketLinks],
    outputs: Sequence[OutputRecord],
    traffic: TrafficProfile | None = None,
    *,
    only: Collection[int] | None = None,
) -> dict[int, tuple[OutputSignals | None, TicketContext]]:
    """Each ticket's output signals (``None`` when unlinked) and context (of the tickets in
    ``only``, counting all for the lift); ``outputs`` is all traffic, read only when
    ``traffic`` (its profile, or the rollups') is not given.

    The version lift counts every other linked ticket of the same model (leave-one-out, so a
    ticket never testifies for itself) against that version's share of the model's traffic;
    the source lift does the same for each dated source the first output cites and keeps the
    highest: complaints piling on one version point at the model, on one feed at the data.
    """
    complaints = complaint_counts(tickets)
    traffic = traffic or TrafficProfile(outputs)
    served, served_model = traffic.version_counts, traffic.group_counts["model"]

    result: dict[int, tuple[OutputSignals | None, TicketContext]] = {}
    for ticket_id, links in tickets.items():
        if only is not None and ticket_id not in only:
            continue
        if not links.outputs:
            result[ticket_id] = (None, TicketContext())
            continue
        signals = output_signals(list(links.outputs), traffic)
        first = links.outputs[0]
        key = (first.model, first.model_version)
        others, in_model = complaints.by_model[first.model], served_model[first.model]
        version = _shares(complaints.by_version[key], others, served[key], in_model)
        # The cited source most over-represented among the model's complaints. Traffic counts
        # a source across models (the rollups'), so a source two models share looks commoner
        # than it is to either: the lift errs low.
        by_source = {
            source: _shares(complaints.by_source[(first.model, source)], others,
                            traffic.source_counts[source], in_model)
            for source in cited_sources(first)
        }  # fmt: skip
        source = max(by_source, key=lambda name: _log_lift(by_source[name]), default=None)
        freshness = signals.freshness
        result[ticket_id] = (
            signals,
            TicketContext(
                linked=True,
                stale_share=float(freshness.stale_share or 0.0) if freshness else 0.0,
                low_confidence=_percentile_low(signals.confidence),
                low_eval=_percentile_low(signals.eval_score),
                version_log_lift=_log_lift(version),
                source_log_lift=_log_lift(by_source[source]) if source is not None else 0.0,
                minutes_after_output=(links.created_at - first.created_at).total_seconds() / 60,
                model=first.model,
                version=first.model_version,
                complaint_share=version[0],
                traffic_share=version[1],
                source=source,
                source_complaint_share=by_source[source][0] if source is not None else None,
                source_traffic_share=by_source[source][1] if source is not None else None,
            ),
        )
    return result
