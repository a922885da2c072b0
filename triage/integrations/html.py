"""HTML to plain text, for ticket bodies that support tools send as HTML.

html-text (lxml underneath) rather than a regex: it drops scripts and styles, decodes entities and
keeps paragraph and line breaks as newlines, which the sentence splitter needs.
"""

from __future__ import annotations

import re

import html_text

# A body counts as HTML only when it *is* markup: it opens with a known element and ends with a
# tag. Feedback that *mentions* a tag ("the answer came back as <div>...") is evidence about the
# model's output and is kept exactly as sent.
_ELEMENTS = (
    "html|body|div|p|span|br|b|i|u|em|strong|a|ul|ol|li|h[1-6]|table|thead|tbody|tr|td|th|"
    "blockquote|pre|code|img|font|section|article|header|footer|hr|small|sub|sup|!doctype"
)
_HTML_BODY = re.compile(rf"^\s*<(?:{_ELEMENTS})\b[^>]*>.*>\s*$", re.IGNORECASE | re.DOTALL)


def looks_like_html(text: str) -> bool:
    return bool(_HTML_BODY.match(text))


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or document; paragraphs become blank lines."""
    return html_text.extract_text(html, guess_layout=True).strip()


def to_text(text: str) -> str:
    """``text`` as plain text: converted when it is an HTML body, else unchanged."""
    return html_to_text(text) if looks_like_html(text) else text
