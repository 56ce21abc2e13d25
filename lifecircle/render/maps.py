"""Interactive folium maps of a result that open offline and explain themselves.

Every map (:func:`result_map`, :func:`compliance_map`, :func:`links_map`, batch's index) is a
:class:`LifecircleMap`: ``save`` and the Jupyter view inline Leaflet and its plugins from the
installed PyPI package ``folium-offline`` (module ``offlinefolium``) — nothing is fetched when
the page opens; online tiles are an optional layer that starts switched off. What makes it a
map without tiles is a background drawn from the data itself (:func:`background_layers`:
buildings, water and green space from ``result.features``, streets from the walk network),
a title (area, data date, "© OpenStreetMap contributors"), a scale and a :class:`Legend` whose
sections follow the layers that are on.

The planning map shows one dimension at a time (radio buttons): homes coloured by that
dimension's score on a ramp without a near-white middle, its facilities (a symbol and shade per
category, listed in the legend) and the areas where its uncovered homes are
(:func:`lifecircle.analyses.isochrones.gap_areas`). A click on a home opens its six sub-scores
and, per category, the minutes to the nearest facility and its name
(:meth:`lifecircle.core.engine.AccessEngine.nearest_facility`). Isochrone origins are marked and
named; idle sites and numbered recommendations go on with ``sites``/``recommendations``.

Basemaps (the optional layer): ``osm`` (default), ``cartodb``, ``blank``, ``amap`` (GCJ-02 tiles:
every vector layer, the background included, is shifted with
:func:`lifecircle.io.chinacoords.wgs84_to_gcj02` so it lines up) and ``tianditu`` (needs the
environment variable ``TIANDITU_KEY``).

Size budget ``MAP_BUDGET_MB`` (20 MB per file): homes and facilities travel as compact arrays
(markers are made in the page), other layers as GeoJSON text written by GEOS
(:func:`geojson_text`), minutes as whole minutes rounded up, polygons simplified by
``MAP_SIMPLIFY_M``, coordinates rounded (``MAP_DECIMALS``; the background to 1 m). A city keeps
within it: beyond ``settings.map_max_points`` homes, the homes, their gap areas and (beyond
``MAP_MAX_FACILITIES``) the facilities are hexagons made in the page from their centres
(:class:`HexLayer`), and the background keeps to ``background.BACKGROUND_BUDGET`` coordinates (simplified
further, buildings merged into blocks while that is cheap, a kind that still does not fit left
out and named in the legend). Las Palmas (19,197 homes, 6,746 facilities, 22,595 buildings,
gaps, nearest facility names): 15.8 MB; a synthetic city of 1.07M homes and 378k facilities
(Las Palmas repeated 56 times): 15.9 MB.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
import pyproj
import shapely
from branca.element import MacroElement
from folium.plugins import Fullscreen
from folium.template import Template

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.analyses.hexagons import hex_bins, hex_polygons, hexagons
from lifecircle.analyses.isochrones import gap_areas, nearest_facilities, uncovered_homes
from lifecircle.analyses.isochrones import isochrones as _iso
from lifecircle.analyses.isochrones import service_areas as _sa
from lifecircle.analyses.links import localized
from lifecircle.analyses.recommend import NEW_HOME_IDS
from lifecircle.analyses.resources import canonical_status, display_header, display_value
from lifecircle.analyses.standards import counted_required, missing_required
from lifecircle.analyses.standards import label as std_label
from lifecircle.errors import LifecircleError, MapError
from lifecircle.io.chinacoords import transform_geometries, wgs84_to_gcj02
from lifecircle.io.outputs import mark_html, write_chunks_atomic
from lifecircle.io.sources import ATTRIBUTION, WGS84
from lifecircle.render import background as bg
from lifecircle.render.background import feature_arrays, feature_pieces
from lifecircle.settings import carried
from lifecircle.untrusted import RawHTML, escape_html, readable_path, safe_root

_WGS84_CRS = pyproj.CRS.from_user_input(WGS84)

DIMENSION_COLOURS = {
    "housing": "#e6550d", "employment": "#6a51a3", "services": "#3182bd",
    "transport": "#636363", "leisure": "#31a354", "social": "#d6616b",
}
#: Score ramp, red (0) to green (100); no near-white stop, so mid scores stay visible on the
#: light background.
SCORE_COLOURS = ["#b2182b", "#e66101", "#d4a017", "#5aae61", "#1b7837"]


def _raw_label(profile, item_id: str, lang: str) -> str:
    try:
        return profile.display_name(item_id, lang)
    except Exception:
        return item_id




# ------------------------------------------------------------------------------------------
# basemaps

BASEMAPS = ("osm", "cartodb", "blank", "amap", "tianditu")
_BLANK_TILE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNk"
               "YAAAAAYAAjCB0C8AAAAASUVORK5CYII=")  # transparent pixel: the minimap of 'blank'

#: Simplification of polygons on the map (metres); keeps city-scale files light.
MAP_SIMPLIFY_M = 3.0
#: Decimal places of longitude/latitude written to the map (6 ≈ 0.1 m).
MAP_DECIMALS = 6
#: Size budget of a city-scale map file: what keeps a map within it is said in the module
#: docstring (tested on a synthetic city of 150,000 homes).
MAP_BUDGET_MB = 20.0
#: Beyond this many facilities each dimension's facilities are drawn as hexagons (the number in
#: each) instead of one icon per facility.
MAP_MAX_FACILITIES = 20_000
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
                           "TIANDITU_KEY (free from console.tianditu.gov.cn), or use --basemap osm",
                           zh="天地图底图需要天地图密钥：请设置环境变量 TIANDITU_KEY（可在 "
                              "console.tianditu.gov.cn 免费申请），或改用 --basemap osm")
        return ("https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                f"&TILECOL={{x}}&tk={key}", attribution + " · 底图 © 天地图 Tianditu", "01234567", False)
    raise MapError(f"unknown basemap {basemap!r}: use one of {', '.join(BASEMAPS)}",
                   zh=f"未知的底图 {basemap!r}：可选 {', '.join(BASEMAPS)}")


def to_display(gdf, gcj02: bool = False, simplify_m: float = 0.0):
    """A GeoDataFrame/GeoSeries in the metric CRS -> WGS-84 (or GCJ-02 for Amap tiles),
    simplified and rounded for the map."""
    geom = np.asarray(gdf.geometry.to_numpy() if isinstance(gdf, gpd.GeoDataFrame) else gdf.to_numpy(),
                      dtype=object)
    if simplify_m and len(gdf):
        geom = shapely.simplify(geom, simplify_m)
    # set_precision, not a rounding of the coordinates: the geometries keep the grid's precision
    # model, which later operations on them (point_on_surface of a facility area) follow
    geom = shapely.set_precision(display_geometries(geom, gdf.crs, gcj02, None), 10.0 ** -MAP_DECIMALS,
                                 mode="pointwise")
    if isinstance(gdf, gpd.GeoDataFrame):
        out = gdf.copy()
        out[gdf.geometry.name] = geom
        return out.set_crs(WGS84, allow_override=True) if gdf.crs is not None else out
    return gpd.GeoSeries(geom, index=gdf.index, crs=WGS84 if gdf.crs is not None else None, name=gdf.name)


@functools.lru_cache(maxsize=16)
def _to_wgs84(crs) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)


def display_geometries(geoms, crs, gcj02: bool = False, decimals: int | None = MAP_DECIMALS) -> np.ndarray:
    """Geometries (in ``crs``; None: as they are) in lon/lat (GCJ-02 with ``gcj02``), their
    coordinates rounded to ``decimals`` (None: not rounded): the numbers of
    ``GeoSeries.to_crs(WGS84)``, the GCJ-02 shift and ``shapely.set_precision(...,
    mode="pointwise")`` (GEOS's rounding, half up), in one pass over the coordinates instead of
    three. Unlike ``set_precision`` the geometries keep a floating precision model: for text
    (GeoJSON), not for more geometry operations."""
    geoms = np.asarray(geoms, dtype=object)
    if shapely.has_z(geoms).any():                      # rare: the general path keeps z
        gs = gpd.GeoSeries(geoms, crs=crs)
        gs = gs.to_crs(WGS84) if crs is not None else gs
        if gcj02:
            gs = transform_geometries(gs, wgs84_to_gcj02)
        out = np.asarray(gs.to_numpy(), dtype=object)
        return out if decimals is None else shapely.set_precision(out, 10.0 ** -decimals, mode="pointwise")
    xy = shapely.get_coordinates(geoms)
    if len(xy) and crs is not None and not pyproj.CRS.from_user_input(crs).is_exact_same(_WGS84_CRS):
        x, y = _to_wgs84(pyproj.CRS.from_user_input(crs)).transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
    if gcj02 and len(xy):
        x, y = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        xy = np.column_stack([np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")])
    if decimals is None:
        return shapely.set_coordinates(geoms.copy(), xy)
    scale = 10.0 ** decimals
    out = shapely.set_coordinates(geoms.copy(), _round_half_up(xy * scale) / scale)
    empty = shapely.is_empty(out)
    if empty.any():         # as set_precision makes them (an empty polygon becomes another kind)
        out[empty] = shapely.set_precision(out[empty], 1.0 / scale, mode="pointwise")
    return out


def _round_half_up(v: np.ndarray) -> np.ndarray:
    """GEOS's rounding (``util::round``, Java's ``Math.round``: halves up, a zero keeps the
    sign of ``v``), not numpy's half to even: ``floor(v + 0.5)``, less one where the addition
    itself rounded up (0.49999999999999994 + 0.5 is 1.0)."""
    r = np.floor(v + 0.5)
    r -= r - 0.5 > v
    return np.copysign(r, v)


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


class _Zoom(MacroElement):
    """Leaflet's zoom buttons with their tooltips in the map's language (``zoomInTitle``,
    ``zoomOutTitle``: Leaflet's own are English), in place of the map's default control."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.zoom({{ this.options_js }}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, lang: str):
        super().__init__()
        w = _words(lang)
        self.options_js = _js({"position": "topleft", "zoomInTitle": w["zoom_in"],
                               "zoomOutTitle": w["zoom_out"]})


def map_controls(m, lang: str, layers_collapsed: bool = False) -> None:
    """The controls every map has, their text in ``lang``: zoom buttons (from :func:`base_map`),
    the full-screen button (folium's ``Fullscreen``, its title before and after a click) and
    the layer switch. Added last, after every layer."""
    w = _words(lang)
    Fullscreen(title=w["fullscreen"], title_cancel=w["fullscreen_exit"]).add_to(m)
    folium.LayerControl(collapsed=layers_collapsed).add_to(m)


class _ControlsZh(MacroElement):
    """Leaflet's control tooltips that have no option in Chinese (the layer switch, a popup's
    close button): Leaflet writes them in English."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(m){
          function zh(){
            document.querySelectorAll(".leaflet-control-layers-toggle").forEach(function(a){
              a.title = "图层"; a.setAttribute("aria-label", "图层"); });
          }
          m.whenReady(function(){ setTimeout(zh, 0); });
          m.on("popupopen", function(e){
            var b = e.popup && e.popup._closeButton;
            if (b) { b.setAttribute("aria-label", "关闭"); b.title = "关闭"; }
          });
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)


def _surface_points(geoms) -> np.ndarray:
    """``shapely.point_on_surface`` of each geometry, points kept as they are (the same result
    without copying every home and facility point)."""
    geoms = np.asarray(geoms, dtype=object)
    pt = shapely.get_type_id(geoms) == 0
    if pt.all():
        return geoms
    out = geoms.copy()
    out[~pt] = shapely.point_on_surface(geoms[~pt])
    return out


def _points_geojson(gdf, props):
    reps = _surface_points(gdf.geometry.to_numpy())
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


class FacilityLayer(MacroElement):
    """Facilities as small round icons: the dimension's shade of colour for the category and a
    category symbol inside (plain Unicode in a DivIcon: no icon font, so it works offline), a
    tooltip with the category and the name.

    The page gets compact arrays (position, category number, name) and makes the markers
    itself: a few dozen bytes a facility instead of a GeoJSON feature with its style. Names and
    labels are escaped by the caller (:func:`escape_html`) and reach the page as JSON."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var g = {{ this._parent.get_name() }}, D = {{ this.data_js }};
          var icons = D.cats.map(function(c){
            return L.divIcon({html: c[1], iconSize: [17, 17], iconAnchor: [8, 8], className: 'lc-facility'});
          });
          function tip(i){
            return '<table><tr><th>' + D.w[0] + '</th><td>' + D.cats[D.k[i]][0] + '</td></tr><tr><th>' +
                   D.w[1] + '</th><td>' + D.n[i] + '</td></tr></table>';
          }
          for (var i = 0; i < D.xy.length; i++) {
            if (D.xy[i] === null) continue;
            var m = L.marker(D.xy[i], {icon: icons[D.k[i]]});
            m.bindTooltip(tip.bind(null, i));
            m.addTo(g);
          }
        })();
        {% endmacro %}
    """)

    def __init__(self, latlon: np.ndarray, kind: np.ndarray, names: list, cats: list, aliases: list):
        super().__init__()
        self._name = "FacilityLayer"
        xy = np.round(np.asarray(latlon, float), MAP_DECIMALS)
        ok = np.isfinite(xy).all(axis=1)
        rows = [None if not k else r for r, k in zip(xy.tolist(), ok)]
        self.data_js = _js({"xy": rows, "k": np.asarray(kind, np.int64).tolist(), "n": list(names),
                            "cats": cats, "w": list(aliases)})


class HexLayer(MacroElement):
    """Hexagons drawn in the page from their centres (``latlon`` (K, 2)) and one set of corner
    offsets (``corners`` (6, 2), lat/lon): a hexagon costs its centre and its numbers, not a
    GeoJSON polygon. ``values`` (K, V) fill the tooltip between the ``words`` (V + 1 pieces
    of HTML, data text escaped by the caller); with ``shade`` the fill opacity grows with
    value ``shade`` (log scale)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var g = {{ this._parent.get_name() }}, D = {{ this.data_js }};
          var top = 0;
          if (D.shade !== null) D.v.forEach(function(v){ top = Math.max(top, v[D.shade]); });
          function tip(i){
            var v = D.v[i], t = D.t[0];
            for (var k = 0; k < v.length; k++) t += v[k].toLocaleString('en') + D.t[k + 1];
            return t;
          }
          for (var i = 0; i < D.c.length; i++) {
            var c = D.c[i], st = Object.assign({}, D.s);
            if (D.shade !== null && top > 0)
              st.fillOpacity = 0.15 + 0.7 * Math.log(1 + D.v[i][D.shade]) / Math.log(1 + top);
            L.polygon(D.o.map(function(o){ return [c[0] + o[0], c[1] + o[1]]; }), st)
              .bindTooltip(tip.bind(null, i), {sticky: true}).addTo(g);
          }
        })();
        {% endmacro %}
    """)

    def __init__(self, latlon, corners, values, words: list, style: dict, shade: int | None = None):
        super().__init__()
        self._name = "HexLayer"
        self.data_js = _js({"c": np.round(np.asarray(latlon, float), MAP_DECIMALS).tolist(),
                            "o": np.round(np.asarray(corners, float), MAP_DECIMALS + 1).tolist(),
                            "v": np.asarray(values).tolist(), "t": list(words), "s": style,
                            "shade": shade})


def hex_display(centres, size_m: float, crs, gcj: bool = False):
    """Hexagon centres (metric, (K, 2)) as lat/lon for the page, and the corner offsets of a
    hexagon of ``size_m`` at their middle (lat/lon; the same for all: a city is small enough)."""
    centres = np.asarray(centres, float).reshape(-1, 2)
    mid = centres.mean(axis=0) if len(centres) else np.zeros(2)
    ring = shapely.get_coordinates(hex_polygons(mid[None, :], size_m)[0])[:6]
    pts = gpd.GeoSeries(shapely.points(np.vstack([centres, mid[None, :], ring])), crs=crs)
    ll = shapely.get_coordinates(to_display(pts, gcj).to_numpy())[:, ::-1]
    k = len(centres)
    return ll[:k], ll[k + 1:] - ll[k]


def _words(lang):
    return i18n.words("map", lang)


def _js(value) -> str:
    """A value as a JavaScript literal safe inside a <script> element."""
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class _Text(str):
    """JSON text made by lifecircle (numbers only, e.g. from :func:`_numbers_js`): :func:`_js_object`
    puts it in as it is."""


def _js_object(parts: dict) -> str:
    """A JavaScript object literal of ``parts``: values that are :class:`_Text` go in as they are
    (lifecircle's own number text), every other value through :func:`_js`."""
    return "{" + ",".join(_js(str(k)) + ":" + (v if isinstance(v, _Text) else _js(v))
                          for k, v in parts.items()) + "}"


def _numbers_js(values, decimals: int = 0) -> _Text:
    """Numbers (an array of 1 or 2 dimensions) as JSON text: rounded to ``decimals``, missing
    (NaN) as null, a 2-D array as a list of rows. Each distinct value is formatted once and
    looked up (a few ms for a million numbers; ``json.dumps`` of Python lists takes ~10x longer);
    numbers spread too wide for a table go through :func:`json.dumps`."""
    a = np.asarray(values)
    if a.ndim not in (1, 2):
        raise ValueError("_numbers_js: 1 or 2 dimensions")
    if a.dtype.kind not in "biuf":   # this text reaches the page unescaped: numbers only
        raise TypeError(f"_numbers_js: numbers only, got {a.dtype}")
    if a.dtype.kind == "f":
        ok = np.isfinite(a)
        k = np.round(np.where(ok, a, 0.0) * 10.0 ** decimals)
    else:
        ok = np.ones(a.shape, bool)
        k = a.astype(np.int64) * 10 ** decimals
    lo = int(k[ok].min()) if ok.any() else 0
    hi = int(k[ok].max()) if ok.any() else 0
    if hi - lo > max(100_000, a.size):       # too wide a spread for a table of numbers
        if a.dtype.kind != "f":
            v = a.astype(object)
        else:
            v = (np.round(a, decimals) if decimals else np.where(ok, k, 0).astype(np.int64)).astype(object)
            v[~ok] = None
        return _Text(json.dumps(v.tolist(), separators=(",", ":")))
    if decimals:
        table = [f"{i / 10 ** decimals:.{decimals}f}" for i in range(lo, hi + 1)]
    else:
        table = [str(i) for i in range(lo, hi + 1)]
    table = np.array(table + ["null"], dtype=object)
    idx = np.where(ok, k - lo, hi - lo + 1).astype(np.int64)
    tokens = table[idx]
    if a.ndim == 1:
        return _Text("[" + ",".join(tokens.tolist()) + "]")
    h, w = a.shape
    if h == 0 or w == 0:
        return _Text("[" + ",".join(["[]"] * h) + "]")
    rows = np.full((h, 2 * w + 1), ",", dtype=object)      # [a,b,...],  per row
    rows[:, 0] = "["
    rows[:, 1:2 * w:2] = tokens
    rows[:, 2 * w] = "],"
    return _Text("[" + "".join(rows.ravel().tolist())[:-1] + "]")


def geojson_text(geoms, props: list | None = None) -> str:
    """A GeoJSON FeatureCollection as text, written by GEOS (``shapely.to_geojson``, vectorised:
    no per-feature Python objects, compact numbers). Missing and empty geometries are left out.
    ``props``: one dict per geometry (lifecircle's own values; text in them must already be
    escaped for HTML), made safe for a <script> element by :func:`_js`."""
    geoms = np.asarray(geoms, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    text = shapely.to_geojson(geoms[ok])
    if props is None:
        feats = ['{"type":"Feature","properties":{},"geometry":' + g + "}" for g in text]
    else:
        pr = [p for p, k in zip(props, ok) if k]
        feats = ['{"type":"Feature","properties":' + _js(p) + ',"geometry":' + g + "}"
                 for p, g in zip(pr, text)]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


class GeoJsonLayer(MacroElement):
    """A GeoJSON layer drawn in one style (a style object, or lifecircle's own JavaScript
    function of the feature), with an optional tooltip that is the same for every feature.

    Unlike ``folium.GeoJson`` nothing is done per feature in Python: the data is text from
    :func:`geojson_text` and the template is compiled once for the class. ``tooltip`` is HTML
    (data text in it escaped by the caller); it reaches the page as a JavaScript string."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJson({{ this.data }}, {
          style: {{ this.style_js }}, interactive: {{ this.interactive_js }},
          smoothFactor: {{ this.smooth_js }}
        }){{ this.tooltip_js }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, data: str, style: dict | None = None, style_js: str | None = None,
                 tooltip: str | None = None, interactive: bool = True, smooth_factor: float = 1.0):
        super().__init__()
        self._name = "GeoJsonLayer"
        self.data = data
        self.style_js = style_js or "function(){return " + _js(style or {}) + ";}"
        self.interactive_js = "true" if interactive else "false"
        self.smooth_js = _js(float(smooth_factor))
        self.tooltip_js = f".bindTooltip({_js(tooltip)}, {{sticky: true}})" if tooltip else ""


class LifecircleMap(folium.Map):
    """A folium map that writes and displays itself offline: :meth:`save` goes through
    :func:`save_map` (Leaflet and plugins inlined) and the Jupyter view inlines them too."""

    _lifecircle_offline = True

    def save(self, outfile, close_file=True, **kwargs):
        if isinstance(outfile, (str, os.PathLike)):
            save_map(self, outfile)
            return
        text = self.get_root().render()
        if self._lifecircle_offline:
            text = inline_assets(text)
        outfile.write(text.encode("utf-8") if "b" in getattr(outfile, "mode", "") else text)
        if close_file:
            outfile.close()

    def _repr_html_(self, **kwargs) -> str:
        text = self.get_root().render()
        if self._lifecircle_offline:
            text = inline_assets(text)
        return ('<div style="width:100%"><div style="position:relative;width:100%;height:0;'
                'padding-bottom:60%"><iframe srcdoc="' + html.escape(text, quote=True) + '" '
                'style="position:absolute;width:100%;height:100%;left:0;top:0;border:none" '
                'allowfullscreen></iframe></div></div>')


#: the scale bar in metres only (Leaflet's second line is in feet)
_SCALE_CSS = "<style>.leaflet-control-scale-line+.leaflet-control-scale-line{display:none}</style>"

_CSS = _SCALE_CSS + """<style>
.lc-title{position:fixed;top:10px;left:56px;z-index:1000;background:rgba(255,255,255,.92);
 padding:5px 10px;border:1px solid #999;border-radius:4px;font:14px/1.35 sans-serif;max-width:55%}
.lc-title b{font-size:15px}.lc-title small{color:#444}
.lc-legend{background:rgba(255,255,255,.94);padding:6px 9px;border:1px solid #999;border-radius:4px;
 font:12px/1.35 sans-serif;max-height:55vh;overflow-y:auto;min-width:150px}
.lc-legend h4{margin:4px 0 2px;font-size:12px}.lc-sw{display:inline-block;width:14px;height:10px;
 margin-right:5px;vertical-align:middle;border:1px solid #666}
.lc-ramp{height:10px;border:1px solid #666;margin:2px 0}.lc-ramp-l{display:flex;justify-content:space-between}
.lc-sym{display:inline-block;width:14px;height:14px;border-radius:50%;border:1px solid #222;color:#fff;
 font-size:9px;line-height:14px;text-align:center;margin-right:5px;vertical-align:middle}
.lc-pop table{border-collapse:collapse;font-size:12px}.lc-pop td{padding:1px 4px;border-bottom:1px solid #eee}
.lc-pop .lc-dim td{background:#f2f2f2;font-weight:bold}.lc-pop{max-height:300px;overflow-y:auto}
.lc-origin{font:bold 12px sans-serif;background:#08306b;color:#fff;border:none}
.lc-rank{width:22px;height:22px;border-radius:50%;background:#7b3294;color:#fff;border:2px solid #fff;
 font:bold 12px/18px sans-serif;text-align:center;box-shadow:0 0 2px #000}
</style>"""


def area_name(result) -> str:
    """The study area's name for titles: its place name (:attr:`lifecircle.result.Result.place`:
    a batch district, a sample, a one-feature boundary) where known, else the source file's
    name without extensions (:func:`source_name`)."""
    place = " ".join(str(getattr(result, "place", "") or "").split())
    return place or source_name(result)


def source_name(result) -> str:
    """The source file's name without extensions ("lifecircle" without one)."""
    src = readable_path(str(getattr(result, "source", "") or ""))   # a GBK name: its escapes
    name = Path(src).name if src else ""
    for ext in (".osm.pbf", ".pbf", ".osm", ".gpkg", ".geojson", ".json", ".xml"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return name or "lifecircle"


def base_map(bounds, *, lang: str, basemap: str = "osm", attribution: str, title: str,
             subtitle: str = "", height="100%") -> tuple:
    """An offline :class:`LifecircleMap` framed on ``bounds`` (lon/lat): safe root, scale,
    attribution on the map, a title panel and the page's ``<title>`` (``title``/``subtitle`` are
    escaped here), online tiles only as an optional layer that starts switched off, zoom
    buttons in ``lang``. Returns (map, is_gcj02)."""
    w = _words(lang)
    attribution = i18n.attribution_text(attribution, lang)
    url, tile_attr, subdomains, is_gcj = _tiles(basemap, attribution)
    b = [float(v) for v in bounds]
    if not np.isfinite(b).all():        # nothing to frame: the whole world
        b = [-180.0, -60.0, 180.0, 75.0]
    if b[2] - b[0] < 1e-4 or b[3] - b[1] < 1e-4:    # one home (or all at one point): ~200 m around it
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        b = [cx - 0.001, cy - 0.001, cx + 0.001, cy + 0.001]
    # without tiles Leaflet has no zoom limit: fitting a tiny box would zoom to infinity (NaN)
    m = LifecircleMap(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=14, tiles=None,
                      control_scale=True, prefer_canvas=True, height=height, max_zoom=20,
                      zoom_control=False)
    safe_root(m)
    _Zoom(lang).add_to(m)
    if url is not None:
        folium.TileLayer(url, attr=tile_attr, name=escape_html(f"{w['tiles']}: {_basemap_name(basemap, lang)}"),
                         subdomains=subdomains, max_zoom=19, overlay=True, show=False).add_to(m)
    _Attribution(tile_attr if url is None else escape_html(attribution)).add_to(m)
    if lang == "zh":
        _ControlsZh().add_to(m)
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    root = m.get_root()
    root.title = escape_html(title)     # the browser tab's name (branca writes it as it is)
    root.header.add_child(RawHTML(_CSS))
    sub = f"<br><small>{escape_html(subtitle)}</small>" if subtitle else ""
    root.html.add_child(RawHTML(f'<div class="lc-title"><b>{escape_html(title)}</b>{sub}</div>'))
    return m, is_gcj


#: Basemap names as people read them (the option values are ids).
_BASEMAP_NAMES = {"osm": ("OpenStreetMap", "OpenStreetMap"), "cartodb": ("CARTO 浅色", "CARTO light"),
                  "amap": ("高德地图", "Amap (Gaode)"), "tianditu": ("天地图", "Tianditu")}


def _basemap_name(basemap: str, lang: str) -> str:
    names = _BASEMAP_NAMES.get(str(basemap).lower())
    return names[0 if lang == "zh" else 1] if names else str(basemap)


def _subtitle(lang: str, data_date, attribution: str, result=None) -> str:
    """The title's second line: the data (the source file, when the title names the place
    instead), its date and the attribution."""
    w = _words(lang)
    data = ""
    if result is not None and area_name(result) != source_name(result):
        data = f"{w['data']}: {source_name(result)} · "
    return f"{data}{w['date']}: {data_date or w['no_date']} · {ATTRIBUTION}"


class Legend(MacroElement):
    """A legend control with one section per layer; a section shows while its layer is on the
    map (``layer`` None: always). Section HTML is built by lifecircle with data text escaped."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var map = {{ this._parent.get_name() }};
          var secs = {{ this.sections_js }};
          var layers = [{{ this.layers_js }}];
          var ctl = L.control({position: 'bottomright'});
          ctl.onAdd = function(){
            var d = L.DomUtil.create('div', 'lc-legend');
            d.id = 'lc-legend';
            for (var i = 0; i < secs.length; i++) {
              var s = L.DomUtil.create('div', 'lc-legend-sec', d);
              s.innerHTML = secs[i];
            }
            L.DomEvent.disableClickPropagation(d);
            L.DomEvent.disableScrollPropagation(d);
            return d;
          };
          ctl.addTo(map);
          function refresh(){
            var kids = document.getElementById('lc-legend').children;
            for (var i = 0; i < kids.length; i++) {
              kids[i].style.display = (layers[i] === null || map.hasLayer(layers[i])) ? '' : 'none';
            }
          }
          map.on('overlayadd overlayremove baselayerchange layeradd layerremove', refresh);
          refresh();
        })();
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "Legend"
        self.sections: list[tuple[object, str]] = []

    def add(self, layer, html_text: str):
        self.sections.append((layer, html_text))
        return self

    def render(self, **kwargs):
        self.sections_js = _js([h for _, h in self.sections])
        self.layers_js = ",".join("null" if lay is None else lay.get_name() for lay, _ in self.sections)
        super().render(**kwargs)


def _sw(colour: str, text: str, border: str = "#666", line: bool = False) -> str:
    style = (f"background:{colour};border-color:{border}" if not line else
             f"background:transparent;border:none;border-top:3px solid {colour};height:0")
    return f'<div><span class="lc-sw" style="{style}"></span>{escape_html(text)}</div>'


def _ramp_html(title: str, colours, lo="0", mid="50", hi="100", extra: str = "") -> str:
    grad = ",".join(colours)
    return (f"<h4>{escape_html(title)}</h4><div class='lc-ramp' style='background:linear-gradient("
            f"to right,{grad})'></div><div class='lc-ramp-l'><span>{lo}</span><span>{mid}</span>"
            f"<span>{hi}</span></div>{extra}")


# ------------------------------------------------------------------------------------------
# the background drawn from the data itself

#: Background budget: above this many building vertices the buildings are merged into blocks
#: (buffer-union-simplify) so a city-wide map stays light. With it the Las Palmas map (≈60k
#: buildings) stays under ``MAP_BUDGET_MB``.
BACKGROUND_MAX_VERTICES = 250_000
#: Decimal places of the background (5 ≈ 1 m).
BACKGROUND_DECIMALS = 5

_MAJOR = {"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link",
          "primary_link", "secondary_link", "tertiary_link"}


_BUDGET_ORDER = ("major", "water", "river", "streets", "green", "buildings")
_COARSER = (10.0, 30.0)


def background_layers(result, gcj: bool = False, pieces=None) -> dict:
    """Buildings, water, green space (polygons from ``result.features``) and streets (the walk
    network), in lon/lat, simplified for the map and kept within :data:`lifecircle.render.background.BACKGROUND_BUDGET`.
    Returns ``{kind: GeoSeries}`` (missing kinds left out), ``"blocks": True`` when buildings
    were merged into blocks and ``"left_out"``: the kinds the budget left out. ``pieces``:
    :func:`feature_pieces` of the result's features, made already."""
    out = {}
    feats = getattr(result, "features", None)
    metric = result.crs
    left = bg.BACKGROUND_BUDGET   # read here: one budget with feature_pieces (and its tests)
    left_out = []

    def fits(kind, geoms, coarser=True):
        """Place ``geoms`` (metric) if they fit what is left of the budget (simplified further
        if need be); else note the kind as left out."""
        nonlocal left
        geoms = np.atleast_1d(np.asarray(geoms, dtype=object))
        for tol in (0.0, *(_COARSER if coarser else ())):
            g = shapely.simplify(geoms, tol) if tol else geoms
            n = int(shapely.get_num_coordinates(g).sum())
            if n <= left:
                left -= n
                out[kind] = g
                return True
        left_out.append(kind)
        return False

    # least: coordinates a kind has at least, however simplified
    if pieces is None:
        # arrays, not frames: a city's features table is copied by every selection of rows
        pieces = feature_pieces(*feature_arrays(feats), metric)
    parts, least, buildings = pieces
    parts = dict(parts)           # the made pieces are dropped from here once placed
    least = dict(least)
    net = result.network
    eg = np.asarray(net.edge_geom, dtype=object) if getattr(net, "edge_geom", None) is not None else None
    if eg is not None and len(eg):
        hw = np.asarray(net.edge_highway, dtype=object) if getattr(net, "edge_highway", None) is not None \
            else np.full(len(eg), "")
        major = np.isin(hw.astype(str), list(_MAJOR))
        # taken from the edges only when they can fit (two points a street at least): an array
        # of a city's streets references, and so writes to the page of, every edge geometry,
        # which beside the forked GeoPackage writer is copied
        for kind, sel in (("streets", ~major), ("major", major)):
            if sel.any():
                parts[kind] = bg._Once(functools.partial(eg.__getitem__, sel))
                least[kind] = 2 * int(sel.sum())
    for kind in _BUDGET_ORDER:
        if kind not in parts:
            continue
        if callable(parts[kind]):
            if least.get(kind, 0) > left:
                # cannot fit at any tolerance (a city's green areas): left out without being
                # projected and simplified three times over, seconds at a million walking nodes
                left_out.append(kind)
                continue
            parts[kind] = parts[kind]()
        if kind == "buildings":
            raw = parts[kind]
            if raw > bg.BACKGROUND_BLOCKS_MAX_VERTICES and raw > left:
                left_out.append(kind)       # too many to draw or merge: not even projected
                continue
            b, buildings = buildings(), None
            b = b[~shapely.is_empty(b)]
            n = int(shapely.get_num_coordinates(b).sum())
            if n > min(BACKGROUND_MAX_VERTICES, left):
                if raw > bg.BACKGROUND_BLOCKS_MAX_VERTICES:
                    left_out.append(kind)
                    continue
                merged = shapely.union_all(shapely.buffer(b, 6.0, quad_segs=1))
                b = np.array([shapely.simplify(shapely.buffer(merged, -4.0, quad_segs=1), 5.0)], dtype=object)
                out["blocks"] = True
            if fits(kind, shapely.get_parts(b), coarser=False):
                out[kind] = shapely.multipolygons(out[kind])
            continue
        if kind in ("streets", "major"):
            # simplified piece by piece (vectorised; lines need no topology kept), then joined;
            # a line of two points (a third of a city's streets) stays as it is
            shown = parts[kind].copy()
            bent = shapely.get_num_coordinates(shown) > 2
            shown[bent] = shapely.simplify(shown[bent], 2.0, preserve_topology=False)
            parts[kind] = shown
            del shown
        if fits(kind, parts.pop(kind), coarser=kind != "streets"):
            g = out[kind]
            out[kind] = (shapely.multipolygons(g) if kind in ("water", "green")
                         else shapely.multilinestrings(list(g)) if kind in ("streets", "major") else g)
    res = {"left_out": left_out}
    for k in list(out):
        v = out.pop(k)               # each kind's metric geometry dropped once shown
        if k == "blocks":
            res[k] = v
            continue
        geoms = np.atleast_1d(np.asarray(v, dtype=object))
        geoms = geoms[~(shapely.is_empty(geoms) | shapely.is_missing(geoms))]
        if not len(geoms):
            continue
        gs = gpd.GeoSeries(display_geometries(geoms, metric, gcj, BACKGROUND_DECIMALS), crs=WGS84)
        res[k] = gs[~gs.is_empty]
    return res


def _with_text(make, result, gcj: bool) -> dict:
    """:func:`background_layers` (``make``) with each kind's GeoJSON text made too (under
    ``"text"``): in the thread that drew them, beside the rest of the map."""
    bg = make(result, gcj)
    bg["text"] = {k: geojson_text(v.to_numpy()) for k, v in bg.items()
                  if isinstance(v, gpd.GeoSeries)}
    return bg


def background_text(result, gcj: bool = False, pieces=None) -> dict:
    """:func:`background_layers` of ``result`` (``pieces``: see there) with each kind's
    GeoJSON text: what :func:`result_map` draws as its background (made beside the analysis
    by :class:`lifecircle.result.MapPrep`)."""
    return _with_text(functools.partial(background_layers, pieces=pieces), result, gcj)


def _gap_layers(result, gcj: bool, cells=None):
    """:func:`gap_areas` and, by row, the GeoJSON text of each gap as the map shows it
    (simplified, in lon/lat; made in the thread that drew them). ``cells``: the homes'
    Voronoi cells if they are made already (see :func:`gap_areas`)."""
    gp = gap_areas(result, cells=cells)
    shown = to_display(gp[["geometry"]], gcj, MAP_SIMPLIFY_M).geometry.to_numpy()
    return gp, {i: geojson_text(shown[k:k + 1]) for k, i in enumerate(gp.index)}


def add_background(m, result, lang: str, gcj: bool, legend: Legend, layers: dict | None = None) -> None:
    """The background layer (drawn from the data, on by default) and its legend section;
    ``layers``: :func:`background_layers` of the result if they are made already."""
    w = _words(lang)
    bg = layers if layers is not None else background_layers(result, gcj)
    layer = folium.FeatureGroup(name=escape_html(w["background"]), show=True)
    styles = {
        "green": {"fillColor": "#c7e9c0", "color": "#a1d99b", "weight": 0.5, "fillOpacity": 1},
        "water": {"fillColor": "#9ecae1", "color": "#6baed6", "weight": 0.5, "fillOpacity": 1},
        "river": {"color": "#6baed6", "weight": 3},
        "buildings": {"fillColor": "#d9d0c9", "color": "#b8aca3", "weight": 0.4, "fillOpacity": 1},
        "streets": {"color": "#ffffff", "weight": 2.5, "opacity": 1},
        "major": {"color": "#fdd49e", "weight": 4, "opacity": 1},
    }
    parts = [f"<h4>{escape_html(w['background'])}</h4>"]
    names = {"green": w["green"], "water": w["water"], "river": w["water"],
             "buildings": w["building_blocks"] if bg.get("blocks") else w["buildings"],
             "streets": w["streets"], "major": w["major_streets"]}
    for kind in ("green", "water", "river", "buildings", "streets", "major"):
        if kind not in bg or kind in ("left_out", "text"):
            continue
        st = styles[kind]
        text = bg.get("text", {}).get(kind)
        GeoJsonLayer(text if text is not None else geojson_text(bg[kind].to_numpy()), st, interactive=False,
                     smooth_factor=1.5).add_to(layer)
        if kind in ("streets", "major", "river"):
            parts.append(_sw(st["color"] if kind != "streets" else "#bdbdbd", names[kind], line=True))
        elif kind != "river":
            parts.append(_sw(st["fillColor"], names[kind], st["color"]))
    if bg.get("left_out"):     # the page's budget left them out: said, not silently missing
        gone = ", ".join(dict.fromkeys(names[k] for k in bg["left_out"]))
        parts.append(f"<div class='lc-left-out'><i>{escape_html(w['left_out'])}: {escape_html(gone)}</i></div>")
    layer.add_to(m)
    legend.add(layer, "".join(parts))
    # the land under everything: a light grey page instead of white
    m.get_root().header.add_child(RawHTML("<style>.leaflet-container{background:#f2efe9}</style>"))


# ------------------------------------------------------------------------------------------
# the planning map

class _HomesScript(MacroElement):
    """Recolours homes by the dimension chosen in the layer control and builds each home's
    popup (sub-scores; per category minutes and the nearest facility's name) on click."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var map = {{ this._parent.get_name() }};
          var layer = {{ this.layer_name }};
          var bases = [{{ this.bases_js }}];
          var D = {{ this.data_js }};
          if (D.xy) {
            for (var q = 0; q < D.xy.length; q++) {
              if (D.xy[q] === null) continue;
              var mk = L.circleMarker(D.xy[q], {radius: 5, weight: 0.6, color: '#333333', fill: true,
                                                fillOpacity: 0.9, fillColor: '#9e9e9e'});
              mk._lc_i = q;
              mk.addTo(layer);
            }
          } else if (D.hx) {
            for (var q = 0; q < D.hx.length; q++) {
              var c = D.hx[q];
              var pg = L.polygon(D.ho.map(function(o){ return [c[0] + o[0], c[1] + o[1]]; }),
                                 {weight: 0.3, color: '#555555', fillOpacity: 0.75, fillColor: '#9e9e9e'});
              pg._lc_i = q;
              pg.addTo(layer);
            }
          }
          window.lifecircleHomes = layer;
          var cur = 0;
          function hex(c){return parseInt(c,16);}
          function colour(v){
            if (v === null || v === undefined) return '#9e9e9e';
            var r = D.ramp, x = Math.max(0, Math.min(1, v / 100)) * (r.length - 1);
            var i = Math.min(Math.floor(x), r.length - 2), t = x - i, a = r[i], b = r[i + 1], o = '#';
            for (var k = 1; k < 7; k += 2) {
              var c = Math.round(hex(a.substr(k, 2)) * (1 - t) + hex(b.substr(k, 2)) * t);
              o += (c < 16 ? '0' : '') + c.toString(16);
            }
            return o;
          }
          function fmt(v){return (v === null || v === undefined) ? '–' : v;}
          function popup(i){
            var s = D.s[i], h = '<div class="lc-pop"><b>' + D.w.head + '</b><br>' + D.w.score + ': <b>' + fmt(s[0]) +
              '</b> · ' + D.w.residents + ': ' + fmt(D.p[i]);
            if (D.n) h += ' · ' + D.w.homes + ': ' + D.n[i];
            h += '<table><tr class="lc-dim"><td colspan="3">' + D.w.sub + '</td></tr>';
            for (var d = 0; d < D.dims.length; d++) {
              h += '<tr><td>' + D.dims[d] + '</td><td colspan="2">' + fmt(s[d + 1]) + '</td></tr>';
            }
            if (D.t) {
              var o = i * D.cats.length;     // D.t and D.f: one row of categories per home, flat
              for (var d = 0; d < D.dims.length; d++) {
                h += '<tr class="lc-dim"><td>' + D.dims[d] + '</td><td>' + D.w.min + '</td><td>' +
                     D.w.nearest + '</td></tr>';
                for (var c = 0; c < D.cats.length; c++) {
                  if (D.cats[c][1] !== d) continue;
                  var tc = D.t[o + c], fc = D.f[o + c];
                  var nm = fc >= 0 ? D.names[fc] : '';
                  var mins = tc < 0 ? (D.cats[c][2] ? D.w.nodata : D.w.none) : tc;
                  h += '<tr><td>' + D.cats[c][0] + '</td><td>' + mins + '</td><td>' + nm + '</td></tr>';
                }
              }
            }
            return h + '</table></div>';
          }
          function restyle(){
            layer.eachLayer(function(l){
              var v = D.s[l._lc_i][cur];
              l.setStyle({fillColor: colour(v)});
            });
            var el = document.getElementById('lc-ramp-title');
            if (el) el.innerHTML = D.titles[cur];
          }
          layer.eachLayer(function(l){
            l.bindPopup(function(){ return popup(l._lc_i); }, {maxWidth: 380});
          });
          map.on('baselayerchange', function(e){
            for (var k = 0; k < bases.length; k++) if (bases[k] === e.layer) cur = k;
            restyle();
          });
          for (var k = 0; k < bases.length; k++) if (map.hasLayer(bases[k])) cur = k;
          restyle();
        })();
        {% endmacro %}
    """)

    def __init__(self, layer, bases, data_js: str):
        super().__init__()
        self._name = "HomesScript"
        self.layer_name = layer.get_name()
        self._bases = bases
        self.data_js = data_js            # the page's data, as made by _js

    def render(self, **kwargs):
        self.bases_js = ",".join(b.get_name() for b in self._bases)
        super().render(**kwargs)


def _hex_gaps(result, dim_layers, dim_names, size_m: float, gcj: bool, w: dict) -> None:
    """Gap areas of a hexagon map: per dimension, the hexagons holding homes it leaves uncovered,
    each with its uncovered homes and residents (their sums are the table's uncovered figures)."""
    homes = result.homes
    reps = _surface_points(homes.geometry.to_numpy())
    ok = ~(shapely.is_missing(reps) | shapely.is_empty(reps))
    inv, centres = hex_bins(shapely.get_coordinates(reps[ok]), size_m)
    k = len(centres)
    ll, corners = hex_display(centres, size_m, homes.crs, gcj)
    pop = homes[col.POPULATION].to_numpy(float)[ok]
    for g, dname, (_, _, out) in zip(dim_layers, dim_names, uncovered_homes(result)):
        if out is None or not out[ok].any():
            continue
        n = np.bincount(inv, weights=out[ok].astype(float), minlength=k)
        p = np.bincount(inv, weights=np.where(out[ok], pop, 0.0), minlength=k)
        sel = n > 0
        HexLayer(ll[sel], corners, np.column_stack([n[sel].astype(np.int64), np.round(p[sel]).astype(np.int64)]),
                 [escape_html(w["gap_tip_pre"].format(d=dname, k=w["gap_kind"])), escape_html(w["gap_tip_mid"]),
                  escape_html(w["gap_tip_post"])],
                 {"stroke": False, "fillColor": "#b2182b", "fillOpacity": 0.18}).add_to(g)


def _frame_points(bounds) -> np.ndarray:
    """Points along the sides of a box (nine a side: projected, a side may bend), so the map's
    frame in lon/lat comes from a few dozen points instead of every home."""
    x0, y0, x1, y1 = (0.0, 0.0, 0.0, 0.0) if not np.isfinite(bounds).all() else bounds
    xs, ys = np.linspace(x0, x1, 9), np.linspace(y0, y1, 9)
    return shapely.points(np.concatenate([np.column_stack([xs, np.full(9, y0)]), np.column_stack([xs, np.full(9, y1)]),
                                          np.column_stack([np.full(9, x0), ys]), np.column_stack([np.full(9, x1), ys])]))


def result_map(result, lang: str | None = None, basemap: str = "osm", offline: bool = True,
               isochrones=None, sites=None, service_areas: bool = False, gaps: bool = True,
               tiles: str | None = None, recommendations=None, nearest_names: bool = True) -> folium.Map:
    """The planning map of a :class:`~lifecircle.pipeline.Result`, readable offline.

    * a background drawn from the result's own OSM features (buildings or building blocks,
      water, green space) and its street network, so the map is a map without tiles;
    * a title (area, data date, attribution), a scale and a legend section for every layer
      that is on;
    * one dimension at a time (radio buttons): homes (or hexagons beyond
      ``settings.map_max_points``) coloured by that dimension's score, its facilities (a
      symbol and shade per category), the areas where its uncovered homes are (from
      :func:`lifecircle.analyses.isochrones.gap_areas`: their population is the table's
      uncovered population; on a hexagon map, the hexagons holding uncovered homes, each with
      its uncovered homes and residents) and, with ``service_areas``, its 15-minute street buffer;
    * a click on a home opens its sub-scores and, per category, the minutes to the nearest
      facility and its name;
    * ``isochrones``: origin points (GeoSeries/GeoDataFrame; a ``name`` column names them) or
      a GeoDataFrame from :func:`lifecircle.analyses.isochrones.isochrones`; origins are
      marked and named;
    * ``sites`` (idle sites) and ``recommendations`` (see :func:`add_sites`).

    ``basemap`` (osm, cartodb, blank, amap, tianditu) is an optional online layer that starts
    switched off; amap shifts every layer to GCJ-02. The map saves offline by default
    (``offline=False`` links Leaflet from its CDN instead).
    """
    lang = lang or result.settings.lang
    i18n.check_lang(lang)
    if tiles is not None and basemap == "osm":
        basemap = {"OpenStreetMap": "osm", "cartodbpositron": "cartodb"}.get(tiles, tiles)
    w = _words(lang)
    profile = result.profile
    homes = result.homes
    _, _, _, gcj = _tiles(basemap, result.attribution)

    def disp(gdf, simplify_m=0.0):
        return to_display(gdf, gcj, simplify_m)

    ref = homes if len(homes) else result.facilities
    bounds = disp(gpd.GeoDataFrame(geometry=_frame_points(ref.total_bounds), crs=ref.crs)).total_bounds
    m, gcj = base_map(bounds, lang=lang, basemap=basemap, attribution=result.attribution,
                      title=f"{area_name(result)} — {w['title']}",
                      subtitle=_subtitle(lang, result.data_date, result.attribution, result))
    m._lifecircle_offline = offline
    legend = Legend()
    # beyond settings.map_max_points homes the map shows hexagons (homes, their gaps and,
    # beyond MAP_MAX_FACILITIES, facilities): the page stays within MAP_BUDGET_MB
    # the reachable homes, by position: a selection of the frame would copy every column of
    # every home (226 columns: ~1.2 GB at a million homes) for the few the map reads
    base = np.flatnonzero(homes[col.REACHABLE].to_numpy(bool)) if col.REACHABLE in homes \
        else np.arange(len(homes))
    hex_mode = bool(len(homes) > result.settings.map_max_points and len(base))
    hex_m = result.settings.map_hex_m

    # what the map draws from the analysis (the gap union, the nearest facilities' names) is
    # worked out beside the background: GEOS and the numba kernels release the GIL; what the
    # analysis prepared beside its later stages (the background, the homes' cells: see
    # lifecircle.result.MapPrep) is taken as it is, where it was made from this result's data
    prep = getattr(result, "_map_prep", None)
    background = prep.background(result, gcj) if prep is not None else None
    pieces = prep.pieces(result) if prep is not None and background is None else None
    cells = prep.cells(result) if prep is not None and gaps and not hex_mode else None
    pool = ThreadPoolExecutor(3)
    background_job = pool.submit(carried(_with_text), functools.partial(background_layers, pieces=pieces),
                                 result, gcj) if background is None else None
    gap_job = pool.submit(carried(_gap_layers), result, gcj, cells) if gaps and not hex_mode else None
    near_job = pool.submit(carried(nearest_facilities), result) \
        if nearest_names and not hex_mode and len(homes) else None
    pool.shutdown(wait=False)

    dims = list(profile.dimensions)
    dim_names = [_raw_label(profile, d.id, lang) for d in dims]
    status = getattr(result, "data_status", None) or {}
    fac = result.facilities
    cats = fac[col.CATEGORY].to_numpy()
    names = fac[col.NAME].fillna("").astype(str).to_numpy() if col.NAME in fac else np.full(len(fac), "")
    # names escaped for HTML (text from the data), each distinct name once
    distinct, which_name = np.unique(names.astype(object), return_inverse=True)
    esc_names = np.array([escape_html(n) for n in distinct] or [""], dtype=object)[which_name.ravel()] \
        if len(names) else np.array([], dtype=object)

    # the homes' data for the page, worked out while the background is (GEOS releases the GIL)
    score_cols = [col.SCORE] + [col.dim_score(d.id) for d in dims]
    # HTML; the overall score is over the dimensions with data (w["legend"] says so)
    titles = [escape_html(f"{w['home']}: {n}") for n in [w["legend"], *dim_names]]
    data = {"ramp": SCORE_COLOURS, "dims": [escape_html(n) for n in dim_names], "titles": titles,
            "w": {"score": escape_html(w["score"]), "residents": escape_html(w["residents"]),
                  "sub": escape_html(w["sub_scores"]), "min": escape_html("≤ " + w["minutes"]),
                  "nearest": escape_html(w["nearest"]), "none": escape_html(w["none_within"]),
                  "homes": escape_html(w["homes_n"]), "head": escape_html(w["home"]),
                  "nodata": escape_html(i18n.status_label(col.STATUS_NO_DATA, lang))}}
    draw_homes = False
    if hex_mode:
        reps = _surface_points(homes.geometry.to_numpy()[base])
        placed = ~(shapely.is_missing(reps) | shapely.is_empty(reps))
        base = base[placed]
        inv, centres = hex_bins(shapely.get_coordinates(reps[placed]), hex_m)
        k = len(centres)
        pop = homes[col.POPULATION].to_numpy(float)[base]
        vals = []
        for c in score_cols:          # population-weighted mean of each score (as hexagons())
            v = homes[c].to_numpy(float)[base] if c in homes else np.full(len(base), np.nan)
            ok = np.isfinite(v)
            wsum = np.bincount(inv, weights=np.where(ok, pop, 0.0), minlength=k)
            vsum = np.bincount(inv, weights=np.where(ok, pop * v, 0.0), minlength=k)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals.append(np.where(wsum > 0, vsum / wsum, np.nan))
        ll, corners = hex_display(centres, hex_m, homes.crs, gcj)
        data["head"] = escape_html(w["hexagon"])
        data["w"]["head"] = escape_html(w["hexagon"])
        data["s"] = _numbers_js(np.column_stack(vals), 1)
        data["p"] = _numbers_js(np.round(np.bincount(inv, weights=pop, minlength=k)).astype(np.int64))
        data["n"] = _numbers_js(np.bincount(inv, minlength=k))
        data["hx"] = np.round(ll, MAP_DECIMALS).tolist()
        data["ho"] = np.round(corners, MAP_DECIMALS + 1).tolist()
        draw_homes = True            # the hexagons are made in the page from data["hx"]
    elif len(homes):
        pts = disp(homes[[homes.geometry.name]])
        # numbers go to the page as text made from the arrays (_numbers_js), not Python lists
        data["s"] = _numbers_js(np.column_stack([homes[c].to_numpy(float) if c in homes
                                                 else np.full(len(homes), np.nan) for c in score_cols]), 1)
        data["p"] = _numbers_js(homes[col.POPULATION].to_numpy(float))
        if nearest_names:
            cat_ids, minutes, which = near_job.result()
            cat_dim = {c.id: k for k, d in enumerate(dims) for c in d.categories}
            used = np.unique(which[which >= 0])
            # one more slot, -1, for which == -1 (none within reach): pos[-1] must not be the
            # last facility's place (its name beside "none within"), nor out of range when the
            # data has no facility at all
            pos = np.full(len(fac) + 1, -1)
            pos[used] = np.arange(len(used))
            # a category with no facility in the data reads "no data", not "none within reach"
            data["cats"] = [[escape_html(_raw_label(profile, c, lang)), cat_dim.get(c, -1),
                             int(status.get(c) == col.STATUS_NO_DATA)] for c in cat_ids]
            data["names"] = [esc_names[i] or escape_html(f"OSM {_raw_label(profile, cats[i], lang)}")
                             for i in used]
            # whole minutes, rounded up ("≤ n minutes"): a third of the size of decimals; both
            # tables flat, home by home (len(cats) a home): a third of the time of nested lists
            mt = np.ceil(minutes - 1e-9)
            data["t"] = _numbers_js(np.where(np.isfinite(mt), mt, -1).astype(np.int64).T.ravel())
            data["f"] = _numbers_js(pos[which].T.ravel())
        reps = _surface_points(pts.geometry.to_numpy())
        placed = ~(shapely.is_missing(reps) | shapely.is_empty(reps))
        xy = np.full((len(reps), 2), np.nan)
        xy[placed] = np.round(shapely.get_coordinates(reps[placed])[:, ::-1], MAP_DECIMALS)
        data["xy"] = [p if k else None for p, k in zip(xy.tolist(), placed)]
        draw_homes = True            # the markers are made in the page from data["xy"]
    homes_js = _js_object(data) if draw_homes else None

    add_background(m, result, lang, gcj, legend,
                   layers=background if background_job is None else background_job.result())

    # one base layer per view: overall score, then each dimension ---------------------------
    no_data = [c.id for c in profile.categories if status.get(c.id) == col.STATUS_NO_DATA]
    overall_name = w["dim_no_data"].format(name=w["overall"]) \
        if no_data and len(no_data) == len(profile.categories) else w["overall"]  # no facility at all
    overall = folium.FeatureGroup(name=escape_html(overall_name), overlay=False, show=True)
    overall.add_to(m)
    bases = [overall]
    dim_layers = []
    for dim, dname in zip(dims, dim_names):
        n_nd = sum(status.get(c.id) == col.STATUS_NO_DATA for c in dim.categories)
        if n_nd and n_nd == len(dim.categories):      # say so: an empty layer is unknown, not nothing
            layer_name = w["dim_no_data"].format(name=dname)
        elif n_nd:
            layer_name = w["dim_part_no_data"].format(name=dname, k=n_nd, n=len(dim.categories))
        else:
            layer_name = dname
        g = folium.FeatureGroup(name=escape_html(layer_name), overlay=False, show=False)
        g.add_to(m)
        bases.append(g)
        dim_layers.append(g)

    # gaps: where the uncovered homes are ------------------------------------------------------
    if gaps and hex_mode:
        _hex_gaps(result, dim_layers, dim_names, hex_m, gcj, w)
    elif gaps:
        gp, gap_text = gap_job.result()
        for g, dim, dname in zip(dim_layers, dims, dim_names):
            row = gp[gp.dimension == dim.id]
            if not len(row) or row.geometry.iloc[0].is_empty or not np.isfinite(row["homes"].iloc[0]):
                continue
            r = row.iloc[0]
            tip = (w["gap_tip_pre"].format(d=dname, k=w["gap_kind"]) + f"{int(r['homes'])}" + w["gap_tip_mid"]
                   + f"{r['population']:,.0f}" + w["gap_tip_post"])
            GeoJsonLayer(gap_text[row.index[0]],
                         {"color": "#b2182b", "weight": 1, "dashArray": "3",
                          "fillColor": "#b2182b", "fillOpacity": 0.10},
                         tooltip=escape_html(tip)).add_to(g)

    # service areas (optional: street buffers) ----------------------------------------------
    m15 = float(max(result.settings.thresholds_min))
    if service_areas is not False and service_areas is not None:
        sa = service_areas if isinstance(service_areas, gpd.GeoDataFrame) else \
            _sa(result, [m15], categories=False)
        for g, dim, dname in zip(dim_layers, dims, dim_names):
            sel = sa[(sa.level == "dimension") & (sa.id == dim.id) & (sa.minutes == m15)]
            if len(sel) and not sel.geometry.iloc[0].is_empty:
                c = DIMENSION_COLOURS.get(dim.id, "#333333")
                folium.GeoJson(disp(sel[["geometry"]], MAP_SIMPLIFY_M).__geo_interface__,
                               style_function=lambda f, c=c: {"color": c, "weight": 1, "fillColor": c,
                                                              "fillOpacity": 0.08},
                               tooltip=escape_html(f"{dname}: {m15:g} {w['minutes']} {w['service']}")
                               ).add_to(g)

    # facilities per dimension ----------------------------------------------------------------
    fac_hex = len(fac) > MAP_MAX_FACILITIES
    # projected once for every dimension (each geometry on its own: the same as per dimension)
    fac_shown = disp(fac[[fac.geometry.name]]) if len(fac) and not fac_hex else None
    # each facility's point, once for every dimension
    fac_reps = _surface_points(fac.geometry.to_numpy() if fac_hex else fac_shown.geometry.to_numpy()) \
        if len(fac) else None
    for g, dim, dname in zip(dim_layers, dims, dim_names):
        colour = DIMENSION_COLOURS.get(dim.id, "#333333")
        cat_ids = [c.id for c in dim.categories]
        shades = _category_colours(colour, len(cat_ids))
        cc = {c: shades[i] for i, c in enumerate(cat_ids)}
        sym = {c: CATEGORY_SYMBOLS[i % len(CATEGORY_SYMBOLS)] for i, c in enumerate(cat_ids)}
        idx = np.flatnonzero(np.isin(cats, cat_ids))
        if len(idx) and fac_hex:
            xy = shapely.get_coordinates(fac_reps[idx])
            inv, centres = hex_bins(xy, hex_m)
            ll, corners = hex_display(centres, hex_m, fac.crs, gcj)
            HexLayer(ll, corners, np.bincount(inv, minlength=len(centres))[:, None],
                     [escape_html(f"{dname}: "), escape_html(f" {w['facilities']}")],
                     {"weight": 0.5, "color": colour, "fillColor": colour}, shade=0).add_to(g)
        elif len(idx):
            reps = fac_reps[idx]
            ok = ~(shapely.is_missing(reps) | shapely.is_empty(reps))
            latlon = np.full((len(reps), 2), np.nan)
            latlon[ok] = shapely.get_coordinates(reps[ok])[:, ::-1]
            number = {c: i for i, c in enumerate(cat_ids)}
            FacilityLayer(latlon, [number[c] for c in cats[idx]], esc_names[idx].tolist(),
                          [[escape_html(f"{sym[c]} {_raw_label(profile, c, lang)}"),
                            _ICON_HTML.format(colour=cc[c], sym=sym[c])] for c in cat_ids],
                          [escape_html(w["category"]), escape_html(w["name"])]).add_to(g)
        counts = {c: int((cats == c).sum()) for c in cat_ids}
        no_data = i18n.status_label(col.STATUS_NO_DATA, lang)
        rows = "".join(      # a category without data says so: (0) would read as none there
            f'<div><span class="lc-sym" style="background:{cc[c]}">{sym[c]}</span>'
            f'{escape_html(_raw_label(profile, c, lang))} '
            f'({escape_html(no_data) if status.get(c) == col.STATUS_NO_DATA else counts[c]})</div>'
            for c in cat_ids)
        extra = _sw("rgba(178,24,43,.25)", w["gap_legend"], "#b2182b") if gaps else ""
        if fac_hex:
            extra = _sw(colour, w["fac_hexagons"], colour) + extra
        legend.add(g, f"<h4>{escape_html(dname)} — {escape_html(w['facilities'])}</h4>{rows}{extra}")

    # isochrones ----------------------------------------------------------------------------
    if isochrones is not None:
        add_isochrones(m, result, isochrones, lang, gcj, legend)

    if sites is not None and len(sites) or recommendations is not None and len(recommendations):
        add_sites(m, result, sites, recommendations, lang, gcj, legend)

    # homes -------------------------------------------------------------------------------
    homes_layer = folium.FeatureGroup(name=escape_html(w["homes"]), show=True)
    homes_layer.add_to(m)
    legend.add(homes_layer, _ramp_html(html.unescape(titles[0]), SCORE_COLOURS,
                                       extra=_sw("#9e9e9e", w["unreachable_legend"]))
               .replace("<h4>", "<h4 id='lc-ramp-title'>", 1))

    if result.communities is not None and len(result.communities):
        comm = disp(result.communities, MAP_SIMPLIFY_M)
        cl = folium.FeatureGroup(name=escape_html(w["communities"]))
        GeoJsonLayer(geojson_text(comm.geometry.to_numpy()),
                     {"fill": False, "color": "#000", "weight": 2}).add_to(cl)
        cl.add_to(m)
        legend.add(cl, _sw("transparent", w["communities"], "#000"))

    map_controls(m, lang)
    legend.add_to(m)
    if draw_homes:
        _HomesScript(homes_layer, bases, homes_js).add_to(m)
    return m


def add_isochrones(m, result, isochrones, lang, gcj, legend) -> None:
    """Isochrones (5/10/15 bands) with their origins marked and named."""
    w = _words(lang)
    names = None
    origins = None
    iso = isochrones
    if not (isinstance(iso, gpd.GeoDataFrame) and "minutes" in iso):
        pts = iso
        if isinstance(pts, gpd.GeoDataFrame):
            if "name" in pts:
                names = pts["name"].fillna("").astype(str).tolist()
            pts = pts.geometry
        origins = gpd.GeoSeries(pts, crs=getattr(pts, "crs", None) or result.crs)
        iso = _iso(result, origins, result.settings.thresholds_min)
    n_orig = int(iso["origin"].max()) + 1 if len(iso) else 0
    if names is None or len(names) != n_orig:
        names = [f"{w['origin']} {i + 1}" for i in range(n_orig)]
    names = [nm if nm.strip() else f"{w['origin']} {i + 1}" for i, nm in enumerate(names)]
    layer = folium.FeatureGroup(name=escape_html(w["iso"]))
    ramp = {5.0: "#08519c", 10.0: "#3182bd", 15.0: "#9ecae1"}
    iso = iso[~iso.geometry.is_empty].sort_values("minutes", ascending=False)
    if len(iso):
        g = to_display(iso[["origin", "minutes", "geometry"]], gcj, MAP_SIMPLIFY_M)
        g["label"] = [escape_html(f"{names[int(o)]}: {mm:g} {w['minutes']}")
                      for o, mm in zip(g["origin"], g["minutes"])]
        folium.GeoJson(g[["minutes", "label", "geometry"]].__geo_interface__,
                       style_function=lambda f: {"color": "#08306b", "weight": 1,
                                                 "fillColor": ramp.get(float(f["properties"]["minutes"]), "#6baed6"),
                                                 "fillOpacity": 0.30},
                       tooltip=folium.GeoJsonTooltip(["label"], labels=False)).add_to(layer)
    if origins is not None and len(origins):
        o = to_display(gpd.GeoDataFrame(geometry=origins.to_numpy(), crs=origins.crs), gcj)
        for i, p in enumerate(o.geometry):
            if p is None or p.is_empty:
                continue
            folium.CircleMarker([p.y, p.x], radius=7, color="#fff", weight=2, fill=True,
                                fill_color="#08306b", fill_opacity=1,
                                tooltip=folium.Tooltip(escape_html(names[i]), permanent=True,
                                                       direction="right", class_name="lc-origin")
                                ).add_to(layer)
    layer.add_to(m)
    mins = sorted(float(x) for x in result.settings.thresholds_min)
    rows = "".join(_sw(ramp.get(mm, "#6baed6"), f"≤ {mm:g} {w['minutes']}") for mm in mins)
    legend.add(layer, f"<h4>{escape_html(w['iso'])}</h4>{rows}"
                      f"<div><span class='lc-sym' style='background:#08306b'></span>{escape_html(w['origin'])}</div>")


# ------------------------------------------------------------------------------------------
# idle sites and recommendations

STATUS_COLOURS = {"idle": "#7b3294", "vacant": "#c2a5cf", "disused": "#5e3c99", "left-over": "#e66101",
                  "construction": "#fdb863", "in use": "#8c8c8c", "ruins": "#8c510a", "unknown": "#bcbcbc"}
#: colours of statuses lifecircle does not know (a survey's own words, 低效), in order of appearance
_OTHER_STATUS_COLOURS = ("#1b9e77", "#e7298a", "#66a61e", "#a6761d", "#386cb0", "#666666")


def status_colours(values) -> tuple[list[str], dict[str, str]]:
    """(each site's status as one value — :func:`~lifecircle.analyses.resources.canonical_status`:
    闲置 and idle are one status —, {status: colour} in order of appearance): one colour per
    status, a known status its own, others one each from :data:`_OTHER_STATUS_COLOURS`."""
    statuses = [canonical_status(v) or "unknown" for v in values]
    colours, spare = {}, itertools.cycle(_OTHER_STATUS_COLOURS)
    for v in statuses:
        if v not in colours:
            colours[v] = STATUS_COLOURS.get(v) or next(spare)
    return statuses, colours


def add_sites(m, result, sites, recommendations, lang, gcj, legend) -> None:
    """Idle sites (any GeoDataFrame: every column shows in the popup, keys and values escaped)
    and ranked recommendations (numbered markers; every column in the popup)."""
    w = _words(lang)
    if sites is not None and len(sites):
        layer = folium.FeatureGroup(name=escape_html(w["sites"]))
        s = sites.copy()
        if s.crs is None:
            s = s.set_crs(result.crs)
        keep = [c for c in s.columns if c != s.geometry.name]
        pop = []
        for _, r in s[keep].iterrows():
            pop.append(f"<div class='lc-pop'><table>{_rows_html(r, keep, lang, result.profile)}</table></div>")
        status_col = next((c for c in ("status", "状态") if c in s), None)
        if status_col:
            statuses, by_status = status_colours(s[status_col])
            colours = [by_status[v] for v in statuses]
        else:
            colours = ["#7b3294"] * len(s)
        g = to_display(gpd.GeoDataFrame({"popup": pop, "colour": colours},
                                        geometry=s.geometry.to_numpy(), crs=s.crs), gcj, MAP_SIMPLIFY_M)
        folium.GeoJson(g.__geo_interface__,
                       style_function=lambda f: {"color": f["properties"]["colour"], "weight": 2,
                                                 "fillColor": f["properties"]["colour"], "fillOpacity": 0.45},
                       marker=folium.CircleMarker(radius=6, fill=True),
                       popup=folium.GeoJsonPopup(["popup"], labels=False, max_width=380)).add_to(layer)
        layer.add_to(m)
        if status_col:
            rows = "".join(_sw(c, display_value("status", v, lang)) for v, c in by_status.items())
        else:
            rows = _sw("#7b3294", w["sites"])
        legend.add(layer, f"<h4>{escape_html(w['sites_legend'])}</h4>{rows}")
    if recommendations is not None and len(recommendations):
        rec = recommendations.copy()
        if rec.crs is None:
            rec = rec.set_crs(result.crs)
        layer = folium.FeatureGroup(name=escape_html(w["recs"]))
        pts = to_display(gpd.GeoDataFrame(geometry=shapely.point_on_surface(rec.geometry.to_numpy()),
                                          crs=rec.crs), gcj)
        keep = [c for c in rec.columns if c not in (rec.geometry.name, NEW_HOME_IDS)]
        covered = []
        # picks at one point (one site, several categories) share one marker that lists them
        # all: markers of their own would lie on top of each other, the lower one unseen
        at: dict[tuple, list] = {}
        for n, (p, (_, r)) in enumerate(zip(pts.geometry, rec.iterrows()), start=1):
            rank = int(r["rank"]) if "rank" in r and _fmt(r["rank"]) != "" else n
            rows = _homes_of(result, r.get(NEW_HOME_IDS))
            pop = float(result.homes[col.POPULATION].to_numpy(float)[rows].sum()) if rows is not None else None
            newly = "" if rows is None else (
                f"<p>{escape_html(w['new_homes_text'].format(n=len(rows), p=f'{pop:,.0f}'))}</p>")
            body = (f"<div class='lc-pop'><b>#{rank}</b>{newly}"
                    f"<table>{_rows_html(r, keep, lang, result.profile)}</table></div>")
            if p is not None and not p.is_empty:
                at.setdefault((round(p.y, MAP_DECIMALS), round(p.x, MAP_DECIMALS)), []).append((rank, body))
            if rows is not None:
                use = r.get("use")
                use = "、".join(_raw_label(result.profile, u.strip(), lang) for u in use.split(",") if u.strip()) \
                    if isinstance(use, str) else ""
                covered.append((rank, rows, pop, use))
        for (y, x), picks in at.items():
            ranks = "·".join(str(k) for k, _ in picks)
            if len(picks) == 1:
                icon, size, body = f"<div class='lc-rank'>{ranks}</div>", (22, 22), picks[0][1]
            else:
                width = 12 + 8 * len(ranks)
                icon = (f"<div class='lc-rank' style='width:{width}px;border-radius:11px'>{ranks}</div>")
                size = (width, 22)
                body = (f"<p><b>{escape_html(w['same_site'])}{ranks.replace('·', ', ')}</b></p>"
                        + "<hr>".join(b for _, b in picks))
            folium.Marker([y, x], icon=folium.DivIcon(html=icon, icon_size=size, icon_anchor=(size[0] // 2, 11)),
                          popup=folium.Popup(RawHTML(body), max_width=380)).add_to(layer)
        layer.add_to(m)
        nodata = list(dict.fromkeys(str(u) for u, st in zip(rec.get("use", rec.index), rec[col.CATEGORY_DATA])
                                    if st == col.STATUS_NO_DATA)) if col.CATEGORY_DATA in rec else []
        names = ("、" if lang == "zh" else ", ").join(
            result.profile.display_name(c, lang) if c in result.profile else c for c in nodata)
        caveat = f"<p>{escape_html(w['recs_no_data'].format(c=names))}</p>" if nodata else ""   # a guess: say so
        legend.add(layer, f"<h4>{escape_html(w['recs'])}</h4><div><span class='lc-sym' "
                          f"style='background:#7b3294'>1</span>{escape_html(w['rank'])}</div>{caveat}")
        add_covered_homes(m, result, covered, lang, gcj, legend)


PICK_PANE = "lc-picks"
#: colours of the homes each pick newly covers, by rank (repeating)
PICK_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999")


def _homes_of(result, ids):
    """Positions in ``result.homes`` of the ``home_id`` values in ``ids`` (space-separated
    text, as recommendations.csv keeps them); None when there is no such column (a table of
    an older version); ids not in this analysis are left out."""
    if ids is None or (isinstance(ids, float) and ids != ids):
        return None
    homes = result.homes
    want = np.array([int(x) for x in str(ids).split() if x.isascii() and x.isdigit()], dtype=np.int64)
    have = homes[col.HOME_ID].to_numpy(np.int64) if col.HOME_ID in homes else np.arange(len(homes))
    return np.flatnonzero(np.isin(have, want))


def add_covered_homes(m, result, covered, lang, gcj, legend) -> None:
    """One layer per pick (``covered``: ``(rank, home positions, residents, category name)``),
    named with its category (when known), homes and residents: the homes the pick newly covers in the pick's colour — or, when all
    picks together cover more than ``settings.map_max_points`` homes, hexagons of
    ``settings.map_hex_m`` (each feature keeps ``pick``, ``homes`` and ``residents``).

    They sit in a pane above the homes (drawn on a canvas) that takes no clicks, so a click
    there still opens the home's own popup."""
    w = _words(lang)
    homes = result.homes
    pop = homes[col.POPULATION].to_numpy(float)
    if covered:
        folium.map.CustomPane(PICK_PANE, z_index=450, pointer_events=False).add_to(m)
    as_hexagons = sum(len(c[1]) for c in covered) > result.settings.map_max_points
    for rank, rows, total, *use in covered:
        colour = PICK_COLOURS[(rank - 1) % len(PICK_COLOURS)]
        use = use[0] if use else ""
        name = (w["new_homes_layer_use"] if use else w["new_homes_layer"]).format(
            r=rank, u=use, n=len(rows), p=f"{total:,.0f}")
        layer = folium.FeatureGroup(name=escape_html(name), show=rank == 1)
        if len(rows):
            pts = gpd.GeoDataFrame({col.POPULATION: pop[rows]},
                                   geometry=shapely.point_on_surface(homes.geometry.to_numpy()[rows]),
                                   crs=homes.crs)
            style = {"color": "#222", "fillColor": colour, "fillOpacity": 0.9, "weight": 1}
            if as_hexagons:
                hx = hexagons(pts, result.settings.map_hex_m, col.POPULATION, col.POPULATION)
                g = gpd.GeoDataFrame({"pick": rank, "homes": hx["homes"].to_numpy(),
                                      "residents": hx[col.POPULATION].round(1).to_numpy()},
                                     geometry=hx.geometry.to_numpy(), crs=hx.crs)
                style["fillOpacity"] = 0.5
                folium.GeoJson(to_display(g, gcj).__geo_interface__, pane=PICK_PANE, interactive=False,
                               style_function=lambda f, st=style: st).add_to(layer)
            else:
                g = gpd.GeoDataFrame({"pick": rank, "residents": np.round(pop[rows], 1)},
                                     geometry=pts.geometry, crs=pts.crs)
                marker = folium.CircleMarker(radius=6, fill=True, weight=1)
                marker.options.update(pane=PICK_PANE, interactive=False)
                folium.GeoJson(to_display(g, gcj).__geo_interface__, marker=marker,
                               style_function=lambda f, st=style: st).add_to(layer)
        layer.add_to(m)
        legend.add(layer, _sw(colour, name))


#: columns of the site and recommendation tables shown other than as counts: coordinates to
#: 6 decimals (~0.1 m), shares (0–1) as percentages
_COORD_COLUMNS = frozenset({"lng", "lat", "lon", "lng_gcj02", "lat_gcj02"})
_SHARE_COLUMNS = frozenset({"share_of_gap", "cumulative_share"})


def _cell(column: str, value, lang, profile) -> str:
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        if column in _COORD_COLUMNS:
            return f"{value:.6f}"
        if column in _SHARE_COLUMNS:
            return f"{100 * value:.1f}"
    return _fmt(display_value(column, value, lang, profile))


def _rows_html(row, keys, lang, profile) -> str:
    """Table rows ``label | value`` of a site or recommendation, both escaped; empty values left out."""
    return "".join(f"<tr><td>{escape_html(_site_label(c, lang, profile))}</td>"
                   f"<td>{escape_html(_cell(c, row[c], lang, profile))}</td></tr>"
                   for c in keys if _fmt(row[c]) != "")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}".rstrip("0").rstrip(".")
    if isinstance(v, (bool, np.bool_)):
        return "✓" if v else "✗"
    return str(v)


def _site_label(key: str, lang: str, profile=None) -> str:
    """A column or value of the site table in ``lang`` (from i18n's ``res.`` words when known):
    ``pop15`` → residents within 15 minutes, ``gap_park`` → gap population: park."""
    w = _words(lang)
    key = str(key)
    mt = re.fullmatch(r"pop(\d+)", key)
    if mt:
        return f"{w['within']} {mt.group(1)} {w['minutes']}"
    if key.startswith("gap_") and len(key) > 4:
        cat = key[4:]
        return f"{w['gap_pop']}: {_raw_label(profile, cat, lang) if profile is not None else cat}"
    for section in ("res", "map"):
        k = f"{section}.{key}"
        if k in i18n.LABELS:
            return i18n.LABELS[k][0 if lang == "zh" else 1]
    return display_header(key, lang) or str(key)

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
        out.append("#{:02x}{:02x}{:02x}".format(*c))
    return out


# ------------------------------------------------------------------------------------------
# writing

# case-insensitive but for the "<" they start with: the regular expression engine then looks
# for that character alone (a few "<" in a city's 15 MB page) instead of trying each position
_SCRIPT_SRC = re.compile(r'<(?i:script\s+src="(?P<url>[^"]+)"\s*>\s*</script>)')
_LINK_HREF = re.compile(r'<(?i:link\s+rel="stylesheet"\s+href="(?P<url>[^"]+)"\s*/?>)')
_SPACES = re.compile(r"\s*")
_DOCTYPE = re.compile(r"\s*<!DOCTYPE[^>]*>\s*", re.I)     # as mark_html finds it
#: Characters of a page written at a time by :func:`save_map`.
_WRITE_CHARS = 1 << 20
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.I)


def _offline_assets() -> dict:
    try:
        from offlinefolium.elements import _res
    except ImportError as exc:  # pragma: no cover - dependency
        raise MapError("offline maps need the package 'folium-offline' (pip install "
                       "folium-offline), which ships Leaflet and its plugins",
                       zh="离线地图需要 'folium-offline' 包（pip install folium-offline），"
                          "其中带有 Leaflet 及其插件") from exc
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
                       "save without offline=True",
                       zh="folium-offline 中没有 " + ", ".join(missing) + " 的离线副本；请不带 offline=True 保存")
    return text


def save_map(m: folium.Map, path, offline: bool | None = None) -> Path:
    """Write the map as one HTML file, atomically. Offline by default (``offline=None`` takes
    the map's own wish, True unless it was made with ``offline=False``): every script and style
    is inlined, so the file opens with no network; online tiles are an optional layer."""
    path = Path(path)
    if offline is None:
        offline = bool(getattr(m, "_lifecircle_offline", True))
    text = m.get_root().render()
    pieces = _page_pieces(text, offline)
    if not path.parent.exists():
        raise MapError(f"{path}: folder {path.parent} does not exist", zh=f"{path}：文件夹 {path.parent} 不存在")
    if path.is_dir():
        raise MapError(f"{path}: is a folder; give a file name (e.g. {path / 'map.html'})",
                       zh=f"{path}：是文件夹；请给出文件名（如 {path / 'map.html'}）")
    return write_chunks_atomic(path, pieces)


def _page_pieces(text: str, offline: bool):
    """The page :func:`save_map` writes for the rendered ``text``, ``mark_html(inline_assets(text))``
    (without inlining unless ``offline``), as pieces to write one after the other: its head
    inlined and marked, then the rest of ``text`` in slices. A city's page (30 MB in memory
    once it holds a character beyond Latin-1) was copied whole four times to be written
    (inlined twice, marked, encoded)."""
    head, rest = _offline_head(text) if offline else (text, len(text))
    # marked as mark_html marks the whole page: where the head decides it, else the page whole
    doctype = _DOCTYPE.match(head)
    if rest < len(text) and (len(head) < 4096 or doctype is None or doctype.end() >= len(head)):
        head, rest = head + text[rest:], len(text)
    return itertools.chain((mark_html(head),),
                           (text[i:i + _WRITE_CHARS] for i in range(rest, len(text), _WRITE_CHARS)))


def _offline_head(text: str) -> tuple[str, int]:
    """``(head, k)``: :func:`inline_assets` of ``text`` is ``head + text[k:]``; ``head`` is short
    where the CDN links are near the top (folium puts them in the page's header), so the rest
    of the page (its data) is not copied by the inlining.

    ``k``: past the last match of either pattern in ``text`` (no match starts after it) and
    past where a stylesheet link that the inlining makes could end (links are replaced in the
    scripts' output): such a link begins before that last match's end and its address runs
    on past it (what comes before ends with ">", like the matches and what replaces them, and
    a link's beginning up to its address does not), so it ends at the first quotation mark
    after it, then spaces and "/>"."""
    k = max((mt.end() for p in (_SCRIPT_SRC, _LINK_HREF) for mt in p.finditer(text)), default=0)
    k = text.find('"', k) + 1
    if not k:
        return inline_assets(text), len(text)
    k = min(_SPACES.match(text, k).end() + 2, len(text))
    return inline_assets(text[:k]), k


def links_map(lr, lang: str = "en", basemap: str = "osm", top: int = 50) -> folium.Map:
    """A map of ranked candidate links (:class:`lifecircle.links.LinksResult`), made like the
    planning map (:func:`base_map`: a title with the area and data date, the attribution, the
    background drawn from the data, controls and a legend in ``lang``): the ``top`` links
    numbered by rank (the greedy picks drawn thicker), the homes each brings a category within
    reach of (one layer per link, the best shown), and the other candidates faint.
    Names are escaped: they are text from the data."""
    lang = i18n.check_lang(lang)
    zh = lang == "zh"
    w = _words(lang)
    res = lr.result
    gcj = _tiles(basemap, res.attribution)[3]
    t = lr.table
    t = t[t.geometry.notna() & ~t.geometry.is_empty]
    ranked = localized(t[t["rank"].notna()].sort_values("rank"), lang)
    ref = ranked if len(ranked) else (t if len(t) else res.homes)
    bounds = to_display(gpd.GeoDataFrame(geometry=_frame_points(ref.total_bounds), crs=ref.crs), gcj).total_bounds
    m, gcj = base_map(bounds, lang=lang, basemap=basemap, attribution=res.attribution,
                      title=f"{area_name(res)} — {w['links_title']}",
                      subtitle=_subtitle(lang, res.data_date, res.attribution, res))
    legend = Legend()
    # the background drawn from the data (buildings, water, green, streets), so the map reads
    # offline without tiles
    add_background(m, res, lang, gcj, legend)
    chosen = set(lr.chosen["rank"].astype(int).tolist()) if len(lr.chosen) else set()
    rest = t[~t.index.isin(ranked.index[:top])]
    if len(rest):
        lay = folium.FeatureGroup(name=escape_html(w["link_other"]), show=False)
        folium.GeoJson(to_display(rest[["geometry"]], gcj).__geo_interface__,
                       style_function=lambda f: {"color": "#888", "weight": 1.5, "opacity": 0.6}
                       ).add_to(lay)
        lay.add_to(m)
        legend.add(lay, _sw("#888", w["link_other"], line=True))
    if len(ranked):
        rank_icon = ('<span class="lc-sym" style="background:#fff;color:#000;border:2px solid #333;'
                     'font-weight:bold">1</span>')
        legend.add(None, f"<h4>{escape_html(w['links_title'])}</h4>"
                         + (_sw("#d7191c", w["link_chosen"], line=True) if chosen else "")
                         + _sw("#3182bd", w["link_ranked"], line=True)
                         + f"<div>{rank_icon}{escape_html(w['rank'])}</div>"
                         + f"<div><span class='lc-sym' style='background:#e6550d;border-color:#e6550d'></span>"
                           f"{escape_html(w['link_gained'])}</div>")
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
                homes.geometry.to_numpy()[gained]), crs=homes.crs), gcj)
            fc = _points_geojson(pts, {})
            folium.GeoJson(fc, marker=folium.CircleMarker(radius=3, weight=0, fill=True,
                                                          fill_color="#e6550d", fill_opacity=0.8)
                           ).add_to(lay)
        line = to_display(gpd.GeoDataFrame(geometry=[row.geometry], crs=t.crs), gcj).geometry.iloc[0]
        xy = shapely.get_coordinates(line)
        if len(xy) >= 2 and shapely.length(line) > 0:
            folium.PolyLine([[y, x] for x, y in xy], color="#d7191c" if r in chosen else "#3182bd",
                            weight=6 if r in chosen else 4, tooltip=folium.Tooltip(label)).add_to(lay)
            mid = shapely.line_interpolate_point(line, 0.5, normalized=True)
        else:   # a gate to reopen: a link of length 0, drawn as its point
            mid = to_display(gpd.GeoDataFrame(geometry=[shapely.get_point(row.geometry, 0)],
                                              crs=t.crs), gcj).geometry.iloc[0]
            folium.CircleMarker([mid.y, mid.x], radius=9, color="#d7191c" if r in chosen else "#3182bd",
                                weight=4, fill=False, tooltip=folium.Tooltip(label)).add_to(lay)
        folium.Marker([mid.y, mid.x], icon=folium.DivIcon(
            html=f'<div style="background:#fff;border:2px solid #333;border-radius:50%;width:22px;'
                 f'height:22px;line-height:18px;text-align:center;font:bold 11px sans-serif">{r}</div>',
            icon_size=(22, 22), icon_anchor=(11, 11))).add_to(lay)
        lay.add_to(m)
    map_controls(m, lang, layers_collapsed=True)
    legend.add_to(m)
    return m


def compliance_layer(report, result, lang: str | None = None, size_m: float | None = None):
    """A folium FeatureGroup: hexagons of the population-weighted mean number of required
    facilities that homes lack (not within their threshold); green 0, red all that are counted
    (the required types with data: types without data are never counted, and the legend
    says how many there are of each). Homes not reachable from any street are left out, as in
    the shares."""
    lang = i18n.check_lang(lang or report.lang)
    if len(report.home_times) != len(result.homes):
        raise LifecircleError("compliance_layer: the report was made from another result "
                              f"({len(report.home_times)} homes, this result has {len(result.homes)})",
                              zh=f"compliance_layer：该核查报告来自另一个分析结果（{len(report.home_times)} "
                                 f"个住宅，本结果有 {len(result.homes)} 个）")
    n_req, n_nodata = counted_required(report)
    pts = gpd.GeoDataFrame({"missing": missing_required(report).astype(float),
                            col.POPULATION: report.home_times[col.POPULATION].to_numpy(float)},
                           geometry=result.homes.geometry.to_numpy(), crs=result.homes.crs)
    pts = pts[report.home_times[col.REACHABLE].to_numpy(bool)]
    group = folium.FeatureGroup(name=std_label("map_layer", lang))
    if len(pts) == 0:
        return group
    hexes = hexagons(pts, size_m or result.settings.map_hex_m, "missing", col.POPULATION).to_crs(WGS84)
    hexes["missing"] = hexes["missing"].round(1)
    hexes[col.POPULATION] = hexes[col.POPULATION].round(0)
    caption = std_label("map_missing_of_nd", lang, n=n_req, m=n_nodata) if n_nodata else \
        std_label("map_missing_of", lang, n=n_req)
    cmap = cm.LinearColormap(["#1a9641", "#ffffbf", "#d7191c"], vmin=0, vmax=max(1, n_req),
                             caption=caption)
    folium.GeoJson(
        hexes.__geo_interface__,
        style_function=lambda f: {
            "fillColor": cmap(f["properties"]["missing"]) if f["properties"]["missing"] is not None else "#999999",
            "color": "#555", "weight": 0.3, "fillOpacity": 0.6},
        tooltip=folium.GeoJsonTooltip(["missing", col.POPULATION, "homes"],
                                      aliases=[std_label("map_missing", lang), std_label("population", lang),
                                               std_label("map_homes", lang)]),
    ).add_to(group)
    group.colormap = cmap
    return group


def compliance_map(report, result, lang: str | None = None, basemap: str = "osm"):
    """The standards check as a map that opens offline: the data background, hexagons of the
    mean number of required facilities homes lack (``compliance_layer``), community outlines,
    a title with the standard, area and data date, and a legend."""
    lang = lang or report.lang
    w = _words(lang)
    ref = result.homes if len(result.homes) else result.facilities
    bounds = to_display(gpd.GeoDataFrame(geometry=_frame_points(ref.total_bounds), crs=ref.crs),
                        _tiles(basemap, result.attribution)[3]).total_bounds
    m, gcj = base_map(bounds, lang=lang, basemap=basemap, attribution=result.attribution,
                      title=f"{area_name(result)} — {report.title(lang)}",
                      subtitle=_subtitle(lang, result.data_date, result.attribution, result))
    legend = Legend()
    add_background(m, result, lang, gcj, legend)
    layer = compliance_layer(report, result, lang)
    layer.add_to(m)
    cmap = getattr(layer, "colormap", None)
    if cmap is not None:
        colours = [c if isinstance(c, str) else "#" + "".join(f"{int(255 * v):02x}" for v in c[:3])
                   for c in cmap.colors]
        legend.add(layer, _ramp_html(cmap.caption, colours, lo=f"{cmap.vmin:g}",
                                     mid=f"{(cmap.vmin + cmap.vmax) / 2:g}", hi=f"{cmap.vmax:g}"))
    if result.communities is not None and len(result.communities):
        cl = folium.FeatureGroup(name=escape_html(w["communities"]))
        comm = to_display(result.communities, gcj, MAP_SIMPLIFY_M)
        GeoJsonLayer(geojson_text(comm.geometry.to_numpy()),
                     {"fill": False, "color": "#000", "weight": 2}).add_to(cl)
        cl.add_to(m)
        legend.add(cl, _sw("transparent", w["communities"], "#000"))
    map_controls(m, lang)
    legend.add_to(m)
    return m
