"""The coverage stage computes column by column what the (homes × categories) matrix formulas
give, bit for bit: the row sums repeat numpy's pairwise order, and the scores, flags and
summary equal a straightforward matrix computation on random times (NaN for nothing found),
uneven and fractional weights, several communities and a category without data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lifecircle import columns as col
from lifecircle.core import coverage
from lifecircle.core.profiles import load_profile


@pytest.mark.parametrize("k", [*range(1, 20), 24, 31, 40, 64, 129])
def test_row_sum_is_numpys_row_sum_bit_for_bit(k):
    rng = np.random.default_rng(k)
    for n in (1, 7, 1000):
        a = rng.standard_normal((n, k)) * 10.0 ** rng.integers(-9, 9, size=(n, k))
        got = coverage._row_sum([np.ascontiguousarray(a[:, j]) for j in range(k)])
        assert np.array_equal(got, a.sum(axis=1))     # exact, not approximate


def _reference_dim(homes, cats, cover_share, tiers):
    """The matrix formulas of the coverage stage (as they were written before the columns)."""
    w = np.array([c.weight for c in cats], dtype=float)
    t = np.column_stack([homes[col.time(c.id)].to_numpy(float) for c in cats])
    thr = np.array([c.minutes for c in cats], dtype=float)
    acc = np.column_stack([coverage.category_access(t[:, i], thr[i]) for i in range(len(cats))])
    wsum = w.sum() if w.sum() > 0 else float(len(cats))
    if w.sum() <= 0:
        w = np.ones_like(w)
    s = 100.0 * (acc * w).sum(1) / wsum
    covered = (((t <= thr) * w).sum(1) / wsum >= cover_share).astype(float)
    return s, covered, {tier: (((t <= tier) * w).sum(1) / wsum >= cover_share).astype(float)
                        for tier in tiers}


def _weighted_profile():
    """The default profile with fractional, uneven category weights."""
    prof = load_profile("default")
    rng = np.random.default_rng(7)
    cats = {c.id: dataclasses.replace(c, weight=float(rng.choice([0.1, 0.3, 1.0, 1.7, 2.0])))
            for c in prof.categories}
    dims = [dataclasses.replace(d, categories=[cats[c.id] for c in d.categories]) for d in prof.dimensions]
    return dataclasses.replace(prof, dimensions=dims)


@pytest.mark.parametrize("weighted", [False, True])
def test_scores_and_summary_equal_the_matrix_formulas(weighted):
    prof = _weighted_profile() if weighted else load_profile("default")
    rng = np.random.default_rng(3)
    n = 2000
    data = {}
    for c in prof.categories:
        t = rng.gamma(2.0, 6.0, n)
        t[rng.random(n) < 0.15] = np.nan                 # nothing found
        t[rng.random(n) < 0.05] = c.minutes               # exactly at the threshold
        data[col.time(c.id)] = t
    data[col.REACHABLE] = rng.random(n) > 0.05
    data[col.POPULATION] = rng.gamma(2.0, 3.0, n)
    data[col.COMMUNITY] = rng.choice(["a", "b", "c"], n)
    homes = pd.DataFrame(data)
    status = coverage.data_status(prof, {c.id: 1 for c in prof.categories[1:]})   # one without data
    tiers = (5, 10, 15)
    res = coverage.home_scores(homes, prof, 0.5, tiers, status=status)
    unreachable = ~homes[col.REACHABLE].to_numpy()
    keep = {k for k, v in status.items() if v != col.STATUS_NO_DATA}
    for dim in prof.dimensions:
        cats = [c for c in dim.categories if c.id in keep]
        if not cats:
            continue
        s, covered, at = _reference_dim(homes, cats, 0.5, tiers)
        for name, want in [(col.dim_score(dim.id), s), (col.dim_covered(dim.id), covered),
                           *((col.dim_covered_at(dim.id, q), at[q]) for q in tiers)]:
            want = np.where(unreachable, np.nan, want)
            assert np.array_equal(res[name].to_numpy(), want, equal_nan=True), name
    summary = coverage.summarize(res, prof, {c.id: 1 for c in prof.categories}, group=col.COMMUNITY,
                                 tiers=tiers, status=status, cover_share=0.5)
    dims = summary[summary.level == "dimension"]
    for (_, row) in dims.iterrows():
        h = res if row.community == "ALL" else res[res[col.COMMUNITY] == row.community]
        d = next(d for d in prof.dimensions if d.id == row.id)
        _, cov_all, _ = _reference_dim(h, list(d.categories), 0.5, ())
        pop = np.where(h[col.REACHABLE].to_numpy(), h[col.POPULATION].to_numpy(), 0.0)
        assert row[col.COVERED_ALL_CATEGORIES] == float(((cov_all > 0) * pop).sum() / pop.sum())
    cat = summary[(summary.level == "category") & (summary.community == "ALL")].set_index("id")
    pop = np.where(res[col.REACHABLE].to_numpy(), res[col.POPULATION].to_numpy(), 0.0)
    for c in prof.categories[1:]:
        t = res[col.time(c.id)].to_numpy()
        assert cat.loc[c.id, col.COVERED] == float(((t <= c.minutes) * pop).sum() / pop.sum())
        assert cat.loc[c.id, col.within(10)] == float(((t <= 10) * pop).sum() / pop.sum())
