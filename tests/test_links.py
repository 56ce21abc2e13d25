"""New walking links: exact gains against hand computation and against a full re-analysis
with the link added (split edges, engine re-run; the engine itself matches networkx)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle import columns as col
from lifecircle.analyses.links import prepare, read_candidates, score_candidates, scorer_for
from lifecircle.core.coverage import home_scores
from lifecircle.core.engine import AccessEngine, LinkScorer
from lifecircle.core.network import WalkNetwork, split_and_link
from lifecircle.core.profiles import load_profile
from lifecircle.core.snapping import Snap, snap_points
from lifecircle.result import Result
from lifecircle.settings import DEFAULTS

CRS = "EPSG:32650"
X0, Y0 = 500000.0, 3500000.0
SPEED = DEFAULTS.walk_speed_mps


# --------------------------------------------------------------------------------------------
# the hand-built case: street A (y = 0) with homes, street B (y = 100) with facilities, joined
# only by a detour 600 m east, 100 m north and back (1,300 m from A's east end to B's)


def _two_streets():
    xs = [0, 400, 0, 400, 1000, 1000]
    ys = [0, 0, 100, 100, 0, 100]
    u = [0, 2, 1, 4, 5]
    v = [1, 3, 4, 5, 3]
    net = WalkNetwork.from_arrays(np.array(xs) + X0, np.array(ys) + Y0, u, v, crs=CRS)
    home_x = np.arange(50.0, 400.0, 50.0)                 # 7 homes on A
    pop = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0])
    fac = [("kindergarten", 50.0), ("community_health_station", 350.0)]
    homes = gpd.GeoDataFrame({col.HOME_ID: np.arange(7), col.POPULATION: pop,
                              col.REACHABLE: True},
                             geometry=shapely.points(home_x + X0, np.full(7, Y0)), crs=CRS)
    facilities = gpd.GeoDataFrame({col.CATEGORY: [f[0] for f in fac], col.CAPACITY: 1.0},
                                  geometry=shapely.points([f[1] + X0 for f in fac], [Y0 + 100] * len(fac)),
                                  crs=CRS)
    hs = snap_points(net, homes.geometry.to_numpy(), 300.0)
    fs = snap_points(net, facilities.geometry.to_numpy(), 300.0)
    prof = load_profile("default")
    res = Result(homes, facilities, pd.DataFrame(), prof, DEFAULTS, net, hs, fs, source="hand-built")
    return res, home_x, pop, fac, prof


def _lines(*coords):
    return gpd.GeoDataFrame({"name": [f"L{i}" for i in range(len(coords))], "reason": "test",
                             "source": "test"},
                            geometry=[shapely.linestrings(np.array(c) + [X0, Y0]) for c in coords],
                            crs=CRS)


def test_hand_built_link_ranks_first_with_exactly_the_residents_it_brings():
    res, home_x, pop, fac, prof = _two_streets()
    cands = _lines(
        [(390, 40), (390, 60)],         # L0: ends 40 m from both streets: not snapped
        [(200, 0), (200, 100)],         # L1: the link between the streets, 100 m
        [(100, 100), (200, 160), (300, 100)],  # L2: a detour along B: changes nothing
        [(0, 0), (300, 0)],             # L3: runs along street A
        [(50, 0), (50, 0.1)],           # L4: zero length
        [(200, 100), (200, 0)],         # L5: L1 drawn the other way round
    )
    lr = score_candidates(res, cands, k=2)
    t = lr.table.set_index("name")
    assert t.loc["L0", "status"] == "no_street"
    assert t.loc["L3", "status"] == "duplicates_edge"
    assert t.loc["L4", "status"] == "zero_length"
    assert np.isnan(t.loc["L0", "residents"])          # not scored: missing, never zero
    assert t.loc["L1", "rank"] == 1
    # hand computation: home at x to a facility at f, today via the detour, with the link
    # straight across at x = 200
    expected_res = np.zeros(7, bool)
    expected_cat = {}
    for cid, fx in fac:
        T = prof.category(cid).minutes
        old = ((400 - home_x) + 1300 + (400 - fx)) / SPEED / 60
        new = np.minimum(old, (np.abs(home_x - 200) + 100 + abs(fx - 200)) / SPEED / 60)
        newly = (new <= T) & (old > T)
        expected_cat[cid] = pop[newly].sum()
        expected_res |= newly
        for tier in (5, 10, 15):
            got = t.loc["L1", f"cat_{cid}_{tier}"]
            assert got == pop[(new <= tier) & (old > tier)].sum()
    assert expected_res.any() and not expected_res.all()  # the case discriminates
    assert t.loc["L1", "residents"] == pop[expected_res].sum()
    assert t.loc["L1", "homes"] == expected_res.sum()
    for cid, v in expected_cat.items():
        assert t.loc["L1", f"cat_{cid}"] == v
    assert t.loc["L1", "link_m"] == pytest.approx(100.0)
    num = [c for c in t.columns if t[c].dtype.kind == "f" and c not in ("rank",)]
    assert t.loc["L5", num].tolist() == t.loc["L1", num].tolist()   # direction does not matter
    # a link that changes nothing gains exactly 0
    for c in ("residents", "resident_categories", "score_delta", "minutes_saved", "all6_15"):
        assert t.loc["L2", c] == 0.0
    # the greedy set: the link, then nothing more to gain
    assert lr.chosen["rank"].tolist() == [1]
    # the homes listed for rank 1 are exactly the newly served ones
    assert sorted(lr.gained[1].tolist()) == np.flatnonzero(expected_res).tolist()


def _full_times(res, ee, oo, lm):
    """(C, H) seconds with the links added: split the edges, move the snaps, re-run the engine."""
    net2, remap = split_and_link(res.network, ee, oo, lm)
    hs, fs = res.home_snap, res.facility_snap
    hs2 = hs.moved(remap, "left")
    fs2 = fs.moved(remap, "right")
    eng = AccessEngine(net2, hs2, res.homes[col.POPULATION].to_numpy(float), res.settings)
    cat_of = res.facilities[col.CATEGORY].to_numpy()
    snaps = [fs2.take(np.flatnonzero(cat_of == c.id)) for c in res.profile.categories]
    t = eng.nearest(snaps) * 60.0
    return np.where(np.isfinite(t), t, np.inf)


def _gains_from_times(res, old_s, new_s):
    """Residents newly within each category's threshold, dimension coverage and score change,
    through coverage.home_scores (the analysis's own code), population-weighted."""
    prof = res.profile
    pop = res.homes[col.POPULATION].to_numpy(float)

    def table(t):
        h = pd.DataFrame({col.POPULATION: pop, col.REACHABLE: res.home_snap.edge >= 0})
        for i, c in enumerate(prof.categories):
            m = t[i] / 60.0
            h[col.time(c.id)] = np.where(np.isfinite(m), m, np.nan)
        return home_scores(h, prof, res.settings.dimension_cover_share, res.settings.thresholds_min)

    a, b = table(old_s), table(new_s)
    out = {}
    any_new = np.zeros(len(pop), bool)
    for c in prof.categories:
        to = a[col.time(c.id)].fillna(np.inf).to_numpy()
        tn = b[col.time(c.id)].fillna(np.inf).to_numpy()
        newly = (tn <= c.minutes) & (to > c.minutes)
        out[f"cat_{c.id}"] = pop[newly].sum()
        any_new |= newly
    for d in prof.dimensions:
        if not d.categories:
            continue
        ca = a[col.dim_covered(d.id)].fillna(0).to_numpy() > 0
        cb = b[col.dim_covered(d.id)].fillna(0).to_numpy() > 0
        out[f"dim_{d.id}"] = pop[cb & ~ca].sum()
    reach = res.home_snap.edge >= 0
    out["score_delta"] = float(np.nansum((b[col.SCORE] - a[col.SCORE]).to_numpy() * pop) / pop[reach].sum())
    out["residents"] = pop[any_new].sum()
    all_a = a[col.ALL_SIX_15].fillna(0).to_numpy() > 0
    all_b = b[col.ALL_SIX_15].fillna(0).to_numpy() > 0
    out["all6_15"] = pop[all_b & ~all_a].sum()
    return out


def test_hand_built_scores_equal_full_reanalysis():
    res, *_ = _two_streets()
    cands = _lines([(200, 0), (200, 100)], [(10, 0), (380, 100)], [(400, 0), (400, 100)],
                   [(0, 0), (50, 100)])
    prep = prepare(res.network, cands)
    sc = scorer_for(res)
    for j in range(len(prep.ok)):
        ee, oo, lm = prep.end_edge[2 * j:2 * j + 2], prep.end_off[2 * j:2 * j + 2], prep.link_m[j:j + 1]
        s, new = sc.score(ee, oo, lm, new_times=True)
        full = _full_times(res, ee, oo, lm)
        np.testing.assert_allclose(new, full, rtol=0, atol=1e-9)


@pytest.fixture
def xinjiekou(nanjing):
    """Xinjiekou analysed once per session (conftest); the links code never changes it."""
    return nanjing


def test_scores_equal_full_reanalysis_on_xinjiekou(xinjiekou):
    """Auto candidates and random links on a real extract: per-home times equal a re-run of
    the engine on the network with the link added, and every aggregate (residents per
    category, dimensions, all six, score change) equals the analysis's own coverage code
    applied to those times."""
    from lifecircle.analyses.links import auto_candidates

    res = xinjiekou
    cands = auto_candidates(res)
    assert len(cands) > 10 and cands["reason"].str.len().gt(0).all()
    rng = np.random.default_rng(7)
    net = res.network
    # random short links between random points of random edges
    e = rng.integers(0, net.n_edges, 40)
    pts = shapely.line_interpolate_point(net.edge_geom[e], rng.random(40), normalized=True)
    lines = shapely.linestrings(np.stack([shapely.get_coordinates(pts[0::2]),
                                          shapely.get_coordinates(pts[1::2])], 1))
    rand = gpd.GeoDataFrame({"name": [f"r{i}" for i in range(20)], "reason": "random", "source": "t"},
                            geometry=lines, crs=res.crs)
    allc = gpd.GeoDataFrame(pd.concat([cands, rand], ignore_index=True), geometry="geometry", crs=res.crs)
    prep = prepare(net, allc)
    sc = scorer_for(res)
    s = sc.score(prep.end_edge, prep.end_off, prep.link_m)
    assert (s.residents > 0).sum() >= 3                    # the check below is not vacuous
    best = np.argsort(-s.residents)[:4].tolist() + rng.choice(len(prep.ok), 4, replace=False).tolist()
    prof = res.profile
    dims = [d for d in prof.dimensions]
    for j in best:
        ee, oo, lm = prep.end_edge[2 * j:2 * j + 2], prep.end_off[2 * j:2 * j + 2], prep.link_m[j:j + 1]
        one, new = sc.score(ee, oo, lm, new_times=True)
        full = _full_times(res, ee, oo, lm)
        np.testing.assert_allclose(new, full, rtol=0, atol=1e-6)
        want = _gains_from_times(res, sc.old, full)
        assert s.residents[j] == pytest.approx(want["residents"], abs=1e-6)
        assert s.all6[j] == pytest.approx(want["all6_15"], abs=1e-6)
        assert s.score_delta[j] == pytest.approx(want["score_delta"], abs=1e-9)
        for i, c in enumerate(prof.categories):
            assert s.gain[j, i, 0] == pytest.approx(want[f"cat_{c.id}"], abs=1e-6)
        for i, d in enumerate(dims):
            if d.categories:
                assert s.dim_gain[j, i, 0] == pytest.approx(want[f"dim_{d.id}"], abs=1e-6)


def test_greedy_second_pick_is_scored_on_the_network_with_the_first(xinjiekou):
    from lifecircle.analyses.links import auto_candidates

    res = xinjiekou
    lr = score_candidates(res, auto_candidates(res), k=2)
    assert len(lr.chosen) == 2
    t = lr.table.set_index("rank")
    first, second = lr.chosen["rank"].tolist()
    assert first == 1
    # re-score the second pick by brute force on the network with the first added
    rows = t.loc[[first, second]]
    prep = prepare(res.network, gpd.GeoDataFrame(rows.reset_index(), geometry="geometry", crs=res.crs))
    ee, oo, lm = prep.end_edge, prep.end_off, prep.link_m
    both = _full_times(res, ee, oo, lm)
    only_first = _full_times(res, ee[:2], oo[:2], lm[:1])
    want = _gains_from_times(res, only_first, both)
    assert lr.chosen["residents"].iloc[1] == pytest.approx(want["residents"], abs=1e-6)


def test_candidate_file_gcj02_and_bad_rows(tmp_path):
    from lifecircle.io.chinacoords import wgs84_to_gcj02

    res, *_ = _two_streets()
    # the link across, in GCJ-02 coordinates, and rows that cannot be used
    wgs = _lines([(200, 0), (200, 100)]).to_crs("EPSG:4326").geometry.iloc[0]
    (x1, y1), (x2, y2) = shapely.get_coordinates(wgs)
    g1, g2 = wgs84_to_gcj02(np.array([x1, x2]), np.array([y1, y2]))
    p = tmp_path / "c.csv"
    p.write_text("name,wkt\n"
                 f"=cross,\"LINESTRING ({g1[0]} {g2[0]}, {g1[1]} {g2[1]})\"\n"
                 "broken,not a line\n"
                 f"far,\"LINESTRING ({g1[0] + 0.05} {g2[0]}, {g1[1] + 0.05} {g2[1]})\"\n",
                 encoding="utf-8")
    c = read_candidates(p, res.crs, coords="gcj02")
    lr = score_candidates(res, c, k=1)
    t = lr.table.set_index("name")
    assert t.loc["=cross", "rank"] == 1
    assert t.loc["=cross", "link_m"] == pytest.approx(100.0, abs=0.5)   # GCJ-02 undone
    assert t.loc["broken", "status"] == "no_geometry"
    assert t.loc["far", "status"] == "no_street"
    assert len(lr.table) == 3                         # nothing dropped
    # no formula in the spreadsheets: links.csv prefixes it, links.xlsx stores it as text (as
    # it is: an apostrophe there would be a visible character of the name)
    import openpyxl

    from lifecircle.analyses.links import links_table, write_links

    assert "=cross" in links_table(lr)["name"].tolist()
    out = write_links(lr, tmp_path / "lk")
    assert "'=cross" in pd.read_csv(out / "links.csv")["name"].tolist()
    for sheet in openpyxl.load_workbook(out / "links.xlsx").worksheets[:2]:
        cells = [c for row in sheet.iter_rows() for c in row if c.value == "=cross"]
        assert cells and all(c.data_type == "s" for c in cells), sheet.title


def test_cli_links_writes_outputs_and_fails_cleanly(tmp_path):
    from typer.testing import CliRunner

    from lifecircle.cli.app import app

    res, *_ = _two_streets()
    res.summary = pd.DataFrame({"level": ["overall"], "community": ["ALL"]})
    folder = tmp_path / "run"
    folder.mkdir()
    # a minimal analysis folder is heavy to fake: use the API for writing, the CLI for errors
    from lifecircle.analyses.links import write_links
    from lifecircle.render.maps import links_map, save_map

    lr = score_candidates(res, _lines([(200, 0), (200, 100)], [(100, 100), (200, 160), (300, 100)]), k=2)
    out = write_links(lr, tmp_path / "out", lang="zh", extra=lambda p: save_map(
        links_map(lr, lang="zh", basemap="blank"), p / "links_map.html", offline=True))
    assert {"links.csv", "links.xlsx", "links.gpkg", "links_map.html"} <= {p.name for p in out.iterdir()}
    csv = pd.read_csv(out / "links.csv", encoding="utf-8-sig")
    assert csv["rank"].tolist()[0] == 1 and "residents" in csv.columns     # machine names in zh too
    nd = [c for c, st in res.data_status.items() if st == "no_data"]
    assert nd and all(csv[f"cat_{c}"].isna().all() for c in nd)           # unknown, not 0
    ok = [c for c, st in res.data_status.items() if st != "no_data"]
    assert all(csv[f"cat_{c}"].notna().all() for c in ok)
    assert csv["attribution"].str.contains("数据日期|OpenStreetMap").all()
    xlsx = pd.read_excel(out / "links.xlsx", sheet_name=0)
    assert xlsx["排名"].tolist()[0] == 1 and "新增可达居民" in xlsx.columns   # the human table
    layers = gpd.list_layers(out / "links.gpkg")["name"].tolist()
    assert {"links", "homes_gained", "about"} <= set(layers)
    html = (out / "links_map.html").read_text(encoding="utf-8")
    assert "L0" in html and "leaflet" in html.lower()
    runner = CliRunner()
    r = runner.invoke(app, ["links", str(tmp_path / "nope"), "--auto", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and not (tmp_path / "o2").exists()
    r = runner.invoke(app, ["links", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2


def test_link_times_equal_reanalysis_on_random_graphs():
    """Random small graphs with one-way edges, zero lengths and points at edge ends."""
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(120):
        n = int(rng.integers(2, 12))
        m = int(rng.integers(1, 24))
        u = rng.integers(0, n, m)
        v = rng.integers(0, n, m)
        keep = u != v
        if not keep.any():
            continue
        u, v = u[keep], v[keep]
        length = rng.choice([0.0, 50.0, 100.0, 37.5, 400.0, 812.3], len(u))
        net = WalkNetwork.from_arrays(rng.uniform(0, 400, n), rng.uniform(0, 400, n), u, v,
                                      length=length, oneway=rng.random(len(u)) < 0.3)

        def pts(c, u=u, length=length):
            e = rng.integers(-1, len(u), c)
            off = np.where(e >= 0, rng.choice([0, .25, .5, 1], c) * length[np.maximum(e, 0)], 0.0)
            return Snap(e, off, rng.choice([0., 10., 55.], c), np.zeros(c, bool))

        homes = pts(int(rng.integers(1, 10)))
        facs = [pts(int(rng.integers(0, 5))) for _ in range(int(rng.integers(1, 4)))]
        C = len(facs)
        sc = LinkScorer(AccessEngine(net, homes), facs, [5.0] * C, list(range(C)), [1.0] * C,
                        [1.0] * C, 0.5)
        ee = rng.integers(0, len(u), 2)
        oo = rng.choice([0, .3, .5, 1.0], 2) * length[ee]
        lm = [float(rng.choice([0.0, 10.0, 300.0]))]
        _, new = sc.score(ee, oo, lm, new_times=True)
        net2, remap = split_and_link(net, ee, oo, lm)
        h2 = homes.moved(remap, "left")
        f2 = [f.moved(remap, "right") for f in facs]
        full = AccessEngine(net2, h2).nearest(f2) * 60
        full = np.where(np.isfinite(full), full, np.inf)
        np.testing.assert_allclose(new, full, rtol=0, atol=1e-9)
        checked += int((new < sc.old).sum())
    assert checked > 20          # links did shorten walks in many cases


# --------------------------------------------------------------------------------------------
# --auto on an OSM file: a private footway with a locked gate through a residential compound


def _compound_osm() -> str:
    lat0, lon0 = 32.040, 118.780
    nodes, ways = [], []
    nid = [0]

    def node(lat, lon, tags=()):
        nid[0] += 1
        body = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags)
        nodes.append(f'<node id="{nid[0]}" lat="{lat:.7f}" lon="{lon:.7f}" version="1">{body}</node>')
        return nid[0]

    def way(refs, tags):
        body = "".join(f'<nd ref="{r}"/>' for r in refs) + "".join(
            f'<tag k="{k}" v="{v}"/>' for k, v in tags)
        ways.append(f'<way id="{1000 + len(ways)}" version="1">{body}</way>')

    a = [node(lat0, lon0 + 0.001 * i) for i in range(5)]             # street A (homes)
    b = [node(lat0 + 0.002, lon0 + 0.001 * i) for i in range(5)]     # street B (facilities)
    d1, d2 = node(lat0, lon0 + 0.006), node(lat0 + 0.002, lon0 + 0.006)
    locked = node(lat0 + 0.001, lon0 + 0.006, [("barrier", "gate"), ("access", "private")])
    way(a, [("highway", "residential"), ("name", "A")])
    way(b, [("highway", "residential"), ("name", "B")])
    way([a[-1], d1, locked, d2, b[-1]], [("highway", "residential"), ("name", "detour")])
    gate = node(lat0 + 0.001, lon0 + 0.002, [("barrier", "gate"), ("access", "private")])
    way([a[2], gate, b[2]], [("highway", "footway"), ("access", "private")])
    ring = [node(lat0 + 0.0003, lon0 + 0.001), node(lat0 + 0.0003, lon0 + 0.003),
            node(lat0 + 0.0017, lon0 + 0.003), node(lat0 + 0.0017, lon0 + 0.001)]
    way(ring + ring[:1], [("landuse", "residential")])
    for i in range(8):                                               # homes south of A
        la, lo, dd = lat0 - 0.0004, lon0 + 0.0005 * i, 0.0002
        r = [node(la, lo), node(la, lo + dd), node(la + dd, lo + dd), node(la + dd, lo)]
        way(r + r[:1], [("building", "residential"), ("building:levels", "6")])
    for lo, tag in ((0.002, ("amenity", "kindergarten")), (0.0022, ("amenity", "pharmacy")),
                    (0.0018, ("shop", "convenience"))):
        node(lat0 + 0.0022, lon0 + lo, [tag, ("name", "x")])
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">\n"
            + "\n".join(nodes + ways) + "\n</osm>\n")


def test_cli_auto_opens_the_gated_footway(tmp_path):
    from typer.testing import CliRunner

    from lifecircle.cli.app import app
    from lifecircle.pipeline import analyze

    osm = tmp_path / "compound.osm"
    osm.write_text(_compound_osm(), encoding="utf-8")
    analyze(str(osm)).save(tmp_path / "run", map_html=False)
    r = CliRunner().invoke(app, ["links", str(tmp_path / "run"), "--auto", "--k", "2",
                                 "--basemap", "blank", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "out" / "links.csv", encoding="utf-8-sig")
    top = t.iloc[0]
    assert top["rank"] == 1 and top["source"] == "auto:private"
    assert "gate" in top["reason"] and "residential" in top["reason"]
    assert top["residents"] > 0
    assert top["link_m"] == pytest.approx(222.4, abs=1.0)       # the footway's own length
    # the same gains as a full re-analysis with the footway added
    res = lifecircle_load(tmp_path / "run")
    g = gpd.read_file(tmp_path / "out" / "links.gpkg", layer="links").to_crs(res.crs)
    prep = prepare(res.network, g.iloc[[0]])
    old = scorer_for(res).old
    want = _gains_from_times(res, old, _full_times(res, prep.end_edge, prep.end_off, prep.link_m))
    assert top["cat_kindergarten"] > 0
    assert top["residents"] == pytest.approx(want["residents"], abs=1e-6)
    assert top["score_delta"] == pytest.approx(want["score_delta"], abs=1e-9)
    for name in ("links.xlsx", "links.gpkg", "links_map.html", "links_greedy.csv"):
        assert (tmp_path / "out" / name).exists()
    layers = set(gpd.list_layers(tmp_path / "out" / "links.gpkg")["name"])
    assert {"links", "homes_gained", "osm_gates", "osm_private_ways"} <= layers
    # the OSM file gone: the private ways cannot be read; said in one line, exit 2, no output
    osm.rename(tmp_path / "moved.osm")
    r = CliRunner().invoke(app, ["links", str(tmp_path / "run"), "--auto", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "is gone" in r.output and not (tmp_path / "o2").exists()


def lifecircle_load(folder):
    from lifecircle.result import load_result

    return load_result(folder)


def test_hostile_names_stay_text_on_the_map_and_in_tables():
    from lifecircle.analyses.links import links_table
    from lifecircle.render.maps import links_map

    res, *_ = _two_streets()
    c = _lines([(200, 0), (200, 100)])
    c["name"] = ['{{7*7}}<img src=x onerror=alert(1)>']
    lr = score_candidates(res, c, k=1)
    html = links_map(lr, basemap="blank").get_root().render()
    assert "<img src=x" not in html
    assert "{{7*7}}&lt;img" in html
    assert links_table(lr)["name"].iloc[0] == '{{7*7}}<img src=x onerror=alert(1)>'
    c["name"] = ["@SUM(A1)"]        # the table holds the name; the writers neutralise it (a
    assert links_table(score_candidates(res, c, k=0))["name"].iloc[0] == "@SUM(A1)"   # CSV's
    # apostrophe, a workbook's text cell: test_candidate_file_gcj02_and_bad_rows)


def test_closed_gates_cut_the_way_and_reopening_restores_todays_times(tmp_path):
    """--close-gates: a private gate on the public detour is closed to through walking; its
    reopening candidate (a link of length 0 across the cut) gives back today's times exactly."""
    from lifecircle.analyses.links import closed_gates, read_link_layers
    from lifecircle.pipeline import analyze

    osm = tmp_path / "compound.osm"
    osm.write_text(_compound_osm(), encoding="utf-8")
    res = analyze(str(osm))
    base = closed_gates(res, read_link_layers(osm))
    assert len(base.candidates) == 1 and base.candidates["source"].iloc[0] == "auto:gate"
    today = scorer_for(res).old
    sc = scorer_for(res, base.net, base.home_snap, base.fac_snap)
    assert (sc.old >= today - 1e-9).all()
    assert (np.isinf(sc.old) & np.isfinite(today)).any()        # the detour is cut
    _, reopened = sc.score(base.end_edge, base.end_off, base.link_m, new_times=True)
    np.testing.assert_allclose(reopened, today, rtol=0, atol=1e-6)
    # and through the API: the gate is a ranked candidate whose gain is what closing took away
    from lifecircle.analyses.links import links

    lr = links(res, close_gates=True, osm_path=osm, k=1)
    row = lr.table[lr.table["source"] == "auto:gate"].iloc[0]
    assert row["rank"] == 1 and row["minutes_saved"] > 0 and row["link_m"] == 0
    assert any("closed to through walking" in n for n in lr.notes)


def test_auto_names_and_reasons_in_chinese_planner_names_kept():
    import pandas as pd

    from lifecircle.analyses.links import localized

    t = pd.DataFrame({"name": ["missing link 3", "东门", "private way 2"],
                      "reason": ["missing link: 51 m straight", "drawn by the planner", "private"],
                      "reason_zh": ["缺失连接：直线 51 米", "规划绘制", "开放内部道路"],
                      "source": ["auto:missing", "file", "auto:private"]})
    zh = localized(t, "zh")
    assert list(zh["name"]) == ["缺失连接 3", "东门", "内部道路 2"]
    assert list(zh["reason"]) == ["缺失连接：直线 51 米", "规划绘制", "开放内部道路"]
    assert localized(t, "en").equals(t)
    # a planner's line named like an auto one keeps its name when the source says so
    t.loc[1, "name"] = "missing link 9"
    assert localized(t, "zh")["name"].iloc[1] == "missing link 9"


def test_a_folder_analysed_from_a_non_utf8_file_name_reads_its_file_again(tmp_path):
    """A GBK-named extract on a UTF-8 system: meta.json shows the name with escapes (no UTF-8
    file holds it as it is) and keeps its bytes too, so that ``links --auto`` /
    ``--close-gates`` and ``resources`` read the file again (they found an escaped name that
    is no file: "the OSM file ... is gone", the gates not read)."""
    import base64
    import json
    import os
    import shutil

    from typer.testing import CliRunner

    from lifecircle.analyses.resources import source_of
    from lifecircle.cli.app import app
    from lifecircle.io.sources import embedded_sample

    name = os.fsencode(tmp_path) + b"/" + "新街口".encode("gbk") + b".osm.pbf"
    shutil.copyfile(embedded_sample(), name)
    path = os.fsdecode(name)
    run = CliRunner().invoke(app, ["analyze", path, "--out", str(tmp_path / "run"), "--no-map"])
    assert run.exit_code == 0, run.output
    meta = json.loads((tmp_path / "run" / "meta.json").read_text(encoding="utf-8"))
    assert meta["source"].endswith("\\xda.osm.pbf") and "\\xd0" in meta["source"]    # for people: escaped
    assert base64.b64decode(meta["source_path_b64"]) == name                       # the path itself
    assert lifecircle_load(tmp_path / "run").source == path and source_of(tmp_path / "run") == path
    for line in (["--auto"], ["--auto", "--close-gates"]):
        r = CliRunner().invoke(app, ["links", str(tmp_path / "run"), *line, "--basemap", "blank",
                                     "--out", str(tmp_path / "-".join(["out", *line]))])
        assert r.exit_code == 0, r.output
        assert "is gone" not in r.output
    # the file gone: the note names it as meta.json shows it (escaped, not as surrogates)
    os.rename(name, name + b".moved")
    r = CliRunner().invoke(app, ["links", str(tmp_path / "run"), "--auto", "--basemap", "blank",
                                 "--out", str(tmp_path / "gone")])
    assert r.exit_code == 0 and "is gone" in r.output and "\\xd0" in r.output.replace("\n", "") and "\udcd0" not in r.output
    # a UTF-8 name: meta.json as before, no second field; a damaged one falls back to the text
    from lifecircle.io.outputs import recorded_source, source_fields

    assert source_fields("a/南京.osm.pbf") == {"source": "a/南京.osm.pbf"}
    assert recorded_source({"source": "a\\xd0.pbf", "source_path_b64": "??"}) == "a\\xd0.pbf"
