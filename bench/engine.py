"""Engine benchmark: nearest minutes and 15-minute counts for every home and every category.

Datasets
  lp    Las Palmas (shared OSM extract), default profile, homes as ``analyze`` finds them.
  1m    a synthetic city of >= 1,000,000 nodes: the Las Palmas network, homes and facilities
        tiled 4 x 3 with shifted coordinates, neighbouring tiles joined by a few bridge edges.

Contestants (same homes, same facilities, same network arrays; each runs in its own process so
its peak memory is its own):
  lifecircle    the job is one AccessEngine.reach(thresholds=(15,), k=0) call with
                max_minutes=15 (nearest and counts from the per-home pass); nearest alone
                (vs the scipy floor), the per-facility pass, the full reach (k=20, decay,
                2SFCA) and the what-if are separate rows/fields.
  scipy-floor   csgraph.dijkstra(min_only=True, limit) per category, facilities snapped to
                their nearest node (ignores partial edges: the floor).
  scipy-exact   the same with a super-source row carrying the partial-edge costs: equals ours.
  networkx      multi_source_dijkstra_path_length per category (Las Palmas only).
  pandana       Network + precompute(15 min) + set_pois/nearest_pois + set/aggregate(count).
  cityseer      as its guide runs it on an osmnx graph: io.nx_from_osm_nx +
                io.network_structure_from_nx (set-up) + layers.compute_accessibilities.
  cityseer-tuned  a NetworkStructure built by hand from the same arrays, live only at the
                nodes next to homes (the least work cityseer can be asked to do).

    python bench/engine.py            # full run (both datasets; takes a while)
    python bench/engine.py --quick    # Las Palmas only, 1 repeat for slow peers (< 2 min)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

PBF = str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf")
LIMIT_MIN = 15.0
TILES = (4, 3)   # default only; dataset() tiles enough copies for >= 1M nodes
PEER_BUDGET_S = 600.0   # skip a peer on 1m when its estimate exceeds this
SLOW_ONE_REPEAT_S = 120.0  # a slow peer's step that takes longer than this runs once
CACHE = Path(os.environ.get("LIFECIRCLE_BENCH_CACHE", Path(tempfile.gettempdir()) / "lifecircle_bench"))


# --------------------------------------------------------------------------------------------
# datasets


def build_lp(path: Path) -> None:
    import shapely

    from lifecircle.core.classify import classify_features
    from lifecircle.core.homes import find_homes
    from lifecircle.core.network import build_network
    from lifecircle.core.profiles import load_profile
    from lifecircle.core.snapping import entry_points, snap_points
    from lifecircle.io.crs import choose_crs
    from lifecircle.io.sources import read_osm
    from lifecircle.settings import DEFAULTS

    s = DEFAULTS
    data = read_osm(PBF)
    b = data.streets.total_bounds
    crs = choose_crs(s.crs, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets, crs, s, areas=data.features)   # as analyze does
    prof = load_profile("default")
    fac = classify_features(data.features, prof).to_crs(crs).reset_index(drop=True)
    homes = find_homes(data.features, crs, s)
    hpts = homes.geometry.to_numpy()
    hs = snap_points(net, hpts, s.max_snap_m)
    fpts = entry_points(net, fac.geometry.to_numpy())
    fs = snap_points(net, fpts, s.max_snap_m)
    cats = [c.id for c in prof.categories]
    cat_idx = np.array([cats.index(c) for c in fac["category"]], dtype=np.int64)
    keep = fs.edge >= 0
    np.savez(path, crs=str(crs.to_string()), speed=net.speed_mps, node_x=net.node_x, node_y=net.node_y,
             edge_u=net.edge_u, edge_v=net.edge_v, edge_len=net.edge_len, edge_oneway=net.edge_oneway,
             edge_wkb=np.asarray(shapely.to_wkb(net.edge_geom), dtype=object),
             home_x=shapely.get_x(hpts), home_y=shapely.get_y(hpts), home_edge=hs.edge,
             home_off=hs.offset, home_leg=hs.leg, cats=np.array(cats),
             fac_cat=cat_idx[keep], fac_x=shapely.get_x(fpts)[keep], fac_y=shapely.get_y(fpts)[keep],
             fac_edge=fs.edge[keep], fac_off=fs.offset[keep], fac_leg=fs.leg[keep], tiles=1)


def build_tiled(src: Path, path: Path, tiles=TILES, gap_m: float = 150.0, bridges: int = 6) -> None:
    """Tile the Las Palmas arrays ``tiles`` times with shifted coordinates and join each pair
    of neighbouring tiles with ``bridges`` straight edges (nearest node across the gap)."""
    import shapely
    from scipy.spatial import cKDTree

    d = dict(np.load(src, allow_pickle=True))
    N, E = len(d["node_x"]), len(d["edge_u"])
    x0, x1 = d["node_x"].min(), d["node_x"].max()
    y0, y1 = d["node_y"].min(), d["node_y"].max()
    dx, dy = x1 - x0 + gap_m, y1 - y0 + gap_m
    nx_, ny_ = tiles
    shifts = [(i * dx, j * dy) for j in range(ny_) for i in range(nx_)]
    T = len(shifts)
    out = {k: d[k] for k in ("crs", "speed", "cats")}
    out["node_x"] = np.concatenate([d["node_x"] + sx for sx, _ in shifts])
    out["node_y"] = np.concatenate([d["node_y"] + sy for _, sy in shifts])
    eu = [d["edge_u"] + t * N for t in range(T)]
    ev = [d["edge_v"] + t * N for t in range(T)]
    geoms = shapely.from_wkb(d["edge_wkb"])
    eg = [shapely.transform(geoms, lambda c, s=s: c + np.asarray(s)) for s in shifts]
    # bridges between horizontal and vertical neighbours
    tree = cKDTree(np.c_[d["node_x"], d["node_y"]])
    bu, bv, bl = [], [], []

    def join(ta, tb, axis):
        sa, sb = np.array(shifts[ta]), np.array(shifts[tb])
        coord = d["node_x"] if axis == 0 else d["node_y"]
        other = d["node_y"] if axis == 0 else d["node_x"]
        edge_nodes = np.flatnonzero(coord > np.quantile(coord, 0.98))
        picks = edge_nodes[np.argsort(other[edge_nodes])][
            np.linspace(0, len(edge_nodes) - 1, bridges).astype(int)]
        for a in picks:
            pa = np.array([d["node_x"][a], d["node_y"][a]]) + sa - sb   # in tile b's frame
            dist, b = tree.query(pa)
            bu.append(a + ta * N)
            bv.append(b + tb * N)
            bl.append(float(dist))

    for j in range(ny_):
        for i in range(nx_):
            t = j * nx_ + i
            if i + 1 < nx_:
                join(t, t + 1, 0)
            if j + 1 < ny_:
                join(t, t + nx_, 1)
    bu, bv = np.array(bu, dtype=np.int64), np.array(bv, dtype=np.int64)
    out["edge_u"] = np.concatenate(eu + [bu])
    out["edge_v"] = np.concatenate(ev + [bv])
    out["edge_len"] = np.concatenate([d["edge_len"]] * T + [np.array(bl)])
    out["edge_oneway"] = np.concatenate([d["edge_oneway"]] * T + [np.zeros(len(bu), bool)])
    bgeom = shapely.linestrings(np.stack([np.c_[out["node_x"][bu], out["node_y"][bu]],
                                          np.c_[out["node_x"][bv], out["node_y"][bv]]], 1))
    out["edge_wkb"] = np.asarray(shapely.to_wkb(np.concatenate(eg + [bgeom])), dtype=object)
    for who in ("home", "fac"):
        out[f"{who}_x"] = np.concatenate([d[f"{who}_x"] + sx for sx, _ in shifts])
        out[f"{who}_y"] = np.concatenate([d[f"{who}_y"] + sy for _, sy in shifts])
        e = d[f"{who}_edge"]
        out[f"{who}_edge"] = np.concatenate([np.where(e >= 0, e + t * E, -1) for t in range(T)])
        for k in ("off", "leg"):
            out[f"{who}_{k}"] = np.concatenate([d[f"{who}_{k}"]] * T)
    out["fac_cat"] = np.concatenate([d["fac_cat"]] * T)
    out["tiles"] = T
    out["bridges"] = len(bu)
    np.savez(path, **out)


def dataset(name: str, rebuild: bool = False) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    lp = CACHE / "lp.npz"
    if rebuild or not lp.exists():
        print("building Las Palmas arrays ...", flush=True)
        build_lp(lp)
    if name == "lp":
        return lp
    p = CACHE / "1m.npz"
    if rebuild or not p.exists():
        print("tiling the synthetic 1M-node city ...", flush=True)
        n = len(np.load(lp)["node_x"])
        k = int(np.ceil(1_000_000 / n))
        nx_ = int(np.ceil(np.sqrt(k)))
        build_tiled(lp, p, tiles=(nx_, int(np.ceil(k / nx_))))
    return p


# --------------------------------------------------------------------------------------------
# shared pieces for the workers


class Data:
    def __init__(self, path):
        d = np.load(path, allow_pickle=True)
        for k in d.files:
            setattr(self, k, d[k])
        self.speed = float(self.speed)
        self.cats = [str(c) for c in self.cats]
        self.n_nodes = len(self.node_x)
        self.n_homes = len(self.home_x)
        self.present = [c for c in range(len(self.cats)) if (self.fac_cat == c).any()]

    def network(self):
        import pyproj

        from lifecircle.core.network import WalkNetwork

        return WalkNetwork(pyproj.CRS(str(self.crs)), np.arange(self.n_nodes), self.node_x, self.node_y,
                           self.edge_u, self.edge_v, self.edge_len, self.edge_oneway,
                           np.empty(0, dtype=object), self.speed)

    def home_snap(self):
        from lifecircle.core.snapping import Snap

        return Snap(self.home_edge, self.home_off, self.home_leg, np.zeros(self.n_homes, bool))

    def fac_snaps(self):
        from lifecircle.core.snapping import Snap

        out = []
        for c in range(len(self.cats)):
            m = self.fac_cat == c
            out.append(Snap(self.fac_edge[m], self.fac_off[m], self.fac_leg[m], np.zeros(int(m.sum()), bool)))
        return out

    def home_terms(self):
        """(u, v, a, b) seconds from each home to its edge's ends (a = inf if one-way)."""
        ok = self.home_edge >= 0
        e = np.where(ok, self.home_edge, 0)
        u = np.where(ok, self.edge_u[e], 0)
        v = np.where(ok, self.edge_v[e], 0)
        a = np.where(ok & ~self.edge_oneway[e], (self.home_leg + self.home_off) / self.speed, np.inf)
        b = np.where(ok, (self.home_leg + self.edge_len[e] - self.home_off) / self.speed, np.inf)
        return u, v, a, b

    def home_node(self):
        """Each home's nearer edge end (what node-based tools attach it to)."""
        ok = self.home_edge >= 0
        e = np.where(ok, self.home_edge, 0)
        near_u = self.home_off <= self.edge_len[e] / 2
        return np.where(near_u, self.edge_u[e], self.edge_v[e])

    def fac_node(self, c):
        m = self.fac_cat == c
        e = self.fac_edge[m]
        return np.unique(np.where(self.fac_off[m] <= self.edge_len[e] / 2, self.edge_u[e], self.edge_v[e]))


def direct_same_edge(d: Data, c: int) -> np.ndarray:
    """Seconds from each home straight along its own edge to a facility of ``c`` on it
    (written independently of the engine, with pandas)."""
    import pandas as pd

    m = d.fac_cat == c
    hf = pd.DataFrame({"h": np.arange(d.n_homes), "e": d.home_edge, "ho": d.home_off, "hl": d.home_leg})
    ff = pd.DataFrame({"e": d.fac_edge[m], "fo": d.fac_off[m], "fl": d.fac_leg[m]})
    j = hf[hf.e >= 0].merge(ff, on="e")
    out = np.full(d.n_homes, np.inf)
    if len(j):
        delta = j.fo.to_numpy() - j.ho.to_numpy()
        ok = (delta >= 0) | ~d.edge_oneway[j.e.to_numpy()]
        t = np.where(ok, (np.abs(delta) + j.fl.to_numpy() + j.hl.to_numpy()) / d.speed, np.inf)
        np.minimum.at(out, j.h.to_numpy(), t)
    return out


def _finish(out: np.ndarray, limit_s: float) -> np.ndarray:
    out = np.where(out <= limit_s, out / 60.0, np.nan)
    return out.astype(np.float32)


def _result(name, setup, job, extra=None, minutes=None, out_dir=None):
    r = {"contestant": name, "setup_s": setup, "job_s": job, "peak_mb": C.peak_rss_mb(),
         "loadavg_1min_at_end": os.getloadavg()[0]}
    r.update(extra or {})
    if minutes is not None and out_dir:
        np.save(Path(out_dir) / f"{name}.npy", minutes)
    return r


def med(fn, quick, slow=False, warmup=0):
    """Median timing: >=5 repeats for sub-second work, >=3 otherwise, 1 for slow in quick."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    first = time.perf_counter() - t0 if warmup else None
    t, ts, out = C.timed(fn, 1)
    n = C.repeats_for(t, quick) if not (quick and slow) else 1
    if slow and t > SLOW_ONE_REPEAT_S:
        n = 1   # minutes per repeat: one repeat keeps the full run inside its time box
    if n > 1:
        _, more, out = C.timed(fn, n - 1)
        ts = ts + more
    return statistics.median(ts), ts, out, first


# --------------------------------------------------------------------------------------------
# workers


def _whatif_timing(eng, snaps, quick):
    """Median time to add, then remove, one facility of the largest category (exact
    incremental update of every metric: AccessEngine.category_state/add_facility/remove_facility)."""
    c = int(np.argmax([len(s) for s in snaps]))
    snap = snaps[c]
    n = len(snap)
    state = eng.category_state(snap.take(np.arange(n - 1)))
    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=min(n, 5 if quick else 20), replace=False)
    adds, removes = [], []
    for i in picks:
        one = snap.take(np.array([i]))
        t0 = time.perf_counter()
        eng.add_facility(state, one)
        adds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        eng.remove_facility(state, state.ids[-1])
        removes.append(time.perf_counter() - t0)
    return {"add_ms": 1000 * statistics.median(adds), "remove_ms": 1000 * statistics.median(removes),
            "category": c, "n": n}


def w_lifecircle(d: Data, quick, out_dir):
    from lifecircle.core import engine as E
    from lifecircle.core.engine import AccessEngine
    from lifecircle.settings import DEFAULTS

    base = C.peak_rss_mb()
    snaps = d.fac_snaps()

    job_settings = DEFAULTS.with_(max_minutes=LIMIT_MIN)   # nearest within the job's 15 min

    def setup():
        net = d.network()
        _ = net.forward, net.reverse                 # build both CSRs inside the timed set-up
        eng = AccessEngine(net, d.home_snap(), settings=job_settings)
        _ = eng._home_blocks                         # and the home blocks
        return net, eng

    setup_s, setup_ts, (net, eng), _ = med(setup, quick)
    nearest_s, nts, _, cold = med(lambda: eng.nearest(snaps, limit_min=LIMIT_MIN), quick, warmup=1)

    def job(method="auto"):
        # the job in one call: nearest minutes and counts within 15 min, every category
        return eng.reach(snaps, thresholds_min=(LIMIT_MIN,), limit_min=LIMIT_MIN, k=0,
                         with_nearest=True, with_decay=False, with_sfca=False, method=method)

    job_s, job_ts, m0, cold_r = med(job, quick, warmup=1)
    minutes = m0.nearest
    np.save(Path(out_dir) / "lifecircle_counts15.npy", m0.counts[:, 0, :])
    del m0
    # the same job the way the first version ran it: one search per facility + nearest
    fac_s, fac_ts, _, _ = med(lambda: (eng.nearest(snaps, limit_min=LIMIT_MIN),
                                       job("facilities")) and None, quick, warmup=1)
    gc.collect()
    eng = AccessEngine(net, d.home_snap())    # default settings (nearest up to 30 min)
    full_s, fts, _, _ = med(lambda: eng.reach(snaps) and None, quick, slow=True)
    # peak memory of one all-metrics run on its own (the timing loop above keeps no results)
    gc.collect()
    before_full = C.peak_rss_mb()
    reset_ok = C.reset_peak_rss()
    full = eng.reach(snaps)
    full_peak = C.peak_rss_mb()
    del full
    whatif_s = _whatif_timing(eng, snaps, quick)
    near30_s, _, _, _ = med(lambda: eng.nearest(snaps), quick)
    seeds = E.facility_seeds(eng.net, snaps)
    seeds_s, _, _, _ = med(lambda: E.facility_seeds(eng.net, snaps), quick)
    extra = {
        "setup_repeats": setup_ts, "nearest_s": nearest_s, "nearest_repeats": nts,
        "nearest_cold_s": cold, "job_cold_s": cold_r,
        "job_repeats": job_ts, "job_per_facility_s": fac_s, "job_per_facility_repeats": fac_ts,
        "full_reach_s": full_s, "full_reach_repeats": fts,
        "nearest_30min_s": near30_s, "facility_seeds_s": seeds_s,
        "whatif_add_ms": whatif_s["add_ms"], "whatif_remove_ms": whatif_s["remove_ms"],
        "whatif_category": whatif_s["category"], "whatif_facilities": whatif_s["n"],
        "full_reach_peak_mb": full_peak if reset_ok else None, "peak_before_full_mb": before_full,
        "base_mb": base,
        "n_facilities": int(len(d.fac_cat)), "n_seeds": int(len(seeds.seed_node)),
    }
    return _result("lifecircle", setup_s, job_s, extra, minutes, out_dir)


def w_scipy(d: Data, quick, out_dir, exact: bool):
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    limit = 60 * LIMIT_MIN

    def setup():
        net = d.network()
        return net.reverse.to_scipy().tocsr()

    setup_s, _, A, _ = med(setup, quick)
    u, v, a, b = d.home_terms()
    ok = d.home_edge >= 0
    N = d.n_nodes
    if exact:
        # one super-source row per category: edges to u/v of each facility's edge at the
        # partial-edge + leg cost (tiny epsilon: csgraph drops explicit zeros as non-edges)
        rows = []
        for c in d.present:
            m = d.fac_cat == c
            e, s, leg = d.fac_edge[m], d.fac_off[m], d.fac_leg[m]
            two = ~d.edge_oneway[e]
            nodes = np.concatenate([d.edge_u[e], d.edge_v[e][two]])
            cost = np.concatenate([(leg + s) / d.speed, ((leg + d.edge_len[e] - s) / d.speed)[two]])
            # several facilities may seed one node: keep the cheapest (scipy would sum them)
            order = np.lexsort((cost, nodes))
            nodes, cost = nodes[order], cost[order]
            first = np.r_[True, nodes[1:] != nodes[:-1]]
            rows.append((nodes[first], np.maximum(cost[first], 1e-9)))
        directs = {c: direct_same_edge(d, c) for c in d.present}

    def job():
        out = np.full((len(d.cats), d.n_homes), np.inf)
        for i, c in enumerate(d.present):
            if exact:
                nodes, cost = rows[i]
                S = sp.csr_matrix((cost, (np.zeros(len(nodes), int), nodes)), shape=(1, N + 1))
                G = sp.vstack([sp.hstack([A, sp.csr_matrix((N, 1))]), S]).tocsr()
                dist = dijkstra(G, indices=N, limit=limit)[:N]
            else:
                dist = dijkstra(A, indices=d.fac_node(c), min_only=True, limit=limit)
            t = np.minimum(a + dist[u], b + dist[v])
            t[~ok] = np.inf
            if exact:
                t = np.minimum(t, directs[c])
            out[c] = t
        return out

    job_s, ts, out, _ = med(job, quick)
    name = "scipy-exact" if exact else "scipy-floor"
    return _result(name, setup_s, job_s, {"job_repeats": ts}, _finish(out, limit), out_dir)


def w_networkx(d: Data, quick, out_dir):
    import networkx as nx

    limit = 60 * LIMIT_MIN

    def setup():
        return d.network().to_networkx().reverse(copy=False)

    setup_s, _, R, _ = med(setup, quick, slow=True)
    u, v, a, b = d.home_terms()
    ok = d.home_edge >= 0

    def job():
        out = np.full((len(d.cats), d.n_homes), np.inf)
        for c in d.present:
            dd = nx.multi_source_dijkstra_path_length(R, set(d.fac_node(c).tolist()), cutoff=limit,
                                                      weight="travel_time")
            dist = np.full(d.n_nodes, np.inf)
            k = np.fromiter(dd.keys(), np.int64, len(dd))
            dist[k] = np.fromiter(dd.values(), float, len(dd))
            t = np.minimum(a + dist[u], b + dist[v])
            t[~ok] = np.inf
            out[c] = t
        return out

    job_s, ts, out, _ = med(job, quick, slow=True)
    return _result("networkx", setup_s, job_s, {"job_repeats": ts}, _finish(out, limit), out_dir)


def w_pandana(d: Data, quick, out_dir):
    import pandana as pdna
    import pandas as pd

    limit = 60 * LIMIT_MIN

    def setup():
        fw = d.network().forward
        src = np.repeat(np.arange(d.n_nodes), np.diff(fw.indptr))
        ids = pd.Index(np.arange(d.n_nodes))
        net = pdna.Network(pd.Series(d.node_x, index=ids), pd.Series(d.node_y, index=ids),
                           pd.Series(src), pd.Series(fw.indices.astype(np.int64)),
                           pd.DataFrame({"t": fw.weights}), twoway=False)
        net.precompute(limit + 1)
        hn = net.get_node_ids(pd.Series(d.home_x), pd.Series(d.home_y)).to_numpy()
        return net, hn

    setup_s, sts, (net, hn), _ = med(setup, quick, slow=True)

    def job():
        out = np.full((len(d.cats), d.n_homes), np.inf)
        cnt = np.zeros((len(d.cats), d.n_homes), np.int32)
        fnode = net.get_node_ids(pd.Series(d.fac_x), pd.Series(d.fac_y)).to_numpy()
        for c in d.present:
            m = d.fac_cat == c
            key = f"c{c}"
            net.set_pois(category=key, maxdist=limit, maxitems=1, x_col=pd.Series(d.fac_x[m]),
                         y_col=pd.Series(d.fac_y[m]))
            near = net.nearest_pois(limit, key, num_pois=1, max_distance=np.inf)[1]
            out[c] = near.reindex(hn).to_numpy()
            net.set(pd.Series(fnode[m]), variable=pd.Series(np.ones(int(m.sum()))), name=key)
            cnt[c] = net.aggregate(limit, type="count", decay="flat", name=key).reindex(hn).to_numpy()
        return out, cnt

    job_s, ts, (out, cnt), _ = med(job, quick, slow=True)
    np.save(Path(out_dir) / "pandana_counts15.npy", cnt)
    return _result("pandana", setup_s, job_s, {"job_repeats": ts, "setup_repeats": sts},
                   _finish(out, limit), out_dir)


def _cityseer_job(d: Data, ns, nodes, quick, out_dir, name, setup_s, sts, extra):
    import geopandas as gpd
    import shapely
    from cityseer.metrics import layers

    dist_m = int(round(60 * LIMIT_MIN * d.speed))
    keys = [f"c{c}" for c in d.present]
    data = gpd.GeoDataFrame({"cat": [f"c{c}" for c in d.fac_cat]},
                            geometry=shapely.points(d.fac_x, d.fac_y), crs=str(d.crs))

    def job():
        return layers.compute_accessibilities(data, "cat", keys, nodes.copy(), ns, max_netw_assign_dist=300,
                                              distances=[dist_m], decay_fn="1", speed_m_s=d.speed)

    job_s, ts, res, _ = med(job, quick, slow=True)
    hn = d.home_node()
    out = np.full((len(d.cats), d.n_homes), np.nan, np.float32)
    cnt = np.zeros((len(d.cats), d.n_homes), np.int32)
    # each home reads its nearer edge end (node keys are ints or strings, by path)
    idx = [type(nodes.index[0])(i) for i in hn]
    for c in d.present:
        near = res[f"cc_c{c}_nearest_max_{dist_m}"].reindex(idx).to_numpy(float) / d.speed / 60.0
        out[c] = np.where(near <= LIMIT_MIN, near, np.nan)
        cnt[c] = np.nan_to_num(res[f"cc_c{c}_{dist_m}"].reindex(idx).to_numpy(float))
    np.save(Path(out_dir) / f"{name}_counts15.npy", cnt)
    return _result(name, setup_s, job_s, {"job_repeats": ts, "setup_repeats": sts, "distance_m": dist_m,
                                          "live_nodes": int(nodes["live"].sum()), **extra},
                   out, out_dir)


def w_cityseer(d: Data, quick, out_dir):
    """cityseer as its guide runs it on an OSMnx graph: ``io.nx_from_osm_nx`` +
    ``io.network_structure_from_nx`` (set-up), every node live, ``compute_accessibilities``."""
    import shapely
    from cityseer import config as csconfig
    from cityseer.tools import io

    csconfig.QUIET_MODE = True
    net = d.network()
    net.edge_geom = shapely.from_wkb(d.edge_wkb)
    g = net.to_networkx()     # the input: an osmnx-style MultiDiGraph (not timed)

    def setup():
        nodes, _edges, ns = io.network_structure_from_nx(io.nx_from_osm_nx(g))
        return ns, nodes

    setup_s, sts, (ns, nodes), _ = med(setup, quick, slow=True)
    return _cityseer_job(d, ns, nodes, quick, out_dir, "cityseer", setup_s, sts,
                         {"path": "io.nx_from_osm_nx + io.network_structure_from_nx, all nodes live"})


def w_cityseer_tuned(d: Data, quick, out_dir):
    """cityseer with a hand-built NetworkStructure (no networkx) where only the nodes next to
    homes are ``live``: the least work cityseer can be asked to do for this job."""
    import geopandas as gpd
    import shapely
    from cityseer import config as csconfig
    from cityseer import rustalgos

    csconfig.QUIET_MODE = True
    hn = d.home_node()
    live = np.zeros(d.n_nodes, bool)
    live[hn[d.home_edge >= 0]] = True

    def setup():
        ns = rustalgos.graph.NetworkStructure()
        for i in range(d.n_nodes):
            ns.add_street_node(str(i), float(d.node_x[i]), float(d.node_y[i]), bool(live[i]), 1.0)
        geoms = shapely.from_wkb(d.edge_wkb)
        wkt = shapely.to_wkt(geoms, rounding_precision=3)
        back = shapely.to_wkt(shapely.reverse(geoms), rounding_precision=3)
        # both directions, as io.network_structure_from_nx adds them for an undirected graph
        for e in range(len(d.edge_u)):
            u, v = int(d.edge_u[e]), int(d.edge_v[e])
            ns.add_street_edge(u, v, e, str(u), str(v), wkt[e], 1.0)
            ns.add_street_edge(v, u, e, str(v), str(u), back[e], 1.0)
        ns.validate()
        ns.build_edge_rtree()
        nodes = gpd.GeoDataFrame({"x": d.node_x, "y": d.node_y, "live": live, "weight": 1.0},
                                 geometry=shapely.points(d.node_x, d.node_y), index=[str(i) for i in range(d.n_nodes)],
                                 crs=str(d.crs))
        return ns, nodes

    setup_s, sts, (ns, nodes), _ = med(setup, quick, slow=True)
    return _cityseer_job(d, ns, nodes, quick, out_dir, "cityseer-tuned", setup_s, sts,
                         {"path": "rustalgos NetworkStructure from arrays, live = home nodes only"})


WORKERS = {"lifecircle": w_lifecircle, "scipy-floor": lambda d, q, o: w_scipy(d, q, o, False),
           "scipy-exact": lambda d, q, o: w_scipy(d, q, o, True), "networkx": w_networkx,
           "pandana": w_pandana, "cityseer": w_cityseer, "cityseer-tuned": w_cityseer_tuned}


# --------------------------------------------------------------------------------------------
# driver


def disagreement(d: Data, out_dir: Path, name: str) -> dict:
    ref = np.load(out_dir / "scipy-exact.npy")
    p = out_dir / f"{name}.npy"
    if not p.exists():
        return {}
    got = np.load(p)
    rows = d.present
    r, g = ref[rows].astype(float), got[rows].astype(float)
    both = np.isfinite(r) & np.isfinite(g)
    diff_m = np.abs(r - g)[both] * 60 * d.speed
    missed = np.isfinite(r) & (r < LIMIT_MIN - 0.5) & ~np.isfinite(g)
    extra = np.isfinite(g) & (g < LIMIT_MIN - 0.5) & ~np.isfinite(r)
    return {"max_diff_m": float(diff_m.max()) if len(diff_m) else 0.0,
            "p95_diff_m": float(np.quantile(diff_m, 0.95)) if len(diff_m) else 0.0,
            "median_diff_m": float(np.median(diff_m)) if len(diff_m) else 0.0,
            "missed_pairs": int(missed.sum()), "extra_pairs": int(extra.sum()),
            "compared_pairs": int(both.sum())}


def count_agreement(out_dir: Path, name: str, present) -> dict:
    ref, p = out_dir / "lifecircle_counts15.npy", out_dir / f"{name}_counts15.npy"
    if not (ref.exists() and p.exists()):
        return {}
    a, b = np.load(ref)[present].astype(float), np.load(p)[present].astype(float)
    return {"counts_mean_abs_diff_vs_lifecircle": float(np.abs(a - b).mean()),
            "counts_share_equal_vs_lifecircle": float((a == b).mean())}


def run_dataset(name: str, quick: bool, contestants: list[str]) -> list[dict]:
    path = dataset(name)
    d = Data(path)
    out_dir = Path(tempfile.mkdtemp(prefix=f"engine_{name}_", dir=CACHE))
    info = {"nodes": d.n_nodes, "edges": len(d.edge_u), "homes": d.n_homes, "facilities": len(d.fac_cat),
            "categories": len(d.cats), "categories_with_facilities": len(d.present)}
    print(f"\n== {name}: {info}", flush=True)
    rows = []
    order = ["scipy-exact", "scipy-floor", "lifecircle", "networkx", "pandana", "cityseer", "cityseer-tuned"]
    lp_rows = {r["contestant"]: r for r in LP_ROWS} if name != "lp" else {}
    for c in [c for c in order if c in contestants]:
        reason = None
        if name != "lp" and c == "networkx":
            est = _estimate(lp_rows.get(c), d)
            reason = f"too slow: est. {est:.0f} s" if est else "too slow (pure-Python Dijkstra on 1M nodes)"
        elif name != "lp" and c in ("pandana", "cityseer", "cityseer-tuned"):
            est = _estimate(lp_rows.get(c), d)
            if est is not None and est > PEER_BUDGET_S:
                reason = f"too slow: est. {est:.0f} s > {PEER_BUDGET_S:.0f} s budget"
        if reason:
            print(f"  {c:12s} skipped: {reason}", flush=True)
            rows.append({"contestant": c, "dataset": name, "skipped": reason})
            continue
        t0 = time.perf_counter()
        try:
            r = C.run_worker([__file__, "--worker", c, "--data", str(path), "--out", str(out_dir)]
                             + (["--quick"] if quick else []), timeout=3 * 3600)
        except Exception as exc:  # a peer failing is a result, not a crash of the benchmark
            print(f"  {c:12s} FAILED: {str(exc)[-600:]}", flush=True)
            rows.append({"contestant": c, "dataset": name, "skipped": f"failed: {str(exc)[-300:]}"})
            continue
        r["dataset"] = name
        r["wall_s"] = time.perf_counter() - t0
        rows.append(r)
        print(f"  {c:12s} setup {r['setup_s']:.2f} s  job {r['job_s']:.2f} s  peak {r['peak_mb']:.0f} MB"
              f"  (wall {r['wall_s']:.0f} s)", flush=True)
    for r in rows:
        if "skipped" in r:
            continue
        r.update(disagreement(d, out_dir, r["contestant"]))
        r.update(count_agreement(out_dir, r["contestant"], d.present))
    for r in rows:
        r["info"] = info
    return rows


LP_ROWS: list[dict] = []
RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


def _estimate(lp_row, d: Data):
    if not lp_row or "skipped" in lp_row:
        return None
    scale = d.n_nodes / lp_row["info"]["nodes"]
    return (lp_row["setup_s"] + lp_row["job_s"]) * scale


def table_rows(rows: list[dict]) -> list[dict]:
    """Flatten to printed rows: lifecircle gives nearest / job / full-reach rows."""
    out = []
    by = {(r["dataset"], r["contestant"]): r for r in rows}
    for r in rows:
        ds = r["dataset"]
        floor = by.get((ds, "scipy-floor"), {}).get("job_s")
        lc = by.get((ds, "lifecircle"), {})
        lc_total = (lc.get("setup_s", 0) + lc.get("job_s", 0)) if "job_s" in lc else None
        base = {"dataset": ds, "peak_mb": r.get("peak_mb"), "max_diff_m": r.get("max_diff_m")}
        if "skipped" in r:
            out.append({**base, "contestant": r["contestant"], "note": r["skipped"]})
            continue
        if r["contestant"] == "lifecircle":
            out.append({**base, "contestant": "lifecircle nearest", "setup_s": r["setup_s"],
                        "job_s": r["nearest_s"], "total_s": r["setup_s"] + r["nearest_s"],
                        "vs_floor": r["nearest_s"] / floor if floor else None})
            out.append({**base, "contestant": "lifecircle job (nearest+counts)", "setup_s": r["setup_s"],
                        "job_s": r["job_s"], "total_s": lc_total, "vs_lc": 1.0, "max_diff_m": None})
            out.append({**base, "contestant": "lifecircle full reach (all metrics)", "setup_s": r["setup_s"],
                        "job_s": r["full_reach_s"], "total_s": r["setup_s"] + r["full_reach_s"],
                        "max_diff_m": None})
            out.append({"dataset": ds, "contestant": "lifecircle what-if (add / remove 1)",
                        "job_s": r["whatif_add_ms"] / 1000.0, "total_s": r["whatif_remove_ms"] / 1000.0,
                        "note": f"add {r['whatif_add_ms']:.1f} ms, remove {r['whatif_remove_ms']:.1f} ms "
                                f"(category with {r['whatif_facilities']} facilities)"})
            continue
        total = r["setup_s"] + r["job_s"]
        row = {**base, "contestant": r["contestant"], "setup_s": r["setup_s"], "job_s": r["job_s"],
               "total_s": total}
        if r["contestant"].startswith("scipy") or r["contestant"] == "networkx":
            row["vs_floor"] = r["job_s"] / floor if floor else None
        if r["contestant"] in ("pandana", "cityseer", "cityseer-tuned", "networkx") and lc_total:
            row["vs_lc"] = total / lc_total
        out.append(row)
    return out


COLUMNS = [("contestant", "contestant"), ("dataset", "dataset"), ("setup_s", "set-up s"),
           ("job_s", "job s"), ("total_s", "total s"), ("vs_floor", "engine/scipy-floor"),
           ("vs_lc", "total/lifecircle"), ("peak_mb", "peak MB"), ("max_diff_m", "max Δ m vs exact"),
           ("note", "note")]


def targets(rows: list[dict]) -> dict:
    by = {(r["dataset"], r["contestant"]): r for r in rows}
    out = {}
    for ds in ("lp", "1m"):
        lc = by.get((ds, "lifecircle"))
        if not lc or "skipped" in lc:
            continue
        floor = by.get((ds, "scipy-floor"), {}).get("job_s")
        lc_total = lc["setup_s"] + lc["job_s"]
        t = {}
        if floor:
            ratio = lc["nearest_s"] / floor
            t["nearest_vs_floor"] = {"value": ratio, "target": "<= 1.5", "met": ratio <= 1.5}
        for peer, need in (("pandana", 15.0), ("cityseer", 100.0), ("cityseer-tuned", 100.0)):
            p = by.get((ds, peer))
            if p and "skipped" not in p:
                sp = (p["setup_s"] + p["job_s"]) / lc_total
                t[f"speedup_vs_{peer}"] = {"value": sp, "target": f">= {need:g}" + (" (more on 1m)" if ds == "1m" else ""),
                                           "met": sp >= need}
        if ds == "1m":
            full = lc["setup_s"] + lc["full_reach_s"]
            t["all_metrics_s"] = {"value": full, "target": "< 60", "met": full < 60}
            peak = lc.get("full_reach_peak_mb") or lc["peak_mb"]
            t["peak_memory_mb"] = {"value": peak, "target": "< 4096 (one all-metrics run)",
                                   "met": peak < 4096}
        if ds == "lp" and lc.get("whatif_add_ms") is not None:
            t["whatif_ms"] = {"value": max(lc["whatif_add_ms"], lc["whatif_remove_ms"]),
                              "target": "< 50", "met": max(lc["whatif_add_ms"], lc["whatif_remove_ms"]) < 50}
        exact = by.get((ds, "lifecircle"), {}).get("max_diff_m")
        if exact is not None:
            t["exact_vs_scipy_exact_m"] = {"value": exact, "target": "~0", "met": exact < 1e-3}
        out[ds] = t
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Las Palmas only, 1 repeat for slow peers")
    ap.add_argument("--datasets", default=None, help="comma list of lp,1m (default: lp,1m; quick: lp)")
    ap.add_argument("--contestants", default=",".join(WORKERS), help="comma list")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached dataset arrays")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/engine.json")
    ap.add_argument("--merge", action="store_true",
                    help="rerun only --contestants and keep the other rows of bench/results/engine.json "
                         "(each kept row records its run_date)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        d = Data(a.data)
        r = WORKERS[a.worker](d, a.quick, a.out)
        print(json.dumps(r, default=C._jsonable))
        return 0
    datasets = (a.datasets or ("lp" if a.quick else "lp,1m")).split(",")
    contestants = a.contestants.split(",")
    if a.rebuild:
        for ds in datasets:
            dataset(ds, rebuild=True)
    t0 = time.perf_counter()
    rows = []
    for ds in datasets:
        got = run_dataset(ds, a.quick, contestants)
        if ds == "lp":
            LP_ROWS.extend(got)
        rows.extend(got)
    if a.merge and RESULTS.exists():
        # keep the earlier run's rows for the contestants/datasets not rerun now
        fresh = {(r["dataset"], r["contestant"]) for r in rows}
        old = json.loads(RESULTS.read_text())
        kept = [r for r in old["rows"] if (r["dataset"], r["contestant"]) not in fresh]
        for r in kept:
            r.setdefault("run_date", old.get("date"))
        order = {(r["dataset"], r["contestant"]): i for i, r in enumerate(old["rows"])}
        rows = sorted(kept + rows, key=lambda r: order.get((r["dataset"], r["contestant"]), 1e9))
    trs = table_rows(rows)
    print("\n" + C.table(trs, COLUMNS))
    tg = targets(rows)
    print("\nTargets:")
    for ds, t in tg.items():
        for k, v in t.items():
            print(f"  {ds:3s} {k:26s} {C.fmt(v['value']):>10s}  target {v['target']:22s} "
                  f"{'MET' if v['met'] else 'NOT MET'}")
    print("\n" + C.markdown_table(trs, COLUMNS))
    print(f"\n(total wall {time.perf_counter() - t0:.0f} s; engine/scipy-floor: engine time only; "
          "total/lifecircle: set-up included, vs lifecircle nearest+counts)")
    if not a.no_write:
        info = C.machine_info("numpy", "scipy", "numba", "pandana", "cityseer", "networkx", "lifecircle")
        p = C.write_json("engine", {"quick": a.quick, "limit_min": LIMIT_MIN, "machine": info,
                                    "rows": rows, "table": trs, "targets": tg,
                                    "date": time.strftime("%Y-%m-%d %H:%M:%S")})
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
