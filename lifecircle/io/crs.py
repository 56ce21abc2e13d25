"""Choosing the projected (metric) CRS of an analysis.

Distances and walking times are computed in a projected CRS in metres:

* ``None`` / ``"utm"`` — the WGS-84 UTM zone of the data centre (EPSG:326xx north, 327xx south);
  scale error below 0.04 % within the zone, fine for walking distances;
* ``"cgcs2000"`` — the CGCS2000 3-degree Gauss-Krüger zone with the nearest central meridian
  (EPSG:4534 = CM 75°E … EPSG:4554 = CM 135°E), the grid of Chinese planning drawings;
* anything else pyproj accepts: an EPSG integer, ``"EPSG:4549"``, a PROJ string, WKT, a
  :class:`pyproj.CRS`.

Note that the CGCS2000 GK CRSs declare northing/easting axis order; lifecircle always transforms
with ``always_xy=True`` (geopandas does too), so x is easting everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
from pyproj.exceptions import CRSError

__all__ = ["utm_crs", "cgcs2000_gk_crs", "choose_crs", "GK_FIRST_EPSG", "GK_FIRST_CM"]

#: EPSG:4534 is "CGCS2000 / 3-degree Gauss-Kruger CM 75E"; codes rise by one per 3° up to 4554 (135°E).
GK_FIRST_EPSG = 4534
GK_FIRST_CM = 75
GK_LAST_CM = 135


def _check_lonlat(lon: float, lat: float | None = None) -> None:
    if not (isinstance(lon, (int, float, np.floating, np.integer)) and math.isfinite(lon)) or not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon!r} is not a number in [-180, 180]")
    if lat is not None and (not math.isfinite(lat) or not -90 <= lat <= 90):
        raise ValueError(f"latitude {lat!r} is not a number in [-90, 90]")


def utm_crs(lon: float, lat: float) -> pyproj.CRS:
    """WGS-84 / UTM zone of the point (EPSG:326zz north of the equator, 327zz south).

    Follows the standard zone grid including the Norway (32V) and Svalbard (31X–37X) exceptions.
    """
    lon = float(lon)
    lat = float(lat)
    _check_lonlat(lon, lat)
    zone = int((lon + 180.0) // 6.0) + 1
    zone = min(max(zone, 1), 60)
    if 56.0 <= lat < 64.0 and 3.0 <= lon < 12.0:
        zone = 32
    elif 72.0 <= lat <= 84.0 and 0.0 <= lon < 42.0:
        if lon < 9.0:
            zone = 31
        elif lon < 21.0:
            zone = 33
        elif lon < 33.0:
            zone = 35
        else:
            zone = 37
    base = 32600 if lat >= 0 else 32700
    return pyproj.CRS.from_epsg(base + zone)


def cgcs2000_gk_crs(lon: float) -> pyproj.CRS:
    """CGCS2000 / 3-degree Gauss-Krüger CM zone (EPSG:4534–4554) with the nearest central meridian.

    Central meridians run 75°E, 78°E … 135°E; each zone covers CM ± 1.5°, so ``lon`` must lie in
    73.5–136.5 °E (else ``ValueError``). E.g. Nanjing (118.78°E) → CM 120°E → EPSG:4549, Chengdu
    (104.07°E) → CM 105°E → EPSG:4544.

    >>> cgcs2000_gk_crs(118.78).to_epsg(), cgcs2000_gk_crs(104.07).to_epsg()
    (4549, 4544)
    """
    lon = float(lon)
    _check_lonlat(lon)
    lo, hi = GK_FIRST_CM - 1.5, GK_LAST_CM + 1.5
    if not lo <= lon <= hi:
        raise ValueError(
            f"longitude {lon:g} is outside the CGCS2000 3-degree Gauss-Krüger zones "
            f"({lo:g}–{hi:g} °E, EPSG:4534–4554); use crs='utm' or an EPSG code"
        )
    index = int(math.floor((lon - GK_FIRST_CM) / 3.0 + 0.5))
    index = min(max(index, 0), (GK_LAST_CM - GK_FIRST_CM) // 3)
    return pyproj.CRS.from_epsg(GK_FIRST_EPSG + index)


def _centre(lon, lat) -> tuple[float, float]:
    """Centre of the bounding box of the finite coordinates (scalars pass through)."""
    lon_a = np.asarray(lon, dtype="float64").ravel()
    lat_a = np.asarray(lat, dtype="float64").ravel()
    ok = np.isfinite(lon_a) & np.isfinite(lat_a) if lon_a.shape == lat_a.shape else None
    if ok is None:
        raise ValueError("lon and lat must have the same shape")
    if not ok.any():
        raise ValueError("no finite longitude/latitude to choose a CRS from")
    lon_a, lat_a = lon_a[ok], lat_a[ok]
    return (float(lon_a.min()) + float(lon_a.max())) / 2.0, (float(lat_a.min()) + float(lat_a.max())) / 2.0


def choose_crs(spec, lon, lat) -> pyproj.CRS:
    """The projected CRS for ``spec`` at data centred on (``lon``, ``lat``).

    ``spec``: ``None`` or ``"utm"`` → :func:`utm_crs`; ``"cgcs2000"`` (also ``"cgcs2000-gk"``,
    ``"gk"``) → :func:`cgcs2000_gk_crs`; an ``int`` EPSG code, a :class:`pyproj.CRS` or any string
    pyproj accepts ("EPSG:32650", a PROJ string, WKT). ``lon``/``lat`` may be arrays: the centre
    of their bounding box is used. A spec pyproj cannot read, or a CRS that is not projected in
    metres (e.g. EPSG:4326), raises ``ValueError`` naming the spec.

    >>> choose_crs(None, 118.78, 32.04).to_epsg()          # Nanjing: UTM zone 50N
    32650
    >>> choose_crs("cgcs2000", 118.78, 32.04).to_epsg()    # CGCS2000 GK CM 120°E
    4549
    >>> choose_crs(None, [24.90, 24.98], [60.15, 60.19]).to_epsg()   # Helsinki, bbox centre
    32635
    >>> choose_crs(4326, 118.78, 32.04)
    Traceback (most recent call last):
    ...
    ValueError: CRS 4326 (WGS 84) is not projected: distances need metres; use None/'utm', 'cgcs2000' or a projected EPSG code
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in {"", "utm", "auto"}):
        return utm_crs(*_centre(lon, lat))
    if isinstance(spec, str) and spec.strip().lower().replace("_", "-").replace(" ", "-") in {
        "cgcs2000", "cgcs2000-gk", "gk", "cgcs2000-3-degree-gk",
    }:
        return cgcs2000_gk_crs(_centre(lon, lat)[0])
    if isinstance(spec, bool):
        raise ValueError(f"invalid CRS {spec!r}")
    try:
        if isinstance(spec, (int, np.integer)):
            crs = pyproj.CRS.from_epsg(int(spec))
        else:
            crs = pyproj.CRS.from_user_input(spec)
    except (CRSError, TypeError, ValueError) as exc:
        raise ValueError(
            f"invalid CRS {spec!r}: use None/'utm', 'cgcs2000', an EPSG code such as 4549 or "
            f"'EPSG:32650', or another CRS string pyproj accepts ({exc})"
        ) from None
    if not crs.is_projected:
        raise ValueError(
            f"CRS {spec!r} ({crs.name}) is not projected: distances need metres; "
            "use None/'utm', 'cgcs2000' or a projected EPSG code"
        )
    units = {axis.unit_name for axis in crs.axis_info}
    if not units <= {"metre", "meter"}:
        raise ValueError(f"CRS {spec!r} ({crs.name}) has axis units {sorted(units)}, not metres")
    return crs


def distance_scale(crs: pyproj.CRS, lon: float, lat: float) -> float:
    """How far ``crs`` stretches distances at (``lon``, ``lat``): the largest of its meridional
    and parallel scale factors' departures from 1 (0.0004 for UTM at a zone's edge, 0.18 for Web
    Mercator at 32°N, NaN where the projection is undefined).

    >>> round(distance_scale(pyproj.CRS.from_epsg(3857), 118.78, 32.04), 3)
    0.18
    """
    try:
        f = pyproj.Proj(crs).get_factors(lon, lat)
        return float(max(abs(f.meridional_scale - 1.0), abs(f.parallel_scale - 1.0)))
    except Exception:
        return float("nan")
