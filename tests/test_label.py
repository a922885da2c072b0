"""The label stage: c-TF-IDF keywords, titles and representative quotes per issue."""

from __future__ import annotations

import numpy as np
import pytest

from triage.errors import InvalidInputError
from triage.label import UNASSIGNED, class_tfidf_keywords, label_issues

EXPORT = [
    ("The export button does nothing.", ["export", "button"]),
    ("Clicking the export button does nothing at all", ["click", "export", "button"]),
    ("Export button is dead since the update", ["export", "button", "dead", "update"]),
    ("Nothing happens when I press the export button!", ["happen", "press", "export", "button"]),
    ("the export button does nothing", ["export", "button"]),
    (
        "Export to CSV button not responding in the app",
        ["export", "csv", "button", "respond", "app"],
    ),
]
NUMBERS = [
    ("The numbers in the forecast are wrong.", ["number", "forecast", "wrong"]),
    ("Forecast shows wrong revenue numbers", ["forecast", "show", "wrong", "revenue", "number"]),
    ("Wrong numbers in the Q3 forecast", ["wrong", "number", "forecast"]),
    ("The forecast totals don't add up in the app", ["forecast", "total", "add", "app"]),
]
BACKGROUND = [
    ("I love the app", ["love", "app"]),
    ("Dark mode please", ["dark", "mode"]),
    ("The app is slow sometimes", ["app", "slow"]),
]


def unit_vectors(labels: list[int], seed: int = 0, spread: float = 0.3) -> np.ndarray:
    """Deterministic fake embeddings: one random centre per label plus noise, L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = {label: rng.normal(size=16) for label in sorted(set(labels))}
    vectors = np.array([centres[label] + spread * rng.normal(size=16) for label in labels])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[int], list[str], list[list[str]], np.ndarray]:
    units = [(0, *u) for u in EXPORT] + [(1, *u) for u in NUMBERS]
    units += [(UNASSIGNED, *u) for u in BACKGROUND]
    labels = [label for label, _, _ in units]
    return (
        labels,
        [text for _, text, _ in units],
        [lemmas for _, _, lemmas in units],
        unit_vectors(labels),
    )


@pytest.fixture(scope="module")
def issues(corpus):
    return label_issues(*corpus)


def test_label_labels_every_cluster_but_not_the_unassigned(issues):
    assert sorted(issues) == [0, 1]


def test_label_keywords_reflect_the_cluster(issues):
    assert issues[0].keywords[:2] == ["button", "export"]
    assert "export button" in issues[0].keywords
    assert {"forecast", "number", "wrong"} <= set(issues[1].keywords[:4])
    assert not {"export", "button"} & set(issues[1].keywords)
    assert len(issues[0].keywords) == 8


def test_label_keywords_weigh_down_words_common_to_all_classes():
    """c-TF-IDF: "app" is as frequent as "crash" in the cluster but appears everywhere."""
    labels = np.array([0, 0, 1, 1, UNASSIGNED, UNASSIGNED])
    lemmas = [
        ["app", "crash"],
        ["app", "crash"],
        ["app", "slow"],
        ["app", "slow"],
        ["app"],
        ["app"],
    ]
    keywords = class_tfidf_keywords(labels, lemmas, n_keywords=3)
    assert keywords[0] == ["app crash", "crash", "app"]  # equal scores in term order
    assert UNASSIGNED not in keywords


def test_label_keywords_never_bridge_two_units():
    labels = np.array([0, 0])
    keywords = class_tfidf_keywords(labels, [["export"], ["button"]], n_keywords=10)
    assert keywords[0] == ["button", "export"]


def test_label_title_reads_like_an_issue(issues):
    for issue in issues.values():
        words = issue.title.split()
        assert 3 <= len(words) <= 8
        assert issue.title[0].isupper()
        assert not issue.title.endswith((".", "!", "?"))
    assert "export button" in issues[0].title.lower()
    assert "forecast" in issues[1].title.lower()


def test_label_title_never_shows_placeholders_or_links():
    texts = [
        "Mail <EMAIL> when the export button breaks",
        "See https://example.com/a for the export button",
        "The export button is broken",
    ]
    labels = [0, 0, 0]
    lemmas = [["mail", "export", "button", "break"], ["export", "button"], ["export", "button"]]
    found = label_issues(labels, texts, lemmas, unit_vectors(labels))
    assert found[0].title == "Export button is broken"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("The forecast column is labelled 'Actual'.", "Forecast column is labelled 'Actual'"),
        ("It wants edits (e.g. in place) to documents.", "Unnamed issue"),
        ("My 1:1 summary lists wrong owners", "My 1:1 summary lists wrong owners"),
        ("Also, the export is broken!!", "Export is broken"),
    ],
)
def test_label_title_keeps_quotes_and_abbreviations_whole(text, title):
    found = label_issues([0], [text], [[]], unit_vectors([0]))
    assert found[0].title == title


def test_label_title_falls_back_to_keywords(corpus):
    labels = [0, 0]
    texts = ["Broken!!", "Export button: broken"]  # no clause of 3-8 words
    lemmas = [["broken"], ["export", "button", "broken"]]
    found = label_issues(labels, texts, lemmas, unit_vectors(labels))
    assert found[0].title == f"Problems with {found[0].keywords[0]}"


def test_label_quotes_come_from_the_cluster_and_are_distinct(corpus, issues):
    labels, texts, _, _ = corpus
    for cluster, issue in issues.items():
        members = {text for label, text in zip(labels, texts, strict=True) if label == cluster}
        assert set(issue.quotes) <= members
        assert 3 <= len(issue.quotes) <= 5
        normalised = [" ".join(q.lower().strip(".!").split()) for q in issue.quotes]
        assert len(set(normalised)) == len(normalised)
    # "The export button does nothing." and "the export button does nothing" are one quote.
    assert normalised.count("the export button does nothing") <= 1
    assert (
        sum(q.lower().startswith("the export button does nothing") for q in issues[0].quotes) == 1
    )


def test_label_quotes_start_with_the_most_central_unit():
    labels = [0, 0, 0, 0]
    texts = ["far away", "left of centre", "the centre", "right of centre"]
    # Centroid direction (0.93, 0, 0.36): cosines 0.36, 0.75, 0.93, 0.75.
    vectors = np.array([[0, 0, 1], [0.8, 0.6, 0], [1, 0, 0], [0.8, -0.6, 0]], dtype=np.float32)
    found = label_issues(labels, texts, [[], [], [], []], vectors, n_quotes=4)
    assert found[0].quotes == ["the centre", "left of centre", "right of centre", "far away"]
    assert label_issues(labels, texts, [[]] * 4, vectors, n_quotes=1)[0].quotes == ["the centre"]


def test_label_quotes_skip_near_duplicate_vectors():
    labels = [0, 0, 0, 0]
    texts = ["export broken", "export is broken", "export broke", "numbers wrong"]
    same = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = np.array([same, same, same * 0.999 + [0, 0.001, 0], [0.0, 1.0, 0.0]])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    found = label_issues(labels, texts, [["export"]] * 3 + [["number"]], vectors)
    assert len(found[0].quotes) == 2
    assert found[0].quotes[0] in texts[:3] and found[0].quotes[1] == "numbers wrong"
    loose = label_issues(labels, texts, [["export"]] * 3 + [["number"]], vectors,
                         max_quote_similarity=1.0)  # fmt: skip
    assert len(loose[0].quotes) == 4


def test_label_handles_clusters_without_lemmas():
    labels = [3, 3, 3]
    texts = ["🙂", "<EMAIL>", "ok"]
    found = label_issues(labels, texts, [[], [], []], unit_vectors(labels))
    assert found[3].keywords == []
    assert found[3].title


def test_label_returns_nothing_without_clusters():
    assert label_issues([], [], [], np.zeros((0, 4), dtype=np.float32)) == {}
    labels = [UNASSIGNED, UNASSIGNED]
    assert label_issues(labels, ["a b c", "d e f"], [["a"], ["d"]], unit_vectors(labels)) == {}


@pytest.mark.parametrize(
    ("labels", "texts", "lemmas", "vectors"),
    [
        ([0, 0], ["one"], [["one"], ["two"]], np.ones((2, 3))),
        ([0, 0], ["one", "two"], [["one"]], np.ones((2, 3))),
        ([0, 0], ["one", "two"], [["one"], ["two"]], np.ones((3, 3))),
        ([0, 0], ["one", "two"], [["one"], ["two"]], np.ones(2)),
    ],
)
def test_label_rejects_misaligned_inputs(labels, texts, lemmas, vectors):
    with pytest.raises(InvalidInputError):
        label_issues(labels, texts, lemmas, vectors)


def test_label_rejects_asking_for_no_keywords(corpus):
    with pytest.raises(InvalidInputError):
        label_issues(*corpus, n_keywords=0)
