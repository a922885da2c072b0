"""Units: the statements of a ticket, and how neighbours about the same thing are joined."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UnitText:
    text: str  # redacted statement, as shown to people
    lemmas: list[str]  # lowercased lookup lemmas, no stop words or placeholders
    opens_topic: bool = False  # starts with "Also", "PS", a list bullet...: never joined back
    start: int = 0  # character offsets of the statement in the redacted text
    end: int = 0

    @classmethod
    def joined(cls, units: Sequence[UnitText], redacted_text: str) -> UnitText:
        """One unit spanning ``units`` (neighbours, in order), with what lies between them."""
        if len(units) == 1:
            return units[0]
        start, end = units[0].start, units[-1].end
        return cls(
            text=_shown(redacted_text[start:end]),
            lemmas=[lemma for u in units for lemma in u.lemmas],
            opens_topic=units[0].opens_topic,
            start=start,
            end=end,
        )


def _shown(span: str) -> str:
    """A statement as shown alone: one space between words, a capital first letter (a clause
    split off mid-sentence starts lowercase)."""
    text = " ".join(span.split())
    return text[:1].upper() + text[1:]


def join_same_topic(
    units: Sequence[UnitText], vectors: np.ndarray, *, min_similarity: float
) -> list[list[int]]:
    """Group neighbouring units whose embeddings say they are about the same thing.

    ``vectors`` are the units' normalised embeddings, row for row. A unit joins the group before
    it when its cosine similarity to that group's last unit is at least ``min_similarity``,
    unless it opens a new topic (a topic opener or a list bullet). Returns groups of indexes, in
    order; each group becomes one unit.
    """
    groups: list[list[int]] = []
    for i, unit in enumerate(units):
        if (
            groups
            and not unit.opens_topic
            and float(vectors[groups[-1][-1]] @ vectors[i]) >= min_similarity
        ):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def topic_units(
    tickets: Sequence[tuple[str, Sequence[UnitText]]],
    vectors: np.ndarray,
    embed: Callable[[list[str]], np.ndarray],
    *,
    min_similarity: float,
) -> tuple[list[list[UnitText]], np.ndarray]:
    """The units of each ticket once same-topic neighbours are joined (``join_same_topic``).

    ``tickets`` are (redacted text, statements) pairs; ``vectors`` holds the statements'
    embeddings, all tickets in order. Returns the units per ticket and one vector per unit (flat,
    in the same order): a statement left alone keeps its vector, a joined unit's text is embedded
    with ``embed``.
    """
    per_ticket: list[list[UnitText]] = []
    rows: list[int | None] = []  # the statement vector a unit keeps; None when joined
    offset = 0
    for redacted_text, statements in tickets:
        groups = join_same_topic(
            statements, vectors[offset : offset + len(statements)], min_similarity=min_similarity
        )
        per_ticket.append(
            [UnitText.joined([statements[i] for i in group], redacted_text) for group in groups]
        )
        rows += [offset + group[0] if len(group) == 1 else None for group in groups]
        offset += len(statements)
    units = [unit for ticket in per_ticket for unit in ticket]
    joined = [i for i, row in enumerate(rows) if row is None]
    if not joined:
        return per_ticket, vectors
    final = np.empty((len(units), vectors.shape[1]), dtype=vectors.dtype)
    kept = [i for i, row in enumerate(rows) if row is not None]
    final[kept] = vectors[[row for row in rows if row is not None]]
    final[joined] = embed([units[i].text for i in joined])
    return per_ticket, final
