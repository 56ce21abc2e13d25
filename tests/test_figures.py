"""Report figures: the CJK font really is used for Chinese text, and the charts show the numbers
of the analysis (bar heights = summary values), written as real PNG and SVG files."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import shapely  # noqa: E402
from matplotlib.font_manager import FontProperties, findfont  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import lifecircle  # noqa: E402
from lifecircle import columns as col  # noqa: E402
from lifecircle import i18n  # noqa: E402
from lifecircle.errors import LifecircleError  # noqa: E402
from lifecircle.io.sources import read_osm  # noqa: E402
from lifecircle.render import figures as lf  # noqa: E402

CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def result():
    """The embedded Helsinki sample cut into two communities (west and east halves)."""
    from lifecircle.io.sources import embedded_sample

    data = read_osm(embedded_sample("helsinki"))
    w, s, e, n = data.streets.total_bounds
    mid = (w + e) / 2
    comm = gpd.GeoDataFrame({"community": ["西区", "东区"]},
                            geometry=[shapely.box(w, s, mid, n), shapely.box(mid, s, e, n)], crs=4326)
    return lifecircle.analyze(data, boundary=comm)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _texts(fig):
    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def _render(fig):
    """Draw the figure, failing on any 'Glyph … missing from font' warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing


def test_cjk_font_found_and_has_every_glyph_of_the_labels(result):
    name = lf.cjk_font()
    assert name is not None, "no CJK font: install noto-cjk-sans-otc or fonts-noto-cjk"
    path = findfont(FontProperties(family=name), fallback_to_default=False)
    assert path == lf.cjk_font_path()
    font = FT2Font(path)
    labels = [result.profile.display_name(d.id, "zh") for d in result.profile.dimensions]
    labels += [c.name_zh for c in result.profile.categories]
    labels += [zh for zh, _ in i18n.LABELS.values()]     # every word a figure or map may show
    chars = {ch for s in labels for ch in s if CJK.match(ch)}
    assert len(chars) > 50
    lacking = [ch for ch in chars if font.get_char_index(ord(ch)) == 0]
    assert not lacking, f"{path} lacks {''.join(lacking)}"
    # and a plain Latin font would not do: the check can fail
    dejavu = FT2Font(findfont(FontProperties(family="DejaVu Sans")))
    assert any(dejavu.get_char_index(ord(ch)) == 0 for ch in chars)


@pytest.mark.parametrize("make", [
    lambda r: lf.coverage_bar(r, "zh"), lambda r: lf.score_histogram(r, "zh"),
    lambda r: lf.radar(r, "zh"), lambda r: lf.what_if_chart(r, r, "zh")])
def test_chinese_text_is_drawn_with_the_cjk_font(result, make):
    fig = make(result)
    _render(fig)
    chinese = [t for t in _texts(fig) if CJK.search(t.get_text())]
    assert len(chinese) >= 3
    for t in chinese:
        path = findfont(t.get_fontproperties())
        font = FT2Font(path)
        lacking = [ch for ch in t.get_text() if not ch.isspace() and font.get_char_index(ord(ch)) == 0]
        assert not lacking, f"{t.get_text()!r} drawn with {path}, which lacks {lacking}"


def test_coverage_bar_heights_are_the_summary_values(result, tmp_path):
    fig = lf.coverage_bar(result, "en", path=tmp_path / "coverage")
    ax = fig.axes[0]
    s = result.summary
    dims = s[(s.level == "dimension") & (s.community == "ALL")].set_index("id")
    order = [d for d in lf.DIMENSION_ORDER if d in dims.index]
    assert [t.get_text() for t in ax.get_xticklabels()] == [dims.loc[d, "name_en"] for d in order]
    tiers = result.settings.thresholds_min
    assert len(ax.containers) == len(tiers)
    for bars, t in zip(ax.containers, tiers):
        heights = np.array([p.get_height() for p in bars])
        np.testing.assert_allclose(heights, 100 * dims.loc[order, f"within_{t}"].to_numpy(float))
        assert bars.get_label() == f"{t} min"
    # the 15-minute bar is never below the 5-minute one (coverage grows with time)
    h = [np.array([p.get_height() for p in b]) for b in ax.containers]
    assert (h[-1] >= h[0] - 1e-9).all()
    for suffix in ("png", "svg"):
        assert (tmp_path / f"coverage.{suffix}").exists()


def test_score_histogram_counts_residents_per_bin(result):
    fig = lf.score_histogram(result, "en")
    ax = fig.axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    h = result.homes
    ok = np.isfinite(h[col.SCORE].to_numpy(float))
    expected, _ = np.histogram(h[col.SCORE][ok], bins=np.arange(0, 105, 5), weights=h[col.POPULATION][ok])
    np.testing.assert_allclose(heights, expected)
    assert heights.sum() == pytest.approx(h[col.POPULATION][ok].sum())
    mean = np.average(h[col.SCORE][ok], weights=h[col.POPULATION][ok])
    assert ax.lines[0].get_xdata()[0] == pytest.approx(mean)
    assert result.overall()["score_mean"] == pytest.approx(mean)


def test_radar_one_chart_per_community_with_the_dimension_scores(result):
    fig = lf.radar(result, "zh")
    polar = [a for a in fig.axes if a.name == "polar" and a.get_visible()]
    units = sorted(result.communities["community"])
    assert len(polar) == len(units) == 2
    s = result.summary
    for ax in polar:
        unit = ax.get_title()
        line = [ln for ln in ax.lines if ln.get_gid() == f"radar:{unit}"][0]
        r = np.asarray(line.get_ydata(), float)[:-1]
        rows = s[(s.level == "dimension") & (s.community == unit)].set_index("id")
        order = [d for d in lf.DIMENSION_ORDER if d in rows.index]
        np.testing.assert_allclose(r, np.nan_to_num(rows.loc[order, "score_mean"].to_numpy(float)))
        assert [t.get_text() for t in ax.get_xticklabels()] == list(rows.loc[order, "name_zh"])
    # no communities (or by=None): one radar of the whole area
    whole = lf.radar(result, "en", by=None)
    assert [a.get_title() for a in whole.axes if a.get_visible()] == ["whole area"]


def test_what_if_chart_bars_are_before_and_after(result):
    w = {"category": "kindergarten", "covered_share_before": 0.25, "covered_share_after": 0.6}
    fig = lf.what_if_chart(w, lang="zh", profile=result.profile)
    ax = fig.axes[0]
    before, after = ax.containers
    assert [p.get_height() for p in before] == pytest.approx([25.0])
    assert [p.get_height() for p in after] == pytest.approx([60.0])
    assert ax.get_xticklabels()[0].get_text() == result.profile.display_name("kindergarten", "zh")
    fig = lf.what_if_chart({"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 2.5}, "en")
    assert [p.get_height() for p in fig.axes[0].containers[1]] == pytest.approx([3.0, 2.5])
    with pytest.raises(TypeError):
        lf.what_if_chart({"no": "what-if"}, lang="en")
    # a category without data: no "before" bar, labelled "no data" (never a 0 or "nan")
    w = {"category": "kindergarten", "covered_share_before": float("nan"),
         "covered_share_after": 0.6}
    ax = lf.what_if_chart(w, lang="en").axes[0]
    before = ax.containers[0]
    assert [p.get_height() for p in before] == [0.0]
    labels = [t.get_text() for t in ax.texts]
    assert "no data" in labels and "nan" not in labels


@pytest.mark.parametrize("name", ["coverage_bar", "score_histogram", "radar", "what_if_chart"])
def test_each_figure_writes_png_and_svg_with_content(result, tmp_path, name):
    fn = getattr(lf, name)
    args = (result, result) if name == "what_if_chart" else (result,)
    fn(*args, lang="zh", path=tmp_path / name)
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = plt.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05                      # not a blank canvas
    root = ET.parse(svg).getroot()
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) > 20                                # text as outlines, bars, grid
    assert "OpenStreetMap contributors" in svg.read_text(encoding="utf-8")   # text kept as comment
    one = lf.save_figure(plt.figure(), tmp_path / "single.svg")
    assert one == [tmp_path / "single.svg"] and one[0].exists()


def test_bad_lang_is_one_clear_error(result):
    with pytest.raises(LifecircleError, match="language"):
        lf.coverage_bar(result, "fr")


def test_figures_leave_the_global_rcparams_alone(result):
    import matplotlib as mpl

    before = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    lf.coverage_bar(result, "zh")
    lf.radar(result, "en")
    after = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    assert after == before
