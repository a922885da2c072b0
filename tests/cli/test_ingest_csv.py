"""`triage ingest feedback` on the files survey tools really export: semicolons, Latin-1, named
date, customer and user columns, and JSONL lines with a misspelt field (`triage ingest outputs`
too). Issue 15."""

from __future__ import annotations

import json

from tests.cli.test_cli import invoke
from triage import db, store
from triage.ingest import sniff_delimiter


def stored(engine):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return store.list_feedback(session)[0]


def test_ingest_csv_semicolons_are_sniffed_and_columns_named(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "nps.csv"
    path.write_text(
        "Response ID;Submitted;Account;Respondent;Comment;Score\n"
        "r1;2026-11-20 09:30:00;acct-7;u-11;The forecast ignores public holidays, again.;4\n"
        'r2;2026-11-21;acct-9;u-12;"Summaries are fine; action items are missing";7\n',
        encoding="utf-8",
    )
    result = invoke(
        "ingest", "feedback", str(path), "--id-column", "Response ID", "--text-column", "Comment",
        "--date-column", "Submitted", "--customer-column", "Account", "--user-column",
        "Respondent", "--source", "survey",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first, second = stored(engine)
    assert (first.external_id, first.customer_id, first.user_id) == ("r1", "acct-7", "u-11")
    assert first.created_at.isoformat().startswith("2026-11-20T09:30:00")
    assert second.text == "Summaries are fine; action items are missing"
    assert first.meta == {"Score": "4"}


def test_ingest_csv_undecodable_bytes_are_an_error_not_replacement(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "export.csv"
    path.write_bytes("id,text\n1,Résumé is wrong\n".encode("latin-1"))
    result = invoke("ingest", "feedback", str(path))
    assert result.exit_code == 1
    assert "line 2" in result.stderr and "--encoding" in result.stderr
    assert stored(engine) == []

    result = invoke("ingest", "feedback", str(path), "--encoding", "latin-1")
    assert result.exit_code == 0, result.stderr
    assert stored(engine)[0].text == "Résumé is wrong"


def test_ingest_csv_explicit_delimiter_and_missing_named_column(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "export.tsv"
    path.write_text("id\ttext\n1\tThe chart is blank.\n", encoding="utf-8")
    ok = invoke("ingest", "feedback", str(path), "--delimiter", "\\t", "--source", "app")
    assert ok.exit_code == 0, ok.stderr
    missing = invoke("ingest", "feedback", str(path), "--delimiter", "\\t", "--date-column", "when")
    assert missing.exit_code == 1 and "no column 'when'" in missing.stderr
    assert "--date-column" in missing.stderr


def test_ingest_jsonl_unknown_field_is_reported(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.jsonl"
    line = {"source": "s", "external_id": 7, "text": "Export is broken.", "customer": "acme"}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    result = invoke("ingest", "feedback", str(path))
    assert result.exit_code == 0, result.stderr
    assert "line 1: customer: Unknown field, ignored; did you mean 'customer_id'?" in result.stderr
    assert stored(engine)[0].external_id == "7"


def test_ingest_outputs_unknown_field_is_reported(settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "outputs.jsonl"
    line = {"output_id": 9, "model": "summarizer", "model_versoin": "2.3.0", "user_id": 7}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    result = invoke("ingest", "outputs", str(path))
    assert result.exit_code == 0, result.stderr
    assert "stored 1" in result.stderr
    assert "line 1: model_versoin: Unknown field, ignored; did you mean 'model_version'?" in (
        result.stderr
    )
    with db.session_scope(engine) as session:
        [output] = store.all_model_outputs(session)
    assert (output.output_id, output.user_id, output.model_version) == ("9", "7", None)


def test_ingest_sniff_delimiter_reads_the_header_only() -> None:
    assert sniff_delimiter("id;text;score\n") == ";"
    assert sniff_delimiter("id\ttext\n") == "\t"
    assert sniff_delimiter("text\n") == ","
