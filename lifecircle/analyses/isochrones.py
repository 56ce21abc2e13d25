"""Isochrones, service areas and gap areas built from the walked street segments.

An isochrone of ``T`` minutes around an origin is the union of the street segments a walker
reaches within ``T`` (whole edges, and the reachable part of edges cut by the limit), each
buffered by ``buffer_m`` metres. It follows the streets: it never bridges a river, railway or
motorway that has no walkable crossing, and blocks not reached stay holes.

How it is built (all vectorised, cost in proportion to what an origin reaches):

1. one truncated Dijkstra per origin on the CSR network (``AccessEngine.isochrone_nodes``);
2. from the node times, the reachable length of every incident edge from each end, so full and
   partial edges come out of a few numpy operations over all origins at once, then straight
   segments (bent edges split at their vertices) as plain coordinate arrays;
3. the union of the ``buffer_m`` buffers is traced on a distance field (``method="field"``,
   the default): a numba kernel writes the exact distance to the nearest reached segment on a
   ``cell_m`` grid (5 m), contourpy traces the ``buffer_m`` level by marching squares and the
   rings become one (Multi)Polygon without any GEOS overlay. Straight buffer sides are exact;
   round ends and the corners where buffers meet are within about half a cell; holes smaller
   than a cell close. Origins run on a thread pool (the numba kernel releases the GIL).
   ``method="buffers"`` keeps the GEOS route (merge pieces into chains, buffer with few
   quadrant segments, ``shapely.union_all``), exact to the polygonised buffer but ~10x slower.

Service areas use one multi-source search per category (seeds from
:func:`lifecircle.core.engine.facility_seeds`) on the reversed network: the area from which the
nearest facility of the category is within each threshold. Dimension areas use the minimum over
the dimension's categories. They are traced on an 8 m grid over the whole city; the distance
field of the whole network is computed once per network and reused on the tiles where every
street within reach is fully reached. Gap areas are the homes and residential land outside them.

Measured on Las Palmas (``bench/isochrones.py``, 2 shared cores, 83k nodes, 89k segments):
15-minute isochrones ~5-8 ms per origin over 1,000 origins (``method="buffers"`` ~60 ms, the
exact edge-buffer reference ~130-170 ms, the osmnx ego_graph recipe ~600 ms), IoU >= 0.99
against the exact reference, every reachable edge inside; service areas for the 45 categories
and 6 dimensions of the default profile at 15 minutes ~3-4 s (was ~50 s with GEOS unions),
IoU >= 0.98 against exact GEOS buffers. See bench/results/isochrones.json for the numbers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numba
import numpy as np
import shapely

from lifecircle import columns as col
from lifecircle.core import _kernels as K
from lifecircle.core.engine import facility_seeds, facility_seeds_forward, search_each
from lifecircle.core.network import WalkNetwork, reduce_by_key
from lifecircle.core.snapping import Snap, snap_points
from lifecircle.errors import IsochroneError, OutputError
from lifecircle.io.sources import ATTRIBUTION, WGS84, write_about_layer
from lifecircle.settings import carried, cores

#: Buffer around walked segments (metres): half a typical street corridor with its frontage.
BUFFER_M = 25.0
#: method="buffers": quadrant segments of the round buffer ends/joins (2 keeps IoU > 0.99
#: against 16).
QUAD_SEGS = 2
#: Grid spacing (metres) of the distance field traced for the buffer union.
CELL_M = 5.0
#: Grid spacing of the city-wide service areas (metres).
SA_CELL_M = 8.0
#: Grid nodes per tile side of the cached network field (service areas).
TILE = 32
#: Largest distance-field grid (nodes); coarser cells beyond (8 bytes per node and thread).
MAX_FIELD_NODES = 25_000_000
#: method="buffers": simplification tolerance of merged chains before buffering (metres).
SIMPLIFY_M = 1.0



# ------------------------------------------------------------------------------------------
# reached pieces

def _incidence(net: WalkNetwork):
    """Node -> incident edges (undirected) as CSR, with a flag 'node is the u end'."""
    cache = getattr(net, "_iso_incidence", None)
    if cache is not None:
        return cache
    ends = np.concatenate([net.edge_u, net.edge_v]).astype(np.int64)
    edges = np.concatenate([np.arange(net.n_edges), np.arange(net.n_edges)])
    is_u = np.concatenate([np.ones(net.n_edges, bool), np.zeros(net.n_edges, bool)])
    order = np.argsort(ends, kind="stable")
    ptr = np.zeros(net.n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=net.n_nodes), out=ptr[1:])
    cache = (ptr, edges[order], is_u[order])
    try:
        object.__setattr__(net, "_iso_incidence", cache)
    except Exception:  # pragma: no cover
        pass
    return cache


def _edge_budgets(net: WalkNetwork, group: np.ndarray, node: np.ndarray, secs: np.ndarray,
                  limit_s: float, towards: bool):
    """Metres walkable into each incident edge from reached nodes.

    ``towards=False``: times are *from* an origin to the node; the walker leaves the node along
    the edge (from u always, from v only if two-way). ``towards=True``: times are from the node
    *to* a facility; a point on the edge walks to the node (to v always, to u only if two-way).
    Returns unique (group, edge) with budgets ``ru`` (from the u end) and ``rv`` (from v).
    """
    ptr, inc_edge, inc_is_u = _incidence(net)
    ok = secs <= limit_s
    group, node, secs = group[ok], node[ok], secs[ok]
    deg = ptr[node + 1] - ptr[node]
    rep = np.repeat(np.arange(len(node)), deg)
    start = np.repeat(ptr[node] - np.cumsum(deg) + deg, deg) + np.arange(deg.sum())
    e = inc_edge[start]
    is_u = inc_is_u[start]
    g = group[rep]
    metres = (limit_s - secs[rep]) * net.speed_mps
    oneway = net.edge_oneway[e]
    # from the u end a walker moves u -> v (always allowed) when leaving; arriving at u from the
    # edge means moving v -> u (only two-way). The mirror holds at v.
    allowed = np.where(is_u, ~oneway if towards else True, True if towards else ~oneway)
    e, is_u, g, metres = e[allowed], is_u[allowed], g[allowed], metres[allowed]
    # max budget per (group, edge, end): one sort and a reduceat (np.maximum.at is slow)
    k2 = (g.astype(np.int64) * net.n_edges + e) * 2 + (~is_u)
    kk, mx = reduce_by_key(k2, np.asarray(metres, dtype=np.float64), np.maximum)
    ukey, side = kk // 2, kk % 2
    first = np.r_[True, ukey[1:] != ukey[:-1]] if len(ukey) else np.zeros(0, bool)
    uniq = ukey[first]
    inv = np.cumsum(first) - 1
    ru = np.full(len(uniq), -1.0)
    rv = np.full(len(uniq), -1.0)
    ru[inv[side == 0]] = mx[side == 0]
    rv[inv[side == 1]] = mx[side == 1]
    return uniq // net.n_edges, uniq % net.n_edges, ru, rv


def _pieces(net: WalkNetwork, g, e, a, b):
    """Segments of edges ``e`` from ``a`` to ``b`` metres along them -> (group, lines)."""
    L = net.edge_len[e]
    a = np.clip(a, 0.0, L)
    b = np.clip(b, 0.0, L)
    keep = b > a
    g, e, a, b, L = g[keep], e[keep], a[keep], b[keep], L[keep]
    geoms = net.edge_geom[e]
    npts = shapely.get_num_points(geoms)
    out = np.empty(len(e), dtype=object)
    two = npts == 2
    if two.any():
        p0 = shapely.get_coordinates(shapely.get_point(geoms[two], 0))
        p1 = shapely.get_coordinates(shapely.get_point(geoms[two], -1))
        with np.errstate(invalid="ignore", divide="ignore"):
            fa = np.where(L[two] > 0, a[two] / L[two], 0.0)[:, None]
            fb = np.where(L[two] > 0, b[two] / L[two], 1.0)[:, None]
        out[two] = shapely.linestrings(np.stack([p0 + (p1 - p0) * fa, p0 + (p1 - p0) * fb], 1))
    if (~two).any():
        from shapely.ops import substring

        glen = shapely.length(geoms)
        for i in np.flatnonzero(~two):
            scale = glen[i] / L[i] if L[i] > 0 else 1.0
            out[i] = substring(geoms[i], a[i] * scale, b[i] * scale)
    return g, out


def _polylines(net: WalkNetwork):
    """Vertex coordinates of every edge geometry (CSR by edge) with the distance of each vertex
    along its edge in ``edge_len`` units (cached on the network)."""
    cache = getattr(net, "_iso_polylines", None)
    if cache is not None:
        return cache
    coords, idx = shapely.get_coordinates(net.edge_geom, return_index=True)
    ptr = np.zeros(net.n_edges + 1, dtype=np.int64)
    np.cumsum(np.bincount(idx, minlength=net.n_edges), out=ptr[1:])
    step = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
    step[ptr[:-1][ptr[:-1] < len(step)]] = 0.0
    cum = np.cumsum(step)
    cum -= np.repeat(cum[ptr[:-1]], np.diff(ptr))
    glen = cum[np.maximum(ptr[1:] - 1, 0)]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(glen > 0, net.edge_len / glen, 1.0)
    cum *= np.repeat(scale, np.diff(ptr))
    cache = (np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1]), ptr, cum)
    try:
        object.__setattr__(net, "_iso_polylines", cache)
    except Exception:  # pragma: no cover
        pass
    return cache


def _segments(net: WalkNetwork, g, e, a, b):
    """Straight segments of edges ``e`` from ``a`` to ``b`` metres along them, in numpy:
    (group, x0, y0, x1, y1)."""
    X, Y, ptr, cum = _polylines(net)
    L = net.edge_len[e]
    a = np.clip(a, 0.0, L)
    b = np.clip(b, 0.0, L)
    keep = b > a
    g, e, a, b = g[keep], e[keep], a[keep], b[keep]
    nseg = np.maximum(ptr[e + 1] - ptr[e] - 1, 0)
    if len(nseg) and (nseg == 1).all():
        k = ptr[e]
    else:
        rep = np.repeat(np.arange(len(e)), nseg)
        k = np.repeat(ptr[e] - np.cumsum(nseg) + nseg, nseg) + np.arange(nseg.sum())
        g, a, b = g[rep], a[rep], b[rep]
    s0, s1 = cum[k], cum[k + 1]
    lo, hi = np.maximum(a, s0), np.minimum(b, s1)
    ok = hi > lo
    if not ok.all():
        g, k, s0, s1, lo, hi = g[ok], k[ok], s0[ok], s1[ok], lo[ok], hi[ok]
    d = s1 - s0
    with np.errstate(invalid="ignore", divide="ignore"):
        f0 = np.where(d > 0, (lo - s0) / d, 0.0)
        f1 = np.where(d > 0, (hi - s0) / d, 1.0)
    xa, ya, xb, yb = X[k], Y[k], X[k + 1], Y[k + 1]
    return (g, xa + (xb - xa) * f0, ya + (yb - ya) * f0, xa + (xb - xa) * f1,
            ya + (yb - ya) * f1)


def _reached_parts(net: WalkNetwork, group, node, secs, limit_s, towards=False,
                   own_edge: Snap | None = None, own_group=None):
    """(group, edge, from, to) of every reached piece of street within ``limit_s``."""
    g, e, ru, rv = _edge_budgets(net, group, node, secs, limit_s, towards)
    L = net.edge_len[e]
    full = (ru >= L) | (rv >= L) | ((ru >= 0) & (rv >= 0) & (ru + rv >= L))
    parts_g = [g[full]]
    parts_e = [e[full]]
    parts_a = [np.zeros(full.sum())]
    parts_b = [L[full]]
    p = ~full
    mu = p & (ru > 0)
    parts_g.append(g[mu])
    parts_e.append(e[mu])
    parts_a.append(np.zeros(mu.sum()))
    parts_b.append(ru[mu])
    mv = p & (rv > 0)
    parts_g.append(g[mv])
    parts_e.append(e[mv])
    parts_a.append(L[mv] - rv[mv])
    parts_b.append(L[mv])
    if own_edge is not None and own_edge.n_extra:     # an area's every entry, in its group
        own, oe, os_, ol = own_edge.entries()
        own_group = np.asarray(own_group)[own]
        own_edge = Snap(oe, os_, ol, np.zeros(len(oe), bool))
    if own_edge is not None:
        ok = own_edge.edge >= 0
        oe = own_edge.edge[ok]
        og = np.asarray(own_group)[ok]
        s = own_edge.offset[ok]
        budget = limit_s * net.speed_mps - own_edge.leg[ok]
        has = budget > 0
        oe, og, s, budget = oe[has], og[has], s[has], budget[has]
        two = ~net.edge_oneway[oe]
        # forward (from a point): towards v always, towards u if two-way; towards a facility:
        # from before it (moving u -> v) always, from after it only if two-way.
        parts_g.append(og)
        parts_e.append(oe)
        if towards:
            parts_a.append(s - budget)
            parts_b.append(s)
            parts_g.append(og[two])
            parts_e.append(oe[two])
            parts_a.append(s[two])
            parts_b.append(s[two] + budget[two])
        else:
            parts_a.append(s)
            parts_b.append(s + budget)
            parts_g.append(og[two])
            parts_e.append(oe[two])
            parts_a.append(s[two] - budget[two])
            parts_b.append(s[two])
    return (np.concatenate(parts_g), np.concatenate(parts_e), np.concatenate(parts_a),
            np.concatenate(parts_b))


def reached_pieces(net: WalkNetwork, group, node, secs, limit_s, towards=False,
                   own_edge: Snap | None = None, own_group=None):
    """All reached street pieces within ``limit_s``: (group index, LineString) arrays.

    ``own_edge``/``own_group``: the snapped points themselves (origins or facilities), whose
    own edge is walked part-way from where they sit.
    """
    return _pieces(net, *_reached_parts(net, group, node, secs, limit_s, towards, own_edge,
                                        own_group))


def reached_segments(net: WalkNetwork, group, node, secs, limit_s, towards=False,
                     own_edge: Snap | None = None, own_group=None):
    """Like :func:`reached_pieces` but as straight segments in numpy arrays:
    (group, x0, y0, x1, y1)."""
    return _segments(net, *_reached_parts(net, group, node, secs, limit_s, towards, own_edge,
                                          own_group))



@numba.njit(cache=True, nogil=True, inline="always")
def _row_span(ax, ay, bx, dx, dy, py, reach):
    """The x-range where grid row ``py`` passes within ``reach`` (in y) of segment a-b."""
    if abs(dy) > 1e-9:
        ta = (py - reach - ay) / dy
        tb = (py + reach - ay) / dy
        if ta > tb:
            ta, tb = tb, ta
        ta = max(ta, 0.0)
        tb = min(tb, 1.0)
        if ta > tb:
            return False, 0.0, 0.0
        xa = ax + ta * dx
        xb = ax + tb * dx
    else:
        if abs(py - ay) > reach:
            return False, 0.0, 0.0
        xa, xb = ax, bx
    if xa > xb:
        xa, xb = xb, xa
    return True, xa, xb


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _distance_field(x0, y0, x1, y1, gx, gy, h, nx, ny, reach):
    """Distance from every node of the grid (origin ``gx, gy``, spacing ``h``) to the nearest
    segment, exact up to ``reach`` and ``reach`` beyond. Each segment only visits the grid rows
    and the span of each row its ``reach``-capsule can touch."""
    r2 = reach * reach
    z = np.full((ny, nx), r2)
    for k in range(len(x0)):
        ax, ay, bx, by = x0[k], y0[k], x1[k], y1[k]
        dx, dy = bx - ax, by - ay
        L2 = dx * dx + dy * dy
        inv = 1.0 / L2 if L2 > 0.0 else 0.0
        j0 = max(0, int(np.floor((min(ay, by) - reach - gy) / h)))
        j1 = min(ny - 1, int(np.ceil((max(ay, by) + reach - gy) / h)))
        for j in range(j0, j1 + 1):
            py = gy + j * h
            ok, xa, xb = _row_span(ax, ay, bx, dx, dy, py, reach)
            if not ok:
                continue
            i0 = max(0, int(np.floor((xa - reach - gx) / h)))
            i1 = min(nx - 1, int(np.ceil((xb + reach - gx) / h)))
            for i in range(i0, i1 + 1):
                px = gx + i * h
                t = ((px - ax) * dx + (py - ay) * dy) * inv
                t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
                qx = ax + t * dx - px
                qy = ay + t * dy - py
                d2 = qx * qx + qy * qy
                if d2 < z[j, i]:
                    z[j, i] = d2
    return np.sqrt(z)


def segments_to_polygon(x0, y0, x1, y1, buffer_m: float = BUFFER_M, cell_m: float = CELL_M):
    """Union of the ``buffer_m`` buffers of straight segments, traced on a distance field.

    The distance to the nearest segment is computed exactly on a grid of ``cell_m`` nodes
    (numba) and the ``buffer_m`` level is traced by marching squares (contourpy, linear
    interpolation): straight buffer sides come out exact, round ends and the corners where
    buffers meet within about ``cell_m / 2``. Cost grows with the covered area, not with the
    number of overlapping buffers, which is what makes a city-wide union cheap.
    """
    x0, y0, x1, y1 = (np.ascontiguousarray(v, dtype=np.float64) for v in (x0, y0, x1, y1))
    if len(x0) == 0:
        return shapely.Polygon()
    w = max(x0.max(), x1.max()) - min(x0.min(), x1.min()) + 2 * buffer_m
    ht = max(y0.max(), y1.max()) - min(y0.min(), y1.min()) + 2 * buffer_m
    h = max(float(cell_m), float(np.sqrt(w * ht / MAX_FIELD_NODES)))
    pad = buffer_m + 2 * h
    gx = np.floor((min(x0.min(), x1.min()) - pad) / h) * h
    gy = np.floor((min(y0.min(), y1.min()) - pad) / h) * h
    nx = int(np.ceil((max(x0.max(), x1.max()) + pad - gx) / h)) + 1
    ny = int(np.ceil((max(y0.max(), y1.max()) + pad - gy) / h)) + 1
    # a node next to a crossing of the level is within buffer_m + h of a segment (the distance
    # is 1-Lipschitz), so exact values up to there give the same interpolated contour
    z = _distance_field(x0, y0, x1, y1, gx, gy, h, nx, ny, buffer_m + 1.01 * h)
    return _trace(z, gx, gy, h, buffer_m)


def _drop_collinear(p, ro, tol: float = 1e-4):
    """Drop ring vertices lying on the chord of their neighbours (in grid units): the straight
    sides of buffers come out of marching squares as one vertex per grid line crossed."""
    n = len(p)
    if n < 5:
        return p, ro
    d = np.zeros(n)
    a, b, c = p[:-2], p[1:-1], p[2:]
    ca = c - a
    d[1:-1] = np.abs(ca[:, 0] * (b[:, 1] - a[:, 1]) - ca[:, 1] * (b[:, 0] - a[:, 0])) / \
        np.maximum(np.hypot(ca[:, 0], ca[:, 1]), 1e-12)
    keep = d > tol
    keep[ro[:-1]] = True  # ring starts and their closing vertices
    keep[ro[1:] - 1] = True
    if keep.all():
        return p, ro
    return p[keep], np.r_[0, np.cumsum(keep)][ro]


def _trace(z, gx, gy, h, level):
    """Polygon where ``z < level`` (grid node (j, i) at ``gx + i h, gy + j h``)."""
    ny, nx = z.shape
    try:  # the generator class itself: the public wrapper's checks cost ~1 ms per call
        from contourpy import FillType, LineType, ZInterp
        from contourpy._contourpy import SerialContourGenerator

        gen = SerialContourGenerator(
            np.broadcast_to(np.arange(nx, dtype=np.float64), (ny, nx)),
            np.broadcast_to(np.arange(ny, dtype=np.float64)[:, None], (ny, nx)), z, None,
            corner_mask=False, line_type=LineType.ChunkCombinedOffset,
            fill_type=FillType.ChunkCombinedOffsetOffset, quad_as_tri=False,
            z_interp=ZInterp.Linear, x_chunk_size=0, y_chunk_size=0)
    except (ImportError, TypeError):  # pragma: no cover - other contourpy versions
        import contourpy

        gen = contourpy.contour_generator(z=z, name="serial", corner_mask=False,
                                          fill_type="ChunkCombinedOffsetOffset")
    pts, ring_off, outer_off = gen.filled(-1.0, level)
    p, ro, oo = pts[0], ring_off[0], outer_off[0]
    if p is None or len(oo) < 2:
        return shapely.Polygon()
    p, ro = _drop_collinear(p, ro)
    p = p * h
    p[:, 0] += gx
    p[:, 1] += gy
    out = shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, p,
                                    (ro, oo, np.array([0, len(oo) - 1])))[0]
    if len(oo) == 2:
        out = shapely.get_parts(out)[0]
    return out




class _NetworkField:
    """Distance field of the whole network (every edge) on one grid, cached per network:
    a service area reuses it on the tiles where every street within reach is fully reached
    and recomputes only the other tiles."""

    def __init__(self, net: WalkNetwork, buffer_m: float, h: float):
        X, Y, ptr, _ = _polylines(net)
        starts = np.ones(len(X), bool)  # every vertex but the last of each edge starts a segment
        starts[ptr[1:][ptr[1:] > ptr[:-1]] - 1] = False
        k = np.flatnonzero(starts)
        # keep the grid under MAX_FIELD_NODES (a 50 km region at 8 m would be 39M nodes)
        area = (np.ptp(X) + 2 * buffer_m) * (np.ptp(Y) + 2 * buffer_m) if len(X) else 0.0
        h = max(float(h), float(np.sqrt(area / MAX_FIELD_NODES)))
        self.h, self.buffer_m = h, buffer_m
        self.reach = buffer_m + 1.01 * h
        pad = buffer_m + 2 * h + h
        self.gx = np.floor((X.min() - pad) / h) * h
        self.gy = np.floor((Y.min() - pad) / h) * h
        self.nx = int(np.ceil((X.max() + pad - self.gx) / h)) + 1
        self.ny = int(np.ceil((Y.max() + pad - self.gy) / h)) + 1
        self.ntx, self.nty = -(-self.nx // TILE), -(-self.ny // TILE)
        self.z = _distance_field(X[k], Y[k], X[k + 1], Y[k + 1], self.gx, self.gy, h, self.nx,
                                 self.ny, self.reach)
        # tiles each edge's reach-capsule touches (bounding box of the edge geometry)
        b = shapely.bounds(net.edge_geom)
        r = self.reach
        self.etx0 = np.clip(np.floor((b[:, 0] - r - self.gx) / h) // TILE, 0, self.ntx - 1).astype(np.int64)
        self.etx1 = np.clip(np.ceil((b[:, 2] + r - self.gx) / h) // TILE, 0, self.ntx - 1).astype(np.int64)
        self.ety0 = np.clip(np.floor((b[:, 1] - r - self.gy) / h) // TILE, 0, self.nty - 1).astype(np.int64)
        self.ety1 = np.clip(np.ceil((b[:, 3] + r - self.gy) / h) // TILE, 0, self.nty - 1).astype(np.int64)

    @classmethod
    def get(cls, net: WalkNetwork, buffer_m: float, h: float) -> _NetworkField:
        cache = getattr(net, "_iso_fields", None)
        if cache is None:
            cache = {}
            try:
                object.__setattr__(net, "_iso_fields", cache)
            except Exception:  # pragma: no cover
                pass
        key = (float(buffer_m), float(h))
        if key not in cache:
            cache[key] = cls(net, buffer_m, h)
        return cache[key]

    def polygon(self, net: WalkNetwork, parts) -> shapely.Geometry:
        """Buffer union of the reached pieces ``parts`` = (group, edge, a, b) (one group)."""
        _, e, a, b = parts
        L = net.edge_len[e]
        status = np.zeros(net.n_edges, np.int8)  # 0 unreached, 1 partly, 2 fully reached
        reached = np.minimum(b, L) > np.maximum(a, 0.0)
        status[e[reached]] = 1
        status[e[(a <= 0) & (b >= L)]] = 2
        state = _tile_state(status, self.etx0, self.etx1, self.ety0, self.ety1, self.ntx,
                            self.nty)
        if not state.any():
            return shapely.Polygon()
        _, x0, y0, x1, y1 = _segments(net, *parts)
        # the crop is the box of active tiles: nodes on its border next to inactive tiles are
        # farther than buffer_m + h from any reached street, so nothing is cut at the border
        rows = np.flatnonzero(state.any(axis=1))
        cols = np.flatnonzero(state.any(axis=0))
        z = _assemble_field(self.z, state, rows[0], rows[-1], cols[0], cols[-1], x0, y0, x1,
                            y1, self.gx, self.gy, self.h, self.reach)
        return _trace(z, self.gx + cols[0] * TILE * self.h, self.gy + rows[0] * TILE * self.h,
                      self.h, self.buffer_m)


@numba.njit(cache=True, nogil=True)
def _tile_state(status, tx0, tx1, ty0, ty1, ntx, nty):
    """Per tile: 0 no reached street within reach, 1 every street within reach fully reached
    (the network field holds), 2 mixed (recompute)."""
    active = np.zeros((nty, ntx), np.bool_)
    mixed = np.zeros((nty, ntx), np.bool_)
    for e in range(len(status)):
        s = status[e]
        for ty in range(ty0[e], ty1[e] + 1):
            for tx in range(tx0[e], tx1[e] + 1):
                if s > 0:
                    active[ty, tx] = True
                if s < 2:
                    mixed[ty, tx] = True
    out = np.zeros((nty, ntx), np.int8)
    for ty in range(nty):
        for tx in range(ntx):
            if active[ty, tx]:
                out[ty, tx] = 2 if mixed[ty, tx] else 1
    return out


@numba.njit(cache=True, nogil=True)
def _assemble_field(zall, state, ty0, ty1, tx0, tx1, x0, y0, x1, y1, gx, gy, h, reach):
    """Field of the reached segments on tiles ``ty0..ty1 x tx0..tx1`` of the network grid:
    copied from the network field on clean tiles, recomputed on mixed ones."""
    NY, NX = zall.shape
    oj, oi = ty0 * TILE, tx0 * TILE
    ny, nx = min((ty1 + 1) * TILE, NY) - oj, min((tx1 + 1) * TILE, NX) - oi
    z = np.full((ny, nx), reach)
    for ty in range(ty0, ty1 + 1):
        for tx in range(tx0, tx1 + 1):
            st = state[ty, tx]
            if st == 0:
                continue
            ja, jb = ty * TILE, min((ty + 1) * TILE, NY)
            ia, ib = tx * TILE, min((tx + 1) * TILE, NX)
            for j in range(ja, jb):
                for i in range(ia, ib):
                    z[j - oj, i - oi] = zall[j, i] if st == 1 else reach * reach
    for k in range(len(x0)):
        ax, ay, bx, by = x0[k], y0[k], x1[k], y1[k]
        dx, dy = bx - ax, by - ay
        L2 = dx * dx + dy * dy
        # skip segments whose capsule touches no tile to recompute
        tya = max(0, int(np.floor((min(ay, by) - reach - gy) / h)) // TILE)
        tyb = min(state.shape[0] - 1, int(np.ceil((max(ay, by) + reach - gy) / h)) // TILE)
        txa = max(0, int(np.floor((min(ax, bx) - reach - gx) / h)) // TILE)
        txb = min(state.shape[1] - 1, int(np.ceil((max(ax, bx) + reach - gx) / h)) // TILE)
        hit = False
        for ty in range(tya, tyb + 1):
            for tx in range(txa, txb + 1):
                if state[ty, tx] == 2:
                    hit = True
        if not hit:
            continue
        j0 = max(oj, int(np.floor((min(ay, by) - reach - gy) / h)))
        j1 = min(oj + ny - 1, int(np.ceil((max(ay, by) + reach - gy) / h)))
        for j in range(j0, j1 + 1):
            py = gy + j * h
            ok, xa, xb = _row_span(ax, ay, bx, dx, dy, py, reach)
            if not ok:
                continue
            i0 = max(oi, int(np.floor((xa - reach - gx) / h)))
            i1 = min(oi + nx - 1, int(np.ceil((xb + reach - gx) / h)))
            ty = j // TILE
            for i in range(i0, i1 + 1):
                if state[ty, i // TILE] != 2:
                    continue
                px = gx + i * h
                if L2 > 0.0:
                    t = ((px - ax) * dx + (py - ay) * dy) / L2
                    t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
                else:
                    t = 0.0
                qx = ax + t * dx - px
                qy = ay + t * dy - py
                d2 = qx * qx + qy * qy
                if d2 < z[j - oj, i - oi]:
                    z[j - oj, i - oi] = d2
    for ty in range(ty0, ty1 + 1):
        for tx in range(tx0, tx1 + 1):
            if state[ty, tx] == 2:
                for j in range(ty * TILE, min((ty + 1) * TILE, NY)):
                    for i in range(tx * TILE, min((tx + 1) * TILE, NX)):
                        z[j - oj, i - oi] = np.sqrt(z[j - oj, i - oi])
    return z


def lines_to_polygon(lines, buffer_m: float = BUFFER_M, quad_segs: int = QUAD_SEGS,
                     simplify_m: float = SIMPLIFY_M):
    """Union of the buffered lines: merge into chains, simplify, buffer, union."""
    lines = np.asarray(lines, dtype=object)
    if len(lines) == 0:
        return shapely.Polygon()
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    if simplify_m:
        merged = shapely.simplify(merged, simplify_m, preserve_topology=False)
    return shapely.union_all(shapely.buffer(merged, buffer_m, quad_segs=quad_segs))


def _polygons_by_group(groups, lines, n_groups, buffer_m, quad_segs, simplify_m, workers=None):
    order = np.argsort(groups, kind="stable")
    groups, lines = groups[order], lines[order]
    bounds = np.searchsorted(groups, np.arange(n_groups + 1))

    def one(i):
        return lines_to_polygon(lines[bounds[i]:bounds[i + 1]], buffer_m, quad_segs, simplify_m)

    workers = workers or min(4, cores())
    if workers <= 1 or n_groups < 4:
        return [one(i) for i in range(n_groups)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(carried(one), range(n_groups), chunksize=max(1, n_groups // (8 * workers))))


def _field_polygons_by_group(seg, n_groups, buffer_m, cell_m, workers=None):
    g, x0, y0, x1, y1 = seg
    order = np.argsort(g, kind="stable")
    g, x0, y0, x1, y1 = g[order], x0[order], y0[order], x1[order], y1[order]
    bounds = np.searchsorted(g, np.arange(n_groups + 1))

    def one(i):
        s = slice(bounds[i], bounds[i + 1])
        return segments_to_polygon(x0[s], y0[s], x1[s], y1[s], buffer_m, cell_m)

    workers = workers or min(4, cores())
    if workers <= 1 or n_groups < 4:
        return [one(i) for i in range(n_groups)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(carried(one), range(n_groups), chunksize=max(1, n_groups // (8 * workers))))


# ------------------------------------------------------------------------------------------
# public API

def _network(obj) -> tuple[WalkNetwork, object]:
    if isinstance(obj, WalkNetwork):
        return obj, None
    net = getattr(obj, "network", None)
    if isinstance(net, WalkNetwork):
        return net, obj
    raise IsochroneError("isochrones need a lifecircle Result or a WalkNetwork, got "
                         f"{type(obj).__name__}",
                         zh=f"等时圈需要 lifecircle 的 Result 或 WalkNetwork，实为 {type(obj).__name__}")


def _origin_snap(net: WalkNetwork, origins, max_snap_m: float) -> tuple[Snap, np.ndarray]:
    if isinstance(origins, Snap):
        return origins, np.full(len(origins), None, dtype=object)
    if isinstance(origins, (gpd.GeoSeries, gpd.GeoDataFrame)):
        geoms = origins.geometry
        if origins.crs is not None and net.crs is not None and not geoms.crs.equals(net.crs):
            geoms = geoms.to_crs(net.crs)
        pts = geoms.to_numpy()
    else:
        arr = np.asarray(origins)
        if arr.dtype != object and arr.ndim == 2 and arr.shape[1] == 2:
            pts = shapely.points(arr.astype(float))
        else:
            pts = np.asarray(origins, dtype=object).reshape(-1)
    if len(pts) and not all(isinstance(p, shapely.Geometry) for p in pts):
        raise IsochroneError("origins must be points (GeoSeries, shapely points or an (n, 2) array "
                             "of coordinates in the network CRS) or a Snap",
                             zh="起点须为点（GeoSeries、shapely 点，或路网坐标系下的 (n, 2) 坐标数组）或 Snap")
    pts = shapely.point_on_surface(pts)
    return snap_points(net, pts, max_snap_m), pts


def _off_network(net: WalkNetwork, pts, max_snap_m: float, n: int) -> tuple[str, str]:
    """The message (English, Chinese) for origins none of which lies within ``max_snap_m`` of
    a street: how many, the CRS they were read in, and a hint when they look like
    longitude/latitude."""
    crs = net.crs
    name = f"EPSG:{crs.to_epsg()}" if crs is not None and crs.to_epsg() else \
        (crs.name if crs is not None else "the network's CRS")
    unit = "metres" if crs is None or crs.is_projected else "degrees"
    head = (f"none of the {n} origin(s) lies within {max_snap_m:g} m of a street of the network "
            f"(coordinates read in {name}, {unit})")
    head_zh = f"全部 {n} 个起点都不在路网街道 {max_snap_m:g} 米以内（坐标按 {name} 读取）"
    xy = shapely.get_coordinates(np.asarray([p for p in pts if isinstance(p, shapely.Geometry)],
                                            dtype=object)) if pts is not None else np.zeros((0, 2))
    lonlat = (len(xy) and (crs is None or crs.is_projected)
              and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()
              and len(net.node_x) and (np.abs(net.node_x).max() > 180 or np.abs(net.node_y).max() > 90))
    if lonlat:
        return (f"{head}: they look like longitude/latitude; give a GeoDataFrame or GeoSeries "
                f"with its CRS set (e.g. crs=4326), or coordinates in {name}",
                f"{head_zh}：它们像是经纬度；请传入设置了 CRS 的 GeoDataFrame 或 GeoSeries"
                f"（如 crs=4326），或 {name} 坐标")
    return (f"{head}: give points near the streets of the study area, in {name} or as a "
            "GeoDataFrame/GeoSeries with its CRS set",
            f"{head_zh}：请给出研究区街道附近的点（{name} 坐标，或设置了 CRS 的 GeoDataFrame/GeoSeries）")


def _check_method(method, buffer_m, cell_m):
    if method not in ("field", "buffers"):
        raise IsochroneError(f"method must be 'field' or 'buffers', got {method!r}",
                             zh=f"method 须为 'field' 或 'buffers'，实为 {method!r}")
    if not (np.isfinite(buffer_m) and buffer_m > 0):
        raise IsochroneError(f"buffer_m must be a positive number of metres, got {buffer_m!r}",
                             zh=f"buffer_m 须为以米计的正数，实为 {buffer_m!r}")
    if cell_m is not None and not (np.isfinite(cell_m) and cell_m > 0):
        raise IsochroneError(f"cell_m must be a positive number of metres, got {cell_m!r}",
                             zh=f"cell_m 须为以米计的正数，实为 {cell_m!r}")


def _minutes(minutes) -> list[float]:
    if minutes is None:
        return [5.0, 10.0, 15.0]
    if isinstance(minutes, (int, float)):
        minutes = [minutes]
    out = sorted({float(m) for m in minutes})
    if not out or out[0] <= 0 or not np.all(np.isfinite(out)):
        raise IsochroneError(f"minutes must be positive numbers, got {minutes!r}",
                             zh=f"分钟数须为正数，实为 {minutes!r}")
    return out


def isochrones(result_or_network, origins, minutes=(5, 10, 15), buffer_m: float = BUFFER_M,
               quad_segs: int = QUAD_SEGS, simplify_m: float = SIMPLIFY_M,
               max_snap_m: float | None = None, workers: int | None = None,
               method: str = "field", cell_m: float | None = None) -> gpd.GeoDataFrame:
    """Walking isochrones around ``origins`` (points in the network CRS, or a Snap).

    ``method="field"`` (default) traces the buffer union on a ``cell_m`` distance field
    (:func:`segments_to_polygon`; default ``CELL_M``, at most a fifth of ``buffer_m``); ``method="buffers"`` unions GEOS buffers of the merged
    pieces (``quad_segs``, ``simplify_m``), several times slower but exact to the polygonised
    buffer. Returns a GeoDataFrame with ``origin`` (position in ``origins``), ``minutes`` and
    the polygon (empty where the origin is farther than ``max_snap_m`` from any street; when
    every origin is, :class:`~lifecircle.errors.IsochroneError` says how many and the CRS
    their coordinates were read in: a bare ``(lon, lat)`` pair is not in the network CRS).
    """
    net, result = _network(result_or_network)
    mins = _minutes(minutes)
    _check_method(method, buffer_m, cell_m)
    cell_m = cell_m or min(CELL_M, buffer_m / 5)
    if max_snap_m is None:
        max_snap_m = result.settings.max_snap_m if result is not None else 300.0
    snap, pts = _origin_snap(net, origins, max_snap_m)
    n = len(snap)
    if n and not (snap.edge >= 0).any():     # every polygon would be empty: say why instead
        en, zh = _off_network(net, pts, max_snap_m, n)
        raise IsochroneError(en, zh=zh)

    seeds = facility_seeds_forward(net, snap)
    csr = net.forward
    limit = 60.0 * max(mins)
    ptr, node, cost = search_each(csr, seeds, limit, 64 * n)
    node, cost = node[:ptr[-1]].astype(np.int64), cost[:ptr[-1]]
    group = np.repeat(np.arange(n), np.diff(ptr))
    rows_o, rows_m, rows_g = [], [], []
    for m in mins:
        if method == "field":
            seg = reached_segments(net, group, node, cost, 60.0 * m, towards=False,
                                   own_edge=snap, own_group=np.arange(n))
            polys = _field_polygons_by_group(seg, n, buffer_m, cell_m, workers)
        else:
            g, lines = reached_pieces(net, group, node, cost, 60.0 * m, towards=False,
                                      own_edge=snap, own_group=np.arange(n))
            polys = _polygons_by_group(g, lines, n, buffer_m, quad_segs, simplify_m, workers)
        rows_o.append(np.arange(n))
        rows_m.append(np.full(n, m))
        rows_g.extend(polys)
    out = gpd.GeoDataFrame({"origin": np.concatenate(rows_o), "minutes": np.concatenate(rows_m)},
                           geometry=np.asarray(rows_g, dtype=object), crs=net.crs)
    return out.sort_values(["origin", "minutes"], kind="stable").reset_index(drop=True)


def _category_node_times(result, cat_ids, limit_s):
    """(C, n_nodes) seconds from every node to the nearest facility of each category."""
    net = result.network
    fac = result.facilities
    cats = fac[col.CATEGORY].to_numpy()
    snaps = [result.facility_snap.take(np.flatnonzero(cats == c)) for c in cat_ids]
    seeds = facility_seeds(net, snaps)
    # nearest_many folds times into homes; we want node times: treat every node as a "home"
    # sitting on the node itself (a = b = 0, u = v = node).
    nodes = np.arange(net.n_nodes, dtype=np.int64)
    zeros = np.zeros(net.n_nodes)
    node_seed_ptr = np.zeros(len(cat_ids) + 1, dtype=np.int64)
    node_seed_ptr[1:] = seeds.seed_ptr[seeds.cat_ptr[1:]]
    out = np.empty((len(cat_ids), net.n_nodes))
    csr = net.reverse
    K.nearest_many(csr.indptr, csr.indices, csr.weights, node_seed_ptr, seeds.seed_node,
                   seeds.seed_cost, float(limit_s), nodes, nodes, zeros, zeros, out)
    return out, snaps


def service_areas(result, minutes=None, buffer_m: float = BUFFER_M, quad_segs: int = 1,
                  simplify_m: float = 2.0, dimensions: bool = True,
                  categories: bool = True, method: str = "field",
                  cell_m: float | None = None, workers: int | None = None) -> gpd.GeoDataFrame:
    """Areas within each threshold of the nearest facility of each category and dimension.

    One multi-source search per category (all categories in parallel); a dimension's area is
    where the nearest facility of *any* of its categories is within the threshold. Returns
    ``level`` ("category"|"dimension"), ``id``, ``minutes`` and the polygon. ``method``,
    ``cell_m``: as in :func:`isochrones` (``cell_m`` defaults to ``SA_CELL_M``, at most a third
    of ``buffer_m``; ``quad_segs``/``simplify_m`` apply to "buffers").
    """
    _check_method(method, buffer_m, cell_m)
    cell_m = cell_m or min(SA_CELL_M, buffer_m / 3)
    net = result.network
    mins = _minutes(minutes if minutes is not None else result.settings.thresholds_min)
    profile = result.profile
    cat_ids = [c.id for c in profile.categories]
    times, snaps = _category_node_times(result, cat_ids, 60.0 * max(mins))
    groups = [("category", c, [i]) for i, c in enumerate(cat_ids)] if categories else []
    if dimensions:
        for dim in profile.dimensions:
            idx = [cat_ids.index(c.id) for c in dim.categories if c.id in cat_ids]
            groups.append(("dimension", dim.id, idx))
    rows = []
    jobs = []
    field = _NetworkField.get(net, buffer_m, cell_m) if method == "field" else None
    for level, gid, idx in groups:
        t = times[idx].min(axis=0) if idx else np.full(net.n_nodes, np.inf)
        snap = Snap.concat([snaps[i] for i in idx]) if idx else Snap(*(np.zeros(0, dt) for dt in (np.int64, float, float, bool)))
        reached = np.flatnonzero(np.isfinite(t))
        for m in mins:
            jobs.append((level, gid, m, reached, t[reached], snap))

    def one(job):
        level, gid, m, reached, tt, snap = job
        args = (net, np.zeros(len(reached), np.int64), reached, tt, 60.0 * m)
        kw = dict(towards=True, own_edge=snap, own_group=np.zeros(len(snap), np.int64))
        if method == "field":
            return level, gid, m, field.polygon(net, _reached_parts(*args, **kw))
        g, lines = reached_pieces(*args, **kw)
        return level, gid, m, lines_to_polygon(lines, buffer_m, quad_segs, simplify_m)

    with ThreadPoolExecutor(workers or min(4, cores())) as pool:
        rows = list(pool.map(carried(one), jobs))
    return gpd.GeoDataFrame({"level": [r[0] for r in rows], "id": [r[1] for r in rows],
                             "minutes": [r[2] for r in rows]},
                            geometry=[r[3] for r in rows], crs=net.crs)


#: Gap areas reach at most this far (metres) from an uncovered home.
GAP_RADIUS_M = 60.0


def gap_areas(result, areas: gpd.GeoDataFrame | None = None, minutes: float | None = None,
              landuse=None, radius_m: float = GAP_RADIUS_M, cells=None) -> gpd.GeoDataFrame:
    """Where the homes the engine marks uncovered are, per dimension.

    A home is uncovered in a dimension when its coverage flag is not 1: ``cov_<dimension>``
    (the categories' own thresholds: the ``covered`` share of the summary table) or, with
    ``minutes``, ``cov<minutes>_<dimension>`` when the analysis has that tier. The gap polygon
    is the union, over uncovered homes, of each home's Voronoi cell (among all homes) cut to
    ``radius_m`` around it: it holds every uncovered home and no covered one, so the
    ``population`` inside it is the uncovered population of the table. ``areas`` and
    ``landuse`` are accepted for older calls and not used (service areas are street buffers,
    not coverage). Returns ``dimension``, ``minutes``, ``homes``, ``population``,
    ``data_status`` and the polygon. A dimension with no facility in the data has an empty gap
    and NaN counts (``no_data``): unknown, not a gap.

    The union is cheap (:class:`_HomeCells`): Voronoi cells tile the plane edge to edge, so
    their union is a coverage union, from which the parts of cells beyond ``radius_m`` (one
    union for all dimensions) are cut. ``cells``: :func:`home_cells` of these homes' geometries
    with this ``radius_m``, made already (they depend on the homes only, not on coverage: the
    analysis can make them beside its later stages; see :class:`lifecircle.result.MapPrep`).
    """
    homes = result.homes
    pop = homes[col.POPULATION].to_numpy(float)
    if cells is None:
        cells = home_cells(homes.geometry.to_numpy(), radius_m)
    rows = []
    for dim_id, m, out in uncovered_homes(result, minutes):
        if out is None:   # no facility of the dimension in the data: unknown, not everywhere
            rows.append({"dimension": dim_id, "minutes": m, "homes": np.nan, "population": np.nan,
                         col.DATA_STATUS: col.STATUS_NO_DATA, "geometry": shapely.Polygon()})
            continue
        rows.append({"dimension": dim_id, "minutes": m, "homes": int(out.sum()),
                     "population": float(pop[out].sum()), col.DATA_STATUS: col.STATUS_DATA,
                     "geometry": cells.union(out)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=result.network.crs)


def uncovered_homes(result, minutes: float | None = None):
    """Per dimension of the profile: ``(dimension id, minutes, mask of the homes it leaves
    uncovered)``, the mask None where no category of the dimension has data (see
    :func:`gap_areas` for which coverage flag counts)."""
    homes = result.homes
    tiers = tuple(result.settings.thresholds_min)
    status = getattr(result, "data_status", None) or {}
    for dim in result.profile.dimensions:
        if dim.categories and all(status.get(c.id) == col.STATUS_NO_DATA for c in dim.categories):
            yield dim.id, float(minutes or max(tiers)), None
            continue
        name = col.dim_covered(dim.id)
        m = None
        if minutes is not None and col.dim_covered_at(dim.id, minutes) in homes:
            name, m = col.dim_covered_at(dim.id, minutes), float(minutes)
        flag = homes[name].to_numpy(float) if name in homes else np.zeros(len(homes))
        yield dim.id, m if m is not None else float(max(tiers)), ~(np.nan_to_num(flag) > 0)


def _discs(xy: np.ndarray, radius_m: float) -> np.ndarray:
    """16-gons of ``radius_m`` around the points ``xy`` (N, 2): the polygons
    ``shapely.buffer(point, radius_m, quad_segs=4)`` makes (same corners, same order), built from
    one set of corner offsets instead of one buffer each (a third of the time)."""
    ang = -np.arange(16) * (np.pi / 8)
    ring = np.column_stack([np.cos(ang), np.sin(ang)]) * radius_m
    ring = np.vstack([ring, ring[:1]])
    return shapely.polygons(np.asarray(xy, float)[:, None, :] + ring[None, :, :])


def home_cells(geoms, radius_m: float = GAP_RADIUS_M) -> _HomeCells:
    """The homes' Voronoi cells within ``radius_m`` (:class:`_HomeCells`) from their geometries
    (metric): what :func:`gap_areas` unites per dimension."""
    return _HomeCells(shapely.point_on_surface(np.asarray(geoms, dtype=object)), radius_m)


class _HomeCells:
    """Each home's Voronoi cell (among all homes) within ``radius_m`` of it, and unions of them.

    Cells do not overlap, so a home lies in its own cell only (homes at the same point share
    one). The union of the cells of some homes is the coverage union of their Voronoi cells
    (cells share their edges exactly: linear, no overlay) less the far parts of all cells
    (each cell beyond its home's disc, united once): a point of home ``i``'s cell lies in
    another cell only on a shared edge, so only ``i``'s own far part cuts it.
    """

    def __init__(self, pts: np.ndarray, radius_m: float):
        ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        self.n = len(pts)
        self.where = np.full(self.n, -1, np.int64)      # home -> its point's cell
        if not ok.any():
            self.vor = np.array([], dtype=object)
            self.far = None
            return
        coords = shapely.get_coordinates(pts[ok])
        for grid in (None, 2):
            # exact points; if GEOS's Voronoi fails (generators nanometres apart), homes on a
            # 1 cm grid, so ones closer than that share a cell
            xy, inv = np.unique(coords if grid is None else np.round(coords, grid), axis=0, return_inverse=True)
            self.where[ok] = inv.ravel()
            discs = _discs(xy, radius_m)
            if len(xy) == 1:
                self.vor, self.far = discs, None
                return
            frame = shapely.box(*shapely.total_bounds(discs))
            try:
                vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=frame,
                                                                 ordered=True))
                break
            except shapely.errors.GEOSException:
                if grid is not None:
                    raise
        if len(vor) != len(xy):    # pragma: no cover - GEOS gives one cell per distinct point
            raise IsochroneError(f"Voronoi cells: {len(vor)} cells for {len(xy)} homes",
                                 zh=f"泰森多边形：{len(xy)} 个住宅得到 {len(vor)} 个单元")
        shapely.prepare(discs)
        clipped = ~shapely.contains(discs, vor)
        far = shapely.difference(vor[clipped], discs[clipped])
        self.vor = vor
        self.far = shapely.union_all(far) if len(far) else None

    def union(self, homes: np.ndarray):
        """The union of the cells of ``homes`` (a boolean mask over the homes)."""
        take = np.zeros(len(self.vor), bool)
        idx = self.where[np.asarray(homes, bool) & (self.where >= 0)]
        take[idx] = True
        if not take.any():
            return shapely.Polygon()
        if self.far is None:
            return shapely.union_all(self.vor[take])
        try:
            whole = shapely.coverage_union_all(self.vor[take])
        except shapely.errors.GEOSException:     # pragma: no cover - cells not edge-matched
            whole = shapely.union_all(self.vor[take])
        return shapely.difference(whole, self.far)


def export_gpkg(path, isochrones_gdf=None, service_areas_gdf=None, gaps_gdf=None,
                attribution: str = ATTRIBUTION) -> None:
    """Write isochrones, service areas and gap areas as layers of one GeoPackage (atomically),
    in WGS-84 like every other lifecircle output, with an ``about`` table carrying the OSM
    ``attribution``."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise OutputError(f"{path}: the export must be a GeoPackage (.gpkg)",
                          zh=f"{path}：导出文件须为 GeoPackage（.gpkg）")
    tmpdir = Path(tempfile.mkdtemp(dir=path.parent if path.parent.exists() else None))
    try:
        tmp = tmpdir / path.name
        for name, frame in (("isochrones", isochrones_gdf), ("service_areas", service_areas_gdf),
                            ("gaps", gaps_gdf)):
            if frame is not None and len(frame):
                frame = frame.copy()
                frame["geometry"] = shapely.make_valid(frame.geometry.to_numpy())
                if frame.crs is not None:     # one convention for every output: WGS-84
                    frame = frame.to_crs(WGS84)
                frame.to_file(tmp, layer=name, driver="GPKG")
        if not tmp.exists():
            raise OutputError(f"{path}: nothing to write (no isochrones, service areas or gaps)",
                              zh=f"{path}：没有可写的内容（没有等时圈、服务范围或缺口）")
        write_about_layer(tmp, attribution)
        shutil.move(str(tmp), str(path))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def nearest_facilities(result, categories=None):
    """Per home and category: minutes to the nearest facility and which one.

    Returns ``(category ids, minutes (C, H), facility (C, H))`` where ``facility`` is the row
    position in ``result.facilities`` (-1 where none lies within ``settings.max_minutes``).
    The minutes are the engine's (the homes' ``t_<category>`` columns)."""
    cats = [c.id for c in result.profile.categories] if categories is None else list(categories)
    fac_cat = result.facilities[col.CATEGORY].to_numpy()
    rows = [np.flatnonzero(fac_cat == c) for c in cats]
    snaps = [result.facility_snap.take(r) for r in rows]
    minutes, which = result.engine.nearest_facility(snaps)
    out = np.full(which.shape, -1, dtype=np.int64)
    for i, r in enumerate(rows):
        ok = which[i] >= 0
        out[i, ok] = r[which[i, ok]]
    return cats, minutes, out
