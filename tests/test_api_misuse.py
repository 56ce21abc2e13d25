"""Python API misuse ends in one LifecircleError line naming the argument, never a traceback
from pathlib, geopandas or an attribute lookup; objects the docstrings promise are taken."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file

import lifecircle
from lifecircle.analyses import recommend as rec
from lifecircle.errors import BoundaryError, InputFileError, RecommendError, TableError
from lifecircle.io.poitable import read_poi_table

NJ = "china/nanjing_xinjiekou_2021.osm.pbf"


@pytest.fixture(scope="module")
def nj():
    path = shared_file(NJ)
    return path, lifecircle.analyze(path)


def _box(r, shrink=0.25):
    w, s, e, n = r.homes.to_crs(4326).total_bounds
    dx, dy = (e - w) * shrink, (n - s) * shrink
    return shapely.box(w + dx, s + dy, e - dx, n - dy)


def _one_line(exc):
    assert "\n" not in str(exc.value) and "\n" not in (exc.value.zh or "")


def test_source_of_a_wrong_type():
    with pytest.raises(InputFileError, match=r"^the source \(int\): is not OSM data") as e:
        lifecircle.analyze(123)
    _one_line(e)


def test_boundary_as_a_shapely_geometry_is_longitude_latitude(nj):
    path, r = nj
    box = _box(r)
    by_geom = lifecircle.analyze(path, boundary=box)
    by_frame = lifecircle.analyze(path, boundary=gpd.GeoDataFrame(geometry=[box], crs=4326))
    assert 0 < len(by_geom.homes) == len(by_frame.homes) < len(r.homes)
    pd.testing.assert_frame_equal(by_geom.summary, by_frame.summary)
    # a GeoSeries too
    assert len(lifecircle.analyze(path, boundary=gpd.GeoSeries([box], crs=4326)).homes) == len(by_geom.homes)


def test_boundary_without_crs_or_of_a_wrong_type(nj):
    path, r = nj
    naked = gpd.GeoDataFrame(geometry=[_box(r)])
    with pytest.raises(BoundaryError, match=r"^the boundary \(GeoDataFrame, 1 feature\): has no CRS") as e:
        lifecircle.analyze(path, boundary=naked)
    _one_line(e)
    assert e.value.zh.startswith("边界（GeoDataFrame，1 个要素）：")
    with pytest.raises(BoundaryError, match=r"^the boundary \(int\): must be a polygon file"):
        lifecircle.analyze(path, boundary=7)


def test_boundary_off_the_data_is_named_not_printed(nj):
    path, _ = nj
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)], crs=4326)
    with pytest.raises(BoundaryError, match=r"^the boundary \(GeoDataFrame, 2 features\): does not "
                                            "overlap the data") as e:
        lifecircle.analyze(path, boundary=far)
    _one_line(e)
    assert "POLYGON" not in str(e.value) and "POLYGON" not in e.value.zh
    with pytest.raises(BoundaryError, match=r"^the boundary \(shapely Polygon\): does not overlap"):
        lifecircle.analyze(path, boundary=shapely.box(0, 0, 1, 1))


def test_facilities_table_as_a_dataframe(nj, tmp_path):
    path, r = nj
    c = _box(r, 0.45).centroid
    rows = {"name": ["A", "B"], "lng": [c.x, c.x + 0.001], "lat": [c.y, c.y], "category": ["bank", "bank"]}
    csv = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    from_file = read_poi_table(csv)
    from_frame = read_poi_table(pd.DataFrame(rows))
    assert list(from_frame["source"]) == ["table:DataFrame"] * 2
    np.testing.assert_allclose(shapely.get_coordinates(from_frame.geometry.to_numpy()),
                               shapely.get_coordinates(from_file.geometry.to_numpy()))
    # a GeoDataFrame: its geometry, in any CRS, gives the coordinates (a stale lng column loses)
    g = gpd.GeoDataFrame({**rows, "lng": [0.0, 0.0]},
                         geometry=gpd.points_from_xy(rows["lng"], rows["lat"]), crs=4326).to_crs(r.crs)
    np.testing.assert_allclose(shapely.get_coordinates(read_poi_table(g).geometry.to_numpy()),
                               shapely.get_coordinates(from_file.geometry.to_numpy()), atol=1e-9)
    with pytest.raises(TableError, match=r"^the facilities table \(GeoDataFrame, 2 rows\): has no CRS"):
        read_poi_table(g.set_crs(None, allow_override=True))
    with pytest.raises(InputFileError, match=r"^the facilities table \(dict\): must be a CSV/XLSX"):
        read_poi_table(rows)
    # through analyze: the rows join the facilities
    got = lifecircle.analyze(path, facilities_table=pd.DataFrame(rows))
    assert (got.facilities["source"] == "table:DataFrame").sum() >= 1


def test_recommend_and_what_if_without_an_inventory(nj):
    _, r = nj
    with pytest.raises(RecommendError, match="recommend needs the idle-site inventory, not NoneType") as e:
        rec.recommend(r, None, "bank", k=2)
    _one_line(e)
    with pytest.raises(RecommendError, match="what_if needs the idle-site inventory, not str"):
        rec.what_if(r, "bank", ["O00001"], "inventory.csv")
