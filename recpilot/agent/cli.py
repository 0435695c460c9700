"""Moved: the command line is :mod:`recpilot.cli` (``recpilot.cli.main``).

This module re-exports it, so ``python -m recpilot.agent.cli`` and old imports keep
working; new code imports :mod:`recpilot.cli.main`.
"""

from recpilot.cli.main import *  # noqa: F403
from recpilot.cli.main import app

if __name__ == "__main__":
    app()
