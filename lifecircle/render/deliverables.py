"""What ``resources``, ``recommend`` and ``check`` write besides their numbers, shared by the
command line and batch (which writes them into each district's folder): the idle sites and
picks read back for a map, the resources map and the compliance tables with their map.

Every writer here writes into an existing folder the caller puts in place atomically
(:func:`lifecircle.io.outputs.atomic_dir`); none makes or replaces folders itself.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from lifecircle.analyses.recommend import NEW_HOME_IDS
from lifecircle.analyses.resources import SITES_GPKG, read_sites_gpkg, write_inventory_files
from lifecircle.errors import InputFileError
from lifecircle.io.poitable import COLUMN_ALIASES
from lifecircle.render.maps import compliance_map, result_map, save_map

RESOURCES_MAP = "resources_map.html"
RECOMMENDATIONS_CSV = "recommendations.csv"
COMPLIANCE_CSV = "compliance.csv"
COMPLIANCE_XLSX = "compliance.xlsx"
COMPLIANCE_MAP = "compliance_map.html"


def read_map_sites(path, crs) -> gpd.GeoDataFrame:
    """Idle sites from a ``resources`` output folder (its resources.gpkg, every layer) or the
    GeoPackage itself, in ``crs``, with the columns a popup shows: identity, status, area,
    residents within each tier and the largest gaps."""
    path = Path(path)
    path = path / SITES_GPKG if path.is_dir() else path
    if not path.exists():
        raise InputFileError(path, "no resources.gpkg here: run 'lifecircle resources' first",
                             zh="这里没有 resources.gpkg：请先运行 'lifecircle resources'")
    try:
        g = read_sites_gpkg(path)
    except Exception as exc:
        raise InputFileError(path, f"cannot read the sites layers ({type(exc).__name__}: {exc})",
                             zh=f"无法读取用地图层（{type(exc).__name__}: {exc}）") from None
    if g.crs is None:
        raise InputFileError(path, "sites have no CRS", zh="用地图层没有坐标系")
    ident = [c for c in ("site_id", "name", "source", "type", "status", "area_m2", "ownership",
                         "best_uses") if c in g.columns]
    pops = sorted((c for c in g.columns if c.startswith("pop") and c[3:].isdigit()), key=lambda c: int(c[3:]))
    gaps = sorted((c for c in g.columns if c.startswith("gap_")), key=lambda c: -float(g[c].sum()))
    gaps = [c for c in gaps if float(g[c].sum()) > 0][:8]
    return g[ident + pops + gaps + [g.geometry.name]].to_crs(crs)


def read_map_recommendations(path, sites, crs) -> gpd.GeoDataFrame:
    """Recommendations (recommendations.csv of 'recommend', or its folder) placed on their
    sites by ``site_id`` (or by lon/lat columns); ``new_home_ids`` kept as text."""
    path = Path(path)
    p = path / RECOMMENDATIONS_CSV if path.is_dir() else path
    if not p.exists():
        raise InputFileError(p, "file not found", zh="找不到文件")
    try:
        df = pd.read_csv(p, encoding="utf-8-sig", dtype={NEW_HOME_IDS: str, "site_id": str})
    except Exception as exc:
        raise InputFileError(p, f"cannot read recommendations ({type(exc).__name__}: {exc})",
                             zh=f"无法读取推荐结果（{type(exc).__name__}: {exc}）") from None
    if NEW_HOME_IDS in df:
        df[NEW_HOME_IDS] = df[NEW_HOME_IDS].fillna("")
    if "rank" in df:
        rank = pd.to_numeric(df["rank"], errors="coerce")
        bad = [i + 1 for i, v in enumerate(rank) if not (v == v and v >= 1 and float(v).is_integer())]
        if bad:
            raise InputFileError(p, f"'rank' must be a whole number of at least 1 (row(s) {', '.join(map(str, bad[:5]))})",
                                 zh=f"'rank' 须为不小于 1 的整数（第 {', '.join(map(str, bad[:5]))} 行）")
        df["rank"] = rank.astype(int)
    if "site_id" in df.columns and sites is not None and "site_id" in sites.columns:
        geo = sites.set_index(sites["site_id"].astype(str)).geometry
        key = df["site_id"].astype(str)
        missing = sorted(set(key) - set(geo.index))
        if missing:
            raise InputFileError(p, f"site_id {missing[0]!r} is not in the --resources sites",
                                 zh=f"site_id {missing[0]!r} 不在 --resources 的用地中")
        return gpd.GeoDataFrame(df, geometry=geo.loc[key].to_numpy(), crs=sites.crs)
    xc, yc = lonlat_columns(df)
    if xc is None or yc is None:
        raise InputFileError(p, "recommendations need a site_id column (with --resources) or lon/lat",
                             zh="推荐结果需要 site_id 列（配合 --resources）或 lon/lat 列")
    return lonlat_points(df, xc, yc, p).to_crs(crs)


def lonlat_columns(df: pd.DataFrame) -> tuple:
    """The longitude and latitude columns of a table (the headers facility and site tables take:
    lng/lon/longitude/经度, lat/latitude/纬度; any case); None where missing."""
    cols = {str(c).strip().lower(): c for c in df.columns}
    return (next((cols[c] for c in COLUMN_ALIASES["lon"] if c in cols), None),
            next((cols[c] for c in COLUMN_ALIASES["lat"] if c in cols), None))


def lonlat_points(df: pd.DataFrame, xc, yc, path) -> gpd.GeoDataFrame:
    """``df`` as WGS-84 points from its ``xc``/``yc`` columns; a cell that is not a longitude or
    latitude is refused naming its rows (:class:`InputFileError` on ``path``)."""
    x = pd.to_numeric(df[xc], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[yc], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~((x >= -180) & (x <= 180) & (y >= -90) & (y <= 90))) + 1
    if len(bad):
        rows = ", ".join(map(str, bad[:5].tolist()))
        raise InputFileError(path, f"bad coordinates in row(s) {rows} (numbers, lng then lat)",
                             zh=f"第 {rows} 行坐标无效（应为数字，先经度后纬度）")
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")


def write_resources_map(result, folder, lang: str, recommendations: bool = False,
                        basemap: str = "osm", offline: bool = True) -> Path:
    """The idle-site list (and, with ``recommendations``, the numbered picks and the homes each
    newly covers) on the planning map: ``folder/resources_map.html``, drawn from the files
    just written into ``folder`` — the same map ``lifecircle map --resources --recommend``
    draws from them."""
    folder = Path(folder)
    sites = read_map_sites(folder, result.crs)
    recs = read_map_recommendations(folder, sites, result.crs) if recommendations else None
    m = result_map(result, lang=lang, basemap=basemap, offline=offline, sites=sites,
                   recommendations=recs)
    return save_map(m, folder / RESOURCES_MAP, offline=offline)


def write_resources(result, inv, folder, lang: str, recommendations=None, basemap: str = "osm",
                    offline: bool = True) -> list[str]:
    """Everything ``lifecircle resources`` (or ``recommend``, with ``recommendations``) writes,
    into the existing ``folder``: the tables, resources.gpkg and resources_map.html. Returns
    the map's file name."""
    write_inventory_files(inv, folder, lang=lang, profile=result.profile,
                          recommendations=recommendations)
    write_resources_map(result, folder, lang, recommendations=recommendations is not None
                        and len(recommendations) > 0, basemap=basemap, offline=offline)
    return [RESOURCES_MAP]


def write_compliance(report, result, folder, lang: str, basemap: str = "osm",
                     offline: bool | None = None) -> list[str]:
    """Everything ``lifecircle check`` writes, into the existing ``folder``: compliance.csv,
    compliance.xlsx and compliance_map.html (on ``basemap``; ``offline`` as :func:`save_map`).
    Returns the map's file name."""
    folder = Path(folder)
    report.to_csv(folder / COMPLIANCE_CSV, lang)
    report.to_xlsx(folder / COMPLIANCE_XLSX, lang)
    save_map(compliance_map(report, result, lang, basemap=basemap), folder / COMPLIANCE_MAP, offline=offline)
    return [COMPLIANCE_MAP]
