"""Full names written anywhere in a ticket ("our regional manager Dennis Walsh asked ..."): a
first name followed by a surname, both from the US Census lists (the ``names`` package), where
English writes the two words capitalised more than it writes them as ordinary words.

``NameRuleRecognizer`` (``pii_names``) finds names where the text introduces them; a name in
the middle of a sentence needs a model of names. A statistical NER model needs a trained
pipeline we cannot ship, and tags product names as people; the census lists alone would take
"Bill Pay", "Rose Gold" or "Chase Bank" for people. So a pair counts as a name only when, summed
over its two words, English text writes them capitalised more often than lowercased (spaCy's
lexeme probabilities from ``spacy-lookups-data``): "Dennis Walsh" is a name, "Bill Pay" and
"Vesta Home" are not. A pair with a stop word ("Will Smith") or a day or month ("Sun Sep") is
left alone. A courtesy title and the capitalised word after it ("Dr. Okonkwo", "Ms Ferreira")
is a name whatever the word: in the texts below (every text field, 92,000), all 24 were people.

Measured on every ticket and model output of the fixtures, feedback-dev, Banking77 and HWU64
(62,700 texts): 317 distinct pairs found, 3 judged not names; of the 314 kept, two were not
people ("Patrick Street", "Hilton Garden").

The lexeme table holds a million entries and takes two seconds to read, so the one number per
census name that this needs is derived once per machine and kept in the user cache, as the
ONNX export is (``derived_table``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from triage.paths import user_cache

# Two capitalised words, at every word start (a lookahead, so "Ask Dennis Walsh" offers "Dennis
# Walsh" after "Ask Dennis"); a hyphenated surname ("Ortiz-Lane") is read by its parts.
_PAIR = re.compile(r"\b(?=([A-Z][a-z]+)[ \t]+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b)")
# Days and months, whole and cut short: "Sun Sep 14" is a date.
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_CALENDAR = frozenset(
    [*_DAYS, *_MONTHS, *(w[:3] for w in _DAYS + _MONTHS), "tues", "thur", "thurs", "sept"]
)
# A courtesy title and the capitalised word after it: "Dr. Okonjo", "Ms Ferreira".
_HONORIFIC = re.compile(
    r"\b(?:Mr|Mrs|Ms|Mx|Dr|Prof)\.?[ \t]+[A-Z][a-z]+(?:['’-][A-Z]?[a-z]+)?|\bMiss[ \t]+[A-Z][a-z]+"
)
_FORMAT = 1  # bump when what the derived table holds changes


def _census(file: str) -> list[str]:
    """One census list of the ``names`` package, capitalised ("WALSH 0.013 ..." ->
    "Walsh")."""
    text = resources.files("names").joinpath(file).read_text(encoding="ascii")
    return [line.split()[0].capitalize() for line in text.splitlines() if line.strip()]


def _build() -> dict[str, dict[str, float]]:
    """Per census name, the log-probability of English writing it capitalised minus that of
    writing it lowercased; a word the table lacks counts at the table's smallest value."""
    path = resources.files("spacy_lookups_data").joinpath("data", "en_lexeme_prob.json.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        prob: dict[str, float] = json.load(handle)
    floor = min(prob.values())

    def lift(word: str) -> float:
        return round(prob.get(word, floor) - prob.get(word.lower(), floor), 2)

    first = _census("dist.female.first") + _census("dist.male.first")
    return {
        "first": {name: lift(name) for name in first},
        "last": {name: lift(name) for name in _census("dist.all.last")},
    }


def derived_table(cache_root: Path | None = None) -> dict[str, dict[str, float]]:
    """``{"first": {name: lift}, "last": {...}}``, read from the user cache, or built and
    written there (atomically: two processes building at once both finish) on first use. The
    file is named after the versions of the two packages it comes from."""
    versions = f"names-{metadata.version('names')}-lookups-{metadata.version('spacy-lookups-data')}"
    path = (cache_root or user_cache("names")) / f"census-lift-{versions}-v{_FORMAT}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    table = _build()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".census-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(table, out)
        os.replace(tmp, path)
    except OSError:
        # A read-only home or a full disk: built again by the next process, still correct.
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return table


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, float]]:
    return derived_table()


class CensusPairs:
    """Where a text holds a census first name followed by a census surname or a courtesy title
    and a name (``search``, the redactor's cheap cue), and which of those read as a person's
    name (``names``)."""

    def __init__(self, table: dict[str, dict[str, float]], stop_words: Iterable[str]) -> None:
        self._first = table["first"]
        self._last = table["last"]
        self._skip = frozenset(w.lower() for w in stop_words) | _CALENDAR

    @classmethod
    def default(cls, stop_words: Iterable[str] = ()) -> CensusPairs:
        return cls(_table(), stop_words)

    def _pairs(self, text: str) -> Iterable[tuple[re.Match[str], float]]:
        """Each census pair (the match's groups 1 and 2) with its summed lift."""
        for match in _PAIR.finditer(text):
            first, last = match.group(1), match.group(2)
            parts = last.split("-")
            if (
                first in self._first
                and all(p in self._last for p in parts)
                and not {first.lower(), *(p.lower() for p in parts)} & self._skip
            ):
                yield match, self._first[first] + min(self._last[p] for p in parts)

    def search(self, text: str) -> bool:
        """Whether a census pair or a courtesy title is in ``text`` (a superset of what
        ``names`` finds)."""
        return bool(_HONORIFIC.search(text)) or next(iter(self._pairs(text)), None) is not None

    def names(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each pair whose two words read, summed, as names rather than words,
        and of each courtesy title with the name after it; overlapping ones ("Mary Ann Hill",
        "Dr. Mary Hill") as one span."""
        found = sorted(
            [(m.start(1), m.end(2)) for m, lift in self._pairs(text) if lift > 0]
            + [m.span() for m in _HONORIFIC.finditer(text)]
        )
        spans: list[tuple[int, int]] = []
        for start, end in found:
            if spans and start < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans


class FullNameRecognizer(LocalRecognizer):
    """Presidio's view of ``CensusPairs.names``: PERSON, at the same score as the rules'."""

    SCORE = 0.85

    def __init__(self, pairs: CensusPairs) -> None:
        self._pairs = pairs
        super().__init__(supported_entities=["PERSON"], name="FullNameRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [RecognizerResult("PERSON", s, e, self.SCORE) for s, e in self._pairs.names(text)]
