"""The digest as Markdown (``templates/digest.md.j2``), to paste into chat, a wiki or an e-mail.

Markdown has no autoescape, so the template sends every piece of stored text through ``md``
(``md_escape``) itself.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from functools import lru_cache

import jinja2

from triage.digest.charts import text_sparkline
from triage.digest.formatting import FILTERS
from triage.digest.model import DigestData
from triage.digest.render_html import TEMPLATES

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_BLOCK_MARK = re.compile(r"^([#+=>-])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def md_escape(text: str | None) -> str:
    """Customer or machine text made inert in Markdown: on one line, HTML-escaped (so nothing
    pasted can become a tag), emphasis, link, code and table characters backslash-escaped, and
    a leading block marker (heading, list, quote) neutralised."""
    text = " ".join((text or "").split())
    text = html.escape(text, quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_BLOCK_MARK.sub(r"\\\1", text)
    return _MD_ORDERED.sub(r"\1\\\2", text)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Not HTML: md_escape already HTML-escapes stored text, and autoescape would do it twice.
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS, md=md_escape, blocks=text_sparkline)
    return env


def render_markdown(data: DigestData) -> str:
    """The digest for chat, wikis and e-mail; every piece of stored text goes through
    ``md_escape``."""
    template = _environment().get_template("digest.md.j2")
    return template.render(d=data, last_day=data.end - timedelta(days=1))
