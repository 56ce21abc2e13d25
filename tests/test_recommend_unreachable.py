"""recommend and the gap a site could close: a home that reaches no street is out of every share
of residents (its street may be missing from the data), so it is in no recommendation's gap
either, and the console says how many residents that leaves out (tester: Boston's 238 residents
of a 13-storey block 406 m from any street were 'lacking a bank' while the headline left them
out)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_file

from lifecircle import columns as col
from lifecircle.analyses.recommend import recommend
from lifecircle.analyses.resources import build_inventory as inventory


@pytest.fixture(scope="module")
def far_block(tmp_path_factory):
    """Xinjiekou's XML with one 30-storey block 1.5 km north of every street."""
    src = shared_file("china/nanjing_xinjiekou_2021.osm")
    text = src.read_text(encoding="utf-8")
    pts = [(0, 0), (0, .002), (.0015, .002), (.0015, 0)]
    add = "".join(f'<node id="{9000000000 + i}" version="1" lat="{32.07 + a}" lon="{118.78 + b}"/>'
                  for i, (a, b) in enumerate(pts))
    add += ('<way id="9000000000" version="1">' + "".join(f'<nd ref="{9000000000 + i}"/>' for i in [0, 1, 2, 3, 0])
            + '<tag k="building" v="apartments"/><tag k="building:levels" v="30"/></way>')
    path = tmp_path_factory.mktemp("far") / "far.osm"
    path.write_text(text.replace("</osm>", add + "</osm>"), encoding="utf-8")
    from lifecircle.pipeline import analyze

    return analyze(path)


def test_a_home_that_reaches_no_street_is_in_no_gap(far_block):
    r = far_block
    homes = r.homes
    reach = homes[col.REACHABLE].to_numpy(bool)
    assert (~reach).sum() >= 1
    cat = "kindergarten"
    inv = inventory(r)
    table = recommend(r, inv, cat, k=2)
    pop = np.asarray(inv.access.population, float)
    t = homes[col.time(cat)].to_numpy(float)
    lacking = ~(np.nan_to_num(t, nan=np.inf) <= r.profile.category(cat).minutes)
    assert table.attrs["gap_by_category"][cat] == pytest.approx(pop[lacking & reach].sum())
    assert table.attrs["unreachable_population"] == pytest.approx(pop[~reach].sum())
    assert table.attrs["unreachable_population"] > 10_000      # the 30-storey block


def test_the_console_says_who_is_left_out(far_block, tmp_path):
    from io import StringIO

    from rich.console import Console

    from lifecircle.cli.resources import print_recommendations

    inv = inventory(far_block)
    table = recommend(far_block, inv, "kindergarten", k=2)
    for lang, word in (("en", "reach no walking street"), ("zh", "不计入缺口")):
        buf = StringIO()
        print_recommendations(table, far_block.profile, lang, out=Console(file=buf, width=400))
        text = buf.getvalue()
        assert word in text and f"{table.attrs['unreachable_population']:,.0f}" in text


def test_what_if_shares_are_of_the_residents_who_reach_the_network(far_block):
    """what_if's shares have the summary's base (reviewer: with max_snap_m = 25 Xinjiekou's
    supermarket share before read 0.298 against the summary's 0.652)."""
    from lifecircle.analyses.recommend import what_if

    r = far_block
    inv = inventory(r)
    for cat in ("supermarket", "kindergarten"):
        got = what_if(r, cat, [], inv)
        row = r.summary[(r.summary["community"] == "ALL") & (r.summary["id"] == cat)]
        assert got["covered_share_before"] == pytest.approx(float(row["covered"].iloc[0]), abs=1e-9)
        assert got["unreachable_population"] > 10_000
        reach = r.homes[col.REACHABLE].to_numpy(bool)
        assert np.isnan(got["minutes"][~reach]).all()
