"""The ``lifecircle`` command line (typer + rich): a thin front end, no analysis logic.

Every command is registered here, in one place; each lives in the module of its task. Errors
that the user can fix print one line naming the input and the problem and exit with code 2.
"""

from __future__ import annotations

import sys

import typer

from lifecircle.cli import analysis, batch, links, maps, resources, standards
from lifecircle.cli.common import err_console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="15-minute community life circle (十五分钟社区生活圈) analysis.")

app.command("analyze")(analysis.analyze)
app.command("demo")(analysis.demo)
app.command("map")(maps.map_command)
app.command("isochrones")(maps.isochrones_command)
app.command("resources")(resources.resources)
app.command("recommend")(resources.recommend)
app.command("check")(standards.check_cmd)
app.command("batch")(batch.batch)
app.command("links")(links.links)


def main() -> None:
    """Run the command line (the ``lifecircle`` console script)."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
