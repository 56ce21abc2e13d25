"""The map page written piece by piece (:func:`lifecircle.render.maps.save_map`): the same
bytes as the whole page inlined and marked, on folium's pages and on hostile ones."""

from __future__ import annotations

import random

import folium
import pytest

from lifecircle.io.outputs import HTML_MARKER, mark_html, write_chunks_atomic
from lifecircle.render import maps
from lifecircle.render.maps import MapError, inline_assets, save_map

LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
SCRIPT = f'<script src="{LEAFLET_JS}"></script>'
LINK = f'<link rel="stylesheet" href="{LEAFLET_CSS}"/>'


def _whole(text: str, offline: bool = True) -> str:
    """The page as save_map wrote it before: inlined whole, marked whole."""
    return mark_html(inline_assets(text) if offline else text)


def _pieces(text: str, offline: bool = True) -> list[str]:
    return list(maps._page_pieces(text, offline))


def _same(text: str, offline: bool = True) -> list[str]:
    try:
        want = _whole(text, offline)
    except MapError as exc:          # an asset folium-offline lacks: the same error
        with pytest.raises(MapError, match="no offline copy"):
            _pieces(text, offline)
        return [str(exc)]
    got = _pieces(text, offline)
    assert "".join(got) == want
    return got


def test_a_folium_page_is_written_from_its_head_and_slices(monkeypatch):
    """A rendered map with a long data part: the inlined head is short (the data is not
    copied by the inlining), the rest goes in slices, the page is the same."""
    monkeypatch.setattr(maps, "_WRITE_CHARS", 1000)
    m = maps.LifecircleMap(location=[28.1, -15.4], zoom_start=13, tiles=None)
    maps.GeoJsonLayer('{"type":"FeatureCollection","features":[]}' + " " * 20_000 + "≤ 中文").add_to(m)
    folium.plugins.Fullscreen().add_to(m)
    text = m.get_root().render()
    got = _same(text)
    inlined = len(inline_assets(text)) - len(text)
    assert len(got[0]) < inlined + 6000             # the head only, not the data
    assert len(got) > 20 and max(map(len, got[1:])) == 1000
    assert got[0].count(HTML_MARKER) == 1


@pytest.mark.parametrize("text", [
    "",                                                       # nothing at all
    "<!DOCTYPE html>\n<html></html>",                         # shorter than the marker's window
    "no doctype " + SCRIPT + "x" * 9000,                      # marked at the top
    HTML_MARKER + SCRIPT + "x" * 9000,                        # marked already
    "<!DOCTYPE html>" + " " * 9000 + SCRIPT + "y" * 9000,     # the doctype's spaces past the head
    "<!DOCTYPE html" + "z" * 9000 + ">" + SCRIPT,             # the doctype ends past the head
    "<!DOCTYPE html>" + "x" * 9000 + SCRIPT + "y" * 9000,     # a script in the middle
    "<!DOCTYPE html>" + LINK + "q" * 9000 + LINK + "end",     # a link at the end
    # a link whose address runs into an inlined script, and one past the quotes that follow
    "<!DOCTYPE html>" + 'x' * 5000 + '<link rel="stylesheet" href="' + SCRIPT + '"/>' + "y" * 9000,
    "<!DOCTYPE html>" + 'x' * 5000 + '<LINK rel="stylesheet" href="' + SCRIPT + '"a""b"  \n />' + "y" * 9000,
    "<!DOCTYPE html>" + 'x' * 5000 + SCRIPT + '<link rel="stylesheet" href="' + '"' * 3 + "y" * 9000,
    "<!DOCTYPE html>" + SCRIPT + '"""' + "y" * 9000,          # fewer than four quotes after it
    "<!DOCTYPE html>" + '<script src="https://example.org/x.js"></script>' + "y" * 9000,  # unknown
])
def test_hostile_pages_are_written_as_whole_pages_were(text):
    _same(text)
    _same(text, offline=False)


@pytest.mark.parametrize("text", [
    # no asset: the head ends two past the first quote; the marker past a short head, the
    # doctype's spaces past a long one
    '<!DOCTYPE html>"' + "x" * 100 + HTML_MARKER + "y" * 9000,
    "<!DOCTYPE " + "a" * 5000 + '">' + " " * 100 + "z" * 9000,
])
def test_the_mark_is_decided_on_the_whole_page(text):
    _same(text)


def test_a_link_made_by_the_inlining_across_the_head(monkeypatch):
    """A stylesheet link whose address is an inlined script (assets without quotes) and whose
    quote comes after the last match: it is replaced as in the whole page."""
    body = "var a = 1;"
    url = f"<script>/* u.js */\n{body}\n</script>"
    monkeypatch.setattr(maps, "_offline_assets", lambda: {"u.js": body, url: "b{}"})
    text = '<!DOCTYPE html><link rel="stylesheet" href="<script src="u.js"></script>" />' + "x" * 9000
    want = _whole(text)
    assert "\nb{}\n</style>" in want                  # the link was made and replaced
    assert "".join(_pieces(text)) == want


def test_random_pages_are_written_as_whole_pages_were():
    """Pages made of the patterns' pieces in random order: the pieces make the whole page."""
    rng = random.Random(16)
    parts = [SCRIPT, LINK, "<script src=", "<link rel=\"stylesheet\" href=", '"', '"', " ", "\n", ">", "/>",
             "</script>", "<", "x" * 50, "y" * 3000, "<!DOCTYPE html>", HTML_MARKER, LEAFLET_JS, "中"]
    for _ in range(300):
        _same("".join(rng.choice(parts) for _ in range(rng.randint(0, 12))))


def test_save_map_writes_the_pieces(tmp_path, monkeypatch):
    """save_map writes the pieces as one UTF-8 file, atomically (no temporary file stays)."""
    monkeypatch.setattr(maps, "_WRITE_CHARS", 7)
    m = maps.LifecircleMap(location=[32.0, 118.8], zoom_start=13, tiles=None)
    maps.GeoJsonLayer('{"type":"FeatureCollection","features":[]}', tooltip="南京 ≤ 15").add_to(m)
    path = save_map(m, tmp_path / "map.html")
    text = path.read_text(encoding="utf-8")
    assert text.count(HTML_MARKER) == 1 and "南京 ≤ 15" in text and "L.map(" in text and "leaflet.js */" in text
    assert "<script src=" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]


def test_write_chunks_atomic(tmp_path):
    path = write_chunks_atomic(tmp_path / "a.txt", iter(["ab", "", "ç\n", "中"]))
    assert path.read_bytes() == "abç\n中".encode()
    with pytest.raises(UnicodeEncodeError):      # a lone surrogate: nothing left behind
        write_chunks_atomic(tmp_path / "b.txt", iter(["ok", "\ud800"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
