"""Which logged model output was each piece of feedback about.

Linking, in order of trust:

1. ``explicit``: the ticket names an ``output_id`` that was logged (confidence 1.0), or the
   trace id of outputs logged from a trace (``POST /v1/traces``): then the trace's last output,
   the answer the customer saw at the end of that request.
2. ``session``: outputs of the same session created within ``window`` before the ticket.
3. ``user``: failing that, outputs of the same user within the window.

Implicit candidates are scored ``(1 - w) * recency + w * similarity``, where ``recency`` falls
linearly from 1 (same moment) to 0 (``window`` earlier) and ``similarity`` is the text similarity
between the ticket and the output (or its input), when a similarity function is given and there
is more than one candidate (``w`` is ``similarity_weight``; otherwise the score is recency
alone). If the best two candidates are within ``min_margin`` of each other the ticket is not
linked: a wrong link is worse than none.
Confidence is ``top * top / (top + second)`` (``top`` alone for a single candidate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from triage.config import Settings, defaults_of, params_from
from triage.models import TRACE_ID_PATH

Similarity = Callable[[str, list[str]], np.ndarray]


_setting = defaults_of("link")


def utc(value: datetime) -> datetime:
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
class LinkParams:
    """How tickets are linked to outputs (Settings ``link_window_hours``,
    ``link_similarity_weight``, ``link_min_margin``)."""

    window_hours: float = _setting("window_hours")
    similarity_weight: float = _setting("similarity_weight")
    min_margin: float = _setting("min_margin")

    def __post_init__(self) -> None:
        if self.window_hours <= 0:
            raise ValueError(f"window must be positive, got {self.window}")

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkParams:
        return params_from(cls, settings, "link")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)


@dataclass(frozen=True)
class LinkDecision:
    feedback_id: int
    model_output_id: int
    method: str  # explicit, session or user
    confidence: float


def trace_id_of(meta: dict[str, Any] | None) -> str | None:
    """The trace id an output logged from a trace keeps in its metadata, if any."""
    value: Any = meta
    for key in TRACE_ID_PATH:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


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
    params: LinkParams | None = None,
    *,
    similarity: Similarity | None = None,
) -> list[LinkDecision]:
    """One decision per linked ticket, in the order given; tickets that cannot be linked are left
    out. Without ``params``, the Settings defaults."""
    params = params or LinkParams()
    outputs = list(outputs)
    by_output_id = {output.output_id: output for output in outputs}
    # Sorted so the last output of each trace (by time, then id) is the one kept.
    by_trace_id = {
        trace_id.lower(): output
        for output in sorted(outputs, key=lambda o: (utc(o.created_at), o.id))
        if (trace_id := trace_id_of(output.meta))
    }
    by_scope: dict[str, dict[str, list[OutputRecord]]] = {"session": {}, "user": {}}
    for output in outputs:
        for scope, key in (("session", output.session_id), ("user", output.user_id)):
            if key is not None:
                by_scope[scope].setdefault(key, []).append(output)

    decisions = []
    for item in feedback:
        explicit = (
            by_output_id.get(item.output_id) or by_trace_id.get(item.output_id.lower())
            if item.output_id
            else None
        )
        if explicit is not None:
            decisions.append(LinkDecision(item.id, explicit.id, "explicit", 1.0))
            continue
        # An unknown output_id (not logged, or logged later) falls back to implicit linking.
        decision = _link_implicit(item, by_scope, params, similarity)
        if decision is not None:
            decisions.append(decision)
    return decisions


def _link_implicit(
    item: FeedbackRecord,
    by_scope: dict[str, dict[str, list[OutputRecord]]],
    params: LinkParams,
    similarity: Similarity | None,
) -> LinkDecision | None:
    created_at = utc(item.created_at)
    window = params.window
    # A session is a tighter scope than a user: when the session has candidates, only they count.
    for scope, key in (("session", item.session_id), ("user", item.user_id)):
        if key is None:
            continue
        candidates = [
            output
            for output in by_scope[scope].get(key, [])
            if timedelta(0) <= created_at - utc(output.created_at) <= window
        ]
        if not candidates:
            continue
        ages = np.array([(created_at - utc(o.created_at)) / window for o in candidates])
        scores = 1.0 - ages
        # Similarity only chooses between candidates; one candidate is the link either way.
        if similarity is not None and len(candidates) > 1:
            texts = [o.output or "" for o in candidates] + [o.input or "" for o in candidates]
            sims = np.clip(np.asarray(similarity(item.text, texts), dtype=float), 0.0, 1.0)
            best_sim = np.maximum(sims[: len(candidates)], sims[len(candidates) :])
            weight = params.similarity_weight
            scores = (1.0 - weight) * scores + weight * best_sim
        # Ties are broken by id so the same inputs always give the same link.
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i].id))
        top = float(scores[order[0]])
        if len(order) == 1:
            confidence = top
        else:
            second = float(scores[order[1]])
            if top - second < params.min_margin:
                return None
            confidence = top * top / (top + second) if top + second > 0 else 0.0
        return LinkDecision(item.id, candidates[order[0]].id, scope, round(confidence, 4))
    return None
