"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 against published reference pairs, round trips and properties."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from lifecircle.io import chinacoords as cc

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


# --- published reference pairs (lon, lat) ---------------------------------------------------
# googollee/eviltransform, python/test.py (TESTS; also go/transform_test.go), given as
# (wgsLat, wgsLng, gcjLat, gcjLng); the tests there require wgs2gcj to 6 decimals and the exact
# inverse to < 0.5 m.
EVILTRANSFORM_WGS_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),    # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),    # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),    # Beijing
]
# wandergis/coordtransform README.md, "示例用法" results for input (116.404, 39.915):
#   bd09togcj02 -> [116.39762729119315, 39.90865673957631] (closed one-step approximation)
#   gcj02tobd09 -> [116.41036949371029, 39.92133699351021]
#   wgs84togcj02 -> [116.41024449916938, 39.91640428150164]
#   gcj02towgs84 -> [116.39775550083061, 39.91359571849836] (one-step inverse, 1-2 m off)
WANDERGIS_IN = (116.404, 39.915)
WANDERGIS_BD_TO_GCJ = (116.39762729119315, 39.90865673957631)
WANDERGIS_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
WANDERGIS_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
WANDERGIS_GCJ_TO_WGS_ONESTEP = (116.39775550083061, 39.91359571849836)
# hanming-li/prcoords-typed, tests/test_conversion.py (_CASES), WGS-84 / GCJ-02 / BD-09 triples
# of three airports, 6 decimals, required there within 1.5e-6 degrees in every direction.
PRCOORDS_TYPED = {
    "Beijing Capital": ((116 + 35.9 / 60, 40 + 4.4 / 60), (116.604140, 40.074380), (116.610670, 40.080272)),
    "Beijing Daxing": ((116 + 24 / 60, 39 + 30 / 60), (116.406192, 39.501340), (116.412597, 39.507676)),
    "Ordos Ejin Horo": ((109 + 51.9 / 60, 39 + 29.4 / 60), (109.870522, 39.490848), (109.877133, 39.496571)),
}

HELSINKI = (24.94, 60.17)
LAS_PALMAS = (-15.43, 28.1)
NANJING = (118.78, 32.04)

ALL_FUNCTIONS = [
    cc.wgs84_to_gcj02, cc.gcj02_to_wgs84, cc.gcj02_to_bd09, cc.bd09_to_gcj02,
    cc.wgs84_to_bd09, cc.bd09_to_wgs84,
]


@pytest.mark.parametrize("wgs, gcj", EVILTRANSFORM_WGS_GCJ)
def test_eviltransform_pairs(wgs, gcj):
    lon, lat = cc.wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-6)
    assert lat == pytest.approx(gcj[1], abs=1e-6)
    back = cc.gcj02_to_wgs84(*gcj)
    assert metres(*back, *wgs) < 0.5


def test_wandergis_readme_pairs():
    assert cc.wgs84_to_gcj02(*WANDERGIS_IN) == pytest.approx(WANDERGIS_WGS_TO_GCJ, abs=1e-9)
    assert cc.gcj02_to_bd09(*WANDERGIS_IN) == pytest.approx(WANDERGIS_GCJ_TO_BD, abs=1e-9)
    # their bd09togcj02 is the closed approximation: ours is the exact inverse, centimetres away
    assert metres(*cc.bd09_to_gcj02(*WANDERGIS_IN), *WANDERGIS_BD_TO_GCJ) < 0.1
    # their gcj02towgs84 is the one-step inverse, 1-2 m off the exact one
    d = metres(*cc.gcj02_to_wgs84(*WANDERGIS_IN), *WANDERGIS_GCJ_TO_WGS_ONESTEP)
    assert 0.05 < d < 3.0


@pytest.mark.parametrize("name", sorted(PRCOORDS_TYPED))
def test_prcoords_typed_triples(name):
    wgs, gcj, bd = PRCOORDS_TYPED[name]
    pairs = [
        (cc.wgs84_to_gcj02, wgs, gcj), (cc.gcj02_to_wgs84, gcj, wgs),
        (cc.gcj02_to_bd09, gcj, bd), (cc.bd09_to_gcj02, bd, gcj),
        (cc.wgs84_to_bd09, wgs, bd), (cc.bd09_to_wgs84, bd, wgs),
    ]
    for fn, src, dst in pairs:
        got = fn(*src)
        assert math.hypot(got[0] - dst[0], got[1] - dst[1]) < 1.5e-6, fn.__name__


def test_gcj_inverse_residual_is_tiny():
    """The forward transform of the iterated inverse reproduces the input (< 1e-7 degrees)."""
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.7, 134.9, 2000)
    lat = rng.uniform(18.2, 53.4, 2000)
    w_lon, w_lat = cc.gcj02_to_wgs84(lon, lat)
    f_lon, f_lat = cc.wgs84_to_gcj02(w_lon, w_lat)
    assert np.abs(f_lon - lon).max() < 1e-7
    assert np.abs(f_lat - lat).max() < 1e-7
    b_lon, b_lat = cc.bd09_to_gcj02(lon, lat)
    f_lon, f_lat = cc.gcj02_to_bd09(b_lon, b_lat)
    assert np.abs(f_lon - lon).max() < 1e-7
    assert np.abs(f_lat - lat).max() < 1e-7


@pytest.mark.parametrize("point", [HELSINKI, LAS_PALMAS], ids=["helsinki", "las_palmas"])
@pytest.mark.parametrize("fn", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_identity_outside_china(point, fn):
    assert cc.out_of_china(*point)
    assert fn(*point) == point


def test_out_of_china_mask_and_rectangle():
    lon = np.array([118.78, 24.94, -15.43, 114.17, 121.56, 72.0, 137.9, 100.0, 100.0])
    lat = np.array([32.04, 60.17, 28.1, 22.32, 25.03, 30.0, 30.0, 0.5, 56.0])
    # Nanjing, Helsinki, Las Palmas, Hong Kong (inside the rectangle), Taipei (inside), edges
    expected = np.array([False, True, True, False, False, True, True, True, True])
    np.testing.assert_array_equal(cc.out_of_china(lon, lat), expected)
    # Hong Kong is shifted like mainland points, as in most implementations
    assert cc.wgs84_to_gcj02(114.17, 22.32) != (114.17, 22.32)


def test_nanjing_offset_magnitude():
    lon, lat = cc.wgs84_to_gcj02(*NANJING)
    d = metres(*NANJING, lon, lat)
    assert 100.0 < d < 700.0
    # in Nanjing the GCJ-02 position lies about 490 m east and 230 m south of the WGS-84 one
    assert lon > NANJING[0] and lat < NANJING[1]


def test_scalars_arrays_and_nan():
    lon, lat = cc.wgs84_to_gcj02(118.78, 32.04)
    assert isinstance(lon, float) and isinstance(lat, float)
    arr = cc.wgs84_to_gcj02(np.array([118.78, np.nan, 24.94]), np.array([32.04, 30.0, 60.17]))
    assert arr[0].shape == (3,)
    assert arr[0][0] == pytest.approx(lon)
    assert np.isnan(arr[0][1]) and arr[1][1] == 30.0
    assert arr[0][2] == 24.94
    # broadcasting a list against a scalar
    b = cc.gcj02_to_wgs84([118.78, 118.79], 32.04)
    assert b[0].shape == (2,) and b[1].shape == (2,)
    # 2-D arrays keep their shape
    grid = cc.bd09_to_wgs84(np.full((2, 3), 118.78), np.full((2, 3), 32.04))
    assert grid[0].shape == (2, 3)


@pytest.mark.parametrize("alias, canonical", [
    ("wgs84", "wgs84"), ("WGS-84", "wgs84"), ("EPSG:4326", "wgs84"), (4326, "wgs84"), (None, "wgs84"),
    ("GCJ-02", "gcj02"), ("gcj_02", "gcj02"), ("Amap", "gcj02"),
    ("BD-09", "bd09"), ("bd09ll", "bd09"), ("Baidu", "bd09"),
])
def test_crs_aliases(alias, canonical):
    assert cc.normalize_crs(alias) == canonical


def test_to_from_wgs84_dispatch():
    w = NANJING
    for crs, fwd in (("gcj02", cc.wgs84_to_gcj02), ("BD-09", cc.wgs84_to_bd09), ("WGS-84", lambda a, b: (a, b))):
        assert cc.from_wgs84(*w, crs) == pytest.approx(fwd(*w), abs=1e-12)
        assert metres(*cc.to_wgs84(*cc.from_wgs84(*w, crs), crs), *w) < 0.01


def test_unknown_crs_lists_names():
    with pytest.raises(ValueError) as exc:
        cc.to_wgs84(118.0, 32.0, "EPSG:3857")
    for name in ("wgs84", "gcj02", "bd09"):
        assert name in str(exc.value)
    with pytest.raises(ValueError):
        cc.from_wgs84(118.0, 32.0, "mercator")


def test_transform_geometries_geoseries_and_array():
    pt = shapely.Point(118.78, 32.04)
    line = shapely.LineString([(118.78, 32.04), (118.79, 32.05)])
    poly = shapely.box(118.77, 32.03, 118.78, 32.04)
    gs = gpd.GeoSeries([pt, line, poly, None], index=[10, 11, 12, 13], crs="EPSG:4326")
    out = cc.transform_geometries(gs, cc.wgs84_to_gcj02)
    assert list(out.index) == [10, 11, 12, 13] and out.crs == gs.crs
    assert out.iloc[3] is None
    exp = cc.wgs84_to_gcj02(118.78, 32.04)
    assert out.iloc[0].x == pytest.approx(exp[0]) and out.iloc[0].y == pytest.approx(exp[1])
    coords = shapely.get_coordinates(out.iloc[1])
    exp_line = np.column_stack(cc.wgs84_to_gcj02(*shapely.get_coordinates(line).T))
    np.testing.assert_allclose(coords, exp_line)
    assert out.iloc[2].geom_type == "Polygon"
    # array and single geometry inputs; round trip back to WGS-84
    arr = cc.transform_geometries(np.array([pt, line], dtype=object), cc.wgs84_to_gcj02)
    back = cc.transform_geometries(arr, cc.gcj02_to_wgs84)
    assert shapely.equals_exact(back[1], line, tolerance=1e-8)
    single = cc.transform_geometries(pt, cc.wgs84_to_bd09)
    assert isinstance(single, shapely.Point)
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[pt], crs="EPSG:4326")
    out_gdf = cc.transform_geometries(gdf, cc.wgs84_to_gcj02)
    assert out_gdf.geometry.iloc[0].x == pytest.approx(exp[0]) and gdf.geometry.iloc[0].x == 118.78


# --- properties over mainland China ---------------------------------------------------------
mainland_lon = st.floats(min_value=73.7, max_value=134.9, allow_nan=False)
mainland_lat = st.floats(min_value=18.2, max_value=53.4, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(mainland_lon, mainland_lat)
def test_round_trips_within_half_a_metre(lon, lat):
    g = cc.wgs84_to_gcj02(lon, lat)
    assert metres(*cc.gcj02_to_wgs84(*g), lon, lat) < 0.5
    b = cc.wgs84_to_bd09(lon, lat)
    assert metres(*cc.bd09_to_wgs84(*b), lon, lat) < 0.5
    assert metres(*cc.bd09_to_gcj02(*cc.gcj02_to_bd09(lon, lat)), lon, lat) < 0.5
    # and the other way round, from GCJ-02 / BD-09
    assert metres(*cc.wgs84_to_gcj02(*cc.gcj02_to_wgs84(lon, lat)), lon, lat) < 0.5
    assert metres(*cc.wgs84_to_bd09(*cc.bd09_to_wgs84(lon, lat)), lon, lat) < 0.5


@settings(max_examples=200, deadline=None)
@given(mainland_lon, mainland_lat)
def test_gcj_offset_is_bounded(lon, lat):
    d = metres(lon, lat, *cc.wgs84_to_gcj02(lon, lat))
    assert 0.0 < d < 1000.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(mainland_lon, mainland_lat), min_size=1, max_size=20))
def test_vectorised_equals_pointwise(points):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    v_lon, v_lat = cc.gcj02_to_wgs84(lon, lat)
    for i, (x, y) in enumerate(points):
        s = cc.gcj02_to_wgs84(x, y)
        assert metres(v_lon[i], v_lat[i], *s) < 0.01


# --- cross-check against an installed package (skipped when absent) --------------------------
def test_cross_check_coordtransform_package():
    ct = pytest.importorskip("coordTransform", reason="coordtransform (PyPI) not installed")
    rng = np.random.default_rng(3)
    # inside both implementations' China rectangles
    for lon, lat in zip(rng.uniform(74.0, 134.9, 200), rng.uniform(4.0, 53.4, 200), strict=True):
        lon, lat = float(lon), float(lat)
        assert cc.wgs84_to_gcj02(lon, lat) == pytest.approx(tuple(ct.wgs84_to_gcj02(lon, lat)), abs=1e-9)
        assert cc.gcj02_to_bd09(lon, lat) == pytest.approx(tuple(ct.gcj02_to_bd09(lon, lat)), abs=1e-9)
        # its inverses are one-step approximations: within a few metres of ours
        assert metres(*cc.gcj02_to_wgs84(lon, lat), *ct.gcj02_to_wgs84(lon, lat)) < 5.0
        assert metres(*cc.bd09_to_gcj02(lon, lat), *ct.bd09_to_gcj02(lon, lat)) < 1.0
