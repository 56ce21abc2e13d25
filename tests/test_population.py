"""Population: which buildings are homes, their levels, and measured population (raster and
community totals) with every resident kept. All expected values are computed by hand."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from synthetic_osm import LAT0, LON0, STEP, grid_osm
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.core.homes import apply_population, apply_population_raster, building_levels, find_homes
from lifecircle.errors import PopulationError, TableError
from lifecircle.settings import DEFAULTS

UTM = "EPSG:32650"
X0, Y0 = 660_000.0, 3_547_000.0
PPM = DEFAULTS.persons_per_m2


# --------------------------------------------------------------------------------------------
# levels


@pytest.mark.parametrize("tags, expected", [
    ({"building": "yes", "building:levels": "5"}, (5.0, "building:levels")),
    ({"building": "house", "building:levels": "2.5"}, (2.5, "building:levels")),
    ({"building": "apartments", "height": "30 m"}, (10.0, "height")),
    ({"building": "yes", "height": "10"}, (3.0, "height")),          # 10 / 3 = 3.33 -> 3
    ({"building": "yes", "height": "2"}, (1.0, "height")),           # never below 1 floor
    ({"building": "yes", "building:levels": "0", "height": "12"}, (4.0, "height")),
    ({"building": "house"}, (2.0, "default")),
    ({"building": "detached"}, (2.0, "default")),
    ({"building": "apartments"}, (6.0, "default")),
    ({"building": "residential"}, (4.0, "default")),
    ({"building": "yes"}, (3.0, "default")),
    ({"building": "hut"}, (DEFAULTS.default_levels, "default")),
])
def test_levels_from_tags_height_or_type(tags, expected):
    assert building_levels(tags) == expected


# --------------------------------------------------------------------------------------------
# homes by evidence


def _square(cx, cy, side):
    h = side / 2
    return shapely.box(X0 + cx - h, Y0 + cy - h, X0 + cx + h, Y0 + cy + h)


def _district():
    """Hand-built buildings around one residential street (y = 0) and one primary road
    (y = 1000). Returns (features, streets) in WGS-84 as the readers give them."""
    feats = [
        # osm_id, tags, geometry
        (1, {"building": "house"}, _square(0, 20, 10)),                          # typed, 100 m² x 2
        (2, {"building": "yes"}, _square(40, 25, 20)),                          # near res street
        (3, {"building": "yes", "building:levels": "5"}, _square(80, 25, 20)),  # tagged levels
        (4, {"building": "yes", "shop": "bakery"}, _square(120, 25, 20)),       # a shop
        (5, {"building": "yes"}, _square(160, 25, 20)),                          # in industrial land
        (6, {"landuse": "industrial"}, _square(160, 25, 60)),
        (7, {"building": "yes"}, _square(300, 60, 80)),                          # 6,400 m²: too big
        (8, {"building": "yes"}, _square(0, 980, 20)),                           # only a primary road
        (9, {"building": "yes"}, _square(500, 500, 20)),                         # residential land
        (10, {"landuse": "residential"}, _square(500, 500, 100)),
        (11, {"building": "yes"}, _square(200, 10, 5)),                          # 25 m²: too small
        (12, {"building": "apartments", "height": "30"}, _square(600, 980, 10)),  # typed, far: 10 fl.
        (13, {"building": "yes", "building:use": "residential"}, _square(800, 500, 20)),
        (14, {"building": "yes", "disused:shop": "yes"}, _square(240, 25, 20)),
        (15, {"building": "yes"}, _square(700, 250, 20)),                        # in a school campus
        (16, {"amenity": "school"}, _square(700, 250, 100)),
    ]
    features = gpd.GeoDataFrame({"osm_type": ["way"] * len(feats), "osm_id": [f[0] for f in feats],
                                 "tags": [f[1] for f in feats]},
                                geometry=[f[2] for f in feats], crs=UTM).to_crs("EPSG:4326")
    streets = gpd.GeoDataFrame(
        {"highway": ["residential", "primary"]},
        geometry=[shapely.LineString([(X0 - 100, Y0), (X0 + 400, Y0)]),
                  shapely.LineString([(X0 - 100, Y0 + 1000), (X0 + 900, Y0 + 1000)])],
        crs=UTM).to_crs("EPSG:4326")
    return features, streets


def test_untagged_buildings_count_where_evidence_says_residential():
    features, streets = _district()
    homes = find_homes(features, UTM, DEFAULTS, streets=streets).set_index("osm_id")
    assert sorted(homes.index) == [1, 2, 3, 9, 12, 13]
    expected = {1: 100 * 2, 2: 400 * 3, 3: 400 * 5, 9: 400 * 3, 12: 100 * 10, 13: 400 * 3}
    for osm_id, floor_area in expected.items():
        assert homes.loc[osm_id, col.POPULATION] == pytest.approx(floor_area * PPM, rel=1e-5), osm_id
    assert homes.loc[2, "evidence"] == "residential street"
    assert homes.loc[9, "evidence"] == "residential landuse"
    assert homes.loc[13, "evidence"] == "building:use"
    assert homes.loc[1, "evidence"] == homes.loc[12, "evidence"] == "typed"
    assert homes.loc[12, "levels_from"] == "height" and homes.loc[3, "levels_from"] == "building:levels"


def test_without_streets_untagged_buildings_need_residential_land():
    features, _ = _district()
    homes = find_homes(features, UTM, DEFAULTS)
    assert sorted(homes.osm_id) == [1, 9, 12, 13]


def test_street_distance_and_size_cap_are_settings():
    features, streets = _district()
    near = find_homes(features, UTM, DEFAULTS.with_(untagged_home_street_m=10.0), streets=streets)
    assert 2 not in set(near.osm_id)            # 15 m from the street: outside 10 m
    big = find_homes(features, UTM, DEFAULTS.with_(untagged_home_max_footprint_m2=10_000.0),
                     streets=streets)
    assert 7 in set(big.osm_id)                 # 6,400 m², 20 m from the street


# --------------------------------------------------------------------------------------------
# population raster


def _homes(xy_weights, crs=UTM):
    pts = [shapely.Point(X0 + x, Y0 + y) for x, y, _ in xy_weights]
    return gpd.GeoDataFrame({col.HOME_ID: np.arange(len(pts)), "osm_id": np.arange(len(pts)),
                             "source": "building", col.POPULATION: [w for _, _, w in xy_weights]},
                            geometry=pts, crs=crs)


def _write_raster(path, values, x_origin, y_top, cell, crs, nodata=-99999.0):
    import rasterio
    from rasterio.transform import from_origin

    values = np.asarray(values, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1],
                       count=1, dtype="float32", crs=crs, nodata=nodata,
                       transform=from_origin(x_origin, y_top, cell, cell)) as dst:
        dst.write(values, 1)


def test_raster_cells_spread_over_homes_by_floor_area(tmp_path):
    nd = -99999.0
    tif = tmp_path / "pop.tif"
    # 3 x 3 cells of 100 m; row 0 is the top (y 200..300)
    _write_raster(tif, [[100, 50, 0], [nd, 20, 0], [0, 0, 0]], X0, Y0 + 300, 100.0, UTM)
    homes = _homes([(10, 290, 1.0), (90, 210, 3.0),      # cell (0,0): 100 people, weights 1:3
                    (250, 250, 5.0),                      # cell (0,2): 0 people
                    (50, 150, 7.0),                       # cell (1,0): nodata -> keeps estimate
                    (120, 120, 0.0), (180, 180, 0.0),     # cell (1,1): 20 people, no floor area
                    (-500, 150, 9.0)])                    # outside the raster
    region = shapely.box(X0, Y0, X0 + 300, Y0 + 300)
    out, info = apply_population_raster(homes, tif, region)
    pop = out[col.POPULATION].to_numpy()
    np.testing.assert_allclose(pop[:7], [25, 75, 0, 7, 10, 10, 9])
    # cell (0,1) has 50 people and no home: one stand-in at its centre
    assert len(out) == 8 and out.source.iloc[7] == "raster"
    assert pop[7] == pytest.approx(50)
    assert out.geometry.iloc[7].equals_exact(shapely.Point(X0 + 150, Y0 + 250), 1e-6)
    assert info["raster_total"] == pytest.approx(170)
    # totals in == totals out: raster people + the estimates left outside it
    assert pop.sum() == pytest.approx(info["raster_total"] + info["residents_outside"])
    assert info["residents_outside"] == pytest.approx(16) and info["homes_outside"] == 2
    assert info["stand_in_homes"] == 1 and info["homes_in_empty_cells"] == 1
    assert out[col.HOME_ID].tolist() == list(range(8))


def test_raster_in_another_crs_and_outside_the_area(tmp_path):
    # a raster in another CRS (Web Mercator, 1 km cells): homes are matched to cells after
    # reprojection (each home sits mid-cell)
    import pyproj

    merc = pyproj.Transformer.from_crs(UTM, "EPSG:3857", always_xy=True)
    mx, my = merc.transform(X0, Y0)
    tif = tmp_path / "pop3857.tif"
    _write_raster(tif, [[40, 60]], mx, my + 1000, 1000.0, "EPSG:3857")
    back = pyproj.Transformer.from_crs("EPSG:3857", UTM, always_xy=True)
    cx0, cy0 = back.transform(mx + 500, my + 500)
    cx1, cy1 = back.transform(mx + 1500, my + 500)
    homes = gpd.GeoDataFrame({col.HOME_ID: [0, 1], col.POPULATION: [1.0, 1.0], "source": "building"},
                             geometry=[shapely.Point(cx0, cy0), shapely.Point(cx1, cy1)], crs=UTM)
    out, info = apply_population_raster(homes, tif, None)
    np.testing.assert_allclose(out[col.POPULATION], [40, 60])
    far = homes.assign(geometry=homes.geometry.translate(1e6, 0))
    with pytest.raises(PopulationError, match="does not cover"):
        apply_population_raster(far, tif, shapely.box(*far.total_bounds).buffer(10))


def test_unreadable_raster_is_refused(tmp_path):
    bad = tmp_path / "pop.tif"
    bad.write_text("not a raster")
    with pytest.raises(PopulationError, match="pop.tif: cannot read as a raster"):
        apply_population_raster(_homes([(0, 0, 1.0)]), bad, None)


# --------------------------------------------------------------------------------------------
# community totals


def _zones(rows, crs=UTM):
    return gpd.GeoDataFrame({"population": [r[0] for r in rows]},
                            geometry=[shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for _, (a, b, c, d) in rows],
                            crs=crs).to_crs("EPSG:4326")


def test_zone_without_homes_keeps_its_residents():
    """The toy case of issue 14: 105 residents in a zone with homes, 45 in one without.
    Before, 150 went in and 105 came out."""
    homes = _homes([(10, 10, 1.0), (20, 20, 4.0), (900, 900, 7.0)])
    zones = _zones([(105, (0, 0, 100, 100)), (45, (200, 0, 300, 100))])
    out, info = apply_population(homes, zones, "population", "zones.geojson")
    pop = out[col.POPULATION].to_numpy()
    np.testing.assert_allclose(pop[:2], [21, 84])            # 105 split 1:4
    assert pop[2] == 7.0                                      # outside every zone: kept
    assert out.source.iloc[3] == "zone" and pop[3] == pytest.approx(45)
    assert zones.to_crs(UTM).geometry.iloc[1].contains(out.geometry.iloc[3])
    assert pop[:2].sum() + pop[3] == pytest.approx(150)      # 150 in, 150 out
    assert info["zones_total"] == pytest.approx(150) and info["stand_in_homes"] == 1
    assert info["homes_outside"] == 1 and info["residents_outside"] == 7.0


def test_zones_off_the_study_area_are_left_out_and_an_empty_zone_gets_a_stand_in():
    homes = _homes([(10, 10, 1.0), (60, 60, 1.0)])
    zones = _zones([(30, (0, 0, 100, 100)), (500, (100, 100, 150, 150)), (80, (5000, 0, 5100, 100))])
    region = shapely.box(X0 - 10, Y0 - 10, X0 + 200, Y0 + 200)
    out, info = apply_population(homes, zones, "population", "z", region)
    pop = out[col.POPULATION].to_numpy()
    # both homes lie in zone 0; zone 1 (touching it at a corner) has none and gets a stand-in;
    # zone 2 misses the study area (overlapping zones are refused: test_population_overlap.py)
    np.testing.assert_allclose(pop, [15, 15, 500])
    assert region.contains(out.geometry.iloc[2])
    assert info["zones_off_area"] == 1 and info["residents_off_area"] == 80
    assert pop.sum() == pytest.approx(info["zones_total"])


def test_a_zone_crossing_the_study_area_brings_the_residents_of_its_part_inside():
    """The tester's zone, half beyond the boundary: its 133 homes inside got all 10,000
    residents (the same homes got 3,896 in a run whose boundary held the whole zone)."""
    from lifecircle.core.homes import population_notes

    homes = _homes([(10, 10, 1.0), (60, 60, 3.0)])
    zones = _zones([(1000, (0, 0, 200, 100)), (40, (0, 100, 90, 200))])
    region = shapely.box(X0 - 10, Y0 - 10, X0 + 100, Y0 + 300)
    out, info = apply_population(homes, zones, "population", "z", region, clipped=region)
    pop = out[col.POPULATION].to_numpy()
    np.testing.assert_allclose(pop[:2], [125, 375])          # half the zone's area is inside
    assert pop[2] == pytest.approx(40)                        # the zone wholly inside: all of it
    assert info["zones_crossing"] == 1 and info["residents_beyond_edge"] == pytest.approx(500)
    assert "500 residents beyond the edge" in " ".join(population_notes(info, "en"))
    assert "范围外约 500 人" in " ".join(population_notes(info, "zh"))
    # a digitising sliver beyond the edge (under 1 %) is no crossing
    out, info = apply_population(homes, _zones([(1000, (0, 0, 100.5, 100))]), "population", "z", region,
                                 clipped=region)
    assert out[col.POPULATION].sum() == pytest.approx(1000) and info["zones_crossing"] == 0


def test_zone_file_matching_no_home_is_refused():
    homes = _homes([(10, 10, 1.0)])
    with pytest.raises(PopulationError, match="far.geojson: none of its 1 zone"):
        apply_population(homes, _zones([(10, (5000, 0, 5100, 100))]), "population", "far.geojson")
    with pytest.raises(TableError, match="no 'residents' column"):
        apply_population(homes, _zones([(10, (0, 0, 100, 100))]), "residents", "z")


def test_implausible_counts_are_refused_not_spread(tmp_path):
    """1e30 residents in a 100 m zone (or cell) is a unit or data error: refused with the rows,
    while dense but real counts (5,000 in a 100 m cell of a geographic raster) pass."""
    homes = _homes([(10, 10, 1.0), (60, 60, 1.0)])
    with pytest.raises(TableError, match=r"residents per m² of its zone in row\(s\) 2 "):
        apply_population(homes, _zones([(30, (0, 0, 100, 100)), (1e30, (0, 0, 100, 100))]), "population", "z")
    tif = tmp_path / "pop.tif"
    _write_raster(tif, [[1e30]], X0, Y0 + 100, 100.0, UTM)
    with pytest.raises(PopulationError, match="pop.tif: 1 cell.* residents per m²"):
        apply_population_raster(homes, tif, None)
    # WorldPop style: degrees, 3 arc-seconds (~90 x 80 m here), a dense but real 5,000 per cell
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(X0 + 10, Y0 + 10)
    geo = tmp_path / "geo.tif"
    cell = 3 / 3600
    _write_raster(geo, [[5000.0]], lon - cell / 2, lat + cell / 2, cell, "EPSG:4326")
    out, _ = apply_population_raster(homes.iloc[:1], geo, None)
    assert out[col.POPULATION].sum() == pytest.approx(5000)


# --------------------------------------------------------------------------------------------
# through analyze and the command line (a 4 x 4 block synthetic district)


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "grid.osm"
    path.write_text(grid_osm(), encoding="utf-8")
    return path


def test_analyze_with_a_raster_sets_the_total_and_reports_it(grid_file, tmp_path):
    # one cell per block (0.0009°), plus a ring of cells outside the street grid that must not
    # count (no home, centre outside the study area)
    inner = 10.0 * np.arange(1, 17).reshape(4, 4)[::-1]   # row 0 = north
    values = np.full((6, 6), 1000.0)
    values[1:5, 1:5] = inner
    tif = tmp_path / "worldpop.tif"
    _write_raster(tif, values, LON0 - STEP, LAT0 + 5 * STEP, STEP, "EPSG:4326")
    r = lifecircle.analyze(grid_file, population_raster=tif)
    assert r.homes[col.POPULATION].sum() == pytest.approx(inner.sum())     # 1,360
    assert r.population_info["source"] == "population raster"
    assert r.population_info["stand_in_homes"] == 0
    assert any("1,360 residents; source: population raster" in n for n in r.notes)
    r.save(tmp_path / "out", map_html=False)
    meta = json.loads((tmp_path / "out" / "meta.json").read_text(encoding="utf-8"))
    assert meta["population"]["total"] == pytest.approx(1360)
    assert meta["population"]["source"] == "population raster"
    back = lifecircle.load(tmp_path / "out")
    assert back.population_info["source"] == "population raster"


def test_cli_refuses_a_population_file_matching_no_home(grid_file, tmp_path):
    from lifecircle.cli import app

    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame({"population": [100]}, geometry=[shapely.box(0, 0, 0.01, 0.01)],
                     crs="EPSG:4326").to_file(far)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(grid_file), "--out", str(out),
                                   "--population", str(far)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if "error" in ln]
    assert len(lines) == 1 and "far.geojson" in lines[0] and "none of its 1 zone" in lines[0]
    assert "Traceback" not in res.output and not out.exists()


def test_cli_community_totals_keep_every_resident(grid_file, tmp_path):
    from lifecircle.cli import app

    # zone A covers the south-west block (one home), zone B a street corner area with no home
    zones = tmp_path / "zones.geojson"
    a = shapely.box(LON0, LAT0, LON0 + STEP, LAT0 + STEP)
    b = shapely.box(LON0 + 3.5 * STEP, LAT0 + 0.5 * STEP, LON0 + 3.6 * STEP, LAT0 + 0.6 * STEP)
    gpd.GeoDataFrame({"residents": [105, 45]}, geometry=[a, b], crs="EPSG:4326").to_file(zones)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(grid_file), "--out", str(out), "--population",
                                   str(zones), "--population-column", "residents"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    info = meta["population"]
    assert info["source"] == "community totals" and info["stand_in_homes"] == 1
    assert info["zones_total"] == 150
    # 15 blocks outside both zones keep their estimate: 150 + their residents
    assert info["total"] == pytest.approx(150 + info["residents_outside"])
    assert info["homes_outside"] == 15
    assert "(community totals)" in res.output


def test_community_totals_rescale_a_raster(grid_file, tmp_path):
    # a raster of 10 people per block, then one zone of 500 over the south-west 2 x 2 blocks
    tif = tmp_path / "pop.tif"
    _write_raster(tif, np.full((4, 4), 10.0), LON0, LAT0 + 4 * STEP, STEP, "EPSG:4326")
    zone = gpd.GeoDataFrame({"population": [500]}, crs="EPSG:4326",
                            geometry=[shapely.box(LON0, LAT0, LON0 + 2 * STEP, LAT0 + 2 * STEP)])
    r = lifecircle.analyze(grid_file, population_raster=tif, population=zone)
    info = r.population_info
    assert info["source"] == "community totals" and info["over"] == "population raster"
    assert info["homes_outside"] == 12 and info["residents_outside"] == pytest.approx(120)
    assert r.homes[col.POPULATION].sum() == pytest.approx(620)
    assert any("keep their population raster figure (120 residents)" in n for n in r.notes)


def test_cli_names_the_source_in_chinese(grid_file, tmp_path):
    from lifecircle.cli import app

    tif = tmp_path / "pop.tif"
    _write_raster(tif, np.full((4, 4), 10.0), LON0, LAT0 + 4 * STEP, STEP, "EPSG:4326")
    res = CliRunner().invoke(app, ["analyze", str(grid_file), "--out", str(tmp_path / "out"),
                                   "--population-raster", str(tif), "--lang", "zh"])
    assert res.exit_code == 0, res.output
    assert "160 (人口栅格)" in res.output


def test_zones_in_an_area_without_mapped_buildings_become_stand_in_homes():
    """A roads-only extract has no homes: community totals inside the study area each become a
    stand-in home (as --help says); zones off the area are still refused."""
    homes = _homes([(10, 10, 1.0)]).iloc[:0]
    zones = _zones([(120, (0, 0, 100, 100)), (80, (200, 0, 300, 100))])
    region = shapely.box(X0 - 10, Y0 - 10, X0 + 400, Y0 + 200)
    out, info = apply_population(homes, zones, "population", "z", region)
    assert len(out) == 2 and (out.source == "zone").all()
    np.testing.assert_allclose(sorted(out[col.POPULATION]), [80, 120])
    assert info["stand_in_homes"] == 2 and info["zones_with_homes"] == 0
    with pytest.raises(PopulationError, match="none of its 1 zone"):
        apply_population(homes, _zones([(10, (5000, 0, 5100, 100))]), "population", "z", region)
