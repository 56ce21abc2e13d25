"""``lifecircle resources`` and ``lifecircle recommend``: the idle-site inventory and where
to build. Thin front ends over :mod:`lifecircle.analyses.resources` and :mod:`lifecircle.analyses.recommend`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from lifecircle.cli.common import FORCE_HELP, console, note
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError
from lifecircle.untrusted import literal, say


def _inventory(folder: Path, sites: Optional[Path], sites_crs: str, corners: bool,
               corner_min: float, corner_max: float):
    from lifecircle.analyses.resources import build_inventory, source_of
    from lifecircle.io.sources import read_osm
    from lifecircle.result import load_result

    result = load_result(folder)
    # the folder keeps the OSM features; one of an older format needs its source again
    osm = read_osm(source_of(folder)) if result.features is None else None
    return result, build_inventory(result, osm, sites=sites, sites_crs=sites_crs, corners=corners,
                                   corner_min_m2=corner_min, corner_max_m2=corner_max)


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
    from lifecircle.io.outputs import check_out_dir

    from lifecircle.analyses.resources import write_inventory

    try:
        check_out_dir(out, force=force, inputs=[folder, sites])     # before any work
        result, inv = _inventory(folder, sites, sites_crs, corners, corner_min, corner_max)
        write_inventory(inv, out, lang=lang or result.settings.lang, profile=result.profile,
                        force=force, inputs=[folder, sites])
    except LifecircleError as exc:
        _fail(exc)
    counts = inv.sites.groupby(["source", "type"]).size()
    for (src, typ), n in counts.items():
        say(console, f"  {src:8s} {typ:18s} {n:6d}")
    say(console, f"{len(inv.sites):,} sites; stages: "
        + "  ".join(f"{k} {v:.2f}s" for k, v in inv.timings.items()))
    for text in inv.notes:
        note(text)
    say(console, inv.attribution, style="dim")
    say(console, f"wrote {out}/resources.csv, resources.xlsx, resources.gpkg")


def recommend(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    category: list[str] = typer.Option(..., "--category", "-c", help="Category id (repeat for several)."),
    k: int = typer.Option(5, "--k", help="Number of sites to pick."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    sites: Optional[Path] = typer.Option(None, help="Surveyed sites added to the OSM inventory."),
    sites_crs: str = typer.Option("wgs84", help="wgs84, gcj02 or bd09."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: the analysis's)."),
    method: str = typer.Option("auto", help="auto, exact (PuLP/CBC) or greedy."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Pick K idle sites for a category that newly cover the most residents (MCLP)."""
    from lifecircle import i18n
    from lifecircle.io.outputs import check_out_dir

    from lifecircle.analyses.recommend import recommend as run
    from lifecircle.analyses.resources import write_inventory

    try:
        check_out_dir(out, force=force, inputs=[folder, sites])     # before any work
        result, inv = _inventory(folder, sites, sites_crs, True, 30.0, 2000.0)
        table = run(result, inv, category if len(category) > 1 else category[0], k=k,
                    method=method)
        write_inventory(inv, out, lang=lang or result.settings.lang, profile=result.profile,
                        recommendations=table, force=force, inputs=[folder, sites])
    except LifecircleError as exc:
        _fail(exc)
    t = Table(title=literal(f"{', '.join(category)}: k={k} ({table.attrs['method']}, "
                            f"{table.attrs['seconds']:.2f}s; gap {table.attrs['gap_population']:,.0f} residents)"))
    for c in ("rank", "site_id", "type", "newly_covered", "cumulative", "share_of_gap"):
        t.add_column(c, justify="right")
    for _, row in table.iterrows():
        t.add_row(literal(row["rank"]), literal(row["site_id"]), literal(row["type"]),
                  f"{row['newly_covered']:,.0f}", f"{row['cumulative']:,.0f}",
                  f"{100 * row['share_of_gap']:.1f}%")
    console.print(t)
    if table.attrs.get("no_data"):
        lang_ = lang or result.settings.lang
        note(f"{', '.join(table.attrs['no_data'])}: {i18n.status_label('no_data', lang_)} — the gap "
             f"assumes no such facility exists; {i18n.no_data_hint(lang_)}")
    say(console, inv.attribution, style="dim")
    say(console, f"wrote {out}/recommendations.csv, resources.csv, resources.xlsx, resources.gpkg")
