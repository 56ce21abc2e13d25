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
from lifecircle.pipeline import (
    absent_communities,
    absent_notes,
    boundary_notes,
    communities_off_data,
    with_absent_communities,
)

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
    notes = boundary_notes(_frame([HALF, OFF], ["半", "外\n边"]), BOUNDS, "EPSG:32650", "x.pbf", "zh")
    assert notes[0].startswith("边界面积的 68% 位于数据范围之外（x.pbf 的道路范围为经度 118.7563..118.7996")
    assert len(notes) == 1
    assert absent_notes(["外\n边"], ["外\n边"], "zh") == [
        "1 个社区完全位于数据范围之外，没有结果（summary.csv 中其各项数值为空，不是 0）：“外 边”"]
    assert boundary_notes(_frame([INSIDE], ["a"]), BOUNDS, "EPSG:32650") == []
    # a boundary a little wider than the streets' box (drawn to the district's edge): no note
    edge = shapely.box(118.7553, 32.0284, 118.8006, 32.0598)
    assert boundary_notes(_frame([edge], ["a"]), BOUNDS, "EPSG:32650") == []


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
    """Kept in summary.csv with its figures missing; named as lying outside the data: it
    overlaps only the empty corner of the streets' box (the nearest street is ~600 m away),
    which said "no homes in the data" before the verdict followed where the data lies."""
    sliver = shapely.box(118.7993, 32.0585, 118.8100, 32.0700)   # overlaps the streets' NE corner
    out, _ = _analyze(tmp_path, ["Inside", "Sliver"], [INSIDE, sliver], "--no-map")
    s = pd.read_csv(out / "summary.csv")
    assert list(dict.fromkeys(s.community)) == ["ALL", "Inside", "Sliver"]
    assert s.loc[s.community == "Sliver", "covered"].isna().all()
    notes = json.loads((out / "meta.json").read_text(encoding="utf-8"))["notes"]
    assert any("wholly outside the data" in n and n.endswith("'Sliver'") for n in notes)


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


def _l_network(x0=500000.0, y0=3500000.0):
    """A street grid in an L (100 m blocks): 0..2000 m east along the south 400 m, and 0..400 m
    east up to 2000 m north; the box of its streets is the whole 2 km square."""
    import numpy as np

    from lifecircle.core.network import WalkNetwork

    xs, ys = np.meshgrid(np.arange(0, 2001, 100.0), np.arange(0, 2001, 100.0))
    keep = (ys <= 400) | (xs <= 400)
    x, y = x0 + xs[keep], y0 + ys[keep]
    return WalkNetwork("EPSG:32650", np.arange(len(x)), x, y, np.array([0]), np.array([1]),
                       np.array([100.0]), np.array([False]), np.array([shapely.LineString([(x[0], y[0]), (x[1], y[1])])]),
                       1.2)


def test_wholly_outside_is_decided_on_where_the_data_lies_not_its_box():
    """A community in the empty corner of an L-shaped extract has no data there (it was "no
    homes in the data": the streets' box holds it); one where only features lie, beyond the
    streets, has data (it was "wholly outside the data"); a stray feature or two (the tagged
    nodes of a way an extract keeps whole) do not make a place data, nor does a large one."""
    import numpy as np

    from lifecircle.core.network import data_extent, projected_bounds

    net = _l_network()
    x0, y0 = 500000.0, 3500000.0
    park = gpd.GeoDataFrame(geometry=[   # three features in one 250 m cell, beyond the streets
        shapely.box(x0 + 2550, y0 + 50, x0 + 2600, y0 + 100), shapely.box(x0 + 2620, y0 + 120, x0 + 2680, y0 + 180),
        shapely.Point(x0 + 2700, y0 + 200),
        shapely.Point(x0 + 5500, y0 + 200), shapely.Point(x0 + 5510, y0 + 210),     # two strays in "far"
        shapely.box(x0 + 900, y0 + 900, x0 + 6000, y0 + 1900)], crs="EPSG:32650")  # a long land use
    communities = gpd.GeoDataFrame({"community": ["south", "corner", "park", "far", "edge"]}, geometry=[
        shapely.box(x0 + 500, y0, x0 + 1500, y0 + 300),          # on the L's foot
        shapely.box(x0 + 1000, y0 + 1000, x0 + 1800, y0 + 1800),  # the L's empty corner, in the box
        shapely.box(x0 + 2500, y0, x0 + 3000, y0 + 400),          # only the park's feature
        shapely.box(x0 + 5000, y0, x0 + 6000, y0 + 400),          # nothing at all
        shapely.box(x0 + 400, y0 + 1000, x0 + 900, y0 + 1200),    # touches the L's upright
    ], crs="EPSG:32650")
    extent = data_extent(net, [projected_bounds(park, "EPSG:32650")])
    assert communities_off_data(communities, extent) == ["corner", "far"]
    # the old verdict, on the box of the streets: the corner in, the park out
    box = shapely.box(net.node_x.min(), net.node_y.min(), net.node_x.max(), net.node_y.max())
    assert communities_off_data(communities, box) == ["park", "far"]
    # the features in WGS-84 (as read) count where they lie once projected
    wgs = park.to_crs(4326)
    b = projected_bounds(wgs, "EPSG:32650")
    assert np.allclose(b, projected_bounds(park, "EPSG:32650"), atol=1.0)
    assert communities_off_data(communities, data_extent(net, [b])) == ["corner", "far"]
    # a hole in the data inside it (a lake with no street, 600 m across) is not off the data
    lake = gpd.GeoDataFrame({"community": ["lake"]}, geometry=[shapely.box(x0 + 1, y0 + 1, x0 + 399, y0 + 399)],
                            crs="EPSG:32650")
    ring = _l_network()
    ring.node_x, ring.node_y = ring.node_x[(ring.node_x - x0) % 400 == 0], ring.node_y[(ring.node_x - x0) % 400 == 0]
    assert communities_off_data(lake, data_extent(ring)) == []
    assert communities_off_data(communities, None) == list(communities.community)


def test_a_community_where_only_features_lie_is_not_said_to_be_off_the_data(tmp_path):
    """End to end: a small park and three shops 600 m east of a street grid, beyond the box of
    its streets; the community drawn round them has no home, and is said to have none, not to
    lie outside the data."""
    from synthetic_osm import LAT0, LON0, STEP, grid_osm

    text = grid_osm()
    lon, lat = LON0 + 10 * STEP, LAT0 + STEP
    d = STEP * 0.1
    park = (f'<node id="900001" lat="{lat:.7f}" lon="{lon:.7f}" version="1"/>'
            f'<node id="900002" lat="{lat:.7f}" lon="{lon + d:.7f}" version="1"/>'
            f'<node id="900003" lat="{lat + d:.7f}" lon="{lon + d:.7f}" version="1"/>'
            f'<node id="900004" lat="{lat + d:.7f}" lon="{lon:.7f}" version="1"/>'
            '<way id="900010" version="1"><nd ref="900001"/><nd ref="900002"/><nd ref="900003"/>'
            '<nd ref="900004"/><nd ref="900001"/><tag k="leisure" v="park"/><tag k="name" v="East Park"/></way>'
            + "".join(f'<node id="{900020 + k}" lat="{lat + d / 2:.7f}" lon="{lon + d / 2:.7f}" version="1">'
                      f'<tag k="{key}" v="{value}"/><tag k="name" v="East {k}"/></node>'
                      for k, (key, value) in enumerate([("amenity", "cafe"), ("shop", "bakery"),
                                                        ("amenity", "pharmacy")])))
    text = text.replace("\n</osm>", "\n" + park + "\n</osm>")
    osm = tmp_path / "grid.osm"
    osm.write_text(text, encoding="utf-8")
    grid = shapely.box(LON0 - STEP / 2, LAT0 - STEP / 2, LON0 + 4.5 * STEP, LAT0 + 4.5 * STEP)
    east = shapely.box(lon - STEP, lat - STEP, lon + STEP, lat + STEP)
    far = shapely.box(lon + 20 * STEP, lat, lon + 22 * STEP, lat + 2 * STEP)
    boundary = tmp_path / "b.geojson"
    gpd.GeoDataFrame({"name": ["Grid", "East", "Far"]}, geometry=[grid, east, far],
                     crs="EPSG:4326").to_file(boundary, driver="GeoJSON")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["analyze", str(osm), "--boundary", str(boundary), "--out", str(out),
                                 "--lang", "en", "--no-map"])
    assert r.exit_code == 0, r.output
    notes = json.loads((out / "meta.json").read_text(encoding="utf-8"))["notes"]
    (off,) = [n for n in notes if "wholly outside" in n]
    (none,) = [n for n in notes if "have no homes in the data" in n]
    assert off.endswith(": 'Far'") and none.endswith(": 'East'")
