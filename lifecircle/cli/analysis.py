"""``lifecircle analyze`` and ``lifecircle demo``: the whole analysis of a district."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.cli.common import FORCE_HELP, console, err_console, hold_until_exit, literal, note, say
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError, SettingsError
from lifecircle.i18n import LABELS, attribution_text, default_lang, label
from lifecircle.settings import DEFAULTS


def _stage_word(stage: str, lang: str) -> str:
    return label(f"stage.{stage}", lang) if f"stage.{stage}" in LABELS else stage


def _stage_progress(lang: str = "en"):
    from lifecircle.pipeline import STAGES

    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=err_console, transient=True,   # gone when done: an error stays one line
                        disable=not err_console.is_terminal)   # no bar when piped or logged
    task = progress.add_task(_stage_word("starting", lang), total=len(STAGES))
    seen: list[str] = []

    def callback(stage: str) -> None:
        if seen:
            progress.advance(task)
        seen.append(stage)
        progress.update(task, description=_stage_word(stage, lang))

    def finish() -> None:
        progress.update(task, completed=len(STAGES), description=_stage_word("done", lang))

    return progress, callback, finish


def _num(v, fmt: str = "{:.1f}") -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else fmt.format(v)


def summary_rows(result, lang: str, level: str) -> list[list[str]]:
    """Rows (name, facilities, covered %, per-tier %) of the whole-area ``level`` rows
    (``dimension`` or ``category``) of the summary, with names in ``lang``."""
    s = result.summary[(result.summary.community == "ALL") & (result.summary.level == level)]
    name = "name_zh" if lang == "zh" else "name_en"
    rows = []
    for _, r in s.iterrows():
        if r.get(col.DATA_STATUS) == col.STATUS_NO_DATA:    # missing data: said, never 0 %
            nodata = i18n.status_label(col.STATUS_NO_DATA, lang)
            row = [str(r[name]), _num(r.get("facilities"), "{:.0f}"), nodata]
            row += ["" for _ in result.settings.thresholds_min]
        else:
            row = [str(r[name]), _num(r.get("facilities"), "{:.0f}"), _num(100 * r["covered"])]
            row += [_num(100 * r.get(f"within_{m:g}", float("nan")))
                    for m in result.settings.thresholds_min]
        if level == "category":
            row += [_num(r.get("minutes"), "{:g}"), _num(r.get("median_min"))]
        rows.append(row)
    return rows


def print_summary(result, lang: str, verbose: bool = False, files: str = "summary.xlsx, summary.csv",
                  out=None) -> None:
    """The console summary, readable at 80 columns: headline, the six dimension rows, the data
    notes; the category table only with ``verbose`` (it is in ``files`` anyway). Every word in
    ``lang``; cells wrap instead of being cut."""
    out = out or console
    tiers = result.settings.thresholds_min
    o = result.overall()
    src = result.population_info.get("source")
    src = f" ({label(f'pop.{src}', lang)})" if src else ""
    score, gini = o.get("score_mean"), o.get("score_gini")
    head = "  ".join([
        label("cli.homes", lang, n=int(o.get("homes", 0) or 0)),
        label("cli.residents", lang, n=float(o.get("population", 0) or 0)) + src,
        label("cli.score", lang, v=_num(score) or "–"),
        label("cli.gini", lang, v=_num(gini, "{:.3f}") or "–")])
    if not _num(score) or not _num(gini):     # missing, never "nan": and why
        head += ("（{}）" if lang == "zh" else " ({})").format(i18n.missing_reason(o, lang))
    out.print(Text(label("cli.title", lang), style="bold"))
    out.print(Text(head), highlight=False)
    # over the dimensions with data, all six beside
    out.print(Text(i18n.headline_text(o, lang, snap_m=result.settings.max_snap_m), style="bold"),
              highlight=False)

    def table(first: str, level: str, heads: list[str]):
        t = Table(show_lines=False, box=None, pad_edge=False, padding=(0, 1))
        t.add_column(first, overflow="fold", min_width=8,
                     style="bold" if level == "dimension" else None)
        for c in heads:   # numbers never wrap nor get cut: the name column gives way
            t.add_column(c, justify="right", no_wrap=True, min_width=len(c))
        for row in summary_rows(result, lang, level):
            t.add_row(*(literal(c) for c in row))     # category names come from the profile: never markup
        out.print(t)

    table(label("cli.dimension", lang), "dimension",
          [label("cli.facilities", lang), label("cli.covered", lang),
           *[label("cli.tier", lang, t=m) for m in tiers]])
    n_cat = int(((result.summary.community == "ALL") & (result.summary.level == "category")).sum())
    if verbose:
        out.print(Text(label("cli.category_note", lang), style="bold"))
        table(label("cli.category", lang), "category",
              [label("cli.short_facilities", lang), label("cli.short_covered", lang),
               *[label("cli.short_tier", lang, t=m) for m in tiers],
               label("cli.minutes", lang), label("cli.median", lang)])
    else:
        out.print(Text(label("cli.full_table", lang, n=n_cat, files=files), style="dim"))
    for text in result.notes:   # notes quote data and file names: printed literally
        out.print(Text.assemble((label("cli.note", lang), "yellow"), str(text)), highlight=False)
    out.print(Text(attribution_text(result.attribution, lang), style="dim"), highlight=False)


def _map_copy_target(out: Path, force: bool, make: bool = False):
    """Where analyze copies its map (``maps/<out>.html`` when ``./maps`` is a folder), or None
    with the reason when that file exists and lifecircle did not write it. ``make``: make
    ``./maps`` first (the demo); where that cannot be (a file of the user's is called maps),
    None with the reason."""
    from lifecircle.io.outputs import check_out_file

    maps = Path("maps")
    if make and not maps.is_dir():
        try:
            maps.mkdir()
        except OSError as exc:
            return None, LifecircleError(f"./maps is not a folder and cannot be made ({exc.strerror})",
                                         zh=f"./maps 不是文件夹，也无法创建（{exc.strerror}）")
    if not maps.is_dir():
        return None, None
    target = maps / f"{out.name}.html"
    try:
        check_out_file(target, force=force)
    except LifecircleError as exc:
        return None, exc
    return target, None


def _map_not_copied(target, exc: Exception, lang: str) -> None:
    """A note that the map copy in ./maps was not made, and why, in ``lang``."""
    why = exc.message(lang) if isinstance(exc, LifecircleError) else str(exc)
    if lang == "zh":
        say(console, f"地图未复制{f'到 {target}' if target else ''}：{why}", prefix="注：", prefix_style="yellow")
    else:
        note(f"map not copied{f' to {target}' if target else ''}: {why}")


def _run_analysis(source, out: Path, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, map_copy: bool = True, population_raster=None,
                  population_column: str = "population", force: bool = False, complete=None,
                  verbose: bool = False, boundary_crs: str = "wgs84", population_crs: str = "wgs84",
                  map_html: bool = True, metrics: str | None = None, place: str | None = None,
                  make_maps: bool = False):
    from lifecircle.io.outputs import check_out_dir, copy_file_atomic
    from lifecircle.pipeline import analyze

    try:
        try:
            DEFAULTS.with_(walk_speed_kmh=speed, lang=lang,    # bad settings fail before any work
                           metrics=metrics)
        except SettingsError as exc:                          # named as the user typed it
            def typed(text):
                return text.replace("walk_speed_kmh", "--speed").replace("metrics:", "--metrics:")

            raise SettingsError(typed(str(exc)), zh=typed(exc.message("zh"))) from None
        inputs = [p for p in (source, boundary, facilities, population, population_raster)
                  if p and Path(str(p)).exists()]
        check_out_dir(out, force=force, inputs=inputs)    # so does a target lifecircle may not replace
    except LifecircleError as exc:
        _fail(exc, lang)
    progress, callback, finish = _stage_progress(default_lang(lang))
    try:
        with progress:
            result = analyze(source, boundary=boundary, profile=profile, speed=speed,
                             facilities_table=facilities, facilities_crs=facilities_crs,
                             population=population, population_raster=population_raster,
                             population_column=population_column, progress=callback, lang=lang,
                             crs=crs, complete=complete, boundary_crs=boundary_crs,
                             population_crs=population_crs, metrics=metrics, prepare_map=map_html,
                             place=place)
            callback("writing")
            # the engine (the network's arrays, a Result's cache) is not asked again here:
            # not held through the save, where a run's memory peaks (~250 MB at a million
            # walking nodes)
            result._engine = None
            t0 = time.perf_counter()
            result.save(out, map_html=map_html, force=force)
            result.timings["write"] = time.perf_counter() - t0
            finish()
    except LifecircleError as exc:
        _fail(exc, lang)
    lang = result.settings.lang
    print_summary(result, lang, verbose=verbose)
    parallel = getattr(result, "parallel_stages", ())
    timings = "  ".join(f"{_stage_word('network_parallel' if k == 'network' and k in parallel else k, lang)} "
                        f"{v:.2f}s" for k, v in result.timings.items()
                        if k != "map" or v >= 0.005)   # no wait for the map's preparation: not shown
    # wrapped at the console width (not soft-wrapped): reads at 80 columns
    console.print(Text(f"{label('cli.stages', lang)}{timings}  ({label('cli.total', lang)} "
                       f"{sum(result.timings.values()):.1f}s)", style="dim"), highlight=False)
    console.print(Text(label("cli.wrote", lang, out=str(out),
                             files="lifecircle.gpkg, summary.xlsx, summary.csv"
                             + (", map.html" if map_html else ""))),
                  highlight=False)
    if map_copy and map_html:
        target, why = _map_copy_target(out, force, make=make_maps)
        if why:
            _map_not_copied(None, why, lang)
        elif target is not None:
            try:
                copy_file_atomic(out / "map.html", target)
                console.print(Text(label("cli.map_copied", lang, p=str(target))), highlight=False)
            except (OSError, LifecircleError) as exc:
                _map_not_copied(target, exc, lang)
    hold_until_exit(result)
    return result


def analyze(
    source: str = typer.Argument(..., help="OSM file (.osm.pbf/.osm/.osm.bz2), or 'place:NAME' to download "
                                 "a place from OSM (online; a name without the prefix is taken as a file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    boundary: Optional[Path] = typer.Option(None, help="Boundary polygons (GeoJSON/GeoPackage/Shapefile, any CRS)."),
    boundary_crs: str = typer.Option("wgs84", help="Datum of the boundary's lon/lat: wgs84, gcj02 (Gaode) "
                                     "or bd09 (Baidu)."),
    profile: str = typer.Option("default", help="Profile name (default, gb50180-2018, tdt1062-2021) or YAML file."),
    speed: Optional[float] = typer.Option(None, help="Walking speed in km/h (default 4)."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: your locale, zh_* → zh, else en)."),
    facilities: Optional[Path] = typer.Option(
        None, help="Extra facility table (CSV/XLSX, e.g. Amap or Baidu POIs) with columns: name, lng and lat "
        "(or one location column 'lng,lat'), and the type as a category id, an Amap typecode or a Baidu "
        "category. Chinese headers such as 名称, 经度, 纬度 and 类别 are read too."),
    facilities_crs: str = typer.Option("wgs84", help="Coordinates of the facility table: wgs84, gcj02 or bd09."),
    population: Optional[Path] = typer.Option(
        None, help="Community totals: polygons with a population column; the homes inside each are "
        "rescaled to its total (a zone without homes gets a stand-in home)."),
    population_column: str = typer.Option("population", help="Column of --population holding the residents."),
    population_crs: str = typer.Option("wgs84", help="Datum of the --population polygons: wgs84, gcj02 or bd09."),
    population_raster: Optional[Path] = typer.Option(
        None, help="Population grid GeoTIFF (WorldPop/GHSL, people per cell) spread over the homes "
        "by floor area."),
    crs: Optional[str] = typer.Option(None, help="Metric CRS: utm (default), cgcs2000, or an EPSG code."),
    complete: Optional[str] = typer.Option(
        None, "--complete", metavar="CAT[,CAT]",
        help="Categories whose data is complete (surveyed): none found means none exist, a real "
             "gap. Other categories with no facility in the data read 'no data', never 0%."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the table of every category."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html (--no-map: the tables only; "
                                  "'lifecircle map DIR' draws it later)."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", metavar="METRIC[,METRIC]",
        help="Per-category metrics of the homes table, the whole list (default time,count: minutes "
             "to the nearest t_, counts n5_/n10_/n15_). Opt-in: kmean (k_, mean minutes to the 20 "
             "nearest), decay (g_, decay-weighted count), sfca (a_, 2SFCA supply/demand ratio); e.g. "
             "--metrics time,count,sfca, or 'all'. Each costs as much memory as the minutes."),
):
    """Analyse a district: walking time from every home to every facility category.

    Writes OUT (tables, GeoPackage, map.html); when a maps/ folder exists in the current
    folder, a copy of the map goes there as maps/OUT-NAME.html (only a copy lifecircle wrote is
    ever replaced).
    """
    _run_analysis(source, out, boundary, profile, speed, lang, facilities, facilities_crs,
                  population, crs, population_raster=population_raster,
                  population_column=population_column, force=force, complete=complete,
                  verbose=verbose, boundary_crs=boundary_crs, population_crs=population_crs,
                  map_html=map_html, metrics=metrics)


def demo(
    sample: str = typer.Option("xinjiekou", help="Sample: xinjiekou (新街口, Nanjing 2021, in Chinese) or "
                               "helsinki."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/<sample>)."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: zh "
                                       "for xinjiekou, else your locale)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the table of every category."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Run the analysis offline on a shipped sample: Xinjiekou, central Nanjing (default, in
    Chinese), or Helsinki; writes out/<sample>/ and a copy of the map to maps/<sample>.html."""
    from lifecircle.io.sources import SAMPLE_PLACES, SAMPLES, embedded_sample

    if sample not in SAMPLES:
        _fail(LifecircleError(f"unknown sample {sample!r}: use {' or '.join(SAMPLES)}",
                              zh=f"未知的示例数据 {sample!r}：请用 {' 或 '.join(SAMPLES)}"))
    if lang is None and sample == "xinjiekou":
        lang = "zh"
    # (a bad --lang is refused by _run_analysis, in one line)
    place = SAMPLE_PLACES[sample][0 if (lang if lang is not None else default_lang()) == "zh" else 1]
    _run_analysis(str(embedded_sample(sample)), out or Path("out") / sample, None, "default", None,
                  lang, None, "wgs84", None, None, verbose=verbose, force=force, place=place,
                  make_maps=True)
