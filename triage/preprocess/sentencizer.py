"""The ``triage_sentencizer`` component: spaCy's Sentencizer plus a start after each line break."""

from __future__ import annotations

from typing import Any

from spacy.attrs import ORTH
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc
from spacy.vocab import Vocab

from triage.preprocess.memo import _Memo

# What a word is to the sentence rule; the rule compares them (``<= _LINE_BREAK``: not punctuation).
_PLAIN, _LINE_BREAK, _PUNCT, _SENTENCE_PUNCT = range(4)


class LineSentencizer(Sentencizer):
    """spaCy's Sentencizer, plus a sentence start after every line break.

    Tickets list problems line by line without full stops, so a line break always starts a
    sentence, whatever the Doc said before; elsewhere the Sentencizer's rule decides, for the
    tokens nobody has decided on. spaCy's ``predict`` builds a Token object per token: this reads
    the words as one array and classifies each distinct word once, with the same result.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._kinds: _Memo[int] = _Memo()  # by orth hash: _PLAIN, _LINE_BREAK, ...
        self._kinds_for = self.punct_chars  # from_bytes and from_disk replace the set

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        kinds = self._word_kinds(doc.vocab, doc.to_array(ORTH).tolist())
        if _LINE_BREAK in kinds:
            for i in range(1, len(kinds)):
                if kinds[i - 1] == _LINE_BREAK:
                    doc[i].is_sent_start = True
        guesses = [False] * len(kinds)
        for i in _sentence_starts(kinds):
            guesses[i] = True
        self.set_annotations([doc], [guesses])
        return doc

    def sentence_starts(self, vocab: Vocab, orths: list[int]) -> list[int]:
        """Where sentences start (token indexes) in a new Doc of these words."""
        return _sentence_starts(self._word_kinds(vocab, orths))

    def _word_kinds(self, vocab: Vocab, orths: list[int]) -> list[int]:
        if self._kinds_for is not self.punct_chars:
            self._kinds.reset()
            self._kinds_for = self.punct_chars
        return self._kinds.all(orths, lambda orth: self._kind(vocab[orth]))

    def _kind(self, lexeme: Any) -> int:
        if lexeme.orth_ in self.punct_chars:
            return _SENTENCE_PUNCT
        if lexeme.is_punct:
            return _PUNCT
        if lexeme.is_space and "\n" in lexeme.orth_:
            return _LINE_BREAK
        return _PLAIN


def _sentence_starts(kinds: list[int]) -> list[int]:
    """The first token, each after a line break, and each where the Sentencizer starts a sentence:
    the first token that is not punctuation after sentence punctuation ("!", "?", "."...)."""
    # Most texts are one sentence: no line break, only punctuation after sentence punctuation.
    if _LINE_BREAK not in kinds and (
        _SENTENCE_PUNCT not in kinds or min(kinds[kinds.index(_SENTENCE_PUNCT) :]) >= _PUNCT
    ):
        return [0]
    starts = [0]
    seen_period = after_break = False
    for i, kind in enumerate(kinds):
        new_sentence = seen_period and kind <= _LINE_BREAK  # Sentencizer.predict
        if new_sentence:
            seen_period = False
        elif kind == _SENTENCE_PUNCT:
            seen_period = True
        if new_sentence or after_break:
            starts.append(i)
        after_break = kind == _LINE_BREAK
    return starts
