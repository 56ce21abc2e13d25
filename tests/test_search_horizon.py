"""The searches reach as far as the outputs need: a category threshold over the default
30-minute horizon, and a tier over it, are measured (brute-force networkx), not cut at 30
minutes and shown as "none found" (an independent tester found a 60-minute museum left 583
of 788 homes "not covered" though 606 lie within 60 minutes)."""

from __future__ import annotations

import numpy as np
from bruteforce import nearest_minutes, split_graph

import lifecircle
from lifecircle import columns as col
from lifecircle.core.coverage import category_access
from lifecircle.io.sources import embedded_sample

P60 = """\
name: p60
version: "1"
dimensions:
- id: leisure
  name_zh: 休闲
  name_en: Leisure
  weight: 1
  categories:
  - id: museum
    name_zh: 博物馆
    name_en: Museum
    minutes: 60
    weight: 1
    match:
      - {tourism: museum}
"""


def _brute(result, cat):
    snap = result.facility_snap.take(result.category_facilities(cat))
    g = split_graph(result.network, result.home_snap, [snap])
    return nearest_minutes(g, len(result.homes), len(snap), 0)


def test_a_60_minute_threshold_is_measured_to_twice_it(tmp_path):
    prof = tmp_path / "p60.yaml"
    prof.write_text(P60, encoding="utf-8")
    r = lifecircle.analyze(embedded_sample(), profile=str(prof), speed=1.0, lang="en")
    t = r.homes[col.time("museum")].to_numpy(float)
    want = _brute(r, "museum")
    want[want > 120] = np.nan
    ok = r.home_snap.reachable & ~r.home_snap.ambiguous
    np.testing.assert_allclose(t[ok], want[ok], atol=0.01, equal_nan=True)
    # homes between 30 and 60 minutes: within the threshold, covered, full access
    mid = ok & (want > 30) & (want <= 60)
    assert mid.sum() > 100
    assert (r.homes[col.dim_covered("leisure")].to_numpy(float)[mid] == 1).all()
    # and between 60 and 120 the score falls linearly, not to 0 at 30
    far = ok & (want > 60) & (want < 120)
    assert far.any()
    np.testing.assert_allclose(r.homes[col.SCORE].to_numpy(float)[far],
                               100 * category_access(want[far], 60), atol=0.05)
    row = r.summary[(r.summary["level"] == "category") & (r.summary["id"] == "museum")].iloc[0]
    pop = r.homes[col.POPULATION].to_numpy(float)
    share = 100 * pop[t <= 60].sum() / pop[r.home_snap.reachable].sum()
    assert abs(100 * row["covered"] - share) < 1e-9 and row["covered"] > 0.6
    assert r.settings.max_minutes == 120          # the horizon the result was measured with


def test_a_tier_over_30_minutes_is_measured():
    r = lifecircle.analyze(embedded_sample(), speed=1.0, thresholds_min=(5, 10, 45), lang="en")
    cat = max((c.id for c in r.profile.categories), key=lambda c: len(r.category_facilities(c)))
    t = r.homes[col.time(cat)].to_numpy(float)
    want = _brute(r, cat)
    want[want > 45] = np.nan
    ok = r.home_snap.reachable & ~r.home_snap.ambiguous
    assert (ok & (want > 30)).sum() > 20
    np.testing.assert_allclose(t[ok], want[ok], atol=0.01, equal_nan=True)
    assert r.settings.max_minutes == 45


def test_the_default_profile_keeps_the_30_minute_horizon():
    from lifecircle.core.coverage import search_minutes
    from lifecircle.core.profiles import load_profile
    from lifecircle.settings import DEFAULTS

    assert search_minutes(load_profile(), DEFAULTS) == 30
    assert search_minutes(load_profile(), DEFAULTS.with_(max_minutes=60)) == 60
