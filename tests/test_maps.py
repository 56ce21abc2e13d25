"""Maps: a layer per dimension, attribution, basemaps (GCJ-02 shift for Amap), offline file."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
import shapely
from synthetic_city import tiled

from lifecircle.render.maps import MapError, result_map, save_map, to_display


@pytest.fixture(scope="module")
def rendered(helsinki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("maps")
    from lifecircle.analyses.isochrones import service_areas

    sa = service_areas(helsinki, [15], categories=False)
    m = result_map(helsinki, lang="en", basemap="blank", service_areas=sa,
                   isochrones=helsinki.homes.geometry.iloc[:2])
    path = save_map(m, folder / "offline.html")          # offline is the default
    online = save_map(m, folder / "online.html", offline=False)
    return sa, path, online


def test_layers_named_per_dimension(helsinki, rendered):
    _, path, _ = rendered
    text = path.read_text(encoding="utf-8")
    shown = text.replace("\\u0026", "&")       # layer names are JSON keys: & escaped as \u0026
    for dim in helsinki.profile.dimensions:
        name = html.escape(helsinki.profile.display_name(dim.id, "en"))   # shown as HTML: escaped
        # "Services (3 of 12 categories: no data)" where some of its categories have no data
        nd = sum(helsinki.data_status[c.id] == "no_data" for c in dim.categories)
        label = name if not nd else f"{name} ({nd} of {len(dim.categories)} categories: no data)"
        assert f'"{label}"' in shown
    assert "© OpenStreetMap contributors" in text
    assert str(helsinki.data_date) in text


def test_offline_file_has_no_remote_scripts_or_styles(rendered):
    _, path, online = rendered
    text = path.read_text(encoding="utf-8")
    assert not re.search(r'<script[^>]+src=["\']https?:', text, re.I)
    assert not re.search(r'<link[^>]+href=["\']https?:', text, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", text, re.I)
    assert "L.map(" in text and "leaflet" in text.lower()
    # the online file references the CDN and is much smaller
    assert re.search(r'<script[^>]+src="https://', online.read_text(encoding="utf-8"))
    assert path.stat().st_size > online.stat().st_size + 100_000


def test_size_budget_helsinki(rendered):
    _, path, _ = rendered
    assert path.stat().st_size < 5e6


def test_zh_labels(helsinki):
    m = result_map(helsinki, lang="zh", basemap="blank", service_areas=False, gaps=False)
    text = m.get_root().render()
    import json

    for dim in helsinki.profile.dimensions:
        name = helsinki.profile.display_name(dim.id, "zh")
        # folium writes layer names as JSON (non-ASCII escaped)
        assert name in text or json.dumps(name)[1:-1] in text
    assert "生活圈得分" in text or json.dumps("生活圈得分")[1:-1] in text


def test_basemaps(helsinki, monkeypatch):
    for name, needle in (("osm", "tile.openstreetmap.org"), ("cartodb", "basemaps.cartocdn.com"),
                         ("amap", "autonavi.com")):
        text = result_map(helsinki, basemap=name, service_areas=False, gaps=False).get_root().render()
        assert needle in text
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(MapError, match="TIANDITU_KEY"):
        result_map(helsinki, basemap="tianditu", service_areas=False)
    monkeypatch.setenv("TIANDITU_KEY", "abc123")
    text = result_map(helsinki, basemap="tianditu", service_areas=False, gaps=False).get_root().render()
    assert "tianditu.gov.cn" in text and "tk=abc123" in text
    with pytest.raises(MapError, match="unknown basemap"):
        result_map(helsinki, basemap="bing", service_areas=False)


def test_amap_shifts_layers_in_china_only():
    import geopandas as gpd

    nj = gpd.GeoSeries(shapely.points([118.7845], [32.0415]), crs="EPSG:4326").to_crs(32650)
    shifted = to_display(nj, gcj02=True).to_crs(32650)
    d = nj.iloc[0].distance(shifted.iloc[0])
    assert 450 < d < 650, d
    hk = gpd.GeoSeries(shapely.points([24.9384], [60.1699]), crs="EPSG:4326").to_crs(3067)
    assert hk.iloc[0].distance(to_display(hk, gcj02=True).to_crs(3067).iloc[0]) < 0.2


def test_sites_layer_and_default_call(helsinki):
    import geopandas as gpd

    sites = gpd.GeoDataFrame({"name": ["Lot A"], "area_m2": [1200.0]},
                             geometry=[helsinki.homes.geometry.iloc[0].buffer(30)],
                             crs=helsinki.crs)
    text = result_map(helsinki, basemap="blank", service_areas=False, sites=sites).get_root().render()
    assert "Idle sites" in text and "Lot A" in text
    # Result.save path: result_map(result) with defaults still works
    assert result_map(helsinki, service_areas=False) is not None


def test_nearest_facility_is_the_nearest(helsinki):
    """The engine's labelled search names, per home and category, a facility whose own walking
    time is the nearest time: re-checked one facility at a time with the plain engine."""
    from lifecircle import columns as col
    from lifecircle.analyses.isochrones import nearest_facilities

    cats, minutes, which = nearest_facilities(helsinki)
    eng = helsinki.engine
    checked = 0
    for i, c in enumerate(cats):
        assert np.allclose(np.nan_to_num(minutes[i], nan=-1),
                           np.nan_to_num(helsinki.homes[col.time(c)].to_numpy(float), nan=-1))
        assert ((which[i] >= 0) == np.isfinite(minutes[i])).all()
        for f in np.unique(which[i][which[i] >= 0])[:4]:
            assert helsinki.facilities[col.CATEGORY].iloc[f] == c
            alone = eng.nearest([helsinki.facility_snap.take(np.array([f]))])[0]
            homes = which[i] == f
            assert np.allclose(alone[homes], minutes[i][homes])
            checked += 1
    assert checked > 20


def test_planning_map_parts(helsinki, tmp_path):
    """Offline by default, a background from the data, title with area and date, legend,
    one dimension at a time (base layers), popups data with facility names."""
    import json

    m = result_map(helsinki, lang="en")
    p = m.save(tmp_path / "m.html") or tmp_path / "m.html"
    text = p.read_text(encoding="utf-8")
    assert not re.search(r'<script[^>]+src=["\']https?:', text, re.I)
    assert "Helsinki — 15-minute life circle" in text and "2019-04-21" in text
    assert "lc-legend" in text and "Background (OSM data)" in text
    # one dimension at a time: the dimensions are base layers (radio buttons) of the control
    base = re.search(r"base_layers\s*:\s*\{(.*?)\}", text, re.S).group(1)
    assert base.count("feature_group_") == 7          # overall + six dimensions
    # the tile layer is optional: present, but not added to the map on opening
    assert "tile.openstreetmap.org" in text
    # the Jupyter view is offline too (the page sits escaped in an iframe's srcdoc)
    shown = m._repr_html_()
    assert "srcdoc=" in shown and "L.map(" in html.unescape(shown)
    assert not re.search(r"src=&quot;https?:", shown) and not re.search(r'src="https?:', html.unescape(shown))
    # facility names reach the popup data, escaped
    named = helsinki.facilities["name"].dropna().astype(str)
    assert any(json.dumps(n, ensure_ascii=False)[1:-1] in text for n in named[:50] if "<" not in n)


def test_recommendations_join_their_sites(helsinki, tmp_path):
    """`map --recommend` places each pick on its site (by site_id); an unknown site is one clear
    error naming the file and the id."""
    import geopandas as gpd
    import pandas as pd

    from lifecircle.errors import InputFileError
    from lifecircle.render.deliverables import read_map_recommendations as _read_recommendations

    sites = gpd.GeoDataFrame({"site_id": ["S1", "S2"]},
                             geometry=[helsinki.homes.geometry.iloc[0].buffer(20),
                                       helsinki.homes.geometry.iloc[9].buffer(20)], crs=helsinki.crs)
    path = tmp_path / "recommendations.csv"
    pd.DataFrame({"rank": [1, 2], "site_id": ["S2", "S1"], "newly_covered": [120.0, 30.0]}).to_csv(path, index=False)
    recs = _read_recommendations(tmp_path, sites, helsinki.crs)
    assert list(recs["rank"]) == [1, 2]
    assert recs.geometry.iloc[0].equals(sites.geometry.iloc[1])
    text = result_map(helsinki, sites=sites, recommendations=recs, gaps=False,
                      nearest_names=False).get_root().render()
    text = text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0027", "'")
    assert text.count("class='lc-rank'>1<") == 1 and text.count("class='lc-rank'>2<") == 1
    pd.DataFrame({"rank": [1], "site_id": ["S9"]}).to_csv(path, index=False)
    with pytest.raises(InputFileError, match="S9"):
        _read_recommendations(path, sites, helsinki.crs)


def test_hexagon_view_beyond_max_points(helsinki):
    """Beyond settings.map_max_points homes become hexagons: per hexagon the population-weighted
    mean of each score and the homes and residents it holds (their sums are the totals)."""
    import copy
    import dataclasses
    import json

    r = copy.copy(helsinki)
    r.settings = dataclasses.replace(helsinki.settings, map_max_points=10)
    text = result_map(r, lang="en", gaps=False).get_root().render()
    data = json.loads(re.search(r"var D = (\{.*?\});\n", text).group(1))
    assert "xy" not in data and "t" not in data and len(data["s"]) == len(data["n"]) > 1
    reach = helsinki.homes[helsinki.homes["reachable"]]
    assert sum(data["n"]) == len(reach)
    assert sum(data["p"]) == pytest.approx(reach["population"].sum(), abs=len(data["p"]))
    assert all(len(row) == 7 for row in data["s"])


def test_city_map_stays_within_its_budget(helsinki, monkeypatch, tmp_path):
    """A city too big for one icon per home and facility: homes, their gaps and facilities
    become hexagons and the background keeps to its budget (what it leaves out is named in the
    legend), so the page grows far less than the city; the title and legend are still there,
    and the gap hexagons hold exactly the homes each dimension leaves uncovered."""
    import dataclasses
    import json

    from lifecircle.analyses.isochrones import uncovered_homes
    from lifecircle.render import background, maps

    small = save_map(result_map(helsinki, lang="en", basemap="blank"), tmp_path / "one.html")
    city = tiled(helsinki, 5, 5)                        # 25 × the homes, facilities, streets
    city.settings = dataclasses.replace(helsinki.settings, map_max_points=len(helsinki.homes))
    monkeypatch.setattr(maps, "MAP_MAX_FACILITIES", len(helsinki.facilities))
    monkeypatch.setattr(background, "BACKGROUND_BUDGET", 60_000)
    big = save_map(result_map(city, lang="en", basemap="blank"), tmp_path / "city.html")
    assert big.stat().st_size < 3 * small.stat().st_size      # 25 × the city, not 25 × the page
    text = big.read_text(encoding="utf-8")
    assert "15-minute life circle" in text and "lc-legend" in text and "© OpenStreetMap" in text
    assert "not drawn (too many for one page)" in text           # the budget says what it left out
    homes = json.loads(re.search(r"var D = (\{.*?\});\n", text).group(1))
    assert "hx" in homes and "xy" not in homes and sum(homes["n"]) == int(city.homes["reachable"].sum())
    layers = [json.loads(d) for d in re.findall(r"var g = \w+, D = (\{.*?\});\n", text)]
    gap = [d for d in layers if d["s"].get("fillColor") == "#b2182b"]
    fac = [d for d in layers if d["s"].get("fillColor") != "#b2182b"]
    uncovered = sorted(int(out.sum()) for _, _, out in uncovered_homes(city) if out is not None and out.any())
    assert sorted(sum(v[0] for v in d["v"]) for d in gap) == uncovered
    pop = city.homes["population"].to_numpy(float)
    want = sorted(pop[out].sum() for _, _, out in uncovered_homes(city) if out is not None and out.any())
    got = sorted(sum(v[1] for v in d["v"]) for d in gap)
    assert got == pytest.approx(want, abs=len(homes["n"]))         # residents rounded per hexagon
    assert sum(sum(v[0] for v in d["v"]) for d in fac) == int(
        city.facilities["category"].isin([c.id for c in city.profile.categories]).sum())


def test_legend_says_no_data_instead_of_zero(helsinki):
    """A category with no facility in the data reads '(no data)' in the legend, not '(0)'."""
    from lifecircle.render.maps import result_map

    nd = [c for c, v in helsinki.data_status.items() if v == "no_data"]
    assert nd
    page = result_map(helsinki, lang="en", basemap="blank").get_root().render()
    name = helsinki.profile.display_name(nd[0], "en")
    assert f"{name} (no data)" in page and f"{name} (0)" not in page


def test_page_numbers_are_the_numbers():
    """The homes' numbers go to the page as text made from the arrays (_numbers_js): rounded
    to the decimals asked (half to even, as numpy), NaN as null, rows kept, negative numbers
    and numbers spread too wide for a table of strings alike."""
    import json

    from lifecircle.render.maps import _js_object, _numbers_js

    s = _numbers_js(np.array([[55.04, np.nan, 100.0], [0.05, 0.15, -3.0]]), 1)
    assert s == "[[55.0,null,100.0],[0.0,0.2,-3.0]]"
    assert _numbers_js(np.array([3, -1, 7000])) == "[3,-1,7000]"
    assert _numbers_js(np.array([2.5, 3.5, np.nan])) == "[2,4,null]"           # whole numbers
    assert _numbers_js(np.zeros((0, 3))) == "[]"
    assert _numbers_js(np.zeros((2, 0))) == "[[],[]]"
    wide = np.array([1e9, np.nan, -2.5, 7.0])                                 # no table: json
    assert json.loads(_numbers_js(wide)) == [1000000000, None, -2, 7]
    assert json.loads(_numbers_js(wide, 1)) == [1e9, None, -2.5, 7.0]
    rng = np.random.default_rng(1)
    v = np.round(rng.uniform(-5, 105, (300, 7)), 3)
    v[rng.random(v.shape) < 0.1] = np.nan
    want = [[None if not np.isfinite(x) else float(np.round(x, 1)) for x in row] for row in v]
    assert json.loads(_numbers_js(v, 1)) == want
    # only lifecircle's number text goes in as it is: any other value is escaped by _js
    obj = _js_object({"s": _numbers_js(np.array([1, 2])), "n": ["</script><b>"]})
    assert json.loads(obj) == {"s": [1, 2], "n": ["</script><b>"]}
    assert "</script" not in obj and "<b>" not in obj


def test_surface_points_and_shared_tag_kinds():
    """Points are their own surface point (kept as they are), other geometries get
    point_on_surface; tag kinds read once per shared dict equal the kinds of each dict."""
    from lifecircle.render.background import _kinds, _kinds_each
    from lifecircle.render.maps import _surface_points

    g = np.array([shapely.Point(1, 2), shapely.box(0, 0, 2, 1), None, shapely.Point()], dtype=object)
    out = _surface_points(g)
    assert out[0] is g[0] and out[2] is None and out[3].is_empty
    assert shapely.equals(out[1], shapely.point_on_surface(g[1]))
    pts = shapely.points(np.arange(6).reshape(3, 2))
    assert _surface_points(pts) is not None and all(a is b for a, b in zip(_surface_points(pts), pts))
    park, house, water = {"leisure": "park"}, {"building": "yes"}, {"natural": "water"}
    tags = np.array([park, house, park, None, water, {"leisure": "park"}, house, {}], dtype=object)
    got, want = _kinds(tags), _kinds_each(tags)
    for a, b in zip(got, want):
        assert a.tolist() == b.tolist()
    assert got[0].tolist() == [False, True, False, False, False, False, True, False]
    assert got[2].tolist() == [True, False, True, False, False, True, False, False]


def test_page_numbers_refuse_text():
    """The page-number text reaches the page unescaped: anything but numbers is refused."""
    import numpy as np

    from lifecircle.render.maps import _numbers_js

    for bad in (np.array(["1", "2"]), np.array(["</script>"]), np.array([1, "x"], dtype=object)):
        with pytest.raises(TypeError):
            _numbers_js(bad)
    assert str(_numbers_js(np.array([1.5, np.nan]), 1)) == "[1.5,null]"
