"""``triage train``: the category classifier, retrained on the labelled set and corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from triage import db, store
from triage.cli.app import FIXTURES, _errors, _ready, console
from triage.config import get_settings


def train(
    labelled: Annotated[Path, typer.Option(help="Labelled JSONL (text, label, split).")] = (
        FIXTURES / "labelled.jsonl"
    ),
    out: Annotated[Path | None, typer.Option(help="Folder for the classifier.")] = None,
) -> None:
    """Retrain the category classifier on the labelled set plus people's corrections."""
    from triage.categorize import DEFAULT_CLASSIFIER_DIR, DEFAULT_CUES, CueLexicon
    from triage.categorize.training import TrainingParams, train_categorizer
    from triage.embed import build_embedder

    settings = get_settings()
    with _errors():
        engine = _ready(settings)
        with db.session_scope(engine) as session:
            corrected = store.corrected_units(session)
        rows = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines()
                if line.strip()]  # fmt: skip
        trained = train_categorizer(
            rows,
            embedder=build_embedder(settings),
            cues=CueLexicon.load(settings.categorize_cues_path or DEFAULT_CUES),
            source=labelled.name,
            corrections=corrected,
            params=TrainingParams.from_settings(settings),
            folder=out or DEFAULT_CLASSIFIER_DIR,
        )
    if trained.metrics is not None:
        console.print(f"held-out macro-F1 (text signals only): {trained.metrics['macro_f1']:.3f}")
    console.print(
        f"trained on {trained.train} labelled items and {len(corrected)} corrected units; "
        f"saved to {trained.folder}"
    )
