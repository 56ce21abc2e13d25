"""Pedestrian plazas (highway=pedestrian + area=yes) are walked along and across, and are
public squares only when named or tagged place=square. Small synthetic OSM XML districts whose
walking distances are worked out by hand."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import shapely
from synthetic_osm import LocalOsm, local_xy

import lifecircle
from lifecircle import columns as col
from lifecircle.core.classify import classify_features
from lifecircle.core.network import build_network
from lifecircle.core.profiles import load_profile
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm


def district(plaza_tags=(("highway", "pedestrian"), ("area", "yes"))):
    """Two street systems joined only by a 100 m square plaza (0..100 × 0..100 m): a footway
    from the west street reaches its west side at W (0, 50), one to the east street leaves
    from E (100, 50), and a dead-end footway from the north ends 0.2 m inside it at (50, 99.8).
    An L-shaped plaza elsewhere is entered at A (400, 20) and B (320, 100) (reflex corner
    (340, 40)). A home west of the west street, a supermarket east of the east street."""
    o = LocalOsm()
    o.way([(-100, -50), (-100, 50), (-100, 150)], [("highway", "residential")])
    o.way([(200, -50), (200, 50), (200, 150)], [("highway", "residential")])
    o.way([(-100, 50), (0, 50)], [("highway", "footway")])
    o.way([(100, 50), (200, 50)], [("highway", "footway")])
    # a street to the north, reached from the rest only across the square plaza
    o.way([(-60, 200), (-50, 200), (-20, 200), (50, 200), (120, 200), (130, 200), (160, 200)],
          [("highway", "residential")])
    o.way([(50, 200), (50, 99.8)], [("highway", "footway")])
    # the square plaza, its W and E side points are vertices of its outline
    o.way([(0, 0), (100, 0), (100, 50), (100, 100), (0, 100), (0, 50)], list(plaza_tags), closed=True)
    # an L-shaped plaza reached from the east street by two footways
    o.way([(300, 0), (400, 0), (400, 20), (400, 40), (340, 40), (340, 100), (320, 100), (300, 100)],
          list(plaza_tags), closed=True)
    o.way([(200, -50), (400, -50), (400, 0)], [("highway", "footway")])
    o.way([(320, 100), (320, 150), (200, 150)], [("highway", "footway")])
    o.way([(400, 20), (450, 20)], [("highway", "footway")])     # A, a dead end beyond it
    # a named plaza (a square) and an unnamed one, both walkable, touching the north street
    o.way([(-50, 200), (-50, 230), (-20, 230), (-20, 200)],
          [("highway", "pedestrian"), ("area", "yes"), ("name", "Plaza Mayor")], closed=True)
    o.way([(120, 200), (120, 210), (130, 210), (130, 200)],
          [("highway", "pedestrian"), ("area", "yes")], closed=True)
    o.way([(-140, 40), (-120, 40), (-120, 60), (-140, 60)],
          [("building", "residential"), ("building:levels", "4")], closed=True)
    o.node(230, 50, [("shop", "supermarket"), ("name", "Mercado Este")])
    # a footway along the plaza's south side (the same two nodes as its outline) and a café
    # 1 m from it
    o.way([(0, 0), (100, 0)], [("highway", "footway")])
    o.node(50, -1, [("amenity", "cafe"), ("name", "Café Sur")])
    return o.text()


@pytest.fixture(scope="module")
def plaza_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("plaza") / "plaza.osm"
    path.write_text(district(), encoding="utf-8")
    return path


def _graph(net):
    g = nx.Graph()
    for u, v, w in zip(net.edge_u, net.edge_v, net.edge_len):
        if not g.has_edge(u, v) or g[u][v]["w"] > w:
            g.add_edge(int(u), int(v), w=float(w))
    return g


def _proj(net, x, y):
    """(x, y) metres of the local frame in the network's CRS."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    return np.array(t.transform(*local_xy(x, y)))


def _node_at(net, x, y):
    """The network node nearest to (x, y) metres of the local frame, and its distance."""
    px, py = _proj(net, x, y)
    d = np.hypot(net.node_x - px, net.node_y - py)
    return int(np.argmin(d)), float(d.min())


def _straight(net, *pts):
    """Length (network CRS) of the straight walk through the frame points ``pts``."""
    xy = np.array([_proj(net, *p) for p in pts])
    return float(np.hypot(*np.diff(xy, axis=0).T).sum())


def _network(path, areas=True):
    data = read_osm(path)
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return data, build_network(data.streets, crs, areas=data.features if areas else None,
                               contract=False, prune=False)


def _dist(net, a, b):
    (i, di), (j, dj) = _node_at(net, *a), _node_at(net, *b)
    assert di < 0.05 and dj < 0.05, "no network node where the plaza is entered"
    g = _graph(net)
    try:
        return nx.shortest_path_length(g, i, j, weight="w")
    except nx.NetworkXNoPath:
        return math.inf


def test_plaza_is_walked_straight_across(plaza_file):
    _, net = _network(plaza_file)
    # W (0, 50) to E (100, 50): 100 m straight across, not 200 m around the outline
    assert _dist(net, (0, 50), (100, 50)) == pytest.approx(_straight(net, (0, 50), (100, 50)), abs=1e-3)
    assert _dist(net, (0, 50), (100, 50)) == pytest.approx(100.0, rel=0.005)
    # the footway ending 0.2 m inside the plaza enters it: (50, 99.8) to W
    assert _dist(net, (50, 99.8), (0, 50)) == pytest.approx(_straight(net, (50, 99.8), (0, 50)), abs=1e-3)
    # the L-shaped plaza is crossed round its reflex corner (340, 40): A (400, 20) to B (320, 100),
    # 126.5 m (the outline is 160 m; straight across would leave the plaza)
    want = _straight(net, (400, 20), (340, 40), (320, 100))
    assert want == pytest.approx(math.hypot(60, 20) + math.hypot(20, 60), rel=0.005)
    assert _dist(net, (400, 20), (320, 100)) == pytest.approx(want, abs=1e-3)


def test_without_plazas_the_two_sides_are_apart(plaza_file):
    """The same data with pedestrian areas ignored (the former behaviour): the west, east
    and north streets only meet across the plaza."""
    _, net = _network(plaza_file, areas=False)
    g = _graph(net)
    west, east, north = (_node_at(net, *p)[0] for p in [(-100, 50), (200, 50), (50, 200)])
    assert not nx.has_path(g, west, east) and not nx.has_path(g, west, north)
    _, net = _network(plaza_file)
    g = _graph(net)
    west, east, north = (_node_at(net, *p)[0] for p in [(-100, 50), (200, 50), (50, 200)])
    assert nx.has_path(g, west, east) and nx.has_path(g, west, north)


def test_closed_plaza_stays_out(tmp_path):
    path = tmp_path / "closed.osm"
    path.write_text(district((("highway", "pedestrian"), ("area", "yes"), ("access", "private"))),
                    encoding="utf-8")
    _, net = _network(path)
    assert _dist(net, (0, 50), (100, 50)) == math.inf


def test_home_reaches_the_supermarket_across_the_plaza(plaza_file):
    """Home centroid (-130, 50): leg 30 m to the west street, 100 m footway, 100 m across the
    plaza, 100 m footway, leg 30 m to the supermarket: 360 m at 4 km/h = 5.4 min."""
    r = lifecircle.analyze(plaza_file)
    assert len(r.homes) == 1
    got = r.homes[col.time("supermarket")].iloc[0]
    assert got == pytest.approx(360 / (4000 / 60), rel=0.005)
    assert r.network_report["components_dropped"] == 0
    # plazas carry walks; homes and facilities attach to the mapped ways only
    assert r.network.edge_area.any()
    assert not r.network.edge_area[r.home_snap.edge].any()
    assert not r.network.edge_area[r.facility_snap.edge[r.facility_snap.reachable]].any()
    # the footway along the plaza's edge is kept as the mapped way (not the outline's copy)
    cafe = np.flatnonzero(r.facilities["name"].to_numpy() == "Café Sur")[0]
    assert r.facility_snap.leg[cafe] == pytest.approx(1.0, abs=0.01)
    assert r.network.edge_highway[r.facility_snap.edge[cafe]] == "footway"


def test_plaza_edges_survive_save_and_load(plaza_file, tmp_path):
    """A saved analysis keeps which edges are plaza edges: later snapping (what-ifs, idle
    sites) still attaches points to mapped ways only."""
    from lifecircle.io.outputs import write_outputs

    r = lifecircle.analyze(plaza_file)
    write_outputs(r, tmp_path)
    again = lifecircle.load(tmp_path)
    np.testing.assert_array_equal(again.network.edge_area, r.network.edge_area)
    assert again.network_report == r.network_report


def test_only_named_or_place_square_plazas_are_squares(plaza_file):
    data = read_osm(plaza_file)
    fac = classify_features(data.features, load_profile("default"))
    squares = fac[fac[col.CATEGORY] == "public_square"]
    assert list(squares["name"]) == ["Plaza Mayor"]
    # place=square without a name still is one
    tagged = district((("highway", "pedestrian"), ("area", "yes"), ("place", "square")))
    path = plaza_file.parent / "square.osm"
    path.write_text(tagged, encoding="utf-8")
    fac = classify_features(read_osm(path).features, load_profile("default"))
    assert (fac[col.CATEGORY] == "public_square").sum() == 3


@pytest.fixture(scope="module")
def helsinki_both():
    """The embedded Helsinki sample analysed with and without its 49 pedestrian areas."""
    from unittest import mock

    from lifecircle.core import network as N
    from lifecircle.io.sources import embedded_sample

    real = N.build_network

    def no_plazas(*a, **k):
        return real(*a, **{**k, "areas": None})

    path = embedded_sample("helsinki")
    with_ = lifecircle.analyze(path)
    with mock.patch("lifecircle.pipeline.build_network", no_plazas):
        without = lifecircle.analyze(path)
    return with_, without


def test_plazas_never_lengthen_a_walk(helsinki_both):
    """Plazas only add walkable ground: with the same home and facility snaps, no nearest
    minute to a point category grows (a footway along a plaza's edge stays the segment points attach to)."""
    a, b = helsinki_both
    assert a.network.edge_area.sum() > 100 and b.network.edge_area is not None
    assert not b.network.edge_area.any()
    same = (np.abs(np.nan_to_num(a.home_snap.leg, nan=-1) - np.nan_to_num(b.home_snap.leg, nan=-1)) < 1e-9) \
        & ~a.home_snap.ambiguous & ~b.home_snap.ambiguous
    cat_of = a.facilities[col.CATEGORY].to_numpy()
    fac_same = (np.abs(np.nan_to_num(a.facility_snap.leg, nan=-1) - np.nan_to_num(b.facility_snap.leg, nan=-1)) < 1e-9) \
        & ~a.facility_snap.ambiguous & ~b.facility_snap.ambiguous
    # (footways that only reach the network across a plaza are now kept, and a facility or
    # home nearer to one of them attaches there: those are not compared)
    assert same.mean() > 0.8
    shorter = compared = 0
    point = shapely.get_type_id(a.facilities.geometry.to_numpy()) == 0
    for c in a.profile.categories:
        k = cat_of == c.id
        # point categories: an area crossed by several streets is entered wherever the
        # nearest-edge query lands first, which differs with the edges' cut points
        if not k.any() or not point[k].all() or not fac_same[k].all():
            continue
        ta = np.nan_to_num(a.homes[col.time(c.id)].to_numpy(float)[same], nan=np.inf)
        tb = np.nan_to_num(b.homes[col.time(c.id)].to_numpy(float)[same], nan=np.inf)
        assert (ta <= tb + 1e-9).all(), c.id
        shorter += int((ta < tb - 0.1).sum())
        compared += 1
    assert compared >= 4
    assert shorter > 0     # and somewhere a plaza is a shortcut
