"""`python -m worker ...` is the `sessions` command."""

from worker import cli  # noqa: F401 - registers the commands
from worker.cli_support import app

app()
