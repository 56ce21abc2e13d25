"""Every HTML deliverable in headless Chromium with every outside request refused.

Built once (module fixture) on the embedded Helsinki sample: ``analyze``'s map.html,
``lifecircle map`` with named origins, idle sites and recommendations (``--lang zh
--basemap amap``), ``check``'s compliance_map.html, ``links --auto --lang zh``'s
links_map.html, ``batch``'s index.html and the resources
map batch writes into a district's folder. Each page must:
load no outside resource and log no error, show a legend, not be blank (screenshot pixels),
and — where there are homes — open a home's popup on a real mouse click (sub-scores and, per
category, minutes and the nearest facility's name).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=8000"]

#: Collects errors and failed resources, then clicks the first home drawn inside the map (a real
#: MouseEvent at its pixel, as a user would) and records the legend and the popup.
PROBE = """<script>window.__errs=[];
window.onerror=function(m){window.__errs.push('error: '+m);};
(function(){var ce=console.error;console.error=function(){
  window.__errs.push('console: '+Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};})();
window.addEventListener('error',function(ev){if(ev.target&&ev.target!==window){
  window.__errs.push('resource: '+(ev.target.src||ev.target.href));}},true);
window.addEventListener('load',function(){setTimeout(function(){
  var out={errors:window.__errs, legend:null, popup:null, clicked:false, homes:0};
  var lg=document.getElementById('lc-legend'); if(lg) out.legend=lg.innerText;
  var H=window.lifecircleHomes;
  if(H){var all=[];H.eachLayer(function(l){all.push(l);});out.homes=all.length;
    for(var i=0;i<all.length&&!out.clicked;i++){var l=all[i],map=l._map;if(!map)continue;
      var c=l.getLatLng?l.getLatLng():l.getBounds().getCenter();
      var p=map.latLngToContainerPoint(c),r=map.getContainer().getBoundingClientRect();
      var x=r.left+p.x,y=r.top+p.y;if(x<0||y<0||x>=innerWidth||y>=innerHeight)continue;
      var el=document.elementFromPoint(x,y);if(!el||el.tagName!=='CANVAS')continue;
      ['mousedown','mouseup','click'].forEach(function(t){el.dispatchEvent(new MouseEvent(t,
        {clientX:x,clientY:y,bubbles:true,cancelable:true,view:window,button:0}));});
      out.clicked=true;}
    var pc=document.querySelector('.leaflet-popup-content');if(pc)out.popup=pc.innerText;}
  var d=document.createElement('pre');d.id='lc-probe';d.textContent=JSON.stringify(out);
  document.body.appendChild(d);},800);});
</script>"""


def _chromium(args, tmp_path, name):
    profile = tmp_path / f"profile-{name}"
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _probe(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    dom = _chromium(["--window-size=1280,860", "--dump-dom", probe.as_uri()], tmp_path,
                    page.stem + "-dom").stdout
    found = re.search(r'<pre id="lc-probe">(.*?)</pre>', dom, re.S)
    assert found, f"{page.name}: the page never finished loading"
    return json.loads(html.unescape(found.group(1)))


def _screenshot_ok(page: Path, tmp_path: Path) -> tuple[float, int]:
    """(share of pixels that are not the most common colour, distinct colours) of a shot."""
    from PIL import Image

    shot = tmp_path / f"{page.stem}.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,860", page.as_uri()], tmp_path,
              page.stem + "-shot")
    assert shot.exists(), f"{page.name}: no screenshot"
    px = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    keys = px[:, 0].astype(np.int64) << 16 | px[:, 1].astype(np.int64) << 8 | px[:, 2]
    _, counts = np.unique(keys, return_counts=True)
    return 1.0 - counts.max() / len(keys), len(counts)


@pytest.fixture(scope="module")
def pages(helsinki, tmp_path_factory):
    from typer.testing import CliRunner

    from lifecircle.cli import app

    root = tmp_path_factory.mktemp("browser")
    runner = CliRunner()
    folder = root / "analysis"
    helsinki.save(folder)                                    # analyze's map.html
    out = {"analyze": folder / "map.html"}

    h = helsinki.homes.to_crs(4326).geometry
    pd.DataFrame({"name": ["Kamppi <school>", "Rautatientori"], "lon": [h.iloc[0].x, h.iloc[5].x],
                  "lat": [h.iloc[0].y, h.iloc[5].y]}).to_csv(root / "origins.csv", index=False)
    res = runner.invoke(app, ["resources", str(folder), "--out", str(root / "res")])
    assert res.exit_code == 0, res.output
    rec = runner.invoke(app, ["recommend", str(folder), "--category", "elderly_daycare", "--k", "3",
                              "--out", str(root / "rec")])
    assert rec.exit_code == 0, rec.output
    out["resources"] = root / "res" / "resources_map.html"
    out["recommend"] = root / "rec" / "resources_map.html"
    full = root / "full.html"
    r = runner.invoke(app, ["map", str(folder), "--out", str(full), "--lang", "zh", "--basemap", "amap",
                            "--origins", str(root / "origins.csv"), "--resources", str(root / "res"),
                            "--recommend", str(root / "rec")])
    assert r.exit_code == 0, r.output
    out["map"] = full

    r = runner.invoke(app, ["check", str(folder), "--standard", "gb50180-2018", "--out", str(root / "gb")])
    assert r.exit_code == 0, r.output
    out["check"] = root / "gb" / "compliance_map.html"
    r = runner.invoke(app, ["links", str(folder), "--auto", "--lang", "zh", "--out", str(root / "links")])
    assert r.exit_code == 0, r.output
    out["links"] = root / "links" / "links_map.html"

    from dask.distributed import Client

    from lifecircle.batch import make_cluster, run

    (root / "batch.toml").write_text(textwrap.dedent("""
        name = "browser"
        out = "out"
        resources = true
        check = true
        [sources]
        helsinki = { sample = "helsinki" }
        [[districts]]
        name = "Kamppi"
        bbox = [24.9352, 60.1641, 24.9443, 60.1716]
        source = "helsinki"
    """), encoding="utf-8")
    with make_cluster(1, processes=False) as cluster, Client(cluster) as client:
        report = run(root / "batch.toml", client=client)
    out["batch"] = report.out_dir / "index.html"
    out["batch_resources"] = report.out_dir / "Kamppi" / "resources_map.html"
    return out


def _no_remote(page: Path):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r'<(script|img)[^>]+src=["\']https?:', text, re.I), page.name
    assert not re.search(r'<link[^>]+href=["\']https?:', text, re.I), page.name


@pytest.mark.parametrize("name", ["analyze", "map", "check", "links", "resources", "recommend", "batch",
                                  "batch_resources"])
def test_deliverable_opens_offline(pages, name, helsinki, tmp_path):
    page = pages[name]
    _no_remote(page)
    got = _probe(page, tmp_path)
    assert got["errors"] == [], got["errors"]
    assert got["legend"] and got["legend"].strip(), f"{name}: no legend"
    varied, colours = _screenshot_ok(page, tmp_path)
    assert varied > 0.2 and colours > 30, f"{name}: looks blank ({varied:.2f} non-background, {colours} colours)"
    if name in ("analyze", "map"):
        assert got["homes"] > 50 and got["clicked"], f"{name}: no home to click"
        pop = got["popup"]
        assert pop, f"{name}: a click on a home opened no popup"
        lang = "zh" if name == "map" else "en"
        for dim in helsinki.profile.dimensions:
            assert helsinki.profile.display_name(dim.id, lang) in pop
        assert ("最近设施" if lang == "zh" else "nearest facility") in pop
        # a category without facilities in the data reads "no data", not "none within reach"
        nd = [c for c, v in helsinki.data_status.items() if v == "no_data"]
        assert nd
        row = helsinki.profile.display_name(nd[0], lang) + "\t" + ("无数据" if lang == "zh" else "no data")
        assert row in pop, pop[:600]
        # rows name a facility and its minutes: category, minutes, name
        assert re.search(r"\t\d+\t\S", pop), pop[:400]


def test_map_legend_and_layers(pages, tmp_path):
    """The full map: legend names the background, homes, isochrones (with the named origins),
    idle sites and recommendations; every recommendation is a numbered marker."""
    got = _probe(pages["map"], tmp_path)
    legend = got["legend"]
    for word in ("背景", "建筑", "道路", "住宅", "等时圈", "起点", "闲置用地", "推荐选址"):
        assert word in legend, (word, legend)
    text = pages["map"].read_text(encoding="utf-8")
    assert "Kamppi &lt;school&gt;" in text and "Kamppi <school>" not in text
    recs = pd.read_csv(pages["map"].parent / "rec" / "recommendations.csv", encoding="utf-8-sig")
    assert len(recs) > 0
    assert text.count("lc-rank") == len(recs) + 1      # the style rule + one marker per pick


#: Clicks a home drawn under the homes a recommendation newly covers (the pick layer on top),
#: at a pixel no rank marker covers, and records what took the click and the popup.
PICK_PROBE = """<script>window.addEventListener('load',function(){setTimeout(function(){
  var out={picks:0,el:null,popup:null},m=null;
  for(var k in window){if(k.indexOf('map_')===0&&window[k]&&window[k].latLngToContainerPoint)m=window[k];}
  var picks=[];m.eachLayer(function(l){if(l.options&&l.options.pane==='lc-picks'&&l.getLatLng)picks.push(l);});
  out.picks=picks.length;var r=m.getContainer().getBoundingClientRect();
  for(var i=0;i<picks.length&&!out.el;i++){var p=m.latLngToContainerPoint(picks[i].getLatLng());
    var x=r.left+p.x,y=r.top+p.y;if(x<0||y<0||x>=innerWidth||y>=innerHeight)continue;
    var el=document.elementFromPoint(x,y);if(!el||el.tagName!=='CANVAS')continue;
    out.el=el.parentNode.className;
    ['mousedown','mouseup','click'].forEach(function(t){el.dispatchEvent(new MouseEvent(t,
      {clientX:x,clientY:y,bubbles:true,cancelable:true,view:window,button:0}));});}
  var pc=document.querySelector('.leaflet-popup-content');if(pc)out.popup=pc.innerText;
  var d=document.createElement('pre');d.id='lc-probe';d.textContent=JSON.stringify(out);
  document.body.appendChild(d);},800);});
</script>"""


def test_click_on_a_newly_covered_home_opens_the_home(pages, tmp_path):
    """The homes pick 1 newly covers are drawn over the homes; a click there still reaches the
    home (its popup opens), so the picks never hide what a home says."""
    page = pages["map"]
    probe = page.with_name("pick.probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PICK_PROBE, 1),
                     encoding="utf-8")
    dom = _chromium(["--window-size=1280,860", "--dump-dom", probe.as_uri()], tmp_path, "pick").stdout
    found = re.search(r'<pre id="lc-probe">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    got = json.loads(html.unescape(found.group(1)))
    recs = pd.read_csv(page.parent / "rec" / "recommendations.csv", encoding="utf-8-sig")
    assert got["picks"] == recs["new_homes"].iloc[0] > 0        # pick 1's layer is on at opening
    assert got["el"] and "leaflet-overlay-pane" in got["el"], got    # the homes' canvas took it
    assert got["popup"] and "最近设施" in got["popup"], got


def test_hexagon_city_map_opens_offline(helsinki, monkeypatch, tmp_path):
    """A city past the map's limits (hexagons for homes, gaps and facilities; background within
    its budget) opens offline with no error, shows its legend, and a click on a hexagon opens
    its scores."""
    import dataclasses

    from synthetic_city import tiled

    from lifecircle.render import background, maps

    city = tiled(helsinki, 3, 3)
    city.settings = dataclasses.replace(helsinki.settings, map_max_points=len(helsinki.homes))
    monkeypatch.setattr(maps, "MAP_MAX_FACILITIES", len(helsinki.facilities))
    monkeypatch.setattr(background, "BACKGROUND_BUDGET", 30_000)
    page = maps.save_map(maps.result_map(city, lang="en", basemap="blank"), tmp_path / "city.html")
    _no_remote(page)
    got = _probe(page, tmp_path)
    assert got["errors"] == [], got["errors"]
    assert "not drawn (too many for one page)" in got["legend"]
    assert got["homes"] > 5 and got["clicked"], "no hexagon to click"
    assert got["popup"] and "Hexagon" in got["popup"] and "homes" in got["popup"], got["popup"]
    varied, colours = _screenshot_ok(page, tmp_path)
    assert varied > 0.2 and colours > 30


def test_a_one_home_map_is_drawn(helsinki, tmp_path):
    """A study area holding one home: fitting the map to its zero-size box zoomed to infinity
    (no tiles, no zoom limit) and Leaflet drew nothing ("Invalid LatLng (NaN, NaN)")."""
    import geopandas as gpd

    import lifecircle
    from lifecircle.io.sources import embedded_sample

    home = helsinki.homes.geometry.iloc[[0]].buffer(1.0).to_crs(4326)
    gpd.GeoDataFrame({"name": ["one"]}, geometry=home.to_numpy(), crs=4326).to_file(tmp_path / "one.geojson")
    one = lifecircle.analyze(embedded_sample("helsinki"), boundary=tmp_path / "one.geojson")
    assert len(one.homes) == 1
    one.save(tmp_path / "a")
    got = _probe(tmp_path / "a" / "map.html", tmp_path)
    assert got["errors"] == [], got["errors"]
    assert got["legend"] and got["legend"].strip()


@pytest.mark.parametrize("name", ["map", "links"])
def test_leaflet_controls_speak_chinese_on_a_zh_map(pages, name, tmp_path):
    """Leaflet's zoom buttons, layer switch and full-screen button carried English tooltips on
    Chinese maps: every control title and aria-label in the live page is Chinese."""
    probe = pages[name].with_name("titles.probe.html")
    probe.write_text(pages[name].read_text(encoding="utf-8").replace("<head>", "<head>" + (
        "<script>window.addEventListener('load',function(){setTimeout(function(){var t=[];"
        "document.querySelectorAll('.leaflet-control [title], .leaflet-control-layers-toggle')"
        ".forEach(function(e){t.push(e.title);var a=e.getAttribute('aria-label');if(a)t.push(a);});"
        "var d=document.createElement('pre');d.id='lc-titles';"
        "d.textContent=JSON.stringify(t);document.body.appendChild(d);},800);});</script>"), 1), encoding="utf-8")
    dom = _chromium(["--window-size=1280,860", "--dump-dom", probe.as_uri()], tmp_path, f"zh-controls-{name}").stdout
    found = re.search(r'<pre id="lc-titles">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    titles = json.loads(html.unescape(found.group(1)))
    assert {"放大", "缩小", "图层", "全屏"} <= set(titles), titles
    assert not [t for t in titles if re.search(r"[A-Za-z]{3,}", t)], titles
