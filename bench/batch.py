"""Batch on Dask: Las Palmas split into a grid of districts, 1 worker vs 2 workers.

The extract is read once per run (a Dask task); every district task clips it and runs
``analyze`` + ``Result.save``. Clusters are started (and warmed: imports and numba's on-disk
kernel cache loaded) before the clock starts, so the times are the batch itself.

Reported per worker count (medians of repeats): end-to-end ``run()`` seconds, the district
phase after the extract is loaded, and each worker's resident memory (max over its tasks,
psutil in the worker). Speed-up = 1-worker / 2-worker time.

    python bench/batch.py [--quick] [--rows 5 --cols 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, table, write_json  # noqa: E402

PBF = HERE.parent.parent / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf"


def grid_districts(rows: int, cols: int, min_homes: int = 20, min_districts: int = 20):
    """Rectangles over the built-up area: the 2nd-98th percentile box of the homes, cut in a
    rows × cols grid (grown until at least ``min_districts`` cells hold ``min_homes`` homes)."""
    import numpy as np
    import shapely

    from lifecircle.core.homes import find_homes
    from lifecircle.io.sources import read_osm
    from lifecircle.settings import DEFAULTS

    data = read_osm(PBF)
    homes = find_homes(data.features, "EPSG:32628", DEFAULTS).to_crs("EPSG:4326")  # UTM 28N
    xy = shapely.get_coordinates(homes.geometry.to_numpy())
    (w, s), (e, n) = np.percentile(xy, 2, axis=0), np.percentile(xy, 98, axis=0)
    while True:
        cells = _cells(xy, w, s, e, n, rows, cols, min_homes)
        if len(cells) >= min_districts:
            return cells, rows, cols
        rows, cols = rows + 1, cols + 1


def _cells(xy, w, s, e, n, rows, cols, min_homes):
    import numpy as np

    xs, ys = np.linspace(w, e, cols + 1), np.linspace(s, n, rows + 1)
    cells = []
    for i in range(rows):
        for j in range(cols):
            box = (xs[j], ys[i], xs[j + 1], ys[i + 1])
            inside = ((xy[:, 0] >= box[0]) & (xy[:, 0] < box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] < box[3])).sum()
            if inside >= min_homes:
                cells.append((f"cell_{i + 1}_{j + 1}", [round(float(v), 6) for v in box], int(inside)))
    return cells


def write_config(folder: Path, cells) -> Path:
    lines = ['name = "Las Palmas grid"', 'out = "out"', 'profile = "default"', "",
             "[sources]", f'las_palmas = "{PBF}"', ""]
    for name, box, _ in cells:
        lines += ["[[districts]]", f'name = "{name}"', f"bbox = {box}", ""]
    path = folder / "las_palmas.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _warm():
    """Import everything a district task needs and load the numba kernels from the cache."""
    import os

    import lifecircle.render.maps  # noqa: F401
    from lifecircle.io.sources import embedded_sample, read_osm
    from lifecircle.pipeline import analyze

    analyze(read_osm(embedded_sample("helsinki")))
    return os.getpid()


def _rss():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def one_run(config: Path, workers: int):
    from dask.distributed import Client

    from lifecircle.batch import load_config, make_cluster, run

    cfg = load_config(config)
    shutil.rmtree(cfg.out_dir, ignore_errors=True)
    with make_cluster(workers, processes=True) as cluster, Client(cluster) as client:
        client.run(_warm)
        t0 = time.perf_counter()
        rep = run(cfg, client=client)
        total = time.perf_counter() - t0
        rss_now = client.run(_rss)
    return rep, total, rss_now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one run per worker count (default three)")
    ap.add_argument("--rows", type=int, default=5)
    ap.add_argument("--cols", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not PBF.exists():
        sys.exit(f"extract not found: {PBF}")
    repeats = 1 if args.quick else 3
    cells, rows, cols = grid_districts(args.rows, args.cols)
    print(f"{len(cells)} districts ({rows}x{cols} grid over the built-up area, "
          f"{sum(c[2] for c in cells):,} homes)")
    tmp = Path(tempfile.mkdtemp(prefix="lifecircle_batch_bench_"))
    runs = {1: [], 2: []}
    try:
        config = write_config(tmp, cells)
        for rep_i in range(repeats):
            for workers in (1, 2):
                rep, total, rss_now = one_run(config, workers)
                if len(rep.failures):
                    print(rep.failures[["district", "error"]].to_string())
                task_s = [d["seconds"] for d in rep.details.values() if d.get("status") == "done"]
                cpu_s = [d.get("cpu_s", float("nan")) for d in rep.details.values() if d.get("status") == "done"]
                stage = {}
                for d in rep.details.values():
                    for k, v in (d.get("timings") or {}).items():
                        stage.setdefault(k, []).append(v)
                runs[workers].append({
                    "total_s": total, "read_s": rep.timings.get("read_s"),
                    "after_read_s": rep.timings.get("after_read_s"),
                    "combine_s": rep.timings.get("combine_s"),
                    "ok": len(rep.table), "failed": len(rep.failures),
                    "task_s_median": statistics.median(task_s) if task_s else None,
                    "task_s_sum": sum(task_s),
                    "task_cpu_s_median": statistics.median(cpu_s) if cpu_s else None,
                    "task_cpu_s_sum": sum(cpu_s),
                    "stage_s_sum": {k: round(sum(v), 2) for k, v in stage.items()},
                    "worker_rss_mb_max": {k: round(v["rss_mb_max"]) for k, v in rep.workers.items()},
                    "worker_tasks": {k: v["tasks"] for k, v in rep.workers.items()},
                    "worker_rss_mb_end": {str(k): round(v) for k, v in rss_now.items()},
                })
                print(f"  run {rep_i + 1}, {workers} worker(s): {total:.1f} s "
                      f"(read {rep.timings.get('read_s', 0):.1f} s, districts after read "
                      f"{rep.timings.get('after_read_s', 0):.1f} s), {len(rep.table)} ok, "
                      f"{len(rep.failures)} failed, task wall/CPU median "
                      f"{statistics.median(task_s):.2f}/{statistics.median(cpu_s):.2f} s, worker RSS max "
                      f"{', '.join(f'{v:.0f}' for v in runs[workers][-1]['worker_rss_mb_max'].values())} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(w, key):
        vals = [r[key] for r in runs[w] if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    rows = []
    for w in (1, 2):
        rss = [v for r in runs[w] for v in r["worker_rss_mb_max"].values()]
        rows.append({"workers": str(w), "total": med(w, "total_s"), "read": med(w, "read_s"),
                     "after": med(w, "after_read_s"), "task": med(w, "task_s_median"),
                     "cpu": med(w, "task_cpu_s_median"),
                     "rss": max(rss) if rss else None})
    su_total = rows[0]["total"] / rows[1]["total"]
    su_after = rows[0]["after"] / rows[1]["after"]
    rows.append({"workers": "speed-up 1→2", "total": su_total, "after": su_after})
    print()
    print(table(rows, [("workers", "workers"), ("total", "end-to-end s"), ("read", "read extract s"),
                       ("after", "districts after read s"), ("task", "median task s"),
                       ("cpu", "median task CPU s"),
                       ("rss", "max RSS per worker MB")]))
    print(f"\nspeed-up 2 vs 1 worker: end-to-end {su_total:.2f}x, district phase {su_after:.2f}x "
          f"(target 1.7x); {len(cells)} districts")
    try:
        import os

        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    out = {"benchmark": "batch", "loadavg_at_end": load, "quick": args.quick, "extract": PBF.name, "districts": len(cells),
           "grid": [rows, cols], "homes": sum(c[2] for c in cells), "repeats": repeats,
           "median": {str(r["workers"]): r for r in rows[:2]},
           "speedup_end_to_end": su_total, "speedup_district_phase": su_after,
           "runs": {str(k): v for k, v in runs.items()}, "machine": machine_info("dask", "distributed", "numba")}
    if not args.no_write:
        print(f"wrote {write_json('batch', out)}")


if __name__ == "__main__":
    main()
