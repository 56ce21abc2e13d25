"""From minutes to coverage, the life-circle score and equity summaries.

Score formula (documented in the README):

* category access ``a = 1`` when the nearest facility is within the category's threshold
  ``T``, falling linearly to 0 at ``2T``: ``a = clip((2T - t) / T, 0, 1)`` (none found: 0);
* dimension sub-score ``s_d = 100 × Σ w_c a_c / Σ w_c`` over the dimension's categories;
* ``score = Σ W_d s_d / Σ W_d`` over the six dimensions (weights from the profile, default 1);
* a dimension is *covered* when at least ``dimension_cover_share`` (default 0.5) of its
  categories are within their thresholds; ``cov5/10/15_<dim>`` hold every category to 5, 10
  or 15 minutes instead; ``all6_15`` = all six dimensions covered within 15 minutes.

Summaries weight homes by population; the Gini coefficient is of the population-weighted score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecircle import columns as col
from lifecircle.settings import TIERS


def category_access(t: np.ndarray, minutes: float) -> np.ndarray:
    """Access 0–1 per home: 1 within ``minutes``, falling linearly to 0 at twice that; NaN
    (nothing found) is 0.

    >>> category_access(np.array([3.0, 7.5, 12.0, np.nan]), 5).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """
    a = np.clip((2.0 * minutes - t) / minutes, 0.0, 1.0)
    return np.where(np.isnan(t), 0.0, a)


def home_scores(homes: pd.DataFrame, profile, cover_share: float,
                tiers=TIERS) -> pd.DataFrame:
    """Dimension coverage flags, sub-scores and the score as new columns (a copy)."""
    out = {}
    dim_scores = []
    dim_weights = []
    for dim in profile.dimensions:
        cats = list(dim.categories)
        if not cats:
            continue
        w = np.array([c.weight for c in cats], dtype=float)
        t = np.column_stack([homes[col.time(c.id)].to_numpy(float) for c in cats])
        thr = np.array([c.minutes for c in cats], dtype=float)
        acc = np.column_stack([category_access(t[:, i], thr[i]) for i in range(len(cats))])
        s = 100.0 * (acc * w).sum(1) / w.sum()
        out[col.dim_score(dim.id)] = s
        within = np.where(np.isnan(t), False, t <= thr)
        out[col.dim_covered(dim.id)] = ((within * w).sum(1) / w.sum() >= cover_share).astype(np.int8)
        for tier in tiers:
            within_t = np.where(np.isnan(t), False, t <= tier)
            out[col.dim_covered_at(dim.id, tier)] = (
                (within_t * w).sum(1) / w.sum() >= cover_share).astype(np.int8)
        dim_scores.append(s)
        dim_weights.append(dim.weight)
    W = np.array(dim_weights, dtype=float)
    score = (np.column_stack(dim_scores) * W).sum(1) / W.sum()
    out[col.SCORE] = score
    top = max(tiers)
    out[col.all_six(top)] = np.all(
        np.column_stack([out[col.dim_covered_at(d.id, top)] for d in profile.dimensions if d.categories]),
        axis=1).astype(np.int8)
    res = homes.copy()
    for key, value in out.items():
        res[key] = value
    unreachable = ~homes[col.REACHABLE].to_numpy(bool) if col.REACHABLE in homes else np.zeros(len(homes), bool)
    if unreachable.any():
        for key in out:
            res.loc[unreachable, key] = np.nan
    return res


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


def _wshare(mask, pop):
    total = pop.sum()
    return float((mask * pop).sum() / total) if total > 0 else float("nan")


def _wmedian(x, w):
    ok = np.isfinite(x) & (w > 0)
    if not ok.any():
        return float("nan")
    x, w = x[ok], w[ok]
    o = np.argsort(x)
    cw = np.cumsum(w[o])
    return float(x[o][np.searchsorted(cw, cw[-1] / 2.0)])


def summarize(homes: pd.DataFrame, profile, facility_counts: dict, group: str | None = None,
              tiers=TIERS) -> pd.DataFrame:
    """Population-weighted coverage per category, per dimension and overall.

    One block of rows per value of ``group`` (e.g. community) plus ``ALL`` for everything.
    """
    blocks = [("ALL", homes)]
    if group and group in homes:
        blocks += [(str(k), g) for k, g in homes.groupby(group, sort=True)]
    rows = []
    for name, h in blocks:
        reach = h[col.REACHABLE].to_numpy(bool) if col.REACHABLE in h else np.ones(len(h), bool)
        pop_all = h[col.POPULATION].to_numpy(float)
        pop = np.where(reach, pop_all, 0.0)
        base = {"community": name}
        for c in profile.categories:
            t = h[col.time(c.id)].to_numpy(float)
            row = dict(base, level="category", id=c.id, dimension=profile.dimension_of(c.id),
                       name_zh=c.name_zh, name_en=c.name_en, minutes=c.minutes,
                       facilities=int(facility_counts.get(c.id, 0)),
                       covered=_wshare(np.nan_to_num(t, nan=np.inf) <= c.minutes, pop))
            for tier in tiers:
                row[col.within(tier)] = _wshare(np.nan_to_num(t, nan=np.inf) <= tier, pop)
            row["median_min"] = _wmedian(t, pop)
            rows.append(row)
        for d in profile.dimensions:
            row = dict(base, level="dimension", id=d.id, dimension=d.id, name_zh=d.name_zh,
                       name_en=d.name_en, minutes=np.nan,
                       facilities=int(sum(facility_counts.get(c.id, 0) for c in d.categories)),
                       covered=_wshare(np.nan_to_num(h[col.dim_covered(d.id)].to_numpy(float)) > 0, pop))
            for tier in tiers:
                row[col.within(tier)] = _wshare(
                    np.nan_to_num(h[col.dim_covered_at(d.id, tier)].to_numpy(float)) > 0, pop)
            row["median_min"] = np.nan
            row["score_mean"] = float(np.nansum(h[col.dim_score(d.id)].to_numpy(float) * pop) / pop.sum()) \
                if pop.sum() > 0 else np.nan
            rows.append(row)
        score = h[col.SCORE].to_numpy(float)
        rows.append(dict(base, level="overall", id="all", dimension="", name_zh="全部六个维度",
                         name_en="all six dimensions", minutes=max(tiers),
                         facilities=int(sum(facility_counts.values())),
                         covered=_wshare(np.nan_to_num(h[col.all_six(max(tiers))].to_numpy(float)) > 0, pop),
                         population=float(pop_all.sum()), homes=int(len(h)),
                         unreachable_homes=int((~reach).sum()),
                         score_mean=float(np.nansum(score * pop) / pop.sum()) if pop.sum() > 0 else np.nan,
                         score_gini=gini(score, pop)))
    return pd.DataFrame(rows)
