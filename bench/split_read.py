"""Reading on two cores (lifecircle.splitread) against one process: analyze wall and CPU.

One process per file, warmed up first (Las Palmas: numba kernels loaded), then ``--runs``
pairs of analyses, the two modes alternating (the machine's load drifts); CPU counts the forked
children too (RUSAGE_CHILDREN).

    python bench/split_read.py [--runs 2] [--tiles 8]     # Las Palmas, and the tiled city if cached
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LP = ROOT / ".." / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf"


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _worker(path: str, runs: int) -> dict:
    sys.path.insert(0, str(ROOT))         # this checkout's lifecircle
    from lifecircle import splitread
    from lifecircle.pipeline import analyze

    analyze(str(LP))                      # warm: kernels loaded, imports done
    out: dict = {"one": [], "split": []}
    for _ in range(runs):                 # the two modes alternate: compared in the same minute
        for mode in ("one", "split"):
            splitread.FORK_READ = mode == "split"
            t, c = time.perf_counter(), _cpu()
            r = analyze(path)
            wall, cpu = time.perf_counter() - t, _cpu() - c
            st = r.timings
            out[mode].append({"wall_s": wall, "cpu_s": cpu, "read+network_s": st["read"] + st["network"],
                              "stages": {k: round(v, 3) for k, v in st.items()}})
            del r
    return {mode: {"wall_s": statistics.median(x["wall_s"] for x in got),
                   "cpu_s": statistics.median(x["cpu_s"] for x in got),
                   "read+network_s": statistics.median(x["read+network_s"] for x in got), "runs": got}
            for mode, got in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--tiles", type=int, default=8, help="the cached synthetic city (0: none)")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(_worker(a.worker[0], int(a.worker[1]))))
        return
    files = [LP]
    cache = Path(os.environ.get("LIFECIRCLE_BENCH_CACHE", Path(tempfile.gettempdir()) / "lifecircle_bench"))
    city = cache / f"synthcity_v1_{a.tiles}.osm.pbf"          # bench/synthcity.py's cache
    if a.tiles and city.exists():
        files.append(city)
    for f in files:
        res = json.loads(subprocess.run([sys.executable, __file__, "--worker", str(f), str(a.runs)],
                                        check=True, capture_output=True, text=True, cwd=ROOT).stdout)
        for mode, got in res.items():
            print(f"{f.name:32s} {mode:5s} median wall {got['wall_s']:6.2f} s  cpu {got['cpu_s']:6.2f} s  "
                  f"read+network {got['read+network_s']:6.2f} s", flush=True)
            for run in got["runs"]:
                print(f"    wall {run['wall_s']:6.2f}  cpu {run['cpu_s']:6.2f}  {run['stages']}", flush=True)


if __name__ == "__main__":
    main()
