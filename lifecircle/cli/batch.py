"""``lifecircle batch CONFIG``: every district of a config on Dask, one combined table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lifecircle.cli.common import FORCE_HELP, console, err_console
from lifecircle.cli.common import fail as _fail
from lifecircle.untrusted import literal, say
from lifecircle.errors import LifecircleError


def batch(
    config: Path = typer.Argument(..., help="Batch config (TOML or YAML): sources, districts, profile, outputs."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                          help="Local Dask worker processes (default: one per core)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                                 "(workers must see the same files)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Skip districts whose outputs exist for the same config hash."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Run every district of a batch config on Dask; write per-district folders,
    districts.csv/.xlsx, failures.csv and index.html."""
    from rich.table import Table

    from lifecircle.errors import LifecircleError
    from lifecircle.batch.run import run

    if workers is not None and scheduler:
        say(err_console, "give either --workers or --scheduler, not both", prefix="error:",
            prefix_style="bold red")
        raise typer.Exit(2)
    try:
        report = run(config, workers=workers, resume=resume, scheduler=scheduler, progress=True,
                     force=force)
    except LifecircleError as exc:
        _fail(exc)
    t = report.table
    if len(t):
        tab = Table(title=f"{len(t)} district(s)", expand=False)
        for c in ("district", "status", "population", "score_mean", "score_gini", "all6_15", "top gaps"):
            tab.add_column(c, justify="left" if c in ("district", "status", "top gaps") else "right",
                           no_wrap=c != "top gaps")
        for _, r in t.iterrows():
            tab.add_row(literal(r["district"]), literal(r["status"]), f"{r['population']:,.0f}",
                        f"{r['score_mean']:.1f}", f"{r['score_gini']:.3f}", f"{100 * r['all6_15']:.1f}%",
                        literal(", ".join(str(r[k]) for k in ("gap_1", "gap_2", "gap_3")
                                          if k in r and r[k] == r[k])))
        console.print(tab)
    for _, f in report.failures.iterrows():
        say(err_console, f"{f['district']}: {f['error']}", prefix="failed:", prefix_style="bold red")
    say(console, f"{len(report.computed)} computed, {len(report.skipped)} skipped (resume), "
        f"{len(report.failures)} failed; wrote {report.out_dir}/index.html, districts.csv, "
        "districts.xlsx, failures.csv")
    if len(report.failures):
        raise typer.Exit(1)
