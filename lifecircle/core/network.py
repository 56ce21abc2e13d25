"""The walking network as compressed arrays.

:class:`WalkNetwork` holds the projected street segments and a CSR adjacency (forward and
reversed) with travel time in seconds as arc cost. It is built straight from the street
segments (no networkx detour); :meth:`WalkNetwork.to_networkx` gives an osmnx-compatible
``MultiDiGraph`` for users who want one, off the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from lifecircle.errors import NetworkError, NoWalkableStreetsError
from lifecircle.settings import DEFAULTS, Settings


@dataclass
class CSR:
    """Directed adjacency: arcs of node ``i`` are ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray   # int64, n_nodes + 1
    indices: np.ndarray  # int32 target node per arc
    weights: np.ndarray  # float64 cost (seconds) per arc

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    def to_scipy(self):
        n = self.n_nodes
        return csr_matrix((self.weights, self.indices, self.indptr), shape=(n, n))


def reduce_by_key(key: np.ndarray, values: np.ndarray, ufunc=np.minimum):
    """Sorted unique ``key`` and ``ufunc`` (e.g. np.minimum) over the values of each key:
    one stable sort and a ``reduceat`` (``ufunc.at`` is much slower)."""
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    if len(key) == 0:
        return key, values
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[start], ufunc.reduceat(values, start)


def build_csr(n_nodes: int, src: np.ndarray, dst: np.ndarray, cost: np.ndarray) -> CSR:
    """CSR from arc lists, keeping the cheapest of parallel arcs (scipy would sum them)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    cost = np.asarray(cost, dtype=np.float64)
    key, cost = reduce_by_key(src * max(n_nodes, 1) + dst, cost, np.minimum)
    src, dst = np.divmod(key, max(n_nodes, 1))
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return CSR(indptr, dst.astype(np.int32), cost)


@dataclass
class WalkNetwork:
    """Projected walking network.

    Edge ``e`` runs from node ``edge_u[e]`` to ``edge_v[e]`` with ``edge_len[e]`` metres along
    ``edge_geom[e]`` (which starts at ``edge_u``). ``edge_oneway[e]`` forbids walking v→u.
    """

    crs: pyproj.CRS
    node_osmid: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_len: np.ndarray
    edge_oneway: np.ndarray
    edge_geom: np.ndarray
    speed_mps: float
    edge_highway: np.ndarray | None = None
    edge_name: np.ndarray | None = None
    #: True for segments around and across pedestrian areas (:func:`plaza_segments`): they
    #: carry walks, but homes and facilities attach only to the other (mapped) ways.
    edge_area: np.ndarray | None = None
    #: What :func:`prune_components` left out (counts, see there); None when nothing was pruned
    #: (a network built from arrays or loaded from an output folder).
    pruned: dict | None = None
    #: Geometries of the left-out segments (projected), to tell which points they would
    #: have captured.
    pruned_geom: np.ndarray | None = field(default=None, repr=False)
    _forward: CSR | None = field(default=None, repr=False)
    _reverse: CSR | None = field(default=None, repr=False)
    _tree: shapely.STRtree | None = field(default=None, repr=False)
    _snap_tree: shapely.STRtree | None = field(default=None, repr=False)

    def __post_init__(self):
        length = np.asarray(self.edge_len, dtype=np.float64)
        bad = ~np.isfinite(length) | (length < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NetworkError(
                f"{int(bad.sum())} edge length(s) are negative or NaN (first: edge {i}, "
                f"length {length[i]!r}); edge lengths must be finite and >= 0",
                zh=f"{int(bad.sum())} 条边的长度为负数或 NaN（第一条：边 {i}，长度 {length[i]!r}）；"
                   "边长须为有限且 >= 0 的数",
            )
        if not (np.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise NetworkError(f"walking speed must be positive, got {self.speed_mps!r} m/s",
                               zh=f"步行速度须为正数，实为 {self.speed_mps!r} m/s")
        n = len(self.node_x)
        for name in ("edge_u", "edge_v"):
            arr = getattr(self, name)
            if len(arr) and (arr.min() < 0 or arr.max() >= n):
                raise NetworkError(f"{name} holds node indices outside 0..{n - 1}",
                                   zh=f"{name} 含有超出 0..{n - 1} 的节点编号")
        self.edge_len = length

    # ---------------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.node_x)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @property
    def edge_cost(self) -> np.ndarray:
        """Seconds to walk each edge."""
        return self.edge_len / self.speed_mps

    def _arcs(self):
        two = ~self.edge_oneway
        src = np.concatenate([self.edge_u, self.edge_v[two]]).astype(np.int64)
        dst = np.concatenate([self.edge_v, self.edge_u[two]]).astype(np.int64)
        cost = np.concatenate([self.edge_cost, self.edge_cost[two]])
        return src, dst, cost

    @property
    def forward(self) -> CSR:
        """Arcs in walking direction."""
        if self._forward is None:
            src, dst, cost = self._arcs()
            self._forward = build_csr(self.n_nodes, src, dst, cost)
        return self._forward

    @property
    def reverse(self) -> CSR:
        """Arcs reversed: a search on it from facilities gives the time *to* them."""
        if self._reverse is None:
            src, dst, cost = self._arcs()
            self._reverse = build_csr(self.n_nodes, dst, src, cost)
        return self._reverse

    @property
    def tree(self) -> shapely.STRtree:
        """Spatial index of every edge (positions are edge indices)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.edge_geom)
        return self._tree

    @property
    def snap_edges(self) -> np.ndarray:
        """Indices of the edges points attach to: all but those of pedestrian areas."""
        if self.edge_area is None or not np.any(self.edge_area):
            return np.arange(self.n_edges)
        return np.flatnonzero(~np.asarray(self.edge_area, dtype=bool))

    @property
    def snap_tree(self) -> shapely.STRtree:
        """Spatial index of :attr:`snap_edges` (positions index into ``snap_edges``)."""
        if self.edge_area is None or not np.any(self.edge_area):
            return self.tree
        if self._snap_tree is None:
            self._snap_tree = shapely.STRtree(self.edge_geom[self.snap_edges])
        return self._snap_tree

    def release_indexes(self, reverse: bool = True) -> None:
        """Drop the search graphs and spatial indexes built on first use (:attr:`forward`,
        :attr:`reverse` unless ``reverse`` is False, :attr:`tree`, :attr:`snap_tree`): a save
        uses none of them (a million walking nodes: ~150 MB). Each is built again when next
        asked for; the network itself is unchanged."""
        self._forward = self._tree = self._snap_tree = None
        if reverse:
            self._reverse = None

    # ---------------------------------------------------------------------------------------
    def edge_columns(self) -> dict[str, np.ndarray]:
        """The edges' attribute columns (u, v, length, oneway; highway and area if known)."""
        data = {"u": self.edge_u, "v": self.edge_v, "length": self.edge_len,
                "oneway": self.edge_oneway}
        if self.edge_highway is not None:
            data["highway"] = self.edge_highway
        if self.edge_area is not None:
            data["area"] = self.edge_area
        return data

    def edges_gdf(self) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(self.edge_columns(), geometry=self.edge_geom, crs=self.crs)

    def nodes_gdf(self) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"osmid": self.node_osmid},
                                geometry=shapely.points(self.node_x, self.node_y), crs=self.crs)

    def to_networkx(self):
        """An osmnx-compatible ``MultiDiGraph`` (projected; ``length`` m, ``travel_time`` s).

        Node keys are the network's node indices; ``osmid`` keeps the OSM id. Edges carry
        their ``geometry`` (reversed on the v→u arc of a two-way street), as osmnx's simplified
        edges do, so the merged degree-2 chains keep their shape.
        """
        import networkx as nx

        g = nx.MultiDiGraph(crs=self.crs)
        g.graph["crs"] = self.crs.to_string()
        for i in range(self.n_nodes):
            g.add_node(i, x=float(self.node_x[i]), y=float(self.node_y[i]),
                       osmid=int(self.node_osmid[i]))
        cost = self.edge_cost
        geom = self.edge_geom if len(self.edge_geom) == self.n_edges else None
        for e in range(self.n_edges):
            u, v = int(self.edge_u[e]), int(self.edge_v[e])
            attrs = {"length": float(self.edge_len[e]), "travel_time": float(cost[e]),
                     "oneway": bool(self.edge_oneway[e]), "edge": e}
            if geom is not None:
                attrs["geometry"] = geom[e]
            g.add_edge(u, v, **attrs)
            if not self.edge_oneway[e]:
                if geom is not None:
                    attrs = {**attrs, "geometry": geom[e].reverse()}
                g.add_edge(v, u, **attrs)
        return g

    # ---------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, x, y, u, v, length=None, oneway=None, speed_kmh: float = 4.0,
                    crs="EPSG:3857") -> WalkNetwork:
        """A network from plain arrays (straight edges between node coordinates).

        ``length`` overrides the straight-line length (it may be longer, never checked).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        geom = shapely.linestrings(np.stack([np.stack([x[u], y[u]], 1),
                                             np.stack([x[v], y[v]], 1)], 1)) if len(u) else \
            np.array([], dtype=object)
        if length is None:
            length = shapely.length(geom)
        oneway = np.zeros(len(u), dtype=bool) if oneway is None else np.asarray(oneway, dtype=bool)
        return cls(pyproj.CRS(crs), np.arange(len(x)), x, y, u, v, np.asarray(length, float),
                   oneway, geom, speed_kmh / 3.6)


def prune_components(n_nodes: int, eu: np.ndarray, ev: np.ndarray, length: np.ndarray,
                     min_share: float = DEFAULTS.min_component_share,
                     min_m: float = DEFAULTS.min_component_m):
    """Which segments and nodes to keep: the connected pieces big enough to walk in.

    Pieces are weakly connected components (a one-way segment connects both ways here). The
    piece with the longest total street length is always kept; another one only when its
    length is at least ``min_share`` × the largest's and at least ``min_m`` metres (see
    :class:`~lifecircle.settings.Settings`). Returns ``(keep_edge, keep_node, report)``;
    ``report`` counts the pieces, nodes, segments and metres kept and left out.
    """
    m = len(eu)
    if m == 0:
        return np.zeros(0, bool), np.zeros(n_nodes, bool), {}
    adj = coo_matrix((np.ones(m), (eu, ev)), shape=(n_nodes, n_nodes))
    k, label = connected_components(adj, directed=False)
    comp_len = np.bincount(label[eu], weights=length, minlength=k)
    used = np.zeros(k, bool)
    used[label[eu]] = True   # isolated nodes (no segment) are not pieces
    largest = int(np.argmax(comp_len))
    keep_comp = used & (comp_len >= min_share * comp_len[largest]) & (comp_len >= min_m)
    keep_comp[largest] = True
    keep_node = keep_comp[label]
    keep_edge = keep_node[eu]
    drop = used & ~keep_comp
    report = {
        "components": int(used.sum()),
        "components_kept": int(keep_comp.sum()),
        "components_dropped": int(drop.sum()),
        "nodes_kept": int(keep_node.sum()),
        "nodes_dropped": int((~keep_node & used[label]).sum()),
        "segments_kept": int(keep_edge.sum()),
        "segments_dropped": int((~keep_edge).sum()),
        "length_kept_m": round(float(comp_len[keep_comp].sum()), 1),
        "length_dropped_m": round(float(comp_len[drop].sum()), 1),
        "largest_dropped_m": round(float(comp_len[drop].max()), 1) if drop.any() else 0.0,
    }
    return keep_edge, keep_node, report


# --------------------------------------------------------------------------------------------
# pedestrian areas (plazas)

_AREA_CLOSED = frozenset({"no", "private", "military"})
_AREA_FOOT_OPEN = frozenset({"yes", "designated", "permissive", "official", "destination"})
#: A street node this close to a plaza (metres) enters it; links may graze its outline by this.
PLAZA_TOLERANCE_M = 0.5
#: Ids of plaza outline vertices that are no street node: PLAZA_ID0, PLAZA_ID0 - 1, … (far
#: from OSM's positive ids and from the -1, -2, … of nodes added by :func:`split_and_link`).
PLAZA_ID0 = -(10**12)
#: Links across a plaza are left out where the others already walk it within this many metres.
PLAZA_SLACK_M = 1.0
#: Plazas with more entries and reflex corners than this are crossed by straight links only.
PLAZA_MAX_POINTS = 150


def _line_coords(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All coordinates of ``lines`` and where each line's start: line ``i`` holds
    ``coords[off[i]:off[i + 1]]`` (one coordinate pass; no per-line owner index)."""
    off = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(shapely.get_num_coordinates(lines), out=off[1:])
    return shapely.get_coordinates(lines), off


def _end_points(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last coordinates of each (non-empty) line, from one coordinate array
    (``shapely.get_point`` takes ~0.6 s on 100k lines)."""
    coords, off = _line_coords(lines)
    return coords[off[:-1]], coords[off[1:] - 1]


def pedestrian_areas(features: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """The walkable pedestrian areas among ``features`` (WGS-84): ``highway=pedestrian`` ways
    with ``area=yes`` and ``highway=pedestrian`` multipolygon relations, open to pedestrians
    (the access rules of the street filter). Columns ``osm_id``, ``name``, geometry."""
    empty = gpd.GeoDataFrame({"osm_id": [], "name": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"),
                             crs="EPSG:4326")
    if features is None or len(features) == 0 or "tags" not in features:
        return empty
    keep, names = [], []
    kinds = features["osm_type"]
    for i, t in enumerate(features["tags"].tolist()):
        if not isinstance(t, dict) or t.get("highway") != "pedestrian":
            continue
        if not (t.get("area") == "yes" or str(kinds.iat[i]) == "relation"):
            continue   # a closed pedestrian way without area=yes is a loop street, read as one
        foot = t.get("foot")
        if foot in _AREA_CLOSED or (t.get("access") in _AREA_CLOSED and foot not in _AREA_FOOT_OPEN):
            continue
        keep.append(i)
        names.append(t.get("name:zh") or t.get("name") or "")
    sub = features.iloc[keep]
    poly = np.isin(shapely.get_type_id(sub.geometry.to_numpy()), (3, 6))
    if not poly.any():
        return empty
    return gpd.GeoDataFrame({"osm_id": sub["osm_id"].to_numpy()[poly],
                             "name": np.array(names, dtype=object)[poly]},
                            geometry=sub.geometry.to_numpy()[poly], crs=features.crs)


def plaza_segments(streets: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Walkable segments for pedestrian areas, in the (projected) CRS of both inputs.

    A plaza is walked along its outline and straight across it: every outline segment becomes
    a walkable segment, and straight links join the points where streets enter the plaza —
    street nodes on its outline and street ends or junctions inside it (or within
    :data:`PLAZA_TOLERANCE_M`) — with each other and with the outline's reflex corners, where
    the link stays inside the plaza. That is the visibility graph of the entries: a shortest
    walk across a plaza bends only at reflex corners, so walks across are exact (not a
    skeleton's detour) up to :data:`PLAZA_SLACK_M`: a link is left out where the links kept
    already walk that pair within it (see :func:`_plaza_links`). Outline vertices that are
    street nodes keep their OSM id; the others get ids from :data:`PLAZA_ID0` down (one per
    coordinate, so two plazas sharing a corner connect). Columns as the street segments (``u``, ``v``, ``osm_id``,
    ``highway``, ``name``, ``oneway_foot``) and ``area`` (True).
    """
    cols = {"u": [], "v": [], "osm_id": [], "highway": [], "name": [], "oneway_foot": [], "area": []}
    if areas is None or len(areas) == 0:
        return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=streets.crs), crs=streets.crs)
    start, end = _end_points(streets.geometry.to_numpy())
    ids = np.concatenate([streets["u"].to_numpy(np.int64), streets["v"].to_numpy(np.int64)])
    node_id, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    seg = _plaza_segments(node_id, np.concatenate([start, end])[first],
                          np.bincount(inverse, minlength=len(node_id)), areas)
    n = len(seg["u"])
    return gpd.GeoDataFrame(
        {"u": seg["u"], "v": seg["v"], "osm_id": seg["osm_id"],
         "highway": np.full(n, "pedestrian", dtype=object), "name": seg["name"],
         "oneway_foot": np.zeros(n, bool), "area": np.ones(n, bool)},
        geometry=seg["geometry"] if n else gpd.GeoSeries([], crs=streets.crs), crs=streets.crs)


def _plaza_segments(node_id: np.ndarray, node_xy: np.ndarray, degree: np.ndarray,
                    areas: gpd.GeoDataFrame) -> dict:
    """:func:`plaza_segments` from the street nodes: their ids (ascending), coordinates and
    number of segments. Returns arrays ``u``, ``v``, ``osm_id``, ``name``, ``geometry``.

    Per plaza part, in order: its outline sides, then its links across. The outline sides,
    the entries and the vertex ids of every plaza are found at once with array operations;
    only the plazas with two entries or more are visited one by one (for their links)."""
    tol = PLAZA_TOLERANCE_M
    # the street nodes on or near each plaza (within the tolerance), all in one query, among
    # the nodes in grid cells the plazas' boxes touch
    parts_all, part_of = shapely.get_parts(areas.geometry.to_numpy(), return_index=True)
    n_parts = len(parts_all)
    cand = _in_boxes(node_xy, shapely.bounds(parts_all), tol)
    hit_part, hit = shapely.STRtree(shapely.points(node_xy[cand])).query(
        parts_all, predicate="dwithin", distance=tol)
    hit_node = cand[hit]

    # the outline of every plaza at once: each part (not empty, of positive area) oriented with
    # its interior on the left of every ring; the rings of 3 vertices or more (the closing one
    # left out), in order
    used = ~shapely.is_empty(parts_all) & ~(shapely.area(parts_all) <= 0)
    oriented = np.full(n_parts, None, dtype=object)
    oriented[used] = shapely.orient_polygons(parts_all[used], exterior_cw=False)
    rings, ring_part = shapely.get_rings(oriented[used], return_index=True)
    ring_part = np.flatnonzero(used)[ring_part]
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    size = np.bincount(owner, minlength=len(rings)) - 1
    ring_ok = size >= 3
    first = np.cumsum(size + 1) - (size + 1)
    pos = _ranges(first[ring_ok], size[ring_ok])
    xy = coords[pos]
    length = size[ring_ok]
    local = pos - np.repeat(first[ring_ok], length)
    base = np.repeat(np.cumsum(length) - length, length)
    nxt = base + (local + 1) % np.repeat(length, length)
    prev = base + (local - 1) % np.repeat(length, length)
    vpart = np.repeat(ring_part[ring_ok], length)     # the part of each vertex (ascending)
    v_start = np.searchsorted(vpart, np.arange(n_parts + 1))
    # vertex ids: a street node's (within 1 cm), else one per coordinate (to the cm) from
    # PLAZA_ID0 down, in order of first appearance
    vid, matched = _nearest_node(xy, node_xy, _sorted_unique(hit_node), node_id)
    vid[~matched] = PLAZA_ID0 - _first_seen_rank(_cm_keys(xy[~matched]))
    side = vid != vid[nxt]
    d1, d2 = xy - xy[prev], xy[nxt] - xy
    reflex = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] < -1e-9

    # the entries of each part: its vertices that are street nodes, and the street ends and
    # junctions inside it (or touching it); one per node id (sorted), at the coordinate of its
    # first mention (the outline vertex before the street node)
    inner = used[hit_part] & (degree[hit_node] != 2)
    i_part = hit_part[inner]
    i_node = hit_node[inner][np.argsort(i_part, kind="stable")]
    i_part = np.sort(i_part, kind="stable")
    ent_part = np.concatenate([vpart[matched], i_part])
    ent_id = np.concatenate([vid[matched], node_id[i_node]])
    ent_xy = np.concatenate([xy[matched], node_xy[i_node]])
    o = np.lexsort((np.arange(len(ent_id)), ent_id, ent_part))
    ent_part, ent_id, ent_xy = ent_part[o], ent_id[o], ent_xy[o]
    once = np.r_[True, (ent_part[1:] != ent_part[:-1]) | (ent_id[1:] != ent_id[:-1])] if len(o) else \
        np.zeros(0, bool)
    ent_part, ent_id, ent_xy = ent_part[once], ent_id[once], ent_xy[once]
    n_ent = np.bincount(ent_part, minlength=n_parts)
    e_start = np.zeros(n_parts + 1, dtype=np.int64)
    np.cumsum(n_ent, out=e_start[1:])

    # the outline sides of every part a street enters (a part no street enters is a piece of
    # its own, left out anyway)
    out = np.flatnonzero(side & (n_ent[vpart] > 0))
    s_lines = shapely.linestrings(np.stack([xy[out], xy[nxt[out]]], 1)) if len(out) else \
        np.zeros(0, dtype=object)
    # the links across each part with two entries or more
    l_part, l_u, l_v, l_xy, l_npts = [], [], [], [], []
    for p in np.flatnonzero(n_ent >= 2).tolist():
        eid = ent_id[e_start[p]:e_start[p + 1]]
        exy = ent_xy[e_start[p]:e_start[p + 1]]
        vs = slice(v_start[p], v_start[p + 1])
        rxy = xy[vs][reflex[vs] & ~matched[vs]]
        if len(eid) + len(rxy) > PLAZA_MAX_POINTS:
            rxy = rxy[:0]   # a very intricate outline: straight links only where they fit
        pts, links = _plaza_links(oriented[p].buffer(tol), exy, rxy, PLAZA_SLACK_M)
        for i, j, path in links:
            l_part.append(p)
            l_u.append(eid[i])
            l_v.append(eid[j])
            l_xy.append(pts[path])
            l_npts.append(len(path))
    n_links = len(l_part)
    l_lines = shapely.linestrings(np.concatenate(l_xy), indices=np.repeat(np.arange(n_links), l_npts)) \
        if n_links else np.zeros(0, dtype=object)
    # per part: its sides, then its links
    seg_part = np.concatenate([vpart[out], np.asarray(l_part, dtype=np.int64)])
    order = np.argsort(2 * seg_part + np.r_[np.zeros(len(out), np.int64), np.ones(n_links, np.int64)],
                       kind="stable")
    area_of = part_of[seg_part[order]]
    return {"u": np.concatenate([vid[out], np.asarray(l_u, dtype=np.int64)])[order],
            "v": np.concatenate([vid[nxt[out]], np.asarray(l_v, dtype=np.int64)])[order],
            "osm_id": areas["osm_id"].to_numpy(np.int64)[area_of],
            "name": np.asarray(areas["name"].to_numpy(), dtype=object)[area_of],
            "geometry": np.concatenate([np.asarray(s_lines, dtype=object),
                                        np.asarray(l_lines, dtype=object)])[order]}


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` by a sort (numpy's hashing ``unique`` is several times slower on
    integer ids)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


def _in_boxes(xy: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """Indices of the points ``xy`` in a grid cell that a box (``xmin, ymin, xmax, ymax``
    rows; NaN rows ignored) grown by ``margin`` touches: every point within ``margin`` of a
    box and some more, without a spatial index over all the points."""
    box = box[np.isfinite(box).all(axis=1)]
    if len(box) == 0 or len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = box[:, :2] - margin, box[:, 2:] + margin
    x0, y0 = lo.min(axis=0)
    x1, y1 = hi.max(axis=0)
    cell = max((x1 - x0) / 2048, (y1 - y0) / 2048, 25.0)   # at most 2048 x 2048 cells
    # cells from one monotone formula for boxes and points alike
    nx, ny = int(np.floor((x1 - x0) / cell)) + 1, int(np.floor((y1 - y0) / cell)) + 1
    grid = np.zeros((nx, ny), dtype=bool)
    ci = np.floor((lo - (x0, y0)) / cell).astype(np.int64)
    cj = np.floor((hi - (x0, y0)) / cell).astype(np.int64) + 1
    for a, b, c, d in zip(ci[:, 0].tolist(), cj[:, 0].tolist(), ci[:, 1].tolist(), cj[:, 1].tolist()):
        grid[a:b, c:d] = True
    inside = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
    pc = np.floor((xy[inside] - (x0, y0)) / cell).astype(np.int64)
    return inside[grid[np.minimum(pc[:, 0], nx - 1), np.minimum(pc[:, 1], ny - 1)]]


def _nearest_node(xy: np.ndarray, node_xy: np.ndarray, near: np.ndarray, node_id: np.ndarray,
                  within: float = 0.01):
    """The id of the street node nearest each point of ``xy`` among the nodes ``near``
    (indices, ascending; every node that may lie within ``within`` of a point), where one is
    within ``within`` metres (of two at the same distance, the lower id): ``(ids, found)``."""
    ids = np.zeros(len(xy), dtype=np.int64)
    if len(near) == 0 or len(xy) == 0:
        return ids, np.zeros(len(xy), dtype=bool)
    tree = cKDTree(node_xy[near])
    if len(near) == 1:
        dist, j = tree.query(xy, distance_upper_bound=within)
    else:
        dist2, j2 = tree.query(xy, k=2, distance_upper_bound=within)
        dist, j = dist2[:, 0], j2[:, 0]
        tie = np.isfinite(dist2[:, 1]) & (dist2[:, 1] == dist)
        j[tie] = np.minimum(j2[tie, 0], j2[tie, 1])
    found = np.isfinite(dist)
    ids[found] = node_id[near[j[found]]]
    return ids, found


def _cm_keys(xy: np.ndarray) -> np.ndarray:
    """``(round(x, 2), round(y, 2))`` of every point as integers (hundredths), the same
    grouping as Python's ``round`` (correctly rounded decimals): ``rint(100 * x)``, and
    Python's ``round`` where ``100 * x`` is within a millionth of a half."""
    q = xy * 100.0
    key = np.rint(q)
    near_half = np.flatnonzero((np.abs(q - np.floor(q) - 0.5) < 1e-6).any(axis=1))
    for k in near_half.tolist():
        key[k] = [round(round(float(xy[k, 0]), 2) * 100.0), round(round(float(xy[k, 1]), 2) * 100.0)]
    return key.astype(np.int64)


def _first_seen_rank(keys: np.ndarray) -> np.ndarray:
    """For rows of ``keys``: 0 for the first distinct row, 1 for the second, … in order of
    first appearance (equal rows get the same number)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


#: Where on a straight link across a plaza :func:`_covered` looks for a point outside it.
_PROBES = (0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875)
#: A probe this far outside a plaza's walkable area rules its link out (see :func:`_covered`).
_PROBE_MARGIN_M = 1e-3


def _covered(inside, pts: np.ndarray, a: np.ndarray, b: np.ndarray, lines: np.ndarray | None = None) -> np.ndarray:
    """``shapely.covers(inside, lines)`` for the straight lines ``pts[a]`` -> ``pts[b]``
    (``inside`` prepared), the same answers, faster: a line with a point outside ``inside``
    grown by :data:`_PROBE_MARGIN_M` (a million times the rounding of the point) is not
    covered, and a point-in-polygon test costs a fraction of GEOS's covers on a line that
    leaves a plaza (~3 us on a plaza of some hundred corners); covers decides the rest.
    ``lines`` (optional) are the lines already made; else only the undecided are made."""
    outer = shapely.buffer(inside, _PROBE_MARGIN_M)
    shapely.prepare(outer)
    maybe = np.ones(len(a), dtype=bool)
    for t in _PROBES:
        idx = np.flatnonzero(maybe)
        if len(idx) == 0:
            break
        pa, pb = pts[a[idx]], pts[b[idx]]
        q = pa + t * (pb - pa)
        maybe[idx[~shapely.contains_xy(outer, q[:, 0], q[:, 1])]] = False
    ok = np.zeros(len(a), dtype=bool)
    if maybe.any():
        ok[maybe] = shapely.covers(inside, lines[maybe] if lines is not None else shapely.linestrings(
            np.stack([pts[a[maybe]], pts[b[maybe]]], 1)))
    return ok


def _plaza_links(inside, exy: np.ndarray, rxy: np.ndarray, slack_m: float):
    """Shortest walks inside a plaza between its entries ``exy``, bending at reflex corners
    ``rxy``: ``(pts, links)``, ``links`` a list of ``(i, j, path)`` (``pts[path]`` the walk
    from entry ``i`` to entry ``j``, ``pts`` the entries and then the corners) for a set of
    entry pairs such that every pair's walk over the kept links is at most ``slack_m`` longer
    than its shortest walk inside the plaza (a greedy spanner: pairs in order of distance, a
    link only where the kept ones are longer; a long pedestrian street mapped as an area has
    dozens of entries on each side). The pairs are scanned in growing blocks (one array
    comparison each) up to the next one the kept links serve too badly."""
    pts = np.concatenate([exy, rxy])
    k, n_ent = len(pts), len(exy)
    a, b = np.triu_indices(k, 1)
    shapely.prepare(inside)
    ok = _covered(inside, pts, a, b)
    w = np.maximum(np.hypot(*(pts[b] - pts[a]).T), 1e-9)   # sparse matrices drop zeros
    graph = csr_matrix((w[ok], (a[ok], b[ok])), shape=(k, k))
    dist, pred = dijkstra(graph, directed=False, indices=np.arange(n_ent), return_predecessors=True)
    d = dist[:, :n_ent]
    kept = np.full((n_ent, n_ent), np.inf)     # walks over the links kept so far
    np.fill_diagonal(kept, 0.0)
    ii, jj = np.triu_indices(n_ent, 1)
    dd = d[ii, jj]
    order = np.argsort(dd, kind="stable")
    ii, jj = ii[order], jj[order]
    limit = dd[order] + slack_m                # a pair needs a link where kept > limit
    n_pairs = int(np.isfinite(limit).sum())    # the unreachable pairs sort last
    links = []
    at, block = 0, 64
    while at < n_pairs:
        stop = min(at + block, n_pairs)
        need = np.flatnonzero(kept[ii[at:stop], jj[at:stop]] > limit[at:stop])
        if len(need) == 0:
            at, block = stop, 2 * block
            continue
        p = at + int(need[0])
        i, j = ii[p], jj[p]
        dij = d[i, j]
        kept = np.minimum(kept, np.minimum(kept[:, [i]] + dij + kept[[j], :],
                                           kept[:, [j]] + dij + kept[[i], :]))
        path = [j]
        while path[-1] != i:
            path.append(pred[i, path[-1]])
        links.append((i, j, path[::-1]))
        at, block = p + 1, 64
    return pts, links


def build_network(streets: gpd.GeoDataFrame | list, crs, settings: Settings = DEFAULTS,
                  source: str = "streets", contract: bool = True,
                  prune: bool = True, areas: gpd.GeoDataFrame | None = None,
                  release=None) -> WalkNetwork:
    """Project street segments and build the :class:`WalkNetwork`.

    ``streets`` are the segments of :class:`lifecircle.io.sources.OSMData` (``u``, ``v`` OSM node
    ids, geometry from u to v). Duplicate segments are dropped; node coordinates come from the
    segment end points. ``prune`` leaves out small disconnected pieces
    (:func:`prune_components`; counts in ``WalkNetwork.pruned``). ``areas``: the tagged
    features (``OSMData.features``); their pedestrian areas become walkable
    (:func:`pedestrian_areas`, :func:`plaza_segments`). ``contract`` merges runs
    through degree-2 nodes into one edge each (:func:`contract_chains`; exact, and 4-5x fewer
    nodes on OSM data).

    Everything is done on the columns as arrays (the streets frame is neither copied nor
    extended); the segments' coordinates are read once. ``streets`` may be handed over in a
    one-item list (taken out of it, as :func:`lifecircle.splitread.project_streets` takes
    its frame): when they are all 2D LineStrings, their geometries (a city's millions of
    two-point lines, ~265 bytes each, more than all the arrays built here) are then dropped
    as soon as their coordinates and lengths are read, and the network's edge geometries
    are made from those coordinates: the same network, bit for bit. ``release`` (optional)
    is called once they are dropped (analyze hands the freed heap back to the system).

    ``areas`` may also be a function returning the features, called once everything that
    depends on the streets alone is done (projection, coordinates, lengths, node ids, and the
    chain walk kernel loaded): the split read's streets child (:mod:`lifecircle.splitread`)
    does that part while the features are still being read, and waits for them only where the
    plazas are joined in.
    """
    handed = isinstance(streets, list)
    if handed:
        streets = streets.pop()
    if streets is None or len(streets) == 0:
        raise NoWalkableStreetsError(source, "no walkable streets in the study area", zh="研究范围内没有可步行的道路")
    # already projected (analyze projects the streets once): used as they are, not copied
    same = streets.crs is not None and streets.crs.is_exact_same(pyproj.CRS.from_user_input(crs))
    proj = streets if same else streets.to_crs(crs)
    geom = proj.geometry.to_numpy()
    coords, off = _line_coords(geom)
    u_osm = proj["u"].to_numpy(np.int64)
    v_osm = proj["v"].to_numpy(np.int64)
    m = len(u_osm)
    oneway = proj["oneway_foot"].to_numpy(bool) if "oneway_foot" in proj else np.zeros(m, bool)
    highway = _shared_objects(proj["highway"]) if "highway" in proj else None
    name = _shared_objects(proj["name"]) if "name" in proj else None
    area = np.zeros(m, bool)
    del proj
    drop = handed and _plain_lines(geom)
    if drop:        # the lengths now; the lines are made again from the coordinates
        length = shapely.length(geom)
        del streets
        geom = None
        if release is not None:
            release()
    osmids, first, inverse = np.unique(np.concatenate([u_osm, v_osm]), return_index=True,
                                       return_inverse=True)
    del u_osm, v_osm
    if callable(areas):      # all the streets alone decide is done: now the features
        if contract and m >= COMPILED_WALK_MIN:
            _load_chain_walk()   # the kernel's load from numba's cache (~0.4 s) before the wait
        areas = areas()
    plazas = pedestrian_areas(areas)
    if len(plazas):
        ends = np.concatenate([coords[off[:-1]], coords[off[1:] - 1]])
        extra = _plaza_segments(osmids, ends[first], np.bincount(inverse, minlength=len(osmids)),
                                plazas.to_crs(crs))
        del ends
        k = len(extra["u"])
        if k:   # appended after the streets: arrays as the streets', plus their nodes
            xc, xoff = _line_coords(extra["geometry"])
            if drop:
                length = np.concatenate([length, shapely.length(extra["geometry"])])
            else:
                geom = np.concatenate([geom, extra["geometry"]])
            coords = np.concatenate([coords, xc])
            off = np.concatenate([off, off[-1] + xoff[1:]])
            oneway = np.concatenate([oneway, np.zeros(k, bool)])
            area = np.concatenate([area, np.ones(k, bool)])
            highway = np.concatenate([highway, np.full(k, "pedestrian", dtype=object)]) \
                if highway is not None else None
            name = np.concatenate([name, extra["name"]]) if name is not None else None
            x_ids = np.concatenate([extra["u"], extra["v"]])
            x_ids = _sorted_unique(x_ids)
            at = np.minimum(np.searchsorted(osmids, x_ids), len(osmids) - 1)
            new = x_ids[osmids[at] != x_ids]        # ids only plazas have (sorted)
            # the ids of both, sorted (as np.unique of all): where the streets' ids go
            moved = np.arange(len(osmids)) + np.searchsorted(new, osmids)
            both = np.empty(len(osmids) + len(new), dtype=osmids.dtype)
            both[moved] = osmids
            both[np.searchsorted(osmids, new) + np.arange(len(new))] = new
            osmids = both
            inverse = np.concatenate([moved[inverse[:m]], np.searchsorted(osmids, extra["u"]),
                                      moved[inverse[m:]], np.searchsorted(osmids, extra["v"])])
            m += k
    del first
    eu, ev = inverse[:m], inverse[m:]
    start, end = coords[off[:-1]], coords[off[1:] - 1]
    x = np.full(len(osmids), np.nan)
    y = np.full(len(osmids), np.nan)
    x[ev], y[ev] = end[:, 0], end[:, 1]
    x[eu], y[eu] = start[:, 0], start[:, 1]
    del start, end
    if not drop:
        length = shapely.length(geom)
    # one segment per node pair (the shortest); OSM has overlapping ways now and then. A
    # footway along a plaza's outline is the same straight segment as the outline's: the
    # mapped way stays (points attach to it), not the plaza's copy
    sel = np.flatnonzero(_shortest_per_pair(eu, ev, length + np.where(area, 1e-3, 0.0)))
    eu, ev = eu[sel].astype(np.int64), ev[sel].astype(np.int64)
    del inverse              # (the temporaries go as soon as they are used: a city's are GBs)
    length, oneway, area = length[sel], oneway[sel], area[sel]
    pruned, pruned_geom = None, None
    if prune:
        keep_edge, keep_node, pruned = prune_components(
            len(osmids), eu, ev, length, settings.min_component_share, settings.min_component_m)
        out = sel[~keep_edge & ~area]                 # plaza edges never take points
        pruned_geom = _segment_lines(coords, off[out], off[out + 1]) if drop else geom[out]
        del out
        new_index = np.cumsum(keep_node) - 1
        osmids, x, y = osmids[keep_node], x[keep_node], y[keep_node]
        eu, ev = new_index[eu[keep_edge]], new_index[ev[keep_edge]]
        length, oneway, area, sel = length[keep_edge], oneway[keep_edge], area[keep_edge], sel[keep_edge]
        del keep_edge, keep_node, new_index
    highway = highway[sel] if highway is not None else None
    name = name[sel] if name is not None else None
    if contract:
        osmids, x, y, eu, ev, length, oneway, geom, highway, name, area = contract_chains(
            osmids, x, y, eu, ev, length, oneway, None if drop else geom[sel], highway, name,
            area, coords=(coords, off[sel], off[sel + 1]))
    else:
        geom = _segment_lines(coords, off[sel], off[sel + 1]) if drop else geom[sel]
    return WalkNetwork(pyproj.CRS(crs), osmids, x, y, eu, ev, length, oneway, geom,
                       settings.walk_speed_mps, highway, name, edge_area=area, pruned=pruned,
                       pruned_geom=pruned_geom)


def _plain_lines(geom: np.ndarray) -> bool:
    """Whether every geometry is a non-empty 2D LineString (made again from its coordinates
    as :func:`_line_coords` reads them, it is the same line)."""
    return bool((shapely.get_type_id(geom) == 1).all() and not shapely.has_z(geom).any()
                and not shapely.is_empty(geom).any())


def _segment_lines(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """LineStrings of ``xy[lo[i]:hi[i]]`` for every i, made in one call."""
    count = hi - lo
    off = np.zeros(len(count) + 1, dtype=np.int64)
    np.cumsum(count, out=off[1:])
    if not len(count):
        return np.empty(0, dtype=object)
    return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, xy[_ranges(lo, count)], (off,))


def _shared_objects(column: pd.Series) -> np.ndarray:
    """``column.to_numpy()`` as an object array whose equal values are one Python object each
    (a street's highway and name repeat; ``to_numpy`` of a string column makes an object per
    row: ~60 bytes each, hundreds of MB for a city). Missing values are taken as they are."""
    codes, uniques = pd.factorize(column)
    values = np.empty(len(uniques) + 1, dtype=object)
    values[:-1] = np.asarray(uniques, dtype=object)
    out = values[codes]
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        out[missing] = column.iloc[missing].to_numpy()
    return out


def _shortest_per_pair(eu: np.ndarray, ev: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Which segments to keep: of the segments joining the same two nodes (either way), the
    one of least ``cost`` (NaN last; of equal ones, the first). The segments are grouped by
    one sort of a node-pair key; only the pairs with more than one segment are ordered."""
    keep = np.ones(len(eu), dtype=bool)
    if len(eu) < 2:
        return keep
    n = int(max(eu.max(), ev.max())) + 1
    key = np.minimum(eu, ev).astype(np.int64) * n + np.maximum(eu, ev)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    dup = ks[1:] == ks[:-1]
    if not dup.any():
        return keep
    group = np.zeros(len(ks), dtype=bool)      # the members of pairs with several segments
    group[1:] |= dup
    group[:-1] |= dup
    idx = order[group]
    c = cost[idx]
    nan = np.isnan(c)
    best = idx[np.lexsort((idx, np.where(nan, 0.0, c), nan, key[idx]))]
    kb = key[best]
    keep[best[1:][kb[1:] == kb[:-1]]] = False
    return keep


def contract_chains(osmid, x, y, eu, ev, length, oneway, geom, highway=None, name=None,
                    area=None, *, coords=None):
    """Merge runs of segments through degree-2 nodes into one edge each.

    OSM ways are cut at every node; only junctions and dead ends matter for routing. A chain's
    length is the sum of its segments and its geometry their concatenation in walking order,
    so walking times along it are unchanged (exact), while searches settle ~4-5x fewer nodes.
    One-way segments are never merged with others, nor pedestrian-area segments (``area``,
    optional: returned as the last item when given) with other ways.

    The chains are walked by a compiled kernel (:func:`_chain_walk_loop`; in Python below
    :data:`COMPILED_WALK_MIN` segments); lengths, attributes and the merged
    geometries are then built from arrays in a few vectorised calls (linear in the segments).
    ``coords`` (optional): ``(xy, lo, hi)``, segment ``e``'s coordinates being
    ``xy[lo[e]:hi[e]]``, when the caller has them (else they are read from ``geom``); with
    ``coords``, ``geom`` may be None (every edge's line is then made from them).
    """
    n = len(x)
    m = len(eu)
    deg = np.bincount(eu, minlength=n) + np.bincount(ev, minlength=n)
    pinned = np.zeros(n, dtype=bool)
    pinned[eu[oneway]] = True
    pinned[ev[oneway]] = True
    if area is not None:
        area = np.asarray(area, dtype=bool)
        has_area = np.zeros(n, bool)
        has_way = np.zeros(n, bool)
        has_area[eu[area]] = True
        has_area[ev[area]] = True
        has_way[eu[~area]] = True
        has_way[ev[~area]] = True
        pinned |= has_area & has_way
        del has_area, has_way
    internal = (deg == 2) & ~pinned
    del deg, pinned
    # incidence lists
    ends = np.concatenate([eu, ev])
    inc_edge = np.argsort(ends, kind="stable")
    inc_edge %= m
    inc_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=inc_ptr[1:])
    del ends
    walk = _compiled_chain_walk() if m >= COMPILED_WALK_MIN else _chain_walk_py
    path_e, path_f, c_start, c_end, c_len = walk(
        np.ascontiguousarray(eu, dtype=np.int64), np.ascontiguousarray(ev, dtype=np.int64),
        inc_edge.astype(np.int64, copy=False), inc_ptr, internal)
    del inc_edge, inc_ptr
    c_start, c_end, c_len = c_start.copy(), c_end.copy(), c_len.copy()   # not the walk's m-long buffers
    keep_node = ~internal
    del internal
    new_index = np.cumsum(keep_node) - 1
    c_first = np.zeros(len(c_len), dtype=np.int64)
    np.cumsum(c_len[:-1], out=c_first[1:])
    first_e = path_e[c_first]
    single = c_len == 1
    # a single segment keeps its own u -> v (a one-way segment walked from its v end must
    # not be turned round), length and geometry; chains never hold one-way segments (their
    # end nodes are pinned): two-way edges from the start of the walk to its end
    nu = new_index[np.where(single, eu[first_e], c_start)]
    nv = new_index[np.where(single, ev[first_e], c_end)]
    del new_index, c_start, c_end
    length = np.asarray(length, dtype=np.float64)
    nlen = length[first_e].copy()
    multi = np.flatnonzero(~single)
    if len(multi):
        nlen[multi] = _chain_sums(length[path_e], c_first[multi], c_len[multi])
    now = np.asarray(oneway, dtype=bool)[first_e] & single
    if geom is None:      # only the coordinates: the single segments' lines made from them
        ngeom = np.empty(len(first_e), dtype=object)
        one = np.flatnonzero(single)
        ngeom[one] = _segment_lines(coords[0], coords[1][first_e[one]], coords[2][first_e[one]])
        del one
    else:
        ngeom = np.asarray(geom, dtype=object)[first_e]
    if len(multi):
        ngeom[multi] = _chain_lines(geom, path_e, path_f, c_first[multi], c_len[multi], coords)
    out = (osmid[keep_node], x[keep_node], y[keep_node], nu.astype(np.int64), nv.astype(np.int64),
           nlen, now, ngeom,
           np.asarray(highway, dtype=object)[first_e] if highway is not None else None,
           np.asarray(name, dtype=object)[first_e] if name is not None else None)
    return out + (area[first_e],) if area is not None else out


#: Networks with fewer segments walk their chains in Python (same result): a district's walk
#: takes less time than compiling the kernel on a first run (~1 s with an empty numba cache).
COMPILED_WALK_MIN = 50_000


def _chain_walk_loop(eu, ev, inc_edge, inc_ptr, internal):  # pragma: no cover - compiled
    """The chains of :func:`lifecircle.core.network.contract_chains`: from every node that is
    not ``internal`` (in id order, its segments in incidence order) walk each segment not yet
    walked on through internal nodes; then the closed loops made only of internal nodes,
    each from its lowest segment's u end (that node stops being internal: ``internal`` is
    changed in place). Returns the segments in walking order, whether each was walked
    u -> v, and per chain its start node, end node and number of segments."""
    m = len(eu)
    visited = np.zeros(m, dtype=np.bool_)
    path_e = np.empty(m, dtype=np.int64)
    path_f = np.empty(m, dtype=np.bool_)
    c_start = np.empty(m, dtype=np.int64)
    c_end = np.empty(m, dtype=np.int64)
    c_len = np.empty(m, dtype=np.int64)
    k = 0
    nc = 0
    for phase in range(2):
        for i in range(len(internal) if phase == 0 else m):
            if phase == 0:
                if internal[i]:
                    continue
                lo, hi = inc_ptr[i], inc_ptr[i + 1]
            else:
                lo, hi = i, i + 1
            for j in range(lo, hi):
                e = inc_edge[j] if phase == 0 else j
                if visited[e]:
                    continue
                start = i if phase == 0 else eu[e]
                if phase == 1:
                    internal[start] = False
                cur = start
                count = 0
                while True:
                    visited[e] = True
                    forward = eu[e] == cur
                    path_e[k] = e
                    path_f[k] = forward
                    k += 1
                    count += 1
                    nxt = ev[e] if forward else eu[e]
                    if not internal[nxt] or nxt == start:
                        break
                    a = inc_edge[inc_ptr[nxt]]
                    b = inc_edge[inc_ptr[nxt] + 1]
                    e = b if a == e else a
                    if visited[e]:
                        break
                    cur = nxt
                c_start[nc] = start
                c_end[nc] = nxt
                c_len[nc] = count
                nc += 1
    return path_e[:k], path_f[:k], c_start[:nc], c_end[:nc], c_len[:nc]


_COMPILED: dict = {}


def _compiled_chain_walk():
    """:func:`_chain_walk_loop` compiled by numba (cached on disk), made on first use: numba
    is imported only when a network this large is built, not with this module."""
    if "walk" not in _COMPILED:
        import numba

        _COMPILED["walk"] = numba.njit(cache=True)(_chain_walk_loop)
    return _COMPILED["walk"]


def _load_chain_walk() -> None:
    """Load (or compile) the chain walk for the argument types :func:`contract_chains` passes,
    by a walk of one segment (the result is dropped)."""
    one = np.zeros(1, dtype=np.int64)
    _compiled_chain_walk()(one, one + 1, np.zeros(2, dtype=np.int64), np.arange(3, dtype=np.int64),
                           np.zeros(2, dtype=bool))


def _chain_walk_py(eu, ev, inc_edge, inc_ptr, internal):
    """:func:`_chain_walk_loop` with Python lists, for small networks (faster than compiling
    the kernel on a first run)."""
    m = len(eu)
    eu_l, ev_l, inc_l, ptr_l = eu.tolist(), ev.tolist(), inc_edge.tolist(), inc_ptr.tolist()
    internal_l = internal.tolist()
    visited = [False] * m
    path_e: list[int] = []
    path_f: list[bool] = []
    c_start: list[int] = []
    c_end: list[int] = []
    c_len: list[int] = []

    def walk(start: int, e: int) -> None:
        cur, k = start, 0
        while True:
            visited[e] = True
            forward = eu_l[e] == cur
            path_e.append(e)
            path_f.append(forward)
            k += 1
            nxt = ev_l[e] if forward else eu_l[e]
            if not internal_l[nxt] or nxt == start:
                break
            a, b = inc_l[ptr_l[nxt]], inc_l[ptr_l[nxt] + 1]
            e = b if a == e else a
            if visited[e]:
                break
            cur = nxt
        c_start.append(start)
        c_end.append(nxt)
        c_len.append(k)

    for s in np.flatnonzero(~internal).tolist():
        for j in range(ptr_l[s], ptr_l[s + 1]):
            if not visited[inc_l[j]]:
                walk(s, inc_l[j])
    for e in range(m):  # closed loops made only of degree-2 nodes
        if not visited[e]:
            internal_l[eu_l[e]] = False
            walk(eu_l[e], e)
    internal[:] = internal_l
    return (np.array(path_e, dtype=np.int64), np.array(path_f, dtype=bool),
            np.array(c_start, dtype=np.int64), np.array(c_end, dtype=np.int64),
            np.array(c_len, dtype=np.int64))


def _chain_sums(values: np.ndarray, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``values[first[i]:first[i] + count[i]].sum()`` for every i, bit for bit as numpy sums
    each slice (pairwise): the chains of one length summed as rows of a matrix, which numpy
    sums row by row the same way (``np.add.reduceat`` adds in another order)."""
    out = np.empty(len(first))
    order = np.argsort(count, kind="stable")
    bounds = np.flatnonzero(np.r_[True, count[order][1:] != count[order][:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        rows = order[a:b]
        k = int(count[rows[0]])
        out[rows] = values[first[rows][:, None] + np.arange(k)].sum(axis=1)
    return out


def _chain_lines(geom, path_e, path_f, first, count, coords=None) -> np.ndarray:
    """One LineString per chain: its segments' coordinates in walking order (each segment
    reversed where walked v -> u, the shared point once), built in one call. ``coords``:
    ``(xy, lo, hi)`` as in :func:`contract_chains`, else read from ``geom``."""
    if coords is None:
        xy, off = _line_coords(geom)
        lo, hi = off[:-1], off[1:]
    else:
        xy, lo, hi = coords
    # the chains' steps, flat
    step = _ranges(first, count)
    e = path_e[step]
    fwd = path_f[step]
    del step
    later = np.ones(len(e), dtype=np.int8)     # every step but a chain's first skips its start
    later[np.r_[0, np.cumsum(count)[:-1]]] = 0
    e_lo, e_hi = lo[e], hi[e]
    del e
    npts = e_hi - e_lo - later                 # the points each step adds
    base = np.where(fwd, e_lo + later, e_hi - 1 - later)
    del e_lo, e_hi, later
    # point j of a step is base + j forward, base - j backward: from one running count
    sign = np.where(fwd, 1, -1).astype(np.int8)
    out_start = np.cumsum(npts) - npts
    pos = np.repeat(base - sign * out_start, npts)
    del base, out_start
    run = np.arange(len(pos), dtype=np.int64)
    run *= np.repeat(sign, npts)
    pos += run
    del run
    chain_pts = np.zeros(len(count) + 1, dtype=np.int64)
    np.cumsum(np.add.reduceat(npts, np.r_[0, np.cumsum(count)[:-1]]) if len(count) else npts[:0],
              out=chain_pts[1:])
    return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, xy[pos], (chain_pts,))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``starts[i] + arange(counts[i])`` for every i, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return np.arange(total, dtype=np.int64) - np.repeat(off[:-1] - starts, counts)


def split_and_link(net: WalkNetwork, end_edge, end_off, link_len, link_geom=None):
    """The network with new two-way walking links added, and how positions move onto it.

    Link ``k`` joins the points ``(end_edge[2k], end_off[2k])`` and ``(end_edge[2k+1],
    end_off[2k+1])`` (edge, metres from its u end) with ``link_len[k]`` metres. An end in the
    middle of an edge splits that edge at its exact offset (pieces keep the edge's one-way
    rule; the first piece keeps the edge's index, the others are appended), so every walk of
    today's network keeps its length. Returns ``(network, remap)``: ``remap(edge, offset)``
    gives the positions of points (homes, facilities, other links' ends) on the new network.
    """
    from shapely.ops import substring

    e_end = np.asarray(end_edge, dtype=np.int64)
    s_end = np.asarray(end_off, dtype=np.float64)
    L = net.edge_len
    inner = (s_end > 0) & (s_end < L[e_end])
    splits: dict[int, np.ndarray] = {}
    for e in np.unique(e_end[inner]).tolist():
        splits[e] = np.unique(s_end[inner & (e_end == e)])
    n0 = net.n_nodes
    node_x, node_y = [net.node_x], [net.node_y]
    geom = net.edge_geom.copy()
    new_u, new_v, new_len, new_ow, new_geom, new_src = [], [], [], [], [], []

    def add(u, v, length, oneway, g, src):   # one appended edge (src: the edge it came from)
        for lst, val in zip((new_u, new_v, new_len, new_ow, new_geom, new_src), (u, v, length, oneway, g, src)):
            lst.append(val)

    node_of: dict[tuple[int, float], int] = {}
    piece_index: dict[int, np.ndarray] = {}
    nxt_node = n0
    nxt_edge = net.n_edges
    edge_u = net.edge_u.copy()
    edge_v = net.edge_v.copy()
    edge_len = net.edge_len.copy()
    for e, ss in splits.items():
        pts = shapely.line_interpolate_point(net.edge_geom[e], ss)
        xy = shapely.get_coordinates(pts)
        ids = np.arange(nxt_node, nxt_node + len(ss))
        nxt_node += len(ss)
        node_x.append(xy[:, 0])
        node_y.append(xy[:, 1])
        for s, i in zip(ss.tolist(), ids.tolist()):
            node_of[(e, s)] = i
        starts = np.r_[0.0, ss]
        ends = np.r_[ss, L[e]]
        nodes = np.r_[net.edge_u[e], ids, net.edge_v[e]]
        idx = np.r_[e, np.arange(nxt_edge, nxt_edge + len(ss))]
        nxt_edge += len(ss)
        piece_index[e] = idx
        g = net.edge_geom[e]
        for j in range(len(starts)):
            pg = substring(g, starts[j], ends[j])
            if j == 0:
                edge_v[e] = nodes[1]
                edge_len[e] = ends[0] - starts[0]
                geom[e] = pg
            else:
                add(nodes[j], nodes[j + 1], ends[j] - starts[j], bool(net.edge_oneway[e]), pg, e)

    def node_at(e, s):
        if s <= 0:
            return int(net.edge_u[e])
        if s >= L[e]:
            return int(net.edge_v[e])
        return node_of[(int(e), float(s))]

    x = np.concatenate(node_x)
    y = np.concatenate(node_y)
    n_links = len(e_end) // 2
    for k in range(n_links):
        a = node_at(e_end[2 * k], s_end[2 * k])
        b = node_at(e_end[2 * k + 1], s_end[2 * k + 1])
        g = link_geom[k] if link_geom is not None and link_geom[k] is not None else \
            shapely.linestrings([[x[a], y[a]], [x[b], y[b]]])
        add(a, b, float(link_len[k]), False, g, -1)
    src = np.asarray(new_src, dtype=np.int64)

    def extra(arr, fill):
        if arr is None:
            return None
        add = np.array([arr[i] if i >= 0 else fill for i in src.tolist()], dtype=object)
        return np.concatenate([np.asarray(arr, dtype=object), add])

    out = WalkNetwork(net.crs, np.r_[net.node_osmid, -1 - np.arange(nxt_node - n0)], x, y,
                      np.r_[edge_u, np.asarray(new_u, dtype=np.int64)],
                      np.r_[edge_v, np.asarray(new_v, dtype=np.int64)],
                      np.r_[edge_len, np.asarray(new_len, dtype=np.float64)],
                      np.r_[net.edge_oneway, np.asarray(new_ow, dtype=bool)],
                      np.concatenate([geom, np.array(new_geom + [None], dtype=object)[:-1]]),
                      net.speed_mps, extra(net.edge_highway, "link"), extra(net.edge_name, ""),
                      edge_area=None if net.edge_area is None else np.r_[
                          np.asarray(net.edge_area, dtype=bool),
                          np.array([bool(net.edge_area[i]) if i >= 0 else False for i in src.tolist()],
                                   dtype=bool)])

    def remap(edge, offset, side: str = "left"):
        """``side``: where a point exactly at a cut goes on a one-way edge. "left" (homes):
        the end of the piece before it, so it leaves through the cut node; "right"
        (facilities): the start of the piece after it, so it is reached from the cut node."""
        edge = np.asarray(edge, dtype=np.int64).copy()
        offset = np.asarray(offset, dtype=np.float64).copy()
        for e, ss in splits.items():
            m = edge == e
            if not m.any():
                continue
            j = np.searchsorted(ss, offset[m], side=side)   # pieces start at 0, ss...
            starts = np.r_[0.0, ss]
            edge[m] = piece_index[e][j]
            offset[m] = offset[m] - starts[j]
        return edge, offset

    return out, remap


def cut_edges(net: WalkNetwork, edge, offset):
    """The network cut at points (a closed gate): edge ``edge[i]`` is split at ``offset[i]``
    (metres from its u end, strictly inside the edge) and the two pieces end at two different
    nodes, so no walk passes the cut. Returns ``(network, remap, sides)``: ``remap`` moves
    positions as in :func:`split_and_link`; ``sides[i]`` = ``(edge_a, off_a, edge_b, off_b)``,
    the two sides of cut ``i`` on the new network (a link of length 0 between them reopens it).
    """
    from shapely.ops import substring

    e_cut = np.asarray(edge, dtype=np.int64)
    s_cut = np.asarray(offset, dtype=np.float64)
    L = net.edge_len
    if len(e_cut) and not ((s_cut > 0) & (s_cut < L[e_cut])).all():
        raise ValueError("cuts must lie strictly inside their edges")
    splits = {e: np.unique(s_cut[e_cut == e]) for e in np.unique(e_cut).tolist()}
    edge_u, edge_v, edge_len = net.edge_u.copy(), net.edge_v.copy(), net.edge_len.copy()
    geom = net.edge_geom.copy()
    xs, ys = [net.node_x], [net.node_y]
    new_u, new_v, new_len, new_ow, new_geom, new_src = [], [], [], [], [], []

    def add(u, v, length, oneway, g, src):
        for lst, val in zip((new_u, new_v, new_len, new_ow, new_geom, new_src), (u, v, length, oneway, g, src)):
            lst.append(val)

    piece_index: dict[int, np.ndarray] = {}
    side_of: dict[tuple[int, float], tuple] = {}
    nxt_node, nxt_edge = net.n_nodes, net.n_edges
    for e, ss in splits.items():
        m = len(ss)
        xy = shapely.get_coordinates(shapely.line_interpolate_point(net.edge_geom[e], ss))
        left = np.arange(nxt_node, nxt_node + m)            # end of the piece before each cut
        right = np.arange(nxt_node + m, nxt_node + 2 * m)   # start of the piece after it
        nxt_node += 2 * m
        xs += [xy[:, 0], xy[:, 0]]
        ys += [xy[:, 1], xy[:, 1]]
        starts, ends = np.r_[0.0, ss], np.r_[ss, L[e]]
        heads = np.r_[net.edge_u[e], right]
        tails = np.r_[left, net.edge_v[e]]
        idx = np.r_[e, np.arange(nxt_edge, nxt_edge + m)]
        nxt_edge += m
        piece_index[e] = idx
        for j in range(m + 1):
            pg = substring(net.edge_geom[e], starts[j], ends[j])
            if j == 0:
                edge_v[e], edge_len[e], geom[e] = tails[0], ends[0], pg
            else:
                add(heads[j], tails[j], ends[j] - starts[j], bool(net.edge_oneway[e]), pg, e)
        for j, s in enumerate(ss.tolist()):
            side_of[(e, s)] = (int(idx[j]), float(ends[j] - starts[j]), int(idx[j + 1]), 0.0)
    src = np.asarray(new_src, dtype=np.int64)

    def extra(arr):
        if arr is None:
            return None
        return np.concatenate([np.asarray(arr, dtype=object),
                               np.array([arr[i] for i in src.tolist()], dtype=object)])

    out = WalkNetwork(net.crs, np.r_[net.node_osmid, -1 - np.arange(nxt_node - net.n_nodes)],
                      np.concatenate(xs), np.concatenate(ys),
                      np.r_[edge_u, np.asarray(new_u, dtype=np.int64)],
                      np.r_[edge_v, np.asarray(new_v, dtype=np.int64)],
                      np.r_[edge_len, np.asarray(new_len, dtype=np.float64)],
                      np.r_[net.edge_oneway, np.asarray(new_ow, dtype=bool)],
                      np.concatenate([geom, np.array(new_geom + [None], dtype=object)[:-1]]),
                      net.speed_mps, extra(net.edge_highway), extra(net.edge_name),
                      edge_area=None if net.edge_area is None else np.r_[
                          np.asarray(net.edge_area, dtype=bool),
                          np.asarray(net.edge_area, dtype=bool)[src]])

    def remap(edge, offset, side: str = "left"):
        edge = np.asarray(edge, dtype=np.int64).copy()
        offset = np.asarray(offset, dtype=np.float64).copy()
        for e, ss in splits.items():
            m = edge == e
            if m.any():
                j = np.searchsorted(ss, offset[m], side=side)
                edge[m] = piece_index[e][j]
                offset[m] = offset[m] - np.r_[0.0, ss][j]
        return edge, offset

    sides = [side_of[(int(e), float(s))] for e, s in zip(e_cut, s_cut)]
    return out, remap, sides


#: The grid cell (metres) of :func:`data_extent`: about a street block or two, so that an
#: extract's ragged edge or a park without streets inside a district is no hole in its data.
EXTENT_CELL_M = 250.0
#: Features a cell holds at least for :func:`data_extent` to count it without a street: an
#: extract that keeps whole the ways crossing its edge brings their tagged nodes from far
#: outside (Xinjiekou's: a metro line's stop positions 5 km east of its last street, at most 2
#: in a cell; the other shared extracts none); where only features are mapped there are more.
EXTENT_MIN_FEATURES = 3


def data_extent(net: WalkNetwork | None, boxes=(), cell: float = EXTENT_CELL_M):
    """The area the data covers, in the network's (projected) CRS; None when it holds nothing.

    The cells of a ``cell``-metre grid that hold a node of the network or a point of the
    streets it left out (:attr:`WalkNetwork.pruned_geom`), or :data:`EXTENT_MIN_FEATURES` of
    ``boxes`` (arrays of projected ``xmin, ymin, xmax, ymax`` rows: the features' bounds) no
    wider nor taller than a cell, merged, their holes filled (a lake or a park inside a
    district is inside its data). A larger feature is no sign of data where it reaches: an
    extract keeps whole the ways and relations that cross its edge (a river, a land use
    running on for kilometres). Unlike the box of the streets, it leaves out what an extract
    that is no rectangle does not hold (the empty corner of an L-shaped one) and keeps the
    places where only features lie (buildings, shops, a park beyond the last street)."""
    points = [np.empty((0, 2))]
    if net is not None:
        points.append(np.column_stack([net.node_x, net.node_y]))
        if net.pruned_geom is not None and len(net.pruned_geom):
            points.append(shapely.get_coordinates(net.pruned_geom))
    points = np.vstack(points)
    keys = [_cell_keys(points[np.isfinite(points).all(axis=1)], cell)]
    rows = np.vstack([np.empty((0, 4))] + [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes])
    rows = rows[np.isfinite(rows).all(axis=1) & (rows[:, 2] - rows[:, 0] <= cell)
                & (rows[:, 3] - rows[:, 1] <= cell)]
    if len(rows):      # a box of at most a cell lies in the cells of its corners: each once
        corners = _cell_keys(np.vstack([rows[:, [0, 1]], rows[:, [2, 3]], rows[:, [0, 3]], rows[:, [2, 1]]]), cell)
        owner = np.tile(np.arange(len(rows)), 4)
        pairs = np.unique(np.column_stack([corners, owner]), axis=0)
        found, count = np.unique(pairs[:, 0], return_counts=True)
        keys.append(found[count >= EXTENT_MIN_FEATURES])
    key = np.unique(np.concatenate(keys))
    if not len(key):
        return None
    cx, cy = key >> 32, (key & 0xFFFFFFFF) - (1 << 31)
    # the cells tile the plane edge to edge: their coverage union is exact and fast
    union = shapely.coverage_union_all(shapely.box(cx * cell, cy * cell, (cx + 1) * cell, (cy + 1) * cell))
    parts = shapely.get_parts(union)
    parts = parts[shapely.get_type_id(parts) == 3]
    return shapely.union_all(shapely.polygons(shapely.get_exterior_ring(parts))) if len(parts) else None


def _cell_keys(xy: np.ndarray, cell: float) -> np.ndarray:
    """One int64 per point: its ``cell`` grid column (high half) and row (low half, offset)."""
    ij = (xy // cell).astype(np.int64)
    return (ij[:, 0] << 32) | (ij[:, 1] + (1 << 31))


def projected_bounds(frame: gpd.GeoDataFrame | None, crs) -> np.ndarray:
    """The bounds (``xmin, ymin, xmax, ymax`` rows) of ``frame``'s geometries in ``crs``: its
    own bounds' corners transformed (for :func:`data_extent`, at whose grid a box's turn in a
    projection does not count); empty for no frame or no rows."""
    if frame is None or not len(frame):
        return np.empty((0, 4))
    b = shapely.bounds(frame.geometry.to_numpy())
    if frame.crs is None or pyproj.CRS.from_user_input(crs) == frame.crs:
        return b
    t = pyproj.Transformer.from_crs(frame.crs, crs, always_xy=True)
    x, y = t.transform(np.concatenate([b[:, 0], b[:, 2], b[:, 0], b[:, 2]]),
                       np.concatenate([b[:, 1], b[:, 3], b[:, 3], b[:, 1]]))
    x, y = x.reshape(4, -1), y.reshape(4, -1)
    return np.column_stack([x.min(axis=0), y.min(axis=0), x.max(axis=0), y.max(axis=0)])
