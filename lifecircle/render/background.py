"""The map's background pieces from the OSM features (buildings, water, green areas, rivers:
projected to the analysis CRS and simplified), apart from :mod:`lifecircle.render.maps` so that
they can be made beside an analysis (:class:`lifecircle.result.MapPrep`) without importing
folium there (a quarter of a second holding the GIL the analysis's stages need).
:func:`lifecircle.render.maps.background_layers` places them within the budget.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import numpy as np
import shapely

_WATER = {"natural": {"water", "bay", "wetland"}, "waterway": {"riverbank", "dock"},
          "landuse": {"reservoir", "basin"}}
_GREEN = {"leisure": {"park", "garden", "pitch", "playground", "nature_reserve", "golf_course",
                      "recreation_ground", "common", "dog_park"},
          "landuse": {"grass", "forest", "meadow", "recreation_ground", "village_green", "cemetery",
                      "allotments", "orchard", "vineyard", "greenfield", "plant_nursery"},
          "natural": {"wood", "scrub", "grassland", "heath", "beach", "sand"}}


def _kinds(tags) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(building, water, green) flags of polygon features, in one pass over their tag dicts
    (the rules of :data:`_WATER` and :data:`_GREEN`, spelt out: a city has millions). Features
    share their tag dicts (the reader makes one per distinct set of tags), so each dict object
    is read once."""
    tags = np.asarray(tags, dtype=object)
    ids = np.fromiter(map(id, tags), dtype=np.uint64, count=len(tags))
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    b, wt, g = _kinds_each(tags[first])
    inv = inv.ravel()
    return b[inv], wt[inv], g[inv]


def _kinds_each(tags) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(tags)
    b, wt, g = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    w_nat, w_way, w_lu = _WATER["natural"], _WATER["waterway"], _WATER["landuse"]
    g_lei, g_lu, g_nat = _GREEN["leisure"], _GREEN["landuse"], _GREEN["natural"]
    for i, t in enumerate(tags):
        if not isinstance(t, dict) or not t:
            continue
        get = t.get
        b[i] = get("building", "no") != "no"
        nat, lu = get("natural"), get("landuse")
        if "water" in t or nat in w_nat or lu in w_lu or get("waterway") in w_way:
            wt[i] = True
        elif get("leisure") in g_lei or lu in g_lu or nat in g_nat:
            g[i] = True
    return b, wt, g


#: Background budget: coordinates drawn, all kinds together (≈ 20 bytes each in the page).
#: Las Palmas needs ~315,000. Kinds are placed in the order of
#: :data:`lifecircle.render.maps._BUDGET_ORDER`; one that does not fit what is left is
#: simplified further (areas and main streets), buildings above
#: :data:`lifecircle.render.maps.BACKGROUND_MAX_VERTICES` are merged into blocks (only up to
#: :data:`BACKGROUND_BLOCKS_MAX_VERTICES`: the merge costs seconds per 100,000 buildings), and
#: what still does not fit is left out — the legend says so.
BACKGROUND_BUDGET = 400_000
BACKGROUND_BLOCKS_MAX_VERTICES = 600_000


class _Once:
    """A value made once (a background piece: when the budget has room for it, or beforehand
    by :func:`feature_pieces` with ``make``) and handed out once: whoever places it holds it,
    not this (a city's water and green areas, projected, held here until the map is done, were
    tens of MB)."""

    def __init__(self, make):
        self._make, self._value = make, None

    def make(self) -> None:
        """Made now, handed out at the call."""
        if self._make is not None:
            self._value, self._make = self._make(), None

    def __call__(self):
        self.make()
        value, self._value = self._value, None
        return value

    def drop(self) -> None:
        """Never to be made (what it would be made from is let go)."""
        self._make = None


def feature_arrays(feats) -> tuple:
    """``(geometries, tag dicts, crs)`` of a features table (None: ``(None, None, None)``), as
    :func:`feature_pieces` reads them."""
    if feats is None:
        return None, None, None
    tags = feats["tags"].to_numpy() if "tags" in feats else np.full(len(feats), None)
    return feats.geometry.to_numpy(), tags, feats.crs


def feature_pieces(geoms, all_tags, crs, metric, make: bool = False):
    """The background's pieces from the OSM features (their ``geoms`` in ``crs``, WGS-84, and
    their tag dicts; ``metric``: the analysis CRS): ``(parts, least, buildings)`` — water and green areas and rivers as
    :class:`_Once` values (projected and simplified when first asked), the least coordinates
    each area kind takes however simplified, and the buildings' raw coordinate count and their
    :class:`_Once` projected and simplified polygons (or None). ``make``: the pieces that could
    fit in the whole :data:`BACKGROUND_BUDGET` are made now (what :func:`background_layers`
    would make, worked out beforehand beside the analysis; the others stay unmade, as the
    budget leaves them out without making them)."""
    parts, least, buildings = {}, {}, None
    if geoms is None or not len(geoms):
        return parts, least, buildings
    types = shapely.get_type_id(geoms)

    def metric_of(g):
        return gpd.GeoSeries(g, crs=crs).to_crs(metric).to_numpy()

    is_poly, is_line = np.isin(types, (3, 6)), np.isin(types, (1, 5))
    # the polygons and lines by position: an array of them takes a reference to each, which
    # writes to the page of every geometry object, and beside the forked GeoPackage writer
    # (the map is drawn in the save) each page written is copied (a million walking nodes:
    # ~100 MB for the buildings alone, never drawn there); only the pieces made take theirs
    at_poly, at_line = np.flatnonzero(is_poly), np.flatnonzero(is_line)
    tags = all_tags[at_poly]
    is_b, is_w, is_g = _kinds(tags)
    ltags = all_tags[at_line]
    is_river = np.array([isinstance(t, dict) and t.get("waterway") in ("river", "canal", "stream")
                         for t in ltags], bool)

    def poly(sel):
        return geoms[at_poly[sel]]
    # made when their turn in the budget comes (and dropped once placed): a city's water
    # and green areas, projected and simplified, held together were hundreds of MB
    def areas(sel):
        g = shapely.simplify(metric_of(sel), 2.0)
        # one multipolygon of the parts (no union: overlaps draw the same)
        return shapely.get_parts(g[~shapely.is_empty(g)])

    def rivers(sel):
        return shapely.union_all(shapely.simplify(metric_of(sel), 3.0, preserve_topology=False))

    for kind, sel in (("water", is_w), ("green", is_g)):
        if sel.any():
            some = poly(sel)
            parts[kind] = _Once(functools.partial(areas, some))
            least[kind] = 4 * _polygon_parts(some)
            del some
    if is_river.any():
        parts["river"] = _Once(functools.partial(rivers, geoms[at_line[is_river]]))
    if is_b.any():
        # counted over every feature (a geometry read, not referenced), summed over the buildings
        raw = int(shapely.get_num_coordinates(geoms)[at_poly[is_b]].sum())
        parts["buildings"] = raw      # made in background_layers, only if they can be drawn
        # for drawing: without topology kept (10x faster; a sliver that self-touches draws the same)
        buildings = _Once(lambda: shapely.simplify(metric_of(poly(is_b)), 1.0, preserve_topology=False))
    if make:
        # the others are never made by background_layers (what is left of the budget is at
        # most all of it): what they would be made from is let go (a city's polygons, held
        # until the map)
        for kind in ("water", "river", "green"):
            if kind in parts:
                if least.get(kind, 0) <= BACKGROUND_BUDGET:
                    parts[kind].make()
                else:
                    parts[kind].drop()
        if buildings is not None and not (parts["buildings"] > BACKGROUND_BLOCKS_MAX_VERTICES
                                          and parts["buildings"] > BACKGROUND_BUDGET):
            buildings.make()
        elif buildings is not None:
            buildings = None
    return parts, least, buildings


def _polygon_parts(geoms) -> int:
    """The non-empty polygons of ``geoms`` (polygons and multipolygons), counting each part of a
    multipolygon. GEOS's topology-preserving simplification keeps every one, each ring of at
    least 4 coordinates, at any tolerance: 4 coordinates a part is the least they can take."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_empty(geoms)]
    multi = shapely.get_type_id(geoms) != 3
    if not multi.any():
        return len(geoms)
    each = shapely.get_parts(geoms[multi])
    return int((~multi).sum() + (~shapely.is_empty(each)).sum())
