"""GitHub Issues through the REST API: ``POST /repos/{owner}/{repo}/issues``, a token as
``Authorization: Bearer``, the ``application/vnd.github+json`` media type and a pinned
``X-GitHub-Api-Version``, as GitHub documents them."""

from __future__ import annotations

import httpx

from triage.errors import TrackerError
from triage.integrations.trackers._base import CreatedTicket, IssueTracker, Ticket, post_json
from triage.integrations.trackers.ticket import markdown

API_VERSION = "2022-11-28"


class GitHubTracker(IssueTracker):
    name = "github"
    label = "GitHub"

    def __init__(self, *, api_url: str, repo: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.repo = repo.strip("/")
        self.token = token

    def create(self, ticket: Ticket, client: httpx.Client) -> CreatedTicket:
        # No labels: GitHub creates unknown ones on the fly, which a repo's owner may not want,
        # and drops them silently for tokens without push access.
        answer = post_json(
            self,
            client,
            f"{self.api_url}/repos/{self.repo}/issues",
            body={"title": ticket.title, "body": markdown(ticket, github=True)},
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": API_VERSION,
            },
            settings_hint="TRIAGE_GITHUB_REPO and TRIAGE_GITHUB_TOKEN",
        )
        number, url = answer.get("number"), answer.get("html_url")
        if not isinstance(number, int) or not isinstance(url, str):
            raise TrackerError("GitHub's answer had no issue number or html_url.")
        return CreatedTicket(ticket_id=str(number), key=f"{self.repo}#{number}", url=url)
