"""What a run did and how long each step took: the figures ``triage run`` prints, the worker
logs and ``pipeline_run`` stores."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# The name bench/embed.py and ``triage run --log-level debug`` know the timings by.
logger = logging.getLogger("triage.pipeline")


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    units: int = 0
    embedded: int = 0
    cache_hits: int = 0
    assigned: int = 0
    # Wall seconds per stage: preprocess (with loading spaCy and presidio), embed (with loading
    # the model), and total; the rest of total is the database, units and assignment.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RefreshStats:
    reclustered: bool = False
    issues: int = 0
    links: int = 0
    rolled_up: int = 0  # model outputs merged into the traffic rollups
    decided: int = 0  # tickets decided; the others kept the decision of an earlier refresh
    issues_redone: int = 0  # issues labelled and diagnosed; the others only had recency moved
    reembedded: int = 0  # unit texts that had no vector of the current embedding model
    unassigned_share: float = 0.0
    lineage: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Wall seconds per step: rollup, link, load, categorize (each ticket), cluster, issues
    # (identity and memberships), label, rank (each issue's category and priority); total
    # (logged, not stored) also counts the commit.
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def log_seconds(what: str, seconds: dict[str, float]) -> None:
    """One debug line, e.g. ``seconds process: preprocess=1.62 embed=8.93 total=13.10``
    (``triage run --log-level debug``; bench/embed.py reads it)."""
    logger.debug("seconds %s: %s", what, " ".join(f"{k}={v:.2f}" for k, v in seconds.items()))
