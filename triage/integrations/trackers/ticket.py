"""An issue as a ticket: built from the stored issue, redacted, and written as Markdown (GitHub,
Linear) or as an Atlassian Document Format document (Jira)."""

from __future__ import annotations

import re
from typing import Any

from triage.integrations.trackers._base import Ticket, one_line
from triage.models import Issue
from triage.redaction import RedactRecords

TITLE_CHARS = 250  # under Jira's 255 for a summary
QUOTE_CHARS = 500
MAX_QUOTES = 5
MAX_EVIDENCE = 5


def build_ticket(issue: Issue, *, redact: RedactRecords, base_url: str | None) -> Ticket:
    """The ticket for ``issue``. Quotes and machine titles are stored redacted already, but a
    title a person typed, evidence (it names model versions and sources as clients sent them)
    and keywords are not, so everything that leaves goes through ``redact`` here."""
    breakdown = sorted(
        (
            (str(name), float(value))
            for name, value in issue.priority_breakdown.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ),
        key=lambda pair: -pair[1],
    )
    evidence = list(
        dict.fromkeys(
            str(e["reason"]) for e in issue.evidence if isinstance(e, dict) and e.get("reason")
        )
    )[:MAX_EVIDENCE]
    quotes = [q for q in issue.quotes if q][:MAX_QUOTES]
    [shown] = redact(
        [{"title": issue.title, "keywords": issue.keywords, "evidence": evidence, "quotes": quotes}]
    )
    category = issue.category or "uncategorised"
    if issue.category_confidence is not None:
        category += f" ({issue.category_confidence:.0%} confidence)"
    facts = [
        f"Category: {category}",
        f"Priority: {issue.priority:.2f}",
        f"Size: {issue.size} statements from {issue.customers} customers",
        f"Status in triage: {issue.status}",
    ]
    if shown["keywords"]:
        facts.append("Keywords: " + ", ".join(map(str, shown["keywords"][:10])))
    link = f"{base_url.rstrip('/')}/v1/issues/{issue.id}" if base_url else None
    return Ticket(
        issue_id=issue.id,  # type: ignore[arg-type]
        title=one_line(str(shown["title"]) or f"triage issue {issue.id}", TITLE_CHARS),
        facts=facts,
        breakdown=breakdown,
        evidence=[str(e) for e in shown["evidence"]],
        quotes=[one_line(str(q), QUOTE_CHARS) for q in shown["quotes"]],
        link=link,
    )


# --- Markdown -------------------------------------------------------------------------------

# Inline markup only: every line we write starts with "- " or "> ", so block markup cannot begin.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")


def markdown(ticket: Ticket, *, github: bool = False) -> str:
    """GitHub-flavoured Markdown, which Linear reads too. Customer words are escaped: on GitHub
    an "@name" would notify that user and a "#12" would link another issue, so those two
    characters become HTML entities there (Linear shows entities as typed, and has neither)."""

    def esc(text: str) -> str:
        text = _MARKDOWN.sub(r"\\\1", text)
        return text.replace("#", "&#35;").replace("@", "&#64;") if github else text

    lines = [f"- {esc(fact)}" for fact in ticket.facts]
    if ticket.breakdown:
        parts = " + ".join(f"{name} {value:.2f}" for name, value in ticket.breakdown)
        lines.append(f"- Priority breakdown: {esc(parts)}")
    if ticket.evidence:
        lines += ["", "### Evidence", *(f"- {esc(reason)}" for reason in ticket.evidence)]
    if ticket.quotes:
        lines += ["", "### What customers say (redacted)"]
        for quote in ticket.quotes:
            lines += [f"> {esc(quote)}", ""]
    lines.append("")
    where = (
        f"[issue {ticket.issue_id} in triage]({ticket.link})"
        if ticket.link
        else (f"issue {ticket.issue_id} in triage")
    )
    lines.append(f"Exported from {where}.")
    return "\n".join(lines).strip() + "\n"


# --- Atlassian Document Format ----------------------------------------------------------------


def _text(text: str, marks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = marks
    return node


def _paragraph(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def _heading(text: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": 3}, "content": [_text(text)]}


def _bullets(items: list[str]) -> dict[str, Any]:
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [_paragraph(_text(i))]} for i in items],
    }


def adf(ticket: Ticket) -> dict[str, Any]:
    """The description as Jira Cloud's v3 API takes it: a ``doc`` of version 1. Text nodes are
    plain strings (ADF has no markup to escape) and never empty, which Jira refuses."""
    facts = list(ticket.facts)
    if ticket.breakdown:
        facts.append(
            "Priority breakdown: "
            + " + ".join(f"{name} {value:.2f}" for name, value in ticket.breakdown)
        )
    content: list[dict[str, Any]] = [_bullets(facts)]
    if ticket.evidence:
        content += [_heading("Evidence"), _bullets(ticket.evidence)]
    if ticket.quotes:
        content.append(_heading("What customers say (redacted)"))
        content += [
            {"type": "blockquote", "content": [_paragraph(_text(q))]} for q in ticket.quotes
        ]
    where = f"issue {ticket.issue_id} in triage"
    back = (
        _text(where, [{"type": "link", "attrs": {"href": ticket.link}}])
        if ticket.link
        else (_text(where))
    )
    content.append(_paragraph(_text("Exported from "), back, _text(".")))
    return {"type": "doc", "version": 1, "content": content}
