"""Profiles: the shipped YAML files, the loader's checks and error messages, rule semantics."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import pytest

from lifecircle.core.profiles import (
    DIMENSIONS,
    GOALS,
    Category,
    Profile,
    available_profiles,
    load_profile,
    profiles_dir,
)
from lifecircle.errors import LifecircleError, ProfileError

SHIPPED = ("default", "gb50180-2018", "tdt1062-2021")

# The contract other modules and their tests rely on: ids, dimensions and thresholds (minutes)
# of the default profile.
DEFAULT_CONTRACT = {
    "housing": {"convenience_store": 5, "fresh_market": 10, "supermarket": 10, "mall": 10,
                "pharmacy": 5, "restaurant": 10, "bank": 10, "post_office": 15,
                "personal_services": 5, "public_toilet": 5, "waste_recycling": 5},
    "employment": {"office": 15, "employment_service": 15, "coworking_space": 15,
                   "business_area": 15},
    "services": {"kindergarten": 5, "childcare": 5, "primary_school": 10, "middle_school": 15,
                 "community_health_station": 5, "community_health_centre": 15, "hospital": 15,
                 "elderly_daycare": 5, "nursing_home": 15, "community_service_station": 5,
                 "community_service_centre": 15, "police": 15},
    "transport": {"bus_stop": 10, "rail_station": 15, "bicycle_parking": 5, "bicycle_rental": 10},
    "leisure": {"park": 10, "playground": 5, "outdoor_fitness": 5, "sports_pitch": 10,
                "sports_centre": 15, "gym": 10, "library": 15, "culture_venue": 15},
    "social": {"community_centre": 10, "public_square": 10, "cafe_teahouse": 10,
               "community_canteen": 5, "senior_activity": 10, "youth_activity": 10},
}

CONFIDENCE = re.compile(r"\[(V|R|I)\]")


# ------------------------------------------------------------------------------------------
# shipped profiles
# ------------------------------------------------------------------------------------------

def test_available_profiles_lists_the_shipped_files():
    names = available_profiles()
    assert set(SHIPPED) <= set(names)
    assert names == sorted(names)
    assert profiles_dir().joinpath("default.yaml").is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_with_six_dimensions(name):
    p = load_profile(name)
    assert isinstance(p, Profile)
    assert p.name == name
    assert p.dimension_ids == list(DIMENSIONS)
    assert p.speed_kmh == 4.0
    assert p.dimension_cover_share == 0.5
    for d in p.dimensions:
        assert d.categories, f"{name}: dimension {d.id} is empty"
        assert d.name_zh and d.name_en
    for c in p.categories:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.id)
        assert c.name_zh and c.name_en
        assert c.match, c.id
        assert 0 < c.minutes <= 15
        assert all(re.fullmatch(r"\d{2,6}", code) for code in c.amap_typecodes), c.id
        # the profile-wide exclusion of disused/abandoned features reaches every category
        assert any(str(r) == "disused=yes" for r in c.exclude), c.id
    assert len(set(p.category_ids)) == len(p.category_ids)


def test_default_profile_contract_ids_dimensions_thresholds():
    p = load_profile("default")
    assert len(p.categories) >= 40
    got = {d.id: {c.id: c.minutes for c in d.categories} for d in p.dimensions}
    assert got == DEFAULT_CONTRACT
    assert {c.minutes for c in p.categories} <= {5, 10, 15}
    assert p.max_minutes == 15
    for c in p.categories:
        assert isinstance(c.essential, bool)
        assert c.weight == 1
        assert c.source and CONFIDENCE.search(c.source), c.id
    # GB 50180 ▲ facilities are essential, optional extras are not
    assert p.category("kindergarten").essential and p.category("primary_school").essential
    assert not p.category("cafe_teahouse").essential and not p.category("hospital").essential


@pytest.mark.parametrize("name", ["gb50180-2018", "tdt1062-2021"])
def test_standard_profiles_have_tier_radius_requirement_and_source(name):
    p = load_profile(name)
    speed = 4000 / 60  # m/min at 4 km/h
    for c in p.categories:
        assert c.tier in (5, 10, 15), c.id
        assert isinstance(c.required, bool), c.id
        assert c.essential == c.required, c.id
        assert c.source and CONFIDENCE.search(c.source), c.id
        if c.radius_m is not None:
            assert c.minutes == pytest.approx(c.radius_m / speed, abs=0.01), c.id
        else:
            assert c.minutes == c.tier, c.id
    if name == "tdt1062-2021":
        assert {c.goal for c in p.categories} == set(GOALS)
    else:
        assert all(c.goal is None for c in p.categories)


def test_gb50180_values_from_the_standard():
    p = load_profile("gb50180-2018")
    ms, ps, kg = p.category("middle_school"), p.category("primary_school"), p.category("kindergarten")
    assert (ms.tier, ms.radius_m, ms.minutes, ms.required) == (15, 1000, 15, True)
    assert (ps.tier, ps.radius_m, ps.minutes, ps.required) == (10, 500, 7.5, True)
    assert (kg.tier, kg.radius_m, kg.minutes) == (5, 300, 4.5)
    assert p.category("police").required is False and p.category("police").radius_m == 800
    assert p.category("rail_station").minutes == 12
    assert p.category("sports_field_large").min_area_m2 == 3150
    assert p.category("sports_field_medium").min_area_m2 == 1310
    assert p.category("sports_field_small").min_area_m2 == 800
    assert ms.amap_typecodes == ("141202",) and ps.amap_typecodes == ("141203",)
    assert "[V]" in ms.source and "[V]" in ps.source


def test_shared_ids_mean_the_same_dimension_in_every_profile():
    profiles = [load_profile(n) for n in SHIPPED]
    dims: dict[str, set[str]] = {}
    for p in profiles:
        for c in p.categories:
            dims.setdefault(c.id, set()).add(c.dimension)
    mixed = {k: v for k, v in dims.items() if len(v) > 1}
    assert mixed == {}
    gb, tdt = profiles[1], profiles[2]
    for cid in ("kindergarten", "primary_school", "middle_school", "bus_stop", "rail_station",
                "community_health_centre", "community_health_station", "elderly_daycare"):
        assert cid in gb and cid in tdt
    assert tdt.category("community_health_station").radius_m == 500  # TD/T 表A.3
    assert tdt.category("primary_school").goal == "宜学"


# ------------------------------------------------------------------------------------------
# Profile API
# ------------------------------------------------------------------------------------------

def test_profile_convenience_api():
    p = load_profile("default")
    assert p.category_ids[:3] == ["convenience_store", "fresh_market", "supermarket"]
    assert [c.id for c in p.categories] == p.category_ids
    assert p.dimension_of("middle_school") == "services"
    assert p.dimension_of("cafe_teahouse") == "social"
    assert p.name("middle_school") == "初中"
    assert p.name("middle_school", "en").startswith("Middle school")
    assert p.name("social", lang="zh") == "交往"
    assert p.name("transport", lang="en") == "Transport"
    assert p.dimension("leisure").categories[0].id == "park"
    assert "bus_stop" in p and "tram" not in p
    assert len(p) == len(p.category_ids)
    assert isinstance(p.category("bus_stop"), Category)
    with pytest.raises(ProfileError, match="unknown category 'tram'"):
        p.category("tram")
    with pytest.raises(ProfileError):
        p.name("nothing")


def test_loading_is_cached_and_profiles_pickle():
    a, b = load_profile("default"), load_profile("DEFAULT")
    assert a is b
    assert load_profile(a) is a
    c = pickle.loads(pickle.dumps(a))
    assert c == a and c.name == "default"
    assert c.name("park", "en") == a.name("park", "en")


def test_name_prefix_and_path(tmp_path):
    assert load_profile("gb50180").name == "gb50180-2018"
    assert load_profile("GB 50180-2018").name == "gb50180-2018"
    assert load_profile("TD/T 1062").name == "tdt1062-2021"
    assert load_profile("tdt").name == "tdt1062-2021"
    assert load_profile("default").path is None  # shipped: found again by name
    copy = tmp_path / "mine.yaml"
    shutil.copy(profiles_dir() / "default.yaml", copy)
    p = load_profile(copy)
    assert p.category_ids == load_profile("default").category_ids
    assert p.source_path == p.path == str(copy.resolve())
    assert load_profile(str(copy)).category_ids == p.category_ids
    assert load_profile(p.path) is p


def test_unknown_profile_name_lists_the_available_ones():
    with pytest.raises(ProfileError) as e:
        load_profile("chengdu")
    msg = str(e.value)
    assert msg.startswith("chengdu: unknown profile; available: ")
    for n in SHIPPED:
        assert n in msg
    assert isinstance(e.value, LifecircleError)


def test_missing_profile_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ProfileError, match="nope.yaml: profile file not found"):
        load_profile(missing)


# ------------------------------------------------------------------------------------------
# malformed files
# ------------------------------------------------------------------------------------------

TEMPLATE = """\
name: test
dimensions:
  - id: services
    name_zh: 服务
    name_en: Services
    categories:
      - id: kindergarten
        name_zh: 幼儿园
        name_en: Kindergarten
        minutes: 5
        essential: true
        match:
          - {amenity: kindergarten}
      - id: primary_school
        name_zh: 小学
        name_en: Primary school
        minutes: 10
        essential: true
        match:
          - {amenity: school, "name*~": "小学"}
"""


def _write(tmp_path, text, name="bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _error(path) -> str:
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    msg = str(e.value)
    assert msg.startswith(str(path)), msg  # the message names the file first
    assert e.value.source == str(path)
    return msg[len(str(path)):]


def test_template_itself_is_valid(tmp_path):
    p = load_profile(_write(tmp_path, TEMPLATE, "ok.yaml"))
    assert p.category_ids == ["kindergarten", "primary_school"]
    assert p.dimension_ids == ["services"]


@pytest.mark.parametrize("old,new,expected", [
    ("minutes: 10", "minutes: -5",
     "line 14, category #2 'primary_school' in dimension services: minutes must be a positive number (got -5)"),
    ("minutes: 10", "minutes: ten",
     "category #2 'primary_school' in dimension services: minutes must be a positive number (got 'ten')"),
    ("minutes: 10", "minutes: 300", "minutes must be at most 240"),
    ("minutes: 10\n", "", "category #2 'primary_school' in dimension services: minutes is missing"),
    ("        name_en: Primary school\n", "", "category #2 'primary_school' in dimension services: name_en is missing"),
    ("id: primary_school", "id: kindergarten", "duplicate category id 'kindergarten'"),
    ("id: primary_school", "id: Primary School", "id must be snake_case"),
    ('"name*~": "小学"', '"name*~": "小学(["',
     "line 20, category #2 'primary_school' in dimension services: match rule #1: invalid regex for 'name*~'"),
    ('"name*~": "小学"', '"name*": "小学"', "unknown condition form 'name*'"),
    ('"name*~": "小学"', '"name=": "小学"', "unknown condition form 'name='"),
    ('"name*~": "小学"', '"name~~": "小学"', "unknown condition form 'name~~'"),
    ("- id: services", "- id: health", "dimension #1: id must be one of housing, employment, services, transport, leisure, social (got 'health')"),
    ("minutes: 10", "minuts: 10", "unknown key 'minuts'"),
    ("essential: true\n        match:\n          - {amenity: school",
     "essential: yes please\n        match:\n          - {amenity: school", "essential must be true or false"),
    ("minutes: 10", "minutes: 10\n        tier: 7", "tier must be 5, 10 or 15 (got 7)"),
    ("minutes: 10", "minutes: 10\n        goal: 宜玩", "goal must be one of 宜居, 宜业, 宜游, 宜养, 宜学"),
    ("minutes: 10", "minutes: 10\n        amap_typecodes: [141203]", "amap_typecodes: write each code in quotes"),
    ("minutes: 10", "minutes: 10\n        amap_typecodes: [\"14120A\"]", "'14120A' is not 2-6 digits"),
    ('{amenity: school, "name*~": "小学"}', "{}", "match rule #1: empty rule {}"),
    ('{amenity: school, "name*~": "小学"}', "{amenity: }", "condition 'amenity' has no value"),
    ('{amenity: school, "name*~": "小学"}', "amenity=school", "a rule must be a mapping"),
    ('{amenity: school, "name*~": "小学"}', "{amenity: [school, \"*\"]}", "cannot be inside a list"),
    ("        match:\n          - {amenity: school", "        exclude:\n          - {amenity: school",
     "match is missing"),
])
def test_malformed_category(tmp_path, old, new, expected):
    assert old in TEMPLATE
    path = _write(tmp_path, TEMPLATE.replace(old, new, 1) if old != "minutes: 10\n" else
                  TEMPLATE.replace("        minutes: 10\n", "", 1))
    msg = _error(path)
    assert expected in msg, msg


@pytest.mark.parametrize("text,expected", [
    ("", "the file is empty"),
    ("- a\n- b\n", "the top level must be a mapping"),
    ("name: x\n", "dimensions must be a non-empty list"),
    ("name: x\ndimensions:\n  - id: leisure\n    categories: []\n", "dimension #1 (leisure): categories must be a non-empty list"),
    (TEMPLATE.replace("{amenity: school,", "{amenity: school"), "line 20, column 38: YAML syntax error"),
    (TEMPLATE.replace('{amenity: kindergarten}', '{amenity: *}'), 'write "*" and "!" in quotes'),
    (TEMPLATE.replace("    name_zh: 服务", "\tname_zh: 服务"), "YAML syntax error"),
    (TEMPLATE.replace("minutes: 5", "minutes: 5\n        minutes: 6"), "line 11: key 'minutes' is given twice"),
    (TEMPLATE + "  - id: services\n    categories:\n      - {id: x, name_zh: x, name_en: x, minutes: 5, match: [{a: b}]}\n",
     "dimension 'services' appears twice"),
    ("name: x\nspeed_kmh: 0\ndimensions: []\n", "speed_kmh must be a positive number"),
    ("name: x\ndimension_cover_share: 2\ndimensions: []\n", "dimension_cover_share must be between 0 and 1"),
    ("name: x\ncolour: red\ndimensions: []\n", "top level: unknown key 'colour'"),
])
def test_malformed_file(tmp_path, text, expected):
    msg = _error(_write(tmp_path, text))
    assert expected in msg, msg


def test_yaml_syntax_error_reports_the_line(tmp_path):
    broken = TEMPLATE.replace('"name*~": "小学"}', '"name*~": "小学"')
    msg = _error(_write(tmp_path, broken))
    assert re.search(r"line \d+, column \d+: YAML syntax error", msg), msg


def test_not_utf8(tmp_path):
    p = tmp_path / "gbk.yaml"
    p.write_bytes(TEMPLATE.encode("gbk"))
    assert "not UTF-8" in _error(p)


def test_minutes_derived_from_radius_or_tier(tmp_path):
    text = TEMPLATE.replace("minutes: 5", "radius_m: 300").replace("minutes: 10", "tier: 10")
    p = load_profile(_write(tmp_path, text, "derived.yaml"))
    assert p.category("kindergarten").minutes == pytest.approx(4.5)
    assert p.category("kindergarten").radius_m == 300
    assert p.category("primary_school").minutes == 10
    # a slower walking speed stretches the radius-derived threshold
    slow = load_profile(_write(tmp_path, "speed_kmh: 3.0\n" + text, "slow.yaml"))
    assert slow.category("kindergarten").minutes == pytest.approx(6.0)


def test_extension_keys_are_ignored(tmp_path):
    text = TEMPLATE.replace("minutes: 5", "minutes: 5\n        x-reviewed: 2024-05-01")
    assert load_profile(_write(tmp_path, text, "ext.yaml")).category("kindergarten").minutes == 5


# ------------------------------------------------------------------------------------------
# rule semantics
# ------------------------------------------------------------------------------------------

RULES = """\
name: rules
exclude:
  - {disused: yes}
dimensions:
  - id: services
    categories:
      - id: eq
        name_zh: 等于
        name_en: eq
        minutes: 5
        match: [{amenity: cafe}]
      - id: inlist
        name_zh: 列表
        name_en: in
        minutes: 5
        match: [{shop: [bakery, pastry]}]
      - id: present
        name_zh: 存在
        name_en: present
        minutes: 5
        match: [{office: "*"}]
      - id: absent
        name_zh: 缺失
        name_en: absent
        minutes: 5
        match: [{leisure: park, access: "!"}]
      - id: regex
        name_zh: 正则
        name_en: regex
        minutes: 5
        match: [{"cuisine~": "^(tea|coffee)"}]
      - id: names
        name_zh: 名称
        name_en: names
        minutes: 5
        match: [{"name*~": "菜市场|market"}]
        exclude: [{"name*~": "花鸟"}]
      - id: notname
        name_zh: 否定
        name_en: not name
        minutes: 5
        match: [{amenity: school, "name*!~": "小学"}]
      - id: boolish
        name_zh: 布尔
        name_en: "yes"
        minutes: 5
        match: [{bus: yes, "isced:level": 1}]
"""


@pytest.fixture(scope="module")
def rules_profile(tmp_path_factory):
    p = tmp_path_factory.mktemp("rules") / "rules.yaml"
    p.write_text(RULES, encoding="utf-8")
    return load_profile(p)


@pytest.mark.parametrize("tags,expected", [
    ({"amenity": "cafe"}, ["eq"]),
    ({"amenity": "restaurant;cafe"}, ["eq"]),          # OSM ";" lists
    ({"amenity": "cafeteria"}, []),
    ({"shop": "pastry"}, ["inlist"]),
    ({"office": "company"}, ["present"]),
    ({"office": "no"}, []),                             # "*" is not "no"
    ({"leisure": "park"}, ["absent"]),
    ({"leisure": "park", "access": "private"}, []),
    ({"leisure": "park", "access": "no"}, ["absent"]),  # "!" also takes the value no
    ({"cuisine": "Coffee_shop"}, ["regex"]),            # case-insensitive
    ({"cuisine": "bubble_tea"}, []),
    ({"name": "科巷菜市场"}, ["names"]),
    ({"name:en": "Fish Market"}, ["names"]),
    ({"alt_name": "某菜市场"}, []),                      # alt_name/old_name are no evidence
    ({"old_name": "某菜市场"}, []),
    ({"official_name": "花鸟菜市场"}, []),               # exclude on any name
    ({"name": "x", "name:zh-Hans": "花鸟市场", "short_name": "菜市场"}, []),
    ({"amenity": "school", "name": "中学"}, ["notname"]),
    ({"amenity": "school"}, ["notname"]),               # no name at all: "name*!~" holds
    ({"amenity": "school", "name:en": "X", "name": "某小学"}, []),
    ({"bus": "yes", "isced:level": "1"}, ["boolish"]),  # YAML yes / 1 compared as OSM text
    ({"amenity": "cafe", "disused": "yes"}, []),        # profile-wide exclude
])
def test_rule_semantics(rules_profile, tags, expected):
    got = [c.id for c in rules_profile.categories if c.matches(tags)]
    assert got == expected


def test_rule_string_form(rules_profile):
    assert str(rules_profile.category("absent").match[0]) == "leisure=park & no access"
    assert str(rules_profile.category("inlist").match[0]) == "shop in ['bakery', 'pastry']"
