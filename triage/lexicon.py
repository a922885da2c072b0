"""Phrase lexicons matched on lemmas: the categorize stage's cue words and the rank stage's
severity terms share one matcher, so both see the same lemmas as the preprocess stage."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import InvalidInputError, ModelNotFoundError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@lru_cache(maxsize=1)
def lemma_nlp() -> Any:
    """The preprocess stage's pipeline, so cues see the same lemmas as unit keywords; failing
    that, a blank English pipeline with the lookup lemmatizer."""
    from triage.imports import without_deep_learning

    try:
        from triage.preprocess import build_nlp
    except ImportError:
        pass
    else:
        return build_nlp()
    try:
        with without_deep_learning():
            import spacy
    except ImportError as e:
        raise ModelNotFoundError("spaCy is not installed. Run: pip install spacy==3.8.18") from e
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    try:
        nlp.initialize()
    except Exception as e:  # spaCy raises a plain ValueError when the tables are missing
        raise ModelNotFoundError(
            "spaCy's lookup lemmatizer has no tables. Run: pip install spacy-lookups-data==1.0.5"
        ) from e
    return nlp


# Lexicons match lemmas; these steps of the preprocess pipeline only mark sentences and split
# statements (no token's text or lemma changes), and they cost more than the rest, so matching
# skips them.
NOT_FOR_MATCHING = ("sentencizer", "triage_units")


def lemma_docs(texts: Iterable[str]) -> list[Any]:
    """The texts as every lexicon matches them: lowercased, through ``lemma_nlp``. Parse once to
    match several lexicons (``CueLexicon.match(texts, docs=...)``)."""
    nlp = lemma_nlp()
    skip = [name for name in NOT_FOR_MATCHING if name in nlp.pipe_names]
    return list(nlp.pipe((text.lower() for text in texts), disable=skip))


class CueLexicon:
    """Phrases per category, matched on lemmas of the lowercased text; the longest match wins.

    Also used for the severity lexicon of the rank stage (``weights`` per category).
    """

    def __init__(
        self,
        categories: Mapping[str, Sequence[str]],
        *,
        version: int = 1,
        weights: Mapping[str, float] | None = None,
        source: str = "",
    ) -> None:
        self.version = version
        self.categories = {name: list(phrases) for name, phrases in categories.items()}
        self.weights = dict(weights or {})
        self.source = source
        self._matcher: Any = None

    @classmethod
    def load(cls, path: str | Path) -> CueLexicon:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ModelNotFoundError(f"No lexicon at {path}; models/ ships cues-v1.json.") from e
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(raw.get("categories"), dict):
            raise InvalidInputError(f'{path} needs a "categories" object of phrase lists.')
        return cls(
            raw["categories"],
            version=int(raw.get("version", 1)),
            weights=raw.get("weights"),
            source=path.name,
        )

    @property
    def names(self) -> list[str]:
        return list(self.categories)

    def _build(self) -> Any:
        from spacy.matcher import PhraseMatcher

        nlp = lemma_nlp()
        matcher = PhraseMatcher(nlp.vocab, attr="LEMMA")
        for name, phrases in self.categories.items():
            for phrase in phrases:
                # One key per (category, phrase), so a phrase listed twice counts for both.
                matcher.add(f"{name}\t{phrase}", [nlp(phrase.lower())])
        return matcher

    def match(
        self, texts: Sequence[str], *, docs: Sequence[Any] | None = None
    ) -> list[dict[str, list[str]]]:
        """For each text, the phrases matched per category (in text order, repeats kept).
        ``docs``, when given, are the texts already parsed by ``lemma_docs``."""
        from spacy.util import filter_spans

        if self._matcher is None:
            self._matcher = self._build()
        if docs is None:
            docs = lemma_docs(texts)
        results = []
        for doc in docs:
            spans = self._matcher(doc, as_spans=True)
            found: dict[str, list[str]] = {}
            # A phrase in two categories yields two identical spans; filter_spans keeps one.
            kept = {(s.start, s.end) for s in filter_spans(spans)}
            for span in sorted(spans, key=lambda s: (s.start, s.label_)):
                if (span.start, span.end) in kept:
                    name, phrase = span.label_.split("\t", 1)
                    found.setdefault(name, []).append(phrase)
            results.append(found)
        return results

    def counts(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(names))`` match counts, one column per category."""
        matches = self.match(texts)
        return np.array(
            [[len(found.get(name, [])) for name in self.names] for found in matches],
            dtype=np.float32,
        ).reshape(len(texts), len(self.names))
