"""Homes (the origins) and their population.

Homes are residential buildings (``building=residential|apartments|house|…``) and
``building=yes`` inside residential land use. Population = footprint × levels × persons per m²
(:class:`~lifecircle.settings.Settings` documents the defaults). Where residential land use has
no building mapped, a regular grid of stand-in homes covers it. A user population column or
file overrides the estimate (:func:`apply_population`).
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle.errors import TableError
from lifecircle.settings import DEFAULTS, Settings

RESIDENTIAL_BUILDINGS = frozenset({
    "residential", "apartments", "house", "detached", "semidetached_house", "terrace",
    "dormitory", "bungalow", "cabin", "farm", "static_caravan", "houseboat", "stilt_house",
    "trullo", "villa",
})
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _levels(tags: dict, default: float) -> float:
    value = tags.get("building:levels")
    if value:
        m = _NUMBER.search(value)
        if m:
            lv = float(m.group())
            if 0 < lv < 200:
                return lv
    return default


def find_homes(features: gpd.GeoDataFrame, crs, settings: Settings = DEFAULTS) -> gpd.GeoDataFrame:
    """Homes as points (projected ``crs``) with ``population``, ``source`` and ``home_id``.

    ``source`` is ``building`` or ``grid`` (stand-in point over residential land with no
    buildings mapped).
    """
    tags = features["tags"].tolist()
    is_building = np.array(["building" in t and t["building"] != "no" for t in tags], dtype=bool)
    btype = np.array([t.get("building", "") for t in tags], dtype=object)
    landuse = np.array([t.get("landuse", "") for t in tags], dtype=object)
    proj = features.to_crs(crs)
    geom = proj.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geom), (3, 6))

    res_land = shapely.make_valid(geom[(landuse == "residential") & polygonal])

    bmask = is_building & polygonal
    typed = bmask & np.isin(btype, list(RESIDENTIAL_BUILDINGS))
    untyped = bmask & (btype == "yes")
    if len(res_land) and untyped.any():
        idx = np.flatnonzero(untyped)
        hit, _ = shapely.STRtree(res_land).query(shapely.point_on_surface(geom[idx]),
                                                 predicate="intersects")
        untyped[:] = False
        untyped[idx[np.unique(hit)]] = True
    else:
        untyped[:] = False
    home = typed | untyped
    area = shapely.area(geom)
    home &= area >= settings.min_home_footprint_m2
    hidx = np.flatnonzero(home)
    levels = np.array([_levels(tags[i], settings.default_levels) for i in hidx])
    pop = area[hidx] * levels * settings.persons_per_m2
    pts = shapely.point_on_surface(geom[hidx])
    frames = [gpd.GeoDataFrame({
        "osm_id": features["osm_id"].to_numpy()[hidx],
        "source": "building",
        "footprint_m2": area[hidx],
        "levels": levels,
        col.POPULATION: pop,
    }, geometry=pts, crs=crs)]

    # stand-in grid over residential land that has no building mapped
    if len(res_land):
        all_buildings = geom[bmask]
        tree = shapely.STRtree(all_buildings) if len(all_buildings) else None
        empty = []
        for poly in res_land:
            if tree is None or len(tree.query(poly, predicate="intersects")) == 0:
                empty.append(poly)
        if empty:
            frames.append(_grid(empty, crs, settings))
    homes = pd.concat(frames, ignore_index=True)
    homes = gpd.GeoDataFrame(homes, geometry="geometry", crs=crs)
    homes.insert(0, col.HOME_ID, np.arange(len(homes)))
    return homes


def _grid(polygons, crs, settings: Settings) -> gpd.GeoDataFrame:
    step = settings.grid_spacing_m
    per_point = settings.grid_density_per_ha * step * step / 10_000.0
    pts = []
    for poly in polygons:
        x0, y0, x1, y1 = poly.bounds
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        if len(xs) == 0 or len(ys) == 0:
            cand = np.array([shapely.point_on_surface(poly)])
        else:
            gx, gy = np.meshgrid(xs, ys)
            cand = shapely.points(gx.ravel(), gy.ravel())
            cand = cand[shapely.contains(poly, cand)]
            if len(cand) == 0:
                cand = np.array([shapely.point_on_surface(poly)])
        pts.append(cand)
    pts = np.concatenate(pts)
    n = len(pts)
    return gpd.GeoDataFrame({"osm_id": np.full(n, -1, np.int64), "source": np.full(n, "grid"),
                             "footprint_m2": np.zeros(n), "levels": np.zeros(n),
                             col.POPULATION: np.full(n, per_point)}, geometry=pts, crs=crs)


def apply_population(homes: gpd.GeoDataFrame, table, column: str = col.POPULATION,
                     path: str = "population") -> gpd.GeoDataFrame:
    """Replace the estimate by user figures.

    ``table`` is a GeoDataFrame of polygons with a ``column`` of residents (e.g. census
    blocks): each polygon's residents are spread over the homes inside it in proportion to
    their estimated population (evenly if all estimates are zero).
    """
    if column not in table.columns:
        raise TableError(path, f"no '{column}' column; columns found: {', '.join(map(str, table.columns))}")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy(float)) | (values.to_numpy(float) < 0))
    if len(bad):
        raise TableError(path, f"'{column}' must be a non-negative number", rows=[int(i) + 1 for i in bad])
    zones = table.to_crs(homes.crs)
    joined = gpd.sjoin(homes[["geometry"]], zones[["geometry"]], predicate="within", how="inner")
    out = homes.copy()
    est = out[col.POPULATION].to_numpy(float)
    for zone, members in joined.groupby("index_right").groups.items():
        idx = out.index.get_indexer(members)
        w = est[idx]
        w = w / w.sum() if w.sum() > 0 else np.full(len(idx), 1.0 / len(idx))
        out.iloc[idx, out.columns.get_loc(col.POPULATION)] = float(values.iloc[zone]) * w
    return out
