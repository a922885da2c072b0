"""What a ticket's own linked outputs say beyond the ``outputs`` signal: how stale, how unsure,
how over-represented its model version is among that model's complaints, how soon it came after
the answer. Computed by the same function at training (``triage train --outputs``) and in the
refresh, so the learned combiner sees the same numbers in both places.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from triage.link import OutputRecord, OutputSignals, TrafficProfile, output_signals

# A reaction this soon after the answer is about that answer ("no, that's wrong").
REACTION_MINUTES = 10.0


@dataclass(frozen=True)
class TicketContext:
    linked: bool = False
    stale_share: float = 0.0
    low_confidence: float = 0.0  # 1 - percentile of the linked confidence in traffic
    low_eval: float = 0.0
    version_log_lift: float = 0.0  # log(share of its model's other complaints / traffic share)
    minutes_after_output: float | None = None
    model: str | None = None
    version: str | None = None
    complaint_share: float | None = None
    traffic_share: float | None = None

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


def complaint_counts(
    tickets: Mapping[int, TicketLinks],
) -> tuple[Counter[tuple[str, str | None]], Counter[str]]:
    """Linked tickets per (model, version) and per model, each counted by its first output."""
    complaints: Counter[tuple[str, str | None]] = Counter()
    per_model: Counter[str] = Counter()
    for links in tickets.values():
        if links.outputs:
            first = links.outputs[0]
            complaints[(first.model, first.model_version)] += 1
            per_model[first.model] += 1
    return complaints, per_model


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
    ticket never testifies for itself) against that version's share of the model's traffic.
    """
    complaints, per_model = complaint_counts(tickets)
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
        # Half a count of smoothing keeps a lone complaint or an unseen version finite.
        share_c = (complaints[key] - 1 + 0.5) / (per_model[first.model] - 1 + 1)
        share_t = (served[key] + 0.5) / (served_model[first.model] + 1)
        freshness = signals.freshness
        result[ticket_id] = (
            signals,
            TicketContext(
                linked=True,
                stale_share=float(freshness.stale_share or 0.0) if freshness else 0.0,
                low_confidence=_percentile_low(signals.confidence),
                low_eval=_percentile_low(signals.eval_score),
                version_log_lift=math.log(max(share_c, 1e-3) / share_t),
                minutes_after_output=(links.created_at - first.created_at).total_seconds() / 60,
                model=first.model,
                version=first.model_version,
                complaint_share=share_c,
                traffic_share=share_t,
            ),
        )
    return result
