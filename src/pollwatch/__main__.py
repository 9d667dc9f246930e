"""``python -m pollwatch`` runs the CLI."""

from pollwatch.cli import run

run()
