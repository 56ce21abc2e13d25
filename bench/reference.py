"""Agreement with an independent walk: lifecircle's (home, category) minutes against a
reference built from pyrosm's own walking network, its largest connected component found
with networkx, the same points attached to its nearest edge, and scipy Dijkstra.

The reference shares nothing with lifecircle's network code: pyrosm's ``walking`` filter
(not lifecircle's walk rules) — or, as ``same-ways``, the ways lifecircle's reader keeps
(``OSMData.streets``: its walk rules, none of its network building) — no contraction, no pruning rule of ours (networkx's largest
weakly connected component, as osmnx's ``largest_component``), no plazas, every way walkable
both ways, and its own snapping and partial-edge arithmetic (super-source Dijkstra). It takes
lifecircle's homes (their points) and facilities (their geometries; polygons entered at the
point nearest the reference's nearest edge) so that the comparison is about the walk.

For each extract it runs ``analyze`` three ways: as shipped (connected part + plazas),
without the plazas, and without pruning (every piece kept: the former behaviour); the last
two and "shipped vs same-ways" are compared with the same-ways reference, so the differences
are lifecircle's network building, not the choice of walkable ways. It prints
the share of (home, point category) pairs within 0.1 min of the reference (both beyond 30 min or
unreached counts as agreement), the homes lifecircle leaves unreached where the reference
reaches them within 30 min, and what pruning moved (``Result.network_report``).

    python bench/reference.py            # Boston, Liechtenstein, Las Palmas, Andorra
    python bench/reference.py --quick    # Boston and Liechtenstein
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import networkx as nx
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's lifecircle
import _common as C  # noqa: E402

import lifecircle  # noqa: E402
from lifecircle import columns as col  # noqa: E402
from lifecircle.core import network as N  # noqa: E402

OSM = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm" / "world"   # ../shared beside the repo
CITIES = {
    "boston": "boston_downtown_valhalla_bench.osm.pbf",
    "liechtenstein": "liechtenstein_valhalla.osm.pbf",
    "las_palmas": "las_palmas_2023_ghsci.osm.pbf",
    "andorra": "andorra_valhalla_bench.osm.pbf",
}
TOL_MIN = 0.1


class Reference:
    """pyrosm walking network → largest component → projected edges; minutes by scipy."""

    def __init__(self, path: Path, crs, speed_mps: float, max_snap_m: float, ways: str = "pyrosm"):
        if ways == "pyrosm":
            import pyrosm

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _nodes, edges = pyrosm.OSM(str(path)).get_network(network_type="walking", nodes=True)
        else:   # the ways lifecircle's reader keeps (its walk rules), nothing else of it
            from lifecircle.io.sources import read_osm

            edges = read_osm(path, layers=("streets",)).streets
        edges = edges[edges.geometry.notna() & (edges["u"] != edges["v"])]
        g = nx.Graph()
        g.add_edges_from(zip(edges["u"].to_numpy(), edges["v"].to_numpy()))
        proj = edges.to_crs(crs)
        length = proj.geometry.length.to_numpy()
        best, best_len = None, -1.0
        by_node = dict(zip(zip(edges["u"], edges["v"]), length))
        for comp in nx.connected_components(g):
            sub = g.subgraph(comp)
            total = sum(by_node.get((a, b), by_node.get((b, a), 0.0)) for a, b in sub.edges())
            if total > best_len:
                best, best_len = comp, total
        keep = edges["u"].isin(best).to_numpy()
        proj = proj[keep]
        ids, inv = np.unique(np.r_[proj["u"].to_numpy(), proj["v"].to_numpy()], return_inverse=True)
        m = len(proj)
        self.u, self.v = inv[:m], inv[m:]
        self.geom = proj.geometry.to_numpy()
        self.length = shapely.length(self.geom)
        self.n = len(ids)
        self.tree = shapely.STRtree(self.geom)
        self.speed = speed_mps
        self.max_snap = max_snap_m
        w = np.r_[self.length, self.length]
        a, b = np.r_[self.u, self.v], np.r_[self.v, self.u]
        self.n_edges = m
        self._arcs = (a, b, w)

    def snap(self, pts):
        pts = np.asarray(pts, dtype=object)
        edge = np.full(len(pts), -1)
        leg = np.full(len(pts), np.nan)
        off = np.zeros(len(pts))
        (pi, ei), d = self.tree.query_nearest(pts, max_distance=self.max_snap, return_distance=True,
                                             all_matches=False)
        edge[pi], leg[pi] = ei, d
        off[pi] = shapely.line_locate_point(self.geom[ei], pts[pi])
        return edge, off, leg

    def entry(self, geoms):
        geoms = np.asarray(geoms, dtype=object)
        out = geoms.copy()
        area = shapely.get_type_id(geoms) != 0
        if area.any():
            near = self.tree.nearest(geoms[area])
            out[area] = shapely.get_point(shapely.shortest_line(geoms[area], self.geom[near]), 0)
        return out

    def minutes(self, home, fac, limit_min: float):
        """Minutes from each home (edge, off, leg) to its nearest facility (same), or NaN."""
        he, ho, hl = home
        fe, fo, fl = fac
        ok = fe >= 0
        fe, fo, fl = fe[ok], fo[ok], fl[ok]
        out = np.full(len(he), np.inf)
        if len(fe) == 0:
            return np.full(len(he), np.nan)
        s = self.n
        a, b, w = self._arcs
        a = np.r_[a, np.full(2 * len(fe), s)]
        b = np.r_[b, self.u[fe], self.v[fe]]
        w = np.r_[w, fl + fo, fl + self.length[fe] - fo]
        graph = _min_csr(a, b, w, s + 1)   # two-way arcs: distances from S are times to S
        limit = limit_min * 60 * self.speed
        dist = dijkstra(graph, indices=s, limit=limit + 1.0)
        reach = he >= 0
        e = he[reach]
        via_u = ho[reach] + dist[self.u[e]]
        via_v = self.length[e] - ho[reach] + dist[self.v[e]]
        out[reach] = hl[reach] + np.minimum(via_u, via_v)
        # a facility on the home's own edge: walk along it
        on = {}
        for k, ed in enumerate(fe):
            on.setdefault(int(ed), []).append(k)
        for j in np.flatnonzero(reach):
            ks = on.get(int(he[j]))
            if ks:
                same = hl[j] + np.min(np.abs(ho[j] - fo[ks]) + fl[ks])
                out[j] = min(out[j], same)
        mins = out / self.speed / 60.0
        mins[~np.isfinite(mins) | (mins > limit_min)] = np.nan
        return mins


def _min_csr(a, b, w, n):
    """CSR with the cheapest of parallel arcs (csr_matrix would add them up)."""
    key = a.astype(np.int64) * n + b
    order = np.lexsort((w, key))
    key, w = key[order], w[order]
    first = np.r_[True, key[1:] != key[:-1]]
    key, w = key[first], np.maximum(w[first], 1e-9)   # explicit zeros would vanish
    return csr_matrix((w, (key // n, key % n)), shape=(n, n))


def compare(result, ref: Reference):
    cats = [c.id for c in result.profile.categories]
    cat_of = result.facilities[col.CATEGORY].to_numpy()
    home = ref.snap(result.homes.geometry.to_numpy())
    fac_pts = ref.entry(result.facilities.geometry.to_numpy())
    fac = ref.snap(fac_pts)
    limit = result.settings.max_minutes
    pairs = agree = shorter = longer = 0
    unreached_homes = set()
    worst = []
    point = shapely.get_type_id(result.facilities.geometry.to_numpy()) == 0
    for c in cats:
        idx = np.flatnonzero(cat_of == c)
        if len(idx) == 0 or not point[idx].all():
            continue   # point categories only: an area crossed by several streets is entered
            # wherever each network's nearest-edge query lands first (a tie, not a walk)
        want = ref.minutes(home, tuple(x[idx] for x in fac), limit)
        got = result.homes[col.time(c)].to_numpy(float)
        both_nan = np.isnan(want) & np.isnan(got)
        close = np.abs(want - got) <= TOL_MIN
        pairs += len(got)
        agree += int((both_nan | close).sum())
        bad = ~(both_nan | close)
        shorter += int((bad & (np.nan_to_num(got, nan=np.inf) < np.nan_to_num(want, nan=np.inf))).sum())
        longer += int((bad & (np.nan_to_num(got, nan=np.inf) > np.nan_to_num(want, nan=np.inf))).sum())
        miss = np.isnan(got) & ~np.isnan(want)
        unreached_homes.update(np.flatnonzero(miss).tolist())
        diff = np.where(both_nan, 0.0, np.abs(np.nan_to_num(want, nan=1e9) - np.nan_to_num(got, nan=1e9)))
        worst.append((c, int((diff > TOL_MIN).sum())))
    worst.sort(key=lambda t: -t[1])
    return {"pairs": pairs, "agree": agree, "share": agree / max(pairs, 1),
            "lifecircle_shorter": shorter, "lifecircle_longer": longer,
            "homes_unreached_but_reference_reaches": len(unreached_homes),
            "worst_categories": worst[:5]}


def run(city: str, path: Path) -> dict:
    out = {"city": city}
    t0 = time.perf_counter()
    shipped = lifecircle.analyze(path)
    out["analyze_s"] = round(time.perf_counter() - t0, 1)
    out["network_report"] = shipped.network_report
    st = shipped.settings
    refs = {w: Reference(path, shipped.crs, st.walk_speed_mps, st.max_snap_m, ways=w)
            for w in ("same-ways", "pyrosm")}
    out["reference_edges"] = {w: r.n_edges for w, r in refs.items()}
    for w, ref in refs.items():
        out[f"shipped vs {w}"] = compare(shipped, ref)
    ref = refs["same-ways"]
    real_build = N.build_network

    def no_plazas(*a, **k):
        k["areas"] = None
        return real_build(*a, **k)

    with mock.patch("lifecircle.pipeline.build_network", no_plazas):
        bare = lifecircle.analyze(path)
        out["no_plazas"] = compare(bare, ref)
    # what plazas cost: network size and the engine stage (one run each: indicative only)
    out["network_size"] = {k: {"nodes": r.network.n_nodes, "edges": r.network.n_edges,
                               "engine_s": round(r.timings.get("engine", float("nan")), 2),
                               "network_s": round(r.timings.get("network", float("nan")), 2)}
                           for k, r in (("shipped", shipped), ("no_plazas", bare))}
    unpruned = lifecircle.analyze(path, min_component_share=0.0, min_component_m=0.0)
    out["unpruned"] = compare(unpruned, ref)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Boston and Liechtenstein only")
    ap.add_argument("--city", action="append", choices=list(CITIES), help="only this city (repeatable)")
    args = ap.parse_args(argv)
    cities = args.city or (["boston", "liechtenstein"] if args.quick else list(CITIES))
    rows = []
    for city in cities:
        path = OSM / CITIES[city]
        if not path.exists():
            print(f"{city}: {path} not found, skipped")
            continue
        r = run(city, path)
        rows.append(r)
        rep = r["network_report"]
        print(f"\n{city}: left out {rep.get('components_dropped')} pieces "
              f"({rep.get('segments_dropped')} segments, {rep.get('length_dropped_m')} m); "
              f"homes re-attached {rep.get('homes_reattached')}, stranded {rep.get('homes_stranded')}; "
              f"facilities re-attached {rep.get('facilities_reattached')}, "
              f"stranded {rep.get('facilities_stranded')}")
        print(f"  network (nodes/edges, network and engine stage s): {r['network_size']}")
        for k in ("shipped vs pyrosm", "shipped vs same-ways", "no_plazas", "unpruned"):
            c = r[k]
            print(f"  {k:20s} agree {100 * c['share']:6.2f}% of {c['pairs']:,} pairs; homes unreached "
                  f"where the reference reaches: {c['homes_unreached_but_reference_reaches']}; "
                  f"shorter/longer: {c['lifecircle_shorter']}/{c['lifecircle_longer']}; "
                  f"most disagreements: {c['worst_categories'][:3]}")
    C.write_json("reference", {"tolerance_min": TOL_MIN, "cities": rows})


if __name__ == "__main__":
    main()
