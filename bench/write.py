"""The write stage of ``analyze`` (``Result.save``: GeoPackage, tables, network, map.html).

The Result is built once (``analyze``), then saved ``--repeats`` times in each mode, the modes
alternating so that both meet the same load: ``two processes`` (the default: a forked child
writes the GeoPackage and the small files while this process writes the OSM features and draws
the map) and ``one process`` (``lifecircle.io.outputs.FORK_GPKG`` off: everything in turn, as
before). Reported: medians of wall seconds, CPU seconds of this process and of the child, and
the peak resident memory of the child (pages shared with this process counted). Both modes
include the other changes to the write (the background drawn in a thread, the frozen heap …): the
ratio is what the second process adds.

    .venv/bin/python bench/write.py --quick            # Las Palmas
    .venv/bin/python bench/write.py --tiles 8          # the 8-tile synthetic city (bench/synthcity.py)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, table, write_json  # noqa: E402

import lifecircle.io.outputs as O  # noqa: E402
from lifecircle.pipeline import analyze  # noqa: E402

LP = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf"


def _save(result, out: Path) -> dict:
    s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result.save(out)
    wall = time.perf_counter() - t0
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out)
    return {"wall_s": wall,
            "cpu_s": s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime,
            "child_cpu_s": c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime,
            # the largest child so far (ru_maxrss of children never goes down): only with one
            "child_peak_mb": c1.ru_maxrss / 1024 if c1.ru_utime > c0.ru_utime else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tiles", type=int, default=0, help="the tiled city of this many tiles instead of Las Palmas")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.tiles:
        import synthcity

        source, name = synthcity.build(args.tiles), f"synthcity {args.tiles} tiles"
    else:
        source, name = LP, "Las Palmas"
    t0 = time.perf_counter()
    result = analyze(source)
    print(f"{name}: analysed in {time.perf_counter() - t0:.1f} s ({len(result.homes):,} homes)", flush=True)
    repeats = 3 if args.quick else args.repeats
    runs = {"two processes": [], "one process": []}
    fork = O.FORK_GPKG
    with tempfile.TemporaryDirectory(prefix="lifecircle-write-") as tmp:
        result.save(Path(tmp) / "warm")          # imports (folium, openpyxl) out of the timings
        for _ in range(repeats):
            for mode in runs:
                O.FORK_GPKG = fork and mode == "two processes"
                runs[mode].append(_save(result, Path(tmp) / "out"))
    O.FORK_GPKG = fork
    rows = []
    for mode, rs in runs.items():
        rows.append({"mode": mode, **{k: statistics.median(r[k] for r in rs) if rs[0][k] is not None else None
                                      for k in rs[0]}})
    one = rows[1]["wall_s"]
    for r in rows:
        r["speed-up"] = one / r["wall_s"]
    print(table(rows, [("mode", "mode"), ("wall_s", "wall s"), ("cpu_s", "cpu s"), ("child_cpu_s", "child cpu s"),
                       ("child_peak_mb", "child peak RSS MB"), ("speed-up", "× one process")]))
    if not args.no_write:
        print(write_json("write" + (f"_{args.tiles}" if args.tiles else ""),
                         {"dataset": name, "homes": len(result.homes), "repeats": repeats, "rows": rows,
                          "runs": runs, "loadavg_1min_at_end": os.getloadavg()[0],
                          **machine_info("geopandas", "pyogrio", "folium")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
