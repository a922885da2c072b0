"""Requests and pleasantries among title candidates: telling a wish ("could we get forecasts by
day") from a statement of a problem, and what a wish asks for without the asking ("forecasts by
day"), which names an issue made only of wishes (``titles``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from triage.label.clauses import tidy
from triage.label.words import MODAL_OPENERS, PLEASANTRY_OPENERS, REQUEST_OPENERS


def _opener(phrases: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted((re.escape(p) for p in phrases), key=len, reverse=True))
    return re.compile(rf"^(?:{alternatives})(?![\w'’])", re.IGNORECASE)


_REQUEST = _opener(REQUEST_OPENERS)
PLEASANTRY = _opener(PLEASANTRY_OPENERS)
# "please" anywhere makes a request ("Daily forecast pls").
_POLITE = re.compile(r"\b(?:please|pls|plz)\b[\s,]*", re.IGNORECASE)
# "Can it read ...", "Could we pin ...": a modal and a person or "it" open a request too.
_MODAL_SUBJECT = re.compile(
    rf"^(?:{'|'.join(sorted(MODAL_OPENERS))})\s+(?:it|we|you|i|they|someone|somebody)\b\s*",
    re.IGNORECASE,
)
# What links a request's opener to the thing wanted: "would love (it to) read", "nice to have",
# "wish (it could) take notes".
_REQUEST_LINK = re.compile(
    r"^(?:(?:of|for|on|about)\s+)?(?:(?:it|we|you|i|they)\s+(?:could|would|can|will)\s+)?"
    r"(?:(?:it|us|me|them)\s+)?"
    r"(?:(?:nice|great|good|helpful|useful|awesome|cool|ideal|handy)\s+)?"
    r"(?:to\s+|if\s+)?(?:(?:be\s+able|the\s+ability|an?\s+option|a\s+way|a\s+setting)\s+to\s+)?"
    r"(?:(?:have|get|see|add|allow|support|make|let|show)\s+)?",
    re.IGNORECASE,
)


def is_request(text: str) -> bool:
    if _REQUEST.match(text) or _MODAL_SUBJECT.match(text) or _POLITE.search(text):
        return True
    # "Plase add ...": customers misspell the word that makes a request as often as any other.
    first = text[:8].split(maxsplit=1)[0].lower() if text.strip() else ""
    return first[:1] == "p" and SequenceMatcher(None, first, "please").ratio() >= 0.8


def request_core(text: str) -> str | None:
    """What a request asks for, without the asking: "Could we get forecasts by day" -> "forecasts
    by day"; None when ``text`` is no request."""
    if not is_request(text):
        return None
    if not _REQUEST.match(text) and not _MODAL_SUBJECT.match(text) and not _POLITE.search(text):
        text = text.split(maxsplit=1)[1] if len(text.split()) > 1 else ""  # the misspelt "please"
    text = _POLITE.sub("", text).strip(" ,")
    for _ in range(4):  # "Is there a way to get ..." takes several steps
        before = text
        text = _REQUEST.sub("", text, count=1).lstrip(" ,")
        text = _MODAL_SUBJECT.sub("", text, count=1)
        text = _REQUEST_LINK.sub("", text, count=1)
        if text == before:
            break
    return tidy(text) or None
