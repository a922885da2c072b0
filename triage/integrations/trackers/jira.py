"""Jira Cloud through REST API v3: ``POST /rest/api/3/issue`` with the description as an
Atlassian Document Format document, authenticated as Atlassian documents for scripts: Basic
auth with the account's e-mail and an API token."""

from __future__ import annotations

import base64

import httpx

from triage.errors import TrackerError
from triage.integrations.trackers._base import CreatedTicket, IssueTracker, Ticket, post_json
from triage.integrations.trackers.ticket import adf


class JiraTracker(IssueTracker):
    name = "jira"
    label = "Jira"

    def __init__(
        self, *, api_url: str, email: str, token: str, project_key: str, issue_type: str
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.email = email
        self.token = token
        self.project_key = project_key
        self.issue_type = issue_type

    def create(self, ticket: Ticket, client: httpx.Client) -> CreatedTicket:
        basic = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        answer = post_json(
            self,
            client,
            f"{self.api_url}/rest/api/3/issue",
            body={
                "fields": {
                    "project": {"key": self.project_key},
                    "issuetype": {"name": self.issue_type},
                    "summary": ticket.title,
                    "description": adf(ticket),
                }
            },
            headers={"Accept": "application/json", "Authorization": f"Basic {basic}"},
            settings_hint="TRIAGE_JIRA_API_URL, TRIAGE_JIRA_EMAIL, TRIAGE_JIRA_TOKEN, "
            "TRIAGE_JIRA_PROJECT_KEY and TRIAGE_JIRA_ISSUE_TYPE",
        )
        ticket_id, key = answer.get("id"), answer.get("key")
        if not isinstance(ticket_id, str) or not isinstance(key, str):
            raise TrackerError("Jira's answer had no issue id or key.")
        # The answer's "self" is the API resource; people open the browse page.
        return CreatedTicket(ticket_id=ticket_id, key=key, url=f"{self.api_url}/browse/{key}")
