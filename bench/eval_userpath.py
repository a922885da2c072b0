"""The user path for ``make eval``: the real ``triage`` CLI in subprocesses, on a fresh SQLite
file in a temporary folder, as a new customer would run it.

    workspace = Workspace(folder)
    workspace.train(rows, outputs)          # triage train --labelled F --outputs F --out D
    workspace.ingest_feedback(tickets)      # gold fields stripped by the caller
    workspace.ingest_outputs(outputs)
    workspace.run()                         # triage run
    rows = workspace.export()               # triage export feedback --format jsonl
    issues = workspace.issues()             # triage issues --format json --top 1000
    counts = workspace.counts()             # units, unassigned units, linked tickets (SQLite)

Settings are the defaults plus whatever ``TRIAGE_*`` variables the caller set (so a setting can
be tried with ``TRIAGE_X=... make eval``); only the database URL and the classifier folder are
set here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from triage.categorize.issue_peers import ISSUE_SIGNAL

ROOT = Path(__file__).resolve().parent.parent
# Beside this interpreter, so the eval runs the triage of the virtualenv it was started from.
TRIAGE = str(Path(sys.executable).parent / "triage")
SET_HERE = ("TRIAGE_DATABASE_URL", "TRIAGE_CATEGORIZE_CLASSIFIER_DIR")


class UserPathError(RuntimeError):
    pass


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def overrides() -> dict[str, str]:
    """The TRIAGE_* settings the caller set, which every run below inherits."""
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("TRIAGE_") and k not in SET_HERE and not k.startswith("TRIAGE_EVAL_")
        and k != "TRIAGE_TEST_POSTGRES_URL"
    }  # fmt: skip


class Workspace:
    """One fresh database and classifier folder under ``folder``."""

    def __init__(self, folder: Path, *, log=print) -> None:  # type: ignore[no-untyped-def]
        self.folder = Path(folder)
        self.database = self.folder / "triage.db"
        self.classifier = self.folder / "classifier"
        self.log = log
        self.seconds: dict[str, float] = {}
        self.env = {
            **os.environ,
            "TRIAGE_DATABASE_URL": f"sqlite:///{self.database}",
            "PATH": f"{Path(TRIAGE).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.env.pop("TRIAGE_CATEGORIZE_CLASSIFIER_DIR", None)
        self.triage("db", "upgrade")

    def triage(self, *args: str) -> str:
        """Run one triage command in the workspace folder; its stdout, or an error with its
        stderr."""
        started = time.perf_counter()
        done = subprocess.run(
            [TRIAGE, *args], env=self.env, cwd=self.folder, capture_output=True, text=True
        )
        step = args[0] if args[0] not in ("ingest", "export") else " ".join(args[:2])
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started
        if done.returncode != 0:
            raise UserPathError(
                f"`triage {' '.join(args)}` exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def train(
        self, labelled: Iterable[dict[str, Any]], outputs: Iterable[dict[str, Any]] = ()
    ) -> None:
        """``triage train`` on ticket rows with ``text`` and ``label`` (all used for training,
        with their product and link fields) and the model outputs they were about; later
        commands use the classifier it saves."""
        rows = [{**r, "split": "train"} for r in labelled]
        path = write_jsonl(self.folder / "labelled.jsonl", rows)
        args = ["train", "--labelled", str(path), "--out", str(self.classifier)]
        outputs = list(outputs)
        if outputs:
            args += ["--outputs", str(write_jsonl(self.folder / "train_outputs.jsonl", outputs))]
        self.triage(*args)
        self.env["TRIAGE_CATEGORIZE_CLASSIFIER_DIR"] = str(self.classifier)

    def ingest_feedback(self, tickets: Iterable[dict[str, Any]]) -> None:
        path = write_jsonl(self.folder / "feedback.jsonl", tickets)
        self.triage("ingest", "feedback", str(path))

    def ingest_outputs(self, outputs: Iterable[dict[str, Any]]) -> None:
        path = write_jsonl(self.folder / "model_outputs.jsonl", outputs)
        self.triage("ingest", "outputs", str(path))

    def run(self) -> None:
        self.triage("run")

    def export(self) -> list[dict[str, Any]]:
        text = self.triage("export", "feedback", "--format", "jsonl")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def issues(self) -> list[dict[str, Any]]:
        return json.loads(self.triage("issues", "--format", "json", "--top", "1000") or "[]")

    def counts(self) -> dict[str, int]:
        """Units, units without an issue and tickets linked to an output, read straight from
        the SQLite file."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:

            def one(sql: str) -> int:
                return int(connection.execute(sql).fetchone()[0])

            return {
                "units": one("SELECT COUNT(*) FROM unit"),
                "unassigned_units": one(
                    "SELECT COUNT(*) FROM unit LEFT JOIN membership "
                    "ON membership.unit_id = unit.id WHERE membership.unit_id IS NULL"
                ),
                "linked_tickets": one("SELECT COUNT(DISTINCT feedback_id) FROM link"),
            }

    def issue_lines(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(source, external_id) -> what the ticket heard from the other tickets of its issue
        (the data of its ``issue`` evidence line: ``before``, ``mean_probabilities``, ``weight``),
        read straight from the SQLite file; tickets that heard nothing are left out."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "SELECT source, external_id, category_evidence FROM feedback"
            ).fetchall()
        lines = {}
        for source, external_id, evidence in rows:
            for line in json.loads(evidence or "[]"):
                if line.get("signal") == ISSUE_SIGNAL:
                    lines[(source, external_id)] = line["data"]
        return lines


def strip(row: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The ticket as a client would send it: without the gold fields."""
    drop = set(fields)
    return {k: v for k, v in row.items() if k not in drop}


def ticket_result(
    exported: list[dict[str, Any]], keys: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The exported row of each (source, external_id), or an empty row when it is missing."""
    by_key = {(r.get("source"), r.get("external_id")): r for r in exported}
    return [by_key.get(key, {}) for key in keys]
