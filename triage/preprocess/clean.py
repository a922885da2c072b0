"""Normalise raw feedback text before anything reads it: one kind of line break, no control
characters, no walls of one character that would make spaCy's tokenizer quadratic."""

from __future__ import annotations

import re
import unicodedata

# Control characters (NUL included) break display and some storage drivers; newline and tab carry
# structure (sign-offs, lists), so they stay. U+2028/2029 are line breaks in disguise.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
# spaCy's tokenizer peels affixes off a whitespace-free chunk one at a time, copying the rest each
# time: quadratic in the chunk's length (10,000 emoji in a row took over 30 s). Walls of one
# character say no more than a few of them, and no readable word or link is 1,000 characters long.
_MAX_REPEAT = 20
_REPEATS = re.compile(rf"(\S)\1{{{_MAX_REPEAT},}}")
_MAX_CHUNK = 1000
_LONG_CHUNK = re.compile(rf"\S{{{_MAX_CHUNK}}}(?=\S)")


def clean_text(text: str | None) -> str:
    """Normalise one raw text: NFC, one kind of line break, no control characters or walls."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    if "\r" in text or not text.isascii():  # the other line breaks are not ASCII
        text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    # These two only match inside a run of non-space characters longer than _MAX_REPEAT or
    # _MAX_CHUNK, which most texts do not have; searching for them tries every position.
    longest = max(map(len, text.split()), default=0)
    if longest > _MAX_REPEAT:
        text = _REPEATS.sub(lambda m: m.group(1) * _MAX_REPEAT, text)
    if longest > _MAX_CHUNK:
        text = _LONG_CHUNK.sub(lambda m: m.group() + " ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()
