"""End to end on real extracts, cross-checked against brute-force networkx and shapely."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from bruteforce import nearest_minutes, split_graph
from conftest import shared_file

import lifecircle
from lifecircle import columns as col
from lifecircle.core.coverage import gini
from lifecircle.io.sources import embedded_sample


def _crosscheck(result, n_categories=8, tol_min=0.01):
    """Nearest minutes equal a networkx Dijkstra on the graph split at every point."""
    cats = [c for c in result.profile.categories if len(result.category_facilities(c.id))]
    cats = sorted(cats, key=lambda c: -len(result.category_facilities(c.id)))[:n_categories]
    fac_snaps = [result.facility_snap.take(result.category_facilities(c.id)) for c in cats]
    g = split_graph(result.network, result.home_snap, fac_snaps)
    unambiguous = ~result.home_snap.ambiguous & result.home_snap.reachable
    assert unambiguous.sum() > 0.5 * len(result.homes)
    checked = 0
    for i, c in enumerate(cats):
        want = nearest_minutes(g, len(result.homes), len(fac_snaps[i]), i)
        want[want > result.settings.max_minutes] = np.nan
        got = result.homes[col.time(c.id)].to_numpy(float)
        np.testing.assert_allclose(got[unambiguous], want[unambiguous], atol=tol_min,
                                   equal_nan=True, err_msg=c.id)
        checked += int(np.isfinite(want[unambiguous]).sum())
    assert checked > 100


@pytest.mark.shared
def test_nanjing_nearest_minutes_match_networkx(nanjing):
    _crosscheck(nanjing)


def test_helsinki_nearest_minutes_match_networkx(helsinki):
    _crosscheck(helsinki)


def test_snap_is_nearest_edge_by_brute_force(helsinki):
    """The snap leg equals the distance to the closest edge found by checking every edge."""
    net = helsinki.network
    pts = helsinki.homes.geometry.to_numpy()[:60]
    d = shapely.distance(pts[:, None], net.edge_geom[None, :])
    best = d.min(axis=1)
    snap = helsinki.home_snap
    ok = snap.reachable[:60]
    np.testing.assert_allclose(snap.leg[:60][ok], best[ok], atol=1e-6)
    assert np.all(best[~ok] > helsinki.settings.max_snap_m)


def test_partial_edge_and_leg_count(helsinki):
    """Walking time includes the straight leg and the partial edge: a home's time to a
    facility is at least its leg plus the facility's leg (over the speed)."""
    h = helsinki.homes
    speed = helsinki.network.speed_mps
    for c in ("restaurant", "bus_stop"):
        idx = helsinki.category_facilities(c)
        t = h[col.time(c)].to_numpy(float)
        min_fac_leg = helsinki.facility_snap.leg[idx].min()
        ok = np.isfinite(t)
        assert np.all(t[ok] * 60 + 1e-9 >= (helsinki.home_snap.leg[ok] + min_fac_leg) / speed)


def test_counts_are_consistent(helsinki):
    h = helsinki.homes
    status = helsinki.data_status
    for c in helsinki.profile.categories:
        if status[c.id] == col.STATUS_NO_DATA:   # unknown, not zero
            assert h[col.count(c.id, 15)].isna().all(), c.id
            continue
        n5, n10, n15 = (h[col.count(c.id, m)].to_numpy() for m in (5, 10, 15))
        assert np.all(n5 <= n10) and np.all(n10 <= n15)
        t = h[col.time(c.id)].to_numpy(float)
        within = np.nan_to_num(t, nan=np.inf) <= 15
        # a home has a facility within 15 minutes exactly when its count is positive
        np.testing.assert_array_equal(n15 > 0, within, err_msg=c.id)


def test_opt_in_metrics_add_columns_and_change_nothing_else(helsinki, tmp_path):
    """k-nearest mean, decay and 2SFCA are opt-in (``metrics``): the default table has none
    of their columns, asking for them adds exactly one of each per category, and every other
    column (minutes, counts, coverage, scores) is identical either way."""
    every = lifecircle.analyze(embedded_sample("helsinki"), metrics="all")
    h, a = helsinki.homes, every.homes
    cats = helsinki.profile.category_ids
    opt = [f(c) for c in cats for f in (col.kmean, col.decay, col.sfca)]
    assert not set(opt) & set(h.columns) and set(opt) <= set(a.columns)
    assert [c for c in a.columns if c not in opt] == list(h.columns)
    for c in h.columns:
        if c == "geometry":
            assert h.geometry.geom_equals(a.geometry).all()
        else:
            pd.testing.assert_series_equal(h[c], a[c], check_exact=True, obj=c)
    pd.testing.assert_frame_equal(helsinki.summary, every.summary, check_exact=True)
    n = h[col.count("bus_stop", 15)]
    assert n.dtype == np.int16 and n.max() > 0      # counts: small exact integers
    # the opt-in values are real: decay sums at most the 15-minute count, and is positive
    # exactly where something lies within reach; a 2SFCA ratio where a facility is in reach
    g = a[col.decay("bus_stop")].to_numpy(float)
    ok = a[col.REACHABLE].to_numpy(bool)
    assert np.all(g[ok] <= n.to_numpy()[ok] + 1e-12)
    np.testing.assert_array_equal(g[ok] > 0, a[col.count("bus_stop", 15)].to_numpy()[ok] > 0)
    k = a[col.kmean("bus_stop")].to_numpy(float)
    assert np.all(k[ok] >= a[col.time("bus_stop")].to_numpy(float)[ok] - 1e-12)
    # saved and loaded back, the folder remembers what was asked for
    every.save(tmp_path / "all", map_html=False)
    assert json.loads((tmp_path / "all" / "meta.json").read_text())["settings"]["metrics"] == \
        ["time", "count", "kmean", "decay", "sfca"]
    back = lifecircle.load(tmp_path / "all")
    assert back.settings.metrics == every.settings.metrics and col.sfca("bus_stop") in back.homes
    # minutes only (no reach pass at all): the same minutes and scores, no count columns
    bare = lifecircle.analyze(embedded_sample("helsinki"), metrics="time").homes
    assert not any(col.parse(c) and col.parse(c)[0] == "n15" for c in bare.columns)
    assert [c for c in h.columns if not (col.parse(c) or ("",))[0].startswith("n")] == list(bare.columns)
    for c in bare.columns.drop("geometry"):
        pd.testing.assert_series_equal(h[c], bare[c], check_exact=True, obj=c)


def test_score_formula(helsinki):
    """Recompute the score from the t_ columns with the documented formula: over categories
    with data (``score``) and over all of them (``score_allcat``)."""
    h = helsinki.homes
    prof = helsinki.profile
    status = helsinki.data_status
    assert col.STATUS_NO_DATA in status.values()     # the sample lacks some categories
    for only_data, column in ((True, col.SCORE), (False, col.SCORE_ALL_CATEGORIES)):
        dims = []
        for d in prof.dimensions:
            acc = []
            cats = [c for c in d.categories if not only_data or status[c.id] != col.STATUS_NO_DATA]
            if not cats:
                continue
            for c in cats:
                t = h[col.time(c.id)].to_numpy(float)
                a = np.clip((2 * c.minutes - t) / c.minutes, 0, 1)
                acc.append(np.where(np.isnan(t), 0.0, a) * c.weight)
            dims.append(100 * np.sum(acc, axis=0) / sum(c.weight for c in cats))
        score = np.mean(dims, axis=0)
        ok = h[col.REACHABLE].to_numpy(bool)
        np.testing.assert_allclose(h[column].to_numpy(float)[ok], score[ok], atol=1e-9)
        assert 0 <= np.nanmin(h[column]) and np.nanmax(h[column]) <= 100
    assert (h[col.SCORE] >= h[col.SCORE_ALL_CATEGORIES] - 1e-9).all()


def test_gini_known_values():
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)
    # population weights act like repeated values
    assert gini([1, 2], [3, 1]) == pytest.approx(gini([1, 1, 1, 2]))


def test_summary_is_population_weighted(helsinki):
    h = helsinki.homes[helsinki.homes[col.REACHABLE]]
    s = helsinki.summary
    row = s[(s.level == "category") & (s.id == "pharmacy") & (s.community == "ALL")].iloc[0]
    t = h[col.time("pharmacy")].to_numpy(float)
    pop = h[col.POPULATION].to_numpy(float)
    want = pop[np.nan_to_num(t, nan=np.inf) <= 5].sum() / pop.sum()
    assert row.covered == pytest.approx(want)


def test_speed_changes_minutes():
    slow = lifecircle.analyze(embedded_sample("helsinki"), speed=3.0)
    fast = lifecircle.analyze(embedded_sample("helsinki"), speed=4.0)
    a = slow.homes[col.time("restaurant")].to_numpy(float)
    b = fast.homes[col.time("restaurant")].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    np.testing.assert_allclose(a[ok], b[ok] * 4.0 / 3.0, rtol=1e-9)


def test_saved_outputs_roundtrip(helsinki, tmp_path):
    out = tmp_path / "run"
    helsinki.save(out)
    layers = set(gpd.list_layers(out / "lifecircle.gpkg")["name"])
    assert {"homes", "facilities", "streets"} <= layers
    homes = gpd.read_file(out / "lifecircle.gpkg", layer="homes")
    assert {col.POPULATION, col.SCORE, col.time("bus_stop")} <= set(homes.columns)
    fac = gpd.read_file(out / "lifecircle.gpkg", layer="facilities")
    assert {col.CATEGORY, col.DIMENSION, col.NAME} <= set(fac.columns)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.level) == {"category", "dimension", "overall"}
    # every export carries the OSM attribution and the data date
    assert (summary["attribution"] == "© OpenStreetMap contributors, data 2019-04-21").all()
    about = gpd.read_file(out / "lifecircle.gpkg", layer="about")
    assert about["attribution"].iloc[0] == "© OpenStreetMap contributors, data 2019-04-21"
    html = (out / "map.html").read_text(encoding="utf-8")
    # folium writes the attribution into a JSON string, where © may be escaped
    assert ("© OpenStreetMap contributors" in html or "\\u00a9 OpenStreetMap contributors" in html)
    assert "2019-04-21" in html
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data_date"] == "2019-04-21"
    back = lifecircle.load(out)
    np.testing.assert_allclose(back.homes[col.SCORE].to_numpy(float),
                               helsinki.homes[col.SCORE].to_numpy(float), equal_nan=True)
    # the reloaded network computes the same minutes
    idx = back.category_facilities("bus_stop")
    t = back.engine.nearest([back.facility_snap.take(idx)])[0]
    np.testing.assert_allclose(t, helsinki.homes[col.time("bus_stop")].to_numpy(float),
                               atol=1e-9, equal_nan=True)


def test_saved_folder_is_self_contained(tmp_path):
    """A folder keeps its profile as it was and the OSM features: moving it, editing the
    profile file or removing the source changes nothing a later command reads."""
    from lifecircle.core.profiles import profiles_dir

    own = tmp_path / "mine.yaml"
    own.write_text((profiles_dir() / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    src = tmp_path / "helsinki.osm.pbf"
    src.write_bytes(embedded_sample("helsinki").read_bytes() if hasattr(embedded_sample("helsinki"), "read_bytes")
                    else open(embedded_sample("helsinki"), "rb").read())
    r = lifecircle.analyze(src, profile=own)
    out = tmp_path / "a" / "run"
    r.save(out, map_html=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == 3
    own.write_text("not: a profile\n", encoding="utf-8")   # edited after the analysis
    src.unlink()                                              # and the source is gone
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    back = lifecircle.load(moved / "run")
    assert [c.id for c in back.profile.categories] == [c.id for c in r.profile.categories]
    assert len(back.features) == len(r.features)
    assert back.features["tags"].iloc[0] == r.features["tags"].iloc[0]


@pytest.mark.shared
def test_boundary_gives_communities(tmp_path):
    path = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    west = shapely.box(118.768, 32.035, 118.780, 32.050)
    east = shapely.box(118.780, 32.035, 118.792, 32.050)
    b = gpd.GeoDataFrame({"name": ["西片", "东片"]}, geometry=[west, east], crs="EPSG:4326")
    bfile = tmp_path / "b.gpkg"
    b.to_crs("EPSG:32650").to_file(bfile)  # any CRS
    r = lifecircle.analyze(path, boundary=bfile)
    assert set(r.homes[col.COMMUNITY].dropna()) == {"西片", "东片"}
    assert set(r.summary.community) == {"ALL", "西片", "东片"}
    # homes outside the boundary are gone, but facilities within the margin stay
    inside = shapely.union_all([west, east])
    pts = r.homes.to_crs("EPSG:4326").geometry.to_numpy()
    assert shapely.intersects(pts, inside.buffer(1e-6)).all()
    fac = r.facilities.to_crs("EPSG:4326").geometry.to_numpy()
    assert (~shapely.intersects(fac, inside)).any()


@pytest.mark.shared
def test_contracted_network_gives_the_same_minutes(nanjing):
    """Merging degree-2 chains is exact: the same homes and facilities on the uncontracted
    segment network give the same minutes."""
    from lifecircle.core.engine import AccessEngine
    from lifecircle.core.network import build_network
    from lifecircle.core.snapping import entry_points, snap_points
    from lifecircle.io.sources import read_osm

    data = read_osm(shared_file("china/nanjing_xinjiekou_2021.osm.pbf"))
    plain = build_network(data.streets, nanjing.crs, nanjing.settings, contract=False,
                          areas=data.features)
    assert plain.n_nodes > 2 * nanjing.network.n_nodes
    hs = snap_points(plain, nanjing.homes.geometry.to_numpy(), nanjing.settings.max_snap_m)
    fs = snap_points(plain, entry_points(plain, nanjing.facilities.geometry.to_numpy()),
                     nanjing.settings.max_snap_m)
    eng = AccessEngine(plain, hs, settings=nanjing.settings)
    # point facilities: an area crossed by streets is entered at whichever crossing the
    # nearest-edge query returns first, which may differ between the two networks
    cats = ["bus_stop", "restaurant", "bank", "pharmacy"]
    cat_of = nanjing.facilities["category"].to_numpy()
    got = eng.nearest([fs.take(np.flatnonzero(cat_of == c)) for c in cats])
    ok = ~hs.ambiguous & ~nanjing.home_snap.ambiguous
    for i, c in enumerate(cats):
        want = nanjing.homes[col.time(c)].to_numpy(float)
        np.testing.assert_allclose(got[i][ok], want[ok], atol=1e-6, equal_nan=True, err_msg=c)


@pytest.mark.shared
def test_osm_xml_bz2_and_pbf_give_the_same_network(tmp_path):
    """The .osm.bz2 reader (osmnx) and the PBF reader (pyrosm) see the same walkable streets."""
    import bz2

    from lifecircle.io.sources import read_osm

    xml = shared_file("china/nanjing_xinjiekou_2021.osm")
    packed = tmp_path / "nanjing.osm.bz2"
    packed.write_bytes(bz2.compress(xml.read_bytes()))
    a = read_osm(packed)
    b = read_osm(shared_file("china/nanjing_xinjiekou_2021.osm.pbf"))
    assert a.data_date == "2021-06-12"
    pairs = lambda s: set(map(tuple, np.sort(s[["u", "v"]].to_numpy(), axis=1)))  # noqa: E731
    assert pairs(a.streets) == pairs(b.streets)
    assert abs(len(a.features) - len(b.features)) <= 0.01 * len(b.features)


def test_population_file_overrides_the_estimate(helsinki, tmp_path):
    """Residents of a zone are spread over its homes in proportion to the estimate."""
    homes = helsinki.homes.to_crs("EPSG:4326")
    zone = shapely.box(*homes.total_bounds).buffer(0.001)
    zfile = tmp_path / "zones.geojson"
    gpd.GeoDataFrame({"population": [12345.0]}, geometry=[zone], crs="EPSG:4326").to_file(zfile)
    r = lifecircle.analyze(embedded_sample("helsinki"), population=zfile)
    pop = r.homes[col.POPULATION].to_numpy(float)
    assert pop.sum() == pytest.approx(12345.0)
    est = helsinki.homes[col.POPULATION].to_numpy(float)
    np.testing.assert_allclose(pop, 12345.0 * est / est.sum())


def test_networkx_export_is_osmnx_compatible(helsinki):
    """to_networkx() gives a graph osmnx can read, with each merged chain's geometry (its
    length is the edge length) on both arcs of a two-way street."""
    import osmnx as ox

    net = helsinki.network
    g = net.to_networkx()
    nodes, edges = ox.graph_to_gdfs(g)
    assert len(nodes) == net.n_nodes
    assert len(edges) == net.n_edges + int((~net.edge_oneway).sum())
    np.testing.assert_allclose(edges.geometry.length.to_numpy(), edges["length"].to_numpy(),
                               rtol=1e-6, atol=1e-6)
    # the geometry starts at the arc's own first node
    u = edges.index.get_level_values(0).to_numpy()
    first = np.array([geom.coords[0] for geom in edges.geometry])
    np.testing.assert_allclose(first[:, 0], net.node_x[u], atol=1e-6)
    np.testing.assert_allclose(first[:, 1], net.node_y[u], atol=1e-6)


@pytest.mark.shared
def test_per_home_and_per_facility_passes_agree_on_a_real_city(nanjing):
    """The two ways the engine gathers home-facility pairs (searches from home edge ends, in
    spatial blocks, serving all categories; or one search per facility, which the hypothesis
    tests check against networkx) give the same metrics on a real extract."""
    eng = nanjing.engine
    cats = nanjing.profile.categories
    cat_of = nanjing.facilities[col.CATEGORY].to_numpy()
    snaps = [nanjing.facility_snap.take(np.flatnonzero(cat_of == c.id)) for c in cats]
    caps = [nanjing.facilities[col.CAPACITY].to_numpy(float)[cat_of == c.id] for c in cats]
    sfca_min = [c.minutes for c in cats]
    got = {m: eng.reach(snaps, capacities=caps, sfca_min=sfca_min, method=m, with_nearest=False)
           for m in ("homes", "facilities")}
    a, b = got["homes"], got["facilities"]
    assert len(eng._home_blocks[0]) > 2          # more than one block of home edges
    assert a.counts.sum() > 1000
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.found, b.found)
    for name in ("kmean", "decay", "sfca"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12,
                                   equal_nan=True, err_msg=name)
    # nearest minutes from the per-home pass (max_minutes within the reach limit)
    from lifecircle.core.engine import AccessEngine

    eng15 = AccessEngine(nanjing.network, nanjing.home_snap,
                         settings=nanjing.settings.with_(max_minutes=15.0))
    near = eng15.reach(snaps, thresholds_min=(15,), k=0, method="homes").nearest
    np.testing.assert_allclose(near, eng15.nearest(snaps), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("given, expected", [
    ({}, ("time", "count")),
    ({"k_nearest": 5}, ("time", "count", "kmean")),
    ({"decay": "gaussian"}, ("time", "count", "decay")),
    ({"decay_beta": 0.2}, ("time", "count", "decay")),
    ({"sfca_minutes": 10}, ("time", "count", "sfca")),
    ({"metrics": "time", "sfca_minutes": 10}, ("time", "sfca")),
])
def test_a_metric_setting_brings_its_metric(given, expected):
    from lifecircle.settings import Settings

    assert Settings(**given).metrics == expected


def test_all_with_an_unknown_metric_is_refused():
    from lifecircle.errors import SettingsError
    from lifecircle.settings import Settings

    with pytest.raises(SettingsError, match="sfcaa"):
        Settings(metrics="all,sfcaa")
