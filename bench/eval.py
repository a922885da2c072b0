"""``make eval``: how well triage does its job, measured from outside, in one table.

    .venv/bin/python -m bench.eval                                  # everything (several minutes)
    .venv/bin/python -m bench.eval --only feedback-dev --products codecomp,invoicex
    .venv/bin/python -m bench.eval --only clustering --no-baseline

1. feedback-dev leave-one-product-out through the user path (the figure a new customer sees):
   for each product, a fresh SQLite database, ``triage train`` on the other seven products plus
   fixtures' train split, ``triage ingest`` of its tickets (gold stripped) and of every output of
   its models, ``triage run``, ``triage export feedback``; per-ticket macro-F1 and per-class F1 of
   ``category``, issue ARI/NMI (a ticket in no issue is a singleton), unassigned statements.
2. Title quality: the share of issues whose title is closest to its own gold issue's description
   among that product's (own: the majority gold issue of its tickets).
3. The fixtures held out (labelled.jsonl and the chat assistants, chat/labelled.jsonl), through
   the same path, with macro-F1 by product.
4. Reactions to a chatbot's answers (``bench/data/chat_reactions.json``, written for this and
   never trained on), a minute and three hours after the answer, with the shipped classifier.
5. Clustering at every size: Banking77 test and train and HWU64, triage's Clusterer against
   BERTopic's default recipe on the same embeddings.
6. The bars of issue 13, met or not, with a 95% interval over products where the figure is a
   sample of products.

Prints Markdown to stdout, progress to stderr, and saves bench/eval-results.json and .md (with
the UTC date and time). Data: ``<repo>/../shared/data``, or ``TRIAGE_EVAL_DATA``; embedding cache:
``<repo>/.cache``, or ``TRIAGE_EVAL_CACHE``. ``TRIAGE_*`` settings in the environment apply to every
run (the header lists them), so a setting can be tried without editing code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.eval_report import bars, render
from bench.eval_userpath import ROOT, overrides

SECTIONS = ("feedback-dev", "titles", "fixtures", "reactions", "clustering")
REQUIRED = {
    "feedback-dev": ["feedback-dev/feedback.jsonl", "feedback-dev/model_outputs.jsonl"],
    "titles": ["feedback-dev/feedback.jsonl", "feedback-dev/issues.jsonl"],
    "fixtures": [],
    "reactions": [],
    "clustering": ["banking77/test.csv", "banking77/train.csv", "hwu64/test.csv"],
}
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f}s] {message}", file=sys.stderr, flush=True)


def data_dir(sections: Sequence[str]) -> Path:
    data = Path(os.environ.get("TRIAGE_EVAL_DATA") or ROOT.parent / "shared" / "data")
    missing = [name for s in sections for name in REQUIRED[s] if not (data / name).exists()]
    if missing:
        raise SystemExit(
            f"bench.eval: missing data under {data}: {', '.join(sorted(set(missing)))}. "
            "Point TRIAGE_EVAL_DATA at the folder holding feedback-dev/, banking77/ and hwu64/."
        )
    return data


def default_embedder() -> Any:
    """The embedder a default `triage run` uses (the int8 ONNX one unless settings say else)."""
    from triage.config import Settings

    try:
        from triage.embed import build_embedder
    except ImportError:  # before build_embedder moved to triage.embed
        from triage.pipeline import build_embedder
    return build_embedder(Settings())


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "triage", "api", "models"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes to triage/, api/ or models/)" if dirty else "")


def run(
    *,
    only: Sequence[str] = SECTIONS,
    products: Sequence[str] | None = None,
    baseline: bool = True,
    train_share: float = 1.0,
    train_seed: int = 0,
) -> dict[str, Any]:
    from bench import eval_cluster, eval_tickets

    data = data_dir(only)
    cache = Path(os.environ.get("TRIAGE_EVAL_CACHE") or ROOT / ".cache")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "settings_overrides": overrides(),
        "data": str(data),
        "seconds": {},
    }
    if train_share < 1.0:
        results["training"] = {"share": train_share, "seed": train_seed}
    embedder = None
    if "feedback-dev" in only or "titles" in only:
        started = time.perf_counter()
        results["feedback_dev"] = eval_tickets.feedback_dev(
            data, products=products, log=log, train_share=train_share, train_seed=train_seed
        )
        results["seconds"]["feedback-dev"] = time.perf_counter() - started
        if "titles" in only:
            started = time.perf_counter()
            embedder = embedder or default_embedder()
            results["titles"] = eval_tickets.titles(
                data, results["feedback_dev"]["folds"], embedder, log=log
            )
            results["seconds"]["titles"] = time.perf_counter() - started
    if "fixtures" in only:
        started = time.perf_counter()
        results["fixtures"] = eval_tickets.fixtures_heldout(
            log=log, train_share=train_share, train_seed=train_seed
        )
        results["seconds"]["fixtures"] = time.perf_counter() - started
    if "reactions" in only:
        from bench.eval_reactions import reactions

        started = time.perf_counter()
        results["reactions"] = reactions(log=log)
        results["seconds"]["reactions"] = time.perf_counter() - started
    if "clustering" in only:
        started = time.perf_counter()
        embedder = embedder or default_embedder()
        results["clustering"] = eval_cluster.clustering(
            data, embedder, cache_dir=cache, baseline=baseline, log=log
        )
        results["seconds"]["clustering"] = time.perf_counter() - started
    if "feedback-dev" not in only:
        results.pop("feedback_dev", None)  # run only for the titles; not reported
    results["bars"] = bars(results)
    results["seconds"]["total"] = time.perf_counter() - STARTED
    return results


def _finite(value: Any) -> Any:
    """NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def save(results: dict[str, Any], table: str, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "eval-results.json", out / "eval-results.md"
    json_path.write_text(
        json.dumps(_finite(results), indent=1, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )
    md_path.write_text(table + "\n", encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run: {','.join(SECTIONS)}",
    )
    parser.add_argument("--products", help="comma-separated feedback-dev products (folds)")
    parser.add_argument("--no-baseline", action="store_true", help="skip BERTopic's UMAP recipe")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench", help="folder for eval-results.json and .md"
    )
    parser.add_argument(
        "--train-share",
        type=float,
        default=1.0,
        help="train each fold on this share of its training rows, drawn at random "
        "(--train-seed): how far the figures move is the retraining's own noise",
    )
    parser.add_argument("--train-seed", type=int, default=0, help="seed of --train-share's draw")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    products = [p.strip() for p in args.products.split(",")] if args.products else None
    if not 0.0 < args.train_share <= 1.0:
        parser.error("--train-share must be in (0, 1]")
    results = run(
        only=only, products=products, baseline=not args.no_baseline,
        train_share=args.train_share, train_seed=args.train_seed,
    )  # fmt: skip
    table = render(results)
    print(table)
    json_path, md_path = save(results, table, args.out)
    log(f"saved {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
