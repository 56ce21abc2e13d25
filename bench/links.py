"""Benchmark: exact scoring of candidate walking links (issue 17).

Target: 1,000 candidates on Las Palmas (from ``--auto``, topped up with random short links)
scored in ≤ 10 s, each exact. Exactness is checked here on a sample of candidates against a
full re-analysis with the link added (the edges split, the engine re-run).

    python bench/links.py [--quick]

Prints a table and writes bench/results/links.json. The OSM read and the analysis are set-up,
timed once and reported apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, table, timed, write_json  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
CITY = SHARED / "world" / "las_palmas_2023_ghsci.osm.pbf"
N_CANDIDATES = 1000


def random_links(net, n: int, max_m: float, rng) -> list:
    """Short straight links between a random point of a random edge and a random point of
    another edge within ``max_m``."""
    import shapely

    out = []
    while len(out) < n:
        e = int(rng.integers(0, net.n_edges))
        p = shapely.line_interpolate_point(net.edge_geom[e], rng.random(), normalized=True)
        near = net.tree.query(p, predicate="dwithin", distance=max_m)
        near = near[near != e]
        if len(near) == 0:
            continue
        f = int(rng.choice(near))
        q = shapely.line_interpolate_point(net.edge_geom[f], rng.random(), normalized=True)
        if 1.0 < p.distance(q) <= max_m:
            out.append(shapely.LineString([p, q]))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if not CITY.exists():
        print(f"skipped: {CITY} not found")
        return
    import geopandas as gpd
    import pandas as pd

    from lifecircle import columns as col
    from lifecircle.analyses.links import auto_candidates, greedy, prepare, scorer_for
    from lifecircle.core.engine import AccessEngine
    from lifecircle.core.network import split_and_link
    from lifecircle.pipeline import analyze

    t0 = time.perf_counter()
    result = analyze(str(CITY))
    analyze_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    auto = auto_candidates(result)
    auto_s = time.perf_counter() - t0
    rng = np.random.default_rng(17)
    extra = random_links(result.network, max(0, N_CANDIDATES - len(auto)), 150.0, rng)
    rand = gpd.GeoDataFrame({"name": [f"random {i + 1}" for i in range(len(extra))],
                             "reason": "random short link", "source": "bench"},
                            geometry=extra, crs=result.crs)
    cands = gpd.GeoDataFrame(pd.concat([auto, rand], ignore_index=True), geometry="geometry",
                             crs=result.crs)
    prep = prepare(result.network, cands)
    n_ok = len(prep.ok)
    # warm-up: numba kernels compiled or loaded from the cache
    sc = scorer_for(result)
    sc.score(prep.end_edge[:2], prep.end_off[:2], prep.link_m[:1])
    reps = 3 if args.quick else 5
    base_s, base_all, sc = timed(lambda: scorer_for(result), repeats=reps)
    score_s, score_all, s = timed(lambda: sc.score(prep.end_edge, prep.end_off, prep.link_m),
                                  repeats=reps)
    prep_s, _, _ = timed(lambda: prepare(result.network, cands), repeats=1)
    # exactness: per-home times of sampled candidates against a full re-analysis
    n_check = 4 if args.quick else 12
    order = np.argsort(-s.residents)
    sample = list(order[: n_check // 2]) + list(rng.choice(n_ok, n_check - n_check // 2, replace=False))
    worst = 0.0
    changed = 0
    full_s = []
    cat_of = result.facilities[col.CATEGORY].to_numpy()
    for j in sample:
        ee, oo, lm = prep.end_edge[2 * j:2 * j + 2], prep.end_off[2 * j:2 * j + 2], prep.link_m[j:j + 1]
        _, new = sc.score(ee, oo, lm, new_times=True)
        t1 = time.perf_counter()
        net2, remap = split_and_link(result.network, ee, oo, lm)
        hs, fs = result.home_snap, result.facility_snap
        hs2 = hs.moved(remap, "left")
        fs2 = fs.moved(remap, "right")
        eng = AccessEngine(net2, hs2, result.homes[col.POPULATION].to_numpy(float), result.settings)
        full = eng.nearest([fs2.take(np.flatnonzero(cat_of == c.id)) for c in result.profile.categories]) * 60
        full_s.append(time.perf_counter() - t1)
        full = np.where(np.isfinite(full), full, np.inf)
        both = np.isfinite(full) & np.isfinite(new)
        if (np.isfinite(full) != np.isfinite(new)).any():
            worst = float("inf")
        elif both.any():
            worst = max(worst, float(np.abs(full[both] - new[both]).max()))
        changed += int((new < sc.old).sum())
    greedy_s, _, chosen = timed(lambda: greedy(result, prep, 5), repeats=1)
    row = {"city": "las_palmas", "homes": len(result.homes), "edges": int(result.network.n_edges),
           "nodes": int(result.network.n_nodes), "categories": len(result.profile.categories),
           "candidates": len(cands), "auto": len(auto), "random": len(rand), "scored": n_ok,
           "analyze_s": analyze_s, "auto_s": auto_s, "prepare_s": prep_s, "base_s": base_s,
           "score_s": score_s, "total_s": base_s + score_s + prep_s,
           "per_candidate_ms": 1000 * score_s / max(n_ok, 1),
           "full_reanalysis_s_per_link": float(np.median(full_s)),
           "checked": len(sample), "max_abs_diff_s": worst, "home_category_pairs_changed": changed,
           "greedy5_s": greedy_s, "greedy_residents": chosen["cumulative_residents"].tolist()
           if len(chosen) else [], "target_s": 10.0}
    print(table([row], [("candidates", "candidates"), ("scored", "scored"),
                        ("base_s", "base s"), ("score_s", "score s"), ("total_s", "total s"),
                        ("per_candidate_ms", "ms/cand"),
                        ("full_reanalysis_s_per_link", "full re-run s/link"),
                        ("max_abs_diff_s", "max |diff| s"), ("greedy5_s", "greedy k=5 s")]))
    write_json("links", {"machine": machine_info("numba", "numpy", "shapely"), "quick": args.quick,
                         "results": [row], "runs": {"base_s": base_all, "score_s": score_all}})


if __name__ == "__main__":
    main()
