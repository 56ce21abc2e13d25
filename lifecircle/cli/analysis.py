"""``lifecircle analyze`` and ``lifecircle demo``: the whole analysis of a district."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lifecircle import columns as col
from lifecircle.cli.common import FORCE_HELP, console, err_console, note
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError
from lifecircle.i18n import label
from lifecircle.settings import DEFAULTS
from lifecircle.untrusted import literal, say


def _stage_progress():
    from lifecircle.pipeline import STAGES

    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=err_console, transient=False)
    task = progress.add_task("starting", total=len(STAGES))
    seen: list[str] = []

    def callback(stage: str) -> None:
        if seen:
            progress.advance(task)
        seen.append(stage)
        progress.update(task, description=stage)

    def finish() -> None:
        progress.update(task, completed=len(STAGES), description="done")

    return progress, callback, finish


def print_summary(result, lang: str) -> None:
    from lifecircle import i18n

    table = result.summary_table(lang)
    t = Table(title="生活圈覆盖 life-circle coverage" if lang == "zh" else "Life-circle coverage "
              "(share of residents, %)", show_lines=False)
    for c in table.columns:
        t.add_column(str(c), justify="right" if table[c].dtype.kind in "fi" else "left")
    nodata = i18n.status_label(col.STATUS_NO_DATA, lang)
    for _, row in table.iterrows():
        style = "bold" if row.iloc[0] in ("dimension", "overall") else (
            "dim" if nodata in [str(v) for v in row] else None)
        t.add_row(*[literal("" if (isinstance(v, float) and v != v) else v) for v in row], style=style)
    console.print(t)
    o = result.overall()
    src = result.population_info.get("source")
    src = f" ({label(f'pop.{src}', lang)})" if src else ""
    say(console, f"homes {int(o.get('homes', 0)):,}  residents {o.get('population', 0):,.0f}{src}  "
                 f"mean score (dimensions with data) {o.get('score_mean', float('nan')):.1f}  "
                 f"Gini {o.get('score_gini', float('nan')):.3f}")
    say(console, i18n.headline_text(o, lang))     # over the dimensions with data, all six beside
    for text in result.notes:
        note(text)                                  # notes quote data and file names: literal
    if result.no_data_categories():
        note(i18n.no_data_hint(lang))
    say(console, result.attribution, style="dim")


def _map_copy_target(out: Path, force: bool):
    """Where analyze copies its map (``maps/<out>.html`` when ``./maps`` is a folder), or None
    with the reason when that file exists and lifecircle did not write it."""
    from lifecircle.io.outputs import check_out_dir, check_out_file, write_text_atomic

    maps = Path("maps")
    if not maps.is_dir():
        return None, None
    target = maps / f"{out.name}.html"
    try:
        check_out_file(target, force=force)
    except LifecircleError as exc:
        return None, f"map not copied: {exc}"
    return target, None


def _run_analysis(source, out: Path, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, map_copy: bool = True, population_raster=None,
                  population_column: str = "population", force: bool = False, complete=None):
    from lifecircle.io.outputs import check_out_dir, check_out_file, write_text_atomic

    from lifecircle.pipeline import analyze

    try:
        DEFAULTS.with_(walk_speed_kmh=speed, lang=lang)   # bad settings fail before any work
        inputs = [p for p in (source, boundary, facilities, population, population_raster)
                  if p and Path(str(p)).exists()]
        check_out_dir(out, force=force, inputs=inputs)    # so does a target lifecircle may not replace
    except LifecircleError as exc:
        _fail(exc)
    progress, callback, finish = _stage_progress()
    try:
        with progress:
            result = analyze(source, boundary=boundary, profile=profile, speed=speed,
                             facilities_table=facilities, facilities_crs=facilities_crs,
                             population=population, population_raster=population_raster,
                             population_column=population_column, progress=callback, lang=lang,
                             crs=crs, complete=complete)
            callback("writing")
            import time

            t0 = time.perf_counter()
            result.save(out, force=force)
            result.timings["write"] = time.perf_counter() - t0
            finish()
    except LifecircleError as exc:
        _fail(exc)
    print_summary(result, result.settings.lang)
    timings = "  ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    say(console, f"stages: {timings}  (total {sum(result.timings.values()):.1f}s)", style="dim")
    say(console, f"wrote {out}/lifecircle.gpkg, summary.csv, map.html")
    if map_copy:
        target, why = _map_copy_target(out, force)
        if why:
            note(why)
        elif target is not None:
            try:
                write_text_atomic(target, (out / "map.html").read_text(encoding="utf-8"))
                say(console, f"map copied to {target}")
            except (OSError, LifecircleError) as exc:
                note(f"map not copied to {target}: {exc}")
    return result


def analyze(
    source: str = typer.Argument(..., help="OSM file (.osm.pbf/.osm/.osm.bz2), or 'place:NAME' to download "
                                 "a place from OSM (online; a name without the prefix is taken as a file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    boundary: Optional[Path] = typer.Option(None, help="Boundary polygons (GeoJSON/GeoPackage/Shapefile, any CRS)."),
    profile: str = typer.Option("default", help="Profile name (default, gb50180-2018, tdt1062-2021) or YAML file."),
    speed: Optional[float] = typer.Option(None, help="Walking speed in km/h (default 4)."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: your locale, zh_* → zh, else en)."),
    facilities: Optional[Path] = typer.Option(None, help="Extra facility table (CSV/XLSX, e.g. Amap POIs)."),
    facilities_crs: str = typer.Option("wgs84", help="Coordinates of the facility table: wgs84, gcj02 or bd09."),
    population: Optional[Path] = typer.Option(
        None, help="Community totals: polygons with a population column; the homes inside each are "
        "rescaled to its total (a zone without homes gets a stand-in home)."),
    population_column: str = typer.Option("population", help="Column of --population holding the residents."),
    population_raster: Optional[Path] = typer.Option(
        None, help="Population grid GeoTIFF (WorldPop/GHSL, people per cell) spread over the homes "
        "by floor area."),
    crs: Optional[str] = typer.Option(None, help="Metric CRS: utm (default), cgcs2000, or an EPSG code."),
    complete: Optional[str] = typer.Option(
        None, "--complete", metavar="CAT[,CAT]",
        help="Categories whose data is complete (surveyed): none found means none exist, a real "
             "gap. Other categories with no facility in the data read 'no data', never 0%."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Analyse a district: walking time from every home to every facility category."""
    _run_analysis(source, out, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, population_raster=population_raster,
                  population_column=population_column, force=force, complete=complete)


def demo(
    out: Path = typer.Option(Path("out/helsinki"), "--out", "-o", help="Output folder."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: your locale)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Run the analysis on the embedded Helsinki sample (offline)."""
    from lifecircle.io.sources import embedded_sample

    _run_analysis(str(embedded_sample()), out, None, "default", None, lang, None, "wgs84", None, None,
                  force=force)
