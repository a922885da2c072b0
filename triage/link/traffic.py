"""What is read off each logged model output, and what all traffic looks like: computed once and
compared with each issue's outputs by ``triage.link.signals``."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from scipy import stats

from triage.config import Settings, defaults_of, params_from
from triage.link.linking import OutputRecord, utc

EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, so 7-day periods are ISO weeks

# The groupings a concentration of complaints is looked for in.
GROUP_FIELDS = ("model", "model_version", "feature")


_setting = defaults_of("link")


@dataclass(frozen=True)
class SignalParams:
    """When linked outputs differ from traffic enough to say so (Settings ``link_*``).

    ``share_period_days`` and ``stale_baseline_min`` shape a ``TrafficProfile``; the rest are
    applied by ``output_signals``.
    """

    min_count: int = _setting("min_count")
    alpha: float = _setting("alpha")
    min_lift: float = _setting("min_lift")
    share_period_days: float = _setting("share_period_days")
    stale_days: float = _setting("stale_days")
    stale_factor: float = _setting("stale_factor")
    stale_min_days: float = _setting("stale_min_days")
    stale_baseline_min: int = _setting("stale_baseline_min")

    @classmethod
    def from_settings(cls, settings: Settings) -> SignalParams:
        return params_from(cls, settings, "link")

    @property
    def stale_limits(self) -> tuple[float, float, float]:
        return (self.stale_days, self.stale_factor, self.stale_min_days)


# --- what is read off one output ----------------------------------------------------------------


def group_key(output: OutputRecord, name: str) -> str | None:
    if name == "model":
        return output.model
    value = getattr(output, name)
    return f"{output.model} {value}" if value else None


def eval_score(output: OutputRecord) -> float | None:
    value = (output.meta or {}).get("eval_score")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# The numeric fields whose linked vs traffic distributions are compared.
VALUE_FIELDS: dict[str, Callable[[OutputRecord], float | None]] = {
    "confidence": lambda o: o.confidence,
    "latency_ms": lambda o: o.latency_ms,
    "eval_score": eval_score,
}


@dataclass(frozen=True)
class SourceAge:
    """One cited source (``meta.sources[]``) and how old it was when the output was made."""

    source: str
    as_of: date
    age_days: float
    typical_age_days: float | None  # median age of this source (or its family) across traffic
    stale: bool


def parse_as_of(value: Any) -> datetime | None:
    """``as_of`` as an aware datetime; a bare date is midnight UTC. Unparseable values are None."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def source_ages(output: OutputRecord) -> list[tuple[str, datetime, float]]:
    """(source id, as_of, age in days at the output's time) for each dated source."""
    sources = (output.meta or {}).get("sources") or []
    if not isinstance(sources, list):
        return []
    created_at = utc(output.created_at)
    ages = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        as_of = parse_as_of(source.get("as_of"))
        if as_of is not None:
            age = max(0.0, (created_at - as_of) / timedelta(days=1))
            ages.append((str(source.get("id") or "?"), as_of, age))
    return ages


def cited_sources(output: OutputRecord) -> list[str]:
    """The ids of the dated sources ``output`` cites, each once, in order."""
    return list(dict.fromkeys(source for source, _, _ in source_ages(output)))


def source_family(source: str) -> str:
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
            by_family[source_family(source)].append(age)
    typical = {s: statistics.median(a) for s, a in by_source.items() if len(a) >= baseline_min}
    typical.update(
        {
            f"family:{f}": statistics.median(a)
            for f, a in by_family.items()
            if len(a) >= baseline_min
        }
    )
    return typical


def missing_fields(output: OutputRecord) -> set[str]:
    """The reported fields (model_version, output, confidence, sources, eval_score) this output
    lacks, and the ``input.<name>`` fields its producer says it lacked."""
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


def judge_ages(
    ages: list[tuple[str, datetime, float]],
    typical_ages: dict[str, float],
    limits: tuple[float, float, float],
) -> list[SourceAge]:
    """Each dated source of one output with its usual age, stale or not (see ``Freshness``)."""
    stale_days, stale_factor, stale_min_days = limits
    result = []
    for source, as_of, age in ages:
        usual = typical_ages.get(source, typical_ages.get(f"family:{source_family(source)}"))
        overdue = usual is not None and age > max(stale_min_days, stale_factor * usual)
        result.append(SourceAge(source, as_of.date(), age, usual, overdue or age > stale_days))
    return result


# --- all traffic --------------------------------------------------------------------------------


class ExactSample:
    """Traffic values of one field, every one of them (``rollup.BinnedSample`` is the same
    interface over a histogram)."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.n = len(values)

    def median(self) -> float | None:
        return float(np.median(self.values)) if self.n else None

    def percentile(self, value: float) -> float:
        """Share of traffic below ``value``, plus half the share equal to it."""
        return float(np.mean(self.values < value) + np.mean(self.values == value) / 2)

    def mann_whitney(self, linked: np.ndarray) -> tuple[float, float]:
        """One-sided p-values: linked values lower than traffic, higher than traffic."""
        if not np.ptp(np.concatenate([linked, self.values])) > 0:
            return 1.0, 1.0
        return (
            float(stats.mannwhitneyu(linked, self.values, alternative="less")[1]),
            float(stats.mannwhitneyu(linked, self.values, alternative="greater")[1]),
        )


class Sample(Protocol):
    """Traffic values of one field: ``ExactSample`` or ``rollup.BinnedSample``."""

    n: int

    def median(self) -> float | None: ...
    def percentile(self, value: float) -> float: ...
    def mann_whitney(self, linked: np.ndarray) -> tuple[float, float]: ...


class TrafficProfile:
    """What all traffic looks like, computed once and compared with each issue's outputs:
    from the outputs themselves (``triage train``, tests) or from their rollups
    (``from_rollups``, the refresh), with the same interface."""

    def __init__(self, outputs: Sequence[OutputRecord], params: SignalParams | None = None):
        self.params = params or SignalParams()
        self.period = timedelta(days=self.params.share_period_days)
        self.n = len(outputs)
        self.group_counts = {
            name: Counter(group_key(o, name) for o in outputs) for name in GROUP_FIELDS
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
                self.period_counts[period, name, group_key(output, name)] += 1
        self.version_counts = Counter((o.model, o.model_version) for o in outputs)
        # Outputs citing each dated source (``source_ages``), whatever their model: the
        # rollups keep per-source histograms but not per model, and this is what they give.
        self.source_counts: Counter[str] = Counter(
            source for o in outputs for source, _, _ in source_ages(o)
        )
        self.values: dict[str, Sample] = {
            name: ExactSample(
                np.array([v for v in map(value_of, outputs) if v is not None], dtype=float)
            )
            for name, value_of in VALUE_FIELDS.items()
        }
        self.source_ages = [ages for ages in map(source_ages, outputs) if ages]
        self.typical_ages = _typical_ages(self.source_ages, self.params.stale_baseline_min)
        self.missing_counts = Counter(name for o in outputs for name in missing_fields(o))
        self._stale: dict[tuple[float, float, float], list[tuple[float, bool]]] = {}
        # From rollups: (outputs with sources, median oldest age, stale share) as rolled up.
        self.rolled_up_freshness: tuple[int, float | None, float | None] | None = None

    @classmethod
    def from_rollups(
        cls, rows: Sequence[Any], params: SignalParams, sketch: Any = None
    ) -> TrafficProfile:
        """The profile of every output the rollups (``rollup.RollupRow``) hold: counts exact,
        value and age statistics from histograms (see ``triage.link.rollup``); ``sketch``, the
        merge of the rows' sketches, when the caller has it."""
        from triage.link.rollup import profile_from_rollups  # it builds on this module

        return profile_from_rollups(rows, params, sketch)

    def __len__(self) -> int:
        return self.n

    def period_of(self, moment: datetime) -> int:
        return int((utc(moment) - EPOCH) // self.period)

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
        return judge_ages(ages, self.typical_ages, limits)

    def oldest_and_stale(self, limits: tuple[float, float, float]) -> list[tuple[float, bool]]:
        """Per traffic output with sources: its oldest source's age, and whether any is stale."""
        if limits not in self._stale:
            self._stale[limits] = [
                (max(a.age_days for a in judged), any(a.stale for a in judged))
                for judged in (self.judge(ages, limits) for ages in self.source_ages)
            ]
        return self._stale[limits]

    def freshness(
        self, limits: tuple[float, float, float]
    ) -> tuple[int, float | None, float | None]:
        """Traffic outputs with sources, the median of their oldest source's age, and the share
        citing at least one stale source. From rollups, stale as judged when rolled up."""
        if self.rolled_up_freshness is not None:
            return self.rolled_up_freshness
        oldest = self.oldest_and_stale(limits)
        if not oldest:
            return 0, None, None
        return (
            len(oldest),
            statistics.median(age for age, _ in oldest),
            sum(stale for _, stale in oldest) / len(oldest),
        )
