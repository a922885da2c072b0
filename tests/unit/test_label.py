"""The label stage: c-TF-IDF keywords, titles and representative quotes per issue."""

from __future__ import annotations

import re

import numpy as np
import pytest

from triage.errors import InvalidInputError
from triage.label import UNASSIGNED, class_tfidf_keywords, label_issues
from triage.label.clauses import clauses, tidy
from triage.label.words import FAILURE_LEMMAS

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
# Statements around one problem (the invoice preview shows the wrong currency) with what
# tickets wrap around it: a request, thanks, a greeting, the writer's role, versions, a date, a
# sentence's first half. Hand-written for these tests.
CURRENCY = [
    "Could you take a look?",
    "Thanks so much for the help!",
    "Hi team, hope you are all doing well.",
    "I'm the finance lead here.",
    "iOS 17.4, app 6.2.0",
    "It has been three weeks since March.",
    "What happens is",
    "The invoice preview shows the wrong currency symbol.",
    "Invoice preview shows dollars instead of euros for our EU accounts.",
    "Since Monday the currency in the invoice preview is wrong.",
]
WORD = re.compile(r"\w+(?:['’.]\w+)*")


def unit_vectors(labels: list[int], seed: int = 0, spread: float = 0.6) -> np.ndarray:
    """Deterministic fake embeddings: one random centre per label plus noise, L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = {label: rng.normal(size=16) for label in sorted(set(labels))}
    vectors = np.array([centres[label] + spread * rng.normal(size=16) for label in labels])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def centre_first(n: int, first: int, seed: int = 0, near: float = 0.0) -> np.ndarray:
    """``n`` vectors around one centre, the first ``first`` of them on it (within ``near``): the
    statements a title or the quotes would take if they went by centrality alone."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=16)
    vectors = np.array(
        [centre + (near if i < first else 0.8) * rng.normal(size=16) for i in range(n)]
    )
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def lemmas_of(texts: list[str]) -> list[list[str]]:
    """Crude lemmas for hand-built units: lowercased words of four letters or more."""
    return [[w.lower() for w in WORD.findall(t) if len(w) > 3] for t in texts]


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
        assert 3 <= len(words) <= 12
        assert issue.title[0].isupper()
        assert not issue.title.endswith((".", "!", "?", ","))
    assert {"export", "button"} <= set(issues[0].title.lower().split())
    assert "forecast" in issues[1].title.lower()


def test_label_title_is_never_a_request_pleasantry_or_context():
    """The wrappers are the most central statements here, and still never the title."""
    labels = [0] * len(CURRENCY)
    found = label_issues(labels, CURRENCY, lemmas_of(CURRENCY), centre_first(len(CURRENCY), 7))
    title = found[0].title
    assert all(title.rstrip(".!?") not in text for text in CURRENCY[:7])
    assert "preview" in title.lower() and "currency" in title.lower()


def test_label_title_names_a_noun_and_a_failure():
    texts = [
        "Honestly, the calendar sync is lovely otherwise.",
        "Shared calendar events are missing after the sync.",
        "The sync drops shared calendar events every night.",
        "Events from the shared calendar never arrive after a sync",
        "Calendar sync loses the shared events, again.",
    ]
    found = label_issues([0] * len(texts), texts, lemmas_of(texts), centre_first(len(texts), 1))
    words = {w.lower() for w in WORD.findall(found[0].title)}
    assert words & {"calendar", "events", "sync"}
    assert words & (FAILURE_LEMMAS | {"missing", "drops", "loses"})


def test_label_title_uses_only_the_statements_words():
    texts = [*CURRENCY, *(text for text, _ in EXPORT)]
    labels = [0] * len(CURRENCY) + [1] * len(EXPORT)
    found = label_issues(labels, texts, lemmas_of(texts), unit_vectors(labels))
    for cluster, issue in found.items():
        written = {
            w.lower()
            for text, label in zip(texts, labels, strict=True)
            if label == cluster
            for w in WORD.findall(text)
        }
        assert {w.lower() for w in WORD.findall(issue.title)} <= written


def test_label_title_drops_openers_and_stays_short():
    texts = [
        "Unrelated, but the offline mode banner never goes away after reconnecting to the office "
        "network, even when the data has synced.",
        "Separately: offline mode banner stays up after reconnecting.",
        "Quick one - offline banner stuck after reconnecting",
    ]
    found = label_issues([0, 0, 0], texts, lemmas_of(texts), centre_first(3, 1))
    title = found[0].title
    assert not title.lower().startswith(("unrelated", "separately", "quick one", "but"))
    assert "banner" in title.lower()
    assert len(title.split()) <= 12


def test_clauses_of_a_long_sentence_without_a_comma_are_cut_before_who_or_when():
    """A sentence too long for a title, with no comma or "because", still offers its head; a
    sentence that fits or has a weaker break is cut only there (hand-written)."""
    long = (
        "The scheduler moved my standup to Sunday for everyone who accepted the invite last month"
    )
    pieces = [c.text for c in clauses(long, max_words=12)]
    assert tidy("The scheduler moved my standup to Sunday for everyone") in pieces
    assert all(len(p.split()) <= 12 for p in pieces)
    short = "The scheduler moved my standup for everyone who accepted"
    assert [c.text for c in clauses(short, max_words=12)] == [tidy(short)]
    comma = (
        "The scheduler moved my standup to Sunday, for everyone who accepted the invite last month"
    )
    cut = [c.text for c in clauses(comma, max_words=12)]
    assert tidy("The scheduler moved my standup to Sunday") in cut
    assert tidy("The scheduler moved my standup to Sunday, for everyone") not in cut


def test_label_title_takes_what_a_request_asks_for_when_nothing_else_names_it():
    texts = [
        "Could you add a dark theme for the code editor?",
        "Please add a dark theme to the code editor.",
        "Can we get a dark theme in the code editor?",
    ]
    found = label_issues([0, 0, 0], texts, lemmas_of(texts), unit_vectors([0, 0, 0]))
    title = found[0].title.lower()
    assert "dark theme" in title
    assert not title.startswith(("could", "please", "can", "add", "get"))


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
        ("It wants edits (e.g. in place) to documents.", "It wants edits to documents"),
        ("My 1:1 summary lists wrong owners", "My 1:1 summary lists wrong owners"),
        ("Also, the export is broken!!", "Export is broken"),
    ],
)
def test_label_title_keeps_quotes_and_abbreviations_whole(text, title):
    found = label_issues([0], [text], [[]], unit_vectors([0]))
    assert found[0].title == title


def test_label_title_falls_back_to_keywords(corpus):
    labels = [0, 0]
    texts = ["Broken!!", "Export button: broken"]  # no clause of three words or more
    lemmas = [["broken"], ["export", "button", "broken"]]
    found = label_issues(labels, texts, lemmas, unit_vectors(labels))
    assert found[0].title.lower().startswith(found[0].keywords[0])


def test_label_quotes_come_from_the_cluster_and_are_distinct(corpus, issues):
    labels, texts, _, _ = corpus
    for cluster, issue in issues.items():
        members = {text for label, text in zip(labels, texts, strict=True) if label == cluster}
        assert set(issue.quotes) <= members
        assert 2 <= len(issue.quotes) <= 5
        normalised = [" ".join(q.lower().strip(".!").split()) for q in issue.quotes]
        assert len(set(normalised)) == len(normalised)
    # "The export button does nothing." and "the export button does nothing" are one quote.
    assert (
        sum(q.lower().startswith("the export button does nothing") for q in issues[0].quotes) == 1
    )


def test_label_quotes_start_with_the_most_central_unit():
    labels = [0, 0, 0, 0]
    texts = ["far away", "to the left", "the centre", "on the right side"]
    # Centroid direction (0.93, 0, 0.36): cosines 0.36, 0.75, 0.93, 0.75.
    vectors = np.array([[0, 0, 1], [0.8, 0.6, 0], [1, 0, 0], [0.8, -0.6, 0]], dtype=np.float32)
    found = label_issues(labels, texts, [[], [], [], []], vectors, n_quotes=4)
    assert found[0].quotes == ["the centre", "to the left", "on the right side", "far away"]
    assert label_issues(labels, texts, [[]] * 4, vectors, n_quotes=1)[0].quotes == ["the centre"]


def test_label_quotes_skip_near_duplicate_vectors():
    labels = [0, 0, 0, 0]
    texts = ["export broken", "the export does not work", "exporting fails", "numbers wrong"]
    same = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = np.array([same, same, same * 0.999 + [0, 0.001, 0], [0.0, 1.0, 0.0]])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    found = label_issues(labels, texts, [["export"]] * 3 + [["number"]], vectors)
    assert len(found[0].quotes) == 2
    assert found[0].quotes[0] in texts[:3] and found[0].quotes[1] == "numbers wrong"
    loose = label_issues(labels, texts, [["export"]] * 3 + [["number"]], vectors,
                         max_quote_similarity=1.0)  # fmt: skip
    assert len(loose[0].quotes) == 4


def test_label_quotes_are_one_statement_whatever_its_opener_or_typo():
    """Vectors far apart, as an opener or a typo moves them; the texts still say one thing."""
    texts = [
        "The sync button spins forever.",
        "Unrelated, but the sync button spins forever.",
        "Separately, the sync buton spins forever.",
        "PS: the sync button spins forever. 2 stars.",
        "Reports export with the wrong date format.",
    ]
    labels = [0] * len(texts)
    vectors = unit_vectors(list(range(len(texts))))  # no two alike
    found = label_issues(labels, texts, lemmas_of(texts), vectors)
    spinning = [q for q in found[0].quotes if "spins" in q]
    assert len(spinning) == 1
    assert texts[4] in found[0].quotes


def test_label_quotes_give_each_ticket_one_voice():
    texts = [f"The upload stalls at {p} percent on large files." for p in (10, 40, 70, 90)]
    texts += ["Large uploads never finish.", "Uploading big files hangs forever."]
    labels = [0] * len(texts)
    tickets = ["long-ticket"] * 4 + ["t2", "t3"]
    # The long ticket's statements are the most central.
    vectors = centre_first(len(texts), 4, near=0.1)
    found = label_issues(labels, texts, lemmas_of(texts), vectors, tickets=tickets)
    quotes = found[0].quotes
    assert sum(q in texts[:4] for q in quotes) == 1
    assert set(texts[4:]) <= set(quotes)
    # Without tickets every unit speaks for itself.
    free = label_issues(labels, texts, lemmas_of(texts), vectors,
                        max_quote_overlap=1.0, max_quote_similarity=1.0)  # fmt: skip
    assert sum(q in texts[:4] for q in free[0].quotes) > 1


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
    ("labels", "texts", "lemmas", "vectors", "tickets"),
    [
        ([0, 0], ["one"], [["one"], ["two"]], np.ones((2, 3)), None),
        ([0, 0], ["one", "two"], [["one"]], np.ones((2, 3)), None),
        ([0, 0], ["one", "two"], [["one"], ["two"]], np.ones((3, 3)), None),
        ([0, 0], ["one", "two"], [["one"], ["two"]], np.ones(2), None),
        ([0, 0], ["one", "two"], [["one"], ["two"]], np.ones((2, 3)), [1]),
    ],
)
def test_label_rejects_misaligned_inputs(labels, texts, lemmas, vectors, tickets):
    with pytest.raises(InvalidInputError):
        label_issues(labels, texts, lemmas, vectors, tickets=tickets)


def test_label_rejects_asking_for_no_keywords(corpus):
    with pytest.raises(InvalidInputError):
        label_issues(*corpus, n_keywords=0)


@pytest.mark.parametrize(
    "context",
    ["Our finance group keeps asking", "The warehouse crew tried", "Several buyers complained"],
)
def test_label_title_is_never_a_report_of_asking_or_trying(context):
    """A clause that ends on a verb of asking, saying or trying leaves out the point: even
    alone, it is no title."""
    found = label_issues([0], [context], lemmas_of([context]), unit_vectors([0]))
    assert found[0].title.lower() != tidy(context).lower()


def test_label_title_may_end_on_a_verb_that_states_the_failure():
    text = "The label printer keeps crashing"
    found = label_issues([0], [text], lemmas_of([text]), unit_vectors([0]))
    assert found[0].title == "Label printer keeps crashing"


@pytest.mark.parametrize(
    "fragment", ["With the previous layout", "Without the footer text", "For the bigger store"]
)
def test_label_title_is_never_a_phrase_cut_off_its_statement(fragment):
    """A clause that opens with a preposition and has no verb of its own is an adjunct, even
    with a failure word in it."""
    found = label_issues([0], [fragment], lemmas_of([fragment]), unit_vectors([0]))
    assert found[0].title.lower() != fragment.lower()


def test_label_title_may_open_with_a_preposition_when_it_states_something():
    text = "In dark mode the sidebar flickers"
    found = label_issues([0], [text], lemmas_of([text]), unit_vectors([0]))
    assert found[0].title == text


@pytest.mark.parametrize(
    "reaction",
    ["We would NOT renew the contract", "Our team is switching to another vendor next quarter"],
)
def test_label_title_is_never_what_the_customer_will_do(reaction):
    """A churn threat is a reaction to the issue, not its name: even the most central
    statement, negated ("not renew"), loses to one that names the failure."""
    texts = [reaction, "The nightly export drops the last column", reaction]
    found = label_issues([0] * 3, texts, lemmas_of(texts), centre_first(3, 1))
    assert found[0].title.lower() != tidy(reaction).lower()
    assert "export" in found[0].title.lower()


def test_label_title_may_name_a_failure_of_a_customer_action():
    text = "The cancel button freezes the checkout page"
    found = label_issues([0], [text], lemmas_of([text]), unit_vectors([0]))
    assert "freezes" in found[0].title


def test_label_title_may_say_what_the_product_does_with_a_customer_action_word():
    """Only the writer's own action is a reaction: the product recommending or a block named
    after buying may be the failure."""
    text = "The widget recommends winter coats to shoppers in July"
    found = label_issues([0], [text], lemmas_of([text]), unit_vectors([0]))
    assert "recommends" in found[0].title
