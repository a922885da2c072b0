"""What segmentation reads about a text's tokens, fetched once per text as plain sequences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from typing import NamedTuple

from spacy.strings import StringStore
from spacy.vocab import Vocab

from triage.placeholders import PLACEHOLDER_TEXTS
from triage.preprocess.memo import _Memo
from triage.preprocess.words import _DETERMINERS, _OPENERS, _VERB_CUES


class _Word(NamedTuple):
    """What segmentation reads about one word: the first fields of ``_Tokens``, in its order."""

    text: str
    lower: str
    space: bool
    newline: bool  # a whitespace token holding a line break
    punct: bool
    word: bool  # holds a letter or digit: emoji and punctuation are not words
    content: bool  # alphabetic, not a stop word, not a placeholder
    name: bool  # could be a name: a placeholder or a capitalised non-stop word
    # The word as ``_SIGNOFF`` and ``_PLEASANTRY`` read it: lowercase with "'" for "’", and
    # "<person>" for "<PERSON>" or, after the first word of a segment, for any name-like word.
    pattern_first: str
    pattern_word: str


class _WordValues:
    """``_Word`` values and lowercased lemmas, computed once per distinct word or lemma.

    They depend only on the text, so a dict lookup by hash replaces a dozen str method calls per
    token.
    """

    def __init__(self, stop_words: frozenset[str]) -> None:
        self.stop_words = stop_words
        self._words: _Memo[_Word] = _Memo()  # by orth hash
        self._lemmas: _Memo[str] = _Memo()  # lowercased, by lemma hash

    def words(self, vocab: Vocab, orths: list[int]) -> list[_Word]:
        return self._words.all(orths, lambda orth: self._word(vocab, orth))

    def lemmas(self, strings: StringStore, hashes: list[int]) -> list[str]:
        return self._lemmas.all(hashes, lambda lemma: strings[lemma].lower())

    def _word(self, vocab: Vocab, orth: int) -> _Word:
        # str methods answer the same questions as spaCy's is_alpha/is_space/is_title/is_stop.
        lexeme = vocab[orth]
        text = lexeme.orth_
        lower = text.lower()
        alpha = text.isalpha()
        stop = lower in self.stop_words
        placeholder = text in PLACEHOLDER_TEXTS
        space = text.isspace()
        name = placeholder or (alpha and text.istitle() and not stop)
        pattern = lower.replace("’", "'")
        return _Word(
            text=text,
            lower=lower,
            space=space,
            newline=space and "\n" in text,
            punct=lexeme.is_punct,
            word=alpha or any(ch.isalnum() for ch in text),
            content=alpha and not stop and not placeholder,
            name=name,
            pattern_first="<person>" if text == "<PERSON>" else pattern,
            pattern_word="<person>" if text == "<PERSON>" or name else pattern,
        )


@dataclass
class _Tokens:
    """The per-token values segmentation reads, fetched once per text.

    Every Doc attribute access builds a Python object; reading them once per token instead of
    once per rule made segmentation several times faster.
    """

    # ``_Word``'s fields, one value per token
    text: Sequence[str]
    lower: Sequence[str]
    space: Sequence[bool]
    newline: Sequence[bool]
    punct: Sequence[bool]
    word: Sequence[bool]
    content: Sequence[bool]
    name: Sequence[bool]
    pattern_first: Sequence[str]
    pattern_word: Sequence[str]
    # and the values that depend on the token, not only on the word
    lemma: Sequence[str]  # lowercased
    start_char: Sequence[int]
    sentences: list[tuple[int, int]]  # (start, end) token ranges, as ``doc.sents`` gives them
    source: str  # the text the tokens were made from

    @classmethod
    def build(
        cls,
        values: _WordValues,
        vocab: Vocab,
        source: str,
        orths: list[int],
        lemmas: list[int],
        idx: list[int],
        starts: list[int],
    ) -> _Tokens:
        # One lookup per token in the per-word values, turned into one tuple per _Word field
        # (mypy cannot count the positional arguments that unpacking gives).
        return cls(  # type: ignore[misc]
            *zip(*values.words(vocab, orths), strict=True),  # type: ignore[arg-type]
            lemma=values.lemmas(vocab.strings, lemmas),
            start_char=idx,
            sentences=list(zip(starts, [*starts[1:], len(orths)], strict=True)),
            source=source,
        )

    def count_words(self, start: int, end: int) -> int:
        return sum(self.word[start:end])

    def words_between(self, start: int, end: int) -> list[str]:
        """The lowercased words (no punctuation, spaces or emoji) from ``start`` to ``end``."""
        return list(compress(self.lower[start:end], self.word[start:end]))

    def adjacent(self, left_end: int, right_start: int) -> bool:
        """True when only spaces and punctuation lie between two ranges (nothing was dropped)."""
        return all(self.space[k] or self.punct[k] for k in range(left_end, right_start))

    def trim(self, start: int, end: int) -> tuple[int, int]:
        while start < end and (self.space[start] or self.punct[start]):
            start += 1
        while end > start and (self.space[end - 1] or self.text[end - 1] in _OPENERS):
            end -= 1
        return start, end

    def has_verb(self, start: int, end: int) -> bool:
        for k in range(start, end):
            lower = self.lower[k]
            if lower in _VERB_CUES:
                return True
            if self.lemma[k] == lower or not self.text[k].isalpha():
                continue
            if lower.endswith("ed"):
                return True
            # "-s" is a verb after a noun-like word ("the chart loads"), a plural after "the".
            if (
                lower.endswith("s")
                and k > start
                and self.content[k - 1]
                and self.lower[k - 1] not in _DETERMINERS
            ):
                return True
        return False
