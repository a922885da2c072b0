"""presidio without transformers: imported by ``triage.preprocess`` before anything of presidio.

presidio_analyzer imports its Hugging Face NLP engine, and with it ``transformers`` (and its
processing and image utilities), whenever ``transformers`` is installed, as it is here for the
sentence-transformers backend. triage never uses that engine (names are found by rules, see
``triage.preprocess``), and the import cost 3 of the 5 s it took to import presidio_analyzer:
every ``triage`` command, worker and API process paid it at start. presidio catches the
ImportError and marks the engine unavailable, so ``transformers`` is hidden while presidio is
imported, and only then; an import of it afterwards (the sentence-transformers backend) loads it
as usual.
"""

from __future__ import annotations

import sys


def import_presidio() -> None:
    if "presidio_analyzer" in sys.modules or "transformers" in sys.modules:
        return  # already imported, or transformers is loaded anyway: nothing to save
    sys.modules["transformers"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import presidio_analyzer  # noqa: F401
    finally:
        del sys.modules["transformers"]


import_presidio()
