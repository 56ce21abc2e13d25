"""Interactive folium maps of a result, openable anywhere.

Homes (or a hexagon aggregate beyond ``settings.map_max_points``) coloured by life-circle
score with a legend; one layer group per dimension (facilities coloured and marked per
category, the 15-minute service area); isochrones, gap areas and idle sites; layer control,
scale bar, fullscreen and minimap; attribution "© OpenStreetMap contributors" with the data
date on every map; labels in Chinese or English.

Basemaps: ``osm`` (default), ``cartodb``, ``blank``, ``amap`` (GCJ-02 tiles: every vector layer
is shifted with :func:`lifecircle.io.chinacoords.wgs84_to_gcj02` so it lines up) and ``tianditu``
(needs the environment variable ``TIANDITU_KEY``).

Offline: :func:`save_map` with ``offline=True`` inlines Leaflet, jQuery, Bootstrap, the
Fullscreen/MiniMap plugins and d3 (legend) from the installed PyPI package ``folium-offline``
(module ``offlinefolium``, which ships those files for folium 0.20) — nothing is fetched at run
time; with ``basemap="blank"`` the file works with the network cut.

Size: points become GeoJSON layers (not one JS object per marker), polygons are simplified by
``MAP_SIMPLIFY_M`` and coordinates rounded to ``MAP_DECIMALS``; beyond
``settings.map_max_points`` homes are aggregated to hexagons. Budget: the Las Palmas offline map
(7,554 homes, 7,072 facilities, service areas, gaps) is ~7.6 MB, under ``MAP_BUDGET_MB`` (15).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import branca.colormap as cm
import folium
from branca.element import MacroElement
from folium.plugins import Fullscreen, MiniMap
from folium.template import Template
import geopandas as gpd
import numpy as np
import shapely

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.errors import LifecircleError, MapError
from lifecircle.io.chinacoords import transform_geometries, wgs84_to_gcj02
from lifecircle.io.outputs import mark_html, write_text_atomic
from lifecircle.io.sources import ATTRIBUTION, WGS84
from lifecircle.untrusted import escape_html, safe_root
from lifecircle.analyses.hexagons import hexagons
from lifecircle.analyses.isochrones import service_areas as _sa
from lifecircle.analyses.isochrones import gap_areas
from lifecircle.analyses.isochrones import isochrones as _iso

DIMENSION_COLOURS = {
    "housing": "#e6550d", "employment": "#6a51a3", "services": "#3182bd",
    "transport": "#636363", "leisure": "#31a354", "social": "#d6616b",
}
SCORE_COLOURS = ["#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"]


def _label(profile, item_id: str, lang: str) -> str:
    """A profile label (category or dimension name) for HTML: escaped, since profiles are user
    files and Leaflet shows layer names and tooltips as HTML."""
    try:
        return escape_html(profile.display_name(item_id, lang))
    except Exception:
        return escape_html(item_id)




# ------------------------------------------------------------------------------------------
# basemaps

BASEMAPS = ("osm", "cartodb", "blank", "amap", "tianditu")
_BLANK_TILE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNk"
               "YAAAAAYAAjCB0C8AAAAASUVORK5CYII=")  # transparent pixel: the minimap of 'blank'

#: Simplification of polygons on the map (metres); keeps city-scale files light.
MAP_SIMPLIFY_M = 3.0
#: Decimal places of longitude/latitude written to the map (6 ≈ 0.1 m).
MAP_DECIMALS = 6
#: Size budget of a city-scale map file (Las Palmas: ~7,500 homes, ~7,000 facilities).
MAP_BUDGET_MB = 15.0
CATEGORY_SYMBOLS = "●▲■◆★✚⬟⬢▼◉✖♦"



def _tiles(basemap: str, attribution: str):
    """(tiles URL or None, attribution (HTML-escaped: Leaflet shows it as HTML), subdomains,
    is_gcj02)."""
    attribution = escape_html(attribution)
    b = (basemap or "osm").lower()
    if b in ("osm", "openstreetmap"):
        return "https://tile.openstreetmap.org/{z}/{x}/{y}.png", attribution, "abc", False
    if b in ("cartodb", "carto", "cartodb positron"):
        return ("https://{s}.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png",
                attribution + " © CARTO", "abcd", False)
    if b in ("blank", "none"):
        return None, attribution, "abc", False
    if b in ("amap", "gaode"):
        return ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                "&x={x}&y={y}&z={z}", attribution + " · 底图 © 高德地图 AutoNavi", "1234", True)
    if b == "tianditu":
        key = os.environ.get("TIANDITU_KEY", "").strip()
        if not key:
            raise MapError("basemap 'tianditu' needs a Tianditu key: set the environment variable "
                           "TIANDITU_KEY (free from console.tianditu.gov.cn), or use --basemap osm")
        return ("https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                f"&TILECOL={{x}}&tk={key}", attribution + " · 底图 © 天地图 Tianditu", "01234567", False)
    raise MapError(f"unknown basemap {basemap!r}: use one of {', '.join(BASEMAPS)}")


def to_display(gdf, gcj02: bool = False, simplify_m: float = 0.0):
    """A GeoDataFrame/GeoSeries in the metric CRS -> WGS-84 (or GCJ-02 for Amap tiles),
    simplified and rounded for the map."""
    if simplify_m and len(gdf):
        gdf = gdf.copy()
        gdf.geometry.values[:] = shapely.simplify(gdf.geometry.to_numpy(), simplify_m)
    out = gdf.to_crs(WGS84) if gdf.crs is not None else gdf
    if gcj02:
        out = transform_geometries(out, wgs84_to_gcj02)
    out = out.copy()
    geom = shapely.set_precision(np.asarray(out.geometry.to_numpy(), dtype=object),
                                 10.0 ** -MAP_DECIMALS)
    if isinstance(out, gpd.GeoDataFrame):
        out[out.geometry.name] = geom
    else:
        out = gpd.GeoSeries(geom, index=out.index, crs=out.crs)
    return out


class _Attribution(MacroElement):
    """Adds the attribution to the map itself (also when there is no tile layer)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.setPrefix(false);
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text_js }});
        {% endmacro %}
    """)

    def __init__(self, text: str):
        super().__init__()
        import json

        self.text = text
        self.text_js = json.dumps(text, ensure_ascii=False).replace("</", "<\\/")


def _points_geojson(gdf, props):
    reps = shapely.point_on_surface(gdf.geometry.to_numpy())
    ok = ~(shapely.is_missing(reps) | shapely.is_empty(reps))
    xy = np.full((len(reps), 2), np.nan)
    xy[ok] = shapely.get_coordinates(reps[ok])
    feats = []
    for i in range(len(gdf)):
        if not np.isfinite(xy[i]).all():
            continue
        feats.append({"type": "Feature",
                      "geometry": {"type": "Point",
                                   "coordinates": [round(float(xy[i, 0]), MAP_DECIMALS),
                                                   round(float(xy[i, 1]), MAP_DECIMALS)]},
                      "properties": {k: v[i] for k, v in props.items()}})
    return {"type": "FeatureCollection", "features": feats}


_ICON_HTML = ('<div style="width:15px;height:15px;border-radius:50%;border:1px solid #222;'
              'background:{colour};color:#fff;font-size:9px;line-height:15px;text-align:center;'
              'font-family:sans-serif">{sym}</div>')


def _facility_layer(points_fc, tooltip_fields, tooltip_aliases):
    """Facilities as small round icons: the dimension's shade of colour for the category and
    a category symbol inside (plain Unicode in a DivIcon: no icon font, so it works offline)."""
    marker = folium.Marker(icon=folium.DivIcon(html="", icon_size=(17, 17), icon_anchor=(8, 8),
                                               class_name="lc-facility"))
    return folium.GeoJson(
        points_fc, marker=marker,
        style_function=lambda f: {"html": _ICON_HTML.format(colour=f["properties"]["colour"],
                                                            sym=f["properties"]["sym"])},
        tooltip=folium.GeoJsonTooltip(tooltip_fields, aliases=tooltip_aliases))


def _words(lang):
    return i18n.words("map", lang)


def result_map(result, lang: str | None = None, basemap: str = "osm", offline: bool = False,
               isochrones=None, sites=None, service_areas: bool = True, gaps: bool = True,
               tiles: str | None = None) -> folium.Map:
    """A folium map of a :class:`~lifecircle.pipeline.Result`.

    One layer group per dimension (its facilities, coloured and marked per category, and its
    15-minute service area), homes (or hexagons beyond ``settings.map_max_points``) coloured
    by score with a legend, isochrones (a GeoDataFrame from
    :func:`lifecircle.analyses.isochrones.isochrones`, or origin points to compute them for), gap areas,
    idle sites (any GeoDataFrame; every column shows in the popup), layer control, scale bar,
    fullscreen button and minimap. ``basemap``: osm, cartodb, blank, amap (GCJ-02: every layer
    is shifted to line up), tianditu (needs TIANDITU_KEY). ``offline`` only records the wish;
    write the file with :func:`save_map` (``offline=True`` inlines every script and style).
    """
    lang = lang or result.settings.lang
    i18n.check_lang(lang)
    if tiles is not None and basemap == "osm":
        basemap = {"OpenStreetMap": "osm", "cartodbpositron": "cartodb"}.get(tiles, tiles)
    w = _words(lang)
    profile = result.profile
    attribution = result.attribution
    url, tile_attr, subdomains, gcj = _tiles(basemap, attribution)
    homes = result.homes

    def disp(gdf, simplify_m=0.0):
        return to_display(gdf, gcj, simplify_m)

    ref = homes if len(homes) else result.facilities
    area = disp(ref).total_bounds
    centre = [(area[1] + area[3]) / 2, (area[0] + area[2]) / 2]
    m = folium.Map(location=centre, zoom_start=14, tiles=None, control_scale=True,
                   prefer_canvas=True)
    safe_root(m)
    m._lifecircle_offline = offline
    if url is not None:
        folium.TileLayer(url, attr=tile_attr, name=basemap, subdomains=subdomains,
                         max_zoom=19).add_to(m)
    m.fit_bounds([[area[1], area[0]], [area[3], area[2]]])
    if url is None:
        _Attribution(tile_attr).add_to(m)

    # homes -------------------------------------------------------------------------------
    cmap = cm.LinearColormap(SCORE_COLOURS, vmin=0, vmax=100, caption=w["legend"])
    homes_layer = folium.FeatureGroup(name=w["homes"])
    base = homes[homes[col.REACHABLE]] if col.REACHABLE in homes else homes
    if len(homes) > result.settings.map_max_points:
        hexes = disp(hexagons(base, result.settings.map_hex_m, col.SCORE, col.POPULATION))
        hexes[col.SCORE] = hexes[col.SCORE].round(1)
        hexes[col.POPULATION] = hexes[col.POPULATION].round(0)
        folium.GeoJson(
            hexes.__geo_interface__,
            style_function=lambda f: {"fillColor": cmap(f["properties"][col.SCORE])
                                      if f["properties"][col.SCORE] is not None else "#999",
                                      "color": "#555", "weight": 0.3, "fillOpacity": 0.6},
            tooltip=folium.GeoJsonTooltip([col.SCORE, col.POPULATION, "homes"],
                                          aliases=[w["score"], w["residents"], "homes"]),
        ).add_to(homes_layer)
    elif len(homes):
        pts = disp(homes)
        score = pts[col.SCORE].to_numpy(float)
        fc = _points_geojson(pts, {
            "s": [None if not np.isfinite(v) else round(float(v), 1) for v in score],
            "p": [round(float(v)) for v in pts[col.POPULATION].to_numpy(float)],
            "colour": [cmap(v) if np.isfinite(v) else "#999999" for v in score]})
        folium.GeoJson(
            fc, marker=folium.CircleMarker(radius=3, weight=0, fill=True, fill_opacity=0.85),
            style_function=lambda f: {"fillColor": f["properties"]["colour"], "weight": 0},
            tooltip=folium.GeoJsonTooltip(["s", "p"], aliases=[w["score"], w["residents"]]),
        ).add_to(homes_layer)
    homes_layer.add_to(m)
    cmap.add_to(m)

    # service areas and gaps ----------------------------------------------------------------
    sa = None
    m15 = float(max(result.settings.thresholds_min))
    if service_areas is not False and service_areas is not None:

        sa = service_areas if isinstance(service_areas, gpd.GeoDataFrame) else \
            _sa(result, [m15], categories=False)

    # facilities per dimension ----------------------------------------------------------------
    fac = result.facilities
    cats = fac[col.CATEGORY].to_numpy()
    names = fac[col.NAME].fillna("").astype(str).to_numpy() if col.NAME in fac else np.full(len(fac), "")
    status = result.data_status if hasattr(result, "data_status") else {}
    for dim in profile.dimensions:
        dname = _label(profile, dim.id, lang)
        n_nd = sum(status.get(c.id) == col.STATUS_NO_DATA for c in dim.categories)
        if n_nd and n_nd == len(dim.categories):      # say so: an empty layer is unknown, not nothing
            layer_name = w["dim_no_data"].format(name=dname)
        elif n_nd:
            layer_name = w["dim_part_no_data"].format(name=dname, k=n_nd, n=len(dim.categories))
        else:
            layer_name = dname
        group = folium.FeatureGroup(name=layer_name)
        colour = DIMENSION_COLOURS.get(dim.id, "#333333")
        if sa is not None:
            sel = sa[(sa.level == "dimension") & (sa.id == dim.id) & (sa.minutes == m15)]
            if len(sel) and not sel.geometry.iloc[0].is_empty:
                g = disp(sel[["geometry"]], MAP_SIMPLIFY_M)
                folium.GeoJson(g.__geo_interface__,
                               style_function=lambda f, c=colour: {"color": c, "weight": 1,
                                                                   "fillColor": c, "fillOpacity": 0.15},
                               tooltip=f"{dname}: {m15:g} {w['minutes']} {w['service']}").add_to(group)
        cat_ids = [c.id for c in dim.categories]
        idx = np.flatnonzero(np.isin(cats, cat_ids))
        if len(idx):
            sub = disp(fac.iloc[idx][[fac.geometry.name]])
            shades = _category_colours(colour, len(cat_ids))
            cc = {c: shades[i] for i, c in enumerate(cat_ids)}
            sym = {c: CATEGORY_SYMBOLS[i % len(CATEGORY_SYMBOLS)] for i, c in enumerate(cat_ids)}
            fc = _points_geojson(sub, {
                "c": [f"{sym[cats[i]]} {_label(profile, cats[i], lang)}" for i in idx],
                "n": [escape_html(names[i]) for i in idx],
                "colour": [cc[cats[i]] for i in idx],
                "sym": [sym[cats[i]] for i in idx]})
            _facility_layer(fc, ["c", "n"], [w["category"], w["name"]]).add_to(group)
        group.add_to(m)

    if gaps and sa is not None:

        gp = gap_areas(result, sa, m15)
        gp = gp[~gp.geometry.is_empty]
        if len(gp):
            layer = folium.FeatureGroup(name=w["gaps"], show=False)
            g = disp(gp, MAP_SIMPLIFY_M)
            g["label"] = [f"{_label(profile, d, lang)}: {w['gap_kind']} ({h} homes)"
                          for d, h in zip(g["dimension"], g["homes"])]
            folium.GeoJson(g[["label", "geometry"]].__geo_interface__,
                           style_function=lambda f: {"color": "#b2182b", "weight": 0.5,
                                                     "fillColor": "#b2182b", "fillOpacity": 0.12},
                           tooltip=folium.GeoJsonTooltip(["label"], labels=False)).add_to(layer)
            layer.add_to(m)

    # isochrones ----------------------------------------------------------------------------
    if isochrones is not None:
        iso = isochrones
        if not (isinstance(iso, gpd.GeoDataFrame) and "minutes" in iso):

            iso = _iso(result, iso, result.settings.thresholds_min)
        layer = folium.FeatureGroup(name=w["iso"])
        iso = iso[~iso.geometry.is_empty].sort_values("minutes", ascending=False)
        if len(iso):
            g = disp(iso[["origin", "minutes", "geometry"]], MAP_SIMPLIFY_M)
            g["origin"] = [escape_html(v) for v in g["origin"]]
            ramp = {5.0: "#08519c", 10.0: "#3182bd", 15.0: "#9ecae1"}
            folium.GeoJson(g.__geo_interface__,
                           style_function=lambda f: {"color": "#08306b", "weight": 1,
                                                     "fillColor": ramp.get(float(f["properties"]["minutes"]), "#6baed6"),
                                                     "fillOpacity": 0.35},
                           tooltip=folium.GeoJsonTooltip(["origin", "minutes"],
                                                         aliases=[w["origin"], w["minutes"]])).add_to(layer)
        layer.add_to(m)

    # idle sites ------------------------------------------------------------------------------
    if sites is not None and len(sites):
        layer = folium.FeatureGroup(name=w["sites"])
        s = sites.copy()
        if s.crs is None:
            s = s.set_crs(result.crs)
        keep = [c for c in s.columns if c != s.geometry.name][:12]
        for c in keep:      # site names and columns come from user files: escaped for the popup
            s[c] = [escape_html(v) for v in s[c]]
        g = to_display(s[keep + [s.geometry.name]], gcj, MAP_SIMPLIFY_M)
        folium.GeoJson(g.__geo_interface__,
                       style_function=lambda f: {"color": "#7b3294", "weight": 2,
                                                 "fillColor": "#c2a5cf", "fillOpacity": 0.5},
                       marker=folium.CircleMarker(radius=6, color="#7b3294", fill=True),
                       popup=folium.GeoJsonPopup(keep, aliases=[escape_html(c) for c in keep])
                       if keep else None).add_to(layer)
        layer.add_to(m)

    if result.communities is not None and len(result.communities):
        comm = disp(result.communities, MAP_SIMPLIFY_M)
        comm = comm.assign(**{col.COMMUNITY: [escape_html(v) for v in comm[col.COMMUNITY]]}) \
            if col.COMMUNITY in comm else comm[[comm.geometry.name]]
        folium.GeoJson(comm.__geo_interface__, name=w["communities"],
                       style_function=lambda f: {"fill": False, "color": "#000", "weight": 2},
                       tooltip=folium.GeoJsonTooltip([col.COMMUNITY], labels=False)
                       if col.COMMUNITY in comm else None).add_to(m)

    Fullscreen().add_to(m)
    mini_tiles = folium.TileLayer(url or _BLANK_TILE, attr=tile_attr, subdomains=subdomains)
    MiniMap(tile_layer=mini_tiles, toggle_display=True).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _category_colours(base: str, n: int) -> list[str]:
    """``n`` shades of a dimension colour (darker to lighter)."""
    r, g, b = (int(base[i:i + 2], 16) for i in (1, 3, 5))
    out = []
    for i in range(max(n, 1)):
        f = -0.35 + 0.8 * (i / max(n - 1, 1))
        if f < 0:
            c = [int(v * (1 + f)) for v in (r, g, b)]
        else:
            c = [int(v + (255 - v) * f * 0.8) for v in (r, g, b)]
        out.append("#%02x%02x%02x" % tuple(c))
    return out


# ------------------------------------------------------------------------------------------
# writing

_SCRIPT_SRC = re.compile(r'<script\s+src="(?P<url>[^"]+)"\s*>\s*</script>', re.I)
_LINK_HREF = re.compile(r'<link\s+rel="stylesheet"\s+href="(?P<url>[^"]+)"\s*/?>', re.I)
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.I)


def _offline_assets() -> dict:
    try:
        from offlinefolium.elements import _res
    except ImportError as exc:  # pragma: no cover - dependency
        raise MapError("offline maps need the package 'folium-offline' (pip install "
                       "folium-offline), which ships Leaflet and its plugins") from exc
    return _res


def inline_assets(text: str) -> str:
    """Replace every CDN <script src> and stylesheet <link> with the file's content, taken from
    the installed package ``folium-offline`` (no network). Fonts are dropped (the map uses none)."""
    res = _offline_assets()
    missing = []

    def script(mt):
        url = mt.group("url")
        if url not in res:
            missing.append(url)
            return mt.group(0)
        body = res[url].replace("</script", "<\\/script")
        return f"<script>/* {url.rsplit('/', 1)[-1]} */\n{body}\n</script>"

    def link(mt):
        url = mt.group("url")
        if url not in res:
            missing.append(url)
            return mt.group(0)
        return f"<style>/* {url.rsplit('/', 1)[-1]} */\n{_FONT_FACE.sub('', res[url])}\n</style>"

    text = _SCRIPT_SRC.sub(script, text)
    text = _LINK_HREF.sub(link, text)
    if missing:
        raise MapError("no offline copy of " + ", ".join(missing) + " in folium-offline; "
                       "save without offline=True")
    return text


def save_map(m: folium.Map, path, offline: bool | None = None) -> Path:
    """Write the map as one HTML file, atomically. ``offline=True`` inlines every script and
    style so the file opens with no network (tiles still need one unless the basemap is
    'blank')."""
    path = Path(path)
    if offline is None:
        offline = bool(getattr(m, "_lifecircle_offline", False))
    text = m.get_root().render()
    if offline:
        text = inline_assets(text)
    if not path.parent.exists():
        raise MapError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise MapError(f"{path}: is a folder; give a file name (e.g. {path / 'map.html'})")
    return write_text_atomic(path, mark_html(text))


def links_map(lr, lang: str = "en", basemap: str = "osm", top: int = 50) -> folium.Map:
    """A map of ranked candidate links (:class:`lifecircle.links.LinksResult`): the ``top``
    links numbered by rank (the greedy picks drawn thicker), the homes each brings a category
    within reach of (one layer per link, the best shown), and the other candidates faint.
    Names are escaped: they are text from the data."""
    zh = lang == "zh"
    res = lr.result
    url, tile_attr, subdomains, gcj = _tiles(basemap, res.attribution)
    t = lr.table
    t = t[t.geometry.notna() & ~t.geometry.is_empty]
    ranked = t[t["rank"].notna()].sort_values("rank")
    ref = ranked if len(ranked) else (t if len(t) else res.homes)
    disp = to_display(ref[["geometry"]])
    b = disp.total_bounds
    m = folium.Map(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=15, tiles=None,
                   control_scale=True, prefer_canvas=True)
    safe_root(m)
    if url is not None:
        folium.TileLayer(url, attr=tile_attr, name=basemap, subdomains=subdomains,
                         max_zoom=19).add_to(m)
    else:
        _Attribution(tile_attr).add_to(m)
    if len(ranked):
        m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    chosen = set(lr.chosen["rank"].astype(int).tolist()) if len(lr.chosen) else set()
    # the walkable streets around the top links, so the map reads without tiles (offline)
    if len(ranked):
        box = shapely.box(*ranked.head(top).total_bounds).buffer(500.0)
        net = res.network
        near = net.tree.query(box, predicate="intersects")
        if len(near):
            streets = gpd.GeoDataFrame(geometry=net.edge_geom[near], crs=net.crs)
            lay = folium.FeatureGroup(name="步行网络" if zh else "walkable streets")
            folium.GeoJson(to_display(streets, simplify_m=1.0).__geo_interface__,
                           style_function=lambda f: {"color": "#777", "weight": 1.2, "opacity": 0.7}
                           ).add_to(lay)
            lay.add_to(m)
    rest = t[~t.index.isin(ranked.index[:top])]
    if len(rest):
        lay = folium.FeatureGroup(name="其他候选" if zh else "other candidates", show=False)
        folium.GeoJson(to_display(rest[["geometry"]]).__geo_interface__,
                       style_function=lambda f: {"color": "#888", "weight": 1.5, "opacity": 0.6}
                       ).add_to(lay)
        lay.add_to(m)
    homes = res.homes
    for _, row in ranked.head(top).iterrows():
        r = int(row["rank"])
        name = escape_html(row.get("name", ""))
        reason = escape_html(row.get("reason_zh") if zh and isinstance(row.get("reason_zh"), str)
                             else row.get("reason", ""))
        label = (f"#{r} {name}: 新增可达居民 {row['residents']:,.0f}，平均得分 {row['score_delta']:+.3f}（{reason}）"
                 if zh else f"#{r} {name}: {row['residents']:,.0f} residents newly within reach, "
                 f"mean score {row['score_delta']:+.3f} ({reason})")
        lay = folium.FeatureGroup(name=f"#{r} {name}", show=r <= 10)
        gained = lr.gained.get(r)
        if gained is not None and len(gained):
            pts = to_display(gpd.GeoDataFrame(geometry=shapely.point_on_surface(
                homes.geometry.to_numpy()[gained]), crs=homes.crs))
            fc = _points_geojson(pts, {})
            folium.GeoJson(fc, marker=folium.CircleMarker(radius=3, weight=0, fill=True,
                                                          fill_color="#e6550d", fill_opacity=0.8)
                           ).add_to(lay)
        line = to_display(gpd.GeoDataFrame(geometry=[row.geometry], crs=t.crs)).geometry.iloc[0]
        xy = shapely.get_coordinates(line)
        if len(xy) >= 2 and shapely.length(line) > 0:
            folium.PolyLine([[y, x] for x, y in xy], color="#d7191c" if r in chosen else "#3182bd",
                            weight=6 if r in chosen else 4, tooltip=folium.Tooltip(label)).add_to(lay)
            mid = shapely.line_interpolate_point(line, 0.5, normalized=True)
        else:   # a gate to reopen: a link of length 0, drawn as its point
            mid = to_display(gpd.GeoDataFrame(geometry=[shapely.get_point(row.geometry, 0)],
                                              crs=t.crs)).geometry.iloc[0]
            folium.CircleMarker([mid.y, mid.x], radius=9, color="#d7191c" if r in chosen else "#3182bd",
                                weight=4, fill=False, tooltip=folium.Tooltip(label)).add_to(lay)
        folium.Marker([mid.y, mid.x], icon=folium.DivIcon(
            html=f'<div style="background:#fff;border:2px solid #333;border-radius:50%;width:22px;'
                 f'height:22px;line-height:18px;text-align:center;font:bold 11px sans-serif">{r}</div>',
            icon_size=(22, 22), icon_anchor=(11, 11))).add_to(lay)
        lay.add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    return m
