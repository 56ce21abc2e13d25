"""Peer cross-check against the Global Healthy & Sustainable City Indicators (GHSCI) for Las
Palmas de Gran Canaria, and the population calibration of :mod:`lifecircle.homes`.

GHSCI publishes, for the Las Palmas urban region, the share of the population within 500 m
(network distance) of five destination kinds. This script computes the same shares with
lifecircle's network, snapping and exact engine on the GHSCI OSM extract, with destinations
taken by GHSCI's OSM tag definitions (``osm_destination_definitions.csv`` of
healthysustainablecities/global-indicators), and prints them next to GHSCI's figures under
three weightings of the homes:

* ``new``: homes and residents as :func:`lifecircle.homes.find_homes` finds them now
  (untagged buildings by residential evidence, levels per type) — a building-volume weighting,
  the stand-in for GHS-POP (itself a built-volume disaggregation) which is not available offline;
* ``old``: the rule before (typed residential buildings, ``building=yes`` only inside
  residential land use, 3 floors unless tagged);
* ``homes``: every home counted once (no weighting).

It also prints the population totals (Las Palmas against GHSCI's 333k from GHS-POP; Nanjing
Xinjiekou). ``bench/ghsci.md`` explains the differences. Run::

    .venv/bin/python bench/ghsci.py [--quick]

(``--quick`` is accepted for symmetry with the other benchmarks; the run is about a minute.)
Writes ``bench/results/ghsci.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import shapely

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lifecircle import columns as col  # noqa: E402
from lifecircle.core.engine import AccessEngine  # noqa: E402
from lifecircle.core.homes import find_homes  # noqa: E402
from lifecircle.core.network import build_network  # noqa: E402
from lifecircle.core.snapping import Snap, entry_points, snap_points  # noqa: E402
from lifecircle.io.crs import choose_crs  # noqa: E402
from lifecircle.io.sources import read_osm  # noqa: E402
from lifecircle.settings import DEFAULTS  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data" / "osm"
LAS_PALMAS = SHARED / "world" / "las_palmas_2023_ghsci.osm.pbf"
NANJING = SHARED / "china" / "nanjing_xinjiekou_2021.osm.pbf"

#: GHSCI 2023 Las Palmas (urban region, 500 m), percent of population.
GHSCI = {"fresh_food": 53.84, "convenience": 56.77, "pt_any": 85.51,
         "open_space_any": 75.92, "open_space_large": 48.93}
GHSCI_POPULATION = 333_000
DISTANCE_M = 500.0

# GHSCI destination definitions (global-indicators osm_destination_definitions.csv)
FRESH_FOOD = {
    "shop": {"supermarket", "grocery", "bakery", "pastry", "butcher", "seafood", "fishmonger",
             "greengrocer", "fruit", "fruits", "vegetables", "deli", "cheese", "marketplace", "market"},
    "amenity": {"supermarket", "marketplace", "market", "market_place", "public_market"},
    "building": {"supermarket"},
}
CONVENIENCE = {"shop": {"convenience", "kiosk", "newsagent", "newsagency"},
               "amenity": {"fuel", "newsagency"}}
PT_ANY = {"public_transport": {"platform", "stop_position", "station"},
          "highway": {"bus_stop", "platform"}, "railway": {"platform", "tram_stop", "stop"},
          "amenity": {"ferry_terminal"}}
#: Public open space as areas (an approximation of GHSCI's open-space rules: their list also
#: weighs access, water and "green" landuse; private access is excluded as they do).
OPEN_SPACE = {"leisure": {"park", "garden", "common", "nature_reserve", "recreation_ground",
                          "playground", "pitch", "dog_park", "village_green", "golf_course",
                          "beach_resort"},
              "landuse": {"recreation_ground", "village_green", "grass", "meadow", "forest"},
              "natural": {"wood", "scrub", "heath", "grassland", "beach", "sand"},
              "place": {"square"}}
LARGE_M2 = 15_000.0
#: GHSCI samples the network every 30 m and enters open spaces at boundary points within 30 m
#: of the network; their hexagons are 250 m (we use 250 m squares).
SAMPLE_M = 30.0
ENTRY_M = 30.0
CELL_M = 250.0


def _match(tags: dict, rules: dict) -> bool:
    if "supermarket" in tags and rules is FRESH_FOOD:
        return True
    for key, values in rules.items():
        v = tags.get(key)
        if v and any(part.strip() in values for part in v.split(";")):
            return True
    return False


def destinations(data, crs):
    feats = data.features.to_crs(crs)
    tags = feats["tags"].tolist()
    geom = feats.geometry.to_numpy()
    out = {}
    for name, rules in (("fresh_food", FRESH_FOOD), ("convenience", CONVENIENCE), ("pt_any", PT_ANY)):
        out[name] = geom[[_match(t, rules) for t in tags]]
    polygonal = np.isin(shapely.get_type_id(geom), (3, 6))
    public = np.array([t.get("access") not in ("private", "no") for t in tags])
    opens = geom[polygonal & public & np.array([_match(t, OPEN_SPACE) for t in tags])]
    out["open_space_any"] = opens
    merged = shapely.get_parts(shapely.union_all(shapely.make_valid(opens)))
    merged = merged[np.isin(shapely.get_type_id(merged), (3, 6))]
    out["open_space_large"] = merged[shapely.area(merged) > LARGE_M2]
    # sensitivity: leisure=garden is most of Las Palmas' open-space polygons (3,196 of ~4,700),
    # many of them private or planted strips
    garden = np.array([t.get("leisure") == "garden" for t in tags])
    out["open_space_no_gardens"] = geom[polygonal & public & ~garden
                                       & np.array([_match(t, OPEN_SPACE) for t in tags])]
    return out


def open_space_entries(net, polygons):
    """GHSCI-style entries: points every ``ENTRY_M`` along each boundary that lie within
    ``ENTRY_M`` of a walkable edge (lifecircle's own ``entry_points`` gives one per polygon);
    polygons with none keep lifecircle's single entry point."""
    ring = shapely.boundary(polygons)
    dense = shapely.segmentize(ring, ENTRY_M)
    xy, owner = shapely.get_coordinates(dense, return_index=True)
    pts = shapely.points(xy)
    hit, _ = net.tree.query(pts, predicate="dwithin", distance=ENTRY_M)
    keep = np.zeros(len(pts), dtype=bool)
    keep[np.unique(hit)] = True
    has = np.zeros(len(polygons), dtype=bool)
    has[owner[keep]] = True
    single = entry_points(net, polygons[~has])
    return np.concatenate([pts[keep], single])


def sample_points(net):
    """Points every ``SAMPLE_M`` along every edge, as snaps (leg 0) and as shapely points."""
    length = net.edge_len
    n = np.maximum(1, np.floor(length / SAMPLE_M)).astype(np.int64)
    edge = np.repeat(np.arange(len(length)), n)
    k = np.arange(len(edge)) - np.repeat(np.cumsum(n) - n, n)
    offset = (k + 0.5) * length[edge] / n[edge]
    geom_len = shapely.length(net.edge_geom)[edge]
    pts = shapely.line_interpolate_point(net.edge_geom[edge], offset * geom_len / length[edge])
    snap = Snap(edge, offset, np.zeros(len(edge)), np.zeros(len(edge), dtype=bool))
    return snap, pts


def ghsci_method(net, homes, snaps, limit_min):
    """GHSCI's aggregation: access at network sample points, averaged per 250 m cell, cells
    weighted by their residents (here the buildings estimate of lifecircle's homes, standing in
    for GHS-POP). Returns one share per destination kind (percent)."""
    snap, pts = sample_points(net)
    eng = AccessEngine(net, snap, np.ones(len(snap)), DEFAULTS)
    within = np.nan_to_num(eng.nearest(snaps, limit_min=15.0), nan=np.inf) <= limit_min + 1e-9

    def cell_of(x, y):
        return np.floor(x / CELL_M).astype(np.int64) * 1_000_003 + np.floor(y / CELL_M).astype(np.int64)

    scell = cell_of(shapely.get_x(pts), shapely.get_y(pts))
    hg = homes.geometry.to_numpy()
    hcell = cell_of(shapely.get_x(hg), shapely.get_y(hg))
    cells, sidx = np.unique(scell, return_inverse=True)
    pos = np.searchsorted(cells, hcell)
    ok = (pos < len(cells)) & (cells[np.minimum(pos, len(cells) - 1)] == hcell)
    cpop = np.bincount(pos[ok], weights=homes[col.POPULATION].to_numpy(float)[ok], minlength=len(cells))
    cnt = np.bincount(sidx, minlength=len(cells))
    out = []
    for row in within:
        share = np.bincount(sidx, weights=row.astype(float), minlength=len(cells)) / cnt
        out.append(100 * float((cpop * share).sum() / cpop.sum()))
    lost = float(homes[col.POPULATION].to_numpy(float)[~ok].sum())
    return out, len(snap), lost


def homes_before(homes):
    """The home rule before the evidence rule: typed buildings, building=yes in residential
    land use and the grid; 3 floors unless building:levels is tagged."""
    keep = homes["evidence"].isin(["typed", "residential landuse", "grid"]).to_numpy()
    levels = np.where(homes["levels_from"].to_numpy() == "building:levels",
                      homes["levels"].to_numpy(float), DEFAULTS.default_levels)
    pop = np.where(homes["source"].to_numpy() == "grid", homes[col.POPULATION].to_numpy(float),
                   homes["footprint_m2"].to_numpy(float) * levels * DEFAULTS.persons_per_m2)
    return keep, np.where(keep, pop, 0.0)


def run(path: Path) -> dict:
    t0 = time.perf_counter()
    data = read_osm(path)
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets, crs, DEFAULTS)
    homes = find_homes(data.features, crs, DEFAULTS, streets=data.streets)
    dests = destinations(data, crs)
    hs = snap_points(net, homes.geometry.to_numpy(), DEFAULTS.max_snap_m)
    names = list(GHSCI)
    snaps = [snap_points(net, entry_points(net, dests[n]), DEFAULTS.max_snap_m) for n in names]
    # GHSCI-style open-space entries (many per polygon)
    snaps_g = [s if not n.startswith("open_space") else
               snap_points(net, open_space_entries(net, dests[n]), DEFAULTS.max_snap_m)
               for n, s in zip(names, snaps)]
    engine = AccessEngine(net, hs, homes[col.POPULATION].to_numpy(float), DEFAULTS)
    minutes = engine.nearest(snaps, limit_min=15.0)
    limit_min = DISTANCE_M / DEFAULTS.walk_speed_mps / 60.0          # 7.5 min at 4 km/h
    within = np.nan_to_num(minutes, nan=np.inf) <= limit_min + 1e-9
    pop_new = homes[col.POPULATION].to_numpy(float)
    keep_old, pop_old = homes_before(homes)
    within_g = np.nan_to_num(engine.nearest(snaps_g, limit_min=15.0), nan=np.inf) <= limit_min + 1e-9
    method, n_samples, lost = ghsci_method(net, homes, snaps_g, limit_min)
    ng = snap_points(net, open_space_entries(net, dests["open_space_no_gardens"]), DEFAULTS.max_snap_m)
    w_ng = np.nan_to_num(engine.nearest([ng], limit_min=15.0)[0], nan=np.inf) <= limit_min + 1e-9
    rows = {}
    for i, n in enumerate(names):
        rows[n] = {
            "ghsci": GHSCI[n], "destinations": int(len(dests[n])),
            "new": 100 * float(pop_new[within[i]].sum() / pop_new.sum()),
            "old": 100 * float(pop_old[within[i]].sum() / pop_old.sum()),
            "homes": 100 * float(within[i].mean()),
            "new_entries": 100 * float(pop_new[within_g[i]].sum() / pop_new.sum()),
            "ghsci_method": method[i],
        }
    ev = homes.groupby("evidence")[col.POPULATION].agg(["size", "sum"])
    return {
        "source": str(path.relative_to(SHARED)), "seconds": time.perf_counter() - t0,
        "homes": int(len(homes)), "homes_before": int(keep_old.sum()),
        "population_new": float(pop_new.sum()), "population_before": float(pop_old.sum()),
        "population_typed_only": float(homes.loc[homes.evidence == "typed", col.POPULATION].sum()),
        "by_evidence": {k: {"homes": int(r["size"]), "residents": float(r["sum"])} for k, r in ev.iterrows()},
        "levels_from": homes["levels_from"].value_counts().to_dict(),
        "unreachable_homes": int((~hs.reachable).sum()),
        "open_space_any_without_gardens": {
            "destinations": int(len(dests["open_space_no_gardens"])),
            "new_entries": 100 * float(pop_new[w_ng].sum() / pop_new.sum())},
        "sample_points": int(n_samples), "residents_in_cells_without_samples": lost,
        "indicators": rows,
    }


def totals_only(path: Path) -> dict:
    data = read_osm(path)
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    homes = find_homes(data.features, crs, DEFAULTS, streets=data.streets)
    keep_old, pop_old = homes_before(homes)
    return {"source": str(path.relative_to(SHARED)), "homes": int(len(homes)),
            "population_new": float(homes[col.POPULATION].sum()),
            "homes_before": int(keep_old.sum()), "population_before": float(pop_old.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted; the run is already short")
    ap.parse_args()
    if not LAS_PALMAS.exists():
        sys.exit(f"{LAS_PALMAS}: shared extract not found")
    lp = run(LAS_PALMAS)
    print(f"Las Palmas ({lp['source']}, {lp['seconds']:.0f} s)")
    print(f"  residents: lifecircle {lp['population_new']:,.0f} ({lp['homes']:,} homes)  "
          f"before {lp['population_before']:,.0f} ({lp['homes_before']:,} homes)  "
          f"typed buildings only {lp['population_typed_only']:,.0f}  GHSCI (GHS-POP) {GHSCI_POPULATION:,}  "
          f"-> {100 * (lp['population_new'] / GHSCI_POPULATION - 1):+.1f}%")
    print(f"  within {DISTANCE_M:.0f} m (% of residents)")
    print(f"  {'indicator':<18}{'dest.':>7}{'GHSCI':>8}{'new':>8}{'Δ':>7}{'before':>8}{'Δ':>7}{'homes':>8}"
          f"{'entries':>9}{'method':>8}{'Δ':>7}")
    for n, r in lp["indicators"].items():
        print(f"  {n:<18}{r['destinations']:>7}{r['ghsci']:>8.2f}{r['new']:>8.2f}{r['new'] - r['ghsci']:>+7.1f}"
              f"{r['old']:>8.2f}{r['old'] - r['ghsci']:>+7.1f}{r['homes']:>8.2f}"
              f"{r['new_entries']:>9.2f}{r['ghsci_method']:>8.2f}{r['ghsci_method'] - r['ghsci']:>+7.1f}")
    print("  new: homes weighted by the buildings estimate; before: the home rule before; homes: "
          "unweighted;\n  entries: new, open spaces entered every 30 m of boundary near a street; "
          f"method: GHSCI aggregation\n  (access at {lp['sample_points']:,} network points every 30 m, "
          "mean per 250 m cell, cells weighted by residents)")
    ng = lp["open_space_any_without_gardens"]
    print(f"  sensitivity: any open space without leisure=garden ({ng['destinations']:,} polygons): "
          f"{ng['new_entries']:.2f}%")
    out = {"las_palmas": lp}
    if NANJING.exists():
        nj = totals_only(NANJING)
        out["nanjing_xinjiekou"] = nj
        print(f"Nanjing Xinjiekou: residents {nj['population_new']:,.0f} ({nj['homes']:,} homes); "
              f"before {nj['population_before']:,.0f} ({nj['homes_before']:,} homes)")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "ghsci.json").write_text(json.dumps(out, indent=2, ensure_ascii=False),
                                                 encoding="utf-8")


if __name__ == "__main__":
    main()
