"""What every command shares: the consoles and the one way a user error ends a command."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def fail(exc: Exception) -> None:
    """Print ``error: <message>`` on one line (the message literally, never as markup) and
    exit with the error's code (2 for every :class:`~lifecircle.errors.LifecircleError`)."""
    err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False,
                      soft_wrap=True)
    raise typer.Exit(getattr(exc, "exit_code", 2))
