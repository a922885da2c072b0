"""The scoring behind `make eval` (bench/eval_score.py, bench/eval_report.py), hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from bench.eval_report import bars, render
from bench.eval_score import (
    bootstrap_interval,
    category_at_weight,
    category_scores,
    issue_scores,
    issue_weight_scores,
    majority,
    nearest_description,
    purity,
    title_quality,
    with_singletons,
)

GOLD = ["ui", "data", "model", "expectation", "ui", "data"]


def test_bench_eval_perfect_categories_score_one() -> None:
    scores = category_scores(GOLD, GOLD)
    assert scores["macro_f1"] == pytest.approx(1.0)
    assert scores["without_category"] == 0
    assert all(c["f1"] == pytest.approx(1.0) for c in scores["per_class"].values())


def test_bench_eval_ticket_without_category_counts_as_wrong() -> None:
    predicted = [*GOLD[:-1], None]
    scores = category_scores(GOLD, predicted)
    assert scores["without_category"] == 1
    assert scores["macro_f1"] < 1.0
    # the missed ticket costs its true class recall and no other class precision
    assert scores["per_class"]["data"]["recall"] == pytest.approx(0.5)
    assert scores["per_class"]["data"]["precision"] == pytest.approx(1.0)
    assert scores["per_class"]["ui"]["f1"] == pytest.approx(1.0)
    assert scores["accuracy"] == pytest.approx(5 / 6)


def test_bench_eval_perfect_issues_score_one_whatever_the_ids() -> None:
    gold = ["a", "a", "b", "b", "c"]
    scores = issue_scores(gold, [7, 7, 3, 3, 9])
    assert scores["ari"] == pytest.approx(1.0)
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["issues"] == 3
    assert scores["purity"] == pytest.approx(1.0)


def test_bench_eval_tickets_without_issue_are_singletons() -> None:
    assert len(set(with_singletons([None, None, -1, 1, 1]))) == 4
    gold = ["a", "a", "a", "b", "b", "b"]
    # leaving a whole issue out is not free: its tickets become singletons, not one cluster
    scores = issue_scores(gold, [1, 1, 1, None, None, None])
    assert scores["without_issue"] == 3
    assert scores["ari"] < 1.0
    # singletons of a gold singleton cost nothing
    assert issue_scores(["a", "a", "b"], [1, 1, None])["ari"] == pytest.approx(1.0)


def test_bench_eval_one_big_issue_is_impure() -> None:
    gold = ["a", "a", "b", "b"]
    assert issue_scores(gold, [1, 1, 1, 1])["ari"] == pytest.approx(0.0)
    assert purity(gold, [1, 1, 1, 1]) == pytest.approx(0.5)
    assert purity(gold, [None, None, None, None]) != purity(gold, [None, None, None, None])  # NaN


def test_bench_eval_title_quality() -> None:
    descriptions = np.array([[1.0, 0.0], [0.0, 1.0]])
    titles = np.array([[0.9, 0.1], [0.8, 0.3], [0.1, 2.0]])
    nearest = [["x", "y"][j] for j in nearest_description(titles, descriptions)]
    assert nearest == ["x", "x", "y"]
    result = title_quality(["x", "y", None], nearest)
    assert result == {"issues": 3, "good": 1, "share": pytest.approx(1 / 3)}
    assert majority(["b", "a", "b"]) == "b"


def test_bench_eval_bars_and_table_show_what_was_not_run() -> None:
    results = {
        "date": "2026-12-01 00:00 UTC",
        "commit": "abc1234",
        "settings_overrides": {},
        "seconds": {"fixtures": 1.0},
        "fixtures": {
            "categories": category_scores(GOLD, GOLD),
            "issues": 2,
            "without_issue": 0,
            "unassigned": 0.0,
            "seconds": 1.0,
            "tickets": [
                {"product": product, "gold_category": g, "category": g}
                for product in ("docs", "chat")
                for g in GOLD
            ],
        },
    }
    results["bars"] = bars(results)
    met = {row["bar"]: row["met"] for row in results["bars"]}
    assert met["fixtures held-out macro-F1 (user path)"] is True
    assert met["HWU64 ARI"] is None
    table = render(results)
    assert "not run" in table
    assert "| 6 | 1.000 |" in table
    assert "Macro-F1 by product: chat 1.000, docs 1.000." in table


def test_bench_eval_clustering_is_judged_on_the_mean_over_seeds() -> None:
    def seed(nmi: float, number: int) -> dict[str, float]:
        return {"ari": 0.5, "nmi": nmi, "unassigned": 0.01, "clusters": 80, "seconds": 1.0,
                "seed": number}  # fmt: skip

    runs = [seed(0.79, 0), seed(0.82, 1)]
    ours = {key: float(np.mean([r[key] for r in runs])) for key in runs[0] if key != "seed"}
    results = {
        "date": "2026-12-01 00:00 UTC",
        "commit": "abc1234",
        "settings_overrides": {},
        "seconds": {"clustering": 2.0},
        "clustering": {
            "embedder": "fake",
            "sets": {
                "Banking77 train": {
                    "texts": 10, "intents": 2, "seconds": 2.0,
                    "ours": {**ours, "seeds": runs},
                    "bertopic": {**seed(0.7, 0), "clusters": 90},
                },
            },
        },
    }  # fmt: skip
    results["bars"] = bars(results)
    met = {row["bar"]: row["met"] for row in results["bars"]}
    assert met["Banking77 train NMI"] is True  # 0.805, though one seed gave 0.79
    table = render(results)
    assert "| 0.805 | 1.0% | 80 | 1.00 | 0.790 0.820 |" in table
    assert "| 0.700 | 1.0% | 90 | 1.00 | - |" in table


def test_bench_eval_small_samples_draw_whole_intents_and_show_both_recipes() -> None:
    from bench.eval_cluster import draw

    truth = [f"intent{i % 5}" for i in range(50)] + ["rare"] * 3
    rows = draw(truth, intents=4, each=6, seed=0)
    picked = [truth[r] for r in rows]
    assert len(rows) == len(set(rows.tolist())) == 24
    assert len(set(picked)) == 4 and "rare" not in picked  # too few texts to give 6
    assert all(picked.count(name) == 6 for name in set(picked))
    assert (draw(truth, intents=4, each=6, seed=0) == rows).all()  # fixed by the seed

    figures = {"ari": 0.7, "nmi": 0.85, "unassigned": 0.02, "clusters": 13.0}
    section = {
        "embedder": "fake",
        "sets": {},
        "small": {"HWU64, 12 x 25": {"texts": 300, "intents": 12, "draws": 3,
                                      "ours": figures, "bertopic": {**figures, "nmi": 0.8}}},
    }  # fmt: skip
    table = render({"date": "2026-12-01 00:00 UTC", "commit": "abc1234",
                    "settings_overrides": {}, "seconds": {}, "clustering": section,
                    "bars": []})  # fmt: skip
    assert "| HWU64, 12 x 25 | 300 | triage Clusterer | 0.700 | 0.850 | 2.0% | 13.0 |" in table
    assert "| HWU64, 12 x 25 | 300 | BERTopic default (UMAP + HDBSCAN) | 0.700 | 0.800 |" in table


def test_bench_eval_uncertain_tickets_are_counted_with_their_accuracy() -> None:
    from bench.eval_score import uncertain_scores

    found = uncertain_scores(GOLD[:4], ["ui", "model", "model", "ui"], [False, True, True, False])
    assert found["tickets"] == 2 and found["share"] == 0.5
    assert found["accuracy_uncertain"] == 0.5 and found["accuracy_rest"] == 0.5
    assert uncertain_scores(GOLD[:1], ["ui"], [False])["accuracy_uncertain"] != 0.0  # nan


def test_bench_eval_reactions_name_their_answer_and_the_table_shows_recall() -> None:
    from datetime import datetime, timedelta

    from bench.eval_reactions import BACKGROUND, DELAYS, files

    items = [{"question": "q", "answer": "a", "reaction": "no", "label": "model"}] * 2
    outputs, tickets = files(items, DELAYS["after 1 minute"])
    assert len(outputs) == BACKGROUND + 2
    by_id = {o["output_id"]: o for o in outputs}
    for ticket in tickets:
        answer = by_id[ticket["output_id"]]
        gap = datetime.fromisoformat(ticket["created_at"]) - datetime.fromisoformat(
            answer["created_at"]
        )
        assert gap == timedelta(minutes=1)
        # Bare, as a chatbot logs its answers: nothing measured.
        assert "confidence" not in answer and "metadata" not in answer

    results = {
        "date": "2026-12-01 00:00 UTC",
        "commit": "abc1234",
        "settings_overrides": {},
        "seconds": {"reactions": 1.0},
        "reactions": {
            "items": len(GOLD),
            "runs": {"after 1 minute": {**category_scores(GOLD, GOLD), "seconds": 1.0}},
        },
    }
    results["bars"] = bars(results)
    table = render(results)
    assert "recall per class (2 ui, 2 data, 1 model, 1 expectation)" in table
    assert "| after 1 minute | 1.000 | 1.00 | 1.00 | 1.00 | 1.00 | 0 | 1 |" in table


def test_bench_eval_bootstrap_interval_over_products() -> None:
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    # Products that agree leave nothing to resample; products that differ spread the figure.
    assert bootstrap_interval([[0.7], [0.7], [0.7]], mean) == pytest.approx((0.7, 0.7))
    low, high = bootstrap_interval([[0.5], [0.6], [0.7], [0.8], [0.9]], mean)
    assert 0.5 <= low < 0.7 < high <= 0.9
    assert bootstrap_interval([[0.5], [0.9]], mean, seed=1) == bootstrap_interval(
        [[0.5], [0.9]], mean, seed=1
    )


def test_bench_eval_a_bar_shows_its_interval_over_products_and_whether_it_clears() -> None:
    right = [{"product": "a", "gold_category": g, "category": g} for g in GOLD]
    wrong = [{"product": "b", "gold_category": g, "category": "ui"} for g in GOLD]
    results = {"fixtures": {"categories": category_scores(GOLD * 2, GOLD + ["ui"] * len(GOLD)),
                            "tickets": right + wrong}}  # fmt: skip
    (row,) = [r for r in bars(results) if r["bar"] == "fixtures held-out macro-F1 (user path)"]
    low, high = row["interval"]
    assert low < row["value"] < high and high == pytest.approx(1.0)
    assert row["interval_clears"] is False
    table = render({"date": "d", "commit": "c", "settings_overrides": {}, "seconds": {},
                    "bars": [row]})  # fmt: skip
    bar = "| fixtures held-out macro-F1 (user path) | >= 0.85 | 0.667 | **no** | 0.125 to "
    assert bar in table
    assert table.splitlines()[-3].endswith(" to 1.000 | no |")


def _heard(gold: str, before: dict[str, float], mean: dict[str, float]) -> dict[str, object]:
    full = {c: 0.0 for c in ("ui", "data", "model", "expectation")}
    return {
        "gold_category": gold,
        "category": max(before, key=before.__getitem__),
        "issue_mix": {"before": {**full, **before}, "mean": {**full, **mean}},
    }


def test_bench_eval_the_issue_weight_is_worked_out_at_every_weight_and_chosen_nested() -> None:
    # A ticket that leaned model on its own, in an issue that leans data: right from 0.5 on.
    wrong_alone = _heard("data", {"model": 0.7, "data": 0.3}, {"data": 0.9, "model": 0.1})
    assert category_at_weight(wrong_alone, 0.0) == "model"
    assert category_at_weight(wrong_alone, 0.25) == "model"  # 0.55 against 0.45
    assert category_at_weight(wrong_alone, 0.5) == "data"  # 0.6 against 0.4
    # A ticket that heard nothing keeps what was exported.
    alone = {"gold_category": "ui", "category": "ui"}
    assert category_at_weight(alone, 0.75) == "ui"
    # Product a gains from hearing its issue, product b loses: each is scored at the weight
    # the other chose.
    gains = [wrong_alone, _heard("ui", {"ui": 0.9}, {"ui": 1.0}), alone]
    loses = [
        _heard("model", {"model": 0.7, "data": 0.3}, {"data": 0.8, "model": 0.2}),
        _heard("data", {"data": 0.9}, {"data": 1.0}),
    ]
    scores = issue_weight_scores({"a": gains, "b": loses}, weights=[0.0, 0.5])
    assert scores["chosen_without"] == {"a": 0.0, "b": 0.5}
    assert scores["tickets_heard"] == 4
    assert set(scores["by_weight"]) == {"0", "0.5"}
    # a at 0 gets its model-leaning ticket wrong; b at 0.5 gets its model ticket wrong.
    assert scores["nested_macro_f1"] < max(scores["by_weight"].values())


def test_bench_eval_train_share_draws_a_fixed_share_in_order_and_says_so() -> None:
    from bench.eval_tickets import subsample

    rows = [{"i": i} for i in range(100)]
    kept = subsample(rows, 0.9, seed=1)
    assert len(kept) == 90
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)  # file order kept
    assert kept == subsample(rows, 0.9, seed=1)
    assert kept != subsample(rows, 0.9, seed=2)
    assert subsample(rows, 1.0, seed=1) == rows
    table = render({"date": "2026-12-01 00:00 UTC", "commit": "abc1234",
                    "settings_overrides": {}, "seconds": {}, "bars": [],
                    "training": {"share": 0.9, "seed": 1}})  # fmt: skip
    assert "Every fold trained on 90% of its training rows, drawn at random (seed 1)" in table
