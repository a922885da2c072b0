"""The preprocess stage: clean, redact and split a batch of feedback texts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from spacy.attrs import IDX, ORTH

from triage.preprocess.components import build_nlp
from triage.preprocess.lemmatizer import LookupLemmatizer
from triage.preprocess.params import PreprocessParams
from triage.preprocess.redact import Redactor
from triage.preprocess.segment import UNITS_ATTR, UnitSegmenter
from triage.preprocess.sentencizer import LineSentencizer
from triage.preprocess.units import UnitText

if TYPE_CHECKING:
    from triage.config import Settings


@dataclass(frozen=True)
class PreprocessedText:
    redacted_text: str
    units: list[UnitText]  # empty when nothing is left to say: the caller marks the item failed
    redactions: dict[str, int]  # presidio entity type -> count


class Preprocessor:
    """Cleans, redacts and splits feedback texts; build once, reuse for every batch."""

    def __init__(self, params: PreprocessParams | None = None) -> None:
        self.params = params or PreprocessParams()
        self.nlp = build_nlp(
            min_unit_words=self.params.min_unit_words,
            split_conjunctions=self.params.split_conjunctions,
            min_topic_words=self.params.min_topic_words,
        )
        self.redactor = Redactor(self.params)

    @classmethod
    def from_settings(cls, settings: Settings) -> Preprocessor:
        return cls(PreprocessParams.from_settings(settings))

    def redact(self, texts: Sequence[str]) -> list[str]:
        """Cleaned texts with personal data replaced by placeholders such as ``<EMAIL>``."""
        return self.redactor.redact(texts)

    def process(self, texts: Sequence[str]) -> list[PreprocessedText]:
        """Clean, redact and split each text; the output is aligned with the input."""
        redacted = self.redactor.redact_with_counts(texts)
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
            for doc in self.nlp.pipe(texts, batch_size=self.params.batch_size):
                yield doc._.get(UNITS_ATTR)
            return
        sentencizer, lemmatizer, segmenter = cast(
            tuple[LineSentencizer, LookupLemmatizer, UnitSegmenter],
            tuple(component for _, component in self.nlp.pipeline),
        )
        vocab = self.nlp.vocab
        for text in texts:
            orths, idx = self.nlp.make_doc(text).to_array([ORTH, IDX]).T.tolist()
            starts = sentencizer.sentence_starts(vocab, orths)
            yield segmenter.units(vocab, text, orths, lemmatizer.lemmas(orths), idx, starts)
