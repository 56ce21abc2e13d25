"""A roads-and-homes extract with no facility of any category: a normal first try.

A synthetic street grid (tests/synthetic_osm.py) with a home in every block and one named
flagpole (no category of the profile): every category reads 无数据 / "no data", and the
headline numbers that cannot be computed (mean score, Gini) read "–" with the reason, never
``nan``.
"""

from __future__ import annotations

import re

import pytest
from synthetic_osm import grid_osm
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
