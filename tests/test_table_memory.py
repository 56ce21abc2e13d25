"""The home table is not copied wholesale at the engine and coverage stages.

At a million-node city the home table holds ~1M rows × ~355 columns (~3 GB): building the
engine's columns into a fresh block, or deep-copying the table to add the coverage columns,
each held a second copy at the run's peak. These tests pin the two shallow steps and that
the values are still the engine's and the hand-computed scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_osm import grid_osm

import lifecircle
from lifecircle import columns as col
from lifecircle.core import engine as engine_mod
from lifecircle.core.coverage import home_scores
from lifecircle.core.profiles import load_profile

FACILITIES = {"shop=supermarket": "Super Uno", "amenity=school": "Escola da Vila",
              "highway=bus_stop": "Praça", "leisure=park": "Jardim"}


def _homes(n: int, minutes: float, reachable) -> pd.DataFrame:
    prof = load_profile("default")
    data = {col.time(c.id): np.full(n, minutes) for c in prof.categories}
    data[col.REACHABLE] = np.asarray(reachable, bool)
    data["extra"] = np.arange(n, dtype=float)
    return pd.DataFrame(data)


def test_home_scores_adds_columns_without_copying_or_touching_the_input():
    prof = load_profile("default")
    homes = _homes(3, 0.0, [True, False, True])
    before = homes.copy()
    res = home_scores(homes, prof, 0.8, (5, 10, 15))
    # the input keeps its columns and values (copy-on-write), the result shares them
    pd.testing.assert_frame_equal(homes, before)
    assert np.shares_memory(res["extra"].to_numpy(), homes["extra"].to_numpy())
    # every category at 0 minutes: every dimension covered, score 100; the unreachable home
    # has no score (NaN), not zero
    assert res[col.SCORE].tolist()[0] == pytest.approx(100.0)
    assert np.isnan(res[col.SCORE].to_numpy()[1])
    assert res[col.all_six(15)].tolist()[0] == 1.0 and np.isnan(res[col.all_six(15)].to_numpy()[1])
    for dim in prof.dimensions:
        got = res[col.dim_covered_at(dim.id, 5)].to_numpy()
        assert got[0] == 1.0 and got[2] == 1.0 and np.isnan(got[1])


def test_home_scores_far_homes_score_zero():
    prof = load_profile("default")
    res = home_scores(_homes(2, 60.0, [True, True]), prof, 0.8, (5, 10, 15))
    assert res[col.SCORE].tolist() == [0.0, 0.0]
    assert res[col.all_six(15)].tolist() == [0.0, 0.0]


def _spied_analyze(tmp_path, monkeypatch, **kw):
    """``analyze`` on the grid district, with the engine's ReachMetrics it used."""
    path = tmp_path / "grid.osm"
    path.write_text(grid_osm(FACILITIES), encoding="utf-8")
    seen = []
    reach = engine_mod.AccessEngine.reach

    def spy(self, *a, **k):
        m = reach(self, *a, **k)
        seen.append(m)
        return m

    monkeypatch.setattr(engine_mod.AccessEngine, "reach", spy)
    r = lifecircle.analyze(str(path), **kw)
    (m,) = seen
    return r, m


def test_engine_columns_are_the_engine_arrays_not_a_copy(tmp_path, monkeypatch):
    r, m = _spied_analyze(tmp_path, monkeypatch, metrics="all")
    cats = [c.id for c in r.profile.categories]
    i = cats.index("supermarket")
    t = r.homes[col.time("supermarket")].to_numpy()
    # the values are the engine's, and the column is (a view of) the engine's array
    np.testing.assert_array_equal(t, m.nearest[i])
    assert np.isfinite(t).any()
    assert np.shares_memory(t, m.nearest)
    assert np.shares_memory(r.homes[col.kmean("supermarket")].to_numpy(), m.kmean)
    assert np.shares_memory(r.homes[col.count("supermarket", 15)].to_numpy(), m.counts)


def test_opt_in_metrics_are_neither_computed_nor_held_by_default(tmp_path, monkeypatch):
    """By default the engine computes the nearest minutes and the counts only: no k-nearest
    mean, decay or 2SFCA array exists and the table has no k_/g_/a_ column; the counts are
    compact integers (int16: no category has more facilities than int16 holds)."""
    r, m = _spied_analyze(tmp_path, monkeypatch)
    assert m.kmean is None and m.found is None and m.decay is None and m.sfca is None
    assert m.counts.dtype == np.int16
    heads = {col.parse(c)[0] for c in r.homes.columns if col.parse(c)}
    assert {"t", "n5", "n10", "n15"} <= heads and not heads & {"k", "g", "a"}
    n15 = r.homes[col.count("supermarket", 15)]
    assert n15.dtype == np.int16 and n15.max() >= 1
    assert np.shares_memory(n15.to_numpy(), m.counts)


def test_home_scores_again_replaces_its_columns_in_place():
    """Scoring a scored table (a what-if) replaces the columns where they are, no duplicates."""
    prof = load_profile("default")
    first = home_scores(_homes(2, 60.0, [True, False]), prof, 0.8, (5, 10, 15))
    again = first.copy()
    for c in prof.categories:
        again[col.time(c.id)] = 0.0
    res = home_scores(again, prof, 0.8, (5, 10, 15))
    assert list(res.columns) == list(first.columns)
    assert res[col.SCORE].tolist()[0] == pytest.approx(100.0) and np.isnan(res[col.SCORE].to_numpy()[1])
    assert first[col.SCORE].tolist()[0] == 0.0


def test_summary_per_community_does_not_copy_the_table():
    """Summaries per community copy only the columns they read, not the whole home table
    (at a city with ~355 columns the groups were a second table at once); each community's
    rows are the summary of its homes alone."""
    import tracemalloc

    from lifecircle.core.coverage import summarize

    prof = load_profile("default")
    n = 8000
    rng = np.random.default_rng(7)
    homes = pd.DataFrame({col.time(c.id): rng.uniform(0, 25, n) for c in prof.categories})
    homes.loc[rng.random(n) < 0.2, col.time("park")] = np.nan
    homes[col.REACHABLE] = rng.random(n) > 0.05
    homes[col.POPULATION] = rng.uniform(1, 50, n)
    homes[col.COMMUNITY] = rng.choice(["甲", "乙", "丙", "丁"], n)
    homes = home_scores(homes, prof, 0.5, (5, 10, 15))
    junk = pd.DataFrame(rng.random((n, 300)), columns=[f"x{i}" for i in range(300)])
    homes = pd.concat([homes, junk], axis=1)
    table_bytes = int(homes.memory_usage(deep=False).sum())
    counts = {c.id: 3 for c in prof.categories}
    tracemalloc.start()
    got = summarize(homes, prof, counts, group=col.COMMUNITY)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < table_bytes / 3, (peak, table_bytes)
    for name in ("甲", "丙"):
        alone = summarize(homes[homes[col.COMMUNITY] == name], prof, counts)
        mine = got[got.community == name].drop(columns="community").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.drop(columns="community"), check_exact=True)
