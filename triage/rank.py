"""Stage "rank": one explainable priority per issue.

Six components, each in [0, 1], are weighted (Settings ``rank_weight_*``) and summed; the
breakdown holds each weighted term, so it adds up to the score exactly::

    score = w_reach * reach + w_volume * volume + w_trend * trend
          + w_severity * severity + w_recency * recency + w_confidence * confidence

    reach      = min(1, ln(1 + R) / ln(1 + reach_saturation)),
                 R = sum over distinct customers of (1 + ln(1 + value / customer_value_unit)),
                 a customer of unknown value counting 1
    volume     = min(1, ln(1 + n) / ln(1 + volume_saturation)), n = tickets
    trend      = clip(log2((this_week + k) / (trailing_mean + k)) / trend_log2_saturation, 0, 1),
                 this_week = tickets in the week ending at ``week_end`` (the last complete ISO
                 week, as the digest reports it; the 7 days before ``now`` without one),
                 trailing_mean = tickets per week over the ``trend_weeks`` weeks before,
                 k = trend_pseudocount (damps small counts)
    severity   = mean over tickets of the largest severity weight matched in any of its
                 statements (anger, churn, refund, data loss, blocked work;
                 models/severity-v1.json), 0 for a calm ticket
    recency    = 0.5 ** (days since the newest item / recency_half_life_days)
    confidence = the category decision's confidence (0 when there is none)

With the default weights (0.30, 0.15, 0.20, 0.20, 0.10, 0.05) the score lies in [0, 1]; the
defaults saturate reach at 1,000 weighted customers and volume at 1,000 tickets.

One ticket is one voice: a customer who pastes 240 similar sentences wrote one ticket, so volume,
trend and severity count tickets and reach counts customers, never statements.

``spiking`` is a separate flag: this week's count is improbable under a Poisson rate equal to
the trailing mean (floored at ``spike_min_rate`` for new issues), ``p < spike_alpha``, is at
least ``spike_min_count`` and at least ``spike_min_ratio`` times that rate. Three tickets after
a quiet month are growth, not a spike; nor is a busy issue's ordinary week, which varies more
than a Poisson count would.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from scipy import stats

from triage.config import Settings, defaults_of
from triage.lexicon import MODELS_DIR, CueLexicon

DEFAULT_SEVERITY = MODELS_DIR / "severity-v1.json"
COMPONENTS = ("reach", "volume", "trend", "severity", "recency", "confidence")
WEEK = timedelta(days=7)


_setting = defaults_of("rank")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week ``moment`` falls in: the end of the last complete week,
    the ``week_end`` a refresh ranks on."""
    day = _utc(moment).date()
    return datetime.combine(day - timedelta(days=day.weekday()), time(), UTC)


@dataclass(frozen=True)
class IssueStats:
    """What ranking needs to know about one issue."""

    timestamps: Sequence[datetime]  # one per ticket of the issue: when it was written
    customers: Mapping[str, float | None]  # distinct customer_id -> customer_value, if known
    texts: Sequence[str]  # the issue's statements
    category_confidence: float | None
    now: datetime
    # The trend's week is [week_end - 7 days, week_end); None: the 7 days before ``now``.
    week_end: datetime | None = None
    # Each text's ticket, so a ticket of many statements weighs as one in severity; None: each
    # text is a ticket of its own.
    text_tickets: Sequence[Hashable] | None = None


@dataclass(frozen=True)
class Trend:
    this_week: int
    trailing_mean: float  # items per week over the trailing weeks
    change: float  # (this_week - trailing_mean) / max(trailing_mean, 1)
    spiking: bool
    p_value: float  # one-sided Poisson: P(X >= this_week | trailing rate)
    week_start: datetime | None = None  # the week counted as this one, when it is an ISO week

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "this_week": self.this_week,
            "trailing_mean": self.trailing_mean,
            "change": self.change,
            "spiking": self.spiking,
            "p_value": self.p_value,
        }
        if self.week_start is not None:
            # Stored with the figures, so the issue list can say which week "this week" is.
            year, number, _ = self.week_start.isocalendar()
            found["week"] = f"{year}-W{number:02d}"
        return found


@dataclass(frozen=True)
class Priority:
    score: float
    breakdown: dict[str, float]  # weighted components; they sum to score
    trend: Trend
    components: dict[str, float] = field(default_factory=dict)  # each in [0, 1], unweighted
    severity_terms: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RankConfig:
    """The rank stage's knobs (Settings ``rank_*``); the defaults are the Settings defaults."""

    weights: dict[str, float] = field(
        default_factory=lambda: {name: _setting(f"weight_{name}") for name in COMPONENTS}
    )
    reach_saturation: float = _setting("reach_saturation")
    customer_value_unit: float = _setting("customer_value_unit")
    volume_saturation: float = _setting("volume_saturation")
    trend_weeks: int = _setting("trend_weeks")
    trend_pseudocount: float = _setting("trend_pseudocount")
    trend_log2_saturation: float = _setting("trend_log2_saturation")
    spike_alpha: float = _setting("spike_alpha")
    spike_min_count: int = _setting("spike_min_count")
    spike_min_ratio: float = _setting("spike_min_ratio")
    spike_min_rate: float = _setting("spike_min_rate")
    recency_half_life_days: float = _setting("recency_half_life_days")
    severity_path: str | None = _setting("severity_path")  # DEFAULT_SEVERITY when None

    @classmethod
    def from_settings(cls, settings: Settings) -> RankConfig:
        return cls(
            weights={name: getattr(settings, f"rank_weight_{name}") for name in COMPONENTS},
            **{
                f.name: getattr(settings, f"rank_{f.name}")
                for f in fields(cls)
                if f.name != "weights"
            },
        )


@lru_cache(maxsize=4)
def load_severity(path: str | Path | None = None) -> CueLexicon:
    """The severity lexicon at ``path`` (``RankConfig.severity_path``), the shipped one when
    None; cached, as every refresh ranks with it."""
    return CueLexicon.load(path or DEFAULT_SEVERITY)


def trend(
    timestamps: Sequence[datetime],
    now: datetime,
    config: RankConfig,
    *,
    week_end: datetime | None = None,
) -> Trend:
    """This week against the ``trend_weeks`` before it. This week is the one ending at
    ``week_end`` (tickets after it, in the week still under way, wait for the next), else the
    7 days before ``now``."""
    end = _utc(week_end) if week_end is not None else _utc(now)
    ages = [end - _utc(t) for t in timestamps]
    counts = [
        sum(1 for age in ages if WEEK * k < age <= WEEK * (k + 1))
        for k in range(config.trend_weeks + 1)
    ]
    if week_end is None:
        # An item stamped slightly after `now` (clock skew) belongs to this week.
        counts[0] += sum(1 for age in ages if age <= timedelta(0))
    found = weekly_trend(counts[0], counts[1:], config)
    if week_end is None:
        return found
    return replace(found, week_start=end - WEEK)


def weekly_trend(this_week: int, trailing: Sequence[int], config: RankConfig) -> Trend:
    """The trend from ticket counts: this week's, and each of the ``trend_weeks`` before it.
    The digest calls it on its weekly counts, so it judges any week as the ranker does."""
    trailing_mean = sum(trailing[: config.trend_weeks]) / config.trend_weeks
    rate = max(trailing_mean, config.spike_min_rate)
    p_value = float(stats.poisson.sf(this_week - 1, rate)) if this_week else 1.0
    return Trend(
        this_week=this_week,
        trailing_mean=trailing_mean,
        change=(this_week - trailing_mean) / max(trailing_mean, 1.0),
        spiking=this_week >= config.spike_min_count
        and this_week >= config.spike_min_ratio * rate
        and p_value < config.spike_alpha,
        p_value=p_value,
    )


def severity(
    texts: Sequence[str],
    lexicon: CueLexicon,
    *,
    docs: Sequence[Any] | None = None,
    tickets: Sequence[Hashable] | None = None,
) -> tuple[float, dict[str, list[str]]]:
    """Mean over tickets of the largest category weight matched in any of their texts, and the
    terms matched. ``docs``: the texts already parsed by ``lexicon.lemma_docs``, when the caller
    has them; ``tickets``: each text's ticket (None: every text is a ticket)."""
    if not texts:
        return 0.0, {}
    terms: dict[str, list[str]] = {}
    worst: dict[Hashable, float] = {}
    for n, found in enumerate(lexicon.match(texts, docs=docs)):
        ticket = tickets[n] if tickets is not None else n
        weight = max((lexicon.weights.get(name, 1.0) for name in found), default=0.0)
        worst[ticket] = max(weight, worst.get(ticket, 0.0))
        for name, phrases in found.items():
            for phrase in phrases:
                if phrase not in terms.setdefault(name, []):
                    terms[name].append(phrase)
    return sum(worst.values()) / len(worst), terms


def recency_of(last: datetime, now: datetime, config: RankConfig) -> float:
    """1 for an issue whose newest ticket is from ``now``, halving every half-life."""
    days = max(0.0, (_utc(now) - _utc(last)) / timedelta(days=1))
    return float(0.5 ** (days / config.recency_half_life_days))


def with_recency(
    breakdown: Mapping[str, float], last: datetime, now: datetime, config: RankConfig
) -> dict[str, float]:
    """A stored priority ``breakdown`` with its recency term as of ``now`` (the issue's newest
    ticket written at ``last``): the one term that moves when nothing about the issue does."""
    recency = config.weights["recency"] * recency_of(last, now, config)
    return {**breakdown, "recency": round(recency, 6)}


def prioritize(
    issue: IssueStats,
    *,
    config: RankConfig | None = None,
    severity_lexicon: CueLexicon | None = None,
    docs: Sequence[Any] | None = None,
) -> Priority:
    """``docs``: ``issue.texts`` parsed by ``lexicon.lemma_docs``, if already done. Without
    ``config``, the Settings defaults."""
    config = config or RankConfig()
    lexicon = severity_lexicon or load_severity(config.severity_path)
    now = _utc(issue.now)

    weighted_customers = sum(
        1.0 + (math.log1p(value / config.customer_value_unit) if value else 0.0)
        for value in issue.customers.values()
    )
    issue_trend = trend(issue.timestamps, now, config, week_end=issue.week_end)
    growth = math.log2(
        (issue_trend.this_week + config.trend_pseudocount)
        / (issue_trend.trailing_mean + config.trend_pseudocount)
    )
    severity_score, terms = severity(issue.texts, lexicon, docs=docs, tickets=issue.text_tickets)
    recency = (
        recency_of(max(_utc(t) for t in issue.timestamps), now, config) if issue.timestamps else 0.0
    )
    components = {
        "reach": min(1.0, math.log1p(weighted_customers) / math.log1p(config.reach_saturation)),
        "volume": min(
            1.0, math.log1p(len(issue.timestamps)) / math.log1p(config.volume_saturation)
        ),
        "trend": min(1.0, max(0.0, growth / config.trend_log2_saturation)),
        "severity": min(1.0, severity_score),
        "recency": recency,
        "confidence": min(1.0, max(0.0, issue.category_confidence or 0.0)),
    }
    breakdown = {name: config.weights[name] * components[name] for name in COMPONENTS}
    return Priority(
        score=sum(breakdown.values()),
        breakdown=breakdown,
        trend=issue_trend,
        components=components,
        severity_terms=terms,
    )
