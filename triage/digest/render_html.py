"""The digest as one self-contained HTML page (``templates/digest.html.j2``): inline CSS and
SVG, no script, nothing fetched, every value autoescaped."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import jinja2

from triage.digest.charts import sparkline, stacked_bars
from triage.digest.formatting import FILTERS
from triage.digest.model import CATEGORY_COLOURS, DigestData

TEMPLATES = Path(__file__).parent.parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(sparkline=sparkline, stacked_bars=stacked_bars, colours=CATEGORY_COLOURS)
    return env


def render_html(data: DigestData) -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing fetched."""
    template = _environment().get_template("digest.html.j2")
    return template.render(d=data, last_day=data.end - timedelta(days=1))
