"""Residents whose homes do not reach the walking network are left out of every "% of
residents" (their street may be missing from the data, so "no access" could be wrong too) —
but never silently: the headline says what its share is of and who is left out, in the console
(zh/en), summary.xlsx, the Jupyter summary and the batch districts table (an independent
tester's 30-floor block 300 m+ from any street: "73,330 residents … 58.5 % of residents", the
58.5 % being of the 46,410 whose homes reach a street)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.batch.run import district_row
from lifecircle.cli import app
from lifecircle.io.sources import embedded_sample


@pytest.fixture(scope="module")
def far_osm(tmp_path_factory):
    """The Xinjiekou sample as OSM XML with a 30-floor apartment block ~3 km north of it,
    farther than 300 m from any street."""
    import osmium

    folder = tmp_path_factory.mktemp("far")
    xml = folder / "base.osm"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(embedded_sample())):
            writer.add(obj)
    pts = [(0, 0), (0, .002), (.0015, .002), (.0015, 0)]
    add = "".join(f'<node id="{9000000000 + i}" version="1" lat="{32.07 + a}" lon="{118.78 + b}"/>'
                  for i, (a, b) in enumerate(pts))
    add += ('<way id="9000000000" version="1">' + "".join(f'<nd ref="{9000000000 + i}"/>' for i in [0, 1, 2, 3, 0])
            + '<tag k="building" v="apartments"/><tag k="building:levels" v="30"/></way>')
    far = folder / "far.osm"
    far.write_text(xml.read_text(encoding="utf-8").replace("</osm>", add + "</osm>"), encoding="utf-8")
    return far


@pytest.fixture(scope="module")
def far_result(far_osm):
    return lifecircle.analyze(far_osm, lang="en")


def test_the_overall_row_counts_the_residents_left_out(far_result):
    r = far_result
    o = r.overall()
    pop = r.homes[col.POPULATION].to_numpy(float)
    reach = r.home_snap.reachable
    assert (~reach).sum() == 1 and o["unreachable_homes"] == 1
    assert o["population"] == pytest.approx(pop.sum())
    assert o["unreachable_population"] == pytest.approx(pop[~reach].sum()) and o["unreachable_population"] > 20000
    # the share is of the residents whose homes reach the network
    all6 = np.nan_to_num(r.homes[col.all_six(15)].to_numpy(float)) > 0
    assert o["covered"] == pytest.approx(pop[all6 & reach].sum() / pop[reach].sum())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_headline_says_what_its_share_is_of(far_result, lang):
    o = far_result.overall()
    base, left = o["population"] - o["unreachable_population"], o["unreachable_population"]
    line = far_result.headline(lang)
    pct = f"{100 * o['covered']:.1f}%"
    if lang == "en":
        assert f"{pct} of the {base:,.0f} residents whose homes reach the walking network" in line
        assert f"{left:,.0f} residents in 1 home(s) farther than 300 m from any street left out" in line
    else:
        assert f"住宅连通步行网络的 {base:,.0f} 名居民的 {pct}" in line
        assert f"另有 1 个住宅距任何道路超过 300 米，其 {left:,.0f} 名居民未计入" in line
    html = far_result._repr_html_() if lang == far_result.settings.lang else ""
    if html:
        assert f"{base:,.0f} residents whose homes reach the walking network" in html
        assert f"{o['population']:,.0f} residents" in html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_console_and_summary_xlsx_state_the_base(far_osm, tmp_path, lang):
    out = tmp_path / f"out_{lang}"
    run = CliRunner().invoke(app, ["analyze", str(far_osm), "--out", str(out), "--no-map", "--lang", lang])
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    s = pd.read_csv(out / "summary.csv")
    o = s[(s.level == "overall") & (s.community == "ALL")].iloc[0]
    base, left = o["population"] - o["unreachable_population"], o["unreachable_population"]
    total = f"{o['population']:,.0f}"
    if lang == "en":
        assert f"residents {total}" in text
        assert f"of the {base:,.0f} residents whose homes reach the walking network" in text
        assert f"1 home(s) ({left:,.0f} residents) farther than 300 m" in text
    else:
        assert f"居民 {total}" in text
        assert f"住宅连通步行网络的 {base:,.0f} 名居民的" in text.replace("名 居民", "名居民")
        assert f"1 个住宅（{left:,.0f} 人）距步行道路超过 300" in text
    x = pd.read_excel(out / "summary.xlsx", sheet_name=None)
    about = " ".join(x["说明" if lang == "zh" else "about"].iloc[:, 0].astype(str))
    assert f"{base:,.0f}" in about and f"{left:,.0f}" in about
    sheet = x["汇总" if lang == "zh" else "summary"]
    head = "不可达住宅人口(不计入比例)" if lang == "zh" else "residents in unreachable homes (not in the shares)"
    assert sheet[head].max() == round(left)


def test_the_batch_row_carries_the_residents_left_out(far_result):
    row = district_row(far_result.summary, "en")
    assert row["unreachable_population"] == pytest.approx(far_result.overall()["unreachable_population"])
    assert row[col.POPULATION] == pytest.approx(far_result.overall()["population"])
