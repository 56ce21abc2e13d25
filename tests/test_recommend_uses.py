"""Multi-category recommendations: one use per site unless its area holds the sum of the uses'
minimum areas; checked against exhaustive search on hand-made instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lifecircle.analyses import recommend as M


def _value(chosen, keys, w):
    ch = set(chosen)
    return sum(w[g] for g, key in enumerate(keys) if ch & set(key))


def _feasible(chosen, k, site, need, area):
    used = {}
    for o in chosen:
        used.setdefault(int(site[o]), []).append(o)
    if len(used) > k:
        return False
    for os_ in used.values():
        if np.isnan(area[os_[0]]):
            if len(os_) > 1:
                return False
        elif sum(need[o] for o in os_) > area[os_[0]] + 1e-9:
            return False
    return True


def test_278_m2_lot_takes_two_uses_not_three():
    # one 278 m² lot, three uses needing 80 + 100 + 150 = 330 m², each covering other residents
    site = np.array([0, 0, 0])
    need = np.array([80.0, 100.0, 150.0])
    area = np.full(3, 278.0)
    keys, w = [(0,), (1,), (2,)], np.array([10.0, 20.0, 30.0])
    for solve in (M.solve_options, lambda *a: M.greedy_options(*a)[0]):
        chosen = solve(keys, w, 1, site, need, area)
        assert sorted(chosen) == [1, 2]                       # 100 + 150 = 250 ≤ 278
        assert _value(chosen, keys, w) == 50.0
    # unknown area: one use only
    chosen = M.solve_options(keys, w, 1, site, need, np.full(3, np.nan))
    assert chosen == [2]


def test_options_match_exhaustive_search():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n_sites, n_cats, n_el = 5, 3, 30
        site = np.repeat(np.arange(n_sites), n_cats)
        need = np.tile(rng.choice([50.0, 100.0, 150.0], n_cats), n_sites)
        area = np.repeat(rng.choice([120.0, 260.0, 400.0, np.nan], n_sites), n_cats)
        keys = [tuple(sorted(set(rng.choice(len(site), rng.integers(1, 4)).tolist())))
                for _ in range(n_el)]
        w = rng.integers(1, 100, n_el).astype(float)
        k = int(rng.integers(1, 3))
        best = max(_value(c, keys, w) for r in range(len(site) + 1)
                   for c in itertools.combinations(range(len(site)), r)
                   if r <= 2 * k + 2 and _feasible(c, k, site, need, area))
        exact = M.solve_options(keys, w, k, site, need, area)
        assert _feasible(exact, k, site, need, area)
        assert _value(exact, keys, w) == pytest.approx(best)
        greedy, gains = M.greedy_options(keys, w, k, site, need, area)
        assert _feasible(greedy, k, site, need, area)
        assert sum(gains) == pytest.approx(_value(greedy, keys, w)) and sum(gains) <= best + 1e-9
