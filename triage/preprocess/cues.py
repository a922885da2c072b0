"""Cheap tests that tell which entities a text could hold, so presidio analyses only those."""

from __future__ import annotations

import re
from typing import NamedTuple

from triage.preprocess.pii_fullnames import CensusPairs


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


class _CensusPairs:
    """``search(text)``: a census first name then a surname, or a courtesy title and a name,
    anywhere (``pii_fullnames``); the lists are loaded on the first text asked about."""

    _pairs: CensusPairs | None = None

    def search(self, text: str) -> bool:
        if self._pairs is None:
            self._pairs = CensusPairs.default()
        return self._pairs.search(text)


class _Cue(NamedTuple):
    entity: str
    pattern: re.Pattern[str] | _CaselessSearch | _CensusPairs  # the text must match it
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
    # Groups set apart by dots or two spaces, as _CreditCardRecognizer reads them.
    _Cue("CREDIT_CARD", re.compile(r"\d(?:[ .-]{0,2}\d){12}"), digit=True),
    # Either case, and a space after the country code, as _IbanRecognizer reads them.
    _Cue(
        "IBAN_CODE",
        re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[ -]?\d{2}(?:[ -]?[A-Za-z0-9]{4}){2}"),
        digit=True,
    ),
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
    # A full name anywhere: a census first name, then a census surname.
    _Cue("PERSON", _CensusPairs()),
    # Contact details, which the signature and quoted-name rules look for after a name.
    _Cue("PERSON", re.compile(r"@\w"), "@"),
    _Cue(
        "PERSON",
        re.compile(r"[^\W\d_a-z]\w*[ \t]*[,|(<\-–—][^\n]{0,60}\d[\d ().-]{5,}\d"),
        digit=True,
    ),
]
_DIGIT = re.compile(r"\d")


def possible_entities(text: str) -> list[str]:
    """The entities whose cue ``text`` passes, each once, in the order of ``_PII_CUES``."""
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
