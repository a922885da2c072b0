"""Quotes: the statements closest to an issue's centre, one per ticket, no two saying the same.

Two statements are one quote when their embeddings are nearly equal, or when their texts are:
compared without openers ("Separately, the draft ..." and "The draft ..."), in order, with
typos allowed. The embedding alone misses these: an opener or a typo moves a sentence's vector
far enough (cosine 0.85-0.94 with the small model) that any threshold catching them would also
drop different customers' own words for the same complaint.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from difflib import SequenceMatcher

import numpy as np

from triage.label.clauses import quote_key

# Quotes are looked for among this many of the most central statements per quote wanted: the
# rest are far from the centre anyway, and comparing texts is the costly part.
LOOK_PER_QUOTE = 20


def pick_quotes(
    central: np.ndarray,
    texts: Sequence[str],
    vectors: np.ndarray,
    tickets: Sequence[Hashable] | None,
    *,
    n_quotes: int,
    max_similarity: float,
    max_overlap: float,
) -> list[str]:
    """Up to ``n_quotes`` texts of the units ``central`` (most central first): at most one per
    ticket, none with cosine above ``max_similarity`` or text ``overlap`` above ``max_overlap``
    with one already picked."""
    picked: list[int] = []
    keys: list[tuple[str, frozenset[str]]] = []
    voices: set[Hashable] = set()
    judged: set[str] = set()  # keys seen, picked or not: a repeated text is decided once
    for index in central[: LOOK_PER_QUOTE * n_quotes]:
        voice = tickets[index] if tickets is not None else None
        if voice is not None and voice in voices:
            continue
        key = quote_key(texts[index])
        if not key or key in judged:
            continue
        judged.add(key)
        words = frozenset(key.split())
        if any(
            # Aligning two texts is slow; texts sharing under half their words never match.
            2 * len(words & other_words) >= min(len(words), len(other_words))
            and overlap(key, other) > max_overlap
            for other, other_words in keys
        ):
            continue
        if picked and float(np.max(vectors[picked] @ vectors[index])) > max_similarity:
            continue
        picked.append(int(index))
        keys.append((key, words))
        if voice is not None:
            voices.add(voice)
        if len(picked) == n_quotes:
            break
    return [texts[index] for index in picked]


def overlap(a: str, b: str) -> float:
    """Share of the shorter text found, in order, in the other: 1.0 when one repeats the other
    with something added ("... 4 stars."), about 0.95 for a typo, and lower (0.6-0.75) for two
    customers' own wording of one complaint, whose words come in another order."""
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    blocks = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks) / len(a)
