"""Banking77 through the plain user path: ``triage ingest feedback``, ``triage run``,
``triage export feedback``, on a fresh SQLite file, scored like bench.cluster.

    .venv/bin/python -m bench.user_path
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster import DATA, score

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = str(Path(sys.executable).parent / "triage")


def run(*, data: Path = DATA, log=print) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with data.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    text_key = "text" if "text" in rows[0] else next(iter(rows[0]))
    label_key = next(k for k in rows[0] if k != text_key)
    with tempfile.TemporaryDirectory() as folder:
        jsonl = Path(folder) / "banking77.jsonl"
        with jsonl.open("w", encoding="utf-8") as handle:
            for i, row in enumerate(rows):
                record = {"source": "banking77", "external_id": str(i), "text": row[text_key]}
                handle.write(json.dumps(record) + "\n")
        env = {**os.environ, "TRIAGE_DATABASE_URL": f"sqlite:///{folder}/bench.db"}
        if env.get("TRIAGE_EMBEDDING_BACKEND") == "fake":
            env.pop("TRIAGE_EMBEDDING_BACKEND")
        started = time.perf_counter()
        for args in (["db", "upgrade"], ["ingest", "feedback", str(jsonl)], ["run"]):
            subprocess.run([TRIAGE, *args], env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        exported = subprocess.run(
            [TRIAGE, "export", "feedback"], env=env, check=True, capture_output=True, text=True
        ).stdout
    issue_of = {r["external_id"]: r["issue_id"] for r in map(json.loads, exported.splitlines())}
    labels = [
        int(issue_of[str(i)]) if issue_of.get(str(i)) is not None else -1 for i in range(len(rows))
    ]
    import numpy as np

    result = {**score(np.array(labels), [r[label_key] for r in rows]), "seconds": seconds}
    log(
        f"user path (ingest → run → export): ARI {result['ari']:.3f}  NMI {result['nmi']:.3f}  "
        f"unassigned {result['unassigned']:.1%}  clusters {result['clusters']}  "
        f"{seconds:.0f}s end to end"
    )
    return result


if __name__ == "__main__":
    run()
