"""The learned combiner (``triage.categorize.combiner``) and the ticket context it reads, on
hand-built feature rows: what it learns, what it drops, and how it is saved."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from triage.categorize import CATEGORIES, SignalScore
from triage.categorize.combiner import (
    COMBINER_FILE,
    FEATURE_GROUPS,
    FEATURES,
    LearnedCombiner,
    feature_vector,
    fit_combiner,
)
from triage.categorize.context import TicketContext, TicketLinks, ticket_contexts
from triage.categorize.learned import _context_reason, decide_learned_many
from triage.link import OutputRecord

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
PRODUCTS = ["alpha", "beta", "gamma", "delta"]


def rows(n_per_product: int = 40, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Feature rows where the classifier's scores and the reaction flag carry the label and the
    cue scores are noise."""
    rng = np.random.default_rng(seed)
    x, labels, groups = [], [], []
    for product in PRODUCTS:
        for i in range(n_per_product):
            label = CATEGORIES[i % len(CATEGORIES)]
            row = np.zeros(len(FEATURES))
            p = np.full(4, 0.1) + rng.uniform(0, 0.05, 4)
            # The classifier is wrong one time in five (it names the next category); a quick
            # reaction marks nine model rows in ten.
            index = CATEGORIES.index(label)
            p[index if i % 5 else (index + 1) % len(CATEGORIES)] += 0.6
            for j, name in enumerate(CATEGORIES):
                row[FEATURES.index(f"classifier_log_p_{name}")] = np.log(p[j] + 1e-3)
                row[FEATURES.index(f"cues_{name}")] = rng.uniform()
            row[FEATURES.index(FEATURE_GROUPS["reaction"][0])] = float(
                label == "model" and rng.uniform() < 0.9
            )
            x.append(row)
            labels.append(label)
            groups.append(product)
    return np.array(x), labels, groups


@pytest.fixture(scope="module")
def combiner() -> LearnedCombiner:
    x, labels, groups = rows()
    return fit_combiner(x, labels, groups)


def test_combiner_learns_weights_and_roundtrips_through_npz(combiner, tmp_path):  # type: ignore[no-untyped-def]
    x, labels, _ = rows(seed=1)
    predicted = [combiner.classes[i] for i in combiner.predict_proba(x).argmax(axis=1)]
    assert np.mean(np.array(predicted) == np.array(labels)) > 0.7  # the classifier alone: 0.8
    row = combiner.classes.index("model")
    weights = dict(zip(combiner.feature_names, combiner.coef[row], strict=True))
    assert weights["classifier_log_p_model"] > 0
    # The reaction carries the label in these rows, and it is learned like the others.
    assert weights["reacted_within_10_min"] > 0 and "reaction" in combiner.groups

    combiner.save(tmp_path)
    with zipfile.ZipFile(tmp_path / COMBINER_FILE) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    loaded = LearnedCombiner.load(tmp_path)  # np.load(allow_pickle=False) inside
    assert loaded.feature_names == combiner.feature_names
    np.testing.assert_allclose(loaded.predict_proba(x), combiner.predict_proba(x))
    assert loaded.card["coefficients"]["model"]["classifier_log_p_model"] == pytest.approx(
        weights["classifier_log_p_model"]
    )
    # Where its cross-validated decisions turn more often wrong than right (``abstain``).
    assert 0 < combiner.uncertain_below < 1
    assert loaded.uncertain_below == combiner.uncertain_below
    assert loaded.card["uncertain"]["below"] == combiner.uncertain_below
    assert loaded.card["uncertain"]["accuracy_at_or_above"] >= 0.5


def test_combiner_saved_before_the_uncertain_threshold_marks_nothing(combiner, tmp_path):  # type: ignore[no-untyped-def]
    """A classifier folder trained before ``abstain`` has no threshold: it loads with 0, and no
    decision is said to be uncertain."""
    combiner.save(tmp_path)
    with np.load(tmp_path / COMBINER_FILE) as arrays:
        old = {name: arrays[name] for name in arrays.files if name != "uncertain_below"}
    np.savez_compressed(tmp_path / COMBINER_FILE, **old)
    loaded = LearnedCombiner.load(tmp_path)
    assert loaded.uncertain_below == 0.0
    x, _, _ = rows(n_per_product=4, seed=2)
    assert np.allclose(loaded.predict_proba(x), combiner.predict_proba(x))


def test_combiner_gives_no_weight_to_a_group_with_nothing_in_it(combiner):  # type: ignore[no-untyped-def]
    left_out = combiner.card["groups_without_weight"]
    # Empty groups (examples, words, outputs, context here) carry nothing.
    for group in ("examples", "words", "outputs", "context"):
        assert group not in combiner.groups and "never vary" in left_out[group]
        assert not any(name in combiner.feature_names for name in FEATURE_GROUPS[group])
    # Noise (the cues) does not raise the held-out macro-F1 beyond chance when removed.
    assert combiner.groups == ["classifier", "cues", "reaction"]


def test_combiner_without_a_reaction_in_its_rows_leaves_it_to_the_hand_set_prior():
    x, labels, groups = rows(n_per_product=20, seed=3)
    x[:, FEATURES.index(FEATURE_GROUPS["reaction"][0])] = 0.0  # no labelled quick reaction
    combiner = fit_combiner(x, labels, groups)
    assert "reaction" not in combiner.groups
    reason = combiner.card["groups_without_weight"]["reaction"]
    assert "never vary" in reason and "TRIAGE_CATEGORIZE_REACTION_PRIOR" in reason


def test_combiner_keeps_two_signals_that_say_the_same_thing():
    # The words repeat the classifier: removing either alone costs nothing and gains nothing,
    # which is no reason to remove one (the old rule removed whichever a near-tie picked).
    x, labels, groups = rows()
    for name in CATEGORIES:
        x[:, FEATURES.index(f"words_log_p_{name}")] = x[
            :, FEATURES.index(f"classifier_log_p_{name}")
        ]
    combiner = fit_combiner(x, labels, groups)
    cv = combiner.card["cv"]
    assert cv["macro_f1_without"]["words"] >= cv["macro_f1_all_groups"] - 0.02
    assert {"classifier", "words"} <= set(combiner.groups)
    assert not cv["backward_elimination"] or all(
        "reason" in step for step in cv["backward_elimination"]
    )


def test_combiner_removes_a_group_whose_removal_helps_beyond_chance():
    # A noisy classifier and three groups of noise on few rows per product, barely
    # regularised: the fit overfits the noise, and removing the cues raises the held-out
    # products' macro-F1 by more than luck would (t 3.3 against 2.59 needed, this seed).
    rng = np.random.default_rng(1)
    x, labels, groups = [], [], []
    for product in range(12):
        for i in range(8):
            label = CATEGORIES[i % len(CATEGORIES)]
            row = np.zeros(len(FEATURES))
            for name in CATEGORIES:
                row[FEATURES.index(f"classifier_log_p_{name}")] = (name == label) + rng.normal(
                    scale=0.8
                )
                for noise in (f"cues_{name}", f"examples_{name}", f"words_log_p_{name}"):
                    row[FEATURES.index(noise)] = rng.normal()
            x.append(row)
            labels.append(label)
            groups.append(f"p{product}")
    combiner = fit_combiner(np.array(x), labels, groups, c=1000.0)
    removed = {s["group"]: s for s in combiner.card["cv"]["backward_elimination"] if "t" in s}
    assert list(removed) == ["cues"] and removed["cues"]["t"] > removed["cues"]["t_needed"]
    assert "classifier" in combiner.groups and "cues" not in combiner.groups
    assert "beyond chance" in combiner.card["groups_without_weight"]["cues"]


def test_combiner_decision_explains_each_signal_and_reads_a_quick_reaction(combiner):  # type: ignore[no-untyped-def]
    neutral = {name: 0.25 for name in CATEGORIES}
    scored = {
        "classifier": SignalScore(neutral, {n: f"classifier gives {n} 0.25" for n in neutral})
    }
    quick = TicketContext(linked=True, minutes_after_output=2.0)
    # The reaction is learned here (the prior is 0, as the Categorizer passes it then).
    calm, reaction = decide_learned_many(combiner, [scored, scored], [TicketContext(), quick])
    assert reaction.category == "model" and calm.category != "model"
    assert reaction.confidence == reaction.probabilities["model"]
    by_signal = {e.signal: e for e in reaction.evidence}
    assert set(by_signal) == {"classifier", "cues", "reaction"}
    assert by_signal["reaction"].category == "model" and by_signal["reaction"].contribution > 0
    assert by_signal["reaction"].reason == (
        "written 2 minutes after the answer it is about: a quick reaction"
    )
    # A late one says so, in the unit a person would use.
    late = [TicketContext(linked=True, minutes_after_output=m) for m in (1.0, 185.0, 4320.0)]
    decided = decide_learned_many(combiner, [scored] * 3, late)
    assert [next(e.reason for e in d.evidence if e.signal == "reaction") for d in decided] == [
        "written 1 minute after the answer it is about: a quick reaction",
        "written 3 hours after the answer it is about: not a quick reaction",
        "written 3 days after the answer it is about: not a quick reaction",
    ]


def test_combiner_feature_vector_follows_the_documented_layout():
    scored = {"cues": SignalScore({"ui": 1.0}, {"ui": "cue words: button"})}
    context = TicketContext(linked=True, stale_share=0.5, version_log_lift=1.2)
    row = feature_vector(scored, context)
    assert row.shape == (len(FEATURES),)
    assert row[FEATURES.index("cues_ui")] == 1.0 and row[FEATURES.index("outputs_linked")] == 1
    assert row[FEATURES.index("stale_share")] == 0.5
    assert row[FEATURES.index("version_log_lift")] == 1.2
    assert row[FEATURES.index("classifier_log_p_ui")] == pytest.approx(np.log(1e-3))


def output(i: int, version: str, minutes_before: float = 60.0) -> OutputRecord:
    return OutputRecord(id=i, output_id=f"o{i}", created_at=NOW - timedelta(minutes=minutes_before),
                        model="m", model_version=version, confidence=0.8)  # fmt: skip


def test_context_version_lift_leaves_the_ticket_out_and_marks_quick_reactions():
    traffic = [output(i, "1.0" if i % 2 else "2.0") for i in range(20)]
    suspect = [output(100 + i, "2.0", minutes_before=3.0) for i in range(4)]
    outputs = traffic + suspect
    tickets = {i: TicketLinks(NOW, [o]) for i, o in enumerate(suspect)}
    tickets[99] = TicketLinks(NOW, [])
    contexts = ticket_contexts(tickets, outputs)
    signals, context = contexts[0]
    assert signals is not None and context.linked and context.reacted
    # The other three complaints are all on 2.0, which served about half of the traffic.
    assert context.complaint_share == pytest.approx(3.5 / 4)
    assert context.version_log_lift > 0.4
    assert contexts[99] == (None, TicketContext())
    assert not TicketContext(minutes_after_output=45.0).reacted


def test_combiner_with_nothing_that_varies_still_fits_the_label_shares():
    x = np.zeros((16, len(FEATURES)))
    labels = ["ui", "data", "model", "model"] * 4
    combiner = fit_combiner(x, labels, ["a"] * 8 + ["b"] * 8)
    assert combiner.groups == ["classifier"]
    proba = dict(zip(combiner.classes, combiner.predict_proba(x[:1])[0], strict=True))
    assert proba["model"] == pytest.approx(0.5, abs=0.05)


def test_context_source_lift_finds_the_feed_the_complaints_pile_on():
    """Complaints whose outputs all read one feed that a tenth of traffic reads: the feed's
    lift is high, and the explanation names it; a complaint on common feeds has none."""

    def cited(i: int, *feeds: str, minutes_before: float = 60.0) -> OutputRecord:
        created = NOW - timedelta(minutes=minutes_before)
        sources = [{"id": feed, "as_of": created.date().isoformat()} for feed in feeds]
        return OutputRecord(
            id=i, output_id=f"o{i}", created_at=created, model="m", model_version="1.0",
            confidence=0.8, meta={"sources": sources},
        )  # fmt: skip

    traffic = [cited(i, "routes", "partner_feed" if i % 10 == 0 else "scans") for i in range(40)]
    suspect = [cited(100 + i, "routes", "partner_feed") for i in range(4)]
    ordinary = cited(200, "routes", "scans")
    tickets = {i: TicketLinks(NOW, [o]) for i, o in enumerate([*suspect, ordinary])}
    contexts = ticket_contexts(tickets, [*traffic, *suspect, ordinary])
    _, context = contexts[0]
    assert context.source == "partner_feed" and context.source_log_lift > 1.0
    # Three of the four other complaints read it (smoothed); about a sixth of traffic does.
    assert context.source_complaint_share == pytest.approx(3.5 / 5)
    assert context.source_traffic_share == pytest.approx((8 + 0.5) / (45 + 1))
    assert feature_vector({}, context)[FEATURES.index("source_log_lift")] == context.source_log_lift
    _, plain = contexts[4]
    assert plain.source_log_lift < 0.3 and contexts[0][1].version_log_lift == plain.version_log_lift
    reason = _context_reason("context", context)
    assert (
        "its source partner_feed is cited by 70% of that model's other linked complaints" in reason
    )
    assert "its source" not in _context_reason("context", plain)  # no feed over-represented
