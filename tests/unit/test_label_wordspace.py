"""Where a title candidate's words point (``triage.label.wordspace``) and how titles use it.
Hand-written statements and deterministic fake vectors; nothing from a data set."""

from __future__ import annotations

import numpy as np

from triage.label import label_issues, titles
from triage.label.keywords import term_counts
from triage.label.wordspace import WordSpace


def _space(lemmas: list[list[str]], labels: list[int], dim: int = 8) -> WordSpace:
    """Each issue's statements on one axis of its own, so words point where they are used."""
    vectors = np.zeros((len(labels), dim), dtype=np.float32)
    for row, label in enumerate(labels):
        vectors[row, label] = 1.0
    centroids = np.eye(max(labels) + 1, dim, dtype=np.float32)
    counted = term_counts(lemmas)
    assert counted is not None
    return WordSpace.build(*counted, vectors, centroids)


SYNC = [["calendar", "sync", "drop"], ["calendar", "sync", "stall"], ["sync", "calendar", "fail"]]
EXPORT = [["export", "button", "dead"], ["export", "button", "blank"], ["button", "export"]]


def test_wordspace_margin_is_positive_for_the_issue_whose_statements_use_the_words():
    space = _space(SYNC + EXPORT, [0, 0, 0, 1, 1, 1])
    margins = space.margins([{"calendar", "sync"}, {"calendar", "sync"}], [0, 1])
    assert margins[0] > 0.5 > -0.5 > margins[1]


def test_wordspace_margin_is_zero_without_a_known_word_or_another_issue():
    space = _space(SYNC + EXPORT, [0, 0, 0, 1, 1, 1])
    assert space.margins([{"weather", "lunch"}, set()], [0, 1]).tolist() == [0.0, 0.0]
    alone = _space(SYNC, [0, 0, 0])
    assert alone.margins([{"calendar"}], [0]).tolist() == [0.0]


def test_wordspace_word_used_once_weighs_less_than_one_used_by_many():
    """A clause holding an issue's common words and one word another issue used once still
    points at its own issue."""
    lemmas = [*SYNC, *EXPORT, ["export", "button", "brightwater"]]
    space = _space(lemmas, [0, 0, 0, 1, 1, 1, 1])
    with_name = [*SYNC[:1], ["export", "brightwater"]]
    space_name = _space([*lemmas, *with_name], [0, 0, 0, 1, 1, 1, 1, 0, 1])
    assert space.margins([{"calendar", "sync", "brightwater"}], [0])[0] > 0
    assert space_name.margins([{"calendar", "brightwater"}], [0])[0] > 0


def test_wordspace_ignores_phrases_of_several_words():
    space = _space(SYNC + EXPORT, [0, 0, 0, 1, 1, 1])
    assert all(" " not in word for word in space.columns)
    assert {"calendar", "sync", "export", "button"} <= set(space.columns)


def test_choose_titles_prefers_a_clause_whose_words_point_at_its_issue():
    """Two statements alike in every other respect (no keywords, same closeness and margin):
    the more central one wins without word margins, the one in this issue's words with them."""
    texts = ["Meeting notes export looks wrong", "Calendar sync drops recurring events"]
    context = titles.TitleContext(
        keywords=[],
        central=np.array([0, 1]),
        closeness=np.array([0.9, 0.9]),
        margin=np.array([0.1, 0.1]),
        position=0,
    )
    space = _space(SYNC + EXPORT + [["meeting", "note"]], [0, 0, 0, 1, 1, 1, 1])
    plain = titles.choose_titles({7: context}, texts, max_words=12, candidates=5)
    assert plain[7] == "Meeting notes export looks wrong"
    found = titles.choose_titles({7: context}, texts, max_words=12, candidates=5, words=space)
    assert found[7] == "Calendar sync drops recurring events"


# Two issues about one calendar product. Issue 0's most central statement is context that uses
# issue 1's words; its other statements share their own words. Hand-written.
SHARED = [
    "Meeting notes export looks off for the weekly review",
    "Calendar sync drops recurring events overnight",
    "Recurring events vanish after the calendar sync",
    "The calendar sync keeps dropping recurring events",
]
NOTES = [
    "Meeting notes export loses headings",
    "Exported meeting notes come out without headings",
    "The meeting notes export strips every heading",
]


def _lemmas(texts: list[str]) -> list[list[str]]:
    return [[w.lower() for w in text.split() if len(w) > 3] for text in texts]


def _vectors(labels: list[int], central: int) -> np.ndarray:
    """Issue ``label`` around axis ``label``; row ``central`` exactly on its issue's axis."""
    rng = np.random.default_rng(3)
    vectors = np.zeros((len(labels), 16))
    for row, label in enumerate(labels):
        vectors[row, label] = 1.0
        if row != central:
            vectors[row] += 0.3 * rng.normal(size=16)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_label_title_words_point_at_their_own_issue():
    """The most central statement names the other issue's thing; the title names this one's."""
    texts = SHARED + NOTES
    labels = [0] * len(SHARED) + [1] * len(NOTES)
    found = label_issues(labels, texts, _lemmas(texts), _vectors(labels, central=0))
    title = found[0].title.lower()
    assert "calendar" in title or "events" in title
    assert "notes" not in title
