"""``python -m triage.cli``, as the tests start a worker in a subprocess."""

from triage.cli import app

app()
