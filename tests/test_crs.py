"""Choosing the metric CRS: UTM zones and CGCS2000 3-degree Gauss-Krüger zones."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from lifecircle.io.crs import cgcs2000_gk_crs, choose_crs, utm_crs

NANJING = (118.78, 32.04)
CHENGDU = (104.07, 30.67)
HELSINKI = (24.94, 60.17)
LAS_PALMAS = (-15.43, 28.1)


def test_gk_codes_match_pyproj_names():
    """EPSG:4534..4554 are CM 75E..135E in 3-degree steps, as pyproj's database names them."""
    for k, code in enumerate(range(4534, 4555)):
        cm = 75 + 3 * k
        crs = pyproj.CRS.from_epsg(code)
        assert crs.name == f"CGCS2000 / 3-degree Gauss-Kruger CM {cm}E"
        assert cgcs2000_gk_crs(cm).to_epsg() == code
        assert cgcs2000_gk_crs(cm + 1.4).to_epsg() == code
        assert cgcs2000_gk_crs(cm - 1.4).to_epsg() == code


def test_gk_nanjing_and_chengdu():
    # 118.78E: nearest central meridian is 120E (117E is 1.78 degrees away) -> EPSG:4549
    crs = cgcs2000_gk_crs(NANJING[0])
    assert crs.to_epsg() == 4549
    assert crs.name == "CGCS2000 / 3-degree Gauss-Kruger CM 120E"
    assert cgcs2000_gk_crs(CHENGDU[0]).to_epsg() == 4544  # CM 105E, standards.md section 8


@pytest.mark.parametrize("lon", [24.94, -15.43, 73.4, 136.6, float("nan")])
def test_gk_outside_china_raises(lon):
    with pytest.raises(ValueError):
        cgcs2000_gk_crs(lon)


def test_utm_zones():
    assert utm_crs(*HELSINKI).to_epsg() == 32635
    assert utm_crs(*LAS_PALMAS).to_epsg() == 32628
    assert utm_crs(*NANJING).to_epsg() == 32650
    assert utm_crs(*CHENGDU).to_epsg() == 32648
    assert utm_crs(151.2, -33.87).to_epsg() == 32756   # Sydney, southern hemisphere
    assert utm_crs(5.32, 60.39).to_epsg() == 32632     # Bergen, Norway exception
    assert utm_crs(180.0, 0.0).to_epsg() == 32660


def test_choose_crs_specs():
    assert choose_crs(None, *HELSINKI).to_epsg() == 32635
    assert choose_crs("utm", *LAS_PALMAS).to_epsg() == 32628
    assert choose_crs("UTM", *NANJING).to_epsg() == 32650
    assert choose_crs("cgcs2000", *NANJING).to_epsg() == 4549
    assert choose_crs("CGCS2000", *CHENGDU).to_epsg() == 4544
    assert choose_crs(4549, *HELSINKI).to_epsg() == 4549
    assert choose_crs("EPSG:32650", *HELSINKI).to_epsg() == 32650
    crs = pyproj.CRS.from_epsg(3857)
    assert choose_crs(crs, *NANJING) == crs
    assert choose_crs("+proj=utm +zone=50 +datum=WGS84 +units=m", *NANJING).is_projected


def test_choose_crs_from_arrays_uses_bbox_centre():
    lon = np.array([118.76, 118.80, np.nan])
    lat = np.array([32.03, 32.05, np.nan])
    assert choose_crs(None, lon, lat).to_epsg() == 32650
    assert choose_crs("cgcs2000", lon, lat).to_epsg() == 4549


@pytest.mark.parametrize("spec", ["not-a-crs", "EPSG:999999", 999999, "cgcs2001"])
def test_choose_crs_invalid_names_spec(spec):
    with pytest.raises(ValueError) as exc:
        choose_crs(spec, *NANJING)
    assert str(spec) in str(exc.value)


def test_choose_crs_refuses_geographic():
    with pytest.raises(ValueError, match="EPSG:4326"):
        choose_crs("EPSG:4326", *NANJING)
