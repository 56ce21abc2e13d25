"""What every command shares: the consoles and the one way a user error ends a command."""

from __future__ import annotations

import typer
from rich.console import Console

from lifecircle.untrusted import say

console = Console()
err_console = Console(stderr=True)

FORCE_HELP = ("Write into an output folder (or over a file) that lifecircle did not make: its own "
              "files are replaced, nothing else is touched. Without it such targets are refused.")


def fail(exc: Exception) -> None:
    """Print ``error: <message>`` on one line (the message literally, never as markup) and
    exit with the error's code (2 for every :class:`~lifecircle.errors.LifecircleError`)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    say(err_console, message, prefix="error:", prefix_style="bold red")
    raise typer.Exit(getattr(exc, "exit_code", 2))


def note(text, to: Console | None = None) -> None:
    """Print ``note: <text>`` (the text literally)."""
    say(to or console, text, prefix="note:", prefix_style="yellow")
