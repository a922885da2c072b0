"""Which linked model outputs a top issue shows: its own, chosen to show its evidence.

The candidates are the outputs linked to the issue's tickets. Tickets whose main issue is
another (one side remark in a long ticket) lend their outputs to that issue, not this one; of
what is left, only the issue's product is shown (the model the evidence names, else the one most
of its outputs come from). Then the evidence decides the order: a version far above its traffic
share shows that version's outputs; low confidence or eval scores, the lowest; stale sources,
the outputs citing them, oldest first. Without such evidence, the week's surest links. Links we
are surest of (an explicit ``output_id``) always come first: a guessed link shows nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from triage.digest.values import as_moment, as_number, between
from triage.models import Link, ModelOutput, as_utc


@dataclass(frozen=True)
class Candidate:
    output: ModelOutput
    link: Link
    written_at: datetime  # when the linked ticket was written
    main: bool  # the ticket's main issue (most of its statements) is this one


@dataclass(frozen=True)
class Focus:
    """What the examples should show, and how the digest says so."""

    model: str | None  # only this model's outputs, when the evidence names one
    matches: Callable[[ModelOutput], bool]
    rank: Callable[[ModelOutput], float]  # lower first, among matches
    note: str


def _eval_score(output: ModelOutput) -> float | None:
    return as_number((output.meta or {}).get("eval_score"))


def _source_ages(output: ModelOutput) -> dict[str, float]:
    """Source id -> its age in days when the output was made, for each dated source."""
    sources = (output.meta or {}).get("sources")
    made = as_utc(output.created_at) if output.created_at else None
    ages: dict[str, float] = {}
    for source in sources if isinstance(sources, list) and made else []:
        as_of = as_moment(source.get("as_of")) if isinstance(source, dict) else None
        if as_of is not None and made is not None:
            age = (made - as_of) / timedelta(days=1)
            ages[str(source.get("id"))] = max(age, ages.get(str(source.get("id")), age))
    return ages


def focus(evidence: Sequence[Any]) -> Focus | None:
    """What the examples should illustrate: the issue's first evidence about its outputs, when
    it points at the model or the data. The categoriser stores the evidence for the issue's own
    category first, so a weak remark for another category (2% of outputs cite a stale source)
    never decides; healthy outputs need no illustration."""
    for entry in evidence:
        if not isinstance(entry, dict) or entry.get("signal") != "outputs":
            continue
        data = entry.get("data")
        data = data if isinstance(data, dict) else {}
        if entry.get("category") == "model":
            return _model_focus(data)
        if entry.get("category") == "data":
            return _stale_focus(data)
        return None
    return None


def _model_focus(data: Mapping[str, Any]) -> Focus | None:
    concentration = data.get("concentration")
    if isinstance(concentration, dict) and concentration.get("version"):
        model, named = concentration.get("model"), str(concentration["version"])
        # The linker names a version "<model> <version>".
        version = named.removeprefix(f"{model} ") if model else named
        return Focus(
            model=model,
            matches=lambda o: o.model_version == version,
            rank=lambda o: 0.0,
            note=f"from {named}, the version the evidence names",
        )
    # Low scores: whichever of confidence and eval sits lower in traffic's distribution.
    lows = []
    for name, read in (("confidence", lambda o: o.confidence), ("eval", _eval_score)):
        stats = data.get(name)
        if not isinstance(stats, dict):
            continue
        linked, usual = (
            as_number(stats.get("linked_median")),
            as_number(stats.get("traffic_median")),
        )
        percentile = as_number(stats.get("linked_percentile"))
        if linked is not None and usual is not None and linked < usual:
            lows.append((percentile if percentile is not None else 1.0, name, read, linked))
    if not lows:
        return None
    _, name, read, median = min(lows, key=lambda low: low[:2])
    label = "confidence" if name == "confidence" else "eval score"

    def score(output: ModelOutput) -> float:
        value = read(output)
        return float("inf") if value is None else value

    return Focus(
        model=None,
        matches=lambda o: score(o) <= median,
        rank=score,
        note=f"the lowest {label} first",
    )


def _stale_focus(data: Mapping[str, Any]) -> Focus | None:
    freshness = data.get("freshness")
    listed = freshness.get("stale_sources") if isinstance(freshness, dict) else None
    if not isinstance(listed, list) or not listed:
        return None
    # A source is stale in an output when older than it usually is across traffic.
    usual = {
        str(s.get("source")): as_number(s.get("typical_age_days")) or 0.0
        for s in listed
        if isinstance(s, dict)
    }

    def staleness(output: ModelOutput) -> float:
        ages = _source_ages(output)
        return max((ages[s] for s in usual if s in ages and ages[s] > usual[s]), default=0.0)

    return Focus(
        model=None,
        matches=lambda o: staleness(o) > 0,
        rank=lambda o: -staleness(o),
        note="citing the stale sources, oldest first",
    )


def choose_examples(
    candidates: Sequence[Candidate],
    evidence: Sequence[Any],
    *,
    start: datetime,
    end: datetime,
    limit: int,
) -> tuple[list[Candidate], str]:
    """Up to ``limit`` of the issue's own outputs that show its evidence, and a few words on
    how they were chosen."""
    own = [c for c in candidates if c.main] or list(candidates)
    if not own or limit <= 0:
        return [], ""
    chosen = focus(evidence)
    models = Counter(c.output.model for c in own)
    model = chosen.model if chosen and chosen.model in models else models.most_common(1)[0][0]
    own = [c for c in own if c.output.model == model]
    note = "the week's surest links first"
    if chosen is not None and any(chosen.matches(c.output) for c in own):
        # Only outputs that show the evidence: one that does not would contradict it.
        own, note = [c for c in own if chosen.matches(c.output)], chosen.note
    else:
        chosen = None
    # An output is evidence only if we are sure the customer saw it: the surest links first
    # (an explicit output_id), then what the evidence asks for.
    surest = max(c.link.confidence for c in own)

    def key(c: Candidate) -> tuple[Any, ...]:
        rank = chosen.rank(c.output) if chosen is not None else 0.0
        this_week = between(c.written_at, start, end)
        sure = c.link.confidence >= surest
        return (not sure, rank, not this_week, -c.link.confidence, c.output.id or 0)

    # The same answer to the same question twice shows nothing new.
    shown: dict[tuple[str | None, str | None], Candidate] = {}
    for c in sorted(own, key=key):
        shown.setdefault((c.output.input, c.output.output), c)
    return list(shown.values())[:limit], note
