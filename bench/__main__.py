"""``make bench``: every measured claim of the README, in one run on this machine.

1. Clustering on Banking77 against BERTopic's default UMAP + HDBSCAN on the same embeddings,
   plus clustering time at 10k, 50k and 100k units (bench.cluster).
2. The same data through the plain user path: ingest → run → export (bench.user_path).
3. Category decisions: held-out macro-F1 on fixtures/labelled.jsonl (bench.categorize).
4. Clustering on ticket-shaped data: fixtures/history against its true issues (bench.history).
5. Embedding: the default embedder against plain SentenceTransformer.encode on 10,000 Banking77
   train texts, and the whole triage of them against plain encode alone (bench.embed).
6. Ingestion under load: a real `triage serve` on loopback, batch tickets/s and single-POST
   latency at a fixed offered rate, on SQLite and (with TRIAGE_TEST_POSTGRES_URL) PostgreSQL
   (bench.load).
7. Refresh against stored traffic: a refresh with nothing pending and with 1,000 new tickets at
   10k, 100k and 1M stored model outputs (seconds, peak memory), and ingestion with that many
   stored, on SQLite and (with TRIAGE_TEST_POSTGRES_URL) PostgreSQL (bench.refresh).
8. Two API processes behind one port on PostgreSQL at 400 single POSTs/s, and the rate limit
   holding across both through Redis (bench.replicas; with TRIAGE_TEST_POSTGRES_URL and Redis).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import categorize, cluster, embed, history, load, refresh, replicas, user_path

RESULTS = Path(__file__).resolve().parent / "results.json"


def main() -> int:
    print(f"# triage benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    results: dict[str, Any] = {"date": datetime.now(UTC).date().isoformat()}
    print("## Clustering (Banking77 test, 3,080 queries, 77 intents)")
    results["cluster"] = cluster.run()
    print(cluster.table(results["cluster"]))
    print("\n## Plain user path on the same data")
    results["user_path"] = user_path.run()
    print("\n## Categories (fixtures/labelled.jsonl, held-out split)")
    results["categorize"] = categorize.run(save=False)
    print("\n## Clustering ticket-shaped data (fixtures/history, 33 true issues)")
    results["history"] = history.run()
    print(history.table(results["history"]))
    print("\n## Embedding and end to end (Banking77 train, 10,000 texts)")
    results["embed"] = embed.run()
    print("\n## Ingestion under load (triage serve on loopback, no worker, no rate limit)")
    results["load"] = load.run()
    print(load.table(results["load"]))
    print("\n## Two API processes behind one port (PostgreSQL, Redis for the limits)")
    results["replicas"] = replicas.run()
    print(replicas.table(results["replicas"]))
    print("\n## Refresh against stored traffic (rollups; fake embedder)")
    results["refresh"] = refresh.run(sizes=(10_000, 100_000, 1_000_000))
    print(refresh.table(results["refresh"]))
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nfigures written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
