"""Reactions to a chatbot's answers, through the user path, with the shipped classifier.

``bench/data/chat_reactions.json`` holds 80 turns of chats with assistants and support bots
(ten domains): the user's message, the bot's answer and what the user typed next, labelled by
cause: 50 answers that were wrong although the information was there (``model``), 10 faithful to
outdated records (``data``), 10 right but not what the user wanted (``expectation``), 10 where
the chat window failed (``ui``). They were written for this evaluation by a writer who saw
neither the fixtures nor the development sets, and nothing trains on them.

Each answer is logged as a bare model output (no confidence, eval score or sources, as a chatbot
logs it) among 300 unremarkable answers of the same bot, and each reaction names its answer.
The set runs twice: typed a minute after the answer (a quick reaction, issue 13: "evidence
against the model unless the text says otherwise") and three hours after (the words alone).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.eval_score import category_scores
from bench.eval_userpath import ROOT, Workspace, ticket_result

ITEMS = ROOT / "bench" / "data" / "chat_reactions.json"
BOT = "support-bot"
BACKGROUND = 300
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DELAYS = {"after 1 minute": timedelta(minutes=1), "after 3 hours": timedelta(hours=3)}

Log = Callable[[str], None]


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _output(output_id: str, question: str, answer: str, when: datetime) -> dict[str, Any]:
    return {"output_id": output_id, "model": BOT, "model_version": "1.0", "feature": "chat",
            "input": question, "output": answer, "created_at": _iso(when)}  # fmt: skip


def files(items: list[dict[str, Any]], delay: timedelta) -> tuple[list[dict], list[dict]]:
    """(outputs, tickets): the background answers, each item's answer two hours apart, and its
    reaction ``delay`` after it."""
    outputs = [
        _output(
            f"bg-{i}",
            "What are your opening hours?",
            "We are open 9 to 5 on weekdays.",
            START + timedelta(minutes=7 * i),
        )
        for i in range(BACKGROUND)
    ]
    tickets = []
    for i, item in enumerate(items):
        answered = START + timedelta(hours=2 * i + 1)
        outputs.append(_output(f"answer-{i}", item["question"], item["answer"], answered))
        tickets.append({"source": "chat", "external_id": f"reaction-{i}", "text": item["reaction"],
                        "output_id": f"answer-{i}", "created_at": _iso(answered + delay),
                        "metadata": {"product": BOT}})  # fmt: skip
    return outputs, tickets


def reactions(*, log: Log) -> dict[str, Any]:
    items = json.loads(ITEMS.read_text(encoding="utf-8"))
    gold = [item["label"] for item in items]
    results: dict[str, Any] = {"items": len(items), "runs": {}}
    for name, delay in DELAYS.items():
        started = time.perf_counter()
        outputs, tickets = files(items, delay)
        with tempfile.TemporaryDirectory(prefix="triage-eval-reactions-") as folder:
            workspace = Workspace(Path(folder))  # the shipped classifier
            log(f"[reactions] {len(tickets)} reactions {name}, {len(outputs)} bare answers")
            workspace.ingest_outputs(outputs)
            workspace.ingest_feedback(tickets)
            workspace.run()
            exported = workspace.export()
        keys = [(t["source"], t["external_id"]) for t in tickets]
        predicted = [row.get("category") for row in ticket_result(exported, keys)]
        results["runs"][name] = {
            **category_scores(gold, predicted),
            "seconds": time.perf_counter() - started,
        }
    return results
