"""``--lang zh`` consoles and files hold no English (issue 15): every command run on the shipped
Xinjiekou sample in Chinese, its console checked word by word; the notes a facility or site
table raises (dropped rows, points outside China) in Chinese; the tables and maps the commands
write without English labels, values or attribution words."""

from __future__ import annotations

import re

import openpyxl
import pytest
from test_zh_errors import CJK, SAMPLE, english_words
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.poitable import read_poi_table

#: Latin a Chinese console may print besides paths, options, ids and numbers: the OSM credit,
#: units, format and standard names, and the file names it lists.
CONSOLE_ALLOWED = {"OpenStreetMap", "contributors", "OSM", "POI", "GB", "TD", "MB", "s", "m", "km",
                   "min", "csv", "xlsx", "gpkg", "html", "summary", "resources", "recommendations",
                   "compliance", "links", "map", "lifecircle", "exact", "greedy"}


def _cli(*args):
    run = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    return run.output


def _english(text: str, *paths) -> list[str]:
    """English words of console text (rich breaks long words such as file names over lines:
    they are joined again)."""
    text = text.replace("\n", "")
    return [w for w in english_words(text, *paths) if w not in CONSOLE_ALLOWED]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every command on the sample in Chinese: {command: console output}, and the folder (the
    working folder too: ``analyze`` copies its map to ./maps)."""
    d = tmp_path_factory.mktemp("zhrun")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        return _run_all(d)


def _run_all(d):
    (d / "poi.csv").write_text("name,lng,lat,category\n甲药店,118.78,32.04,pharmacy\n乙,abc,32.04,pharmacy\n",
                               encoding="utf-8")
    (d / "sites.csv").write_text("name,lng,lat,type,area_m2,status\n空地一,118.785,32.045,闲置地,800,闲置\n"
                                 "坏行,abc,32.0,闲置地,1,闲置\n", encoding="utf-8")
    out = {"analyze": _cli("analyze", SAMPLE, "-o", d / "a", "--lang", "zh", "--facilities", d / "poi.csv")}
    out["resources"] = _cli("resources", d / "a", "-o", d / "res", "--sites", d / "sites.csv", "--lang", "zh")
    out["recommend"] = _cli("recommend", d / "a", "--category", "幼儿园", "--k", "2", "-o", d / "rec",
                            "--lang", "zh")
    out["check"] = _cli("check", d / "a", "-o", d / "chk", "--lang", "zh")
    out["links"] = _cli("links", d / "a", "--auto", "-o", d / "lnk", "--lang", "zh")
    out["map"] = _cli("map", d / "a", "-o", d / "map.html", "--resources", d / "res", "--recommend", d / "rec")
    out["isochrones"] = _cli("isochrones", d / "a", "--homes", "2", "-o", d / "iso.gpkg")
    return out, d


@pytest.mark.parametrize("command", ["analyze", "resources", "recommend", "check", "links", "map",
                                     "isochrones"])
def test_console_has_no_english(runs, command):
    out, d = runs
    assert CJK.search(out[command])
    assert _english(out[command], d, SAMPLE) == [], out[command]


def _flat(text: str) -> str:
    """Console text without the line breaks and blanks rich wraps it with."""
    return re.sub(r"\s+", "", text)


def test_notes_of_dropped_rows_in_chinese(runs):
    out, _ = runs
    # both tables' bad rows sit on the file's line 3 (the header is line 1): both say so
    assert _flat("第 3 行：经度 'abc' 不是数字") in _flat(out["analyze"])
    assert _flat("第 3 行：坐标 'abc', '32.0' 无效（不是数字）") in _flat(out["resources"])
    assert "用户用地" in _flat(out["resources"])                 # the stage timing of surveyed sites
    assert "数据日期2021-06-12" in _flat(out["analyze"]) and ", data " not in out["analyze"]


def test_poi_reasons_and_outside_china_note(tmp_path):
    p = tmp_path / "poi.csv"
    p.write_text("name,lng,lat,category\n甲,2.35,48.85,pharmacy\n乙,118.78,abc,pharmacy\n", encoding="utf-8")
    zh = read_poi_table(p, crs="gcj02", lang="zh")
    assert zh.attrs["dropped"] == [{"row": 3, "reason": "latitude 'abc' is not a number",
                                    "reason_zh": "纬度 'abc' 不是数字"}]
    assert zh.attrs["notes"] == ["poi.csv：1 个点中有 1 个位于中国境外，境外不使用 gcj02 坐标，已按 WGS-84 处理"
                                 "（请检查 --facilities-crs）"]
    en = read_poi_table(p, crs="gcj02")
    assert en.attrs["notes"][0].startswith("poi.csv: 1 of 1 point(s) lie outside China")


def _cells(path):
    wb = openpyxl.load_workbook(path, read_only=True)
    for ws in wb.worksheets:
        yield ws.title
        for row in ws.iter_rows(values_only=True):
            yield from (v for v in row if isinstance(v, str))


def test_tables_have_chinese_attribution_and_no_english_name_column(runs):
    _, d = runs
    for f in (d / "a" / "summary.xlsx", d / "res" / "resources.xlsx", d / "rec" / "recommendations.xlsx",
              d / "chk" / "compliance.xlsx", d / "lnk" / "links.xlsx"):
        cells = list(_cells(f))
        text = "\n".join(cells)
        assert "数据日期 2021-06-12" in text, f.name
        assert ", data " not in text, f.name
    compliance = list(_cells(d / "chk" / "compliance.xlsx"))
    assert "英文名称" not in compliance and "Post office" not in compliance
    assert not any(re.search(r"\bper\b.*residents|project addition", c) for c in compliance)
    links = list(_cells(d / "lnk" / "links.xlsx"))
    assert "auto:missing" not in links and "自动·缺失连接" in links and "ok" not in links


def _decoded(page) -> str:
    """A page's text with the \\uXXXX escapes of its embedded GeoJSON (popups) decoded."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), page.read_text(encoding="utf-8"))


def test_maps_have_no_english_labels(runs):
    _, d = runs
    for page in (d / "map.html", d / "res" / "resources_map.html"):
        html = _decoded(page)
        assert "life-circle score" not in html               # the score legend
        assert "<td>in use</td>" not in html and "使用中" in html   # site status, legend and popups
        assert "<td>site_id</td>" not in html and "<td>资源编号</td>" in html
        assert "<td>area_m2</td>" not in html and "<td>面积(平方米)</td>" in html
        assert "数据日期 2021-06-12" in html and "contributors, data" not in html
        assert ".leaflet-control-scale-line+.leaflet-control-scale-line{display:none}" in html  # no feet
    rec = _decoded(d / "map.html")
    assert "<td>newly_covered</td>" not in rec and "<td>新增覆盖人口</td>" in rec
    assert "<td>exact</td>" not in rec and "<td>精确求解(整数规划)</td>" in rec


def test_map_copy_refused_in_chinese(tmp_path, monkeypatch):
    """./maps/<out>.html that lifecircle did not write is kept; the note says so in Chinese."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "a.html").write_text("mine")
    out = _cli("analyze", SAMPLE, "-o", tmp_path / "a", "--lang", "zh")
    assert "注：地图未复制" in _flat(out) and "lifecircle写的" in _flat(out)
    assert (tmp_path / "maps" / "a.html").read_text() == "mine"
    assert _english(out, tmp_path, SAMPLE) == [], out


def test_profile_names_with_markup_print_literally(tmp_path):
    """A category named '幼儿园[/x]' in a profile crashed the -v table (rich read it as a closing
    tag); '[bold]' vanished. Names from profiles are printed as they are."""
    from lifecircle.core.profiles import profiles_dir
    from lifecircle.io.sources import embedded_sample

    text = (profiles_dir() / "default.yaml").read_text(encoding="utf-8")
    assert "name_zh: 幼儿园\n" in text
    prof = tmp_path / "p.yaml"
    prof.write_text(text.replace("name_zh: 幼儿园\n", 'name_zh: "幼儿园[/x][bold]"\n', 1), encoding="utf-8")
    r = CliRunner().invoke(app, ["analyze", str(embedded_sample("helsinki")), "-o", str(tmp_path / "o"),
                                 "--profile", str(prof), "--lang", "zh", "-v", "--no-map"])
    assert r.exit_code == 0, r.output
    assert "幼儿园[/x][bold]" in r.output
