"""Hexagon aggregates of home points: what a city-wide map or compliance layer draws instead
of single homes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def hex_bins(xy: np.ndarray, size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The flat-top hexagon (``size_m`` centre to corner) of each point: ``(inverse, centres)``
    where ``inverse[i]`` numbers point ``i``'s hexagon and ``centres`` (K, 2) are the hexagons'
    centres, in the order of their numbers."""
    xy = np.asarray(xy, float).reshape(-1, 2)
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
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    cq, cr = rx[first], rz[first]
    centres = np.column_stack([size_m * 1.5 * cq, size_m * np.sqrt(3) * (cr + cq / 2.0)])
    return inv.ravel(), centres


def hex_polygons(centres: np.ndarray, size_m: float) -> np.ndarray:
    """Flat-top hexagons of ``size_m`` around ``centres`` (K, 2)."""
    ang = np.deg2rad(np.arange(0, 360, 60))
    cx, cy = centres[:, 0], centres[:, 1]
    rings = np.stack([cx[:, None] + size_m * np.cos(ang), cy[:, None] + size_m * np.sin(ang)], axis=-1)
    return shapely.polygons(rings)


def hexagons(points: gpd.GeoDataFrame, size_m: float, value: str, weight: str):
    """Aggregate points into flat-top hexagons of ``size_m`` (centre to corner): the
    weighted mean of ``value`` and the sum of ``weight`` per hexagon."""
    xy = shapely.get_coordinates(points.geometry.to_numpy())
    w = points[weight].to_numpy(float)
    v = points[value].to_numpy(float)
    inv, centres = hex_bins(xy, size_m)
    k = len(centres)
    ok = np.isfinite(v)
    wsum = np.bincount(inv, weights=np.where(ok, w, 0.0), minlength=k)
    vsum = np.bincount(inv, weights=np.where(ok, w * v, 0.0), minlength=k)
    pop = np.bincount(inv, weights=w, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, vsum / wsum, np.nan)
    return gpd.GeoDataFrame({value: mean, weight: pop, "homes": np.bincount(inv, minlength=k)},
                            geometry=hex_polygons(centres, size_m), crs=points.crs)
