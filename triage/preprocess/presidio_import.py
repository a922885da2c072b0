"""presidio without torch or transformers: imported by ``triage.preprocess`` before anything of
presidio.

presidio_analyzer imports its Hugging Face NLP engine, and with it ``transformers``, whenever
``transformers`` is installed (as it is here, for the sentence-transformers backend); it
imports spaCy, whose thinc imports torch; and its device detector imports torch to look for a
GPU. triage uses none of them (names are found by rules, see ``triage.preprocess``), so presidio
is imported inside ``triage.imports.without_deep_learning``, as the pipeline imports spaCy:
about 3 s less at the start of every ``triage`` command, worker and API process. presidio and
thinc catch the ImportError and carry on without; an import of torch or transformers afterwards
(the sentence-transformers backend, the one-off ONNX export) loads them as usual.
"""

from __future__ import annotations

import sys

from triage.imports import without_deep_learning


def import_presidio() -> None:
    if "presidio_analyzer" in sys.modules:
        return
    with without_deep_learning():
        import presidio_analyzer  # noqa: F401


import_presidio()
