"""Traffic rollups: what all logged outputs look like, kept as counts and histograms per (day,
model, version, feature), so a refresh reads a few rows per day and group instead of every output.

A rollup row holds its count and a sketch (``Sketch``) with what every statistic of a
``TrafficProfile`` needs:

- confidence and eval score: bins of 0.001 on [0, 1] (a value is rounded to the nearest
  thousandth, so three-decimal scores are kept exactly); values below 0 or above 1 are clamped
  into one bin each side (-0.001 and 1.001);
- latency_ms and source ages (days): log-spaced bins 0.1% wide on the ``log1p`` scale, so a
  binned value, and a median, is within 0.05% of 1 + the exact one;
- per-source ages (a family's histogram is the sum of its sources'), each output's oldest source
  age, missing-field counts;
- how many outputs with sources cite at least one stale source, judged when the output is rolled
  up against the usual ages known then (all rollups so far plus the batch being rolled up) and the
  stale limits of that refresh. This is the one approximation that is not a rounding: a source's
  usual age as it was learned, not as it is today.

``BinnedSample`` answers the questions ``triage.link.signals`` asks of traffic values (median,
where a linked median falls, one-sided Mann-Whitney) from a histogram in O(bins).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from scipy import special

from triage.link.linking import OutputRecord, utc
from triage.link.traffic import (
    EPOCH,
    VALUE_FIELDS,
    SignalParams,
    TrafficProfile,
    judge_ages,
    missing_fields,
    source_ages,
    source_family,
)

UNIT_SCALE = 1000  # bins of 0.001 on [0, 1]
LOG_STEP = math.log1p(1e-3)  # log-spaced bins 0.1% wide


def unit_bins(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(values, dtype=float) * UNIT_SCALE), -1, UNIT_SCALE + 1)


def unit_values(bins: np.ndarray) -> np.ndarray:
    return np.asarray(bins, dtype=float) / UNIT_SCALE


def log_bins(values: np.ndarray) -> np.ndarray:
    return np.rint(np.log1p(np.maximum(np.asarray(values, dtype=float), 0.0)) / LOG_STEP)


def log_values(bins: np.ndarray) -> np.ndarray:
    return np.expm1(np.asarray(bins, dtype=float) * LOG_STEP)


Binning = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
BINNING: dict[str, Binning] = {
    "confidence": (unit_bins, unit_values),
    "eval_score": (unit_bins, unit_values),
    "latency_ms": (log_bins, log_values),
}


@dataclass
class Histogram:
    """Counts per bin index, sparse: ``bins`` sorted and unique."""

    bins: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def of(cls, bins: np.ndarray) -> Histogram:
        unique, counts = np.unique(np.asarray(bins, dtype=np.int64), return_counts=True)
        return cls(unique, counts.astype(np.int64))

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        parts = [h for h in histograms if len(h.bins)]
        if not parts:
            return cls()
        if len(parts) == 1:
            return parts[0]
        unique, inverse = np.unique(np.concatenate([h.bins for h in parts]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([h.counts for h in parts]))
        return cls(unique, np.rint(counts).astype(np.int64))

    @classmethod
    def from_json(cls, value: Sequence[Sequence[int]] | None) -> Histogram:
        if not value:
            return cls()
        return cls(np.asarray(value[0], dtype=np.int64), np.asarray(value[1], dtype=np.int64))

    def to_json(self) -> list[list[int]]:
        return [self.bins.tolist(), self.counts.tolist()]

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def histogram_median(histogram: Histogram, to_value: Callable[[np.ndarray], np.ndarray]) -> float:
    n = histogram.n
    cumulative = np.cumsum(histogram.counts)
    middle = [(n - 1) // 2, n // 2]
    values = to_value(histogram.bins[np.searchsorted(cumulative, middle, side="right")])
    return float(values.mean())


class BinnedSample:
    """Traffic values of one field as a histogram; answers what ``signals`` asks of them. The
    traffic side of every answer is prepared once: a refresh asks it for every linked ticket."""

    def __init__(self, name: str, histogram: Histogram):
        self.to_bins, self.to_values = BINNING[name]
        self.histogram = histogram
        self.n = histogram.n
        self.ranked = RankedCounts(histogram)
        self._values = self.to_values(histogram.bins)
        self._median = histogram_median(histogram, self.to_values) if self.n else None

    def __len__(self) -> int:
        return self.n

    def median(self) -> float | None:
        return self._median

    def percentile(self, value: float) -> float:
        """Share of traffic below ``value``, plus half the share equal to it."""
        counts = self.histogram.counts
        below = counts[self._values < value].sum()
        equal = counts[self._values == value].sum()
        return float((below + equal / 2) / self.n)

    def mann_whitney(self, linked: np.ndarray) -> tuple[float, float]:
        """One-sided p-values (linked lower, linked higher) of ``RankedCounts.mann_whitney``."""
        return self.ranked.mann_whitney(Histogram.of(self.to_bins(linked)))


class RankedCounts:
    """One histogram ready to be ranked against many small ones: its counts before each bin and
    its tie term, so a test against a ticket's few values costs O(its bins x log(bins)).

    ``mann_whitney(x)`` is the Mann-Whitney U of ``x`` against this histogram from their bin
    counts, as ``scipy.stats.mannwhitneyu(..., method="asymptotic")`` computes it on the binned
    values (midranks, tie-corrected variance, continuity correction): p for x lower, p for x
    higher; 1.0 for both when every value falls in one bin."""

    def __init__(self, histogram: Histogram):
        self.bins = histogram.bins
        self.counts = histogram.counts.astype(float)
        self.before = np.cumsum(self.counts) - self.counts
        self.n = float(self.counts.sum())
        self.ties = float((self.counts**3 - self.counts).sum())

    def mann_whitney(self, x: Histogram) -> tuple[float, float]:
        at = np.searchsorted(self.bins, x.bins)
        shared = at < len(self.bins)
        shared[shared] = self.bins[at[shared]] == x.bins[shared]
        if len(self.bins) + int((~shared).sum()) < 2:
            return 1.0, 1.0
        x_counts = x.counts.astype(float)
        y_at = np.where(shared, self.counts[np.minimum(at, len(self.bins) - 1)], 0.0)
        y_below = np.append(self.before, self.n)[at]  # at == len: every y is below
        x_below = np.cumsum(x_counts) - x_counts
        tied = y_at + x_counts
        midrank = y_below + x_below + (tied + 1) / 2
        n1, n2 = float(x_counts.sum()), self.n
        u1 = float((x_counts * midrank).sum()) - n1 * (n1 + 1) / 2
        ties = self.ties - float((y_at**3 - y_at).sum()) + float((tied**3 - tied).sum())
        return _u_test(u1, n1, n2, ties)


def _u_test(u1: float, n1: float, n2: float, ties: float) -> tuple[float, float]:
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    mu = n1 * n2 / 2

    def p_of(u: float) -> float:
        # The normal survival function, as scipy.stats.norm.sf, without its overhead per call.
        return float(np.clip(special.ndtr(-(u - mu - 0.5) / sigma), 0.0, 1.0))

    return p_of(n1 * n2 - u1), p_of(u1)


# --- one row's sketch ---------------------------------------------------------------------------


def day_of(moment: datetime) -> date:
    return utc(moment).date()


def day_start(day: date) -> datetime:
    return EPOCH + timedelta(days=(day - EPOCH.date()).days)


@dataclass
class Sketch:
    """What one rollup row keeps of its outputs besides their count."""

    values: dict[str, Histogram] = field(default_factory=dict)
    missing: Counter[str] = field(default_factory=Counter)
    sources: dict[str, Histogram] = field(default_factory=dict)
    oldest: Histogram = field(default_factory=Histogram)
    stale: int = 0

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Sketch:
        value = value or {}
        return cls(
            values={k: Histogram.from_json(v) for k, v in (value.get("values") or {}).items()},
            missing=Counter(value.get("missing") or {}),
            sources={k: Histogram.from_json(v) for k, v in (value.get("sources") or {}).items()},
            oldest=Histogram.from_json(value.get("oldest")),
            stale=int(value.get("stale") or 0),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {k: h.to_json() for k, h in sorted(self.values.items()) if h.n},
            "missing": dict(sorted(self.missing.items())),
            "sources": {k: h.to_json() for k, h in sorted(self.sources.items())},
            "oldest": self.oldest.to_json(),
            "stale": self.stale,
        }

    @classmethod
    def merged(cls, sketches: Sequence[Sketch]) -> Sketch:
        names = {k for s in sketches for k in s.values}
        sources = {k for s in sketches for k in s.sources}
        return cls(
            values={k: Histogram.merged(s.values[k] for s in sketches if k in s.values)
                    for k in names},
            missing=sum((s.missing for s in sketches), Counter()),
            sources={k: Histogram.merged(s.sources[k] for s in sketches if k in s.sources)
                     for k in sources},
            oldest=Histogram.merged(s.oldest for s in sketches),
            stale=sum(s.stale for s in sketches),
        )  # fmt: skip


def sketch_outputs(
    outputs: Sequence[OutputRecord],
    ages_of: Sequence[list[tuple[str, datetime, float]]] | None = None,
) -> Sketch:
    """The sketch of ``outputs`` without the stale count (``rollup_outputs`` adds it);
    ``ages_of``: their ``source_ages``, when the caller has them already."""
    values = {}
    for name, value_of in VALUE_FIELDS.items():
        found = [v for v in map(value_of, outputs) if v is not None]
        if found:
            values[name] = Histogram.of(BINNING[name][0](np.array(found, dtype=float)))
    by_source: dict[str, list[float]] = {}
    oldest = []
    for ages in ages_of if ages_of is not None else map(source_ages, outputs):
        for source, _, age in ages:
            by_source.setdefault(source, []).append(age)
        if ages:
            oldest.append(max(age for _, _, age in ages))
    return Sketch(
        values=values,
        missing=Counter(name for o in outputs for name in missing_fields(o)),
        sources={s: Histogram.of(log_bins(np.array(a))) for s, a in by_source.items()},
        oldest=Histogram.of(log_bins(np.array(oldest))) if oldest else Histogram(),
    )


def rollup_outputs(
    outputs: Sequence[OutputRecord],
    params: SignalParams,
    sources: dict[str, Histogram] | None = None,
) -> tuple[list[RollupRow], dict[str, Histogram]]:
    """The rollup rows of ``outputs``, one per (day, model, version, feature), with stale judged
    against the usual ages of ``sources`` (the rollups' so far) and these outputs'; and those
    source ages merged."""
    groups: dict[tuple[date, str, str | None, str | None], list[OutputRecord]] = {}
    for output in outputs:
        key = (day_of(output.created_at), output.model, output.model_version or None,
               output.feature or None)  # fmt: skip
        groups.setdefault(key, []).append(output)
    ages_of = {key: [source_ages(o) for o in group] for key, group in groups.items()}
    sketches = {key: sketch_outputs(group, ages_of[key]) for key, group in groups.items()}
    merged = Sketch.merged([Sketch(sources=sources or {}), *sketches.values()]).sources
    typical = typical_ages(merged, params.stale_baseline_min)
    for key, all_ages in ages_of.items():
        sketches[key].stale = sum(
            any(a.stale for a in judge_ages(ages, typical, params.stale_limits))
            for ages in all_ages
            if ages
        )
    rows = [
        RollupRow(day, model, version, feature, len(groups[day, model, version, feature]), sketch)
        for (day, model, version, feature), sketch in sorted(
            sketches.items(), key=lambda item: (item[0][0], *(v or "" for v in item[0][1:]))
        )
    ]
    return rows, merged


def typical_ages(sources: dict[str, Histogram], baseline_min: int) -> dict[str, float]:
    """Median age per source id, and per family (prefixed "family:"), with enough history: the
    rollup counterpart of ``traffic._typical_ages``."""
    families: dict[str, list[Histogram]] = {}
    for source, histogram in sources.items():
        families.setdefault(source_family(source), []).append(histogram)
    typical = {
        s: histogram_median(h, log_values) for s, h in sources.items() if h.n >= baseline_min
    }
    for name, parts in families.items():
        merged = Histogram.merged(parts)
        if merged.n >= baseline_min:
            typical[f"family:{name}"] = histogram_median(merged, log_values)
    return typical


# --- the profile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupRow:
    """One stored rollup row: the outputs of one day, model, version and feature."""

    day: date
    model: str
    model_version: str | None
    feature: str | None
    n: int
    sketch: Sketch = field(default_factory=Sketch)


def profile_from_rollups(
    rows: Sequence[RollupRow], params: SignalParams, sketch: Sketch | None = None
) -> TrafficProfile:
    """The ``TrafficProfile`` of every output the rollups hold; see ``TrafficProfile``.
    ``sketch``: the merge of the rows' sketches when the caller has it (the one stored with the
    watermark), so that only the rows' counts are read."""
    profile = TrafficProfile([], params)
    profile.n = sum(row.n for row in rows)
    for row in rows:
        # A row's outputs share its day; periods are whole days from EPOCH, so exact when
        # ``share_period_days`` is a whole number of days.
        period = profile.period_of(day_start(row.day))
        keys = {
            "model": row.model,
            "model_version": f"{row.model} {row.model_version}" if row.model_version else None,
            "feature": f"{row.model} {row.feature}" if row.feature else None,
        }
        profile.period_totals[period, None] += row.n
        profile.period_totals[period, row.model] += row.n
        for name, key in keys.items():
            profile.group_counts[name][key] += row.n
            profile.period_counts[period, name, key] += row.n
        profile.version_counts[row.model, row.model_version] += row.n
    if sketch is None:
        sketch = Sketch.merged([row.sketch for row in rows])
    profile.values = {
        name: BinnedSample(name, sketch.values.get(name, Histogram())) for name in VALUE_FIELDS
    }
    profile.typical_ages = typical_ages(sketch.sources, params.stale_baseline_min)
    profile.source_counts = Counter({source: h.n for source, h in sketch.sources.items()})
    profile.missing_counts = sketch.missing
    with_sources = sketch.oldest.n
    profile.rolled_up_freshness = (
        with_sources,
        histogram_median(sketch.oldest, log_values) if with_sources else None,
        sketch.stale / with_sources if with_sources else None,
    )
    return profile
