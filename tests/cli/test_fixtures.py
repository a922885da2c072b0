"""The shipped fixtures: valid against the domain models, linked, labelled and reproducible."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from triage.models import Category, FeedbackCreate, ModelOutputCreate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HISTORY = FIXTURES / "history"
PRODUCTS = {"summarizer", "reply-drafter", "forecaster", "doc-qa", "recommender"}
FEEDBACK_KEYS = {
    "source",
    "external_id",
    "text",
    "created_at",
    "customer_id",
    "customer_value",
    "user_id",
    "session_id",
    "output_id",
    "metadata",
}
LABEL_KEYS = {"label", "split", "product"}
OUTPUT_KEYS = set(ModelOutputCreate.model_fields) - {"meta"} | {"metadata"}


@cache
def _rows(path: Path) -> tuple[dict, ...]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"{path.name}:{number} is not JSON") from e
    return tuple(rows)


def _labelled() -> tuple[dict, ...]:
    return _rows(FIXTURES / "labelled.jsonl")


def _feedback_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in LABEL_KEYS}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


FEEDBACK_FILES = [FIXTURES / "labelled.jsonl", HISTORY / "feedback.jsonl"]
OUTPUT_FILES = [FIXTURES / "model_outputs.jsonl", HISTORY / "model_outputs.jsonl"]
PAIRS = list(zip(FEEDBACK_FILES, OUTPUT_FILES, strict=True))
# The two chat assistants' labelled set (``fixtures/chat/generate.py``), checked on its own.
CHAT = FIXTURES / "chat"
CHAT_PRODUCTS = {"travel-assistant", "telco-assistant"}


@pytest.mark.parametrize("path", FEEDBACK_FILES, ids=lambda p: p.name)
def test_fixtures_feedback_validates(path: Path) -> None:
    extra = LABEL_KEYS if path.name == "labelled.jsonl" else set()
    for row in _rows(path):
        assert set(row) == FEEDBACK_KEYS | extra, row.get("external_id")
        item = FeedbackCreate.model_validate(_feedback_of(row))
        assert item.created_at is not None and item.created_at.tzinfo is not None
        assert item.meta and item.meta.get("product") in PRODUCTS


@pytest.mark.parametrize("path", OUTPUT_FILES, ids=lambda p: p.parent.name + "/" + p.name)
def test_fixtures_model_outputs_validate(path: Path) -> None:
    for row in _rows(path):
        assert set(row) == OUTPUT_KEYS, row.get("output_id")
        output = ModelOutputCreate.model_validate(row)
        assert output.model in PRODUCTS and output.model_version
        assert output.meta and 0.0 <= output.meta["eval_score"] <= 1.0
        assert all("as_of" in source for source in output.meta["sources"])


def test_fixtures_feedback_keys_unique_across_files() -> None:
    files = [*FEEDBACK_FILES, CHAT / "labelled.jsonl"]
    keys = Counter((r["source"], r["external_id"]) for p in files for r in _rows(p))
    duplicates = [key for key, n in keys.items() if n > 1]
    assert not duplicates, duplicates[:5]


def test_fixtures_output_ids_unique_across_files() -> None:
    files = [*OUTPUT_FILES, CHAT / "model_outputs.jsonl"]
    ids = Counter(r["output_id"] for p in files for r in _rows(p))
    duplicates = [key for key, n in ids.items() if n > 1]
    assert not duplicates, duplicates[:5]


@pytest.mark.parametrize(("feedback", "outputs"), PAIRS, ids=["labelled", "history"])
def test_fixtures_referenced_outputs_exist_and_came_first(feedback: Path, outputs: Path) -> None:
    by_id = {r["output_id"]: r for r in _rows(outputs)}
    referenced = [r for r in _rows(feedback) if r["output_id"]]
    assert referenced
    for row in referenced:
        output = by_id.get(row["output_id"])
        assert output is not None, f"{row['external_id']} names unknown {row['output_id']}"
        gap = _when(row["created_at"]) - _when(output["created_at"])
        assert timedelta(0) < gap <= timedelta(days=3), row["external_id"]
        assert output["model"] == row["metadata"]["product"]
        assert output["user_id"] == row["user_id"]


@pytest.mark.parametrize(("feedback", "outputs"), PAIRS, ids=["labelled", "history"])
def test_fixtures_unlinked_feedback_often_linkable_by_user_or_session(
    feedback: Path, outputs: Path
) -> None:
    by_user: dict[str, list[datetime]] = {}
    by_session: dict[str, list[datetime]] = {}
    for out in _rows(outputs):
        by_user.setdefault(out["user_id"], []).append(_when(out["created_at"]))
        by_session.setdefault(out["session_id"], []).append(_when(out["created_at"]))
    rows = _rows(feedback)
    unlinked = [r for r in rows if not r["output_id"]]

    def linkable(row: dict) -> bool:
        created = _when(row["created_at"])
        times = by_user.get(row["user_id"], []) + by_session.get(row["session_id"], [])
        return any(timedelta(0) <= created - t <= timedelta(hours=24) for t in times)

    share_explicit = 1 - len(unlinked) / len(rows)
    share_implicit = sum(map(linkable, unlinked)) / len(rows)
    assert 0.4 <= share_explicit <= 0.7
    assert 0.1 <= share_implicit <= 0.35


def test_fixtures_labelled_counts_and_splits() -> None:
    rows = _labelled()
    assert len(rows) >= 300
    labels = Counter(r["label"] for r in rows)
    assert set(labels) == {c.value for c in Category}
    assert min(labels.values()) >= 70, labels
    products = Counter(r["product"] for r in rows)
    assert set(products) == PRODUCTS and min(products.values()) >= 50, products
    for row in rows:
        assert row["split"] in ("train", "heldout")
        assert row["product"] == row["metadata"]["product"]
    splits = Counter((r["label"], r["split"]) for r in rows)
    for label in labels:
        assert splits[(label, "train")] and splits[(label, "heldout")], label
    held = sum(r["split"] == "heldout" for r in rows) / len(rows)
    assert 0.25 <= held <= 0.35, held
    # Stratified: every (label, product) cell is in both splits.
    cells = Counter((r["label"], r["product"], r["split"]) for r in rows)
    for label in labels:
        for product in PRODUCTS:
            assert cells[(label, product, "heldout")] >= 2, (label, product)


def test_fixtures_labelled_texts_are_distinct() -> None:
    texts = Counter(r["text"].strip().lower() for r in _labelled())
    assert max(texts.values()) == 1, texts.most_common(3)


def test_fixtures_labelled_output_signals_match_labels() -> None:
    outputs = {r["output_id"]: r for r in _rows(FIXTURES / "model_outputs.jsonl")}
    linked: dict[str, list[dict]] = {}
    for row in _labelled():
        if row["output_id"]:
            linked.setdefault(row["label"], []).append(outputs[row["output_id"]])

    def median(label: str, field: str) -> float:
        values = [o["confidence"] if field == "confidence" else o["metadata"]["eval_score"]
                  for o in linked[label]]  # fmt: skip
        return statistics.median(values)

    for field in ("confidence", "eval_score"):
        assert median("model", field) + 0.25 < median("ui", field)
        assert median("model", field) + 0.25 < median("expectation", field)

    def stale_or_missing(output: dict) -> bool:
        created = _when(output["created_at"]).date()
        ages = [
            (created - datetime.fromisoformat(s["as_of"]).date()).days
            for s in output["metadata"]["sources"]
        ]
        return max(ages) > 7 or bool(output["metadata"].get("missing_fields"))

    data = [stale_or_missing(o) for o in linked["data"]]
    healthy = [stale_or_missing(o) for o in linked["ui"] + linked["expectation"]]
    assert sum(data) / len(data) >= 0.8
    assert sum(healthy) / len(healthy) <= 0.2


def test_fixtures_history_spans_eight_iso_weeks_ending_2026_w47() -> None:
    rows = _rows(HISTORY / "feedback.jsonl")
    assert len(rows) >= 3000
    weeks = Counter(_when(r["created_at"]).isocalendar()[:2] for r in rows)
    assert sorted(weeks) == [(2026, w) for w in range(40, 48)]
    customers = {r["customer_id"] for r in rows if r["customer_id"]}
    assert len(customers) >= 200


def test_fixtures_history_regression_concentrates_on_one_version() -> None:
    truth = {(t["source"], t["external_id"]): t for t in _rows(HISTORY / "truth.jsonl")}
    outputs = {r["output_id"]: r for r in _rows(HISTORY / "model_outputs.jsonl")}
    complaints = [
        r
        for r in _rows(HISTORY / "feedback.jsonl")
        if truth[(r["source"], r["external_id"])]["issue"] == "sum-hallucinated-decisions"
    ]
    weeks = Counter(_when(r["created_at"]).isocalendar()[1] for r in complaints)
    assert weeks[45] + weeks[46] > 8 * (weeks[40] + weeks[41] + weeks[42] + weeks[43])
    assert weeks[47] < weeks[46] / 3  # fixed by 2.3.1
    versions = Counter(
        outputs[r["output_id"]]["model_version"] for r in complaints if r["output_id"]
    )
    traffic = Counter(o["model_version"] for o in outputs.values() if o["model"] == "summarizer")
    complaint_share = versions["2.3.0"] / sum(versions.values())
    traffic_share = traffic["2.3.0"] / sum(traffic.values())
    assert complaint_share > 0.75 and complaint_share > 2 * traffic_share


def test_fixtures_history_regenerates_byte_identical(tmp_path: Path) -> None:
    script = FIXTURES / "generate_history.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    committed = sorted(p.name for p in HISTORY.glob("*.jsonl"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.jsonl"))
    for name in committed:
        assert (tmp_path / name).read_bytes() == (HISTORY / name).read_bytes(), name


def test_fixtures_chat_validate_and_name_the_answers_they_react_to() -> None:
    outputs = {}
    for row in _rows(CHAT / "model_outputs.jsonl"):
        assert set(row) == OUTPUT_KEYS, row["output_id"]
        output = ModelOutputCreate.model_validate(row)
        assert output.model in CHAT_PRODUCTS and output.input and output.output
        outputs[row["output_id"]] = row
    rows = _rows(CHAT / "labelled.jsonl")
    for row in rows:
        assert set(row) == FEEDBACK_KEYS | LABEL_KEYS, row["external_id"]
        item = FeedbackCreate.model_validate(_feedback_of(row))
        assert item.meta and item.meta["product"] == row["product"] in CHAT_PRODUCTS
    cells = Counter((r["product"], r["label"], r["split"]) for r in rows)
    assert all(cells[(p, c.value, "heldout")] >= 2 for p in CHAT_PRODUCTS for c in Category)
    # Most model complaints are typed in the chat right after the answer they name.
    quick = Counter(
        r["label"]
        for r in rows
        if r["output_id"]
        and _when(r["created_at"]) - _when(outputs[r["output_id"]]["created_at"])
        <= timedelta(minutes=10)
    )
    per_label = Counter(r["label"] for r in rows)
    assert quick["model"] / per_label["model"] > 0.8
    assert all(quick[c] / per_label[c] < 0.6 for c in ("ui", "data", "expectation"))


def test_fixtures_chat_regenerate_byte_identical_and_pass_their_checks(tmp_path: Path) -> None:
    script = CHAT / "generate.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    for name in ("labelled.jsonl", "model_outputs.jsonl"):
        assert (tmp_path / name).read_bytes() == (CHAT / name).read_bytes(), name
