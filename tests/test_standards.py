"""Compliance with GB 50180-2018 / TD/T 1062-2021 on the Nanjing Xinjiekou extract.

Shares are recomputed by brute force from the homes' ``t_`` columns and populations; the
re-classification route (analysis run with the default profile) is cross-checked against a
full ``analyze`` with the standard's profile on the same data.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file
from openpyxl import load_workbook
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.analyses.standards import ALL, STANDARDS, ComplianceReport, assess, check, missing_required
from lifecircle.cli import app
from lifecircle.core.profiles import load_profile
from lifecircle.errors import InputFileError, ProfileError
from lifecircle.io.sources import WGS84
from lifecircle.render.maps import compliance_layer

pytestmark = pytest.mark.shared
STANDARD_IDS = tuple(STANDARDS)
runner = CliRunner()


@pytest.fixture(scope="module")
def nanjing_path():
    return shared_file("china/nanjing_xinjiekou_2021.osm.pbf")


@pytest.fixture(scope="module")
def nj_default(nanjing_path):
    """Analysed with the default profile: check() must re-classify for the standard."""
    return lifecircle.analyze(nanjing_path)


@pytest.fixture(scope="module")
def halves(nj_default):
    """Two communities: west and east halves of a box around all streets and homes."""
    box = shapely.box(*np.r_[np.minimum(nj_default.network.edges_gdf().total_bounds[:2],
                                        nj_default.homes.total_bounds[:2]) - 300,
                             np.maximum(nj_default.network.edges_gdf().total_bounds[2:],
                                        nj_default.homes.total_bounds[2:]) + 300])
    x0, y0, x1, y1 = box.bounds
    xm = (x0 + x1) / 2
    polys = [shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)]
    return gpd.GeoDataFrame({col.COMMUNITY: ["西区", "东区"]}, geometry=polys,
                            crs=nj_default.crs).to_crs(WGS84)


@pytest.fixture(scope="module")
def nj_gb(nanjing_path, halves):
    """Analysed with the GB 50180-2018 profile and two communities: the direct route."""
    return lifecircle.analyze(nanjing_path, profile="gb50180-2018", boundary=halves)


@pytest.fixture(scope="module")
def reports(nj_default):
    return {s: check(nj_default, s) for s in STANDARD_IDS}


@pytest.fixture(scope="module")
def report_gb(nj_gb):
    return check(nj_gb, "gb50180-2018")


def _share(t, minutes, pop, reach):
    p = np.where(reach, pop, 0.0)
    return (p * (np.nan_to_num(t, nan=np.inf) <= minutes + 1e-9)).sum() / p.sum()


# --------------------------------------------------------------------------------------------
# traceability to the standard


@pytest.mark.parametrize("standard", STANDARD_IDS)
def test_rows_trace_to_the_profile(reports, standard):
    rep = reports[standard]
    prof = load_profile(standard)
    assert rep.route == "reclassified"
    assert rep.required_ids == {c.id for c in prof.categories if c.required is True}
    assert rep.optional_ids == {c.id for c in prof.categories if not c.required}
    rows = rep.rows[rep.rows.unit == ALL]
    assert len(rows) == len(prof.categories)          # one row per facility, all three tiers
    for _, r in rows.iterrows():
        c = prof.category(r.id)
        assert (r.tier, r.required, r.minutes, r.name_zh, r.name_en, r.source) == \
               (c.tier, bool(c.required), c.minutes, c.name_zh, c.name_en, c.source)
        assert r.radius_m == c.radius_m or (r.radius_m != r.radius_m and c.radius_m is None)
        assert r.confidence and set(r.confidence.split("/")) <= {"V", "R", "I"}
        assert f"[{r.confidence.split('/')[0]}]" in c.source


@pytest.mark.parametrize("standard", STANDARD_IDS)
def test_shares_match_brute_force(reports, nj_default, standard):
    rep = reports[standard]
    pop = nj_default.homes[col.POPULATION].to_numpy(float)
    reach = nj_default.homes[col.REACHABLE].to_numpy(bool)
    assert len(rep.home_times) == len(nj_default.homes)
    nodata = {k for k, v in rep.data_status.items() if v == col.STATUS_NO_DATA}
    assert nodata, "Nanjing lacks some facility types of both standards"
    for _, r in rep.rows.iterrows():
        t = rep.home_times[col.time(r.id)].to_numpy(float)
        if r.id in nodata:           # no facility of the kind in the data: unknown, not 0 %
            assert np.isnan(r.share) and r.status == "no_data" and r.facilities == 0, r.id
            assert np.isnan(t).all()
            continue
        want = _share(t, r.minutes, pop, reach)
        assert r.share == pytest.approx(want, abs=1e-12), r.id
        assert r.population == pytest.approx(pop[reach].sum())
    # the verdict follows from the shares of the facilities with data
    for tier in (15, 10, 5):
        req = rep.rows[(rep.rows.unit == ALL) & (rep.rows.tier == tier) & rep.rows.required]
        known = req[~req.id.isin(nodata)]
        fails = not bool((known.share >= 0.8).all())
        assert rep.passed(tier) == (False if fails else None if len(known) < len(req) else True)
        s = rep.summary[(rep.summary.unit == ALL) & (rep.summary.tier == tier)].iloc[0]
        assert s.n_required == len(req) and s.n_met == int((known.share >= 0.8).sum())
        assert s.n_missing == int((known.facilities == 0).sum())
        assert s.n_no_data == len(req) - len(known)


def test_reclassified_times_equal_a_full_analysis_with_the_profile(reports, nj_default, nj_gb):
    """check() on a default-profile result gives the same minutes as analyze(profile=gb)."""
    rep = reports["gb50180-2018"]
    assert len(nj_gb.homes) == len(nj_default.homes)
    assert shapely.equals(nj_gb.homes.geometry.to_numpy(), nj_default.homes.geometry.to_numpy()).all()
    prof = load_profile("gb50180-2018")
    finite = 0
    for c in prof.categories:
        got = rep.home_times[col.time(c.id)].to_numpy(float)
        want = nj_gb.homes[col.time(c.id)].to_numpy(float)
        np.testing.assert_allclose(got, want, atol=1e-9, equal_nan=True, err_msg=c.id)
        finite += int(np.isfinite(want).sum())
    assert finite > 1000
    # facility counts of the whole area agree with the analysis' own facility table
    fac = nj_gb.facilities[nj_gb.facilities[col.REACHABLE]]
    for _, r in rep.rows.iterrows():
        assert r.facilities == int((fac[col.CATEGORY] == r.id).sum()), r.id


def test_direct_route_and_communities(report_gb, nj_gb):
    rep = report_gb
    assert rep.route == "profile"
    assert rep.units == [ALL, "西区", "东区"]
    homes = nj_gb.homes
    pop = homes[col.POPULATION].to_numpy(float)
    reach = homes[col.REACHABLE].to_numpy(bool)
    summary = nj_gb.summary
    for unit in rep.units:
        mask = np.ones(len(homes), bool) if unit == ALL else (homes[col.COMMUNITY] == unit).to_numpy()
        assert mask.sum() > 20, unit
        rows = rep.rows[rep.rows.unit == unit]
        # 15-minute unit: tiers 15/10/5; communities (5-10-minute units): tiers 10 and 5
        assert set(rows.tier) == ({15, 10, 5} if unit == ALL else {10, 5})
        for _, r in rows.iterrows():
            s = summary[(summary.community == unit) & (summary.level == "category") & (summary.id == r.id)]
            if r.status == "no_data":   # the same "no data" as the analysis' own summary
                assert s[col.DATA_STATUS].iloc[0] == col.STATUS_NO_DATA and np.isnan(r.share)
                assert np.isnan(float(s.covered.iloc[0])), (unit, r.id)
                continue
            want = _share(homes[col.time(r.id)].to_numpy(float)[mask], r.minutes, pop[mask], reach[mask])
            assert r.share == pytest.approx(want, abs=1e-12), (unit, r.id)
            # the same number as the analysis' own summary ("covered")
            assert r.share == pytest.approx(float(s.covered.iloc[0]), abs=1e-9), (unit, r.id)
    # facilities counted inside each community add up to those of the whole area
    for cid in rep.required_ids & set(rep.rows[rep.rows.tier < 15].id):
        per = rep.rows[(rep.rows.id == cid) & (rep.rows.unit != ALL)].facilities.sum()
        whole = rep.rows[(rep.rows.id == cid) & (rep.rows.unit == ALL)].facilities.iloc[0]
        assert whole <= per <= whole + 2, cid       # a facility on the dividing line counts twice
    comm = nj_gb.communities
    fac = nj_gb.facilities[nj_gb.facilities[col.REACHABLE]]
    r = rep.rows[(rep.rows.unit == "西区") & (rep.rows.id == "bus_stop")].iloc[0]
    west = comm[comm[col.COMMUNITY] == "西区"].geometry.iloc[0]
    assert r.facilities == int(fac[fac[col.CATEGORY] == "bus_stop"].intersects(west).sum())


# --------------------------------------------------------------------------------------------
# pass/fail logic on a constructed case


def _constructed(t_by_cat: dict, pop, reach=None, profile="gb50180-2018"):
    prof = load_profile(profile)
    n = len(pop)
    data = {col.POPULATION: np.asarray(pop, float),
            col.REACHABLE: np.ones(n, bool) if reach is None else np.asarray(reach, bool)}
    for c in prof.categories:
        data[col.time(c.id)] = np.asarray(t_by_cat.get(c.id, np.zeros(n)), float)
    return pd.DataFrame(data), prof


def test_pass_fail_logic_constructed():
    pop = [100, 100, 100, 100, 100]
    ht, prof = _constructed({}, pop)
    units = [(ALL, "15", np.ones(5, bool), (15, 10, 5))]
    counts = {(ALL, c.id): 1 for c in prof.categories}
    rows, summ = assess(ht, prof, units, counts)
    assert summ.passed.tolist() == [True, True, True]
    assert (rows.status == "met").all()

    # kindergarten (tier 5, ▲, 4.5 min): 4 of 5 homes within 4.5 min -> exactly 0.8: met
    kg = prof.category("kindergarten")
    ht, _ = _constructed({"kindergarten": [0, 1, 4.5, 4.4, 4.6]}, pop)
    rows, summ = assess(ht, prof, units, counts)
    assert rows.set_index("id").loc["kindergarten", "share"] == pytest.approx(0.8)
    assert summ.set_index("tier").passed.to_dict() == {15: True, 10: True, 5: True}
    # 3 of 5 -> 0.6: tier 5 fails, "short" while present, "missing" with none in the unit
    ht, _ = _constructed({"kindergarten": [0, 1, 4.5, 9, np.nan]}, pop)
    rows, summ = assess(ht, prof, units, counts)
    s = summ.set_index("tier")
    assert s.passed.to_dict() == {15: True, 10: True, 5: False}
    assert s.loc[5, "failing"] == "kindergarten" and s.loc[5, "n_met"] == s.loc[5, "n_required"] - 1
    assert rows.set_index("id").loc["kindergarten", "status"] == "short"
    rows, summ = assess(ht, prof, units, {**counts, (ALL, "kindergarten"): 0})
    assert rows.set_index("id").loc["kindergarten", "status"] == "missing"
    assert summ.set_index("tier").loc[5, "n_missing"] == 1
    # a lower settable share passes it
    _, summ = assess(ht, prof, units, counts, min_share=0.6)
    assert summ.passed.all()
    # optional facilities (△) never fail a tier: childcare (tier 5, optional) unreachable
    assert kg.required and not prof.category("childcare").required
    ht, _ = _constructed({"childcare": [np.nan] * 5}, pop)
    rows, summ = assess(ht, prof, units, {k: (0 if k[1] == "childcare" else 1) for k in counts})
    assert summ.passed.all()
    assert rows.set_index("id").loc["childcare", "status"] == "missing"
    # population weighting; unreachable homes are left out of the share
    ht, _ = _constructed({"kindergarten": [0, 0, 9, 9, 9]}, [700, 100, 50, 50, 100],
                         reach=[True, True, True, True, False])
    rows, summ = assess(ht, prof, units, counts)
    assert rows.set_index("id").loc["kindergarten", "share"] == pytest.approx(800 / 900)
    assert summ.unreachable_population.iloc[0] == 100
    # a unit without residents has no verdict
    units2 = units + [("empty", "5-10", np.zeros(5, bool), (10, 5))]
    _, summ = assess(ht, prof, units2, counts)
    assert summ[summ.unit == "empty"].passed.tolist() == [None, None]


def test_no_data_is_undetermined_and_complete_is_a_gap():
    """A required facility type with no facility in the data is "no data": NaN share, never
    "missing", and the tier is undetermined (not passed) while the rest are met; declared
    surveyed (complete) the same zero is a real gap and the tier fails."""
    pop = [100, 100, 100, 100, 100]
    prof = load_profile("gb50180-2018")
    ht, _ = _constructed({"kindergarten": [np.nan] * 5}, pop)
    units = [(ALL, "15", np.ones(5, bool), (15, 10, 5))]
    counts = {(ALL, c.id): (0 if c.id == "kindergarten" else 1) for c in prof.categories}
    status = {c.id: col.STATUS_DATA for c in prof.categories}
    rows, summ = assess(ht, prof, units, counts, status={**status, "kindergarten": col.STATUS_NO_DATA})
    r = rows.set_index("id").loc["kindergarten"]
    assert r.status == "no_data" and np.isnan(r.share) and np.isnan(r.reached)
    s = summ.set_index("tier")
    assert s.passed.to_dict() == {15: True, 10: True, 5: None}
    assert s.loc[5, "n_no_data"] == 1 and s.loc[5, "no_data"] == "kindergarten"
    assert s.loc[5, "n_missing"] == 0 and s.loc[5, "failing"] == ""
    rep = ComplianceReport("gb50180-2018", prof, rows, summ.reset_index(), ht,
                           data_status={**status, "kindergarten": col.STATUS_NO_DATA})
    t = rep.summary_table("zh").set_index("设施层级(分钟)")
    assert t.loc[5, "结论"] == "无法判定(部分设施无数据)" and t.loc[5, "无数据设施数"] == 1
    assert t.loc[15, "结论"] == "达标"
    row = rep.table("en", unit=ALL).set_index("facility id").loc["kindergarten"]
    assert row["status"] == "no data" and row["present"] == "no data"
    assert any("--facilities" in v for _, v in rep.about("en"))
    assert missing_required(rep).tolist() == [0] * 5      # not counted as lacking
    rows, summ = assess(ht, prof, units, counts, status={**status, "kindergarten": col.STATUS_COMPLETE})
    assert rows.set_index("id").loc["kindergarten", "status"] == "missing"
    assert rows.set_index("id").loc["kindergarten", "share"] == 0.0
    assert summ.set_index("tier").passed.to_dict() == {15: True, 10: True, 5: False}


def test_tdt_uses_basic_and_quality_labels(reports):
    rep = reports["tdt1062-2021"]
    t = rep.table("zh")
    assert set(t["配置要求"]) == {"基础保障型", "品质提升型"}
    g = reports["gb50180-2018"].table("zh")
    assert set(g["配置要求"]) == {"▲ 应配建", "△ 按需配建"}
    assert set(rep.table("en")["requirement"]) == {"basic (基础保障)", "quality-improving (品质提升)"}


def test_unknown_standard_and_missing_source(nj_default):
    with pytest.raises(ProfileError, match="gb50180-2018, tdt1062-2021"):
        check(nj_default, "gb50180-1993")
    # the result keeps its OSM features: a moved source changes nothing
    moved = dataclasses.replace(nj_default, source="/nonexistent/nanjing.osm.pbf")
    kept = check(moved, "tdt1062-2021").rows
    assert kept.equals(check(nj_default, "tdt1062-2021").rows)
    # without them (a folder of the older format) the source is needed: one clear error
    older = dataclasses.replace(moved, features=None)
    with pytest.raises(InputFileError, match="OSM source of the analysis not found"):
        check(older, "tdt1062-2021")


# --------------------------------------------------------------------------------------------
# exports, map, repr


def test_xlsx_and_csv(report_gb, tmp_path):
    rep = report_gb
    x = rep.to_xlsx(tmp_path / "c.xlsx")
    wb = load_workbook(x)
    assert wb.sheetnames == ["汇总", "15分钟层级", "10分钟层级", "5分钟层级", "可选设施", "说明"]
    head = [c.value for c in wb["5分钟层级"][1]]
    assert head[:4] == ["单元", "生活圈层级", "设施层级(分钟)", "设施编号"]
    assert "覆盖率(%)" in head and "标准条款" in head and "可信度" in head
    ids = [r[3] for r in wb["5分钟层级"].iter_rows(min_row=2, values_only=True) if r and r[0] == "全区"]
    assert set(ids) == {c.id for c in rep.profile.categories if c.required and c.tier == 5}
    assert [c.value for c in wb["汇总"][1]][:4] == ["单元", "生活圈层级", "设施层级(分钟)", "结论"]
    assert any("OpenStreetMap" in str(r[0]) for r in wb["汇总"].iter_rows(values_only=True) if r and r[0])
    en = load_workbook(rep.to_xlsx(tmp_path / "e.xlsx", lang="en"))
    assert en.sheetnames[0] == "Summary" and en["15-minute tier"]["D1"].value == "facility id"
    csv = rep.to_csv(tmp_path / "c.csv")
    assert csv.read_bytes()[:3] == b"\xef\xbb\xbf"
    df = pd.read_csv(csv, encoding="utf-8-sig")
    # machine column names and English codes, the same file in every language
    assert list(df.columns[:4]) == ["unit", "unit_level", "tier", "id"]
    assert df.equals(pd.read_csv(rep.to_csv(tmp_path / "e.csv", lang="en"), encoding="utf-8-sig"))
    assert len(df) == len(rep.rows)
    assert df["attribution"].str.contains("© OpenStreetMap contributors").all()
    share = df[(df["unit"] == "whole area") & (df["id"] == "bus_stop")]["share_pct"].iloc[0]
    assert share == pytest.approx(round(100 * rep.rows.set_index(["unit", "id"]).share[(ALL, "bus_stop")], 1))


def test_map_layer_counts_missing_required(report_gb, nj_gb):
    import folium

    n = missing_required(report_gb)
    homes = nj_gb.homes
    want = np.zeros(len(homes), int)
    for c in report_gb.profile.categories:
        if c.required and report_gb.data_status[c.id] != col.STATUS_NO_DATA:
            want += ~(homes[col.time(c.id)].fillna(np.inf).to_numpy() <= c.minutes + 1e-9)
    np.testing.assert_array_equal(n, want)
    layer = compliance_layer(report_gb, nj_gb, lang="en")
    assert isinstance(layer, folium.FeatureGroup)
    html = folium.Map().add_child(layer).get_root().render()
    assert "mean missing required facilities" in html     # tooltip alias, English
    assert layer.layer_name == "Missing required facilities (count)"
    # the hexagons hold every reachable resident, with a population-weighted mean in 0..n_required
    gj = next(ch for ch in layer._children.values() if isinstance(ch, folium.GeoJson)).data
    props = [f["properties"] for f in gj["features"]]
    reach = homes[col.REACHABLE].to_numpy(bool)
    assert sum(p[col.POPULATION] for p in props) == pytest.approx(homes[col.POPULATION][reach].sum(), abs=len(props))
    assert sum(p["homes"] for p in props) == reach.sum()
    vals = [p["missing"] for p in props if p["missing"] is not None]
    assert 0 <= min(vals) and max(vals) <= len(report_gb.required_ids)


def test_compliance_map_follows_basemap_and_offline(report_gb, nj_gb, tmp_path):
    """batch passes its basemap and offline settings to the compliance map, as to its other maps."""
    from lifecircle.render.deliverables import write_compliance

    write_compliance(report_gb, nj_gb, tmp_path, "zh", basemap="amap", offline=False)
    page = (tmp_path / "compliance_map.html").read_text(encoding="utf-8")
    assert "autonavi.com" in page and "<script src=\"https://" in page      # Gaode tiles, Leaflet from a CDN
    write_compliance(report_gb, nj_gb, tmp_path, "zh")
    page = (tmp_path / "compliance_map.html").read_text(encoding="utf-8")
    assert "autonavi.com" not in page and "<script src=\"https://" not in page   # OSM, everything inlined


def test_repr_html(report_gb):
    h = report_gb._repr_html_()
    assert "城市居住区规划设计标准" in h and "必配设施" in h
    assert "OpenStreetMap contributors" in h
    assert h.count("<table") >= 3


# --------------------------------------------------------------------------------------------
# CLI


@pytest.fixture(scope="module")
def saved_gb(nj_gb, tmp_path_factory):
    d = tmp_path_factory.mktemp("nj") / "analysis"
    nj_gb.save(d, map_html=False)
    return d


def test_cli_check_writes_outputs(saved_gb, tmp_path, report_gb):
    out = tmp_path / "gb"
    res = runner.invoke(app, ["check", str(saved_gb), "--standard", "gb50180-2018", "--lang", "zh",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [".lifecircle", "compliance.csv", "compliance.xlsx",
                                                     "compliance_map.html"]
    assert "汇总" in res.output
    df = pd.read_csv(out / "compliance.csv", encoding="utf-8-sig")
    got = df.set_index(["unit", "id"])["share_pct"]
    for _, r in report_gb.rows.iterrows():
        unit = "whole area" if r.unit == ALL else r.unit    # the CSV's codes are English in zh too
        if r.status == "no_data":    # unknown: empty in the CSV, status no data
            assert np.isnan(got[(unit, r.id)])
            assert df.set_index(["unit", "id"])["status"][(unit, r.id)].startswith("no data")
            continue
        assert got[(unit, r.id)] == pytest.approx(round(100 * r.share, 1), abs=0.051)
    assert "无数据" in res.output and "--facilities" in res.output
    assert "OpenStreetMap contributors" in (out / "compliance_map.html").read_text(encoding="utf-8")
    assert load_workbook(out / "compliance.xlsx").sheetnames[0] == "汇总"


def test_cli_errors(saved_gb, tmp_path):
    out = tmp_path / "x"
    res = runner.invoke(app, ["check", str(saved_gb), "--standard", "gb50180", "--out", str(out)])
    assert res.exit_code == 2
    assert "gb50180-2018, tdt1062-2021" in res.output
    res = runner.invoke(app, ["check", str(tmp_path), "--standard", "tdt1062-2021", "--out", str(out)])
    assert res.exit_code == 2 and "not a lifecircle analysis folder" in res.output
    res = runner.invoke(app, ["check", str(saved_gb), "--lang", "fr", "--out", str(out)])
    assert res.exit_code == 2 and "unknown language 'fr'" in res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.")]


def test_poi_table_facilities_left_out_of_a_reclassified_check_are_said(nj_default):
    """A check that re-classifies OSM features for the standard counts the analysis's POI-table
    rows whose category the standard has (same id), and says how many it left out (a category
    the standard does not have)."""
    fac = nj_default.facilities.copy()
    cats = fac[col.CATEGORY].to_numpy()
    kept = np.flatnonzero(cats == "bus_stop")[:2]           # a category of both profiles
    gone = np.flatnonzero(cats == "restaurant")[:3]         # not in TD/T 1062
    assert len(kept) == 2 and len(gone) == 3
    fac.loc[fac.index[np.r_[kept, gone]], "source"] = "amap"
    report = check(dataclasses.replace(nj_default, facilities=fac), "tdt1062-2021", lang="en")
    said = [n for n in report.notes if "POI table" in n]
    assert len(said) == 1 and said[0].startswith("3 facilities")
    base = check(nj_default, "tdt1062-2021", lang="en")
    assert not [n for n in base.notes if "POI table" in n]
    n_bus = lambda r: int(r.rows[(r.rows.unit == ALL) & (r.rows.id == "bus_stop")].facilities.iloc[0])  # noqa: E731
    assert n_bus(report) == n_bus(base) + 2      # the two table rows counted beside the OSM stops
