"""``lifecircle check``: compliance of an analysis with GB 50180-2018 or TD/T 1062-2021.

Writes OUT/compliance.csv (UTF-8 with BOM), compliance.xlsx and compliance_map.html into a
folder written atomically, and prints the verdicts. User errors (unknown standard or language,
not an analysis folder, missing OSM source) print one line and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from lifecircle import i18n
from lifecircle.cli.common import FORCE_HELP, console, literal, load_folder
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError, OptionError
from lifecircle.i18n import check_lang
from lifecircle.i18n import label as i18n_label

CSV = "compliance.csv"
XLSX = "compliance.xlsx"
MAP = "compliance_map.html"



def _cell(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _rich(df, title: str, status_col: str | None, good: set, bad: set) -> Table:
    """A compact table (no box; text columns wrap, numbers never cut) that reads at 80 columns."""
    t = Table(title=literal(title), show_lines=False, box=None, pad_edge=False, title_justify="left",
              title_style="bold")
    for c in df.columns:
        num = df[c].dtype.kind in "fi"
        t.add_column(literal(c), justify="right" if num else "left", overflow="fold",
                     no_wrap=False)
    for _, row in df.iterrows():
        cells = [literal(_cell(v)) for v in row]        # values quote data: never markup
        if status_col is not None:
            j = list(df.columns).index(status_col)
            v = row[status_col]
            if v in good:
                cells[j].stylize("green")
            elif v in bad:
                cells[j].stylize("red")
        t.add_row(*cells)
    return t


def print_report(report, lang: str) -> None:
    from lifecircle.analyses.standards import ALL, label

    good = {label("pass", lang), label("met", lang)}
    bad = {label("fail", lang), label("short", lang), label("missing", lang)}
    console.print(Text.assemble((label("title", lang), "bold"), " — ", report.title(lang)),
                  highlight=False)
    for k, v in report.about(lang)[1:3]:
        console.print(literal(f"{k}: {v}"), highlight=False)
    summary = report.summary_table(lang)
    short = [label(k, lang) for k in ("unit", "tier", "result", "n_required", "n_met", "n_missing",
                                      "lowest_share_pct")]
    console.print(_rich(summary[short], label("sheet_summary", lang), label("result", lang), good, bad))
    fail_col, nodata_col = label("failing", lang), label("no_data_ids", lang)
    sep = "：" if lang == "zh" else ": "
    for _, row in summary.iterrows():
        if row[fail_col]:
            console.print(literal(f"{row[short[0]]} {row[short[1]]} {fail_col}{sep}{row[fail_col]}"),
                          highlight=False)
        if row[nodata_col]:     # no facility of the kind in the data: undetermined, not failed
            console.print(literal(f"{row[short[0]]} {row[short[1]]} {nodata_col}{sep}{row[nodata_col]}"),
                          highlight=False)
    keep = ["tier", "name_zh" if lang == "zh" else "name_en", "minutes", "facilities",
            "share_pct", "status"]
    cols = [label(k, lang) for k in keep]
    console.print(_rich(report.table(lang, required=True, unit=ALL)[cols],
                        f"{label('required_facilities', lang)} — {label('whole_area', lang)}",
                        label("status", lang), good, bad))
    console.print(_rich(report.table(lang, required=False, unit=ALL)[cols],
                        f"{label('optional_facilities', lang)} — {label('whole_area', lang)}",
                        None, good, bad))
    for n in report.notes:
        console.print(Text.assemble((i18n_label("cli.note", lang), "yellow"), literal(n)), highlight=False)
    if any(v == "no_data" for v in report.data_status.values()):
        console.print(Text.assemble((i18n_label("cli.note", lang), "yellow"),
                                    i18n.no_data_hint(lang)), highlight=False)   # it names 无数据 itself
    console.print(Text(i18n.attribution_text(report.attribution, lang), style="dim"), highlight=False)


def check_cmd(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    standard: str = typer.Option("gb50180-2018", "--standard", "-s",
                                 help="gb50180-2018 or tdt1062-2021."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (compliance.csv, .xlsx, _map.html)."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: the analysis's)."),
    min_share: float = typer.Option(0.8, help="Share of residents (0-1) a required facility must "
                                    "reach within its radius for its tier to pass."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Check an analysis against GB 50180-2018 or TD/T 1062-2021 (配套设施达标评估)."""
    from lifecircle.analyses.standards import check, resolve_standard
    from lifecircle.io.outputs import atomic_dir, check_out_dir
    from lifecircle.render.deliverables import write_compliance

    try:
        resolve_standard(standard)          # fail fast, before reading anything
        if lang is not None:
            check_lang(lang)
        check_out_dir(out, force=force, inputs=[folder])           # before any work
        result = load_folder(folder)
        if not 0 <= min_share <= 1:         # as typed (the API's says min_share), in the folder's language
            raise OptionError("--min-share", f"must be between 0 and 1 (got {min_share:g})",
                              zh=f"须在 0 到 1 之间（实为 {min_share:g}）")
        lang = lang or result.settings.lang
        report = check(result, standard, lang=lang, min_share=min_share)
        with atomic_dir(out, force=force, inputs=[folder], kind="check") as tmp:
            write_compliance(report, result, tmp, lang)
    except LifecircleError as exc:
        _fail(exc)
    print_report(report, lang)
    console.print(literal(i18n_label("std.wrote", lang, out=str(out), files=f"{CSV}, {XLSX}, {MAP}")),
                  highlight=False)
