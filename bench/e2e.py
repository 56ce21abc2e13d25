"""End-to-end benchmark: ``lifecircle analyze`` against what a user would do instead.

Contestants (each run is its own process, so its wall clock includes start-up and imports and
its peak memory is its own — with the children it forks: ``peak_mb`` is the larger of the
worker's own peak and the sampled PSS of the worker and its children together; numba's cache is
warm unless the row says cold):
  lifecircle       ``analyze`` + ``save`` (GeoPackage, CSV, network, map) on the PBF, by stage
  lifecircle-nomap the same without the map (``analyze --no-map``): the peers' job plus the
                   GeoPackage and the tables
  lifecircle-xml   the same on an OSM XML copy of the extract (written once by pyosmium)
  pyrosm-read      pyrosm alone reading the layers lifecircle needs: walking network with
                   nodes, points of interest, buildings, land use, natural areas
  pyrosm+osmnx+pandana  the usual recipe for the same job: pyrosm read (network, POIs,
                   buildings) -> osmnx-compatible graph, projected (osmnx) -> pandana Network +
                   precompute -> per category nearest_pois + aggregate(count) at 15 minutes,
                   for the same homes and the same categorised facilities lifecircle used
  osmnx-xml+pandana     the same with osmnx reading the XML (graph_from_xml, features_from_xml)
  first run        the demo (Helsinki) with an empty numba cache, and again warm

  city rows        lifecircle on the tiled city (bench/synthcity.py) at 1x / 8x / 60x Las Palmas
                   (60x: 1,005,180 walking nodes), once each, by stage with each stage's peak
                   memory; the pyrosm + osmnx + pandana route at 8x (at 60x when feasible)

    python bench/e2e.py              # Las Palmas, 3 repeats per contestant, then the city rows
    python bench/e2e.py --quick      # Las Palmas only, 1 repeat for the slow peers
    python bench/e2e.py --city-only  # the city rows only (the Las Palmas rows in the JSON are kept)

Writes bench/results/e2e.json. Paths are relative to the repository (``../shared/...``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))   # this checkout's lifecircle, also in the worker processes
import _common as C  # noqa: E402

LP = REPO.parent / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf"
CACHE = Path(os.environ.get("LIFECIRCLE_BENCH_CACHE", Path(tempfile.gettempdir()) / "lifecircle_bench"))
LIMIT_MIN = 15.0
TIMEOUT_S = 900


def user_env(**extra) -> dict:
    """The environment the contestants run in: this one as a user's Python has it, which
    caches bytecode. Without that (PYTHONDONTWRITEBYTECODE, set in some shells and CI images)
    lifecircle, run from the checkout, compiled its own modules from source in every run while
    the peers, installed by pip, load theirs from the bytecode compiled at install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# workers (run as ``python bench/e2e.py --worker NAME SOURCE OUT``)


def job_path(source: str, out: str) -> Path:
    """The peers' job (homes, categorised facilities) for ``source``: beside the outputs."""
    stem = Path(source).name.split(".")[0].removesuffix("_complete")   # the XML copy: same job
    return Path(out).parent / f"job_{stem}.npz"


#: the analysis, referenced until the worker ends (freeing it object by object is the
#: teardown the console script's exit skips)
_KEEP: list = []


def w_lifecircle(source: str, out: str, map_html: bool = True) -> dict:
    # memory by stage: at each stage boundary the peak so far (VmHWM) is that stage's peak,
    # then the peak is reset to the current RSS (Linux clear_refs), so each stage's peak is
    # its own; where the reset is refused the peaks are cumulative ("mem_reset": false)
    mem: dict[str, dict] = {}
    current = ["import"]

    def mark(name):
        now, cpu = time.perf_counter(), time.process_time()
        # CPU seconds of the stage (all threads): far less moved by a loaded machine than wall
        mem[current[0]] = {"peak_mb": C.peak_rss_mb(), "end_rss_mb": C.rss_mb(),
                           "cpu_s": cpu - c_mark[0]}
        c_mark[0] = cpu
        # progress for a watching driver (run_watched): what finished, when, at what peak
        print(json.dumps({"done": current[0], "s": now - t_mark[0], **mem[current[0]],
                          "next": name}), file=sys.stderr, flush=True)
        t_mark[0] = now
        reset_ok.append(C.reset_peak_rss())
        current[0] = name

    reset_ok: list[bool] = []
    t0 = time.perf_counter()
    t_mark, c_mark = [t0], [time.process_time()]
    import lifecircle.pipeline as pipeline
    from lifecircle.pipeline import analyze

    build = pipeline.build_network

    def network_size(*args, **kwargs):   # the network's size, even if a later stage is stopped
        net = build(*args, **kwargs)
        print(json.dumps({"network": {"nodes": net.n_nodes, "edges": net.n_edges,
                                      "components_kept": (net.pruned or {}).get("components_kept")}}),
              file=sys.stderr, flush=True)
        return net

    pipeline.build_network = network_size

    t_import = time.perf_counter() - t0
    # as the CLI: the map's inputs are prepared beside the analysis only when it draws one
    r = analyze(source, progress=mark, prepare_map=map_html)
    mark("write")
    t1 = time.perf_counter()
    r.save(out, map_html=map_html)
    t_write = time.perf_counter() - t1
    mark(None)
    stages = {"import": t_import, **r.timings, "write": t_write}
    # the job the peers repeat: the same homes and categorised facilities, in WGS-84 (made
    # once per extract; not lifecircle's work: its time is taken off lifecircle's wall)
    t_job, c_job = time.perf_counter(), time.process_time()
    job = job_path(source, out)
    if not job.exists():
        homes = r.homes.to_crs(4326).geometry
        fac = r.facilities.to_crs(4326).geometry.representative_point()
        np.savez(job, home_x=homes.x.to_numpy(), home_y=homes.y.to_numpy(),
                 fac_x=fac.x.to_numpy(), fac_y=fac.y.to_numpy(),
                 fac_cat=r.facilities["category"].to_numpy().astype("U"),
                 speed=r.settings.walk_speed_kmh)
    job_s, job_cpu_s = time.perf_counter() - t_job, time.process_time() - c_job
    net = r.network
    _KEEP.append(r)   # as the console script keeps it (cli.common.hold_until_exit): not freed
    return {"stages": stages, "job_s": job_s, "job_cpu_s": job_cpu_s, "homes": len(r.homes), "facilities": len(r.facilities),
            "nodes": net.n_nodes, "edges": net.n_edges,
            "components_kept": (net.pruned or {}).get("components_kept"),
            "stage_mem_mb": mem, "mem_reset": all(reset_ok),
            "map_prepared": getattr(r, "_map_prep", None) is not None,
            "peak_mb": max(m["peak_mb"] for m in mem.values())}


def _pyrosm_layers(osm, network_type="all"):
    from lifecircle.io.sources import FEATURE_HIGHWAYS, FEATURE_KEYS, FEATURE_PLACES, NATURAL_AREAS

    ff = {k: True for k in FEATURE_KEYS}
    ff["highway"] = list(FEATURE_HIGHWAYS)
    ff["place"] = list(FEATURE_PLACES)
    nodes, edges = osm.get_network(network_type=network_type, nodes=True)
    pois = osm.get_pois(custom_filter=ff)
    buildings = osm.get_buildings()
    return nodes, edges, pois, buildings, ff, NATURAL_AREAS


def w_pyrosm_read(source: str, out: str) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    import pyrosm

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    osm = pyrosm.OSM(source)
    _n, edges, pois, buildings, _ff, natural = _pyrosm_layers(osm)
    osm.get_landuse()
    osm.get_natural(custom_filter={"natural": list(natural)})
    return {"stages": {"import": t_import, "read": time.perf_counter() - t0},
            "edges": len(edges)}


def _pandana_job(G, source: str, out: str) -> dict:
    """Project (osmnx), pandana Network + precompute, nearest + counts per category."""
    import osmnx as ox
    import pandana as pdna
    import pandas as pd
    import pyproj

    stages = {}
    t0 = time.perf_counter()
    G = ox.project_graph(G)
    nodes, edges = ox.graph_to_gdfs(G, nodes=True, edges=True)
    edges = edges.reset_index()
    net = pdna.Network(nodes["x"], nodes["y"], edges["u"], edges["v"], edges[["length"]],
                       twoway=True)
    job = np.load(job_path(source, out))
    dist = float(job["speed"]) * 1000 / 60 * LIMIT_MIN   # metres walked in 15 minutes
    net.precompute(dist + 1)
    stages["graph"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    to_m = pyproj.Transformer.from_crs(4326, G.graph["crs"], always_xy=True)
    hx, hy = to_m.transform(job["home_x"], job["home_y"])
    fx, fy = to_m.transform(job["fac_x"], job["fac_y"])
    hn = net.get_node_ids(pd.Series(hx), pd.Series(hy))
    fnode = net.get_node_ids(pd.Series(fx), pd.Series(fy)).to_numpy()
    cats = np.unique(job["fac_cat"])
    within = 0
    for i, c in enumerate(cats):
        m = job["fac_cat"] == c
        key = f"c{i}"
        net.set_pois(category=key, maxdist=dist, maxitems=1, x_col=pd.Series(fx[m]),
                     y_col=pd.Series(fy[m]))
        near = net.nearest_pois(dist, key, num_pois=1, max_distance=np.inf)[1].reindex(hn)
        within += int((near.to_numpy() <= dist).sum())
        net.set(pd.Series(fnode[m]), variable=pd.Series(np.ones(int(m.sum()))), name=key)
        net.aggregate(dist, type="count", decay="flat", name=key).reindex(hn)
    stages["nearest+counts"] = time.perf_counter() - t0
    return {"stages": stages, "categories": len(cats), "home_category_pairs_within": within}


def w_peer_pyrosm(source: str, out: str) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    import osmnx  # noqa: F401
    import pandana  # noqa: F401
    import pyrosm

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    osm = pyrosm.OSM(source)
    nodes, edges, _pois, _b, _ff, _nat = _pyrosm_layers(osm, network_type="walking")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    G = osm.to_graph(nodes, edges, graph_type="networkx", osmnx_compatible=True)
    t_graph = time.perf_counter() - t0
    got = _pandana_job(G, source, out)
    got["stages"] = {"import": t_import, "read": t_read,
                     "graph": t_graph + got["stages"]["graph"], **{
                         k: v for k, v in got["stages"].items() if k != "graph"}}
    return got


def w_peer_osmnx_xml(source: str, out: str) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    import osmnx as ox

    from lifecircle.io.sources import FEATURE_HIGHWAYS, FEATURE_KEYS, FEATURE_PLACES

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    G = ox.graph_from_xml(source, bidirectional=False, simplify=True, retain_all=True)
    tags = {k: True for k in FEATURE_KEYS}
    tags.update({"building": True, "highway": list(FEATURE_HIGHWAYS), "place": list(FEATURE_PLACES)})
    ox.features_from_xml(source, tags=tags)
    t_read = time.perf_counter() - t0
    got = _pandana_job(G, source, out)
    got["stages"] = {"import": t_import, "read": t_read, **got["stages"]}
    return got


WORKERS = {"lifecircle": w_lifecircle, "lifecircle-xml": w_lifecircle,
           "lifecircle-nomap": functools.partial(w_lifecircle, map_html=False),
           "pyrosm-read": w_pyrosm_read, "pyrosm+osmnx+pandana": w_peer_pyrosm,
           "osmnx-xml+pandana": w_peer_osmnx_xml}


def worker_main(name: str, source: str, out: str) -> None:
    got = WORKERS[name](source, out)
    got.setdefault("peak_mb", C.peak_rss_mb())
    print(json.dumps(got, default=C._jsonable))
    # every contestant ends as lifecircle's console script does (lifecircle.cli.app._leave:
    # exit handlers, flushed streams, no interpreter teardown): freeing the last objects one
    # by one is no one's job. Written out here so that the peers import nothing of lifecircle.
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        return
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --------------------------------------------------------------------------------------------
# driver


def xml_copy(pbf: Path) -> Path:
    """An OSM XML copy of ``pbf`` (cached): what an osmnx user would read. Way references to
    nodes the extract cut away are left out (osmnx's graph_from_xml stops at the first one:
    "Some edges missing nodes"); lifecircle reads the copy the same way."""
    import osmium

    CACHE.mkdir(parents=True, exist_ok=True)
    xml = CACHE / (pbf.name.replace(".osm.pbf", "") + "_complete.osm")
    if not xml.exists():
        have = np.fromiter((n.id for n in osmium.FileProcessor(str(pbf), osmium.osm.NODE)),
                           dtype=np.int64)
        have = set(have.tolist())
        tmp = xml.with_suffix(".tmp.osm")
        tmp.unlink(missing_ok=True)
        with osmium.SimpleWriter(str(tmp)) as w:
            for obj in osmium.FileProcessor(str(pbf)):
                if obj.is_way():
                    refs = [n.ref for n in obj.nodes]
                    kept = [r for r in refs if r in have]
                    if len(kept) < 2:
                        continue
                    if len(kept) != len(refs):
                        obj = obj.replace(nodes=kept)
                w.add(obj)
        tmp.rename(xml)
    return xml


def run(name: str, source: Path, out_dir: Path, env=None, timeout: float = TIMEOUT_S) -> dict:
    out = out_dir / f"out_{name}"
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as ef, tempfile.TemporaryFile("w+") as of:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", name, str(source), str(out)],
                                stdout=of, stderr=ef, text=True, env=env or user_env(), cwd=REPO)
        tree = _TreeMemory(proc.pid)
        with tree.sampling(0.2):      # the wall ends when the process does, not at a poll
            try:
                proc.wait(timeout=max(0.0, timeout - (time.perf_counter() - t0)))
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            wall = time.perf_counter() - t0
        of.seek(0)
        ef.seek(0)
        stdout, stderr = of.read(), ef.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{stderr[-3000:]}")
    got = json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])
    got["wall_s"] = wall - got.get("job_s", 0.0)
    got["cpu_s"] = _children_cpu() - cpu0 - got.get("job_cpu_s", 0.0)
    tree.into(got)
    shutil.rmtree(out, ignore_errors=True)
    return got


def run_watched(name: str, source: Path, out_dir: Path, timeout: float, max_mb: float,
                min_avail_mb: float) -> dict:
    """``run`` for the big city: the worker is stopped when it passes ``timeout`` seconds, its
    RSS passes ``max_mb`` or the machine's available memory falls under ``min_avail_mb`` (a
    shared machine: other people's processes must not be the ones the kernel kills). A stopped
    run returns what finished (the worker reports each stage on stderr) and why it stopped."""
    import psutil

    out = out_dir / f"out_{name}"
    err = out_dir / f"err_{name}.txt"
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    with open(err, "w") as ef:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", name, str(source), str(out)],
                                stdout=subprocess.PIPE, stderr=ef, text=True, env=user_env(), cwd=REPO)
        ps, stopped, rss_max = psutil.Process(proc.pid), None, 0.0
        tree = _TreeMemory(proc.pid)
        while proc.poll() is None:
            time.sleep(0.25)
            tree.sample()
            try:
                rss = ps.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                break
            rss_max = max(rss_max, rss)
            avail = psutil.virtual_memory().available / 2**20
            if time.perf_counter() - t0 > timeout:
                stopped = f"stopped after {timeout:.0f} s (time budget)"
            elif rss > max_mb:
                stopped = f"stopped at {rss:.0f} MB RSS (budget {max_mb:.0f} MB)"
            elif avail < min_avail_mb:
                stopped = (f"stopped at {rss:.0f} MB RSS: the machine had {avail:.0f} MB available "
                           f"(floor {min_avail_mb:.0f} MB)")
            if stopped:
                proc.kill()
                break
        stdout = proc.communicate()[0]
    wall = time.perf_counter() - t0
    progress = [json.loads(ln) for ln in err.read_text().splitlines() if ln.startswith('{"done"')]
    shutil.rmtree(out, ignore_errors=True)
    if stopped is None and proc.returncode == 0:
        got = json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])
        got.update(wall_s=wall - got.get("job_s", 0.0),
                   cpu_s=_children_cpu() - cpu0 - got.get("job_cpu_s", 0.0))
        tree.into(got)
        return got
    last = progress[-1]["next"] if progress else "import"
    size = [json.loads(ln)["network"] for ln in err.read_text().splitlines()
            if ln.startswith('{"network"')]
    return {**(size[0] if size else {}), "stopped": stopped or f"failed (exit {proc.returncode}): "
                                  f"{err.read_text().strip().splitlines()[-1][-300:]}",
            "stopped_in": last, "wall_s": wall, "cpu_s": _children_cpu() - cpu0,
            "stages": {p["done"]: p["s"] for p in progress},
            "stage_mem_mb": {p["done"]: {k: p.get(k) for k in ("peak_mb", "end_rss_mb", "cpu_s")}
                             for p in progress},
            "peak_mb": max([rss_max] + [p["peak_mb"] for p in progress]),
            "mem_reset": True}


class _TreeMemory:
    """The worker's memory with its children: lifecircle writes the GeoPackage in a forked
    child, whose memory the worker's own peak (VmHWM) does not see. Sampled: the largest sum of
    PSS over the worker and its descendants (shared pages counted once). ``peak_mb`` of a row
    becomes the larger of the worker's exact peak and this sampled tree peak."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0.0

    def sample(self) -> None:
        got = C.tree_pss_mb(self.pid)
        if got:
            self.peak = max(self.peak, got)

    @contextlib.contextmanager
    def sampling(self, every: float):
        """Sample every ``every`` seconds from a thread while the block runs."""
        stop = threading.Event()

        def loop():
            while not stop.wait(every):
                self.sample()

        self.sample()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def into(self, row: dict) -> None:
        row["peak_process_mb"] = row.get("peak_mb")
        row["peak_tree_pss_mb"] = self.peak
        row["peak_mb"] = max(row.get("peak_mb") or 0.0, self.peak)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far: unlike the wall
    clock, barely moved by other work on a shared machine."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def median_rows(name: str, runs: list[dict]) -> dict:
    stages = {k: statistics.median(r["stages"][k] for r in runs) for k in runs[0]["stages"]}
    row = {"contestant": name, "wall_s": statistics.median(r["wall_s"] for r in runs),
           "walls": [round(r["wall_s"], 3) for r in runs], "stages": stages,
           "cpu_s": statistics.median(r["cpu_s"] for r in runs),
           "peak_mb": max(r["peak_mb"] for r in runs)}
    row.update({k: v for k, v in runs[-1].items()
                if k not in ("stages", "wall_s", "peak_mb", "cpu_s", "map_prepared")})
    if "map_prepared" in runs[0]:   # decided by the load at the time: said for every run
        row["map_prepared"] = [r["map_prepared"] for r in runs]
    return row


def first_run(out_dir: Path) -> dict:
    """The demo with an empty numba cache (a fresh install), then warm."""
    cache = Path(tempfile.mkdtemp(prefix="numba_cold_", dir=out_dir))
    # run from the scratch folder (the demo copies its map into ./maps/, which is the
    # repository's own from its root), with this checkout's lifecircle
    env = user_env(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    walls, cpus = {}, {}
    for label in ("cold", "warm"):
        cpu0 = _children_cpu()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lifecircle.cli", "demo", "--out",
                        str(out_dir / f"demo_{label}")], capture_output=True, env=env, cwd=out_dir,
                       timeout=TIMEOUT_S, check=True)
        walls[label] = time.perf_counter() - t0
        cpus[label] = _children_cpu() - cpu0
    return {"cold_s": walls["cold"], "warm_s": walls["warm"],
            "extra_s": walls["cold"] - walls["warm"], "cold_cpu_s": cpus["cold"],
            "warm_cpu_s": cpus["warm"], "extra_cpu_s": cpus["cold"] - cpus["warm"]}


#: the peer route on the biggest city only when its estimate (the mid size's time and memory
#: scaled by the node ratio) stays under these
PEER_MAX_S, PEER_MAX_MB = 1200, 12000


def city(tiles: list[int], peer_tiles: int | None, out_dir: Path,
         limits: dict) -> tuple[dict | None, list, dict | None]:
    """lifecircle analyze + save on the tiled city at each size (one run each, in its own
    process), and the pyrosm + osmnx + pandana route at ``peer_tiles``. Returns
    ``(city_1m, scaling, city_peer)``."""
    import synthcity

    scaling, peer, largest = [], None, None
    for n in sorted(tiles):
        src = LP if n == 1 else synthcity.build(n)
        meta = {"tiles": n, "file_mb": round(src.stat().st_size / 1e6, 1)}
        if n > 1:
            meta.update(links=synthcity.info(src)["links"])
        print(f"city {n:3d} tile(s): {src.name} ({meta['file_mb']} MB) ...", flush=True)
        load0 = os.getloadavg()[0]
        got = run_watched("lifecircle", src, out_dir, timeout=limits["timeout_s"],
                          max_mb=limits["max_mb"], min_avail_mb=limits["min_avail_mb"])
        row = {**meta, **{k: got.get(k) for k in ("nodes", "edges", "components_kept", "homes",
                                                   "facilities", "stopped", "stopped_in")},
               "wall_s": got["wall_s"], "cpu_s": got["cpu_s"],
               "peak_mb": got["peak_mb"], "peak_process_mb": got.get("peak_process_mb"),
               "peak_tree_pss_mb": got.get("peak_tree_pss_mb"), "stages": got["stages"],
               "stage_peak_mb": {k: v["peak_mb"] for k, v in got["stage_mem_mb"].items()},
               "stage_end_rss_mb": {k: v["end_rss_mb"] for k, v in got["stage_mem_mb"].items()},
               "stage_cpu_s": {k: v.get("cpu_s") for k, v in got["stage_mem_mb"].items()},
               "mem_reset": got["mem_reset"],
               "load_avg_1min": [load0, os.getloadavg()[0]]}
        scaling.append(row)
        _print_city(row)
        if row["stopped"]:
            print(f"  {n} tiles: {row['stopped']} in stage {row['stopped_in']}")
            largest = row
            break
        if n == peer_tiles:
            print(f"  peer pyrosm+osmnx+pandana on {n} tile(s) ...", flush=True)
            peer = _city_peer(src, n, out_dir, row, limits)
        largest = row
    if peer and "wall_s" in peer and max(tiles) != peer["tiles"]:
        peer = peer_at_largest(peer, max(tiles))
        if peer["largest"] is None:
            print(f"  peer pyrosm+osmnx+pandana on {max(tiles)} tiles ...", flush=True)
            peer["largest"] = _city_peer(synthcity.build(max(tiles)), max(tiles), out_dir,
                                         largest, limits)
        else:
            print(f"  peer on {max(tiles)} tiles skipped: {peer['largest']['reason']}")
    big = scaling[-1] if scaling and scaling[-1]["tiles"] == max(tiles) else None
    city_1m = None
    if big and (big["stopped"] or big["nodes"] >= 1_000_000):
        city_1m = {k: big[k] for k in ("tiles", "wall_s", "cpu_s", "peak_mb", "stages", "stage_peak_mb",
                                       "nodes", "edges", "homes", "facilities", "file_mb",
                                       "load_avg_1min", "stopped", "stopped_in")}
    return city_1m, scaling, peer


def peer_at_largest(mid: dict, tiles: int) -> dict:
    """``{"mid": mid, "largest": None}`` when the peer route's run at ``tiles`` looks feasible
    from its mid-size run (time and memory scaled by the node ratio, exact for the tiled city),
    else with ``largest`` saying it was skipped and why."""
    k = tiles / mid["tiles"]
    est_s, est_mb = mid["wall_s"] * k, mid["peak_mb"] * k
    if est_s <= PEER_MAX_S and est_mb <= PEER_MAX_MB:
        return {"mid": mid, "largest": None}
    return {"mid": mid, "largest": {
        "tiles": tiles, "skipped": True, "estimated_wall_s": est_s, "estimated_peak_mb": est_mb,
        "reason": f"estimated {est_s:.0f} s and {est_mb:.0f} MB from the {mid['tiles']}-tile run "
                  f"({mid['wall_s']:.0f} s, {mid['peak_mb']:.0f} MB) scaled by nodes ({k:.1f}x): "
                  f"over {PEER_MAX_S} s or {PEER_MAX_MB} MB on this shared 2-core, 23 GB machine"}}


def _city_peer(src: Path, n: int, out_dir: Path, lc: dict, limits: dict) -> dict:
    got = run_watched("pyrosm+osmnx+pandana", src, out_dir, timeout=limits["timeout_s"],
                      max_mb=limits["max_mb"], min_avail_mb=limits["min_avail_mb"])
    if "stopped" in got:
        print(f"    {got['stopped']}")
        return {"tiles": n, "failed": got["stopped"], "wall_s_until_stopped": got["wall_s"],
                "peak_mb_until_stopped": got["peak_mb"]}
    got.update(tiles=n, nodes=lc["nodes"], wall_vs_lifecircle=got["wall_s"] / lc["wall_s"])
    st = "  ".join(f"{k} {v:.1f}" for k, v in got["stages"].items())
    print(f"    wall {got['wall_s']:7.1f} s  peak {got['peak_mb']:6.0f} MB  "
          f"({got['wall_vs_lifecircle']:.1f}x lifecircle)  | {st}")
    return got


def _print_city(row: dict) -> None:
    st = "  ".join(f"{k} {v:.1f}" for k, v in row["stages"].items())
    mem = "  ".join(f"{k} {v:.0f}" for k, v in row["stage_peak_mb"].items())
    print(f"  {row['tiles']:3d} tiles  {row['nodes'] or 0:>9,} nodes  {row['homes'] or 0:>8,} homes  "
          f"wall {row['wall_s']:7.1f} s  peak {row['peak_mb']:6.0f} MB  (load {row['load_avg_1min'][0]:.1f})\n"
          f"      time  | {st}\n      peak MB | {mem}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 repeat for the slow peers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of contestants to leave out")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--city", action=argparse.BooleanOptionalAction, default=None,
                    help="the tiled-city scaling rows (default: on, off with --quick)")
    ap.add_argument("--city-only", action="store_true",
                    help="only the city rows; the Las Palmas rows of bench/results/e2e.json are kept")
    ap.add_argument("--tiles", default="1,8,60", help="city sizes in Las Palmas tiles (60: >= 1M nodes)")
    ap.add_argument("--city-key", default="",
                    help="with --city-only: store this run under this key of e2e.json instead")
    ap.add_argument("--note", default="", help="a note stored with the city rows (e.g. the load)")
    ap.add_argument("--city-timeout", type=float, default=3600, help="seconds per city run")
    ap.add_argument("--city-max-mb", type=float, default=16000,
                    help="stop a city run whose RSS passes this (MB)")
    ap.add_argument("--min-avail-mb", type=float, default=2500,
                    help="stop a city run when the machine's available memory falls under this")
    ap.add_argument("--peer-tiles", type=int, default=8,
                    help="the size the pyrosm+osmnx+pandana route runs at (0: none); the largest "
                         "size too when its estimate from this one is feasible")
    ap.add_argument("--worker", nargs=3, metavar=("NAME", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker_main(*a.worker)
        return 0
    if not LP.exists():
        print(f"shared extract not found: {LP}")
        return 1
    skip = set(filter(None, a.skip.split(",")))
    CACHE.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix="e2e_", dir=CACHE))
    do_city = a.city_only or (a.city if a.city is not None else not a.quick)
    tiles = [int(t) for t in a.tiles.split(",") if t.strip()]
    limits = {"timeout_s": a.city_timeout, "max_mb": a.city_max_mb, "min_avail_mb": a.min_avail_mb}
    if a.city_only:
        print("warm-up: lifecircle on Las Palmas (numba cache)", flush=True)
        run("lifecircle", LP, out_dir)
        city_1m, scaling, city_peer = city(tiles, a.peer_tiles or None, out_dir, limits)
        shutil.rmtree(out_dir, ignore_errors=True)
        if not a.no_write:
            old = C.RESULTS / "e2e.json"
            data = json.loads(old.read_text()) if old.exists() else {}
            got = dict(city_1m=city_1m, scaling=scaling, city_peer=city_peer,
                       city_run={"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                 "load_avg": os.getloadavg(), "note": a.note,
                                 "machine": C.machine_info("numpy", "numba", "osmium", "pyrosm",
                                                           "osmnx", "pandana", "pyogrio")})
            if a.city_key:   # a second run beside the first (e.g. after a change)
                data[a.city_key] = got
            else:
                data.update(got)
            path = C.write_json("e2e", data)
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    xml = xml_copy(LP)
    print(f"Las Palmas: {LP.name} ({LP.stat().st_size / 1e6:.1f} MB), XML copy {xml.stat().st_size / 1e6:.0f} MB")
    run("lifecircle", LP, out_dir)          # warm numba's cache, write the peers' job
    plan = [("lifecircle", LP, a.repeats), ("lifecircle-nomap", LP, a.repeats),
            ("pyrosm-read", LP, a.repeats),
            ("pyrosm+osmnx+pandana", LP, a.repeats),
            ("lifecircle-xml", xml, 1 if a.quick else a.repeats),
            ("osmnx-xml+pandana", xml, 1)]
    # repeats interleaved (a, b, c, a, b, c, ...): on a shared machine the load then falls
    # on every contestant alike and the ratios of one run hold
    plan = [p for p in plan if p[0] not in skip]
    runs: dict[str, list] = {name: [] for name, _, _ in plan}
    failed: dict[str, str] = {}
    for i in range(max(n for _, _, n in plan)):
        for name, src, n in plan:
            if i >= n or name in failed:
                continue
            try:
                runs[name].append(run(name, src, out_dir))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed[name] = str(exc).strip().splitlines()[-1]
    rows = []
    for name, _, _ in plan:
        if name in failed:
            rows.append({"contestant": name, "failed": failed[name]})
            print(f"  {name:22s} failed: {failed[name]}")
            continue
        row = median_rows(name, runs[name])
        rows.append(row)
        st = "  ".join(f"{k} {v:.2f}" for k, v in row["stages"].items())
        print(f"  {name:22s} wall {row['wall_s']:6.2f} s  peak {row['peak_mb']:5.0f} MB  | {st}")
    by = {r["contestant"]: r for r in rows}
    lc = by.get("lifecircle", {}).get("wall_s")
    rows_ok = [r for r in rows if "wall_s" in r]
    ratios = {}
    if lc:
        for r in rows_ok:
            r["wall_vs_lifecircle"] = r["wall_s"] / lc
        if "wall_s" in by.get("pyrosm-read", {}):
            ratios["lifecircle_wall / pyrosm_read_wall"] = lc / by["pyrosm-read"]["wall_s"]
            ratios["lifecircle_wall / pyrosm_read_stage"] = lc / by["pyrosm-read"]["stages"]["read"]
            ratios["lifecircle_cpu / pyrosm_read_cpu"] = by["lifecircle"]["cpu_s"] / by["pyrosm-read"]["cpu_s"]
        for peer in ("pyrosm+osmnx+pandana", "osmnx-xml+pandana"):
            if "cpu_s" in by.get(peer, {}):
                ratios[f"{peer}_cpu / lifecircle_cpu"] = by[peer]["cpu_s"] / by["lifecircle"]["cpu_s"]
            if "wall_s" in by.get(peer, {}):
                ratios[f"{peer}_wall / lifecircle_wall"] = by[peer]["wall_s"] / lc
                if "wall_s" in by.get("lifecircle-nomap", {}):
                    ratios[f"{peer}_wall / lifecircle-nomap_wall"] = \
                        by[peer]["wall_s"] / by["lifecircle-nomap"]["wall_s"]
    fr = None if "first-run" in skip else first_run(out_dir)
    print()
    print(C.table([dict(contestant=r["contestant"], wall=r.get("wall_s"), cpu=r.get("cpu_s"),
                        peak=r.get("peak_mb"), ratio=r.get("wall_vs_lifecircle")) for r in rows],
                  [("contestant", "contestant"), ("wall", "wall s (median)"),
                   ("cpu", "cpu s (median)"), ("peak", "peak MB"),
                   ("ratio", "wall / lifecircle")]))
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}")
    if fr:
        print(f"  first run (demo, empty numba cache): {fr['cold_s']:.1f} s, warm {fr['warm_s']:.1f} s,"
              f" +{fr['extra_s']:.1f} s wall; CPU {fr['cold_cpu_s']:.1f} s vs {fr['warm_cpu_s']:.1f} s,"
              f" +{fr['extra_cpu_s']:.1f} s")
    city_1m = scaling = city_peer = None
    if do_city:
        city_1m, scaling, city_peer = city(tiles, a.peer_tiles or None, out_dir, limits)
    shutil.rmtree(out_dir, ignore_errors=True)
    if not a.no_write:
        city_rows = {"city_1m": city_1m, "scaling": scaling, "city_peer": city_peer,
                     "city_run": {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                  "load_avg": os.getloadavg()}}
        if not do_city:   # the city rows already stored stay (as --city-only keeps these)
            old = C.RESULTS / "e2e.json"
            stored = json.loads(old.read_text()) if old.exists() else {}
            city_rows = {k: stored.get(k) for k in city_rows}
        path = C.write_json("e2e", {
            "dataset": str(LP.relative_to(REPO.parent)), "quick": a.quick, "rows": rows,
            "ratios": ratios, "first_run": fr, **city_rows,
            "machine": C.machine_info("numpy", "numba", "osmium", "pyrosm", "osmnx", "pandana",
                                      "pyogrio", "lifecircle"),
            "load_avg": os.getloadavg(),
        })
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
