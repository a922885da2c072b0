"""What a refresh decided each ticket and each issue from, as one digest, so the next refresh
redoes only what changed (issue 17: a refresh's cost grows with what changed, not with what
is kept).

A ticket's key covers everything its decision reads: the categorizer (``fingerprint``), the
vector model, its statements (unit ids: a unit's text and vector never change), and what its
linked outputs' evidence is computed from (``ticket_key``). Equal keys, equal decisions: a
refresh keeps the stored one.

An issue's key covers its statements, its tickets' keys and when and by whom they were
written, its linked outputs, the traffic they are compared with (rollups only grow, so their
count changes whenever they do), the digest's week, what a person set, and the parameters.
An issue whose key is unchanged keeps its labels, category and evidence; only the part of its
priority that moves with the clock (recency) is brought up to date. Its title and keywords are
chosen against the other issues as they were when its own members last changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import metadata
from typing import Any

from triage.categorize.context import Complaints, TicketLinks
from triage.link import TrafficProfile, cited_sources


def _release() -> str:
    try:
        return metadata.version("triage")
    except metadata.PackageNotFoundError:
        return "unknown"


# A new release may decide differently from the same inputs: every key names the release.
RELEASE = _release()


def digest(*parts: Any) -> str:
    """SHA-256 of the parts as JSON (floats in full: equal inputs give equal keys)."""
    text = json.dumps([RELEASE, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def ticket_key(
    fingerprint: str | None,
    model_id: str,
    unit_ids: Iterable[int],
    links: TicketLinks,
    *,
    traffic: TrafficProfile,
    complaints: Complaints,
    whole: bool = True,
    centre: str = "",
) -> str | None:
    """None when the categorizer is not known by its files: then nothing is kept.

    A linked ticket's outputs signal and context (``ticket_contexts``) are a function of its
    outputs (stored outputs never change), when it was written, the traffic they are compared
    with (the rollups: they only grow, so their count moves whenever they do) and how many of
    the other tickets about its model, version and cited sources complain: the key holds those,
    so an unchanged ticket is not even compared with traffic again. ``whole``: decided on the ticket
    read as one text (the refresh) or on its statements (a correction in the API); ``centre``:
    a digest of the vector its vector was centred on (``categorize.domain``)."""
    if fingerprint is None:
        return None
    linked = None
    if links.outputs:
        first = links.outputs[0]
        linked = [
            [o.id for o in links.outputs], links.created_at, traffic.n, repr(traffic.params),
            complaints.by_version[(first.model, first.model_version)],
            complaints.by_model[first.model],
            [complaints.by_source[(first.model, s)] for s in cited_sources(first)],
        ]  # fmt: skip
    return digest("ticket", fingerprint, model_id, list(unit_ids), linked, whole, centre)


def issue_key(
    *,
    unit_ids: Iterable[int],
    tickets: Mapping[int, tuple[str | None, datetime, str | None, float | None]],
    linked_ids: Iterable[int],
    traffic_n: int,
    week_end: datetime,
    person: Mapping[str, Any],
    params: str,
) -> str | None:
    """``tickets``: feedback id -> (its key, when written, customer, customer value);
    ``person``: what a person set on the issue. None when a ticket has no key."""
    if any(key is None for key, *_ in tickets.values()):
        return None
    return digest(
        "issue", list(unit_ids), sorted(tickets.items()), list(linked_ids), traffic_n,
        week_end, person, params,
    )  # fmt: skip
