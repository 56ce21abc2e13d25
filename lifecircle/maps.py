"""Interactive folium maps of a result.

Homes (or a hexagon aggregate beyond ``settings.map_max_points``) coloured by life-circle
score, facilities in one layer group per dimension, layer control, scale bar, and the
attribution "© OpenStreetMap contributors" with the data date on every map.
"""

from __future__ import annotations

import html

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
import shapely

from . import columns as col
from .sources import ATTRIBUTION, WGS84

DIMENSION_COLOURS = {
    "housing": "#e6550d", "employment": "#6a51a3", "services": "#3182bd",
    "transport": "#636363", "leisure": "#31a354", "social": "#d6616b",
}
SCORE_COLOURS = ["#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"]


def _label(profile, item_id: str, lang: str) -> str:
    try:
        return profile.display_name(item_id, lang)
    except Exception:
        return item_id


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


def result_map(result, lang: str | None = None, tiles: str = "OpenStreetMap") -> folium.Map:
    """A folium map of a :class:`~lifecircle.analysis.Result`."""
    lang = lang or result.settings.lang
    profile = result.profile
    homes = result.homes
    area = homes.to_crs(WGS84).total_bounds if len(homes) else result.facilities.to_crs(WGS84).total_bounds
    centre = [(area[1] + area[3]) / 2, (area[0] + area[2]) / 2]
    attribution = result.attribution
    m = folium.Map(location=centre, zoom_start=15, tiles=None, control_scale=True)
    folium.TileLayer(tiles, attr=attribution, name=tiles).add_to(m)
    m.fit_bounds([[area[1], area[0]], [area[3], area[2]]])

    cmap = cm.LinearColormap(SCORE_COLOURS, vmin=0, vmax=100,
                             caption="生活圈得分 life-circle score" if lang == "zh" else "life-circle score (0-100)")
    score_name = "生活圈得分" if lang == "zh" else "Score"
    homes_layer = folium.FeatureGroup(name=("住宅 (得分)" if lang == "zh" else "Homes (score)"))
    if len(homes) > result.settings.map_max_points:
        hexes = hexagons(homes[homes[col.REACHABLE]] if col.REACHABLE in homes else homes,
                         result.settings.map_hex_m, col.SCORE, col.POPULATION).to_crs(WGS84)
        hexes[col.SCORE] = hexes[col.SCORE].round(1)
        hexes[col.POPULATION] = hexes[col.POPULATION].round(0)
        folium.GeoJson(
            hexes.__geo_interface__,
            style_function=lambda f: {"fillColor": cmap(f["properties"][col.SCORE])
                                      if f["properties"][col.SCORE] is not None else "#999",
                                      "color": "#555", "weight": 0.3, "fillOpacity": 0.6},
            tooltip=folium.GeoJsonTooltip([col.SCORE, col.POPULATION, "homes"]),
        ).add_to(homes_layer)
    else:
        pts = homes.to_crs(WGS84)
        xy = shapely.get_coordinates(pts.geometry.to_numpy())
        score = pts[col.SCORE].to_numpy(float)
        popn = pts[col.POPULATION].to_numpy(float)
        for (x, y), s, p in zip(xy, score, popn):
            colour = cmap(s) if np.isfinite(s) else "#999999"
            folium.CircleMarker(
                [y, x], radius=3, weight=0, fill=True, fill_color=colour, fill_opacity=0.85,
                tooltip=f"{score_name}: {s:.0f} · {'人口' if lang == 'zh' else 'residents'} {p:.0f}"
                if np.isfinite(s) else ("不可达" if lang == "zh" else "unreachable"),
            ).add_to(homes_layer)
    homes_layer.add_to(m)
    cmap.add_to(m)

    fac = result.facilities.to_crs(WGS84)
    reps = shapely.point_on_surface(fac.geometry.to_numpy())
    xy = shapely.get_coordinates(reps)
    cats = fac[col.CATEGORY].to_numpy()
    names = fac[col.NAME].fillna("").astype(str).to_numpy() if col.NAME in fac else np.full(len(fac), "")
    for dim in profile.dimensions:
        group = folium.FeatureGroup(name=_label(profile, dim.id, lang))
        colour = DIMENSION_COLOURS.get(dim.id, "#333333")
        cat_ids = {c.id for c in dim.categories}
        idx = np.flatnonzero(np.isin(cats, list(cat_ids)))
        for i in idx:
            label = _label(profile, cats[i], lang)
            tip = html.escape(f"{label}: {names[i]}" if names[i] else label)
            folium.CircleMarker([xy[i, 1], xy[i, 0]], radius=4, color=colour, weight=1,
                                fill=True, fill_color=colour, fill_opacity=0.9,
                                tooltip=tip).add_to(group)
        group.add_to(m)
    if result.communities is not None:
        comm = result.communities.to_crs(WGS84)
        folium.GeoJson(comm.__geo_interface__, name=("社区边界" if lang == "zh" else "Communities"),
                       style_function=lambda f: {"fill": False, "color": "#000", "weight": 2}).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
