"""Held-out macro-F1 of the categorizer on fixtures/labelled.jsonl, with the real embedder.

Trains the classifier (and the labelled-example signal) on ``split == "train"``, then decides
every ``split == "heldout"`` item as a one-item issue with its own linked-output signals (its
explicit ``output_id``, or an implicit link by session/user and time) against all logged outputs
as traffic. Prints macro-F1, per-class precision/recall and the confusion matrix, lists every
miss, and saves the classifier with its model card under models/category-classifier/.

    .venv/bin/python -m bench.categorize [--no-save]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "fixtures" / "labelled.jsonl"
OUTPUTS = ROOT / "fixtures" / "model_outputs.jsonl"
BAR = 0.85


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _when(value: str | None) -> datetime:
    if not value:
        return datetime(1970, 1, 1, tzinfo=UTC)
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load_fixtures(labelled: Path = LABELLED, outputs: Path = OUTPUTS) -> tuple[list, list, list]:
    """(labelled rows, FeedbackRecords, OutputRecords), in file order; the records are built as
    ``triage train`` builds them."""
    from triage.categorize.stacking import output_records
    from triage.link import FeedbackRecord

    rows = _read_jsonl(labelled)
    feedback = [
        FeedbackRecord(
            id=i,
            created_at=_when(row.get("created_at")),
            text=row["text"],
            user_id=row.get("user_id"),
            session_id=row.get("session_id"),
            output_id=row.get("output_id"),
            customer_id=row.get("customer_id"),
            customer_value=row.get("customer_value"),
        )
        for i, row in enumerate(rows, start=1)
    ]
    records = output_records(_read_jsonl(outputs))
    return rows, feedback, records


def run(*, save: bool = True, verbose: bool = True) -> dict[str, Any]:
    from triage.categorize import (
        DEFAULT_CLASSIFIER_DIR,
        DEFAULT_CUES,
        CueLexicon,
        LabelledIssue,
        evaluate,
    )
    from triage.categorize.training import HeldoutEvaluation, TrainingParams, train_categorizer
    from triage.config import get_settings
    from triage.embed import SentenceTransformerEmbedder
    from triage.link import (
        LinkParams,
        SignalParams,
        TrafficProfile,
        embedding_similarity,
        link_feedback,
        output_signals,
    )

    started = time.perf_counter()
    # The benchmark is an entry point like the CLI: it reads the environment once, here.
    settings = get_settings()
    rows, feedback, outputs = load_fixtures()
    embedder = SentenceTransformerEmbedder()
    links = {
        d.feedback_id: d
        for d in link_feedback(
            feedback,
            outputs,
            LinkParams.from_settings(settings),
            similarity=embedding_similarity(embedder),
        )
    }
    output_by_id = {output.id: output for output in outputs}
    traffic = TrafficProfile(outputs, SignalParams.from_settings(settings))

    heldout = [i for i, row in enumerate(rows) if row["split"] == "heldout"]

    def issue(i: int, vectors: Any) -> LabelledIssue:
        link = links.get(feedback[i].id)
        linked = [output_by_id[link.model_output_id]] if link else []
        return LabelledIssue(
            texts=[rows[i]["text"]],
            vectors=vectors,
            label=rows[i]["label"],
            signals=output_signals(linked, traffic),
            key=str(rows[i].get("external_id", i)),
        )

    def decide_with_outputs(categorizer: Any, _: Any, vectors: Any) -> dict[str, Any]:
        issues = [issue(i, vectors[j : j + 1]) for j, i in enumerate(heldout)]
        return evaluate(categorizer, issues)

    trained = train_categorizer(
        rows,
        embedder=embedder,
        cues=CueLexicon.load(DEFAULT_CUES),
        source=str(LABELLED.relative_to(ROOT)),
        params=TrainingParams.from_settings(settings),
        evaluation=HeldoutEvaluation(
            "each item a one-item issue with its own linked-output signals "
            "(explicit output_id or link_feedback), all outputs as traffic, all four signals",
            decide_with_outputs,
            card_metrics=("macro_f1", "per_class", "confusion"),
        ),
        folder=DEFAULT_CLASSIFIER_DIR if save else None,
    )
    if trained.metrics is None:
        raise SystemExit(f"{LABELLED} has no split=heldout rows to evaluate")
    metrics = trained.metrics
    link_methods = Counter(links[feedback[i].id].method for i in heldout if feedback[i].id in links)
    metrics.update(
        {
            "train": trained.train,
            "heldout": trained.heldout,
            "outputs": len(outputs),
            "heldout_links": dict(sorted(link_methods.items())),
            "heldout_unlinked": len(heldout) - sum(link_methods.values()),
            "embedder": embedder.model_id,
            "seconds": round(time.perf_counter() - started, 1),
            "bar": BAR,
            "passed": metrics["macro_f1"] >= BAR,
        }
    )
    if trained.folder is not None:
        metrics["saved_to"] = str(trained.folder.relative_to(ROOT))
    if verbose:
        report(metrics)
    return metrics


def report(metrics: dict[str, Any]) -> None:
    print(
        f"categorize: held-out macro-F1 {metrics['macro_f1']:.3f} (bar {metrics['bar']}) "
        f"accuracy {metrics['accuracy']:.3f} on {metrics['heldout']} items "
        f"(trained on {metrics['train']}; {metrics['embedder']}; {metrics['seconds']}s)"
    )
    print(f"links: {metrics['heldout_links']}, unlinked {metrics['heldout_unlinked']}")
    print(f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
    for name, m in metrics["per_class"].items():
        print(
            f"{name:<12} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} "
            f"{m['support']:>4}"
        )
    labels = metrics["confusion"]["labels"]
    print("confusion (rows: truth, columns: predicted)")
    print(" " * 12 + "".join(f"{name:>12}" for name in labels))
    for name, row in zip(labels, metrics["confusion"]["matrix"], strict=True):
        print(f"{name:<12}" + "".join(f"{n:>12}" for n in row))
    if metrics["errors"]:
        print(f"misses ({len(metrics['errors'])}):")
        for error in metrics["errors"]:
            print(
                f"  {error['key']}: {error['label']} -> {error['predicted']} "
                f"({error['confidence']:.2f}) {error['text']!r}"
            )
            for reason in error["reasons"]:
                print(f"      {reason}")
    if "saved_to" in metrics:
        print(f"saved classifier and model card to {metrics['saved_to']}/")


if __name__ == "__main__":
    result = run(save="--no-save" not in sys.argv)
    sys.exit(0 if result["passed"] else 1)
