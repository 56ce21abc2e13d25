"""``lifecircle resources`` and ``lifecircle recommend``: the idle-site inventory and where
to build. Thin front ends over :mod:`lifecircle.analyses.resources` and :mod:`lifecircle.analyses.recommend`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from lifecircle import i18n
from lifecircle.cli.common import FORCE_HELP, check_datum, console, literal, load_folder
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError
from lifecircle.i18n import LABELS, attribution_text, check_lang, label


def _inventory(folder: Path, sites: Optional[Path], sites_crs: str, corners: bool,
               corner_min: float, corner_max: float, lang: Optional[str] = None):
    from lifecircle.analyses.resources import build_inventory, source_of
    from lifecircle.io.sources import read_osm

    result = load_folder(folder)
    # the folder keeps the OSM features; one of an older format needs its source again
    osm = read_osm(source_of(folder)) if result.features is None else None
    return result, build_inventory(result, osm, sites=sites, sites_crs=sites_crs, corners=corners,
                                   corner_min_m2=corner_min, corner_max_m2=corner_max, lang=lang)


MAP_NAME = "resources_map.html"


def _write_map(result, out: Path, lang: str, recommendations: bool = False) -> None:
    """The idle-site list (and the numbered picks) on the planning map, offline, beside the
    tables in ``out`` (the folder being written): resources_map.html."""
    from lifecircle.render.deliverables import write_resources_map

    write_resources_map(result, out, lang, recommendations=recommendations)


def resources(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (CSV, XLSX, GeoPackage)."),
    sites: Optional[Path] = typer.Option(None, help="Surveyed sites (CSV/XLSX with lng/lat or wkt, GeoJSON, GeoPackage, Shapefile)."),
    sites_crs: str = typer.Option("wgs84", help="Coordinates of the site file: wgs84, gcj02 or bd09."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: the analysis's)."),
    corners: bool = typer.Option(True, help="Derive the 金角银边 (left-over corners) from geometry."),
    corner_min: float = typer.Option(30.0, help="Smallest left-over corner, m²."),
    corner_max: float = typer.Option(2000.0, help="Largest left-over corner, m²."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """The in-situ resource list (在地资源清单): idle sites and the walking gaps they could close."""
    from lifecircle.analyses.resources import load_site_rules, write_inventory
    from lifecircle.io.outputs import check_out_dir

    try:
        check_datum("--sites-crs", sites_crs)
        check_out_dir(out, force=force, inputs=[folder, sites])     # before any work
        if lang is not None:
            check_lang(lang)
        result, inv = _inventory(folder, sites, sites_crs, corners, corner_min, corner_max, lang)
        write_inventory(inv, out, lang=lang or result.settings.lang, profile=result.profile,
                        force=force, inputs=[folder, sites],
                        extra=lambda tmp: _write_map(result, tmp, lang or result.settings.lang))
    except LifecircleError as exc:
        _fail(exc)
    lang = lang or result.settings.lang
    rules = load_site_rules()
    counts = inv.sites.groupby(["source", "type"]).size()
    t = Table(box=None, pad_edge=False)
    for c in ("cli.source", "rec.type"):
        t.add_column(label(c, lang))
    t.add_column(label("cli.count", lang), justify="right")
    for (src, typ), n in counts.items():
        t.add_row(label(f"res.source_{src}", lang) if f"res.source_{src}" in LABELS else literal(src),
                  literal(rules.display(typ, lang)), f"{n:,}")
    console.print(t)
    stages = "  ".join(f"{label(f'stage.{k}', lang) if f'stage.{k}' in LABELS else k} {v:.2f}s"
                       for k, v in inv.timings.items())
    console.print(Text(label("res.summary", lang, n=len(inv.sites), t=stages)), highlight=False)
    for text in inv.notes:   # notes quote file names and data: printed literally
        console.print(Text.assemble((label("cli.note", lang), "yellow"), str(text)), highlight=False)
    console.print(Text(attribution_text(inv.attribution, lang), style="dim"), highlight=False)
    console.print(Text(label("rec.wrote", lang, out=str(out),
                             files=f"resources.csv, resources.xlsx, resources.gpkg, {MAP_NAME}")),
                  highlight=False)


def recommend(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    category: list[str] = typer.Option(..., "--category", "-c", help="Category id or name, Chinese or "
                                       "English (幼儿园, kindergarten); repeat for several."),
    k: int = typer.Option(5, "--k", help="Number of sites to pick."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    sites: Optional[Path] = typer.Option(None, help="Surveyed sites added to the OSM inventory."),
    sites_crs: str = typer.Option("wgs84", help="wgs84, gcj02 or bd09."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: the analysis's)."),
    method: str = typer.Option("auto", help="auto, exact (PuLP/CBC) or greedy."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Pick K idle sites for a category that newly cover the most residents (MCLP)."""
    from lifecircle.analyses.recommend import recommend as run
    from lifecircle.analyses.resources import write_inventory
    from lifecircle.io.outputs import check_out_dir

    try:
        check_datum("--sites-crs", sites_crs)
        check_out_dir(out, force=force, inputs=[folder, sites])     # before any work
        if lang is not None:
            check_lang(lang)
        result, inv = _inventory(folder, sites, sites_crs, True, 30.0, 2000.0, lang)
        lang = lang or result.settings.lang
        table = run(result, inv, category if len(category) > 1 else category[0], k=k,
                    method=method, lang=lang)
        write_inventory(inv, out, lang=lang, profile=result.profile, recommendations=table,
                        force=force, inputs=[folder, sites],
                        extra=lambda tmp: _write_map(result, tmp, lang, recommendations=len(table) > 0))
    except LifecircleError as exc:
        _fail(exc)
    print_recommendations(table, result.profile, lang)
    console.print(Text(attribution_text(inv.attribution, lang), style="dim"), highlight=False)
    files = ("recommendations.csv, recommendations.xlsx, resources.csv, resources.xlsx, resources.gpkg, "
             + MAP_NAME)
    console.print(Text(label("rec.wrote", lang, out=str(out), files=files)), highlight=False)


def print_recommendations(table, profile, lang: str, out=None) -> None:
    """The picks as a table in ``lang`` (status and area of each site shown), the residents
    lacking the categories, and — when nothing was picked — why and what would change it."""
    from lifecircle.analyses.resources import load_site_rules

    out = out or console
    rules = load_site_rules()
    cats = [c for c in str(table.attrs.get("category") or "").split(",") if c] or \
        sorted(table.attrs.get("gap_by_category", {}))
    names = "、".join(profile.display_name(c, lang) for c in cats) if lang == "zh" else \
        ", ".join(profile.display_name(c, lang) for c in cats)
    method = {"exact": label("rec.exact", lang), "greedy": label("rec.greedy", lang)}.get(
        table.attrs.get("method"), str(table.attrs.get("method")))
    out.print(Text(label("rec.title", lang, c=names, k=table.attrs.get("k", len(table)),
                         method=method, s=table.attrs.get("seconds", 0.0)), style="bold"),
              highlight=False)
    gaps = table.attrs.get("gap_by_category", {})
    sep = "；" if lang == "zh" else "; "
    total = sep + label("rec.gap_total", lang, g=f"{sum(gaps.values()):,.0f}") if len(gaps) > 1 else ""
    out.print(Text(label("rec.gap", lang, m=label("rec.gap_def", lang), g=sep.join(
        f"{profile.display_name(c, lang)} {g:,.0f}" for c, g in gaps.items()) + total)), highlight=False)
    if table.attrs.get("unreachable_population", 0) > 0:
        out.print(Text.assemble((label("cli.note", lang), "yellow"), label(
            "rec.unreachable", lang, p=table.attrs["unreachable_population"])), highlight=False)
    if table.attrs.get("no_data"):
        out.print(Text.assemble((label("cli.note", lang), "yellow"), label(
            "rec.no_data", lang, c=("、" if lang == "zh" else ", ").join(
                profile.display_name(c, lang) for c in table.attrs["no_data"]),
            s=i18n.status_label("no_data", lang), hint=i18n.no_data_hint(lang))), highlight=False)
    if not len(table):
        out.print(Text(label("rec.none", lang) + " " + str(table.attrs.get("why", "")),
                       style="yellow"), highlight=False)
        return
    t = Table(box=None, pad_edge=False)
    for key, right in (("rec.rank", True), ("rec.site", False), ("rec.type", False),
                       ("rec.status", False), ("rec.area", True), ("rec.use", False),
                       ("rec.new", True), ("rec.share", True)):
        t.add_column(label(key, lang), justify="right" if right else "left", overflow="fold")
    for _, row in table.iterrows():
        status = str(row.get("status", ""))
        t.add_row(str(row["rank"]), literal(row["site_id"]), literal(rules.display(row["type"], lang)),
                  label(f"rec.status_{status}", lang) if f"rec.status_{status}" in LABELS
                  else literal(status),
                  f"{row['area_m2']:,.0f}", literal(profile.display_name(row["use"], lang)),
                  f"{row['newly_covered']:,.0f}", f"{100 * row['share_of_gap']:.1f}")
    out.print(t)
