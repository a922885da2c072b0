"""People's corrections that leave a consistent state at once, for the API, the web app and the
CLI alike.

``triage.store`` moves the memberships and writes the audit log; this module then gives the
issues the correction changed what a refresh would give them, from their own members, with the
same functions the pipeline runs (``relabel``: keywords, quotes, title; ``diagnose``: category with
evidence, priority with its breakdown). A split-off issue so has its title, keywords, quotes,
category and priority at once, the machine's and not its parent's, instead of an empty title and
priority 0 until the next run; the issues a split, move or merge grew or shrank are relabelled at
once, and their category and priority follow at the next refresh.

A category correction trains only on the statements the person confirmed with it
(``confirm_units``: some unit ids, or all of the issue's), never on every member of a mixed
issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sqlmodel import Session

from triage import store
from triage.config import Settings
from triage.embed import vector_from_bytes
from triage.models import Issue, utcnow


def _matrix(session: Session, model_id: str, issue_ids: set[int]) -> Any:
    """The units of every ticket with a statement in ``issue_ids``, as a ``UnitMatrix``, and
    unit id -> issue id for those in ``issue_ids``; the tickets' other statements stay
    unassigned: background for keywords, and part of their ticket's own category."""
    from triage.pipeline import UnitMatrix

    ids, texts, lemmas, blobs = store.unit_vectors(
        session, model_id=model_id, issue_ids=sorted(issue_ids)
    )
    if not ids:
        return None, {}
    units = UnitMatrix(
        ids, texts, [s.split() for s in lemmas], np.stack([vector_from_bytes(b) for b in blobs])
    )
    loaded = set(ids)
    issue_of = {
        unit_id: issue_id
        for unit_id, (issue_id, _) in store.membership_map(session).items()
        if issue_id in issue_ids and unit_id in loaded
    }
    return units, issue_of


def refresh_issues(
    session: Session,
    settings: Settings,
    relabelled: Sequence[int],
    diagnosed: Sequence[int] = (),
) -> None:
    """Keywords, quotes, centroid and title (unless a person set it) of ``relabelled`` from
    their current members, as a refresh gives them; category with evidence and priority with
    its breakdown of ``diagnosed`` too (their members' tickets are categorised again on the
    way, which costs about as much as the tickets have linked model outputs: the issues a
    correction only grew or shrank get theirs at the next refresh).

    Reads the vectors the refreshes use (the model of the latest stored vector); with none
    stored yet there is nothing to compute from, and the next refresh does it."""
    # Imported here: the pipeline package loads spaCy, which an API process only needs once a
    # person corrects something.
    from triage.categorize import load_categorizer
    from triage.pipeline import DiagnoseParams, LabelParams, diagnose, relabel
    from triage.pipeline.diagnose import for_embedder, judge_tickets

    model_id = store.latest_vector_model(session)
    if model_id is None or not relabelled:
        return
    # Serialised with the refreshes: one of them may be rewriting these issues right now.
    store.lock_issues(session)
    units, issue_of = _matrix(session, model_id, {int(i) for i in relabelled})
    if units is not None:
        relabel(session, units, issue_of, params=LabelParams.from_settings(settings))
    units, issue_of = _matrix(session, model_id, {int(i) for i in diagnosed})
    if units is not None:
        categorizer = for_embedder(load_categorizer(settings=settings), model_id)
        params = DiagnoseParams.from_settings(settings)
        judged = judge_tickets(session, units, categorizer, params=params, model_id=model_id)
        diagnose(session, units, issue_of, categorizer, judged, params=params, now=utcnow())
    session.flush()


def update(
    session: Session,
    *,
    issue_id: int,
    changes: dict[str, Any],
    confirm_units: Sequence[int] | Literal["all"] | None = None,
    api_key_id: int | None,
    actor: str,
) -> Issue:
    """Rename, recategorise, set status or assignee. With a category, ``confirm_units`` names
    the statements the person confirms are of it (``"all"``: every member); only those become
    training labels."""
    issue = store.update_issue(
        session, issue_id=issue_id, changes=changes, api_key_id=api_key_id, actor=actor
    )
    if confirm_units is not None and changes.get("category") is not None:
        category = changes["category"]
        store.confirm_unit_categories(
            session,
            issue_id=issue_id,
            category=category.value if hasattr(category, "value") else str(category),
            unit_ids=None if confirm_units == "all" else list(confirm_units),
            api_key_id=api_key_id,
            actor=actor,
        )
    return issue


def split(
    session: Session,
    settings: Settings,
    *,
    issue_id: int,
    unit_ids: Sequence[int],
    api_key_id: int | None,
    actor: str,
) -> Issue:
    """A new issue of ``unit_ids``, labelled, categorised and ranked from them at once; the
    parent is relabelled without them."""
    new = store.split_issue(
        session, issue_id=issue_id, unit_ids=unit_ids, api_key_id=api_key_id, actor=actor
    )
    assert new.id is not None
    refresh_issues(session, settings, [new.id, issue_id], diagnosed=[new.id])
    return new


def move(
    session: Session,
    settings: Settings,
    *,
    unit_ids: Sequence[int],
    issue_id: int,
    api_key_id: int | None,
    actor: str,
) -> Issue:
    """Statements into issue ``issue_id``; it and the issues they left are relabelled."""
    before = store.membership_map(session)
    left = {before[u][0] for u in unit_ids if u in before}
    issue = store.move_units(
        session, unit_ids=unit_ids, issue_id=issue_id, api_key_id=api_key_id, actor=actor
    )
    refresh_issues(session, settings, sorted({issue_id, *left}))
    return issue


def merge(
    session: Session,
    settings: Settings,
    *,
    issue_id: int,
    into: int,
    api_key_id: int | None,
    actor: str,
) -> Issue:
    """Issue ``issue_id`` into ``into``: it becomes ``merged`` with a pointer to ``into``,
    which is relabelled with its new members."""
    target = store.merge_issues(
        session, issue_id=issue_id, into=into, api_key_id=api_key_id, actor=actor
    )
    refresh_issues(session, settings, [into])
    return target
