"""The preprocess stage: cleaning, PII redaction with presidio, splitting into units."""

from __future__ import annotations

import dataclasses
import re
import socket

import numpy as np
import pytest
import tldextract

from triage.config import Settings
from triage.errors import StageError
from triage.placeholders import PLACEHOLDER
from triage.preprocess import (
    PLACEHOLDERS,
    Preprocessor,
    PreprocessParams,
    Redactor,
    UnitText,
    build_nlp,
    clean_text,
    join_same_topic,
    topic_units,
)
from triage.preprocess.fold import fold, unfold_span
from triage.preprocess.redact import _chunks
from triage.preprocess.values import ValueRedactor


@pytest.fixture(scope="module")
def preprocessor() -> Preprocessor:
    return Preprocessor()


def process_one(preprocessor: Preprocessor, text: str):
    (result,) = preprocessor.process([text])
    return result


def unit_texts(preprocessor: Preprocessor, text: str) -> list[str]:
    return [unit.text for unit in process_one(preprocessor, text).units]


# --- redaction --------------------------------------------------------------------------------

PII_CASES = [
    ("Please write to maria.lopez@example.com.", "maria.lopez@example.com", "EMAIL_ADDRESS"),
    ("Call me on +44 20 7946 0958 after five.", "7946 0958", "PHONE_NUMBER"),
    ("You can reach me at (415) 555-0100.", "555-0100", "PHONE_NUMBER"),
    ("Best to call 020 7946 0958 tomorrow.", "7946 0958", "PHONE_NUMBER"),
    ("It charged my card 4111 1111 1111 1111 twice.", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("Refund to IBAN DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("The requests come from 192.168.1.20 only.", "192.168.1.20", "IP_ADDRESS"),
    ("Blocked from fe80::1ff:fe23:4567:890a today.", "fe80::1ff:fe23:4567:890a", "IP_ADDRESS"),
    ("Connect with postgres://admin:hunter2@db.example.com:5432/prod to see it.", "hunter2", "URL"),
    ("My name is Maria Lopez and the export fails.", "Maria Lopez", "PERSON"),
    ("Hi, I'm Sarah from Acme. The chart is empty.", "Sarah", "PERSON"),
    ("This is Tom Baker from Globex, the summary is too long.", "Tom Baker", "PERSON"),
    ("The export fails.\nThanks,\nJohn Smith", "John Smith", "PERSON"),
    ("The export fails. Best, Maria", "Maria", "PERSON"),
    ("The chart is wrong.\nKind regards,\nAnna Schmidt\nAcme Corp", "Anna Schmidt", "PERSON"),
    ("Hello Priya,\nthe export button does nothing.", "Priya", "PERSON"),
    ("Export fails.\n\nDr. Helen Marsh\nhelen.marsh@example.com", "Helen Marsh", "PERSON"),
    ("Export fails.\nNiamh Kelly | Team Lead | +1 555 0161", "Niamh Kelly", "PERSON"),
    ("Export fails. Call me, 555-0110. - Rick", "Rick", "PERSON"),
    ("Export fails.\nSent from my iPhone\nMarcus Webb", "Marcus Webb", "PERSON"),
    ("It cites the IT contact 'Ben Carter, 555-0147' who left.", "Ben Carter", "PERSON"),
    ("The forecast is stale. (contact: Owen Price, o@example.com)", "Owen Price", "PERSON"),
    # Made-up numbers libphonenumber rejects are still contact details with a context word.
    ("Export fails. Call me, 555-0110.", "555-0110", "PHONE_NUMBER"),
    ("Export fails.\nJo\njo@example.com | +1 555 0125", "555 0125", "PHONE_NUMBER"),
    ("Export fails.\njo@example.com | 555-0188", "555-0188", "PHONE_NUMBER"),
    # Spellings issue 14 found unredacted: fullwidth, lower case, odd groups and separators.
    ("Write to ｍａｒｉａ＠ｅｘａｍｐｌｅ．ｃｏｍ today.", "ｍａｒｉａ", "EMAIL_ADDRESS"),
    ("Write to maria\u2060@example.com today.", "maria", "EMAIL_ADDRESS"),
    ("Refund to iban de89370400440532013000 please.", "de89370400440532013000", "IBAN_CODE"),
    ("Refund to de89 3704 0044 0532 0130 00 please.", "3704 0044 0532", "IBAN_CODE"),
    ("Refund to IBAN DE 89 3704 0044 0532 0130 00 please.", "3704 0044 0532", "IBAN_CODE"),
    ("It charged 4111.1111.1111.1111 twice.", "4111.1111.1111.1111", "CREDIT_CARD"),
    ("It charged 4111  1111  1111  1111 twice.", "4111  1111", "CREDIT_CARD"),
    ("It charged ４１１１ １１１１ １１１１ １１１１ twice.", "１１１１", "CREDIT_CARD"),
    ("It charged 4111\u00a01111\u00a01111\u00a01111 twice.", "1111", "CREDIT_CARD"),
    ("Full name: Maria Lopez\nThe export fails.", "Maria Lopez", "PERSON"),
    ("Requester name:\nMaria Lopez\nThe export fails.", "Maria Lopez", "PERSON"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secret", "entity"), PII_CASES)
def test_preprocess_redacts_personal_data(preprocessor, text, secret, entity):
    result = process_one(preprocessor, text)
    assert secret not in result.redacted_text
    assert PLACEHOLDERS[entity] in result.redacted_text
    assert result.redactions.get(entity, 0) >= 1
    assert all(secret not in unit.text for unit in result.units)


def test_preprocess_every_placeholder_written_is_one_the_later_stages_find(preprocessor):
    # The word model and the title picker strip placeholders with ``triage.placeholders``,
    # without loading presidio: whatever the redactor writes must be one they know.
    redacted = preprocessor.redact([text for text, _, _ in PII_CASES])
    written = {p for text in redacted for p in re.findall(r"<[A-Z_]+>", text)}
    assert written == set(PLACEHOLDERS.values())
    assert all(PLACEHOLDER.fullmatch(p) for p in written)
    # Angle brackets a customer typed are text, not a placeholder.
    assert not PLACEHOLDER.search("The <DIV> and <person> tags render raw.")


def test_preprocess_redact_keeps_the_text_around_the_placeholder(preprocessor):
    (redacted,) = preprocessor.redact(["Mail me at jo@example.com or call +1 415 555 0100."])
    assert redacted == "Mail me at <EMAIL> or call <PHONE>."


def test_preprocess_redact_replaces_folded_values_in_the_text_as_written(preprocessor):
    """Detection reads an NFKC-folded copy; only the value is replaced, the rest of the text
    keeps its own characters (issue 14)."""
    email = "ｍａｒｉａ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    (redacted,) = preprocessor.redact([f"Ｔｈｅ ｅｘｐｏｒｔ fails; {email}, ①."])
    assert redacted == "Ｔｈｅ ｅｘｐｏｒｔ fails; <EMAIL>, ①."


def test_preprocess_fold_maps_each_folded_character_to_its_source():
    folded, origin = fold("ａ\u00adｂ＠½٤")
    assert folded == "ab@1⁄24"
    assert [unfold_span(origin, i, i + 1) for i in range(len(folded))] == [
        (0, 1), (2, 3), (3, 4), (4, 5), (4, 5), (4, 5), (5, 6)]  # fmt: skip
    assert fold("plain ascii") == ("plain ascii", None)
    assert fold("Grüße") == ("Grüße", None)  # nothing to fold: no map to build


@pytest.mark.parametrize("offset", range(1960, 2010, 7))
@pytest.mark.parametrize(
    "value",
    ["4111 1111 1111 1111", "maria.lopez@example.com", "DE89 3704 0044 0532 0130 00",
     "+49 30 901820"],
)  # fmt: skip
def test_preprocess_redacts_values_across_a_chunk_seam(preprocessor, offset, value):
    """Long texts are analysed in ~2,000-character pieces; a value cut by a piece's end must
    still be found (issue 14: a card number straddling the seam of a text without a sentence
    break)."""
    words = "lorem ipsum dolor sit amet " * 200
    (redacted,) = preprocessor.redact([f"{words[:offset]} {value} {words[:3000]}"])
    assert value.split()[0] not in redacted and value.split()[-1] not in redacted


def test_preprocess_chunks_overlap_so_every_short_span_lies_in_one():
    text = "".join(f"word{i} " if i % 7 else f"line {i}.\n" for i in range(3000))
    pieces = list(_chunks(text))
    assert len(pieces) > 5 and all(len(piece) <= 2000 for _, piece in pieces)
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in pieces)
    for start in range(0, len(text) - 300, 37):
        assert any(o <= start and start + 300 <= o + len(p) for o, p in pieces), start


def test_preprocess_counts_each_redaction(preprocessor):
    result = process_one(preprocessor, "a@example.com, b@example.com and 10.0.0.1 fail")
    assert result.redactions == {"EMAIL_ADDRESS": 2, "IP_ADDRESS": 1}


UNTOUCHED = [
    "Version 2.3.0 broke the export again.",
    "Since the update on 2024-05-01 and 01/05/2024 12:30 the chart is empty.",
    "Dates like 05.01.2024 are shown as 2024-01-05.",
    "It costs $1,299.00 or €49,99 a month and the invoice says 1.299,00 EUR.",
    "Order #A-10293 and invoice INV-2024-000123 are missing.",
    "Order number 12345678 and ticket 4155550100 never arrived.",
    "The docs at https://docs.example.com/export?id=5 are outdated.",
    "Acme Forecast Pro and Globex Insights show different totals.",
    "my name is wrong on the invoice, please fix it",
    "My name is spelled wrong in the header.",
    "Release 1.2.3.4 and build 2.10.0.17 both crash at 10:30:00.",
    "I'm not sure this is right from a data point of view.",
    "Thanks, great product otherwise.",
    "- Export broken\n- Wrong totals",
    "Model gpt-4o-2024-08-06 returned 3 answers for 1 question.",
    # Context words that make presidio trust a digit group; ids and dates still are no phones.
    "The mobile app lost order INV-2024-000123 again.",
    "Our phone support was down from 05.01.2024 12:30 until noon.",
    "Call support: the totals for 2023-2024 and 100-200 units are off by 10.5%.",
    "Hello, a shopper complained (forwarded from the shop inbox) about prices.",
    "The export fails.\nSent from my iPhone",
    # Pass a cue (an IBAN's shape, a name field) and still hold nothing personal.
    "It is 14 days since the export last worked.",
    "File name: Q3 Report is empty after the export.",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_preprocess_leaves_ordinary_text_alone(preprocessor, text):
    result = process_one(preprocessor, text)
    assert result.redacted_text == clean_text(text)
    assert result.redactions == {}


def test_preprocess_prefilter_finds_what_presidio_alone_finds(preprocessor, monkeypatch):
    """The cheap cues only skip texts presidio would leave alone (regression guard for them)."""
    texts = [text for text, _, _ in PII_CASES] + UNTOUCHED
    filtered = preprocessor.redact(texts)
    monkeypatch.setattr(preprocessor.redactor, "prefilter", False)
    assert filtered == preprocessor.redact(texts)


def test_preprocess_redactor_redacts_as_the_preprocessor_does(preprocessor):
    """The digest redacts model outputs with a Redactor of its own; tickets and outputs must
    lose the same values."""
    texts = [text for text, _, _ in PII_CASES] + UNTOUCHED + ["", "  a@example.com\r\n"]
    redactor = Redactor.from_settings(Settings())
    assert redactor.redact(texts) == preprocessor.redact(texts)
    assert [text for text, _ in redactor.redact_with_counts(texts)] == redactor.redact(texts)
    assert redactor.nlp is preprocessor.nlp  # no second spaCy pipeline for redaction


def test_preprocess_never_fetches_the_public_suffix_list(monkeypatch):
    """tldextract's default extractor downloads publicsuffix.org on first use; ours must not."""
    attempts: list[object] = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    # The guard notices a fetch: a default extractor without cache tries the network.
    tldextract.TLDExtract(cache_dir=None)("example.com")
    assert attempts, "the network guard did not see tldextract's fetch"
    attempts.clear()

    fresh = Preprocessor()  # a new extractor, nothing memoised from other tests
    (redacted,) = fresh.redact(["Write to jo@example.co.uk please."])
    assert redacted == "Write to <EMAIL> please."
    assert attempts == []


def test_preprocess_raises_stage_error_when_a_recognizer_fails(preprocessor, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("recognizer bug")

    monkeypatch.setattr(preprocessor.redactor._analyzer, "analyze", broken)
    with pytest.raises(StageError) as info:
        preprocessor.process(["fine text", "mail jo@example.com"])
    assert info.value.details == {"index": 1}
    assert isinstance(info.value.__cause__, RuntimeError)


# --- values: identifiers and metadata, redacted on their way out --------------------------------


def test_preprocess_values_redact_every_string_in_a_record(preprocessor):
    values = ValueRedactor(preprocessor.redactor)
    record = {
        "user_id": "jane.roe@example.com",
        "session_id": "sess_000000000000000000000001 ",  # no personal data: exactly as sent
        "metadata": {
            "contact": {"emails": ["a@example.com", {"alt": "ｍａｒｉａ＠ｅｘａｍｐｌｅ．ｃｏｍ"}]},
            "customerPhone": "415 555 0199",  # a phone number by its key alone
            "requester_name": "Maria Lopez",
            "card": 4111111111111111,
            "jo@example.com": 1,
            "bo@example.com": 2,
            "plan": "pro",
            "seats": 12,
            "trial": True,
            "ratio": 0.5,
            "note": None,
        },
    }
    (shown,) = values.redact_records([record])
    assert shown == {
        "user_id": "<EMAIL>",
        "session_id": "sess_000000000000000000000001 ",
        "metadata": {
            "contact": {"emails": ["<EMAIL>", {"alt": "<EMAIL>"}]},
            "customerPhone": "<PHONE>",
            "requester_name": "<PERSON>",
            "card": "<CARD>",
            "<EMAIL>": 1,
            "<EMAIL> (2)": 2,
            "plan": "pro",
            "seats": 12,
            "trial": True,
            "ratio": 0.5,
            "note": None,
        },
    }
    assert values.redact_records([record]) == [shown]  # from the memo the second time
    assert record["user_id"] == "jane.roe@example.com"  # the input is left alone


def test_preprocess_values_memo_holds_no_personal_data(preprocessor):
    values = ValueRedactor(preprocessor.redactor)
    values.redact_records([{"user_id": "jane.roe@example.com", "plan": "pro"}])
    assert values._memo and all(isinstance(key, bytes) for key in values._memo)
    assert not any("jane" in str(result) for result in values._memo.values())


# --- units ------------------------------------------------------------------------------------


def test_preprocess_splits_two_topics_into_two_units(preprocessor):
    text = "The export button does nothing. The numbers in the forecast are wrong."
    assert unit_texts(preprocessor, text) == [
        "The export button does nothing.",
        "The numbers in the forecast are wrong.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "The export button does nothing and the numbers are wrong.",
        "The export button does nothing; the numbers are wrong.",
    ],
)
def test_preprocess_splits_a_sentence_with_two_statements(preprocessor, text):
    assert unit_texts(preprocessor, text) == [
        "The export button does nothing",
        "The numbers are wrong" + ("." if text.endswith(".") else ""),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "I open the report and it crashes every time I scroll down.",  # "it" refers back
        "The chart and the table are empty.",  # one subject, one statement
        "The export works but slow.",  # the right side is no statement
        "I click export and then nothing happens for a minute.",
        # a contrast says more about the same thing
        "I paid in a foreign currency but the exchange rate applied is wrong.",
        # a follow-up that names nothing new joins its statement
        "Where is my new card? I have been waiting a week!",
        "I accidentally blocked my PIN. How do I reset it?",
        "I lost my card yesterday. What should I do?",
        # a sentence that points back continues the one before
        "My card was declined at the ATM. It worked fine in the shop this morning.",
        "The wrong exchange rate was applied to my purchase. Can this be changed?",
    ],
)
def test_preprocess_keeps_one_statement_whole(preprocessor, text):
    assert unit_texts(preprocessor, text) == [text]


@pytest.mark.parametrize("text", ["How can I top up?", "Why is the chart empty?"])
def test_preprocess_keeps_statements_made_of_common_words(preprocessor, text):
    # "top", "empty" are on spaCy's stop list but name what the ticket is about.
    (unit,) = process_one(preprocessor, text).units
    assert unit.text == text and unit.lemmas


@pytest.mark.parametrize(
    ("text", "opens"),
    [
        ("The export button does nothing. The numbers in the forecast are wrong.", [False, False]),
        ("The export button does nothing. Also, the forecast numbers are wrong.", [False, True]),
        ("The export button does nothing. PS: the forecast numbers are wrong.", [False, True]),
        ("- the export button is broken\n- wrong totals in the forecast table", [True, True]),
        ("The export button does nothing and also the forecast numbers are wrong.", [False, True]),
    ],
)
def test_preprocess_marks_statements_that_open_a_new_topic(preprocessor, text, opens):
    assert [u.opens_topic for u in process_one(preprocessor, text).units] == opens


def test_units_carry_their_place_in_the_redacted_text(preprocessor):
    result = process_one(preprocessor, "Hi, the CSV export fails and the totals are wrong. Thanks")
    assert [result.redacted_text[u.start : u.end] for u in result.units] == [
        "the CSV export fails",
        "the totals are wrong.",
    ]
    joined = UnitText.joined(result.units, result.redacted_text)
    assert joined.text == "The CSV export fails and the totals are wrong."
    assert joined.lemmas == ["csv", "export", "fail", "total", "wrong"]


def test_join_same_topic_joins_close_neighbours_unless_a_new_topic_opens():
    units = [
        UnitText("a", []),
        UnitText("b", []),
        UnitText("c", []),
        UnitText("d", [], opens_topic=True),
    ]
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.0, 1.0]])
    # b is close to a (0.8); c is compared with its neighbour b (0.6), not with a (0.0)
    assert join_same_topic(units, vectors, min_similarity=0.7) == [[0, 1], [2], [3]]
    assert join_same_topic(units, vectors, min_similarity=0.5) == [[0, 1, 2], [3]]
    assert join_same_topic(units, vectors, min_similarity=1.01) == [[0], [1], [2], [3]]


def test_preprocess_drops_greetings_and_sign_offs(preprocessor):
    text = (
        "Hi team,\nHope you're doing well.\nThe forecast chart loads forever.\n"
        "Thanks in advance!\nBest regards,\nAnna Schmidt\nHead of Data, Acme Corp\n"
        "Sent from my iPhone"
    )
    assert unit_texts(preprocessor, text) == ["The forecast chart loads forever."]


def test_preprocess_drops_a_signature_block(preprocessor):
    text = (
        "My chat history vanished after a page refresh.\n\n"
        "Dr. Helen Marsh\nhelen.marsh@example.com\n+1 555 0125"
    )
    result = process_one(preprocessor, text)
    assert result.redactions == {"PERSON": 1, "EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert [unit.text for unit in result.units] == [
        "My chat history vanished after a page refresh."
    ]


def test_preprocess_drops_a_greeting_that_opens_the_sentence(preprocessor):
    text = "Hello Maria, the CSV export drops the last column."
    assert unit_texts(preprocessor, text) == ["The CSV export drops the last column."]


def test_preprocess_keeps_content_after_thanks(preprocessor):
    text = "Thanks!\nAlso the export is broken."
    assert unit_texts(preprocessor, text) == ["Also the export is broken."]
    text = "Thanks for the quick fix, but the numbers are still wrong."
    assert unit_texts(preprocessor, text) == [text]


def test_preprocess_drops_introductions(preprocessor):
    text = "Hi, I'm Sarah from Acme. The forecast chart loads forever."
    assert unit_texts(preprocessor, text) == ["The forecast chart loads forever."]


def test_preprocess_merges_short_fragments_into_a_neighbour(preprocessor):
    assert unit_texts(preprocessor, "Terrible. The export button does nothing.") == [
        "Terrible. The export button does nothing."
    ]
    assert unit_texts(preprocessor, "The export button does nothing. So annoying!") == [
        "The export button does nothing. So annoying!"
    ]


def test_preprocess_splits_lines_of_a_list(preprocessor):
    text = "- the export button is broken\n- wrong totals in the forecast table"
    assert unit_texts(preprocessor, text) == [
        "The export button is broken",
        "Wrong totals in the forecast table",
    ]


def test_preprocess_min_unit_words_is_configurable(preprocessor, monkeypatch):
    monkeypatch.setattr(preprocessor.nlp.get_pipe("triage_units"), "min_unit_words", 1)
    monkeypatch.setattr(preprocessor.nlp.get_pipe("triage_units"), "min_topic_words", 1)
    assert unit_texts(preprocessor, "Terrible. The export button does nothing.") == [
        "Terrible.",
        "The export button does nothing.",
    ]


def test_preprocess_build_nlp_is_a_blank_pipeline_with_lookup_lemmas():
    nlp = build_nlp(min_unit_words=2, split_conjunctions=False)
    # The sentencizer also starts a sentence after each line break; the lemmatizer looks
    # capitalised words up through their lowercase form (tests/unit/test_preprocess_components.py).
    assert nlp.pipe_names == ["sentencizer", "lemmatizer", "triage_units"]
    assert nlp.get_pipe("lemmatizer").mode == "lookup"
    assert nlp.meta["name"] == "pipeline"  # spacy.blank, no trained package
    doc = nlp("Awful. So slow. The export button does nothing and the numbers are wrong.")
    assert [unit.text for unit in doc._.triage_units] == [
        "Awful. So slow.",
        "The export button does nothing and the numbers are wrong.",
    ]


def test_preprocess_build_nlp_is_built_once_per_configuration():
    defaults = PreprocessParams()
    assert build_nlp() is build_nlp(min_unit_words=defaults.min_unit_words)
    assert build_nlp(min_unit_words=2) is not build_nlp()
    assert Preprocessor().nlp is build_nlp()


def test_preprocess_from_settings_passes_the_knobs(monkeypatch):
    monkeypatch.setenv("TRIAGE_PREPROCESS_MIN_UNIT_WORDS", "2")
    monkeypatch.setenv("TRIAGE_PREPROCESS_SPLIT_CONJUNCTIONS", "false")
    monkeypatch.setenv("TRIAGE_PREPROCESS_PHONE_REGIONS", '["GB"]')
    params = PreprocessParams.from_settings(Settings())
    assert params.min_unit_words == 2
    assert params.split_conjunctions is False
    assert params.phone_regions == ("GB",)
    received = []
    monkeypatch.setattr(Preprocessor, "__init__", lambda self, params: received.append(params))
    Preprocessor.from_settings(Settings())
    assert received == [params]


def test_preprocess_params_hold_every_preprocess_setting_and_its_default():
    defaults = {
        name.removeprefix("preprocess_"): field.default
        for name, field in Settings.model_fields.items()
        if name.startswith("preprocess_")
    }
    assert dataclasses.asdict(PreprocessParams()) == defaults


def test_preprocess_units_carry_lowercased_lemmas_without_stop_words(preprocessor):
    (unit,) = process_one(preprocessor, "Exports of the Numbers were failing for my data").units
    assert unit.lemmas == ["export", "number", "fail", "data"]


def test_preprocess_lemmas_skip_placeholders(preprocessor):
    result = process_one(preprocessor, "The email to jo@example.com bounced twice today")
    assert "<EMAIL>" in result.units[0].text
    assert result.units[0].lemmas == ["email", "bounce", "twice", "today"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "Hello",
        "Hi team,",
        "Thanks!\nJohn",
        "🙂🙂🙂",
        "https://example.com/report/123",
        "jo@example.com",
        "Sent from my iPhone",
    ],
)
def test_preprocess_yields_no_units_when_nothing_is_said(preprocessor, text):
    assert process_one(preprocessor, text).units == []


@pytest.mark.parametrize(
    "text", ["It's 40 not 45", "what does that have to do with anything", "no", "Why??"]
)
def test_preprocess_keeps_a_complaint_in_stop_words_and_numbers(preprocessor, text):
    # A chat reaction to a wrong answer can hold no content word at all; it is still one
    # statement (it used to fail as "Nothing to triage").
    assert [u.text.lower() for u in process_one(preprocessor, text).units] == [text.lower()]


# --- odd input --------------------------------------------------------------------------------


def test_preprocess_output_is_aligned_with_input(preprocessor):
    texts = ["", "The export fails.", "🙂", "Mail jo@example.com, the chart is empty."]
    results = preprocessor.process(texts)
    assert len(results) == len(texts)
    assert [len(r.units) for r in results] == [0, 1, 0, 1]


def test_preprocess_removes_nul_and_control_characters(preprocessor):
    result = process_one(preprocessor, "The\x00 export\x07 fails\r\nevery day at noon")
    assert result.redacted_text == "The export fails\nevery day at noon"


def test_preprocess_handles_rtl_text(preprocessor):
    text = "הייצוא לא עובד. التصدير لا يعمل والأرقام خاطئة"
    result = process_one(preprocessor, text)
    assert result.redacted_text == text
    assert result.units


def test_preprocess_handles_100k_characters(preprocessor):
    sentence = "The export button does nothing and the numbers are wrong. Mail jo@example.com. "
    text = (sentence * 2000)[:100_000]
    result = process_one(preprocessor, text)
    assert "jo@example.com" not in result.redacted_text
    assert len(result.units) > 1000


def test_preprocess_handles_10000_emoji(preprocessor):
    """spaCy's affix splitting is quadratic in a chunk without spaces (30 s before the fix; the
    speed is watched by `make bench`, not asserted here)."""
    results = preprocessor.process(["🙂" * 10_000, "🙂😡" * 5_000 + " the export fails every time"])
    assert results[0].units == []
    assert [unit.lemmas for unit in results[1].units] == [["export", "fail", "time"]]


def test_topic_units_keep_statement_vectors_and_average_joined_ones():
    text = "Alpha beta. Alpha beta gamma. Delta."
    units = [UnitText("Alpha beta.", [], start=0, end=11),
             UnitText("Alpha beta gamma.", [], start=12, end=29),
             UnitText("Delta.", [], start=30, end=36)]  # fmt: skip
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [-0.6, 0.8]])
    per_ticket, final = topic_units([(text, units)], vectors, min_similarity=0.5)
    assert [u.text for u in per_ticket[0]] == ["Alpha beta. Alpha beta gamma.", "Delta."]
    # Two words and three: the joined vector leans 2:3 towards the second, at unit length.
    mean = 2 * vectors[0] + 3 * vectors[1]
    assert np.allclose(final, [mean / np.linalg.norm(mean), vectors[2]])
