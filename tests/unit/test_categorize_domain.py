"""Each ticket read against its own product (``triage.categorize.domain``)."""

from __future__ import annotations

import itertools

import numpy as np

from triage.categorize.domain import (
    PRIOR_TICKETS,
    WINDOW_TICKETS,
    DomainCentre,
    centre,
    centre_groups,
    ladder_window,
    shrunk_mean,
)


def test_centring_removes_what_a_products_tickets_share():
    # The same eight causes, written for two products whose tickets each share a direction.
    rng = np.random.default_rng(0)
    causes = rng.normal(size=(400, 16)).astype(np.float32)
    a, b = 4 * rng.normal(size=16), 4 * rng.normal(size=16)
    vectors = np.vstack([causes + a, causes + b])
    plain = np.sum(vectors[:400] * vectors[400:], axis=1) / (
        np.linalg.norm(vectors[:400], axis=1) * np.linalg.norm(vectors[400:], axis=1)
    )
    centred, prior = centre_groups(vectors, ["a"] * 400 + ["b"] * 400)
    # Each cause now reads almost the same in both products, which it did not before.
    same = np.sum(centred[:400] * centred[400:], axis=1)
    assert np.median(plain) < 0.9 < np.median(same)
    np.testing.assert_allclose(np.linalg.norm(centred, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(prior, vectors.mean(axis=0), atol=1e-4)  # equal-sized groups


def test_the_prior_counts_as_a_few_tickets_of_the_training_products_average():
    prior = np.zeros(3, dtype=np.float32)
    np.testing.assert_allclose(shrunk_mean(np.empty((0, 3)), prior), prior)
    one = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(shrunk_mean(one, prior), one[0] / (1 + PRIOR_TICKETS))
    many = np.tile(one, (1000, 1))
    assert shrunk_mean(many, prior)[0] > 0.98


def test_a_centre_is_known_by_its_digest_and_nothing_is_centred_without_one():
    vectors = np.eye(3, dtype=np.float32)
    assert DomainCentre().apply(vectors) is vectors and DomainCentre().digest == ""
    mean = np.array([0.5, 0.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(DomainCentre(mean).apply(vectors), centre(vectors, mean))
    assert DomainCentre(mean).digest == DomainCentre(mean.copy()).digest
    assert DomainCentre(mean).digest != DomainCentre(mean + 1e-3).digest


def test_the_window_moves_only_at_the_ladders_steps_and_stays_bounded():
    stops = [ladder_window(n)[1] for n in range(1, 100_000)]
    steps = sorted(set(stops))
    assert steps[:9] == [1, 2, 4, 5, 8, 11, 16, 22, 32]
    # Each step at most sqrt(2) times the one before (rounded down), so a database that grows
    # tenfold moves its window about seven times.
    assert all(later <= 1.5 * earlier for earlier, later in itertools.pairwise(steps[4:]))
    assert all(stop <= n for n, stop in enumerate(stops, start=1))
    for n in (1, 50, 5_000, 99_999):
        start, stop = ladder_window(n)
        assert 0 < stop - start <= WINDOW_TICKETS
    assert ladder_window(0) == (0, 0)


def test_a_saved_classifier_keeps_what_it_centres_on(tmp_path):
    from triage.categorize import CategoryClassifier, train_classifier

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(12, 8)).astype(np.float32)
    centred, prior = centre_groups(vectors, ["a"] * 6 + ["b"] * 6)
    labels = ["ui", "data"] * 6
    texts = [f"ticket {i}" for i in range(12)]
    train_classifier(texts, centred, labels, domain_prior=prior).save(tmp_path / "centred")
    loaded = CategoryClassifier.load(tmp_path / "centred")
    np.testing.assert_array_equal(loaded.domain_prior, prior)
    assert "centred" in loaded.card["vectors"]
    train_classifier(texts, vectors, labels).save(tmp_path / "plain")
    assert CategoryClassifier.load(tmp_path / "plain").domain_prior is None
