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

import geopandas as gpd
import numpy as np
import pandas as pd

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.analyses.resources import (
    AREA,
    BEST_USES,
    LAT_GCJ,
    LNG_GCJ,
    SITE_ID,
    STATUS,
    TYPE,
    USES,
    Inventory,
    load_site_rules,
)
from lifecircle.core.coverage import reachable
from lifecircle.errors import OptionError, ProfileError, RecommendError
from lifecircle.i18n import label
from lifecircle.io.chinacoords import wgs84_to_gcj02
from lifecircle.io.sources import WGS84


def _solved(prob, time_limit: float) -> bool:
    """Solve ``prob`` with CBC; False when CBC is missing, fails or stops short of optimal
    (the caller then falls back to the greedy pick)."""
    import pulp

    try:
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
        if not solver.available():
            return False
        status = prob.solve(solver)
    except Exception:
        return False
    return pulp.LpStatus.get(status) == "Optimal"

def _categories(result, category) -> list[str]:
    """Category ids of ``category`` (an id or a name in Chinese or English, or a list of them)."""
    cats = [category] if isinstance(category, str) else list(category)
    out, bad = [], []
    for c in cats:
        try:
            out.append(result.profile.resolve(c))
        except ProfileError:
            bad.append(str(c))
    if bad:
        raise RecommendError(f"unknown categor{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}; "
                             f"the profile has: {', '.join(result.profile.category_ids)} "
                             "(Chinese names accepted)",
                             zh=f"未知的类别 {', '.join(bad)}；指标体系中的类别："
                                f"{'、'.join(result.profile.display_name(c, 'zh') for c in result.profile.category_ids)}"
                                "（也可用类别 id）")
    return list(dict.fromkeys(out))


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
    if not _solved(prob, time_limit):
        return None
    return [s for s in sites if (x[s].value() or 0) > 0.5]


def _options(inv: Inventory, cats: list[str], suitable_only: bool):
    """The (site, use) options and what each would newly cover.

    Returns ``(opt_site, opt_cat, es, ei, weight)``: option ``o`` puts category ``cats[opt_cat[o]]``
    on site ``opt_site[o]``; ``(es, ei)`` pairs an option with an element it covers, an element
    being one (category, home) pair of weight = residents of the home."""
    sites = inv.sites
    n = len(sites)
    uses = [set(u.split(",")) for u in sites[USES].fillna("").astype(str)]
    pop = inv.access.population
    H = len(pop)
    opt_site, opt_cat, es, ei = [], [], [], []
    base = 0
    for j, c in enumerate(cats):
        ok = np.array([(not suitable_only) or c in u for u in uses], dtype=bool)
        idx = np.full(n, -1, np.int64)
        mine = np.flatnonzero(ok)
        idx[mine] = base + np.arange(len(mine))
        opt_site.append(mine)
        opt_cat.append(np.full(len(mine), j, np.int64))
        base += len(mine)
        s, h = inv.access.covers(c)
        o = idx[s]
        keep = o >= 0
        es.append(o[keep])
        ei.append(j * H + h[keep])
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(opt_site), cat(opt_cat), cat(es), cat(ei), np.tile(pop, len(cats))


def greedy_options(keys, w, k, opt_site, opt_need, site_area, pool=None):
    """Greedy MCLP over (site, use) options: at most ``k`` sites; a site takes several uses only
    while its area holds the sum of their minimum areas (one use when its area is unknown).
    Returns the chosen options and the gain of each, in the order picked."""
    groups: dict[int, list[int]] = {}
    for g, key in enumerate(keys):
        for o in key:
            groups.setdefault(o, []).append(g)
    pool = [o for o in (groups if pool is None else pool) if o in groups]
    covered = np.zeros(len(keys), dtype=bool)
    used: dict[int, float] = {}        # site -> area taken
    chosen, gains = [], []
    taken = set()
    while True:
        best, best_gain = None, 0.0
        for o in pool:
            if o in taken:
                continue
            s = int(opt_site[o])
            if s not in used and len(used) >= k:
                continue
            if s in used and np.isnan(site_area[o]):      # unknown area: one use
                continue
            if used.get(s, 0.0) + opt_need[o] > site_area[o] + 1e-9:   # False for NaN
                continue
            idx = groups[o]
            gain = float(w[idx][~covered[idx]].sum())
            if gain > best_gain + 1e-9:
                best, best_gain = o, gain
        if best is None:
            break
        s = int(opt_site[best])
        used[s] = used.get(s, 0.0) + float(opt_need[best])
        taken.add(best)
        chosen.append(best)
        gains.append(best_gain)
        covered[groups[best]] = True
    return chosen, gains


def solve_options(keys, w, k, opt_site, opt_need, site_area, time_limit: float = 60.0):
    """Exact MCLP over (site, use) options with PuLP/CBC, under the constraints of
    :func:`greedy_options`; the chosen options, or None when the solver is unavailable/fails."""
    try:
        import pulp
    except ImportError:  # pragma: no cover
        return None
    import warnings

    opts = sorted({o for key in keys for o in key})
    if not opts:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        prob = pulp.LpProblem("mclp_uses", pulp.LpMaximize)
        x = {o: pulp.LpVariable(f"x{o}", cat="Binary") for o in opts}
        sites = sorted({int(opt_site[o]) for o in opts})
        y = {s: pulp.LpVariable(f"s{s}", cat="Binary") for s in sites}
        z = [pulp.LpVariable(f"z{g}", lowBound=0, upBound=1) for g in range(len(keys))]
        prob += pulp.lpSum(float(w[g]) * z[g] for g in range(len(keys)))
        for g, key in enumerate(keys):
            prob += z[g] <= pulp.lpSum(x[o] for o in key)
        by_site: dict[int, list[int]] = {}
        for o in opts:
            by_site.setdefault(int(opt_site[o]), []).append(o)
            prob += x[o] <= y[int(opt_site[o])]
        for os_ in by_site.values():
            if not np.isnan(site_area[os_[0]]):
                prob += pulp.lpSum(float(opt_need[o]) * x[o] for o in os_) <= float(site_area[os_[0]])
            elif len(os_) > 1:
                prob += pulp.lpSum(x[o] for o in os_) <= 1
        prob += pulp.lpSum(y.values()) <= k
        if not _solved(prob, time_limit):
            return None
        return [o for o in opts if (x[o].value() or 0) > 0.5]


#: columns of the recommendations: homes a pick newly covers (count; their ``home_id`` values,
#: space separated — the map draws them)
NEW_HOMES = "new_homes"
NEW_HOME_IDS = "new_home_ids"


def newly_covered_homes(order, es, ei, n_homes: int) -> list[np.ndarray]:
    """Home indices each option of ``order`` newly covers, in that order: the homes of the
    (category, home) elements it covers that no earlier option covers (their residents sum to
    the option's gain). ``es``/``ei``: the option-element pairs of :func:`_options`."""
    out = []
    done = np.zeros(int(ei.max()) + 1 if len(ei) else 0, dtype=bool)
    for o in order:
        elems = np.unique(ei[es == o])
        new = elems[~done[elems]]
        done[new] = True
        out.append(np.unique(new % max(n_homes, 1)).astype(np.int64))
    return out


def gap_population(result, inventory: Inventory, category) -> dict:
    """Residents lacking each category within its threshold today: the denominator of every
    share the recommendations report. Homes that reach no street are left out, as from every
    share of residents (no site can close their gap by walking)."""
    acc = inventory.access
    return {c: float(acc.population[acc.lacks[c]].sum()) for c in _categories(result, category)}


def _unreachable_population(result, inventory: Inventory) -> float:
    """Residents in homes farther than ``max_snap_m`` from any street (in no gap)."""
    return float(np.asarray(inventory.access.population, float)[~reachable(result.homes)].sum())


def why_empty(result, inventory: Inventory, cats: list[str], gaps: dict, lang: str = "en",
              rules=None) -> str:
    """Why no site was recommended for ``cats`` and what would change it, in ``lang``."""
    rules = rules or load_site_rules()
    prof = result.profile
    sites = inventory.sites
    uses = [set(u.split(",")) for u in sites[USES].fillna("").astype(str)]
    area = sites[AREA].to_numpy(float)
    forms = np.array([rules.form(t) for t in sites[TYPE]])
    lines = []
    for c in cats:
        name = prof.display_name(c, lang)
        minutes = prof.category(c).minutes
        rule = rules.uses.get(c)
        if gaps.get(c, 0.0) <= 0:
            lines.append(label("rec.why_no_gap", lang, c=name, m=minutes))
        elif rule is None:
            lines.append(label("rec.why_no_rule", lang, c=name, id=c))
        elif not any(c in u for u in uses):
            fit = np.isin(forms, list(rule["forms"]))
            largest = float(np.nanmax(area[fit])) if fit.any() and np.isfinite(area[fit]).any() else 0.0
            lines.append(label("rec.why_no_site", lang, c=name, n=len(sites),
                               forms="/".join(label(f"rec.form_{f}", lang) for f in sorted(rule["forms"])),
                               a=rule["min_area_m2"], big=largest))
        else:
            n = sum(c in u for u in uses)
            lines.append(label("rec.why_too_far", lang, c=name, n=n, g=gaps[c], m=minutes))
    return " ".join(lines)


def _check_inventory(inventory, call: str) -> None:
    """RecommendError unless ``inventory`` is an :class:`Inventory` (``call`` shows the
    function's arguments)."""
    if not isinstance(inventory, Inventory):
        name = call.split("(")[0]
        raise RecommendError(f"{name} needs the idle-site inventory, not "
                             f"{type(inventory).__name__}: {call} with "
                             "inventory = build_inventory(result)",
                             zh=f"{name} 需要在地资源清单，而不是 {type(inventory).__name__}："
                                f"{call}，其中 inventory = build_inventory(result)")


def recommend(result, inventory: Inventory, category, k: int = 5, method: str = "auto",
              suitable_only: bool = True, max_exact_pairs: int = 400_000,
              time_limit: float = 60.0, lang: str = "en") -> pd.DataFrame:
    """Choose up to ``k`` sites maximising the residents newly covered for ``category`` (an id
    or a name in Chinese or English, or a list of them).

    With several categories a site takes the use (or uses) that add the most: several only
    when its area holds the sum of their ``min_area_m2`` (``data/site_uses.yaml``); a site of
    unknown area takes one. ``method``: "auto" (exact with PuLP/CBC unless the instance has
    more than ``max_exact_pairs`` option-group pairs, then greedy), "exact" or "greedy".

    Returns one row per placed use in the order of its marginal gain: ``rank``, ``site_id``,
    ``type``, ``status`` (in use / idle / …), ``area_m2``, ``use`` (the category placed),
    ``category`` (all asked), ``category_data`` (the use's data status: ``no_data`` when the
    data hold no facility of it, so its gap counts every resident as lacking it and may hold
    facilities the data miss), ``newly_covered`` (residents the row adds), ``cumulative``,
    ``new_homes`` / ``new_home_ids`` (the homes the row newly covers: how many, and their
    ``home_id`` values space separated; their residents sum to ``newly_covered``),
    ``share_of_gap`` (cumulative ÷ all residents lacking the categories today, homes that
    reach no street left out as from every share of residents), ``best_uses``, WGS-84 ``lng``/``lat`` and GCJ-02 ``lng_gcj02``/``lat_gcj02``.
    ``attrs``: ``method``, ``seconds``, ``gap_population`` (the denominator), ``gap_by_category``,
    ``new_homes`` (per row, the home indices it newly covers),
    ``why`` (when empty: why, and what would change it, in ``lang``), ``no_data`` (the
    categories with no facility in the data, for which the gap assumes none exist).
    """
    t0 = time.perf_counter()
    if method not in ("auto", "exact", "greedy"):
        raise RecommendError(f"unknown method {method!r}: use auto, exact or greedy",
                             zh=f"未知的方法 {method!r}：请用 auto、exact 或 greedy")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionError("--k", f"{k!r}: the number of sites to pick must be a whole number of at least 1",
                          zh=f"{k!r}：选址数须为不小于 1 的整数")
    _check_inventory(inventory, "recommend(result, inventory, category)")
    cats = _categories(result, category)
    rules = load_site_rules()
    opt_site, opt_cat, es, ei, weight = _options(inventory, cats, suitable_only)
    need = np.array([rules.uses.get(cats[j], {}).get("min_area_m2", 0.0) for j in opt_cat], float)
    area = inventory.sites[AREA].to_numpy(float)
    site_area = area[opt_site]          # NaN: unknown area, one use only
    keys, w = _compress(es, ei, weight)
    pairs = sum(len(key) for key in keys)
    used, chosen = method, None
    if method == "exact" or (method == "auto" and pairs <= max_exact_pairs):
        chosen = solve_options(keys, w, k, opt_site, need, site_area, time_limit)
        used = "exact" if chosen is not None else "greedy"
    if chosen is None:
        used = "greedy"
        chosen, _ = greedy_options(keys, w, k, opt_site, need, site_area)
    # order by marginal gain among the chosen options (they satisfy the constraints together)
    order, gains = greedy_options(keys, w, len(chosen) or 1, opt_site, np.zeros(len(need)),
                                  np.full(len(need), np.inf), pool=chosen) if chosen else ([], [])
    # a chosen use that adds nobody (the solver is indifferent to it) is not a recommendation
    gaps = {c: float(inventory.access.population[inventory.access.lacks[c]].sum()) for c in cats}
    gap_pop = float(sum(gaps.values()))
    sites = inventory.sites
    rows = opt_site[order] if order else np.zeros(0, np.int64)
    new_homes = newly_covered_homes(order, es, ei, len(inventory.access.population))
    home_ids = result.homes[col.HOME_ID].to_numpy() if col.HOME_ID in result.homes else \
        np.arange(len(result.homes))
    cum = np.cumsum(gains) if gains else np.zeros(0)
    if len(rows):
        pts = gpd.GeoSeries(sites.geometry.to_numpy()[rows], crs=sites.crs).representative_point()
        pts = pts.to_crs(WGS84)
        lng, lat = pts.x.to_numpy(), pts.y.to_numpy()
        glng, glat = wgs84_to_gcj02(lng, lat)
    else:
        lng = lat = glng = glat = np.zeros(0)
    status = getattr(result, "data_status", None) or {}
    table = pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1),
        SITE_ID: sites[SITE_ID].to_numpy()[rows],
        TYPE: sites[TYPE].to_numpy()[rows],
        STATUS: sites[STATUS].to_numpy()[rows] if STATUS in sites else "",
        AREA: np.round(area[rows], 1),
        "use": [cats[opt_cat[o]] for o in order],
        "category": ",".join(cats),
        # no_data: no facility of the use in the data, so its gap assumes none exists
        col.CATEGORY_DATA: [status.get(cats[opt_cat[o]], col.STATUS_DATA) for o in order],
        "newly_covered": np.round(gains, 1),
        "cumulative": np.round(cum, 1),
        NEW_HOMES: np.array([len(h) for h in new_homes], dtype=np.int64),
        NEW_HOME_IDS: [" ".join(str(x) for x in home_ids[h]) for h in new_homes],
        "share_of_gap": np.round(cum / gap_pop, 4) if gap_pop > 0 else 0.0,
        BEST_USES: sites[BEST_USES].to_numpy()[rows],
        "lng": np.round(lng, 6), "lat": np.round(lat, 6),
        LNG_GCJ: np.round(glng, 6), LAT_GCJ: np.round(glat, 6),
        "method": used,
    })
    table.attrs.update({"no_data": [c for c in cats if status.get(c) == col.STATUS_NO_DATA],
                        "method": used, "seconds": time.perf_counter() - t0, "k": k,
                        "category": ",".join(cats),
                        "gap_population": gap_pop, "gap_by_category": gaps,
                        "unreachable_population": _unreachable_population(result, inventory),
                        "candidates": int(len(np.unique(opt_site))), "groups": len(keys),
                        "pairs": pairs, "site_index": [int(s) for s in rows],
                        "new_homes": new_homes,
                        "why": why_empty(result, inventory, cats, gaps, lang, rules)
                        if not len(table) else ""})
    return table


def what_if(result, category: str, site_ids, inventory: Inventory, lang: str = "en") -> dict:
    """Add facilities of ``category`` at the inventory sites ``site_ids`` and return the new
    coverage, computed by the engine's incremental update (exact).

    ``inventory``: the :class:`Inventory` the site ids come from (:func:`build_inventory`).
    Returns ``before``/``after`` residents covered within the category's threshold,
    ``newly_covered``, ``covered_share_before``/``after`` (of the residents whose homes reach
    the walking network, as every share of residents; ``unreachable_population`` the others),
    ``minutes`` (new ``t_<category>`` per home, NaN for a home that reaches no street),
    ``changed`` (home indices whose metrics changed), ``data_status`` and ``note``.

    For a category without data (``data_status`` ``"no_data"``: the data hold none of it,
    which does not mean there are none) today's coverage is unknown: ``before``,
    ``covered_share_before`` and ``newly_covered`` are NaN, ``after`` counts the added sites
    alone, and ``note`` says so in ``lang`` (it is empty otherwise).
    """
    i18n.check_lang(lang)
    cat = _categories(result, category)[0]
    inv = inventory
    _check_inventory(inv, "what_if(result, category, site_ids, inventory)")
    ids = [site_ids] if isinstance(site_ids, str) else list(site_ids)
    index = pd.Index(inv.sites[SITE_ID])
    missing = [s for s in ids if s not in index]
    if missing:
        raise RecommendError(f"unknown site id(s): {', '.join(map(str, missing))}",
                             zh=f"未知的用地 id：{', '.join(map(str, missing))}")
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
    # homes that reach no street are in no share of residents (as the summary's and
    # recommend's): their street may be missing from the data
    reach = reachable(result.homes)
    before = (before_t <= lim) & reach
    after = (state.nearest <= lim) & reach
    total = float(pop[reach].sum())
    minutes = np.where(np.isfinite(state.nearest) & reach, state.nearest / 60.0, np.nan)
    status = (getattr(result, "data_status", None) or {}).get(cat, col.STATUS_DATA)
    nan = float("nan")
    known = status != col.STATUS_NO_DATA     # no data: today's coverage is unknown, not zero
    note = "" if known else label(
        "rec.whatif_no_data", lang, c=result.profile.display_name(cat, lang),
        s=i18n.status_label(col.STATUS_NO_DATA, lang), hint=i18n.no_data_hint(lang))
    return {"category": cat, "threshold_min": threshold, "sites": ids,
            col.DATA_STATUS: status, "note": note,
            "unreachable_sites": unreachable,
            "unreachable_population": float(np.asarray(pop, float)[~reach].sum()),
            "before": float(pop[before].sum()) if known else nan,
            "after": float(pop[after].sum()),
            "newly_covered": float(pop[after & ~before].sum()) if known else nan,
            "covered_share_before": float(pop[before].sum() / total) if total and known else nan,
            "covered_share_after": float(pop[after].sum() / total) if total else nan,
            "minutes": minutes, "changed": np.array(sorted(changed), dtype=np.int64),
            "state": state}
