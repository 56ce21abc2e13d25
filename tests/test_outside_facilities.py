"""POI-table rows far outside the study area are not data about it: they are left out and
named as outside (zh and en), and a category with no facility in the study area stays "no
data" — not a measured 0 % (an independent tester's Beijing rows in a Nanjing run made
childcare 0.0 % everywhere, the only note "farther than 300 m from any walkable street")."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import shapely

import lifecircle
from lifecircle import columns as col
from lifecircle.io.sources import embedded_sample

#: Beijing (GCJ-02), ~900 km from Xinjiekou; the sample has no childcare of its own
BEIJING = "name,lng,lat,category\nBJ1,116.40,39.90,kindergarten\nBJ3,116.42,39.92,childcare\n"


def _row(result, cat):
    s = result.summary
    return s[(s["level"] == "category") & (s["id"] == cat) & (s[col.COMMUNITY] == "ALL")].iloc[0]


@pytest.fixture(scope="module")
def beijing_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("poi") / "poi_bj.csv"
    path.write_text(BEIJING, encoding="utf-8")
    return path


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rows_in_another_city_leave_the_category_without_data(beijing_csv, lang):
    r = lifecircle.analyze(embedded_sample(), facilities_table=beijing_csv, facilities_crs="gcj02",
                           lang=lang)
    assert "childcare" not in set(r.facilities[col.CATEGORY])
    row = _row(r, "childcare")
    assert row["data_status"] == col.STATUS_NO_DATA
    assert math.isnan(row["covered"]) and math.isnan(row["within_15"])
    assert r.homes[col.count("childcare", 15)].isna().all()
    # named as outside the study area, with how far, not as "far from a street"
    word = "之外" if lang == "zh" else "outside the study area"
    notes = [n for n in r.notes if word in n and "2" in n]
    assert len(notes) == 1, r.notes
    km = [float(x.replace(",", "")) for x in re.findall(r"(\d[\d,]*)(?:–\d[\d,]*)? (?:km|公里)", notes[0])]
    assert km and 850 < km[0] < 950, notes[0]
    far = "距步行道路超过" if lang == "zh" else "farther than 300 m from any walkable street"
    assert not any(far in n for n in r.notes if "设施" in n or "facilit" in n)


def test_declared_complete_a_category_with_none_here_is_a_real_gap(beijing_csv):
    r = lifecircle.analyze(embedded_sample(), facilities_table=beijing_csv, facilities_crs="gcj02",
                           complete=["childcare"], lang="en")
    row = _row(r, "childcare")
    assert row["data_status"] == col.STATUS_COMPLETE and row["covered"] == 0.0


def test_outside_is_the_boundary_and_its_margin_or_the_streets_extent():
    from types import SimpleNamespace

    from lifecircle.pipeline import _outside_study_area
    from lifecircle.settings import DEFAULTS

    area = shapely.box(0, 0, 1000, 1000)
    pts = shapely.points([(500, 500), (2400, 500), (2600, 500), (500, 500)])
    unattached = np.array([True, True, True, False])
    crs = "EPSG:32650"
    out, km = _outside_study_area(None, pts, unattached, area, crs, DEFAULTS)
    # inside; within the 1,500 m margin; beyond it; beyond nothing but attached to a street
    assert out.tolist() == [False, False, True, False]
    assert km == pytest.approx([1.6], abs=0.01)
    # no boundary: the extent of the walking network
    net = SimpleNamespace(node_x=np.array([0.0, 1000, 1000, 0]), node_y=np.array([0.0, 0, 1000, 1000]))
    out, km = _outside_study_area(net, pts, unattached, None, crs, DEFAULTS)
    assert out.tolist() == [False, True, True, False]
    assert km == pytest.approx([1.4, 1.6], abs=0.01)
