"""`python -m worker ...` is the `sessions` command."""

from worker.app import cli  # noqa: F401 - registers the commands
from worker.app.cli_support import app

app()
