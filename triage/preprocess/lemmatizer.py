"""The ``triage_lemmatizer`` component: spaCy's lookup lemmas, case-folded and corrected."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from spacy.attrs import LEMMA, ORTH
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import Lemmatizer
from spacy.tokens import Doc
from spacy.vocab import Vocab

from triage.preprocess.memo import _Memo

# Entries of spacy-lookups-data's English table that are wrong for product feedback (it maps
# "number" to "numb", "data" to "datum", "worse" to "wrong"); keywords are built from lemmas.
_LEMMA_OVERRIDES = {
    "number": "number",
    "data": "data",
    "media": "media",
    "does": "do",
    "worse": "bad",
    "worst": "bad",
    "better": "good",
    "best": "good",
}


class LookupLemmatizer(Lemmatizer):
    """spaCy's lookup lemmatizer, with capitalised words lemmatised through their lowercase form.

    The lookup table is case-sensitive, so a sentence-initial "Exports" would stay "Exports"
    while "exports" becomes "export", and the two would count as different keywords; the table
    also gets ``_LEMMA_OVERRIDES``.

    spaCy's ``Lemmatizer.__call__`` builds a Token object per token and looks each one up again,
    which cost more than the rest of the pipeline. A word's lemma depends only on its text, so
    this reads the words as one array, looks each distinct word up once (a memo by orth hash)
    and writes the lemmas back in one call: same table, same result, ``token.lemma_`` as before.
    """

    def __init__(self, vocab: Vocab, name: str) -> None:
        super().__init__(vocab, None, name, mode="lookup")
        self._memo: _Memo[int] = _Memo()  # orth hash -> lemma hash

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        lookups: Any = None,
    ) -> None:
        super().initialize(get_examples, nlp=nlp, lookups=lookups)
        table = self.lookups.get_table("lemma_lookup")
        for word, lemma in _LEMMA_OVERRIDES.items():
            table.set(word, lemma)
        self._memo.reset()

    def from_bytes(self, *args: Any, **kwargs: Any) -> LookupLemmatizer:
        super().from_bytes(*args, **kwargs)
        self._memo.reset()  # the tables may have changed
        return self

    def from_disk(self, *args: Any, **kwargs: Any) -> LookupLemmatizer:
        super().from_disk(*args, **kwargs)
        self._memo.reset()
        return self

    @contextmanager
    def memory_zone(self, mem: Any = None) -> Iterator[None]:
        # ``nlp.memory_zone()`` forgets the strings added inside it, lemmas included.
        try:
            yield
        finally:
            self._memo.reset()

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        orths, given = doc.to_array([ORTH, LEMMA]).T.tolist()
        lemmas = self.lemmas(orths)
        if any(given):  # spaCy keeps a lemma the Doc already has; only the case step applies
            lemmas = [
                self._lemma(o, g) if g else lemma
                for o, g, lemma in zip(orths, given, lemmas, strict=True)
            ]
        return doc.from_array([LEMMA], np.array(lemmas, dtype=np.uint64))  # type: ignore[arg-type]

    def lemmas(self, orths: list[int]) -> list[int]:
        """The lemma hashes of these words."""
        if not self._validated:
            self._validate_tables(Errors.E1004)
        return self._memo.all(orths, self._lemma)

    def _lemma(self, orth: int, given: int = 0) -> int:
        strings = self.vocab.strings
        table = self.lookups.get_table("lemma_lookup")
        lexeme = self.vocab[orth]
        text = lexeme.orth_
        if given:
            lemma = strings[given]
        else:  # Lemmatizer.lookup_lemmatize
            lemma = table.get(text, text)
            lemma = lemma if isinstance(lemma, str) else lemma[0]
        if not lexeme.is_lower and lexeme.is_alpha and lemma == text:
            lemma = table.get(lexeme.lower_, lexeme.lower_)
        return strings.add(lemma)
