"""The Settings handed to ``create_app`` reach the link and categorize stages (issue 12: they
used to read about 20 of their knobs from the environment, whatever the app was given)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import auth
from tests.db.test_pipeline import TOPICS
from triage.config import Settings, get_settings
from triage.models import Scope

# Two outputs the user saw 30 hours before writing: outside the environment's link window (1 h)
# and the default one (24 h), inside the window the app is given (48 h). Half an hour apart, they
# are too close to choose between unless the app's margin (0) allows it: the environment's (1)
# and the default (0.1) do not.
OUTPUT_AGES = (timedelta(hours=30), timedelta(hours=30.5))


def _issues_after_refresh(client, make_key) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    ingest, read = auth(make_key(Scope.ingest)), auth(make_key(Scope.read))
    outputs = [
        {
            "output_id": f"summary-{i}", "model": "summarizer", "model_version": "2.3.0",
            "output": "Export of the report screen", "user_id": "u-export",
            # A measurement, so the linked outputs' evidence has something to read.
            "confidence": 0.8, "created_at": (now - age).isoformat(),
        }
        for i, age in enumerate(OUTPUT_AGES)
    ]  # fmt: skip
    assert client.post("/v1/model-outputs", json={"items": outputs}, headers=ingest).is_success
    items = [
        {
            "source": "test", "external_id": f"{topic}-{i}", "text": text,
            "created_at": now.isoformat(), "user_id": "u-export" if topic == "export" else None,
        }
        for topic, texts in TOPICS.items()
        for i, text in enumerate(texts * 2)
    ]  # fmt: skip
    assert client.post("/v1/feedback", json={"items": items}, headers=ingest).is_success
    # The app's own worker processes the tickets, then refreshes the issues in one transaction.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        issues = client.get("/v1/issues", headers=read).json()["items"]
        if issues:
            # Each ticket's own decision carries the categorisation evidence; the issue's
            # aggregates its members'.
            feedback = client.get("/v1/feedback?limit=100", headers=read).json()["items"]
            tickets = [e for f in feedback for e in f.get("category_evidence") or []]
            return [*issues, {"model_versions": [], "evidence": tickets}]
        time.sleep(0.2)
    raise AssertionError("the worker made no issues in time")


@pytest.mark.parametrize("given", ["passed", "environment"])
def test_settings_passed_to_create_app_reach_link_and_categorize(
    given, settings, make_key, monkeypatch
):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    # What the environment says: a 1-hour link window, a margin no link clears, cue words count.
    monkeypatch.setenv("TRIAGE_LINK_WINDOW_HOURS", "1")
    monkeypatch.setenv("TRIAGE_LINK_MIN_MARGIN", "1")
    monkeypatch.setenv("TRIAGE_CATEGORIZE_WEIGHT_CUES", "1")
    get_settings.cache_clear()
    quick = {"worker_poll_seconds": 0.1}
    app_settings = (
        Settings(link_window_hours=48, link_min_margin=0.0, categorize_weight_cues=0.0, **quick)
        if given == "passed"
        else Settings(**quick)
    )
    with TestClient(create_app(app_settings, run_worker=True)) as client:
        issues = _issues_after_refresh(client, make_key)

    versions = [v["version"] for issue in issues for v in issue["model_versions"]]
    signals = {e["signal"] for issue in issues for e in issue["evidence"]}
    if given == "passed":
        assert versions == ["summarizer 2.3.0"]  # linked, to the later of the two outputs
        assert "outputs" in signals and "cues" not in signals  # cue words weigh nothing
    else:
        assert versions == []
        assert "outputs" not in signals and "cues" in signals
