"""Full names anywhere in a ticket (``triage.preprocess.pii_fullnames``), redacted the way a
user sees it: through ``Redactor.redact``."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.preprocess import Redactor, pii_fullnames
from triage.preprocess.cues import possible_entities
from triage.preprocess.pii_fullnames import CensusPairs, derived_table


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Our regional manager Dennis Walsh asked for the export twice.",
            "Our regional manager <PERSON> asked for the export twice.",
        ),
        # Pairs are tried at every word: "Ask Dennis" is none, "Dennis Walsh" is one.
        ("Ask Dennis Walsh about the import.", "Ask <PERSON> about the import."),
        ("Escalated to Helen Ortiz-Lane in billing", "Escalated to <PERSON> in billing"),
        ("Mary Ann Hill saw it too", "<PERSON> saw it too"),
        (
            "Both Gloria Fenwick and Tobias Marsh lost their drafts.",
            "Both <PERSON> and <PERSON> lost their drafts.",
        ),
        # A courtesy title names a person whatever the name: the surname is in no list here.
        ("Dr. Okonkwo-Baptiste reviewed the draft.", "<PERSON> reviewed the draft."),
        (
            "Then Ms Ferreira called and Dr. Dennis Walsh agreed.",
            "Then <PERSON> called and <PERSON> agreed.",
        ),
    ],
)
def test_a_full_name_anywhere_is_redacted(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact([text]) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "The Bill Pay screen froze again.",  # a first name and a surname, both ordinary words
        "My Rose Gold case shows as grey in the picker.",
        "The sync failed on Sun Sep 14 at noon.",  # a day and a month
        "Will Smith keeps showing up in the cast list.",  # "will" is a stop word
        "dennis walsh asked for the export twice.",  # lowercase: not read as a name
        "The Export Button does nothing.",  # neither word is a census name
        "Dr. who? The drive letter is wrong.",  # a title with no name after it
    ],
)
def test_words_that_only_look_like_names_stay(redactor: Redactor, text: str) -> None:
    assert redactor.redact([text]) == [text]


def test_the_cue_lets_a_full_name_through_to_presidio_and_nothing_else() -> None:
    assert "PERSON" in possible_entities("please loop in Dennis Walsh on this")
    assert "PERSON" not in possible_entities("The Export Button does nothing")


def test_the_derived_table_is_built_once_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By default in the user cache, where the ONNX export is kept too.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = derived_table()
    assert len(built["first"]) > 5000 and len(built["last"]) > 80_000
    assert built["first"]["Dennis"] > 0 and built["last"]["Walsh"] > 0
    (cached,) = (tmp_path / "triage" / "names").iterdir()
    assert cached.name.startswith("census-lift-names-")

    def no_rebuild() -> None:
        raise AssertionError("built again although the cache holds the table")

    build = pii_fullnames._build
    monkeypatch.setattr(pii_fullnames, "_build", no_rebuild)
    assert derived_table() == built
    # A damaged cache file is rebuilt, not trusted.
    cached.write_text("{not json", encoding="utf-8")
    monkeypatch.setattr(pii_fullnames, "_build", build)
    assert derived_table() == built


def test_a_pair_is_a_name_when_its_words_read_as_names_on_balance() -> None:
    table = {"first": {"Grace": -0.7, "Bill": -2.5}, "last": {"Liu": 2.2, "Pay": -3.0}}
    pairs = CensusPairs(table, stop_words=())
    assert pairs.names("Grace Liu said so") == [(0, 9)]
    assert pairs.names("Bill Pay said so") == []
    assert pairs.search("Bill Pay said so")  # the cue is a superset of what is redacted


def test_a_cache_that_cannot_be_written_still_gives_the_table_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pii_fullnames.json, "dump", full_disk)
    table = derived_table(tmp_path)
    assert table["first"]["Dennis"] > 0
    assert list(tmp_path.iterdir()) == []
