"""The web app's one Jinja environment and how a page is answered.

The stylesheet in ``static/ui.css`` is inlined into every page rather than linked: the API's
content security policy (``api.security.HTML_CSP``) allows inline styles and nothing fetched, and
the app keeps that same policy instead of loosening it for one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from triage.digest.charts import sparkline
from triage.models import Category, IssueStatus, as_utc

HERE = Path(__file__).parent
CSS = (HERE / "static" / "ui.css").read_text(encoding="utf-8")

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: Any) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _query(params: dict[str, Any], **changes: Any) -> str:
    """The current filters with some changed: links for paging and sorting keep the rest."""
    merged = {**params, **changes}
    pairs = [
        (name, item)
        for name, value in merged.items()
        for item in (value if isinstance(value, list) else [value])
        if item not in (None, "")
    ]
    return "?" + urlencode(pairs)


def _web_url(value: str | None) -> str:
    # Only web links become hrefs: a "javascript:" tracker URL must not be clickable.
    return value if value and value.lower().startswith(("https://", "http://")) else ""


env.globals.update(
    css=CSS,
    sparkline=sparkline,
    categories=[c.value for c in Category],
    # What a person can set; ``merged`` comes only from a merge.
    statuses=[s.value for s in IssueStatus if s != IssueStatus.merged],
    query=_query,
)
env.filters["when"] = _when
env.filters["web_url"] = _web_url


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(name).render(**context)
    # Pages show customer feedback; no shared cache or back-button cache should keep them.
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
