from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from triage.config import Settings
from triage.link import (
    FeedbackRecord,
    LinkParams,
    OutputRecord,
    SignalParams,
    TrafficProfile,
    embedding_similarity,
    link_feedback,
    output_signals,
)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def feedback(id=1, *, minutes_after=0, text="the summary was wrong", **kwargs) -> FeedbackRecord:
    return FeedbackRecord(
        id=id, created_at=NOW + timedelta(minutes=minutes_after), text=text, **kwargs
    )


def output(id, *, minutes_before=10, model="summarizer", version="2.3.0", **kwargs):
    kwargs.setdefault("output_id", f"out-{id}")
    return OutputRecord(
        id=id,
        created_at=NOW - timedelta(minutes=minutes_before),
        model=model,
        model_version=version,
        **kwargs,
    )


def test_link_explicit_output_id():
    outputs = [output(1, user_id="u1"), output(2, output_id="abc", minutes_before=600)]
    [decision] = link_feedback([feedback(output_id="abc", user_id="u1")], outputs)
    assert (decision.model_output_id, decision.method, decision.confidence) == (2, "explicit", 1.0)


def test_link_unknown_explicit_id_falls_back_to_user():
    [decision] = link_feedback(
        [feedback(output_id="never-logged", user_id="u1")], [output(1, user_id="u1")]
    )
    assert (decision.model_output_id, decision.method) == (1, "user")


def test_link_implicit_by_user_prefers_recent():
    outputs = [
        output(1, user_id="u1", minutes_before=30),
        output(2, user_id="u1", minutes_before=20 * 60),
        output(3, user_id="someone-else", minutes_before=1),
    ]
    [decision] = link_feedback([feedback(user_id="u1")], outputs)
    assert decision.model_output_id == 1
    assert decision.method == "user"
    assert 0 < decision.confidence < 1


def test_link_implicit_by_session_beats_user():
    outputs = [
        output(1, user_id="u1", session_id="s-old", minutes_before=1),
        output(2, user_id="u1", session_id="s1", minutes_before=60),
    ]
    [decision] = link_feedback([feedback(user_id="u1", session_id="s1")], outputs)
    assert (decision.model_output_id, decision.method) == (2, "session")


def test_link_outside_window_or_after_feedback_is_not_linked():
    outputs = [
        output(1, user_id="u1", minutes_before=25 * 60),
        output(2, user_id="u1", minutes_before=-5),  # logged after the ticket was written
    ]
    assert link_feedback([feedback(user_id="u1")], outputs) == []
    [decision] = link_feedback([feedback(user_id="u1")], outputs, LinkParams(window_hours=26))
    assert decision.model_output_id == 1


def test_link_ambiguous_candidates_give_no_link():
    outputs = [
        output(1, user_id="u1", minutes_before=10),
        output(2, user_id="u1", minutes_before=12),
    ]
    assert link_feedback([feedback(user_id="u1")], outputs) == []


def test_link_similarity_breaks_a_tie():
    outputs = [
        output(1, user_id="u1", minutes_before=10, output="Invoice total: 420 EUR"),
        output(2, user_id="u1", minutes_before=12, output="Meeting summary: roadmap review"),
    ]

    def similarity(text: str, candidates: list[str]) -> np.ndarray:
        return np.array([1.0 if "summary" in c.lower() else 0.0 for c in candidates])

    [decision] = link_feedback(
        [feedback(user_id="u1", text="the meeting summary missed the roadmap")],
        outputs,
        similarity=similarity,
    )
    assert decision.model_output_id == 2


def test_link_embedding_similarity_uses_the_embedder():
    from triage.embed import FakeEmbedder

    similarity = embedding_similarity(FakeEmbedder())
    sims = similarity("export button broken", ["export button broken", "quarterly revenue"])
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[1] < sims[0]


def test_link_is_deterministic_and_keeps_feedback_order():
    outputs = [output(i, user_id=f"u{i}", minutes_before=i) for i in range(1, 6)]
    items = [feedback(id=10 + i, user_id=f"u{i}") for i in (5, 1, 3)]
    first = link_feedback(items, outputs)
    assert first == link_feedback(items, list(reversed(outputs)))
    assert [d.feedback_id for d in first] == [15, 11, 13]


def _traffic(n_total: int, n_version: int, version="2.3.0", other="2.2.0"):
    return [output(i, version=version if i < n_version else other) for i in range(n_total)]


def test_link_signals_three_complaints_are_not_a_regression():
    traffic = _traffic(1000, 100)
    linked = traffic[:3]  # 3 of 3 on a version serving 10% of traffic
    signals = output_signals(linked, traffic)
    version = next(g for g in signals.groups if g.field == "model_version")
    assert version.linked_share == 1.0
    assert version.p_value < 0.01  # improbable, but too few to call
    assert not version.significant
    assert signals.concentration is None


def test_link_signals_forty_of_fifty_on_a_small_version_is_a_regression():
    traffic = _traffic(1000, 100)
    linked = traffic[:40] + traffic[500:510]
    signals = output_signals(linked, traffic)
    concentration = signals.concentration
    assert concentration is not None
    assert (concentration.field, concentration.value) == ("model_version", "summarizer 2.3.0")
    assert concentration.linked_share == pytest.approx(0.8)
    assert concentration.traffic_share == pytest.approx(0.1)
    assert concentration.lift == pytest.approx(8.0)
    assert concentration.p_value < 1e-10


def test_link_signals_share_matching_traffic_is_not_significant():
    traffic = _traffic(1000, 100)
    linked = traffic[:5] + traffic[500:545]  # 10% of linked, 10% of traffic
    assert output_signals(linked, traffic).concentration is None


def test_link_signals_confidence_eval_and_freshness():
    def made(i, confidence, eval_score, as_of):
        return output(
            i,
            confidence=confidence,
            meta={"eval_score": eval_score, "sources": [{"id": "kb", "as_of": as_of}]},
        )

    traffic = [made(i, 0.9, 0.85, "2025-05-30") for i in range(100)]
    linked = [made(100 + i, 0.3, 0.4, "2024-01-03") for i in range(10)]
    traffic += linked
    signals = output_signals(linked, traffic, SignalParams(stale_days=90))
    assert signals.confidence.linked_median == pytest.approx(0.3)
    assert signals.confidence.traffic_median == pytest.approx(0.9)
    assert signals.confidence.linked_percentile < 0.1
    assert signals.confidence.p_lower < 0.001
    assert signals.eval_score.linked_median == pytest.approx(0.4)
    freshness = signals.freshness
    assert freshness.oldest_as_of.isoformat() == "2024-01-03"
    assert freshness.stale_share == 1.0
    assert freshness.traffic_stale_share == pytest.approx(10 / 110)
    assert freshness.median_age_days > 500


def test_link_signals_missing_fields_and_empty_inputs():
    traffic = [output(i, output="fine") for i in range(20)]
    linked = [output(100, output=None, version=None)]
    signals = output_signals(linked, traffic + linked)
    missing = {m.field: m for m in signals.missing}
    assert missing["output"].linked_share == 1.0
    assert missing["output"].traffic_share == pytest.approx(1 / 21)
    assert "model_version" in missing
    empty = output_signals([], traffic)
    assert (empty.n_linked, empty.groups, empty.concentration) == (0, [], None)


def test_link_embedding_similarity_cache_is_bounded():
    from triage.embed import FakeEmbedder

    similarity = embedding_similarity(FakeEmbedder(), cache_size=2)
    first = similarity("wrong totals", ["totals were wrong", "export broke", "fine"])
    again = similarity("wrong totals", ["totals were wrong", "export broke", "fine"])
    np.testing.assert_allclose(first, again, rtol=1e-6)
    assert first[0] == max(first)


def test_link_signals_staleness_is_relative_to_each_source():
    def cites(i, source, as_of, days_before=0):
        return output(
            i,
            minutes_before=days_before * 24 * 60,
            meta={"sources": [{"id": source, "as_of": as_of}]},
        )

    # A daily feed is usually a day old, a policy document usually 60 days old.
    traffic = [cites(i, "sales_daily:eu", "2025-06-01") for i in range(20)]
    traffic += [cites(100 + i, "kb:policy", "2025-04-03") for i in range(20)]
    behind = cites(200, "sales_daily:us", "2025-05-03")  # 30 days: stale for a daily feed
    usual = cites(201, "kb:policy", "2025-04-03")  # 60 days: its usual age, not stale
    ancient = cites(202, "kb:policy", "2024-12-01")  # beyond stale_days whatever is usual
    traffic += [behind, usual, ancient]

    def stale(o):
        return output_signals([o], traffic, SignalParams(stale_days=90)).freshness.stale_sources

    [age] = stale(behind)
    assert (age.source, round(age.age_days), age.typical_age_days) == ("sales_daily:us", 30, 1.5)
    assert stale(usual) == []
    [age] = stale(ancient)
    assert age.as_of.isoformat() == "2024-12-01"
    assert output_signals([behind], traffic).freshness.stale_share == 1.0


def test_link_signals_versions_are_compared_within_their_model():
    # Two products; the summarizer's 2.3.0 serves 10% of summarizer traffic.
    traffic = _traffic(200, 20)
    traffic += [output(1000 + i, model="forecaster", version="4.0.3") for i in range(800)]
    # An issue about the summarizer's UI: all its outputs are summarizer outputs, spread over
    # versions like traffic. The product stands out, no version does.
    ui_issue = traffic[:2] + traffic[100:118]
    signals = output_signals(ui_issue, traffic)
    assert signals.concentration.field == "model"
    assert signals.version_concentration is None
    # A regression: 2.3.0 is only 2% of all traffic but 10% of the summarizer's, and 80% of the
    # linked summarizer outputs.
    regression = traffic[:16] + traffic[100:104] + traffic[1000:1005]
    version = output_signals(regression, traffic).version_concentration
    assert (version.value, version.within) == ("summarizer 2.3.0", "summarizer")
    assert version.linked_share == pytest.approx(0.8)
    assert version.traffic_share == pytest.approx(0.1)


def test_link_signals_a_fresh_rollout_is_not_a_regression_by_itself():
    # 2.3.1 replaced 2.2.0 a week ago: it is a fifth of all-time traffic but all of last week's.
    def made(i, days_ago, version):
        return OutputRecord(
            id=i,
            output_id=f"o{i}",
            created_at=NOW - timedelta(days=days_ago),
            model="summarizer",
            model_version=version,
        )

    traffic = [made(i, 8 + i % 28, "2.2.0") for i in range(400)]
    traffic += [made(1000 + i, i % 6, "2.3.1") for i in range(100)]
    this_week = traffic[400:430]
    signals = output_signals(this_week, traffic)
    version = next(g for g in signals.groups if g.field == "model_version")
    assert version.traffic_count / len(traffic) == pytest.approx(0.2)
    assert version.traffic_share == pytest.approx(1.0)
    assert signals.version_concentration is None


def test_link_params_default_to_settings():
    defaults = Settings.model_construct()  # the declared defaults, without the environment
    assert LinkParams() == LinkParams.from_settings(defaults)
    assert SignalParams() == SignalParams.from_settings(defaults)
    custom = Settings(link_window_hours=2.5, link_min_margin=0.3, link_stale_baseline_min=9)
    assert LinkParams.from_settings(custom) == LinkParams(window_hours=2.5, min_margin=0.3)
    assert SignalParams.from_settings(custom).stale_baseline_min == 9
    with pytest.raises(ValueError, match="window must be positive"):
        LinkParams(window_hours=0)


def test_link_signals_a_traffic_profile_keeps_its_params():
    traffic = _traffic(1000, 100)
    linked = traffic[:20]  # 20 of 20 on a version serving 10% of traffic
    strict = TrafficProfile(traffic, SignalParams(min_count=50))
    assert output_signals(linked, strict).version_concentration is None
    assert output_signals(linked, strict, SignalParams()).version_concentration is not None


@pytest.mark.parametrize("n", [1, 3, 10, 40, 1000])
@pytest.mark.parametrize("p", [0.001, 0.1, 0.5, 0.9, 1.0])
def test_binomial_greater_is_scipys_one_sided_binomial_test(n, p):  # type: ignore[no-untyped-def]
    from scipy import stats

    from triage.link.signals import binomial_greater

    for k in sorted({1, min(2, n), n // 2 or 1, n}):
        expected = stats.binomtest(k, n, p, alternative="greater").pvalue
        assert binomial_greater(k, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-12)
