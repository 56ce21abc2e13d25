"""A synthetic city for the end-to-end benchmark: the Las Palmas extract tiled into one PBF.

``build(tiles)`` copies every node, way and relation of the extract ``tiles`` times into one
file, tile ``k`` at grid cell ``(k % cols, k // cols)`` of a near-square grid
(``cols = ceil(sqrt(tiles))``): coordinates shifted by the extract's extent plus a small gap
(so tiles never overlap and the city spans a few degrees: one UTM zone, as lifecircle picks
from the centre), ids shifted per tile (node/way/relation ids, way node refs and relation
members alike; the stride is the extract's largest id of that type rounded up, so ids stay
below 10^12). Neighbouring tiles (east-west and south-north) are joined by ``per_edge`` new
``highway=footway`` ways, each between two existing street intersections (nodes of degree
≥ 3 in the walking network ``analyze`` builds for the extract, in its one kept component):
the extract's range across the shared edge is cut into ``per_edge`` bands and in each band the
outermost intersection of one tile is joined to the outermost of the other. A joining way
adds no node and keeps every intersection a node, so the city's walking network (after chain
contraction and pruning) is one connected component of exactly ``tiles`` × the extract's
node count — ``verify()`` checks that.

All nodes come first, then all ways, then all relations, each in id order, as PBF readers
with a node-location index expect. The files are cached in ``$LIFECIRCLE_BENCH_CACHE``
(default ``<tmp>/lifecircle_bench``) as ``synthcity_v1_<tiles>.osm.pbf`` with a JSON sidecar,
so reruns reuse them. Writing takes ~1.6 s per tile (pyosmium, one Python call per object).

    python bench/synthcity.py 60            # build (or reuse) the 60-tile city
    python bench/synthcity.py 60 --verify   # ... and check its walking network
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LP = REPO.parent / "shared" / "data" / "osm" / "world" / "las_palmas_2023_ghsci.osm.pbf"
CACHE = Path(os.environ.get("LIFECIRCLE_BENCH_CACHE", Path(tempfile.gettempdir()) / "lifecircle_bench"))
VERSION = "v1"          # bump when the layout changes: cached files are keyed by it
GAP_DEG = 0.002         # between neighbouring tiles (~200 m)
PER_EDGE = 24           # joining footways per shared tile edge


def _stride(max_id: int) -> int:
    """The id offset between tiles: ``max_id + 1`` rounded up to two significant digits."""
    p = 10 ** max(0, len(str(max_id + 1)) - 2)
    return -(-(max_id + 1) // p) * p


def grid(tiles: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(tiles))
    return cols, math.ceil(tiles / cols)


def _load(src: Path):
    """Every object of ``src`` as plain tuples (ids, integer coordinates, tags)."""
    import osmium

    nodes, ways, rels = [], [], []
    for o in osmium.FileProcessor(str(src)):
        if o.is_node():
            nodes.append((o.id, o.location.x, o.location.y,
                          tuple((t.k, t.v) for t in o.tags) if len(o.tags) else ()))
        elif o.is_way():
            ways.append((o.id, [n.ref for n in o.nodes], tuple((t.k, t.v) for t in o.tags)))
        else:
            rels.append((o.id, [(m.type, m.ref, m.role) for m in o.members],
                         tuple((t.k, t.v) for t in o.tags)))
    return nodes, ways, rels


def intersections(src: Path = LP) -> np.ndarray:
    """OSM ids of the street intersections (degree ≥ 3, distinct neighbours) of the walking
    network ``analyze`` builds for ``src`` (its kept component), cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synthcity_{VERSION}_{src.name}.intersections.npy"
    if path.exists():
        return np.load(path)
    from lifecircle.core.network import build_network
    from lifecircle.io.sources import read_osm
    from lifecircle.pipeline import _metric_crs
    from lifecircle.settings import DEFAULTS

    data = read_osm(str(src))
    b = data.streets.total_bounds
    crs = _metric_crs(DEFAULTS.crs, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets, crs, DEFAULTS, source=data.source, areas=data.features)
    u, v = net.edge_u, net.edge_v
    pairs = np.unique(np.column_stack([np.minimum(u, v), np.maximum(u, v)])[u != v], axis=0)
    deg = np.bincount(pairs.ravel(), minlength=net.n_nodes)
    ids = net.node_osmid[(deg >= 3) & (net.node_osmid > 0)].astype(np.int64)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, ids)
    os.replace(tmp, path)
    return ids


def _bridges(ids, lon, lat, along_lat: bool, per_edge: int):
    """``(far_side, near_side)`` id pairs: per band of the other coordinate, the outermost
    intersection towards the neighbour (max lon / max lat) and the innermost of the next tile
    (min lon / min lat)."""
    across, band_of = (lon, lat) if along_lat else (lat, lon)
    edges = np.linspace(band_of.min(), band_of.max(), per_edge + 1)
    band = np.clip(np.digitize(band_of, edges) - 1, 0, per_edge - 1)
    out = []
    for b in range(per_edge):
        m = np.flatnonzero(band == b)
        if len(m):
            out.append((int(ids[m[np.argmax(across[m])]]), int(ids[m[np.argmin(across[m])]])))
    return out


def build(tiles: int, src: Path = LP, per_edge: int = PER_EDGE, rebuild: bool = False) -> Path:
    """The ``tiles``-copy city as a PBF (cached); see the module docstring."""
    import osmium

    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"synthcity_{VERSION}_{tiles}.osm.pbf"
    if out.exists() and out.with_suffix(".json").exists() and not rebuild:
        return out
    t0 = time.perf_counter()
    inter = intersections(src)
    nodes, ways, rels = _load(src)
    node_ids = np.fromiter((n[0] for n in nodes), np.int64, len(nodes))
    xs = np.fromiter((n[1] for n in nodes), np.int64, len(nodes))
    ys = np.fromiter((n[2] for n in nodes), np.int64, len(nodes))
    s_node, s_way, s_rel = (_stride(int(node_ids.max())), _stride(max(w[0] for w in ways)),
                            _stride(max((r[0] for r in rels), default=0)))
    gap = round(GAP_DEG * 1e7)
    dx, dy = int(xs.max() - xs.min()) + gap, int(ys.max() - ys.min()) + gap
    cols, rows = grid(tiles)
    # the intersections' coordinates, for the joining footways
    pos = np.searchsorted(node_ids, inter)
    ok = (pos < len(node_ids)) & (node_ids[np.minimum(pos, len(node_ids) - 1)] == inter)
    inter, pos = inter[ok], pos[ok]
    ix, iy = xs[pos] / 1e7, ys[pos] / 1e7
    ew = _bridges(inter, ix, iy, along_lat=True, per_edge=per_edge)    # east side, west side
    sn = _bridges(inter, ix, iy, along_lat=False, per_edge=per_edge)   # north side, south side
    links = []
    for k in range(tiles):
        if k % cols + 1 < cols and k + 1 < tiles:
            links += [(a + k * s_node, b + (k + 1) * s_node) for a, b in ew]
        if k + cols < tiles:
            links += [(a + k * s_node, b + (k + cols) * s_node) for a, b in sn]

    header = osmium.io.Header()
    header.set("generator", f"lifecircle bench/synthcity.py {VERSION}")
    header.add_box(osmium.osm.Box(xs.min() / 1e7, ys.min() / 1e7,
                                  (xs.max() + (cols - 1) * dx) / 1e7,
                                  (ys.max() + (rows - 1) * dy) / 1e7))
    N, W, R = osmium.osm.mutable.Node, osmium.osm.mutable.Way, osmium.osm.mutable.Relation
    Loc = osmium.osm.Location
    tmp = out.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(tmp), header=header) as w:
        for k in range(tiles):
            off, ox, oy = k * s_node, (k % cols) * dx, (k // cols) * dy
            for i, x, y, tg in nodes:
                w.add_node(N(id=i + off, location=Loc((x + ox) / 1e7, (y + oy) / 1e7), tags=tg))
        for k in range(tiles):
            off, offn = k * s_way, k * s_node
            for i, refs, tg in ways:
                w.add_way(W(id=i + off, nodes=[n + offn for n in refs], tags=tg))
        tag = (("highway", "footway"), ("note", "synthcity link between tiles"))
        for j, (a, b) in enumerate(links):
            w.add_way(W(id=tiles * s_way + j, nodes=[a, b], tags=tag))
        shift = {"n": s_node, "w": s_way, "r": s_rel}
        for k in range(tiles):
            for i, mem, tg in rels:
                w.add_relation(R(id=i + k * s_rel, tags=tg,
                                 members=[(t, ref + k * shift[t], role) for t, ref, role in mem]))
    os.replace(tmp, out)
    meta = {"tiles": tiles, "grid": [cols, rows], "source": str(src.relative_to(REPO.parent)),
            "links": len(links), "links_per_edge": [len(ew), len(sn)],
            "offset_deg": [dx / 1e7, dy / 1e7], "id_strides": [s_node, s_way, s_rel],
            "nodes": tiles * len(nodes), "ways": tiles * len(ways) + len(links),
            "relations": tiles * len(rels), "size_mb": round(out.stat().st_size / 1e6, 1),
            "build_s": round(time.perf_counter() - t0, 1), "version": VERSION}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return out


def info(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def verify(path: Path, tiles: int, src: Path = LP) -> dict:
    """Build the walking network of ``path`` as ``analyze`` does and check it is one component
    of ``tiles`` × the extract's node count."""
    from lifecircle.core.network import build_network
    from lifecircle.io.sources import read_osm
    from lifecircle.pipeline import _metric_crs
    from lifecircle.settings import DEFAULTS

    def network(p):
        data = read_osm(str(p))
        b = data.streets.total_bounds
        crs = _metric_crs(DEFAULTS.crs, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        return build_network(data.streets, crs, DEFAULTS, source=data.source, areas=data.features)

    one = network(src).n_nodes
    net = network(path)
    got = {"nodes": net.n_nodes, "edges": net.n_edges, "expected_nodes": tiles * one,
           "tile_nodes": one, "components_kept": (net.pruned or {}).get("components_kept"),
           "crs": net.crs.to_string()}
    got["ok"] = got["nodes"] == got["expected_nodes"] and got["components_kept"] == 1
    return got


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tiles", type=int, nargs="?", default=60)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args(argv)
    if not LP.exists():
        print(f"shared extract not found: {LP}")
        return 1
    path = build(a.tiles, rebuild=a.rebuild)
    print(path, json.dumps(info(path)))
    if a.verify:
        got = verify(path, a.tiles)
        print(json.dumps(got))
        return 0 if got["ok"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
