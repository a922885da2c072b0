"""The digest's main section: the highest-priority issues still needing work, each with its
priority breakdown, evidence, quotes, model versions and redacted linked model outputs (its own,
chosen to show its evidence: ``examples``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from triage import store
from triage.config import Settings
from triage.digest.examples import Candidate, choose_examples
from triage.digest.history import LiveIssues
from triage.digest.model import CategoryGroup, LinkedExample, TopIssue
from triage.digest.values import as_number, between
from triage.models import Issue, IssueStatus, Link, ModelOutput

MIN = datetime.min.replace(tzinfo=UTC)
# Top issues are the ones still needing work; resolved and ignored ones appear elsewhere.
ACTIVE = {IssueStatus.open.value, IssueStatus.acknowledged.value, IssueStatus.regressed.value}


def shorten(text: str | None, limit: int) -> str:
    """One line, at most ``limit`` characters, cut at a word when one is near."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def ticket_url(url: str | None) -> str | None:
    """A person may type ``external_url``; only a web address becomes a link (no javascript:)."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def describe_versions(issue: Issue) -> list[str]:
    """The issue's model versions as the linker reported them (``diagnose.model_versions``),
    significant ones first: each with its share of the issue's linked outputs and, within its
    model, of linked outputs vs traffic, so a reader sees which version is over-represented."""
    rows = [row for row in issue.model_versions if isinstance(row, dict)]
    rows.sort(key=lambda row: not row.get("significant"))
    described = []
    for row in rows:
        name, model = row.get("version"), row.get("model")
        if not name:
            continue
        of_issue, linked = as_number(row.get("issue_share")), as_number(row.get("linked"))
        share = as_number(row.get("share"))
        traffic = as_number(row.get("traffic_share"))
        parts = []
        if of_issue is not None and of_issue != share:
            # Several models behind the issue: its share of all of them, then within its model.
            count = f" ({linked:.0f})" if linked is not None else ""
            parts.append(f"{of_issue:.0%} of linked outputs{count}")
            # A model with a single version has nothing to compare within it.
            if share is not None and traffic is not None and (share, traffic) != (1.0, 1.0):
                parts.append(f"{share:.0%} of the {model} ones vs {traffic:.0%} of {model} traffic")
        elif share is not None and traffic is not None:
            of = f"{model} traffic" if model else "traffic"
            parts.append(f"{share:.0%} of linked outputs vs {traffic:.0%} of {of}")
        if row.get("significant"):
            parts.append("far above its share of traffic")
        described.append(f"{name}: {'; '.join(parts)}" if parts else str(name))
    return described


_REDACTORS: dict[Any, Any] = {}


def redact_texts(texts: list[str], settings: Settings) -> list[str]:
    """``texts`` with personal data replaced by placeholders, as tickets are redacted."""
    if not any(texts):
        return texts
    # Imported and built only when a digest shows model outputs: spaCy and presidio take seconds.
    from triage.preprocess import PreprocessParams, Redactor

    params = PreprocessParams.from_settings(settings)
    if params not in _REDACTORS:
        _REDACTORS[params] = Redactor(params)
    return _REDACTORS[params].redact(texts)


def top_issues(
    session: Session, known: LiveIssues, start: datetime, end: datetime, settings: Settings
) -> list[CategoryGroup]:
    """The highest-priority issues still needing work and known by the week's end, grouped by
    category; groups keep the order of their highest-priority issue."""
    candidates = [
        (i, issue)
        for i, issue in known.issues.items()
        if issue.status in ACTIVE and issue.size > 0 and between(known.first_seen.get(i), MIN, end)
    ]
    candidates.sort(key=lambda pair: (-pair[1].priority, pair[0]))
    groups: dict[str, list[TopIssue]] = {}
    limit = settings.digest_excerpt_chars
    for i, issue in candidates[: settings.digest_top_issues]:
        quotes = [q for q in issue.quotes if q][: settings.digest_quotes]
        if not quotes and settings.digest_quotes:
            # Quotes are kept by the labeller; until it has run, the newest statements stand in.
            quotes = store.digest_recent_unit_texts(
                session, issue_id=i, end=end, limit=settings.digest_quotes
            )
        linked, chosen = (
            _examples(session, i, issue, start, end, settings)
            if settings.digest_examples
            else ([], "")
        )
        # Model inputs and outputs are stored as the ML service logged them, personal data and
        # all: redacted here, before shortening, so no half an e-mail address survives a cut.
        shown = redact_texts([t for o, _ in linked for t in (o.input or "", o.output or "")],
                             settings)  # fmt: skip
        examples = [
            LinkedExample(
                output_id=output.output_id,
                model=output.model,
                model_version=output.model_version,
                input=shorten(shown[2 * n], limit),
                output=shorten(shown[2 * n + 1], limit),
                output_confidence=output.confidence,
                link_method=link.method,
                link_confidence=link.confidence,
            )
            for n, (output, link) in enumerate(linked)
        ]
        breakdown = [
            (name, value)
            for name, raw in issue.priority_breakdown.items()
            if (value := as_number(raw)) is not None
        ]
        breakdown.sort(key=lambda pair: -pair[1])
        # One outputs sentence often supports two categories (ui and expectation); it is
        # shown once.
        evidence = list(
            dict.fromkeys(
                (str(e.get("signal") or ""), str(e["reason"]))
                for e in issue.evidence
                if isinstance(e, dict) and e.get("reason")
            )
        )[: settings.digest_evidence]
        ref = known.refs[i]
        groups.setdefault(ref.category_key, []).append(
            TopIssue(
                issue=ref,
                priority=issue.priority,
                breakdown=breakdown,
                evidence=evidence,
                quotes=[shorten(q, limit) for q in quotes],
                model_versions=describe_versions(issue),
                examples=examples,
                examples_note=chosen,
                ticket_url=ticket_url(issue.external_url),
            )
        )
    return [CategoryGroup(category, members) for category, members in groups.items()]


# Outputs read per issue to choose its examples from: the newest tickets' are enough to find
# the version, the lowest scores or the stale sources its evidence names.
CANDIDATES = 200


def _examples(
    session: Session,
    issue_id: int,
    issue: Issue,
    start: datetime,
    end: datetime,
    settings: Settings,
) -> tuple[list[tuple[ModelOutput, Link]], str]:
    """The issue's own linked outputs that show its evidence, with their links, and how they
    were chosen."""
    found = store.digest_linked_examples(session, issue_id=issue_id, end=end, limit=CANDIDATES)
    # A ticket's main issue holds most of its statements (``issue_ids_by_feedback``'s first).
    main = store.issue_ids_by_feedback(
        session, feedback_ids=sorted({link.feedback_id for _, link, _ in found})
    )
    candidates = [
        Candidate(output, link, written, main=main.get(link.feedback_id, [])[:1] == [issue_id])
        for output, link, written in found
    ]
    picked, note = choose_examples(
        candidates, issue.evidence, start=start, end=end, limit=settings.digest_examples
    )
    return [(c.output, c.link) for c in picked], note
