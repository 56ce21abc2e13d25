"""The write stage's shortcuts give what the plain computations give.

- the OSM features' tags: each shared dict encoded once, the same JSON text as row by row;
- the map's coordinates: projected, shifted (GCJ-02) and rounded in one pass, the same numbers
  as ``to_crs`` + ``set_precision`` (GEOS rounds half up, not half to even), and ``to_display``
  keeps the grid's precision model that later operations (a facility area's point) follow;
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import lifecircle.io.outputs as O
from lifecircle.io.chinacoords import transform_geometries, wgs84_to_gcj02
from lifecircle.render import maps


def _plain_json(tags):
    return [json.dumps(t if isinstance(t, dict) else {}, ensure_ascii=False) for t in tags]


def test_shared_tag_dicts_are_encoded_once_with_the_same_text(monkeypatch):
    shop = {"shop": "bakery", "name": "Panadería \"La Española\"", "opening_hours": "Mo-Sa 07:00-14:00"}
    school = {"amenity": "school", "name": "新街口小学", "note": "</script>"}
    twin = dict(shop)                      # equal content, another object: encoded on its own
    tags = np.array([shop, school, None, shop, twin, float("nan"), school, {}, "text", shop],
                    dtype=object)
    calls = []
    real = O._dict_encoder

    def counting():
        enc = real()

        def encode(d):
            calls.append(d)
            return enc(d)
        return encode

    monkeypatch.setattr(O, "_dict_encoder", counting)
    got = O._tags_json(tags)
    assert got.tolist() == _plain_json(tags)
    # shop, school, twin, {} and the three non-dicts: once per distinct object, not per row
    assert len(calls) == 7 < len(tags)
    assert O._tags_json(np.array([], dtype=object)).tolist() == []


def test_features_file_reads_back_the_tags(tmp_path):
    shared = {"leisure": "park", "name": "Parque Doramas"}
    feats = gpd.GeoDataFrame(
        {"osm_type": ["way", "way", "node"], "osm_id": [1, 2, 3], "tags": [shared, shared, None]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3), shapely.Point(5, 5)], crs=4326)
    O._write_features(feats, tmp_path / O.FEATURES_FILE)
    back = O._read_features(tmp_path / O.FEATURES_FILE)
    assert back["tags"].tolist() == [shared, shared, {}]
    assert back["osm_id"].tolist() == [1, 2, 3]


def _reference(geoms, crs, gcj, decimals):
    """What the map did before: GeoPandas ``to_crs``, the GCJ-02 shift, ``set_precision``."""
    gs = gpd.GeoSeries(geoms, crs=crs)
    gs = gs.to_crs(4326) if crs is not None else gs
    if gcj:
        gs = transform_geometries(gs, wgs84_to_gcj02)
    return shapely.set_precision(np.asarray(gs.to_numpy(), dtype=object), 10.0 ** -decimals,
                                 mode="pointwise")


def _geoms(rng, x0, y0, spread):
    pts = rng.uniform(0, spread, (40, 2)) + (x0, y0)
    return np.array([
        shapely.Point(pts[0]), shapely.LineString(pts[1:5]), shapely.Polygon(pts[5:9]).convex_hull,
        shapely.MultiPoint(pts[9:12]), shapely.MultiLineString([pts[12:15], pts[15:18]]),
        shapely.box(*pts[18], *(pts[18] + spread / 10)).union(shapely.box(*pts[19], *(pts[19] + spread / 9))),
        None, shapely.Polygon(), shapely.LineString(pts[20:40]),
    ], dtype=object)


@pytest.mark.parametrize("crs, x0, y0, spread", [(32628, 455_000, 3_110_000, 5_000),   # Las Palmas
                                                 (32650, 665_000, 3_547_000, 3_000),   # Nanjing
                                                 (4326, 118.78, 32.04, 0.02),
                                                 (None, 118.78, 32.04, 0.02)])
@pytest.mark.parametrize("gcj", [False, True])
@pytest.mark.parametrize("decimals", [5, 6])
def test_display_coordinates_are_the_numbers_of_to_crs_and_set_precision(crs, x0, y0, spread, gcj, decimals):
    geoms = _geoms(np.random.default_rng(decimals), x0, y0, spread)
    got = maps.display_geometries(geoms, crs, gcj, decimals)
    want = _reference(geoms, crs, gcj, decimals)
    ok = ~shapely.is_missing(want)
    assert (shapely.is_missing(got) == ~ok).all()
    assert shapely.to_wkb(got[ok]).tolist() == shapely.to_wkb(want[ok]).tolist()


def test_half_grid_coordinates_round_half_up_as_geos_does():
    # halves (exact binary fractions) and the numbers next to them: GEOS rounds halves up and
    # keeps a zero's sign; numpy's round (half to even) would differ, and so would a plain
    # floor(v + 0.5) at 0.49999999999999994 (the addition rounds to 1.0)
    v = np.array([0.5, 2.5, -1.5, 4.5, 3.5, -0.5, -2.5, -0.3, 0.3, -0.0, 0.0, 0.5 - 2 ** -54,
                  -0.5 + 2 ** -54, 1.5 - 2 ** -52, -1.5 + 2 ** -52, 1e7 + 0.5, -1e7 - 0.5])
    rng = np.random.default_rng(1)
    v = np.concatenate([v, rng.uniform(-3, 3, 20_000), np.round(rng.uniform(-1e6, 1e6, 20_000)) + 0.5,
                        rng.uniform(-1, 1, 20_000) * 2.0 ** -rng.integers(0, 60, 20_000)])
    geoms = shapely.points(np.column_stack([v, -v]))
    for decimals in (0, 1, 6):
        got = shapely.get_coordinates(maps.display_geometries(geoms, None, False, decimals))
        want = shapely.get_coordinates(shapely.set_precision(geoms, 10.0 ** -decimals, mode="pointwise"))
        assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
    assert not np.array_equal(np.round(v), shapely.get_coordinates(
        shapely.set_precision(geoms, 1.0, mode="pointwise"))[:, 0])


def test_z_coordinates_take_the_general_path():
    geoms = np.array([shapely.Point(455_000.123, 3_110_000.456, 12.5),
                      shapely.LineString([(455_000, 3_110_000, 1), (455_100, 3_110_050, 2)])], dtype=object)
    got = maps.display_geometries(geoms, 32628, False, 6)
    assert shapely.to_wkb(got).tolist() == shapely.to_wkb(_reference(geoms, 32628, False, 6)).tolist()
    assert shapely.has_z(got).all()


def test_to_display_keeps_the_grid_for_later_operations():
    # a facility area's point on its surface is taken from the displayed polygon: on the
    # grid's precision model it is snapped to the grid, as before (not a point between two)
    rng = np.random.default_rng(3)
    polys = [shapely.Polygon(455_000 + rng.uniform(0, 40, (6, 2)) + (100 * i, 50 * i)).convex_hull
             for i in range(50)]
    gdf = gpd.GeoDataFrame({"name": [f"p{i}" for i in range(50)]}, geometry=polys, crs=32628)
    shown = maps.to_display(gdf)
    want = _reference(gdf.geometry.to_numpy(), 32628, False, maps.MAP_DECIMALS)
    assert shapely.to_wkb(shown.geometry.to_numpy()).tolist() == shapely.to_wkb(want).tolist()
    got_pts = shapely.get_coordinates(shapely.point_on_surface(shown.geometry.to_numpy()))
    want_pts = shapely.get_coordinates(shapely.point_on_surface(want))
    assert np.array_equal(got_pts, want_pts)
    assert np.array_equal(got_pts, np.round(got_pts, maps.MAP_DECIMALS))
    assert shown["name"].tolist() == gdf["name"].tolist() and shown.crs.to_epsg() == 4326
    series = maps.to_display(gdf.geometry, simplify_m=3.0)
    assert isinstance(series, gpd.GeoSeries) and series.crs.to_epsg() == 4326
    assert series.index.equals(gdf.index)


def test_background_is_drawn_as_before(helsinki, monkeypatch):
    got = maps.background_layers(helsinki)
    monkeypatch.setattr(maps, "display_geometries", lambda g, crs, gcj, d: _reference(g, crs, gcj, d))
    want = maps.background_layers(helsinki)
    assert set(got) == set(want) and {"buildings", "streets"} <= set(got)
    for kind, v in want.items():
        if isinstance(v, gpd.GeoSeries):
            assert shapely.to_wkb(got[kind].to_numpy()).tolist() == shapely.to_wkb(v.to_numpy()).tolist(), kind
        else:
            assert got[kind] == v


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_paused_while_writing_and_restored(tmp_path, monkeypatch, enabled):
    import gc

    seen = []
    monkeypatch.setattr(O, "FORK_GPKG", False)
    monkeypatch.setattr(O, "_write_gpkg", lambda result, folder, *handed: seen.append(("child", gc.isenabled())))
    monkeypatch.setattr(O, "_write_features_file", lambda result, folder: None)
    monkeypatch.setattr(O, "_write_files", lambda result, folder: None)
    (gc.enable if enabled else gc.disable)()
    try:
        O.write_outputs(object(), tmp_path, beside=lambda: seen.append(("map", gc.isenabled(),
                                                                         gc.get_freeze_count() > 0)))
        assert gc.isenabled() is enabled and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    assert seen == [("child", False), ("map", False, True)]


@pytest.mark.parametrize("values", [
    pd.Series(["way", "node", "relation", "way"] * 50, dtype="str"),
    pd.Series(["way", "node", "relation", "way"] * 50, dtype=object),
    pd.Series(["way", None, "node"] * 50, dtype="str"),
    pd.Series(["way", "node"] * 50, dtype="category"),
    pd.Series([1, "way", 2.5] * 50, dtype=object),
    pd.Series([], dtype="str")])
def test_osm_types_as_text_without_a_string_per_row(values):
    """The features' ``osm_type`` column as ``astype(str).to_numpy()`` gives it, but one
    Python string per distinct text, not per row (new strings beside the forked writer
    fill, and so copy, pages of the heap it shares)."""
    got, want = O._few_texts(values), values.astype(str).to_numpy()
    assert got.dtype == want.dtype and len(got) == len(want)
    assert [x if x == x else "NaN" for x in got] == [x if x == x else "NaN" for x in want]
    if values.dtype == "str" and not values.hasnans and len(values):
        assert len({id(x) for x in got}) == values.nunique()


@pytest.mark.parametrize("crs", [4326, None])
def test_features_file_leaves_the_geometry_objects_untouched(tmp_path, monkeypatch, crs):
    """The features' geometry array is written as it is, not copied: a copy holds (so it
    touched) a reference to every geometry, and beside the forked GeoPackage writer each page
    touched is copied. The file is the same; a frame without a CRS keeps none (its copy gets
    WGS-84 in the file)."""
    import sys

    import pyarrow.parquet as pq

    n = 12
    feats = gpd.GeoDataFrame(
        {"osm_type": ["node"] * n, "osm_id": np.arange(n, dtype=np.int64), "tags": [{"k": "v"}] * n},
        geometry=[shapely.Point(i, i) for i in range(n)], crs=crs)
    first = feats.geometry.array[0]
    before = sys.getrefcount(first)
    seen = []
    real = pq.ParquetWriter.write_table

    def write_table(self, table, *args, **kwargs):
        seen.append(sys.getrefcount(first) - before)
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)
    O._write_features(feats, tmp_path / "f.parquet", batch=5)
    assert len(seen) == 3
    if crs is not None:
        assert seen == [0, 0, 0]
    else:
        assert feats.crs is None                  # the caller's frame is left as it was
    back = O._read_features(tmp_path / "f.parquet")
    assert back.crs.to_epsg() == 4326 and back.geometry.equals(gpd.GeoSeries(feats.geometry.array))


def test_features_wkb_made_a_sub_batch_at_a_time_same_bytes(tmp_path, monkeypatch):
    """Each row group's WKB is made a few rows at a time (the bytes objects of one sub-batch
    reuse the heap holes of the last, beside the forked writer), the file byte for byte the
    one made a row group at a time."""
    rng = np.random.default_rng(4)
    n = 47
    geoms = [shapely.box(x, y, x + 1, y + 2) if i % 4 else shapely.Point(x, y)
             for i, (x, y) in enumerate(rng.uniform(-50, 50, (n, 2)))]
    feats = gpd.GeoDataFrame(
        {"osm_type": pd.Series(["way", "node"] * 23 + ["relation"], dtype="str"),
         "osm_id": np.arange(n, dtype=np.int64), "tags": [{"k": str(i % 5)} for i in range(n)]},
        geometry=geoms, crs=4326)
    monkeypatch.setattr(O, "_WKB_SUB_BATCH", 10**6)
    O._write_features(feats, tmp_path / "a.parquet", batch=20)
    sizes = []
    real = shapely.to_wkb
    monkeypatch.setattr(shapely, "to_wkb", lambda g, *a, **k: sizes.append(len(g)) or real(g, *a, **k))
    monkeypatch.setattr(O, "_WKB_SUB_BATCH", 6)
    O._write_features(feats, tmp_path / "b.parquet", batch=20)
    assert max(sizes) <= 6 and sum(sizes) == n
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_features_file_in_batches_is_the_whole_file(tmp_path, monkeypatch):
    """Batches of rows (a city's features are not converted whole) give the file to_parquet
    gives: the same Arrow table, the same metadata (geopandas' ``geo`` over every row: bbox
    and kinds that no single batch has), the same frame read back."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 23
    geoms = [shapely.box(x, y, x + 1, y + 1) if i % 3 else shapely.Point(x, y)
             for i, (x, y) in enumerate(rng.uniform(-50, 50, (n, 2)))]
    geoms[-1] = shapely.LineString([(100, 80), (101, 81)])      # only in the last batch
    shared = {"amenity": "school", "name": "=1+1"}
    feats = gpd.GeoDataFrame(
        {"osm_type": ["way"] * n, "osm_id": np.arange(n, dtype=np.int64) * 7,
         "tags": [shared if i % 2 else {"k": str(i)} for i in range(n)]},
        geometry=geoms, crs=4326)
    whole, parts = tmp_path / "whole.parquet", tmp_path / "parts.parquet"
    O._write_features(feats, whole, batch=10**6)
    written = []
    real = gpd.GeoDataFrame.to_parquet
    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet",
                        lambda self, *a, **k: written.append(len(self)) or real(self, *a, **k))
    O._write_features(feats, parts, batch=5)
    assert written == []                                    # not the whole table at once
    assert pq.read_metadata(parts).num_row_groups == 5
    assert pq.read_metadata(parts).metadata == pq.read_metadata(whole).metadata
    assert pq.read_table(parts).equals(pq.read_table(whole))
    geo = json.loads(pq.read_metadata(parts).metadata[b"geo"])
    assert geo["columns"]["geometry"]["bbox"][2] == 101.0
    assert sorted(geo["columns"]["geometry"]["geometry_types"]) == ["LineString", "Point", "Polygon"]
    a, b = O._read_features(whole), O._read_features(parts)
    assert a["tags"].tolist() == b["tags"].tolist() and (a.geometry.to_wkb() == b.geometry.to_wkb()).all()


def test_features_tags_made_into_a_table_a_sub_batch_at_a_time(tmp_path, monkeypatch):
    """No table of every feature's tags is made: pandas converts its JSON text into one Arrow
    string buffer of all of it (~600 MB at a million walking nodes, the save's peak); each
    sub-batch's table is made from its own rows. The file is the same as ``to_parquet``'s."""
    import pyarrow.parquet as pq

    n = 47
    feats = gpd.GeoDataFrame(
        {"osm_type": ["way", "node"] * 23 + ["relation"], "osm_id": np.arange(n, dtype=np.int64),
         "tags": [{"k": str(i % 5), "name": "x" * i} for i in range(n)]},
        geometry=[shapely.Point(i, -i) for i in range(n)], crs=4326)
    O._write_features(feats, tmp_path / "whole.parquet", batch=10**6)
    made = []
    real = gpd.GeoDataFrame.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if "tags" in self.columns:
            made.append(len(self))

    monkeypatch.setattr(gpd.GeoDataFrame, "__init__", init)
    monkeypatch.setattr(O, "_WKB_SUB_BATCH", 6)
    O._write_features(feats, tmp_path / "parts.parquet", batch=20)
    assert made and max(made) <= 6
    assert pq.read_table(tmp_path / "parts.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))
    assert pq.read_metadata(tmp_path / "parts.parquet").metadata == \
        pq.read_metadata(tmp_path / "whole.parquet").metadata


def test_copy_file_atomic_copies_the_bytes(tmp_path):
    """The map copy into ./maps/: the bytes as they are (not decoded and encoded again), no
    temporary file left; a folder that cannot be written is an OutputError naming the file."""
    import pytest

    from lifecircle.errors import OutputError
    from lifecircle.io.outputs import copy_file_atomic

    src = tmp_path / "map.html"
    src.write_bytes("<p>地图 \r\n ünïcode</p>".encode() + bytes(range(256)))
    target = tmp_path / "maps" / "out.html"
    target.parent.mkdir()
    copy_file_atomic(src, target)
    assert target.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.html"]
    with pytest.raises(OutputError, match="nowhere"):
        copy_file_atomic(src, tmp_path / "nowhere" / "out.html")
