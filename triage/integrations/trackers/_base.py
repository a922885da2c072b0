"""What a tracker must do: turn a ``Ticket`` into the tracker's own ticket, one HTTP call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from triage.errors import TrackerError


@dataclass(frozen=True)
class Ticket:
    """An issue as a tracker shows it; every string in it has passed the redactor."""

    issue_id: int
    title: str
    facts: list[str]  # one line each: category, priority, size
    breakdown: list[tuple[str, float]]  # priority components, largest first
    evidence: list[str]
    quotes: list[str]
    link: str | None  # back to the issue in triage, when its public URL is known


@dataclass(frozen=True)
class CreatedTicket:
    ticket_id: str  # the tracker's id: GitHub's number, Jira's id, Linear's UUID
    key: str  # what people call it: owner/repo#12, ENG-42
    url: str  # the page a person opens


class IssueTracker(ABC):
    """One tracker. ``__init__`` only stores where and as whom to create tickets."""

    name: ClassVar[str]
    label: ClassVar[str]  # the tracker's name in messages

    @abstractmethod
    def create(self, ticket: Ticket, client: httpx.Client) -> CreatedTicket:
        """Create the ticket; raise ``TrackerError`` with what the tracker said."""


def host(url: str) -> str:
    return urlsplit(url).hostname or url


# What each refusal usually means, for the person reading the error.
HINTS = {
    401: "the token is wrong or expired",
    403: "the token lacks the permission to create issues there",
    404: "the repository, project or endpoint does not exist or the token cannot see it",
    410: "issues are turned off there",
    422: "the tracker refused a field",
}


def post_json(
    tracker: IssueTracker,
    client: httpx.Client,
    url: str,
    *,
    body: dict[str, Any],
    headers: dict[str, str],
    settings_hint: str,
) -> dict[str, Any]:
    """POST ``body`` once and return the JSON answer.

    Never retried: creating a ticket is not idempotent on the tracker's side, and a retry after
    a timeout could file it twice; the caller's claim makes a later export safe instead.
    """
    try:
        response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as e:
        raise TrackerError(
            f"Could not reach {tracker.label} at {host(url)} ({type(e).__name__}); nothing was "
            f"created. Check {settings_hint} and the network, then export again."
        ) from e
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not response.is_success:
        said = vendor_message(answer) or response.reason_phrase
        hint = HINTS.get(response.status_code, "see the message")
        raise TrackerError(
            f"{tracker.label} refused the ticket with HTTP {response.status_code}: {said} "
            f"({hint}; check {settings_hint}).",
            details={"status": response.status_code, "tracker": tracker.name},
        )
    if not isinstance(answer, dict):
        raise TrackerError(f"{tracker.label} answered HTTP {response.status_code} without JSON.")
    return answer


def vendor_message(answer: Any) -> str:
    """The error text in GitHub's (``message``), Jira's (``errorMessages``, ``errors``) or a
    GraphQL (``errors[].message``) answer."""
    if not isinstance(answer, dict):
        return ""
    parts: list[str] = []
    if isinstance(answer.get("message"), str):
        parts.append(answer["message"])
    for item in answer.get("errorMessages") or []:
        parts.append(str(item))
    errors = answer.get("errors")
    if isinstance(errors, dict):  # Jira: field -> message
        parts += [f"{field}: {message}" for field, message in errors.items()]
    elif isinstance(errors, list):  # GitHub's details, GraphQL's errors
        for error in errors:
            if isinstance(error, dict):
                parts.append(str(error.get("message") or error.get("code") or error))
                # Linear puts the actionable part here ("teamId must be a UUID").
                extensions = error.get("extensions")
                if isinstance(extensions, dict) and extensions.get("userPresentableMessage"):
                    parts.append(str(extensions["userPresentableMessage"]))
    return "; ".join(parts)[:500]


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters: trackers refuse newlines in titles
    (Jira) or long ones (Jira: 255)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
