"""The words signal: a TF-IDF logistic regression saved as arrays and applied as scikit-learn
would, whose reasons name the ticket's own words, and which the combiner weighs like the rest."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from triage.categorize import CATEGORIES, DEFAULT_CUES, Categorizer, CueLexicon, LabelledExamples
from triage.categorize.combiner import FEATURES, feature_vector
from triage.categorize.context import TicketContext
from triage.categorize.words import WORDS_FILE, WordClassifier, score_words_many, train_words
from triage.embed import FakeEmbedder

TEXTS = {
    "ui": ["the save button is hidden under the menu", "the button overlaps the chart on mobile",
           "the menu covers the button", "text is cut off in the side panel"],
    "data": ["the prices are stale, from an old feed", "it shows last month's stale numbers",
             "the feed was not refreshed, stale data", "the catalog it reads is outdated"],
    "model": ["the answer is wrong and made up", "it invented a wrong total",
              "the reply made up a name, wrong again", "wrong reasoning in the last step"],
    "expectation": ["i wish it could export to excel", "please add a dark theme, i wish",
                    "would love it to support french", "i wish it remembered my settings"],
}  # fmt: skip


@pytest.fixture(scope="module")
def examples() -> LabelledExamples:
    texts = [t for group in TEXTS.values() for t in group]
    labels = [label for label, group in TEXTS.items() for _ in group]
    return LabelledExamples(texts, FakeEmbedder(dim=16).embed(texts), labels)


def test_words_predicts_as_scikit_learn_does_and_roundtrips_without_pickle(examples, tmp_path):  # type: ignore[no-untyped-def]
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = train_words(examples)
    assert words is not None
    path = words.save(tmp_path)
    assert path.name == WORDS_FILE
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    loaded = WordClassifier.load(tmp_path)
    unseen = ["the button is stale and wrong", "i wish the menu was bigger", "nothing in common"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=2000).fit(
        vectorizer.fit_transform(examples.texts), examples.labels
    )
    expected = model.predict_proba(vectorizer.transform(unseen))
    assert loaded.classes == list(model.classes_)
    np.testing.assert_allclose(loaded.predict_proba(unseen), expected, atol=1e-6)


def test_redaction_placeholders_are_not_words(examples):  # type: ignore[no-untyped-def]
    """ "<PERSON>" in every wish would make "person" a cue of expectation, and "<CARD>" the word
    "card": the words model reads the text without them."""
    texts = [*examples.texts, "<PERSON> asked: i wish it had <CARD> limits"]
    labels = [*examples.labels, "expectation"]
    words = train_words(LabelledExamples(texts, FakeEmbedder(dim=16).embed(texts), labels))
    assert words is not None
    assert not {"person", "card"} & {w for term in words.vocabulary for w in term.split()}
    assert "limits" in words.vocabulary
    with_placeholder, without = words.predict_proba(
        ["<EMAIL> the button is hidden", "the button is hidden"]
    )
    np.testing.assert_allclose(with_placeholder, without)


def test_words_reasons_name_the_tickets_own_words(examples):  # type: ignore[no-untyped-def]
    words = train_words(examples)
    assert words is not None
    [scored] = score_words_many(words, [["The numbers are stale.", "They come from an old feed."]])
    assert max(scored.scores, key=scored.scores.get) == "data"
    assert "'stale'" in scored.reasons["data"]
    assert sum(scored.scores.values()) == pytest.approx(1.0)
    assert score_words_many(words, [["  "]])[0].scores == {}


def test_words_needs_two_categories_and_shared_words():
    one = LabelledExamples(["a b", "a c"], np.zeros((2, 4), dtype=np.float32), ["ui", "ui"])
    assert train_words(one) is None


def test_categorizer_scores_words_into_the_combiners_layout(examples):  # type: ignore[no-untyped-def]
    words = train_words(examples)
    categorizer = Categorizer(CueLexicon.load(DEFAULT_CUES), words=words)
    scored = categorizer.signal_scores(["i wish it had a dark theme"], np.zeros((1, 16)), None)
    assert max(scored["words"].scores, key=scored["words"].scores.get) == "expectation"
    row = feature_vector(scored, TicketContext())
    p = scored["words"].scores
    for name in CATEGORIES:
        assert row[FEATURES.index(f"words_log_p_{name}")] == pytest.approx(np.log(p[name] + 1e-3))


def test_words_scores_many_tickets_in_one_pass_as_one_at_a_time(examples):  # type: ignore[no-untyped-def]
    words = train_words(examples)
    assert words is not None
    tickets = [["The menu hides the button."], ["It is stale.", "An old feed."], ["  "], ["the"]]
    categorizer = Categorizer(CueLexicon.load(DEFAULT_CUES), words=words)
    batch = categorizer.words_scores(tickets)
    for texts, scored in zip(tickets, batch, strict=True):
        [alone] = score_words_many(words, [texts])
        assert scored is not None and scored.reasons == alone.reasons
        assert scored.scores == pytest.approx(alone.scores)
    # Stop words weigh in the model but are never given as a reason.
    assert all("'the'" not in reason for reason in batch[3].reasons.values())
    assert Categorizer(CueLexicon.load(DEFAULT_CUES)).words_scores(tickets) == [None] * 4
