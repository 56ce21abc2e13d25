"""``lifecircle batch CONFIG``: every district of a config on Dask, one combined table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lifecircle.cli.common import FORCE_HELP, console, err_console, note
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
    from lifecircle import i18n
    import pandas as pd

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
        tab = Table(title=f"{len(t)} district(s), ranked on the dimensions with data", expand=False)
        heads = ("rank", "district", "status", "population", "score_mean", "score_gini",
                 "all6_15 (with data)", "all6_15 (all categories)", "top gaps", "no data")
        for c in heads:
            tab.add_column(c, justify="left" if c in ("district", "status", "top gaps", "no data") else "right",
                           no_wrap=c not in ("top gaps", "no data"))
        order = t.sort_values("rank", kind="mergesort") if "rank" in t else t

        def pct(v):
            return "–" if v is None or v != v else f"{100 * v:.1f}%"

        for _, r in order.iterrows():
            n_dims = r.get("dimensions_with_data", float("nan"))
            n_nd = r.get("data_status_no_data", float("nan"))
            cells = [str(r.get("rank", "")), str(r["district"]), str(r["status"]), f"{r['population']:,.0f}",
                     f"{r['score_mean']:.1f}", f"{r['score_gini']:.3f}",
                     pct(r["all6_15"]) + (f" ({int(n_dims)} dims)" if n_dims == n_dims else ""),
                     pct(r.get("all6_15_allcat", float("nan"))),
                     ", ".join(str(r[k]) for k in ("gap_1", "gap_2", "gap_3") if k in r and r[k] == r[k]),
                     f"{int(n_nd)} categories" if n_nd == n_nd and n_nd else ""]
            tab.add_row(*[literal(c) for c in cells])   # names from data: literal, never markup
        console.print(tab)
        if (t.get("data_status_no_data", pd.Series(dtype=float)).fillna(0) > 0).any():
            note("no data (listed apart, never as gaps): " + i18n.no_data_hint("en"))
    for _, f in report.failures.iterrows():
        say(err_console, f"{f['district']}: {f['error']}", prefix="failed:", prefix_style="bold red")
    say(console, f"{len(report.computed)} computed, {len(report.skipped)} skipped (resume), "
        f"{len(report.failures)} failed; wrote {report.out_dir}/index.html, districts.csv, "
        "districts.xlsx, failures.csv")
    if len(report.failures):
        raise typer.Exit(1)
