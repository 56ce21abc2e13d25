"""``lifecircle batch CONFIG``: every district of a config on Dask, one combined table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from lifecircle import i18n
from lifecircle.cli.common import FORCE_HELP, console, err_console, literal, remember_lang, top_lang
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError, OptionError
from lifecircle.i18n import label


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
    lang: Optional[str] = typer.Option(None, hidden=True,
                                       help="Only for --help (--help --lang zh): a batch's language is its config's."),
):
    """Run every district of a batch config on Dask; write per-district folders,
    districts.csv/.xlsx, failures.csv and index.html."""
    # until the config's language is known, the line's: ``lifecircle --lang zh batch …`` is
    # refused (a config not found) or interrupted in Chinese, whatever the locale
    remember_lang(top_lang())
    from lifecircle.batch.run import load_config, run

    if lang is not None:    # accepted for the help's language, as every command's --lang; said in it
        _fail(OptionError("--lang", "a batch's language is the 'lang' of its config",
                          zh="批量运行的语言由配置文件中的 lang 决定"))
    if workers is not None and scheduler:
        _fail(OptionError("--workers", "give either --workers or --scheduler, not both",
                          zh="--workers 和 --scheduler 只能给一个"))
    # then the config's, whatever the line's --lang: Ctrl-C's "interrupted" as the batch speaks
    remember_lang(_config_lang(config), over_line=True)
    try:
        report = run(config, workers=workers, resume=resume, scheduler=scheduler, progress=True,
                     force=force)
    except LifecircleError as exc:
        _fail(exc, _config_lang(config))
    try:
        lang = load_config(config).lang
    except LifecircleError:
        lang = "en"
    print_batch(report, lang)
    if len(report.failures):
        raise typer.Exit(1)


def _config_lang(config) -> str | None:
    """The language a batch config asks for: its ``lang`` even when another field is wrong
    (that error is then said in it); None when the file cannot be parsed (the line's or the
    locale's language then)."""
    from lifecircle.batch.run import config_lang, load_config

    try:
        return load_config(config).lang
    except LifecircleError:
        return config_lang(config)


def print_batch(report, lang: str, out=None) -> None:
    """The districts (rounded, in ``lang``), the failures and what was written."""
    import pandas as pd

    from lifecircle.batch.run import districts_sheet

    out = out or console
    t = report.table
    if len(t):
        if "rank" in t:
            t = t.sort_values("rank", kind="mergesort")
        sheet = districts_sheet(t, lang)
        cols = [c for c in ("rank", "district", "status", "population", "score_mean", "all6_15",
                            "all6_15_allcat", "top_gaps", "no_data") if c in t]
        keep = [label(f"batch.{c}", lang) for c in cols]
        tab = Table(title=label("batch.title", lang, n=len(t)), box=None, pad_edge=False,
                    title_justify="left", title_style="bold")
        for c in keep:
            tab.add_column(c, overflow="fold", justify="right" if sheet[c].dtype.kind in "fi" else "left")
        for _, r in sheet[keep].iterrows():   # names from data: literal, never markup
            tab.add_row(*[literal("–" if isinstance(v, float) and v != v else
                                  f"{v:,.0f}" if k == label("batch.population", lang) else v)
                          for k, v in r.items()])
        out.print(tab)
        if (t.get("data_status_no_data", pd.Series(dtype=float)).fillna(0) > 0).any():
            out.print(Text.assemble((label("cli.note", lang), "yellow"),
                                    label("batch.no_data_note", lang) + i18n.no_data_hint(lang, batch=True)),
                      highlight=False)
    for _, f in report.failures.iterrows():   # names and errors quote the config: literal text
        err_console.print(Text.assemble((label("batch.failed", lang), "bold red"),
                                        f"{f['district']}: {f['error']}"), highlight=False,
                          soft_wrap=True)
    out.print(Text(label("batch.done", lang, c=len(report.computed), s=len(report.skipped),
                         f=len(report.failures), out=str(report.out_dir))), highlight=False)
