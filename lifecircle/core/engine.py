"""The access engine: walking times from homes to facilities on the CSR network.

Homes and facilities sit part-way along edges (see :mod:`lifecircle.core.snapping`). For a home h
on edge (u, v) at ``s`` metres from u with a straight leg ``l``::

    t(h, F) = min( (l + s)/speed + d_F(u),  (l + L - s)/speed + d_F(v),  direct along the edge )

where ``d_F`` is the time from a node to the nearest facility of F, computed by one multi-source
search on the reversed arcs whose seeds carry the facilities' own partial-edge and leg costs.

Counts, the k-nearest mean, distance decay and 2SFCA need every home-facility pair within the
limit. Two passes give them, with the same exact answer:

* per home (the default when it needs fewer searches, as in every real city tried): one
  truncated search from each node at the end of a home's edge, on the forward arcs. The
  facilities it reaches (with their own partial-edge and leg costs) serve *every category at
  once*, and every home on the edge reads ``min(a + d_u(f), b + d_v(f), along the edge)``.
  Home edges are processed in spatially compact blocks in parallel; 2SFCA takes a second pass
  (demand per facility first, then the supply ratios).
* per facility: one truncated search from each facility on the reversed arcs, folded into
  per-home sums as it runs. The what-if updates use this one (one facility at a time).

No pair matrix is stored either way.

All metrics are exact (float64) and match a brute-force networkx computation; see the tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from lifecircle.core import _kernels as K
from lifecircle.core.network import CSR, WalkNetwork
from lifecircle.core.snapping import Snap
from lifecircle.settings import DEFAULTS, Settings

INF = np.inf


@dataclass
class HomeIndex:
    """Homes attached to the network, in the shapes the kernels read."""

    u: np.ndarray        # int64 node or -1 when unreachable
    v: np.ndarray
    a: np.ndarray        # seconds from the home to u (inf when the edge is one-way against it)
    b: np.ndarray        # seconds from the home to v
    edge: np.ndarray
    off: np.ndarray      # metres from u
    leg: np.ndarray      # metres
    pop: np.ndarray
    node_ptr: np.ndarray   # node -> (home, seconds) incidence
    node_home: np.ndarray
    node_cost: np.ndarray
    edge_ptr: np.ndarray   # edge -> homes on it
    edge_home: np.ndarray

    @property
    def n(self) -> int:
        return len(self.u)


def _group(keys: np.ndarray, n: int):
    """CSR grouping: ``ptr`` (n + 1) and the stable order that lists the items of key ``i``
    at ``order[ptr[i]:ptr[i + 1]]``."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, np.argsort(keys, kind="stable")


@dataclass
class LocalGraph:
    """The network with its nodes numbered along a Z-order curve of their positions: nodes
    near each other get near numbers, so a search's distances, arcs and facility lists sit in
    a few cache lines instead of all over the arrays (the per-home pass and the nearest
    searches ran ~25 % faster at a 134k-node city). Every arc list keeps its order, so a
    search runs exactly as on the original numbering (same values, same visiting order),
    under other names."""

    new_of: np.ndarray      # original node -> local number (int64)
    forward: CSR
    reverse: CSR
    edge_u: np.ndarray      # local end nodes of every edge (int64)
    edge_v: np.ndarray

    def nodes(self, x: np.ndarray) -> np.ndarray:
        """Original node numbers ``x`` as local ones (-1 stays -1)."""
        x = np.asarray(x)
        return np.where(x >= 0, self.new_of[np.where(x >= 0, x, 0)], -1).astype(x.dtype)


def _permuted(csr: CSR, old_of: np.ndarray, new_of: np.ndarray) -> CSR:
    """``csr`` with node ``old_of[i]`` numbered ``i``, each node's arcs in their order."""
    n = len(old_of)
    cnt = np.diff(csr.indptr)[old_of]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cnt, out=ptr[1:])
    pos = np.repeat(csr.indptr[old_of] - ptr[:-1], cnt) + np.arange(ptr[-1], dtype=np.int64)
    return CSR(ptr, new_of[csr.indices[pos]].astype(np.int32), csr.weights[pos])


def local_graph(net: WalkNetwork, cell: float = 50.0) -> LocalGraph:
    """:class:`LocalGraph` of ``net`` (Z-order of ``cell``-metre grid cells)."""
    x, y = np.asarray(net.node_x, dtype=np.float64), np.asarray(net.node_y, dtype=np.float64)
    n = len(x)
    if n:
        gx = ((x - x.min()) // cell).astype(np.uint64)
        gy = ((y - y.min()) // cell).astype(np.uint64)
        old_of = np.argsort(_morton(gx, gy), kind="stable")   # a cell's nodes in their order
    else:
        old_of = np.zeros(0, dtype=np.int64)
    new_of = np.empty(n, dtype=np.int64)
    new_of[old_of] = np.arange(n, dtype=np.int64)
    return LocalGraph(new_of, _permuted(net.forward, old_of, new_of),
                      _permuted(net.reverse, old_of, new_of),
                      new_of[np.asarray(net.edge_u, dtype=np.int64)],
                      new_of[np.asarray(net.edge_v, dtype=np.int64)])


def index_homes(net: WalkNetwork, snap: Snap, population=None) -> HomeIndex:
    n = len(snap)
    ok = snap.edge >= 0
    e = np.where(ok, snap.edge, 0)
    speed = net.speed_mps
    leg = np.where(ok, snap.leg, 0.0)
    u = np.where(ok, net.edge_u[e], -1).astype(np.int64)
    v = np.where(ok, net.edge_v[e], -1).astype(np.int64)
    a = np.where(ok & ~net.edge_oneway[e], (leg + snap.offset) / speed, INF)
    b = np.where(ok, (leg + net.edge_len[e] - snap.offset) / speed, INF)
    pop = np.ones(n) if population is None else np.asarray(population, dtype=np.float64)
    # node incidence: each reachable home appears at u (if allowed) and at v
    hs = np.arange(n)
    src = np.concatenate([u[ok & np.isfinite(a)], v[ok]])
    home = np.concatenate([hs[ok & np.isfinite(a)], hs[ok]])
    cost = np.concatenate([a[ok & np.isfinite(a)], b[ok]])
    node_ptr, order = _group(src, net.n_nodes)
    eorder = np.argsort(np.where(ok, e, net.n_edges), kind="stable")
    eorder = eorder[ok[eorder]]
    edge_ptr = np.zeros(net.n_edges + 1, dtype=np.int64)
    np.cumsum(np.bincount(e[ok], minlength=net.n_edges), out=edge_ptr[1:])
    return HomeIndex(u, v, a, b, np.where(ok, snap.edge, -1), np.where(ok, snap.offset, 0.0),
                     leg, pop, node_ptr, home[order].astype(np.int64), cost[order],
                     edge_ptr, eorder.astype(np.int64))


@dataclass
class FacilitySeeds:
    """Facilities of several categories as search seeds (CSR over facilities and categories).

    A facility has one or more entries (an area entered from several streets: see
    :func:`~lifecircle.core.snapping.area_entries`): ``ent_ptr`` lists facility f's at
    ``ent_*[ent_ptr[f]:ent_ptr[f + 1]]``, its own point first; its seeds are those of all its
    entries (the nearest time is the least over them; it is counted once). ``edge``, ``off``,
    ``leg`` are each facility's own point."""

    cat_ptr: np.ndarray     # category -> facilities
    seed_ptr: np.ndarray    # facility -> seeds
    seed_node: np.ndarray
    seed_cost: np.ndarray
    cap: np.ndarray
    edge: np.ndarray
    off: np.ndarray
    leg: np.ndarray
    ent_ptr: np.ndarray = None     # facility -> entries
    ent_edge: np.ndarray = None
    ent_off: np.ndarray = None
    ent_leg: np.ndarray = None

    @property
    def ent_fac(self) -> np.ndarray:
        """The facility of each entry."""
        return np.repeat(np.arange(len(self.ent_ptr) - 1, dtype=np.int64), np.diff(self.ent_ptr))


def facility_seeds(net: WalkNetwork, snaps: list[Snap], capacities: list | None = None) -> FacilitySeeds:
    """Seeds for the reversed search: an entry on (u, v) at s is reached from u after
    (l + s)/speed and from v after (l + L - s)/speed (if the edge allows v -> u); a
    facility's seeds are those of all its entries."""
    speed = net.speed_mps
    if len(snaps) == 0:
        z = np.zeros(0)
        zi = np.zeros(0, np.int64)
        return FacilitySeeds(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                             z, z, zi, z, z, np.zeros(1, np.int64), zi, z, z)
    edge = np.concatenate([np.asarray(sn.edge, dtype=np.int64) for sn in snaps])
    off = np.concatenate([np.asarray(sn.offset, dtype=np.float64) for sn in snaps])
    leg = np.concatenate([np.asarray(sn.leg, dtype=np.float64) for sn in snaps])
    cap = np.concatenate([np.ones(len(sn)) if capacities is None or capacities[i] is None
                          else np.asarray(capacities[i], dtype=np.float64).reshape(-1)
                          for i, sn in enumerate(snaps)])
    cat = np.repeat(np.arange(len(snaps)), [len(sn) for sn in snaps])
    ok = edge >= 0
    # every entry of every facility (grouped by facility), as positions among the kept ones
    base = np.cumsum([0] + [len(sn) for sn in snaps[:-1]])
    ents = [sn.entries() for sn in snaps]
    own = np.concatenate([x[0] + b for x, b in zip(ents, base)])
    new = np.cumsum(ok) - 1
    keep = ok[own] & (np.concatenate([x[1] for x in ents]) >= 0)
    ee = np.concatenate([x[1] for x in ents])[keep]
    es = np.concatenate([x[2] for x in ents])[keep].astype(np.float64)
    el = np.concatenate([x[3] for x in ents])[keep].astype(np.float64)
    own = new[own[keep]]
    e, s, leg, cat = edge[ok], off[ok], leg[ok], cat[ok]
    cap = np.where(np.isfinite(cap) & (cap > 0), cap, 1.0)[ok]
    cat_ptr = np.zeros(len(snaps) + 1, dtype=np.int64)
    np.cumsum(np.bincount(cat, minlength=len(snaps)), out=cat_ptr[1:])
    ent_ptr = np.zeros(len(e) + 1, dtype=np.int64)
    np.cumsum(np.bincount(own, minlength=len(e)), out=ent_ptr[1:])
    two = ~net.edge_oneway[ee]
    # per entry: [u] or [u, v], a facility's entries' seeds together
    n_seed = 1 + two.astype(np.int64)
    sp = np.zeros(len(ee) + 1, dtype=np.int64)
    np.cumsum(n_seed, out=sp[1:])
    start = sp[:-1]
    node = np.empty(sp[-1], dtype=np.int32)
    cost = np.empty(sp[-1])
    node[start] = net.edge_u[ee]
    cost[start] = (el + es) / speed
    node[start[two] + 1] = net.edge_v[ee][two]
    cost[start[two] + 1] = ((el + net.edge_len[ee] - es) / speed)[two]
    seed_ptr = sp[ent_ptr]
    return FacilitySeeds(cat_ptr, seed_ptr, node, cost, cap, e, s, leg, ent_ptr, ee, es, el)


def same_edge_pairs(net: WalkNetwork, homes: HomeIndex, edge: np.ndarray, off: np.ndarray,
                    leg: np.ndarray):
    """Every (point, home, seconds) of a home on the same edge as a point, walking straight
    along that edge from the home to the point (leg + along the edge + leg; one-way edges only
    forward) — the one place the same-edge walk is computed in Python.

    Parameters
    ----------
    net : WalkNetwork
        The network.
    homes : HomeIndex
        The homes' attachments (:func:`index_homes`).
    edge, off, leg : numpy.ndarray
        The points' edge (−1: unattached), offset along it and straight leg (metres).

    Returns
    -------
    tuple of numpy.ndarray
        Point indices, home indices and seconds, one entry per pair.
    """
    edge = np.asarray(edge)
    pts = np.flatnonzero(edge >= 0)
    e = edge[pts]
    lo = homes.edge_ptr[e]
    cnt = homes.edge_ptr[e + 1] - lo
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    r = np.repeat(np.arange(len(pts)), cnt)
    pos = lo[r] + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    hh = homes.edge_home[pos]
    p = pts[r]
    delta = off[p] - homes.off[hh]
    allowed = (delta >= 0) | ~net.edge_oneway[e[r]]
    t = (np.abs(delta) + leg[p] + homes.leg[hh]) / net.speed_mps
    return p[allowed].astype(np.int64), hh[allowed].astype(np.int64), t[allowed]


def _direct_same_edge(net: WalkNetwork, homes: HomeIndex, seeds: FacilitySeeds, c: int) -> np.ndarray:
    """Seconds from each home straight along its own edge to the nearest entry of a
    facility of category ``c`` on that edge (inf where none)."""
    return _direct_same_edge_which(net, homes, seeds, c)[0]


def _direct_same_edge_which(net: WalkNetwork, homes: HomeIndex, seeds: FacilitySeeds, c: int):
    """:func:`_direct_same_edge` with the facility (global seed-list index) that gives it."""
    out = np.full(homes.n, INF)
    which = np.full(homes.n, -1, dtype=np.int64)
    f0, f1 = seeds.cat_ptr[c], seeds.cat_ptr[c + 1]
    if f1 == f0:
        return out, which
    e0, e1 = seeds.ent_ptr[f0], seeds.ent_ptr[f1]
    p, hh, t = same_edge_pairs(net, homes, seeds.ent_edge[e0:e1], seeds.ent_off[e0:e1],
                               seeds.ent_leg[e0:e1])
    if len(hh) == 0:
        return out, which
    o = np.lexsort((t, hh))                     # per home, its shortest same-edge walk first
    first = o[np.r_[True, hh[o][1:] != hh[o][:-1]]]
    out[hh[first]] = t[first]
    which[hh[first]] = seeds.ent_fac[e0 + p[first]]
    return out, which


@dataclass
class ReachMetrics:
    """Per category × home arrays (minutes unless said); None for a metric not asked for
    (see :meth:`AccessEngine.reach`)."""

    nearest: np.ndarray | None     # (C, H) minutes, NaN beyond the search limit
    counts: np.ndarray | None      # (C, T, H) facilities within each threshold (int16 when
    #                                every category has at most 32,767 facilities, else int32)
    kmean: np.ndarray | None       # (C, H) mean minutes to the k nearest (censored at limit)
    decay: np.ndarray | None       # (C, H) distance-decay weighted count
    sfca: np.ndarray | None        # (C, H) 2SFCA supply per resident
    found: np.ndarray | None       # (C, H) facilities found within the reach limit (<= k)
    thresholds: tuple = ()


class AccessEngine:
    """Exact walking access from homes to facilities of many categories.

    Build once per network and set of homes; call :meth:`nearest` and :meth:`reach` with the
    facilities of each category. Both run the categories in parallel on all cores.
    """

    #: Home edges per block of the per-home pass (None: from the number of edges); any size
    #: gives the same metrics (the tests vary it)
    _block_edges: int | None = None

    def __init__(self, net: WalkNetwork, home_snap: Snap, population=None,
                 settings: Settings = DEFAULTS):
        self.net = net
        self.settings = settings
        self.homes = index_homes(net, home_snap, population)

    @property
    def _csr(self):
        return self.net.reverse      # built on first use (the per-home pass needs forward only)

    @functools.cached_property
    def _local(self) -> LocalGraph:
        """The network renumbered for cache locality (:class:`LocalGraph`): the nearest
        searches and the per-home pass run on it."""
        return local_graph(self.net)

    @functools.cached_property
    def _local_ends(self):
        """The homes' edge ends ``u``, ``v`` as local node numbers."""
        return self._local.nodes(self.homes.u), self._local.nodes(self.homes.v)

    def release_caches(self) -> None:
        """Drop what :meth:`nearest` and :meth:`reach` build on first use and keep (the
        renumbered network, the homes' blocks): built again when next needed, with the same
        results; :meth:`nearest_facility` uses none of it."""
        for name in ("_local", "_local_ends", "_home_blocks"):
            self.__dict__.pop(name, None)

    # ---------------------------------------------------------------------------------------
    def nearest(self, fac_snaps: list[Snap], limit_min: float | None = None) -> np.ndarray:
        """Minutes from every home to the nearest facility of each category: (C, H), NaN
        where none lies within ``limit_min`` (default ``settings.max_minutes``)."""
        limit = 60.0 * (self.settings.max_minutes if limit_min is None else limit_min)
        seeds = facility_seeds(self.net, fac_snaps)
        return self._nearest_from_seeds(seeds, limit)

    def _nearest_from_seeds(self, seeds: FacilitySeeds, limit: float) -> np.ndarray:
        C = len(seeds.cat_ptr) - 1
        # per category seed lists (a facility's seeds merged: multi-source)
        cat_seed_ptr = seeds.seed_ptr[seeds.cat_ptr]
        h = self.homes
        out = np.empty((C, h.n))     # a category's row contiguous: the table's column
        loc = self._local
        csr = loc.reverse
        u, v = self._local_ends
        K.nearest_many(csr.indptr, csr.indices, csr.weights, cat_seed_ptr,
                       loc.new_of[seeds.seed_node].astype(np.int32), seeds.seed_cost, limit, u, v,
                       h.a, h.b, out)
        for c in range(C):
            direct = _direct_same_edge(self.net, h, seeds, c)
            np.minimum(out[c], np.where(direct <= limit, direct, INF), out=out[c])
        out /= 60.0                      # in place: at city scale this array is large
        out[~np.isfinite(out)] = np.nan
        return out

    def nearest_facility(self, fac_snaps: list[Snap], limit_min: float | None = None):
        """Which facility is nearest: ``(minutes, index)``, both (C, H); ``index`` is the
        position in category c's ``fac_snaps[c]`` (-1 and NaN minutes where none lies within
        ``limit_min``, default ``settings.max_minutes``). The minutes equal :meth:`nearest`.

        A separate labelled search (one per category, in parallel): :meth:`nearest` and
        :meth:`reach` stay as fast as they were; maps call this one when they need names."""
        limit = 60.0 * (self.settings.max_minutes if limit_min is None else limit_min)
        seeds = facility_seeds(self.net, fac_snaps)
        C = len(seeds.cat_ptr) - 1
        h = self.homes
        t = np.empty((h.n, C))
        f = np.empty((h.n, C), dtype=np.int64)
        fac = np.arange(len(seeds.seed_ptr) - 1, dtype=np.int64)
        label = np.repeat(fac, np.diff(seeds.seed_ptr))
        csr = self._csr
        K.nearest_labelled(csr.indptr, csr.indices, csr.weights, seeds.seed_ptr[seeds.cat_ptr],
                          seeds.seed_node, seeds.seed_cost, label, limit, h.u, h.v, h.a, h.b, t, f)
        for c in range(C):
            direct, which = _direct_same_edge_which(self.net, h, seeds, c)
            better = (direct <= limit) & (direct < t[:, c])
            t[better, c] = direct[better]
            f[better, c] = which[better]
            f[:, c] = np.where(f[:, c] >= 0, f[:, c] - seeds.cat_ptr[c], -1)
        t /= 60.0
        none = ~np.isfinite(t)
        t[none] = np.nan
        f[none] = -1
        return t.T, f.T

    # ---------------------------------------------------------------------------------------
    def reach(self, fac_snaps: list[Snap], capacities: list | None = None,
              thresholds_min=None, limit_min: float | None = None,
              sfca_min: list | None = None, k: int | None = None,
              with_nearest: bool = True, with_decay: bool = True,
              with_sfca: bool = True, with_counts: bool = True,
              method: str = "auto") -> ReachMetrics:
        """Counts within thresholds, k-nearest mean, decay sum and 2SFCA per category.

        Searches stop at ``limit_min`` (default: the largest threshold).
        ``sfca_min`` gives each category's 2SFCA catchment (default: the limit).
        ``with_nearest=False`` skips the nearest-minutes search (``nearest`` is then None):
        call :meth:`nearest` yourself when you already have it. ``with_counts``,
        ``with_decay``, ``with_sfca`` and ``k=0`` (the k-nearest mean) switch those metrics
        off: they are then neither computed nor allocated, and their fields are None (``found``
        goes with the k-nearest mean). At a city of a million homes and 45 categories each
        (C, H) float array is 360 MB and 2SFCA takes a second pass of every search.

        ``method`` picks the searches, with the same exact answer either way: ``"facilities"``
        runs one search per facility (on the reversed arcs); ``"homes"`` one search per node at
        the end of a home's edge, each serving every category at once; ``"auto"`` (default)
        takes the one with fewer searches.
        """
        s = self.settings
        thresholds = tuple(s.thresholds_min if thresholds_min is None else thresholds_min)
        limit_min = float(max(thresholds) if limit_min is None else limit_min)
        k = s.k_nearest if k is None else int(k)
        seeds = facility_seeds(self.net, fac_snaps, capacities)
        C = len(fac_snaps)
        sfca_lim = np.array([60.0 * (limit_min if sfca_min is None or sfca_min[c] is None
                                     else sfca_min[c]) for c in range(C)])
        if not with_sfca:
            sfca_lim[:] = -1.0
        # the per-home pass meets every facility within the limit: its minimum is the nearest
        near_from_pass = with_nearest and s.max_minutes <= limit_min
        counts, decay, sfca, kmean, found, near = self._run_reach(
            seeds, thresholds if with_counts else (), limit_min, sfca_lim, k, with_decay, method,
            want_nearest=near_from_pass)
        nearest = None
        if near_from_pass and near is not None:
            near[~(near <= 60.0 * s.max_minutes)] = np.nan   # in place: (C, H) can be large
            near /= 60.0
            nearest = near
        elif with_nearest:
            nearest = self._nearest_from_seeds(seeds, 60.0 * s.max_minutes)
        return ReachMetrics(nearest, counts if with_counts else None, kmean, decay,
                            sfca if with_sfca else None, found, thresholds)

    def _run_reach(self, seeds: FacilitySeeds, thresholds, limit_min, sfca_lim, k, with_decay=True,
                   method: str = "auto", want_nearest: bool = True):
        """The reach metrics; an array is allocated only for a metric asked for (a metric
        switched off gets a (C, 0) stand-in the kernels never write, and None is returned)."""
        s = self.settings
        h = self.homes
        C = len(seeds.cat_ptr) - 1
        with_sfca = bool((sfca_lim >= 0).any())
        # a count never exceeds its category's facilities: int16 holds it exactly up to 32,767
        most = int(np.diff(seeds.cat_ptr).max()) if C else 0
        counts = np.zeros((C, len(thresholds), h.n),
                          dtype=np.int16 if most <= np.iinfo(np.int16).max else np.int32)

        def per_home(on: bool, fill: float = 0.0, dtype=np.float64):
            return np.full((C, h.n if on else 0), fill, dtype=dtype)

        decay = per_home(with_decay)
        sfca = per_home(with_sfca)
        kmean = per_home(k > 0, np.nan)
        found = per_home(k > 0, 0, np.int32)
        decay_kind = (0 if s.decay == "exponential" else 1) if with_decay else -1
        decay_param = s.decay_beta if decay_kind == 0 else s.decay_sigma_min
        if method == "auto":
            method = "homes" if 1.5 * len(self._home_blocks[2]) < len(seeds.edge) else "facilities"
        near = None
        if method == "homes":
            near = self._home_pass(seeds, thresholds, limit_min, sfca_lim, k, decay_kind,
                                   decay_param, counts, decay, sfca, kmean, found, want_nearest)
        elif method == "facilities":
            self._facility_pass(seeds, thresholds, limit_min, sfca_lim, k, decay_kind,
                                decay_param, counts, decay, sfca, kmean, found)
        else:
            raise ValueError(f"method must be 'auto', 'homes' or 'facilities', not {method!r}")
        kmean /= 60.0
        unreachable = h.u < 0
        for a in (kmean, decay, sfca):
            if a.shape[1]:
                a[:, unreachable] = np.nan
        return (counts, decay if with_decay else None, sfca if with_sfca else None,
                kmean if k > 0 else None, found if k > 0 else None, near)

    @functools.cached_property
    def _home_blocks(self):
        """Home edges in spatially compact blocks (Morton order of their midpoints), and the
        nodes at their ends: the sources of the per-home pass. Returns ``(blk_ptr, blk_edge,
        end nodes, bn_ptr, bn_node)``: ``bn_*`` each block's end nodes, sorted and unique."""
        h, net = self.homes, self.net
        edges = np.flatnonzero(np.diff(h.edge_ptr) > 0)
        if len(edges) == 0:
            return (np.zeros(1, np.int64), edges.astype(np.int64), edges, np.zeros(1, np.int64),
                    edges.astype(np.int64))
        u, v = net.edge_u[edges], net.edge_v[edges]
        x = (net.node_x[u] + net.node_x[v]) / 2
        y = (net.node_y[u] + net.node_y[v]) / 2
        cell = 200.0   # metres: a block is a few street blocks wide
        gx = ((x - x.min()) // cell).astype(np.uint64)
        gy = ((y - y.min()) // cell).astype(np.uint64)
        order = np.argsort(_morton(gx, gy), kind="stable")
        edges = edges[order].astype(np.int64)
        # a few hundred edges a block: fewer end nodes shared with (searched again in) the next
        # block; at least ~128 blocks where there are enough edges, for the workers
        size = self._block_edges or int(np.clip(len(edges) // 128, 48, 384))
        blk_ptr = np.r_[np.arange(0, len(edges), size), len(edges)].astype(np.int64)
        # each block's end nodes in local numbers (the pass runs on the local graph), sorted
        # and unique (block-major keys, one numpy sort)
        n = np.int64(net.n_nodes)
        loc = self._local
        blk = np.repeat(np.arange(len(blk_ptr) - 1, dtype=np.int64), np.diff(blk_ptr))
        key = np.unique(np.r_[blk * n + loc.edge_u[edges], blk * n + loc.edge_v[edges]])
        bn_ptr = np.searchsorted(key // n, np.arange(len(blk_ptr), dtype=np.int64)).astype(np.int64)
        ends = np.flatnonzero(np.bincount(np.r_[u, v], minlength=net.n_nodes))   # sorted, unique
        return blk_ptr, edges, ends, bn_ptr, (key % n).astype(np.int64)

    def _home_pass(self, seeds, thresholds, limit_min, sfca_lim, k, decay_kind, decay_param,
                   counts, decay, sfca, kmean, found, want_nearest: bool = True):
        import numba

        h, net = self.homes, self.net
        loc = self._local          # every node number below is a local one
        fwd = loc.forward
        C = len(seeds.cat_ptr) - 1
        n_fac = len(seeds.edge)
        fac_cat = np.repeat(np.arange(C, dtype=np.int64), np.diff(seeds.cat_ptr))
        # node -> (facility, seconds from the node to it)
        seed_fac = np.repeat(np.arange(n_fac, dtype=np.int64), np.diff(seeds.seed_ptr))
        fn_ptr, o = _group(loc.new_of[seeds.seed_node], net.n_nodes)
        fn_fac, fn_cost = seed_fac[o], seeds.seed_cost[o]
        # edge -> the facilities with an entry on it (the straight walk along a shared edge;
        # a facility has at most one entry per edge), each row's entry offset and leg
        fe_ptr, fo = _group(seeds.ent_edge, net.n_edges)
        blk_ptr, blk_edge, _, bn_ptr, bn_node = self._home_blocks
        n_workers = max(1, min(2 * numba.get_num_threads(), len(blk_ptr) - 1))
        nearest = np.full((C, h.n if want_nearest else 0), INF)
        need_sfca = bool((sfca_lim >= 0).any()) and n_fac > 0
        demand = np.zeros((n_workers, n_fac if need_sfca else 1))   # a row per worker
        ratio = np.zeros(n_fac)
        thr = np.asarray(thresholds, dtype=np.float64) * 60.0

        def run(mode, ratio_, demand_):
            K.home_pass_many(
                fwd.indptr, fwd.indices, fwd.weights, fn_ptr, fn_fac, fn_cost, fac_cat, fe_ptr,
                seeds.ent_fac[fo], seeds.ent_off[fo], seeds.ent_leg[fo], ratio_, loc.edge_u, loc.edge_v, net.edge_oneway,
                blk_ptr, blk_edge, bn_ptr, bn_node, h.edge_ptr, h.edge_home, h.a, h.b, h.off, h.leg, h.pop,
                net.speed_mps, 60.0 * limit_min, thr, sfca_lim, decay_kind, float(decay_param),
                int(k), mode, n_workers, counts, nearest, decay, kmean, found, demand_, sfca)

        run(1 if need_sfca else 0, ratio, demand)
        if need_sfca:
            total = demand.sum(0)
            np.divide(seeds.cap, total, out=ratio, where=total > 0)
            run(2, ratio, np.zeros((n_workers, 1)))
        return nearest if want_nearest else None

    def _facility_pass(self, seeds, thresholds, limit_min, sfca_lim, k, decay_kind, decay_param,
                       counts, decay, sfca, kmean, found):
        h = self.homes
        csr = self._csr
        order = np.argsort(-np.diff(seeds.cat_ptr), kind="stable").astype(np.int64)
        K.facility_pass_many(
            csr.indptr, csr.indices, csr.weights, seeds.cat_ptr, seeds.seed_ptr,
            seeds.seed_node, seeds.seed_cost, seeds.cap, seeds.ent_ptr, seeds.ent_edge,
            seeds.ent_off, seeds.ent_leg,
            self.net.edge_oneway, h.node_ptr, h.node_home, h.node_cost, h.edge_ptr,
            h.edge_home, h.off, h.leg, h.pop, self.net.speed_mps, 60.0 * limit_min,
            np.asarray(thresholds, dtype=np.float64) * 60.0, sfca_lim, decay_kind,
            float(decay_param), int(k), order, counts, decay, sfca, kmean, found)

    # ---------------------------------------------------------------------------------------
    def isochrone_nodes(self, origin_snaps: Snap, limit_min: float, reverse: bool = False):
        """Per origin: the (node, seconds) pairs reached within ``limit_min`` walking *from*
        the origin (``reverse=True``: walking *to* it). Returns (ptr, node, seconds)."""
        net = self.net
        seeds = facility_seeds_forward(net, origin_snaps) if not reverse else \
            facility_seeds(net, [origin_snaps])
        csr = net.forward if not reverse else net.reverse
        ptr, node, cost = search_each(csr, seeds, 60.0 * limit_min, 4 * net.n_nodes)
        return ptr, node, cost, seeds


    # ---------------------------------------------------------------------------------------
    # incremental what-if (see CategoryState)

    def pair_times(self, snap: Snap, limit_min: float, chunk: int = 256):
        """Exact walking times from every home to each given point, within ``limit_min``.

        One reverse search per point, truncated at the limit, joined with the homes'
        attachments exactly as ``t_<category>`` is computed, plus the straight walk along a
        shared edge (:func:`same_edge_pairs`). Analyses use this instead of engine internals.

        Parameters
        ----------
        snap : Snap
            The points (e.g. idle sites), snapped to the network.
        limit_min : float
            Pairs farther than this many minutes are left out.
        chunk : int
            Points searched per batch (memory).

        Returns
        -------
        tuple of numpy.ndarray
            ``(point, home, seconds)``: one entry per pair, the shortest time of each pair.
        """
        net, h = self.net, self.homes
        limit = 60.0 * float(limit_min)
        ok = np.flatnonzero(snap.edge >= 0)
        P, Hh, T = [], [], []
        for start in range(0, len(ok), chunk):
            idx = ok[start:start + chunk]
            sub = snap.take(idx)
            ptr, node, sec, _ = self.isochrone_nodes(sub, limit_min, reverse=True)
            point_of = np.repeat(idx, np.diff(ptr))
            lo = h.node_ptr[node]
            cnt = h.node_ptr[node + 1] - lo
            rep = np.repeat(np.arange(len(node)), cnt)
            pos = lo[rep] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            t = sec[rep] + h.node_cost[pos]
            m = t <= limit
            own, ee, eo, el = sub.entries()       # every entry of each point (an area's)
            sp, sh, st = same_edge_pairs(net, h, ee, eo, el)
            m2 = st <= limit
            p_all = np.concatenate([point_of[rep][m], idx[own[sp[m2]]]]).astype(np.int64)
            h_all = np.concatenate([h.node_home[pos][m], sh[m2]]).astype(np.int64)
            t_all = np.concatenate([t[m], st[m2]])
            if len(p_all):
                key = p_all * h.n + h_all
                order = np.lexsort((t_all, key))
                key, t_all = key[order], t_all[order]
                first = np.ones(len(key), dtype=bool)
                first[1:] = key[1:] != key[:-1]
                P.append(key[first] // h.n)
                Hh.append(key[first] % h.n)
                T.append(t_all[first])
        if not P:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(P), np.concatenate(Hh), np.concatenate(T)

    def category_state(self, snap: Snap, capacity=None, thresholds_min=None, limit_min=None,
                       sfca_min=None, k: int | None = None, spare: int = 8) -> CategoryState:
        """Full metrics of one category, in a form that what-if updates can change.

        The facilities of ``snap`` get the ids 0 … n-1 (their positions in ``snap``); each
        facility :meth:`add_facility` adds gets the next id. :meth:`remove_facility` takes
        that id, which never changes and is never given again (``st.ids`` lists the ids of
        the facilities in the state, in their order in ``st.snaps``)."""
        s = self.settings
        thresholds = tuple(s.thresholds_min if thresholds_min is None else thresholds_min)
        limit = 60.0 * float(max(thresholds) if limit_min is None else limit_min)
        k = s.k_nearest if k is None else int(k)
        sfca_limit = limit if sfca_min is None else 60.0 * float(sfca_min)
        cap = np.ones(len(snap)) if capacity is None else np.asarray(capacity, dtype=float)
        snaps = [snap.take(np.array([i])) for i in range(len(snap))]
        st = CategoryState(np.full(self.homes.n, INF), *_state_arrays(self.homes.n, len(thresholds), k + spare)[:5],
                           k, thresholds, limit, sfca_limit, snaps, list(cap),
                           ids=list(range(len(snap))), next_id=len(snap))
        st.counts, st.decay, st.sfca, _ = self._fold(st, snap, cap, st.topk, st.found)
        st.cut = _cut(st.topk, st.found)
        st.nearest = self._nearest_seconds(snap)
        return st

    def _nearest_seconds(self, snap: Snap) -> np.ndarray:
        """Seconds from every home to the nearest of ``snap``'s facilities (inf beyond
        ``settings.max_minutes``): one multi-source search truncated around them."""
        t = self._nearest_from_seeds(facility_seeds(self.net, [snap]),
                                     60.0 * self.settings.max_minutes)[0] * 60.0
        return np.where(np.isfinite(t), t, INF)

    def _fold(self, st: CategoryState, snap: Snap, cap, topk=None, found=None):
        """Run the per-facility pass for ``snap``: its counts, decay and 2SFCA terms and each
        home's time to the nearest of ``snap`` (inf beyond the reach limit), as new arrays;
        with ``topk``/``found`` it also keeps each home's ``topk.shape[1]`` nearest times in
        them."""
        seeds = facility_seeds(self.net, [snap], [cap])
        h = self.homes
        s = self.settings
        decay_kind = 0 if s.decay == "exponential" else 1
        decay_param = s.decay_beta if decay_kind == 0 else s.decay_sigma_min
        csr = self._csr
        counts, decay, sfca, scratch, scratch_found, best = _state_arrays(h.n, len(st.thresholds), 1)
        if topk is None:
            topk, found, width = scratch, scratch_found, 0
        else:
            width = topk.shape[1]
        K.facility_pass(csr.indptr, csr.indices, csr.weights, seeds.seed_ptr, seeds.seed_node,
                        seeds.seed_cost, seeds.cap, seeds.ent_ptr, seeds.ent_edge, seeds.ent_off,
                        seeds.ent_leg,
                        self.net.edge_oneway, h.node_ptr, h.node_home, h.node_cost, h.edge_ptr,
                        h.edge_home, h.off, h.leg, h.pop, self.net.speed_mps, st.limit,
                        np.asarray(st.thresholds, dtype=np.float64) * 60.0, st.sfca_limit,
                        decay_kind, float(decay_param), int(width), counts, decay, sfca, topk,
                        found, best)
        return counts, decay, sfca, best

    def add_facility(self, st: CategoryState, snap: Snap, capacity: float = 1.0) -> np.ndarray:
        """Add one facility (a 1-point Snap); returns the homes whose metrics changed.

        The facility gets the id ``st.ids[-1]`` (the next unused number: see
        :meth:`category_state`); pass it to :meth:`remove_facility` to remove it again."""
        if len(snap) != 1:
            raise ValueError(f"add_facility takes one facility (a 1-point Snap), not {len(snap)}")
        counts, decay, sfca, best = self._fold(st, snap, np.array([capacity]))
        st.counts += counts
        st.decay += decay
        st.sfca += sfca
        hit = np.flatnonzero(np.isfinite(best))
        _keep_insert(st, hit, best[hit])
        far = self._nearest_seconds(snap)
        changed = far < INF
        np.minimum(st.nearest, far, out=st.nearest)
        st.snaps.append(snap)
        st.caps.append(capacity)
        st.ids.append(st.next_id)
        st.next_id += 1
        return np.union1d(hit, np.flatnonzero(changed))

    def remove_facility(self, st: CategoryState, facility: int) -> np.ndarray:
        """Remove the facility with id ``facility``; returns the homes whose metrics changed.

        ``facility`` is the facility's id, not its current position in ``st.snaps``: the
        ids stay the same when others are removed (see :meth:`category_state`), so removing
        0 and then 2 removes the facilities that were 0 and 2 to begin with."""
        try:
            pos = st.ids.index(int(facility))
        except ValueError:
            raise ValueError(f"no facility with id {facility} in this state (removed already, "
                             f"or never added; st.ids lists the ids it holds)") from None
        snap = st.snaps[pos]
        cap = st.caps[pos]
        counts, decay, sfca, best = self._fold(st, snap, np.array([cap]))
        st.counts -= counts
        st.decay -= decay
        st.sfca -= sfca
        hit = np.flatnonzero(np.isfinite(best))
        _keep_remove(st, hit, best[hit])
        del st.snaps[pos]
        del st.caps[pos]
        del st.ids[pos]
        st.removed += 1
        # a home whose kept list was cut short and now holds fewer than k times: the kept
        # lists are built again from the facilities left (one pass over the category)
        if st.k > 0 and np.any((st.found[hit] < st.k) & np.isfinite(st.cut[hit])):
            self._refill(st)
        # nearest: a home that still keeps a time within the reach limit has the first of them
        # (the kept list is a prefix of the remaining times); one that keeps none, and had
        # this facility as its nearest, gets one multi-source search of the facilities left.
        # Times of the same walk from the two kernels (kept list, nearest search) can differ
        # in the last bit: they are compared only beyond the kept lists, with a tolerance.
        max_s = 60.0 * self.settings.max_minutes
        kept = hit[st.found[hit] > 0]
        if len(kept):
            top = st.topk[kept, 0]
            st.nearest[kept] = np.where(top <= max_s, top, INF)
        far = self._nearest_seconds(snap)
        was_hit = np.zeros(self.homes.n, dtype=bool)
        was_hit[hit] = True
        need = np.flatnonzero(np.isfinite(far) & (st.found == 0)
                              & (was_hit | (far <= st.nearest + _SAME_S)))
        if len(need):
            st.nearest[need] = self._nearest_seconds(Snap.concat(st.snaps))[need] if st.snaps \
                else INF
        return np.union1d(hit, need)

    def _refill(self, st: CategoryState) -> None:
        """Build ``st``'s kept lists again from the facilities it holds."""
        st.topk = np.empty_like(st.topk)
        st.found = np.zeros_like(st.found)
        if st.snaps:
            self._fold(st, Snap.concat(st.snaps), np.asarray(st.caps, dtype=float), st.topk,
                       st.found)
        st.cut = _cut(st.topk, st.found)


#: seconds: two times of the same walk computed by different kernels (they may differ in the
#: last bits) count as the same
_SAME_S = 1e-6


def _cut(topk: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per home, a time no facility missing from a kept list (``topk`` just filled) is
    below: the last kept time where the list is full, inf where it holds every one."""
    w = topk.shape[1]
    if w == 0:
        return np.full(len(found), INF)
    return np.where(found >= w, topk[:, w - 1], INF)


def _keep_insert(st: CategoryState, hh: np.ndarray, t: np.ndarray) -> None:
    """Put time ``t[i]`` of a new facility into home ``hh[i]``'s kept list (homes unique).

    Invariant of the kept lists: every kept time <= ``cut`` <= every time not kept, so a list
    is the start of the home's sorted times. A time at or past ``cut`` is not kept (a
    facility between the list's end and it may be missing); a full list drops its last time,
    which becomes the new ``cut``."""
    w = st.topk.shape[1]
    sel = t < st.cut[hh]
    hh, t = hh[sel], t[sel]
    if w == 0 or len(hh) == 0:
        if len(hh):
            st.cut[hh] = np.minimum(st.cut[hh], t)
        return
    m = st.found[hh]
    rows = st.topk[hh]
    rows[np.arange(w)[None, :] >= m[:, None]] = INF
    rows = np.sort(np.concatenate([rows, t[:, None]], axis=1), axis=1)
    st.topk[hh] = rows[:, :w]
    st.cut[hh] = np.minimum(st.cut[hh], rows[:, w])
    st.found[hh] = np.minimum(m + 1, w)


def _keep_remove(st: CategoryState, hh: np.ndarray, t: np.ndarray) -> None:
    """Take one occurrence of time ``t[i]`` out of home ``hh[i]``'s kept list (homes
    unique); a time not kept (at or past ``cut``) leaves the list as it is. Times come from
    the same kernel as the kept ones, so equal walks are equal to the bit."""
    w = st.topk.shape[1]
    if w == 0 or len(hh) == 0:
        return
    m = st.found[hh]
    rows = st.topk[hh]
    rows[np.arange(w)[None, :] >= m[:, None]] = INF
    eq = rows == t[:, None]
    has = eq.any(axis=1)
    rows[np.flatnonzero(has), eq.argmax(axis=1)[has]] = INF
    rows.sort(axis=1)
    st.topk[hh] = rows
    st.found[hh] = m - has


def _morton(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Z-order key of integer grid cells (16 bits each way)."""
    def spread(v):
        v = v & 0xFFFF
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        v = (v | (v << 1)) & 0x55555555
        return v
    return spread(gx.astype(np.uint64)) | (spread(gy.astype(np.uint64)) << np.uint64(1))


def search_each(csr, seeds: FacilitySeeds, limit_s: float, size_hint: int):
    """One truncated search per seed group: (ptr, node, seconds) of every node reached,
    origin ``o``'s in ``node[ptr[o]:ptr[o+1]]``. Output buffers grow until they fit."""
    size = max(1024, int(size_hint))
    while True:
        ptr = np.zeros(len(seeds.seed_ptr), dtype=np.int64)
        node = np.empty(size, dtype=np.int32)
        cost = np.empty(size)
        if K.single_source_many(csr.indptr, csr.indices, csr.weights, seeds.seed_ptr,
                                seeds.seed_node, seeds.seed_cost, limit_s, ptr, node, cost):
            return ptr, node[:ptr[-1]], cost[:ptr[-1]]
        size *= 4


def facility_seeds_forward(net: WalkNetwork, snap: Snap) -> FacilitySeeds:
    """Seeds for searches *from* points: a point on (u, v) at s leaves to v after
    (l + L - s)/speed and to u after (l + s)/speed if the edge allows v -> u."""
    speed = net.speed_mps
    ok = snap.edge >= 0
    e = np.where(ok, snap.edge, 0)
    leg = np.where(ok, snap.leg, 0.0)
    two = ~net.edge_oneway[e] & ok
    n_seed = ok.astype(np.int64) + two.astype(np.int64)
    seed_ptr = np.zeros(len(snap) + 1, dtype=np.int64)
    np.cumsum(n_seed, out=seed_ptr[1:])
    node = np.empty(seed_ptr[-1], dtype=np.int32)
    cost = np.empty(seed_ptr[-1])
    start = seed_ptr[:-1]
    node[start[ok]] = net.edge_v[e[ok]]
    cost[start[ok]] = (leg[ok] + net.edge_len[e[ok]] - snap.offset[ok]) / speed
    node[start[two] + 1] = net.edge_u[e[two]]
    cost[start[two] + 1] = (leg[two] + snap.offset[two]) / speed
    cat_ptr = np.array([0, len(snap)], dtype=np.int64)
    return FacilitySeeds(cat_ptr, seed_ptr, node, cost, np.ones(len(snap)), e, snap.offset,
                         leg)


# --------------------------------------------------------------------------------------------
# incremental what-if


@dataclass
class CategoryState:
    """Every metric of one category, kept so that adding or removing a facility updates it
    with one search truncated around that facility (see :meth:`AccessEngine.category_state`).

    ``topk`` keeps up to ``k + spare`` nearest times per home (within the reach limit), the
    start of the home's sorted times; ``cut`` is a time no facility left out of a full list
    is below. When removals leave a home with fewer than ``k`` kept times of a list that was
    cut short, :meth:`AccessEngine.remove_facility` builds the lists again from the
    facilities left, so every metric stays exact (``spare`` only sets how rarely).

    Facilities have stable ids (``ids``, in the order of ``snaps``): see
    :meth:`AccessEngine.category_state`.
    """

    nearest: np.ndarray     # (H,) seconds, inf beyond max_minutes
    counts: np.ndarray      # (T, H)
    decay: np.ndarray
    sfca: np.ndarray
    topk: np.ndarray        # (H, k + spare) seconds, ascending; the first found[h] hold times
    found: np.ndarray       # (H,) times kept
    k: int
    thresholds: tuple
    limit: float            # seconds (reach searches)
    sfca_limit: float       # seconds
    snaps: list = field(default_factory=list)   # one Snap per facility, in order
    caps: list = field(default_factory=list)
    removed: int = 0
    ids: list = field(default_factory=list)     # each facility's stable id, as in snaps
    next_id: int = 0                            # the id the next added facility gets
    cut: np.ndarray | None = None               # (H,) seconds: see above

    def minutes(self) -> dict:
        """The metrics in minutes, as the ``analyze`` columns hold them."""
        t = self.nearest / 60.0
        t = np.where(np.isfinite(t), t, np.nan)
        s = self.topk[:, : self.k]
        got = np.minimum(self.found, self.k)
        idx = np.arange(self.k)[None, :] < got[:, None]
        kmean = (np.where(idx, s, 0.0).sum(1) + (self.k - got) * self.limit) / self.k / 60.0 \
            if self.k else np.full(len(t), np.nan)
        return {"nearest": t, "counts": self.counts.copy(), "kmean": kmean,
                "decay": self.decay.copy(), "sfca": self.sfca.copy()}


def _state_arrays(n_home, n_thr, width):
    return (np.zeros((n_thr, n_home), dtype=np.int32), np.zeros(n_home), np.zeros(n_home),
            np.empty((n_home, width)), np.zeros(n_home, dtype=np.int32), np.full(n_home, INF))




# --------------------------------------------------------------------------------------------
# new walking links


@dataclass
class LinkScores:
    """Exact gains of candidate links (population-weighted; see :func:`_kernels.score_links`).

    ``gain`` (K, C, 1 + T): residents newly within each category's own threshold (index 0)
    and within each tier of ``tiers`` (minutes); ``dim_gain`` (K, D, 1 + T) the same for
    dimensions covered; ``saved`` (K, C) minutes saved (person-minutes); ``all6`` residents
    newly with all six dimensions within the largest tier (15 minutes by default); ``score_delta`` the change of the
    population-weighted mean score; ``residents`` residents with at least one category newly
    within its threshold (``homes`` of them)."""

    gain: np.ndarray
    dim_gain: np.ndarray
    saved: np.ndarray
    all6: np.ndarray
    score_delta: np.ndarray
    residents: np.ndarray
    homes: np.ndarray
    categories: list
    dimensions: list
    tiers: tuple


class LinkScorer:
    """Scores candidate walking links exactly against today's network.

    ``cat_minutes``, ``cat_dim`` (dimension index per category), ``cat_weight``,
    ``dim_weight`` (per dimension) and ``cover_share`` are the profile's scoring rules (see
    :mod:`lifecircle.coverage`). Homes and facilities keep their attachments; a link end in
    the middle of an edge splits it there (exact: see :func:`split_and_link`).
    """

    def __init__(self, engine: AccessEngine, fac_snaps: list[Snap], cat_minutes, cat_dim,
                 cat_weight, dim_weight, cover_share: float, tiers=None):
        self.engine = engine
        net = engine.net
        self.net = net
        s = engine.settings
        self.limit = 60.0 * s.max_minutes
        self.tiers = tuple(s.thresholds_min if tiers is None else tiers)
        seeds = facility_seeds(net, fac_snaps)
        self.seeds = seeds
        C = len(fac_snaps)
        self.C = C
        rev = net.reverse
        self.node_dist = np.empty((C, net.n_nodes))
        K.node_dist_many(rev.indptr, rev.indices, rev.weights, seeds.seed_ptr[seeds.cat_ptr],
                         seeds.seed_node, seeds.seed_cost, self.limit, self.node_dist)
        self.old = np.ascontiguousarray(self._old_times())
        # the straight walk along an edge goes to any entry on it: the kernels read these
        # per entry (the category of each entry's facility)
        self.fac_cat = np.repeat(np.arange(C, dtype=np.int64), np.diff(seeds.cat_ptr))[seeds.ent_fac]
        self.fe_ptr, fo = _group(seeds.ent_edge, net.n_edges)
        self.fe_fac = fo.astype(np.int64)
        self.cat_min = np.asarray(cat_minutes, dtype=np.float64)
        self.cat_dim = np.asarray(cat_dim, dtype=np.int64)
        self.cat_w = np.asarray(cat_weight, dtype=np.float64)
        dim_weight = np.asarray(dim_weight, dtype=np.float64)
        self.n_dim = len(dim_weight)
        self.dim_wsum = np.bincount(self.cat_dim, weights=self.cat_w, minlength=self.n_dim)
        has = self.dim_wsum > 0
        # score = Σ_d W_d s_d / Σ_d W_d (dimensions with categories), s_d = 100 Σ w_c a_c / Σ w_c
        W = dim_weight[has].sum()
        self.coef = 100.0 * dim_weight[self.cat_dim] / W * self.cat_w / self.dim_wsum[self.cat_dim]
        self.share = float(cover_share)
        self.t15 = len(self.tiers) - 1        # all six within the largest tier (all6_<tier>)
        h = engine.homes
        self.pop_total = float(h.pop[h.u >= 0].sum())

    def _old_times(self) -> np.ndarray:
        """(C, H) seconds to the nearest facility today (inf beyond max_minutes)."""
        out = self.engine._nearest_from_seeds(self.seeds, self.limit) * 60.0
        return np.where(np.isfinite(out), out, INF)

    def score(self, end_edge, end_off, link_m, record: bool = False,
              new_times: bool = False):
        """Scores of links k = 0..K-1 between ``(end_edge[2k], end_off[2k])`` and
        ``(end_edge[2k+1], end_off[2k+1])``, ``link_m[k]`` metres long. ``record``: also a
        (K, H) uint8 array, 1 for the homes each link brings a category within reach of;
        ``new_times`` (one link only): the (C, H) seconds with the link."""
        import numba

        e = np.asarray(end_edge, dtype=np.int64)
        s = np.asarray(end_off, dtype=np.float64)
        lk = np.asarray(link_m, dtype=np.float64) / self.net.speed_mps
        Kn = len(lk)
        h = self.engine.homes
        net = self.net
        Q = len(self.tiers)
        gain = np.zeros((Kn, self.C, Q + 1))
        saved = np.zeros((Kn, self.C))
        dgain = np.zeros((Kn, self.n_dim, Q + 1))
        all6 = np.zeros(Kn)
        score = np.zeros(Kn)
        residents = np.zeros(Kn)
        homes_n = np.zeros(Kn, dtype=np.int64)
        rec = np.zeros((Kn, h.n) if record else (0, 0), dtype=np.uint8)
        rec_new = self.old.copy() if new_times else np.zeros((0, 0))
        if new_times and Kn != 1:
            raise ValueError("new_times needs exactly one link")
        rev = net.reverse
        n_workers = max(1, min(2 * numba.get_num_threads(), Kn))
        K.score_links(rev.indptr, rev.indices, rev.weights, net.edge_u, net.edge_v,
                      net.edge_len, net.edge_oneway, net.speed_mps, self.node_dist,
                      self.fe_ptr, self.fe_fac, self.fac_cat, self.seeds.ent_off, self.seeds.ent_leg,
                      h.node_ptr, h.node_home, h.node_cost, h.edge_ptr, h.edge_home, h.off,
                      h.leg, h.pop, self.old, self.limit, self.cat_min,
                      np.asarray(self.tiers, dtype=np.float64), self.cat_dim, self.cat_w,
                      self.dim_wsum, self.n_dim, self.share, self.coef, self.t15, e, s, lk,
                      n_workers, gain, saved, dgain, all6, score, residents, homes_n, rec,
                      rec_new)
        tot = self.pop_total if self.pop_total > 0 else np.nan
        out = LinkScores(gain, dgain, saved, all6, score / tot, residents, homes_n,
                         [], [], self.tiers)
        extra = []
        if record:
            extra.append(rec)
        if new_times:
            extra.append(rec_new)
        return (out, *extra) if extra else out
