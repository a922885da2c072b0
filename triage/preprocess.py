"""Stage "preprocess": clean each feedback text, redact personal data, split it into units.

A unit is one statement about one thing: a ticket that complains about the export button and
about wrong numbers becomes two units, so each complaint can join its own issue. Greetings,
pleasantries and sign-offs are not units.

Everything runs on ``spacy.blank("en")`` plus rules and lookup tables, never a trained pipeline,
so it loads in well under a second, needs no download and gives the same output on every machine.
Personal data is found by presidio with only the recognizers listed in ``PLACEHOLDERS``; presidio's
default engine would load ``en_core_web_lg`` for a name model we cannot ship, so names are found
by rules where the text introduces them ("my name is ...", sign-offs) and nowhere else.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np
import phonenumbers
import spacy
import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    LocalRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig
from spacy.attrs import IDX, LEMMA, ORTH, SENT_START
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import Lemmatizer, Sentencizer
from spacy.strings import StringStore
from spacy.tokens import Doc
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
from spacy.vocab import Vocab

from triage.errors import ConfigError, StageError

# presidio logs each text's context words at DEBUG, personal data included; a debug log of this
# service must never hold what redaction removes.
logging.getLogger("presidio-analyzer").setLevel(logging.INFO)

if TYPE_CHECKING:
    from triage.config import Settings

LANGUAGE = "en"

# Presidio entity type -> the placeholder people see instead of the value.
PLACEHOLDERS: dict[str, str] = {
    "EMAIL_ADDRESS": "<EMAIL>",
    "PHONE_NUMBER": "<PHONE>",
    "CREDIT_CARD": "<CARD>",
    "IBAN_CODE": "<IBAN>",
    "IP_ADDRESS": "<IP>",
    "URL": "<URL>",  # only URLs that carry credentials; plain links stay
    "PERSON": "<PERSON>",
}
_PLACEHOLDER_TEXTS = frozenset(PLACEHOLDERS.values())

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")

UNITS_ATTR = "triage_units"
if not Doc.has_extension(UNITS_ATTR):
    # list[UnitText], set by the "triage_units" component.
    Doc.set_extension(UNITS_ATTR, default=None)


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


# (start token, end token, opens a new topic)
_Segment = tuple[int, int, bool]


@dataclass(frozen=True)
class PreprocessedText:
    redacted_text: str
    units: list[UnitText]  # empty when nothing is left to say: the caller marks the item failed
    redactions: dict[str, int]  # presidio entity type -> count


# --- cleaning ---------------------------------------------------------------------------------

# Control characters (NUL included) break display and some storage drivers; newline and tab carry
# structure (sign-offs, lists), so they stay. U+2028/2029 are line breaks in disguise.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
# spaCy's tokenizer peels affixes off a whitespace-free chunk one at a time, copying the rest each
# time: quadratic in the chunk's length (10,000 emoji in a row took over 30 s). Walls of one
# character say no more than a few of them, and no readable word or link is 1,000 characters long.
_MAX_REPEAT = 20
_REPEATS = re.compile(rf"(\S)\1{{{_MAX_REPEAT},}}")
_MAX_CHUNK = 1000
_LONG_CHUNK = re.compile(rf"\S{{{_MAX_CHUNK}}}(?=\S)")


def clean_text(text: str | None) -> str:
    """Normalise one raw text: NFC, one kind of line break, no control characters or walls."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    if "\r" in text or not text.isascii():  # the other line breaks are not ASCII
        text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    # These two only match inside a run of non-space characters longer than _MAX_REPEAT or
    # _MAX_CHUNK, which most texts do not have; searching for them tries every position.
    longest = max(map(len, text.split()), default=0)
    if longest > _MAX_REPEAT:
        text = _REPEATS.sub(lambda m: m.group(1) * _MAX_REPEAT, text)
    if longest > _MAX_CHUNK:
        text = _LONG_CHUNK.sub(lambda m: m.group() + " ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


# --- the spaCy pipeline -----------------------------------------------------------------------

_GREETINGS = frozenset({"hi", "hello", "hey", "dear", "hiya", "greetings", "howdy", "yo"})
_DAY_PARTS = frozenset({"morning", "afternoon", "evening", "day"})
_ADDRESSEES = frozenset(
    {"team", "all", "there", "everyone", "everybody", "folks", "guys", "support", "sir", "madam"}
)
# Whole-segment matches on the lowercased words of a segment (placeholders and title-case words
# after the first read as "<person>"), so "Thanks for the quick fix, but ..." is never a sign-off.
_SIGNOFF = re.compile(
    r"(?:many |big )?"
    r"(?:thanks|thank you|thx|ty|cheers|best|regards|(?:kind|kindest|warm|warmest|best) regards"
    r"|best wishes|sincerely|yours sincerely|sincerely yours|yours truly|all the best|br|kr"
    r"|take care|talk soon|have a (?:nice|good|great) (?:day|weekend))"
    r"(?: (?:so much|a lot|again|in advance|very much))?"
    r"(?: for (?:your |the |all (?:the |your )?)?(?:quick |fast |kind )?"
    r"(?:help|time|support|assistance|patience|attention|reply|response|understanding|work))?"
    r"(?: (?:team|all|everyone|guys|folks|<person>))*"
)
_PLEASANTRY = re.compile(
    r"(?:i )?hope (?:you|this|all|everything|your)\b.{0,40}"
    r"|(?:sent from my|get outlook for) .{0,40}"
    # Introductions: "I'm <PERSON> from Acme", "This is <PERSON>, data lead at Acme".
    r"|(?:i 'm|i am|this is|it 's|my name is|name) <person>(?: <person>)*"
    r"(?: (?:from|at|here|with|and i 'm|, the|the|a|an)(?: <person>| [\w']+){0,4})?"
)
_CONTACT_WORDS = frozenset(
    {"contact", "email", "e", "mail", "phone", "tel", "mobile", "cell", "number", "name", "me",
     "my", "at", "on", "or", "and", "via", "is", "reach", "call", "write", "to", "you", "can",
     "the", "here", "details", "info"}
)  # fmt: skip
_SENTENCE_END = frozenset({".", "!", "?", "…"})
_OPENERS = frozenset({"(", "[", "{"})

# Conservative clause split: only these words, only when both sides are full statements and the
# right side opens with a fresh subject. Anaphoric openers ("it", "this", "they") refer back to
# the left side, so they mean the same thing and never split.
# "but", "however", "yet" are left out: a contrast usually says more about the same thing ("I paid
# in euros but the rate applied is wrong").
_SPLIT_WORDS = frozenset({"and", "plus", ";"})
_SUBJECT_STARTERS = frozenset(
    {
        "the", "my", "our", "your", "their", "all", "some", "every", "most", "many", "several",
        "no", "these", "those", "another", "other", "there", "a", "an", "each", "any",
    }
)  # fmt: skip
_DETERMINERS = _SUBJECT_STARTERS | {"this", "that", "its", "his", "her"}
# Words on spaCy's stop list that name what feedback is about ("how can I top up?", "the chart is
# empty", "the back button", "the site is down"): content words for units and keywords.
_NAMING_STOP_WORDS = frozenset(
    {
        "top", "bottom", "front", "back", "side", "empty", "full", "call", "move", "show",
        "name", "amount", "part", "first", "last", "next", "down", "used", "using",
    }
)  # fmt: skip
# Words that open a new topic: a statement starting with them is never joined to the one before
# by similarity ("Also, the login page ...", "PS: ..."), and neither is a list item.
_TOPIC_OPENERS = frozenset(
    {
        "also", "additionally", "another", "separately", "unrelated", "ps", "p.s", "p.s.",
        "plus", "besides", "btw", "secondly", "thirdly", "furthermore", "moreover", "lastly",
    }
)  # fmt: skip
_TOPIC_OPENER_PAIRS = frozenset(
    {("and", "also"), ("and", "another"), ("in", "addition"), ("on", "top"), ("one", "more"),
     ("other", "than"), ("oh", "and"), ("by", "the")}
)  # fmt: skip
# A sentence that opens by pointing back ("It was lost before", "This is urgent", "How is this
# possible?") continues the statement before it.
_ANAPHORS = frozenset({"it", "this", "that", "they", "them", "these", "those", "its"})
_BULLETS = frozenset({"-", "*", "•", "–", "—", "+"})
# Lemmas that say nothing about what a statement is about: asking for help, waiting, time.
# "Where is my new card? I have been waiting a week!" is one statement about a card; a segment
# needs ``min_topic_words`` lemmas outside this list (and the stop words) to stand on its own.
_GENERIC_LEMMAS = frozenset(
    {
        "help", "wait", "week", "day", "hour", "minute", "month", "year", "time", "ago", "today",
        "yesterday", "tomorrow", "morning", "evening", "night", "fix", "issue", "problem",
        "happen", "go", "please", "know", "think", "want", "need", "like", "get", "tell", "look",
        "see", "sure", "way", "thing", "reason", "possible", "able", "try", "still", "already",
        "just", "really", "long", "soon", "take", "make", "let", "ok", "okay", "thank", "thanks",
        "question", "ask", "wonder", "explain", "understand", "guy", "lot", "bit", "later",
        "early", "late", "sorry", "hey", "hello", "hi", "yes", "no", "maybe", "anymore",
    }
)  # fmt: skip
# Without a tagger, a clause "has a verb" when it holds one of these or an inflected form the
# lookup table knows (-ed, or -s right after a noun-like word: "the chart loads").
_VERB_CUES = frozenset(
    {
        "is", "are", "was", "were", "am", "be", "been", "being", "do", "does", "did", "n't",
        "has", "have", "had", "can", "ca", "could", "will", "wo", "would", "should", "shall",
        "may", "might", "must", "keeps", "seems", "looks", "shows", "works", "breaks", "fails",
        "crashes", "loads", "takes", "gets", "says", "returns", "gives", "makes", "needs",
        "stopped", "broke", "went", "came", "gave", "took", "made",
    }
)  # fmt: skip


# Memos keyed by orth hash grow with the vocab (each new word adds one); past this many entries
# they start over.
_MAX_MEMO = 200_000

T = TypeVar("T")


class _Memo(Generic[T]):
    """A value per hash (a word's orth, a lemma) that depends on nothing else, computed once.

    The components below read a text's words as one array of hashes and look each up here,
    instead of asking spaCy for a Token object per token. Starting over replaces the dict and
    never clears it, so another thread is never left with a key that vanished between the test
    and the lookup.
    """

    def __init__(self) -> None:
        self._values: dict[int, T] = {}

    def all(self, keys: list[int], compute: Callable[[int], T]) -> list[T]:
        """The value of each key; ``compute`` makes the ones not seen yet."""
        if len(self._values) > _MAX_MEMO:
            self.reset()
        values = self._values
        return [values[k] if k in values else self._add(values, k, compute(k)) for k in keys]

    def reset(self) -> None:
        self._values = {}

    @staticmethod
    def _add(values: dict[int, T], key: int, value: T) -> T:
        values[key] = value
        return value


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
        placeholder = text in _PLACEHOLDER_TEXTS
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
        # One lookup per token in the per-word values, turned into one tuple per _Word field.
        return cls(
            *zip(*values.words(vocab, orths), strict=True),
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


@Language.factory("triage_sentencizer")
def make_line_sentencizer(nlp: Language, name: str) -> LineSentencizer:
    return LineSentencizer(name)


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
        return doc.from_array([LEMMA], np.array(lemmas, dtype=np.uint64))

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


@Language.factory("triage_lemmatizer")
def make_lookup_lemmatizer(nlp: Language, name: str) -> LookupLemmatizer:
    return LookupLemmatizer(nlp.vocab, name)


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
        min_topic_words: int = 2,
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
        return [self._unit(tokens, *u) for u in units if any(tokens.content[u[0] : u[1]])]

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


@Language.factory(
    "triage_units",
    default_config={"min_unit_words": 4, "split_conjunctions": True, "min_topic_words": 2},
)
def make_unit_segmenter(
    nlp: Language, name: str, min_unit_words: int, split_conjunctions: bool, min_topic_words: int
) -> UnitSegmenter:
    return UnitSegmenter(nlp, name, min_unit_words, split_conjunctions, min_topic_words)


def _points_back(tokens: _Tokens, start: int, end: int) -> bool:
    words = tokens.words_between(start, min(end, start + 6))[:3]
    return bool(_ANAPHORS.intersection(words))


def _opens_topic(tokens: _Tokens, start: int, end: int) -> bool:
    words = tokens.words_between(start, min(end, start + 4))
    return bool(words) and (words[0] in _TOPIC_OPENERS or tuple(words[:2]) in _TOPIC_OPENER_PAIRS)


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
    final[kept] = vectors[[rows[i] for i in kept]]
    final[joined] = embed([units[i].text for i in joined])
    return per_ticket, final


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


class _TailSearch:
    """Search an end-anchored suffix pattern in the last characters of a chunk only.

    ``re.search`` scans a "...$" pattern from the start of the chunk, once per suffix peeled off,
    which is quadratic in long chunks; every suffix is far shorter than the window. Lookbehinds
    still see the characters before the window.
    """

    WINDOW = 32

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def __call__(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text, max(0, len(text) - self.WINDOW))

    @property
    def __self__(self) -> re.Pattern[str]:
        # spaCy serialises a tokenizer's suffix rule as ``suffix_search.__self__.pattern``.
        return self.pattern


def build_nlp(
    *, min_unit_words: int = 4, split_conjunctions: bool = True, min_topic_words: int = 2
) -> Language:
    """The project pipeline: blank English, line breaks, sentencizer, lookup lemmas, units.

    Placeholders such as ``<EMAIL>`` stay one token even when glued to punctuation, so they
    neither count as words of their own nor leak "email" into the lemmas.
    """
    nlp = spacy.blank(LANGUAGE)
    # The 1M-character guard protects parser/NER memory; this pipeline keeps one small struct per
    # token, and the API caps texts long before memory matters.
    nlp.max_length = 10_000_000
    placeholder = "|".join(re.escape(p) for p in sorted(_PLACEHOLDER_TEXTS))
    tokenizer = nlp.tokenizer
    tokenizer.prefix_search = compile_prefix_regex([placeholder, *nlp.Defaults.prefixes]).search
    tokenizer.suffix_search = _TailSearch(
        compile_suffix_regex([placeholder, *nlp.Defaults.suffixes])
    )
    tokenizer.infix_finditer = compile_infix_regex([placeholder, *nlp.Defaults.infixes]).finditer
    for text in _PLACEHOLDER_TEXTS:
        tokenizer.add_special_case(text, [{ORTH: text}])
    # The names of spaCy's own components, which these replace: callers disable pipes by name.
    nlp.add_pipe("triage_sentencizer", name="sentencizer")
    nlp.add_pipe("triage_lemmatizer", name="lemmatizer")
    nlp.add_pipe(
        "triage_units",
        config={
            "min_unit_words": min_unit_words,
            "split_conjunctions": split_conjunctions,
            "min_topic_words": min_topic_words,
        },
    )
    try:
        nlp.initialize()
    except (ValueError, OSError) as e:
        raise ConfigError(
            "spaCy's English lookup lemmas are missing; run `pip install spacy-lookups-data`."
        ) from e
    return nlp


# --- personal data ----------------------------------------------------------------------------


def offline_tld_extractor() -> tldextract.TLDExtract:
    """A tldextract that only reads the public suffix list snapshot bundled with the package.

    The module-level ``tldextract.extract`` fetches the list from publicsuffix.org on first use
    and caches it under ~/.cache: redaction must never talk to the network.
    """
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains with an offline tldextract."""

    def __init__(self, extractor: tldextract.TLDExtract) -> None:
        self._extract = extractor
        super().__init__()

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text).fqdn != ""


# A phone candidate that is really a date or part of an id: "05.01.2024 12", "INV-2024-000123".
_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_GLUE_BEFORE = frozenset("-#/_.")
_GLUE_AFTER = frozenset("-#/_")  # a "." after a number usually ends the sentence


# A stretch of digits and phone punctuation; a phone number lies inside one of these.
_PHONE_RUN = re.compile(r"[+(]?\d[\d \t().\-/]*\d")


def _windows(start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """Overlapping windows covering [start, end); any span of size/2 lies inside one of them."""
    if end - start <= size:
        yield start, end
        return
    for window_start in range(start, end, size // 2):
        yield window_start, min(window_start + size, end)
        if window_start + size >= end:
            return


class _PhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer, stricter about ids and dates, and cheaper.

    A bare digit group (0.4) needs a context word to pass the threshold; an international "+..."
    or "(415) ..." number is phone-shaped enough on its own.
    """

    # "number" is left out: "order number 12345678" is an id, not a phone.
    CONTEXT: ClassVar[list[str]] = [
        "phone", "telephone", "tel", "cell", "mobile", "call", "reach", "whatsapp", "sms", "contact"
    ]  # fmt: skip
    SHAPED_SCORE = 0.6
    MIN_DIGITS = 7
    # Longer than any written phone number (E.164 allows 15 digits); a longer run of digits, such
    # as a list of numbers, is read in overlapping windows of this size.
    WINDOW = 48

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        # The parent scans the whole text once per region (~0.4 ms each, 8 regions). Scanning only
        # the digit runs, and an international number in one region, is several times cheaper and
        # finds the same numbers.
        results = []
        for run in _PHONE_RUN.finditer(text):
            for start, end in _windows(run.start(), run.end(), self.WINDOW):
                candidate = text[start:end]
                if sum(ch.isdigit() for ch in candidate) < self.MIN_DIGITS:
                    continue
                international = candidate.lstrip("(").startswith("+")
                for region in (
                    self.supported_regions[:1] if international else self.supported_regions
                ):
                    for match in phonenumbers.PhoneNumberMatcher(candidate, region, self.leniency):
                        result = self._get_recognizer_result(match, text, region, nlp_artifacts)
                        result.start += start
                        result.end += start
                        if self._plausible(text, result):
                            results.append(result)
        return EntityRecognizer.remove_duplicates(results)

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        number = text[result.start : result.end]
        before = text[result.start - 1] if result.start else " "
        after = text[result.end] if result.end < len(text) else " "
        if _DATE_LIKE.match(number) or before.isalnum() or before in _GLUE_BEFORE:
            return False
        if after.isalnum() or after in _GLUE_AFTER:
            return False
        if number.startswith(("+", "(")):
            result.score = max(result.score, self.SHAPED_SCORE)
        return True


class _PhoneShapeRecognizer(PatternRecognizer):
    """Phone-shaped digit groups that libphonenumber rejects as invalid for every region.

    Short or made-up numbers ("+1 555 0150", "Call me, 555-0110") are still someone's contact
    details in a ticket. A "+" prefix, or an e-mail address right beside the digits, is shape
    enough; bare digit groups need a context word such as "call" to pass the threshold.
    """

    DIGITS = re.compile(r"\d")
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "international", r"(?<![\w#/.+-])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w/-])", 0.6
        ),
        Pattern(
            "beside an e-mail address",
            r"(?<=@[\w-]+(?:\.[\w-]+)+[ \t]*[|,/;][ \t]*)\+?\(?\d[\d ().-]{5,}\d(?![\w/-])"
            r"|(?<![\w#/.-])\+?\(?\d[\d ().-]{5,}\d(?=[ \t]*[|,/;][ \t]*[\w.+-]+@)",
            0.6,
        ),
        # "555-0110", "415 555 0100": the local shape; ranges such as "2023-2024" are not it.
        Pattern(
            "digit groups", r"(?<![\w#/.-])(?:\(?\d{2,4}\)?[ .-])?\d{3}[ .-]\d{4}(?![\w/-])", 0.3
        ),
    ]

    def __init__(self, context: list[str]) -> None:
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="PhoneShapeRecognizer",
            patterns=self.PATTERNS,
            context=context,
        )

    def invalidate_result(self, pattern_text: str) -> bool:
        digits = len(self.DIGITS.findall(pattern_text))
        return not 7 <= digits <= 15 or bool(_DATE_LIKE.match(pattern_text.lstrip("+(")))


_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|\bversion|\bbuild|\brelease)\s*$", re.IGNORECASE)


class _IpRecognizer(IpRecognizer):
    """Presidio's IP recognizer, minus four-part version numbers ("version 1.2.3.4")."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return [
            result
            for result in super().analyze(text, entities, nlp_artifacts, regex_flags)
            if not _VERSION_BEFORE.search(text, max(0, result.start - 12), result.start)
        ]


_CREDENTIALS_URL_SCORE = 0.9


def _credentials_url_recognizer() -> PatternRecognizer:
    # scheme://user:secret@host... ; a plain URL is not personal data and stays readable.
    pattern = r"\b[a-z][a-z0-9+.\-]*://[^\s/?#@:]+:[^\s/?#@]*@[^\s<>\"'()]+"
    return PatternRecognizer(
        supported_entity="URL",
        name="CredentialsUrlRecognizer",
        patterns=[Pattern("url with credentials", pattern, _CREDENTIALS_URL_SCORE)],
    )


_NAME_WORD = re.compile(r"[ \t]*([^\W\d_](?:[\w'’\-]*[^\W\d_])?\.?)")
_SIGNOFF_WORDS = (
    r"many thanks|thanks(?: again| a lot| so much)?|thank you(?: so much| again)?|thx|cheers"
    r"|best(?: regards| wishes)?|(?:kind|kindest|warm|warmest) regards|regards"
    r"|sincerely(?: yours)?|yours(?: truly| sincerely)?|all the best|br|sent from my \w+\b"
)
# Contact details: an e-mail address or a phone-like digit group.
_CONTACT = r"(?:[\w.+-]+@\w|\+?\(?\d[\d ().-]{5,}\d)"
# Contact details after a name: "Priya Raman, +1 555 0142", "Niamh Kelly | Team Lead | ...", or
# a name line with the e-mail address on the next line.
_CONTACT_AFTER = rf"[ \t]*(?:[,|(<\-–—][^\n]{{0,60}}{_CONTACT}|\n[^\n]{{0,80}}@\w)"
_END_OF_LINE = r"[ \t]*[.!]?[ \t]*(?:\n|\Z)"
_SIGNATURE_END = rf"{_END_OF_LINE}|{_CONTACT_AFTER}"
_LINE_START = r"(?:^|(?<=\n))[ \t]*"
_GREETING = r"(?:hi|hello|hey|dear)"
_I_AM = r"(?:i'm|i’m|i am)"


def _rule(introduction: str, follower: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(introduction, re.I), re.compile(follower, re.I)


# (what introduces a name, what must follow it); the name itself is checked in code, because
# the introduction is case-insensitive and the name is not.
_NAME_RULES = [
    # "My name is Maria Lopez", "Name: Maria Lopez"
    _rule(rf"\bmy name(?:'s|’s| is)[ \t]+|{_LINE_START}name:[ \t]*", ""),
    # "I'm Sarah from Acme", "I am Sarah, the data lead at Acme"
    _rule(rf"\b{_I_AM}[ \t]+", r"[ \t]+(?:from|at|here)\b|[ \t]*,[ \t]*(?:the|a|an|your)[ \t]"),
    # "Hi, I'm Sarah." right after a greeting
    _rule(
        rf"{_LINE_START}{_GREETING}\b[^\n.!?]{{0,40}}?[,.!]?\s*{_I_AM}[ \t]+",
        r"[ \t]*(?:[,.!;]|[ \t]+and\b|\Z)",
    ),
    # "This is Tom from Globex"
    _rule(r"\b(?:this is|it's|it’s)[ \t]+", r"[ \t]+(?:from|at|here)\b"),
    # "(contact: Owen Price, ...)", "the IT contact 'Ben Carter'"
    _rule(
        r"\bcontact(?: person)?[ \t]*[:'\"“‘(]+[ \t]*|\b(?:attn|attention|signed|cc)[ \t]*:[ \t]*",
        "",
    ),
    # A quoted or bracketed name with contact details: "'Ben Carter, 555-0147'"
    _rule(r"['\"“‘(][ \t]*", rf"[ \t]*,[ \t]*{_CONTACT}"),
    # A signature line: "Niamh Kelly | Team Lead | +1 555 0161"
    _rule(_LINE_START, _CONTACT_AFTER),
    # The addressee of a greeting: "Hi Maria," / "Dear Mr Smith:"
    _rule(
        rf"{_LINE_START}(?:{_GREETING}|good (?:morning|afternoon|evening))[ \t]+",
        r"[ \t]*(?:[,!:]|\n|\Z)",
    ),
    # Sign-offs; the lookbehinds keep the previous match from swallowing this one's line break.
    _rule(
        rf"(?:^|(?<=\n)|(?<=[.!?]))[ \t]*(?:{_SIGNOFF_WORDS})[ \t]*[,!.:\-–—]*\s*", _SIGNATURE_END
    ),
    # Dash signatures: " -- Jo", "— Jo", " - Jo" at the end of a line. A "-" opening a line is a
    # list item unless it closes the text or contact details follow.
    _rule(rf"(?:{_LINE_START}(?:--|—|–)|(?<=[ \t])(?:--|—|-))[ \t]*", _SIGNATURE_END),
    _rule(rf"{_LINE_START}-[ \t]*", rf"[ \t]*[.!]?[ \t]*\Z|{_CONTACT_AFTER}"),
]
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof"})
# Capitalised words that open or close a ticket and are nobody's name.
_NOT_NAMES = frozenset(
    {"team", "everyone", "guys", "folks", "support", "again", "sent", "great", "thanks", "best",
     "world", "morning", "afternoon", "evening", "sir", "madam", "hello", "hi", "hey", "dear",
     "cheers", "regards", "sincerely", "customer", "user"}
)  # fmt: skip


class _NameRuleRecognizer(LocalRecognizer):
    """Person names where the text itself introduces them.

    A statistical NER model would need a trained pipeline we do not ship, and it tags product
    and feature names as people in support tickets; these rules see the common cases and leave
    "my name is wrong on the invoice" alone.
    """

    SCORE = 0.85

    def __init__(self, stop_words: Iterable[str]) -> None:
        self._stop_words = frozenset(stop_words) | _NOT_NAMES
        super().__init__(supported_entities=["PERSON"], name="NameRuleRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for introduction, follower in _NAME_RULES:
            for match in introduction.finditer(text):
                span = self._name_span(text, match.end())
                if span and follower.match(text, span[1]):
                    results.append(RecognizerResult("PERSON", *span, self.SCORE))
        return results

    def _name_span(self, text: str, position: int) -> tuple[int, int] | None:
        """Up to four capitalised, non-stop words (initials, "Dr.") starting at ``position``."""
        start = end = None
        for _ in range(4):
            word = _NAME_WORD.match(text, position)
            if not word:
                break
            value = word.group(1)
            initial = len(value) == 2 and value[0].isupper() and value[1] == "."
            if not initial and value.rstrip(".").lower() not in _TITLES:
                value = value.rstrip(".")
            is_name = len(value) > 1 and value[0].isupper() and not value.isupper()
            if not (initial or is_name) or value.lower() in self._stop_words:
                break
            start = word.start(1) if start is None else start
            end = position = word.start(1) + len(value)
        return None if start is None else (start, end)


class _CaselessSearch:
    """``pattern.search(text)`` for a case-insensitive pattern of words, faster on ASCII text.

    Python's re tries a case-insensitive alternation of words slowly, at every word start (the
    name-introduction cue took half of redaction). On ASCII text, ``starts``, a case-sensitive
    pattern run on the lowercased text, finds where one of the words begins, and ``pattern`` is
    tried there only: the same first match, found several times faster.
    """

    def __init__(self, pattern: re.Pattern[str], starts: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.starts = starts

    def search(self, text: str) -> re.Match[str] | None:
        if not text.isascii():  # re.IGNORECASE also reads "ſ", "ı", "K" as s, i, k
            return self.pattern.search(text)
        lower = text.lower()
        start = self.starts.search(lower)
        while start:
            if match := self.pattern.match(text, start.start()):
                return match
            start = self.starts.search(lower, start.start() + 1)
        return None


# Words that end a name introduction ("my name is", "thanks,", "I'm"), and greetings.
_INTRODUCTIONS = (
    r"name(?:['’]s| is|:)|i['’]m|i am|this is|it['’]s|thanks|you|again|lot|much|thx|cheers|best"
    r"|regards|wishes|sincerely|yours|truly|br|contact|person|attn|attention|signed|cc"
    r"|sent from my \w+\b"
)
_GREETINGS_BEFORE_NAME = r"hi|hello|hey|dear|morning|afternoon|evening"
_DASHES = r"--|—|–|-"


class _Cue(NamedTuple):
    entity: str
    pattern: re.Pattern[str] | _CaselessSearch  # the text must match it
    substring: str = ""  # the text must contain it
    digit: bool = False  # the text must hold a digit (the pattern needs one)


# Cheap "could this text hold X at all?" tests, each a superset of what the entity's recognizer
# finds. Only entities whose test passes are analysed, so most tickets never reach presidio, and
# presidio still decides every redaction.
_PII_CUES = [
    _Cue("EMAIL_ADDRESS", re.compile(r"@\w+(?:-+\w+)*\.\w"), "@"),
    _Cue("URL", re.compile(r"://[^\s/?#@:]+:[^\s/?#@]*@"), "@"),
    _Cue("IP_ADDRESS", re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"), ".", digit=True),
    _Cue("IP_ADDRESS", re.compile(r":[0-9A-Fa-f]{0,4}:"), ":"),  # every IPv6 form has ":x:" or "::"
    _Cue("CREDIT_CARD", re.compile(r"\d(?:[ -]?\d){12}"), digit=True),
    _Cue("IBAN_CODE", re.compile(r"[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){8}"), digit=True),
    # Seven digits or more, not glued to an id and not opening a date (the recognizer drops both).
    _Cue(
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w#/_.-])(?!\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?!\d))[+(]?\d(?:[\s().\-/]{0,3}\d){6}"
        ),
        digit=True,
    ),
    # A word that ends a name introduction, then what could start a capitalised name.
    _Cue(
        "PERSON",
        _CaselessSearch(
            re.compile(
                rf"\b(?:{_INTRODUCTIONS})[ \t,.!:;'\"“‘(\-–—]*\s*(?-i:[^\W\d_a-z])"
                rf"|\b(?:{_GREETINGS_BEFORE_NAME})[ \t]+(?-i:[^\W\d_a-z])"
                rf"|(?:{_DASHES})[ \t]*(?-i:[^\W\d_a-z])",
                re.I,
            ),
            starts=re.compile(rf"\b(?:{_INTRODUCTIONS}|{_GREETINGS_BEFORE_NAME})|{_DASHES}"),
        ),
    ),
    # Contact details, which the signature and quoted-name rules look for after a name.
    _Cue("PERSON", re.compile(r"@\w"), "@"),
    _Cue(
        "PERSON",
        re.compile(r"[^\W\d_a-z]\w*[ \t]*[,|(<\-–—][^\n]{0,60}\d[\d ().-]{5,}\d"),
        digit=True,
    ),
]
_DIGIT = re.compile(r"\d")


# Score of a finding before context words: validated e-mails, cards and IBANs score 1.0. Only an
# entity below the threshold can be changed by context, so only then are tokens worth computing.
_BASE_SCORES = {
    "PHONE_NUMBER": min(PhoneRecognizer.SCORE, *(p.score for p in _PhoneShapeRecognizer.PATTERNS)),
    "IP_ADDRESS": max(pattern.score for pattern in IpRecognizer.PATTERNS),
    "URL": _CREDENTIALS_URL_SCORE,
    "PERSON": _NameRuleRecognizer.SCORE,
}


class _PipelineNlpEngine(NlpEngine):
    """Presidio's view of the project pipeline: tokens and lookup lemmas, no NER.

    Presidio's SpacyNlpEngine loads (and downloads) en_core_web_lg; every recognizer here is
    rule-based and only reads tokens and lemmas, for context words such as "call" or "iban".
    """

    def __init__(self, nlp: Language, context_words: Iterable[str] = ()) -> None:
        self._nlp = nlp
        self._context_words = frozenset(word.lower() for word in context_words)
        self._skip = [n for n in nlp.pipe_names if n != "lemmatizer"]

    def load(self) -> None:
        pass

    def is_loaded(self) -> bool:
        return True

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return self.artifacts(self._nlp(text, disable=self._skip))

    def process_batch(
        self,
        texts: Iterable[str],
        language: str,
        batch_size: int = 1,
        n_process: int = 1,
        **kwargs: Any,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        for doc in self._nlp.pipe(texts, batch_size=max(batch_size, 64), disable=self._skip):
            yield doc.text, self.artifacts(doc)

    def empty_artifacts(self) -> NlpArtifacts:
        return self.artifacts(Doc(self._nlp.vocab, words=[]))

    def artifacts(self, doc: Doc) -> NlpArtifacts:
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lemma_ for token in doc],
            nlp_engine=self,
            language=LANGUAGE,
            scores=[],
        )

    def is_stopword(self, word: str, language: str) -> bool:
        # Presidio ignores stop words when it looks for context, and spaCy lists "call" as one:
        # the phone recognizer's best context word would never count.
        return word.lower() not in self._context_words and self._nlp.vocab[word].is_stop

    def is_punct(self, word: str, language: str) -> bool:
        return self._nlp.vocab[word].is_punct

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return [LANGUAGE]


# Presidio's context step compares every finding with every token of the text, so its cost grows
# with the square of the length; long texts are analysed in pieces of about this many characters.
_CHUNK_CHARS = 2000


def _chunks(text: str, size: int = _CHUNK_CHARS) -> Iterator[tuple[int, str]]:
    """(offset, piece) of at most ``size`` characters, cut after a line, a sentence or a word."""
    start = 0
    while len(text) - start > size:
        window = text[start : start + size]
        cut = max(window.rfind("\n"), window.rfind(". "), window.rfind("! "), window.rfind("? "))
        if cut <= 0:
            cut = window.rfind(" ")
        end = start + (cut + 1 if cut > 0 else size)
        yield start, text[start:end]
        start = end
    yield start, text[start:]


@contextmanager
def _failing_item(index: int) -> Iterator[None]:
    """Turn any error while redacting item ``index`` into a StageError: the item must fail, and
    its text must never go on unredacted."""
    try:
        yield
    except Exception as e:
        raise StageError(
            "Could not redact a feedback text; it was not processed.", details={"index": index}
        ) from e


# --- the stage --------------------------------------------------------------------------------


class Preprocessor:
    """Cleans, redacts and splits feedback texts; build once, reuse for every batch."""

    def __init__(
        self,
        *,
        min_unit_words: int = 4,
        min_topic_words: int = 2,
        split_conjunctions: bool = True,
        pii_min_score: float = 0.5,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        batch_size: int = 256,
        prefilter: bool = True,
    ) -> None:
        if min_unit_words < 1:
            raise ConfigError("min_unit_words must be at least 1.")
        self.pii_min_score = pii_min_score
        self.batch_size = batch_size
        self.prefilter = prefilter
        self.nlp = build_nlp(
            min_unit_words=min_unit_words,
            split_conjunctions=split_conjunctions,
            min_topic_words=min_topic_words,
        )
        recognizers = [
            _OfflineEmailRecognizer(offline_tld_extractor()),
            _PhoneRecognizer(supported_regions=tuple(phone_regions)),
            _PhoneShapeRecognizer(context=_PhoneRecognizer.CONTEXT),
            CreditCardRecognizer(),
            IbanRecognizer(),
            _IpRecognizer(),
            _credentials_url_recognizer(),
            _NameRuleRecognizer(self.nlp.Defaults.stop_words),
        ]
        self._engine = _PipelineNlpEngine(
            self.nlp, (word for recognizer in recognizers for word in recognizer.context or ())
        )
        self._analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE]),
            nlp_engine=self._engine,
            supported_languages=[LANGUAGE],
            default_score_threshold=pii_min_score,
        )
        self._anonymizer = AnonymizerEngine()
        self._operators = {
            entity: OperatorConfig("replace", {"new_value": placeholder})
            for entity, placeholder in PLACEHOLDERS.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Preprocessor:
        return cls(
            min_unit_words=settings.preprocess_min_unit_words,
            min_topic_words=settings.preprocess_min_topic_words,
            split_conjunctions=settings.preprocess_split_conjunctions,
            pii_min_score=settings.preprocess_pii_min_score,
            phone_regions=settings.preprocess_phone_regions,
            batch_size=settings.preprocess_batch_size,
        )

    def redact(self, texts: Sequence[str]) -> list[str]:
        """Cleaned texts with personal data replaced by placeholders such as ``<EMAIL>``."""
        return [text for text, _ in self._redact_all([clean_text(t) for t in texts])]

    def process(self, texts: Sequence[str]) -> list[PreprocessedText]:
        """Clean, redact and split each text; the output is aligned with the input."""
        redacted = self._redact_all([clean_text(t) for t in texts])
        units = self._units([text for text, _ in redacted])
        return [
            PreprocessedText(redacted_text=text, units=text_units, redactions=counts)
            for (text, counts), text_units in zip(redacted, units, strict=True)
        ]

    def _units(self, texts: list[str]) -> Iterator[list[UnitText]]:
        """``doc._.triage_units`` for each text, as ``self.nlp.pipe`` sets it.

        In the pipeline, the sentencizer and the lemmatizer write into each Doc for the next
        component to read back, a third of the stage's time. Here the three components' steps
        share one read of the tokens and write nothing (the Docs are thrown away), for the same
        units; a pipeline other than ``build_nlp``'s runs as it is.
        """
        components = [type(component) for _, component in self.nlp.pipeline]
        if components != [LineSentencizer, LookupLemmatizer, UnitSegmenter]:
            for doc in self.nlp.pipe(texts, batch_size=self.batch_size):
                yield doc._.get(UNITS_ATTR)
            return
        (_, sentencizer), (_, lemmatizer), (_, segmenter) = self.nlp.pipeline
        vocab = self.nlp.vocab
        for text in texts:
            orths, idx = self.nlp.make_doc(text).to_array([ORTH, IDX]).T.tolist()
            starts = sentencizer.sentence_starts(vocab, orths)
            yield segmenter.units(vocab, text, orths, lemmatizer.lemmas(orths), idx, starts)

    def _entities_to_check(self, text: str) -> list[str]:
        if not self.prefilter:
            return list(PLACEHOLDERS)
        found: list[str] = []
        digit = _DIGIT.search(text) is not None  # most tickets have none
        for cue in _PII_CUES:
            if (
                cue.entity not in found
                and cue.substring in text
                and (digit or not cue.digit)
                and cue.pattern.search(text)
            ):
                found.append(cue.entity)
        return found

    def _redact_all(self, texts: list[str]) -> list[tuple[str, dict[str, int]]]:
        jobs = [
            (i, offset, chunk, entities)
            for i, text in enumerate(texts)
            for offset, chunk in _chunks(text)
            if (entities := self._entities_to_check(chunk))
        ]
        needing_context = [chunk for _, _, chunk, entities in jobs if self._needs_context(entities)]
        contexts = iter([art for _, art in self._engine.process_batch(needing_context, LANGUAGE)])
        no_context = self._engine.empty_artifacts()
        found: dict[int, list[RecognizerResult]] = {}
        for i, offset, chunk, entities in jobs:
            artifacts = next(contexts) if self._needs_context(entities) else no_context
            with _failing_item(i):
                results = self._analyzer.analyze(
                    chunk, LANGUAGE, entities=entities, nlp_artifacts=artifacts
                )
            for result in results:
                result.start += offset
                result.end += offset
            found.setdefault(i, []).extend(results)
        redacted: list[tuple[str, dict[str, int]]] = []
        for i, text in enumerate(texts):
            if not found.get(i):  # most texts: nothing to replace, nothing that can fail
                redacted.append((text, {}))
                continue
            with _failing_item(i):
                redacted.append(self._anonymize(text, found[i]))
        return redacted

    def _needs_context(self, entities: list[str]) -> bool:
        return any(_BASE_SCORES.get(entity, 1.0) < self.pii_min_score for entity in entities)

    def _anonymize(self, text: str, found: list[RecognizerResult]) -> tuple[str, dict[str, int]]:
        if not found:
            return text, {}
        result = self._anonymizer.anonymize(
            text,
            found,
            operators=self._operators,
            conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
        )
        return result.text, dict(Counter(item.entity_type for item in result.items))
