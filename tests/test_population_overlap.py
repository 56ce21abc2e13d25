"""Overlapping population zones are refused, naming the file and the two zones: their residents
would be counted twice (an independent tester's two copies of one 10,000-resident zone gave
52,943 residents, 10,000 of them at one stand-in home; a sub-district beside its own
communities does the same). Slivers from digitising (< 1 % of the smaller zone) are fine."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from lifecircle import columns as col
from lifecircle.cli import app
from lifecircle.core.homes import apply_population
from lifecircle.errors import PopulationError
from lifecircle.io.sources import embedded_sample

CRS = "EPSG:32650"


def _homes():
    """Nine homes of 10 residents on a 3 × 3 grid, 100 m apart, in a 300 m square."""
    xy = [(50 + 100 * i, 50 + 100 * j) for i in range(3) for j in range(3)]
    return gpd.GeoDataFrame({col.POPULATION: np.full(9, 10.0)},
                            geometry=shapely.points(xy), crs=CRS)


def _zones(boxes, pops, names=None):
    data = {col.POPULATION: pops}
    if names:
        data["name"] = names
    return gpd.GeoDataFrame(data, geometry=[shapely.box(*b) for b in boxes], crs=CRS)


def test_two_copies_of_a_zone_are_refused_by_name():
    z = _zones([(0, 0, 300, 300), (0, 0, 300, 300)], [1000, 1000], ["A", "A copy"])
    with pytest.raises(PopulationError) as e:
        apply_population(_homes(), z, path="pov.geojson")
    msg = str(e.value)
    assert "pov.geojson" in msg and "row 1 'A'" in msg and "row 2 'A copy'" in msg and "overlap" in msg
    assert "重叠" in e.value.zh and "第 1 行 'A'" in e.value.zh


def test_a_sub_district_beside_its_communities_is_refused():
    z = _zones([(0, 0, 150, 300), (150, 0, 300, 300), (0, 0, 300, 300)], [600, 400, 1000])
    with pytest.raises(PopulationError) as e:
        apply_population(_homes(), z, path="nested.gpkg")
    assert "row 1" in str(e.value) and "row 3" in str(e.value) and "1 more" in str(e.value)


def test_a_digitising_sliver_is_fine_and_nothing_is_counted_twice():
    # the two halves overlap along a 1 m strip: 0.7 % of the smaller; 2 m (1.3 %) is refused
    z = _zones([(0, 0, 151, 300), (150, 0, 300, 300)], [600, 400])
    out, info = apply_population(_homes(), z, path="halves.geojson")
    assert out[col.POPULATION].sum() == pytest.approx(1000) and info["stand_in_homes"] == 0
    # just over the share: refused
    z = _zones([(0, 0, 152, 300), (150, 0, 300, 300)], [600, 400])
    with pytest.raises(PopulationError):
        apply_population(_homes(), z, path="halves.geojson")


def test_zones_that_only_touch_are_fine():
    z = _zones([(0, 0, 100, 300), (100, 0, 300, 300), (0, 300, 300, 400)], [600, 400, 50])
    out, _ = apply_population(_homes(), z, path="touch.geojson")
    assert out[col.POPULATION].sum() == pytest.approx(1050)


def test_the_cli_refuses_with_one_line_and_exit_2(tmp_path):
    b = shapely.box(118.775, 32.035, 118.79, 32.045)
    pov = tmp_path / "pov.geojson"
    gpd.GeoDataFrame({"name": ["A", "A copy"], col.POPULATION: [10000, 10000]}, geometry=[b, b],
                     crs=4326).to_file(pov)
    out = tmp_path / "out"
    run = CliRunner().invoke(app, ["analyze", str(embedded_sample()), "--population", str(pov),
                                   "--out", str(out), "--no-map", "--lang", "en"])
    assert run.exit_code == 2, run.output
    assert "pov.geojson" in run.output and "'A copy'" in run.output and "Traceback" not in run.output
    assert run.output.lstrip().lower().startswith("error") and "overlap" in run.output
    assert not out.exists()
