"""``lifecircle map`` (basemaps, offline HTML, isochrones) and ``lifecircle isochrones``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lifecircle import columns as col
from lifecircle.cli.common import FORCE_HELP, check_datum, console, load_folder, say
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError, OptionError
from lifecircle.i18n import check_lang


def _parse_minutes(text: str) -> list[float]:
    try:
        out = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise OptionError("--minutes", f"must be numbers separated by commas, got {text!r}",
                          zh=f"须为以逗号分隔的数字，实为 {text!r}") from None
    if not out or min(out) <= 0:
        raise OptionError("--minutes", f"must be positive, got {text!r}", zh=f"须为正数，实为 {text!r}")
    return out


def origin_names(g):
    """The names of origin points (an object array): the first of a ``name`` / ``名称`` /
    ``name_zh`` / ``id`` column (any case), else None."""
    cols = {str(c).lower(): c for c in g.columns if c != "geometry"}
    for key in ("name", "名称", "name_zh", "名字", "title", "id"):
        if key in cols:
            return g[cols[key]].astype(str).to_numpy(dtype=object)
    return None


def _read_origins(path: Path, crs, datum: str = "wgs84"):
    """Origin points from a vector file or a lon/lat CSV, in ``crs``; ``datum``: wgs84, gcj02
    (Gaode) or bd09 (Baidu) coordinates, shifted back to WGS-84 first."""
    import geopandas as gpd

    from lifecircle.errors import InputFileError
    from lifecircle.io.chinacoords import datum_zh, frame_to_wgs84

    if not path.exists():
        raise InputFileError(path, "file not found", zh="找不到文件")
    try:
        if path.suffix.lower() in (".csv", ".txt"):
            import pandas as pd

            from lifecircle.io.poitable import COLUMN_ALIASES
            from lifecircle.render.deliverables import lonlat_columns, lonlat_points

            df = pd.read_csv(path, encoding="utf-8-sig")
            xc, yc = lonlat_columns(df)
            if xc is None or yc is None:
                raise InputFileError(path, "CSV origins need lon/lat columns (lng/lon/经度 and lat/纬度)",
                                     zh="CSV 起点文件需要经纬度列（lng/lon/经度 与 lat/纬度）")
            cols = {str(c).strip().lower(): c for c in df.columns}
            name = next((cols[c] for c in COLUMN_ALIASES["name"] if c in cols), None)
            if name is not None and name != "name" and "name" not in df:
                df = df.rename(columns={name: "name"})
            g = lonlat_points(df, xc, yc, path)
        else:
            g = gpd.read_file(path)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(path, f"cannot read origins ({type(exc).__name__}: {exc})",
                             zh=f"无法读取起点文件（{type(exc).__name__}: {exc}）") from None
    if g.crs is None:
        raise InputFileError(path, "origins have no CRS", zh="起点文件没有坐标系")
    try:
        g = frame_to_wgs84(g, datum)
    except ValueError as exc:
        raise InputFileError(path, str(exc),
                             zh=datum_zh(datum)) from None
    return g.to_crs(crs)


def _same_area(result, gdf, path) -> None:
    """Refuse sites or recommendations none of which lies in (or within 1 km of) the analysis's
    homes: the files of another analysis, which would be drawn on the wrong map."""
    import shapely

    from lifecircle.errors import InputFileError

    if gdf is None or not len(gdf) or not len(result.homes):
        return
    area = shapely.box(*result.homes.total_bounds).buffer(1000.0)
    if not shapely.intersects(area, gdf.geometry.to_numpy()).any():
        raise InputFileError(path, "none of its sites lies in this analysis's area: the file of another analysis?",
                             zh="其中没有一处用地在本分析的范围内：是否是另一个分析的文件？")


def map_command(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default DIR/map.html)."),
    lang: Optional[str] = typer.Option(None, help="Language of tables, console and maps: zh or en (default: the analysis's)."),
    basemap: str = typer.Option("osm", help="Optional online layer (off on opening): osm, cartodb, blank, "
                                "amap (GCJ-02) or tianditu (needs TIANDITU_KEY)."),
    offline: bool = typer.Option(True, "--offline/--online",
                                 help="One self-contained file (default), or link Leaflet from its CDN."),
    origins: Optional[Path] = typer.Option(None, help="Points to draw isochrones for (GeoJSON/GPKG, or CSV "
                                           "lon/lat; a 'name' column names them)."),
    origins_crs: str = typer.Option("wgs84", help="Datum of the origins' lon/lat: wgs84, gcj02 (Gaode) or "
                                    "bd09 (Baidu)."),
    service: bool = typer.Option(False, "--service-areas/--no-service-areas",
                                 help="Also draw 15-minute street buffers per dimension."),
    resources: Optional[Path] = typer.Option(None, "--resources",
                                             help="A 'resources' output folder: its idle sites on the map."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    recommend: Optional[Path] = typer.Option(None, "--recommend",
                                             help="recommendations.csv (or its folder): numbered picks on the map."),
):
    """Write the interactive planning map of an analysis folder (opens offline)."""
    from lifecircle.io.outputs import check_out_file
    from lifecircle.render.deliverables import read_map_recommendations, read_map_sites
    from lifecircle.render.maps import result_map, save_map

    try:
        result = load_folder(folder)
        lang = check_lang(lang or result.settings.lang)
        check_datum("--origins-crs", origins_crs)
        target = out or folder / "map.html"
        check_out_file(target, force=force, inputs=[folder, origins, resources, recommend])
        iso = _read_origins(origins, result.crs, origins_crs) if origins else None
        sites = read_map_sites(resources, result.crs) if resources else None
        recs = read_map_recommendations(recommend, sites, result.crs) if recommend else None
        _same_area(result, sites, resources)
        _same_area(result, recs, recommend)
        m = result_map(result, lang=lang, basemap=basemap, offline=offline, isochrones=iso,
                       service_areas=service, sites=sites, recommendations=recs)
        save_map(m, target, offline=offline)
    except LifecircleError as exc:
        _fail(exc)
    size = target.stat().st_size / 1e6
    if lang == "zh":
        say(console, f"已写出 {target}（{size:.1f} MB{'，离线可用' if offline else ''}）")
    else:
        say(console, f"wrote {target} ({size:.1f} MB{', offline' if offline else ''})")


def isochrones_command(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    origins: Optional[Path] = typer.Option(None, help="Origin points (GeoJSON/GPKG, or CSV lon/lat); a "
                                           "name column names them."),
    origins_crs: str = typer.Option("wgs84", help="Datum of the origins' lon/lat: wgs84, gcj02 (Gaode) or "
                                    "bd09 (Baidu)."),
    communities: bool = typer.Option(False, "--communities", help="One origin per community (a point inside it)."),
    homes: Optional[int] = typer.Option(None, "--homes", help="N homes spread over the area (every k-th)."),
    minutes: str = typer.Option("5,10,15", help="Thresholds, e.g. 5,10,15."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="GeoPackage (default DIR/isochrones.gpkg)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    lang: Optional[str] = typer.Option(None, help="Language of the console and of made-up origin names: zh or "
                                       "en (default: the analysis's)."),
):
    """Walking isochrones (and service areas and gaps) as a GeoPackage."""
    import numpy as np
    import shapely

    from lifecircle.analyses.isochrones import export_gpkg, gap_areas, isochrones, service_areas
    from lifecircle.errors import InputFileError
    from lifecircle.io.outputs import check_out_file

    try:
        result = load_folder(folder)        # first: a refusal then speaks the analysis's language
        mins = _parse_minutes(minutes)
        lang = check_lang(lang or result.settings.lang)
        check_datum("--origins-crs", origins_crs)
        if homes is not None and homes < 1:
            raise OptionError("--homes", f"{homes}: give a number of homes of at least 1",
                              zh=f"{homes}：住宅数须不小于 1")
        if sum(x is not None and x is not False for x in (origins, communities or None, homes)) > 1:
            raise OptionError("--origins/--communities/--homes", "give one kind of origin",
                              zh="只能给出一种起点")
        target = out or folder / "isochrones.gpkg"
        check_out_file(target, force=force, inputs=[folder, origins])
        if origins is not None:
            g = _read_origins(origins, result.crs, origins_crs)
            pts = g.geometry
            names = origin_names(g)
        elif communities:
            if result.communities is None or not len(result.communities):
                raise InputFileError(folder, "the analysis has no communities (use --origins or --homes)",
                                     zh="该分析没有社区边界（请用 --origins 或 --homes）")
            pts = result.communities.geometry.representative_point()
            names = result.communities[col.COMMUNITY].astype(str).to_numpy()
        else:
            n = homes or 10
            h = result.homes
            idx = np.linspace(0, len(h) - 1, min(n, len(h))).round().astype(int)
            pts = h.geometry.iloc[idx]
            home = "住宅" if lang == "zh" else "home"
            names = np.array([f"{home} {i}" for i in h[col.HOME_ID].to_numpy()[idx]], dtype=object) \
                if col.HOME_ID in h else None
        iso = isochrones(result, pts, mins)
        if names is not None:          # the origin's own name travels with its polygons
            iso.insert(0, "origin_name", np.asarray(names, dtype=object)[iso["origin"].to_numpy(int)])
        sa = service_areas(result, mins)
        gp = gap_areas(result, sa, max(mins))
        export_gpkg(target, iso, sa, gp, attribution=result.attribution)
    except LifecircleError as exc:
        _fail(exc)
    empty = int(shapely.is_empty(iso.geometry.to_numpy()).sum())
    if lang == "zh":
        say(console, f"已写出 {target}：等时圈 {len(iso)} 个（其中 {empty} 个为空：起点不在路网上），"
                     f"服务范围 {len(sa)} 个，缺口范围 {len(gp)} 个")
    else:
        say(console, f"wrote {target}: {len(iso)} isochrones ({empty} empty: origin off the "
                      f"network), {len(sa)} service areas, {len(gp)} gap areas")
