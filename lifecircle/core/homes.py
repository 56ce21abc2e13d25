"""Homes (the origins) and their population.

Which buildings are homes
-------------------------
1. **Typed residential buildings**: ``building=residential|apartments|house|detached|…``
   (:data:`RESIDENTIAL_BUILDINGS`) with a footprint of at least
   :attr:`~lifecircle.settings.Settings.min_home_footprint_m2`.
2. **Untagged buildings by evidence**: most of the world's buildings are mapped as plain
   ``building=yes`` (Las Palmas: 14,135 of 22,603; residential land use is mapped for a
   fraction of the city). A ``building=yes`` counts as a home when all of these hold:

   * *nothing on the building says otherwise*: none of :data:`NON_RESIDENTIAL_KEYS`
     (``amenity``, ``shop``, ``office``, ``tourism``, ``craft``, ``industrial``, ``power``, …),
     no ``disused:*``/``abandoned:*`` lifecycle key and no ``building:use`` other than
     residential;
   * *it does not stand in non-residential land*: its point on surface is not inside a
     polygon of :data:`NON_RESIDENTIAL_LANDUSE` (commercial, industrial, retail, railway, port,
     military, cemetery, construction, …), a campus (:data:`CAMPUS_AMENITIES`: school,
     university, hospital, parking, …) or a park/sports ground (:data:`NON_RESIDENTIAL_LEISURE`);
   * *it has the size of a dwelling*: footprint between ``min_home_footprint_m2`` (30 m²) and
     :attr:`~lifecircle.settings.Settings.untagged_home_max_footprint_m2` (3,000 m²; larger
     untagged buildings are mostly warehouses, malls and halls);
   * *its surroundings are residential*: it lies inside ``landuse=residential``, or within
     :attr:`~lifecircle.settings.Settings.untagged_home_street_m` (50 m) of a
     ``highway=residential`` or ``living_street`` (the street classes OSM reserves for streets
     lined with homes), or it carries ``building:use=residential``.

   Column ``evidence`` records which rule made each home (``typed``, ``building:use``,
   ``residential landuse``, ``residential street``, ``grid``).
3. **Stand-in grid**: residential land use with no building mapped at all gets a regular grid
   of stand-in homes (:attr:`~lifecircle.settings.Settings.grid_spacing_m`,
   ``grid_density_per_ha``).

Population estimate
-------------------
footprint × levels × :attr:`~lifecircle.settings.Settings.persons_per_m2`, where levels come
from ``building:levels``, else ``height`` ÷ ``metres_per_level`` (3 m), else the default of the
building type (:data:`lifecircle.settings.LEVELS_BY_TYPE`: house 2, residential 4,
apartments 6, untagged 3 …). Column ``levels_from`` says which.

Calibration: on the Las Palmas GHSCI extract these rules give ~327k residents against the
333k the GHSCI project derives from GHS-POP (typed buildings alone: 148k); see
``bench/ghsci.md``.

Measured population
-------------------
* :func:`apply_population_raster` — a WorldPop/GHSL-style GeoTIFF: each cell's people are
  spread over the homes in it in proportion to floor area (dasymetric; the estimate is floor
  area × persons per m²); a cell with people and no home gets a stand-in home at its centre.
* :func:`apply_population` — community totals (polygons with a count): the homes of each zone
  are rescaled to the zone's total; a zone with no home gets a stand-in home at a point inside
  it.

Both keep every resident: the total in equals the total out, and what could not be matched
(homes outside the raster or every zone) is reported in the returned info, which
:func:`lifecircle.analyze` turns into notes and ``meta.json``.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from lifecircle import columns as col
from lifecircle.core import chunks
from lifecircle.errors import PopulationError, TableError
from lifecircle.i18n import LABELS, label
from lifecircle.settings import DEFAULTS, LEVELS_BY_TYPE, Settings

RESIDENTIAL_BUILDINGS = frozenset({
    "residential", "apartments", "house", "detached", "semidetached_house", "terrace",
    "dormitory", "bungalow", "cabin", "farm", "static_caravan", "houseboat", "stilt_house",
    "trullo", "villa",
})
#: ``building=*`` values treated as "type not said" (candidates for the evidence rule).
UNTAGGED_BUILDINGS = frozenset({"yes"})
#: Tags on a building that say it is (also) something other than a dwelling.
NON_RESIDENTIAL_KEYS: tuple[str, ...] = (
    "amenity", "shop", "office", "tourism", "leisure", "craft", "healthcare", "industrial",
    "man_made", "power", "public_transport", "railway", "emergency", "military", "aeroway",
    "sport", "religion", "club",
)
#: ``landuse=*`` that is not housing.
NON_RESIDENTIAL_LANDUSE = frozenset({
    "commercial", "industrial", "retail", "railway", "military", "port", "cemetery",
    "religious", "education", "institutional", "garages", "landfill", "quarry", "construction",
    "brownfield", "farmyard", "greenhouse_horticulture", "recreation_ground", "depot",
    "aquaculture", "salt_pond",
})
#: ``amenity=*`` areas whose buildings are not homes.
CAMPUS_AMENITIES = frozenset({
    "school", "university", "college", "hospital", "kindergarten", "parking", "prison",
    "clinic", "marketplace", "fire_station", "police", "bus_station", "ferry_terminal",
})
#: ``leisure=*`` areas whose buildings are not homes.
NON_RESIDENTIAL_LEISURE = frozenset({
    "park", "stadium", "sports_centre", "pitch", "golf_course", "marina", "track",
    "water_park", "garden",
})
#: Streets that OSM reserves for streets lined with homes.
RESIDENTIAL_STREETS = frozenset({"residential", "living_street"})

#: ``source`` values of a home and the population source names reported in meta.json.
ESTIMATE = "buildings estimate"
RASTER = "population raster"
ZONES = "community totals"
#: More residents per square metre than any place has (the densest blocks on record hold about
#: 1 per m² of land): a count above it is a unit or data error, refused rather than spread.
MAX_RESIDENTS_PER_M2 = 10.0

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _number(value) -> float | None:
    if not value:
        return None
    m = _NUMBER.search(str(value).replace(",", "."))
    return float(m.group()) if m else None


def building_levels(tags: dict, settings: Settings = DEFAULTS) -> tuple[float, str]:
    """Floors of a building and where the figure came from: ``building:levels``, ``height``
    (÷ ``metres_per_level``, rounded, at least 1) or ``default`` (per building type)."""
    lv = _number(tags.get("building:levels"))
    if lv is not None and 0 < lv < 200:
        return lv, "building:levels"
    h = _number(tags.get("height"))
    if h is not None and 0 < h < 1000:
        return max(1.0, float(round(h / settings.metres_per_level))), "height"
    return LEVELS_BY_TYPE.get(tags.get("building", ""), settings.default_levels), "default"


_AGAINST_KEYS = frozenset(NON_RESIDENTIAL_KEYS)


def _speaks_against(tags: dict) -> bool:
    if not _AGAINST_KEYS.isdisjoint(tags) or tags.get("ruins") == "yes":
        return True
    # a lifecycle key: looked for in the keys joined (one C-level search, not a Python loop
    # over every key); a hit or an odd key is checked key by key
    try:
        joined = "\0" + "\0".join(tags)
    except TypeError:
        joined = "\0disused:"
    if ("\0disused:" in joined or "\0abandoned:" in joined) and \
            any(k.startswith(("disused:", "abandoned:")) for k in tags):
        return True
    use = tags.get("building:use")
    return bool(use) and use not in RESIDENTIAL_BUILDINGS


def residential_streets(streets: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The segments of ``streets`` (with ``highway``) in :data:`RESIDENTIAL_STREETS`, the
    evidence :func:`find_homes` reads: pass them (in any CRS) as its ``streets``."""
    return streets[_member(streets["highway"].to_numpy(), RESIDENTIAL_STREETS)]


def _member(values: np.ndarray, allowed) -> np.ndarray:
    """``np.isin(values, list(allowed))`` for an object array, by set lookups (``np.isin``
    compares every value with every allowed one: ~0.2 s over a city's 300k features)."""
    allowed = frozenset(allowed)
    try:
        return np.fromiter((v in allowed for v in values.tolist()), dtype=bool, count=len(values))
    except TypeError:   # an unhashable value: compared as np.isin does
        return np.isin(values, list(allowed))


def _distinct(items: list) -> tuple[np.ndarray, list]:
    """The distinct objects of ``items`` by identity (in first-seen order) and the position
    of each item's among them."""
    ids = np.fromiter(map(id, items), dtype=np.uint64, count=len(items))
    code, _ = pd.factorize(ids)
    first = np.empty(code.max() + 1 if len(code) else 0, dtype=np.int64)
    first[code[::-1]] = np.arange(len(code) - 1, -1, -1)
    return code.astype(np.intp, copy=False), [items[i] for i in first.tolist()]


def _per_dict(func, distinct: list, code: np.ndarray, dtype, spread: bool = True) -> np.ndarray:
    """``func`` of the tag dicts ``distinct[code]``, called once per distinct dict among them
    (``spread=False``: the answers per distinct dict, None or False where not asked)."""
    ask = np.unique(code)
    out = np.full(len(distinct), None, dtype=object) if dtype is object else np.zeros(len(distinct), dtype=dtype)
    values = [func(distinct[i]) for i in ask.tolist()]
    if dtype is object:
        for i, v in zip(ask.tolist(), values):
            out[i] = v
    else:
        out[ask] = np.array(values, dtype=dtype)
    return out[code] if spread else out


def _point_in(points: np.ndarray, polygons: np.ndarray, pairs: bool = False):
    """Which ``points`` intersect some polygon (the boundary counts); ``pairs``: also one
    (point, polygon) pair for each polygon holding a point. The smaller side is indexed: many
    polygons are prepared once each against the points around them (GEOS's point-in-polygon
    is exact either way, so the answer is the same)."""
    out = np.zeros(len(points), dtype=bool)
    hit = poly = np.zeros(0, dtype=np.intp)
    if len(polygons) and len(points):
        if 4 * len(polygons) > len(points):
            poly, hit = chunks.query(shapely.STRtree(points), polygons, predicate="intersects")
        else:
            hit, poly = chunks.query(shapely.STRtree(polygons), points, predicate="intersects")
        out[hit] = True
    if not pairs:
        return out
    poly, first = np.unique(poly, return_index=True)
    return out, (hit[first], poly)


def _strings(values: np.ndarray) -> np.ndarray:
    """``values.astype(str)`` for a frame column, kept as the Python strings they are (every
    caller's values are strings: tag values matched against sets of strings, or the rules'
    own words); pandas turns numpy's fixed-width text into its string column ~4x slower.
    The column and its dtype are the same (an empty column goes through ``astype(str)``:
    pandas types an empty object column otherwise)."""
    return values.astype(str) if len(values) == 0 else values


#: Geometries :func:`_to_crs` projects at a time: a city's buildings' coordinates are not all
#: copied at once (three float arrays of every corner, ~750 MB at a million-node city).
TO_CRS_CHUNK = 1 << 16


def _to_crs(geoms: np.ndarray, src, dst) -> np.ndarray:
    """``GeoSeries(geoms, crs=src).to_crs(dst)`` as an array, the same coordinates, by an
    in-place transform of the coordinate arrays (geopandas' copies and transposes cost ~40 %
    more over a city's buildings), :data:`TO_CRS_CHUNK` geometries at a time (PROJ on a
    second thread, see below)."""
    if src is None or dst is None or not len(geoms) or \
            chunks.itemwise(shapely.has_z, len(geoms), geoms).any() or \
            CRS.from_user_input(src).is_exact_same(CRS.from_user_input(dst)):
        return gpd.GeoSeries(geoms, crs=src).to_crs(dst).to_numpy()
    transformer = Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst),
                                       always_xy=True)
    out = geoms.copy()
    starts = range(0, len(out), TO_CRS_CHUNK)

    def read(lo):
        return shapely.get_coordinates(out[lo:lo + TO_CRS_CHUNK])

    def transform(xy):
        x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
        transformer.transform(x, y, inplace=True)
        xy[:, 0], xy[:, 1] = x, y
        return xy

    def write(lo, xy):
        part = out[lo:lo + TO_CRS_CHUNK]            # a view: set in place
        try:   # (shapely.set_coordinates copies and counts first)
            shapely.lib.set_coordinates(part, xy)
        except AttributeError:  # a shapely without it: the public function, the same result
            out[lo:lo + TO_CRS_CHUNK] = shapely.set_coordinates(part, xy)
    if chunks.threads() < 2 or len(starts) < 2:
        for lo in starts:
            write(lo, transform(read(lo)))
        return out
    # PROJ transforms a chunk on another thread (without the GIL) while this one reads the
    # next chunk and writes the one before: the new geometries are made here (by this
    # thread's allocator, where the rest of the analysis lives); three chunks' coordinates
    # live at most
    with ThreadPoolExecutor(1, thread_name_prefix="lifecircle-proj") as ex:
        ahead = ex.submit(transform, read(starts[0]))
        for k, lo in enumerate(starts):
            nxt = read(starts[k + 1]) if k + 1 < len(starts) else None
            xy = ahead.result()
            if nxt is not None:
                ahead = ex.submit(transform, nxt)
            del nxt
            write(lo, xy)
            del xy
    return out


def find_homes(features: gpd.GeoDataFrame, crs, settings: Settings = DEFAULTS,
               streets: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Homes as points (projected ``crs``) with ``population`` and how each was found.

    ``features``: the tagged features of :class:`~lifecircle.sources.OSMData` (WGS-84);
    ``streets``: its street layer (with ``highway``; in any CRS, and its
    :func:`residential_streets` are enough), used for the residential-street evidence
    (without it, untagged buildings count only inside residential land use). Columns:
    ``home_id``, ``osm_id``, ``source`` (``building`` or ``grid``), ``building``, ``evidence``,
    ``footprint_m2``, ``levels``, ``levels_from``, ``population``.
    """
    tags = features["tags"].tolist()
    # every tag rule reads the tag dict alone: it is asked once per distinct dict (the reader
    # shares one dict among the features with the same tags) and the answers are spread
    code, distinct = _distinct(tags)
    btype_d = np.array([t.get("building", "") for t in distinct], dtype=object)
    landuse_d = np.array([t.get("landuse", "") for t in distinct], dtype=object)
    amenity_d = np.array([t.get("amenity", "") for t in distinct], dtype=object)
    leisure_d = np.array([t.get("leisure", "") for t in distinct], dtype=object)
    btype = btype_d[code]
    polygonal = np.isin(chunks.itemwise(shapely.get_type_id, len(features), features.geometry.to_numpy()), (3, 6))
    is_building = polygonal & ((btype_d != "") & (btype_d != "no"))[code]
    res_mask = (landuse_d == "residential")[code] & polygonal
    nonres_mask = polygonal & ~is_building & (
        _member(landuse_d, NON_RESIDENTIAL_LANDUSE) | _member(amenity_d, CAMPUS_AMENITIES)
        | _member(leisure_d, NON_RESIDENTIAL_LEISURE))[code]
    # only the polygons the rules read (buildings, land use) are projected; None elsewhere
    used = is_building | res_mask | nonres_mask
    geom = np.full(len(features), None, dtype=object)
    geom[used] = _to_crs(features.geometry.to_numpy()[used], features.crs, crs)
    area = chunks.itemwise(shapely.area, len(geom), geom)   # NaN where not projected (never a building)

    res_land = shapely.make_valid(geom[res_mask])
    nonres_land = geom[nonres_mask]

    typed = is_building & _member(btype_d, RESIDENTIAL_BUILDINGS)[code] & \
        (area >= settings.min_home_footprint_m2)
    cand = np.flatnonzero(is_building & _member(btype_d, UNTAGGED_BUILDINGS)[code]
                          & (area >= settings.min_home_footprint_m2)
                          & (area <= settings.untagged_home_max_footprint_m2))
    cand = cand[~_per_dict(_speaks_against, distinct, code[cand], bool)]
    cpts = shapely.point_on_surface(geom[cand])
    keep = ~_point_in(cpts, nonres_land)
    cand, cpts = cand[keep], cpts[keep]
    declared = _per_dict(lambda t: t.get("building:use") in RESIDENTIAL_BUILDINGS, distinct,
                         code[cand], bool)
    in_res, (rp, rq) = _point_in(cpts, res_land, pairs=True)
    near = np.zeros(len(cand), dtype=bool)
    # the street test only where nothing else already makes the building a home (it is the
    # costly one; the evidence it would record is overwritten by the others)
    ask = np.flatnonzero(~(declared | in_res))
    if streets is not None and len(streets) and len(ask):
        res = residential_streets(streets)
        if len(res):
            lines = res.to_crs(crs).geometry.to_numpy()
            near[ask[_within(geom[cand[ask]], lines, settings.untagged_home_street_m, cpts[ask])]] = True
    evidence = np.full(len(features), "", dtype=object)
    evidence[typed] = "typed"
    ok = declared | in_res | near
    evidence[cand[near]] = "residential street"
    evidence[cand[in_res]] = "residential landuse"
    evidence[cand[declared]] = "building:use"
    hidx = np.concatenate([np.flatnonzero(typed), cand[ok]])
    order = np.argsort(hidx, kind="stable")
    hidx = hidx[order]
    # a point on each home's surface: the candidates' are computed already
    n_typed = int(typed.sum())
    hpts = np.empty(len(hidx), dtype=object)
    hpts[order >= n_typed] = cpts[ok][order[order >= n_typed] - n_typed]
    hpts[order < n_typed] = shapely.point_on_surface(geom[hidx[order < n_typed]])

    lv = _per_dict(lambda t: building_levels(t, settings), distinct, code[hidx], object, spread=False)
    levels = np.array([x[0] if x is not None else np.nan for x in lv], dtype=float)[code[hidx]]
    levels_from = np.array([x[1] if x is not None else "" for x in lv], dtype=object)[code[hidx]]
    pop = area[hidx] * levels * settings.persons_per_m2
    frames = [gpd.GeoDataFrame({
        "osm_id": features["osm_id"].to_numpy()[hidx].astype(np.int64),
        "source": "building",
        "building": _strings(btype[hidx]),
        "evidence": _strings(evidence[hidx]),
        "footprint_m2": area[hidx],
        "levels": levels,
        "levels_from": _strings(levels_from),
        col.POPULATION: pop,
    }, geometry=hpts, crs=crs)]

    # stand-in grid over residential land that has no building mapped
    if len(res_land):
        # land with a candidate's point on it holds that building (where the point lies on
        # it: an invalid footprint's may not); the rest is asked against the buildings whose
        # boxes meet it (intersects is exact: the same answer as an indexed query)
        taken = np.zeros(len(res_land), dtype=bool)
        taken[rq[chunks.made(lambda lo, hi: shapely.intersects(geom[cand[rp[lo:hi]]], cpts[rp[lo:hi]]),
                             len(rp))]] = True
        left = np.flatnonzero(~taken)
        all_buildings = geom[is_building]
        if len(left) and len(all_buildings):
            bi, li = chunks.query(shapely.STRtree(res_land[left]), all_buildings)
            taken[left[li[chunks.made(lambda lo, hi: shapely.intersects(
                res_land[left[li[lo:hi]]], all_buildings[bi[lo:hi]]), len(li))]]] = True
        empty = list(res_land[~taken])
        if empty:
            frames.append(_grid(empty, crs, settings))
    homes = pd.concat(frames, ignore_index=True)
    homes = gpd.GeoDataFrame(homes, geometry="geometry", crs=crs)
    homes.insert(0, col.HOME_ID, np.arange(len(homes)))
    return homes


def _within(polygons: np.ndarray, lines: np.ndarray, distance: float,
            probes: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``polygons`` within ``distance`` of some line, as GEOS's ``dwithin``
    predicate says exactly.

    A polygon with a point within ``distance`` - 1 micrometre of a line's vertex is within
    reach (its distance to the line is at most that): k-d tree queries settle most buildings
    of a street, first by one point of each (``probes``, e.g. their points on surface, used
    only where they do lie on their polygon; else the first corner), then by every corner of
    the others. GEOS's own
    ``dwithin`` decides the few left.
    """
    eps = 1e-6
    sure = np.zeros(len(polygons), dtype=bool)
    line_xy = shapely.get_coordinates(lines)
    if len(polygons) and len(line_xy):
        kd = cKDTree(line_xy, balanced_tree=False, compact_nodes=False)
        if probes is None:
            coords, owner = shapely.get_coordinates(polygons, return_index=True)
            first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else owner
            probe_xy, probe_of = coords[first], owner[first]
        else:
            probe_xy, probe_of = shapely.get_coordinates(probes, return_index=True)
        near = kd.query(probe_xy, distance_upper_bound=distance, workers=chunks.threads())[0]
        hit = probe_of[near <= distance - eps]
        if probes is not None:   # a probe off its polygon (an invalid one's point on surface)
            hit = hit[chunks.made(lambda lo, hi: shapely.intersects(   # tells nothing
                polygons[hit[lo:hi]], probes[hit[lo:hi]]), len(hit))]
        sure[hit] = True
        left = np.flatnonzero(~sure)                        # every corner of the others
        coords, owner = shapely.get_coordinates(polygons[left], return_index=True)
        near = kd.query(coords, distance_upper_bound=distance, workers=chunks.threads())[0]
        sure[left[owner[near <= distance - eps]]] = True
    rest = np.flatnonzero(~sure)
    hit, _ = chunks.query(shapely.STRtree(lines), polygons[rest], predicate="dwithin", distance=distance)
    sure[rest[hit]] = True
    return np.flatnonzero(sure)


def _stand_ins(points, population, source: str, crs) -> gpd.GeoDataFrame:
    n = len(points)
    return gpd.GeoDataFrame({
        "osm_id": np.full(n, -1, np.int64), "source": np.full(n, source, dtype=object),
        "building": np.full(n, "", dtype=object), "evidence": np.full(n, source, dtype=object),
        "footprint_m2": np.zeros(n), "levels": np.zeros(n),
        "levels_from": np.full(n, "", dtype=object),
        col.POPULATION: np.asarray(population, dtype=float)},
        geometry=np.asarray(points, dtype=object), crs=crs)


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
    return _stand_ins(pts, np.full(len(pts), per_point), "grid", crs)


def _append(homes: gpd.GeoDataFrame, extra: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if len(extra) == 0:
        return homes
    extra = extra.to_crs(homes.crs)
    for c in homes.columns:
        if c not in extra.columns:
            extra[c] = np.nan if homes[c].dtype.kind == "f" else None
    out = pd.concat([homes, extra[homes.columns]], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=homes.crs)
    out[col.HOME_ID] = np.arange(len(out))
    return out


def _shares(weights: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Each member's share of its group: by weight, evenly where a group's weights are all 0."""
    wsum = np.bincount(group, weights=weights, minlength=n_groups)
    cnt = np.bincount(group, minlength=n_groups).astype(float)
    zero = wsum[group] <= 0
    share = np.where(zero, 1.0 / np.maximum(cnt[group], 1), weights / np.where(zero, 1.0, wsum[group]))
    return share


def estimate_info(homes: gpd.GeoDataFrame) -> dict:
    """Total residents of the buildings estimate and how the homes were found."""
    ev = homes["evidence"].value_counts().to_dict() if "evidence" in homes else {}
    return {"source": ESTIMATE, "total": float(homes[col.POPULATION].sum()), "homes": int(len(homes)),
            "homes_by_evidence": {str(k): int(v) for k, v in ev.items()}}


# --------------------------------------------------------------------------------------------
# population raster (dasymetric)


def _affine(t, x, y):
    """An affine transform applied to coordinate arrays."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def apply_population_raster(homes: gpd.GeoDataFrame, path, region=None,
                            band: int = 1) -> tuple[gpd.GeoDataFrame, dict]:
    """Spread the people of a population GeoTIFF (WorldPop/GHSL-style: people per cell) over
    the homes, cell by cell, in proportion to floor area.

    Cells counted: those whose centre lies in ``region`` (a polygon in the homes' CRS; the
    study area) and those holding a home, where the raster has data. A counted cell with
    people and no home gets a stand-in home (``source='raster'``) at its centre; homes in a
    cell of 0 people get 0; homes outside the raster (or on nodata) keep their estimate. The
    residents of the counted cells equal the residents of their homes. Returns the homes and
    an info dict (``total``, ``cells``, ``stand_in_homes``, ``homes_outside``, …).
    """
    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    if not path.exists():
        raise PopulationError(path, "file not found", zh="找不到文件")
    try:
        ds = rasterio.open(path)
    except Exception as exc:
        raise PopulationError(path, f"cannot read as a raster (GeoTIFF) ({type(exc).__name__}: {exc})",
                              zh=f"无法作为栅格（GeoTIFF）读取（{type(exc).__name__}: {exc}）") from None
    with ds:
        if ds.crs is None:
            raise PopulationError(path, "has no coordinate reference system; save it with one (e.g. EPSG:4326)",
                                  zh="没有坐标参考系；请带坐标系另存（如 EPSG:4326）")
        rcrs = ds.crs.to_wkt()
        pts_r = homes.geometry.to_crs(rcrs).to_numpy()
        parts = list(pts_r)
        region_r = None
        if region is not None:
            region_r = gpd.GeoSeries([region], crs=homes.crs).to_crs(rcrs).iloc[0]
            parts.append(region_r)
        if not parts:
            raise PopulationError(path, "no study area or home to match the raster against",
                                  zh="没有可与栅格对照的研究范围或住宅")
        x0, y0, x1, y1 = shapely.total_bounds(np.array(parts, dtype=object))
        fc, fr = _affine(~ds.transform, np.array([x0, x0, x1, x1]), np.array([y0, y1, y0, y1]))
        col0, row0 = int(np.floor(fc.min())) - 1, int(np.floor(fr.min())) - 1
        col1, row1 = int(np.ceil(fc.max())) + 1, int(np.ceil(fr.max())) + 1
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, ds.width), min(row1, ds.height)
        if col1 <= col0 or row1 <= row0:
            raise PopulationError(path, "does not cover the study area (check its extent and CRS)",
                                  zh="没有覆盖研究范围（请检查其范围和坐标系）")
        window = Window(col0, row0, col1 - col0, row1 - row0)
        try:
            data = ds.read(band, window=window, masked=True)
        except Exception as exc:
            raise PopulationError(path, f"cannot read band {band} ({type(exc).__name__}: {exc})",
                                  zh=f"无法读取第 {band} 波段（{type(exc).__name__}: {exc}）") from None
        t = ds.transform
        transform = type(t)(t.a, t.b, t.c + t.a * col0 + t.b * row0,
                            t.d, t.e, t.f + t.d * col0 + t.e * row0)
    values = np.ma.filled(data.astype(float), np.nan)
    values[~np.isfinite(values) | (values < 0)] = np.nan  # nodata (WorldPop uses -99999)
    nrow, ncol = values.shape

    # the cell of each home
    inv = ~transform
    hx, hy = shapely.get_x(pts_r), shapely.get_y(pts_r)
    fc, fr = _affine(inv, hx, hy)
    hc, hr = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
    inside = (hc >= 0) & (hc < ncol) & (hr >= 0) & (hr < nrow)
    hcell = np.where(inside, hr * ncol + hc, -1)
    flat = values.ravel()
    home_valid = inside & np.isfinite(flat[np.clip(hcell, 0, None)])

    # counted cells: centre in the region, or holding a home; with data
    counted = np.zeros(nrow * ncol, dtype=bool)
    if region_r is not None:
        rr, cc = np.meshgrid(np.arange(nrow), np.arange(ncol), indexing="ij")
        cx, cy = _affine(transform, cc.ravel() + 0.5, rr.ravel() + 0.5)
        counted |= shapely.contains_xy(region_r, np.asarray(cx), np.asarray(cy))
    counted[hcell[home_valid]] = True
    counted &= np.isfinite(flat)
    if not counted.any():
        raise PopulationError(path, "has no data over the study area (check its extent and CRS)",
                              zh="在研究范围内没有数据（请检查其范围和坐标系）")
    total = float(flat[counted].sum())
    if total <= 0:
        raise PopulationError(path, "counts nobody over the study area (all cells 0)",
                              zh="研究范围内人口为零（所有像元均为 0）")
    # one cell's area in square metres, measured in the homes' (metric) CRS
    (cx0, cx1), (cy0, cy1) = _affine(transform, np.array([ncol // 2, ncol // 2 + 1]), np.array([nrow // 2, nrow // 2 + 1]))
    cell = gpd.GeoSeries([shapely.box(min(cx0, cx1), min(cy0, cy1), max(cx0, cx1), max(cy0, cy1))], crs=rcrs)
    cell_m2 = float(cell.to_crs(homes.crs).area.iloc[0])
    dense = flat[counted] > MAX_RESIDENTS_PER_M2 * max(cell_m2, 1.0)
    if dense.any():
        raise PopulationError(path, f"{int(dense.sum())} cell(s) hold more than {MAX_RESIDENTS_PER_M2:g} residents "
                              f"per m² (largest {flat[counted].max():.3g}); check the band and its units",
                              zh=f"{int(dense.sum())} 个像元每 m² 超过 {MAX_RESIDENTS_PER_M2:g} 人"
                                 f"（最大 {flat[counted].max():.3g}）；请检查波段及其单位")

    out = homes.copy()
    pop = out[col.POPULATION].to_numpy(float).copy()
    hv = np.flatnonzero(home_valid)
    cells = hcell[hv]
    share = _shares(pop[hv], cells, nrow * ncol)
    pop[hv] = flat[cells] * share
    out[col.POPULATION] = pop

    with_home = np.zeros(nrow * ncol, dtype=bool)
    with_home[cells] = True
    lonely = np.flatnonzero(counted & ~with_home & (flat > 0))
    if len(lonely):
        lr, lc = np.divmod(lonely, ncol)
        lx, ly = _affine(transform, lc + 0.5, lr + 0.5)
        extra = _stand_ins(shapely.points(np.asarray(lx), np.asarray(ly)), flat[lonely], "raster", rcrs)
        out = _append(out, extra)
    outside = ~home_valid
    info = {
        "source": RASTER, "file": str(path), "total": float(out[col.POPULATION].sum()),
        "raster_total": total, "cells": int(counted.sum()),
        "cells_with_people": int((counted & (flat > 0)).sum()),
        "homes_in_raster": int(len(hv)), "homes_in_empty_cells": int((flat[cells] == 0).sum()),
        "stand_in_homes": int(len(lonely)), "stand_in_residents": float(flat[lonely].sum()),
        "homes_outside": int(outside.sum()),
        "residents_outside": float(homes[col.POPULATION].to_numpy(float)[outside].sum()),
    }
    return out, info


# --------------------------------------------------------------------------------------------
# community totals


def read_population_zones(path) -> gpd.GeoDataFrame:
    """A polygon file of community totals, read with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise PopulationError(path, "file not found", zh="找不到文件")
    try:
        with warnings.catch_warnings():     # GDAL/geopandas chatter about odd columns: the column is checked below
            warnings.simplefilter("ignore")
            gdf = gpd.read_file(path)
    except Exception as exc:
        raise PopulationError(path, f"cannot read as a vector file ({type(exc).__name__}: {exc})",
                              zh=f"无法作为矢量文件读取（{type(exc).__name__}: {exc}）") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.isna().all():
        raise PopulationError(path, "has no geometry: community totals need polygons (GeoJSON, "
                              "GeoPackage, Shapefile, or a CSV with a WKT column)",
                              zh="没有几何图形：社区人口总数需要面（GeoJSON、GeoPackage、Shapefile，"
                                 "或带 WKT 列的 CSV）")
    if gdf.crs is None:
        raise PopulationError(path, "has no coordinate reference system; save it with one (e.g. EPSG:4326)",
                                  zh="没有坐标参考系；请带坐标系另存（如 EPSG:4326）")
    kinds = set(gdf.geometry.dropna().geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise PopulationError(path, f"community totals need polygons, found {', '.join(sorted(kinds))}",
                              zh=f"社区人口总数需要面，实为 {', '.join(sorted(kinds))}")
    return gdf


#: Two population zones may overlap by up to this share of the smaller one's area (digitising
#: slivers along a shared edge); more, and the residents of the overlap would be counted twice
#: (two copies of a zone, or a sub-district beside its own communities): refused.
ZONE_OVERLAP_SHARE = 0.01

#: Columns that name a zone in a population file (the first present is used in messages).
_ZONE_NAME_COLUMNS = ("name", "Name", "NAME", "名称", "社区", "社区名称", "community", "zone")


def _refuse_overlaps(zones: gpd.GeoDataFrame, zgeom: np.ndarray, usable: np.ndarray, path) -> None:
    """:class:`~lifecircle.errors.PopulationError` naming the first two ``usable`` zones whose
    overlap is more than :data:`ZONE_OVERLAP_SHARE` of the smaller's area: each zone's total
    is spread over the homes inside it, so overlapping zones count the residents of the
    overlap twice (one zone's homes go to the other and its total to a stand-in home). Which
    split is right is the user's call. Candidate pairs from an STRtree, areas vectorised."""
    idx = np.flatnonzero(usable)
    if len(idx) < 2:
        return
    g = zgeom[idx]
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    pair = a < b
    a, b = a[pair], b[pair]
    if not len(a):
        return
    area = shapely.area(g)
    inter = shapely.area(shapely.intersection(g[a], g[b]))
    smaller = np.minimum(area[a], area[b])
    bad = np.flatnonzero(inter > ZONE_OVERLAP_SHARE * smaller)
    if not len(bad):
        return
    k = bad[np.lexsort((b[bad], a[bad]))[0]]
    i, j = int(idx[a[k]]), int(idx[b[k]])
    share = 100.0 * inter[k] / smaller[k] if smaller[k] > 0 else 100.0
    name_col = next((c for c in _ZONE_NAME_COLUMNS if c in zones.columns), None)

    def which(r, zh=False):
        name = zones[name_col].iloc[r] if name_col else None
        named = f" '{name}'" if isinstance(name, str) and name.strip() else ""
        return f"第 {r + 1} 行{named}" if zh else f"row {r + 1}{named}"

    more = len(bad) - 1
    raise PopulationError(
        path, f"zones {which(i)} and {which(j)} overlap ({share:.0f}% of the smaller zone"
        + (f"; {more} more overlapping pair(s)" if more else "") + "): their residents would be "
        "counted twice; give zones that do not overlap (e.g. only the communities, or only the "
        "sub-districts)",
        zh=f"分区 {which(i, True)} 与 {which(j, True)} 重叠（占较小分区的 {share:.0f}%"
           + (f"；另有 {more} 对重叠" if more else "") + "）：其居民会被重复计算；请提供互不重叠的分区"
           "（如只给社区，或只给街道）")


#: A zone this little of whose area lies beyond the study area's edge is taken as inside it
#: (digitising slivers along a shared edge).
CROSSING_SLIVER = 0.01


def apply_population(homes: gpd.GeoDataFrame, table, column: str = col.POPULATION,
                     path: str = "population", region=None, clipped=None) -> tuple[gpd.GeoDataFrame, dict]:
    """Rescale the homes of each zone to the zone's total (community totals, census blocks).

    ``table``: polygons with a ``column`` of residents. Each zone's residents are spread over
    the homes inside it in proportion to their current population (floor area; evenly if all
    are 0). Zones that overlap by more than :data:`ZONE_OVERLAP_SHARE` of the smaller are
    refused (their residents would be counted twice); where slivers overlap, a home inside
    several zones belongs to the first. ``clipped``: the study area the homes were cut to (a
    boundary), if any: a zone that crosses its edge brings the share of its total that its area
    inside holds (more than :data:`CROSSING_SLIVER` outside; counted in the info and the notes). A zone with residents but no
    home gets one stand-in home (``source='zone'``) at a point inside it (inside ``region``,
    the study area, where they overlap); zones that miss ``region`` entirely are left out and
    counted in the info. Homes outside every zone keep their estimate. A table that matches no
    home at all is refused (:class:`~lifecircle.errors.PopulationError`).
    """
    if column not in table.columns:
        raise TableError(path, f"no '{column}' column; columns found: {', '.join(map(str, table.columns))}",
                         zh=f"没有 '{column}' 列；文件中的列：{', '.join(map(str, table.columns))}")
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if len(bad):
        raise TableError(path, f"'{column}' must be a non-negative number", rows=[int(i) + 1 for i in bad],
                         zh=f"'{column}' 须为非负数")
    if table.crs is None:
        raise PopulationError(path, "has no coordinate reference system", zh="没有坐标参考系")
    zones = table.to_crs(homes.crs)
    zgeom = shapely.make_valid(zones.geometry.to_numpy())
    dense = np.flatnonzero(values > MAX_RESIDENTS_PER_M2 * np.maximum(shapely.area(zgeom), 1.0))
    if len(dense):
        rows = [int(i) + 1 for i in dense]
        raise TableError(path, f"'{column}' holds more than {MAX_RESIDENTS_PER_M2:g} residents per m² of its "
                         f"zone in row(s) {', '.join(map(str, rows[:5]))} (check the column and its units)", rows=rows,
                         zh=f"'{column}' 在第 {', '.join(map(str, rows[:5]))} 行超过每 m² 分区面积 "
                            f"{MAX_RESIDENTS_PER_M2:g} 人（请检查该列及其单位）")
    usable = ~shapely.is_empty(zgeom) & np.isin(shapely.get_type_id(zgeom), (3, 6, 7))
    if region is not None:
        usable &= shapely.intersects(zgeom, region)
    _refuse_overlaps(zones, zgeom, usable, path)
    # a zone that crosses the study area's edge brings the residents of its part inside (by
    # area): its homes beyond the edge are not in ``homes``, and its whole total on the homes
    # inside would crowd them (a 10,000-resident zone half outside gave its 133 homes inside
    # all 10,000)
    total_values = values
    frac = np.ones(len(zones))
    if clipped is not None and usable.any():
        idx = np.flatnonzero(usable & ~shapely.within(zgeom, clipped))
        if len(idx):
            whole = shapely.area(zgeom[idx])
            part = shapely.area(shapely.intersection(zgeom[idx], clipped))
            frac[idx] = np.where(whole > 0, np.clip(part / np.maximum(whole, 1e-12), 0.0, 1.0), 1.0)
    crossing = usable & (frac < 1.0 - CROSSING_SLIVER)
    frac = np.where(crossing, frac, 1.0)
    values = total_values * frac
    pts = homes.geometry.to_numpy()
    hit_home, hit_zone = shapely.STRtree(zgeom).query(pts, predicate="within")
    keep = usable[hit_zone]
    hit_home, hit_zone = hit_home[keep], hit_zone[keep]
    # no zone holds a home: refused (a wrong file or CRS) unless the zones lie in the study area
    # (a district without mapped buildings): then every zone gets its stand-in home
    if len(hit_home) == 0 and (region is None or not usable.any()):
        raise PopulationError(path, f"none of its {len(zones)} zone(s) contains a home of the study "
                              "area (check that it covers the area and its CRS)",
                              zh=f"其 {len(zones)} 个分区中没有一个包含研究范围内的住宅（请检查它是否覆盖该范围及其坐标系）")
    order = np.lexsort((hit_zone, hit_home))
    hit_home, hit_zone = hit_home[order], hit_zone[order]
    first = np.ones(len(hit_home), dtype=bool)
    first[1:] = hit_home[1:] != hit_home[:-1]
    hit_home, hit_zone = hit_home[first], hit_zone[first]

    out = homes.copy()
    pop = out[col.POPULATION].to_numpy(float).copy()
    share = _shares(pop[hit_home], hit_zone, len(zones))
    pop[hit_home] = values[hit_zone] * share
    out[col.POPULATION] = pop

    has_home = np.zeros(len(zones), dtype=bool)
    has_home[hit_zone] = True
    empty = np.flatnonzero(usable & ~has_home & (values > 0))
    if len(empty):
        where = zgeom[empty]
        if region is not None:
            clipped = shapely.intersection(where, region)
            where = np.where(shapely.is_empty(clipped), where, clipped)
        extra = _stand_ins(shapely.point_on_surface(where), values[empty], "zone", homes.crs)
        out = _append(out, extra)
    outside = np.ones(len(homes), dtype=bool)
    outside[hit_home] = False
    missed = np.flatnonzero(~usable & (values > 0))
    info = {
        "source": ZONES, "file": str(path), "total": float(out[col.POPULATION].sum()),
        "zones_total": float(values[usable].sum()), "zones": int(usable.sum()),
        "zones_with_homes": int(has_home.sum()), "stand_in_homes": int(len(empty)),
        "stand_in_residents": float(values[empty].sum()),
        "homes_outside": int(outside.sum()),
        "residents_outside": float(homes[col.POPULATION].to_numpy(float)[outside].sum()),
        "zones_off_area": int((~usable).sum()), "residents_off_area": float(values[missed].sum()),
        "zones_crossing": int(crossing.sum()),
        "residents_beyond_edge": float((total_values - values)[crossing].sum()),
    }
    return out, info


def population_notes(info: dict, lang: str = "en") -> list[str]:
    """Human-readable lines for the notes (in ``lang``): total, source, what was added or left
    as estimated."""
    def src(name):
        return label(f"pop.{name}", lang) if f"pop.{name}" in LABELS else str(name)

    over = label("note.population_over", lang, v=src(info["over"])) if info.get("over") else ""
    how = f" ({info['file']})" if info.get("file") else label("note.population_how", lang)
    notes = [label("note.population", lang, n=info["total"], src=src(info["source"]), over=over,
                   how=how)]
    if info["source"] == RASTER:
        if info["stand_in_homes"]:
            notes.append(label("note.raster_stand_in", lang, n=info["stand_in_homes"],
                               p=info["stand_in_residents"]))
        if info["homes_in_empty_cells"]:
            notes.append(label("note.raster_empty", lang, n=info["homes_in_empty_cells"]))
    if info["source"] == ZONES:
        if info["stand_in_homes"]:
            notes.append(label("note.zone_stand_in", lang, n=info["stand_in_homes"],
                               p=info["stand_in_residents"]))
        if info.get("zones_off_area"):
            notes.append(label("note.zones_off", lang, n=info["zones_off_area"],
                               p=info["residents_off_area"]))
        if info.get("zones_crossing"):
            notes.append(label("note.zones_crossing", lang, n=info["zones_crossing"],
                               p=info["residents_beyond_edge"]))
    if info.get("homes_outside"):
        what = label("note.the_raster" if info["source"] == RASTER else "note.every_zone", lang)
        kept = src(info.get("over") or "buildings estimate")
        notes.append(label("note.homes_outside", lang, n=info["homes_outside"], what=what,
                           kept=kept, p=info["residents_outside"]))
    return notes
