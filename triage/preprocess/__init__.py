"""Stage "preprocess": clean each feedback text, redact personal data, split it into units.

A unit is one statement about one thing: a ticket that complains about the export button and
about wrong numbers becomes two units, so each complaint can join its own issue. Greetings,
pleasantries and sign-offs are not units.

Everything runs on ``spacy.blank("en")`` plus rules and lookup tables, never a trained pipeline,
so it loads in well under a second, needs no download and gives the same output on every machine.
Personal data is found by presidio with only the recognizers listed in ``PLACEHOLDERS``; presidio's
default engine would load ``en_core_web_lg`` for a name model we cannot ship, so names are found
by rules where the text introduces them ("my name is ...", sign-offs) and nowhere else.

In data-flow order: ``clean`` (normalise), ``redact`` (presidio with the recognizers of ``pii``
on the copy ``fold`` makes, skipped where ``cues`` prove it useless; ``values`` applies it to
identifiers and metadata on their way out), ``components`` (the spaCy pipeline: ``sentencizer``,
``lemmatizer``, ``segment``), ``units`` (joining same-topic units after embedding); ``stage``
runs them as the ``Preprocessor``, with the knobs of ``params``.
"""

from triage.imports import without_deep_learning
from triage.placeholders import PLACEHOLDERS

# spaCy and presidio are imported here and only here (every module of this package), without
# torch and transformers, which neither needs for what triage runs (``triage.imports``).
with without_deep_learning():
    from triage.preprocess.clean import clean_text
    from triage.preprocess.components import LANGUAGE, build_nlp, new_nlp
    from triage.preprocess.lemmatizer import LookupLemmatizer
    from triage.preprocess.params import PreprocessParams
    from triage.preprocess.redact import Redactor
    from triage.preprocess.segment import UNITS_ATTR, UnitSegmenter
    from triage.preprocess.sentencizer import LineSentencizer
    from triage.preprocess.stage import PreprocessedText, Preprocessor
    from triage.preprocess.units import UnitText, join_same_topic, topic_units

__all__ = [
    "LANGUAGE",
    "PLACEHOLDERS",
    "UNITS_ATTR",
    "LineSentencizer",
    "LookupLemmatizer",
    "PreprocessParams",
    "PreprocessedText",
    "Preprocessor",
    "Redactor",
    "UnitSegmenter",
    "UnitText",
    "build_nlp",
    "clean_text",
    "join_same_topic",
    "new_nlp",
    "topic_units",
]
