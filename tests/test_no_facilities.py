"""A roads-and-homes extract with no facility of any category: a normal first try.

A synthetic street grid (tests/synthetic_osm.py) with a home in every block and one named
flagpole (no category of the profile): ``analyze`` must finish and write its map (it ended in
an IndexError while building the homes' popups), every category reads 无数据 / "no data",
and the headline numbers that cannot be computed (mean score, Gini) read "–" with the reason,
never ``nan``; ``map``, ``resources``, ``recommend``, ``check``, ``isochrones`` and ``links``
run on such a folder. Also a district with facilities and no homes, and one with a single
category.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from synthetic_osm import LAT0, LON0, STEP, grid_osm
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.cli import app

runner = CliRunner()
NAN = re.compile(r"\bnan\b", re.I)


def _ok(res, what):
    assert res.exit_code == 0, f"{what}: {res.output}"
    assert res.exception is None or isinstance(res.exception, SystemExit), what
    assert not NAN.search(res.output), f"{what} shows nan: {res.output}"
    return "".join(res.output.split())           # the console wraps: compare without spaces


def _flat(text):
    return "".join(text.split())


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = tmp_path_factory.mktemp("nofac") / "grid.osm"
    path.write_text(grid_osm({"man_made=flagpole": "Flag"}), encoding="utf-8")
    return path


def test_headline_says_missing_and_why(grid, tmp_path):
    res = runner.invoke(app, ["analyze", str(grid), "--out", str(tmp_path / "zh"), "--lang", "zh", "--no-map"])
    text = _ok(res, "analyze")
    assert "平均得分（有数据的维度）–基尼系数–（无数据：数据中没有任何类别的设施）" in text
    res = runner.invoke(app, ["analyze", str(grid), "--out", str(tmp_path / "en"), "--lang", "en", "--no-map"])
    text = _ok(res, "analyze --lang en")
    assert _flat("mean score (dimensions with data) –  Gini – (no data: no facility of any category "
                 "in the data)") in text
    r = lifecircle.load(tmp_path / "zh")
    assert r.summary[r.summary.level == "category"][col.DATA_STATUS].eq(col.STATUS_NO_DATA).all()
    page = r._repr_html_()
    assert not NAN.search(page) and "无数据：数据中没有任何类别的设施" in page


@pytest.fixture(scope="module")
def analysed(grid):
    out = grid.parent / "zh"
    return out, runner.invoke(app, ["analyze", str(grid), "--out", str(out), "--lang", "zh"])


def test_analyze_writes_the_map(analysed):
    out, res = analysed
    _ok(res, "analyze")
    assert (out / "map.html").exists() and (out / "summary.xlsx").exists()
    page = (out / "map.html").read_text(encoding="utf-8")
    assert json.dumps("综合得分（无数据）") in page     # the overall layer says so too (JSON text)


def test_every_command_runs_on_the_folder(analysed):
    out, _ = analysed
    root = out.parent
    _ok(runner.invoke(app, ["map", str(out), "--out", str(root / "m.html")]), "map")
    assert (root / "m.html").exists()
    _ok(runner.invoke(app, ["resources", str(out), "--out", str(root / "res")]), "resources")
    _ok(runner.invoke(app, ["recommend", str(out), "-c", "kindergarten", "--out", str(root / "rec")]),
        "recommend")
    for std in ("gb50180-2018", "tdt1062-2021"):
        _ok(runner.invoke(app, ["check", str(out), "-s", std, "--out", str(root / std)]), "check")
    _ok(runner.invoke(app, ["isochrones", str(out), "--homes", "3", "--out", str(root / "iso.gpkg")]),
        "isochrones")
    lat = LAT0 + 1.5 * STEP                    # across a block, street to street
    (root / "cand.csv").write_text(f"name,lng1,lat1,lng2,lat2\nA,{LON0 + STEP},{lat},{LON0 + 2 * STEP},"
                                   f"{lat + STEP}\n", encoding="utf-8")
    text = _ok(runner.invoke(app, ["links", str(out), "--candidates", str(root / "cand.csv"),
                                   "--out", str(root / "links")]), "links")
    # its gains are unknown, not zero: "–" in the table, and a note that says why
    assert "│1│A│" in text and "│–│–│" in text and "新增可达居民0表示无数据" in text


def test_facilities_but_no_homes(tmp_path):
    path = tmp_path / "nohomes.osm"
    text = grid_osm({"amenity=cafe": "Café", "shop=supermarket": "Super"})
    # the same grid without its residential buildings: refused in one line, no traceback
    path.write_text(text.replace('<tag k="building" v="residential"/>', ""), encoding="utf-8")
    res = runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "o"), "--lang", "zh"])
    assert res.exit_code == 2 and "没有找到住宅" in res.output, res.output
    assert isinstance(res.exception, SystemExit)


def test_one_category_only(tmp_path):
    path = tmp_path / "one.osm"
    path.write_text(grid_osm({"amenity=cafe": "Café"}), encoding="utf-8")
    text = _ok(runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "o"), "--lang", "zh"]),
               "analyze")
    assert "有数据的1个维度" in text
    page = (tmp_path / "o" / "map.html").read_text(encoding="utf-8")
    # the popups' tables, home by home: minutes (-1: none within reach) and nearest facility;
    # the café is the only facility: no other category may name it (pos[-1] was the café)
    t, f = (np.array(json.loads(re.search(rf'"{k}":(\[[-0-9,]*\])', page).group(1))) for k in "tf")
    assert len(t) == len(f) > 0 and (f[t < 0] == -1).all() and (f[t >= 0] == 0).all()
    assert (t >= 0).sum() == 16                      # one category (the café) a home, 16 homes


def test_batch_index_says_missing(grid, tmp_path):
    (tmp_path / "b.toml").write_text(
        f'out = "out"\nlang = "zh"\n[sources]\ngrid = {json.dumps(str(grid))}\n[[districts]]\n'
        f'name = "无设施"\nbbox = [{LON0 - 0.0005}, {LAT0 - 0.0005}, {LON0 + 4.5 * STEP}, {LAT0 + 4.5 * STEP}]\n'
        'source = "grid"\n', encoding="utf-8")
    _ok(runner.invoke(app, ["batch", str(tmp_path / "b.toml")]), "batch")
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert not NAN.search(page.replace("cannot be NaN", ""))        # (Leaflet's own message)
    assert "平均得分(有数据的维度): –<br>基尼系数: –<br>" in page and "无设施: –" in page


def test_score_histogram_says_missing(analysed):
    import matplotlib

    matplotlib.use("Agg")
    from lifecircle.render.figures import score_histogram

    r = lifecircle.load(analysed[0])
    fig = score_histogram(r, "zh")
    fig = getattr(fig, "figure", fig)
    texts = [t.get_text() for ax in fig.axes for t in [ax.title, *ax.texts]]
    assert not any(NAN.search(t) for t in texts), texts
    assert any("基尼系数 –" in t for t in texts) and "无数据：数据中没有任何类别的设施" in texts


def test_the_result_repr_never_says_nan(analysed):
    import lifecircle

    out, res = analysed
    _ok(res, "analyze")
    text = repr(lifecircle.load(out))
    assert "nan" not in text and "no data" in text
