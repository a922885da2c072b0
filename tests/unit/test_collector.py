"""The refresh pauses Python's cyclic collector (``triage.pipeline.collector``) and gives it back
as it found it."""

from __future__ import annotations

import gc

import pytest

from triage.config import Settings
from triage.pipeline import Pipeline
from triage.pipeline.collector import collector_paused


def test_collector_paused_for_the_block_and_restored_after_it_even_on_error():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block is still running
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a stage failed")
    assert gc.isenabled()


def test_collector_left_off_when_the_caller_had_turned_it_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_refresh_runs_with_the_collector_paused(monkeypatch):
    seen = []
    monkeypatch.setattr(Pipeline, "_refresh", lambda self, *a, **kw: seen.append(gc.isenabled()))
    Pipeline(Settings(database_url="sqlite://")).refresh(engine=None)  # type: ignore[arg-type]
    assert seen == [False] and gc.isenabled()
