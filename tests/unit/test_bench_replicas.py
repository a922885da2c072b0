"""``bench.replicas``' verdicts: the limit holds only when no more than the burst and its refill
got through, and the figures say so rather than hide it."""

from __future__ import annotations

from bench.replicas import table


def result(accepted: int, *, exactly_once: bool = True) -> dict:
    single = {"offered_rps": 400, "achieved_rps": 399.0, "p50_ms": 4.0, "p99_ms": 9.0,
              "errors": 0, "server_errors": 0}  # fmt: skip
    limit = {"burst": 100, "per_minute": 60, "sent": 800, "accepted": accepted,
             "refused_429": 800 - accepted, "allowed_at_most": 104}  # fmt: skip
    return {"seconds": 20, "rate": 400, "single": single, "limit": limit, "stored": 8104,
            "exactly_once": exactly_once}  # fmt: skip


def test_bench_replicas_says_whether_the_limit_held_across_processes():
    assert "held across both processes" in table(result(101))
    assert "NOT held" in table(result(200))  # one bucket per process: twice the burst
    assert "NOT exactly once" in table(result(101, exactly_once=False))
    assert "not measured" in table(None)
