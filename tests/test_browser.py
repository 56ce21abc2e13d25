"""Open the offline map in headless Chromium with every outside request refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import lifecircle
from lifecircle.render.maps import result_map, save_map
from lifecircle.io.sources import embedded_sample

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=8000"]

PROBE = """<script>window.__errs=[];
window.onerror=function(m){window.__errs.push('error: '+m);};
(function(){var ce=console.error;console.error=function(){
  window.__errs.push('console: '+Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};})();
window.addEventListener('error',function(ev){if(ev.target&&ev.target!==window){
  window.__errs.push('resource: '+(ev.target.src||ev.target.href));}},true);
window.addEventListener('load',function(){setTimeout(function(){var d=document.createElement('pre');
  d.id='lc-errors';d.textContent=JSON.stringify(window.__errs);document.body.appendChild(d);},300);});
</script>"""


def _chromium(args, tmp_path, name):
    profile = tmp_path / f"profile-{name}"
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_offline_map_in_browser(tmp_path):
    result = lifecircle.analyze(embedded_sample())
    m = result_map(result, lang="en", basemap="blank", isochrones=result.homes.geometry.iloc[:2])
    page = save_map(m, tmp_path / "map.html", offline=True)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    dom = _chromium(["--dump-dom", probe.as_uri()], tmp_path, "dom").stdout
    found = re.search(r'<pre id="lc-errors">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    errors = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert errors == []
    overlays = re.search(r'leaflet-control-layers-overlays(.*?)</section>|leaflet-control-layers-overlays(.*)', dom, re.S)
    assert overlays
    import html

    text = html.unescape(re.sub(r"<[^>]+>", " ", overlays.group(0)))
    for dim in result.profile.dimensions:
        assert result.profile.display_name(dim.id, "en") in text
    assert "leaflet-interactive" in dom          # vector layers drawn
    assert "OpenStreetMap contributors" in dom   # attribution shown
    shot = tmp_path / "map.png"
    _chromium([f"--screenshot={shot}", "--window-size=1200,800", page.as_uri()], tmp_path, "shot")
    assert shot.exists() and shot.stat().st_size > 10_000
