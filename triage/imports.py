"""Import spaCy and presidio without the deep-learning stacks they would pull in for nothing.

spaCy's thinc imports torch whenever torch is installed (to offer PyTorch layers), and presidio
imports transformers (for its transformers NER engine, which imports torch too). triage uses
neither: a blank spaCy pipeline and rule-based recognizers. Imported that way they add ~3 s to
every ``triage run`` start-up on the default ONNX backend, which needs no torch at all. torch stays
installed for the sentence-transformers backend and the one-off ONNX export; those import it
themselves when they run, and it imports normally then. ``triage.preprocess``, the one package
that imports spaCy and presidio, imports all of its modules inside ``without_deep_learning``;
the lexicon's fallback to a blank spaCy does the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

UNUSED_BY_PREPROCESS = ("torch", "transformers")


@contextmanager
def without_deep_learning() -> Iterator[None]:
    """Within the block, importing torch or transformers raises ImportError, as if they were
    not installed (a ``None`` in ``sys.modules`` means exactly that to the import system), unless
    one is imported already; spaCy and presidio treat both as optional. Afterwards both import
    normally."""
    blocked = [name for name in UNUSED_BY_PREPROCESS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
