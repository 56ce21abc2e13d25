"""Isochrones, service areas and the map on Las Palmas, side by side with the osmnx recipe.

    .venv/bin/python bench/isochrones.py [--quick] [--origins N]

Rows: lifecircle 15-minute isochrones (distance-field method, ms per origin, amortised over N
origins), the same with ``method="buffers"`` (GEOS union of merged, buffered pieces), the exact
edge-buffer reference (union of per-edge 25 m buffers, quad_segs=16) and the osmnx recipe
(``nx.ego_graph`` by travel time, 25 m buffers of nodes and edges, union), each on a subset;
IoU against the reference and the share of reachable edges inside; service areas for every
category and dimension of the default profile at 15 minutes (the target: < 5 s) and, in the
full run, at 5/10/15 minutes with their IoU against exact GEOS buffers; offline map HTML size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, table, write_json  # noqa: E402

PBF = Path(__file__).resolve().parents[2] / "shared/data/osm/world/las_palmas_2023_ghsci.osm.pbf"
CACHE = Path(os.environ.get("LIFECIRCLE_BENCH_CACHE", "/tmp/lifecircle_bench")) / "iso_lp"
BUF = 25.0


def load():
    from lifecircle.pipeline import analyze, load_result

    if not (CACHE / "meta.json").exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        analyze(str(PBF)).save(CACHE, map_html=False)
    return load_result(CACHE)


def reference(net, pts, minutes):
    """Exact edge-buffer reference on the same reached pieces (no merge, no simplify)."""
    from lifecircle.analyses import isochrones as I

    snap = I.snap_points(net, pts, 300.0)
    from lifecircle.core import _kernels as K
    from lifecircle.core.engine import facility_seeds_forward

    seeds = facility_seeds_forward(net, snap)
    csr = net.forward
    n = len(snap)
    ptr = np.zeros(n + 1, np.int64)
    node = np.empty(4 * net.n_nodes * max(1, n), np.int32)
    cost = np.empty(len(node))
    K.single_source_many(csr.indptr, csr.indices, csr.weights, seeds.seed_ptr, seeds.seed_node,
                         seeds.seed_cost, 60.0 * minutes, ptr, node, cost)
    node, cost = node[:ptr[-1]].astype(np.int64), cost[:ptr[-1]]
    group = np.repeat(np.arange(n), np.diff(ptr))
    g, lines = I.reached_pieces(net, group, node, cost, 60.0 * minutes, own_edge=snap,
                                own_group=np.arange(n))
    polys, full_edges = [], []
    for i in range(n):
        L = lines[g == i]
        polys.append(shapely.union_all(shapely.buffer(L, BUF, quad_segs=16)))
        full_edges.append(L)
    return polys, full_edges


def osmnx_recipe(G, net, pts, minutes):
    import networkx as nx

    from lifecircle.core.snapping import snap_points

    snap = snap_points(net, pts, 300.0)
    out = []
    for i in range(len(pts)):
        centre = int(net.edge_u[snap.edge[i]])
        sub = nx.ego_graph(G, centre, radius=60.0 * minutes, distance="travel_time")
        node_pts = shapely.points(net.node_x[list(sub.nodes)], net.node_y[list(sub.nodes)])
        lines = [shapely.LineString([(net.node_x[u], net.node_y[u]), (net.node_x[v], net.node_y[v])])
                 for u, v in sub.edges()]
        n_buf = shapely.union_all(shapely.buffer(node_pts, BUF))
        e_buf = [shapely.buffer(ln, BUF) for ln in lines]
        out.append(shapely.union_all([n_buf, *e_buf]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--origins", type=int, default=None)
    args = ap.parse_args()
    n = args.origins or (100 if args.quick else 1000)
    n_ref = 5 if args.quick else 20
    n_osmnx = 3 if args.quick else 10
    from lifecircle.analyses import isochrones as I

    res = load()
    net = res.network
    rng = np.random.default_rng(42)
    homes = res.homes[res.homes["reachable"]]
    pts = homes.geometry.to_numpy()[rng.choice(len(homes), n, replace=n > len(homes))]
    I.isochrones(res, pts[:4], [15])  # warm up numba and caches
    rows, data = [], {"origins": n, "n_reference": n_ref, "n_osmnx": n_osmnx}

    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    iso = I.isochrones(res, pts, [15])
    ms = 1000 * (time.perf_counter() - t) / n
    rows.append({"method": f"lifecircle ({n} origins)", "ms": ms})
    data["lifecircle_ms_per_origin"] = ms

    t = time.perf_counter()
    I.isochrones(res, pts[:n_ref], [15], method="buffers")
    buf_ms = 1000 * (time.perf_counter() - t) / n_ref
    rows.append({"method": f"lifecircle method='buffers' ({n_ref})", "ms": buf_ms})
    data["buffers_method_ms_per_origin"] = buf_ms

    t = time.perf_counter()
    ref, ref_lines = reference(net, pts[:n_ref], 15)
    ref_ms = 1000 * (time.perf_counter() - t) / n_ref
    rows.append({"method": f"exact edge buffers q16 ({n_ref})", "ms": ref_ms})
    data["reference_ms_per_origin"] = ref_ms
    mine = iso.geometry.to_numpy()[:n_ref]
    ious = [shapely.area(shapely.intersection(a, b)) / shapely.area(shapely.union(a, b))
            for a, b in zip(mine, ref)]
    contained = [float(shapely.covers(shapely.buffer(a, 0.5), L).mean()) if len(L) else 1.0
                 for a, L in zip(mine, ref_lines)]
    data["iou_min"], data["iou_median"] = float(np.min(ious)), float(np.median(ious))
    data["edges_contained_min"] = float(np.min(contained))
    rows[0].update({"iou": float(np.median(ious)), "contained": float(np.min(contained))})

    G = net.to_networkx()
    t = time.perf_counter()
    ox = osmnx_recipe(G, net, pts[:n_osmnx], 15)
    ox_ms = 1000 * (time.perf_counter() - t) / n_osmnx
    ox_iou = [shapely.area(shapely.intersection(a, b)) / shapely.area(shapely.union(a, b))
              for a, b in zip(ox, ref[:n_osmnx])]
    rows.append({"method": f"osmnx recipe ego_graph ({n_osmnx})", "ms": ox_ms,
                 "iou": float(np.median(ox_iou))})
    data["osmnx_ms_per_origin"] = ox_ms
    for r in rows:
        r["vs_osmnx"] = ox_ms / r["ms"]

    t = time.perf_counter()
    sa = I.service_areas(res, [15])
    data["service_areas_s"] = time.perf_counter() - t
    data["service_areas_rows"] = len(sa)
    data["service_area_minutes"] = [15]
    if not args.quick:
        t = time.perf_counter()
        sa3 = I.service_areas(res, [5, 10, 15])
        data["service_areas_5_10_15_s"] = time.perf_counter() - t
        t = time.perf_counter()
        exact = I.service_areas(res, [15], method="buffers", quad_segs=16, simplify_m=0.0,
                                dimensions=False)
        data["service_areas_buffers_exact_s"] = time.perf_counter() - t
        a = sa[sa.level == "category"].geometry.to_numpy()
        b = exact.geometry.to_numpy()
        ok = ~shapely.is_empty(b)
        sa_iou = shapely.area(shapely.intersection(a[ok], b[ok])) / \
            shapely.area(shapely.union(a[ok], b[ok]))
        data["service_areas_iou_min"] = float(sa_iou.min())
        data["service_areas_iou_median"] = float(np.median(sa_iou))
        data["service_areas_valid"] = bool(shapely.is_valid(sa3.geometry.to_numpy()).all())

    from lifecircle.render.maps import result_map, save_map

    t = time.perf_counter()
    m = result_map(res, basemap="osm", service_areas=sa, isochrones=iso.iloc[:3])
    path = Path("/tmp") / "lifecircle_bench_lp_map.html"
    save_map(m, path, offline=True)
    data["map_s"] = time.perf_counter() - t
    data["map_offline_mb"] = path.stat().st_size / 1e6

    print(table(rows, [("method", "15-min isochrones"), ("ms", "ms/origin"), ("iou", "IoU vs exact"),
                       ("contained", "edges inside"), ("vs_osmnx", "x osmnx")]))
    print(f"\nservice areas ({len(sa)} polygons, 15 minutes): {data['service_areas_s']:.1f} s")
    if not args.quick:
        print(f"service areas at 5/10/15 minutes: {data['service_areas_5_10_15_s']:.1f} s; "
              f"IoU vs exact GEOS buffers min {data['service_areas_iou_min']:.4f} "
              f"median {data['service_areas_iou_median']:.4f} "
              f"(exact: {data['service_areas_buffers_exact_s']:.1f} s)")
    print(f"offline map: {data['map_offline_mb']:.1f} MB in {data['map_s']:.1f} s (budget 15 MB)")
    data["loadavg_1min_before_isochrones"] = load_before
    data["machine"] = machine_info("shapely", "numba", "folium", "folium-offline", "networkx")
    data["loadavg_1min_at_end"] = os.getloadavg()[0]
    data["quick"] = args.quick
    print("wrote", write_json("isochrones", data))


if __name__ == "__main__":
    main()
