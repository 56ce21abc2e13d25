"""What a reader of every map sees around the data: controls in the map's language (zoom,
full screen), a page title, the place's name, legends that say what they count."""

from __future__ import annotations

import json
import re

import pytest


def _options(text: str, call: str) -> dict:
    """The options object of the page's ``L.control.<call>(...)`` (the one lifecircle adds)."""
    found = re.findall(r"L\.control\." + call + r"\(\s*(\{.*?\})\s*\)", text, re.S)
    assert len(found) == 1, f"L.control.{call} appears {len(found)} times"
    return json.loads(re.sub(r",\s*\}$", "}", found[0]))    # folium leaves a trailing comma


def _controls_in(text: str, lang: str) -> None:
    want = {"zh": ("放大", "缩小", "全屏", "退出全屏"),
            "en": ("Zoom in", "Zoom out", "Full screen", "Exit full screen")}[lang]
    # Leaflet's own zoom control is off; the one added names its buttons in the language
    assert re.search(r'"zoomControl":\s*false', text)
    zoom = _options(text, "zoom")
    assert (zoom["zoomInTitle"], zoom["zoomOutTitle"]) == want[:2]
    full = _options(text, "fullscreen")
    assert (full["title"], full["titleCancel"]) == want[2:]
    assert "Full Screen" not in text


@pytest.fixture(scope="module")
def report(helsinki):
    from lifecircle.analyses.standards import check

    return check(helsinki, "gb50180-2018", lang="zh")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_controls_speak_the_maps_language(helsinki, report, lang):
    from lifecircle.render.maps import compliance_map, result_map

    _controls_in(result_map(helsinki, lang=lang, gaps=False, nearest_names=False).get_root().render(), lang)
    _controls_in(compliance_map(report, helsinki, lang=lang).get_root().render(), lang)


def test_links_map_is_made_like_the_other_maps():
    """links_map had English zoom/layer tooltips, no title, no legend for its orange homes and
    numbered links, no background from the data and a bare 'OpenStreetMap' online layer."""
    from test_links import _lines, _two_streets

    from lifecircle.analyses.links import score_candidates
    from lifecircle.render.maps import links_map

    res, *_ = _two_streets()
    res.data_date = "2021-06-12"
    lr = score_candidates(res, _lines([(200, 0), (200, 100)], [(100, 100), (200, 160), (300, 100)]), k=1)
    text = links_map(lr, lang="zh").get_root().render()
    _controls_in(text, "zh")
    title = re.search(r'<div class="lc-title"><b>(.*?)</b><br><small>(.*?)</small>', text)
    assert title and "新增步行连接" in title.group(1), title
    assert "2021-06-12" in title.group(2) and "OpenStreetMap" in title.group(2)
    legend = json.loads(re.search(r"var secs = (\[.*?\]);", text).group(1))
    said = " ".join(legend)
    for words in ("背景 (OSM 数据)", "组合方案选中的连接", "候选连接", "新进入步行范围的住宅"):
        assert words in said, words
    # the layer switch names the online layer as the other maps do (folium writes \u escapes)
    assert json.dumps("在线底图 (需联网): OpenStreetMap") in text
    en = links_map(lr, lang="en").get_root().render()
    _controls_in(en, "en")
    assert "new walking links" in en and "homes the link brings within walking reach" in en


def _page_title(text: str) -> str:
    found = re.findall(r"<title>(.*?)</title>", text, re.S)
    assert len(found) == 1, found
    return found[0]


def test_every_page_has_an_escaped_title(helsinki, report, tmp_path):
    """A browser tab read 'map.html': no page had a <title>. Names come from the data, so the
    title is escaped."""
    from test_links import _lines, _two_streets

    from lifecircle.analyses.links import score_candidates
    from lifecircle.render.maps import base_map, compliance_map, links_map, result_map, save_map

    m = result_map(helsinki, lang="zh", gaps=False, nearest_names=False)
    text = save_map(m, tmp_path / "m.html").read_text(encoding="utf-8")     # offline, as written
    assert _page_title(text) == "Helsinki — 十五分钟社区生活圈"
    assert _page_title(compliance_map(report, helsinki, lang="en").get_root().render()).startswith("Helsinki — ")
    res, *_ = _two_streets()
    lr = score_candidates(res, _lines([(200, 0), (200, 100)]), k=1)
    assert _page_title(links_map(lr, lang="en").get_root().render()).endswith(" — new walking links")
    m, _ = base_map([24.9, 60.1, 25.0, 60.2], lang="en", attribution="x",
                    title='</title><script>alert(1)</script> & "x"')
    assert _page_title(m.get_root().render()) == \
        "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"


def test_a_named_place_titles_its_maps(helsinki, tmp_path):
    """A batch district's map was titled with the source file's name: the district's own name
    appeared nowhere in it. The place (a one-feature boundary's name here; a batch district's
    name, a sample's, analyze(place=...)) titles every map, the file is the secondary line,
    and it survives save and load (resources/compliance maps are drawn from the folder)."""
    import geopandas as gpd

    import lifecircle
    from lifecircle.io.sources import embedded_sample
    from lifecircle.render.maps import compliance_map, result_map
    from lifecircle.result import load_result

    home = helsinki.homes.geometry.iloc[[0]].buffer(150.0).to_crs(4326)
    gpd.GeoDataFrame({"name": ["Kamppi <b>"]}, geometry=home.to_numpy(), crs=4326).to_file(tmp_path / "b.geojson")
    one = lifecircle.analyze(embedded_sample("helsinki"), boundary=tmp_path / "b.geojson")
    assert one.place == "Kamppi <b>"
    text = result_map(one, lang="zh", gaps=False, nearest_names=False).get_root().render()
    assert _page_title(text) == "Kamppi &lt;b&gt; — 十五分钟社区生活圈"
    sub = re.search(r'<div class="lc-title"><b>.*?</b><br><small>(.*?)</small>', text).group(1)
    assert sub.startswith("数据: Helsinki · 数据日期")
    one.save(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "meta.json").read_text(encoding="utf-8"))["place"] == "Kamppi <b>"
    back = load_result(tmp_path / "a")
    from lifecircle.analyses.standards import check

    assert _page_title(compliance_map(check(back, lang="en"), back).get_root().render()).startswith(
        "Kamppi &lt;b&gt; — ")
    # no place known: the file's name, as before, and no secondary line
    assert helsinki.place == ""
    assert "数据: " not in result_map(helsinki, lang="zh", gaps=False, nearest_names=False).get_root().render()
    from lifecircle.pipeline import _place

    assert _place(None, None) == "" and _place("  五老村\n社区 ", None) == "五老村 社区"
    two = gpd.GeoDataFrame({"community": ["a", "b"]}, geometry=[None, None])
    assert _place(None, two) == "" and _place(None, two.iloc[:1]) == "a"
    assert _place(None, gpd.GeoDataFrame({"community": ["community_1"]}, geometry=[None])) == ""


def test_compliance_scale_runs_over_what_is_counted(helsinki, report):
    """The legend ran 0-35 (every required type of GB 50180) though types without data are
    never counted: the hexagons could not reach the red end. It runs to the number of required
    types with data and says how many there are, and how many without data are left out."""
    from lifecircle.analyses.standards import missing_required
    from lifecircle.render.maps import compliance_map

    required = report.rows.loc[report.rows.required, "id"].tolist()
    nodata = [c for c in required if report.data_status.get(c) == "no_data"]
    counted = len(required) - len(nodata)
    assert nodata and counted      # the sample has both
    assert missing_required(report).max() <= counted
    for lang, words in (("zh", f"共 {counted} 类有数据的必配设施；另 {len(nodata)} 类无数据，不计入"),
                        ("en", f"of {counted} required types with data; {len(nodata)} without data not counted")):
        text = compliance_map(report, helsinki, lang=lang).get_root().render()
        legend = " ".join(json.loads(re.search(r"var secs = (\[.*?\]);", text).group(1)))
        assert words in legend, legend
        ramp = re.search(r"<div class='lc-ramp-l'><span>(.*?)</span><span>(.*?)</span><span>(.*?)</span>", legend)
        assert ramp.groups() == ("0", f"{counted / 2:g}", str(counted))


def test_one_status_one_colour(helsinki, tmp_path):
    """The resources map's legend listed 闲置 twice in two colours: OSM's 'idle' and a survey's
    '闲置' were two statuses. A survey's status is read as lifecircle's own where it is one
    (闲置 → idle), the map also merges them in folders written before, and a status
    lifecircle does not know (低效) keeps its words and gets a colour no other status has."""
    import geopandas as gpd

    from lifecircle.analyses.resources import canonical_status, read_sites
    from lifecircle.render.maps import result_map, status_colours

    (tmp_path / "sites.csv").write_text(
        "编号,名称,类型,面积,权属,状态,经度,纬度\n"
        "S1,a,闲置用房,400,国有,闲置,118.7755,32.0455\nS2,b,边角地,900,集体, 使用中 ,118.7885,32.0410\n"
        "S3,c,停车场,2500,国有,低效,118.7830,32.0380\n", encoding="utf-8")
    assert read_sites(tmp_path / "sites.csv")["status"].tolist() == ["idle", "in use", "低效"]
    assert [canonical_status(v) for v in ("In use", "in_use", "IDLE", "边角地", " 低 效 ", None)] == \
        ["in use", "in use", "idle", "left-over", "低 效", ""]
    statuses, colours = status_colours(["idle", "闲置", "低效", "left-over", "差", "低效", ""])
    assert statuses == ["idle", "idle", "低效", "left-over", "差", "低效", "unknown"]
    assert list(colours) == ["idle", "低效", "left-over", "差", "unknown"]
    assert len(set(colours.values())) == len(colours)
    # on the map: one legend row per status
    pts = helsinki.homes.geometry.iloc[:4].buffer(10.0)
    sites = gpd.GeoDataFrame({"status": ["idle", "闲置", "低效", "in use"]}, geometry=pts.to_numpy(),
                             crs=helsinki.crs)
    text = result_map(helsinki, lang="zh", sites=sites, gaps=False, nearest_names=False).get_root().render()
    legend = [s for s in json.loads(re.search(r"var secs = (\[.*?\]);", text).group(1)) if "按状态" in s][0]
    assert re.findall(r"</span>([^<]*)</div>", legend) == ["闲置", "低效", "使用中"]


def test_picks_on_one_site_share_a_marker_and_layers_name_their_category(helsinki):
    """Two picks on one site (two categories) had two markers at one point, the lower one
    unseen, and the layers of the homes they cover said '#n 新增覆盖住宅' without the category."""
    import geopandas as gpd

    from lifecircle.render.maps import result_map

    g = helsinki.homes.geometry
    site, other = g.iloc[0].buffer(20), g.iloc[9].buffer(20)
    ids = helsinki.homes["home_id"].astype(int).tolist()
    recs = gpd.GeoDataFrame({"rank": [1, 2, 3], "site_id": ["A", "B", "B"],
                             "use": ["park", "park", "kindergarten"],
                             "new_home_ids": [" ".join(map(str, ids[:3])), " ".join(map(str, ids[3:5])),
                                              str(ids[5])]},
                            geometry=[other, site, site], crs=helsinki.crs)
    text = result_map(helsinki, lang="zh", recommendations=recs, gaps=False,
                      nearest_names=False).get_root().render()
    text = text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0027", "'").replace("\\u00b7", "·")
    markers = re.findall(r"class='lc-rank'[^>]*>([^<]*)<", text)
    assert sorted(markers) == ["1", "2·3"], markers
    shared = re.search(r"同一地块上的推荐：2, 3</b></p>(.*?)`", text, re.S).group(1)   # its popup
    assert "<b>#2</b>" in shared and "<b>#3</b>" in shared
    for layer in ("#1 公园/游园：新增覆盖住宅（3 处", "#2 公园/游园：新增覆盖住宅（2 处", "#3 幼儿园：新增覆盖住宅（1 处"):
        assert layer in text, layer
