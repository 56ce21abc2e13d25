"""The ``lifecircle`` command line: ``app`` (typer) and ``main`` (the console script)."""

from lifecircle.cli.app import app, main

__all__ = ["app", "main"]
