"""Hostile inputs an attacker found: each is refused with one line (exit 2, nothing written)
or kept in the table with its status, never a traceback."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from test_links import _lines, _two_streets
from typer.testing import CliRunner

from lifecircle.analyses.links import read_candidates, score_candidates
from lifecircle.cli.app import app
from lifecircle.core.network import WalkNetwork
from lifecircle.core.snapping import snap_points
from lifecircle.errors import TableError

runner = CliRunner()


def _one_line(r) -> str:
    """The output of a refused run: one line, no traceback."""
    text = r.output.strip()
    assert r.exit_code == 2, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


# --------------------------------------------------------------------------------------------
# links


def test_candidates_with_coordinates_off_the_globe_keep_their_row_with_a_status(tmp_path):
    res, *_ = _two_streets()
    wgs = _lines([(200, 0), (200, 100)]).to_crs("EPSG:4326").geometry.iloc[0]
    (x1, y1), (x2, y2) = shapely.get_coordinates(wgs)
    p = tmp_path / "c.csv"
    p.write_text("name,wkt\n"
                 f"cross,\"LINESTRING ({x1} {y1}, {x2} {y2})\"\n"
                 f"inf,\"LINESTRING ({x1} {y1}, {x2} inf)\"\n"
                 f"huge,\"LINESTRING ({x1} {y1}, 1000000 {y2})\"\n", encoding="utf-8")
    lr = score_candidates(res, read_candidates(p, res.crs), k=1)
    t = lr.table.set_index("name")
    assert t.loc["cross", "rank"] == 1 and t.loc["cross", "link_m"] == pytest.approx(100.0, abs=0.5)
    assert t.loc["inf", "status"] == t.loc["huge", "status"] == "bad_coordinates"
    # lines handed over as a GeoDataFrame: a non-finite coordinate is reported the same way
    given = gpd.GeoDataFrame({"name": ["nan"], "reason": "t", "source": "t"},
                             geometry=[shapely.linestrings([[1.0, 2.0], [np.nan, 3.0]])], crs=res.crs)
    assert score_candidates(res, given, k=1).table["status"].tolist() == ["bad_coordinates"]


def test_candidate_file_with_no_usable_coordinates_is_refused(tmp_path):
    res, *_ = _two_streets()
    p = tmp_path / "c.geojson"
    p.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"x"},'
                 '"geometry":{"type":"LineString","coordinates":[[118.78,32.042],[1e6,32.0425]]}}]}')
    with pytest.raises(TableError, match="c.geojson: no row has longitude/latitude"):
        read_candidates(p, res.crs)


@pytest.mark.parametrize("option", [["--snap", "0"], ["--snap", "-5"], ["--snap", "nan"],
                                    ["--snap", "inf"], ["--k", "-1"]])
def test_links_options_out_of_range_are_refused(tmp_path, option):
    (tmp_path / "run").mkdir()
    r = runner.invoke(app, ["links", str(tmp_path / "run"), "--auto", *option, "--out", str(tmp_path / "o")])
    assert option[0] in _one_line(r)
    assert not (tmp_path / "o").exists()


def test_a_point_whose_box_meets_an_edge_farther_than_the_snap_distance_snaps_nowhere():
    net = WalkNetwork.from_arrays(np.array([0.0, 100.0]), np.array([0.0, 100.0]), [0], [1], crs="EPSG:32650")
    s = snap_points(net, shapely.points([[90.0, 10.0]]), 30.0, tie_m=0)    # 56.6 m away
    assert s.edge.tolist() == [-1] and np.isnan(s.leg).all()
    s = snap_points(net, shapely.points([[90.0, 10.0], [50.0, 50.0]]), 30.0, tie_m=0)
    assert s.edge.tolist() == [-1, 0] and s.offset[1] == pytest.approx(np.hypot(50, 50))


# --------------------------------------------------------------------------------------------
# demo


def test_demo_with_a_file_called_maps_writes_the_analysis_and_says_the_map_was_not_copied(tmp_path,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maps").write_text("mine")
    r = runner.invoke(app, ["demo", "--sample", "helsinki", "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "helsinki" / "map.html").is_file()
    assert "map not copied" in r.output and "./maps is not a folder" in r.output
    assert (tmp_path / "maps").read_text() == "mine"


# --------------------------------------------------------------------------------------------
# batch


BATCH = """\
out = "bo"

[sources]
helsinki = { sample = "helsinki" }

[[districts]]
name = "a"
bbox = [24.9352, 60.1641, 24.9443, 60.1716]
"""


@pytest.mark.parametrize("setting, words", [("max_snap_m = -5", "max_snap_m must be a number from 1 to 5000"),
                                            ("boundary_margin_m = nan", "boundary_margin_m must be a number")])
def test_batch_setting_out_of_range_is_refused_at_load_naming_field_and_line(tmp_path, setting, words):
    from lifecircle.batch import load_config
    from lifecircle.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(BATCH + f"\n[settings]\n{setting}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == f"settings.{setting.split()[0]}" and info.value.line == 11
    r = runner.invoke(app, ["batch", str(path)])
    text = _one_line(r)
    assert f"line 11, field 'settings.{setting.split()[0]}'" in text and words in text
    assert not (tmp_path / "bo").exists()


def test_batch_settings_valid_together_are_accepted(tmp_path):
    from lifecircle.batch import load_config

    path = tmp_path / "c.toml"      # sfca_minutes = 45 alone is over the default max_minutes (30)
    path.write_text(BATCH + "\n[settings]\nsfca_minutes = 45\nmax_minutes = 60\n", encoding="utf-8")
    assert load_config(path).settings == {"sfca_minutes": 45, "max_minutes": 60}


def test_batch_force_writes_into_a_district_folder_holding_a_users_file_and_keeps_it(tmp_path):
    from dask.distributed import Client

    from lifecircle.batch import make_cluster, run

    path = tmp_path / "c.toml"
    path.write_text(BATCH, encoding="utf-8")
    with make_cluster(1, processes=False) as cluster, Client(cluster) as client:
        assert "failed" not in run(path, client=client).statuses.values()
        notes = tmp_path / "bo" / "a" / "notes.txt"
        notes.write_text("notes")
        (tmp_path / "bo" / "a" / "summary.csv").write_text("stale")
        report = run(path, client=client, force=True)
    assert report.statuses == {"a": "done"}, report.details
    assert notes.read_text() == "notes"
    assert (tmp_path / "bo" / "a" / "summary.csv").read_text() != "stale"      # lifecircle's, rewritten


# --------------------------------------------------------------------------------------------
# a damaged analysis folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import lifecircle
    from lifecircle.io.sources import embedded_sample

    folder = tmp_path_factory.mktemp("saved") / "h"
    lifecircle.analyze(embedded_sample("helsinki")).save(folder, map_html=False)
    return folder


@pytest.mark.parametrize("array, value", [("node_x", np.nan), ("node_y", np.inf), ("edge_len", np.nan),
                                          ("edge_len", -3.0), ("home_off", np.nan), ("fac_off", -np.inf),
                                          ("node_y", 1e300)])     # finite, but no place on Earth
def test_network_archive_with_a_non_finite_number_is_named_damaged(saved, tmp_path, array, value):
    import shutil

    d = tmp_path / "h2"
    shutil.copytree(saved, d)
    with np.load(d / "network.npz") as npz:
        z = {k: npz[k] for k in npz.files}
    if array == "node_x":
        z[array][:] = value         # every node, as the attacker did
    else:
        z[array][0] = value
    np.savez(d / "network.npz", **z)
    r = runner.invoke(app, ["resources", str(d), "--out", str(tmp_path / "gr")])
    text = _one_line(r)
    assert "network.npz: damaged or not written by lifecircle" in text and array in text
    assert not (tmp_path / "gr").exists()


# --------------------------------------------------------------------------------------------
# long output names


@pytest.mark.parametrize("name", ["c" * 240, "新" * 85, "d" * 255], ids=["240", "cjk-255", "255"])   # bytes
def test_an_output_name_up_to_255_bytes_is_written_and_replaced(tmp_path, name):
    from lifecircle.io.outputs import atomic_dir, copy_file_atomic

    out = tmp_path / name
    for text in ("first", "second"):                  # new, then replacing lifecircle's own
        with atomic_dir(out) as tmp:
            (tmp / "summary.csv").write_text(text)
    assert (out / "summary.csv").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    # a file of such a name (a map copy) is written through a temporary file that fits too
    (tmp_path / "maps").mkdir()
    assert copy_file_atomic(out / "summary.csv", tmp_path / "maps" / name).read_text() == "second"
    assert [p.name for p in (tmp_path / "maps").iterdir()] == [name]


def test_a_crashed_runs_temporary_folder_of_a_long_name_is_cleaned_up(tmp_path):
    import os

    from lifecircle.io.outputs import _OLD_TAG, _TMP_TAG, atomic_dir, sibling_name

    name = "c" * 240
    stale = tmp_path / (sibling_name(name, _TMP_TAG, room=8) + "abcdefgh")
    stale.mkdir()
    (stale / "summary.csv").write_text("stale")
    assert len(os.fsencode(stale.name)) <= 255
    with atomic_dir(tmp_path / name) as tmp:
        (tmp / "summary.csv").write_text("new")
    assert not stale.exists() and (tmp_path / name / "summary.csv").read_text() == "new"
    # two long names that begin alike get different siblings; short names keep theirs
    a, b = "x" * 250 + "a", "x" * 250 + "b"
    assert sibling_name(a, _OLD_TAG) != sibling_name(b, _OLD_TAG) == sibling_name(b, _OLD_TAG)
    assert sibling_name("out", _OLD_TAG) == ".out.lifecircle-old"


# --------------------------------------------------------------------------------------------
# a profile's regex that backtracks without end


EVIL_NAME = "a" * 36 + "!"


def _evil_profile(path, pattern):
    import yaml

    from lifecircle.settings import data_path

    doc = yaml.safe_load((data_path("profiles") / "default.yaml").read_text(encoding="utf-8"))
    cat = next(c for d in doc["dimensions"] for c in d["categories"] if c["id"] == "supermarket")
    cat["match"].append({"name*~": pattern})
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _evil_osm(path):
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="32.0400" lon="118.7800"/><node id="2" lat="32.0400" lon="118.7830"/>
 <node id="3" lat="32.0420" lon="118.7830"/>
 <node id="4" lat="32.0410" lon="118.7810"><tag k="name" v="{EVIL_NAME}"/><tag k="shop" v="yes"/></node>
 <node id="5" lat="32.0410" lon="118.7812"/><node id="6" lat="32.0410" lon="118.7815"/>
 <node id="7" lat="32.0412" lon="118.7815"/><node id="8" lat="32.0412" lon="118.7812"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
 <way id="11"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/><tag k="building" v="residential"/></way>
</osm>
""", encoding="utf-8")
    return path


def test_a_profile_regex_that_backtracks_without_end_is_refused_naming_profile_rule_and_pattern(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    prof = _evil_profile(tmp_path / "evil.yaml", "^(a|a)*$")
    run = subprocess.run([sys.executable, "-m", "lifecircle.cli", "analyze", str(_evil_osm(tmp_path / "e.osm")),
                          "--profile", str(prof), "--out", str(tmp_path / "out"), "--no-map"],
                         cwd=repo, capture_output=True, text=True, timeout=120)    # it hung for hours
    text = (run.stdout + run.stderr).strip()
    assert run.returncode == 2 and "Traceback" not in text and len(text.splitlines()) == 1, text
    assert "evil.yaml: category supermarket" in text and "'^(a|a)*$'" in text and EVIL_NAME in text
    assert not (tmp_path / "out").exists()


def test_profile_patterns_search_as_before(tmp_path, monkeypatch):
    from lifecircle.core import classify, profiles
    from lifecircle.core.classify import classify_tags
    from lifecircle.core.profiles import bounded, load_profile

    # the shipped profiles search without a timeout (as fast as before) ...
    for name in ("default", "gb50180-2018", "tdt1062-2021"):
        conds = [c for cat in load_profile(name).categories for r in (*cat.match, *cat.exclude)
                 for c in r.conditions if c.pattern is not None]
        assert conds and all(c.quick is not None for c in conds), name
    assert not bounded("^(a+)+$") and not bounded("(a|aa)*") and not bounded(r"(a)\1") and bounded("小学|primary")
    # ... a pattern that may backtrack searches with a timeout, and finds what it finds
    monkeypatch.setattr(profiles, "REGEX_TIMEOUT_S", 0.05)
    monkeypatch.setattr(classify, "REGEX_TIMEOUT_S", 0.05)
    prof = _evil_profile(tmp_path / "ok.yaml", "^(?:foo|bar)+ market$")
    assert classify_tags([{"name": "foobarfoo market"}, {"name": "foo"}], str(prof)) == [["supermarket"], []]
    prof = _evil_profile(tmp_path / "evil.yaml", "^(a|a)*$")
    with pytest.raises(profiles.RegexTimeout, match="evil.yaml: category supermarket") as info:
        classify_tags([{"name": EVIL_NAME, "shop": "yes"}], str(prof))
    # in Chinese wholly (the tester saw "category …, condition …：正则表达式…")
    zh = info.value.message("zh")
    assert "类别 supermarket，条件" in zh and "category" not in zh and "condition" not in zh


# --------------------------------------------------------------------------------------------
# messages that say what is wrong


@pytest.mark.parametrize("corner", [(500000, 3540000), (0, 0)])
def test_a_boundary_in_metres_without_a_crs_is_named_as_such(tmp_path, corner):
    import json

    from lifecircle.io.sources import embedded_sample

    x, y = corner
    ring = [[x, y], [x + 1500, y], [x + 1500, y + 1400], [x, y + 1400], [x, y]]
    p = tmp_path / "m.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "m"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    r = runner.invoke(app, ["analyze", str(embedded_sample("helsinki")), "--boundary", str(p),
                            "--out", str(tmp_path / "o"), "--no-map"])
    text = _one_line(r)
    assert "m.geojson" in text and "look like metres" in text and "not longitude/latitude" in text
    assert "CRS" in text and "°" not in text
    assert not (tmp_path / "o").exists()



def test_an_xlsx_whose_first_sheet_is_empty_is_read_from_the_first_sheet_with_data(tmp_path):
    import openpyxl

    from lifecircle.io.poitable import _read_frame

    book = openpyxl.Workbook()
    book.active.title = "封面"
    data = book.create_sheet("sites")
    data.append(["name", "lng", "lat"])
    data.append(["a", 118.78, 32.04])
    book.save(tmp_path / "s.xlsx")
    frame = _read_frame(tmp_path / "s.xlsx")
    assert list(frame.columns) == ["name", "lng", "lat"] and frame["name"].tolist() == ["a"]
    assert "read the sheet 'sites', the first with data ('封面' is empty)" in frame.attrs["notes"][0]
    empty = openpyxl.Workbook()
    empty.create_sheet("two")
    empty.save(tmp_path / "e.xlsx")
    with pytest.raises(TableError, match=r"e.xlsx: every sheet of the workbook is empty \('Sheet', 'two'\)"):
        _read_frame(tmp_path / "e.xlsx")


def test_bounded_counts_every_way_a_pattern_can_match():
    """The reviewer's patterns: optional parts and empty alternatives are choices too
    (``a?``×26 then ``a``×26 took 8 s with plain ``re``, under no timeout); a pattern ``re``
    reads unlike ``regex`` (a POSIX class) is never searched by ``re``."""
    import time

    from lifecircle.core.profiles import Condition, _compile_regex, bounded, quick_pattern

    for n in (13, 20, 26):
        assert not bounded("^" + "a?" * n + "a" * n + "$")
        assert not bounded("(?:a|)" * n)
    assert bounded(r"\bI\.? ?E\.? ?S\.?(?=\s|$)") and bounded("驿站.*(快递|包裹)")
    assert not bounded("^.*.*.*b$") and not bounded("(?:a|a)" * 8 + ".*a.*a$")
    # every pattern re searches untimed is quick on the longest value it gets
    for p in ("a?" * 12 + "a" * 12 + "$", "(?:a|a)" * 12 + "$", ".*a.*b", "a?" * 6 + ".*a$"):
        q = quick_pattern(p)
        assert q is not None
        t = time.process_time()
        q.search("a" * 63 + "!")
        assert time.process_time() - t < 0.5
    pat = "^x[[:digit:]]"
    assert quick_pattern(pat) is None
    c = Condition("name", "regex", pattern=_compile_regex("name~", pat), quick=quick_pattern(pat), text=pat)
    assert c.test({"name": "x5 Shop"}) == c.test({"name": "x5 Shop" + " " * 70})
