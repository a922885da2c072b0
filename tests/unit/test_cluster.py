import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from triage.cluster import (
    Clusterer,
    Clustering,
    ClusterParams,
    assign,
    calibrated_thresholds,
    facet_rows,
    impute_facets,
    in_wording_space,
    nearest_neighbors,
    normalize,
    smooth,
)
from triage.config import Settings
from triage.embed import FakeEmbedder
from triage.identity import LineageEvent, match_issues

DIM = 32


def directions(k: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((k, DIM)))


def around(center: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    """n unit vectors scattered around ``center``; ``spread`` is the expected noise norm."""
    noise = np.random.default_rng(seed).normal(0, spread / np.sqrt(DIM), (n, DIM))
    return normalize(center + noise)


def at_cosine(center: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine to ``center`` is exactly ``cosine``."""
    other = np.random.default_rng(seed).standard_normal(len(center))
    other = normalize(other - (other @ center) * center)
    return cosine * center + np.sqrt(1 - cosine**2) * other


def topics_phrased_many_ways(per_phrasing: int, *, topics=15, phrasings=6, seed=0):
    """Issues as feedback has them: each topic written several ways, each way by several
    customers. Returns (vectors, topic of each)."""
    vectors, truth = [], []
    for t, center in enumerate(directions(topics, seed)):
        for q, phrasing in enumerate(around(center, phrasings, 0.5, 100 * seed + t)):
            vectors.append(around(phrasing, per_phrasing, 0.15, 10_000 * seed + 100 * t + q))
            truth += [t] * per_phrasing
    return np.vstack(vectors), np.array(truth)


def blobs(sizes, *, spread=0.3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    centers = directions(len(sizes), seed)
    vectors = [
        around(center, n, spread, seed + 1 + i)
        for i, (center, n) in enumerate(zip(centers, sizes, strict=True))
    ]
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return np.vstack(vectors), truth


def as_sets(labels: np.ndarray, unit_ids=None) -> dict[int, set[int]]:
    unit_ids = np.arange(len(labels)) if unit_ids is None else np.asarray(unit_ids)
    return {
        int(label): set(unit_ids[labels == label].tolist())
        for label in np.unique(labels[labels >= 0])
    }


# --- Clusterer --------------------------------------------------------------------------------


def test_cluster_recovers_blobs():
    vectors, truth = blobs([60, 50, 40, 30, 20])
    clustering = Clusterer().fit(vectors)
    assert adjusted_rand_score(truth, clustering.labels) > 0.95
    # Only a unit far in its issue's tail (several spreads below its members) stays out.
    assert clustering.unassigned_share <= 0.01
    assert sorted(clustering.centroids) == [0, 1, 2, 3, 4]
    # Labels are numbered by size, largest first.
    sizes = [len(units) for units in clustering.clusters.values()]
    assert sizes == sorted(sizes, reverse=True)


def test_cluster_broad_issue_phrased_many_ways_stays_one_issue():
    # Regression (feedback history, bench/history.py): each issue is written a dozen ways, each
    # way by several customers. A smallest issue below the size of one phrasing's group (among
    # the units HDBSCAN looks at) gave one cluster per phrasing (329 clusters for 33 issues
    # there, 79 for 25 topics here): a phrasing group of 6 is below the smallest issue of 8.
    vectors, truth = topics_phrased_many_ways(per_phrasing=6, topics=25, phrasings=12, seed=1)
    clustering = Clusterer().fit(vectors)
    assert len(clustering.centroids) <= 1.2 * 25
    assert adjusted_rand_score(truth, clustering.labels) > 0.9


def test_cluster_same_input_gives_identical_output():
    vectors, _ = blobs([40, 40, 30, 8], spread=0.6)
    first = Clusterer().fit(vectors)
    second = Clusterer().fit(vectors.copy())
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.method, second.method)
    np.testing.assert_array_equal(first.similarity, second.similarity)
    assert first.centroids.keys() == second.centroids.keys()
    for label in first.centroids:
        np.testing.assert_array_equal(first.centroids[label], second.centroids[label])


def test_cluster_centroids_are_normalised_member_means_and_similarities_match():
    vectors, _ = blobs([40, 30])
    clustering = Clusterer().fit(vectors)
    for label, members in clustering.clusters.items():
        mean = vectors[members].mean(axis=0)
        np.testing.assert_allclose(clustering.centroids[label], mean / np.linalg.norm(mean), 1e-5)
        np.testing.assert_allclose(
            clustering.similarity[members], vectors[members] @ clustering.centroids[label], 1e-5
        )
    assert np.isnan(clustering.similarity[clustering.labels < 0]).all()


def test_cluster_leftover_near_an_issue_is_attached_and_a_far_one_is_not():
    center = directions(3)
    # Members sit at ~0.96 to their centre; 0.93 is within the issue's spread, 0 is not.
    near = [at_cosine(center[0], 0.93, seed) for seed in range(5)]
    far = normalize(np.random.default_rng(4).standard_normal((3, DIM)))  # off-topic
    issues = [around(center[0], 80, 0.3, 1), around(center[1], 80, 0.3, 2)]
    clustering = Clusterer().fit(np.vstack([*issues, near, far]))
    first = clustering.labels[0]
    assert (clustering.labels[160:165] == first).all()
    assert (clustering.labels[165:] == -1).all()
    assert set(clustering.method[clustering.labels < 0]) == {""}
    assert set(clustering.method[clustering.labels >= 0]) <= {"cluster", "assigned"}
    # Fewer spreads of slack leave more units out, never more than attach_max_share.
    stricter = Clusterer(ClusterParams(attach_deviations=0.5)).fit(np.vstack([*issues, near, far]))
    assert clustering.unassigned_share < stricter.unassigned_share <= 0.03


def test_cluster_attach_threshold_is_calibrated_per_issue():
    center = directions(2, seed=3)
    tight, broad = around(center[0], 60, 0.15, 1), around(center[1], 60, 0.9, 2)
    # 0.85 to the tight issue is far below its members (~0.99); 0.6 to the broad one is
    # ordinary there (~0.75): one global cosine could not take the second and refuse the first.
    probes = np.vstack([at_cosine(center[0], 0.85, 5), at_cosine(center[1], 0.6, 6)])
    clustering = Clusterer().fit(np.vstack([tight, broad, probes]))
    tight_label, broad_label = clustering.labels[0], clustering.labels[60]
    assert clustering.labels[-2] == -1
    assert clustering.labels[-1] == broad_label
    thresholds = clustering.thresholds
    assert thresholds[tight_label] > 0.85 > 0.6 > thresholds[broad_label]
    for label, members in clustering.clusters.items():
        assert (clustering.similarity[members] >= thresholds[label]).all()
    # New units between re-clusterings can be held to the same per-issue thresholds.
    labels, _ = assign(probes, clustering.centroids, threshold=thresholds)
    assert labels.tolist() == [-1, broad_label]


def test_cluster_calibrated_thresholds_ignore_a_few_outliers():
    similarity = np.array([0.8, 0.82, 0.78, 0.81, 0.79, 0.8, 0.1, 0.2] * 5)
    thresholds = calibrated_thresholds(similarity, np.zeros(40, int), deviations=3.0, max_share=0.5)
    # Median 0.795, median absolute deviation 0.015: the outliers at 0.1 and 0.2 barely move
    # it (the standard deviation would be 0.29).
    assert thresholds == {0: pytest.approx(0.795 - 3 * 1.4826 * 0.015, abs=1e-4)}


def test_cluster_calibrated_threshold_of_near_duplicates_is_not_narrower_than_usual():
    similarity = np.array([0.99] * 5 + [0.7, 0.8, 0.9] + [0.5, 0.6, 0.7])
    labels = np.array([0] * 5 + [1] * 3 + [2] * 3)
    thresholds = calibrated_thresholds(similarity, labels, deviations=2.0, max_share=0.5)
    usual = 1.4826 * 0.1  # issues 1 and 2; issue 0 has no spread at all
    assert thresholds[0] == pytest.approx(0.99 - 2 * usual, abs=1e-4)
    assert thresholds[1] == pytest.approx(0.8 - 2 * usual, abs=1e-4)


def test_cluster_never_lets_go_of_more_than_max_share():
    # A quarter of this issue sits far below the rest: by its spread every one of them is an
    # outlier, but only the lowest max_share of all members is let go.
    similarity = np.concatenate([np.full(30, 0.9), np.linspace(0.2, 0.4, 10)])
    labels = np.zeros(40, int)
    for max_share, let_go in ((0.05, 2), (0.5, 10)):
        threshold = calibrated_thresholds(similarity, labels, deviations=4.0, max_share=max_share)[
            0
        ]
        assert (similarity < threshold).sum() == let_go


def test_cluster_same_topics_at_any_size_give_the_same_issues():
    # The old rule sized the smallest issue as a share of the units. Now HDBSCAN looks at no
    # more than max_units units, so 25x more statements of the same topics, phrased the same
    # ways, give the same issues rather than one per phrasing.
    params = ClusterParams(max_units=400)
    for per_phrasing in (2, 5, 50):  # 360 units (all looked at), 900, 9,000
        vectors, truth = topics_phrased_many_ways(per_phrasing, topics=15, phrasings=12)
        clustering = Clusterer(params).fit(vectors)
        assert len(clustering.centroids) == 15
        assert adjusted_rand_score(truth, clustering.labels) > 0.95
        assert clustering.unassigned_share <= 0.05


def test_cluster_same_words_different_causes_are_different_issues():
    # Three topics; in each, half the statements come from tickets confidently of one cause and
    # half of another (one screen's redraw bug and its stale feed, in the same words).
    vectors, topic = blobs([40, 40, 40], spread=0.3, seed=3)
    cause_of = np.arange(len(vectors)) % 2
    causes = np.where(cause_of[:, None] == 0, [0.9, 0.1, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0])
    truth = topic * 2 + cause_of

    wording = Clusterer().fit(vectors)
    both = Clusterer().fit(vectors, causes=causes)
    assert adjusted_rand_score(topic, wording.labels) > 0.9  # words alone: one issue a topic
    assert adjusted_rand_score(truth, both.labels) > 0.9  # with causes: topic and cause
    assert len(both.centroids) == 6

    # Centroids, similarities and thresholds are in wording space, where new units are placed.
    for label, members in both.clusters.items():
        centroid = both.centroids[label]
        assert centroid.shape == (vectors.shape[1],)
        np.testing.assert_allclose(centroid, normalize(vectors[members].mean(axis=0)), atol=1e-5)
        np.testing.assert_allclose(both.similarity[members], vectors[members] @ centroid, atol=1e-5)
    # Each threshold is calibrated there on its members' words.
    deviations = ClusterParams().attach_deviations
    expected = calibrated_thresholds(
        both.similarity, both.labels, deviations=deviations, max_share=1.0
    )
    assert both.thresholds == pytest.approx(expected)


def test_in_wording_space_a_greeting_that_joined_for_its_ticket_does_not_open_the_issue():
    # An issue formed on words and context: 40 statements of its complaint and 3 greetings
    # that joined it for the tickets they are in, worded alike and far from the complaint.
    problems, _ = blobs([40], spread=0.3, seed=11)
    greeting = directions(1, seed=12)[0]
    vectors = np.vstack([problems, around(greeting, 3, 0.2, seed=13)])
    labels = np.zeros(len(vectors), dtype=np.int64)
    joined = Clustering(labels, {}, np.zeros(len(vectors)), np.full(len(vectors), "cluster"))
    params = ClusterParams()
    issue = in_wording_space(vectors, joined, deviations=params.attach_deviations)
    # The greetings stay members, below the threshold set by the complaint's statements...
    assert (issue.labels == 0).all()
    assert (issue.similarity[40:] < issue.thresholds[0]).all()
    assert (issue.similarity[:40] >= issue.thresholds[0]).all()
    # ...so a new greeting, placed on its words alone, does not join, and a new complaint does.
    new_greetings = around(greeting, 5, 0.2, seed=14)
    assert (assign(new_greetings, issue.centroids, threshold=issue.thresholds)[0] == -1).all()
    new_complaints = around(normalize(problems.mean(axis=0)), 5, 0.3, seed=15)
    assert (assign(new_complaints, issue.centroids, threshold=issue.thresholds)[0] == 0).all()


def test_cluster_cause_weight_zero_clusters_on_wording_alone():
    vectors, _ = blobs([40, 40, 40], spread=0.3, seed=3)
    causes = np.eye(4)[np.arange(len(vectors)) % 2]
    off = Clusterer(ClusterParams(cause_weight=0)).fit(vectors, causes=causes)
    np.testing.assert_array_equal(off.labels, Clusterer().fit(vectors).labels)


def test_facet_rows_count_each_units_linked_features():
    rows = facet_rows([["bot/chat"], ["bot/chat", "bot/chat", "bot/search"], []])
    assert rows is not None and rows.shape == (3, 2)  # columns: bot/chat, bot/search
    np.testing.assert_allclose(rows[0], [1.0, 0.0])
    np.testing.assert_allclose(rows[1], normalize(np.array([2.0, 1.0])), rtol=1e-6)
    np.testing.assert_allclose(rows[2], [0.0, 0.0])  # no linked output: unknown
    # One feature, or none, tells no unit from another.
    assert facet_rows([["bot/chat"], [], ["bot/chat"]]) is None
    assert facet_rows([[], []]) is None


def test_cluster_same_words_same_cause_different_features_are_different_issues():
    # Two topics; in each, half the statements come from tickets linked to outputs of one
    # feature and half of another (one model fault in test generation, another in inline
    # completion, worded alike). A fifth of each half has no linked output.
    vectors, topic = blobs([60, 60], spread=0.3, seed=5)
    feature_of = np.arange(len(vectors)) % 2
    linked = (np.arange(len(vectors)) // 2) % 5 != 0
    names = [
        [f"coder/{'tests' if f else 'inline'}"] if ok else []
        for f, ok in zip(feature_of, linked, strict=True)
    ]
    facets = facet_rows(names)
    truth = topic * 2 + feature_of

    both = Clusterer().fit(vectors, facets=facets)
    assert adjusted_rand_score(truth[linked], both.labels[linked]) > 0.9
    assert len(both.centroids) == 4
    # Unlinked statements join their topic's issues, taking their nearest statements' feature.
    for members in both.clusters.values():
        assert len(set(topic[members])) == 1
        assert linked[members].mean() > 0.6
    assert both.unassigned_share <= 0.05
    off = Clusterer(ClusterParams(feature_weight=0)).fit(vectors, facets=facets)
    np.testing.assert_array_equal(off.labels, Clusterer().fit(vectors).labels)


def test_cluster_a_statement_that_names_no_problem_is_read_in_its_ticket_s_context():
    # Three complaints, 30 tickets each. Every ticket has one statement naming its problem and
    # one that names none ("Could you take a look?"), worded alike in every ticket.
    problems, topic = blobs([30, 30, 30], spread=0.3, seed=7)
    filler = around(directions(1, seed=8)[0], len(problems), 0.3, seed=9)
    vectors = np.vstack([problems, filler])
    ticket = np.concatenate([np.arange(len(problems))] * 2)
    whole = normalize(problems + filler)  # each ticket's vector: both statements read as one
    contexts = whole[ticket]

    def topics_per_issue(clustering: Clustering) -> list[int]:
        return [len(set(topic[ticket[members]])) for members in clustering.clusters.values()]

    alone = Clusterer().fit(vectors)
    read_in_context = Clusterer().fit(vectors, contexts=contexts)
    # On their own words, the statements that name no problem are one issue of every topic's
    # tickets.
    assert max(topics_per_issue(alone)) == 3
    # Read in their tickets' context, every issue holds the tickets of one complaint.
    assert topics_per_issue(read_in_context) == [1] * len(read_in_context.centroids)
    assert read_in_context.unassigned_share <= 0.05
    off = Clusterer(ClusterParams(context_weight=0)).fit(vectors, contexts=contexts)
    np.testing.assert_array_equal(off.labels, alone.labels)


def test_impute_facets_fills_unknown_rows_from_the_nearest_known_units():
    vectors = normalize(
        np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0.95, 0.05, 0]])
    )
    facets = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [0, 0]], dtype=np.float32)
    filled = impute_facets(vectors, facets, neighbors=1)
    np.testing.assert_allclose(filled[:3], facets[:3])  # known rows are kept
    np.testing.assert_allclose(filled[3], [0, 1])  # worded like unit 2
    np.testing.assert_allclose(filled[4], [1, 0])  # worded like units 0 and 1
    np.testing.assert_allclose(impute_facets(vectors, np.zeros((5, 2)), neighbors=1), 0)


def test_cluster_every_issue_has_at_least_min_issue_size_units():
    class WithASliver:
        def fit(self, x):
            self.labels_ = np.repeat([0, 1, 2], [30, 27, 3])  # 3 units of blob 1 split off
            return self

    vectors, _ = blobs([30, 30])
    clustering = Clusterer(hdbscan_model=WithASliver()).fit(vectors)
    sizes = [len(units) for units in clustering.clusters.values()]
    assert sorted(sizes) == [30, 30]
    assert min(sizes) >= ClusterParams().min_issue_size


def test_cluster_a_direction_every_unit_shares_does_not_join_issues():
    # Embeddings of one product's feedback share a large common component; measured from the
    # data's own mean, it is no evidence that two issues are one.
    vectors, truth = blobs([40, 40, 40, 40], spread=0.3, seed=2)
    shared = normalize(np.random.default_rng(9).standard_normal(DIM))
    clustering = Clusterer().fit(normalize(vectors + 2.5 * shared))
    assert len(clustering.centroids) == 4
    assert adjusted_rand_score(truth, clustering.labels) > 0.95


def test_cluster_small_tight_issue_survives_smoothing():
    big, _ = blobs([80, 80, 80], spread=0.5)
    small = around(directions(1, seed=9)[0], 10, 0.1, 10)
    clustering = Clusterer().fit(np.vstack([big, small]))
    small_labels = set(clustering.labels[-10:].tolist())
    assert len(small_labels) == 1 and -1 not in small_labels
    assert (clustering.labels[:-10] != small_labels.pop()).all()


def test_cluster_nearest_neighbors_are_exact():
    rng = np.random.default_rng(5)
    vectors = normalize(rng.standard_normal((300, DIM)))
    for n_reference, k in ((1000, 8), (130, 8), (20, 5), (3, 8)):
        reference = normalize(rng.standard_normal((n_reference, DIM)))
        found = nearest_neighbors(vectors, reference, k)
        expected = np.argsort(-(vectors @ reference.T), axis=1)[:, : min(k, n_reference)]
        np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(expected, axis=1))


def test_cluster_smooth_pulls_units_towards_their_neighbours():
    vectors, _ = blobs([20, 20], spread=0.8)
    smoothed = smooth(vectors, np.arange(len(vectors)), neighbors=5, steps=2)
    np.testing.assert_allclose(np.linalg.norm(smoothed, axis=1), 1.0, rtol=1e-5)
    centroid = normalize(vectors[:20].mean(axis=0))
    assert (smoothed[:20] @ centroid).mean() > (vectors[:20] @ centroid).mean() + 0.1
    assert smooth(vectors, np.arange(5), neighbors=5, steps=0) is vectors


def test_cluster_too_few_units_are_left_unassigned():
    empty = Clusterer().fit(np.empty((0, DIM), dtype=np.float32))
    assert empty.labels.shape == (0,) and empty.centroids == {}
    few = Clusterer().fit(directions(3))
    assert (few.labels == -1).all() and few.centroids == {}


def test_cluster_samples_above_max_units_and_assigns_the_rest():
    vectors, truth = blobs([150, 150, 100, 100])
    params = ClusterParams(max_units=120)
    clustering = Clusterer(params).fit(vectors)
    assert adjusted_rand_score(truth, clustering.labels) > 0.95
    assert (clustering.method == "cluster").sum() <= 120
    assert (clustering.method == "assigned").sum() >= len(vectors) - 120
    again = Clusterer(params).fit(vectors)
    np.testing.assert_array_equal(again.labels, clustering.labels)
    np.testing.assert_array_equal(again.method, clustering.method)  # the same sample


def test_cluster_uses_the_models_passed_in():
    class Halves:
        def fit(self, x):
            self.labels_ = (np.arange(len(x)) >= len(x) // 2).astype(int)
            return self

    class Identity:
        def fit_transform(self, x):
            return x

    vectors, _ = blobs([30, 30])
    clustering = Clusterer(
        ClusterParams(smooth_steps=0, merge_similarity=1.0, attach_deviations=100.0),
        reducer=Identity(),
        hdbscan_model=Halves(),
    ).fit(vectors)
    assert sorted(np.bincount(clustering.labels).tolist()) == [30, 30]


def test_cluster_fake_embedder_texts_group_by_topic():
    topics = {
        "export": "the csv export button {} fails",
        "stale": "prices shown are stale since {}",
        "wrong": "the assistant answered refunds wrongly {}",
    }
    fillers = ["today", "again", "for me", "on monday", "every time", "since update", "badly"]
    texts, truth = [], []
    for topic, template in topics.items():
        for i, filler in enumerate(fillers * 2):
            texts.append(template.format(f"{filler} {i}"))
            truth.append(topic)
    vectors = FakeEmbedder().embed(texts)
    clustering = Clusterer(ClusterParams(min_issue_size=4)).fit(vectors)
    assert adjusted_rand_score(truth, clustering.labels) > 0.8


def test_cluster_params_default_to_settings():
    defaults = Settings()
    assert ClusterParams() == ClusterParams.from_settings(defaults)
    custom = ClusterParams.from_settings(Settings(cluster_reduce_dims=12, cluster_max_units=900))
    assert (custom.reduce_dims, custom.max_units) == (12, 900)


def test_cluster_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("TRIAGE_CLUSTER_ATTACH_DEVIATIONS", "2.5")
    monkeypatch.setenv("TRIAGE_CLUSTER_MIN_ISSUE_SIZE", "12")
    params = ClusterParams.from_settings(Settings())
    assert (params.attach_deviations, params.min_issue_size) == (2.5, 12)


# --- incremental assignment -------------------------------------------------------------------


def test_cluster_assign_places_new_units_near_their_issue():
    vectors, _ = blobs([40, 40, 40])
    clustering = Clusterer().fit(vectors)
    new = np.vstack([around(vectors[0], 1, 0.2, 20), around(vectors[-1], 1, 0.2, 21)])
    labels, similarity = assign(new, clustering.centroids, threshold=0.5)
    assert labels.tolist() == [clustering.labels[0], clustering.labels[-1]]
    assert (similarity >= 0.5).all()


def test_cluster_assign_leaves_units_below_threshold_out():
    centroids = {3: np.array([1.0, 0.0]), 7: np.array([0.0, 1.0])}
    labels, similarity = assign(
        np.array([[1.0, 0.1], [-1.0, -1.0], [1.0, 1.0]]), centroids, threshold=0.8
    )
    assert labels.tolist() == [3, -1, -1]  # the diagonal is 0.71 from both
    assert np.isnan(similarity[1:]).all()
    # A tie goes to the lowest label.
    labels, _ = assign(np.array([[1.0, 1.0]]), centroids, threshold=0.5)
    assert labels.tolist() == [3]


def test_cluster_assign_without_issues_leaves_everything_out():
    labels, similarity = assign(directions(4), {}, threshold=0.0)
    assert labels.tolist() == [-1] * 4 and np.isnan(similarity).all()


def match(previous, clusters, previous_centroids=None, cluster_centroids=None, **kwargs):
    return match_issues(
        previous,
        previous_centroids or {},
        clusters,
        cluster_centroids or {},
        min_overlap=kwargs.get("min_overlap", 0.3),
        min_similarity=kwargs.get("min_similarity", 0.85),
    )


def test_cluster_identity_kept_across_recluster_with_added_data():
    old_vectors, _ = blobs([50, 40, 30])
    first = Clusterer().fit(old_vectors)
    # The database numbered the issues its own way.
    issue_ids = {label: 100 + 10 * label for label in first.centroids}
    previous = {issue_ids[k]: units for k, units in as_sets(first.labels).items()}
    previous_centroids = {issue_ids[k]: c for k, c in first.centroids.items()}

    centers = directions(3)
    new_vectors = np.vstack([around(c, 25, 0.3, 50 + i) for i, c in enumerate(centers[::-1])])
    second = Clusterer().fit(np.vstack([old_vectors, new_vectors]))
    result = match_issues(
        previous,
        previous_centroids,
        as_sets(second.labels),
        second.centroids,
        min_overlap=0.3,
        min_similarity=0.85,
    )
    assert result.lineage == [] and result.retired == set()
    for unit, old_label in ((0, first.labels[0]), (60, first.labels[60]), (100, first.labels[100])):
        assert result.issue_for_cluster[int(second.labels[unit])] == issue_ids[int(old_label)]


def test_cluster_identity_split_largest_piece_keeps_the_id():
    previous = {1: set(range(60))}
    clusters = {0: set(range(20)), 1: set(range(20, 60)) | {100, 101}}
    result = match(previous, clusters)
    assert result.issue_for_cluster == {0: None, 1: 1}
    assert result.lineage == [LineageEvent("split_from", cluster=0, issue_id=1, shared_units=20)]
    assert result.retired == set()


def test_cluster_identity_merge_larger_overlap_survives():
    previous = {1: set(range(40)), 2: set(range(40, 60)), 3: set(range(60, 90))}
    clusters = {0: set(range(60)), 1: set(range(60, 90))}
    result = match(previous, clusters)
    assert result.issue_for_cluster == {0: 1, 1: 3}
    assert result.lineage == [
        LineageEvent("merged_into", cluster=0, issue_id=2, into_issue_id=1, shared_units=20)
    ]
    assert result.retired == set()


def test_cluster_identity_small_overlap_is_neither_split_nor_merge():
    previous = {1: set(range(100)), 2: set(range(100, 200))}
    clusters = {0: set(range(95)) | set(range(100, 110)), 1: set(range(110, 200))}
    result = match(previous, clusters)
    assert result.issue_for_cluster == {0: 1, 1: 2}
    assert result.lineage == []


def test_cluster_identity_a_few_strays_are_not_a_split():
    previous = {1: set(range(100))}
    clusters = {0: set(range(95)), 1: set(range(95, 100)) | set(range(200, 300))}
    result = match(previous, clusters)
    assert result.issue_for_cluster == {0: 1, 1: None}
    assert result.lineage == []


def test_cluster_identity_issue_without_successor_is_retired():
    previous = {1: set(range(30)), 2: set(range(30, 40))}
    previous_centroids = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0])}
    clusters = {0: set(range(30)), 1: {500, 501, 502}}
    cluster_centroids = {0: np.array([1.0, 0.0]), 1: np.array([-1.0, 0.2])}
    result = match(previous, clusters, previous_centroids, cluster_centroids)
    assert result.issue_for_cluster == {0: 1, 1: None}
    assert result.retired == {2}


def test_cluster_identity_new_units_where_an_old_issue_was_continue_it():
    # Issue 7's units were deleted; a cluster of only new units sits where it was.
    previous = {7: {1, 2, 3}, 8: {4, 5, 6}}
    previous_centroids = {7: np.array([1.0, 0.0, 0.0]), 8: np.array([0.0, 1.0, 0.0])}
    clusters = {0: {4, 5, 6}, 1: {10, 11, 12}, 2: {20, 21}}
    cluster_centroids = {
        0: np.array([0.0, 1.0, 0.0]),
        1: np.array([0.95, 0.05, 0.0]),
        2: np.array([0.0, 0.0, 1.0]),
    }
    result = match(previous, clusters, previous_centroids, cluster_centroids)
    assert result.issue_for_cluster == {0: 8, 1: 7, 2: None}
    assert result.retired == set()
    # Below min_similarity the old issue is retired and the cluster is new.
    strict = match(previous, clusters, previous_centroids, cluster_centroids, min_similarity=0.999)
    assert strict.issue_for_cluster[1] is None and strict.retired == {7}


def test_cluster_identity_ties_break_deterministically():
    previous = {5: set(range(20))}
    clusters = {3: set(range(10)), 1: set(range(10, 20))}
    first = match(previous, clusters)
    assert first.issue_for_cluster == {3: None, 1: 5}  # equal overlap: the lower label keeps it
    assert first.lineage == [LineageEvent("split_from", cluster=3, issue_id=5, shared_units=10)]
    assert match(previous, dict(reversed(clusters.items()))) == first


def test_cluster_identity_never_gives_one_id_to_two_clusters():
    rng = np.random.default_rng(3)
    previous = {i: set(rng.choice(300, 40, replace=False).tolist()) for i in range(10)}
    clusters = {k: set(rng.choice(300, 50, replace=False).tolist()) for k in range(12)}
    result = match(previous, clusters, min_overlap=0.1)
    ids = [i for i in result.issue_for_cluster.values() if i is not None]
    assert len(ids) == len(set(ids))
    merged = {e.issue_id for e in result.lineage if e.kind == "merged_into"}
    assert not merged & set(ids)
    assert not result.retired & (merged | set(ids))
    assert result.retired | merged | set(ids) == set(previous)


@pytest.mark.parametrize("min_overlap", [0.2, 0.5])
def test_cluster_identity_empty_previous_makes_everything_new(min_overlap):
    result = match({}, {0: {1, 2}, 1: {3}}, min_overlap=min_overlap)
    assert result.issue_for_cluster == {0: None, 1: None}
    assert result.lineage == [] and result.retired == set()
