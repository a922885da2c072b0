"""The weekly digest: sections on hand-built histories, weeks and time zones, escaping, storage,
delivery, the API route, the CLI, and a real browser rendering the HTML."""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import subprocess
import sys
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import delete
from sqlmodel import select
from typer.testing import CliRunner

from tests.conftest import auth
from tests.support.reliability import note
from triage import db, digest, store
from triage.cli import app
from triage.config import Settings
from triage.digest.examples import Candidate, choose_examples
from triage.errors import InvalidInputError
from triage.models import (
    AuditLog,
    Digest,
    Feedback,
    FeedbackCreate,
    Issue,
    Link,
    Membership,
    ModelOutput,
    Scope,
    Unit,
)
from triage.worker import Worker

WEEK = "2026-W45"  # Monday 2 November 2026 to Sunday 8 November, UTC
START = datetime(2026, 11, 2, tzinfo=UTC)
AFTER = START + timedelta(days=8)  # "now" for collect: the Tuesday after
RAW = "RAW-UNREDACTED-TEXT"
SCRIPT = "<script>alert(1)</script>"


def week_start(offset: int) -> datetime:
    """Monday 00:00 UTC of the week ``offset`` weeks from WEEK (0 = WEEK, -7 = first of eight)."""
    return START + timedelta(weeks=offset)


@pytest.fixture
def clean_engine(engine):  # type: ignore[no-untyped-def]
    # conftest's TRUNCATE list predates the digest table; a stored digest must not leak between
    # tests on PostgreSQL.
    with db.session_scope(engine) as session:
        session.execute(delete(Digest))
    return engine


class History:
    """Builds tickets, units, memberships, outputs and links directly in the database."""

    def __init__(self, session) -> None:  # type: ignore[no-untyped-def]
        self.session = session
        self.ids = count(1)
        self.prefix = uuid.uuid4().hex[:8]

    def issue(self, **fields) -> Issue:  # type: ignore[no-untyped-def]
        issue = Issue(**fields)
        self.session.add(issue)
        self.session.flush()
        return issue

    def ticket(  # type: ignore[no-untyped-def]
        self,
        when: datetime | None,
        issue: Issue | None = None,
        *,
        units: int = 1,
        customer: str | None = None,
        text: str = "the export button does nothing",
        output: ModelOutput | None = None,
        received: datetime | None = None,
    ) -> Feedback:
        n = next(self.ids)
        feedback = Feedback(
            source="test", external_id=f"{self.prefix}-{n}", text=RAW, text_sha256="0" * 64,
            redacted_text=text, status="processed", customer_id=customer or f"c{n}",
            created_at=when, received_at=received or when or START,
        )  # fmt: skip
        self.session.add(feedback)
        self.session.flush()
        for position in range(units):
            unit = Unit(feedback_id=feedback.id, position=position, text=text, text_hash=str(n))
            self.session.add(unit)
            self.session.flush()
            if issue is not None:
                self.session.add(Membership(unit_id=unit.id, issue_id=issue.id, method="cluster"))
        if output is not None:
            self.session.add(
                Link(
                    feedback_id=feedback.id,
                    model_output_id=output.id,
                    method="explicit",
                    confidence=1.0,
                )
            )
        self.session.flush()
        return feedback

    def output(self, when: datetime, version: str, **fields) -> ModelOutput:  # type: ignore[no-untyped-def]
        n = next(self.ids)
        output = ModelOutput(
            output_id=f"{self.prefix}-{n}", model=fields.pop("model", "summarizer"),
            model_version=version,
            created_at=when, content_sha256=str(n), input=fields.pop("input", f"question {n}"),
            output=fields.pop("output", f"answer {n}"), **fields,
        )  # fmt: skip
        self.session.add(output)
        self.session.flush()
        return output


def seed(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Eight weeks of history ending with WEEK.

    export (ui): 1,2,1,2,2,3,4,12 tickets, spiking per its trend; two-statement tickets in WEEK.
    prices (data): a steady 4-5 a week; its trend says +25%, not spiking: noise.
    invent (model): first seen in WEEK with 8 tickets, all linked to summarizer v2 outputs.
    longer (expectation): resolved two weeks before, regressed in WEEK.
    old (ui): merged into export in WEEK.
    """
    mid = timedelta(days=2, hours=10)  # Wednesday 10:00 of a week
    with db.session_scope(engine) as session:
        h = History(session)
        export = h.issue(
            title="Export button does nothing", category="ui", category_confidence=0.83,
            priority=0.9, size=30, customers=25,
            evidence=[
                {"reason": "mentions the export button", "signal": "cues"},
                {"reason": "linked outputs look healthy", "signal": "outputs"},
            ],
            priority_breakdown={"reach": 0.3, "trend": 0.2, "severity": 0.1, "volume": 0.05},
            trend={"this_week": 12, "trailing_mean": 2.25, "change": 4.3, "spiking": True,
                   "p_value": 1e-6},
            quotes=["The export button does nothing", f"{SCRIPT} export broke"],
            model_versions=[{"model": "summarizer", "version": "summarizer v1", "linked": 1,
                             "issue_share": 0.5, "share": 0.5, "traffic_share": 0.8,
                             "significant": False}],
        )  # fmt: skip
        prices = h.issue(
            title="Answers cite last year's prices", category="data", category_confidence=0.7,
            priority=0.7, size=34, customers=30,
            trend={"this_week": 5, "trailing_mean": 4.0, "change": 0.25, "spiking": False,
                   "p_value": 0.37},
        )  # fmt: skip
        invent = h.issue(
            title="Summaries invent numbers", category="model", category_confidence=0.9,
            priority=0.8, size=8, customers=8,
            trend={"this_week": 8, "trailing_mean": 0.0, "change": 8.0, "spiking": False,
                   "p_value": 0.02},
        )  # fmt: skip
        longer = h.issue(
            title="Wants longer answers", category="expectation", status="regressed",
            priority=0.4, size=3, customers=3, resolved_at=week_start(-2) + mid,
            lineage=[{"event": "created", "at": week_start(-6).isoformat()},
                     {"event": "regressed", "at": (week_start(0) + mid).isoformat()}],
        )  # fmt: skip
        old = h.issue(title="Old export complaint", category="ui", priority=0.5)

        for offset, n in zip(range(-7, 1), [1, 2, 1, 2, 2, 3, 4, 12], strict=True):
            for i in range(n):
                units = 2 if offset == 0 and i < 3 else 1
                text = f"{SCRIPT} export broke" if offset == 0 and i == 0 else "export is broken"
                h.ticket(week_start(offset) + mid, export, units=units, text=text)
        for offset, n in zip(range(-7, 1), [4, 5, 3, 4, 4, 5, 4, 5], strict=True):
            for _ in range(n):
                h.ticket(week_start(offset) + mid, prices, text="prices are from last year")
        v1 = [h.output(week_start(0) + mid, "v1") for _ in range(8)]
        v2 = [h.output(week_start(0) + mid, "v2", input="sum up Q3", output="Q3 grew 900%")
              for _ in range(2)]  # fmt: skip
        h.output(week_start(-1) + mid, "v1")  # last week's traffic is not this week's
        for i in range(8):
            h.ticket(week_start(0) + mid, invent, output=v2[i % 2], customer=f"m{i}",
                     text="the summary invented numbers")  # fmt: skip
        h.ticket(week_start(0) + mid, export, output=v1[0])
        for offset in (-3, -2, 0, 0):
            h.ticket(week_start(offset) + mid, longer, text="answers are too short")
        # Not in an issue: counts as feedback, and its statement as unassigned.
        h.ticket(week_start(0) + mid, None, customer="c-unassigned")
        # The boundaries: the last microsecond of WEEK is in it, the next Monday is not.
        h.ticket(week_start(1) - timedelta(microseconds=1), None, customer="c-late")
        h.ticket(week_start(1), None, customer="c-next-week")
        # No created_at: the week we received it.
        h.ticket(None, None, customer="c-no-time", received=week_start(0) + mid)

        session.add_all([
            AuditLog(at=week_start(-2) + mid, action="issue.update", target_type="issue",
                     target_id=str(longer.id), actor="key:1 (pm)",
                     before={"status": "open"}, after={"status": "resolved"}),
            AuditLog(at=week_start(0) + mid, action="issue.update", target_type="issue",
                     target_id=str(export.id), actor="key:1 (pm)",
                     before={"title": "export broken", "status": "open"},
                     after={"title": "Export button does nothing", "status": "open"}),
            AuditLog(at=week_start(0) + mid, action="issue.merge", target_type="issue",
                     target_id=str(old.id), actor="key:2 (eng)",
                     before={"merged_into": None}, after={"merged_into": export.id}),
            AuditLog(at=week_start(-1) + mid, action="issue.update", target_type="issue",
                     target_id=str(prices.id), actor="key:1 (pm)",
                     before={"category": "model"}, after={"category": "data"}),
        ])  # fmt: skip
        old.merged_into = export.id
        session.add(old)
        return {
            "export": export.id, "prices": prices.id, "invent": invent.id, "longer": longer.id,
            "old": old.id,
        }  # fmt: skip


def collect(engine, settings: Settings, week: str = WEEK, now: datetime = AFTER):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return digest.collect(session, week=week, settings=settings, now=now)


def all_issues(data) -> dict[int, digest.TopIssue]:  # type: ignore[no-untyped-def]
    return {top.issue.id: top for group in data.top for top in group.issues}


# --- weeks ---------------------------------------------------------------------------------------


def test_digest_parse_week_gives_utc_monday_to_monday():
    assert digest.parse_week("2026-W47") == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    # ISO week 1 of 2026 starts in 2025; 2026 has a week 53, 2025 has not.
    assert digest.parse_week("2026-W01")[0] == datetime(2025, 12, 29, tzinfo=UTC)
    assert digest.parse_week("2026-W53")[1] == datetime(2027, 1, 4, tzinfo=UTC)
    assert digest.shift_week("2026-W53", 1) == "2027-W01"
    assert digest.shift_week("2027-W01", -1) == "2026-W53"
    for bad in ("2026-47", "2026-W7", "2026W47", "2025-W53", "2026-W00", "", "2026-W47 "):
        with pytest.raises(InvalidInputError):
            digest.parse_week(bad)


# Issue 14, smaller defects: out-of-range weeks were a 500 (OverflowError) and other scripts'
# digits named the same week again ("٢٠٢٦-W47" is int 2026), each name storing its own digest.
NON_ASCII_WEEKS = ("٢٠٢٦-W47", "2026-W４７", "２０２６-W47", "2026-Ｗ47", "2026-W٤٧")
OUT_OF_RANGE_WEEKS = (
    *(f"0001-W0{n}" for n in range(1, 9)), "9999-W52", "9999-W01", "0000-W01", "1969-W52",
    "2026-W54", "2025-W53", "2026-W00", "2026-W99",
)  # fmt: skip


def test_digest_parse_week_takes_ascii_digits_and_in_range_weeks_only(clean_engine, settings):  # type: ignore[no-untyped-def]
    for bad in (*NON_ASCII_WEEKS, *OUT_OF_RANGE_WEEKS):
        with pytest.raises(InvalidInputError) as raised:
            digest.parse_digest_week(bad)
        assert raised.value.details == {"field": "week"}, bad
    for bad in (*NON_ASCII_WEEKS, "9999-W52", "2026-W54", "2025-W53"):
        with pytest.raises(InvalidInputError):
            digest.parse_week(bad)
    with pytest.raises(InvalidInputError, match="out of range"):
        digest.shift_week("0001-W08", -8)
    assert digest.parse_digest_week("1970-W01")[0] == datetime(1969, 12, 29, tzinfo=UTC)
    assert digest.parse_digest_week("9998-W52")[1] == datetime(9998, 12, 28, tzinfo=UTC)
    # The first and last weeks have digests: their chart windows stay in range.
    now = datetime(9999, 6, 1, tzinfo=UTC)
    for week in ("1970-W01", "9998-W52"):
        made = digest.generate(clean_engine, week=week, fmt="md", settings=settings, now=now)
        assert made.summary["week"] == week


def test_digest_week_of_and_last_complete_week_normalise_time_zones():
    new_york = timezone(timedelta(hours=-5))
    sunday_night = datetime(2026, 11, 8, 23, 30, tzinfo=new_york)  # Monday 04:30 UTC
    assert digest.week_of(sunday_night) == "2026-W46"
    assert digest.week_of(datetime(2026, 11, 8, 23, 59, 59, 999999, tzinfo=UTC)) == "2026-W45"
    assert digest.week_of(datetime(2026, 11, 9, tzinfo=UTC)) == "2026-W46"
    assert digest.week_of(datetime(2026, 11, 9)) == "2026-W46"  # naive means UTC
    assert digest.last_complete_week(datetime(2026, 11, 23, tzinfo=UTC)) == "2026-W47"
    assert digest.last_complete_week(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)) == "2026-W46"
    assert digest.last_complete_week(sunday_night) == "2026-W45"


def test_digest_due_at_follows_the_schedule():
    # 2026-W47 ends on Monday 2026-11-23 00:00 UTC; its digest is due `weekday`/`hour` after.
    assert digest.due_at("2026-W47", weekday=0, hour=8) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert digest.due_at("2026-W47", weekday=2, hour=17) == datetime(2026, 11, 25, 17, tzinfo=UTC)
    assert digest.due_at("2026-W53", weekday=0, hour=8) == datetime(2027, 1, 4, 8, tzinfo=UTC)
    monday_0759 = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)
    assert digest.last_complete_week(monday_0759) == "2026-W47"
    assert monday_0759 < digest.due_at("2026-W47", weekday=0, hour=8)


def test_digest_week_boundaries_and_time_zones_in_the_database(clean_engine, settings):  # type: ignore[no-untyped-def]
    new_york = timezone(timedelta(hours=-5))
    items = [
        # Sunday 23:30 in New York is Monday 04:30 UTC: the next ISO week.
        FeedbackCreate(source="s", external_id="ny", text="a",
                       created_at=datetime(2026, 11, 8, 23, 30, tzinfo=new_york)),
        FeedbackCreate(source="s", external_id="utc-last", text="b",
                       created_at=datetime(2026, 11, 8, 23, 59, 59, 999000, tzinfo=UTC)),
        FeedbackCreate(source="s", external_id="tokyo", text="c",  # Monday 08:00 JST = Sunday UTC
                       created_at=datetime(2026, 11, 9, 8, 0, tzinfo=timezone(timedelta(hours=9)))),
        FeedbackCreate(source="s", external_id="utc-first", text="d",
                       created_at=datetime(2026, 11, 9, tzinfo=UTC)),
    ]  # fmt: skip
    with db.session_scope(clean_engine) as session:
        store.add_feedback(session, items=items)
    w45 = collect(clean_engine, settings, "2026-W45", now=datetime(2026, 11, 23, tzinfo=UTC))
    w46 = collect(clean_engine, settings, "2026-W46", now=datetime(2026, 11, 23, tzinfo=UTC))
    assert w45.figure("feedback").this_week == 2
    assert w46.figure("feedback").this_week == 2
    assert w46.figure("feedback").last_week == 2


# --- sections ------------------------------------------------------------------------------------


def test_digest_headline_figures_count_the_week_and_the_week_before(clean_engine, settings):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    data = collect(clean_engine, settings)
    # 12 export + 1 linked export + 5 prices + 8 invent + 2 longer + unassigned + last-microsecond
    # + received-only; the ticket at next Monday 00:00 is not in it.
    figures = {f.name: (f.this_week, f.last_week) for f in data.headline}
    assert figures["feedback"] == (31, 8)
    assert figures["customers"] == (31, 8)
    assert figures["new"] == (1, 0)
    # Export and invent; in W44 export grew from 2 a week to 4, too few for a spike.
    assert figures["growing"] == (2, 1)
    assert figures["spiking"] == (2, 0)
    assert figures["resolved"] == (0, 0)
    assert figures["regressed"] == (1, 0)
    assert figures["linked"][0] == pytest.approx(9 / 31)
    # 34 statements this week (3 tickets with two), 3 in no issue.
    assert figures["unassigned"][0] == pytest.approx(3 / 34)
    assert figures["unassigned"][1] == 0


def test_digest_top_issues_are_grouped_by_category_with_weekly_volumes(clean_engine, settings):  # type: ignore[no-untyped-def]
    ids = seed(clean_engine)
    data = collect(clean_engine, settings)
    assert [group.category for group in data.top] == ["ui", "model", "data", "expectation"]
    tops = all_issues(data)
    assert ids["old"] not in tops  # merged away
    export = tops[ids["export"]]
    # Distinct tickets per ISO week: two-statement tickets count once, the linked one adds one.
    assert export.issue.weekly == [1, 2, 1, 2, 2, 3, 4, 13]
    assert tops[ids["prices"]].issue.weekly == [4, 5, 3, 4, 4, 5, 4, 5]
    assert tops[ids["invent"]].issue.weekly == [0] * 7 + [8]
    assert export.breakdown[0] == ("reach", 0.3)
    assert export.evidence[0] == ("cues", "mentions the export button")
    assert len(export.quotes) == 3 - 1  # the issue keeps two quotes
    assert export.model_versions == [
        "summarizer v1: 50% of linked outputs vs 80% of summarizer traffic"
    ]
    invent = tops[ids["invent"]]
    assert [e.output for e in invent.examples] == ["Q3 grew 900%"]  # two outputs, one text
    assert invent.examples[0].input == "sum up Q3"
    # No quotes stored on the issue: its newest redacted statements stand in.
    assert invent.quotes == ["the summary invented numbers"]  # distinct statements only


def test_digest_new_growing_regressed_and_spiking_not_flagged_on_noise(clean_engine, settings):  # type: ignore[no-untyped-def]
    ids = seed(clean_engine)
    data = collect(clean_engine, settings)
    assert [n.issue.id for n in data.new] == [ids["invent"]]
    assert data.new[0].first_seen == week_start(0) + timedelta(days=2, hours=10)
    changes = {c.issue.id: c for c in data.changes}
    # Judged on the digest's week by the ranker's own test, not read from the last ranking:
    # 13 tickets after 2, 2, 3 and 4; 8 for a new issue.
    assert list(changes) == [ids["invent"], ids["export"]]  # the larger change first
    export = changes[ids["export"]]
    assert (export.this_week, export.trailing_mean) == (13, 2.75) and export.spiking
    assert export.change == pytest.approx((13 - 2.75) / 2.75)
    assert changes[ids["invent"]].spiking and changes[ids["invent"]].p_value < 1e-6
    assert ids["prices"] not in changes  # +25% on a steady 4-5 a week is noise
    [regression] = data.regressions
    assert regression.issue.id == ids["longer"]
    assert regression.resolved_at == week_start(-2) + timedelta(days=2, hours=10)
    assert regression.issue.this_week == 2


def test_digest_corrections_category_mix_and_model_versions(clean_engine, settings):  # type: ignore[no-untyped-def]
    ids = seed(clean_engine)
    data = collect(clean_engine, settings)
    corrections = [(c.issue_id, c.description) for c in data.corrections]
    assert corrections == [
        (ids["export"], "renamed from “export broken” to “Export button does nothing”"),
        (ids["old"], f"merged into #{ids['export']} Export button does nothing"),
    ]  # last week's recategorisation is not in this week's digest
    mix = data.category_mix
    assert mix.weeks[0] == "2026-W38" and mix.weeks[-1] == WEEK
    assert mix.counts["ui"][-1] == 12 + 3 + 1  # statements, not tickets
    assert mix.counts["data"] == [4, 5, 3, 4, 4, 5, 4, 5]
    assert mix.counts["model"][-1] == 8
    assert mix.counts["expectation"][-4:] == [1, 1, 0, 2]
    versions = {v.version: v for v in data.versions}
    assert (versions["v1"].traffic, versions["v2"].traffic) == (8, 2)
    assert versions["v2"].traffic_share == pytest.approx(0.2)
    assert versions["v2"].complaint_share == pytest.approx(8 / 9)
    assert versions["v2"].flagged and not versions["v1"].flagged
    assert data.versions[0].version == "v2"


def test_digest_past_week_trends_are_that_weeks(clean_engine, settings):  # type: ignore[no-untyped-def]
    ids = seed(clean_engine)
    assert collect(clean_engine, settings).notes == []
    # W44's digest made three weeks later still judges W44: export's 4 after 1, 2, 2 and 3.
    earlier = collect(clean_engine, settings, week="2026-W44", now=AFTER + timedelta(weeks=3))
    assert earlier.notes == []
    [export] = earlier.changes
    assert export.issue.id == ids["export"]
    assert (export.this_week, export.trailing_mean, export.spiking) == (4, 2.0, False)


def test_digest_examples_are_the_issues_own_and_show_low_confidence(clean_engine, settings):  # type: ignore[no-untyped-def]
    mid = week_start(0) + timedelta(days=2)
    low_confidence = {
        "reason": "linked outputs' median confidence score 0.40 vs 0.85 across traffic",
        "signal": "outputs", "category": "model", "contribution": 0.6,
        "data": {"confidence": {"linked_median": 0.4, "traffic_median": 0.85,
                                "linked_percentile": 0.05, "p_lower": 0.001}},
    }  # fmt: skip
    with db.session_scope(clean_engine) as session:
        h = History(session)
        vague = h.issue(title="Summaries are vague", category="model", priority=0.9, size=9,
                        evidence=[low_confidence])  # fmt: skip
        other = h.issue(title="Export is slow", category="ui", priority=0.1, size=2)
        for confidence in (0.98, 0.84, 0.35, 0.2):
            output = h.output(mid, "v1", confidence=confidence, output=f"summary at {confidence}")
            h.ticket(mid, vague, output=output, text="the summary says nothing")
        # The lowest confidence of all, but from another product...
        recommended = h.output(mid, "v1", model="recommender", confidence=0.1)
        h.ticket(mid, vague, output=recommended, text="the summary says nothing")
        # ...and from a ticket that is mostly about another issue, with one side remark here.
        aside = h.ticket(mid, other, units=2, output=h.output(mid, "v1", confidence=0.05))
        unit = Unit(feedback_id=aside.id, position=2, text="also vague", text_hash="aside")
        session.add(unit)
        session.flush()
        session.add(Membership(unit_id=unit.id, issue_id=vague.id, method="cluster"))
        vague_id = vague.id
    top = all_issues(collect(clean_engine, settings))[vague_id]
    assert [e.output_confidence for e in top.examples] == [0.2, 0.35]
    assert {e.model for e in top.examples} == {"summarizer"}
    assert top.examples_note == "the lowest confidence first"


def test_digest_examples_follow_the_version_or_stale_sources_the_evidence_names():
    def candidate(n: int, version: str, *, link: float = 1.0, days_old: float = 0, **meta):  # type: ignore[no-untyped-def]
        made = START + timedelta(days=2) - timedelta(days=days_old)
        output = ModelOutput(id=n, output_id=f"o{n}", model="summarizer", model_version=version,
                             created_at=made, content_sha256="0", output=f"answer {n}",
                             meta=meta)  # fmt: skip
        return Candidate(output, Link(feedback_id=n, model_output_id=n, method="explicit",
                                      confidence=link), made, main=True)  # fmt: skip

    def chosen(candidates, evidence):  # type: ignore[no-untyped-def]
        picked, note = choose_examples(candidates, evidence, start=START,
                                       end=START + timedelta(weeks=1), limit=2)  # fmt: skip
        return [c.output.id for c in picked], note

    version = {
        "signal": "outputs",
        "category": "model",
        "reason": "v2 is over-represented",
        "data": {"concentration": {"model": "summarizer", "version": "summarizer v2"}},
    }
    # Only v2's, older and less surely linked: v1's would not show what the evidence says.
    older_v2 = candidate(3, "v2", link=0.5, days_old=8)
    assert chosen([candidate(1, "v1"), candidate(2, "v1"), older_v2], [version]) == (
        [3], "from summarizer v2, the version the evidence names",
    )  # fmt: skip

    stale = {"signal": "outputs", "category": "data", "reason": "cites a stale policy",
             "data": {"freshness": {"stale_sources": [{"source": "kb:returns",
                                                       "typical_age_days": 10}]}}}  # fmt: skip
    fresh_source = [{"id": "kb:returns", "as_of": (START - timedelta(days=1)).date().isoformat()}]
    old_source = [{"id": "kb:returns", "as_of": "2026-01-05"}]
    older_source = [{"id": "kb:returns", "as_of": "2025-06-30"}]
    candidates = [candidate(1, "v1", sources=fresh_source), candidate(2, "v1"),
                  candidate(3, "v1", link=0.6, sources=old_source),
                  candidate(4, "v1", link=0.6, sources=older_source)]  # fmt: skip
    assert chosen(candidates, [stale]) == ([4, 3], "citing the stale sources, oldest first")

    healthy = {"signal": "outputs", "category": "ui", "reason": "linked outputs look healthy"}
    assert chosen(candidates, [healthy]) == ([1, 2], "the week's surest links first")


def test_digest_model_versions_show_shares_and_no_traffic_is_not_zero(clean_engine, settings):  # type: ignore[no-untyped-def]
    mid = week_start(0) + timedelta(days=2)
    with db.session_scope(clean_engine) as session:
        h = History(session)
        issue = h.issue(
            title="Summaries invent owners", category="model", priority=0.9, size=6,
            model_versions=[
                {"model": "summarizer", "version": "summarizer v2", "linked": 4,
                 "issue_share": 0.8, "share": 1.0, "traffic_share": 0.25, "significant": True},
                {"model": "recommender", "version": "recommender r1", "linked": 1,
                 "issue_share": 0.2, "share": 1.0, "traffic_share": 1.0, "significant": False},
            ],
        )  # fmt: skip
        for _ in range(3):
            h.output(mid, "v1")
        # v2 served nothing this week; the week's complaints are about last week's outputs.
        old = h.output(mid - timedelta(weeks=1), "v2")
        for _ in range(3):
            h.ticket(mid, issue, output=old)
        issue_id = issue.id
    data = collect(clean_engine, settings)
    assert all_issues(data)[issue_id].model_versions == [
        "summarizer v2: 80% of linked outputs (4); 100% of the summarizer ones vs 25% of "
        "summarizer traffic; far above its share of traffic",
        "recommender r1: 20% of linked outputs (1)",  # its model's only version
    ]
    versions = {v.version: v for v in data.versions}
    assert versions["v1"].traffic == 3 and versions["v1"].traffic_share == 1.0
    v2 = versions["v2"]
    assert (v2.traffic, v2.traffic_share, v2.lift, v2.complaints) == (None, None, None, 3)
    assert not v2.flagged  # no traffic to compare with
    text = digest.render_markdown(data)
    assert "| summarizer | v2 | — | — | 3 | 100% | — |" in text
    assert "no output of that version was logged this week" in text
    page = digest.render_html(data)
    assert 'data-label="Outputs">—<' in page and 'data-label="Outputs">0<' not in page


# --- rendering -----------------------------------------------------------------------------------


def test_digest_html_escapes_customer_text_and_is_self_contained(clean_engine, settings):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    page = digest.render_html(collect(clean_engine, settings))
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; export broke" in page
    assert "<script" not in page.lower()
    assert RAW not in page
    for fetches in ("<link", "src=", "url(", "@import", "http:", "https:", "<img", "<iframe"):
        assert fetches not in page.lower(), fetches
    assert page.count('class="sparkline"') >= 4 and 'class="category-mix"' in page
    assert "@media print" in page and 'name="viewport"' in page
    for section in ("New this week", "Growing and spiking", "Resolved, then regressed",
                    "Corrected by people", "Category mix", "Model versions"):  # fmt: skip
        assert section in page


def test_digest_markdown_escapes_customer_text(clean_engine, settings):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    text = digest.render_markdown(collect(clean_engine, settings))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; export broke" in text
    assert "<script" not in text.lower() and RAW not in text
    assert "▁" in text and "| summarizer | v2 | 2 | 20% | 8 | 89% | 4.4× ⚠ |" in text
    assert digest.md_escape("# *bold* [x](javascript:y) a|b <b>&amp;") == (
        r"\# \*bold\* \[x\](javascript:y) a\|b &lt;b&gt;&amp;amp;"
    )
    assert digest.md_escape("1. first\nline") == r"1\. first line"
    assert digest.md_escape("- item") == r"\- item"


# --- storing -------------------------------------------------------------------------------------


def test_digest_stored_digest_is_returned_unchanged(clean_engine, settings):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    first = digest.generate(clean_engine, week=WEEK, fmt="md", settings=settings, now=AFTER)
    assert first.summary["headline"]["feedback"]["this_week"] == 31
    with db.session_scope(clean_engine) as session:
        History(session).ticket(START + timedelta(hours=1), None, customer="late-arrival")
    later = AFTER + timedelta(days=30)
    again = digest.generate(clean_engine, week=WEEK, fmt="md", settings=settings, now=later)
    assert (again.id, again.content, again.generated_at) == (
        first.id, first.content, first.generated_at,
    )  # fmt: skip
    fresh = digest.generate(
        clean_engine, week=WEEK, fmt="md", settings=settings, now=later, regenerate=True
    )
    assert fresh.id == first.id and fresh.content != first.content
    assert fresh.summary["headline"]["feedback"]["this_week"] == 32
    # The next week's digest judges the week before on its own counts, as this one did.
    nxt = collect(clean_engine, settings, week="2026-W46", now=later)
    assert nxt.figure("growing").last_week == 2 and nxt.figure("spiking").last_week == 2
    with pytest.raises(InvalidInputError, match="not over"):
        digest.generate(clean_engine, week="2026-W46", fmt="md", settings=settings, now=AFTER)
    with pytest.raises(InvalidInputError, match="format"):
        digest.generate(clean_engine, week=WEEK, fmt="pdf", settings=settings, now=AFTER)


def test_digest_is_stored_only_once_its_week_is_closed(clean_engine, settings):  # type: ignore[no-untyped-def]
    """Issue 14: a digest asked for while its week still took tickets was stored for good, and
    its HTML then disagreed with the Markdown made later."""
    seed(clean_engine)
    _, end = digest.parse_week(WEEK)
    closes = digest.closes_at(WEEK, settings)
    assert closes == end + timedelta(hours=8)  # Monday 08:00 UTC, when the worker makes it
    early = digest.generate(clean_engine, week=WEEK, fmt="md", settings=settings, now=end)
    assert early.id is None and early.summary["headline"]["feedback"]["this_week"] == 31
    with db.session_scope(clean_engine) as session:
        assert store.get_digest(session, week=WEEK, fmt="md") is None
        History(session).ticket(START + timedelta(hours=1), None, customer="late-arrival")
    before_close = closes - timedelta(microseconds=1)
    html = digest.generate(clean_engine, week=WEEK, fmt="html", settings=settings, now=before_close)
    assert html.id is None and html.summary["headline"]["feedback"]["this_week"] == 32
    # Closed: both formats are made from one reading of the data and stored together.
    stored = digest.generate(clean_engine, week=WEEK, fmt="html", settings=settings, now=closes)
    assert stored.id is not None
    with db.session_scope(clean_engine) as session:
        md = store.get_digest(session, week=WEEK, fmt="md")
        History(session).ticket(START + timedelta(hours=2), None, customer="later-still")
    assert md is not None and md.generated_at == stored.generated_at
    assert md.summary == stored.summary and md.summary["headline"]["feedback"]["this_week"] == 32
    later = digest.generate(clean_engine, week=WEEK, fmt="md", settings=settings, now=AFTER)
    assert (later.id, later.content) == (md.id, md.content)


def test_digest_api_refuses_non_ascii_and_out_of_range_weeks_and_stores_nothing(  # type: ignore[no-untyped-def]
    clean_engine, client, make_key, record_property
):
    note(record_property, fault="digest weeks in non-ASCII digits and out of range "
         "(0001-W01, 9999-W52, week 53 of a 52-week year, W54, W00)",
         tried=len(NON_ASCII_WEEKS) + len(OUT_OF_RANGE_WEEKS),
         checked="422 naming the week in both formats, never a 500; no digest row")  # fmt: skip
    read = make_key(Scope.read)
    for week in (*NON_ASCII_WEEKS, *OUT_OF_RANGE_WEEKS):
        for fmt in ("html", "md"):
            answer = client.get(f"/v1/digests/{week}?format={fmt}", headers=auth(read))
            assert answer.status_code == 422, (week, answer.text)
            error = answer.json()["error"]
            assert error["code"] in ("invalid_fields", "invalid_input"), week
            assert "week" in json.dumps(error), week
    with db.session_scope(clean_engine) as session:
        assert session.exec(select(Digest)).first() is None


def test_digest_api_answers_an_unclosed_week_unstored(
    clean_engine, client, make_key, monkeypatch, record_property
):  # type: ignore[no-untyped-def]
    note(record_property, fault="a digest read before its week is closed", tried=2,
         checked="answered with no-store and not stored; stored once closed")  # fmt: skip
    seed(clean_engine)
    read = make_key(Scope.read)
    _, end = digest.parse_week(WEEK)
    module = sys.modules["triage.digest.generate"]  # the package's `generate` is the function
    monkeypatch.setattr(module, "utcnow", lambda: end + timedelta(hours=3))
    page = client.get(f"/v1/digests/{WEEK}", headers=auth(read))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    with db.session_scope(clean_engine) as session:
        assert session.exec(select(Digest)).first() is None
    monkeypatch.setattr(module, "utcnow", lambda: end + timedelta(hours=8))
    page = client.get(f"/v1/digests/{WEEK}", headers=auth(read))
    assert page.status_code == 200 and "cache-control" not in page.headers
    with db.session_scope(clean_engine) as session:
        assert sorted(d.format for d in session.exec(select(Digest))) == ["html", "md"]


# --- delivery ------------------------------------------------------------------------------------

# Signing and the delivery id have tests of their own in tests/db/test_digest_delivery.py.
SECRET = "test-webhook-secret-0123456789"
SIGNED = {"secret": SECRET, "delivery": f"{WEEK}-0123456789abcdef"}


def test_digest_webhook_retries_errors_with_exponential_backoff():
    answers = [httpx.ConnectError("down"), httpx.Response(503), httpx.Response(429),
               httpx.Response(204)]  # fmt: skip
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sleeps: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    response = digest.deliver_webhook(
        "https://hooks.example/secret", {"week": WEEK}, backoff=0.5, client=client,
        sleep=sleeps.append, **SIGNED,
    )  # fmt: skip
    assert response.status_code == 204
    assert sleeps == [0.5, 1.0, 2.0] and len(seen) == 4 and b'"week"' in seen[0]

    refused = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    with pytest.raises(digest.DigestDeliveryError, match="HTTP 404") as error:
        digest.deliver_webhook(
            "https://hooks.example/secret", {}, client=refused, sleep=sleeps.append, **SIGNED
        )
    assert "secret" not in error.value.message  # the URL's path may be a credential

    down = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    sleeps.clear()
    with pytest.raises(digest.DigestDeliveryError, match="after 3 attempts"):
        digest.deliver_webhook("https://h.example/x", {}, attempts=3, backoff=1, client=down,
                               sleep=sleeps.append, **SIGNED)  # fmt: skip
    assert sleeps == [1, 2]


def test_digest_worker_hook_generates_and_delivers_once(clean_engine, settings, tmp_path):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    settings = settings.model_copy(
        update={
            "digest_webhook_url": "https://hooks.example/T0/secret",
            "digest_webhook_secret": SecretStr(SECRET),
            "digest_base_url": "https://triage.example.com/",
            "digest_dir": str(tmp_path / "digests"),
            "digest_webhook_backoff_seconds": 0.0,
            "digest_webhook_attempts": 2,
            "digest_retry_minutes": 30,
        }
    )
    posts: list[httpx.Request] = []
    status = [500, 500, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(status.pop(0))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    due = datetime(2026, 11, 9, 8, tzinfo=UTC)  # Monday 08:00 after WEEK
    assert digest.maybe_generate_digest(clean_engine, settings, due - timedelta(seconds=1),
                                        client=client) is None  # fmt: skip
    with db.session_scope(clean_engine) as session:
        assert store.get_digest(session, week=WEEK, fmt="html") is None

    # Due: generated in both formats, written, but the webhook fails twice: not delivered.
    assert digest.maybe_generate_digest(clean_engine, settings, due, client=client) is None
    assert sorted(p.name for p in (tmp_path / "digests").iterdir()) == [
        f"digest-{WEEK}.html", f"digest-{WEEK}.md",
    ]  # fmt: skip
    with db.session_scope(clean_engine) as session:
        failed = store.get_digest(session, week=WEEK, fmt="html")
        assert store.get_digest(session, week=WEEK, fmt="md") is not None
    assert failed.delivered_at is None and "HTTP 500" in failed.summary["delivery"]["error"]
    assert len(posts) == 2
    # Not retried before digest_retry_minutes.
    retry = due + timedelta(minutes=31)
    assert digest.maybe_generate_digest(clean_engine, settings, due + timedelta(minutes=5),
                                        client=client) is None  # fmt: skip
    assert len(posts) == 2
    delivered = digest.maybe_generate_digest(clean_engine, settings, retry, client=client)
    assert delivered is not None and delivered.delivered_at is not None
    assert delivered.content == failed.content  # the stored digest, not a new one
    payload = httpx.Response(200, content=posts[-1].content).json()
    assert payload["link"] == f"https://triage.example.com/v1/digests/{WEEK}?format=html"
    assert payload["path"].endswith(f"digest-{WEEK}.html")
    assert payload["summary"]["headline"]["feedback"]["this_week"] == 31
    assert payload["text"].startswith(f"Feedback digest {WEEK}: 31 feedback items")
    # Once delivered, never again.
    assert digest.maybe_generate_digest(clean_engine, settings, retry + timedelta(hours=1),
                                        client=client) is None  # fmt: skip
    assert len(posts) == 3


@dataclass
class Receiver:
    """A webhook receiver on loopback: what it was sent, and the statuses it answers (then 200)."""

    url: str
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.posts.append((self.path, body))
            self.send_response(found.statuses.pop(0) if found.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}/T0/secret-path"
    yield found
    server.shutdown()
    server.server_close()
    thread.join(5)


def scheduled(settings: Settings, receiver: Receiver) -> Settings:
    # Due every Monday 00:00, so last week's digest is always overdue, whenever the test runs.
    return settings.model_copy(
        update={
            "digest_webhook_url": receiver.url,
            "digest_webhook_secret": SecretStr(SECRET),
            "digest_weekday": 0,
            "digest_hour": 0,
            "digest_webhook_attempts": 1,
            "digest_webhook_backoff_seconds": 0.0,
            "digest_retry_minutes": 0,
        }
    )


def test_digest_worker_posts_an_overdue_digest_once(clean_engine, settings, receiver, caplog):  # type: ignore[no-untyped-def]
    """Issue 14, "The scheduled digest never runs": no worker round ever called the schedule."""
    caplog.set_level(logging.INFO)  # what `triage worker` logs at
    settings = scheduled(settings, receiver)
    worker = Worker(settings)
    for _ in range(3):
        assert worker.tick() == 0
    week = digest.last_complete_week()
    assert [path for path, _ in receiver.posts] == ["/T0/secret-path"]
    payload = json.loads(receiver.posts[0][1])
    assert payload["week"] == week and payload["text"].startswith(f"Feedback digest {week}: 0")
    with db.session_scope(clean_engine) as session:
        assert store.get_digest(session, week=week, fmt="html").delivered_at is not None
        assert store.get_digest(session, week=week, fmt="md") is not None
    # Another worker, or this one restarted, finds it delivered.
    Worker(settings).tick()
    assert len(receiver.posts) == 1
    assert "secret-path" not in caplog.text  # httpx logs request URLs at INFO


def test_digest_worker_survives_a_failed_delivery_and_retries(clean_engine, settings, receiver):  # type: ignore[no-untyped-def]
    receiver.statuses += [503]
    worker = Worker(scheduled(settings, receiver))
    assert worker.tick() == 0  # a 503 is logged, not raised
    week = digest.last_complete_week()
    with db.session_scope(clean_engine) as session:
        failed = store.get_digest(session, week=week, fmt="html")
    assert failed.delivered_at is None and "HTTP 503" in failed.summary["delivery"]["error"]
    worker.tick()
    worker.tick()
    assert len(receiver.posts) == 2
    assert json.loads(receiver.posts[1][1])["week"] == week


def test_digest_worker_keeps_no_schedule_without_a_webhook_or_folder(settings):  # type: ignore[no-untyped-def]
    assert Worker(settings).digests is None


# --- API and CLI ---------------------------------------------------------------------------------


def test_digest_api_route_needs_read_scope_validates_week_and_sets_headers(  # type: ignore[no-untyped-def]
    clean_engine, client, make_key
):
    seed(clean_engine)
    read, ingest, admin = make_key(Scope.read), make_key(Scope.ingest), make_key(Scope.admin)
    url = f"/v1/digests/{WEEK}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth(ingest)).status_code == 403
    page = client.get(url, headers=auth(read))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "&lt;script&gt;" in page.text and "<script" not in page.text
    text = client.get(url + "?format=md", headers=auth(admin))
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/markdown")
    assert text.text.startswith(f"# Customer feedback digest, {WEEK}")
    assert client.get(url, headers=auth(read)).text == page.text  # stored, answered the same
    for bad in ("2026-47", "2026-W99", "W47", "2026-W4x"):
        answer = client.get(f"/v1/digests/{bad}", headers=auth(read))
        assert answer.status_code == 422, bad
        assert answer.json()["error"]["code"] in ("invalid_fields", "invalid_input")
    assert client.get(url + "?format=pdf", headers=auth(read)).status_code == 422
    future = digest.shift_week(digest.last_complete_week(), 2)
    assert client.get(f"/v1/digests/{future}", headers=auth(read)).status_code == 422


def test_digest_cli_writes_a_file_and_prints_its_path(clean_engine, settings, tmp_path):  # type: ignore[no-untyped-def]
    seed(clean_engine)
    runner = CliRunner()
    out = tmp_path / "out" / "digest.md"
    result = runner.invoke(
        app, ["digest", "--week", WEEK, "--format", "md", "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith(f"# Customer feedback digest, {WEEK}")
    assert str(out.resolve()) in result.stderr
    to_stdout = runner.invoke(app, ["digest", "--week", WEEK], catch_exceptions=False)
    assert to_stdout.stdout.startswith("<!DOCTYPE html>")
    bad = runner.invoke(app, ["digest", "--week", "2026-47"])
    assert bad.exit_code == 1 and "2026-W47" in bad.stderr
    for week in ("٢٠٢٦-W47", "0001-W01", "9999-W52"):
        bad = runner.invoke(app, ["digest", "--week", week])
        assert bad.exit_code == 1 and "Traceback" not in bad.stderr and week in bad.stderr, week


# --- a real browser ------------------------------------------------------------------------------


def png_pixels(path: Path) -> np.ndarray:
    """The RGB pixels (height, width, 3) of an 8-bit, non-interlaced PNG, as Chromium writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * bpp + 1)
    image = np.zeros((height, width * bpp), dtype=np.uint8)
    previous = np.zeros(width * bpp, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along the row, per channel, mod 256
            row = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average or Paeth: each byte depends on the one just decoded
            out, up = [0] * (width * bpp), previous.tolist()
            for i, value in enumerate(line.tolist()):
                a = out[i - bpp] if i >= bpp else 0
                b, c = up[i], up[i - bpp] if i >= bpp else 0
                if kind == 3:
                    out[i] = (value + ((a + b) >> 1)) & 0xFF
                    continue
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                out[i] = (value + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            row = np.array(out, dtype=np.uint8)
        image[y] = row
        previous = row
    return image.reshape(height, width, bpp)[:, :, :3]


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def test_digest_html_renders_with_its_charts_in_chromium(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    db.upgrade(url)
    engine = db.get_engine(url)
    seed(engine)
    settings = Settings(database_url=url)
    page = tmp_path / "digest.html"
    page.write_text(digest.render_html(collect(engine, settings)), encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip

    dom = run("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_dom = dom.stdout.decode()
    assert html_dom.count('class="sparkline"') >= 4
    assert re.search(r'<svg class="category-mix"[^>]*>.*<rect', html_dom, re.S)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_dom

    # The whole page on a desktop; the top of it on a phone.
    expected = {1200: ("#0072B2", "#E69F00", "#D55E00", "#009E73"), 400: ("#0072B2",)}
    for width, height in ((1200, 4000), (400, 1600)):
        shot = tmp_path / f"shot-{width}.png"
        result = run(f"--screenshot={shot}", f"--window-size={width},{height}")
        assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
        assert shot.stat().st_size > 20_000
        pixels = png_pixels(shot)
        assert pixels.shape == (height, width, 3)
        rgb = pixels.astype(np.uint32)
        colours = set(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).tolist())
        assert len(colours) > 50, "the page looks blank"
        # Badges and the category-mix bars are drawn in their exact category colours.
        for colour in expected[width]:
            assert int(colour[1:], 16) in colours, (width, colour)
