"""The ``lifecircle`` command line: ``app`` (typer), ``main`` (runs it, ends with SystemExit)
and ``console`` (the console script: ``main`` without the interpreter's teardown)."""

from lifecircle.cli.app import app, console, main

__all__ = ["app", "console", "main"]
