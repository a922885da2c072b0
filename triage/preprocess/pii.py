"""The presidio recognizers for personal data, and the placeholders that replace what they find."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

import phonenumbers
import tldextract
from presidio_analyzer import (
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)

from triage.preprocess.pii_fullnames import CensusPairs, FullNameRecognizer
from triage.preprocess.pii_names import NameRuleRecognizer


def pii_recognizers(
    phone_regions: Sequence[str], stop_words: Iterable[str]
) -> list[EntityRecognizer]:
    """The recognizers of every entity in ``PLACEHOLDERS``; a word in ``stop_words`` is never
    part of a name."""
    return [
        _OfflineEmailRecognizer(offline_tld_extractor()),
        _PhoneRecognizer(supported_regions=tuple(phone_regions)),
        _PhoneShapeRecognizer(context=_PhoneRecognizer.CONTEXT),
        _CreditCardRecognizer(),
        _IbanRecognizer(),
        _IpRecognizer(),
        _credentials_url_recognizer(),
        NameRuleRecognizer(stop_words),
        FullNameRecognizer(CensusPairs.default(stop_words)),
    ]


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
    CONTEXT: ClassVar[list[str]] = [  # type: ignore[misc]
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
                    for match in phonenumbers.PhoneNumberMatcher(candidate, region, self.leniency):  # type: ignore[arg-type]
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


class _CreditCardRecognizer(CreditCardRecognizer):
    """Presidio's card recognizer, also for groups set apart by dots or two spaces
    ("4111.1111.1111.1111"); the Luhn check still decides."""

    # Presidio's pattern with its "[- ]?" between the groups widened to "[ .-]{0,2}".
    PATTERNS: ClassVar[list[Pattern]] = [  # type: ignore[misc]
        Pattern(
            "All Credit Cards (weak)",
            r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))"
            r"[ .-]{0,2}(\d{3,4})[ .-]{0,2}(\d{3,4})[ .-]{0,2}(\d{3,5})\b",
            0.3,
        )
    ]

    def __init__(self) -> None:
        super().__init__(
            patterns=self.PATTERNS, replacement_pairs=[("-", ""), (" ", ""), (".", "")]
        )


# Upper-casing only a-z keeps every offset (str.upper turns "ß" into "SS").
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _IbanRecognizer(IbanRecognizer):
    """Presidio's IBAN recognizer, also for IBANs in lower case ("de89 3704 …") or with a space
    after the country code ("DE 89 3704 …"); the checksum still decides."""

    # Presidio's generic pattern with "[ -]?" allowed between the country code and check digits.
    PATTERNS: ClassVar[list[Pattern]] = [  # type: ignore[misc]
        Pattern(
            "IBAN Generic",
            r"(?<![A-Z0-9])([A-Z]{2}[ -]?[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,6})"
            r"((?:[ -]?[A-Z0-9]{4})?)((?:[ -]?[A-Z0-9]{1,3})?)(?![A-Z0-9])",
            0.5,
        )
    ]

    def __init__(self) -> None:
        super().__init__(patterns=self.PATTERNS)  # type: ignore[arg-type]

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        # The pattern and the per-country formats are upper case; so is every IBAN once read.
        return super().analyze(text.translate(_ASCII_UPPER), entities, nlp_artifacts, regex_flags)  # type: ignore[arg-type]


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


# Score of a finding before context words: validated e-mails, cards and IBANs score 1.0. Only an
# entity below the threshold can be changed by context, so only then are tokens worth computing.
_BASE_SCORES = {
    "PHONE_NUMBER": min(PhoneRecognizer.SCORE, *(p.score for p in _PhoneShapeRecognizer.PATTERNS)),
    "IP_ADDRESS": max(pattern.score for pattern in IpRecognizer.PATTERNS),
    "URL": _CREDENTIALS_URL_SCORE,
    "PERSON": NameRuleRecognizer.SCORE,
}
