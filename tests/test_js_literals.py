"""Text from data inside the JavaScript template literals folium wraps tooltips and popups in:
``${…}`` would run there and a backtick would end the literal, so escape_html turns both (and the
backslash) into character references — shown the same, never code."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.untrusted import escape_html

RUNS = "${document.documentElement.dataset.pwa=1}"
ENDS = "O`Brien`+(document.documentElement.dataset.pwb=2)+`"


def test_escape_html_leaves_no_template_literal_syntax():
    text = escape_html(RUNS + ENDS + "C:\\users <b>")
    assert not set("`$\\<>") & set(text)
    assert text.startswith("&#36;{document") and "O&#96;Brien&#96;" in text and "C:&#92;users" in text


def test_origin_names_stay_text_in_the_page(helsinki, tmp_path):
    """Origin names reach a permanent folium tooltip (a template literal in the page's script)
    and the isochrones' GeoJSON: neither holds the raw ``${`` or backtick any more."""
    folder = tmp_path / "a"
    helsinki.save(folder, map_html=False)
    h = helsinki.homes.to_crs(4326).geometry
    pd.DataFrame({"name": [RUNS, ENDS], "lon": [h.iloc[0].x, h.iloc[3].x],
                  "lat": [h.iloc[0].y, h.iloc[3].y]}).to_csv(tmp_path / "origins.csv", index=False)
    page = tmp_path / "page.html"
    r = CliRunner().invoke(app, ["map", str(folder), "--origins", str(tmp_path / "origins.csv"),
                                 "--basemap", "blank", "--out", str(page)])
    assert r.exit_code == 0, r.output
    text = page.read_text(encoding="utf-8")
    assert RUNS not in text and "O`Brien`" not in text
    assert "&#36;{document.documentElement.dataset.pwa=1}" in text and "O&#96;Brien&#96;" in text
