"""Facility tables (Amap / Baidu / own) and merging them with OSM facilities.

The Amap-style table is built from REAL OSM facility positions of the Nanjing Xinjiekou
extract, shifted forward to GCJ-02 as Amap would publish them, so reading it back must land on
the OSM positions again.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from lifecircle.errors import InputFileError, TableError
from lifecircle.io import chinacoords as cc
from lifecircle.io.poitable import (
    load_poi_mapping,
    merge_facilities,
    normalize_name,
    read_poi_table,
)

GEOD = Geod(ellps="WGS84")
OSM_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osm"
NANJING_PBF = OSM_DIR / "china" / "nanjing_xinjiekou_2021.osm.pbf"

# OSM tag -> (lifecircle category, Amap typecode [R] in data/poi_mapping.yaml)
OSM_TO_AMAP = {
    ("amenity", "restaurant"): ("restaurant", "050100"),
    ("amenity", "fast_food"): ("restaurant", "050300"),
    ("amenity", "cafe"): ("cafe_teahouse", "050500"),
    ("amenity", "bank"): ("bank", "160100"),
    ("amenity", "pharmacy"): ("pharmacy", "090601"),
    ("amenity", "police"): ("police", "130501"),
    ("amenity", "toilets"): ("public_toilet", "200300"),
    ("amenity", "hospital"): ("hospital", "090100"),
    ("amenity", "library"): ("library", "140500"),
    ("amenity", "post_office"): ("post_office", "070400"),
    ("shop", "supermarket"): ("supermarket", "060400"),
    ("shop", "convenience"): ("convenience_store", "060200"),
    ("shop", "mall"): ("mall", "060100"),
    ("shop", "department_store"): ("mall", "060102"),
}


def metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture(scope="module")
def osm_facilities() -> gpd.GeoDataFrame:
    """OSM amenity/shop facilities of Nanjing Xinjiekou as points with categories (WGS-84)."""
    if not NANJING_PBF.is_file():
        pytest.skip(f"shared OSM extract not found at {NANJING_PBF}")
    pyrosm = pytest.importorskip("pyrosm")
    pois = pyrosm.OSM(str(NANJING_PBF)).get_pois(custom_filter={"amenity": True, "shop": True})
    rows = []
    for _, poi in pois.iterrows():
        for key in ("amenity", "shop"):
            hit = OSM_TO_AMAP.get((key, poi.get(key)))
            if hit:
                geom = poi.geometry
                point = geom if geom.geom_type == "Point" else geom.representative_point()
                name = poi.get("name")
                rows.append({
                    "category": hit[0],
                    "typecode": hit[1],
                    "name": name if isinstance(name, str) else "",
                    "osm_id": int(poi["id"]),
                    "geometry": point,
                })
                break
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    assert len(gdf) > 100  # 162 facilities of these kinds in the 2021 extract
    return gdf


def amap_frame(osm: gpd.GeoDataFrame) -> pd.DataFrame:
    """An Amap-style POI export: Chinese headers, GCJ-02 coordinates, typecodes."""
    lon, lat = cc.wgs84_to_gcj02(osm.geometry.x.to_numpy(), osm.geometry.y.to_numpy())
    return pd.DataFrame({
        "名称": osm["name"].to_numpy(),
        "经度": lon,
        "纬度": lat,
        "类型编码": osm["typecode"].to_numpy(),
        "地址": "南京市",
    })


def check_read_back(table: gpd.GeoDataFrame, osm: gpd.GeoDataFrame) -> None:
    assert len(table) == len(osm)
    assert table.crs.to_epsg() == 4326
    assert list(table.columns[:5]) == ["category", "name", "capacity", "source", "row"]
    assert table["row"].tolist() == list(range(2, len(osm) + 2))     # file lines: the header is 1
    assert (table["category"].to_numpy() == osm["category"].to_numpy()).all()
    assert (table["capacity"] == 1.0).all()
    d = metres(table.geometry.x.to_numpy(), table.geometry.y.to_numpy(),
               osm.geometry.x.to_numpy(), osm.geometry.y.to_numpy())
    assert np.max(d) < 0.5
    assert table.attrs["dropped"] == []


def test_amap_csv_back_to_osm_positions(osm_facilities, tmp_path):
    path = tmp_path / "amap_pois.csv"
    amap_frame(osm_facilities).to_csv(path, index=False, encoding="utf-8")
    table = read_poi_table(path, crs="gcj02")
    check_read_back(table, osm_facilities)
    assert (table["source"] == "table:amap_pois.csv").all()
    # read as if it were WGS-84: every point is off by the GCJ offset, hundreds of metres
    wrong = read_poi_table(path, crs="wgs84")
    d = metres(wrong.geometry.x.to_numpy(), wrong.geometry.y.to_numpy(),
               osm_facilities.geometry.x.to_numpy(), osm_facilities.geometry.y.to_numpy())
    assert d.min() > 100


def test_amap_xlsx_back_to_osm_positions(osm_facilities, tmp_path):
    path = tmp_path / "amap_pois.xlsx"
    frame = amap_frame(osm_facilities)
    # a spreadsheet often stores typecodes as numbers and loses the leading zero
    frame["类型编码"] = [int(c) if i % 2 else c for i, c in enumerate(frame["类型编码"])]
    frame.to_excel(path, index=False)
    table = read_poi_table(path, crs="GCJ-02")
    check_read_back(table, osm_facilities)
    assert (table["source"] == "table:amap_pois.xlsx").all()


def test_merge_with_osm_has_no_doubles(osm_facilities, tmp_path):
    path = tmp_path / "amap_pois.csv"
    amap_frame(osm_facilities).to_csv(path, index=False)
    table = read_poi_table(path, crs="gcj02")
    osm = osm_facilities[["category", "name", "geometry"]]
    merged = merge_facilities(osm, table)
    assert len(merged) == len(osm)
    assert (merged["source"] == "osm").all()
    assert len(merged.attrs["duplicates"]) == len(table)
    assert merged.crs.to_epsg() == 4326
    # a facility the table has and OSM lacks is kept: 300 m north of a real bank
    extra = table.iloc[[0]].copy()
    extra["geometry"] = [shapely.Point(table.geometry.x.iloc[0], table.geometry.y.iloc[0] + 0.0027)]
    extra["name"] = "新开的店"
    more = merge_facilities(osm, pd.concat([table, extra], ignore_index=True))
    assert len(more) == len(osm) + 1
    assert more["source"].iloc[-1] == "table:amap_pois.csv"
    assert more["name"].iloc[-1] == "新开的店"


def test_merge_rules_distance_name_category():
    base_lon, base_lat = 118.78, 32.04
    dlat_per_m = 1.0 / 111_000.0
    osm = gpd.GeoDataFrame(
        {"category": ["pharmacy", "bank"], "name": ["老百姓大药房(新街口店)", "中国银行"]},
        geometry=[shapely.Point(base_lon, base_lat), shapely.Point(base_lon + 0.01, base_lat)],
        crs="EPSG:4326",
    )

    def at(m):
        return shapely.Point(base_lon, base_lat + m * dlat_per_m)

    table = gpd.GeoDataFrame(
        {
            "category": ["pharmacy", "pharmacy", "pharmacy", "bank", "pharmacy", "pharmacy"],
            "name": ["老百姓大药房", "其它药房", "", "中国银行", "老百姓大药房", "国大药房"],
            "capacity": [2.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "source": "table:t.csv",
            "row": [1, 2, 3, 4, 5, 6],
        },
        geometry=[at(60), at(60), at(20), at(5), at(150), at(25)],
        crs="EPSG:4326",
    )
    merged = merge_facilities(osm, table, distance_m=30.0)
    kept_rows = merged.loc[merged["source"] != "osm", "row"].astype(int).tolist()
    # 1: same name 60 m (< 90 m) -> duplicate; 2: other name 60 m -> kept; 3: no name, 20 m ->
    # duplicate; 4: bank 5 m from an OSM pharmacy -> kept (other category); 5: same name but
    # 150 m -> kept; 6: other name 25 m -> duplicate (same category within 30 m)
    assert kept_rows == [2, 4, 5]
    reasons = {d["row"]: d["reason"] for d in merged.attrs["duplicates"]}
    assert set(reasons) == {1, 3, 6}
    assert "name" in reasons[1] and "within 30 m" in reasons[3]
    assert merged["capacity"].tolist()[:2] == [1.0, 1.0]  # OSM rows get the default capacity
    # a bigger radius swallows row 2 (60 m) and row 5 (same name, 150 m < 3 x 70 m) as well;
    # the metric CRS can be chosen
    wide = merge_facilities(osm, table, distance_m=70.0, metric_crs="cgcs2000")
    assert sorted(wide.loc[wide["source"] != "osm", "row"].astype(int)) == [4]


def test_merge_with_empty_inputs():
    osm = gpd.GeoDataFrame({"category": ["bank"], "name": ["x"]},
                           geometry=[shapely.Point(118.78, 32.04)], crs="EPSG:4326")
    empty = gpd.GeoDataFrame({"category": [], "name": []}, geometry=[], crs="EPSG:4326")
    assert len(merge_facilities(osm, empty)) == 1
    out = merge_facilities(empty, osm.assign(source="table:a.csv"))
    assert len(out) == 1 and out["source"].iloc[0] == "table:a.csv"


def test_normalize_name():
    assert normalize_name("老百姓大药房（新街口店）") == normalize_name("老百姓 大药房")
    assert normalize_name("ＫＦＣ") == "kfc"
    assert normalize_name(None) == "" and normalize_name(float("nan")) == ""


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_a_type_column_takes_category_ids_and_names(tmp_path):
    """A column headed ``type`` (or 类型) holding category ids, names, Amap codes or Baidu
    categories: each read as what it is (category ids were refused as "Baidu category ...
    maps to no category", though --help offers "the type as a category id")."""
    from lifecircle.core.profiles import load_profile

    path = write_csv(tmp_path / "typed.csv", [
        "name,lng,lat,type",
        "一小,118.78,32.04,primary_school",       # a category id
        "一园,118.781,32.041,幼儿园",              # a category's Chinese name
        "快餐,118.782,32.042,050100",             # an Amap code
        "二园,118.783,32.043,教育培训;幼儿园",      # a Baidu category
        "坏,118.784,32.044,no_such_thing",        # none of them
    ])
    table = read_poi_table(path, profile=load_profile("default"))
    assert table["row"].tolist() == [2, 3, 4, 5]
    assert table["category"].tolist() == ["primary_school", "kindergarten", "restaurant", "kindergarten"]
    assert [d["row"] for d in table.attrs["dropped"]] == [6]


def test_bad_rows_are_dropped_with_row_numbers(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", [
        "name,lng,lat,typecode,category,capacity",
        "肯德基,118.785,32.045,050100,,",                  # 2 ok
        "坏经度,abc,32.04,050100,,",                        # 3 non-numeric longitude
        "坏纬度,118.78,95.5,050100,,",                      # 4 latitude out of range
        "加油站,118.78,32.04,010101,,",                     # 5 typecode maps to nothing
        "自定义,118.78,32.04,,no_such_category,",           # 6 unknown category id
        "社区公园,118.781,32.041,,park,500",                # 7 ok, explicit category + capacity
        ",,,,,",                                            # 8 blank row: skipped silently
        "无类型,118.78,32.04,,,",                           # 9 no type
        "容量坏,118.78,32.04,050100,,-3",                   # 10 bad capacity
        "多编码,118.78,32.04,999999|060400,,",              # 11 Amap multi-code: first that maps
        "零点,0,0,050100,,",                                # 12 placeholder position
        "短码,118.78,32.04,5010,,",                         # 13 not a 6-digit code
    ])
    table = read_poi_table(path)
    assert table["row"].tolist() == [2, 7, 11]
    assert table["category"].tolist() == ["restaurant", "park", "supermarket"]
    assert table["capacity"].tolist() == [1.0, 500.0, 1.0]
    dropped = {d["row"]: d["reason"] for d in table.attrs["dropped"]}
    assert sorted(dropped) == [3, 4, 5, 6, 9, 10, 12, 13]
    assert "abc" in dropped[3]
    assert "95.5" in dropped[4] and "range" in dropped[4]
    assert "010101" in dropped[5]
    assert "no_such_category" in dropped[6]
    assert "type" in dropped[9]
    assert "capacity" in dropped[10]
    assert "0,0" in dropped[12]
    assert "6-digit" in dropped[13]
    # WGS-84 input stays where it is
    assert table.geometry.iloc[0].x == 118.785 and table.geometry.iloc[0].y == 32.045


def test_profile_limits_categories(tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        "name,lng,lat,typecode",
        "a,118.78,32.04,050100",
        "b,118.78,32.04,160100",
    ])
    table = read_poi_table(path, profile=["restaurant"])
    assert table["category"].tolist() == ["restaurant"]
    assert "not in the profile" in table.attrs["dropped"][0]["reason"]

    class Profile:
        categories = {"bank": object()}

    assert read_poi_table(path, profile=Profile())["category"].tolist() == ["bank"]


def test_no_usable_row_raises_with_rows(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        "name,lng,lat,typecode",
        "a,x,32.04,050100",
        "b,118.78,32.04,010101",
    ])
    with pytest.raises(TableError) as exc:
        read_poi_table(path)
    assert [r["row"] for r in exc.value.rows] == [2, 3]
    assert "bad.csv" in str(exc.value) and "row 2" in str(exc.value)


def test_missing_columns_name_the_columns(tmp_path):
    path = write_csv(tmp_path / "nocoords.csv", ["名称,地址,类型编码", "肯德基,新街口,050100"])
    with pytest.raises(TableError) as exc:
        read_poi_table(path)
    msg = str(exc.value)
    assert "nocoords.csv" in msg
    assert "'名称'" in msg and "'地址'" in msg and "'类型编码'" in msg  # columns found
    assert "经度" in msg and "纬度" in msg and "location" in msg      # accepted names
    path = write_csv(tmp_path / "notype.csv", ["名称,经度,纬度", "肯德基,118.78,32.04"])
    with pytest.raises(TableError, match="type"):
        read_poi_table(path)


def test_missing_and_unreadable_files(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputFileError) as exc:
        read_poi_table(missing)
    assert str(missing) in str(exc.value) and not isinstance(exc.value, TableError)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a zip file")
    with pytest.raises(InputFileError, match="broken.xlsx"):
        read_poi_table(broken)
    with pytest.raises(InputFileError, match=r"\.xls"):
        (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
        read_poi_table(tmp_path / "old.xls")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TableError, match="empty"):
        read_poi_table(empty)
    header_only = write_csv(tmp_path / "header.csv", ["name,lng,lat,typecode"])
    with pytest.raises(TableError, match="no data rows"):
        read_poi_table(header_only)


def test_gbk_csv_reads(tmp_path):
    path = write_csv(tmp_path / "gbk.csv", [
        "名称,经度,纬度,类型编码",
        "新街口社区卫生服务中心,118.78,32.04,090300",
        "丰富路社区卫生服务站,118.781,32.041,090300",
        "南京图书馆,118.79,32.043,140500",
    ], encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    table = read_poi_table(path, crs="gcj02")
    assert table["name"].tolist() == ["新街口社区卫生服务中心", "丰富路社区卫生服务站", "南京图书馆"]
    # 0903 诊所 split by the name keyword
    assert table["category"].tolist() == ["community_health_centre", "community_health_station", "library"]


def test_utf8_bom_tab_separated_and_location_column(tmp_path):
    w = (118.7801, 32.0402)
    g = cc.wgs84_to_gcj02(*w)
    path = tmp_path / "amap_api.txt"
    path.write_text(f"name\tlocation\ttypecode\n公交站\t{g[0]!r},{g[1]!r}\t150700|150702\n"
                    f"坏位置\tnot-a-location\t150700\n", encoding="utf-8-sig")
    table = read_poi_table(path, crs="gcj02")
    assert table["category"].tolist() == ["bus_stop"]
    assert metres(table.geometry.x.iloc[0], table.geometry.y.iloc[0], *w) < 0.5
    assert table.attrs["dropped"][0]["row"] == 3
    assert "location" in table.attrs["dropped"][0]["reason"]


def test_baidu_table_in_bd09(tmp_path):
    pts = [(118.7801, 32.0402), (118.7851, 32.0452), (118.7751, 32.0352)]
    bd = [cc.wgs84_to_bd09(*p) for p in pts]
    path = write_csv(tmp_path / "baidu.csv", [
        "名称,lng,lat,tag",
        f"游府西街小学,{bd[0][0]!r},{bd[0][1]!r},教育培训;小学",
        f"洪武路社区卫生服务中心,{bd[1][0]!r},{bd[1][1]!r},医疗;社区医疗",
        f"某卫生服务站,{bd[2][0]!r},{bd[2][1]!r},医疗；社区医疗",
    ])
    table = read_poi_table(path, crs="BD-09")
    assert table["category"].tolist() == ["primary_school", "community_health_centre",
                                          "community_health_station"]
    for geom, p in zip(table.geometry, pts, strict=True):
        assert metres(geom.x, geom.y, *p) < 0.5


def test_generic_type_column_and_explicit_columns(tmp_path):
    path = write_csv(tmp_path / "generic.csv", [
        "店名,POINT_X,POINT_Y,type",
        "a,118.78,32.04,141203",
        "b,118.78,32.04,购物;超市",
    ])
    table = read_poi_table(path, columns={"lon": "POINT_X", "lat": "POINT_Y"})
    assert table["category"].tolist() == ["primary_school", "supermarket"]
    assert table["name"].tolist() == ["a", "b"]
    with pytest.raises(TableError, match="nope"):
        read_poi_table(path, columns={"lon": "nope", "lat": "POINT_Y"})


def test_custom_mapping_dict(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["name,lng,lat,typecode", "x,118.78,32.04,990101"])
    mapping = {"categories": ["thing"], "amap": [{"prefix": "99", "category": "thing"}]}
    assert read_poi_table(path, mapping=mapping)["category"].tolist() == ["thing"]


def test_shipped_mapping_is_consistent():
    m = load_poi_mapping()
    expected = {
        "convenience_store", "fresh_market", "supermarket", "mall", "pharmacy", "restaurant",
        "bank", "post_office", "personal_services", "public_toilet", "waste_recycling", "office",
        "employment_service", "coworking_space", "business_area", "kindergarten", "childcare",
        "primary_school", "middle_school", "community_health_station", "community_health_centre",
        "hospital", "elderly_daycare", "nursing_home", "community_service_station",
        "community_service_centre", "police", "bus_stop", "rail_station", "bicycle_parking",
        "bicycle_rental", "park", "playground", "outdoor_fitness", "sports_pitch",
        "sports_centre", "gym", "library", "culture_venue", "community_centre", "public_square",
        "cafe_teahouse", "community_canteen", "senior_activity", "youth_activity",
    }
    assert set(m.categories) == expected
    used = {e.category for e in m.amap} | {e.category for e in m.baidu}
    assert used == expected  # every category is reachable from Amap or Baidu types
    # longest prefix wins; a name keyword beats a bare code
    assert m.amap_category("050500") == "cafe_teahouse"
    assert m.amap_category("050100") == "restaurant"
    assert m.amap_category("050100", "长者食堂") == "community_canteen"
    assert m.amap_category("141204", "金色童年托育中心") == "childcare"
    assert m.amap_category("141204", "金色童年幼儿园") == "kindergarten"
    assert m.amap_category("090300", "张医生诊所") is None
    assert m.amap_category("010101") is None
    assert m.baidu_category("教育培训;小学") == "primary_school"
    assert m.baidu_category("医疗;诊所", "某社区卫生服务中心") == "community_health_centre"
    assert math.isclose(len(m.categories), 45)


def test_profile_object_and_its_declared_codes(tmp_path):
    """A profile's categories may declare amap_typecodes / baidu_categories of their own."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cat:
        id: str
        amap_typecodes: tuple = ()
        baidu_categories: tuple = ()

    class Profile:
        categories = [Cat("clinic", ("0903",), ("医疗;诊所",)), Cat("restaurant"),
                      Cat("community_health_centre")]

    path = write_csv(tmp_path / "clinics.csv", [
        "name,lng,lat,typecode,tag",
        "张医生诊所,118.78,32.04,090300,",
        "新街口社区卫生服务中心,118.78,32.04,090300,",
        "李医生诊所,118.78,32.04,,医疗;诊所",
        "肯德基,118.78,32.04,050100,",
        "银行,118.78,32.04,160100,",
    ])
    table = read_poi_table(path, profile=Profile())
    # the name keyword still beats the profile's bare code
    assert table["category"].tolist() == ["clinic", "community_health_centre", "clinic", "restaurant"]
    assert [d["row"] for d in table.attrs["dropped"]] == [6]
    # without the profile, plain 诊所 maps to nothing
    plain = read_poi_table(path)
    assert plain["row"].tolist() == [3, 5, 6]


def test_real_default_profile_when_available(tmp_path):
    profiles = pytest.importorskip("lifecircle.core.profiles")
    prof = profiles.load_profile("default")
    path = write_csv(tmp_path / "d.csv", ["name,lng,lat,typecode", "x,118.78,32.04,141203"])
    table = read_poi_table(path, profile=prof)
    assert table["category"].tolist() == ["primary_school"]


def test_chinese_category_names_work_where_an_id_does(tmp_path):
    """A planner's table names the category in Chinese (设施类别 = 幼儿园, or 类别 = 社区食堂)
    and --complete takes 社区食堂,养老院: all mean the profile's ids."""
    from lifecircle.core.profiles import load_profile
    from lifecircle.errors import OptionError
    from lifecircle.pipeline import _complete_ids

    prof = load_profile("default")
    path = write_csv(tmp_path / "zh.csv", [
        "名称,经度,纬度,设施类别",
        "甲幼儿园,118.78,32.04,幼儿园",
        "乙公园,118.781,32.041,park",
        "丙,118.782,32.042,没有这种类别",
    ])
    table = read_poi_table(path, profile=prof)
    assert table["category"].tolist() == ["kindergarten", "park"]
    assert "没有这种类别" in table.attrs["dropped"][0]["reason"]
    path = write_csv(tmp_path / "zh2.csv", ["名称,经度,纬度,类别", "丁食堂,118.78,32.04,社区食堂"])
    assert read_poi_table(path, profile=prof)["category"].tolist() == ["community_canteen"]
    assert _complete_ids(prof, "社区食堂，养老院,park") == ("community_canteen", "nursing_home", "park")
    with pytest.raises(OptionError, match="不存在的类别"):
        _complete_ids(prof, "不存在的类别")


def test_reasons_name_the_file_line_and_the_column_as_named(tmp_path):
    """A generic 类别 column: its unknown value is reported on the line it sits on in the file
    (the header is line 1, as the site reader counts) and under the column's own name, not as
    a "百度分类" the file never said."""
    from lifecircle.core.profiles import load_profile

    path = write_csv(tmp_path / "poi.csv", ["名称,类别,经度,纬度", "一园,幼儿园,118.78,32.04",
                                             "居委会,社区服务站,118.781,32.041"])
    table = read_poi_table(path, profile=load_profile("default"), lang="zh")
    assert table["row"].tolist() == [2]
    assert table.attrs["dropped"] == [{"row": 3, "reason": "类别 '社区服务站' maps to no category",
                                       "reason_zh": "类别 '社区服务站' 对应不到任何类别"}]
    path = write_csv(tmp_path / "baidu.csv", ["name,lng,lat,百度分类", "x,118.78,32.04,不存在;的分类"])
    with pytest.raises(TableError) as exc:
        read_poi_table(path)
    assert exc.value.message("zh").endswith("第 2 行：百度分类 '不存在;的分类' 对应不到任何类别")
