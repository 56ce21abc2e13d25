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
