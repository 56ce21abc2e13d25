"""Start-up: the command line loads the heavy libraries only when a command needs them.
``lifecircle <command> --help`` (and the moment before any command's work) needs typer and rich,
not the analysis (geopandas, numba) nor the HTML side (branca, jinja2, numpy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
from typer.testing import CliRunner
from lifecircle.cli import app
result = CliRunner().invoke(app, [{command!r}, "--help"])
assert result.exit_code == 0, result.output
heavy = sorted(m for m in ("numpy", "pandas", "geopandas", "shapely", "numba", "branca", "jinja2",
                           "folium", "osmium", "scipy") if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("command", ["analyze", "map", "check", "batch"])
def test_help_loads_no_heavy_library(command):
    out = subprocess.run([sys.executable, "-c", PROBE.format(command=command)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_cli_messages_still_print_literally():
    """``say`` and ``literal`` (loaded on first use) print text as it is, markup and all."""
    from rich.console import Console

    from lifecircle.cli.common import literal, say

    console = Console(record=True, width=200)
    say(console, "[bold]not markup[/bold] 100%", prefix="note:")
    console.print(literal("[red]x[/red]"))
    text = console.export_text()
    assert "note: [bold]not markup[/bold] 100%" in text and "[red]x[/red]" in text
