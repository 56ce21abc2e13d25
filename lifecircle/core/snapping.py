"""Attaching points to the nearest walkable edge.

A point attaches to the nearest *edge* (not node): the straight leg from the point to the edge
and the partial walk along the edge both count. Points farther than the maximum snap distance
are unreachable, never attached far away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from lifecircle.core.network import WalkNetwork


@dataclass
class Snap:
    """Where each point sits on the network. Unreachable points have ``edge == -1``."""

    edge: np.ndarray     # int64 edge index or -1
    offset: np.ndarray   # metres from the edge's u end along its geometry
    leg: np.ndarray      # metres of straight leg from the point to the edge
    ambiguous: np.ndarray  # another edge lies within ``tie_m`` of the nearest one

    @property
    def reachable(self) -> np.ndarray:
        return self.edge >= 0

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, index) -> Snap:
        return Snap(self.edge[index], self.offset[index], self.leg[index], self.ambiguous[index])

    @staticmethod
    def concat(snaps: list[Snap]) -> Snap:
        return Snap(*(np.concatenate([getattr(s, f) for s in snaps])
                      for f in ("edge", "offset", "leg", "ambiguous")))


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
    pts = points[idx]
    # How far to look: the nearest vertex of an edge is at least as far as the nearest edge
    # (one k-d query, not a nearest search over the edges, ~3x faster), and never farther than
    # max_snap_m. The edges within that reach (+ tie_m for the tie test) are all the nearest
    # edges, equidistant ones included; their distances are GEOS's, as a nearest search's.
    verts = shapely.get_coordinates(net.edge_geom[which])
    xy, owner = shapely.get_coordinates(pts, return_index=True)
    xy = xy[np.searchsorted(owner, np.arange(len(pts)))]          # a point of each geometry
    bound = cKDTree(verts).query(xy)[0] if len(verts) and len(xy) else np.full(len(pts), np.inf)
    reach = np.minimum(bound, max_snap_m) + max(tie_m, 0.0) + 1e-6
    pi, ei = tree.query(pts, predicate="dwithin", distance=reach)
    ei = which[ei]
    order = np.lexsort((ei, pi))
    pi, ei = pi[order], ei[order]
    dist = shapely.distance(pts[pi], net.edge_geom[ei])
    if len(pi):
        start = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
        best = np.repeat(np.minimum.reduceat(dist, start), np.diff(np.r_[start, len(pi)]))
        near = best <= max_snap_m
        at = np.flatnonzero((dist == best) & near)   # the nearest edges: several when equidistant
        # of several equidistant edges take the lowest index (deterministic), flag ambiguity
        lowest = at[np.r_[True, pi[at][1:] != pi[at][:-1]]]
        target = idx[pi[lowest]]
        edge[target] = ei[lowest]
        leg[target] = dist[lowest]
        ambiguous[idx[np.bincount(pi[at], minlength=len(idx)) > 1]] = True
        geoms = net.edge_geom[edge[target]]
        offset[target] = shapely.line_locate_point(geoms, points[target])
        # a near tie with a second edge makes the exact route depend on rounding: another edge
        # within tie_m of the nearest, by distance and by GEOS's dwithin (prepared, as a query)
        if tie_m > 0:
            close = np.flatnonzero(near & (dist <= best + tie_m) & (ei != edge[idx[pi]]))
            if len(close):
                q = shapely.from_wkb(shapely.to_wkb(pts[pi[close]]))   # copies, to prepare
                shapely.prepare(q)
                close = close[shapely.dwithin(q, net.edge_geom[ei[close]], best[close] + tie_m)]
            ambiguous[idx[np.unique(pi[close])]] = True
    offset = np.clip(offset, 0.0, np.where(edge >= 0, net.edge_len[np.maximum(edge, 0)], 0.0))
    return Snap(edge, offset, leg, ambiguous)


def entry_points(net: WalkNetwork, geoms) -> np.ndarray:
    """One point per geometry where it is entered from the network.

    Points stay as they are; for polygons and lines, the point of the geometry's boundary
    nearest to the nearest edge (a park is reached at its gate side, not at its centroid).
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    kind = shapely.get_type_id(geoms)
    area = np.isin(kind, (1, 2, 3, 5, 6, 7))  # lines, polygons, multi-*
    if area.any():
        g = geoms[area]
        idx = net.snap_edges[net.snap_tree.nearest(g)]
        # the nearest points between the geometry and its nearest edge: first is on the geometry
        pts = shapely.shortest_line(g, net.edge_geom[idx])
        out[area] = shapely.get_point(pts, 0)
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
        pi, fi = shapely.STRtree(frag).query(points[valid], predicate="dwithin", distance=reach + 1e-6)
        dist = shapely.distance(points[valid[pi]], frag[fi])
        hit = np.where(on[pi], dist < reach[pi], dist <= max_snap_m)
        near[valid[pi[hit]]] = True
    return near & snap.reachable, near & ~snap.reachable
