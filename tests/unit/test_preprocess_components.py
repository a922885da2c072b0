"""The preprocess pipeline's hand-written parts give the results of what they replace.

The sentencizer and the lemmatizer read token arrays instead of spaCy's Token objects, and
``Preprocessor.process`` runs the pipeline's three steps without writing into Docs; the name cue
of the PII prefilter and ``clean_text`` skip work they can prove useless. Each is compared here
with the plain version: spaCy's own components, the pipeline itself, the plain regexes.
"""

from __future__ import annotations

import dataclasses
import json
import random
import unicodedata
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from triage.preprocess import (
    UNITS_ATTR,
    Preprocessor,
    PreprocessParams,
    build_nlp,
    clean_text,
    new_nlp,
)
from triage.preprocess.clean import (
    _BLANK_LINES,
    _CONTROL,
    _LINE_BREAKS,
    _LONG_CHUNK,
    _MAX_REPEAT,
    _REPEATS,
)
from triage.preprocess.cues import _PII_CUES, _CaselessSearch
from triage.preprocess.lemmatizer import _LEMMA_OVERRIDES
from triage.preprocess.tokens import _Tokens, _Word

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

TEXTS = [
    "",
    " ",
    "\n",
    "Hi",
    "The export button is broken.",
    "Awful. So slow. The export button does nothing and the numbers are wrong.",
    "Hello team,\nThe export button is broken\n- wrong totals\n\n\nThanks,\nJo",
    "Exports Fail. EXPORTS fail. Exporting Data Numbers Worse Best Better Does",
    "“Quoted.” Sentence! Another?? (paren.) [bracket!] end… a.b.c. d! e? f",
    "!!! ...\n... ?",
    "Mr. Smith said: ‘no.’ Then left.",
    "Call me at <PHONE> or mail <EMAIL>. My name is <PERSON>.",
    "Fünf Äpfel. Ça ne marche pas! 日本語のテキスト。次の文。",
    "Data data DATA Data's numbers Numbers",
    "word. \n next\tTab\there",
    "🙂🙂 broken 🙂. Ok",
    "The app crashes; the chart loads and the table is empty.\r\nPS: also the login page.",
]


def labelled_texts() -> list[str]:
    with (FIXTURES / "labelled.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines]


@Language.component("test_reference_line_breaks")
def _reference_line_breaks(doc: Doc) -> Doc:
    for token in doc[:-1]:
        if token.is_space and "\n" in token.text:
            doc[token.i + 1].is_sent_start = True
    return doc


@Language.component("test_reference_lemma_case")
def _reference_lemma_case(doc: Doc) -> Doc:
    table = _reference_lemma_case.table  # type: ignore[attr-defined]
    for token in doc:
        if not token.is_lower and token.is_alpha and token.lemma_ == token.text:
            token.lemma_ = table.get(token.lower_, token.lower_)
    return doc


@pytest.fixture(scope="module")
def nlp() -> Language:
    return build_nlp()


@pytest.fixture(scope="module")
def reference(nlp: Language) -> Language:
    """The pipeline as spaCy's components make it: a line-break step, spaCy's Sentencizer and
    lookup Lemmatizer, and a step lemmatising capitalised words through their lowercase form;
    same vocab and tokenizer as ``nlp``."""
    reference = spacy.blank("en", vocab=nlp.vocab)
    reference.tokenizer = nlp.tokenizer
    reference.add_pipe("test_reference_line_breaks")
    reference.add_pipe("sentencizer")
    reference.add_pipe("lemmatizer", config={"mode": "lookup"})
    reference.add_pipe("test_reference_lemma_case")
    reference.initialize()
    table = reference.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    for word, lemma in _LEMMA_OVERRIDES.items():
        table.set(word, lemma)
    _reference_lemma_case.table = table  # type: ignore[attr-defined]
    return reference


def annotations(doc: Doc) -> list[tuple[str, str, bool | None]]:
    return [(token.text, token.lemma_, token.is_sent_start) for token in doc]


def test_sentences_and_lemmas_are_spacys(nlp: Language, reference: Language) -> None:
    texts = TEXTS + labelled_texts()
    docs = list(nlp.pipe(texts, disable=["triage_units"]))
    expected = list(reference.pipe(texts))
    assert [annotations(doc) for doc in docs] == [annotations(doc) for doc in expected]
    assert [[(s.start, s.end) for s in doc.sents] for doc in docs if len(doc)] == [
        [(s.start, s.end) for s in doc.sents] for doc in expected if len(doc)
    ]


def test_sentences_and_lemmas_a_doc_already_has_are_kept_as_spacy_keeps_them(
    nlp: Language, reference: Language
) -> None:
    def annotated() -> Doc:
        doc = nlp.make_doc("Exports fail.\nData IS Wrong here. Numbers")
        doc[1].lemma_ = "FAILURE"
        doc[0].lemma_ = "Exports"  # capitalised, as its text: the lowercase step still applies
        doc[4].is_sent_start = False  # after a line break: becomes a start anyway
        doc[6].is_sent_start = True
        doc[7].is_sent_start = False
        return doc

    doc = nlp.get_pipe("lemmatizer")(nlp.get_pipe("sentencizer")(annotated()))
    expected = reference.get_pipe("test_reference_line_breaks")(annotated())
    for name in ("sentencizer", "lemmatizer", "test_reference_lemma_case"):
        expected = reference.get_pipe(name)(expected)
    assert annotations(doc) == annotations(expected)


def test_lemmas_stay_readable_after_a_memory_zone() -> None:
    nlp = new_nlp()  # not the shared pipeline: the memory zone forgets strings
    with nlp.memory_zone():
        assert [t.lemma_ for t in nlp("Zyxwvut exports")] == ["zyxwvut", "export"]
    assert [t.lemma_ for t in nlp("Zyxwvut exports")] == ["zyxwvut", "export"]


def test_process_gives_the_units_the_pipeline_gives() -> None:
    preprocessor = Preprocessor(PreprocessParams(min_unit_words=3))
    results = preprocessor.process(TEXTS + labelled_texts())
    for result in results:
        doc = preprocessor.nlp(result.redacted_text)
        assert result.units == doc._.get(UNITS_ATTR), result.redacted_text


def test_process_runs_a_changed_pipeline_as_it_is() -> None:
    preprocessor = Preprocessor()
    seen: list[str] = []

    @Language.component("test_seen_by_process")
    def seen_by_process(doc: Doc) -> Doc:
        seen.append(doc.text)
        return doc

    # The pipeline is shared by every Preprocessor of this configuration: put it back after.
    preprocessor.nlp.add_pipe("test_seen_by_process", before="triage_units")
    try:
        (result,) = preprocessor.process(["The export button is broken."])
    finally:
        preprocessor.nlp.remove_pipe("test_seen_by_process")
    assert seen == ["The export button is broken."]
    assert [unit.text for unit in result.units] == ["The export button is broken."]


def test_tokens_start_with_the_word_fields_in_their_order() -> None:
    fields = [field.name for field in dataclasses.fields(_Tokens)]
    assert fields[: len(_Word._fields)] == list(_Word._fields)


NAME_CUE = next(cue.pattern for cue in _PII_CUES if isinstance(cue.pattern, _CaselessSearch))

NAME_CUE_TEXTS = [
    "Thanks Maria",
    "thanks maria",
    "THANKS, MARIA",
    "yours Maria",  # "you" is tried first
    "youMaria",
    "it'Signed Maria",  # a word starting inside another one
    "sent from my thanks Jo",
    "Best -- Jo",
    "-Jo",
    "— Jo",
    "hi\tJo",
    "hi\nJo",
    "can you tell me why",
    "ſincerely Maria",  # re.IGNORECASE reads ſ as s
    "thıs is Maria",
    "İ'm Ali",
    "I’m Émile",
    "my name is émile",
]


@pytest.mark.parametrize("text", NAME_CUE_TEXTS)
def test_name_cue_finds_what_its_pattern_finds(text: str) -> None:
    expected = NAME_CUE.pattern.search(text)
    found = NAME_CUE.search(text)
    assert (found and found.span()) == (expected and expected.span())


def test_name_cue_finds_what_its_pattern_finds_in_random_text() -> None:
    pieces = [*NAME_CUE_TEXTS, "name", "I am", "I", "a", "the", "Jo", "x", "'", ",", "(", ". "]
    rng = random.Random(5)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " ", "  ", "\n"]) for _ in range(6))
        expected = NAME_CUE.pattern.search(text)
        found = NAME_CUE.search(text)
        assert (found and found.span()) == (expected and expected.span()), text


def clean_text_with_every_step(text: str) -> str:
    """``clean_text`` as it was before it skipped steps that cannot change the text."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    text = _REPEATS.sub(lambda m: m.group(1) * _MAX_REPEAT, text)
    text = _LONG_CHUNK.sub(lambda m: m.group() + " ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


@pytest.mark.parametrize(
    "text",
    [
        "a\r\nb\rc\u2028d\u2029e\x85f",
        "x" * 21,
        "x" * 20 + " " + "y" * 21,
        "!" * 30 + "\n" + "z" * 19,
        "k" * 15 + "\x0b" + "k" * 15,  # a vertical tab is a space until it is removed
        "q" * 1500,
        "w" * 999 + " " + "v" * 1001,
        "🙂" * 10_000,
        " \n \n \n \t",
    ],
)
def test_clean_text_skips_only_steps_that_change_nothing(text: str) -> None:
    assert clean_text(text) == clean_text_with_every_step(text)


def test_clean_text_skips_only_steps_that_change_nothing_in_random_text() -> None:
    alphabet = ["a", "A", "é", " ", "\t", "\n", "\r", "\u2028", "\x85", "\x00", "\x0b", "\u00a0"]
    alphabet += ["🙂", "x" * 15, "!" * 9, "\n\n\n", "e\u0301"]
    rng = random.Random(3)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert clean_text(text) == clean_text_with_every_step(text), repr(text)


def test_preprocess_memo_computes_each_key_once_and_starts_over_when_full(monkeypatch):  # type: ignore[no-untyped-def]
    from triage.preprocess import memo as memo_module

    computed: list[int] = []

    def square(key: int) -> int:
        computed.append(key)
        return key * key

    memo: memo_module._Memo[int] = memo_module._Memo()
    assert memo.all([2, 3, 2, 3], square) == [4, 9, 4, 9]
    assert computed == [2, 3]
    monkeypatch.setattr(memo_module, "_MAX_MEMO", 1)  # two entries are past the bound
    assert memo.all([2], square) == [4]
    assert computed == [2, 3, 2]  # started over, so 2 was computed again
