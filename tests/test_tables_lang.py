"""The machine tables are the same whatever ``--lang``: every CSV lifecircle writes (summary,
links, links_greedy, compliance, resources, recommendations, districts, failures) has the same
columns and the same values under zh and en — English codes (status ``ok``/``short``, source
``auto:missing``, unit ``whole area``, gap kind ``access gap``), free text in both languages
side by side (``reason`` and ``reason_zh``, ``error`` and ``error_zh``) — while the XLSX and the
console stay in the chosen language. Plus the attribution and rounding every table carries.
On the embedded Xinjiekou sample, two communities."""

from __future__ import annotations

import json
import textwrap

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.sources import embedded_sample

runner = CliRunner()
WULAO = (118.770, 32.033, 118.782, 32.052)
DAXING = (118.782, 32.033, 118.797, 32.052)
CHILDCARE = "托儿所/托育机构"          # no facility of it in the sample: no data


def _invoke(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every CSV-writing command run once in Chinese and once in English:
    ``{"zh": folder, "en": folder}``, each holding the command outputs by name."""
    work = tmp_path_factory.mktemp("tables")
    comm = gpd.GeoDataFrame({"name": ["五老村社区", "大行宫社区"]},
                            geometry=[shapely.box(*WULAO), shapely.box(*DAXING)], crs="EPSG:4326")
    comm.to_file(work / "comm.geojson", driver="GeoJSON")
    (work / "bad_sites.csv").write_text("name,colour\nx,red\n", encoding="utf-8")   # a failing step
    out = {}
    for lang in ("zh", "en"):
        d = work / lang
        d.mkdir()
        a = d / "a"
        _invoke("analyze", embedded_sample("xinjiekou"), "--boundary", work / "comm.geojson",
                "--out", a, "--lang", lang, "--no-map")
        _invoke("links", a, "--auto", "--k", 2, "--lang", lang, "--out", d / "links")
        _invoke("check", a, "--lang", lang, "--out", d / "check")
        _invoke("resources", a, "--lang", lang, "--out", d / "resources")
        _invoke("recommend", a, "-c", CHILDCARE, "--k", 2, "--lang", lang, "--out", d / "rec")
        (d / "batch.toml").write_text(textwrap.dedent(f"""
            name = "t"
            out = "batch"
            lang = "{lang}"
            offline = true
            basemap = "blank"
            [sources]
            xjk = {{ sample = "xinjiekou" }}
            [[districts]]
            name = "五老村"
            bbox = {list(WULAO)}
            check = true
            [[districts]]
            name = "East"
            bbox = {list(DAXING)}
            sites = "{(work / 'bad_sites.csv').as_posix()}"
        """), encoding="utf-8")
        _invoke("batch", d / "batch.toml", "--workers", 1, code=1)    # one district fails
        out[lang] = d
    return out


CSVS = ["a/summary.csv", "links/links.csv", "links/links_greedy.csv", "check/compliance.csv",
        "resources/resources.csv", "rec/resources.csv", "rec/recommendations.csv",
        "batch/districts.csv", "batch/failures.csv", "batch/五老村/summary.csv",
        "batch/五老村/compliance.csv"]


@pytest.mark.parametrize("name", CSVS)
def test_every_csv_is_the_same_in_both_languages(runs, name):
    zh = pd.read_csv(runs["zh"] / name, encoding="utf-8-sig")
    en = pd.read_csv(runs["en"] / name, encoding="utf-8-sig")
    assert len(en), name                                           # something to compare
    assert list(zh.columns) == list(en.columns), name
    # the config hash covers the language (it decides what a resumed run may keep): not a value
    same = [c for c in en.columns if c != "config_hash"]
    pd.testing.assert_frame_equal(zh[same], en[same], obj=name)


def test_codes_are_english_and_free_text_in_both(runs):
    en = runs["en"]
    links = pd.read_csv(en / "links/links.csv", encoding="utf-8-sig")
    assert set(links["status"]) <= {"ok", "no_geometry", "no_street", "zero_length", "duplicates_edge"}
    assert links["source"].str.startswith("auto:").all()
    assert links["reason_zh"].str.contains("缺失连接|内部道路|大门").all() and \
        not links["reason"].str.contains("缺失连接").any()
    comp = pd.read_csv(en / "check/compliance.csv", encoding="utf-8-sig")
    assert {"whole area", "五老村社区", "大行宫社区"} == set(comp["unit"])
    assert set(comp["present"]) <= {"yes", "no", "no data"}
    dist = pd.read_csv(en / "batch/districts.csv", encoding="utf-8-sig")
    assert dist["gap_1_kind"].iloc[0] == "access gap"
    fails = pd.read_csv(en / "batch/failures.csv", encoding="utf-8-sig")
    assert fails["error"].iloc[0].startswith("resources: ") and fails["error_zh"].iloc[0].startswith("闲置用地清单：")


def test_the_people_tables_stay_in_their_language(runs):
    x = pd.read_excel(runs["zh"] / "links/links.xlsx", sheet_name=0)
    assert "状态" in x.columns and "ok" not in set(x["状态"].dropna())
    c = pd.read_excel(runs["zh"] / "check/compliance.xlsx", sheet_name=1)
    assert "全区" in set(c["单元"])
    d = pd.read_excel(runs["zh"] / "batch/districts.xlsx", sheet_name=0)
    assert d["短板1类型"].iloc[0] == "覆盖不足"
    f = pd.read_excel(runs["zh"] / "batch/districts.xlsx", sheet_name=1)
    assert f.iloc[0].astype(str).str.startswith("闲置用地清单：").any()
    assert json.loads((runs["zh"] / "batch/batch_run.json").read_text(encoding="utf-8"))["failed"] == 1


XLSXS = ["a/summary.xlsx", "links/links.xlsx", "check/compliance.xlsx", "resources/resources.xlsx",
         "rec/recommendations.xlsx", "batch/districts.xlsx"]


@pytest.mark.parametrize("name", XLSXS)
def test_every_workbook_shows_rounded_numbers(runs, name):
    """No cell of a workbook for people carries float noise (548.7229170237911): at most six
    decimals (coordinates), and links.xlsx's metres and residents one."""
    for lang in ("zh", "en"):
        for sheet, t in pd.read_excel(runs[lang] / name, sheet_name=None).items():
            for c in t.columns:
                v = pd.to_numeric(t[c], errors="coerce").dropna()
                assert (v.round(6) == v).all(), (name, sheet, c, v[v.round(6) != v].head(2).tolist())
    if name != "links/links.xlsx":
        return
    x = pd.read_excel(runs["zh"] / name, sheet_name=0)
    for c in ("节省绕行(米)", "连接长度(米)", "新增可达居民"):
        assert len(x[c].dropna()) and (x[c].dropna().round(1) == x[c].dropna()).all(), c


def test_every_table_carries_the_attribution(runs):
    """Every CSV has an attribution column naming OSM and the data date, every GeoPackage an
    ``about`` table with them, as lifecircle.gpkg has."""
    import pyogrio

    d = runs["en"]
    for name in CSVS:
        if name == "batch/failures.csv":          # no data behind a failure
            continue
        t = pd.read_csv(d / name, encoding="utf-8-sig")
        assert "attribution" in t.columns, name
        assert t["attribution"].str.contains("© OpenStreetMap contributors, data 20").all(), name
    for name in ("links/links.gpkg", "resources/resources.gpkg", "batch/districts.gpkg", "a/lifecircle.gpkg"):
        about = pyogrio.read_dataframe(d / name, layer="about")
        assert about["attribution"].str.contains("© OpenStreetMap contributors, data 20").all(), name
    about = pyogrio.read_dataframe(d / "batch/districts.gpkg", layer="about")
    assert about["data_date"].iloc[0].startswith("20")


def test_summary_counts_facilities_inside_each_unit(runs):
    """summary's ``facilities`` is counted inside the unit of its row (the study area, each
    community), as compliance.csv counts them — not the whole data with the 1,500 m margin
    repeated on every row; that figure stands apart in ``facilities_incl_margin``."""
    from lifecircle import columns as col
    from lifecircle.result import load_result

    d = runs["en"]
    s = pd.read_csv(d / "a/summary.csv", encoding="utf-8-sig")
    cats = s[s.level == "category"].set_index(["community", "id"])
    r = load_result(d / "a")
    fac = r.facilities[r.facilities[col.REACHABLE].astype(bool)]
    units = {"ALL": r.study_area, **dict(zip(r.communities[col.COMMUNITY], r.communities.geometry))}
    for unit, poly in units.items():        # brute force: a spatial join per unit
        inside = gpd.sjoin(fac, gpd.GeoDataFrame(geometry=[poly], crs=fac.crs), predicate="intersects")
        want = inside[col.CATEGORY].value_counts()
        got = cats.loc[unit, "facilities"]
        assert got.sum() == len(inside), unit
        assert all(got[k] == want.get(k, 0) for k in got.index), unit
        # dimensions and the overall row sum their categories
        block = s[s.community == unit]
        assert block[block.level == "overall"]["facilities"].iloc[0] == len(inside)
    margin = cats["facilities_incl_margin"]
    assert (margin >= cats["facilities"]).all() and (margin.loc["ALL"] > cats.loc["ALL", "facilities"]).any()
    assert (margin.loc["五老村社区"] == margin.loc["ALL"]).all()      # the data's: the same on every row
    # the same figures as the compliance check
    comp = pd.read_csv(d / "check/compliance.csv", encoding="utf-8-sig").set_index(["unit", "id"])["facilities"]
    for unit, name in (("ALL", "whole area"), ("五老村社区", "五老村社区"), ("大行宫社区", "大行宫社区")):
        assert cats.loc[(unit, "bus_stop"), "facilities"] == comp[(name, "bus_stop")] > 0
    assert cats.loc[("五老村社区", "bus_stop"), "facilities"] < cats.loc[("ALL", "bus_stop"), "facilities"]
    x = pd.read_excel(runs["zh"] / "a/summary.xlsx", sheet_name=0)
    assert "设施数" in x.columns and "设施数(含边界外 1500 米缓冲区)" in x.columns


def test_a_no_data_recommendation_says_so_in_every_deliverable(runs):
    """托儿所 has no facility in the data: its gap assumes none exist. The console said so; the
    CSV (``category_data``), the workbook (under the table and on its about sheet) and the
    map's legend say so too."""
    for lang, words in (("zh", "缺口按不存在此类设施计算"), ("en", "the gap assumes no such facility exists")):
        d = runs[lang] / "rec"
        csv = pd.read_csv(d / "recommendations.csv", encoding="utf-8-sig")
        assert len(csv) and (csv["category_data"] == "no_data").all()
        sheets = pd.read_excel(d / "recommendations.xlsx", sheet_name=None, header=None)
        picks, about = list(sheets.values())
        assert any(words in str(v) for v in picks.to_numpy().ravel()), lang
        assert any(words in str(v) for v in about.to_numpy().ravel()), lang
        assert ("无数据" if lang == "zh" else "no data") in {str(v) for v in picks.iloc[1:].to_numpy().ravel()}
        page = (d / "resources_map.html").read_text(encoding="utf-8")
        assert ("缺口按不存在此类设施计算" if lang == "zh" else "the gap assumes none exist") in page, lang
    # a category with data carries no such note
    d = runs["en"] / "resources"
    assert "the gap assumes none exist" not in (d / "resources_map.html").read_text(encoding="utf-8")
