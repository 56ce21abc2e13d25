"""A boundary the OSM data covers only in part: a note with the share outside the data's
extent, a note naming (literally) the communities wholly outside it, and those communities
kept in summary.csv with their figures empty (missing, not 0)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import shapely
from conftest import shared_file
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.pipeline import absent_communities, absent_notes, boundary_notes, with_absent_communities

XINJIEKOU = "china/nanjing_xinjiekou_2021.osm.pbf"
# the Xinjiekou extract's streets span lon 118.7563..118.7996, lat 32.0294..32.0588
INSIDE = shapely.box(118.770, 32.035, 118.780, 32.045)
HALF = shapely.box(118.790, 32.035, 118.810, 32.045)      # 52 % east of the data
OFF = shapely.box(118.850, 32.035, 118.860, 32.045)       # wholly east of it
HOSTILE = '[bold red]Off[/] =HYPERLINK("x")'


def _analyze(tmp_path, names, geoms, *extra):
    """``lifecircle analyze`` of Xinjiekou with a boundary of ``names`` / ``geoms`` (WGS-84):
    the output folder and the CLI's result."""
    src = shared_file(XINJIEKOU)
    boundary = tmp_path / "b.geojson"
    gpd.GeoDataFrame({"name": names}, geometry=geoms, crs="EPSG:4326").to_file(boundary, driver="GeoJSON")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["analyze", str(src), "--boundary", str(boundary), "--out", str(out),
                                 "--lang", "en", *extra])
    assert r.exit_code == 0, r.output
    return out, r


def test_off_data_boundary_is_said_and_kept_as_missing(tmp_path):
    out, r = _analyze(tmp_path, ["Inside", "Half", HOSTILE], [INSIDE, HALF, OFF])
    notes = json.loads((out / "meta.json").read_text(encoding="utf-8"))["notes"]
    share = [n for n in notes if "of the boundary's area lies outside the data's extent" in n]
    assert len(share) == 1 and share[0].startswith("51 %")        # (0.0104 + 0.01) / 0.04
    (named,) = [n for n in notes if "wholly outside" in n]
    assert named.startswith("1 community(ies) lie wholly outside the data's extent")
    assert named.endswith(f"'{HOSTILE}'")                         # literal, not markup
    flat = "".join(r.output.split())
    assert "".join(named.split()) in flat                         # printed as it is
    s = pd.read_csv(out / "summary.csv", keep_default_na=True)
    assert list(dict.fromkeys(s.community)) == ["ALL", "Half", "Inside", HOSTILE]
    off = s[s.community == HOSTILE]
    whole = s[s.community == "ALL"]
    assert len(off) == len(whole)                                # every level, category and dimension
    assert (off.data_status == "no_data").all()
    for c in ("covered", "within_15", "score_mean", "population", "homes", "score_gini"):
        assert off[c].isna().all(), c                             # missing, never 0
    assert (s[s.community == "Inside"].level == "overall").sum() == 1
    assert s.loc[(s.community == "Inside") & (s.level == "overall"), "homes"].iloc[0] > 0


def _frame(geoms, names, crs=32650):
    return gpd.GeoDataFrame({"community": names}, geometry=geoms, crs="EPSG:4326").to_crs(crs)


BOUNDS = (118.7563, 32.0294, 118.7996, 32.0588)


def test_notes_in_chinese_and_none_inside():
    notes, names = boundary_notes(_frame([HALF, OFF], ["半", "外\n边"]), BOUNDS, "EPSG:32650", "x.pbf", "zh")
    assert names == ["外\n边"]
    assert notes[0].startswith("边界面积的 68% 位于数据范围之外（x.pbf 的道路范围为经度 118.7563..118.7996")
    assert len(notes) == 1
    assert absent_notes(["外\n边"], names, "zh") == [
        "1 个社区完全位于数据范围之外，没有结果（summary.csv 中其各项数值为空，不是 0）：“外 边”"]
    assert boundary_notes(_frame([INSIDE], ["a"]), BOUNDS, "EPSG:32650") == ([], [])
    # a boundary a little wider than the streets' box (drawn to the district's edge): no note
    edge = shapely.box(118.7553, 32.0284, 118.8006, 32.0598)
    assert boundary_notes(_frame([edge], ["a"]), BOUNDS, "EPSG:32650") == ([], [])


def test_absent_rows_only_for_the_named():
    s = pd.DataFrame({"community": ["ALL", "b"], "level": ["overall"] * 2, "id": ["all"] * 2,
                      "facilities": [3, 3], "data_status": ["data"] * 2, "covered": [0.5, 0.5],
                      "homes": [2, 2]})
    out = with_absent_communities(s, ["a", "b"])
    assert list(out.community) == ["ALL", "b", "a"]       # after the others, whose order is kept
    a = out[out.community == "a"].iloc[0]
    assert a.data_status == "no_data" and pd.isna(a.covered) and pd.isna(a.homes) and a.facilities == 3
    assert with_absent_communities(s, []) is s


def test_every_community_without_homes_is_kept_and_named_once():
    """Not only those wholly off the data: a community that only touches the data's box, or
    has no home in it, is kept (missing figures) and named; a name with rows (a repeated
    name, ``ALL``) is never said to have no results (reviewer)."""
    summary = pd.DataFrame({"community": ["ALL", "A"], "level": ["overall"] * 2, "id": ["all"] * 2,
                            "facilities": [3, 3], "data_status": ["data"] * 2, "covered": [0.5, 0.4]})
    bnd = _frame([INSIDE, OFF, HALF, OFF, OFF], ["A", "A", "S", "ALL", "Far"])
    absent = absent_communities(summary, bnd)
    assert absent == ["S", "Far"]
    notes = absent_notes(absent, ["A", "ALL", "Far"], "en")
    assert notes == ["1 community(ies) lie wholly outside the data's extent and have no results (their "
                     "figures in summary.csv are empty, not 0): 'Far'",
                     "1 community(ies) have no homes in the data and no results (their figures in "
                     "summary.csv are empty, not 0): 'S'"]
    out = with_absent_communities(summary, absent)
    assert list(out.community) == ["ALL", "A", "S", "Far"] and out.covered.iloc[2:].isna().all()
    # numeric names keep their type and the summary its order
    num = summary.assign(community=["ALL", 10])
    assert list(with_absent_communities(num, [2]).community) == ["ALL", 10, 2]


def test_a_community_touching_the_data_without_homes_is_in_the_summary(tmp_path):
    sliver = shapely.box(118.7993, 32.0585, 118.8100, 32.0700)   # overlaps the streets' NE corner
    out, _ = _analyze(tmp_path, ["Inside", "Sliver"], [INSIDE, sliver], "--no-map")
    s = pd.read_csv(out / "summary.csv")
    assert list(dict.fromkeys(s.community)) == ["ALL", "Inside", "Sliver"]
    assert s.loc[s.community == "Sliver", "covered"].isna().all()
    notes = json.loads((out / "meta.json").read_text(encoding="utf-8"))["notes"]
    assert any("have no homes in the data" in n and n.endswith("'Sliver'") for n in notes)


def test_check_says_no_data_for_a_community_off_the_data(tmp_path):
    """``check`` on a community wholly outside the data: every row no_data, none "missing"
    (its facilities are unknown, not absent); the community inside is judged as before (tester)."""
    from lifecircle.analyses.standards import check

    out, _ = _analyze(tmp_path, ["Inside", "Off"], [INSIDE, OFF], "--no-map")
    report = check(out, "gb50180-2018", lang="en")
    off = report.rows[report.rows.unit == "Off"]
    assert len(off) and (off.status == "no_data").all() and off.share.isna().all()
    s = report.summary[report.summary.unit == "Off"]
    assert (s.n_missing == 0).all() and s.passed.isna().all()
    inside = report.rows[report.rows.unit == "Inside"]
    assert len(inside) and not (inside.status == "no_data").all()
