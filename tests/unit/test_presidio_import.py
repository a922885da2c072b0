"""triage.preprocess imports presidio without its transformers engine (triage/preprocess/
presidio_import.py), and transformers still imports afterwards."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import triage.preprocess
from triage.preprocess import Redactor
assert "presidio_analyzer" in sys.modules
assert "transformers" not in sys.modules, "presidio's import loaded transformers"
[redacted] = Redactor().redact(["Write to ana@example.com or call +1 415 555 0100."])
assert "<EMAIL>" in redacted and "ana@example.com" not in redacted, redacted
import transformers  # the sentence-transformers backend still can
assert sys.modules["transformers"] is transformers
print("ok")
"""


def test_presidio_imports_without_transformers_and_transformers_still_imports_after():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
