"""One facility mapped twice is counted once: a node inside an area of its category (names
that agree, or one missing where the node is the area's only one), a facility table's
repeated row; genuinely different facilities stay (a restaurant of another name in a food
court, the offices of an unnamed office building, two kindergartens of different names)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from conftest import shared_file
from shapely.geometry import Point, box

import lifecircle
from lifecircle.core.classify import classify_features
from lifecircle.io.poitable import merge_facilities
from lifecircle.io.sources import read_osm

LON, LAT, D = 9.52, 47.14, 0.0004          # Liechtenstein, ~30 m


def _gdf(rows):
    return gpd.GeoDataFrame({"osm_type": [r[0] for r in rows], "osm_id": [r[1] for r in rows],
                             "tags": [r[2] for r in rows]}, geometry=[r[3] for r in rows], crs="EPSG:4326")


def _ids(out, cat):
    return sorted(out.loc[out.category == cat, "osm_id"])


def test_a_node_inside_an_area_of_its_kind_counts_once():
    cafe, shop, food, office = ({"amenity": "cafe"}, {"shop": "supermarket"},
                                {"amenity": "restaurant"}, {"office": "company"})
    rows = [
        ("way", 1, {**cafe, "name": "Guflina"}, box(LON, LAT, LON + D, LAT + D)),
        ("node", 2, {**cafe, "name": "Café Guflina"}, Point(LON + D / 2, LAT + D / 2)),       # same café
        ("way", 3, shop, box(LON + 0.01, LAT, LON + 0.01 + D, LAT + D)),
        ("node", 4, {**shop, "name": "Sunna Markt"}, Point(LON + 0.01 + D / 2, LAT + D / 2)),  # the same shop
        ("way", 5, {**food, "name": "Food Court Central"}, box(LON + 0.02, LAT, LON + 0.02 + D, LAT + D)),
        ("node", 6, {**food, "name": "Pizzeria Roma"}, Point(LON + 0.02 + D / 2, LAT + D / 2)),  # another one
        ("way", 7, {"building": "office", **office}, box(LON + 0.03, LAT, LON + 0.03 + D, LAT + D)),
        ("node", 8, {**office, "name": "Tringa"}, Point(LON + 0.03 + D / 3, LAT + D / 2)),      # two firms
        ("node", 9, {**office, "name": "Birdlife"}, Point(LON + 0.03 + D / 2, LAT + D / 2)),    # in one building
        ("node", 10, {**cafe, "name": "Café Guflina"}, Point(LON + 2 * D, LAT + D / 2)),      # outside: another
        ("way", 11, {"railway": "station", "name": "Vaduz"}, box(LON + 0.04, LAT, LON + 0.04 + D, LAT + D)),
        ("node", 12, {"railway": "subway_entrance", "name": "Vaduz #2"},                      # where it is entered
         Point(LON + 0.04 + D / 2, LAT + D / 2)),
    ]
    out = classify_features(_gdf(rows))
    assert _ids(out, "cafe_teahouse") == [1, 10]
    assert _ids(out, "supermarket") == [3]
    assert out.loc[out.osm_id == 3, "name"].item() == "Sunna Markt"     # the area takes the name
    assert _ids(out, "restaurant") == [5, 6]
    assert _ids(out, "office") == [7, 8, 9]
    assert _ids(out, "rail_station") == [11, 12]
    assert out.attrs["duplicates_merged"] == 2
    assert _ids(classify_features(_gdf(rows), dedupe_m=None), "cafe_teahouse") == [1, 2, 10]


def test_real_nodes_inside_their_areas():
    # Liechtenstein: node "Café Guflina" in way "Guflina", node "Sunna Markt" in an unnamed
    # shop=supermarket way; Andorra: node "Pyrénées Andorra" in way "C. Commercial Pyrénées Andorra"
    for src, cat, name in (("world/liechtenstein_valhalla.osm.pbf", "cafe_teahouse", "Café Guflina"),
                           ("world/liechtenstein_valhalla.osm.pbf", "supermarket", "Sunna Markt"),
                           ("world/andorra_valhalla_bench.osm.pbf", "mall", "Pyrénées Andorra")):
        data = read_osm(shared_file(src))
        out = classify_features(data.features)
        kept = classify_features(data.features, dedupe_m=None)
        for frame, n in ((kept, 1), (out, 0)):
            rows = frame[(frame.category == cat) & (frame["name"] == name)]
            assert (rows.osm_type == "node").sum() == n, (src, name)


def test_a_tables_repeated_row_counts_once():
    kg = {"category": "kindergarten", "name": "KG A"}
    table = gpd.GeoDataFrame(
        [kg, kg,                                            # pasted twice
         {"category": "kindergarten", "name": None},        # the same place, no name
         {"category": "kindergarten", "name": "KG B"},      # another kindergarten, same building
         {"category": "clinic", "name": "KG A"},            # another category
         kg],                                               # 100 m away: another one
        geometry=[Point(121.474, 31.2401), Point(121.474, 31.2401), Point(121.474000005, 31.2401),
                  Point(121.474, 31.2401), Point(121.474, 31.2401), Point(121.475, 31.2401)],
        crs="EPSG:4326")
    table["row"] = range(2, 8)
    osm = gpd.GeoDataFrame({"category": ["park"], "name": ["P"]}, geometry=[Point(121.48, 31.25)],
                           crs="EPSG:4326")
    merged = merge_facilities(osm, table)
    assert merged.attrs["repeated"] == 2
    assert sorted(merged["row"].dropna().astype(int)) == [2, 5, 6, 7]
    assert {(d["row"], d["repeats"]) for d in merged.attrs["duplicates"]} == {(3, 2), (4, 2)}


def test_the_pipeline_counts_a_repeated_row_once(tmp_path):
    csv = tmp_path / "dup.csv"          # one kindergarten pasted twice, in Xinjiekou (the sample)
    pd.DataFrame([dict(name="KG A", lng=118.7795, lat=32.0425, category="kindergarten")] * 2).to_csv(csv, index=False)
    r = lifecircle.analyze(facilities_table=csv, prepare_map=False)
    assert (r.facilities["name"] == "KG A").sum() == 1
    assert r.homes.filter(like="n15_kindergarten").max().max() <= (r.facilities.category == "kindergarten").sum()
    assert any("duplicate facility mapping" in n for n in r.notes)
