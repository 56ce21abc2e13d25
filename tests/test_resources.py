"""The idle-site inventory and the recommendations, on the real Las Palmas and Nanjing extracts.

Counts per type are checked against an independent pyosmium pass over the same file; gap
populations against a brute-force networkx walk (tests/bruteforce.py split graph); the MCLP
pick against exhaustive search; bad site files must name the offending rows.
"""

from __future__ import annotations

import itertools
import json
import shutil

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from bruteforce import split_graph
from conftest import shared_file

from lifecircle import columns as col
from lifecircle.analyses import recommend as M
from lifecircle.analyses import resources as R
from lifecircle.errors import InputFileError, TableError
from lifecircle.io.chinacoords import from_wgs84
from lifecircle.io.sources import read_osm
from lifecircle.pipeline import analyze

LP = "world/las_palmas_2023_ghsci.osm.pbf"
NJ = "china/nanjing_xinjiekou_2021.osm.pbf"


_TAGGED: dict = {}


def _osmium_ids(path, want):
    """OSM ids ('way/1', …) of nodes/ways/relations whose tags satisfy ``want(tags)``,
    read with pyosmium (independent of pyrosm and of lifecircle's rules); one pass per file
    keeps every element with a landuse, building or amenity tag."""
    import osmium

    if path not in _TAGGED:
        found = []
        keys = ("landuse", "building", "amenity")

        class H(osmium.SimpleHandler):
            def _take(self, kind, o):
                if any(k in o.tags for k in keys):
                    found.append((f"{kind}/{o.id}", {t.k: t.v for t in o.tags}))

            def node(self, n):
                self._take("node", n)

            def way(self, w):
                self._take("way", w)

            def relation(self, r):
                self._take("relation", r)

        H().apply_file(str(path))
        _TAGGED[path] = found
    return {i for i, tags in _TAGGED[path] if want(tags)}


@pytest.fixture(scope="module")
def lp():
    path = shared_file(LP)
    osm = read_osm(path)
    result = analyze(osm)
    inv = R.build_inventory(result, osm)
    return path, osm, result, inv


@pytest.fixture(scope="module")
def nj():
    path = shared_file(NJ)
    osm = read_osm(path)
    result = analyze(osm)
    inv = R.build_inventory(result, osm)
    return path, osm, result, inv


# --------------------------------------------------------------------------------------------
# inventory counts


def test_las_palmas_landuse_counts_match_pyosmium(lp):
    path, _osm, _result, inv = lp
    s = inv.sites
    osm_ids = {t: set(s.loc[(s[R.SOURCE] == "osm") & (s[R.TYPE] == t), R.OSM_ID]) for t in
               ("brownfield", "construction", "greenfield")}
    for value, typ in (("brownfield", "brownfield"), ("construction", "construction"),
                       ("greenfield", "greenfield")):
        truth = _osmium_ids(path, lambda t, v=value: t.get("landuse") == v)
        assert osm_ids[typ] == truth, typ
    assert len(osm_ids["brownfield"]) == 108
    assert len(osm_ids["construction"]) == 263


def test_las_palmas_ruins_and_disused(lp):
    path, _osm, _result, inv = lp
    s = inv.sites
    disused = set(s.loc[s[R.TYPE] == "disused_building", R.OSM_ID])
    ruins = _osmium_ids(path, lambda t: t.get("building") in ("ruins", "abandoned")
                        and t.get("landuse") not in R._OPEN_LANDUSE)
    assert ruins and ruins <= disused
    # every disused_building is a building with a disuse marker
    marked = _osmium_ids(path, lambda t: "building" in t and t["building"] != "no" and (
        t["building"] in ("ruins", "abandoned") or t.get("disused") == "yes"
        or t.get("abandoned") == "yes" or t.get("vacant") == "yes"
        or any(k.startswith(("disused:", "abandoned:")) for k in t)))
    assert disused <= marked


def test_nanjing_counts_match_pyosmium(nj):
    path, _osm, _result, inv = nj
    s = inv.sites
    parking = set(s.loc[s[R.TYPE] == "surface_parking", R.OSM_ID])
    truth = _osmium_ids(path, lambda t: t.get("amenity") == "parking"
                        and t.get("parking", "surface") == "surface" and "landuse" not in t
                        and "building" not in t)
    assert parking == truth and len(parking) == 12
    grass = set(s.loc[s[R.TYPE] == "unused_grass", R.OSM_ID])
    all_grass = _osmium_ids(path, lambda t: t.get("landuse") == "grass")
    assert grass <= all_grass and len(grass) == 88


def test_corners_are_uncovered_open_space(lp):
    _path, osm, result, inv = lp
    s = inv.sites
    c = s[s[R.SOURCE] == "derived"]
    assert len(c) > 500
    a = c[R.AREA].to_numpy()
    assert a.min() >= 30 and a.max() <= 2000
    assert np.allclose(a, shapely.area(c.geometry.to_numpy()))
    # no building overlaps a corner (beyond rounding)
    feats = osm.features
    bmask = np.array(["building" in t for t in feats["tags"]])
    b = feats[bmask].to_crs(result.crs).geometry.to_numpy()
    b = b[shapely.get_type_id(b) >= 3]
    tree = shapely.STRtree(b)
    ci, bi = tree.query(c.geometry.to_numpy(), predicate="intersects")
    overlap = shapely.area(shapely.intersection(c.geometry.to_numpy()[ci], b[bi]))
    assert overlap.size == 0 or overlap.max() < 1.0
    # and no street centreline crosses one
    ci, ei = result.network.tree.query(c.geometry.to_numpy(), predicate="intersects")
    inside = shapely.length(shapely.intersection(result.network.edge_geom[ei], c.geometry.to_numpy()[ci]))
    assert inside.size == 0 or inside.max() < 0.5
    # the corner range is settable: the same corners, fewer of them (checked on a 1 km box)
    box = shapely.box(*shapely.centroid(R.study_polygon(result)).buffer(500).bounds)
    small = R.corner_sites(result.network, osm.features, result.crs, 30, 100, 4.0, area=box)
    assert len(small) and small[R.AREA].max() <= 100
    full = c.geometry.to_numpy()
    tree = shapely.STRtree(full)
    pi, fi = tree.query(shapely.point_on_surface(small.geometry.to_numpy()), predicate="within")
    assert len(np.unique(pi)) == len(small)
    assert np.allclose(shapely.area(full[fi]), small[R.AREA].to_numpy()[pi])


# --------------------------------------------------------------------------------------------
# gap population against brute force


def _brute_site_minutes(result, inv, rows):
    """(len(rows), H) minutes from each home to each site, networkx on the split graph."""
    net = result.network
    snap = inv.snap.take(np.asarray(rows))
    g = split_graph(net, result.home_snap, [snap])
    rev = g.reverse(copy=False)
    out = np.full((len(rows), len(result.homes)), np.nan)
    for j in range(len(rows)):
        if not g.has_node(("f", 0, j)):
            continue
        d = nx.single_source_dijkstra_path_length(rev, ("f", 0, j), cutoff=30 * 60.0, weight="weight")
        for key, val in d.items():
            if key[0] == "h":
                out[j, key[1]] = val / 60.0
    return out


def test_gap_population_matches_bruteforce(nj):
    _path, _osm, result, inv = nj
    rows = np.flatnonzero(inv.sites[col.REACHABLE].to_numpy())
    assert len(rows) >= 50
    t = _brute_site_minutes(result, inv, rows)
    pop = result.homes[col.POPULATION].to_numpy(float)
    checked = 0
    for m in (5, 10, 15):
        want = np.nansum(np.where(t <= m + 1e-9, pop[None, :], 0.0), axis=1)
        got = inv.sites[R.residents_within(m)].to_numpy()[rows]
        assert np.allclose(got, want, rtol=1e-9, atol=1e-6)
    nodata = set(result.no_data_categories())
    assert nodata and "employment_service" in nodata
    for c in result.profile.categories:
        got = inv.sites[R.gap(c.id)].to_numpy()[rows]
        if c.id in nodata:   # no facility in the data: who lacks it is unknown, no gap to close
            assert np.isnan(got).all(), c.id
            assert not inv.sites[R.BEST_USES].str.contains(rf"\b{c.id}\b").any(), c.id
            continue
        tc = result.homes[col.time(c.id)].to_numpy(float)
        lacks = ~(np.nan_to_num(tc, nan=np.inf) <= c.minutes)
        want = np.nansum(np.where((t <= c.minutes + 1e-9) & lacks[None, :], pop[None, :], 0.0), axis=1)
        assert np.allclose(got, want, rtol=1e-9, atol=1e-6), c.id
        checked += int((want > 0).sum())
    assert checked > 100  # the comparison is not all zeros


def test_gap_population_las_palmas_sample(lp):
    _path, _osm, result, inv = lp
    s = inv.sites
    rows = np.flatnonzero(s[R.gap("elderly_daycare")].to_numpy() > 0)[:3]
    net = result.network
    g = net.to_networkx()
    speed = net.speed_mps
    pop = result.homes[col.POPULATION].to_numpy(float)
    hs = result.home_snap
    thr = result.profile.category("elderly_daycare").minutes
    tc = result.homes[col.time("elderly_daycare")].to_numpy(float)
    lacks = ~(np.nan_to_num(tc, nan=np.inf) <= thr)
    rev = g.reverse(copy=False)
    for r in rows:
        e, s_off, leg = int(inv.snap.edge[r]), float(inv.snap.offset[r]), float(inv.snap.leg[r])
        u, v, L = int(net.edge_u[e]), int(net.edge_v[e]), float(net.edge_len[e])
        # time from each node to the site: Dijkstra on the reversed graph from a virtual source
        seeds = {u: (leg + s_off) / speed}
        if not net.edge_oneway[e]:
            seeds[v] = (leg + L - s_off) / speed
        best = {}
        for node, c0 in seeds.items():
            d = nx.single_source_dijkstra_path_length(rev, node, cutoff=thr * 60.0, weight="travel_time")
            for k, val in d.items():
                best[k] = min(best.get(k, np.inf), val + c0)
        total = 0.0
        for h in range(len(pop)):
            he = int(hs.edge[h])
            if he < 0 or not lacks[h]:
                continue
            hu, hv, hl = int(net.edge_u[he]), int(net.edge_v[he]), float(net.edge_len[he])
            a = (hs.leg[h] + hs.offset[h]) / speed if not net.edge_oneway[he] else np.inf
            b = (hs.leg[h] + hl - hs.offset[h]) / speed
            t = min(a + best.get(hu, np.inf), b + best.get(hv, np.inf))
            if he == e and (s_off >= hs.offset[h] or not net.edge_oneway[e]):
                t = min(t, (abs(s_off - hs.offset[h]) + leg + hs.leg[h]) / speed)
            if t <= thr * 60.0 + 1e-9:
                total += pop[h]
        assert s[R.gap("elderly_daycare")].iloc[r] == pytest.approx(total, rel=1e-9)


# --------------------------------------------------------------------------------------------
# suitability


def test_suitability_rules(lp):
    _path, _osm, result, inv = lp
    rules = R.load_site_rules()
    s = inv.sites
    for _, row in s.sample(200, random_state=1).iterrows():
        uses = [u for u in row[R.USES].split(",") if u]
        form = rules.form(row[R.TYPE])
        for u in uses:
            rule = rules.uses[u]
            assert form in rule["forms"]
            if np.isfinite(row[R.AREA]):
                assert row[R.AREA] >= rule["min_area_m2"]
        best = [u for u in row[R.BEST_USES].split(",") if u]
        assert set(best) <= set(uses)
        gaps = [row[R.gap(u)] for u in best]
        assert gaps == sorted(gaps, reverse=True) and all(g > 0 for g in gaps)
    corners = s[s[R.TYPE] == "corner"]
    assert not corners[R.USES].str.contains("elderly_daycare").any()  # open land: no building use
    big = corners[corners[R.AREA] >= 400]
    assert big[R.USES].str.contains("park").all()


# --------------------------------------------------------------------------------------------
# recommendations


def test_mclp_matches_exhaustive_search(lp):
    _path, _osm, result, inv = lp
    cand, es, ei, w = M.coverage_sets(inv, ["elderly_daycare"])
    # a small instance: the 12 candidates with the largest gaps
    gaps = np.bincount(es, weights=w[ei], minlength=len(inv.sites))
    top = cand[np.argsort(-gaps[cand], kind="stable")[:12]]
    keep = np.isin(es, top)
    keys, gw = M._compress(es[keep], ei[keep], w)
    k = 3
    picks = M.solve_mclp(keys, gw, k, top)
    sets = [set(key) for key in keys]

    def value(chosen):
        ch = set(chosen)
        return sum(gw[i] for i, s in enumerate(sets) if s & ch)

    best = max(value(c) for c in itertools.combinations(top.tolist(), k))
    assert len(picks) <= k
    assert value(picks) == pytest.approx(best, rel=1e-12)
    gpicks, gains = M.greedy(keys, gw, k, top)
    assert value(gpicks) <= best + 1e-9 and sum(gains) == pytest.approx(value(gpicks))


def test_recommend_and_what_if_agree(lp):
    _path, _osm, result, inv = lp
    table = M.recommend(result, inv, "elderly_daycare", k=5)
    assert table.attrs["method"] == "exact" and len(table) == 5
    assert (np.diff(table["cumulative"]) >= 0).all()
    greedy = M.recommend(result, inv, "elderly_daycare", k=5, method="greedy")
    assert table["cumulative"].iloc[-1] >= greedy["cumulative"].iloc[-1] - 1e-6
    w = M.what_if(result, "elderly_daycare", list(table[R.SITE_ID]), inv)
    thr = result.profile.category("elderly_daycare").minutes
    pop = result.homes[col.POPULATION].to_numpy(float)
    tc = np.nan_to_num(result.homes[col.time("elderly_daycare")].to_numpy(float), nan=np.inf)
    if w[col.DATA_STATUS] == col.STATUS_NO_DATA:
        # none in the data: today's coverage unknown; recommend's gain assumes none exists,
        # so it is what the sites alone cover
        assert np.isnan(w["before"]) and np.isnan(w["newly_covered"]) and (tc == np.inf).all()
        assert w["after"] == pytest.approx(table["cumulative"].iloc[-1], abs=0.1)
    else:
        assert w["newly_covered"] == pytest.approx(table["cumulative"].iloc[-1], abs=0.1)
        # before = today's analysis
        assert w["before"] == pytest.approx(pop[tc <= thr].sum())
    # after = a full recomputation with the sites added as facilities
    rows = [int(np.flatnonzero(inv.sites[R.SITE_ID] == s)[0]) for s in table[R.SITE_ID]]
    fac = result.facility_snap.take(result.category_facilities("elderly_daycare"))
    from lifecircle.core.snapping import Snap

    full = result.engine.nearest([Snap.concat([fac, inv.snap.take(np.array(rows))])])[0]
    assert w["after"] == pytest.approx(pop[np.nan_to_num(full, nan=np.inf) <= thr].sum())


def test_recommend_and_what_if_flag_categories_without_data(nj):
    """A category with no facility in the data can still be planned for, but the gap then
    assumes none exists: the table and the what-if say so."""
    _path, _osm, result, inv = nj
    nodata = [c for c in result.no_data_categories()]
    assert "elderly_daycare" in nodata or "nursing_home" in nodata
    cat = "elderly_daycare" if "elderly_daycare" in nodata else "nursing_home"
    table = M.recommend(result, inv, cat, k=2)
    assert table.attrs["no_data"] == [cat]
    assert M.recommend(result, inv, "park", k=1).attrs["no_data"] == []
    sites = list(table[R.SITE_ID]) or [inv.sites[R.SITE_ID].iloc[0]]
    w = M.what_if(result, cat, sites, inventory=inv)
    # today's coverage is unknown (the data hold none), not zero: before is missing and
    # the result says why; after counts the added sites alone
    assert w[col.DATA_STATUS] == col.STATUS_NO_DATA
    assert np.isnan(w["before"]) and np.isnan(w["covered_share_before"])
    assert np.isnan(w["newly_covered"])
    assert w["after"] >= 0 and np.isfinite(w["covered_share_after"])
    assert "no data" in w["note"] and "unknown" in w["note"]
    zh = M.what_if(result, cat, sites, inventory=inv, lang="zh")
    assert "无数据" in zh["note"] and "未知" in zh["note"]
    park = M.what_if(result, "park", sites, inventory=inv)
    assert park[col.DATA_STATUS] == col.STATUS_DATA and park["note"] == ""
    tp = np.nan_to_num(result.homes[col.time("park")].to_numpy(float), nan=np.inf)
    pop = result.homes[col.POPULATION].to_numpy(float)
    assert park["before"] == pytest.approx(pop[tp <= result.profile.category("park").minutes].sum())
    assert park["newly_covered"] == pytest.approx(park["after"] - park["before"])


def test_recommend_unknown_category(lp):
    _path, _osm, result, inv = lp
    with pytest.raises(M.RecommendError, match="unknown category"):
        M.recommend(result, inv, "flying_saucer", k=2)


# --------------------------------------------------------------------------------------------
# user site files


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_user_sites_gcj02_and_chinese_values(nj, tmp_path):
    _path, _osm, result, _inv = nj
    c = R.study_polygon(result)
    import geopandas as gpd

    centre = gpd.GeoSeries([c.centroid], crs=result.crs).to_crs(4326).iloc[0]
    glon, glat = from_wgs84(centre.x, centre.y, "gcj02")
    p = _write(tmp_path, "sites.csv",
               "编号,名称,类型,面积,权属,现状,经度,纬度\n"
               f"A1,闲置用房,闲置建筑,300,国有,空置,{glon:.7f},{glat:.7f}\n"
               f"A2,边角地,金角银边,80,集体,闲置,{glon + 0.001:.7f},{glat:.7f}\n")
    sites = R.read_sites(p, "gcj02", area=c, area_crs=result.crs)
    assert list(sites[R.TYPE]) == ["disused_building", "corner"]
    assert list(sites[R.OWNERSHIP]) == ["state", "collective"]
    assert abs(sites.geometry.iloc[0].x - centre.x) < 1e-5 and abs(sites.geometry.iloc[0].y - centre.y) < 1e-5
    inv = R.build_inventory(result, False, sites=p, sites_crs="gcj02")
    assert list(inv.sites[R.SITE_ID]) == ["U-A1", "U-A2"]
    assert "elderly_daycare" in inv.sites[R.USES].iloc[0]
    assert "elderly_daycare" not in inv.sites[R.USES].iloc[1]


def test_bad_site_rows_are_reported(nj, tmp_path):
    _path, _osm, result, _inv = nj
    area = R.study_polygon(result)
    import geopandas as gpd

    centre = gpd.GeoSeries([area.centroid], crs=result.crs).to_crs(4326).iloc[0]
    p = _write(tmp_path, "sites.csv",
               "id,type,area,ownership,lng,lat,crs,colour\n"
               f"s1,vacant_lot,500,state,{centre.x},{centre.y},wgs84,red\n"
               f"s2,vacant_lot,500,state,abc,{centre.y},wgs84,red\n"
               f"s3,vacant_lot,500,state,{centre.x},{centre.y},mars84,red\n"
               "s4,vacant_lot,500,state,2.35,48.85,wgs84,red\n"
               f"s5,vacant_lot,500,state,{centre.x},95,wgs84,red\n")
    sites = R.read_sites(p, area=area, area_crs=result.crs)
    assert len(sites) == 1
    dropped = {d["row"]: d["reason"] for d in sites.attrs["dropped"]}
    assert set(dropped) == {3, 4, 5, 6}
    assert "bad coordinates" in dropped[3] and "abc" in dropped[3]
    assert "unknown coordinate system" in dropped[4] and "mars84" in dropped[4]
    assert "outside the study area" in dropped[5]
    assert "out of range" in dropped[6]
    notes = " ".join(sites.attrs["notes"])
    assert "4 of 5 row(s) dropped" in notes and "colour" in notes
    # nothing usable: one TableError listing the rows
    q = _write(tmp_path, "bad.csv", "id,lng,lat\nx,abc,1\ny,2.35,48.85\n")
    with pytest.raises(TableError) as exc:
        R.read_sites(q, area=area, area_crs=result.crs)
    assert "row 2" in str(exc.value) and "row 3" in str(exc.value) and len(exc.value.rows) == 2
    # unknown columns only
    q = _write(tmp_path, "cols.csv", "foo,bar\n1,2\n")
    with pytest.raises(TableError, match="no coordinate columns.*foo"):
        R.read_sites(q)
    # unknown default coordinate system
    with pytest.raises(TableError, match="unknown coordinate system"):
        R.read_sites(p, "mars84")


def test_geojson_sites_with_wkt_and_polygons(nj, tmp_path):
    _path, _osm, result, _inv = nj
    import geopandas as gpd

    area = R.study_polygon(result)
    c = area.centroid
    poly = c.buffer(15)
    gdf = gpd.GeoDataFrame({"name": ["plot"], "type": ["空地"], "ownership": ["private"]},
                           geometry=[poly], crs=result.crs)
    p = tmp_path / "sites.geojson"
    gdf.to_crs(4326).to_file(p, driver="GeoJSON")
    inv = R.build_inventory(result, False, sites=p)
    assert inv.sites[R.AREA].iloc[0] == pytest.approx(poly.area, rel=0.01)
    assert inv.sites[R.OWNERSHIP].iloc[0] == "private"


# --------------------------------------------------------------------------------------------
# outputs and CLI


def test_cli_resources_and_recommend(nj, tmp_path):
    from typer.testing import CliRunner

    from lifecircle.cli import app

    _path, _osm, result, _inv = nj
    folder = tmp_path / "nj"
    result.save(folder, map_html=False)
    out = tmp_path / "res"
    run = CliRunner().invoke(app, ["resources", str(folder), "--out", str(out), "--lang", "zh"])
    assert run.exit_code == 0, run.output
    table = pd.read_csv(out / "resources.csv", encoding="utf-8-sig")
    # the CSV is for machines: stable column names whatever the language; the XLSX is Chinese
    assert "site_id" in table.columns and "best_uses" in table.columns
    assert len(table) == len(_inv.sites)
    x = pd.read_excel(out / "resources.xlsx", sheet_name=None)
    assert "资源编号" in x["资源清单"].columns and "推荐功能" in x["资源清单"].columns
    assert "OpenStreetMap" in str(x["说明"].iloc[0, 0])
    import geopandas as gpd

    layer = gpd.read_file(out / "resources.gpkg", layer="sites")
    for c in (R.SITE_ID, R.SOURCE, R.TYPE, R.AREA, R.OWNERSHIP, R.gap("park"), R.BEST_USES):
        assert c in layer.columns
    rec = tmp_path / "rec"
    run = CliRunner().invoke(app, ["recommend", str(folder), "--category", "park", "--k", "2",
                                   "--out", str(rec)])
    assert run.exit_code == 0, run.output
    r = pd.read_csv(rec / "recommendations.csv", encoding="utf-8-sig")
    assert len(r) <= 2 and set(r["site_id"]) <= set(table["site_id"])
    # both commands put the list on a map that opens offline, the picks numbered on it
    import re

    for folder_, ids in ((out, list(table["site_id"][:3])), (rec, list(r["site_id"]))):
        page = (folder_ / "resources_map.html").read_text(encoding="utf-8")
        assert not re.search(r'<script[^>]+src=["\']https?:', page)
        assert all(str(i) in page for i in ids)
        assert "OpenStreetMap contributors" in page or "\\u00a9 OpenStreetMap" in page
    # the folder is self-contained: with the source file gone (or the folder handed to another
    # office) the same inventory comes out of the stored OSM features
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["source"] = str(tmp_path / "gone.osm.pbf")
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    moved = tmp_path / "elsewhere" / "nj"
    folder.rename(tmp_path / "nj_moved")
    moved.parent.mkdir()
    (tmp_path / "nj_moved").rename(moved)
    out2 = tmp_path / "res2"
    run = CliRunner().invoke(app, ["resources", str(moved), "--out", str(out2), "--lang", "zh"])
    assert run.exit_code == 0, run.output
    again = pd.read_csv(out2 / "resources.csv", encoding="utf-8-sig")
    assert list(again["site_id"]) == list(table["site_id"])
    # a folder of the older format (no stored features) whose source is gone: one clear error
    (moved / "osm_features.parquet").unlink()
    out3 = tmp_path / "res3"
    run = CliRunner().invoke(app, ["resources", str(moved), "--out", str(out3)])
    assert run.exit_code == 2 and "gone.osm.pbf" in run.output and "is gone" in run.output
    assert not out3.exists()
    with pytest.raises(InputFileError, match="is gone"):
        R.source_of(moved)
    shutil.rmtree(moved)


def test_map_sites_layer(nj):
    _path, _osm, result, inv = nj
    ms = inv.map_sites()
    for c in (R.SITE_ID, R.SOURCE, R.TYPE, R.AREA, R.OWNERSHIP, R.BEST_USES):
        assert c in ms.columns
    gaps = [c for c in ms.columns if c.startswith("gap_")]
    assert gaps and len(gaps) <= 5
    totals = {c[4:]: inv.sites[c].sum() for c in inv.sites.columns if c.startswith("gap_")}
    assert inv.sites[gaps[0]].sum() == max(totals.values())
    html = result.map(sites=ms).get_root().render()
    assert ms[R.SITE_ID].iloc[0] in html and "OpenStreetMap" in html


def test_corners_on_the_embedded_sample_survive_invalid_osm_geometry():
    """Helsinki's blocks hit a GEOS topology error in the block - cover difference; the
    inventory must still build (the notebooks fall back to this sample on a fresh install)."""
    import lifecircle
    from lifecircle.analyses import resources
    from lifecircle.io.sources import embedded_sample, read_osm

    data = read_osm(embedded_sample("helsinki"))
    r = lifecircle.analyze(data)
    inv = resources.build_inventory(r, osm_data=data)
    sites = inv.sites
    corners = sites[sites["source"] == "derived"]
    assert len(corners) > 0
    assert corners["area_m2"].between(30, 2000).all()
