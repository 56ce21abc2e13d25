"""Compiled shortest-path kernels (numba).

Dijkstra with a 4-ary heap (lazy deletion) on CSR arrays, truncated at a time limit, with
seeds that carry initial costs (a facility sits part-way along an edge, behind a snap leg).
Per-source searches reset only the nodes they touched, so their cost follows what they reach,
not the size of the city. The kernels are exact: float64 costs, no rounding.

Why not scipy.sparse.csgraph: its multi-source search has no initial costs (partial edges need
a rebuilt graph per category), it allocates full-length arrays on every call (3 ms per origin
at 2.5M nodes even when the search reaches 3k nodes), its Fibonacci heap is slower than a
4-ary heap, and it runs one category at a time on one core.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from lifecircle.settings import cores

INF = np.inf


@njit(cache=True, inline="always")
def _push(hk, hn, size, key, node):
    """Push onto a 4-ary min-heap (keys ``hk``, nodes ``hn``): shallower than a binary heap,
    and a node's four children share a cache line (measured 22 % faster searches)."""
    i = size
    while i > 0:
        p = (i - 1) >> 2
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
            c = 4 * i + 1
            if c >= size:
                break
            best = c
            bk = hk[c]
            for j in range(c + 1, min(c + 4, size)):
                if hk[j] < bk:
                    bk = hk[j]
                    best = j
            if bk >= lk:
                break
            hk[i] = bk
            hn[i] = hn[best]
            i = best
        hk[i] = lk
        hn[i] = ln
    return key, node, size


@njit(cache=True)
def _full_float(n, value):
    """``np.full(n, value)`` (float64) as a loop: numba's np.full adds compile time."""
    a = np.empty(n)
    for i in range(n):
        a[i] = value
    return a


@njit(cache=True)
def _full_int(n, value):
    """``np.full(n, value, dtype=np.int64)`` as a loop."""
    a = np.empty(n, dtype=np.int64)
    for i in range(n):
        a[i] = value
    return a


@njit(cache=True)
def _scratch(n, heap_cap):
    """A search's buffers: distances (all inf), heap keys and nodes, touched-node list."""
    return (_full_float(n, INF), np.empty(heap_cap), np.empty(heap_cap, dtype=np.int32),
            np.empty(n, dtype=np.int32))


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
                # a dead end whose only way out leads back to x cannot improve anything
                # (x is settled): it is final without a trip through the heap
                k0 = indptr[y]
                k1 = indptr[y + 1]
                if k1 == k0 or (k1 == k0 + 1 and indices[k0] == x):
                    continue
                size = _push(hk, hn, size, nd, y)
    return nt


def nearest_many(indptr, indices, w, seed_ptr, seed_node, seed_cost, limit,
                 home_u, home_v, home_a, home_b, out):
    """For each category c (in parallel): one multi-source search, then for every home
    ``out[c, h] = min(a_h + d(u_h), b_h + d(v_h))`` in seconds (inf beyond ``limit``): a
    category's row is contiguous, as the engine's and the home table's columns are."""
    def work(c):
        _nearest_one(np.int64(c), indptr, indices, w, seed_ptr, seed_node, seed_cost, limit,
                     home_u, home_v, home_a, home_b, out)

    _in_threads(work, len(seed_ptr) - 1)


@njit(cache=True, nogil=True)
def _nearest_one(c, indptr, indices, w, seed_ptr, seed_node, seed_cost, limit,
                 home_u, home_v, home_a, home_b, out):
    """Category ``c`` of :func:`nearest_many`."""
    n = len(indptr) - 1
    cap = len(indices) + 1
    lo = seed_ptr[c]
    hi = seed_ptr[c + 1]
    if hi == lo:
        for h in range(len(home_u)):
            out[c, h] = INF
        return
    dist, hk, hn, touched = _scratch(n, cap + hi - lo)
    search(indptr, indices, w, seed_node[lo:hi], seed_cost[lo:hi], limit, dist, hk, hn,
           touched)
    for h in range(len(home_u)):
        t = INF
        u = home_u[h]
        if u >= 0:
            t = min(home_a[h] + dist[u], home_b[h] + dist[home_v[h]])
        out[c, h] = t if t <= limit else INF


def _in_threads(work, n_tasks: int) -> None:
    """Run ``work(0) … work(n_tasks - 1)`` on ``numba.get_num_threads()`` threads (at most
    :func:`~lifecircle.settings.cores`: a batch task's one-thread cap, also on a thread it
    started).

    The kernels they call release the GIL (``nogil``), so the threads run in parallel as a
    ``prange`` would; unlike ``parallel=True`` kernels they compile as plain functions, which
    takes a fraction of the time on a fresh install (numba's parallel lowering of the per-home
    pass alone cost ~9 s there)."""
    n_threads = min(numba.get_num_threads(), cores(), n_tasks)   # numba's count is per thread
    if n_threads <= 1:
        for i in range(n_tasks):
            work(i)
        return
    # the first calls compile or load the kernel under numba's compiler lock; the others wait
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for _ in pool.map(work, range(n_tasks)):
            pass


@njit(cache=True, inline="always")
def _find(sorted_values, x):
    """Position of ``x`` in ``sorted_values`` (where it is, or would be inserted: left)."""
    lo = 0
    hi = len(sorted_values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


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
                  fac_ent_ptr, fac_edge, fac_off, fac_leg, edge_oneway,
                  node_ptr, node_home, node_cost,
                  edge_ptr, edge_home, home_off, home_leg,
                  pop, speed, limit, thresholds, sfca_limit, decay_kind, decay_param, k,
                  counts, decay, sfca, topk, found, best_out):
    """One search per facility of one category, folded straight into per-home metrics.

    counts[t, h] += 1 where time <= thresholds[t]; decay[h] += weight(time);
    2SFCA: R_f = cap_f / (population within sfca_limit), sfca[h] += R_f;
    top-k nearest times per home in topk/found; best_out[h] = min time (seconds).
    All times in seconds; searches stop at ``limit``. Facility f's entries (its seeds all
    together) are ``fac_edge/fac_off/fac_leg[fac_ent_ptr[f]:fac_ent_ptr[f + 1]]``; a home
    takes its least time over them and counts the facility once.
    """
    n = len(indptr) - 1
    n_home = len(pop)
    n_fac = len(fac_seed_ptr) - 1
    dist, hk, hn, touched = _scratch(n, len(indices) + 4)
    stamp = _full_int(n_home, -1)
    best = _full_float(n_home, INF)
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
        # homes on the edge of one of the facility's entries may walk straight to it
        for g in range(fac_ent_ptr[f], fac_ent_ptr[f + 1]):
            e = fac_edge[g]
            for j in range(edge_ptr[e], edge_ptr[e + 1]):
                h = edge_home[j]
                delta = fac_off[g] - home_off[h]
                if delta < 0:
                    if edge_oneway[e]:
                        continue
                    delta = -delta
                t = (delta + fac_leg[g] + home_leg[h]) / speed
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
                       fac_seed_cost, fac_cap, fac_ent_ptr, fac_edge, fac_off, fac_leg, edge_oneway,
                       node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off, home_leg,
                       pop, speed, limit, thresholds, sfca_limits, decay_kind, decay_param, k,
                       order, counts, decay, sfca, kmean, found_out):
    """:func:`facility_pass` for every category in parallel (``order``: largest first)."""
    n_home = len(pop)
    # metrics switched off (decay_kind -1, a negative 2SFCA catchment, k = 0) get empty
    # scratch and are never written (their outputs come as (C, 0) arrays)
    n_top = n_home if k > 0 else 0
    n_dec = n_home if decay_kind >= 0 else 0
    for oi in prange(len(order)):
        c = order[oi]
        f0 = cat_fac_ptr[c]
        f1 = cat_fac_ptr[c + 1]
        kk = max(k, 1)
        topk = np.empty((n_top, kk))
        found = np.zeros(n_top, dtype=np.int32)
        best = _full_float(n_home, INF)
        dec = np.zeros(n_dec)
        sf = np.zeros(n_home if sfca_limits[c] >= 0 else 0)
        cnt = np.zeros((len(thresholds), n_home), dtype=np.int32)
        if f1 > f0:
            base = fac_seed_ptr[f0]
            g0 = fac_ent_ptr[f0]
            g1 = fac_ent_ptr[f1]
            facility_pass(indptr, indices, w, fac_seed_ptr[f0:f1 + 1] - base,
                          fac_seed_node[base:fac_seed_ptr[f1]],
                          fac_seed_cost[base:fac_seed_ptr[f1]], fac_cap[f0:f1],
                          fac_ent_ptr[f0:f1 + 1] - g0, fac_edge[g0:g1], fac_off[g0:g1],
                          fac_leg[g0:g1], edge_oneway,
                          node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off,
                          home_leg, pop, speed, limit, thresholds, sfca_limits[c], decay_kind,
                          decay_param, k, cnt, dec, sf, topk, found, best)
        for h in range(n_home):
            if n_dec:
                decay[c, h] = dec[h]
            if len(sf):
                sfca[c, h] = sf[h]
            for q in range(len(thresholds)):
                counts[c, q, h] = cnt[q, h]
            if k > 0:
                found_out[c, h] = found[h]
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
    dist, hk, hn, touched = _scratch(n, len(indices) + 4)
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


# --------------------------------------------------------------------------------------------
# per-home pass: one search per node at the end of a home's edge, serving every category


@njit(cache=True)
def _grow_int(a, need):
    """``a`` (int64), or a copy at least twice as long when ``need`` exceeds it. One function
    per dtype: ``np.empty(n, a.dtype)`` pulls numba's string handling into the compile."""
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), dtype=np.int64)
    for i in range(len(a)):   # a slice assignment compiles numba's string formatting
        b[i] = a[i]
    return b


@njit(cache=True)
def _grow_float(a, need):
    """``a`` (float64), or a copy at least twice as long when ``need`` exceeds it."""
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), dtype=np.float64)
    for i in range(len(a)):   # a slice assignment compiles numba's string formatting
        b[i] = a[i]
    return b


@njit(cache=True)
def _list_facilities(x, d, lim, fn_ptr, fn_fac, fn_cost, stamp, best, token, lf, pos):
    """Node ``x`` at ``d`` seconds: offer its facilities (``fn_*``) to the search's list ``lf``
    (each once, its best time in ``best``); the same for the homes a reverse search reaches.
    Returns the list's new length."""
    for j in range(fn_ptr[x], fn_ptr[x + 1]):
        t = d + fn_cost[j]
        if t <= lim:
            f = fn_fac[j]
            if stamp[f] != token:
                stamp[f] = token
                best[f] = t
                lf[pos] = f
                pos += 1
            elif t < best[f]:
                best[f] = t
    return pos


@njit(cache=True)
def _search_listing(indptr, indices, w, src, lim, dist, hk, hn, touched, fn_ptr, fn_fac,
                    fn_cost, stamp, best, token, lf, pos):
    """:func:`search` from node ``src`` (cost 0, up to ``lim``) that lists the facilities it
    reaches as it goes (:func:`_list_facilities`): a node's when it settles, a dead end's when
    it is reached (again if reached sooner later: ``best`` keeps the least). The same list and
    times as scanning the touched nodes afterwards, without a second pass over them; the list
    is in settling order. Returns (touched nodes, the list's length, the list)."""
    dist[src] = 0.0
    touched[0] = src
    nt = 1
    size = _push(hk, hn, 0, 0.0, src)
    while size > 0:
        d, x, size = _pop(hk, hn, size)
        if d > dist[x]:
            continue
        pos = _list_facilities(x, d, lim, fn_ptr, fn_fac, fn_cost, stamp, best, token, lf, pos)
        for j in range(indptr[x], indptr[x + 1]):
            y = indices[j]
            nd = d + w[j]
            if nd < dist[y] and nd <= lim:
                if dist[y] == INF:
                    touched[nt] = y
                    nt += 1
                dist[y] = nd
                k0 = indptr[y]
                k1 = indptr[y + 1]
                if k1 == k0 or (k1 == k0 + 1 and indices[k0] == x):   # a dead end (see search)
                    pos = _list_facilities(y, nd, lim, fn_ptr, fn_fac, fn_cost, stamp, best,
                                               token, lf, pos)
                    continue
                size = _push(hk, hn, size, nd, y)
    return nt, pos


@njit(cache=True)
def _accumulate(c, t, f, h, mode, thresholds, sfca_limits, fac_ratio, pop, decay_kind,
                decay_param, k, cnt_l, near_l, dec_l, topk, found_h, demand, sfca):
    """Home ``h`` reaches facility ``f`` (category ``c``) in ``t`` seconds."""
    if mode == 2:
        if t <= sfca_limits[c]:
            sfca[c, h] += fac_ratio[f]
        return
    if mode == 1 and t <= sfca_limits[c]:
        demand[f] += pop[h]
    for q in range(len(thresholds)):
        if t <= thresholds[q]:
            cnt_l[c, q] += 1
    if t < near_l[c]:
        near_l[c] = t
    if decay_kind == 0:
        dec_l[c] += np.exp(-decay_param * t / 60.0)
    elif decay_kind == 1:
        z = t / 60.0 / decay_param
        dec_l[c] += np.exp(-0.5 * z * z)
    if k > 0:
        _insert_topk(topk, found_h, c, t, k)


@njit(cache=True)
# the per-home hot loop is written out on purpose: as function calls it ran 2x slower (measured)
def _home_block(indptr, indices, w, fn_ptr, fn_fac, fn_cost, fac_cat, fac_edge_ptr,  # noqa: C901
                fac_edge_f, fac_off, fac_leg, fac_ratio, edge_u, edge_v, edge_oneway,
                blk_edges, nodes, edge_ptr, edge_home, home_a, home_b, home_off, home_leg, pop, speed,
                limit, thresholds, sfca_limits, decay_kind, decay_param, k, mode,
                dist, hk, hn, touched, stamp, best, mpos, mstamp, token, lf, lt,
                mlist, mu, mv, mc, xf, xu, xv, topk, found_h, cnt_l, near_l, dec_l,
                counts, nearest, decay, kmean, found_out, demand, sfca):
    """One block of home edges (see :func:`home_pass_many`). Returns the next token and the
    (possibly grown) lists of the block's searches."""
    n_cat = len(sfca_limits)
    n_thr = len(thresholds)
    # metrics switched off come as (C, 0) arrays (see AccessEngine.reach): never written
    want_near = nearest.shape[1] > 0
    plain = mode == 0 and decay_kind < 0 and k == 0     # counts and nearest only
    ascending = True
    for q in range(1, n_thr):
        if not thresholds[q] > thresholds[q - 1]:
            ascending = False
    # counts alone with ascending tiers: a time is counted once, in the first tier that holds
    # it, and the tiers are summed up when written (one increment instead of one per tier)
    bucketed = plain and not want_near and ascending
    # nodes: the block's end nodes, sorted and unique (numpy's sort, compiled into a kernel,
    # would add seconds to the first run after install)
    L = len(nodes)
    # a node's search may stop at limit minus the cheapest walk from a home to it
    reach_lim = _full_float(L, -1.0)
    for i in range(len(blk_edges)):
        e = blk_edges[i]
        iu = _find(nodes, edge_u[e])
        iv = _find(nodes, edge_v[e])
        for hj in range(edge_ptr[e], edge_ptr[e + 1]):
            h = edge_home[hj]
            if limit - home_a[h] > reach_lim[iu]:
                reach_lim[iu] = limit - home_a[h]
            if limit - home_b[h] > reach_lim[iv]:
                reach_lim[iv] = limit - home_b[h]
    lptr = np.zeros(L + 1, dtype=np.int64)
    pos = np.int64(0)   # not a literal: numba would compile _search_listing twice
    for i in range(L):
        lim = reach_lim[i]
        if lim < 0:
            lptr[i + 1] = pos
            continue
        token += 1
        start = pos
        if pos + len(stamp) > len(lf):    # room for every facility: the search never grows it
            lf = _grow_int(lf, pos + len(stamp))
        nt, pos = _search_listing(indptr, indices, w, nodes[i], lim, dist, hk, hn, touched,
                                      fn_ptr, fn_fac, fn_cost, stamp, best, token, lf, pos)
        for q in range(nt):
            dist[touched[q]] = INF
        if pos > len(lt):
            lt = _grow_float(lt, pos)
        for q in range(start, pos):
            lt[q] = best[lf[q]]
        lptr[i + 1] = pos
    for bi in range(len(blk_edges)):
        e = blk_edges[bi]
        iu = _find(nodes, edge_u[e])
        iv = _find(nodes, edge_v[e])
        # facilities reachable from either end, as compact rows (facility, from u, from v);
        # those on this very edge go to their own short list (the straight walk may win)
        token += 1
        etok = token
        nm = 0
        for q in range(lptr[iu], lptr[iu + 1]):
            f = lf[q]
            mstamp[f] = etok
            mpos[f] = nm
            mlist[nm] = f
            mu[nm] = lt[q]
            mv[nm] = INF
            nm += 1
        for q in range(lptr[iv], lptr[iv + 1]):
            f = lf[q]
            if mstamp[f] == etok:
                mv[mpos[f]] = lt[q]
            else:
                mstamp[f] = etok
                mpos[f] = nm
                mlist[nm] = f
                mu[nm] = INF
                mv[nm] = lt[q]
                nm += 1
        ns = 0
        for j in range(fac_edge_ptr[e], fac_edge_ptr[e + 1]):
            f = fac_edge_f[j]
            xf[ns] = j            # the entry's row (fac_off, fac_leg are per row)
            if mstamp[f] == etok:
                p = mpos[f]
                xu[ns] = mu[p]
                xv[ns] = mv[p]
                mu[p] = INF       # taken out of the main list
                mv[p] = INF
            else:
                xu[ns] = INF
                xv[ns] = INF
            ns += 1
        for q in range(nm):
            mc[q] = fac_cat[mlist[q]]
        for hj in range(edge_ptr[e], edge_ptr[e + 1]):
            h = edge_home[hj]
            a = home_a[h]
            b = home_b[h]
            for c in range(n_cat):
                found_h[c] = 0
                near_l[c] = INF
                dec_l[c] = 0.0
                for q in range(n_thr):
                    cnt_l[c, q] = 0
            # the hot loop: _accumulate written out (as a call it ran 2x slower, measured);
            # the default metrics (counts, nearest) on their own, without the others' tests
            n_general = nm
            if bucketed:
                n_general = 0
                for m in range(nm):
                    t = min(a + mu[m], b + mv[m])
                    if t <= limit:
                        q = 0
                        while q < n_thr and t > thresholds[q]:
                            q += 1
                        if q < n_thr:
                            cnt_l[mc[m], q] += 1
            for m in range(n_general):
                t = min(a + mu[m], b + mv[m])
                if t > limit:
                    continue
                c = mc[m]
                if mode == 2:
                    if t <= sfca_limits[c]:
                        sfca[c, h] += fac_ratio[mlist[m]]
                    continue
                if mode == 1 and t <= sfca_limits[c]:
                    demand[mlist[m]] += pop[h]
                for q in range(n_thr):
                    if t <= thresholds[q]:
                        cnt_l[c, q] += 1
                if t < near_l[c]:
                    near_l[c] = t
                if decay_kind == 0:
                    dec_l[c] += np.exp(-decay_param * t / 60.0)
                elif decay_kind == 1:
                    z = t / 60.0 / decay_param
                    dec_l[c] += np.exp(-0.5 * z * z)
                if k > 0:
                    _insert_topk(topk, found_h, c, t, k)
            for m in range(ns):
                j = xf[m]
                f = fac_edge_f[j]
                t = min(a + xu[m], b + xv[m])
                delta = fac_off[j] - home_off[h]
                if delta >= 0 or not edge_oneway[e]:
                    t = min(t, (abs(delta) + fac_leg[j] + home_leg[h]) / speed)
                if t <= limit and bucketed:
                    q = 0
                    while q < n_thr and t > thresholds[q]:
                        q += 1
                    if q < n_thr:
                        cnt_l[fac_cat[f], q] += 1
                elif t <= limit:
                    _accumulate(fac_cat[f], t, f, h, mode, thresholds, sfca_limits, fac_ratio,
                                pop, decay_kind, decay_param, k, cnt_l, near_l, dec_l, topk,
                                found_h, demand, sfca)
            if mode != 2:
                for c in range(n_cat):
                    run = 0
                    for q in range(n_thr):
                        run = run + cnt_l[c, q] if bucketed else cnt_l[c, q]
                        counts[c, q, h] = run
                    if want_near:
                        nearest[c, h] = near_l[c]
                    if decay_kind >= 0:
                        decay[c, h] = dec_l[c]
                    if k > 0:
                        found_out[c, h] = found_h[c]
                        s = 0.0
                        for i in range(found_h[c]):
                            s += topk[c, i]
                        kmean[c, h] = (s + (k - found_h[c]) * limit) / k
    return token, lf, lt


def home_pass_many(indptr, indices, w, fn_ptr, fn_fac, fn_cost, fac_cat, fac_edge_ptr,
                   fac_edge_f, fac_off, fac_leg, fac_ratio, edge_u, edge_v, edge_oneway,
                   blk_ptr, blk_edge, bn_ptr, bn_node, edge_ptr, edge_home, home_a, home_b,
                   home_off, home_leg, pop, speed, limit, thresholds, sfca_limits, decay_kind,
                   decay_param, k, mode, n_workers, counts, nearest, decay, kmean, found_out,
                   demand, sfca):
    """Every metric of every category, from one truncated search per *home end node*.

    Home edges come in spatially compact blocks (``blk_ptr``/``blk_edge``); worker ``wk``
    takes blocks wk, wk + n_workers, ... . In a block each end node is searched once on the
    forward arcs; the facilities it reaches (``fn_*``: node -> facility, seconds from the node
    to the facility, partial edge and leg included) give every home on the block's edges its
    exact time ``min(a + d_u(f), b + d_v(f), straight along the edge)`` to every facility within
    ``limit``. mode 0: counts, nearest, decay, top-k mean; mode 1: the same plus 2SFCA demand
    per facility (``demand[wk, f]``); mode 2: only ``sfca[c, h] += fac_ratio[f]``.
    Homes of different blocks are disjoint, so workers never write the same home.
    ``bn_ptr``/``bn_node``: each block's end nodes, sorted and unique.

    The workers are threads running a ``nogil`` kernel (see :func:`_in_threads`).
    """
    def work(wk):
        _home_worker(np.int64(wk), np.int64(n_workers), indptr, indices, w, fn_ptr, fn_fac,
                     fn_cost, fac_cat, fac_edge_ptr, fac_edge_f, fac_off, fac_leg, fac_ratio,
                     edge_u, edge_v, edge_oneway, blk_ptr, blk_edge, bn_ptr, bn_node, edge_ptr,
                     edge_home, home_a, home_b, home_off, home_leg, pop, speed, limit,
                     thresholds, sfca_limits, decay_kind, decay_param, k, mode, counts,
                     nearest, decay, kmean, found_out, demand[wk], sfca)

    _in_threads(work, n_workers)


@njit(cache=True, nogil=True)
def _home_worker(wk, n_workers, indptr, indices, w, fn_ptr, fn_fac, fn_cost, fac_cat, fac_edge_ptr,
                     fac_edge_f, fac_off, fac_leg, fac_ratio, edge_u, edge_v, edge_oneway,
                     blk_ptr, blk_edge, bn_ptr, bn_node, edge_ptr, edge_home, home_a, home_b, home_off, home_leg,
                     pop, speed, limit, thresholds, sfca_limits, decay_kind, decay_param, k, mode,
                     counts, nearest, decay, kmean, found_out, demand_row, sfca):
    """Worker ``wk`` of :func:`home_pass_many`: its scratch arrays and its blocks."""
    n = len(indptr) - 1
    n_fac = len(fac_cat)
    n_cat = len(sfca_limits)
    n_blk = len(blk_ptr) - 1
    dist, hk, hn, touched = _scratch(n, len(indices) + 4)
    stamp = _full_int(n_fac, -1)
    mstamp = _full_int(n_fac, -1)
    best = np.empty(n_fac)
    mpos = np.empty(n_fac, dtype=np.int64)   # facility -> its row in the merged list
    lf = np.empty(4096, dtype=np.int64)
    lt = np.empty(4096)
    mlist = np.empty(n_fac, dtype=np.int64)
    mu = np.empty(n_fac)
    mv = np.empty(n_fac)
    mc = np.empty(n_fac, dtype=np.int64)
    xf = np.empty(n_fac, dtype=np.int64)
    xu = np.empty(n_fac)
    xv = np.empty(n_fac)
    topk = np.empty((n_cat, max(k, 1)))
    found_h = np.zeros(n_cat, dtype=np.int32)
    cnt_l = np.zeros((n_cat, len(thresholds)), dtype=np.int32)
    near_l = np.empty(n_cat)
    dec_l = np.empty(n_cat)
    token = np.int64(0)   # not a literal: numba would compile _home_block twice
    for b in range(wk, n_blk, n_workers):
        token, lf, lt = _home_block(
            indptr, indices, w, fn_ptr, fn_fac, fn_cost, fac_cat, fac_edge_ptr, fac_edge_f,
            fac_off, fac_leg, fac_ratio, edge_u, edge_v, edge_oneway,
            blk_edge[blk_ptr[b]:blk_ptr[b + 1]], bn_node[bn_ptr[b]:bn_ptr[b + 1]], edge_ptr,
            edge_home, home_a, home_b,
            home_off, home_leg, pop, speed, limit, thresholds, sfca_limits, decay_kind,
            decay_param, k, mode, dist, hk, hn, touched, stamp, best, mpos, mstamp, token,
            lf, lt, mlist, mu, mv, mc, xf, xu, xv, topk, found_h, cnt_l, near_l,
            dec_l, counts, nearest, decay, kmean, found_out, demand_row, sfca)


# --------------------------------------------------------------------------------------------
# new walking links: exact gains of a candidate edge (see lifecircle.engine.LinkScorer)


@njit(cache=True, parallel=True)
def node_dist_many(indptr, indices, w, seed_ptr, seed_node, seed_cost, limit, out):
    """``out[c, x]``: seconds from node x to the nearest facility of category c (inf beyond
    ``limit``): one multi-source search per category on the reversed arcs, in parallel."""
    n = len(indptr) - 1
    cap = len(indices) + 1
    for c in prange(len(seed_ptr) - 1):
        lo = seed_ptr[c]
        hi = seed_ptr[c + 1]
        for x in range(n):
            out[c, x] = INF
        if hi == lo:
            continue
        dist, hk, hn, touched = _scratch(n, cap + hi - lo)
        nt = search(indptr, indices, w, seed_node[lo:hi], seed_cost[lo:hi], limit, dist, hk, hn,
                    touched)
        for i in range(nt):
            out[c, touched[i]] = dist[touched[i]]


@njit(cache=True)
def _point_to_facilities(e, s, edge_u, edge_v, edge_len, edge_oneway, speed, node_dist,
                         fe_ptr, fe_fac, fac_cat, fac_off, fac_leg, out):
    """``out[c]``: seconds from the point at ``s`` metres along edge ``e`` to the nearest
    facility of category c: through either end of the edge, or straight along it."""
    C = node_dist.shape[0]
    L = edge_len[e]
    u = edge_u[e]
    v = edge_v[e]
    if s <= 0.0 or s >= L:          # the point is a node: no partial edge
        x = u if s <= 0.0 else v
        for c in range(C):
            out[c] = node_dist[c, x]
        return
    to_v = (L - s) / speed
    to_u = s / speed
    for c in range(C):
        t = to_v + node_dist[c, v]
        if not edge_oneway[e]:
            t = min(t, to_u + node_dist[c, u])
        out[c] = t
    for j in range(fe_ptr[e], fe_ptr[e + 1]):
        f = fe_fac[j]
        delta = fac_off[f] - s
        if delta < 0:
            if edge_oneway[e]:
                continue
            delta = -delta
        t = (delta + fac_leg[f]) / speed
        c = fac_cat[f]
        if t < out[c]:
            out[c] = t


@njit(cache=True)
def _homes_to_point(e, s, lim, rindptr, rindices, rw, edge_u, edge_v, edge_len, edge_oneway,
                    speed, node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off,
                    home_leg, dist, hk, hn, touched, seed, seed_cost, stamp, tok, tbest, hit, nh):
    """Seconds from every home within ``lim`` to the point at ``s`` along edge ``e``: one
    search on the reversed arcs seeded at the edge's ends, plus the straight walk of the
    homes on the edge. Homes are listed once in ``hit`` (``stamp == tok``), times in
    ``tbest``; returns the new length of ``hit``."""
    u = edge_u[e]
    v = edge_v[e]
    node = s <= 0.0 or s >= edge_len[e]     # the point is a node: no partial edge
    if node:
        seed[0] = u if s <= 0.0 else v
        seed_cost[0] = 0.0
        ns = 1
    else:
        seed[0] = u
        seed_cost[0] = s / speed                    # u -> point along the edge
        ns = 1
        if not edge_oneway[e]:
            seed[1] = v
            seed_cost[1] = (edge_len[e] - s) / speed
            ns = 2
    nt = search(rindptr, rindices, rw, seed[:ns], seed_cost[:ns], lim, dist, hk, hn, touched)
    for i in range(nt):
        x = touched[i]
        nh = _list_facilities(x, dist[x], lim, node_ptr, node_home, node_cost, stamp, tbest, tok,
                              hit, nh)
        dist[x] = INF
    if node:
        return nh
    for j in range(edge_ptr[e], edge_ptr[e + 1]):
        h = edge_home[j]
        delta = s - home_off[h]
        if delta < 0:
            if edge_oneway[e]:
                continue
            delta = -delta
        t = (delta + home_leg[h]) / speed
        if t <= lim:
            if stamp[h] != tok:
                stamp[h] = tok
                tbest[h] = t
                hit[nh] = h
                nh += 1
            elif t < tbest[h]:
                tbest[h] = t
    return nh


@njit(cache=True, inline="always")
def _access(t_min, T):
    """coverage.category_access for one time in minutes (inf = none found)."""
    if t_min == INF:
        return 0.0
    a = (2.0 * T - t_min) / T
    return min(max(a, 0.0), 1.0)


@njit(cache=True)
def _link_worker(wk, n_workers,  # noqa: C901  (one compiled hot loop, kept whole)
                 rindptr, rindices, rw, edge_u, edge_v, edge_len, edge_oneway,
                 speed, node_dist, fe_ptr, fe_fac, fac_cat, fac_off, fac_leg,
                 node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off, home_leg, pop,
                 old, limit, cat_min, tiers, cat_dim, cat_w, dim_w, n_dim, share, coef, t15,
                 end_e, end_s, link_s, gain, saved, dgain, all6, score, residents, homes_n,
                 rec, rec_new):
    n = len(rindptr) - 1
    n_home = len(pop)
    C = node_dist.shape[0]
    Q = len(tiers)
    dist, hk, hn, touched = _scratch(n, len(rindices) + 4)
    seed = np.empty(2, dtype=np.int32)
    seed_cost = np.empty(2)
    stampA = np.full(n_home, -1, dtype=np.int64)
    stampB = np.full(n_home, -1, dtype=np.int64)
    tA = np.empty(n_home)
    tB = np.empty(n_home)
    hitA = np.empty(n_home, dtype=np.int64)
    hitB = np.empty(n_home, dtype=np.int64)
    DA = np.empty(C)
    DB = np.empty(C)
    newt = np.empty(C)
    wold = np.empty((n_dim, Q + 1))
    wnew = np.empty((n_dim, Q + 1))
    seen = np.full(n_home, -1, dtype=np.int64)
    for k in range(wk, len(link_s), n_workers):
        eA = end_e[2 * k]
        sA = end_s[2 * k]
        eB = end_e[2 * k + 1]
        sB = end_s[2 * k + 1]
        lk = link_s[k]
        _point_to_facilities(eA, sA, edge_u, edge_v, edge_len, edge_oneway, speed, node_dist,
                             fe_ptr, fe_fac, fac_cat, fac_off, fac_leg, DA)
        _point_to_facilities(eB, sB, edge_u, edge_v, edge_len, edge_oneway, speed, node_dist,
                             fe_ptr, fe_fac, fac_cat, fac_off, fac_leg, DB)
        mA = INF
        mB = INF
        for c in range(C):
            mA = min(mA, DA[c])
            mB = min(mB, DB[c])
        # homes -> A -> link -> B -> facility, and the other way round
        nA = 0
        nB = 0
        lim = limit - lk - mB
        if lim >= 0:
            nA = _homes_to_point(eA, sA, lim, rindptr, rindices, rw, edge_u, edge_v, edge_len,
                                 edge_oneway, speed, node_ptr, node_home, node_cost, edge_ptr,
                                 edge_home, home_off, home_leg, dist, hk, hn, touched, seed,
                                 seed_cost, stampA, k, tA, hitA, 0)
        lim = limit - lk - mA
        if lim >= 0:
            nB = _homes_to_point(eB, sB, lim, rindptr, rindices, rw, edge_u, edge_v, edge_len,
                                 edge_oneway, speed, node_ptr, node_home, node_cost, edge_ptr,
                                 edge_home, home_off, home_leg, dist, hk, hn, touched, seed,
                                 seed_cost, stampB, k, tB, hitB, 0)
        for side in range(2):
            nh = nA if side == 0 else nB
            for i in range(nh):
                h = hitA[i] if side == 0 else hitB[i]
                if seen[h] == k:
                    continue
                seen[h] = k
                a = tA[h] if stampA[h] == k else INF
                b = tB[h] if stampB[h] == k else INF
                changed = False
                for c in range(C):
                    t = min(a + lk + DB[c], b + lk + DA[c])
                    if t < old[c, h] and t <= limit:
                        newt[c] = t
                        changed = True
                    else:
                        newt[c] = old[c, h]
                if not changed:
                    continue
                p = pop[h]
                newly = False
                ds = 0.0
                for d in range(n_dim):
                    for q in range(Q + 1):
                        wold[d, q] = 0.0
                        wnew[d, q] = 0.0
                for c in range(C):
                    to = old[c, h] / 60.0
                    tn = newt[c] / 60.0
                    d = cat_dim[c]
                    if to <= cat_min[c]:
                        wold[d, 0] += cat_w[c]
                    if tn <= cat_min[c]:
                        wnew[d, 0] += cat_w[c]
                        if to > cat_min[c]:
                            gain[k, c, 0] += p
                            newly = True
                    for q in range(Q):
                        if to <= tiers[q]:
                            wold[d, q + 1] += cat_w[c]
                        if tn <= tiers[q]:
                            wnew[d, q + 1] += cat_w[c]
                            if to > tiers[q]:
                                gain[k, c, q + 1] += p
                    if newt[c] < old[c, h]:
                        saved[k, c] += p * (min(old[c, h], limit) - newt[c]) / 60.0
                        ds += coef[c] * (_access(tn, cat_min[c]) - _access(to, cat_min[c]))
                    if len(rec_new) > 0:
                        rec_new[c, h] = newt[c]
                score[k] += p * ds
                all_old = True
                all_new = True
                for d in range(n_dim):
                    if dim_w[d] <= 0:
                        continue
                    for q in range(Q + 1):
                        co = wold[d, q] / dim_w[d] >= share
                        cn = wnew[d, q] / dim_w[d] >= share
                        if cn and not co:
                            dgain[k, d, q] += p
                        if q == t15 + 1:
                            all_old = all_old and co
                            all_new = all_new and cn
                if t15 >= 0 and all_new and not all_old:
                    all6[k] += p
                if newly:
                    residents[k] += p
                    homes_n[k] += 1
                    if rec.shape[0] > 0:
                        rec[k, h] = 1


@njit(cache=True, parallel=True)
def score_links(rindptr, rindices, rw, edge_u, edge_v, edge_len, edge_oneway, speed,
                node_dist, fe_ptr, fe_fac, fac_cat, fac_off, fac_leg, node_ptr, node_home,
                node_cost, edge_ptr, edge_home, home_off, home_leg, pop, old, limit, cat_min,
                tiers, cat_dim, cat_w, dim_w, n_dim, share, coef, t15, end_e, end_s, link_s,
                n_workers, gain, saved, dgain, all6, score, residents, homes_n, rec, rec_new):
    """Exact gains of each candidate link k, a two-way edge of ``link_s[k]`` seconds between
    the points ``(end_e[2k], end_s[2k])`` and ``(end_e[2k+1], end_s[2k+1])`` (edge, metres
    from its u end). With the link, a home's time to category c is
    ``min(old, t(h→A) + link + D_c(B), t(h→B) + link + D_c(A))``: a shortest path uses the
    link at most once and its other parts are paths of today's network. ``D_c`` of a point
    comes from ``node_dist`` (one search per category, shared by all candidates); t(h→A) from
    one search on the reversed arcs per link end, truncated at ``limit - link - min_c D_c``.

    Per candidate (population-weighted): ``gain[k, c, 0]`` newly within the category's own
    threshold, ``gain[k, c, 1 + q]`` within ``tiers[q]``; ``saved[k, c]`` minutes saved (times
    beyond ``limit`` counted at the limit); ``dgain[k, d, q]`` dimension newly covered (q as
    in gain); ``all6[k]`` newly all six at 15 min (tier index ``t15``); ``score[k]`` sum of
    pop × score change; ``residents[k]`` / ``homes_n[k]`` residents / homes with any category
    newly within its threshold (``rec[k, h] = 1`` for them when ``rec`` has rows; the new
    times go to ``rec_new[c, h]`` when it has rows, for a single candidate)."""
    for wk in prange(n_workers):
        _link_worker(np.int64(wk), np.int64(n_workers), rindptr, rindices, rw, edge_u, edge_v,
                     edge_len, edge_oneway, speed, node_dist, fe_ptr, fe_fac, fac_cat, fac_off,
                     fac_leg, node_ptr, node_home, node_cost, edge_ptr, edge_home, home_off,
                     home_leg, pop, old, limit, cat_min, tiers, cat_dim, cat_w, dim_w, n_dim,
                     share, coef, t15, end_e, end_s, link_s, gain, saved, dgain, all6, score,
                     residents, homes_n, rec, rec_new)


# --------------------------------------------------------------------------------------------
# nearest with the facility it comes from (the map's "nearest facility" names)


def nearest_labelled(indptr, indices, w, seed_ptr, seed_node, seed_cost, seed_label, limit,
                      home_u, home_v, home_a, home_b, out_t, out_f):
    """:func:`nearest_many` that also carries, per node, the label
    (facility) of the seed its shortest path starts from; per home the label of the better end.
    One category per task on threads (a ``nogil`` kernel, like the engine's own)."""
    def work(c):
        _nearest_labelled_one(np.int64(c), indptr, indices, w, seed_ptr, seed_node, seed_cost,
                              seed_label, limit, home_u, home_v, home_a, home_b, out_t, out_f)

    _in_threads(work, len(seed_ptr) - 1)


@njit(cache=True, nogil=True)
def _nearest_labelled_one(c, indptr, indices, w, seed_ptr, seed_node, seed_cost, seed_label, limit,
                          home_u, home_v, home_a, home_b, out_t, out_f):
    """Category ``c`` of :func:`nearest_labelled`."""
    n = len(indptr) - 1
    cap = len(indices) + 1
    lo = seed_ptr[c]
    hi = seed_ptr[c + 1]
    if hi == lo:
        for h in range(len(home_u)):
            out_t[h, c] = INF
            out_f[h, c] = -1
        return
    dist, hk, hn, _touched = _scratch(n, cap + hi - lo)
    lab = np.empty(n, dtype=np.int64)
    for i in range(n):
        lab[i] = -1
    size = 0
    for i in range(lo, hi):
        x = seed_node[i]
        cost = seed_cost[i]
        if cost <= limit and cost < dist[x]:
            dist[x] = cost
            lab[x] = seed_label[i]
            size = _push(hk, hn, size, cost, x)
    while size > 0:
        d, x, size = _pop(hk, hn, size)
        if d > dist[x]:
            continue
        for j in range(indptr[x], indptr[x + 1]):
            y = indices[j]
            nd = d + w[j]
            if nd < dist[y] and nd <= limit:
                dist[y] = nd
                lab[y] = lab[x]
                size = _push(hk, hn, size, nd, y)
    for h in range(len(home_u)):
        t = INF
        f = -1
        u = home_u[h]
        if u >= 0:
            ta = home_a[h] + dist[u]
            tb = home_b[h] + dist[home_v[h]]
            if ta <= tb:
                t = ta
                f = lab[u]
            else:
                t = tb
                f = lab[home_v[h]]
        if t <= limit:
            out_t[h, c] = t
            out_f[h, c] = f
        else:
            out_t[h, c] = INF
            out_f[h, c] = -1
