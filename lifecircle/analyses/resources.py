"""The in-situ resource list (在地资源清单): idle sites, the walking gaps they could close.

Community renewal works from an inventory of small idle spaces — vacant lots, low-efficiency
land, disused buildings, surface parking, the "golden corners and silver edges" (金角银边) left
over inside blocks. :func:`build_inventory` gathers them from three sources:

* ``osm`` — tagged features: ``landuse=brownfield|greenfield|vacant|construction``,
  ``disused=yes`` and ``disused:*``/``abandoned:*`` keys, ``building=ruins|abandoned``,
  ``vacant=yes``, surface parking, ``landuse=grass`` outside parks;
* ``derived`` — the 金角银边 from geometry: street blocks (``shapely.polygonize`` of the
  projected street edges) minus buffered roads, buildings, land use and leisure areas; what is
  left between ``corner_min_m2`` and ``corner_max_m2`` after an opening (negative-then-positive
  buffer) of ``corner_min_width_m``;
* ``user`` — surveyed sites from a CSV/XLSX/GeoJSON/GeoPackage/Shapefile (:func:`read_sites`).

Each site is then placed on the walking network and measured against the analysis: residents
within 5/10/15 minutes' walk *to* the site, and per category the residents who lack that
category within its threshold today but would reach a facility at the site within it
(``gap_<category>``: the population the site could serve; NaN for a category with no
facility in the data, whose gap is unknown — such categories are never a best use). Suitability rules in
``data/site_uses.yaml`` say which categories a site can host (``uses``); ``best_uses`` are the
suitable ones ranked by gap population.

Column names of the inventory are made here (:func:`gap` and the constants below), not in
:mod:`lifecircle.columns`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle.core.coverage import reachable
from lifecircle.core.snapping import Snap, snap_facilities
from lifecircle.errors import InputFileError, OptionError, OutputError, TableError
from lifecircle.i18n import attribution_text, label, no_data_hint, status_label
from lifecircle.io.chinacoords import datum_zh, normalize_crs, out_of_china, to_wgs84, wgs84_to_gcj02
from lifecircle.io.outputs import _read_split, _write_split, atomic_dir, recorded_source, write_field_aliases
from lifecircle.io.poitable import _read_frame
from lifecircle.io.sources import WGS84, OSMData, read_osm, write_about_layer
from lifecircle.settings import data_path
from lifecircle.untrusted import csv_safe, xlsx_frame, xlsx_safe, xlsx_value

# --------------------------------------------------------------------------------------------
# column names of the inventory

SITE_ID = "site_id"
SOURCE = "source"
TYPE = "type"
NAME = "name"
AREA = "area_m2"
OWNERSHIP = "ownership"
STATUS = "status"
OSM_ID = "osm_id"
USES = "uses"
BEST_USES = "best_uses"
SOURCES = ("osm", "derived", "user")
OWNERSHIPS = ("state", "collective", "private", "unknown")


def gap(category: str) -> str:
    """Residents lacking ``category`` within its threshold who would reach it at the site."""
    return f"gap_{category}"


def residents_within(minutes: int | float) -> str:
    """Residents within ``minutes`` walking to the site."""
    return f"pop{int(minutes)}"


# --------------------------------------------------------------------------------------------
# rules


@dataclass(frozen=True)
class SiteRules:
    types: dict            # type -> {"form", "name_zh", "name_en"}
    aliases: dict          # normalised spelling -> type
    uses: dict             # category -> {"forms": set, "min_area_m2": float, "ground_floor": bool}
    path: str = ""

    def form(self, site_type: str) -> str:
        return self.types.get(site_type, self.types.get("other", {"form": "buildable"}))["form"]

    def type_of(self, raw) -> str | None:
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        key = _norm(raw)
        if key in self.types:
            return key
        return self.aliases.get(key)

    def suitable(self, site_type: str, area_m2: float, categories) -> list[str]:
        form = self.form(site_type)
        out = []
        for c in categories:
            rule = self.uses.get(c)
            if rule is None or form not in rule["forms"]:
                continue
            if np.isfinite(area_m2):
                if area_m2 < rule["min_area_m2"]:
                    continue
            elif form != "building":  # land of unknown size (a point): no use can be vouched for
                continue
            out.append(c)
        return out

    def display(self, site_type: str, lang: str) -> str:
        t = self.types.get(site_type)
        return (t.get(f"name_{lang}") or site_type) if t else site_type


def _norm(value) -> str:
    s = unicodedata.normalize("NFKC", str(value)).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s\-.()（）]+", "_", s).strip("_")


@lru_cache(maxsize=4)
def load_site_rules(path: str | None = None) -> SiteRules:
    """Site types and use rules from ``data/site_uses.yaml`` (or ``path``)."""
    import yaml

    p = Path(path) if path else data_path("site_uses.yaml")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(p, f"cannot read site rules ({exc})", zh=f"无法读取用地规则（{exc}）") from None
    except yaml.YAMLError as exc:
        raise InputFileError(p, f"not valid YAML ({exc})", zh=f"不是有效的 YAML（{exc}）") from None
    try:
        types = {str(k): dict(v) for k, v in doc["site_types"].items()}
        uses = {}
        for cat, rule in doc["uses"].items():
            forms = set(rule["forms"])
            bad = forms - {"building", "buildable", "open"}
            if bad:
                raise ValueError(f"use {cat}: unknown form(s) {sorted(bad)}")
            uses[str(cat)] = {"forms": forms, "min_area_m2": float(rule.get("min_area_m2", 0)),
                              "ground_floor": bool(rule.get("ground_floor", False))}
        for t, v in types.items():
            if v.get("form") not in ("building", "buildable", "open"):
                raise ValueError(f"site type {t}: form must be building, buildable or open")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputFileError(p, f"malformed site rules: {exc}", zh=f"用地规则格式错误：{exc}") from None
    aliases = {_norm(k): str(v) for k, v in (doc.get("type_aliases") or {}).items()}
    for t, v in types.items():
        for lang in ("name_zh", "name_en"):
            if v.get(lang):
                aliases.setdefault(_norm(v[lang]), t)
    return SiteRules(types, aliases, uses, str(p))


# --------------------------------------------------------------------------------------------
# OSM idle sites

_OPEN_LANDUSE = {"brownfield": "brownfield", "greenfield": "greenfield", "vacant": "vacant_lot",
                 "vacant_lot": "vacant_lot", "plot": "vacant_lot", "construction": "construction"}
_PARKS = {"park", "garden", "playground", "pitch", "nature_reserve", "golf_course", "dog_park",
          "recreation_ground", "common"}


def osm_site_type(tags: dict) -> str | None:
    """The idle-site type of one OSM feature's tags, or None (first rule that matches)."""
    lu = tags.get("landuse")
    if lu in _OPEN_LANDUSE:
        return _OPEN_LANDUSE[lu]
    b = tags.get("building")
    if b in ("ruins", "abandoned"):
        return "disused_building"
    disused = tags.get("disused") == "yes" or tags.get("abandoned") == "yes" or any(
        k.startswith(("disused:", "abandoned:")) for k in tags)
    if disused or tags.get("vacant") == "yes":
        if b and b != "no":
            return "disused_building"
        if disused:
            return "disused_site"
        return "vacant_lot"
    if tags.get("amenity") == "parking" and tags.get("parking", "surface") == "surface":
        return "surface_parking"
    if lu == "grass":
        return "unused_grass"
    return None


def _ownership(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    key = _norm(value)
    table = {
        "state": "state", "国有": "state", "national": "state", "public": "state",
        "government": "state", "municipal": "state", "国有土地": "state", "政府": "state",
        "公有": "state", "collective": "collective", "集体": "collective", "集体所有": "collective",
        "private": "private", "私有": "private", "私人": "private", "个人": "private",
        "unknown": "unknown", "未知": "unknown", "不详": "unknown", "": "unknown",
    }
    return table.get(key, "")


#: a site's status as written in a survey or by OSM (normalised by :func:`_norm`) → the status
#: the tables and maps use (the keys of ``_VALUES_ZH[STATUS]``)
_STATUS_WORDS = {
    "idle": "idle", "闲置": "idle", "空闲": "idle", "闲置中": "idle", "unused": "idle",
    "vacant": "vacant", "空置": "vacant",
    "disused": "disused", "停用": "disused", "废弃": "disused",
    "in_use": "in use", "use": "in use", "used": "in use", "使用中": "in use", "在用": "in use",
    "正在使用": "in use",
    "left_over": "left-over", "leftover": "left-over", "边角空间": "left-over", "边角": "left-over",
    "边角地": "left-over",
    "construction": "construction", "under_construction": "construction", "在建": "construction",
    "施工": "construction", "施工中": "construction",
    "ruins": "ruins", "废墟": "ruins",
}


def canonical_status(value) -> str:
    """A site's status as the tables and maps use it: the same status written in Chinese or
    English (闲置, idle, "In use", 使用中 …) is one value; a status lifecircle does not know
    (低效) is kept as written, trimmed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _STATUS_WORDS.get(_norm(value), " ".join(str(value).split()))


def _osm_ownership(tags: dict) -> str:
    for key in ("ownership", "operator:type"):
        v = tags.get(key)
        if v:
            o = _ownership(v)
            if o:
                return o
    return "unknown"


def _osm_status(tags: dict, site_type: str) -> str:
    if tags.get("landuse") == "construction" or "construction" in tags:
        return "construction"
    if tags.get("building") in ("ruins",):
        return "ruins"
    if tags.get("vacant") == "yes" or tags.get("landuse") in ("vacant", "brownfield", "greenfield"):
        return "vacant"
    if site_type in ("disused_building", "disused_site"):
        return "disused"
    return "in use" if site_type == "surface_parking" else "idle"


def osm_sites(features: gpd.GeoDataFrame, crs, area=None) -> gpd.GeoDataFrame:
    """Idle sites among the raw OSM ``features`` (WGS-84), projected to ``crs``.

    ``area`` (a polygon in ``crs``) keeps only sites that intersect it. Grass inside parks,
    gardens and pitches is not idle and is left out.
    """
    tags = features["tags"].tolist()
    types = np.array([osm_site_type(t) for t in tags], dtype=object)
    hit = np.flatnonzero(types != None)  # noqa: E711
    sub = features.iloc[hit]
    geom = gpd.GeoSeries(sub.geometry.to_numpy(), crs=features.crs).to_crs(crs).to_numpy()
    types = types[hit]
    sub_tags = [tags[i] for i in hit]
    keep = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    if area is not None:
        keep &= shapely.intersects(geom, area)
    grass = np.flatnonzero((types == "unused_grass") & keep)
    if len(grass):
        park_rows = [i for i, t in enumerate(tags) if t.get("leisure") in _PARKS
                     or t.get("landuse") in ("recreation_ground", "cemetery", "village_green")]
        if park_rows:
            parks = gpd.GeoSeries(features.geometry.iloc[park_rows].to_numpy(),
                                  crs=features.crs).to_crs(crs).to_numpy()
            parks = parks[shapely.get_type_id(parks) >= 3]
            tree = shapely.STRtree(parks)
            pts = shapely.point_on_surface(geom[grass])
            inside, _ = tree.query(pts, predicate="within")
            keep[grass[np.unique(inside)]] = False
    idx = np.flatnonzero(keep)
    g = geom[idx]
    polys = shapely.get_type_id(g) >= 3
    area_m2 = np.where(polys, shapely.area(g), np.nan)
    t = types[idx]
    kept_tags = [sub_tags[i] for i in idx]
    out = gpd.GeoDataFrame({
        SOURCE: "osm",
        TYPE: t.astype(str),
        NAME: [x.get("name:zh") or x.get("name") or "" for x in kept_tags],
        AREA: area_m2,
        OWNERSHIP: [_osm_ownership(x) for x in kept_tags],
        STATUS: [_osm_status(x, ty) for x, ty in zip(kept_tags, t)],
        OSM_ID: [f"{ot}/{oid}" for ot, oid in zip(sub["osm_type"].to_numpy()[idx],
                                                   sub["osm_id"].to_numpy()[idx])],
    }, geometry=g, crs=crs)
    return out


# --------------------------------------------------------------------------------------------
# 金角银边: left-over open space in street blocks

#: Half the carriageway plus pavement width assumed per highway class (metres from centreline).
ROAD_HALF_WIDTH_M = {
    "trunk": 12.0, "trunk_link": 6.0, "primary": 10.0, "primary_link": 5.0, "secondary": 8.0,
    "secondary_link": 4.0, "tertiary": 6.5, "tertiary_link": 4.0, "unclassified": 5.0,
    "residential": 5.0, "living_street": 4.0, "road": 5.0, "busway": 5.0, "service": 3.0,
    "pedestrian": 3.0, "track": 2.0, "footway": 1.0, "path": 1.0, "steps": 1.0, "cycleway": 1.5,
    "bridleway": 1.0, "corridor": 1.0, "crossing": 1.0, "sidewalk": 1.0,
}
_DEFAULT_HALF_WIDTH = 3.0
_COVER_KEYS = ("building", "landuse", "leisure", "amenity", "natural", "man_made", "place",
               "highway", "tourism", "aeroway", "railway", "power", "shop", "office")


def _robust_difference(a, b, grid_m: float = 0.01):
    """``a - b`` element-wise; where GEOS hits a topology error on real OSM geometry, that pair
    is redone on a 1 cm precision grid (snap rounding is robust), the rest stay exact."""
    try:
        return shapely.difference(a, b)
    except shapely.errors.GEOSException:
        out = np.empty(len(a), dtype=object)
        for i in range(len(a)):
            try:
                out[i] = shapely.difference(a[i], b[i])
            except shapely.errors.GEOSException:
                # make_valid may leave lines beside the polygons: buffer(0) keeps the areas
                pa = shapely.buffer(shapely.make_valid(a[i]), 0)
                pb = shapely.buffer(shapely.make_valid(b[i]), 0)
                out[i] = shapely.difference(pa, pb, grid_size=grid_m)
        return out


def corner_sites(net, features: gpd.GeoDataFrame, crs, min_m2: float = 30.0,
                 max_m2: float = 2000.0, min_width_m: float = 4.0, area=None,
                 features_proj=None) -> gpd.GeoDataFrame:
    """The 金角银边: open space inside street blocks that no road, building, land use or leisure
    area covers, between ``min_m2`` and ``max_m2`` after removing slivers narrower than
    ``min_width_m`` (an opening: buffer by -w/2 then +w/2).

    Blocks come from ``shapely.polygonize`` over the projected street edges; only blocks that
    hold at least one mapped building or area count (an unmapped block is not "left over").
    """
    geoms = net.edge_geom
    blocks = shapely.get_parts(shapely.polygonize(geoms))
    if len(blocks) == 0:
        return _empty_sites(crs)
    if area is not None:
        blocks = blocks[shapely.intersects(blocks, area)]
    # roads: each edge buffered by its class width
    hw = net.edge_highway if net.edge_highway is not None else np.full(len(geoms), "")
    half = np.array([ROAD_HALF_WIDTH_M.get(str(h), _DEFAULT_HALF_WIDTH) for h in hw])
    roads = shapely.buffer(geoms, half, quad_segs=2, cap_style="flat")
    # covering areas: polygonal features with any land-cover key
    if features_proj is None:
        features_proj = _project_polygons(features, crs)
    cover = np.concatenate([roads, features_proj])
    tree = shapely.STRtree(cover)
    # blocks lying inside one covering area (a residential land use, a park) have no left-over
    inside, _ = tree.query(blocks, predicate="within")
    free = np.ones(len(blocks), dtype=bool)
    free[inside] = False
    free &= shapely.area(blocks) >= min_m2
    bi, ci = tree.query(blocks, predicate="intersects")
    mapped = np.zeros(len(blocks), dtype=bool)
    mapped[bi[ci >= len(roads)]] = True
    sel = np.flatnonzero(free & mapped)
    if len(sel) == 0:
        return _empty_sites(crs)
    m = free[bi] & mapped[bi]
    bi, ci = bi[m], ci[m]
    pos = np.searchsorted(sel, bi)
    n = len(sel)
    # roads: the block's edges merged per width class and buffered once per class (a union of
    # thousands of overlapping segment buffers is what makes this slow otherwise)
    road = ci < len(roads)
    widths, wclass = np.unique(half, return_inverse=True)
    key = pos[road] * len(widths) + wclass[ci[road]]
    ukey, kidx = np.unique(key, return_inverse=True)
    order = np.argsort(kidx, kind="stable")
    lines = shapely.line_merge(shapely.multilinestrings(geoms[ci[road]][order], indices=kidx[order]))
    road_bufs = shapely.buffer(lines, widths[ukey % len(widths)], quad_segs=2)
    parts_g = np.concatenate([road_bufs, cover[ci[~road]]])
    parts_i = np.concatenate([ukey // len(widths), pos[~road]])
    unions = _group_union(parts_g, parts_i, n)
    rest = shapely.get_parts(_robust_difference(blocks[sel], unions))
    rest = rest[shapely.get_type_id(rest) == 3]
    a = shapely.area(rest)
    # a large open piece is open land, not a left-over corner (idle land is tagged in OSM)
    rest = rest[(a >= min_m2) & (a <= 10.0 * max_m2)]
    shrink = min_width_m / 2.0
    if shrink > 0 and len(rest):
        opened = shapely.buffer(shapely.buffer(rest, -shrink, quad_segs=2), shrink, quad_segs=2)
        opened = shapely.intersection(opened, rest)
        rest = shapely.get_parts(opened)
        rest = rest[shapely.get_type_id(rest) == 3]
    out_geoms = rest
    g = np.array(out_geoms, dtype=object)
    if len(g):
        a = shapely.area(g)
        g = g[(a >= min_m2) & (a <= max_m2)]
    if len(g) == 0:
        return _empty_sites(crs)
    return gpd.GeoDataFrame({SOURCE: "derived", TYPE: "corner", NAME: "", AREA: shapely.area(g),
                             OWNERSHIP: "unknown", STATUS: "left-over", OSM_ID: ""},
                            geometry=g, crs=crs)


_EMPTY = shapely.from_wkt("POLYGON EMPTY")


def _group_union(geoms: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """``out[j]`` = union of ``geoms[index == j]`` for j < n (empty where none), in one
    vectorised GEOS call over geometry collections."""
    g = np.concatenate([np.asarray(geoms, dtype=object), np.full(n, _EMPTY, dtype=object)])
    i = np.concatenate([np.asarray(index, dtype=np.int64), np.arange(n)])
    order = np.argsort(i, kind="stable")
    coll = shapely.geometrycollections(g[order], indices=i[order])
    try:
        from shapely import lib

        return lib.unary_union(coll)
    except (ImportError, AttributeError):  # pragma: no cover - other shapely layouts
        return np.array([shapely.union_all(shapely.get_parts(c)) for c in coll], dtype=object)


def _project_polygons(features: gpd.GeoDataFrame, crs) -> np.ndarray:
    geom = features.geometry.to_numpy()
    poly = shapely.get_type_id(geom) >= 3
    poly &= np.array([any(k in t for k in _COVER_KEYS) for t in features["tags"]], dtype=bool)
    g = gpd.GeoSeries(geom[poly], crs=features.crs).to_crs(crs).to_numpy()
    g = g[shapely.get_type_id(g) >= 3]
    return np.asarray(shapely.make_valid(g), dtype=object)


def _empty_sites(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({SOURCE: [], TYPE: [], NAME: [], AREA: [], OWNERSHIP: [], STATUS: [],
                             OSM_ID: []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


# --------------------------------------------------------------------------------------------
# user site files

SITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "site_id", "siteid", "编号", "序号", "点位编号"),
    "name": ("name", "名称", "地块名称", "site_name", "sitename"),
    "type": ("type", "site_type", "sitetype", "类型", "资源类型", "用地类型"),
    "area": ("area", "area_m2", "aream2", "面积", "面积m2", "面积㎡", "面积(m2)", "面积_m2"),
    "ownership": ("ownership", "owner", "权属", "产权", "所有权"),
    "status": ("status", "状态", "现状", "使用状态"),
    "lon": ("lng", "lon", "long", "longitude", "经度", "x"),
    "lat": ("lat", "latitude", "纬度", "y"),
    "wkt": ("wkt", "geometry", "geom", "the_geom", "几何"),
    "crs": ("crs", "坐标系", "datum"),
    "floor": ("floor", "楼层", "level"),
}
_VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}


def _norm_header(h) -> str:
    s = unicodedata.normalize("NFKC", str(h)).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s_\-.()（）]+", "", s)


def _site_columns(columns) -> tuple[dict, list]:
    found, unknown = {}, []
    aliases = {role: {_norm_header(a) for a in al} for role, al in SITE_COLUMNS.items()}
    for c in columns:
        if c == "geometry":
            continue
        n = _norm_header(c)
        role = next((r for r, al in aliases.items() if n in al and r not in found), None)
        if role is None:
            unknown.append(str(c))
        else:
            found[role] = c
    return found, unknown


# one pass over a user's table: every column role and row check in the order a planner reads them
def read_sites(path, crs: str = "wgs84", area=None, area_crs=None,  # noqa: C901
               rules: SiteRules | None = None, lang: str = "en", outside_ok: bool = False) -> gpd.GeoDataFrame:
    """Surveyed sites from a CSV/XLSX (``lng``/``lat`` or a ``wkt`` column), GeoJSON,
    GeoPackage or Shapefile, in WGS-84.

    Columns (English or Chinese headers): id, name, type, area (m²), ownership
    (state/collective/private/unknown or 国有/集体/私有), status (read as lifecircle's own where it
    is one: :func:`canonical_status`), and per-row ``crs``.
    ``crs`` (wgs84/gcj02/bd09) is the datum of the coordinates; vector files with their own CRS
    are reprojected first and then converted from ``crs``. Rows with bad coordinates, an
    unknown datum or outside ``area`` (a polygon in ``area_crs``) are dropped; the reasons are
    in ``attrs["dropped"]`` (``[{"row": n, "reason": ...}]``) and ``attrs["notes"]``. Raises
    :class:`TableError` when no row is usable — unless ``outside_ok`` and some rows were dropped
    only for lying outside ``area`` (a survey file shared by several districts): then no site,
    and the note says why.
    """
    path = Path(path)
    rules = rules or load_site_rules()
    if not path.exists():
        raise InputFileError(path, "file not found", zh="找不到文件")
    try:
        default_crs = normalize_crs(crs)
    except ValueError as exc:
        raise TableError(path, str(exc),
                         zh=datum_zh(crs)) from None
    suffix = path.suffix.lower()
    geom = None
    if suffix in _VECTOR_SUFFIXES:
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:
            raise InputFileError(path, f"cannot read as a vector file ({type(exc).__name__}: {exc})",
                                 zh=f"无法作为矢量文件读取（{type(exc).__name__}: {exc}）") from None
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
            gdf = gdf.to_crs(WGS84)
        geom = gdf.geometry.to_numpy()
    elif suffix in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):

        frame = _read_frame(path)
    else:
        raise InputFileError(path, f"unknown site file kind '{suffix}': use .csv, .xlsx, .geojson, "
                                   ".gpkg or .shp",
                             zh=f"未知的用地文件类型 '{suffix}'：请用 .csv、.xlsx、.geojson、.gpkg 或 .shp")
    frame.columns = [str(c) for c in frame.columns]
    roles, unknown = _site_columns(frame.columns)
    notes: list[str] = []
    has_xy = "lon" in roles and "lat" in roles
    if geom is None and not has_xy and "wkt" not in roles:
        raise TableError(path, "no coordinate columns: expected lng/lat (经度/纬度) or a wkt column; "
                         f"columns found: {', '.join(frame.columns) or '(none)'}"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                         zh="没有坐标列：应有 lng/lat（经度/纬度）或 wkt 列；文件中的列："
                            f"{', '.join(frame.columns) or '（无）'}"
                            + (f"；无法识别：{', '.join(unknown)}" if unknown else ""))
    if unknown:
        notes.append(label("site.unknown_columns", lang, f=path.name, c=", ".join(unknown),
                           k=", ".join(SITE_COLUMNS)))
    n = len(frame)
    if n == 0:
        raise TableError(path, "has a header but no data rows (no sites)", zh="只有表头，没有数据行（没有用地）")
    notes.extend(frame.attrs.get("notes_zh" if lang == "zh" else "notes", []))
    dropped: list[dict] = []
    bad = np.zeros(n, dtype=bool)

    def drop(i, reason, zh, outside=False):
        if not bad[i]:
            bad[i] = True
            dropped.append({"row": int(i) + (2 if geom is None else 1), "reason": reason, "reason_zh": zh,
                            "outside": outside})

    # geometry, per row
    g = np.empty(n, dtype=object)
    if geom is not None:
        g[:] = geom
        for i in range(n):
            if g[i] is None or shapely.is_empty(g[i]):
                drop(i, "no geometry", zh="没有几何图形")
    elif has_xy:
        lon = pd.to_numeric(frame[roles["lon"]].astype(str).str.strip(), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame[roles["lat"]].astype(str).str.strip(), errors="coerce").to_numpy(float)
        for i in range(n):
            if not (np.isfinite(lon[i]) and np.isfinite(lat[i])):
                raw = (frame[roles["lon"]].iloc[i], frame[roles["lat"]].iloc[i])
                drop(i, f"bad coordinates {raw[0]!r}, {raw[1]!r} (not numbers)",
                     zh=f"坐标 {raw[0]!r}, {raw[1]!r} 无效（不是数字）")
            elif not (-180 <= lon[i] <= 180 and -90 <= lat[i] <= 90):
                drop(i, f"bad coordinates {lon[i]}, {lat[i]} (out of range; lng first, then lat)",
                     zh=f"坐标 {lon[i]}, {lat[i]} 无效（超出范围；先经度后纬度）")
            else:
                g[i] = shapely.Point(lon[i], lat[i])
    else:
        for i, text in enumerate(frame[roles["wkt"]].astype(str)):
            try:
                g[i] = shapely.from_wkt(text)
                if g[i] is None or g[i].is_empty:
                    raise ValueError
                b = g[i].bounds
                if not (-180 <= b[0] <= b[2] <= 180 and -90 <= b[1] <= b[3] <= 90):
                    drop(i, "bad coordinates in the WKT (out of lng/lat range)", zh="WKT 中的坐标无效（超出经纬度范围）")
            except Exception:
                drop(i, f"bad WKT geometry {text[:40]!r}", zh=f"WKT 几何图形无效 {text[:40]!r}")
    # datum, per row
    datum = np.full(n, default_crs, dtype=object)
    if "crs" in roles:
        for i, v in enumerate(frame[roles["crs"]].astype(str)):
            if not v.strip():
                continue
            try:
                datum[i] = normalize_crs(v)
            except ValueError:
                drop(i, f"unknown coordinate system {v!r} (use wgs84, gcj02 or bd09)",
                     zh=f"未知的坐标系 {v!r}（请用 wgs84、gcj02 或 bd09）")
    for d in ("gcj02", "bd09"):
        sel = np.flatnonzero((datum == d) & ~bad)
        if len(sel):
            outside = _outside_china(g[sel])
            if outside:
                notes.append(label("site.outside_china", lang, f=path.name, o=outside, n=len(sel), d=d))
            g[sel] = shapely.transform(g[sel], lambda xy, d=d: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], d)))
    # type, area, ownership
    types = np.full(n, "other", dtype=object)
    if "type" in roles:
        unk = set()
        for i, v in enumerate(frame[roles["type"]]):
            t = rules.type_of(v) if str(v).strip() else None
            if t is None:
                if str(v).strip():
                    unk.add(str(v))
                t = "other"
            types[i] = t
        if unk:
            notes.append(label("site.unknown_types", lang, f=path.name, t=", ".join(sorted(unk)),
                               k=", ".join(rules.types)))
    area_m2 = np.full(n, np.nan)
    if "area" in roles:
        a = pd.to_numeric(frame[roles["area"]].astype(str).str.replace(",", "").str.strip(),
                          errors="coerce").to_numpy(float)
        for i in range(n):
            raw = str(frame[roles["area"]].iloc[i]).strip()
            if raw and raw.lower() != "nan" and not (np.isfinite(a[i]) and a[i] >= 0):
                drop(i, f"bad area {raw!r} (square metres expected)", zh=f"面积 {raw!r} 无效（应为平方米数）")
        area_m2 = np.where(np.isfinite(a) & (a >= 0), a, np.nan)
    owner = np.full(n, "unknown", dtype=object)
    if "ownership" in roles:
        unk = set()
        for i, v in enumerate(frame[roles["ownership"]]):
            o = _ownership(v)
            if not o:
                unk.add(str(v))
                o = "unknown"
            owner[i] = o
        if unk:
            notes.append(label("site.unknown_ownership", lang, f=path.name, v=", ".join(sorted(unk))))
    # inside the study area
    if area is not None:
        area_wgs = area
        if area_crs is not None:
            area_wgs = gpd.GeoSeries([area], crs=area_crs).to_crs(WGS84).iloc[0]
        ok = np.flatnonzero(~bad)
        inside = shapely.intersects(g[ok], area_wgs)
        for i in ok[~inside]:
            c = shapely.point_on_surface(g[i])
            where = f"{c.x:.5f}, {c.y:.5f}" + (f", {datum[i]}" if datum[i] != "wgs84" else "")
            drop(i, f"outside the study area ({where})", zh=f"在研究范围之外（{where}）", outside=True)
    keep = np.flatnonzero(~bad)
    dropped.sort(key=lambda d: d["row"])
    if len(keep) == 0 and not (outside_ok and any(d["outside"] for d in dropped)):
        raise TableError(path, f"no usable site: {_reasons(dropped)}", rows=dropped,
                         zh=f"没有可用的用地：{_reasons(dropped, lang='zh')}")
    if dropped:
        notes.append(label("site.dropped", lang, f=path.name, d=len(dropped), n=n, r=_reasons(dropped, lang=lang)))
    ids = frame[roles["id"]].astype(str).to_numpy() if "id" in roles else \
        np.array([f"row{i + (2 if geom is None else 1)}" for i in range(n)])
    out = gpd.GeoDataFrame({
        SOURCE: "user",
        TYPE: types[keep].astype(str),
        NAME: frame[roles["name"]].astype(str).to_numpy()[keep] if "name" in roles else "",
        AREA: area_m2[keep],
        OWNERSHIP: owner[keep].astype(str),
        STATUS: [canonical_status(v) for v in frame[roles["status"]].to_numpy()[keep]] if "status" in roles
        else "",
        OSM_ID: "",
        "user_id": ids[keep],
    }, geometry=list(g[keep]), crs=WGS84)
    if "floor" in roles:
        out["floor"] = pd.to_numeric(frame[roles["floor"]], errors="coerce").to_numpy()[keep]
    out.attrs["dropped"] = dropped
    out.attrs["notes"] = notes
    return out


def _outside_china(geoms) -> int:
    """How many geometries (WGS-84 or near it) have their centre outside China's rectangle."""
    c = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms, dtype=object)))
    return int(np.asarray(out_of_china(c[:, 0], c[:, 1])).sum()) if len(c) else 0


def _reasons(dropped: list[dict], limit: int = 8, lang: str = "en") -> str:
    if lang == "zh":
        parts = [f"第 {d['row']} 行：{d.get('reason_zh') or d['reason']}" for d in dropped[:limit]]
        if len(dropped) > limit:
            parts.append(f"……另有 {len(dropped) - limit} 行")
        return "；".join(parts)
    parts = [f"row {d['row']}: {d['reason']}" for d in dropped[:limit]]
    if len(dropped) > limit:
        parts.append(f"… and {len(dropped) - limit} more")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# walking from homes to sites


@dataclass
class SiteAccess:
    """Which homes each site reaches, for the recommendations (``(site, home, seconds)``)."""

    site: np.ndarray
    home: np.ndarray
    seconds: np.ndarray
    lacks: dict            # category -> (H,) bool: home lacks the category within its threshold
    minutes: dict          # category -> threshold minutes
    population: np.ndarray

    def covers(self, category: str):
        """(site, home) pairs where the site would newly cover the home for ``category``."""
        m = (self.seconds <= 60.0 * self.minutes[category]) & self.lacks[category][self.home]
        return self.site[m], self.home[m]


# --------------------------------------------------------------------------------------------
# the inventory


@dataclass
class Inventory:
    """The resource list: ``sites`` (GeoDataFrame, analysis CRS), the site snaps and access."""

    sites: gpd.GeoDataFrame
    snap: Snap
    access: SiteAccess
    notes: list
    timings: dict
    attribution: str = ""

    def table(self, lang: str = "en", profile=None) -> pd.DataFrame:
        return inventory_table(self.sites, lang=lang, profile=profile)

    def __len__(self):
        return len(self.sites)

    def map_sites(self, categories=None, top: int = 5) -> gpd.GeoDataFrame:
        """The sites for :func:`lifecircle.render.maps.result_map` (``sites=``): identity columns,
        ``best_uses``, residents within the largest tier and ``gap_<category>`` of
        ``categories`` (default: the ``top`` categories with the largest total gap), so a
        popup shows what each site could close."""
        s = self.sites
        if categories is None:
            gaps = {c[4:]: s[c].sum() for c in s.columns if c.startswith("gap_")}
            categories = [c for c, v in sorted(gaps.items(), key=lambda kv: -kv[1]) if v > 0][:top]
        elif isinstance(categories, str):
            categories = [categories]
        pops = [c for c in s.columns if re.fullmatch(r"pop\d+", c)]
        keep = [SITE_ID, SOURCE, TYPE, AREA, OWNERSHIP, BEST_USES] + pops[-1:] + \
            [gap(c) for c in categories if gap(c) in s]
        out = s[keep + [s.geometry.name]].copy()
        out[AREA] = out[AREA].round(0)
        for c in keep:
            if c.startswith("gap_") or c in pops:
                out[c] = out[c].round(0)
        return out

    def counts(self) -> dict:
        return self.sites.groupby([SOURCE, TYPE]).size().to_dict()


def study_polygon(result):
    """The study area in the analysis CRS: the boundary, or the streets' hull buffered by the
    maximum snap distance."""
    if result.study_area is not None:
        return result.study_area
    net = result.network
    pts = shapely.multipoints(np.column_stack([net.node_x, net.node_y]))
    return shapely.convex_hull(pts).buffer(result.settings.max_snap_m)


def build_inventory(result, osm_data=None, sites=None, sites_crs: str = "wgs84",
                    corners: bool = True, corner_min_m2: float = 30.0,
                    corner_max_m2: float = 2000.0, corner_min_width_m: float = 4.0,
                    rules: SiteRules | None = None, best: int = 3,
                    lang: str | None = None, shared_sites: bool = False) -> Inventory:
    """The in-situ resource list of an analysis (its notes in ``lang``, by default the
    analysis's).

    ``osm_data``: the :class:`~lifecircle.io.sources.OSMData` (or a file path) to take idle sites
    from; by default the OSM features the result keeps (also in a saved analysis folder);
    ``False`` for the user's ``sites`` only. ``sites``: a user site file or GeoDataFrame
    (WGS-84 or ``sites_crs``). Each site gets ``site_id``, ``source``, ``type``, ``area_m2``,
    ``ownership``, ``snap_m``, residents within 5/10/15 minutes (``pop5`` …), ``gap_<category>``
    for every profile category, ``uses`` (categories it can host) and ``best_uses`` (those
    ranked by gap population). ``shared_sites``: ``sites`` is one survey file for several
    areas (batch): one whose sites all lie elsewhere gives no user site (and a note), not an error.
    """
    import time


    for name, v in (("--corner-min", corner_min_m2), ("--corner-max", corner_max_m2),
                    ("corner_min_width_m", corner_min_width_m)):
        if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise OptionError(name, f"{v!r}: a corner size must be a number of at least 0 (m²)",
                              zh=f"{v!r}：边角地面积须为不小于 0 的数（m²）")
    if corner_max_m2 <= corner_min_m2:
        raise OptionError("--corner-max", f"{corner_max_m2:g} m² must be larger than --corner-min "
                          f"{corner_min_m2:g} m²",
                          zh=f"{corner_max_m2:g} m² 须大于 --corner-min {corner_min_m2:g} m²")
    rules = rules or load_site_rules()
    lang = lang or result.settings.lang
    timings: dict = {}
    notes: list[str] = []
    crs = result.crs
    area = study_polygon(result)
    parts = []
    t0 = time.perf_counter()
    feats = None
    if osm_data is False:                                   # the user's sites only
        pass
    elif osm_data is not None:
        feats = (osm_data if isinstance(osm_data, OSMData) else read_osm(osm_data)).features
    elif getattr(result, "features", None) is not None:     # kept in the analysis folder
        feats = result.features
    if feats is not None:
        timings["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        area_wgs = gpd.GeoSeries([area], crs=crs).to_crs(WGS84).iloc[0]
        feats = feats.iloc[shapely.STRtree(feats.geometry.to_numpy()).query(area_wgs, predicate="intersects")]
        feats = feats.sort_index()
        parts.append(osm_sites(feats, crs, area))
        timings["osm"] = time.perf_counter() - t0
        if corners:
            t0 = time.perf_counter()
            parts.append(corner_sites(result.network, feats, crs, corner_min_m2, corner_max_m2,
                                      corner_min_width_m, area))
            timings["corners"] = time.perf_counter() - t0
    if sites is not None:
        t0 = time.perf_counter()
        if isinstance(sites, gpd.GeoDataFrame):
            user = sites
            if user.crs is None:
                user = user.set_crs(WGS84)
        else:
            user = read_sites(sites, sites_crs, area=area, area_crs=crs, rules=rules, lang=lang,
                              outside_ok=shared_sites)
            notes.extend(user.attrs.get("notes", []))
        user = user.to_crs(crs)
        g = user.geometry.to_numpy()
        fill = ~np.isfinite(user[AREA].to_numpy(float)) & (shapely.get_type_id(g) >= 3)
        if fill.any():
            user.loc[fill, AREA] = shapely.area(g[fill])
        parts.append(user)
        timings["user"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = [p for p in parts if len(p)]
    if parts:
        inv = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs)
    else:
        inv = _empty_sites(crs)
    inv = _finish(inv, rules)
    snap = snap_facilities(result.network, inv.geometry.to_numpy(), result.settings.max_snap_m)
    inv[col.SNAP_LEG_M] = snap.leg
    inv[col.REACHABLE] = snap.reachable
    if len(inv) and (~snap.reachable).any():
        notes.append(label("site.unreachable", lang, n=int((~snap.reachable).sum()),
                           m=result.settings.max_snap_m))
    timings["snap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    access = measure_access(result, snap)
    timings["access"] = time.perf_counter() - t0
    _fill_metrics(inv, access, result, rules, best)
    first = [SITE_ID, SOURCE, TYPE, AREA, OWNERSHIP, BEST_USES, USES, STATUS, NAME]
    inv = inv[first + [c for c in inv.columns if c not in first]]
    return Inventory(inv, snap, access, notes, timings, result.attribution)


def _finish(inv: gpd.GeoDataFrame, rules: SiteRules) -> gpd.GeoDataFrame:
    inv = inv.reset_index(drop=True)
    prefix = {"osm": "O", "derived": "D", "user": "U"}
    ids, counter = [], {}
    for s in inv[SOURCE]:
        counter[s] = counter.get(s, 0) + 1
        ids.append(f"{prefix.get(s, 'S')}{counter[s]:05d}")
    inv.insert(0, SITE_ID, ids)
    if "user_id" in inv:
        user = inv[SOURCE].to_numpy() == "user"
        inv.loc[user, SITE_ID] = ["U-" + str(x) for x in inv.loc[user, "user_id"]]
        inv = inv.drop(columns=["user_id"])
        dup = inv[SITE_ID].duplicated(keep=False) & user
        if dup.any():
            inv.loc[dup, SITE_ID] = [f"{a}#{i}" for i, a in enumerate(inv.loc[dup, SITE_ID])]
    inv["form"] = [rules.form(t) for t in inv[TYPE]]
    return inv


def measure_access(result, snap: Snap) -> SiteAccess:
    cats = result.profile.categories
    minutes = {c.id: float(c.minutes) for c in cats}
    limit = max(list(minutes.values()) + list(result.settings.thresholds_min))
    site, home, sec = result.engine.pair_times(snap, limit)
    homes = result.homes
    # a home that reaches no street is out of every share of residents (its street may be
    # missing from the data), so it is no gap a site could close either
    reach = reachable(homes)
    lacks = {}
    for c in cats:
        t = homes[col.time(c.id)].to_numpy(float) if col.time(c.id) in homes else np.full(len(homes), np.nan)
        lacks[c.id] = ~(np.nan_to_num(t, nan=np.inf) <= c.minutes) & reach
    pop = result.engine.homes.pop
    return SiteAccess(site, home, sec, lacks, minutes, pop)


def _fill_metrics(inv, access: SiteAccess, result, rules: SiteRules, best: int) -> None:
    n = len(inv)
    pop = access.population
    w = pop[access.home]
    for m in result.settings.thresholds_min:
        inv[residents_within(m)] = np.bincount(access.site, weights=w * (access.seconds <= 60.0 * m),
                                               minlength=n)[:n] if n else np.zeros(0)
    cat_ids = [c.id for c in result.profile.categories]
    status = getattr(result, "data_status", None) or {}
    gaps = {}
    for c in cat_ids:
        s, hh = access.covers(c)
        gaps[c] = np.bincount(s, weights=pop[hh], minlength=n)[:n] if n else np.zeros(0)
        if status.get(c) == col.STATUS_NO_DATA:
            # no facility of the category in the data: who lacks it is unknown, so it is no
            # gap a site could close (NaN) and never a best use
            gaps[c] = np.full(n, np.nan)
        inv[gap(c)] = gaps[c]
    area = inv[AREA].to_numpy(float)
    types = inv[TYPE].to_numpy()
    uses, best_uses = [], []
    floor = inv["floor"].to_numpy(float) if "floor" in inv else np.full(n, np.nan)
    for i in range(n):
        ok = rules.suitable(types[i], area[i], cat_ids)
        if np.isfinite(floor[i]) and floor[i] > 1:
            ok = [c for c in ok if not rules.uses[c]["ground_floor"]]
        uses.append(",".join(ok))
        ranked = sorted((c for c in ok if gaps[c][i] > 0), key=lambda c: -gaps[c][i])  # NaN > 0 is False
        best_uses.append(",".join(ranked[:best]))
    inv[USES] = uses
    inv[BEST_USES] = best_uses


# --------------------------------------------------------------------------------------------
# tables and files

#: WGS-84 point of a site converted to GCJ-02 (Gaode / Tencent), beside ``lng``/``lat``
LNG_GCJ, LAT_GCJ = "lng_gcj02", "lat_gcj02"

_HEADERS_ZH = {
    SITE_ID: "资源编号", SOURCE: "来源", TYPE: "类型", NAME: "名称", AREA: "面积(平方米)",
    OWNERSHIP: "权属", STATUS: "现状", OSM_ID: "OSM编号", "form": "形态", col.SNAP_LEG_M: "距步行网络(米)",
    col.REACHABLE: "可达", USES: "可承载功能", BEST_USES: "推荐功能", "lng": "经度(WGS-84)",
    "lat": "纬度(WGS-84)", "lng_gcj02": "经度(GCJ-02 高德)", "lat_gcj02": "纬度(GCJ-02 高德)",
}
_VALUES_ZH = {
    SOURCE: {"osm": "OSM", "derived": "几何识别", "user": "调查"},
    OWNERSHIP: {"state": "国有", "collective": "集体", "private": "私有", "unknown": "未知"},
    "form": {"building": "既有建筑", "buildable": "可建设用地", "open": "开敞空间"},
    STATUS: {"construction": "在建", "ruins": "废墟", "vacant": "空置", "disused": "停用",
             "in use": "使用中", "idle": "闲置", "left-over": "边角空间"},
    col.REACHABLE: {True: "是", False: "否"},
}


def display_header(column: str, lang: str = "en") -> str | None:
    """The Chinese header of a site or recommendation column (None when there is none, or in
    English): the headers of the Chinese tables, so a map popup reads like them."""
    if lang != "zh":
        return None
    return _HEADERS_ZH.get(column) or _REC_HEADERS_ZH.get(column) or {
        "method": "求解方法", "attribution": "数据来源", "floor": "楼层"}.get(column)


def display_value(column: str, value, lang: str = "en", profile=None, rules: SiteRules | None = None):
    """One value of the site or recommendation table as people read it in ``lang`` (status,
    source, ownership, form, type, and category-id lists as names); others unchanged.

    >>> display_value("status", "in use", "zh"), display_value("status", "in use")
    ('使用中', 'in use')
    """
    if lang != "zh" or not isinstance(value, str):
        return value
    if column in _VALUES_ZH:
        return _VALUES_ZH[column].get(value, value)
    if column == "method":
        return _METHOD_ZH.get(value, value)
    if column == "attribution":
        return attribution_text(value, lang)
    if column == TYPE:
        return (rules or load_site_rules()).display(value, "zh")
    if column in (USES, BEST_USES, "category", "categories", "use") and profile is not None and value:
        return "、".join(profile.display_name(c, "zh") if c in profile else c
                        for c in value.replace("、", ",").split(",") if c)
    return value


def inventory_table(sites: gpd.GeoDataFrame, lang: str = "en", profile=None,
                    rules: SiteRules | None = None) -> pd.DataFrame:
    """The resource list as a plain table (WGS-84 ``lng``/``lat`` of a point on each site),
    with English or Chinese (``lang="zh"``) headers and values."""
    rules = rules or load_site_rules()
    t = pd.DataFrame(sites.drop(columns=sites.geometry.name))
    if len(sites):
        pts = gpd.GeoSeries(sites.geometry.representative_point(), crs=sites.crs).to_crs(WGS84)
        t["lng"], t["lat"] = pts.x.round(6).to_numpy(), pts.y.round(6).to_numpy()
        # Gaode / Tencent maps use GCJ-02: the same point for a user who opens the table there
        glng, glat = wgs84_to_gcj02(pts.x.to_numpy(), pts.y.to_numpy())
        t[LNG_GCJ], t[LAT_GCJ] = np.round(glng, 6), np.round(glat, 6)
    else:
        t["lng"], t["lat"], t[LNG_GCJ], t[LAT_GCJ] = [], [], [], []
    t[AREA] = t[AREA].round(1)
    for c in t.columns:
        if c.startswith("gap_") or re.fullmatch(r"pop\d+", c):
            t[c] = t[c].round(1)
    t[col.SNAP_LEG_M] = t[col.SNAP_LEG_M].round(1)
    if lang != "zh":
        return t
    for c, table in _VALUES_ZH.items():
        if c in t:
            t[c] = t[c].map(lambda v, table=table: table.get(v, v))
    t[TYPE] = [rules.display(x, "zh") for x in t[TYPE]]

    def catname(ids):
        if profile is None or not ids:
            return ids
        return "、".join(profile.display_name(c, "zh") for c in ids.split(","))

    t[USES] = t[USES].map(catname)
    t[BEST_USES] = t[BEST_USES].map(catname)
    return t.rename(columns=site_headers(t.columns, "zh", profile))


_HEADERS_EN = {
    SITE_ID: "site id", SOURCE: "source", TYPE: "type", NAME: "name", AREA: "area (m²)",
    OWNERSHIP: "ownership", STATUS: "status", OSM_ID: "OSM id", "form": "form",
    col.SNAP_LEG_M: "to the walking network (m)", col.REACHABLE: "reachable", USES: "possible uses",
    BEST_USES: "best uses", "floor": "floor",
}


def site_headers(columns, lang: str, profile=None) -> dict[str, str]:
    """Readable names (in ``lang``) of the site columns — ``gap_park`` → 缺口人口_公园 /
    ``gap population: park``, ``pop15`` → 15分钟步行可达人口 — for the Chinese table headers and
    the field aliases of ``resources.gpkg``; columns without one are left out."""
    zh = lang == "zh"
    fixed = _HEADERS_ZH if zh else _HEADERS_EN
    names = {}
    for c in columns:
        c = str(c)
        if c in fixed:
            names[c] = fixed[c]
        elif c.startswith("gap_"):
            cid = c[4:]
            nm = profile.display_name(cid, lang) if profile is not None and cid in profile else cid
            names[c] = f"缺口人口_{nm}" if zh else f"gap population: {nm}"
        elif (m := re.fullmatch(r"pop(\d+)", c)):
            names[c] = f"{m.group(1)}分钟步行可达人口" if zh else f"residents within {m.group(1)} min"
    return names


#: layers of resources.gpkg by geometry kind, one kind per layer (QGIS opens each without
#: asking for a sublayer): ``sites`` the areas (always written), ``site_points`` surveyed sites
#: given as points, ``site_lines`` any given as lines; ``fac_index`` keeps the inventory order
SITE_LAYERS = {"sites": (3, 6), "site_points": (0, 4), "site_lines": (1, 2, 5)}
SITES_GPKG = "resources.gpkg"


def write_sites_gpkg(inv: Inventory, path, lang: str = "en", profile=None) -> None:
    """The sites as a GeoPackage (WGS-84): one layer per geometry kind (:data:`SITE_LAYERS`),
    field aliases in ``lang`` (``gpkg_data_columns``, which QGIS shows) and the attribution."""
    path = Path(path)
    gdf = inv.sites.to_crs(WGS84)
    gdf = gdf.assign(**{col.REACHABLE: gdf[col.REACHABLE].astype(bool)})
    aliases = site_headers(gdf.columns, lang, profile)
    aliases["fac_index"] = "序号" if lang == "zh" else "order"
    _write_split(gdf, path, SITE_LAYERS)
    write_about_layer(path, inv.attribution)
    write_field_aliases(path, {layer: aliases for layer in SITE_LAYERS})


def read_sites_gpkg(path) -> gpd.GeoDataFrame:
    """The sites :func:`write_sites_gpkg` wrote, every layer, in the inventory's order (a file
    of an older version has one mixed ``sites`` layer)."""
    return _read_split(Path(path), SITE_LAYERS)


def write_inventory(inv: Inventory, out_dir, lang: str = "en", profile=None,
                    recommendations: pd.DataFrame | None = None, force: bool = False,
                    inputs=(), extra=None) -> Path:
    """Write OUT/resources.csv, resources.xlsx, resources.gpkg (layers :data:`SITE_LAYERS`)
    and, when given, recommendations.csv / .xlsx — atomically (all or nothing). A folder
    holding files lifecircle did not write, or one of the ``inputs``, is refused (``force``:
    see :mod:`lifecircle.io.outputs`).

    The CSVs are for machines: stable English column names and ids whatever ``lang`` is, with
    an ``attribution`` column. The XLSX are for people: headers, values and category names in
    ``lang``, the attribution on a sheet of its own. ``extra(folder)`` writes more files into
    the same folder before it is put in place (the command line's map)."""
    out = Path(out_dir)
    with atomic_dir(out, force=force, inputs=inputs, kind="resources") as tmp:
        write_inventory_files(inv, tmp, lang=lang, profile=profile, recommendations=recommendations,
                              where=out)
        if extra is not None:
            extra(tmp)
    return out


def write_inventory_files(inv: Inventory, folder, lang: str = "en", profile=None,
                          recommendations: pd.DataFrame | None = None, where=None) -> None:
    """The files of :func:`write_inventory`, written into an existing (temporary) ``folder``
    the caller puts in place (a batch district's folder); ``where`` names the output in
    messages."""
    folder = Path(folder)
    where = where if where is not None else folder
    machine = inventory_table(inv.sites, lang="en", profile=profile)
    human = inventory_table(inv.sites, lang=lang, profile=profile)
    _write_tables(folder, "resources", machine, human, inv.attribution, lang)
    try:
        write_sites_gpkg(inv, folder / SITES_GPKG, lang, profile)
    except Exception as exc:
        raise OutputError(f"{where}: cannot write the GeoPackage ({exc})",
                          zh=f"{where}：无法写出 GeoPackage（{exc}）") from None
    if recommendations is not None:
        _write_tables(folder, "recommendations", recommendations,
                      recommendation_table(recommendations, lang, profile), inv.attribution,
                      lang, notes=recommendation_notes(recommendations, lang, profile))
    meta = {"attribution": inv.attribution, "notes": inv.notes,
            "counts": {f"{k[0]}:{k[1]}": int(v) for k, v in inv.counts().items()},
            "timings_s": {k: round(v, 3) for k, v in inv.timings.items()}}
    (folder / "resources.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


_REC_HEADERS_ZH = {
    "rank": "序号", SITE_ID: "资源编号", TYPE: "类型", STATUS: "现状", AREA: "面积(平方米)",
    "category": "设施类别", "use": "建议功能", col.CATEGORY_DATA: "该类设施数据", "newly_covered": "新增覆盖人口",
    "cumulative": "累计新增覆盖人口", "share_of_gap": "累计占缺口人口比例(%)", "new_homes": "新增覆盖住宅数",
    "gap_population": "缺口人口", BEST_USES: "推荐功能", "method": "求解方法",
    "lng": "经度(WGS-84)", "lat": "纬度(WGS-84)", LNG_GCJ: "经度(GCJ-02 高德)",
    LAT_GCJ: "纬度(GCJ-02 高德)",
}
_METHOD_ZH = {"exact": "精确求解(整数规划)", "greedy": "贪心算法"}


def recommendation_table(table: pd.DataFrame, lang: str = "en", profile=None,
                         rules: SiteRules | None = None) -> pd.DataFrame:
    """The recommendations as people read them: the share as a percentage and, with
    ``lang="zh"``, Chinese headers, site types, status and category names. The ids of the homes
    each pick newly covers stay in the CSV (and on the map); the sheet keeps their count."""
    t = table.drop(columns=["new_home_ids"], errors="ignore")
    if "share_of_gap" in t:
        t["share_of_gap"] = (100 * t["share_of_gap"].astype(float)).round(1)
    if col.CATEGORY_DATA in t:        # 无数据 / no data, as summary.xlsx says it
        t[col.CATEGORY_DATA] = t[col.CATEGORY_DATA].map(lambda v: status_label(v, lang) if isinstance(v, str) else v)
    if lang != "zh":
        return t
    rules = rules or load_site_rules()

    def catname(ids):
        if profile is None or not isinstance(ids, str) or not ids:
            return ids
        return "、".join(profile.display_name(c, "zh") if c in profile else c
                        for c in ids.split(","))

    for c in ("category", "use", BEST_USES):
        if c in t:
            t[c] = t[c].map(catname)
    if TYPE in t:
        t[TYPE] = [rules.display(x, "zh") for x in t[TYPE]]
    if STATUS in t:
        t[STATUS] = t[STATUS].map(lambda v: _VALUES_ZH[STATUS].get(v, v))
    if "method" in t:
        t["method"] = t["method"].map(lambda v: _METHOD_ZH.get(v, v))
    return t.rename(columns=_REC_HEADERS_ZH)


def recommendation_notes(table: pd.DataFrame, lang: str = "en", profile=None) -> list[str]:
    """What a reader of the recommendations must know, in ``lang``: the uses with no facility
    in the data, whose gap counts every resident as lacking them (the console's note)."""
    if col.CATEGORY_DATA not in table:
        return []
    nodata = list(dict.fromkeys(u for u, st in zip(table["use"], table[col.CATEGORY_DATA])
                                if st == col.STATUS_NO_DATA))
    if not nodata:
        return []
    names = [profile.display_name(c, lang) if profile is not None and c in profile else c for c in nodata]
    return [label("rec.no_data", lang, c=("、" if lang == "zh" else ", ").join(names),
                  s=status_label(col.STATUS_NO_DATA, lang), hint=no_data_hint(lang))]


def _write_tables(folder: Path, stem: str, machine: pd.DataFrame, human: pd.DataFrame,
                  attribution: str, lang: str, notes=()) -> None:
    """``stem``.csv and ``stem``.xlsx; ``notes`` (text in ``lang``) go under the sheet's table,
    where it is read, and on the about sheet."""
    csv_safe(machine.assign(attribution=attribution)).to_csv(folder / f"{stem}.csv", index=False,
                                                             encoding="utf-8-sig")
    about = "说明" if lang == "zh" else "attribution"
    with pd.ExcelWriter(folder / f"{stem}.xlsx", engine="openpyxl") as xw:
        sheet = {"resources": "资源清单" if lang == "zh" else "sites",
                 "recommendations": "推荐选址" if lang == "zh" else "recommendations"}.get(stem, stem)
        xlsx_frame(human).to_excel(xw, sheet_name=sheet[:31], index=False)   # names: never a failed write
        xlsx_frame(pd.DataFrame({("数据来源" if lang == "zh" else "data"): [attribution_text(attribution, lang),
                                                                          *notes]})).to_excel(
            xw, sheet_name=about, index=False)
        if notes:
            ws = xw.sheets[sheet[:31]]
            ws.append([])
            for n in notes:
                ws.append([xlsx_value(n)])
        xlsx_safe(xw.book)                  # text from the data is never stored as a formula


def source_of(folder) -> str:
    """The OSM source file named in an analysis folder's meta.json; a clear error when gone."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise OutputError(f"{folder}: not a lifecircle analysis folder (missing meta.json); "
                          "run 'lifecircle analyze SOURCE --out DIR' first",
                          zh=f"{folder}：不是 lifecircle 分析结果文件夹（缺少 meta.json）；"
                             "请先运行 'lifecircle analyze SOURCE --out DIR'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        src = recorded_source(meta) if isinstance(meta, dict) else ""
    except (OSError, ValueError) as exc:
        raise OutputError(f"{meta_path}: damaged or not written by lifecircle ({exc}); re-run "
                          "'lifecircle analyze'",
                          zh=f"{meta_path}：已损坏或不是 lifecircle 写的（{exc}）；请重新运行 'lifecircle analyze'") from None
    if not src or src.startswith("overpass:"):
        raise InputFileError(folder / "meta.json", f"the analysis source {src!r} is not a file; "
                             "the resource inventory needs the OSM file the analysis was run on",
                             zh=f"分析的数据来源 {src!r} 不是文件；闲置用地清单需要分析所用的 OSM 文件")
    if not Path(src).exists():
        raise InputFileError(src, f"the OSM file this analysis ({folder}) was run on is gone; "
                             "restore it or re-run 'lifecircle analyze' on a file that exists",
                             zh=f"分析（{folder}）所用的 OSM 文件已不存在；请恢复它，或对现有文件重新运行 "
                                "'lifecircle analyze'")
    return src
