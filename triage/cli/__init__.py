"""The ``triage`` command: a thin shell over the library, with progress bars for long work.

One module per command group; every command is registered here, in the order ``triage --help``
lists them.
"""

from triage.cli import db, demo, digest, ingest, issues, keys, run, train
from triage.cli.app import app

app.command()(run.run)
app.command()(run.worker)
app.command()(run.serve)
app.command()(train.train)
app.add_typer(issues.issues_app, name="issues")
app.command()(issues.issue)
app.command()(digest.digest)
app.command()(demo.demo)
app.add_typer(db.db_app, name="db")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(ingest.ingest_app, name="ingest")
app.add_typer(issues.export_app, name="export")

__all__ = ["app"]
