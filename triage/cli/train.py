"""``triage train``: the category classifier and its combiner, retrained on the labelled sets,
their model outputs and people's corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from triage import db, store
from triage.cli.app import FIXTURE_SETS, _errors, _ready, console
from triage.config import get_settings


def _rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def train(
    labelled: Annotated[
        list[Path] | None,
        typer.Option(
            help="Labelled JSONL (text, label or gold_category, split, product); "
            "repeat for several files."
        ),
    ] = None,
    outputs: Annotated[
        list[Path] | None,
        typer.Option(help="Model-output JSONL the labelled tickets were about; repeatable."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the classifier.")] = None,
) -> None:
    """Retrain the category classifier on the labelled set plus people's corrections."""
    from triage.categorize import DEFAULT_CLASSIFIER_DIR, DEFAULT_CUES, CueLexicon
    from triage.categorize.training import TrainingParams, train_categorizer
    from triage.embed import build_embedder
    from triage.preprocess import Redactor

    settings = get_settings()
    if labelled is None:
        # The shipped fixtures, with the outputs their tickets were about unless others given.
        labelled = [tickets for tickets, _ in FIXTURE_SETS]
        outputs = outputs or [logged for _, logged in FIXTURE_SETS]
    with _errors():
        engine = _ready(settings)
        with db.session_scope(engine) as session:
            corrected = store.corrected_units(session)
        trained = train_categorizer(
            _rows(labelled),
            embedder=build_embedder(settings),
            cues=CueLexicon.load(settings.categorize_cues_path or DEFAULT_CUES),
            source=" + ".join(f"{path.parent.name}/{path.name}" for path in labelled),
            corrections=corrected,
            params=TrainingParams.from_settings(settings),
            folder=out or DEFAULT_CLASSIFIER_DIR,
            outputs=_rows(outputs or []),
            # What is saved (examples.npz) and embedded is what the pipeline would see.
            redact=Redactor.from_settings(settings).redact,
        )
    if trained.metrics is not None:
        evaluated_as = trained.classifier.card["heldout_metrics"]["evaluated_as"]
        console.print(f"held-out macro-F1 ({evaluated_as}): {trained.metrics['macro_f1']:.3f}")
    if trained.combiner is not None:
        cv = trained.combiner.card["cv"]
        console.print(
            f"combiner: groups {', '.join(trained.combiner.card['groups_kept'])}; "
            f"leave-one-product-out macro-F1 {cv['macro_f1_kept']:.3f}"
        )
        neighbours = trained.combiner.card.get("neighbours") or {}
        by_weight = neighbours.get("macro_f1_by_weight") or {}
        if by_weight:
            weight = f"{neighbours['weight']:g}"
            console.print(
                f"nearest tickets: weight {weight} of {neighbours['k']} neighbours "
                f"(leave-one-product-out macro-F1 {by_weight[weight]:.3f}, "
                f"{by_weight['0']:.3f} without)"
            )
        uncertain = trained.combiner.card.get("uncertain") or {}
        if uncertain.get("rows"):
            right_below = uncertain["accuracy_below"]
            console.print(
                f"uncertain below {uncertain['below']:.0%} confidence: "
                f"{uncertain['share_below']:.0%} of the cross-validated decisions"
                + (f", right {right_below:.0%} of the time" if right_below is not None else "")
                + f" (right {uncertain['accuracy_at_or_above']:.0%} at or above)"
            )
    console.print(
        f"trained on {trained.train} labelled items and {len(corrected)} corrected units; "
        f"saved to {trained.folder}"
    )
