"""Traffic rollups (issue 17): statistics from histograms agree with the ones from every output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from triage.categorize.signals import OutputThresholds, score_outputs
from triage.categorize.stacking import output_records
from triage.link import OutputRecord, SignalParams, TrafficProfile, output_signals
from triage.link.rollup import (
    BinnedSample,
    Histogram,
    RankedCounts,
    Sketch,
    log_bins,
    log_values,
    rollup_outputs,
    unit_bins,
    unit_values,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def mann_whitney_binned(x: Histogram, y: Histogram) -> tuple[float, float]:
    """Mann-Whitney of ``x`` against ``y`` from bin counts, ``y`` ranked once."""
    return RankedCounts(y).mann_whitney(x)


def _fixture_outputs() -> list[OutputRecord]:
    with (FIXTURES / "model_outputs.jsonl").open(encoding="utf-8") as f:
        return output_records([json.loads(line) for line in f])


@pytest.mark.parametrize("seed", range(6))
def test_link_rollup_mann_whitney_matches_scipy_on_binned_values(seed):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    traffic = np.clip(rng.normal(0.8, 0.1, 3000), 0, 1)
    linked = np.clip(rng.normal(0.8 - 0.02 * seed, 0.12, 5 + 7 * seed), 0, 1)
    x, y = unit_bins(linked), unit_bins(traffic)
    p_lower, p_higher = mann_whitney_binned(Histogram.of(x), Histogram.of(y))
    for alternative, p in (("less", p_lower), ("greater", p_higher)):
        expected = stats.mannwhitneyu(
            unit_values(x), unit_values(y), alternative=alternative, method="asymptotic"
        ).pvalue
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_link_rollup_mann_whitney_with_heavy_ties_and_one_bin():  # type: ignore[no-untyped-def]
    x, y = np.array([1, 1, 2, 5, 5, 5]), np.array([1, 2, 2, 2, 3, 5, 5, 9])
    p_lower, p_higher = mann_whitney_binned(Histogram.of(x), Histogram.of(y))
    assert p_lower == pytest.approx(
        stats.mannwhitneyu(x, y, alternative="less", method="asymptotic").pvalue
    )
    assert p_higher == pytest.approx(
        stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
    )
    same = Histogram.of(np.array([3, 3]))
    assert mann_whitney_binned(same, Histogram.of(np.array([3]))) == (1.0, 1.0)


@pytest.mark.parametrize(
    "x",
    [[0], [50], [0, 0, 50], [7], [1, 7, 12], [12, 12], [4, 5, 6, 7], [3]],
)
def test_link_rollup_mann_whitney_bins_below_between_and_above_traffic(x):  # type: ignore[no-untyped-def]
    # The traffic histogram is ranked once; a ticket's values may fall outside or between its
    # bins, where the midranks come from counting, not from a merged histogram.
    y = np.array([1, 1, 3, 3, 3, 5, 9, 9, 11])
    p_lower, p_higher = mann_whitney_binned(Histogram.of(np.array(x)), Histogram.of(y))
    for alternative, p in (("less", p_lower), ("greater", p_higher)):
        expected = stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic").pvalue
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_link_rollup_histogram_median_and_percentile_match_numpy(n):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(n)
    values = np.round(rng.uniform(0, 1, n), 3)
    # Split in two histograms and merged, as rows of different days are.
    histogram = Histogram.merged(
        [Histogram.of(unit_bins(values[: n // 2])), Histogram.of(unit_bins(values[n // 2 :]))]
    )
    sample = BinnedSample("confidence", histogram)
    assert sample.median() == pytest.approx(float(np.median(values)), abs=1e-12)
    for probe in (0.25, float(values[0]), 0.9):
        exact = np.mean(values < probe) + np.mean(values == probe) / 2
        assert sample.percentile(probe) == pytest.approx(exact)


def test_link_rollup_log_bins_are_within_half_a_bin():  # type: ignore[no-untyped-def]
    values = np.array([0.0, 0.4, 51.7, 4211.9, 13991.9, 2.5e6])
    back = log_values(log_bins(values))
    assert np.all(np.abs(back - values) <= 5.1e-4 * (1 + values))
    assert unit_values(unit_bins(np.array([-0.2, 0.7395, 1.5]))).tolist() == [-0.001, 0.74, 1.001]


def test_link_rollup_sketch_survives_json_and_merging():  # type: ignore[no-untyped-def]
    outputs = _fixture_outputs()[:200]
    rows, _ = rollup_outputs(outputs, SignalParams())
    again = [Sketch.from_json(json.loads(json.dumps(row.sketch.to_json()))) for row in rows]
    assert Sketch.merged(again).to_json() == Sketch.merged([r.sketch for r in rows]).to_json()
    assert sum(row.n for row in rows) == 200


def _log_error(value: float) -> float:
    # Log bins are 0.1% wide on the log1p scale: half a bin is 0.05% of 1 + the value.
    return 5.1e-4 * (1 + value)


def _linked_sets(outputs: list[OutputRecord]) -> list[list[OutputRecord]]:
    """Issue-like groups of linked outputs: per model and week, per version, stale-heavy ones."""
    groups: dict[tuple[str, ...], list[OutputRecord]] = {}
    for output in outputs:
        week = str(output.created_at.isocalendar()[1])
        groups.setdefault((output.model, week), []).append(output)
        groups.setdefault((output.model, output.model_version or ""), []).append(output)
        low = output.confidence is not None and output.confidence < 0.6
        groups.setdefault(("low", output.model, str(low)), []).append(output)
    sets = [group[:: max(1, len(group) // 40)] for group in groups.values()]
    return [s for s in sets if len(s) >= 3]


def test_link_rollup_profile_agrees_with_profile_from_every_output():  # type: ignore[no-untyped-def]
    outputs = _fixture_outputs()
    params = SignalParams()
    exact = TrafficProfile(outputs, params)
    rows, sources = rollup_outputs(outputs, params)
    rolled = TrafficProfile.from_rollups(rows, params)
    assert rolled.n == exact.n and rolled.group_counts == exact.group_counts
    assert rolled.missing_counts == exact.missing_counts
    assert rolled.version_counts == exact.version_counts
    assert rolled.source_counts == exact.source_counts and exact.source_counts
    assert rolled.typical_ages.keys() == exact.typical_ages.keys()
    for source, age in exact.typical_ages.items():
        assert rolled.typical_ages[source] == pytest.approx(age, abs=_log_error(age))
    with_sources, median_age, stale_share = rolled.freshness(params.stale_limits)
    exact_with, exact_median, exact_stale = exact.freshness(params.stale_limits)
    assert with_sources == exact_with and stale_share == exact_stale
    assert median_age == pytest.approx(exact_median, abs=_log_error(exact_median))

    thresholds = OutputThresholds()
    compared = 0
    for linked in _linked_sets(outputs):
        a, b = output_signals(linked, exact), output_signals(linked, rolled)
        assert [(g.field, g.value, g.linked_count, g.significant) for g in a.groups] == [
            (g.field, g.value, g.linked_count, g.significant) for g in b.groups
        ]
        for ga, gb in zip(a.groups, b.groups, strict=True):
            assert gb.traffic_share == pytest.approx(ga.traffic_share)
            assert gb.p_value == pytest.approx(ga.p_value, rel=1e-9)
        for name in ("confidence", "eval_score", "latency"):
            da, db = getattr(a, name), getattr(b, name)
            assert db.traffic_n == da.traffic_n
            assert db.traffic_median == pytest.approx(
                da.traffic_median, abs=_log_error(da.traffic_median)
            )
            exact_values = name != "latency"  # 0.001 bins keep three-decimal scores exactly
            tolerance = {"rel": 1e-9} if exact_values else {"rel": 0.05, "abs": 1e-3}
            assert db.linked_percentile == pytest.approx(da.linked_percentile, abs=0.01)
            assert db.p_lower == pytest.approx(da.p_lower, **tolerance)
            assert db.p_higher == pytest.approx(da.p_higher, **tolerance)
        fa, fb = a.freshness, b.freshness
        assert fa is not None and fb is not None
        assert [(s.source, s.stale) for s in fa.stale_sources] == [
            (s.source, s.stale) for s in fb.stale_sources
        ]
        assert fb.stale_share == fa.stale_share
        assert fb.traffic_stale_share == fa.traffic_stale_share
        assert score_outputs(a, thresholds).reasons == score_outputs(b, thresholds).reasons
        compared += 1
    assert compared > 20
    assert sources.keys() == {s for ages in exact.source_ages for s, _, _ in ages}
