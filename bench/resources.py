"""Benchmark: the idle-site inventory and the MCLP recommendation.

Targets (issue 5): Las Palmas full inventory (OSM sites + geometric corners + access) in under
30 s; MCLP for one category with k = 5 over all candidate sites in under 10 s.

    python bench/resources.py [--quick]

Prints a table of medians and writes bench/results/resources.json. The OSM read and the
analysis are set-up, timed once and reported apart (the inventory takes the OSMData).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, repeats_for, table, timed, write_json  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
CITIES = {
    "las_palmas": SHARED / "world" / "las_palmas_2023_ghsci.osm.pbf",
    "nanjing_xinjiekou": SHARED / "china" / "nanjing_xinjiekou_2021.osm.pbf",
}
CATEGORY = "elderly_daycare"


def run_city(name: str, path: Path, quick: bool) -> dict:
    from lifecircle.analyses import recommend as M
    from lifecircle.analyses import resources as R
    from lifecircle.io.sources import read_osm
    from lifecircle.pipeline import analyze

    t0 = time.perf_counter()
    osm = read_osm(path)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = analyze(osm)
    analyze_s = time.perf_counter() - t0
    inv = R.build_inventory(result, osm)  # warm-up (numba kernels, caches)
    reps = repeats_for(sum(inv.timings.values()), quick, slow_s=1.0)
    inv_s, inv_all, inv = timed(lambda: R.build_inventory(result, osm), repeats=reps)
    counts = {f"{s}:{t}": int(n) for (s, t), n in inv.counts().items()}
    rows = []
    out = {"city": name, "file": path.name, "homes": len(result.homes),
           "edges": int(result.network.n_edges), "read_s": read_s, "analyze_s": analyze_s,
           "inventory_s": inv_s, "inventory_runs_s": inv_all,
           "inventory_stages_s": inv.timings, "sites": len(inv.sites), "counts": counts}
    for method in ("exact", "greedy"):
        r = repeats_for(1.0, quick)
        sec, runs, tab = timed(lambda m=method: M.recommend(result, inv, CATEGORY, k=5, method=m),
                               repeats=r)
        out[f"mclp_{method}_s"] = sec
        out[f"mclp_{method}_covered"] = float(tab["cumulative"].iloc[-1]) if len(tab) else 0.0
        out[f"mclp_{method}_used"] = tab.attrs["method"]
        out["mclp_candidates"] = tab.attrs["candidates"]
        out["mclp_pairs"] = tab.attrs["pairs"]
        out["mclp_gap_population"] = tab.attrs["gap_population"]
    rows.append(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = ap.parse_args()
    results = []
    for name, path in CITIES.items():
        if not path.exists():
            print(f"skip {name}: {path} not found")
            continue
        results.append(run_city(name, path, args.quick))
    cols = [("city", "city"), ("homes", "homes"), ("sites", "sites"), ("read_s", "read s"),
            ("inventory_s", "inventory s"), ("mclp_exact_s", "MCLP exact s"),
            ("mclp_greedy_s", "MCLP greedy s"), ("mclp_exact_covered", "exact covered"),
            ("mclp_greedy_covered", "greedy covered")]
    print(table(results, cols))
    for r in results:
        r["inventory_vs_target"] = r["inventory_s"] / 30.0
        r["mclp_vs_target"] = r["mclp_exact_s"] / 10.0
        r["greedy_over_exact"] = (r["mclp_greedy_covered"] / r["mclp_exact_covered"]
                                  if r["mclp_exact_covered"] else None)
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in r["inventory_stages_s"].items())
        print(f"{r['city']}: stages {stages}; inventory/30 s target = {r['inventory_vs_target']:.2f}, "
              f"MCLP/10 s target = {r['mclp_vs_target']:.3f}, greedy/exact covered = "
              f"{r['greedy_over_exact'] if r['greedy_over_exact'] is None else round(r['greedy_over_exact'], 4)}")
        print("  counts: " + ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items())))
    if not args.no_write:
        path = write_json("resources", {"quick": args.quick, "category": CATEGORY, "k": 5,
                                        "machine": machine_info("lifecircle", "shapely", "pulp"),
                                        "results": results})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
