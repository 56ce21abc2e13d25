"""From minutes to coverage, the life-circle score and equity summaries.

Score formula (documented in the README):

* category access ``a = 1`` when the nearest facility is within the category's threshold
  ``T``, falling linearly to 0 at ``2T``: ``a = clip((2T - t) / T, 0, 1)`` (none found: 0);
* dimension sub-score ``s_d = 100 × Σ w_c a_c / Σ w_c`` over the dimension's categories;
* ``score = Σ W_d s_d / Σ W_d`` over the six dimensions (weights from the profile, default 1);
* a dimension is *covered* when at least ``dimension_cover_share`` (default 0.5) of its
  categories are within their thresholds; ``cov5/10/15_<dim>`` hold every category to 5, 10
  or 15 minutes instead; ``all6_15`` = all six dimensions covered within 15 minutes.

Data completeness: a category with no facility in the data and not declared surveyed
(``no_data``, see :func:`data_status`) is unknown, not "no access": it is left out of its
dimension, a dimension none of whose categories has data is left out of the score and of
``all6_15`` ("all N of N dimensions with data"), and its summary shares are NaN.
``score_allcat`` / ``all6_15_allcat`` / ``covered_allcat`` give the figures over every
category (none found = no access) beside them.

Summaries weight homes by population; the Gini coefficient is of the population-weighted score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle.core import chunks
from lifecircle.settings import TIERS


def reachable(homes) -> np.ndarray:
    """Which homes reach the walking network (``reachable``; every home of a table without the
    column): the others are in no share of residents, since their street may be missing."""
    if col.REACHABLE in homes:
        return homes[col.REACHABLE].to_numpy(bool)
    return np.ones(len(homes), dtype=bool)


def category_access(t: np.ndarray, minutes: float) -> np.ndarray:
    """Access 0–1 per home: 1 within ``minutes``, falling linearly to 0 at twice that; NaN
    (nothing found) is 0.

    >>> category_access(np.array([3.0, 7.5, 12.0, np.nan]), 5).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """
    a = np.clip((2.0 * minutes - t) / minutes, 0.0, 1.0)
    return np.where(np.isnan(t), 0.0, a)


def search_minutes(profile, settings) -> float:
    """How far (minutes) the nearest-facility searches must reach for every output to be
    exact: ``settings.max_minutes``, raised to twice the profile's longest category threshold
    (a category's access falls to 0 only at ``2T``, see :func:`category_access`) and to the
    largest of ``settings.thresholds_min`` (the ``cov<tier>_`` flags read the minutes). A
    60-minute museum, or a 45-minute tier, is then measured, not cut at 30 minutes and shown
    as "none found". The default profile (15 minutes at most) and tiers need the default 30.

    >>> from lifecircle.core.profiles import load_profile
    >>> from lifecircle.settings import DEFAULTS
    >>> search_minutes(load_profile(), DEFAULTS), search_minutes(load_profile(), DEFAULTS.with_(
    ...     thresholds_min=(5, 10, 45)))
    (30.0, 45.0)
    """
    return float(max(settings.max_minutes, 2.0 * float(getattr(profile, "max_minutes", 0.0) or 0.0),
                     max(settings.thresholds_min)))


def data_status(profile, facility_counts: dict, complete=()) -> dict:
    """Data status of every category of ``profile`` (see :data:`columns.DATA_STATUS`).

    ``facility_counts``: category id → facilities in the data (OSM or a user table);
    ``complete``: ids declared surveyed (``complete`` in the profile or ``--complete``).

    >>> from lifecircle.core.profiles import load_profile
    >>> st = data_status(load_profile(), {"park": 3}, complete=["police"])
    >>> st["park"], st["police"], st["bus_stop"]
    ('data', 'complete', 'no_data')
    """
    done = set(complete or ()) | set(getattr(profile, "complete", ()) or ())
    out = {}
    for c in profile.categories:
        if c.id in done:
            out[c.id] = col.STATUS_COMPLETE
        elif int(facility_counts.get(c.id, 0)) > 0:
            out[c.id] = col.STATUS_DATA
        else:
            out[c.id] = col.STATUS_NO_DATA
    return out


def _with_data(profile, status: dict | None) -> set:
    if status is None:
        return {c.id for c in profile.categories}
    return {k for k, v in status.items() if v != col.STATUS_NO_DATA}


def _row_sum(cols: list) -> np.ndarray:
    """``np.column_stack(cols).sum(axis=1)`` bit for bit, from the columns (float64).

    numpy sums each row pairwise: from 0 one value at a time below 8 values, else in 8
    accumulators combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) plus the rest
    one at a time (up to 128 values). The same additions on whole columns are a few vector
    adds instead of a reduction call per row (a dimension has a handful of categories)."""
    m = len(cols)
    if m == 0 or m > 128:
        return np.column_stack(cols).sum(axis=1) if m else np.zeros(0)
    if m < 8:
        acc = 0.0 + cols[0]
        for c in cols[1:]:
            acc += c
        return acc
    r = [np.array(c, dtype=np.float64) for c in cols[:8]]
    i = 8
    while i < m - m % 8:
        for j in range(8):
            r[j] += cols[i + j]
        i += 8
    acc = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for c in cols[i:]:
        acc += c
    return acc


def _dim_arrays(homes, cats, cover_share, tiers, score: bool = True):
    """Sub-score, covered flag and per-tier flags of one dimension over ``cats`` (``score``
    False: no sub-score, None in its place). Column by column: the values of a
    ``(homes, categories)`` matrix computation, without the matrix."""
    w = np.array([c.weight for c in cats], dtype=float)
    t = [homes[col.time(c.id)].to_numpy(float) for c in cats]
    thr = np.array([c.minutes for c in cats], dtype=float)
    wsum = w.sum() if w.sum() > 0 else float(len(cats))
    if w.sum() <= 0:
        w = np.ones_like(w)
    s = None
    if score:
        s = 100.0 * _row_sum([category_access(tj, m) * wj for tj, m, wj in zip(t, thr, w)]) / wsum

    finite = bool(np.isfinite(w).all())

    def share_within(limits):   # NaN (nothing found) compares False: not within
        # where(t <= m, w, 0) is (t <= m) * w for a finite weight, without casting the mask
        parts = [np.where(tj <= m, wj, 0.0) if finite else (tj <= m) * wj
                 for tj, m, wj in zip(t, limits, w)]
        return (_row_sum(parts) / wsum >= cover_share).astype(float)

    covered = share_within(thr)
    at = {tier: share_within([tier] * len(t)) for tier in tiers}
    return s, covered, at


def _overall(scores: list, weights: list, covered: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean of the dimension scores and whether every dimension is covered (1/0);
    NaN for every home when no dimension counts."""
    if not scores or sum(weights) <= 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    w = np.array(weights, dtype=float)
    return (_row_sum([sc * wd for sc, wd in zip(scores, w)]) / w.sum(),
            np.logical_and.reduce([cv > 0 for cv in covered]).astype(float))


def home_scores(homes: pd.DataFrame, profile, cover_share: float,
                tiers=TIERS, status: dict | None = None) -> pd.DataFrame:
    """Dimension coverage flags, sub-scores and the score as new columns (a copy).

    ``status`` (category id → data status, from :func:`data_status`; None: every category has
    data): categories without data (``no_data``) are left out of their dimension; a dimension
    none of whose categories has data gets NaN sub-score and flags and is left out of the
    score and of ``all6_<top tier>`` (then "all N of N dimensions with data"). ``score_allcat``
    and ``all6_<top tier>_allcat`` count every category, none found as no access.
    """
    keep = _with_data(profile, status)
    top = max(tiers)
    out = {}
    dim_scores, dim_weights = [], []
    all_scores, all_weights = [], []
    flags15, flags15_all = [], []
    n = len(homes)
    for dim in profile.dimensions:
        cats_all = list(dim.categories)
        if not cats_all:
            continue
        cats = [c for c in cats_all if c.id in keep]
        # every category with data: the with-data figures are these (computed once)
        every = len(cats) == len(cats_all)
        s_all, cov_all, at_all = _dim_arrays(homes, cats_all, cover_share,
                                             tuple(tiers) if every else (top,))
        all_scores.append(s_all)
        all_weights.append(dim.weight)
        flags15_all.append(at_all[top])
        if not cats:  # no category of the dimension has data: unknown, not zero
            out[col.dim_score(dim.id)] = np.full(n, np.nan)
            out[col.dim_covered(dim.id)] = np.full(n, np.nan)
            for tier in tiers:
                out[col.dim_covered_at(dim.id, tier)] = np.full(n, np.nan)
            continue
        s, covered, at = (s_all, cov_all, at_all) if every else \
            _dim_arrays(homes, cats, cover_share, tuple(tiers))
        out[col.dim_score(dim.id)] = s
        out[col.dim_covered(dim.id)] = covered
        for tier in tiers:
            out[col.dim_covered_at(dim.id, tier)] = at[tier]
        dim_scores.append(s)
        dim_weights.append(dim.weight)
        flags15.append(at[top])
    out[col.SCORE], out[col.all_six(top)] = _overall(dim_scores, dim_weights, flags15, n)
    out[col.SCORE_ALL_CATEGORIES], out[col.all_six_allcat(top)] = _overall(all_scores, all_weights, flags15_all, n)
    unreachable = ~reachable(homes)
    if unreachable.any():
        out = {key: np.where(unreachable, np.nan, value) for key, value in out.items()}
    # no deep copy (pandas copy-on-write keeps ``homes`` unchanged): copying the ~355-column
    # table only to add these doubled the memory of a city-sized run
    if any(key in homes for key in out):   # scored again (what-ifs): same places, same order
        res = homes.copy(deep=False)
        for key, value in out.items():
            res[key] = value
        return res
    return pd.concat([homes, pd.DataFrame(out, index=homes.index, copy=False)], axis=1)


def gini(values, weights=None) -> float:
    """Weighted Gini coefficient (0 = equal, 1 = all in one).

    ``weights`` (e.g. residents per home) count each value that many times; NaN values and
    non-positive weights are left out.

    >>> gini([50, 50, 50, 50])
    0.0
    >>> gini([0, 0, 0, 100])           # one home has everything
    0.75
    >>> gini([1, 2, 3, 4])
    0.25
    >>> gini([100, 0], weights=[1, 3])  # the same as [100, 0, 0, 0]
    0.75
    >>> gini([float("nan"), 10, 10])
    0.0
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    x, w = x[ok], w[ok]
    if len(x) == 0 or np.sum(w * x) == 0:
        return float("nan") if len(x) == 0 else 0.0
    order = np.argsort(x)
    x, w = x[order], w[order]
    cw = np.cumsum(w)
    cxw = np.cumsum(x * w)
    # area under the Lorenz curve by trapezoids
    lorenz = cxw / cxw[-1]
    prev = np.concatenate([[0.0], lorenz[:-1]])
    B = np.sum(w * (lorenz + prev)) / (2.0 * cw[-1])
    return float(1.0 - 2.0 * B)


def _wshare(mask, pop, total=None, finite: bool = False):
    """Population share of ``mask`` (``total``: ``pop.sum()`` when known; ``finite``: every
    ``pop`` is finite, so ``where(mask, pop, 0)`` is ``mask * pop`` without casting the mask)."""
    total = pop.sum() if total is None else total
    if not total > 0:
        return float("nan")
    return float((np.where(mask, pop, 0.0) if finite else mask * pop).sum() / total)


def _wmean(x, w) -> float:
    """Weighted mean of ``x`` (NaN as 0, as an unreachable home's score)."""
    return float(np.nansum(x * w) / w.sum()) if w.sum() > 0 else np.nan


def _wmedian(x, w):
    ok = np.isfinite(x) & (w > 0)
    if not ok.any():
        return float("nan")
    if not ok.all():
        x, w = x[ok], w[ok]
    o = np.argsort(x)
    cw = np.cumsum(w[o])
    return float(x[o[np.searchsorted(cw, cw[-1] / 2.0)]])


def unit_facility_counts(facilities, area=None, communities=None) -> dict:
    """Facilities of each category inside each unit, as ``check`` counts them:
    ``{"ALL": {category: n}, community: {category: n}, …}`` — inside ``area`` (the study
    area; every facility when None) and inside each polygon of ``communities`` (its
    ``community`` column names it; polygons of one name summed). A facility on a shared edge
    counts in both communities."""
    cats = facilities[col.CATEGORY].to_numpy()
    geoms = facilities.geometry.to_numpy()

    def count(poly) -> dict:
        inside = np.ones(len(geoms), bool) if poly is None else shapely.intersects(geoms, poly)
        return pd.Series(cats[inside]).value_counts().to_dict() if len(geoms) else {}

    out = {"ALL": count(area)}
    if communities is not None:
        for name, poly in zip(communities[col.COMMUNITY].astype(str), communities.geometry):
            got = count(poly)
            prev = out.get(name, {}) if name != "ALL" else {}
            out[name] = {k: prev.get(k, 0) + got.get(k, 0) for k in set(prev) | set(got)}
    return out


def with_unit_facilities(summary: pd.DataFrame, profile, unit_counts: dict) -> pd.DataFrame:
    """``summary`` with ``facilities`` counted inside each row's unit (``unit_counts`` of
    :func:`unit_facility_counts`: a dimension sums its categories, the overall row every
    category) and, beside it, the figure before (every facility the walks reach, the boundary
    margin included) as ``facilities_incl_margin``. A unit missing from ``unit_counts`` keeps
    its counts."""
    s = summary.copy()
    before = s[col.FACILITIES].to_numpy()
    members = {d.id: [c.id for c in d.categories] for d in profile.dimensions}
    every = [c.id for c in profile.categories]
    got = []
    for unit, level, key, old in zip(s[col.COMMUNITY].astype(str), s["level"], s["id"], before):
        counts = unit_counts.get(unit)
        if counts is None:
            got.append(old)
            continue
        ids = [key] if level == "category" else members.get(key, []) if level == "dimension" else every
        got.append(int(sum(int(counts.get(c, 0)) for c in ids)))
    s[col.FACILITIES] = np.asarray(got, dtype=before.dtype if len(before) else np.int64)
    s.insert(s.columns.get_loc(col.FACILITIES) + 1, col.FACILITIES_INCL_MARGIN, before)
    return s


def summarize(homes: pd.DataFrame, profile, facility_counts: dict, group: str | None = None,
              tiers=TIERS, status: dict | None = None, cover_share: float | None = None) -> pd.DataFrame:
    """Population-weighted coverage per category, per dimension and overall.

    One block of rows per value of ``group`` (e.g. community) plus ``ALL`` for everything.
    ``status`` (category id → data status; None: from ``facility_counts``): a category with
    no data gets NaN shares (unknown, not 0 %) and ``data_status`` ``no_data``; dimension and
    overall shares are over categories (dimensions) with data, and ``covered_allcat`` /
    ``score_mean_allcat`` give the same figures counting every category.
    """
    if status is None:
        status = data_status(profile, facility_counts)
    keep = _with_data(profile, status)
    top = max(tiers)
    share = profile.dimension_cover_share if cover_share is None else cover_share
    dims = [d for d in profile.dimensions if d.categories]
    dims_with = [d for d in dims if any(c.id in keep for c in d.categories)]
    blocks = [("ALL", homes)]
    if group and group in homes:
        # only the columns read below go into the groups: a group is a copy of its rows, and
        # over every group of the whole table that was a second table (~355 columns) at once
        need = [col.REACHABLE, col.POPULATION, col.SCORE, col.SCORE_ALL_CATEGORIES, col.all_six(top),
                col.all_six_allcat(top), group, *(col.time(c.id) for c in profile.categories)]
        for d in profile.dimensions:
            need += [col.dim_covered(d.id), col.dim_score(d.id), *(col.dim_covered_at(d.id, t) for t in tiers)]
        need = [c for c in dict.fromkeys(need) if c in homes]
        blocks += [(str(k), g) for k, g in homes[need].groupby(group, sort=True)]
    rows = []
    for name, h in blocks:
        reach = reachable(h)
        pop_all = h[col.POPULATION].to_numpy(float)
        pop = np.where(reach, pop_all, 0.0)
        base = {"community": name}
        tot = pop.sum()
        finite = bool(np.isfinite(pop).all())

        def popshare(mask, pop=pop, tot=tot, finite=finite):   # the population share of mask
            return _wshare(mask, pop, tot, finite)

        # the medians (a sort of every home's minutes each) on both cores: numpy sorts
        # without the GIL
        times = {c.id: h[col.time(c.id)].to_numpy(float) for c in profile.categories}
        asked = [k for k in times if status.get(k, col.STATUS_NO_DATA) != col.STATUS_NO_DATA]
        medians = dict(zip(asked, chunks.run([lambda t=times[k], pop=pop: _wmedian(t, pop) for k in asked])))
        for c in profile.categories:
            st = status.get(c.id, col.STATUS_NO_DATA)
            t = times[c.id]
            row = dict(base, level="category", id=c.id, dimension=profile.dimension_of(c.id),
                       name_zh=c.name_zh, name_en=c.name_en, minutes=c.minutes,
                       facilities=int(facility_counts.get(c.id, 0)))
            row[col.DATA_STATUS] = st
            nodata = st == col.STATUS_NO_DATA
            # NaN (nothing found) is not within; a threshold that is also a tier counted once
            within = {m: popshare(t <= m) for m in dict.fromkeys((c.minutes, *tiers))}
            covered = within[c.minutes]
            row[col.COVERED] = np.nan if nodata else covered
            for tier in tiers:
                row[col.within(tier)] = np.nan if nodata else within[tier]
            row["median_min"] = np.nan if nodata else medians[c.id]
            row[col.COVERED_ALL_CATEGORIES] = covered
            rows.append(row)
        for d in profile.dimensions:
            k = sum(c.id in keep for c in d.categories)
            row = dict(base, level="dimension", id=d.id, dimension=d.id, name_zh=d.name_zh,
                       name_en=d.name_en, minutes=np.nan,
                       facilities=int(sum(facility_counts.get(c.id, 0) for c in d.categories)))
            row[col.DATA_STATUS] = col.STATUS_DATA if k else col.STATUS_NO_DATA
            row[col.CATEGORIES_WITH_DATA] = k
            row[col.CATEGORIES_TOTAL] = len(d.categories)
            if k:
                row[col.COVERED] = popshare(np.nan_to_num(h[col.dim_covered(d.id)].to_numpy(float)) > 0)
                for tier in tiers:
                    row[col.within(tier)] = popshare(
                        np.nan_to_num(h[col.dim_covered_at(d.id, tier)].to_numpy(float)) > 0)
                row[col.SCORE_MEAN] = _wmean(h[col.dim_score(d.id)].to_numpy(float), pop)
            else:
                row[col.COVERED] = np.nan
                for tier in tiers:
                    row[col.within(tier)] = np.nan
                row[col.SCORE_MEAN] = np.nan
            row["median_min"] = np.nan
            if d.categories:
                _, cov_all, _ = _dim_arrays(h, list(d.categories), share, (), score=False)
                row[col.COVERED_ALL_CATEGORIES] = popshare(cov_all > 0)
            rows.append(row)
        score = h[col.SCORE].to_numpy(float)
        n_with, n_dims = len(dims_with), len(dims)
        row = dict(base, level="overall", id="all", dimension="",
                   name_zh=f"有数据的 {n_with} 个维度全部覆盖（共 {n_dims} 个维度）",
                   name_en=f"all {n_with} of {n_with} dimensions with data ({n_dims} in all)",
                   minutes=top, facilities=int(sum(facility_counts.values())))
        row[col.DATA_STATUS] = col.STATUS_DATA if n_with else col.STATUS_NO_DATA
        row[col.CATEGORIES_WITH_DATA] = len(keep)
        row[col.CATEGORIES_TOTAL] = len(profile.categories)
        row[col.DIMENSIONS_WITH_DATA] = n_with
        row[col.DIMENSIONS_TOTAL] = n_dims
        row[col.COVERED] = (popshare(np.nan_to_num(h[col.all_six(top)].to_numpy(float)) > 0)
                            if n_with else np.nan)
        for tier in tiers:
            row[col.within(tier)] = np.nan
        row["median_min"] = np.nan
        row[col.COVERED_ALL_CATEGORIES] = popshare(
            np.nan_to_num(h[col.all_six_allcat(top)].to_numpy(float)) > 0) \
            if col.all_six_allcat(top) in h else np.nan
        # the shares are over the residents whose homes reach the walking network: those of a
        # home with no street within reach are counted here, so the base is always stated
        row.update(population=float(pop_all.sum()), homes=int(len(h)),
                   unreachable_homes=int((~reach).sum()),
                   unreachable_population=float(np.where(reach, 0.0, pop_all).sum()))
        row[col.SCORE_MEAN] = _wmean(score, pop) if n_with else np.nan
        row[col.SCORE_MEAN_ALL_CATEGORIES] = _wmean(h[col.SCORE_ALL_CATEGORIES].to_numpy(float), pop) \
            if col.SCORE_ALL_CATEGORIES in h else np.nan
        row["score_gini"] = gini(score, pop)
        rows.append(row)
    return pd.DataFrame(rows)
