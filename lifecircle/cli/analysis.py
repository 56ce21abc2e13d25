"""``lifecircle analyze`` and ``lifecircle demo``: the whole analysis of a district."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lifecircle.cli.common import console, err_console
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError
from lifecircle.i18n import label
from lifecircle.settings import DEFAULTS


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
    table = result.summary_table(lang)
    t = Table(title="生活圈覆盖 life-circle coverage" if lang == "zh" else "Life-circle coverage "
              "(share of residents, %)", show_lines=False)
    for c in table.columns:
        t.add_column(str(c), justify="right" if table[c].dtype.kind in "fi" else "left")
    for _, row in table.iterrows():
        style = "bold" if row.iloc[0] in ("dimension", "overall") else None
        t.add_row(*["" if (isinstance(v, float) and v != v) else str(v) for v in row], style=style)
    console.print(t)
    o = result.overall()
    src = result.population_info.get("source")
    src = f" ({label(f'pop.{src}', lang)})" if src else ""
    console.print(f"homes {int(o.get('homes', 0)):,}  residents {o.get('population', 0):,.0f}{src}  "
                  f"mean score {o.get('score_mean', float('nan')):.1f}  Gini {o.get('score_gini', float('nan')):.3f}  "
                  f"all six within 15 min {100 * o.get('covered', float('nan')):.1f}%")
    for note in result.notes:
        console.print("[yellow]note:[/] ", end="")
        console.print(note, markup=False, highlight=False)   # notes quote data and file names
    console.print(f"[dim]{result.attribution}[/]")


def _run_analysis(source, out: Path, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, map_copy: bool = True, population_raster=None,
                  population_column: str = "population"):
    from lifecircle.pipeline import analyze

    try:
        DEFAULTS.with_(walk_speed_kmh=speed, lang=lang)   # bad settings fail before any work
    except LifecircleError as exc:
        _fail(exc)
    progress, callback, finish = _stage_progress()
    try:
        with progress:
            result = analyze(source, boundary=boundary, profile=profile, speed=speed,
                             facilities_table=facilities, facilities_crs=facilities_crs,
                             population=population, population_raster=population_raster,
                             population_column=population_column, progress=callback, lang=lang,
                             crs=crs)
            callback("writing")
            import time

            t0 = time.perf_counter()
            result.save(out)
            result.timings["write"] = time.perf_counter() - t0
            finish()
    except LifecircleError as exc:
        _fail(exc)
    print_summary(result, result.settings.lang)
    timings = "  ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    console.print(f"[dim]stages: {timings}  (total {sum(result.timings.values()):.1f}s)[/]")
    console.print(f"wrote {out}/lifecircle.gpkg, summary.csv, map.html")
    if map_copy:
        maps = Path("maps")
        if maps.is_dir():
            import shutil

            target = maps / f"{out.name}.html"
            shutil.copyfile(out / "map.html", target)
            console.print(f"map copied to {target}")
    return result


def analyze(
    source: str = typer.Argument(..., help="OSM file (.osm.pbf/.osm/.osm.bz2) or a place name (online)."),
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
):
    """Analyse a district: walking time from every home to every facility category."""
    _run_analysis(source, out, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, population_raster=population_raster,
                  population_column=population_column)


def demo(
    out: Path = typer.Option(Path("out/helsinki"), "--out", "-o", help="Output folder."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: your locale)."),
):
    """Run the analysis on the embedded Helsinki sample (offline)."""
    from lifecircle.io.sources import embedded_sample

    _run_analysis(str(embedded_sample()), out, None, "default", None, lang, None, "wgs84", None, None)
