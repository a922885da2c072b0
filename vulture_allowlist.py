"""Names that vulture sees defined but never used, because something else uses them by name.

Read by vulture only (pyproject's ``[tool.vulture]`` adds it to the paths); never imported. Each
line names attributes so that vulture counts them as used; decorated framework functions are
covered by ``ignore_decorators`` in pyproject instead.
"""

from typing import Any

_: Any = None

# FastAPI, uvicorn, AnyIO: `uvicorn --factory api.main:app_factory`; the thread limiter's size.
_.app_factory, _.total_tokens

# Typer offers every member of a StrEnum option as a choice (`triage digest --format md`).
_.md

# pydantic and SQLModel: class configuration; columns and response fields that are written with
# keyword arguments or SQL and read back by the API and the database, never as attributes.
_.model_config
_.text_sha256, _.processed_at, _.content_sha256, _.category_runner_up, _.assignee
_.external_url, _.started_at, _.finished_at, _.category_evidence
# Category members that only arrive as strings from clients and the categoriser.
_.ui, _.expectation

# SQLAlchemy's SQLite recipe sets the DB-API connection's attribute; onnxruntime reads these.
_.isolation_level
_.intra_op_num_threads, _.inter_op_num_threads, _.execution_mode, _.graph_optimization_level

# torch.nn.Module calls forward.
_.forward

# spaCy: the tokenizer's rules, set as attributes and serialised via `suffix_search.__self__`;
# Token.is_sent_start; `nlp.memory_zone()` calls each component's memory_zone(mem).
_.max_length, _.prefix_search, _.suffix_search, _.infix_finditer, _.__self__
_.is_sent_start, _.memory_zone, _.mem

# presidio calls these on recognizers and on the NLP engine, with these argument names.
_.validate_result, _.invalidate_result
_.is_loaded, _.process_text, _.is_stopword, _.get_supported_entities, _.get_supported_languages
_.language, _.n_process

# Alembic reads a revision's module attributes and calls downgrade.
_.down_revision, _.branch_labels, _.depends_on, _.downgrade

# Read by name in templates/digest.html.j2 and digest.md.j2.
_.last_x, _.last_y, _.colour, _.max_value, _.output_confidence, _.description
_.complaint_share, _.category_mix, _.examples_note

# Fields of result records that triage fills in for callers but never reads itself (the tests
# check some): what redaction removed, which severity terms matched, and the output signals'
# counts, source ages and latency distribution.
_.redactions, _.severity_terms
_.traffic_count, _.linked_n, _.traffic_n, _.oldest_as_of, _.max_age_days
_.traffic_with_sources, _.traffic_median_age_days, _.latency

# Tracker settings, read as getattr(settings, name) by triage.integrations.trackers._need so that
# every missing one is named; the export's time, read by IssueExportPublic from_attributes.
_.github_api_url, _.github_repo, _.github_token, _.jira_api_url, _.jira_email, _.jira_token
_.jira_project_key, _.jira_issue_type, _.linear_api_url, _.linear_token, _.linear_team_id
_.exported_at

# Fields of the OTLP ExportTraceServiceResponse, set on the protobuf message for the exporter.
_.rejected_spans, _.error_message

# A computed field of the API's ticket (FeedbackPublic), serialised by pydantic.
_.category_uncertain
