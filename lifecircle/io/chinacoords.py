"""Chinese map datums: WGS-84 ⇄ GCJ-02 ⇄ BD-09, vectorised with numpy.

OpenStreetMap data is WGS-84 everywhere, including China. Chinese map services publish in
GCJ-02 ("Mars coordinates": Amap/Gaode, Tencent, Apple and Google China tiles) or BD-09 (Baidu,
a further transform of GCJ-02). The offsets are a few hundred metres (≈100–700 m), larger than a
5-minute walk, so facility tables from those services must be brought to WGS-84 before they are
snapped to OSM streets (see ``shared/design/standards.md`` §8).

* WGS-84 → GCJ-02 is the well-known closed formula (Krasovsky 1940 ellipsoid constants).
* GCJ-02 → WGS-84 has no closed form: the one-step inverse ``g - delta(g)`` is off by 1–2 m, so
  :func:`gcj02_to_wgs84` refines it by fixed-point iteration until the forward transform of the
  estimate is within ``tol`` degrees of the input (1e-8° ≈ 1 mm; at most 10 iterations, usually 2–3).
* GCJ-02 → BD-09 is closed; BD-09 → GCJ-02 starts from the usual closed approximation and is
  refined the same way, so ``gcj02_to_bd09(*bd09_to_gcj02(x, y))`` returns ``(x, y)``.

Outside mainland China no offset is applied (:func:`out_of_china`, the usual rectangle test used by
eviltransform, PRCoords and most other implementations). Like them, the rectangle also contains
Hong Kong, Macau and Taiwan (and parts of neighbouring countries), where official maps are not
GCJ-02: a point there *is* shifted. Mongolia, Korea, Japan, Vietnam etc. partly fall inside too.

Why not a package: the PyPI candidates (``coordtransform``, ``coord-convert``, ``eviltransform``,
``prcoords``, ``mapdatumtrans``, ``transbigdata``) are either unmaintained since 2018–2020, work on
one point at a time in Python loops, or ship only the 1–2 m one-step inverse (``coordtransform``
0.2.1, the one recently released, does both and uses another "in China" rectangle); ``prcoords-typed``
needs Python ≥ 3.14; ``transbigdata`` is a large dependency for 30 lines. The formulas are public
and short, so they are written here once, vectorised, with the iterative inverses, and
cross-checked in the tests against published reference pairs (and against ``coordTransform``
when it happens to be installed).

All functions take scalars or array-likes (broadcast against each other) of longitude and
latitude in degrees and return ``(lon, lat)``: floats for scalar input, float64 arrays otherwise.
NaN stays NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely

__all__ = [
    "CRS_NAMES",
    "out_of_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "normalize_crs",
    "to_wgs84",
    "from_wgs84",
    "transform_geometries",
]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323
# Baidu's constants.
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

#: Fixed-point iterations stop when the forward transform of the estimate is this close (degrees).
DEFAULT_TOL_DEG = 1e-8
MAX_ITER = 10

# The usual "mainland China" rectangle (eviltransform, PRCoords).
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

_ALIASES = {
    "wgs84": "wgs84", "wgs": "wgs84", "epsg4326": "wgs84", "4326": "wgs84", "osm": "wgs84",
    "gps": "wgs84",
    # CGCS2000 (EPSG:4490) equals WGS-84 to a few centimetres: no datum shift is applied.
    "cgcs2000": "wgs84", "epsg4490": "wgs84", "4490": "wgs84",
    "gcj02": "gcj02", "gcj": "gcj02", "mars": "gcj02", "amap": "gcj02", "gaode": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09", "bd09ll": "bd09", "bd": "bd09", "baidu": "bd09",
}
#: Names accepted by :func:`to_wgs84` / :func:`from_wgs84` (case, "-", "_", ":" and spaces ignored).
CRS_NAMES: tuple[str, ...] = ("wgs84", "gcj02", "bd09")


def _prep(lon, lat):
    lon_a = np.asarray(lon, dtype="float64")
    lat_a = np.asarray(lat, dtype="float64")
    scalar = lon_a.ndim == 0 and lat_a.ndim == 0
    lon_a, lat_a = np.broadcast_arrays(lon_a, lat_a)
    return lon_a, lat_a, scalar


def _out(lon, lat, scalar):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def out_of_china(lon, lat):
    """True where (lon, lat) lies outside the mainland-China rectangle, where no offset applies.

    The rectangle is 72.004–137.8347 °E, 0.8293–55.8271 °N, the test used by most
    implementations. It is coarse: Hong Kong, Macau and Taiwan lie inside it (and get shifted, as
    with those implementations) although their official maps are not GCJ-02, and so do parts of
    Mongolia, the Koreas, Japan and South-East Asia. NaN coordinates count as outside.

    >>> out_of_china(24.94, 60.17), out_of_china(118.78, 32.045)
    (True, False)
    """
    lon_a, lat_a, scalar = _prep(lon, lat)
    mask = ~_in_china(lon_a, lat_a)
    return bool(mask) if scalar else mask


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS-84 (lon, lat), without the China test."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat_m = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
              + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
              + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon_m = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
              + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
              + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat_m * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon_m * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj_raw(lon, lat):
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd_raw(lon, lat):
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_to_gcj_closed(lon, lat):
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _apply_inside(fn, lon: np.ndarray, lat: np.ndarray):
    """``fn`` applied to the points inside the China rectangle; the others are copied unchanged."""
    out_lon = np.array(lon, dtype="float64", copy=True)
    out_lat = np.array(lat, dtype="float64", copy=True)
    inside = _in_china(out_lon, out_lat)
    if inside.any():
        new_lon, new_lat = fn(out_lon[inside], out_lat[inside])
        out_lon[inside] = new_lon
        out_lat[inside] = new_lat
    return out_lon, out_lat


def _refine(forward, target_lon, target_lat, lon, lat, tol, max_iter):
    """Fixed-point refinement of ``forward(lon, lat) == target`` (Cai Jun's method)."""
    lon = lon.copy()
    lat = lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = forward(lon, lat)
        r_lon = f_lon - target_lon
        r_lat = f_lat - target_lat
        lon -= r_lon
        lat -= r_lat
        if r_lon.size == 0 or max(np.abs(r_lon).max(), np.abs(r_lat).max()) < tol:
            break
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """WGS-84 → GCJ-02 (closed formula); identity outside :func:`out_of_china`'s rectangle.

    >>> lon, lat = wgs84_to_gcj02(118.78, 32.045)       # Xinjiekou, Nanjing
    >>> round(lon, 6), round(lat, 6)
    (118.785207, 32.04295)
    >>> wgs84_to_gcj02(24.94, 60.17)                    # Helsinki: no offset
    (24.94, 60.17)
    >>> wgs84_to_gcj02([118.78, 24.94], [32.045, 60.17])[0].round(4).tolist()
    [118.7852, 24.94]
    """
    lon_a, lat_a, scalar = _prep(lon, lat)
    return _out(*_apply_inside(_wgs_to_gcj_raw, lon_a, lat_a), scalar)


def gcj02_to_wgs84(lon, lat, tol: float = DEFAULT_TOL_DEG, max_iter: int = MAX_ITER):
    """GCJ-02 → WGS-84, iterated until ``wgs84_to_gcj02`` of the result is within ``tol`` degrees.

    Starts from the one-step inverse ``g - delta(g)`` (1–2 m off) and refines it; converges in
    2–3 iterations to well below a millimetre. Identity outside the China rectangle (tested on the
    GCJ-02 input, as other implementations do).

    >>> lon, lat = gcj02_to_wgs84(118.785207, 32.04295)    # an Amap point back to WGS-84
    >>> round(lon, 5), round(lat, 5)
    (118.78, 32.045)
    """
    lon_a, lat_a, scalar = _prep(lon, lat)

    def _inverse(g_lon, g_lat):
        dlon, dlat = _gcj_delta(g_lon, g_lat)
        return _refine(_wgs_to_gcj_raw, g_lon, g_lat, g_lon - dlon, g_lat - dlat, tol, max_iter)

    return _out(*_apply_inside(_inverse, lon_a, lat_a), scalar)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 → BD-09 (closed formula); identity outside the China rectangle."""
    lon_a, lat_a, scalar = _prep(lon, lat)
    return _out(*_apply_inside(_gcj_to_bd_raw, lon_a, lat_a), scalar)


def bd09_to_gcj02(lon, lat, tol: float = DEFAULT_TOL_DEG, max_iter: int = MAX_ITER):
    """BD-09 → GCJ-02: the usual closed approximation, refined so it inverts :func:`gcj02_to_bd09`.

    The closed approximation alone is off by up to a few decimetres; the refinement makes
    ``gcj02_to_bd09(*bd09_to_gcj02(x, y))`` return ``(x, y)`` within ``tol`` degrees.
    """
    lon_a, lat_a, scalar = _prep(lon, lat)

    def _inverse(b_lon, b_lat):
        g0_lon, g0_lat = _bd_to_gcj_closed(b_lon, b_lat)
        return _refine(_gcj_to_bd_raw, b_lon, b_lat, g0_lon, g0_lat, tol, max_iter)

    return _out(*_apply_inside(_inverse, lon_a, lat_a), scalar)


def wgs84_to_bd09(lon, lat):
    """WGS-84 → BD-09 (via GCJ-02).

    >>> [round(v, 6) for v in wgs84_to_bd09(118.78, 32.045)]
    [118.791641, 32.049205]
    """
    lon_a, lat_a, scalar = _prep(lon, lat)
    g_lon, g_lat = wgs84_to_gcj02(lon_a, lat_a)
    return _out(*gcj02_to_bd09(g_lon, g_lat), scalar)


def bd09_to_wgs84(lon, lat, tol: float = DEFAULT_TOL_DEG, max_iter: int = MAX_ITER):
    """BD-09 → WGS-84 (via GCJ-02, both steps iterated).

    >>> [round(v, 7) for v in bd09_to_wgs84(*wgs84_to_bd09(118.78, 32.045))]   # round trip
    [118.78, 32.045]
    """
    lon_a, lat_a, scalar = _prep(lon, lat)
    g_lon, g_lat = bd09_to_gcj02(lon_a, lat_a, tol, max_iter)
    return _out(*gcj02_to_wgs84(g_lon, g_lat, tol, max_iter), scalar)


def normalize_crs(crs) -> str:
    """Canonical name ("wgs84", "gcj02" or "bd09") of a datum spelling such as "GCJ-02".

    Case, spaces, "-", "_" and ":" are ignored, so "WGS-84", "EPSG:4326", "gcj_02", "BD-09" and
    the integer 4326 are accepted; "amap"/"gaode"/"tencent" mean GCJ-02, "baidu" BD-09 and
    "cgcs2000"/EPSG:4490 WGS-84 (they agree to centimetres). Raises ``ValueError`` otherwise.
    """
    if crs is None:
        return "wgs84"
    key = "".join(ch for ch in str(crs).strip().lower() if ch not in " -_:")
    try:
        return _ALIASES[key]
    except KeyError:
        raise ValueError(
            f"unknown coordinate system {crs!r}: use one of {', '.join(CRS_NAMES)} "
            "(also accepted: 'WGS-84', 'EPSG:4326', 'GCJ-02', 'BD-09', 'amap', 'baidu')"
        ) from None


def datum_zh(name) -> str:
    """The Chinese of :func:`normalize_crs`'s refusal of ``name``."""
    return f"未知的坐标系 {name!r}：请用 wgs84、gcj02（高德、腾讯）或 bd09（百度）"


def to_wgs84(lon, lat, crs):
    """Coordinates in ``crs`` (wgs84 / gcj02 / bd09, any spelling of :func:`normalize_crs`) → WGS-84."""
    name = normalize_crs(crs)
    if name == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if name == "bd09":
        return bd09_to_wgs84(lon, lat)
    lon_a, lat_a, scalar = _prep(lon, lat)
    return _out(lon_a.copy(), lat_a.copy(), scalar)


def from_wgs84(lon, lat, crs):
    """WGS-84 coordinates → ``crs`` (wgs84 / gcj02 / bd09)."""
    name = normalize_crs(crs)
    if name == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if name == "bd09":
        return wgs84_to_bd09(lon, lat)
    lon_a, lat_a, scalar = _prep(lon, lat)
    return _out(lon_a.copy(), lat_a.copy(), scalar)


def transform_geometries(geoms, fn: Callable):
    """Apply ``fn(lon, lat) -> (lon, lat)`` to every vertex of shapely 2 geometries.

    ``geoms`` is a GeoSeries, a GeoDataFrame (its active geometry is replaced), a numpy array /
    list of geometries, or one geometry; the result has the same kind (index and ``crs`` kept).
    One vectorised call over all coordinates through :func:`shapely.transform`; z is dropped.
    """

    def _xy(coords: np.ndarray) -> np.ndarray:
        if len(coords) == 0:
            return coords
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")])

    try:  # geopandas is optional for this function
        import geopandas as gpd
    except ImportError:  # pragma: no cover
        gpd = None
    if gpd is not None and isinstance(geoms, gpd.GeoDataFrame):
        out = geoms.copy()
        out[geoms.geometry.name] = transform_geometries(geoms.geometry, fn)
        return out
    if gpd is not None and isinstance(geoms, gpd.GeoSeries):
        values = shapely.transform(np.asarray(geoms.values, dtype=object), _xy)
        return gpd.GeoSeries(values, index=geoms.index, crs=geoms.crs, name=geoms.name)
    if isinstance(geoms, shapely.Geometry):
        return shapely.transform(geoms, _xy)
    return shapely.transform(np.asarray(geoms, dtype=object), _xy)


def frame_to_wgs84(gdf, crs):
    """A GeoDataFrame whose coordinates are in ``crs`` (wgs84 / gcj02 / bd09) as true WGS-84.

    GCJ-02 / BD-09 files (Gaode, Baidu exports) usually declare EPSG:4326 while their
    coordinates are shifted by up to ~500 m: the file is first brought to its declared
    lon/lat, then every vertex is shifted back. ``wgs84`` returns the frame in EPSG:4326."""
    name = normalize_crs(crs)
    out = gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)
    if name == "wgs84":
        return out
    return transform_geometries(out, lambda x, y: to_wgs84(x, y, name))
