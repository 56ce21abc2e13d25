"""Names from the data never run as templates: branca's second render is switched off for every
map lifecircle draws (analysis map, compliance map, batch index), so ``{{7*7}}`` stays
``{{7*7}}``, ``{% … %}`` runs nothing and an unclosed ``{{`` draws normally."""

from __future__ import annotations

import folium
from synthetic_osm import grid_osm
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.untrusted import RawHTML, safe_root

runner = CliRunner()


def _payloads(tmp_path):
    marker = tmp_path / "pwned"
    run = ("{% set o = cycler.__init__.__globals__.os %}{{ o.system('touch " + str(marker)
           + "') }}Cafe")
    return marker, {
        "amenity=cafe": run,
        "shop=supermarket": "Market {{7*7}}",
        "amenity=pharmacy": "Café {{ x",
        "amenity=restaurant": "Bob's {% bar",
        "amenity=clinic": "{# open comment",
    }


def test_analyze_map_keeps_template_text_literal(tmp_path):
    marker, names = _payloads(tmp_path)
    osm = tmp_path / "district.osm"
    osm.write_text(grid_osm(names), encoding="utf-8")
    out = tmp_path / "out"
    r = runner.invoke(app, ["analyze", str(osm), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not marker.exists(), "a facility name ran a shell command"
    text = (out / "map.html").read_text(encoding="utf-8")
    assert "Market {{7*7}}" in text and "Market 49" not in text
    assert "Caf\\u00e9 {{ x" in text or "Café {{ x" in text
    assert "{% set o = cycler" in text
    # and again through `lifecircle map` (the full map with service areas and gaps)
    r = runner.invoke(app, ["map", str(out), "--offline", "--basemap", "blank",
                            "--out", str(tmp_path / "full.html")])
    assert r.exit_code == 0, r.output
    assert not marker.exists()
    assert "Market {{7*7}}" in (tmp_path / "full.html").read_text(encoding="utf-8")


def test_raw_html_and_safe_root_render_once(tmp_path):
    marker = tmp_path / "pwned2"
    m = folium.Map(tiles=None)
    safe_root(m)
    payload = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }} {{7*7}}"
    m.get_root().html.add_child(RawHTML(f"<p>{payload}</p>"))
    folium.Marker([0, 0], tooltip=payload, popup=folium.Popup("{% if %}" + payload)).add_to(m)
    html = m.get_root().render()
    assert not marker.exists()
    assert html.count("{{7*7}}") >= 3 and " 49" not in html
    # Jupyter's path renders the same way
    assert "{{7*7}}" in m._repr_html_()
    assert not marker.exists()
