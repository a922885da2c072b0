"""The words signal: a logistic regression over a ticket's word and word-pair TF-IDF.

The embedding says what a ticket is about (a product's screens and topics); which words it uses
for the failure ("stale", "button", "wish", "wrong") carry the cause across products. Measured
leave-one-product-out on feedback-dev with the learned combiner (tickets scored on their whole
text, fixtures' train split always in training), adding this signal raised the per-ticket
macro-F1 from 0.72 to between 0.74 and 0.79 at each of C 0.3, 1 and 3 and smallest document
frequency 1, 2 and 3; it uses scikit-learn's defaults (C 1, every word kept: 0.77) rather than
the best of that grid. On its own it scores about 0.55 (the embedding classifier alone, 0.51).
Like every signal its weight is the combiner's, learned by cross-validation, and it gets none when
removing it does not lower the cross-validated macro-F1.

Fitted with scikit-learn's ``TfidfVectorizer`` and ``LogisticRegression``; saved as arrays (the
vocabulary, idf, coefficients: ``words.npz``, loaded with ``allow_pickle=False``) rather than a
pickle, and applied with a ``CountVectorizer`` over the saved vocabulary plus the same
sublinear-tf, idf and L2 steps, which is what ``TfidfVectorizer.transform`` computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triage.categorize.classifier import logistic_proba
from triage.categorize.examples import LabelledExamples
from triage.placeholders import PLACEHOLDER

WORDS_FILE = "words.npz"
NGRAMS = (1, 2)
MIN_DF = 1  # scikit-learn's defaults, not the best of the grid in the module docstring
C = 1.0


# Redaction's placeholders ("<PERSON>", "<EMAIL>", "<CARD>") are no words a customer wrote:
# read as words they made "person" a cue of whichever category mentions people, and "<CARD>" the
# word "card". The vectorizers see the text without them, lowercased as scikit-learn's default.


def _without_placeholders(text: str) -> str:
    return PLACEHOLDER.sub(" ", text).lower()


def _counter(vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        ngram_range=NGRAMS, vocabulary=vocabulary, preprocessor=_without_placeholders
    )


@dataclass
class WordClassifier:
    classes: list[str]
    vocabulary: list[str]  # column order
    idf: np.ndarray
    coef: np.ndarray  # (n_classes, n_terms); (1, n_terms) for two classes
    intercept: np.ndarray
    # Built once: a CountVectorizer checks its whole vocabulary on its first transform.
    _counter: Any = field(default=None, init=False, repr=False, compare=False)
    _said: Any = field(default=None, init=False, repr=False, compare=False)

    def said(self) -> np.ndarray:
        """Per term, whether it says something a person can check: "the" or "it is" may weigh
        in the model, but are never shown as a reason."""
        if self._said is None:
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            self._said = np.array(
                [not all(t in ENGLISH_STOP_WORDS for t in term.split()) for term in self.vocabulary]
            )
        return self._said

    def features(self, texts: Sequence[str]) -> Any:
        from sklearn.preprocessing import normalize

        if self._counter is None:
            self._counter = _counter({term: i for i, term in enumerate(self.vocabulary)})
        counts = self._counter.transform(list(texts)).astype(np.float64).tocsr()
        # Sublinear tf times idf, on the stored entries only.
        counts.data = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
        return normalize(counts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(classes))`` probabilities."""
        return self.proba_of(self.features(texts))

    def proba_of(self, features: Any) -> np.ndarray:
        """Probabilities from ``features(texts)``."""
        return logistic_proba(np.asarray(features @ self.coef.T) + self.intercept)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / WORDS_FILE
        np.savez_compressed(
            path,
            classes=np.array(self.classes, dtype=str),
            vocabulary=np.array(self.vocabulary, dtype=str),
            idf=self.idf.astype(np.float64),
            coef=self.coef.astype(np.float64),
            intercept=self.intercept.astype(np.float64),
        )
        return path

    @classmethod
    def load(cls, folder: str | Path) -> WordClassifier:
        with np.load(Path(folder) / WORDS_FILE, allow_pickle=False) as arrays:
            return cls(
                classes=[str(c) for c in arrays["classes"]],
                vocabulary=[str(t) for t in arrays["vocabulary"]],
                idf=arrays["idf"],
                coef=arrays["coef"],
                intercept=arrays["intercept"],
            )


def train_words(
    examples: LabelledExamples,
    *,
    corrections: LabelledExamples | None = None,
    correction_weight: float = 1.0,
) -> WordClassifier | None:
    """Fit on the examples' texts (and people's corrections, each counted ``correction_weight``
    times); None when the texts share too few words or labels to fit on."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = list(examples.texts), list(examples.labels)
    weights = [1.0] * len(texts)
    if corrections is not None and len(corrections):
        texts += corrections.texts
        labels += corrections.labels
        weights += [correction_weight] * len(corrections)
    if len(set(labels)) < 2:
        return None
    vectorizer = TfidfVectorizer(
        ngram_range=NGRAMS, min_df=MIN_DF, sublinear_tf=True, preprocessor=_without_placeholders
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no term in two documents
        return None
    model = LogisticRegression(C=C, max_iter=2000).fit(matrix, labels, sample_weight=weights)
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return WordClassifier(
        classes=[str(c) for c in model.classes_],
        vocabulary=vocabulary,
        idf=vectorizer.idf_,
        coef=model.coef_,
        intercept=model.intercept_,
    )


def score_words_many(
    words: WordClassifier, tickets: Sequence[Sequence[str]], *, top: int = 3
) -> list[Any]:
    """The ``words`` signal for each ticket (its statements read as one text), in one pass over
    all of them. Each category's reason names the ticket's words that lean most towards it."""
    from triage.categorize.examples import CATEGORIES
    from triage.categorize.signals import SignalScore

    texts = [" ".join(statements) for statements in tickets]
    rows = words.features(texts)
    probabilities = words.proba_of(rows)
    coef = words.coef if words.coef.shape[0] > 1 else np.vstack([-words.coef, words.coef])
    said_mask = words.said()
    result = []
    for r, text in enumerate(texts):
        if not text.strip():
            result.append(SignalScore({}, {}))
            continue
        span = slice(rows.indptr[r], rows.indptr[r + 1])
        indices, values = rows.indices[span], rows.data[span]
        scores = {name: 0.0 for name in CATEGORIES}
        for name, p in zip(words.classes, probabilities[r], strict=True):
            scores[name] = float(p)
        reasons, leaning = {}, {}
        keep = said_mask[indices]  # the ticket's terms worth showing
        said = indices[keep]
        weights = coef[:, said] * values[keep]  # (classes, terms): each term towards each class
        for k, name in enumerate(words.classes):
            order = np.argsort(-weights[k])[:top]
            terms = [words.vocabulary[said[i]] for i in order if weights[k, i] > 0]
            leaning[name] = terms
            reasons[name] = (
                f"its words ({', '.join(repr(t) for t in terms)}) lean {name}: {scores[name]:.2f}"
                if terms
                else f"word model gives {name} {scores[name]:.2f}"
            )
        result.append(
            SignalScore(scores, reasons, {"probabilities": scores, "leaning_terms": leaning})
        )
    return result
