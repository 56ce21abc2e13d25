"""GeoPackage layers written from coordinate arrays (:func:`lifecircle.io.outputs._write_layer`):
the same WKB bytes as ``to_crs`` + ``shapely.to_wkb``, the same file as geopandas writes (layer
type, CRS, column types, values), batches that add up to the whole; polygon layers in batches,
the same SQLite rows as geopandas writes (multipolygons beside polygons made multi as pyogrio
does); and every other kind of layer (mixed kinds, empty, missing or Z geometries) still
written by geopandas."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

import lifecircle.io.outputs as O

UTM = "EPSG:32628"        # Las Palmas' projected CRS


def _reference_wkb(geoms, crs):
    """What geopandas writes: the geometries projected with to_crs, then to_wkb."""
    return list(shapely.to_wkb(gpd.GeoSeries(geoms, crs=crs).to_crs(O.WGS84).array._data))


def _transformer(crs):
    return pyproj.Transformer.from_crs(pyproj.CRS(crs), pyproj.CRS(O.WGS84), always_xy=True)


def test_points_byte_for_byte():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(440_000, 460_000, 5000), rng.uniform(3_100_000, 3_120_000, 5000)
    pts = shapely.points(x, y)
    got = O._layer_wkb(pts, 0, _transformer(UTM)).to_pylist()
    assert got == _reference_wkb(pts, UTM)
    assert all(len(b) == 21 for b in got)
    # no transform (already WGS-84): the coordinates as they are
    assert O._layer_wkb(pts, 0, None).to_pylist() == list(shapely.to_wkb(pts))


def test_lines_with_many_vertices_byte_for_byte():
    rng = np.random.default_rng(2)
    counts = np.r_[2, 2, 1000, 3, rng.integers(2, 60, 500), 4096]
    lines = [shapely.linestrings(np.column_stack([rng.uniform(440_000, 460_000, n),
                                                  rng.uniform(3_100_000, 3_120_000, n)]))
             for n in counts]
    lines = np.array(lines, dtype=object)
    got = O._layer_wkb(lines, 1, _transformer(UTM)).to_pylist()
    assert got == _reference_wkb(lines, UTM)
    assert [len(b) for b in got] == list(9 + 16 * counts)
    assert O._layer_wkb(lines, 1, None).to_pylist() == list(shapely.to_wkb(lines))


def _frame(n, geoms):
    rng = np.random.default_rng(3)
    f = np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 100)
    return gpd.GeoDataFrame({
        "home_id": np.arange(n, dtype=np.int64),
        "source": pd.array(np.where(rng.random(n) < 0.1, None, "building"), dtype="str"),
        "geometry": geoms,
        "t_food": f,
        "w_food": rng.integers(-1, 30, n).astype(np.int16),
        "reachable": rng.random(n) < 0.9,
        "label": np.array([f"é{i}" if i % 7 else None for i in range(n)], dtype=object),
    }, geometry="geometry", crs=UTM)


def _read_all(path):
    out = {}
    for layer, gtype in pyogrio.list_layers(path):
        info = pyogrio.read_info(path, layer=layer)
        meta, table = pyogrio.read_arrow(path, layer=layer)
        out[layer] = (gtype, info["crs"], list(info["fields"]), list(info["dtypes"]), table)
    return out


def _assert_files_equal(a, b):
    ra, rb = _read_all(a), _read_all(b)
    assert list(ra) == list(rb)
    for layer in ra:
        assert ra[layer][:4] == rb[layer][:4], layer
        assert ra[layer][4].equals(rb[layer][4]), layer


def _geopandas_write(gdf, path, layer):
    """The write before: project the frame, let geopandas/pyogrio write it."""
    O._in_wgs84(gdf).to_file(path, layer=layer, driver="GPKG", engine="pyogrio", use_arrow=True)


@pytest.mark.parametrize("kind", ["points", "lines"])
def test_file_equals_geopandas_and_batches_add_up(tmp_path, monkeypatch, kind):
    rng = np.random.default_rng(4)
    n = 1234
    x, y = rng.uniform(440_000, 460_000, n), rng.uniform(3_100_000, 3_120_000, n)
    geoms = shapely.points(x, y) if kind == "points" else \
        np.array([shapely.LineString([(a, b), (a + 5, b + 7), (a + 9, b - 3)][: 2 + i % 2])
                  for i, (a, b) in enumerate(zip(x, y))], dtype=object)
    gdf = _frame(n, geoms)
    assert O._layer_batches(gdf, [c for c in gdf.columns if c != "geometry"], gdf.geometry.array,
                            gdf.crs, "geometry", 2) is not None      # the new path, not a fallback
    _geopandas_write(gdf, tmp_path / "old.gpkg", "layer")
    O._to_gpkg(gdf, tmp_path / "whole.gpkg", "layer")
    monkeypatch.setattr(O, "LAYER_CHUNK", 100)                     # 13 batches
    O._to_gpkg(gdf, tmp_path / "chunked.gpkg", "layer")
    _assert_files_equal(tmp_path / "old.gpkg", tmp_path / "whole.gpkg")
    _assert_files_equal(tmp_path / "whole.gpkg", tmp_path / "chunked.gpkg")
    back = gpd.read_file(tmp_path / "chunked.gpkg", layer="layer")
    assert back.crs.to_epsg() == 4326 and len(back) == n
    assert list(back.columns) == [c for c in gdf.columns if c != "geometry"] + ["geometry"]


def _sqlite_rows(path, layer):
    """The layer's rows (the GeoPackage geometry blobs) and its spatial index, as stored."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        rows = con.execute(f'SELECT * FROM "{layer}"').fetchall()
        index = {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for (t,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rtree%'")}
        types = con.execute("SELECT * FROM gpkg_geometry_columns").fetchall()
        return rows, index, types
    finally:
        con.close()


@pytest.mark.parametrize("case", ["polygons", "multipolygons", "both", "holes"])
def test_polygon_layers_in_batches_as_geopandas_writes(tmp_path, monkeypatch, case):
    rng = np.random.default_rng(5)
    n = 345
    x, y = rng.uniform(440_000, 460_000, n), rng.uniform(3_100_000, 3_120_000, n)
    polys = [shapely.Point(a, b).buffer(5 + i % 7, quad_segs=2 + i % 5) for i, (a, b) in enumerate(zip(x, y))]
    if case == "holes":
        polys = [p.difference(p.centroid.buffer(1)) for p in polys]
    multi = [shapely.MultiPolygon([p, shapely.affinity.translate(p, 40, 0)]) for p in polys]
    geoms = {"polygons": polys, "holes": polys, "multipolygons": multi,
             "both": [m if i % 3 else p for i, (p, m) in enumerate(zip(polys, multi))]}[case]
    gdf = _frame(n, np.array(geoms, dtype=object))
    cols = [c for c in gdf.columns if c != "geometry"]
    assert O._layer_batches(gdf, cols, gdf.geometry.array, gdf.crs, "geometry", 2) is not None
    _geopandas_write(gdf, tmp_path / "old.gpkg", "layer")
    monkeypatch.setattr(O, "LAYER_CHUNK", 100)                     # 4 batches
    O._to_gpkg(gdf, tmp_path / "new.gpkg", "layer")
    _assert_files_equal(tmp_path / "old.gpkg", tmp_path / "new.gpkg")
    assert _sqlite_rows(tmp_path / "old.gpkg", "layer") == _sqlite_rows(tmp_path / "new.gpkg", "layer")
    gtype = pyogrio.list_layers(tmp_path / "new.gpkg")[0][1]
    assert gtype == ("Polygon" if case in ("polygons", "holes") else "MultiPolygon")


@pytest.mark.parametrize("case", ["empty point", "missing", "z", "mixed", "no rows",
                                  "mixed object column"])
def test_other_layers_fall_back_to_geopandas(tmp_path, case):
    pts = list(shapely.points(np.arange(4) * 10.0 + 450_000, np.arange(4) * 10.0 + 3_110_000))
    geoms = {
        "empty point": pts[:3] + [shapely.Point()],
        "missing": pts[:3] + [None],
        "z": pts[:3] + [shapely.Point(450_000, 3_110_000, 5)],
        "mixed": pts[:3] + [shapely.LineString([(450_000, 3_110_000), (450_010, 3_110_010)])],
        "polygons": [p.buffer(5) for p in pts],
        "no rows": [],
        "mixed object column": pts,
    }[case]
    n = len(geoms)
    gdf = gpd.GeoDataFrame({"a": np.arange(n, dtype=np.int64), "geometry": geoms}, crs=UTM)
    if case == "mixed object column":
        gdf["b"] = np.array([1, "x", 2.5, None], dtype=object)
    cols = [c for c in gdf.columns if c != "geometry"]
    assert O._layer_batches(gdf, cols, gdf.geometry.array, gdf.crs, "geometry", 1) is None
    _geopandas_write(gdf, tmp_path / "old.gpkg", "layer")
    O._to_gpkg(gdf, tmp_path / "new.gpkg", "layer")
    _assert_files_equal(tmp_path / "old.gpkg", tmp_path / "new.gpkg")


def test_streets_layer_as_edges_gdf(tmp_path):
    """The streets layer written from the network's arrays is the one edges_gdf() made."""
    from lifecircle.core.network import WalkNetwork

    geoms = np.array([shapely.LineString([(450_000 + i, 3_110_000), (450_010 + i, 3_110_020),
                                          (450_030 + i, 3_110_025)]) for i in range(50)], dtype=object)
    net = WalkNetwork(pyproj.CRS(UTM), np.arange(51), np.arange(51.0), np.arange(51.0),
                      np.arange(50), np.arange(1, 51), np.full(50, 30.0), np.zeros(50, bool), geoms,
                      1.2, np.array(["footway", "residential"] * 25, dtype=object),
                      edge_area=np.zeros(50, bool))
    _geopandas_write(net.edges_gdf(), tmp_path / "old.gpkg", "streets")
    O._write_layer(tmp_path / "new.gpkg", "streets", *O._streets_args(net))
    _assert_files_equal(tmp_path / "old.gpkg", tmp_path / "new.gpkg")
