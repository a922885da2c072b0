"""Person names where the text itself introduces them ("my name is ...", "Full name:", a
sign-off above a contact line): the rules behind ``NameRuleRecognizer``, one of the presidio
recognizers ``pii.pii_recognizers`` builds."""

from __future__ import annotations

import re
from collections.abc import Iterable

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

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
# Whose name a form or a metadata key means: "full name", "customer name"; a "file name" is
# no one's.
_NAME_FIELDS = r"(?:full|first|last|given|family|middle|display|customer|contact|requester|user)"
_I_AM = r"(?:i'm|i’m|i am)"


def _rule(introduction: str, follower: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(introduction, re.I), re.compile(follower, re.I)


# (what introduces a name, what must follow it); the name itself is checked in code, because
# the introduction is case-insensitive and the name is not.
_NAME_RULES = [
    # "My name is Maria Lopez", "Name: Maria Lopez", a form's "Full name:\nMaria Lopez"
    _rule(
        rf"\bmy name(?:'s|’s| is)[ \t]+|{_LINE_START}(?:{_NAME_FIELDS}[ \t]+)?name:[ \t]*\n?", ""
    ),
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


class NameRuleRecognizer(LocalRecognizer):
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
        return None if start is None or end is None else (start, end)
