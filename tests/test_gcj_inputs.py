"""GCJ-02 / BD-09 boundary, population and origin files (Gaode / Baidu exports) are shifted
back to WGS-84 like facility tables; isochrones.gpkg is WGS-84 and keeps the origin names."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import shared_file
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.boundary import read_boundary
from lifecircle.io.chinacoords import transform_geometries, wgs84_to_bd09, wgs84_to_gcj02

BOX = shapely.box(118.775, 32.038, 118.787, 32.047)      # inside Xinjiekou


@pytest.mark.parametrize("datum,fn", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_boundary_in_gcj02_or_bd09_lands_on_wgs84(tmp_path, datum, fn):
    shifted = transform_geometries(BOX.segmentize(0.001), fn)
    f = tmp_path / "b.geojson"
    # Gaode/Baidu exports say EPSG:4326 while their coordinates are shifted by ~500 m
    gpd.GeoDataFrame({"name": ["新街口"]}, geometry=[shifted], crs=4326).to_file(f)
    plain = read_boundary(f)
    back = read_boundary(f, crs=datum)
    assert back["community"].iloc[0] == "新街口"
    g = back.geometry.iloc[0]
    # within a centimetre of the WGS-84 box, while the file as read is hundreds of metres off
    assert shapely.hausdorff_distance(g, BOX.segmentize(0.001)) < 1e-7
    assert shapely.hausdorff_distance(plain.geometry.iloc[0], BOX) > 0.003
    with pytest.raises(Exception, match="unknown coordinate system"):
        read_boundary(f, crs="tokyo")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    src = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    out = tmp_path_factory.mktemp("gcj") / "xjk"
    run = CliRunner().invoke(app, ["analyze", str(src), "--out", str(out), "--lang", "en"])
    assert run.exit_code == 0, run.output
    return out


def test_analyze_with_gcj02_boundary_and_population(folder, tmp_path):
    import lifecircle
    from lifecircle.result import load_result

    r = load_result(folder)
    homes = r.homes.to_crs(4326)
    inside = homes.within(BOX)
    assert 20 < inside.sum() < len(homes)
    shifted = transform_geometries(BOX.segmentize(0.001), wgs84_to_gcj02)
    bfile = tmp_path / "boundary.geojson"
    gpd.GeoDataFrame({"name": ["A"], "population": [5000]}, geometry=[shifted], crs=4326).to_file(bfile)
    res = lifecircle.analyze(shared_file("china/nanjing_xinjiekou_2021.osm.pbf"), boundary=bfile,
                             boundary_crs="gcj02", population=bfile, population_crs="gcj02")
    # the same homes as the WGS-84 box selects, and the zone's 5000 residents all placed
    got = res.homes.to_crs(4326)
    assert len(got) == int((r.homes.to_crs(4326).intersects(BOX)).sum())
    assert res.homes["population"].sum() == pytest.approx(5000)


def test_isochrones_gpkg_wgs84_with_origin_names_from_gcj02_csv(folder, tmp_path):
    from lifecircle.result import load_result

    r = load_result(folder)
    pts = r.homes.to_crs(4326).geometry.iloc[[0, 100]]
    glng, glat = wgs84_to_gcj02(pts.x.to_numpy(), pts.y.to_numpy())
    csv = tmp_path / "origins.csv"
    pd.DataFrame({"名称": ["新街口小学", "社区中心"], "lng": glng, "lat": glat}).to_csv(csv, index=False)
    out = tmp_path / "iso.gpkg"
    run = CliRunner().invoke(app, ["isochrones", str(folder), "--origins", str(csv),
                                   "--origins-crs", "gcj02", "--minutes", "5", "--out", str(out)])
    assert run.exit_code == 0, run.output
    iso = gpd.read_file(out, layer="isochrones")
    assert iso.crs.to_epsg() == 4326                      # like lifecircle.gpkg
    assert pyogrio.read_info(folder / "lifecircle.gpkg", layer="homes")["crs"] == "EPSG:4326"
    assert list(iso["origin_name"]) == ["新街口小学", "社区中心"]
    # the same polygons as from the true (WGS-84) positions; the unshifted reading differs
    wcsv = tmp_path / "origins_wgs.csv"
    pd.DataFrame({"name": ["a", "b"], "lng": pts.x.to_numpy(), "lat": pts.y.to_numpy()}).to_csv(wcsv, index=False)
    for args, same in ((["--origins", str(wcsv)], True), (["--origins", str(csv)], False)):
        o2 = tmp_path / f"iso_{same}.gpkg"
        run = CliRunner().invoke(app, ["isochrones", str(folder), *args, "--minutes", "5", "--out", str(o2)])
        assert run.exit_code == 0, run.output
        ref = gpd.read_file(o2, layer="isochrones")
        for a, b in zip(iso.geometry, ref.geometry, strict=True):
            diff = a.symmetric_difference(b).area / max(a.area, 1e-12)
            assert (diff < 1e-6) if same else (diff > 0.05)
    for layer in ("service_areas", "gaps"):
        if layer in [x[0] for x in pyogrio.list_layers(out)]:
            assert gpd.read_file(out, layer=layer).crs.to_epsg() == 4326


def test_origins_csv_takes_the_headers_facility_tables_take(tmp_path):
    """经度/纬度/名称 (as in facility and site tables) work for --origins; a bad coordinate is one
    line naming the row, not a traceback."""
    from pathlib import Path

    from lifecircle.cli.maps import _read_origins
    from lifecircle.errors import InputFileError

    good = tmp_path / "o.csv"
    good.write_text("名称,经度,纬度\n新街口,118.7786,32.0416\n", encoding="utf-8")
    g = _read_origins(Path(good), "EPSG:32650")
    assert list(g["name"]) == ["新街口"] and 660_000 < g.geometry.iloc[0].x < 680_000
    bad = tmp_path / "b.csv"
    bad.write_text("name,lng,lat\na,118.78,32.04\nb,abc,32.04\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"row\(s\) 2 "):
        _read_origins(Path(bad), "EPSG:32650")
