"""Cutting statements into the clauses a title or a quote comparison reads: the pieces of a
sentence, without the discourse openers, fillers and reporters that come before the point."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from triage.label.words import (
    FILLER_WORDS,
    LAST_RESORT_BREAK,
    REPORTERS,
    REPORTING_VERBS,
    STRONG_BREAK,
    WEAK_BREAK,
)

_WORD = re.compile(r"\w+(?:['’.]\w+)*")
_TRAILING = re.compile(r"[^\w)'\"’”%]+$")
# Sign-off words trailing a clause ("Wrong products in recs PS", "... thanks").
_TRAILING_ASIDE = re.compile(r"(?:[\s,]+(?:ps|btw|fyi|thanks|thx|ty|lol|haha))+$", re.IGNORECASE)
_LEADING = re.compile(r"^[^\w('\"‘“]+")
# Abbreviations whose dots end no sentence: held as another character while splitting.
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|incl|esp|ca|cf)\.", re.IGNORECASE)
_HELD_DOT = "\u2024"
# An aside in brackets ("Acme (pro plan) asked ...") is context a title does without.
_ASIDE = re.compile(r"\s*\([^()]*\)")
# A short lead-in closed by a comma, colon or exclamation mark ("Quick one:", "Unrelated, but",
# "Morning!"): at most three words, so "In the export view, bullets vanish" keeps its subject.
_LEAD_IN = re.compile(r"^\s*((?:[\w'’]+\s+){0,2}[\w'’]+)\s*[,:!]+\s+")
_FILLER_WORD = re.compile(
    r"^(?:" + "|".join(sorted(map(re.escape, FILLER_WORDS), key=len, reverse=True)) + r")\b[\s,]*",
    re.IGNORECASE,
)
# "Customer says ...", "Our team noticed that ...": a person, a reporting verb, maybe "that".
_REPORTER = re.compile(
    r"^(?:(?:my|our|the|a|one|some|several|many|two|three|a few)\s+)?(?:"
    + "|".join(sorted(REPORTERS, key=len, reverse=True))
    + r")\s+(?:"
    + "|".join(sorted(REPORTING_VERBS, key=len, reverse=True))
    + r")(?:\s+that)?\s+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    text: str  # tidied: no lead-in, filler or trailing punctuation
    question: bool  # the sentence it comes from ends with "?"


def words(text: str) -> list[str]:
    return _WORD.findall(text)


# Relabelling reads the same statements on every refresh, and templates repeat across tickets.
@lru_cache(maxsize=1 << 16)
def tidy(text: str, *, keep: frozenset[str] = frozenset()) -> str:
    """``text`` without what comes before its point: lead-ins ("Unrelated, but"), filler words,
    articles and reporters ("Customer says"), and without trailing punctuation. A lead-in holding
    a word of ``keep`` (an issue's keywords) is part of the point and stays."""
    text = _LEADING.sub("", _ASIDE.sub("", text).strip())
    for _ in range(4):  # openers stack: "PS: also, customer says the ..."
        before = text
        lead_in = _LEAD_IN.match(text)
        if lead_in and not (keep & {w.lower() for w in words(lead_in.group(1))}):
            rest = text[lead_in.end() :]
            if len(words(rest)) >= 2:
                text = rest
        text = _FILLER_WORD.sub("", text)
        reporter = _REPORTER.match(text)
        if reporter and len(words(text[reporter.end() :])) >= 3:
            text = text[reporter.end() :]
        text = _LEADING.sub("", text)
        if text == before:
            break
    return _TRAILING.sub("", _TRAILING_ASIDE.sub("", _TRAILING.sub("", text)))


@lru_cache(maxsize=1 << 14)
def clauses(text: str, *, max_words: int, keep: frozenset[str] = frozenset()) -> tuple[Clause, ...]:
    """Every run of consecutive pieces of each sentence of ``text`` that reads as a title of at
    most ``max_words`` words: the whole sentence, its head before a "because", its part after
    a "but", and so on. The scorer picks among them, so a long sentence still yields its core."""
    found: dict[str, Clause] = {}
    for sentence, question in _sentences(text):
        pieces = _runs(sentence, WEAK_BREAK, max_words=max_words, keep=keep)
        if not pieces:  # too long and no weaker break: cut before "and", "who", ...
            pieces = _runs(sentence, LAST_RESORT_BREAK, max_words=max_words, keep=keep)
        for clause in pieces:
            found.setdefault(clause, Clause(clause, question))
    return tuple(found.values())


def _runs(
    sentence: str, breaks: re.Pattern[str], *, max_words: int, keep: frozenset[str]
) -> list[str]:
    """Every run of consecutive pieces of ``sentence`` between ``breaks``, tidied, of at most
    ``max_words`` words."""
    cuts = [0, *(m.start() for m in breaks.finditer(sentence)), len(sentence)]
    ends = [0, *(m.end() for m in breaks.finditer(sentence)), len(sentence)]
    found: list[str] = []
    for first in range(len(cuts) - 1):
        for last in range(first + 1, len(cuts)):
            piece = sentence[ends[first] : cuts[last]]
            if len(words(piece)) > max_words * 2:
                break  # longer runs only grow; tidying never halves a clause
            clause = tidy(piece, keep=keep)
            if clause and len(words(clause)) <= max_words and clause not in found:
                found.append(clause)
    return found


def _sentences(text: str) -> list[tuple[str, bool]]:
    """Pieces between strong breaks, each with whether a "?" closes it."""
    text = _ABBREVIATION.sub(lambda m: m.group().replace(".", _HELD_DOT), text)
    pieces, start = [], 0
    for match in STRONG_BREAK.finditer(text):
        pieces.append((text[start : match.start()], "?" in match.group()))
        start = match.end()
    pieces.append((text[start:], False))
    return [
        (piece.strip().replace(_HELD_DOT, "."), question)
        for piece, question in pieces
        if piece.strip()
    ]


@lru_cache(maxsize=1 << 16)
def quote_key(text: str) -> str:
    """What a quote says, for telling near-duplicates apart: lowercase letters and digits of the
    text without its opener ("Separately, the draft ..." and "The draft ..." share one key)."""
    return " ".join(w.lower() for w in words(tidy(text)))
