"""Attaching points to the nearest walkable edge.

A point attaches to the nearest *edge* (not node): the straight leg from the point to the edge
and the partial walk along the edge both count. Points farther than the maximum snap distance
are unreachable, never attached far away.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from lifecircle.core import chunks
from lifecircle.core.network import WalkNetwork


@dataclass
class Snap:
    """Where each point sits on the network. Unreachable points have ``edge == -1``.

    A facility may have more entries than its point (an area entered from every street that
    touches it, see :func:`area_entries`): ``xedge``, ``xoff``, ``xleg`` are the extra
    entries' edges, offsets and legs, ``xown`` the position (in this Snap) of the facility
    each belongs to; None where there are none. ``len`` counts facilities, not entries;
    :meth:`take` and :meth:`concat` carry each facility's extra entries with it.
    """

    edge: np.ndarray     # int64 edge index or -1
    offset: np.ndarray   # metres from the edge's u end along its geometry
    leg: np.ndarray      # metres of straight leg from the point to the edge
    ambiguous: np.ndarray  # another edge lies within ``tie_m`` of the nearest one
    xedge: np.ndarray | None = None
    xoff: np.ndarray | None = None
    xleg: np.ndarray | None = None
    xown: np.ndarray | None = None

    @property
    def reachable(self) -> np.ndarray:
        return self.edge >= 0

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, index) -> Snap:
        out = Snap(self.edge[index], self.offset[index], self.leg[index], self.ambiguous[index])
        if self.xown is not None and len(self.xown):
            pos = np.arange(len(self.edge))[index]
            new = np.full(len(self.edge), -1, dtype=np.int64)
            new[pos] = np.arange(len(pos))
            keep = np.flatnonzero(new[self.xown] >= 0)
            out = out.with_extra(self.xedge[keep], self.xoff[keep], self.xleg[keep],
                                 new[self.xown[keep]])
        return out

    def with_extra(self, xedge, xoff, xleg, xown) -> Snap:
        """A copy with the extra entries given (ordered by owner)."""
        xown = np.asarray(xown, dtype=np.int64)
        o = np.argsort(xown, kind="stable")
        return Snap(self.edge, self.offset, self.leg, self.ambiguous,
                    np.asarray(xedge, dtype=np.int64)[o], np.asarray(xoff, dtype=np.float64)[o],
                    np.asarray(xleg, dtype=np.float64)[o], xown[o])

    def moved(self, remap, *args) -> Snap:
        """A copy with every entry's ``(edge, offset)`` moved by ``remap(edge, offset,
        *args)`` (onto a changed network)."""
        out = Snap(*remap(self.edge, self.offset, *args), self.leg, self.ambiguous)
        if self.n_extra:
            out = out.with_extra(*remap(self.xedge, self.xoff, *args), self.xleg, self.xown)
        return out

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every entry of every facility: ``(owner, edge, offset, leg)``, grouped by owner (a
        facility's own point first, then its extra entries)."""
        n = len(self.edge)
        own = np.arange(n, dtype=np.int64)
        if self.xown is None or not len(self.xown):
            return own, np.asarray(self.edge, dtype=np.int64), self.offset, self.leg
        own = np.concatenate([own, self.xown])
        o = np.argsort(own, kind="stable")
        return (own[o], np.concatenate([self.edge, self.xedge])[o],
                np.concatenate([self.offset, self.xoff])[o], np.concatenate([self.leg, self.xleg])[o])

    @property
    def n_extra(self) -> int:
        return 0 if self.xown is None else len(self.xown)

    @staticmethod
    def concat(snaps: list[Snap]) -> Snap:
        out = Snap(*(np.concatenate([getattr(s, f) for s in snaps])
                     for f in ("edge", "offset", "leg", "ambiguous")))
        if any(s.n_extra for s in snaps):
            base = np.cumsum([0] + [len(s) for s in snaps[:-1]])
            parts = [(s.xedge, s.xoff, s.xleg, s.xown + b) for s, b in zip(snaps, base) if s.n_extra]
            out = out.with_extra(*(np.concatenate(p) for p in zip(*parts)))
        return out


def snap_points(net: WalkNetwork, points, max_snap_m: float, tie_m: float = 1.0) -> Snap:
    """Snap projected shapely points (same CRS as ``net``) to their nearest edges (of
    :attr:`WalkNetwork.snap_edges`: not those across pedestrian areas).

    Polygons are snapped at their boundary (a park is reached at its edge, not its centroid):
    pass their boundary point nearest to the network via :func:`entry_points`.
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    edge = np.full(n, -1, dtype=np.int64)
    offset = np.zeros(n)
    leg = np.full(n, np.nan)
    ambiguous = np.zeros(n, dtype=bool)
    if n == 0 or net.n_edges == 0:
        return Snap(edge, offset, leg, ambiguous)
    valid = ~(shapely.is_missing(points) | shapely.is_empty(points))
    idx = np.flatnonzero(valid)
    tree, which = net.snap_tree, net.snap_edges   # pedestrian-area edges take no points
    kd, vown = _vertex_tree(net)
    out = (edge, offset, leg, ambiguous)
    # every point's answer is its own: the points go chunk by chunk, on both cores, each
    # chunk from its box query to its ties (the pairs and their distances of one chunk live
    # at a time, not those of every point)
    parts = chunks.spans(len(idx))
    if len(parts) > 1:
        chunks.warm(tree)
    chunks.run([lambda lo=lo, hi=hi: _snap_some(net, points, idx[lo:hi], tree, which, kd, vown,
                                                 max_snap_m, tie_m, out, len(parts) == 1)
                for lo, hi in parts])
    offset = np.clip(offset, 0.0, np.where(edge >= 0, net.edge_len[np.maximum(edge, 0)], 0.0))
    return Snap(edge, offset, leg, ambiguous)


def _snap_some(net: WalkNetwork, points: np.ndarray, idx: np.ndarray, tree, which, kd, vown,
               max_snap_m: float, tie_m: float, out: tuple, only: bool) -> None:
    """:func:`snap_points` for the valid points ``points[idx]``: their edge, offset (before
    clipping), leg and ambiguity set in the arrays ``out``. ``only``: the only chunk (its
    k-d search uses both cores itself)."""
    edge, offset, leg, ambiguous = out
    pts = points[idx]
    # How far to look: the edge of the edge vertex nearest to a point (one k-d query, not a
    # nearest search over the edges, ~3x faster) is at least as far as the nearest edge, and
    # never farther than max_snap_m. The edges whose boxes meet that reach (+ tie_m for the
    # tie test) around a point hold all its nearest edges, equidistant ones included; their
    # distances are GEOS's, as a nearest search's (a box query and the distances of its pairs
    # cost less than GEOS's dwithin query, which measures each pair, and then the distances)
    xy, owner = shapely.get_coordinates(pts, return_index=True)
    xy = xy[np.searchsorted(owner, np.arange(len(pts)))]          # a point of each geometry
    bound = np.full(len(pts), np.inf)
    if kd is not None and len(xy):
        v = _nearest_vertices(kd, xy, workers=chunks.threads() if only else 1)[1]
        bound = shapely.distance(pts, net.edge_geom[which[vown[v]]])
    reach = np.minimum(bound, max_snap_m) + max(tie_m, 0.0) + 1e-6
    pi, ei = tree.query(_boxes(shapely.bounds(pts), reach))
    if len(pi) > 1 and (pi[1:] < pi[:-1]).any():          # grouped by point (as GEOS gives)
        order = np.argsort(pi, kind="stable")
        pi, ei = pi[order], ei[order]
    ei = which[ei]
    dist = shapely.distance(pts[pi], net.edge_geom[ei])
    if not len(pi):
        return
    start = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
    best = np.repeat(np.minimum.reduceat(dist, start), np.diff(np.r_[start, len(pi)]))
    near = best <= max_snap_m
    at = np.flatnonzero((dist == best) & near)   # the nearest edges: several when equidistant
    if not len(at):             # boxes met edges, none within max_snap_m: nothing snaps
        return
    # of several equidistant edges take the lowest index (deterministic), flag ambiguity
    first = np.flatnonzero(np.r_[True, pi[at][1:] != pi[at][:-1]])
    target = idx[pi[at[first]]]
    edge[target] = np.minimum.reduceat(ei[at], first)
    leg[target] = dist[at[first]]
    ambiguous[idx[np.bincount(pi[at], minlength=len(idx)) > 1]] = True
    offset[target] = shapely.line_locate_point(net.edge_geom[edge[target]], points[target])
    # a near tie with a second edge makes the exact route depend on rounding: another edge
    # within tie_m of the nearest, by distance and by GEOS's dwithin (prepared, as a query)
    if tie_m > 0:
        close = np.flatnonzero(near & (dist <= best + tie_m) & (ei != edge[idx[pi]]))
        if len(close):
            q = shapely.points(shapely.get_coordinates(pts[pi[close]]))   # copies, to prepare
            shapely.prepare(q)
            close = close[shapely.dwithin(q, net.edge_geom[ei[close]], best[close] + tie_m)]
        ambiguous[idx[np.unique(pi[close])]] = True


def _boxes(bounds: np.ndarray, reach) -> np.ndarray:
    """Geometries whose envelopes are ``bounds`` (rows of x0, y0, x1, y1) widened by
    ``reach`` on every side, for an envelope query (two-point lines: cheaper than boxes)."""
    x0, y0, x1, y1 = bounds.T
    corners = np.empty((len(bounds), 2, 2))
    corners[:, 0, 0], corners[:, 0, 1] = x0 - reach, y0 - reach
    corners[:, 1, 0], corners[:, 1, 1] = x1 + reach, y1 + reach
    return shapely.linestrings(corners)


#: The k-d tree of the snap edges' vertices :func:`entry_points` built, for the
#: :func:`snap_points` call that follows it (the pipeline's order): taken by that call, so it
#: lives no longer than the snapping.
_LEFT: list = []


def _vertex_tree(net: WalkNetwork, leave: bool = False) -> tuple[cKDTree | None, np.ndarray]:
    """A k-d tree of the vertices of the snap edges (None without any) and the position (in
    :attr:`WalkNetwork.snap_edges`) of the edge of each vertex. Built unbalanced (sliding
    midpoint): less than half the build time, the same answers. ``leave``: keep it for the
    next call on the same network (see :data:`_LEFT`)."""
    which = net.snap_edges
    try:
        ref, geom, w, kd, owner = _LEFT.pop()
        if not (ref() is net and geom() is net.edge_geom and np.array_equal(w, which)):
            raise IndexError
    except IndexError:
        verts, owner = shapely.get_coordinates(net.edge_geom[which], return_index=True)
        kd = cKDTree(verts, balanced_tree=False, compact_nodes=False) if len(verts) else None
    if leave:
        _LEFT.append((weakref.ref(net), weakref.ref(net.edge_geom), which, kd, owner))
    return kd, owner


#: k-d searches end at this distance (m); the few points with no vertex as near search again.
_SEARCH_M = 60.0


def _nearest_vertices(kd: cKDTree, xy: np.ndarray, again: bool = True,
                      workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the vertex of ``kd`` nearest to each of ``xy`` (inf and
    ``kd.n`` where none is within :data:`_SEARCH_M`, unless searched ``again``), on
    ``workers`` threads (default :func:`~lifecircle.core.chunks.threads`)."""
    workers = chunks.threads() if workers is None else workers
    d, i = kd.query(xy, distance_upper_bound=_SEARCH_M, workers=workers)
    far = np.flatnonzero(i == kd.n)
    if again and len(far):
        d[far], i[far] = kd.query(xy[far], workers=workers)
    return d, i


#: Corners of a geometry whose nearest edge vertices bound its distance to the network.
_PROBES = 8

#: A geometry with more edges than this around it (a park crossed by paths) is left to GEOS's
#: nearest search, which stops at the first edge inside.
_CROWD = 24


def _nearest_edges(net: WalkNetwork, geoms: np.ndarray) -> np.ndarray:
    """``net.snap_tree.nearest(geoms)``: the position (in :attr:`WalkNetwork.snap_edges`) of
    the edge nearest to each geometry, the same one.

    GEOS's nearest search costs ~40 µs per building. Here the edge of the edge vertex nearest
    to any vertex of a geometry (a k-d query) is measured: only edges whose boxes come that
    near the geometry's box can be nearer, and GEOS measures them. Where one edge is nearer
    than every other by more than 1 µm it is the answer. The rest go to GEOS's nearest
    search, which picks among equidistant edges as it always did: ties (paths crossing a
    park, a building at a junction), geometries with more than :data:`_CROWD` edges around
    or no edge vertex within :data:`_SEARCH_M`, empty ones (refused there, as before).
    """
    which = net.snap_edges
    if not len(which):
        return net.snap_tree.nearest(geoms)
    # the k-d tree of the edge vertices (built without the GIL, for this search and the
    # snapping's) is built on another thread while this one builds the edges' STRtree (which
    # the network keeps)
    (kd, vown), tree = chunks.beside(lambda: _vertex_tree(net, leave=True), lambda: net.snap_tree)
    # each geometry's answer is its own: the geometries go chunk by chunk, on both cores
    out = np.empty(len(geoms), dtype=np.int64)
    parts = chunks.spans(len(geoms))
    if len(parts) > 1:
        chunks.warm(tree)

    def part(lo, hi):
        out[lo:hi] = _nearest_some(net, geoms[lo:hi], tree, which, kd, vown, len(parts) == 1)
    chunks.run([lambda lo=lo, hi=hi: part(lo, hi) for lo, hi in parts])
    return out


def _nearest_some(net: WalkNetwork, geoms: np.ndarray, tree, which, kd, vown,
                  only: bool) -> np.ndarray:
    """:func:`_nearest_edges` of ``geoms`` (``only``: the only chunk, its k-d search on
    both cores)."""
    out = np.full(len(geoms), -1, dtype=np.int64)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if len(owner):      # at most ~_PROBES corners of each geometry probe (any corner gives a bound)
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        count = np.diff(np.r_[first, len(owner)])
        rank = np.arange(len(owner)) - np.repeat(first, count)
        probe = rank % np.repeat(-(-count // _PROBES), count) == 0
        coords, owner = coords[probe], owner[probe]
    if len(coords) and kd is not None:
        d, iv = _nearest_vertices(kd, coords, workers=chunks.threads() if only else 1)
        found = iv < kd.n
        order = np.lexsort((d, owner))
        start = np.flatnonzero(np.r_[True, owner[order][1:] != owner[order][:-1]])
        pick = order[start]
        pick = pick[found[pick]]                       # geometries with a vertex near
        has = owner[pick]
        e0 = vown[iv[pick]]                            # the edge of the nearest vertex
        reach = shapely.distance(geoms[has], net.edge_geom[which[e0]]) + 2e-6
        gi, ei = tree.query(_boxes(shapely.bounds(geoms[has]), reach))
        few = np.bincount(gi, minlength=len(has)) <= _CROWD
        gi, ei = gi[few[gi]], ei[few[gi]]
        dist = shapely.distance(geoms[has[gi]], net.edge_geom[which[ei]])
        order = np.lexsort((dist, gi))
        gi, ei, dist = gi[order], ei[order], dist[order]
        first = np.flatnonzero(np.r_[True, gi[1:] != gi[:-1]]) if len(gi) else np.zeros(0, dtype=np.int64)
        # the nearest is alone when the second nearest (if any) is more than 1 µm farther
        nxt = first + 1
        alone = np.ones(len(first), dtype=bool)
        more = nxt < len(gi)
        more[more] = gi[nxt[more]] == gi[first[more]]
        alone[more] = dist[nxt[more]] > dist[first[more]] + 1e-6
        out[has[gi[first[alone]]]] = ei[first[alone]]
    rest = np.flatnonzero(out < 0)
    if len(rest):
        out[rest] = tree.nearest(geoms[rest])
    return out


#: Streets within this much (m) of a geometry's nearest street are as near (its tied entries).
_ENTRY_TIE_M = 1e-3


def _outlines(geoms: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Where each line or area is entered: a polygon's rings (never its inside), a line itself."""
    rim = geoms.copy()
    poly = np.isin(kind, (3, 6))
    rim[poly] = shapely.boundary(geoms[poly])
    return rim


def _streets_near(net: WalkNetwork, rim: np.ndarray, reach) -> tuple:
    """``(outline, edge, distance)`` of the street edges within ``reach`` (a number, or one per
    outline) of each outline: the edges whose boxes come that near the outline's box, then one
    distance a pair (cheaper than GEOS's dwithin query)."""
    gi, ei = net.snap_tree.query(_boxes(shapely.bounds(rim), reach))
    ei = net.snap_edges[ei]
    dist = chunks.made(lambda lo, hi: shapely.distance(rim[gi[lo:hi]], net.edge_geom[ei[lo:hi]]), len(gi))
    keep = dist <= (reach[gi] if np.ndim(reach) else reach)
    return gi[keep], ei[keep], dist[keep]


def _outline_points(net: WalkNetwork, rim: np.ndarray, gi, ei, dist) -> tuple:
    """``(xy, owner)``: for each outline-street pair, every point they share where the street
    touches or crosses the outline (however the street is cut into edges), else the outline's
    point nearest to the street."""
    cross = dist <= 1e-9
    gc, ec, ga, ea = gi[cross], ei[cross], gi[~cross], ei[~cross]
    shared = chunks.made(lambda lo, hi: shapely.intersection(rim[gc[lo:hi]], net.edge_geom[ec[lo:hi]]),
                         len(gc))
    xy_c, own_c = shapely.get_coordinates(shared, return_index=True)
    apart = chunks.made(lambda lo, hi: shapely.get_point(
        shapely.shortest_line(rim[ga[lo:hi]], net.edge_geom[ea[lo:hi]]), 0), len(ga))
    return (np.concatenate([xy_c, shapely.get_coordinates(apart)]),
            np.concatenate([gc[own_c], ga]))


def entry_points(net: WalkNetwork, geoms) -> np.ndarray:
    """One point per geometry where it is entered from the network.

    Points stay as they are. A polygon is entered on its edge (its rings), a line anywhere
    on it: at the point of that edge nearest to the network. Where several streets are as
    near (within :data:`_ENTRY_TIE_M`; a school ground touched by a dozen streets, a parking
    lot crossed by three ways, a park at a junction), every point where they touch or cross
    the edge is a candidate and the one nearest to the geometry's centroid is taken (then the
    westernmost, southernmost; to the centimetre): the entry depends only on the geometry
    and the streets around it, never on the edges' numbering (which changes with the study
    area or the boundary), and never lies inside the polygon.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    kind = shapely.get_type_id(geoms)
    area = np.isin(kind, (1, 2, 3, 5, 6, 7))  # lines, polygons, multi-*
    if not area.any():
        return out
    g = geoms[area]
    rim = _outlines(g, kind[area])
    near = net.snap_edges[_nearest_edges(net, rim)]
    best = chunks.made(lambda lo, hi: shapely.distance(rim[lo:hi], net.edge_geom[near[lo:hi]]), len(g))
    # every street as near as the nearest: the tied entries
    xy, owner = _outline_points(net, rim, *_streets_near(net, rim, best + _ENTRY_TIE_M))
    res = np.empty(len(g), dtype=object)
    got = np.zeros(len(g), dtype=bool)
    if len(owner):
        mid = shapely.get_coordinates(shapely.centroid(g))[owner]
        key = np.round(np.column_stack([np.hypot(*(xy - mid).T), xy]), 2)
        order = np.lexsort((key[:, 2], key[:, 1], key[:, 0], owner))
        first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        res[owner[first]] = shapely.points(xy[first])
        got[owner[first]] = True
    miss = np.flatnonzero(~got)      # none found (never expected): its nearest point
    if len(miss):
        res[miss] = shapely.get_point(shapely.shortest_line(rim[miss], net.edge_geom[near[miss]]), 0)
    out[area] = res
    return out


def fragment_captures(net: WalkNetwork, points, snap: Snap, max_snap_m: float):
    """Which points the pieces left out of the network (``net.pruned_geom``) would have taken.

    ``points`` and ``snap`` are what :func:`snap_points` got and gave. Returns two boolean
    arrays: ``reattached`` — a left-out piece is nearer than the edge the point now sits on
    (it attaches to the connected network instead); ``stranded`` — a left-out piece lies
    within ``max_snap_m`` but no kept edge does (the point is unreachable).
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    near = np.zeros(n, dtype=bool)
    frag = net.pruned_geom
    if n and frag is not None and len(frag):
        valid = np.flatnonzero(~(shapely.is_missing(points) | shapely.is_empty(points)))
        # only a piece nearer than the point's edge (than max_snap_m where it has none)
        # matters: the pieces within that reach, a few metres for most points, not a nearest
        # search out to max_snap_m; the distances are GEOS's, as a nearest search's
        on = snap.reachable[valid]
        reach = np.where(on, snap.leg[valid], max_snap_m)
        pi, fi = chunks.query(shapely.STRtree(frag), points[valid], predicate="dwithin",
                              distance=reach + 1e-6)
        dist = chunks.made(lambda lo, hi: shapely.distance(points[valid[pi[lo:hi]]], frag[fi[lo:hi]]),
                           len(pi))
        hit = np.where(on[pi], dist < reach[pi], dist <= max_snap_m)
        near[valid[pi[hit]]] = True
    return near & snap.reachable, near & ~snap.reachable


#: An area's entries: every street within this many metres of its outline enters it.
ENTRY_NEAR_M = 20.0

#: At most this many entries per area (its own point included), spread around the outline.
ENTRY_MAX = 16


def area_entries(net: WalkNetwork, geoms, snap: Snap, max_snap_m: float,
                 near_m: float = ENTRY_NEAR_M, most: int = ENTRY_MAX) -> Snap:
    """``snap`` (the facilities' own points, from :func:`entry_points`) with every area's
    further entries: a park, a school ground, a line is entered from every street that
    touches, crosses or comes within ``near_m`` of its outline, not only at its one point.

    Candidates: every point where a street edge touches or crosses the outline (a polygon's
    rings, a line itself), and for an edge within ``near_m`` that does not, the outline's
    point nearest to it. Each is snapped as any point is; per facility one entry per street
    edge (the least leg, then the least offset; none on the own point's edge), and of more
    than ``most - 1`` the ones spread evenly by angle around the centroid (deterministic:
    from the geometry and the streets only). A facility that is a point, or unreachable,
    keeps its one entry.
    """
    geoms = np.asarray(geoms, dtype=object)
    kind = shapely.get_type_id(geoms)
    area = np.flatnonzero(np.isin(kind, (1, 2, 3, 5, 6, 7)) & snap.reachable)
    if not len(area) or most <= 1 or net.n_edges == 0:
        return snap
    g = geoms[area]
    rim = _outlines(g, kind[area])
    gi, ei, dist = _streets_near(net, rim, near_m)
    if not len(gi):
        return snap
    xy, owner = _outline_points(net, rim, gi, ei, dist)
    xy = np.round(xy, 3)                       # a point once per area (to the millimetre)
    o = np.lexsort((xy[:, 1], xy[:, 0], owner))
    xy, owner = xy[o], owner[o]
    same = np.r_[False, (owner[1:] == owner[:-1]) & (xy[1:] == xy[:-1]).all(axis=1)]
    xy, owner = xy[~same], owner[~same]
    s = snap_points(net, shapely.points(xy), max_snap_m, tie_m=0)
    fac = area[owner]
    ok = (s.edge >= 0) & (s.edge != snap.edge[fac])
    xy, owner, fac = xy[ok], owner[ok], fac[ok]
    e, off, leg = s.edge[ok], s.offset[ok], s.leg[ok]
    # one entry per (facility, edge): the least leg, then the least offset
    o = np.lexsort((np.round(off, 6), np.round(leg, 6), e, fac))
    first = o[np.r_[True, (fac[o][1:] != fac[o][:-1]) | (e[o][1:] != e[o][:-1])]] if len(o) else o
    xy, owner, fac, e, off, leg = xy[first], owner[first], fac[first], e[first], off[first], leg[first]
    # more than most - 1: spread evenly by angle around the centroid (only those areas need
    # their centroid: the others keep every entry, in an order nothing reads)
    per = np.bincount(owner, minlength=len(g))
    many = per > most - 1
    mid = np.zeros((len(g), 2))
    if many.any():
        mid[many] = shapely.get_coordinates(shapely.centroid(g[many]))
    mid = mid[owner]
    ang = np.round(np.arctan2(xy[:, 1] - mid[:, 1], xy[:, 0] - mid[:, 0]), 9)
    o = np.lexsort((xy[:, 1], xy[:, 0], ang, fac))
    fac, e, off, leg = fac[o], e[o], off[o], leg[o]
    start = np.flatnonzero(np.r_[True, fac[1:] != fac[:-1]]) if len(fac) else np.zeros(0, np.int64)
    cnt = np.diff(np.r_[start, len(fac)])
    rank = np.arange(len(fac)) - np.repeat(start, cnt)
    n = np.repeat(cnt, cnt)
    m = most - 1
    # rank r is kept where it is the floor(j * n / m) of some j < m
    j = -(-rank * m // n)                       # ceil(r * m / n): the first j that could pick r
    keep = (n <= m) | ((j < m) & (j * n // m == rank))
    return snap.with_extra(e[keep], off[keep], leg[keep], fac[keep])


def snap_facilities(net: WalkNetwork, geoms, max_snap_m: float) -> Snap:
    """Facilities (points, lines, areas) as the analysis places them: at their
    :func:`entry_points`, each area with its further :func:`area_entries`."""
    geoms = np.asarray(geoms, dtype=object)
    snap = snap_points(net, entry_points(net, geoms), max_snap_m)
    return area_entries(net, geoms, snap, max_snap_m)
