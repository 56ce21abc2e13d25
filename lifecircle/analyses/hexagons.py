"""Hexagon aggregates of home points: what a city-wide map or compliance layer draws instead
of single homes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def hexagons(points: gpd.GeoDataFrame, size_m: float, value: str, weight: str):
    """Aggregate points into flat-top hexagons of ``size_m`` (centre to corner): the
    weighted mean of ``value`` and the sum of ``weight`` per hexagon."""
    xy = shapely.get_coordinates(points.geometry.to_numpy())
    w = points[weight].to_numpy(float)
    v = points[value].to_numpy(float)
    # axial coordinates (flat-top)
    q = (2.0 / 3.0 * xy[:, 0]) / size_m
    r = (-1.0 / 3.0 * xy[:, 0] + np.sqrt(3) / 3.0 * xy[:, 1]) / size_m
    x, z = q, r
    y = -x - z
    rx, ry, rz = np.round(x), np.round(y), np.round(z)
    dx, dy, dz = np.abs(rx - x), np.abs(ry - y), np.abs(rz - z)
    fix_x = (dx > dy) & (dx > dz)
    fix_y = ~fix_x & (dy > dz)
    rx = np.where(fix_x, -ry - rz, rx)
    ry = np.where(fix_y, -rx - rz, ry)
    rz = np.where(~fix_x & ~fix_y, -rx - ry, rz)
    key = rx.astype(np.int64) * 1_000_003 + rz.astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    ok = np.isfinite(v)
    wsum = np.bincount(inv, weights=np.where(ok, w, 0.0), minlength=len(uniq))
    vsum = np.bincount(inv, weights=np.where(ok, w * v, 0.0), minlength=len(uniq))
    pop = np.bincount(inv, weights=w, minlength=len(uniq))
    first = np.unique(inv, return_index=True)[1]
    cq, cr = rx[first], rz[first]
    cx = size_m * 1.5 * cq
    cy = size_m * np.sqrt(3) * (cr + cq / 2.0)
    ang = np.deg2rad(np.arange(0, 360, 60))
    rings = np.stack([cx[:, None] + size_m * np.cos(ang), cy[:, None] + size_m * np.sin(ang)], axis=-1)
    polys = shapely.polygons(rings)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, vsum / wsum, np.nan)
    return gpd.GeoDataFrame({value: mean, weight: pop, "homes": np.bincount(inv)},
                            geometry=polys, crs=points.crs)
