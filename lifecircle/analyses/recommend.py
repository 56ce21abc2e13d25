"""Where to build: choose idle sites that close the most walking gaps.

:func:`recommend` solves the maximal covering location problem (MCLP, Church & ReVelle 1974)
over the sites of a resource inventory (:func:`lifecircle.analyses.resources.build_inventory`): pick
``k`` sites that maximise the residents who lack a category within its threshold today and
would reach a new facility at a picked site within it. It is an integer programme solved with
PuLP/CBC; large instances (or no solver) fall back to the greedy heuristic, which is within
1 - 1/e of the optimum. Homes with the same set of covering sites are merged first, which
shrinks the programme a lot.

:func:`what_if` puts facilities at chosen sites and returns the new coverage through the
engine's exact incremental update (:meth:`AccessEngine.add_facility`).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from lifecircle import columns as col
from lifecircle.errors import LifecircleError, OptionError, RecommendError
from lifecircle.analyses.resources import BEST_USES, SITE_ID, TYPE, USES, Inventory



def _categories(result, category) -> list[str]:
    cats = [category] if isinstance(category, str) else list(category)
    known = set(result.profile.category_ids)
    bad = [c for c in cats if c not in known]
    if bad:
        raise RecommendError(f"unknown categor{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}; "
                             f"the profile has: {', '.join(result.profile.category_ids)}")
    return cats


def coverage_sets(inv: Inventory, categories: list[str], suitable_only: bool = True):
    """Candidate sites and what each would newly cover.

    Returns ``(candidates, elem_site, elem_id, weight)``: candidate site rows, and (site,
    element) incidence where an element is one (category, home) pair with weight = residents.
    """
    sites = inv.sites
    n = len(sites)
    cand = np.ones(n, dtype=bool)
    if suitable_only:
        uses = sites[USES].fillna("").to_numpy()
        cand = np.array([any(c in u.split(",") for c in categories) for u in uses], dtype=bool)
    pop = inv.access.population
    H = len(pop)
    es, ei = [], []
    for j, c in enumerate(categories):
        s, h = inv.access.covers(c)
        ok = cand[s]
        if suitable_only:
            uses = sites[USES].fillna("").to_numpy()
            host = np.array([c in u.split(",") for u in uses], dtype=bool)
            ok &= host[s]
        es.append(s[ok])
        ei.append(j * H + h[ok])
    es = np.concatenate(es) if es else np.zeros(0, np.int64)
    ei = np.concatenate(ei) if ei else np.zeros(0, np.int64)
    weight = np.tile(pop, len(categories))
    return np.flatnonzero(cand), es, ei, weight


def _compress(es, ei, weight):
    """Merge elements covered by the same set of sites: (groups' site lists, group weights)."""
    if len(es) == 0:
        return [], np.zeros(0)
    order = np.lexsort((es, ei))
    es, ei = es[order], ei[order]
    start = np.flatnonzero(np.r_[True, ei[1:] != ei[:-1]])
    bounds = np.r_[start, len(ei)]
    groups: dict[tuple, float] = {}
    for a, b in zip(bounds[:-1], bounds[1:]):
        key = tuple(es[a:b].tolist())
        groups[key] = groups.get(key, 0.0) + weight[ei[a]]
    keys = list(groups)
    return keys, np.array([groups[k] for k in keys])


def greedy(keys, w, k, candidates):
    """Greedy MCLP on compressed groups: returns picked sites and the gain of each pick."""
    site_groups: dict[int, list[int]] = {}
    for g, key in enumerate(keys):
        for s in key:
            site_groups.setdefault(s, []).append(g)
    covered = np.zeros(len(keys), dtype=bool)
    picks, gains = [], []
    pool = [s for s in candidates if s in site_groups]
    for _ in range(min(k, len(pool))):
        best, best_gain = None, 0.0
        for s in pool:
            if s in picks:
                continue
            idx = site_groups[s]
            gain = float(w[idx][~covered[idx]].sum())
            if gain > best_gain + 1e-9 or (best is None and gain >= 0):
                best, best_gain = s, gain
        if best is None or best_gain <= 0:
            break
        picks.append(best)
        gains.append(best_gain)
        covered[site_groups[best]] = True
    return picks, gains


def solve_mclp(keys, w, k, candidates, time_limit: float = 60.0):
    """Exact MCLP with PuLP/CBC on compressed groups; returns picked sites (unordered) or
    None when the solver is unavailable or fails."""
    try:
        import pulp
    except ImportError:  # pragma: no cover
        return None
    import warnings

    sites = sorted({s for key in keys for s in key})
    if not sites:
        return []
    with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve(pulp, keys, w, k, sites, time_limit)


def _solve(pulp, keys, w, k, sites, time_limit):
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = {s: pulp.LpVariable(f"x{s}", cat="Binary") for s in sites}
    y = [pulp.LpVariable(f"y{g}", lowBound=0, upBound=1) for g in range(len(keys))]
    prob += pulp.lpSum(float(w[g]) * y[g] for g in range(len(keys)))
    for g, key in enumerate(keys):
        prob += y[g] <= pulp.lpSum(x[s] for s in key)
    prob += pulp.lpSum(x.values()) <= k
    try:
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
        if not solver.available():
            return None
        status = prob.solve(solver)
    except Exception:
        return None
    if pulp.LpStatus.get(status) not in ("Optimal",):
        return None
    return [s for s in sites if (x[s].value() or 0) > 0.5]


def recommend(result, inventory: Inventory, category, k: int = 5, method: str = "auto",
              suitable_only: bool = True, max_exact_pairs: int = 400_000,
              time_limit: float = 60.0) -> pd.DataFrame:
    """Choose ``k`` sites maximising the residents newly covered for ``category`` (an id or a
    list of ids: a picked site then hosts each of them it suits).

    ``method``: "auto" (exact with PuLP/CBC unless the instance has more than
    ``max_exact_pairs`` site-group pairs, then greedy), "exact" or "greedy". Returns one row
    per pick in the order of its marginal gain: ``rank``, ``site_id``, ``type``,
    ``newly_covered`` (residents the pick adds), ``cumulative``, ``share_of_gap`` and the
    method used (``attrs``: ``method``, ``seconds``, ``gap_population``, ``no_data``: the
    categories with no facility in the data, for which the gap assumes none exist).
    """
    t0 = time.perf_counter()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionError("--k", f"{k!r}: the number of sites to pick must be a whole number of at least 1")
    cats = _categories(result, category)
    cand, es, ei, weight = coverage_sets(inventory, cats, suitable_only)
    keys, w = _compress(es, ei, weight)
    pairs = sum(len(key) for key in keys)
    used = method
    picks = None
    if method not in ("auto", "exact", "greedy"):
        raise RecommendError(f"unknown method {method!r}: use auto, exact or greedy")
    if method == "exact" or (method == "auto" and pairs <= max_exact_pairs):
        picks = solve_mclp(keys, w, k, cand, time_limit)
        used = "exact" if picks is not None else "greedy"
    if picks is None:
        used = "greedy"
        picks, _ = greedy(keys, w, k, cand)
    # order picks by marginal gain (greedy order within the chosen set)
    order, gains = greedy(keys, w, len(picks), picks) if picks else ([], [])
    rest = [p for p in picks if p not in order]  # picks adding nothing
    order += rest
    gains += [0.0] * len(rest)
    sites = inventory.sites
    gap_pop = float(w.sum())
    cum = np.cumsum(gains) if gains else np.zeros(0)
    table = pd.DataFrame({
        "rank": np.arange(1, len(order) + 1),
        SITE_ID: sites[SITE_ID].to_numpy()[order] if order else [],
        TYPE: sites[TYPE].to_numpy()[order] if order else [],
        "area_m2": sites["area_m2"].to_numpy()[order] if order else [],
        "category": ",".join(cats),
        "newly_covered": np.round(gains, 1),
        "cumulative": np.round(cum, 1),
        "share_of_gap": np.round(cum / gap_pop, 4) if gap_pop > 0 else 0.0,
        BEST_USES: sites[BEST_USES].to_numpy()[order] if order else [],
        "method": used,
    })
    status = getattr(result, "data_status", None) or {}
    table.attrs.update({"no_data": [c for c in cats if status.get(c) == col.STATUS_NO_DATA],
                        "method": used, "seconds": time.perf_counter() - t0,
                        "gap_population": gap_pop, "candidates": int(len(cand)),
                        "groups": len(keys), "pairs": pairs, "site_index": list(order)})
    return table


def what_if(result, category: str, site_ids, inventory: Inventory) -> dict:
    """Add facilities of ``category`` at the inventory sites ``site_ids`` and return the new
    coverage, computed by the engine's incremental update (exact).

    ``inventory``: the :class:`Inventory` the site ids come from (:func:`build_inventory`).
    Returns ``before``/``after`` residents covered within the category's threshold,
    ``newly_covered``, ``covered_share_before``/``after``, ``minutes`` (new ``t_<category>``
    per home), ``changed`` (home indices whose metrics changed) and ``data_status`` (for a
    ``no_data`` category "before" assumes no facility exists: read it as unknown).
    """
    cat = _categories(result, category)[0]
    inv = inventory
    if not isinstance(inv, Inventory):
        raise RecommendError("what_if needs the inventory the site ids come from: "
                             "what_if(result, category, site_ids, build_inventory(result))")
    ids = [site_ids] if isinstance(site_ids, str) else list(site_ids)
    index = pd.Index(inv.sites[SITE_ID])
    missing = [s for s in ids if s not in index]
    if missing:
        raise RecommendError(f"unknown site id(s): {', '.join(map(str, missing))}")
    rows = [int(index.get_loc(s)) for s in ids]
    threshold = float(result.profile.category(cat).minutes)
    engine = result.engine
    fac = result.facility_snap.take(result.category_facilities(cat))
    cap = result.facilities[col.CAPACITY].to_numpy(float)[result.category_facilities(cat)]
    state = engine.category_state(fac, capacity=cap, thresholds_min=(threshold,), k=1, spare=0)
    pop = engine.homes.pop
    before_t = state.nearest.copy()
    changed = set()
    unreachable = []
    for r, sid in zip(rows, ids):
        snap = inv.snap.take(np.array([r]))
        if snap.edge[0] < 0:
            unreachable.append(sid)
            continue
        changed.update(engine.add_facility(state, snap).tolist())
    lim = 60.0 * threshold
    before = before_t <= lim
    after = state.nearest <= lim
    total = float(pop.sum())
    minutes = np.where(np.isfinite(state.nearest), state.nearest / 60.0, np.nan)
    status = getattr(result, "data_status", None) or {}
    return {"category": cat, "threshold_min": threshold, "sites": ids,
            col.DATA_STATUS: status.get(cat, col.STATUS_DATA),
            "unreachable_sites": unreachable,
            "before": float(pop[before].sum()), "after": float(pop[after].sum()),
            "newly_covered": float(pop[after & ~before].sum()),
            "covered_share_before": float(pop[before].sum() / total) if total else float("nan"),
            "covered_share_after": float(pop[after].sum() / total) if total else float("nan"),
            "minutes": minutes, "changed": np.array(sorted(changed), dtype=np.int64),
            "state": state}
