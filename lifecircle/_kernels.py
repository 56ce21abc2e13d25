"""Compiled shortest-path kernels (numba).

Dijkstra with a binary heap (lazy deletion) on CSR arrays, truncated at a time limit, with
seeds that carry initial costs (a facility sits part-way along an edge, behind a snap leg).
Per-source searches reset only the nodes they touched, so their cost follows what they reach,
not the size of the city. The kernels are exact: float64 costs, no rounding.

Why not scipy.sparse.csgraph: its multi-source search has no initial costs (partial edges need
a rebuilt graph per category), it allocates full-length arrays on every call (3 ms per origin
at 2.5M nodes even when the search reaches 3k nodes), its Fibonacci heap is slower than a
binary heap, and it runs one category at a time on one core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.inf


@njit(cache=True, inline="always")
def _push(hk, hn, size, key, node):
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] <= key:
            break
        hk[i] = hk[p]
        hn[i] = hn[p]
        i = p
    hk[i] = key
    hn[i] = node
    return size + 1


@njit(cache=True, inline="always")
def _pop(hk, hn, size):
    key = hk[0]
    node = hn[0]
    size -= 1
    if size > 0:
        lk = hk[size]
        ln = hn[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and hk[c + 1] < hk[c]:
                c += 1
            if hk[c] >= lk:
                break
            hk[i] = hk[c]
            hn[i] = hn[c]
            i = c
        hk[i] = lk
        hn[i] = ln
    return key, node, size


@njit(cache=True)
def search(indptr, indices, w, seeds, seed_cost, limit, dist, hk, hn, touched):
    """Multi-source Dijkstra into ``dist`` (must be all inf on the touched nodes).

    Returns the number of touched nodes listed in ``touched`` (settled or not); the caller
    resets ``dist[touched[:n]] = inf`` afterwards. Nodes with cost > limit stay inf.
    """
    size = 0
    nt = 0
    for i in range(len(seeds)):
        s = seeds[i]
        c = seed_cost[i]
        if c <= limit and c < dist[s]:
            if dist[s] == INF:
                touched[nt] = s
                nt += 1
            dist[s] = c
            size = _push(hk, hn, size, c, s)
    while size > 0:
        d, x, size = _pop(hk, hn, size)
        if d > dist[x]:
            continue
        for j in range(indptr[x], indptr[x + 1]):
            y = indices[j]
            nd = d + w[j]
            if nd < dist[y] and nd <= limit:
                if dist[y] == INF:
                    touched[nt] = y
                    nt += 1
                dist[y] = nd
                size = _push(hk, hn, size, nd, y)
    return nt


@njit(cache=True, parallel=True)
def nearest_many(indptr, indices, w, seed_ptr, seed_node, seed_cost, limit,
                 home_u, home_v, home_a, home_b, out):
    """For each category c (in parallel): one multi-source search, then for every home
    ``out[h, c] = min(a_h + d(u_h), b_h + d(v_h))`` in seconds (inf beyond ``limit``)."""
    n = len(indptr) - 1
    n_cat = len(seed_ptr) - 1
    cap = len(indices) + 1
    for c in prange(n_cat):
        lo = seed_ptr[c]
        hi = seed_ptr[c + 1]
        if hi == lo:
            for h in range(len(home_u)):
                out[h, c] = INF
            continue
        dist = np.full(n, INF)
        hk = np.empty(cap + hi - lo)
        hn = np.empty(cap + hi - lo, dtype=np.int32)
        touched = np.empty(n, dtype=np.int32)
        search(indptr, indices, w, seed_node[lo:hi], seed_cost[lo:hi], limit, dist, hk, hn,
               touched)
        for h in range(len(home_u)):
            t = INF
            u = home_u[h]
            if u >= 0:
                t = min(home_a[h] + dist[u], home_b[h] + dist[home_v[h]])
            out[h, c] = t if t <= limit else INF


@njit(cache=True)
def _insert_topk(topk, found, h, t, k):
    """Keep ``topk[h, :found[h]]`` as the ascending k smallest values seen."""
    m = found[h]
    if m == k:
        if t >= topk[h, k - 1]:
            return
        m = k - 1
    else:
        found[h] = m + 1
    i = m
    while i > 0 and topk[h, i - 1] > t:
        topk[h, i] = topk[h, i - 1]
        i -= 1
    topk[h, i] = t


@njit(cache=True, inline="always")
def _offer(h, t, f, stamp, best, hit, nh):
    """Home ``h`` reaches facility ``f`` in ``t``: keep the best time, list ``h`` once."""
    if stamp[h] != f:
        stamp[h] = f
        best[h] = t
        hit[nh] = h
        return nh + 1
    if t < best[h]:
        best[h] = t
    return nh


@njit(cache=True)
def facility_pass(indptr, indices, w, fac_seed_ptr, fac_seed_node, fac_seed_cost, fac_cap,
                  fac_edge, fac_off, fac_leg, edge_oneway,
                  node_ptr, node_home, node_cost,
                  edge_ptr, edge_home, home_off, home_leg,
                  pop, speed, limit, thresholds, sfca_limit, decay_kind, decay_param, k,
                  counts, decay, sfca, topk, found, best_out):
    """One search per facility of one category, folded straight into per-home metrics.

    counts[t, h] += 1 where time <= thresholds[t]; decay[h] += weight(time);
    2SFCA: R_f = cap_f / (population within sfca_limit), sfca[h] += R_f;
    top-k nearest times per home in topk/found; best_out[h] = min time (seconds).
    All times in seconds; searches stop at ``limit``.
    """
    n = len(indptr) - 1
    n_home = len(pop)
    n_fac = len(fac_seed_ptr) - 1
    dist = np.full(n, INF)
    cap = len(indices) + 4
    hk = np.empty(cap)
    hn = np.empty(cap, dtype=np.int32)
    touched = np.empty(n, dtype=np.int32)
    stamp = np.full(n_home, -1, dtype=np.int64)
    best = np.full(n_home, INF)
    hit = np.empty(n_home, dtype=np.int32)
    n_thr = len(thresholds)
    for f in range(n_fac):
        lo = fac_seed_ptr[f]
        hi = fac_seed_ptr[f + 1]
        if hi == lo:
            continue
        nt = search(indptr, indices, w, fac_seed_node[lo:hi], fac_seed_cost[lo:hi], limit,
                    dist, hk, hn, touched)
        nh = 0
        for i in range(nt):
            x = touched[i]
            d = dist[x]
            for j in range(node_ptr[x], node_ptr[x + 1]):
                t = d + node_cost[j]
                if t <= limit:
                    nh = _offer(node_home[j], t, f, stamp, best, hit, nh)
            dist[x] = INF
        # homes on the facility's own edge may walk straight to it
        e = fac_edge[f]
        for j in range(edge_ptr[e], edge_ptr[e + 1]):
            h = edge_home[j]
            delta = fac_off[f] - home_off[h]
            if delta < 0:
                if edge_oneway[e]:
                    continue
                delta = -delta
            t = (delta + fac_leg[f] + home_leg[h]) / speed
            if t <= limit:
                nh = _offer(h, t, f, stamp, best, hit, nh)
        demand = 0.0
        for i in range(nh):
            h = hit[i]
            t = best[h]
            for q in range(n_thr):
                if t <= thresholds[q]:
                    counts[q, h] += 1
            if decay_kind == 0:
                decay[h] += np.exp(-decay_param * t / 60.0)
            elif decay_kind == 1:
                z = t / 60.0 / decay_param
                decay[h] += np.exp(-0.5 * z * z)
            if t < best_out[h]:
                best_out[h] = t
            if k > 0:
                _insert_topk(topk, found, h, t, k)
            if t <= sfca_limit:  # a negative sfca_limit switches 2SFCA off
                demand += pop[h]
        if demand > 0 and sfca_limit >= 0:
            ratio = fac_cap[f] / demand
            for i in range(nh):
                h = hit[i]
                if best[h] <= sfca_limit:
                    sfca[h] += ratio


@njit(cache=True, parallel=True)
def facility_pass_many(indptr, indices, w, cat_fac_ptr, fac_seed_ptr, fac_seed_node,
                       fac_seed_cost, fac_cap, fac_edge, fac_off, fac_leg, edge_oneway,
                       node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off, home_leg,
                       pop, speed, limit, thresholds, sfca_limits, decay_kind, decay_param, k,
                       order, counts, decay, sfca, kmean, found_out):
    """:func:`facility_pass` for every category in parallel (``order``: largest first)."""
    n_home = len(pop)
    for oi in prange(len(order)):
        c = order[oi]
        f0 = cat_fac_ptr[c]
        f1 = cat_fac_ptr[c + 1]
        kk = max(k, 1)
        topk = np.empty((n_home, kk))
        found = np.zeros(n_home, dtype=np.int32)
        best = np.full(n_home, INF)
        dec = np.zeros(n_home)
        sf = np.zeros(n_home)
        cnt = np.zeros((len(thresholds), n_home), dtype=np.int32)
        if f1 > f0:
            base = fac_seed_ptr[f0]
            facility_pass(indptr, indices, w, fac_seed_ptr[f0:f1 + 1] - base,
                          fac_seed_node[base:fac_seed_ptr[f1]],
                          fac_seed_cost[base:fac_seed_ptr[f1]], fac_cap[f0:f1],
                          fac_edge[f0:f1], fac_off[f0:f1], fac_leg[f0:f1], edge_oneway,
                          node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off,
                          home_leg, pop, speed, limit, thresholds, sfca_limits[c], decay_kind,
                          decay_param, k, cnt, dec, sf, topk, found, best)
        for h in range(n_home):
            decay[c, h] = dec[h]
            sfca[c, h] = sf[h]
            found_out[c, h] = found[h]
            for q in range(len(thresholds)):
                counts[c, q, h] = cnt[q, h]
            if k > 0:
                s = 0.0
                for i in range(found[h]):
                    s += topk[h, i]
                kmean[c, h] = (s + (k - found[h]) * limit) / k


@njit(cache=True)
def single_source_many(indptr, indices, w, seed_ptr, seed_node, seed_cost, limit,
                       out_ptr, out_node, out_cost):
    """Per origin search: writes reached (node, cost) pairs into the flat out arrays.

    ``out_ptr`` must have len(origins)+1 entries; returns False if out arrays were too small
    (then call again with bigger ones). Cost per origin follows what it reaches.
    """
    n = len(indptr) - 1
    dist = np.full(n, INF)
    cap = len(indices) + 4
    hk = np.empty(cap)
    hn = np.empty(cap, dtype=np.int32)
    touched = np.empty(n, dtype=np.int32)
    pos = 0
    out_ptr[0] = 0
    for o in range(len(seed_ptr) - 1):
        nt = search(indptr, indices, w, seed_node[seed_ptr[o]:seed_ptr[o + 1]],
                    seed_cost[seed_ptr[o]:seed_ptr[o + 1]], limit, dist, hk, hn, touched)
        if pos + nt > len(out_node):
            for i in range(nt):
                dist[touched[i]] = INF
            return False
        for i in range(nt):
            x = touched[i]
            out_node[pos] = x
            out_cost[pos] = dist[x]
            pos += 1
            dist[x] = INF
        out_ptr[o + 1] = pos
    return True
