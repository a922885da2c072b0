"""What the outputs behind an issue look like next to all traffic.

``output_signals`` compares the outputs linked to one issue with all traffic: which model,
version and feature they come from (one-sided binomial test against the traffic share, so a
handful of complaints is never called a regression), their confidence, latency and eval scores
(medians and one-sided Mann-Whitney tests), how old the sources they cite were, and which fields
are missing. It returns plain numbers; the categorize stage turns them into sentences.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy import special

from triage.link.linking import OutputRecord
from triage.link.traffic import (
    GROUP_FIELDS,
    VALUE_FIELDS,
    SignalParams,
    SourceAge,
    TrafficProfile,
    group_key,
    missing_fields,
    source_ages,
)


@dataclass(frozen=True)
class GroupShare:
    """How often one model, version or feature appears among linked outputs vs traffic.

    A version or feature is compared within its model: every issue about the summarizer has all
    its outputs from the summarizer, so only a version's share of *summarizer* outputs, linked
    vs traffic, says anything about that version. And it is compared with traffic at the time:
    each linked output expects its version's share of traffic in the same period
    (``link_share_period_days``), so a version rolled out last week is not suspect merely
    because last week's complaints came from it.
    """

    field: str  # model, model_version or feature
    value: str  # "<model>" or "<model> <version>" or "<model> <feature>"
    within: str | None  # the model a version or feature is compared within
    linked_count: int
    linked_share: float  # of linked outputs (of that model, for a version or feature)
    traffic_count: int  # all time
    traffic_share: float  # of traffic (of that model) in the periods the linked outputs were made
    lift: float
    p_value: float  # one-sided binomial: linked share greater than traffic share
    significant: bool


@dataclass(frozen=True)
class Distribution:
    """One numeric field of linked outputs next to the same field over traffic."""

    name: str  # confidence, latency_ms or eval_score
    linked_n: int
    traffic_n: int
    linked_median: float | None
    traffic_median: float | None
    # Where the linked median falls within traffic, 0..1 (0.1: lower than 90% of traffic).
    linked_percentile: float | None
    p_lower: float | None  # one-sided Mann-Whitney: linked values lower than traffic
    p_higher: float | None


@dataclass(frozen=True)
class Freshness:
    """How old the sources that outputs cite were, next to what is usual for each source.

    A source is stale when it is older than ``stale_days``, or older than ``stale_factor`` times
    its usual age across traffic (and at least ``stale_min_days``): a daily sales feed 30 days
    behind is stale although 30 days is young for a policy document, and a document every
    output cites at four months old is stale although that is its usual age.
    """

    stale_days: float
    stale_factor: float
    linked_with_sources: int
    oldest_as_of: date | None
    max_age_days: float | None
    median_age_days: float | None  # median over outputs of their oldest source's age
    stale_share: float | None  # share of linked outputs citing at least one stale source
    stale_sources: list[SourceAge]  # stale sources of linked outputs, most overdue first
    traffic_with_sources: int
    traffic_median_age_days: float | None
    traffic_stale_share: float | None


@dataclass(frozen=True)
class MissingField:
    field: str
    linked_share: float
    traffic_share: float


@dataclass(frozen=True)
class OutputSignals:
    n_linked: int
    n_traffic: int
    groups: list[GroupShare] = field(default_factory=list)  # most significant first
    confidence: Distribution | None = None
    latency: Distribution | None = None
    eval_score: Distribution | None = None
    freshness: Freshness | None = None
    missing: list[MissingField] = field(default_factory=list)

    @property
    def concentration(self) -> GroupShare | None:
        """The most significant over-represented model, version or feature, if any."""
        significant = [group for group in self.groups if group.significant]
        return significant[0] if significant else None

    @property
    def version_concentration(self) -> GroupShare | None:
        """The most significant over-represented model version, if any: a regression suspect."""
        significant = [g for g in self.groups if g.significant and g.field == "model_version"]
        return significant[0] if significant else None


def output_signals(
    linked: Sequence[OutputRecord],
    traffic: Sequence[OutputRecord] | TrafficProfile,
    params: SignalParams | None = None,
) -> OutputSignals:
    """Compare the outputs linked to one issue with traffic (which should include them); pass a
    ``TrafficProfile`` when comparing many issues with the same traffic.

    A model, version or feature is ``significant`` only with at least ``min_count`` linked
    outputs, a lift of at least ``min_lift`` and a one-sided binomial p below ``alpha``. Without
    ``params``, a profile's own, else the Settings defaults.
    """
    if isinstance(traffic, TrafficProfile):
        profile = traffic
        params = params or traffic.params
    else:
        params = params or SignalParams()
        profile = TrafficProfile(traffic, params)
    return OutputSignals(
        n_linked=len(linked),
        n_traffic=profile.n,
        groups=_group_shares(linked, profile, params),
        confidence=_distribution("confidence", linked, profile),
        latency=_distribution("latency_ms", linked, profile),
        eval_score=_distribution("eval_score", linked, profile),
        freshness=_freshness(linked, profile, params.stale_limits),
        missing=_missing(linked, profile),
    )


def _group_shares(
    linked: Sequence[OutputRecord], traffic: TrafficProfile, params: SignalParams
) -> list[GroupShare]:
    if not linked or not traffic.n:
        return []
    groups = []
    for name in GROUP_FIELDS:
        linked_counts = Counter((o.model, group_key(o, name)) for o in linked)
        for (model, value), count in sorted(linked_counts.items(), key=str):
            if value is None:
                continue
            within = None if name == "model" else model
            compared = linked if within is None else [o for o in linked if o.model == model]
            expected = sum(traffic.expected_share(name, value, o) for o in compared) / len(compared)
            linked_share = count / len(compared)
            lift = linked_share / expected
            p_value = binomial_greater(count, len(compared), expected)
            groups.append(
                GroupShare(
                    field=name,
                    value=value,
                    within=within,
                    linked_count=count,
                    linked_share=linked_share,
                    traffic_count=traffic.group_counts[name].get(value, 0),
                    traffic_share=expected,
                    lift=lift,
                    p_value=p_value,
                    significant=count >= params.min_count
                    and lift >= params.min_lift
                    and p_value < params.alpha,
                )
            )
    groups.sort(key=lambda g: (not g.significant, g.p_value, -g.lift, g.field, g.value))
    return groups


def binomial_greater(k: int, n: int, p: float) -> float:
    """One-sided binomial p of at least ``k`` successes in ``n``: what
    ``scipy.stats.binomtest(k, n, p, alternative="greater").pvalue`` returns (``binom.sf(k - 1)``),
    without its overhead, which a refresh would pay once per linked ticket and group."""
    return 1.0 if k <= 0 else float(min(1.0, max(0.0, special.bdtrc(k - 1, n, p))))


def _distribution(
    name: str, linked: Sequence[OutputRecord], traffic: TrafficProfile
) -> Distribution | None:
    value_of = VALUE_FIELDS[name]
    linked_values = np.array([v for v in map(value_of, linked) if v is not None], dtype=float)
    traffic_values = traffic.values[name]
    if not len(linked_values) and not traffic_values.n:
        return None
    linked_median = float(np.median(linked_values)) if len(linked_values) else None
    traffic_median = traffic_values.median()
    percentile = p_lower = p_higher = None
    if linked_median is not None and traffic_values.n:
        percentile = traffic_values.percentile(linked_median)
        p_lower, p_higher = traffic_values.mann_whitney(linked_values)
    return Distribution(
        name=name,
        linked_n=len(linked_values),
        traffic_n=traffic_values.n,
        linked_median=linked_median,
        traffic_median=traffic_median,
        linked_percentile=percentile,
        p_lower=p_lower,
        p_higher=p_higher,
    )


def _freshness(
    linked: Sequence[OutputRecord], traffic: TrafficProfile, limits: tuple[float, float, float]
) -> Freshness | None:
    stale_days, stale_factor, stale_min_days = limits
    linked_sources = [traffic.judge(ages, limits) for ages in map(source_ages, linked) if ages]
    traffic_with_sources, traffic_median_age, traffic_stale_share = traffic.freshness(limits)
    if not linked_sources and not traffic_with_sources:
        return None
    oldest = [max(ages, key=lambda a: a.age_days) for ages in linked_sources]
    stale: dict[str, SourceAge] = {}
    for ages in linked_sources:
        for age in ages:
            if age.stale and (age.source not in stale or age.age_days > stale[age.source].age_days):
                stale[age.source] = age

    def overdue(age: SourceAge) -> float:
        return age.age_days / max(age.typical_age_days or stale_days, stale_min_days, 1.0)

    return Freshness(
        stale_days=stale_days,
        stale_factor=stale_factor,
        linked_with_sources=len(linked_sources),
        oldest_as_of=min(a.as_of for ages in linked_sources for a in ages)
        if linked_sources
        else None,
        max_age_days=max(a.age_days for a in oldest) if oldest else None,
        median_age_days=statistics.median(a.age_days for a in oldest) if oldest else None,
        stale_share=_share(any(a.stale for a in ages) for ages in linked_sources),
        stale_sources=sorted(stale.values(), key=lambda a: (-overdue(a), a.source)),
        traffic_with_sources=traffic_with_sources,
        traffic_median_age_days=traffic_median_age,
        traffic_stale_share=traffic_stale_share,
    )


def _share(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else None


def _missing(linked: Sequence[OutputRecord], traffic: TrafficProfile) -> list[MissingField]:
    if not linked:
        return []
    linked_missing = Counter(name for o in linked for name in missing_fields(o))
    return [
        MissingField(
            field=name,
            linked_share=count / len(linked),
            traffic_share=traffic.missing_counts[name] / traffic.n if traffic.n else 0.0,
        )
        for name, count in sorted(linked_missing.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
