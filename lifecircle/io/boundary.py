"""Boundary files: the communities (社区) or districts an analysis reports on."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle.errors import BoundaryError, InputFileError, LifecircleError
from lifecircle.io.chinacoords import datum_zh, frame_to_wgs84, normalize_crs
from lifecircle.io.sources import WGS84

#: The Chinese of the kinds of polygon file :func:`read_polygons` is told it reads.
_WHAT_ZH = {"polygon file": "面文件", "boundary file": "边界文件", "population file": "人口文件"}


def short_error(exc: Exception) -> str:
    """An exception as one short line (GDAL messages run long and over several lines)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}{'…' if len(text) > 160 else ''}"


def read_polygons(path, error=InputFileError, what: str = "polygon file") -> gpd.GeoDataFrame:
    """Polygons of a vector file (any CRS, not converted), refused with one line naming the
    file when it is missing, a folder, empty, unreadable, without a CRS, or without any
    polygon geometry."""
    path = Path(path)
    if not path.exists():
        raise error(path, "file not found", zh="找不到文件")
    if path.is_dir():
        raise error(path, f"is a folder, not a {what} (give the .geojson, .gpkg or .shp file)",
                    zh=f"是文件夹，不是{_WHAT_ZH.get(what, what)}（请给出 .geojson、.gpkg 或 .shp 文件）")
    try:
        if path.stat().st_size == 0:
            raise error(path, "file is empty", zh="文件为空")
        gdf = gpd.read_file(path)
    except LifecircleError:
        raise
    except Exception as exc:
        raise error(path, f"cannot read as a vector file ({short_error(exc)})",
                    zh=f"无法作为矢量文件读取（{short_error(exc)}）") from None
    if len(gdf) == 0:
        raise error(path, "holds no features", zh="不含任何要素")
    if gdf.crs is None:
        raise error(path, "has no coordinate reference system; save it with one (e.g. EPSG:4326)",
                    zh="没有坐标参考系；请带坐标系另存（如 EPSG:4326）")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if len(gdf) == 0:
        raise error(path, "holds no geometry (every feature's geometry is empty or null)",
                    zh="不含几何图形（所有要素的几何均为空）")
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise error(path, f"must hold polygons, found {', '.join(sorted(kinds))}",
                    zh=f"须为面要素，实为 {', '.join(sorted(kinds))}")
    return gdf


def read_boundary(path, name_column: str | None = None, crs: str = "wgs84") -> gpd.GeoDataFrame:
    """Boundary polygons in WGS-84 with a ``community`` column (from ``name_column`` or the
    first text column; ``community_<n>`` otherwise). ``crs``: the datum of the coordinates —
    ``gcj02`` (Gaode/Tencent) or ``bd09`` (Baidu) files are shifted back to WGS-84."""
    path = Path(path)
    try:
        normalize_crs(crs)
    except ValueError as exc:
        raise BoundaryError(path, str(exc),
                            zh=datum_zh(crs)) from None
    gdf = read_polygons(path, BoundaryError, "boundary file")
    gdf = frame_to_wgs84(gdf, crs).to_crs(WGS84)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.to_numpy())
    if name_column is not None and name_column not in gdf:
        raise BoundaryError(path, f"no column '{name_column}'; columns: {', '.join(map(str, gdf.columns))}",
                            zh=f"没有 '{name_column}' 列；文件中的列：{', '.join(map(str, gdf.columns))}")
    if name_column is None:
        text = [c for c in gdf.columns if c != "geometry" and (
            gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c]))]
        prefer = [c for c in text if c.lower() in ("name", "name_zh", "community", "名称", "社区")]
        name_column = (prefer or text or [None])[0]
    numbered = pd.Series([f"community_{i + 1}" for i in range(len(gdf))], index=gdf.index)
    if name_column:       # a missing or blank name reads "" (never "nan"/"None"); callers decide
        raw = gdf[name_column]
        names = raw.where(raw.notna(), "").astype(str).str.strip()
    else:
        names = numbered
    return gpd.GeoDataFrame({col.COMMUNITY: names.to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=WGS84)
