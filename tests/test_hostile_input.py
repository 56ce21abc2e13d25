"""Hostile input, table-driven: text from the data never runs or renders as code in any output,
no output cell is a formula, and every failure a user can cause ends in one line naming the
input, exit code 2, no traceback, no partial output and the user's files intact.

One analysis of a synthetic district whose every text route carries payloads (OSM names, a POI
table, boundary names, a profile's labels, a site file, a batch config) is made once per module;
the checks read the HTML, XLSX and CSV files it and the later commands write."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import textwrap
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import yaml
from openpyxl import Workbook, load_workbook
from synthetic_osm import LAT0, LON0, STEP, grid_osm
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.outputs import HTML_MARKER

runner = CliRunner()

TPL = "{{7*7}}zq"                       # renders as 49zq if evaluated as a template
UNCLOSED = "Café {{ x"                  # aborts a template compile
XSS = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(3)>"
SCRIPT = "</script><script>alert(2)</script>"
FORMULA = '=HYPERLINK("http://x","y")'
AT = "@SUM(1+1)"
PLUS = "+1+cmd|' /C calc'!A0"
RAW_HTML = (XSS, SVG, SCRIPT)           # must never appear unescaped in an HTML output
GRID_BBOX = [LON0 - 0.0005, LAT0 - 0.0005, LON0 + 4 * STEP + 0.0005, LAT0 + 4 * STEP + 0.0005]


# --------------------------------------------------------------------------------------------
# checks of written files


def _as_the_browser_reads(text: str) -> str:
    """Undo the JSON escapes of strings in the page's scripts (Leaflet puts them into the DOM
    as HTML: a layer name "\\u003cimg …" is an <img> element there)."""
    for esc, ch in (("\\u003c", "<"), ("\\u003e", ">"), ("\\u0026", "&"), ("\\u0027", "'"),
                    ("\\u0022", '"'), ('\\"', '"'), ("\\/", "/")):
        text = text.replace(esc, ch)
    return text


def assert_html_safe(path: Path, must_show=()):
    text = _as_the_browser_reads(path.read_text(encoding="utf-8"))
    for raw in RAW_HTML:
        assert raw not in text, f"{path.name}: unescaped {raw!r}"
    assert "alert(2)</script>" not in text and "<script>alert" not in text
    assert "49zq" not in text, f"{path.name}: a name was evaluated as a template"
    for shown in must_show:
        assert shown in text, f"{path.name}: {shown!r} did not reach the page"
    return text


def assert_xlsx_safe(path: Path, must_hold=()):
    wb = load_workbook(path)
    values = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{path.name}!{ws.title}!{cell.coordinate}: formula {cell.value!r}"
                if isinstance(cell.value, str):
                    values.add(cell.value)
    for v in must_hold:
        assert any(v in x for x in values), f"{path.name}: {v!r} not written as text"


def assert_csv_safe(path: Path, must_hold=()):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    for c in cells:
        if c[:1] in ("=", "+", "-", "@", "\t", "\r"):
            try:
                float(c)
            except ValueError:
                raise AssertionError(f"{path.name}: live formula cell {c!r}") from None
    for v in must_hold:
        assert any(("'" + v) in c for c in cells), f"{path.name}: {v!r} not neutralised (or missing)"


# --------------------------------------------------------------------------------------------
# the hostile district, analysed once


def _hostile_profile(path: Path) -> Path:
    from importlib.resources import files

    src = files("lifecircle.data") / "profiles" / "default.yaml"
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    dim = doc["dimensions"][0]
    dim["name_en"] = f"Dim {XSS}"
    dim["name_zh"] = f"维度 {TPL}"
    for cat in doc["dimensions"][1]["categories"]:          # services: supermarket, pharmacy …
        if cat["id"] == "supermarket":
            cat["name_en"] = f"{FORMULA}{SVG}"
            cat["name_zh"] = f"{AT}{TPL}"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace: inputs (hostile everywhere), one analysis, and the files a user keeps."""
    root = tmp_path_factory.mktemp("hostile")
    inp = root / "inputs"
    inp.mkdir()
    osm = inp / "district.osm"
    osm.write_text(grid_osm(
        {"amenity=cafe": TPL, "shop=supermarket": XSS, "amenity=pharmacy": SCRIPT,
         "amenity=restaurant": UNCLOSED, "amenity=bank": FORMULA, "amenity=clinic": PLUS},
        areas={"landuse=brownfield": f"{FORMULA}{XSS}", "landuse=greenfield": AT}), encoding="utf-8")
    west, south, east, north = GRID_BBOX
    mid = (west + east) / 2
    gpd.GeoDataFrame({"name": [FORMULA, f"{XSS}{TPL}"]},
                     geometry=[shapely.box(west, south, mid, north), shapely.box(mid, south, east, north)],
                     crs="EPSG:4326").to_file(inp / "boundary.geojson", driver="GeoJSON")
    (inp / "pois.csv").write_text(
        "name,lng,lat,category\n"
        f"\"{AT}\",{LON0 + 1.5 * STEP},{LAT0 + 1.5 * STEP},supermarket\n"
        f"\"{SVG}\",{LON0 + 2.5 * STEP},{LAT0 + 0.5 * STEP},pharmacy\n", encoding="utf-8")
    profile = _hostile_profile(inp / "hostile.yaml")
    (inp / "sites.csv").write_text(
        "name,type,area,lng,lat\n"
        f"\"{FORMULA.replace(chr(34), chr(34) * 2)}\",vacant lot,400,{LON0 + 0.5 * STEP},{LAT0 + 2.5 * STEP}\n"
        f"\"{XSS}{TPL}\",vacant lot,300,{LON0 + 3.5 * STEP},{LAT0 + 3.5 * STEP}\n", encoding="utf-8")
    work = root / "work"
    (work / "maps").mkdir(parents=True)
    foreign_copy = work / "maps" / "analysis.html"
    foreign_copy.write_text("<html>the user's own page</html>", encoding="utf-8")
    keep = root / "keep"                      # files a user keeps next to the outputs
    (keep / "thesis" / "chapter").mkdir(parents=True)
    (keep / "thesis" / "thesis.docx").write_text("years of work", encoding="utf-8")
    (keep / "report.pdf").write_text("pdf", encoding="utf-8")
    (keep / "page.html").write_text("<html>mine</html>", encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        analysis = work / "analysis"
        r = runner.invoke(app, ["analyze", str(osm), "--out", str(analysis), "--boundary",
                                str(inp / "boundary.geojson"), "--facilities", str(inp / "pois.csv"),
                                "--profile", str(profile)])
        assert r.exit_code == 0, r.output
        assert "map not copied" in r.output            # maps/analysis.html is not lifecircle's
        assert foreign_copy.read_text(encoding="utf-8") == "<html>the user's own page</html>"
        yield {"root": root, "inp": inp, "osm": osm, "analysis": analysis, "work": work,
               "keep": keep, "profile": profile}
    finally:
        os.chdir(cwd)


# --------------------------------------------------------------------------------------------
# payloads reach every output, inert


def test_analysis_outputs_are_inert(ws):
    a = ws["analysis"]
    assert (a / ".lifecircle").is_file()
    text = assert_html_safe(a / "map.html", must_show=[
        "{{7*7}}zq",                                        # OSM name kept literally
        "&lt;img src=x onerror=alert(1)&gt;",               # OSM name and the dimension label, escaped
        "&lt;svg onload=alert(3)&gt;",                      # POI table name / category label, escaped
        "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"])
    assert "Dim &lt;img" in text                            # the profile's dimension label
    assert text.startswith("<!DOCTYPE html>\n" + HTML_MARKER)
    assert_csv_safe(a / "summary.csv", must_hold=[FORMULA])          # community + category label


def test_full_map_command(ws):
    out = ws["root"] / "full.html"
    r = runner.invoke(app, ["map", str(ws["analysis"]), "--basemap", "blank", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert_html_safe(out, must_show=["{{7*7}}zq", "Caf", "&lt;img src=x onerror=alert(1)&gt;"])
    # a second run may replace the page it wrote
    r = runner.invoke(app, ["map", str(ws["analysis"]), "--basemap", "blank", "--out", str(out)])
    assert r.exit_code == 0, r.output


CHROMIUM = Path("/usr/bin/chromium")
_ALERT_PROBE = """<script>window.__alerts=[];window.alert=function(m){window.__alerts.push(String(m));};
window.addEventListener('load',function(){setTimeout(function(){var d=document.createElement('pre');
d.id='lc-alerts';d.textContent=JSON.stringify(window.__alerts);document.body.appendChild(d);},500);});
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")
def test_no_payload_runs_in_the_browser(ws, tmp_path):
    """The full offline map in headless Chromium (outside requests refused): no alert fires, no
    payload element exists, and the hostile labels are shown as text in the layer control."""
    import re
    import subprocess

    page = tmp_path / "full.html"
    r = runner.invoke(app, ["map", str(ws["analysis"]), "--offline", "--basemap", "blank",
                            "--out", str(page)])
    assert r.exit_code == 0, r.output
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + _ALERT_PROBE, 1),
                     encoding="utf-8")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--proxy-server=127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=8000",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="lc-alerts">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    assert json.loads(found.group(1).replace("&quot;", '"')) == []
    for element in ('<img src="x"', 'onerror="alert', '<svg onload', 'onload="alert', "<script>alert"):
        assert element not in dom, element                                  # no payload element
    assert "Dim &lt;img src=x onerror=alert(1)&gt;" in dom                 # shown as text


def test_check_outputs_are_inert(ws):
    out = ws["root"] / "check"
    r = runner.invoke(app, ["check", str(ws["analysis"]), "--lang", "en", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert_xlsx_safe(out / "compliance.xlsx", must_hold=[FORMULA])   # a community name
    assert_csv_safe(out / "compliance.csv", must_hold=[FORMULA])
    assert_html_safe(out / "compliance_map.html")
    assert FORMULA in r.output                  # printed literally, markup never parsed


def test_resources_recommend_and_site_popups_are_inert(ws):
    out = ws["root"] / "res"
    r = runner.invoke(app, ["resources", str(ws["analysis"]), "--sites", str(ws["inp"] / "sites.csv"),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert_xlsx_safe(out / "resources.xlsx", must_hold=[FORMULA, AT, XSS])   # user + OSM site names
    assert_csv_safe(out / "resources.csv", must_hold=[FORMULA, AT])
    rec = ws["root"] / "rec"
    r = runner.invoke(app, ["recommend", str(ws["analysis"]), "-c", "supermarket", "--k", "2",
                            "--sites", str(ws["inp"] / "sites.csv"), "--out", str(rec)])
    assert r.exit_code == 0, r.output
    for name in ("recommendations.csv", "resources.csv"):
        assert_csv_safe(rec / name)
    assert_xlsx_safe(rec / "recommendations.xlsx")

    from lifecircle.analyses.resources import build_inventory
    from lifecircle.pipeline import load_result
    from lifecircle.render.maps import save_map

    result = load_result(ws["analysis"])
    inv = build_inventory(result, str(ws["osm"]), sites=str(ws["inp"] / "sites.csv"))
    page = save_map(result.map(sites=inv.sites, basemap="blank", service_areas=False),
                    ws["root"] / "sites_map.html")
    assert_html_safe(page, must_show=["&lt;img src=x onerror=alert(1)&gt;{{7*7}}zq"])


def test_batch_outputs_are_inert(ws, tmp_path):
    from dask.distributed import Client

    from lifecircle.batch.run import make_cluster, run

    config = tmp_path / "batch.toml"
    config.write_text(textwrap.dedent(f"""
        name = "{XSS}"
        out = "out"
        lang = "en"
        [sources]
        grid = "{ws['osm']}"
        [[districts]]
        name = '{FORMULA}{TPL}'
        bbox = {GRID_BBOX}
        [[districts]]
        name = "{SVG}"
        bbox = [118.0, 31.0, 118.01, 31.01]
    """), encoding="utf-8")
    with make_cluster(1, processes=False) as cluster, Client(cluster) as client:
        report = run(config, client=client)
    out = report.out_dir
    assert len(report.table) == 1 and len(report.failures) == 1
    assert_csv_safe(out / "districts.csv", must_hold=[FORMULA])
    assert_csv_safe(out / "failures.csv")
    assert_xlsx_safe(out / "districts.xlsx", must_hold=[FORMULA, SVG])
    assert_html_safe(out / "index.html", must_show=["{{7*7}}zq", "&lt;svg onload=alert(3)&gt;"])


# --------------------------------------------------------------------------------------------
# refusals: one line, exit 2, the input named, nothing written, nothing of the user's touched


def _corrupt(ws, name: str, damage) -> Path:
    d = ws["root"] / "corrupt" / name
    if not d.exists():
        shutil.copytree(ws["analysis"], d)
        damage(d)
    return d


def _files(ws) -> dict:
    root = ws["root"]
    inp, keep = root / "inputs", root / "keep"
    (inp / "empty.gpkg").write_bytes(b"")
    (inp / "garbage.geojson").write_text("garbage", encoding="utf-8")
    (inp / "afolder").mkdir(exist_ok=True)
    (inp / "header_only.csv").write_text("lng,lat,name\n", encoding="utf-8")
    (inp / "pop_table.csv").write_text("name,population\nA,100\n", encoding="utf-8")
    gpd.GeoDataFrame({"population": [100]}, geometry=[shapely.Point(118.78, 32.04)],
                     crs="EPSG:4326").to_file(inp / "pop_points.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"population": [100]}, geometry=[shapely.box(10, 10, 10.01, 10.01)],
                     crs="EPSG:4326").to_file(inp / "far.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"name": ["world"]}, geometry=[shapely.box(-179, -80, 179, 80)],
                     crs="EPSG:4326").to_file(inp / "world.geojson", driver="GeoJSON")
    (inp / "nulls.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "n"}, "geometry": None}]}), encoding="utf-8")
    (keep / "[red]x[").mkdir(exist_ok=True)
    (keep / "[red]x[" / "x]").mkdir(exist_ok=True)
    (keep / "[red]x[" / "x]" / "notes.txt").write_text("mine", encoding="utf-8")
    return {"inp": inp, "keep": keep}


A = object()      # stands for the analysis folder in a case's arguments
OUT = object()    # stands for the (new) output path of the case

CASES = [
    # id, args, text naming the input, text naming the problem
    ("crs-bogus", ["analyze", "OSM", "--crs", "bogus", "--out", OUT], "--crs", "bogus"),
    ("crs-geographic", ["analyze", "OSM", "--crs", "EPSG:4326", "--out", OUT], "EPSG:4326", "not projected"),
    ("crs-web-mercator", ["analyze", "OSM", "--crs", "EPSG:3857", "--out", OUT], "EPSG:3857", "stretches distances"),
    ("facilities-crs", ["analyze", "OSM", "--facilities-crs", "bogus", "--out", OUT], "--facilities-crs", "bogus"),
    ("population-missing", ["analyze", "OSM", "--population", "IN/none.gpkg", "--out", OUT], "none.gpkg", "not found"),
    ("population-no-geometry", ["analyze", "OSM", "--population", "IN/pop_table.csv", "--out", OUT], "pop_table.csv",
     "no geometry"),
    ("population-points", ["analyze", "OSM", "--population", "IN/pop_points.geojson", "--out", OUT],
     "pop_points.geojson", "need polygons"),
    ("population-empty", ["analyze", "OSM", "--population", "IN/empty.gpkg", "--out", OUT], "empty.gpkg", "empty"),
    ("population-garbage", ["analyze", "OSM", "--population", "IN/garbage.geojson", "--out", OUT],
     "garbage.geojson", "cannot read"),
    ("population-no-home", ["analyze", "OSM", "--population", "IN/far.geojson", "--out", OUT], "far.geojson",
     "contains a home"),
    ("speed", ["analyze", "OSM", "--speed", "1e9", "--out", OUT], "--speed", "1000000000"),
    ("boundary-folder", ["analyze", "OSM", "--boundary", "IN/afolder", "--out", OUT], "afolder", "is a folder"),
    ("boundary-world", ["analyze", "OSM", "--boundary", "IN/world.geojson", "--out", OUT], "world.geojson",
     "larger than a study area"),
    ("boundary-nulls", ["analyze", "OSM", "--boundary", "IN/nulls.geojson", "--out", OUT], "nulls.geojson",
     "no geometry"),
    ("place-not-guessed", ["analyze", "Kallio Helsinki", "--out", OUT], "Kallio Helsinki", "place:"),
    ("markup-in-path", ["analyze", "IN/x[/x].osm", "--out", OUT], "x[/x].osm", "not found"),
    ("out-dot", ["analyze", "OSM", "--out", "."], "'.'", "current folder"),
    ("out-empty", ["analyze", "OSM", "--out", ""], "--out", "current folder"),
    ("out-is-a-file", ["analyze", "OSM", "--out", "KEEP/report.pdf"], "report.pdf", "existing file"),
    ("out-foreign-folder", ["analyze", "OSM", "--out", "KEEP/thesis"], "thesis", "did not make"),
    ("out-markup-folder", ["analyze", "OSM", "--out", "KEEP/[red]x[/x]"], "[red]x[/x]", "did not make"),
    ("resources-into-input", ["resources", A, "--out", A], "analysis", "would replace the input"),
    ("check-into-parent", ["check", A, "--out", "ROOT/work"], "work", "would replace the input"),
    ("corner-negative", ["resources", A, "--corner-min", "-5", "--out", OUT], "--corner-min", "at least 0"),
    ("sites-header-only", ["resources", A, "--sites", "IN/header_only.csv", "--out", OUT], "header_only.csv",
     "no data rows"),
    ("k-negative", ["recommend", A, "-c", "supermarket", "--k", "-1", "--out", OUT], "--k", "at least 1"),
    ("map-over-foreign-page", ["map", A, "--out", "KEEP/page.html"], "page.html", "not written by lifecircle"),
    ("map-out-folder", ["map", A, "--out", "KEEP/thesis"], "thesis", "is a folder"),
] + [
    (f"{cmd}-{name}", [cmd, ("CORRUPT", name), "--out", OUT] + (["--lang", "en"] if cmd == "check" else []),
     file, "damaged")
    for name, file in (("meta", "meta.json"), ("gpkg", "lifecircle.gpkg"), ("npz", "network.npz"),
                       ("npzrange", "network.npz"), ("summary", "summary.csv"))
    for cmd in ("map", "check", "resources")
]

_DAMAGE = {
    "meta": lambda d: (d / "meta.json").write_text("{not json", encoding="utf-8"),
    "gpkg": lambda d: (d / "lifecircle.gpkg").write_bytes((d / "lifecircle.gpkg").read_bytes()[:4096]),
    "npz": lambda d: (d / "network.npz").write_bytes(b"\x93NUMPY garbage" * 20),
    "summary": lambda d: (d / "summary.csv").write_bytes(b""),
    # a valid archive whose snaps name edges that do not exist
    "npzrange": lambda d: _shift_snaps(d / "network.npz"),
}


def _shift_snaps(path):
    import numpy as np

    with np.load(path) as npz:
        z = {k: npz[k] for k in npz.files}
    z["home_edge"] = z["home_edge"] + 1000
    np.savez_compressed(path, **z)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line(ws, case, tmp_path):
    _, args, names_input, names_problem = case
    files = _files(ws)
    out = tmp_path / "out"
    argv = []
    for a in args:
        if a is A:
            a = str(ws["analysis"])
        elif a is OUT:
            a = str(out)
        elif isinstance(a, tuple):
            a = str(_corrupt(ws, a[1], _DAMAGE[a[1]]))
        elif a == "OSM":
            a = str(ws["osm"])
        elif isinstance(a, str) and a.startswith(("IN/", "KEEP/", "ROOT/")):
            a = (a.replace("IN/", f"{files['inp']}/", 1).replace("KEEP/", f"{files['keep']}/", 1)
                 .replace("ROOT/", f"{ws['root']}/", 1))
        argv.append(a)
    before = _snapshot(ws["root"])
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = runner.invoke(app, argv)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit), r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.output
    assert names_input in errors[0] and names_problem in errors[0], errors[0]
    assert not out.exists()                                          # no partial output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _snapshot(ws["root"]) == before                           # nothing of anyone's touched


# --------------------------------------------------------------------------------------------
# accepted with a printed note


def test_notes_for_silent_acceptances(ws, tmp_path):
    from lifecircle.analyses.resources import read_sites
    from lifecircle.io.poitable import read_poi_table

    helsinki = tmp_path / "helsinki.csv"
    helsinki.write_text("name,lng,lat,category\nA,24.94,60.17,pharmacy\n", encoding="utf-8")
    t = read_poi_table(helsinki, crs="gcj02")
    assert any("outside China" in n for n in t.attrs["notes"])
    assert t.geometry.iloc[0].x == pytest.approx(24.94)           # taken as WGS-84, unshifted
    s = read_sites(helsinki, crs="bd09")
    assert any("outside China" in n for n in s.attrs["notes"])
    wb = Workbook()
    wb.active.title = "pois"
    wb.active.append(["name", "lng", "lat", "category"])
    wb.active.append(["B", LON0 + STEP, LAT0 + STEP, "pharmacy"])
    wb.create_sheet("more pois").append(["name", "lng", "lat", "category"])
    wb.save(tmp_path / "two.xlsx")
    t = read_poi_table(tmp_path / "two.xlsx")
    assert len(t) == 1 and any("'more pois'" in n for n in t.attrs["notes"])
