"""The project's spaCy pipeline: its components registered under their factory names, and
``build_nlp``, which assembles them once per configuration."""

from __future__ import annotations

import re
import threading
from typing import Any

import spacy
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

from triage.errors import ConfigError
from triage.placeholders import PLACEHOLDER, PLACEHOLDER_TEXTS
from triage.preprocess.lemmatizer import LookupLemmatizer
from triage.preprocess.params import PreprocessParams
from triage.preprocess.segment import UnitSegmenter
from triage.preprocess.sentencizer import LineSentencizer

LANGUAGE = "en"

_DEFAULTS = PreprocessParams()


@Language.factory("triage_sentencizer")
def make_line_sentencizer(nlp: Language, name: str) -> LineSentencizer:
    return LineSentencizer(name)


@Language.factory("triage_lemmatizer")
def make_lookup_lemmatizer(nlp: Language, name: str) -> LookupLemmatizer:
    return LookupLemmatizer(nlp.vocab, name)


@Language.factory(
    "triage_units",
    default_config={
        "min_unit_words": _DEFAULTS.min_unit_words,
        "split_conjunctions": _DEFAULTS.split_conjunctions,
        "min_topic_words": _DEFAULTS.min_topic_words,
    },
)
def make_unit_segmenter(
    nlp: Language, name: str, min_unit_words: int, split_conjunctions: bool, min_topic_words: int
) -> UnitSegmenter:
    return UnitSegmenter(nlp, name, min_unit_words, split_conjunctions, min_topic_words)


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


# One pipeline per configuration and process: the preprocessor, the redactor and the categoriser's
# lemmas share it instead of each loading the lookup tables again.
_SHARED: dict[tuple[int, bool, int], Language] = {}
_SHARED_LOCK = threading.Lock()


def build_nlp(
    *,
    min_unit_words: int = _DEFAULTS.min_unit_words,
    split_conjunctions: bool = _DEFAULTS.split_conjunctions,
    min_topic_words: int = _DEFAULTS.min_topic_words,
) -> Language:
    """The project pipeline: blank English, line breaks, sentencizer, lookup lemmas, units.

    Built once per configuration and shared by every caller in the process, so treat it as
    read-only; ``new_nlp`` builds one of your own.
    """
    key = (min_unit_words, split_conjunctions, min_topic_words)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = new_nlp(
                min_unit_words=min_unit_words,
                split_conjunctions=split_conjunctions,
                min_topic_words=min_topic_words,
            )
        return _SHARED[key]


def new_nlp(
    *,
    min_unit_words: int = _DEFAULTS.min_unit_words,
    split_conjunctions: bool = _DEFAULTS.split_conjunctions,
    min_topic_words: int = _DEFAULTS.min_topic_words,
) -> Language:
    """A pipeline of one's own, as ``build_nlp`` makes it.

    Placeholders such as ``<EMAIL>`` stay one token even when glued to punctuation, so they
    neither count as words of their own nor leak "email" into the lemmas.
    """
    nlp = spacy.blank(LANGUAGE)
    # The 1M-character guard protects parser/NER memory; this pipeline keeps one small struct per
    # token, and the API caps texts long before memory matters.
    nlp.max_length = 10_000_000
    placeholder = PLACEHOLDER.pattern
    # spaCy's Tokenizer, a compiled class without types; English sets every rule list.
    tokenizer: Any = nlp.tokenizer
    defaults = nlp.Defaults
    tokenizer.prefix_search = compile_prefix_regex([placeholder, *(defaults.prefixes or ())]).search
    tokenizer.suffix_search = _TailSearch(
        compile_suffix_regex([placeholder, *(defaults.suffixes or ())])
    )
    tokenizer.infix_finditer = compile_infix_regex(
        [placeholder, *(defaults.infixes or ())]
    ).finditer
    for text in PLACEHOLDER_TEXTS:
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
