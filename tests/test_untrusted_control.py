"""Control characters from the data (tester's items 13-16): they never crash a workbook write,
never reach the terminal raw (every command's console, a refusal's line, a traceback), the
links table shows every rank the greedy line names, and check's range error names the option
as typed.

One synthetic district is analysed once per module with a control-character payload in every
text route a CSV or GeoJSON can carry it (OSM XML cannot hold C0 characters): a POI table, the
boundary's community names, a profile's category name, a site file, a candidate-link file."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import yaml
from conftest import shared_file
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from synthetic_osm import LAT0, LON0, STEP, grid_osm
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.untrusted import shown, xlsx_frame, xlsx_value

runner = CliRunner()

#: SOH (a workbook refuses it), OSC "set window title" ended by BEL, CSI "clear screen", and a
#: C1 CSI (U+009B, which a workbook holds but a terminal may act on)
CTRL = "a\x01b\x1b]0;pwned\x07\x1b[2J\x9bc"
#: how it shows on the console (every control character as its escape)
SHOWN = r"a\x01b\x1b]0;pwned\x07\x1b[2J\x9bc"
#: how it shows when printed as a plain rich Text (rich drops BEL, BS, VT, FF and CR on making a
#: Text; the consoles' render hook then shows the rest)
SHOWN_NET = r"a\x01b\x1b]0;pwned\x1b[2J\x9bc"
#: how a workbook holds it (the characters a workbook refuses as escapes; U+009B kept)
IN_XLSX = "a\\x01b\\x1b]0;pwned\\x07\\x1b[2J\x9bc"
RAW = ("\x1b", "\x07", "\x01", "\x9b")          # must never reach the console raw
GRID_BBOX = [LON0 - 0.0005, LAT0 - 0.0005, LON0 + 4 * STEP + 0.0005, LAT0 + 4 * STEP + 0.0005]


def _csv_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def assert_console_clean(text: str, must_show=()):
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the console: {text!r}"
    for s in must_show:
        assert s in text, f"{s!r} not shown: {text!r}"


def xlsx_strings(path) -> list[str]:
    wb = load_workbook(path)
    return [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def assert_xlsx_holds(path, must_hold=(IN_XLSX,)):
    values = xlsx_strings(path)
    for v in values:
        assert not ILLEGAL_CHARACTERS_RE.search(v), f"{path.name}: {v!r}"
    for s in must_hold:
        assert any(s in v for v in values), f"{path.name}: {s!r} not in the workbook"


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    """Consoles 300 columns wide: a name in a table cell is not folded over lines."""
    from lifecircle.cli import common

    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 300)


# --------------------------------------------------------------------------------------------
# the district, analysed once


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("control")
    inp = root / "inputs"
    inp.mkdir()
    osm = inp / "district.osm"
    osm.write_text(grid_osm({"amenity=cafe": "Corner", "shop=supermarket": "Shop", "amenity=pharmacy": "Drugs"}),
                   encoding="utf-8")
    west, south, east, north = GRID_BBOX
    mid = (west + east) / 2
    gpd.GeoDataFrame({"name": [CTRL, "east"]},
                     geometry=[shapely.box(west, south, mid, north), shapely.box(mid, south, east, north)],
                     crs="EPSG:4326").to_file(inp / "boundary.geojson", driver="GeoJSON")
    (inp / "pois.csv").write_text("name,lng,lat,category\n"
                                  f"{_csv_text(CTRL)},{LON0 + 1.5 * STEP},{LAT0 + 1.5 * STEP},supermarket\n",
                                  encoding="utf-8")
    from importlib.resources import files

    doc = yaml.safe_load((files("lifecircle.data") / "profiles" / "default.yaml").read_text(encoding="utf-8"))
    cats = [c for d in doc["dimensions"] for c in d["categories"] if c["id"] == "supermarket"]
    assert len(cats) == 1
    cats[0]["name_en"] = cats[0]["name_zh"] = CTRL
    profile = inp / "ctrl.yaml"
    profile.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (inp / "sites.csv").write_text("name,type,area,lng,lat\n"
                                   f"{_csv_text(CTRL)},vacant lot,400,{LON0 + 0.5 * STEP},{LAT0 + 2.5 * STEP}\n",
                                   encoding="utf-8")
    (inp / "cands.csv").write_text("name,lng1,lat1,lng2,lat2\n"
                                   f"{_csv_text(CTRL)},{LON0 + 0.5 * STEP},{LAT0},{LON0 + 0.5 * STEP},{LAT0 + STEP}\n",
                                   encoding="utf-8")
    analysis = root / "analysis"               # names with control characters in the POI table only
    r = runner.invoke(app, ["analyze", str(osm), "--out", str(analysis), "--facilities", str(inp / "pois.csv")])
    assert r.exit_code == 0, r.output
    return {"root": root, "inp": inp, "osm": osm, "analysis": analysis, "profile": profile}


@pytest.fixture(scope="module")
def named(ws):
    """An analysis whose community names (boundary) and a category name (profile) carry them."""
    from lifecircle.cli import common

    inp, analysis = ws["inp"], ws["root"] / "named"
    common.console._width = 300                 # (module scope: the autouse fixture is not on)
    try:
        r = runner.invoke(app, ["analyze", str(ws["osm"]), "--out", str(analysis), "--boundary",
                                str(inp / "boundary.geojson"), "--facilities", str(inp / "pois.csv"),
                                "--profile", str(ws["profile"]), "--verbose"])
    finally:
        common.console._width = None
    assert r.exit_code == 0, r.output
    return {"analysis": analysis, "output": r.output}


# --------------------------------------------------------------------------------------------
# 13: workbooks


def test_summary_xlsx_holds_profile_and_community_names(named):
    """analyze: the profile's category name and the boundary's community name reach
    summary.xlsx as escapes (a raw one made openpyxl raise and the write fail)."""
    assert_xlsx_holds(named["analysis"] / "summary.xlsx")
    assert_console_clean(named["output"], must_show=[SHOWN])         # the category table (--verbose)


def test_facility_names_never_reached_a_workbook(ws):
    """Why ``analyze --facilities`` with such a name worked before: facility names go to the
    GeoPackage (which holds the text as it is), never to summary.xlsx."""
    facilities = gpd.read_file(ws["analysis"] / "lifecircle.gpkg", layer="facilities")
    assert CTRL in facilities["name"].tolist()
    assert not any("pwned" in v for v in xlsx_strings(ws["analysis"] / "summary.xlsx"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_resources_and_recommend_with_control_characters_in_site_names(ws, lang):
    out = ws["root"] / f"res_{lang}"
    r = runner.invoke(app, ["--lang", lang, "resources", str(ws["analysis"]), "-o", str(out),
                            "--sites", str(ws["inp"] / "sites.csv")])
    assert r.exit_code == 0, r.output
    assert_xlsx_holds(out / "resources.xlsx")
    assert CTRL in pd.read_csv(out / "resources.csv", encoding="utf-8-sig")["name"].tolist()   # CSV: as it is
    assert_console_clean(r.output)
    rec = ws["root"] / f"rec_{lang}"
    r = runner.invoke(app, ["--lang", lang, "recommend", str(ws["analysis"]), "-c", "kindergarten", "--k", "3",
                            "-o", str(rec), "--sites", str(ws["inp"] / "sites.csv")])
    assert r.exit_code == 0, r.output
    assert_xlsx_holds(rec / "resources.xlsx")
    assert_xlsx_holds(rec / "recommendations.xlsx", must_hold=())
    assert_console_clean(r.output)


def test_links_candidates_with_control_characters_in_names(ws):
    out = ws["root"] / "links"
    r = runner.invoke(app, ["links", str(ws["analysis"]), "-o", str(out), "--candidates",
                            str(ws["inp"] / "cands.csv"), "--basemap", "blank"])
    assert r.exit_code == 0, r.output
    assert_xlsx_holds(out / "links.xlsx")
    assert_console_clean(r.output, must_show=[SHOWN])                # the table's name cell


def test_check_with_control_characters_in_community_names(named, tmp_path):
    out = tmp_path / "check"
    r = runner.invoke(app, ["check", str(named["analysis"]), "-o", str(out), "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert_xlsx_holds(out / "compliance.xlsx")
    assert_console_clean(r.output, must_show=[SHOWN])                # the summary table's units


def test_batch_districts_xlsx_with_control_characters_in_names(ws, tmp_path, capfd):
    """districts.xlsx (both sheets) holds the names as escapes; the progress bar, which names
    each district as it ends, shows them (a console of its own: not the cli's)."""
    from dask.distributed import Client

    from lifecircle.batch.run import make_cluster, run

    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ctrl", "out": "out", "lang": "en", "sources": {"grid": str(ws["osm"])},
        "districts": [{"name": CTRL, "bbox": GRID_BBOX},
                      {"name": CTRL + " far", "bbox": [118.0, 31.0, 118.01, 31.01]}]}), encoding="utf-8")
    assert "\x1b" not in config.read_text(encoding="utf-8")     # YAML escapes it (\\e)
    with make_cluster(1, processes=False) as cluster, Client(cluster) as client:
        capfd.readouterr()
        report = run(config, client=client, progress=True)
    err = capfd.readouterr().err
    assert len(report.table) == 1 and len(report.failures) == 1
    assert_xlsx_holds(report.out_dir / "districts.xlsx", must_hold=[IN_XLSX, IN_XLSX + " far"])
    assert_console_clean(err, must_show=[SHOWN])


def test_every_character_a_workbook_refuses_is_written_as_its_escape(tmp_path):
    """xlsx_frame/xlsx_value against openpyxl's own rule, all of C0, DEL and C1, in cells and
    column names; numbers untouched."""
    text = "".join(chr(c) for c in range(0xA0) if c != 0x0D)   # (XML reads a CR back as a newline)
    frame = pd.DataFrame({text: [text, None, 1.5], "n": [1, 2, 3]})
    path = tmp_path / "all.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        xlsx_frame(frame).to_excel(xw, index=False)
    ws_ = load_workbook(path).active
    want = "".join(f"\\x{ord(ch):02x}" if ILLEGAL_CHARACTERS_RE.match(ch) else ch for ch in text)
    assert "\\x01" in want and all(ch in want for ch in "\t\n\x7f\x9b")    # tab, newline, DEL, C1 kept
    assert ws_["A1"].value == want and ws_["A2"].value == want
    assert ws_["B1"].value == "n" and [ws_[f"B{i}"].value for i in (2, 3, 4)] == [1, 2, 3]
    assert ws_["A4"].value == 1.5
    assert xlsx_value(3) == 3 and xlsx_value(None) is None
    wb = Workbook()
    wb.active.append([xlsx_value(CTRL)])                             # the cell API (check's sheets)
    assert wb.active["A1"].value == IN_XLSX


# --------------------------------------------------------------------------------------------
# 14: the console


def test_shown_escapes_every_control_character():
    assert shown(CTRL) == SHOWN
    assert shown("tab\tline\ncr\r\x7f\x85") == r"tab\tline\ncr\r\x7f\x85"
    assert shown("two\nlines\x1b", newlines=True) == "two\nlines\\x1b"
    assert shown("中文 plain [red]x[/red]") == "中文 plain [red]x[/red]"
    for c in range(0x100):
        ch = chr(c)
        assert (shown(ch) == ch) == (0x20 <= c < 0x7F or c >= 0xA0), hex(c)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_refusal_line_shows_escapes_in_a_file_name(tmp_path, lang):
    name = "x\x1b]0;pwned\x07\x1b[2J.pbf"
    r = runner.invoke(app, ["--lang", lang, "analyze", str(tmp_path / name), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert_console_clean(r.output, must_show=[r"x\x1b]0;pwned\x07\x1b[2J.pbf"])
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_text_printed_without_say_is_shown_too(ws):
    """The consoles' render hook: the output folder in resources' "wrote …" line is a plain
    rich Text (rich dropped the BEL on making it; the hook shows the ESC)."""
    out = ws["root"] / "r\x1b[2J\x07\x01"
    r = runner.invoke(app, ["resources", str(ws["analysis"]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert_console_clean(r.output, must_show=[r"r\x1b[2J\x01"])


def test_a_traceback_shows_escapes(ws, tmp_path, monkeypatch, capsys):
    """A defect's traceback (not a bad input's: those are one line) prints the exception's text
    with its control characters shown, exit 1."""
    import lifecircle.cli.standards as cli_standards
    from lifecircle.cli.app import main

    def boom(folder):
        raise RuntimeError(f"defect with {CTRL}")

    monkeypatch.setattr(cli_standards, "load_folder", boom)
    monkeypatch.setattr(sys, "argv", ["lifecircle", "check", str(ws["analysis"]), "-o", str(tmp_path / "c")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "RuntimeError" in err
    assert_console_clean(err, must_show=[SHOWN_NET])


# --------------------------------------------------------------------------------------------
# 15: every greedy pick in the links table


def _table_ranks(output: str) -> list[int]:
    return [int(m[1]) for m in re.finditer(r"^[│|]\s*(\d+)\s*[│|]", output, re.M)]


def _greedy_ranks(output: str) -> list[int]:
    line = next(x for x in output.splitlines() if x.startswith(("greedy best", "贪心最优")))
    return [int(x) for x in re.findall(r"#(\d+)", line)]


def test_links_table_lists_every_greedy_pick(monkeypatch):
    """A run whose greedy best set holds rank 12 of 14: the table shows ranks 1-10, a "…" row,
    rank 12; a line points to links.csv for all 14 (both languages)."""
    import lifecircle.cli.links as cli_links

    n = 14
    table = pd.DataFrame({"rank": range(1, n + 1), "name": [f"cut {i}" for i in range(1, n + 1)],
                          "reason": "drawn by the planner", "reason_zh": "规划绘制", "source": "file",
                          "link_m": 50.0, "residents": [100.0 * (n - i) for i in range(n)], "score_delta": 0.01})
    chosen = pd.DataFrame({"rank": [1, 12, 3], "cumulative_residents": [1300.0, 1500.0, 1600.0]})
    lr = SimpleNamespace(table=table, chosen=chosen, notes=[], result=SimpleNamespace(data_status={}))
    for lang, pointer in (("en", "all 14 ranked links: links.csv"), ("zh", "全部 14 条排名见 links.csv")):
        with cli_links.console.capture() as cap:
            cli_links.print_links(lr, lang)
        text = cap.get()
        ranks = _table_ranks(text)
        assert ranks == [*range(1, 11), 12]
        assert set(_greedy_ranks(text)) <= set(ranks) and "…" in text
        assert pointer in " ".join(text.split())


def test_links_auto_on_xinjiekou_names_only_ranks_it_shows(tmp_path):
    """The tester's run: --auto on the Xinjiekou extract picks a link ranked below 10."""
    pbf = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    from lifecircle.pipeline import analyze

    analyze(str(pbf)).save(tmp_path / "run", map_html=False)
    for lang in ("zh", "en"):
        r = runner.invoke(app, ["--lang", lang, "links", str(tmp_path / "run"), "--auto", "--basemap", "blank",
                                "-o", str(tmp_path / f"lk_{lang}")])
        assert r.exit_code == 0, r.output
        picks, ranks = _greedy_ranks(r.output), _table_ranks(r.output)
        assert max(picks) > 10                                     # the case the tester met
        assert set(picks) <= set(ranks), (picks, ranks)
        n = len(pd.read_csv(tmp_path / f"lk_{lang}" / "links.csv", encoding="utf-8-sig"))
        assert ranks[:10] == list(range(1, 11)) and len(ranks) == 10 + sum(p > 10 for p in picks)
        assert f"{n} " in " ".join(r.output.split()) and "links.csv" in r.output


# --------------------------------------------------------------------------------------------
# 16: check names the option as typed


@pytest.mark.parametrize(("lang", "value", "words"), [
    ("en", "2", "--min-share: must be between 0 and 1 (got 2)"),
    ("en", "-0.5", "--min-share: must be between 0 and 1 (got -0.5)"),
    ("zh", "2", "--min-share：须在 0 到 1 之间（实为 2）"),
    ("zh", "nan", "--min-share：须在 0 到 1 之间（实为 nan）"),
])
def test_check_min_share_out_of_range_names_the_option(ws, tmp_path, lang, value, words):
    out = tmp_path / "c"
    r = runner.invoke(app, ["--lang", lang, "check", str(ws["analysis"]), "-o", str(out), f"--min-share={value}"])
    assert r.exit_code == 2 and not out.exists()
    assert words in r.output and "min_share" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_frame_with_two_columns_of_one_name_is_made_safe_column_by_column():
    # two categories of a profile may share a display name: links.xlsx's Chinese headers are
    # made of them, and reading such a column by name gave a frame (AttributeError, traceback)
    import pandas as pd

    from lifecircle.untrusted import csv_safe, xlsx_frame

    frame = pd.DataFrame([["=a\x01", "+b", 1.5]], columns=["超市", "超市", "n"])
    out = xlsx_frame(frame)
    assert list(out.columns) == ["超市", "超市", "n"]
    assert out.iloc[0].tolist() == ["=a\\x01", "+b", 1.5]
    assert csv_safe(frame).iloc[0].tolist() == ["'=a\x01", "'+b", 1.5]
    assert frame.iloc[0].tolist() == ["=a\x01", "+b", 1.5]      # the caller's frame untouched


def test_what_xml_cannot_hold_beyond_the_c0_controls_is_escaped_so_the_workbook_opens(tmp_path):
    # openpyxl writes U+FFFE, U+FFFF and surrogates (a file name's undecodable bytes) into a
    # file that no reader opens: the write "succeeded" and delivered a broken workbook
    import openpyxl
    import pandas as pd

    from lifecircle.untrusted import xlsx_frame, xlsx_value

    assert xlsx_value("a\ufffeb\uffffc\udcffd") == "a\\ufffeb\\uffffc\\udcffd"
    assert xlsx_value("路\t\n\r口") == "路\t\n\r口"
    path = tmp_path / "w.xlsx"
    xlsx_frame(pd.DataFrame({"name\uffff": ["Lot\ufffeA"]})).to_excel(path, index=False)
    rows = list(openpyxl.load_workbook(path).active.values)
    assert rows == [("name\\uffff",), ("Lot\\ufffeA",)]


def test_bidi_overrides_and_isolates_are_shown_not_acted_on():
    # U+202E reverses what a terminal shows after it (a path or a number reads differently)
    import io

    from rich.console import Console
    from rich.text import Text

    from lifecircle.cli import common
    from lifecircle.untrusted import CONTROL_CHARACTERS, literal, say, shown

    assert shown("site\u202eexe.pbf\u2066x\u2069\u2028y") == "site\\u202eexe.pbf\\u2066x\\u2069\\u2028y"
    assert shown("路口\u200b") == "路口\u200b"          # a zero-width space is part of names
    assert literal("a\u202db").plain == "a\\u202db"
    out = io.StringIO()
    say(Console(file=out, width=200), "bad \u202efile")
    assert "\u202e" not in out.getvalue() and "\\u202e" in out.getvalue()
    # the command-line consoles' hook: plain text with one goes through the escaping
    out = io.StringIO()
    console = Console(file=out, width=200)
    console.push_render_hook(common._ShownControls())
    console.print(Text("x \u2067y"))
    assert "\u2067" not in out.getvalue() and "\\u2067" in out.getvalue()
    # the hook's fast path looks for the same characters as untrusted (newline aside)
    every = [chr(c) for c in range(0x3000)]
    import re
    ours = {c for c in every if re.match(f"[{CONTROL_CHARACTERS}]", c)} - {"\n"}
    assert {c for c in every if common._CONTROL.match(c)} == ours


@pytest.mark.parametrize("args", [
    ["links", "{a}", "-o", "{o}", "--auto", "--coords", "nonsense"],
    ["resources", "{a}", "-o", "{o}", "--sites-crs", "nonsense"],
    ["recommend", "{a}", "-c", "supermarket", "-o", "{o}", "--sites-crs", "nonsense"],
    ["map", "{a}", "-o", "{o}.html", "--origins-crs", "nonsense"],
    ["isochrones", "{a}", "-o", "{o}.gpkg", "--origins-crs", "nonsense"],
])
def test_a_bad_datum_option_is_refused_even_without_its_file(ws, tmp_path, args):
    # a typo in --coords / --sites-crs / --origins-crs was ignored when no file was given
    out = tmp_path / "out"
    line = [a.format(a=ws["analysis"], o=out) for a in args]
    r = runner.invoke(app, line)
    option = next(a for a in args if a.endswith(("-crs", "coords")))
    assert r.exit_code == 2 and f"{option}: unknown coordinate system 'nonsense'" in r.output, r.output
    assert not list(tmp_path.iterdir())               # nothing written


def test_a_file_name_that_is_not_utf8_is_analysed_and_recorded_as_its_escapes(ws, tmp_path):
    # a GBK-named extract on a UTF-8 system: Python holds the name with surrogates, which no
    # UTF-8 output can store; the analysis ran, then the save crashed with a traceback
    import json
    import os
    import shutil

    from lifecircle.untrusted import readable_path

    assert readable_path("a\udcc4\udccf.pbf") == "a\\xc4\\xcf.pbf" and readable_path("南京.pbf") == "南京.pbf"
    name = os.fsdecode(b"\xc4\xcf\xbe\xa9.osm")
    shutil.copyfile(ws["osm"], tmp_path / name)
    r = runner.invoke(app, ["analyze", str(tmp_path / name), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "out" / "meta.json").read_text(encoding="utf-8"))
    assert meta["source"].endswith("\\xc4Ͼ\\xa9.osm")
    import pyogrio

    about = pyogrio.read_dataframe(tmp_path / "out" / "lifecircle.gpkg", layer="about")
    assert about["source"].iloc[0].endswith("\\xc4Ͼ\\xa9.osm")
    # the result itself keeps the path (links --auto and --close-gates read the file again)
    from lifecircle import analyze

    r = analyze(str(tmp_path / name))
    assert r.source == str(tmp_path / name) and os.path.exists(r.source)
    assert readable_path("/a/\ud800") == "/a/\\ud800"      # not an undecodable byte: no error


@pytest.mark.parametrize("command", ["analyze", "map"])
def test_an_output_name_that_is_not_utf8_is_refused_before_any_work(ws, tmp_path, command):
    # the GeoParquet writer cannot name such a file: the whole analysis ran, then a traceback
    import os

    out = tmp_path / os.fsdecode(b"\xca\xe4\xb3\xf6")
    line = (["analyze", str(ws["osm"]), "--out", str(out)] if command == "analyze"
            else ["map", str(ws["analysis"]), "--out", str(out) + ".html"])
    r = runner.invoke(app, line)
    assert r.exit_code == 2 and "not UTF-8" in r.output and "\\xca\\xe4\\xb3\\xf6" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
