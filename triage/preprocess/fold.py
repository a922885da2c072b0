"""The copy of a text that redaction reads: compatibility characters folded (NFKC), each folded
character still knowing where it came from.

Personal data written in fullwidth or other compatibility characters
(``ｍａｒｉａ＠ｅｘａｍｐｌｅ．ｃｏｍ``, ``４１１１ …``), with digits of another
script, or with invisible characters inside (``jane\\u2060@example.com``) reads as plain to a
person but not to a recognizer. Recognizers read the folded copy; what they find is mapped back
and replaced in the text itself, so the rest of the text reaches the reader as it was written.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    # Soft hyphens, zero-width joiners, direction marks: invisible, so nothing to a reader.
    if unicodedata.category(char) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", char)
    # NFKC leaves digits of other scripts ("٤", "४") alone; a reader still reads them as digits.
    return "".join(
        str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in folded
    )


def fold(text: str) -> tuple[str, list[int] | None]:
    """``text`` as redaction reads it, and the index in ``text`` of each of its characters
    (``None`` when nothing changed, as for every ASCII text).

    Each character is folded on its own, which is not quite NFKC of the whole text (halfwidth
    kana and their separate voicing marks stay apart), but lets every folded character name
    the character it came from.
    """
    if text.isascii():
        return text, None
    changed = {c: f for c in set(text) if not c.isascii() and (f := _fold_char(c)) != c}
    if not changed:
        return text, None
    pieces = [changed.get(c, c) for c in text]
    origin = [i for i, piece in enumerate(pieces) for _ in piece]
    return "".join(pieces), origin


def unfold_span(origin: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """The span of ``text`` that the non-empty span ``[start, end)`` of its folded copy came
    from; a character folded into several covers all of them."""
    if origin is None:
        return start, end
    return origin[start], origin[end - 1] + 1
