"""Homes and facilities attach only to the walking network's connected part: small pieces
(an indoor corridor cluster, a stub cut off by a foot=no tunnel) are left out and reported.
Checked on a district drawn by hand and, on real extracts, against networkx on the largest
connected component found independently."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import shapely
from bruteforce import nearest_minutes, split_graph
from conftest import shared_file
from synthetic_osm import LocalOsm

import lifecircle
from lifecircle import columns as col
from lifecircle.core.engine import AccessEngine
from lifecircle.core.network import WalkNetwork, build_network, prune_components
from lifecircle.core.snapping import snap_facilities, snap_points
from lifecircle.io.outputs import write_outputs
from lifecircle.io.sources import embedded_sample, read_osm

WALK = 4000 / 60   # metres per minute at 4 km/h


def test_prune_keeps_the_largest_piece_and_big_enough_others():
    # pieces: A 0-1-2 (2 km), B 3-4 (150 m), C 5-6 (1.2 km, 60% of A), D 7-8 (900 m, 45%)
    u = np.array([0, 1, 3, 5, 7])
    v = np.array([1, 2, 4, 6, 8])
    length = np.array([1000.0, 1000.0, 150.0, 1200.0, 900.0])
    keep_e, keep_n, rep = prune_components(10, u, v, length, min_share=0.1, min_m=1000.0)
    assert keep_e.tolist() == [True, True, False, True, False]
    assert keep_n.tolist() == [True, True, True, False, False, True, True, False, False, False]
    assert rep["components"] == 4 and rep["components_dropped"] == 2
    assert rep["segments_dropped"] == 2 and rep["nodes_dropped"] == 4
    assert rep["length_dropped_m"] == 1050.0 and rep["largest_dropped_m"] == 900.0
    # a share of 70% leaves C out too; the largest always stays
    keep_e, _, _ = prune_components(10, u, v, length, min_share=0.7, min_m=0.0)
    assert keep_e.tolist() == [True, True, False, False, False]
    keep_e, _, _ = prune_components(10, u, v, length, min_share=2.0, min_m=1e9)
    assert keep_e.tolist() == [True, True, False, False, False]


def fragment_district() -> str:
    """A street along y = 0 (x -200..400). A home (building centred at (0, 30)) has an indoor
    corridor pair 8 m away at y = 22 (x -30..30), the street 30 m away; a pharmacy at
    (40, 24) is 10.2 m from the corridor's end, 24 m from the street; a supermarket at
    (300, 20)."""
    o = LocalOsm()
    o.way([(-200, 0), (0, 0), (40, 0), (300, 0), (400, 0)], [("highway", "residential")])
    o.way([(-30, 22), (0, 22), (30, 22)], [("highway", "corridor"), ("indoor", "yes")])
    o.way([(-10, 20), (10, 20), (10, 40), (-10, 40)],
          [("building", "apartments"), ("building:levels", "5")], closed=True)
    o.node(40, 24, [("amenity", "pharmacy"), ("name", "Farmacia")])
    o.node(300, 20, [("shop", "supermarket"), ("name", "Super")])
    return o.text()


@pytest.fixture(scope="module")
def fragment_result(tmp_path_factory):
    path = tmp_path_factory.mktemp("fragment") / "fragment.osm"
    path.write_text(fragment_district(), encoding="utf-8")
    return lifecircle.analyze(path)


def test_home_next_to_a_corridor_cluster_reaches_the_street(fragment_result):
    r = fragment_result
    assert len(r.homes) == 1
    home = r.homes.iloc[0]
    assert home[col.REACHABLE]
    assert home[col.SNAP_LEG_M] == pytest.approx(30.0, rel=0.01)
    # 30 m leg, 300 m along the street, 20 m leg; and 30 + 40 + 24 m to the pharmacy
    assert home[col.time("supermarket")] == pytest.approx(350 / WALK, rel=0.005)
    assert home[col.time("pharmacy")] == pytest.approx(94 / WALK, rel=0.005)
    rep = r.network_report
    assert rep["components_dropped"] == 1 and rep["segments_dropped"] == 2
    assert rep["homes_reattached"] == 1 and rep["facilities_reattached"] == 1
    assert rep["homes_stranded"] == 0 and rep["facilities_stranded"] == 0
    assert any("left out 1 small disconnected piece" in n for n in r.notes)


def test_network_report_is_saved_in_meta(fragment_result, tmp_path):
    write_outputs(fragment_result, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    assert meta["network"]["homes_reattached"] == 1
    assert meta["network"]["components_dropped"] == 1
    again = lifecircle.load(tmp_path)
    assert again.network_report == fragment_result.network_report


def test_stranded_when_only_a_fragment_is_near(tmp_path):
    """A home within max_snap of the corridor only is unreachable, and counted so."""
    o = LocalOsm()
    o.way([(-200, 0), (400, 0)], [("highway", "residential")])
    o.way([(-30, 400), (30, 400)], [("highway", "corridor")])
    o.way([(-10, 410), (10, 410), (10, 430), (-10, 430)], [("building", "house")], closed=True)
    o.way([(-10, 20), (10, 20), (10, 40), (-10, 40)], [("building", "house")], closed=True)
    o.node(300, 20, [("shop", "supermarket"), ("name", "Super")])
    path = tmp_path / "stranded.osm"
    path.write_text(o.text(), encoding="utf-8")
    r = lifecircle.analyze(path)
    assert r.homes[col.REACHABLE].sum() == 1
    assert r.network_report["homes_stranded"] == 1


# --------------------------------------------------------------------------------------------
# real extracts


def _largest_component_network(net: WalkNetwork) -> WalkNetwork:
    """The largest weakly connected piece of ``net`` (by street length), found with networkx."""
    g = net.to_networkx()
    best, best_len = None, -1.0
    for comp in nx.weakly_connected_components(g):
        length = sum(d["length"] for _, _, d in g.subgraph(comp).edges(data=True))
        if length > best_len:
            best, best_len = comp, length
    nodes = np.array(sorted(best))
    new = np.full(net.n_nodes, -1)
    new[nodes] = np.arange(len(nodes))
    e = np.flatnonzero(np.isin(net.edge_u, nodes))
    return WalkNetwork(net.crs, net.node_osmid[nodes], net.node_x[nodes], net.node_y[nodes],
                       new[net.edge_u[e]], new[net.edge_v[e]], net.edge_len[e], net.edge_oneway[e],
                       net.edge_geom[e], net.speed_mps,
                       edge_area=net.edge_area[e] if net.edge_area is not None else None)


@pytest.fixture(scope="module", params=["nanjing", "helsinki"])
def real(request):
    """The OSM data and the session's analysis (conftest) of Nanjing and Helsinki."""
    path = shared_file("china/nanjing_xinjiekou_2021.osm.pbf") if request.param == "nanjing" \
        else embedded_sample("helsinki")
    return read_osm(path), request.getfixturevalue(request.param)


@pytest.mark.shared
def test_engine_on_the_main_connected_part_equals_networkx(real):
    """Build the network without pruning, take its largest piece with networkx, attach homes
    and facilities to it, and walk with networkx: every (home, category) minute agrees with
    analyze (unambiguous snaps)."""
    data, r = real
    full = build_network(data.streets, r.crs, r.settings, areas=data.features, prune=False)
    main = _largest_component_network(full)
    assert main.n_edges < full.n_edges            # there were pieces to leave out
    assert r.network.edge_len.sum() == pytest.approx(main.edge_len.sum(), rel=1e-9)
    hs = snap_points(main, r.homes.geometry.to_numpy(), r.settings.max_snap_m)
    fs = snap_facilities(main, r.facilities.geometry.to_numpy(), r.settings.max_snap_m)
    np.testing.assert_array_equal(hs.reachable, r.home_snap.reachable)
    cat_of = r.facilities[col.CATEGORY].to_numpy()
    cats = [c.id for c in r.profile.categories if (cat_of == c.id).sum()]
    cats = sorted(cats, key=lambda c: -(cat_of == c).sum())[:8]
    snaps = [fs.take(np.flatnonzero(cat_of == c)) for c in cats]
    g = split_graph(main, hs, snaps)
    ok = ~hs.ambiguous & ~r.home_snap.ambiguous & hs.reachable
    assert ok.sum() > 0.5 * len(r.homes)
    for i, c in enumerate(cats):
        want = nearest_minutes(g, len(r.homes), len(snaps[i]), i)
        want[want > r.settings.max_minutes] = np.nan
        got = r.homes[col.time(c)].to_numpy(float)
        np.testing.assert_allclose(got[ok], want[ok], atol=1e-6, equal_nan=True, err_msg=c)
    # the engine agrees too, run again on the independently found piece
    eng = AccessEngine(main, hs, settings=r.settings)
    again = eng.nearest(snaps)
    for i, c in enumerate(cats):
        np.testing.assert_allclose(again[i][ok], r.homes[col.time(c)].to_numpy(float)[ok],
                                   atol=1e-9, equal_nan=True, err_msg=c)


@pytest.mark.shared
def test_no_home_is_nan_everywhere_next_to_a_connected_street(real):
    """A home within max_snap of the connected network reaches something: no reachable
    home reads NaN in every category (the symptom of a home caught by a fragment)."""
    _, r = real
    times = r.homes[[col.time(c.id) for c in r.profile.categories]].to_numpy(float)
    reach = r.homes[col.REACHABLE].to_numpy(bool)
    nan_everywhere = np.isnan(times).all(axis=1)
    assert not (nan_everywhere & reach).any()
    # and every home the kept network has within max_snap is attached to it
    d = shapely.distance(r.homes.geometry.to_numpy(),
                         r.network.edge_geom[r.network.tree.nearest(r.homes.geometry.to_numpy())])
    np.testing.assert_array_equal(reach, d <= r.settings.max_snap_m)
