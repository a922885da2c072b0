from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from triage.config import Settings
from triage.rank import (
    COMPONENTS,
    DEFAULT_SEVERITY,
    IssueStats,
    RankConfig,
    iso_week_start,
    prioritize,
    trend,
    weekly_trend,
)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def days_ago(*days: float) -> list[datetime]:
    return [NOW - timedelta(days=d) for d in days]


def issue(timestamps, *, customers=None, texts=("the export is slow",), confidence=0.8):
    return IssueStats(
        timestamps=timestamps,
        customers=customers if customers is not None else {"c1": None},
        texts=list(texts),
        category_confidence=confidence,
        now=NOW,
    )


def test_rank_breakdown_sums_to_score():
    stats = issue(
        days_ago(0.5, 1, 2, 3, 10, 20),
        customers={"acme": 50_000.0, "globex": None, "initech": 0.0},
        texts=["This is unacceptable, we will cancel", "export button broken"],
    )
    priority = prioritize(stats)
    assert set(priority.breakdown) == set(COMPONENTS)
    assert sum(priority.breakdown.values()) == pytest.approx(priority.score, abs=1e-12)
    assert all(0 <= value <= 1 for value in priority.components.values())
    config = RankConfig()
    for name in COMPONENTS:
        expected = config.weights[name] * priority.components[name]
        assert priority.breakdown[name] == pytest.approx(expected)
    assert 0 < priority.score <= 1


def test_rank_spiking_only_when_significant():
    config = RankConfig()
    steady = days_ago(*[0.5 + i * 1.4 for i in range(25)])  # ~5 a week for five weeks
    assert not trend(steady, NOW, config).spiking

    spike = days_ago(*([0.2] * 12), 9, 16, 23, 30)  # 12 this week after ~1 a week
    spiking = trend(spike, NOW, config)
    assert spiking.this_week == 12
    assert spiking.trailing_mean == pytest.approx(1.0)
    assert spiking.change == pytest.approx(11.0)
    assert spiking.p_value < 0.001
    assert spiking.spiking

    # A busy issue's ordinary week: improbable under Poisson, but not even double the usual.
    busy = days_ago(*([0.5] * 22), *([10] * 12), *([17] * 12), *([24] * 12), *([31] * 12))
    ordinary = trend(busy, NOW, config)
    assert ordinary.trailing_mean == pytest.approx(12.0)
    assert ordinary.p_value < 0.01
    assert not ordinary.spiking


def test_rank_three_new_tickets_are_not_a_spike():
    config = RankConfig()
    small = trend(days_ago(0.1, 0.2, 0.3), NOW, config)
    assert small.this_week == 3 and small.trailing_mean == 0
    assert not small.spiking
    # The same growth with the minimum count lowered is significant: the guard is the count.
    relaxed = dataclasses.replace(config, spike_min_count=1, spike_alpha=0.05)
    assert trend(days_ago(0.1, 0.2, 0.3), NOW, relaxed).spiking


def test_rank_reach_weights_customer_value():
    few_small = prioritize(issue(days_ago(1, 2), customers={"a": 10.0, "b": 10.0}))
    few_large = prioritize(issue(days_ago(1, 2), customers={"a": 1e6, "b": 1e6}))
    many = prioritize(issue(days_ago(1, 2), customers={f"c{i}": None for i in range(30)}))
    assert few_small.components["reach"] < few_large.components["reach"]
    assert few_small.components["reach"] < many.components["reach"]


def test_rank_severity_reads_churn_and_data_loss():
    calm = prioritize(issue(days_ago(1), texts=["the font is a bit small"]))
    churn = prioritize(issue(days_ago(1), texts=["Furious. We are cancelling our subscription"]))
    loss = prioritize(issue(days_ago(1), texts=["it lost my work and the draft was deleted"]))
    assert calm.components["severity"] == 0
    assert churn.components["severity"] == 1.0
    assert "cancel" in " ".join(churn.severity_terms["churn"])
    assert "anger" in churn.severity_terms
    assert loss.components["severity"] == 1.0
    assert set(loss.severity_terms) == {"data_loss"}


def test_rank_recency_halves_each_half_life():
    fresh = prioritize(issue(days_ago(0)))
    week_old = prioritize(issue(days_ago(7)))
    assert fresh.components["recency"] == pytest.approx(1.0)
    assert week_old.components["recency"] == pytest.approx(0.5)


def test_rank_scores_bigger_issues_higher_and_handles_empty_issue():
    big = issue(days_ago(*([0.5] * 30)), customers={f"c{i}": 5000.0 for i in range(20)})
    small = issue(days_ago(40), confidence=None)
    empty = issue([], customers={}, texts=[], confidence=None)
    assert prioritize(big).score > prioritize(small).score > prioritize(empty).score == 0.0


def test_rank_severity_lexicon_is_versioned():
    raw = json.loads(DEFAULT_SEVERITY.read_text(encoding="utf-8"))
    assert raw["version"] == 1
    assert set(raw["weights"]) == set(raw["categories"])


def test_rank_config_defaults_to_settings(tmp_path):
    defaults = Settings.model_construct()  # the declared defaults, without the environment
    assert RankConfig() == RankConfig.from_settings(defaults)
    custom = RankConfig.from_settings(Settings(rank_weight_trend=0.0, rank_trend_weeks=2))
    assert (custom.weights["trend"], custom.trend_weeks) == (0.0, 2)
    # The severity lexicon named in the config is the one ranked with.
    calm = tmp_path / "calm.json"
    calm.write_text(json.dumps({"version": 1, "categories": {"mild": ["font"]}}))
    config = RankConfig.from_settings(Settings(rank_severity_path=str(calm)))
    priority = prioritize(issue(days_ago(1), texts=["the font is a bit small"]), config=config)
    assert priority.severity_terms == {"mild": ["font"]}


def test_rank_a_long_ticket_counts_once():
    # One customer pasted the same complaint 240 times into one ticket; two others wrote once.
    long_text = ["We will cancel if the export keeps failing."] * 240
    texts = [*long_text, "the export failed again", "export gives an empty file"]
    tickets = ["long"] * 240 + ["short-1", "short-2"]
    stats = IssueStats(
        timestamps=days_ago(0.5, 1, 2),  # one per ticket
        customers={"c-long": None, "c-1": None, "c-2": None},
        texts=texts,
        category_confidence=0.8,
        now=NOW,
        text_tickets=tickets,
    )
    priority = prioritize(stats)
    assert priority.trend.this_week == 3
    # The angry ticket is one of three voices, not 240 of 242.
    assert priority.components["severity"] == pytest.approx(1 / 3)
    # Exactly as if the ticket had said it once.
    once = dataclasses.replace(
        stats, texts=[long_text[0], *texts[-2:]], text_tickets=["long", "short-1", "short-2"]
    )
    assert prioritize(once).components == priority.components


def test_rank_trend_uses_the_iso_week():
    monday = datetime(2026, 11, 23, tzinfo=UTC)  # 2026-W48 starts; W47 is the last complete
    now = monday + timedelta(days=6, hours=9)  # the demo's case: run six days later
    assert iso_week_start(now) == monday
    assert iso_week_start(datetime(2026, 11, 23, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == (
        monday - timedelta(weeks=1)
    )  # 22:30 UTC on Sunday: still W47
    last_week = [monday - timedelta(days=7)] + [
        monday - timedelta(days=2, hours=h) for h in range(11)
    ]
    before = [monday - timedelta(weeks=w, days=3) for w in (1, 2, 3, 4)]  # one a week
    this_week = [monday + timedelta(days=1)] * 2  # the week under way waits for its digest
    config = RankConfig()
    found = trend(last_week + before + this_week, now, config, week_end=monday)
    assert (found.this_week, found.trailing_mean) == (12, 1.0)
    assert found.spiking
    assert found.to_dict()["week"] == "2026-W47"
    # The same figures from weekly counts, as the digest computes them.
    assert weekly_trend(12, [1, 1, 1, 1], config) == dataclasses.replace(found, week_start=None)
    # The 7 days before the run see only the two tickets of the week under way.
    rolling = trend(last_week + before + this_week, now, config)
    assert rolling.this_week == 2 and "week" not in rolling.to_dict()
