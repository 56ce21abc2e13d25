"""Every bad input ends with one clear message naming the file, a non-zero exit code, and no
half-written output folder."""

from __future__ import annotations

import os

import geopandas as gpd
import shapely
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.sources import embedded_sample

runner = CliRunner()

MOTORWAY_ONLY = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="32.04" lon="118.78" version="1"/>
  <node id="2" lat="32.05" lon="118.79" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="motorway"/></way>
</osm>
"""


def _run(args, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [*args, "--out", str(out)])
    return result, out


def _assert_clean_failure(result, out, *needles):
    assert result.exit_code != 0, result.output
    text = result.output
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, text
    assert not out.exists()
    leftovers = [p for p in out.parent.iterdir() if p.name.startswith(".out.")]
    assert not leftovers


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.osm.pbf"
    r, out = _run(["analyze", str(missing)], tmp_path)
    _assert_clean_failure(r, out, "nowhere.osm.pbf", "not found")


def test_corrupt_pbf(tmp_path):
    bad = tmp_path / "corrupt.osm.pbf"
    bad.write_bytes(os.urandom(4096))
    r, out = _run(["analyze", str(bad)], tmp_path)
    _assert_clean_failure(r, out, "corrupt.osm.pbf")


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.osm"
    bad.write_text("")
    r, out = _run(["analyze", str(bad)], tmp_path)
    _assert_clean_failure(r, out, "empty.osm", "empty")


def test_not_osm_xml(tmp_path):
    bad = tmp_path / "notes.osm"
    bad.write_text("hello, this is not xml")
    r, out = _run(["analyze", str(bad)], tmp_path)
    _assert_clean_failure(r, out, "notes.osm", "not OSM XML")


def test_unknown_extension(tmp_path):
    bad = tmp_path / "streets.shp"
    bad.write_text("x")
    r, out = _run(["analyze", str(bad)], tmp_path)
    _assert_clean_failure(r, out, "streets.shp", "unknown file type")


def test_no_walkable_streets(tmp_path):
    osm = tmp_path / "motorway.osm"
    osm.write_text(MOTORWAY_ONLY)
    r, out = _run(["analyze", str(osm)], tmp_path)
    _assert_clean_failure(r, out, "motorway.osm", "no walkable streets")


def test_boundary_not_overlapping(tmp_path):
    b = gpd.GeoDataFrame({"name": ["far away"]}, geometry=[shapely.box(100, 10, 100.1, 10.1)],
                         crs="EPSG:4326")
    bfile = tmp_path / "far.geojson"
    b.to_file(bfile)
    r, out = _run(["analyze", str(embedded_sample("helsinki")), "--boundary", str(bfile)], tmp_path)
    _assert_clean_failure(r, out, "far.geojson", "does not overlap")


def test_boundary_without_polygons(tmp_path):
    b = gpd.GeoDataFrame({"name": ["pt"]}, geometry=[shapely.Point(24.94, 60.17)], crs="EPSG:4326")
    bfile = tmp_path / "points.geojson"
    b.to_file(bfile)
    r, out = _run(["analyze", str(embedded_sample("helsinki")), "--boundary", str(bfile)], tmp_path)
    _assert_clean_failure(r, out, "points.geojson", "polygons")


def test_unknown_profile(tmp_path):
    r, out = _run(["analyze", str(embedded_sample("helsinki")), "--profile", "no-such-profile"], tmp_path)
    _assert_clean_failure(r, out, "no-such-profile", "unknown profile")


def test_malformed_profile(tmp_path):
    prof = tmp_path / "broken.yaml"
    prof.write_text("name: broken\ndimensions: [\n  - id: housing\n")
    r, out = _run(["analyze", str(embedded_sample("helsinki")), "--profile", str(prof)], tmp_path)
    _assert_clean_failure(r, out, "broken.yaml")


def test_existing_output_survives_a_failed_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous results")
    r = runner.invoke(app, ["analyze", str(tmp_path / "missing.osm.pbf"), "--out", str(out)])
    assert r.exit_code != 0
    assert (out / "keep.txt").read_text() == "previous results"


def test_map_of_a_non_analysis_folder(tmp_path):
    r = runner.invoke(app, ["map", str(tmp_path)])
    assert r.exit_code != 0 and "not a lifecircle analysis folder" in r.output


def test_ways_before_their_nodes(tmp_path):
    # libosmium gives no location to a node that comes after the ways using it: the file is
    # named with the reason, not a --crs error about coordinates the user never gave
    nodes = "".join(f'<node id="{k}" lat="{32.04 + k * 1e-4:.6f}" lon="{118.78 + k * 1e-4:.6f}" '
                    f'version="1"/>' for k in range(1, 6))
    ways = ('<way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
            '<tag k="highway" v="residential"/></way>'
            '<way id="11" version="1"><nd ref="3"/><nd ref="4"/><nd ref="5"/>'
            '<tag k="highway" v="footway"/></way>')
    bad = tmp_path / "ways_first.osm"
    bad.write_text(f'<?xml version="1.0"?><osm version="0.6">{ways}{nodes}</osm>')
    r, out = _run(["analyze", str(bad)], tmp_path)
    _assert_clean_failure(r, out, "ways_first.osm", "before their nodes")
    assert r.exit_code == 2 and "--crs" not in r.output
    r, out = _run(["analyze", str(bad), "--lang", "zh"], tmp_path)
    _assert_clean_failure(r, out, "ways_first.osm", "排在其节点之前")
    # the same file in the usual order reads
    good = tmp_path / "sorted.osm"
    good.write_text(f'<?xml version="1.0"?><osm version="0.6">{nodes}{ways}</osm>')
    from lifecircle.io.sources import read_osm

    assert len(read_osm(good, layers=("streets",)).streets) == 4
