"""Where the label stage meets the database: keywords, quotes, centroid and title of each issue.

A title a person set (``human_fields``) is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session

from triage import store
from triage.config import Settings
from triage.embed import vector_to_bytes
from triage.label import IssueLabel, label_issues
from triage.models import utcnow
from triage.pipeline.units import UnitMatrix


@dataclass(frozen=True)
class LabelParams:
    keywords: int  # kept per issue
    quotes: int  # kept per issue
    quote_max_similarity: float  # a quote this close (cosine) to one already chosen is left out
    quote_max_overlap: float  # ... or this much of its text, openers stripped, in the other
    title_max_words: int
    title_candidates: int  # distinct statements whose clauses compete for the title

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelParams:
        return cls(
            keywords=settings.label_keywords,
            quotes=settings.label_quotes,
            quote_max_similarity=settings.label_quote_max_similarity,
            quote_max_overlap=settings.label_quote_max_overlap,
            title_max_words=settings.label_title_max_words,
            title_candidates=settings.label_title_candidates,
        )


def relabel(
    session: Session,
    units: UnitMatrix,
    issue_of: Mapping[int, int],
    *,
    params: LabelParams,
    only: Collection[int] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> None:
    """Keywords, quotes, centroid and (unless a person set it) title of every issue, or of the
    issues in ``only`` (told apart from all the others). ``issue_of``: unit id -> issue id.
    ``embed``: the refresh's embedder, so titles are judged on what they mean too; a
    correction, in the API process, which loads no model, relabels without it, and the next
    refresh labels that issue again (its key changed) with it."""
    labels = np.array([issue_of.get(u, -1) for u in units.ids], dtype=int)
    found = _label(session, units, labels, params=params, only=only, embed=embed)
    for issue in store.active_issues(session):
        if issue.id not in found:
            continue
        members = units.vectors[labels == issue.id]
        centroid = members.mean(axis=0)
        issue.centroid = vector_to_bytes(centroid / (np.linalg.norm(centroid) or 1.0))
        label = found[issue.id]
        issue.keywords, issue.quotes = label.keywords, label.quotes
        if "title" not in issue.human_fields:
            issue.title = label.title
        issue.updated_at = utcnow()
        session.add(issue)


def prefetch_titles(
    session: Session,
    units: UnitMatrix,
    labels: np.ndarray,
    *,
    params: LabelParams,
    embed: Callable[[list[str]], np.ndarray],
) -> None:
    """Label the groups of a clustering (``labels``: one per unit, -1 for none) and drop the
    result, for what it embeds: run before the write transaction that stores the issues, it
    puts their title candidates' vectors where ``embed`` keeps them (the refresh's pending
    vectors), so ``relabel`` inside that transaction embeds nothing it saw here."""
    _label(session, units, labels, params=params, only=None, embed=embed)


def _label(
    session: Session,
    units: UnitMatrix,
    labels: np.ndarray,
    *,
    params: LabelParams,
    only: Collection[int] | None,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> dict[int, IssueLabel]:
    # The ticket of each unit, so one long ticket cannot fill an issue's quotes on its own.
    ticket_of = store.unit_context(session)
    return label_issues(
        labels.tolist(),
        units.texts,
        units.lemmas,
        units.vectors,
        tickets=[ticket_of[u][0] if u in ticket_of else None for u in units.ids],
        n_keywords=params.keywords,
        n_quotes=params.quotes,
        max_quote_similarity=params.quote_max_similarity,
        max_quote_overlap=params.quote_max_overlap,
        title_max_words=params.title_max_words,
        title_candidates=params.title_candidates,
        only=only,
        embed=embed,
    )
