"""Stage "link": which logged model output was each piece of feedback about, and what do the
outputs behind an issue look like next to all traffic.

Linking, in order of trust:

1. ``explicit``: the ticket names an ``output_id`` that was logged (confidence 1.0).
2. ``session``: outputs of the same session created within ``window`` before the ticket.
3. ``user``: failing that, outputs of the same user within the window.

Implicit candidates are scored ``(1 - w) * recency + w * similarity``, where ``recency`` falls
linearly from 1 (same moment) to 0 (``window`` earlier) and ``similarity`` is the text similarity
between the ticket and the output (or its input), when a similarity function is given and there
is more than one candidate (``w`` is ``similarity_weight``; otherwise the score is recency
alone). If the best two candidates are within ``min_margin`` of each other the ticket is not
linked: a wrong link is worse than none.
Confidence is ``top * top / (top + second)`` (``top`` alone for a single candidate).

``output_signals`` compares the outputs linked to one issue with all traffic: which model,
version and feature they come from (one-sided binomial test against the traffic share, so a
handful of complaints is never called a regression), their confidence, latency and eval scores
(medians and one-sided Mann-Whitney tests), how old the sources they cite were, and which fields
are missing. It returns plain numbers; the categorize stage turns them into sentences.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from triage.config import get_settings

Similarity = Callable[[str, list[str]], np.ndarray]
EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, so 7-day periods are ISO weeks

# The groupings a concentration of complaints is looked for in.
GROUP_FIELDS = ("model", "model_version", "feature")
# Fields whose absence on an output is reported.
MISSING_FIELDS = ("model_version", "output", "confidence", "sources", "eval_score")


def _utc(value: datetime) -> datetime:
    # Log shippers send naive timestamps; they are UTC by the convention triage.models uses.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    created_at: datetime
    text: str
    user_id: str | None = None
    session_id: str | None = None
    output_id: str | None = None
    customer_id: str | None = None
    customer_value: float | None = None


@dataclass(frozen=True)
class OutputRecord:
    id: int
    output_id: str
    created_at: datetime
    model: str
    model_version: str | None = None
    feature: str | None = None
    input: str | None = None
    output: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    user_id: str | None = None
    session_id: str | None = None
    meta: dict[str, Any] | None = None


# --- linking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkDecision:
    feedback_id: int
    model_output_id: int
    method: str  # explicit, session or user
    confidence: float


def embedding_similarity(embedder: Any, *, cache_size: int = 10_000) -> Similarity:
    """A ``similarity`` for ``link_feedback`` from anything with ``embed(texts) -> unit rows``.

    One user's outputs are candidates for each of their tickets, so vectors are remembered
    (up to ``cache_size`` texts) rather than embedded again for every ticket.
    """
    cache: dict[str, np.ndarray] = {}

    def similarity(text: str, candidates: list[str]) -> np.ndarray:
        if not candidates:
            return np.empty(0, dtype=np.float32)
        wanted = [text, *candidates]
        new = list(dict.fromkeys(t for t in wanted if t not in cache))
        if len(cache) + len(new) > cache_size:
            cache.clear()
            new = list(dict.fromkeys(wanted))
        if new:
            cache.update(zip(new, embedder.embed(new), strict=True))
        vectors = np.stack([cache[t] for t in wanted])
        return vectors[1:] @ vectors[0]

    return similarity


def link_feedback(
    feedback: Iterable[FeedbackRecord],
    outputs: Iterable[OutputRecord],
    *,
    window: timedelta | None = None,
    similarity: Similarity | None = None,
    similarity_weight: float | None = None,
    min_margin: float | None = None,
) -> list[LinkDecision]:
    """One decision per linked ticket, in the order given; tickets that cannot be linked are left
    out. Unset knobs come from Settings (``link_*``)."""
    settings = get_settings()
    window = window if window is not None else timedelta(hours=settings.link_window_hours)
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    if similarity_weight is None:
        similarity_weight = settings.link_similarity_weight
    if min_margin is None:
        min_margin = settings.link_min_margin

    outputs = list(outputs)
    by_output_id = {output.output_id: output for output in outputs}
    by_scope: dict[str, dict[str, list[OutputRecord]]] = {"session": {}, "user": {}}
    for output in outputs:
        for scope, key in (("session", output.session_id), ("user", output.user_id)):
            if key is not None:
                by_scope[scope].setdefault(key, []).append(output)

    decisions = []
    for item in feedback:
        explicit = by_output_id.get(item.output_id) if item.output_id else None
        if explicit is not None:
            decisions.append(LinkDecision(item.id, explicit.id, "explicit", 1.0))
            continue
        # An unknown output_id (not logged, or logged later) falls back to implicit linking.
        decision = _link_implicit(
            item,
            by_scope,
            window=window,
            similarity=similarity,
            similarity_weight=similarity_weight,
            min_margin=min_margin,
        )
        if decision is not None:
            decisions.append(decision)
    return decisions


def _link_implicit(
    item: FeedbackRecord,
    by_scope: dict[str, dict[str, list[OutputRecord]]],
    *,
    window: timedelta,
    similarity: Similarity | None,
    similarity_weight: float,
    min_margin: float,
) -> LinkDecision | None:
    created_at = _utc(item.created_at)
    # A session is a tighter scope than a user: when the session has candidates, only they count.
    for scope, key in (("session", item.session_id), ("user", item.user_id)):
        if key is None:
            continue
        candidates = [
            output
            for output in by_scope[scope].get(key, [])
            if timedelta(0) <= created_at - _utc(output.created_at) <= window
        ]
        if not candidates:
            continue
        ages = np.array([(created_at - _utc(o.created_at)) / window for o in candidates])
        scores = 1.0 - ages
        # Similarity only chooses between candidates; one candidate is the link either way.
        if similarity is not None and len(candidates) > 1:
            texts = [o.output or "" for o in candidates] + [o.input or "" for o in candidates]
            sims = np.clip(np.asarray(similarity(item.text, texts), dtype=float), 0.0, 1.0)
            best_sim = np.maximum(sims[: len(candidates)], sims[len(candidates) :])
            scores = (1.0 - similarity_weight) * scores + similarity_weight * best_sim
        # Ties are broken by id so the same inputs always give the same link.
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i].id))
        top = float(scores[order[0]])
        if len(order) == 1:
            confidence = top
        else:
            second = float(scores[order[1]])
            if top - second < min_margin:
                return None
            confidence = top * top / (top + second) if top + second > 0 else 0.0
        return LinkDecision(item.id, candidates[order[0]].id, scope, round(confidence, 4))
    return None


# --- signals from linked outputs ------------------------------------------------------------


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
class SourceAge:
    """One cited source (``meta.sources[]``) and how old it was when the output was made."""

    source: str
    as_of: date
    age_days: float
    typical_age_days: float | None  # median age of this source (or its family) across traffic
    stale: bool


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


class TrafficProfile:
    """What all traffic looks like, computed once and compared with each issue's outputs."""

    def __init__(
        self,
        outputs: Sequence[OutputRecord],
        *,
        baseline_min: int | None = None,
        period_days: float | None = None,
    ):
        settings = get_settings()
        if baseline_min is None:
            baseline_min = settings.link_stale_baseline_min
        self.period = timedelta(
            days=settings.link_share_period_days if period_days is None else period_days
        )
        self.n = len(outputs)
        self.group_counts = {
            name: Counter(_group_key(o, name) for o in outputs) for name in GROUP_FIELDS
        }
        # Versions roll out over time, so a version's share is taken in the same periods as
        # the linked outputs: a fix shipped last week is most of last week's traffic.
        self.period_counts: Counter[tuple[int, str, str | None]] = Counter()
        self.period_totals: Counter[tuple[int, str | None]] = Counter()
        for output in outputs:
            period = self.period_of(output.created_at)
            self.period_totals[period, None] += 1
            self.period_totals[period, output.model] += 1
            for name in GROUP_FIELDS:
                self.period_counts[period, name, _group_key(output, name)] += 1
        self.values = {
            name: np.array([v for v in map(value_of, outputs) if v is not None], dtype=float)
            for name, value_of in VALUE_FIELDS.items()
        }
        self.source_ages = [ages for ages in map(source_ages, outputs) if ages]
        self.typical_ages = _typical_ages(self.source_ages, baseline_min)
        self.missing_counts = Counter(name for o in outputs for name in missing_fields(o))
        self._stale: dict[tuple[float, float, float], list[tuple[float, bool]]] = {}

    def __len__(self) -> int:
        return self.n

    def period_of(self, moment: datetime) -> int:
        return int((_utc(moment) - EPOCH) // self.period)

    def expected_share(self, name: str, value: str, output: OutputRecord) -> float:
        """The share ``value`` had in traffic (of the output's model, for a version or feature)
        in the period the output was made; all-time when that period has no traffic."""
        within = None if name == "model" else output.model
        period = self.period_of(output.created_at)
        total = self.period_totals[period, within]
        count = self.period_counts[period, name, value]
        if not total:
            total = self.n if within is None else self.group_counts["model"][within]
            count = self.group_counts[name][value]
        # A value never seen in traffic (traffic passed without the linked outputs) still
        # needs a non-zero expected share; half an observation keeps the test honest.
        return min(max(count, 0.5) / max(total, 1), 1.0)

    def judge(
        self, ages: list[tuple[str, datetime, float]], limits: tuple[float, float, float]
    ) -> list[SourceAge]:
        stale_days, stale_factor, stale_min_days = limits
        result = []
        for source, as_of, age in ages:
            usual = self.typical_ages.get(
                source, self.typical_ages.get(f"family:{_family(source)}")
            )
            overdue = usual is not None and age > max(stale_min_days, stale_factor * usual)
            result.append(SourceAge(source, as_of.date(), age, usual, overdue or age > stale_days))
        return result

    def oldest_and_stale(self, limits: tuple[float, float, float]) -> list[tuple[float, bool]]:
        """Per traffic output with sources: its oldest source's age, and whether any is stale."""
        if limits not in self._stale:
            self._stale[limits] = [
                (max(a.age_days for a in judged), any(a.stale for a in judged))
                for judged in (self.judge(ages, limits) for ages in self.source_ages)
            ]
        return self._stale[limits]


def output_signals(
    linked: Sequence[OutputRecord],
    traffic: Sequence[OutputRecord] | TrafficProfile,
    *,
    min_count: int | None = None,
    alpha: float | None = None,
    min_lift: float | None = None,
    stale_days: float | None = None,
    stale_factor: float | None = None,
    stale_min_days: float | None = None,
) -> OutputSignals:
    """Compare the outputs linked to one issue with traffic (which should include them); pass a
    ``TrafficProfile`` when comparing many issues with the same traffic.

    A model, version or feature is ``significant`` only with at least ``min_count`` linked
    outputs, a lift of at least ``min_lift`` and a one-sided binomial p below ``alpha``.
    """
    settings = get_settings()
    min_count = settings.link_min_count if min_count is None else min_count
    alpha = settings.link_alpha if alpha is None else alpha
    min_lift = settings.link_min_lift if min_lift is None else min_lift
    limits = (
        settings.link_stale_days if stale_days is None else stale_days,
        settings.link_stale_factor if stale_factor is None else stale_factor,
        settings.link_stale_min_days if stale_min_days is None else stale_min_days,
    )
    profile = traffic if isinstance(traffic, TrafficProfile) else TrafficProfile(traffic)
    return OutputSignals(
        n_linked=len(linked),
        n_traffic=profile.n,
        groups=_group_shares(linked, profile, min_count=min_count, alpha=alpha, min_lift=min_lift),
        confidence=_distribution("confidence", linked, profile),
        latency=_distribution("latency_ms", linked, profile),
        eval_score=_distribution("eval_score", linked, profile),
        freshness=_freshness(linked, profile, limits),
        missing=_missing(linked, profile),
    )


def _group_key(output: OutputRecord, name: str) -> str | None:
    if name == "model":
        return output.model
    value = getattr(output, name)
    return f"{output.model} {value}" if value else None


def _group_shares(
    linked: Sequence[OutputRecord],
    traffic: TrafficProfile,
    *,
    min_count: int,
    alpha: float,
    min_lift: float,
) -> list[GroupShare]:
    if not linked or not traffic.n:
        return []
    groups = []
    for name in GROUP_FIELDS:
        linked_counts = Counter((o.model, _group_key(o, name)) for o in linked)
        for (model, value), count in sorted(linked_counts.items(), key=str):
            if value is None:
                continue
            within = None if name == "model" else model
            compared = linked if within is None else [o for o in linked if o.model == model]
            expected = sum(traffic.expected_share(name, value, o) for o in compared) / len(compared)
            linked_share = count / len(compared)
            lift = linked_share / expected
            p_value = float(
                stats.binomtest(count, len(compared), expected, alternative="greater").pvalue
            )
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
                    significant=count >= min_count and lift >= min_lift and p_value < alpha,
                )
            )
    groups.sort(key=lambda g: (not g.significant, g.p_value, -g.lift, g.field, g.value))
    return groups


def eval_score(output: OutputRecord) -> float | None:
    value = (output.meta or {}).get("eval_score")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# The numeric fields whose linked vs traffic distributions are compared.
VALUE_FIELDS: dict[str, Callable[[OutputRecord], float | None]] = {
    "confidence": lambda o: o.confidence,
    "latency_ms": lambda o: o.latency_ms,
    "eval_score": eval_score,
}


def _distribution(
    name: str, linked: Sequence[OutputRecord], traffic: TrafficProfile
) -> Distribution | None:
    value_of = VALUE_FIELDS[name]
    linked_values = np.array([v for v in map(value_of, linked) if v is not None], dtype=float)
    traffic_values = traffic.values[name]
    if not len(linked_values) and not len(traffic_values):
        return None
    linked_median = float(np.median(linked_values)) if len(linked_values) else None
    traffic_median = float(np.median(traffic_values)) if len(traffic_values) else None
    percentile = p_lower = p_higher = None
    if len(linked_values) and len(traffic_values):
        below = np.mean(traffic_values < linked_median)
        equal = np.mean(traffic_values == linked_median)
        percentile = float(below + equal / 2)
        if np.ptp(np.concatenate([linked_values, traffic_values])) > 0:
            p_lower = float(
                stats.mannwhitneyu(linked_values, traffic_values, alternative="less")[1]
            )
            p_higher = float(
                stats.mannwhitneyu(linked_values, traffic_values, alternative="greater")[1]
            )
        else:
            p_lower = p_higher = 1.0
    return Distribution(
        name=name,
        linked_n=len(linked_values),
        traffic_n=len(traffic_values),
        linked_median=linked_median,
        traffic_median=traffic_median,
        linked_percentile=percentile,
        p_lower=p_lower,
        p_higher=p_higher,
    )


def parse_as_of(value: Any) -> datetime | None:
    """``as_of`` as an aware datetime; a bare date is midnight UTC. Unparseable values are None."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def source_ages(output: OutputRecord) -> list[tuple[str, datetime, float]]:
    """(source id, as_of, age in days at the output's time) for each dated source."""
    sources = (output.meta or {}).get("sources") or []
    if not isinstance(sources, list):
        return []
    created_at = _utc(output.created_at)
    ages = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        as_of = parse_as_of(source.get("as_of"))
        if as_of is not None:
            age = max(0.0, (created_at - as_of) / timedelta(days=1))
            ages.append((str(source.get("id") or "?"), as_of, age))
    return ages


def _family(source: str) -> str:
    # "sales_daily:eu" and "sales_daily:us" are one feed in two regions.
    return source.split(":", 1)[0]


def _typical_ages(
    traffic_ages: Iterable[list[tuple[str, datetime, float]]], baseline_min: int
) -> dict[str, float]:
    """Median age per source id, and per family (prefixed "family:"), with enough history."""
    by_source: defaultdict[str, list[float]] = defaultdict(list)
    by_family: defaultdict[str, list[float]] = defaultdict(list)
    for ages in traffic_ages:
        for source, _, age in ages:
            by_source[source].append(age)
            by_family[_family(source)].append(age)
    typical = {s: statistics.median(a) for s, a in by_source.items() if len(a) >= baseline_min}
    typical.update(
        {
            f"family:{f}": statistics.median(a)
            for f, a in by_family.items()
            if len(a) >= baseline_min
        }
    )
    return typical


def _freshness(
    linked: Sequence[OutputRecord], traffic: TrafficProfile, limits: tuple[float, float, float]
) -> Freshness | None:
    stale_days, stale_factor, stale_min_days = limits
    linked_sources = [traffic.judge(ages, limits) for ages in map(source_ages, linked) if ages]
    traffic_oldest = traffic.oldest_and_stale(limits)
    if not linked_sources and not traffic_oldest:
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
        traffic_with_sources=len(traffic_oldest),
        traffic_median_age_days=statistics.median(age for age, _ in traffic_oldest)
        if traffic_oldest
        else None,
        traffic_stale_share=_share(is_stale for _, is_stale in traffic_oldest),
    )


def _share(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else None


def missing_fields(output: OutputRecord) -> set[str]:
    meta = output.meta or {}
    present = {
        "model_version": bool(output.model_version),
        "output": bool(output.output),
        "confidence": output.confidence is not None,
        "sources": bool(meta.get("sources")),
        "eval_score": eval_score(output) is not None,
    }
    missing = {name for name, ok in present.items() if not ok}
    # Producers may list the input fields they lacked; a data problem by definition.
    declared = meta.get("missing_fields")
    if isinstance(declared, list):
        missing.update(f"input.{name}" for name in declared if isinstance(name, str))
    return missing


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
