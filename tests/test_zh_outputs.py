"""Chinese deliverables of issue 15: the 80-column console summary, summary.xlsx, Chinese
tables and console lines of resources / recommend, category names in Chinese."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, shared_file
from rich.console import Console

from lifecircle.cli.analysis import print_summary
from lifecircle.result import load_result

XJK = "china/nanjing_xinjiekou_2021.osm.pbf"


@pytest.fixture(scope="module")
def xjk_zh(tmp_path_factory):
    """``COLUMNS=80 lifecircle analyze XINJIEKOU --lang zh`` as a user runs it (a subprocess,
    so the console width comes from the environment); its stdout and folder."""
    src = shared_file(XJK)
    work = tmp_path_factory.mktemp("zh")
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(REPO), LANG="C.UTF-8")
    env.pop("LC_ALL", None)
    run = subprocess.run([sys.executable, "-m", "lifecircle.cli", "analyze", str(src),
                          "--out", str(work / "out"), "--lang", "zh"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, work / "out"


def _cells(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


def test_console_summary_fits_80_columns_in_chinese(xjk_zh):
    out, folder = xjk_zh
    lines = out.splitlines()
    assert lines, out
    assert max(_cells(x) for x in lines) <= 80
    assert "…" not in out                       # no cell cut with an ellipsis
    # headline, six dimension rows, notes: Chinese, none of the raw words of the old table
    for word in ("category", "dimension", "homes", "residents", "note:", "mean score", "stages"):
        assert word not in out, word
    assert "十五分钟生活圈覆盖" in out and "平均得分" in out and "基尼系数" in out
    r = load_result(folder)
    dims = r.summary[(r.summary.community == "ALL") & (r.summary.level == "dimension")]
    assert len(dims) == 6
    for _, d in dims.iterrows():                # each dimension row with its real coverage
        row = next(x for x in lines if x.startswith(d["name_zh"]))
        assert f"{100 * d['covered']:.1f}" in row.split()
    # the 45-category table is not printed, but named where it is
    assert "便利店" not in out and "summary.xlsx" in out and "--verbose" in out
    # the notes of the analysis are Chinese
    assert "注：居民 " in out and "来源：建筑估算" in out
    flat = out.replace("\n", "")
    assert "个设施类别在数据中没有设施" in flat and "托儿所" in flat


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_verbose_category_table_fits_80_columns(xjk_zh, lang):
    r = load_result(xjk_zh[1])
    buf = io.StringIO()
    print_summary(r, lang, verbose=True, out=Console(file=buf, width=80))
    text = buf.getvalue()
    assert "…" not in text and max(_cells(x) for x in text.splitlines()) <= 80
    cats = r.summary[(r.summary.community == "ALL") & (r.summary.level == "category")]
    first = cats.iloc[0]
    name = first["name_zh"] if lang == "zh" else first["name_en"]
    row = next(x for x in text.splitlines() if x.startswith(name))
    assert f"{100 * first['covered']:.1f}" in row.split()


def test_summary_xlsx_chinese_headers_and_percentages(xjk_zh):
    folder = xjk_zh[1]
    x = pd.read_excel(folder / "summary.xlsx", sheet_name=None)
    assert set(x) == {"汇总", "说明"}
    sheet = x["汇总"]
    assert {"层级", "名称", "覆盖率(%)", "15分钟内(%)", "设施数"} <= set(sheet.columns)
    csv = pd.read_csv(folder / "summary.csv", encoding="utf-8-sig")
    assert "covered" in csv.columns and "level" in csv.columns   # machine names stay
    assert set(sheet["层级"]) == {"设施类别", "维度", "总体"}
    k = csv[(csv.level == "category") & (csv.id == "kindergarten")].iloc[0]
    row = sheet[sheet["名称"] == k["name_zh"]].iloc[0]
    assert row["覆盖率(%)"] == pytest.approx(round(100 * k["covered"], 1))
    assert row["15分钟内(%)"] == pytest.approx(round(100 * k["within_15"], 1))
    assert "OpenStreetMap" in " ".join(x["说明"].iloc[:, 0].astype(str))
    # a category without data says 无数据 beside its empty shares
    nd = csv[(csv.level == "category") & (csv.data_status == "no_data")]
    assert len(nd)
    rows = sheet[sheet["名称"].isin(nd["name_zh"])]
    assert (rows["数据"] == "无数据").all() and rows["覆盖率(%)"].isna().all()


# --------------------------------------------------------------------------------------------
# resources and recommend in Chinese


def _cli(*args):
    from typer.testing import CliRunner

    from lifecircle.cli import app

    run = CliRunner().invoke(app, [str(a) for a in args])
    assert run.exit_code == 0, run.output
    return run.output


@pytest.fixture(scope="module")
def xjk_resources(xjk_zh, tmp_path_factory):
    out = tmp_path_factory.mktemp("res") / "res"
    text = _cli("resources", xjk_zh[1], "--out", out, "--lang", "zh")
    return text, out


def test_zh_resources_keep_source_and_attribution(xjk_resources):
    """The old zh resources.csv renamed the attribution column 来源 and so overwrote the site
    source (OSM / derived / surveyed) of every row."""
    text, out = xjk_resources
    csv = pd.read_csv(out / "resources.csv", encoding="utf-8-sig")
    assert set(csv["source"]) == {"osm", "derived"}              # the site sources survive
    # the shared copy of the Xinjiekou extract is dated from the shipped provenance record
    assert set(csv["attribution"]) == {"© OpenStreetMap contributors, data 2021-06-12"}
    book = pd.read_excel(out / "resources.xlsx", sheet_name=None)
    sheet = book["资源清单"]
    assert set(sheet["来源"]) == {"OSM", "几何识别"}
    assert "OpenStreetMap" in str(book["说明"].iloc[0, 0])
    assert (sheet["来源"] == "几何识别").sum() == (csv["source"] == "derived").sum()
    # GCJ-02 beside WGS-84, for a Gaode user: in Nanjing the offset is ~500 m (0.004–0.007°)
    d = (csv["lng_gcj02"] - csv["lng"]).abs()
    assert d.between(0.003, 0.008).all()
    from lifecircle.io.chinacoords import wgs84_to_gcj02

    glng, glat = wgs84_to_gcj02(csv["lng"].to_numpy(), csv["lat"].to_numpy())
    assert (abs(glng - csv["lng_gcj02"]) < 2e-6).all() and (abs(glat - csv["lat_gcj02"]) < 2e-6).all()
    assert "经度(GCJ-02 高德)" in sheet.columns
    # the console is Chinese
    assert "共 " in text and "处资源" in text and "地面停车场" in text and "sites;" not in text


def test_recommend_kindergarten_by_chinese_name(xjk_zh, tmp_path):
    folder = xjk_zh[1]
    out = tmp_path / "rec"
    text = _cli("recommend", folder, "--category", "幼儿园", "--k", "3", "--out", out, "--lang", "zh")
    rec = pd.read_csv(out / "recommendations.csv", encoding="utf-8-sig")
    assert 1 <= len(rec) <= 3 and set(rec["use"]) == {"kindergarten"}
    # the share is of every resident lacking a kindergarten within 5 min today
    r = load_result(folder)
    import numpy as np

    from lifecircle import columns as col

    pop = r.homes[col.POPULATION].to_numpy(float)
    t = np.nan_to_num(r.homes[col.time("kindergarten")].to_numpy(float), nan=np.inf)
    lacking = pop[t > r.profile.category("kindergarten").minutes].sum()
    assert lacking > 0.8 * pop.sum()                              # Xinjiekou: 14% within 5 min
    assert rec["share_of_gap"].iloc[-1] == pytest.approx(rec["cumulative"].iloc[-1] / lacking,
                                                         abs=1e-4)
    # site status and area shown, in the table and on the console
    assert set(rec["status"]) == {"in use"} and (rec["area_m2"] >= 1500).all()
    assert "使用中" in text and "幼儿园" in text and "地面停车场" in text
    assert f"{rec['area_m2'].iloc[0]:,.0f}" in text
    book = pd.read_excel(out / "recommendations.xlsx", sheet_name=None)
    sheet = book["推荐选址"]
    assert sheet["建议功能"].iloc[0] == "幼儿园" and sheet["现状"].iloc[0] == "使用中"
    assert sheet["累计占缺口人口比例(%)"].iloc[-1] == pytest.approx(
        round(100 * rec["share_of_gap"].iloc[-1], 1))


def test_recommend_empty_says_why(xjk_zh):
    from lifecircle.analyses import recommend as M
    from lifecircle.analyses.resources import build_inventory

    r = load_result(xjk_zh[1])
    inv = build_inventory(r)
    t = M.recommend(r, inv, "hospital", k=2, lang="zh")
    assert len(t) == 0 and "20,000 平方米" in t.attrs["why"] and "--sites" in t.attrs["why"]
    t = M.recommend(r, inv, ["bus_stop"], k=2, lang="en")
    assert len(t) == 0 and "no rule for bus_stop" in t.attrs["why"]
    # every category a site can take has a rule (kindergarten included)
    from lifecircle.analyses.resources import load_site_rules

    rules = load_site_rules()
    missing = [c for c in r.profile.category_ids if c not in rules.uses]
    assert sorted(missing) == ["bus_stop", "business_area", "rail_station"]


def test_check_console_in_chinese(xjk_zh, tmp_path):
    import io

    from lifecircle.analyses.standards import check
    from lifecircle.cli import standards as S

    r = load_result(xjk_zh[1])
    report = check(r, "gb50180-2018", lang="zh")
    buf = io.StringIO()
    old = S.console
    S.console = Console(file=buf, width=80)
    try:
        S.print_report(report, "zh")
    finally:
        S.console = old
    text = buf.getvalue()
    flat = text.replace("\n", "")
    # the missing items by Chinese name, never by id; the notes in Chinese
    whole = report.summary[report.summary.unit == "ALL"]
    failing = [c.strip() for f in whole.failing for c in f.split(",") if c.strip()]
    nodata = [c.strip() for f in whole.no_data for c in str(f).split(",") if c.strip()]
    assert "kindergarten" in failing and "community_health_centre" in nodata
    ids = failing + nodata
    for c in ids:
        assert c not in flat, c
        assert report.profile.display_name(c, "zh") in flat
    assert "未达标设施：" in flat and "注：已按 gb50180-2018" in flat and "note:" not in text
    assert "…" not in text and max(_cells(x) for x in text.splitlines()) <= 80


def test_districts_xlsx_sheet_rounded_and_chinese(xjk_zh):
    from lifecircle.batch.run import district_row, districts_sheet

    csv = pd.read_csv(xjk_zh[1] / "summary.csv", encoding="utf-8-sig", keep_default_na=False,
                      na_values=[""])
    row = district_row(csv, "zh")
    table = pd.DataFrame([{"district": "新街口", "source": "xjk", "folder": "xjk",
                           "status": "done", **row, "config_hash": "abc"}])
    sheet = districts_sheet(table, "zh")
    assert sheet["片区"].iloc[0] == "新街口" and sheet["状态"].iloc[0] == "完成"
    assert sheet["人口"].iloc[0] == round(row["population"]) and float(sheet["人口"].iloc[0]).is_integer()
    assert sheet["平均得分"].iloc[0] == round(row["score_mean"], 1)
    assert sheet["就业覆盖率(%)"].iloc[0] == round(100 * row["cov_employment"], 1)
    assert sheet["短板1覆盖率(%)"].iloc[0] == round(100 * row["gap_1_covered"], 1)
    assert "gap_1" not in sheet.columns and "短板1" in sheet.columns
    assert not any(c.isascii() and c.isidentifier() for c in sheet.columns)   # no raw machine names
    en = districts_sheet(table, "en")
    assert "district" in en.columns and "Employment covered (%)" in en.columns


# --------------------------------------------------------------------------------------------
# GeoPackages QGIS opens without questions


def test_gpkg_one_geometry_kind_per_layer_and_aliases(xjk_zh, tmp_path):
    import geopandas as gpd
    import pyogrio

    from lifecircle.io.outputs import read_field_aliases

    folder = xjk_zh[1]
    gpkg = folder / "lifecircle.gpkg"
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers["facilities"] in ("Point", "MultiPoint")
    assert layers["facility_areas"] in ("Polygon", "MultiPolygon")
    for name, kind in layers.items():
        if kind is not None:                                  # every spatial layer: WGS-84
            assert pyogrio.read_info(gpkg, layer=name)["crs"] == "EPSG:4326"
    pts = gpd.read_file(gpkg, layer="facilities")
    areas = gpd.read_file(gpkg, layer="facility_areas")
    assert set(pts.geom_type) <= {"Point", "MultiPoint"} and set(areas.geom_type) <= {"Polygon", "MultiPolygon"}
    r = load_result(folder)
    assert len(pts) + len(areas) == len(r.facilities) and len(areas) > 100
    # Chinese aliases for every coded home column (the analysis ran with --lang zh)
    homes = pyogrio.read_info(gpkg, layer="homes")["fields"]
    aliases = read_field_aliases(gpkg, "homes")
    assert set(homes) == set(aliases)
    assert aliases["t_kindergarten"] == "幼儿园步行时间(分钟)"
    assert aliases["n15_park"].startswith("15分钟内") and aliases["population"] == "人口"
    assert aliases["cov_social"] == "交往维度覆盖" and len(set(aliases.values())) == len(aliases)
    assert read_field_aliases(gpkg, "facility_areas")["category"] == "设施类别"
    # the facilities keep their order across the two layers (the stored snaps follow it)
    r.save(tmp_path / "again", map_html=False)
    r2 = load_result(tmp_path / "again")
    assert list(r2.facilities["category"]) == list(r.facilities["category"])
    assert r2.facilities.geometry.geom_equals_exact(r.facilities.geometry, 1e-6).all()


def test_old_mixed_facilities_layer_still_loads(tmp_path):
    import geopandas as gpd
    import shapely

    from lifecircle.io.outputs import FACILITY_LAYERS, _read_split

    g = gpd.GeoDataFrame({"category": ["a", "b"]},
                         geometry=[shapely.Point(0, 0), shapely.box(0, 0, 1, 1)], crs=4326)
    g.to_file(tmp_path / "old.gpkg", layer="facilities")
    back = _read_split(tmp_path / "old.gpkg", FACILITY_LAYERS)
    assert list(back["category"]) == ["a", "b"]


def test_site_file_notes_in_chinese(xjk_zh, tmp_path):
    r = load_result(xjk_zh[1])
    c = r.homes.to_crs(4326).geometry.iloc[0]
    f = tmp_path / "sites.csv"
    f.write_text("id,type,area,ownership,lng,lat\n"
                 f"s1,停车场,500,国有,{c.x},{c.y}\ns2,飞船,300,外星,{c.x},{c.y}\ns3,空地,100,国有,abc,1\n",
                 encoding="utf-8")
    out = tmp_path / "res"
    text = _cli("resources", xjk_zh[1], "--sites", f, "--out", out, "--lang", "zh")
    flat = text.replace("\n", "")
    assert "sites.csv：未知的用地类型按“其他”处理：飞船" in flat
    assert "sites.csv：未知的权属按“未知”处理：外星" in flat
    assert "sites.csv：3 行中丢弃 1 行" in flat and "note:" not in text
    csv = pd.read_csv(out / "resources.csv", encoding="utf-8-sig")
    assert set(csv.loc[csv["source"] == "user", "site_id"]) == {"U-s1", "U-s2"}
