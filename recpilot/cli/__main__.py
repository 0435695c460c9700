"""``python -m recpilot.cli``: the ``recpilot`` command."""

from recpilot.cli.main import app

app()
