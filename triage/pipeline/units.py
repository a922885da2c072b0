"""Every processed unit with its vector, as the arrays the refresh steps work on."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session

from triage import db, store
from triage.embed import Embedder, vector_from_bytes, vector_to_bytes
from triage.lexicon import lemma_docs


@dataclass
class UnitMatrix:
    """Row ``i`` of each field is unit ``ids[i]``, in unit id order."""

    ids: list[int]
    texts: list[str]
    lemmas: list[list[str]]
    vectors: np.ndarray

    def unassigned_share(self, assigned: Container[int]) -> float:
        if not self.ids:
            return 0.0
        return sum(1 for u in self.ids if u not in assigned) / len(self.ids)

    def rows_by_issue(self, issue_of: Mapping[int, int]) -> dict[int, list[int]]:
        """issue id -> the rows of its units."""
        rows_of: dict[int, list[int]] = {}
        for row, unit_id in enumerate(self.ids):
            if unit_id in issue_of:
                rows_of.setdefault(issue_of[unit_id], []).append(row)
        return rows_of


def embed_missing(engine: Engine, embedder: Embedder, *, batch_size: int) -> int:
    """Give every unit whose text has no vector of ``embedder``'s model one, so a database
    processed under another embedding model (a changed backend, a newer export) is clustered
    whole rather than only its newest units; how many texts were embedded. The vectors are
    written under the issues lock, as a refresh writes."""
    with db.session_scope(engine) as session:
        missing = store.units_without_vector(session, model_id=embedder.model_id)
    if not missing:
        return 0
    vectors = embedder.embed(list(missing.values()), batch_size=batch_size)
    with db.session_scope(engine, write_lock=True) as session:
        store.lock_issues(session)
        store.add_vectors(
            session,
            vectors={h: vector_to_bytes(v) for h, v in zip(missing, vectors, strict=True)},
            model_id=embedder.model_id,
            dim=embedder.dim,
        )
    return len(missing)


def load_units(session: Session, *, model_id: str) -> UnitMatrix:
    """The units embedded with ``model_id``; vectors of another model are not comparable."""
    ids, texts, lemmas, blobs = store.unit_vectors(session, model_id=model_id)
    vectors = (
        np.stack([vector_from_bytes(b) for b in blobs])
        if blobs
        else np.empty((0, 0), dtype=np.float32)
    )
    return UnitMatrix(ids, texts, [s.split() for s in lemmas], vectors)


class ParsedTexts:
    """``lemma_docs`` of the units' texts and of any other text (a ticket read whole), parsed
    when first asked for and kept by text: a refresh that keeps most decisions parses only the
    statements of what it decides again, and a text met twice (a one-statement ticket read
    whole is its statement) is parsed once."""

    def __init__(self, texts: Sequence[str]):
        self.texts = texts
        self._docs: dict[str, Any] = {}

    def rows(self, rows: Sequence[int]) -> list[Any]:
        """The parsed texts of ``rows``."""
        return self.parse([self.texts[r] for r in rows])

    def parse(self, texts: Sequence[str]) -> list[Any]:
        """``texts`` parsed; those not parsed yet in one pass (none: not even spaCy loads)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._docs]
        if missing:
            self._docs.update(zip(missing, lemma_docs(missing), strict=True))
        return [self._docs[t] for t in texts]
