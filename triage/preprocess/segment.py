"""The ``triage_units`` component: a redacted text's statements, by rules on its tokens."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress

from spacy.attrs import IDX, LEMMA, ORTH, SENT_START
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from triage.preprocess.tokens import _Tokens, _WordValues
from triage.preprocess.units import UnitText, _shown
from triage.preprocess.words import (
    _ADDRESSEES,
    _ANAPHORS,
    _BULLETS,
    _CONTACT_WORDS,
    _DAY_PARTS,
    _GENERIC_LEMMAS,
    _GREETINGS,
    _NAMING_STOP_WORDS,
    _PLEASANTRY,
    _SENTENCE_END,
    _SIGNOFF,
    _SPLIT_WORDS,
    _SUBJECT_STARTERS,
    _TOPIC_OPENER_PAIRS,
    _TOPIC_OPENERS,
)

UNITS_ATTR = "triage_units"
if not Doc.has_extension(UNITS_ATTR):
    # list[UnitText], set by the "triage_units" component.
    Doc.set_extension(UNITS_ATTR, default=None)

# (start token, end token, opens a new topic)
_Segment = tuple[int, int, bool]


class UnitSegmenter:
    """Sets ``doc._.triage_units``: the statements of a redacted text, as ``UnitText``.

    Splitting is conservative: a sentence or clause becomes a unit of its own only when it names
    something (``min_unit_words`` words, ``min_topic_words`` topical lemmas); a follow-up such as
    "How do I reset it?" or "I have been waiting a week!" joins the statement it belongs to.
    Whether two remaining neighbours are about the same thing is decided later, on their
    embeddings (``join_same_topic``), unless a topic opener or a list bullet separates them.
    """

    def __init__(
        self,
        nlp: Language,
        name: str,
        min_unit_words: int,
        split_conjunctions: bool,
        min_topic_words: int,
    ):
        self.min_unit_words = min_unit_words
        self.min_topic_words = min_topic_words
        self.split_conjunctions = split_conjunctions
        self.stop_words = frozenset(nlp.Defaults.stop_words) - _NAMING_STOP_WORDS
        self._values = _WordValues(self.stop_words)

    def __call__(self, doc: Doc) -> Doc:
        # One array copy instead of a Token object per token (those were 60% of preprocessing).
        orths, lemmas, idx, sent_start = doc.to_array([ORTH, LEMMA, IDX, SENT_START]).T.tolist()
        # SENT_START is 1 at a sentence start (the array is unsigned: -1 reads as 2**64 - 1).
        starts = [0, *(i for i, flag in enumerate(sent_start) if flag == 1 and i > 0)]
        doc._.set(UNITS_ATTR, self.units(doc.vocab, doc.text, orths, lemmas, idx, starts))
        return doc

    def units(
        self,
        vocab: Vocab,
        text: str,
        orths: list[int],
        lemmas: list[int],
        idx: list[int],
        starts: list[int],
    ) -> list[UnitText]:
        """The units of ``text`` from its tokens: orth and lemma hashes, character offsets, and
        the token indexes where sentences start."""
        if not orths:
            return []
        tokens = _Tokens.build(self._values, vocab, text, orths, lemmas, idx, starts)
        units = self._join_weak(tokens, list(self._statements(tokens)))
        said = [u for u in units if any(tokens.content[u[0] : u[1]])]
        if not said:
            # A complaint in stop words and numbers alone ("it's 40 not 45", "what does that
            # have to do with anything") still says something: it is one statement, where a
            # text of emoji, links or placeholders alone is none.
            said = [u for u in units if any(t.isalpha() for t in tokens.text[u[0] : u[1]])]
        return [self._unit(tokens, *u) for u in said]

    def _statements(self, tokens: _Tokens) -> Iterator[_Segment]:
        """Sentences minus greetings, pleasantries and sign-offs, split at clause boundaries."""
        first, after_signoff = True, False
        for sent_start, sent_end in tokens.sentences:
            start, end = tokens.trim(sent_start, sent_end)
            if first:
                start, end = tokens.trim(_skip_greeting(tokens, start, end), end)
            if start >= end:
                continue
            first = False
            kind = _segment_kind(tokens, start, end)
            if kind == "signoff":
                after_signoff = True
            elif kind == "statement" and not (
                after_signoff and _is_signature_line(tokens, start, end)
            ):
                bullet = sent_start < start and any(
                    tokens.text[k] in _BULLETS for k in range(sent_start, start)
                )
                opens = bullet or _opens_topic(tokens, start, end)
                if not self.split_conjunctions:
                    yield start, end, opens
                    continue
                for i, (left, right, opens_clause) in enumerate(self._split(tokens, start, end)):
                    yield left, right, opens if i == 0 else opens_clause

    def _split(self, tokens: _Tokens, start: int, end: int) -> Iterator[_Segment]:
        current, opens = start, False
        if _SPLIT_WORDS.isdisjoint(tokens.lower[start + 1 : end - 1]):  # most sentences
            yield current, end, opens
            return
        for i in range(start + 1, end - 1):
            if tokens.lower[i] not in _SPLIT_WORDS:
                continue
            left_end = i - 1 if tokens.text[i - 1] == "," else i
            also = tokens.lower[i + 1] == "also"
            right = i + 1 + also
            if (
                right < end
                and tokens.lower[right] in _SUBJECT_STARTERS
                and tokens.count_words(current, left_end) >= self.min_unit_words
                and tokens.count_words(right, end) >= self.min_unit_words
                and tokens.has_verb(current, left_end)
                and tokens.has_verb(right, end)
            ):
                yield current, left_end, opens
                current, opens = right, also or tokens.lower[i] == "plus"
        yield current, end, opens

    def _weak(self, tokens: _Tokens, start: int, end: int) -> bool:
        """Too short or too vague to be a statement about one thing on its own."""
        if tokens.count_words(start, end) < self.min_unit_words:
            return True
        topical = {
            tokens.lemma[k]
            for k in range(start, end)
            if tokens.content[k] and tokens.lemma[k] not in _GENERIC_LEMMAS
        }
        return len(topical) < self.min_topic_words

    def _join_weak(self, tokens: _Tokens, segments: list[_Segment]) -> list[_Segment]:
        """Join each weak segment, and each that points back, to the one before it (a weak first
        segment to the one after it), as long as nothing was dropped between them."""
        units: list[_Segment] = []
        for start, end, opens in segments:
            if (
                units
                and tokens.adjacent(units[-1][1], start)
                and (
                    self._weak(tokens, start, end)
                    or self._weak(tokens, *units[-1][:2])
                    or (not opens and _points_back(tokens, start, end))
                )
            ):
                units[-1] = (units[-1][0], end, units[-1][2])
            else:
                units.append((start, end, opens))
        return units

    def _unit(self, tokens: _Tokens, start: int, end: int, opens: bool) -> UnitText:
        start_char = tokens.start_char[start]
        end_char = tokens.start_char[end - 1] + len(tokens.text[end - 1])
        lemmas = [
            lemma
            for lemma in compress(tokens.lemma[start:end], tokens.content[start:end])
            if len(lemma) > 1 and lemma not in self.stop_words
        ]
        return UnitText(
            text=_shown(tokens.source[start_char:end_char]),
            lemmas=lemmas,
            opens_topic=opens,
            start=start_char,
            end=end_char,
        )


def _points_back(tokens: _Tokens, start: int, end: int) -> bool:
    words = tokens.words_between(start, min(end, start + 6))[:3]
    return bool(_ANAPHORS.intersection(words))


def _opens_topic(tokens: _Tokens, start: int, end: int) -> bool:
    words = tokens.words_between(start, min(end, start + 4))
    return bool(words) and (words[0] in _TOPIC_OPENERS or tuple(words[:2]) in _TOPIC_OPENER_PAIRS)


def _skip_greeting(tokens: _Tokens, start: int, end: int) -> int:
    """Return where the text starts once an opening "Hi team," / "Good morning <PERSON>!" is cut."""
    lower = tokens.lower
    if start >= end:
        return start
    if lower[start] in _GREETINGS:
        i = start + 1
    elif lower[start] == "good" and start + 1 < end and lower[start + 1] in _DAY_PARTS:
        i = start + 2
    else:
        return start
    while i < end and lower[i] in _ADDRESSEES:
        i += 1
    generic_end = i
    # A name-like word only counts as the addressee when punctuation or a line break closes it:
    # "Hello Maria," but not "Hello Export is broken".
    while i < end and i - generic_end < 3 and tokens.name[i] and lower[i] != "i":
        i += 1
    if i == end or tokens.space[i] or tokens.punct[i]:
        while i < end and (tokens.punct[i] or tokens.space[i]):
            i += 1
        return i
    return generic_end


def _segment_kind(tokens: _Tokens, start: int, end: int) -> str:
    words = list(compress(tokens.pattern_word[start + 1 : end], tokens.word[start + 1 : end]))
    if tokens.word[start]:
        words.insert(0, tokens.pattern_first[start])
    normalised = " ".join(words)
    if _SIGNOFF.fullmatch(normalised) or set(words) == {"<person>"}:
        return "signoff"
    if len(words) <= 10 and _PLEASANTRY.fullmatch(normalised):
        return "pleasantry"
    # "My email is <EMAIL>", "Contact: <PERSON>, <EMAIL>": how to reach someone, not feedback.
    if (
        "<" in normalised
        and any(word.startswith("<") for word in words)
        and all(word in _CONTACT_WORDS or word.startswith("<") for word in words)
    ):
        return "pleasantry"
    return "statement"


def _is_signature_line(tokens: _Tokens, start: int, end: int) -> bool:
    """After a sign-off, short lines without a full stop are the signature (name, role, company)."""
    on_own_line = start == 0 or tokens.newline[start - 1]
    return (
        on_own_line
        and tokens.count_words(start, end) <= 6
        and tokens.text[end - 1] not in _SENTENCE_END
    )
