"""Stage "digest": the weekly page a product manager reads on Monday.

In data-flow order: ``weeks`` (ISO weeks in UTC, Monday 00:00 inclusive to the next Monday
exclusive), ``collect`` (one week read out of the database through ``store`` into the plain
dataclasses of ``model``, with ``history`` and ``top_issues`` for its two larger sections),
``render_html`` and ``render_markdown`` (one self-contained HTML file, or text to paste into chat,
a wiki or an e-mail; both Jinja2 templates in ``triage/templates``, drawing with ``charts`` and
``formatting``), ``generate`` (stores the result once the week is closed, so last month's
digest reads the same next year), ``deliver`` (the webhook) and ``schedule`` (what the worker
runs each round).

A ticket belongs to the week its source says it was written (``created_at``), or to the week we
received it when the source sent no time. Customer words come only from redacted text (units and
issue quotes), never from a ticket's raw text; model inputs and outputs are redacted here.
"""

from triage.digest.charts import (
    Bar,
    BarChart,
    Segment,
    Sparkline,
    sparkline,
    stacked_bars,
    text_sparkline,
)
from triage.digest.collect import collect
from triage.digest.deliver import deliver_webhook, digest_link, webhook_payload, write_file
from triage.digest.generate import FORMATS, closes_at, generate, summarize
from triage.digest.model import (
    CATEGORIES,
    CATEGORY_COLOURS,
    UNCATEGORISED,
    CategoryGroup,
    CategoryMix,
    Change,
    Correction,
    DigestData,
    Figure,
    IssueRef,
    LinkedExample,
    NewIssue,
    Regression,
    TopIssue,
    VersionRow,
)
from triage.digest.render_html import TEMPLATES, render_html
from triage.digest.render_markdown import md_escape, render_markdown
from triage.digest.schedule import DigestSchedule, maybe_generate_digest, schedule_enabled
from triage.digest.top_issues import ACTIVE, redact_texts, shorten
from triage.digest.weeks import (
    WEEK,
    due_at,
    last_complete_week,
    parse_digest_week,
    parse_week,
    shift_week,
    week_of,
)
from triage.errors import DigestDeliveryError, InvalidInputError

__all__ = [
    "ACTIVE",
    "CATEGORIES",
    "CATEGORY_COLOURS",
    "FORMATS",
    "TEMPLATES",
    "UNCATEGORISED",
    "WEEK",
    "Bar",
    "BarChart",
    "CategoryGroup",
    "CategoryMix",
    "Change",
    "Correction",
    "DigestData",
    "DigestDeliveryError",
    "DigestSchedule",
    "Figure",
    "InvalidInputError",
    "IssueRef",
    "LinkedExample",
    "NewIssue",
    "Regression",
    "Segment",
    "Sparkline",
    "TopIssue",
    "VersionRow",
    "closes_at",
    "collect",
    "deliver_webhook",
    "digest_link",
    "due_at",
    "generate",
    "last_complete_week",
    "maybe_generate_digest",
    "md_escape",
    "parse_digest_week",
    "parse_week",
    "redact_texts",
    "render_html",
    "render_markdown",
    "schedule_enabled",
    "shift_week",
    "shorten",
    "sparkline",
    "stacked_bars",
    "summarize",
    "text_sparkline",
    "webhook_payload",
    "week_of",
    "write_file",
]
