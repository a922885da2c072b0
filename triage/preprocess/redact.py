"""Redaction: presidio on the project pipeline, personal data replaced by placeholders."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig
from spacy.language import Language
from spacy.tokens import Doc

from triage.errors import StageError
from triage.placeholders import PLACEHOLDERS
from triage.preprocess.clean import clean_text
from triage.preprocess.components import LANGUAGE, build_nlp
from triage.preprocess.cues import possible_entities
from triage.preprocess.fold import fold, unfold_span
from triage.preprocess.params import PreprocessParams
from triage.preprocess.pii import _BASE_SCORES, pii_recognizers

if TYPE_CHECKING:
    from triage.config import Settings

# presidio logs each text's context words at DEBUG, personal data included; a debug log of this
# service must never hold what redaction removes. Its INFO lines ("Skipping context extraction
# due to lack of NLP artifacts", once per text it analyses) say nothing to a user either.
logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)


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
# Neighbouring pieces share at least this many characters: more than the longest value a
# recognizer finds (an e-mail address has at most 254) with a context word before it, so a value
# that one piece's end cuts in two lies whole inside the next piece.
_OVERLAP_CHARS = 300


def _chunks(
    text: str, size: int = _CHUNK_CHARS, overlap: int = _OVERLAP_CHARS
) -> Iterator[tuple[int, str]]:
    """(offset, piece) of at most ``size`` characters, cut after a line, a sentence or a word;
    each piece after the first starts ``overlap`` or more characters before the previous end."""
    start = 0
    while len(text) - start > size:
        window = text[start : start + size]
        # Cut in the second half, so every piece moves on by more than the overlap.
        half = size // 2
        cut = max(window.rfind(mark, half) for mark in ("\n", ". ", "! ", "? "))
        if cut < 0:
            cut = window.rfind(" ", half)
        end = start + (cut + 1 if cut >= 0 else size)
        yield start, text[start:end]
        # Back by the overlap, to a line start or else a word start within another overlap.
        low, high = end - 2 * overlap, end - overlap
        back = text.rfind("\n", low, high)
        if back < 0:
            back = text.rfind(" ", low, high)
        start = back + 1 if back >= 0 else high
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


class Redactor:
    """Replaces personal data with placeholders such as ``<EMAIL>``; build once, reuse.

    Cheap to build: it runs presidio on the shared pipeline ``build_nlp`` returns, so the
    preprocessor, the digest and anyone else redacting in a process load spaCy once.
    """

    def __init__(self, params: PreprocessParams | None = None, *, prefilter: bool = True) -> None:
        self.params = params or PreprocessParams()
        # Off, every text goes to presidio: only for checking that the cues skip nothing.
        self.prefilter = prefilter
        self.nlp = build_nlp(
            min_unit_words=self.params.min_unit_words,
            split_conjunctions=self.params.split_conjunctions,
            min_topic_words=self.params.min_topic_words,
        )
        recognizers = pii_recognizers(self.params.phone_regions, self.nlp.Defaults.stop_words)
        self._engine = _PipelineNlpEngine(
            self.nlp, (word for recognizer in recognizers for word in recognizer.context or ())
        )
        self._analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE]),
            nlp_engine=self._engine,
            supported_languages=[LANGUAGE],
            default_score_threshold=self.params.pii_min_score,
        )
        self._anonymizer = AnonymizerEngine()
        self._operators = {
            entity: OperatorConfig("replace", {"new_value": placeholder})
            for entity, placeholder in PLACEHOLDERS.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls(PreprocessParams.from_settings(settings))

    def redact(self, texts: Sequence[str]) -> list[str]:
        """Cleaned texts with personal data replaced by placeholders such as ``<EMAIL>``."""
        return [text for text, _ in self.redact_with_counts(texts)]

    def redact_with_counts(self, texts: Sequence[str]) -> list[tuple[str, dict[str, int]]]:
        """Each text cleaned and redacted, with how many values of each entity type it lost.

        Raises StageError naming the index of a text that could not be redacted.
        """
        texts = [clean_text(t) for t in texts]
        # Recognizers read the folded copy (``fold``); what they find is replaced in the text.
        folded = [fold(text) for text in texts]
        jobs = [
            (i, offset, chunk, entities)
            for i, (text, _) in enumerate(folded)
            for offset, chunk in _chunks(text)
            if (entities := self._entities_to_check(chunk))
        ]
        needing_context = [chunk for _, _, chunk, entities in jobs if self._needs_context(entities)]
        contexts = iter([art for _, art in self._engine.process_batch(needing_context, LANGUAGE)])
        no_context = self._engine.empty_artifacts()
        found: dict[int, dict[tuple[str, int, int], RecognizerResult]] = {}
        for i, offset, chunk, entities in jobs:
            artifacts = next(contexts) if self._needs_context(entities) else no_context
            with _failing_item(i):
                results = self._analyzer.analyze(
                    chunk, LANGUAGE, entities=entities, nlp_artifacts=artifacts
                )
            origin = folded[i][1]
            # Pieces overlap, so a value near a seam is found twice: keep one of each.
            spans = found.setdefault(i, {})
            for result in results:
                result.start, result.end = unfold_span(
                    origin, result.start + offset, result.end + offset
                )
                key = (result.entity_type, result.start, result.end)
                if key not in spans or spans[key].score < result.score:
                    spans[key] = result
        redacted: list[tuple[str, dict[str, int]]] = []
        for i, text in enumerate(texts):
            if not found.get(i):  # most texts: nothing to replace, nothing that can fail
                redacted.append((text, {}))
                continue
            with _failing_item(i):
                redacted.append(self._anonymize(text, list(found[i].values())))
        return redacted

    def _entities_to_check(self, text: str) -> list[str]:
        return possible_entities(text) if self.prefilter else list(PLACEHOLDERS)

    def _needs_context(self, entities: list[str]) -> bool:
        return any(_BASE_SCORES.get(entity, 1.0) < self.params.pii_min_score for entity in entities)

    def _anonymize(self, text: str, found: list[RecognizerResult]) -> tuple[str, dict[str, int]]:
        if not found:
            return text, {}
        result = self._anonymizer.anonymize(
            text,
            found,  # type: ignore[arg-type]
            operators=self._operators,
            conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
        )
        return result.text, dict(Counter(item.entity_type for item in result.items))
