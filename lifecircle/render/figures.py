"""Report figures (matplotlib): the charts that go into planning reports.

* :func:`coverage_bar` — share of residents covered per dimension at the 5/10/15-minute tiers;
* :func:`score_histogram` — residents by life-circle score (0–100);
* :func:`radar` — 雷达图: the six dimension scores, one radar per community (or the whole area);
* :func:`what_if_chart` — before/after bars for a what-if (added facilities).

Every function takes ``lang`` ("zh" or "en"), returns a :class:`matplotlib.figure.Figure` and,
with ``path``, also writes it: ``path`` with a suffix (``.png``/``.svg``/``.pdf``) writes that
file, without one it writes ``<path>.png`` and ``<path>.svg`` (see :func:`save_figure`). Figures
carry the OpenStreetMap attribution when a result is given.

Chinese text needs a CJK font. :func:`cjk_font` registers the Noto Sans CJK collection shipped
by the ``noto-cjk-sans-otc`` wheel (a dependency, so a pip-only machine has it) and otherwise
looks for an installed one (Noto Sans CJK SC from Debian's ``fonts-noto-cjk``, Source Han Sans,
Microsoft YaHei, SimHei, PingFang, WenQuanYi). The figure functions set the font on the text
they draw, so a user's global ``rcParams`` are left alone; call :func:`use_cjk_font` to make it
the default for your own plots.

>>> import lifecircle, lifecircle.render.figures as lf
>>> fig = lf.radar(lifecircle.analyze(), lang="zh", path="out/radar")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.core.coverage import gini

__all__ = ["coverage_bar", "score_histogram", "radar", "what_if_chart", "save_figure",
           "cjk_font", "cjk_font_path", "font_families", "use_cjk_font"]

#: CJK families tried in order (the first one matplotlib knows is used).
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "Source Han Sans CN",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK JP", "Arial Unicode MS",
)
LATIN_FALLBACK = ("DejaVu Sans",)
_PROBE = "中文社区生活圈"

DIMENSION_ORDER = ("housing", "employment", "services", "transport", "leisure", "social")
SCORE_BIN = 5.0



def _w(lang: str) -> dict:
    return i18n.words("fig", lang)


# --------------------------------------------------------------------------------------------
# fonts


def _has_glyphs(path: str, text: str = _PROBE) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path))
    except Exception:
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in text)


def _register_bundled() -> None:
    """Add the font files of CJK font wheels to matplotlib's font list (once)."""
    from matplotlib import font_manager as fm

    known = {Path(f.fname).resolve() for f in fm.fontManager.ttflist}
    for module in ("noto_cjk_sans_otc",):
        try:
            mod = __import__(module)
            path = Path(str(mod.FONT_PATH))
        except Exception:
            continue
        if path.exists() and path.resolve() not in known:
            try:
                fm.fontManager.addfont(str(path))
            except Exception:  # pragma: no cover - a broken font file
                continue


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of a CJK-capable font family matplotlib can use, or None (Chinese text then
    shows as boxes; install ``fonts-noto-cjk`` or ``pip install noto-cjk-sans-otc``)."""
    from matplotlib import font_manager as fm

    _register_bundled()
    by_name: dict[str, list[str]] = {}
    for f in fm.fontManager.ttflist:
        by_name.setdefault(f.name, []).append(f.fname)
    for name in CJK_FAMILIES:
        for path in by_name.get(name, []):
            if _has_glyphs(path):
                return name
    for name, paths in sorted(by_name.items()):   # any other font that has the glyphs
        if any(k in name for k in ("CJK", "Han", "Hei", "Song", "Kai", "Ming", "Gothic")):
            if any(_has_glyphs(p) for p in paths):
                return name
    return None


def cjk_font_path() -> str | None:
    """The font file matplotlib resolves :func:`cjk_font` to."""
    from matplotlib import font_manager as fm

    name = cjk_font()
    if name is None:
        return None
    return fm.findfont(fm.FontProperties(family=name), fallback_to_default=False)


def font_families(lang: str = "zh") -> list[str]:
    """The font family list the figures use: the CJK font first (it has Latin letters too),
    then DejaVu Sans for anything it lacks."""
    cjk = cjk_font()
    return ([cjk] if cjk else []) + list(LATIN_FALLBACK)


def use_cjk_font() -> str | None:
    """Put the CJK font first in ``rcParams["font.sans-serif"]`` for all later plots."""
    import matplotlib as mpl

    name = cjk_font()
    if name:
        rest = [f for f in mpl.rcParams["font.sans-serif"] if f != name]
        mpl.rcParams["font.sans-serif"] = [name] + rest
        mpl.rcParams["font.family"] = "sans-serif"
        mpl.rcParams["axes.unicode_minus"] = False
    return name


@contextmanager
def _style(lang: str):
    import matplotlib as mpl

    fams = font_families(lang)
    # set and restore only these keys: matplotlib.rc_context would also restore "interactive",
    # which Jupyter's inline backend switches on when the first figure is made inside it (later
    # figures then never show in the notebook)
    style = {"font.family": fams, "axes.unicode_minus": False, "svg.fonttype": "path",
             "axes.spines.top": False, "axes.spines.right": False}
    old = {k: mpl.rcParams[k] for k in style}
    mpl.rcParams.update(style)
    try:
        yield fams
    finally:
        mpl.rcParams.update(old)


def _finish(fig, axes, fams, attribution: str | None, path, lang: str = "en"):
    for ax in np.atleast_1d(axes).ravel():
        ax.tick_params(labelfontfamily=fams)
    if attribution:
        fig.text(0.995, 0.005, i18n.attribution_text(attribution, lang), ha="right", va="bottom", fontsize=7, color="#666",
                 family=fams)
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path, formats=("png", "svg"), dpi: int = 200) -> list[Path]:
    """Write ``fig``: to ``path`` itself when it has a suffix, else to ``<path>.<fmt>`` for each
    of ``formats``. Creates the folder; returns the files written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    targets = [p] if p.suffix.lower() in (".png", ".svg", ".pdf", ".jpg", ".jpeg") else \
        [p.with_name(p.name + f".{fmt}") for fmt in formats]
    for t in targets:
        fig.savefig(t, dpi=dpi, bbox_inches="tight")
    return targets


# --------------------------------------------------------------------------------------------
# data access


def _summary(obj) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    if hasattr(obj, "summary") and isinstance(obj.summary, pd.DataFrame):
        return obj.summary
    raise TypeError(f"expected a lifecircle Result or its summary table, got {type(obj).__name__}")


def _attribution(obj) -> str | None:
    return getattr(obj, "attribution", None)


def _dimension_rows(summary: pd.DataFrame, community: str = "ALL") -> pd.DataFrame:
    d = summary[(summary["level"] == "dimension") & (summary["community"].astype(str) == str(community))]
    if len(d) == 0:
        known = ", ".join(map(str, summary["community"].astype(str).unique()))
        raise ValueError(f"no dimension rows for community {community!r} (known: {known})")
    order = {k: i for i, k in enumerate(DIMENSION_ORDER)}
    return d.assign(_o=[order.get(i, 99) for i in d["id"]]).sort_values("_o", kind="stable").drop(columns="_o")


def _names(rows: pd.DataFrame, lang: str) -> list[str]:
    """Display names; a dimension or category without data says so (无数据 / no data): its
    empty bar or zero spoke is unknown, not no access."""
    key = "name_zh" if lang == "zh" else "name_en"
    names = [str(n) if isinstance(n, str) and n else str(i) for n, i in zip(rows[key], rows["id"])]
    if col.DATA_STATUS in rows:
        tag = i18n.status_label(col.STATUS_NO_DATA, lang)
        names = [f"{n}\n({tag})" if st == col.STATUS_NO_DATA else n
                 for n, st in zip(names, rows[col.DATA_STATUS])]
    return names


def _tiers(summary: pd.DataFrame) -> list:
    found = [float(c.split("_", 1)[1]) for c in summary.columns if c.startswith("within_")]
    return sorted(int(t) if t.is_integer() else t for t in found)


# --------------------------------------------------------------------------------------------
# figures


def coverage_bar(result, lang: str = "zh", *, community: str = "ALL", tiers=None, ax=None,
                 path=None, title: str | None = None):
    """Grouped bars: per dimension, the share of residents (%) with the dimension covered
    within each tier (5/10/15 minutes; summary columns ``within_<t>``).

    ``result``: a :class:`~lifecircle.pipeline.Result` or its ``summary`` table.
    """
    import matplotlib.pyplot as plt

    w = _w(lang)
    summary = _summary(result)
    rows = _dimension_rows(summary, community)
    tiers = list(tiers) if tiers is not None else _tiers(summary)
    names = _names(rows, lang)
    colours = ["#1a9641", "#a6d96a", "#fdae61", "#d7191c"]
    with _style(lang) as fams:
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 4.2))
        x = np.arange(len(rows))
        width = 0.8 / max(1, len(tiers))
        for j, t in enumerate(tiers):
            v = 100.0 * rows[col.within(t)].to_numpy(float)
            bars = ax.bar(x + (j - (len(tiers) - 1) / 2) * width, v, width,
                          label=w["tier"].format(t=f"{t:g}"), color=colours[j % len(colours)],
                          gid=f"tier{t}")
            ax.bar_label(bars, labels=[f"{a:.0f}" if np.isfinite(a) else "" for a in v],
                         fontsize=7, padding=1)
        ax.set_xticks(x, names)
        ax.set_ylim(0, 105)
        ax.set_ylabel(w["coverage_y"])
        name = "" if community == "ALL" else f" — {community}"
        ax.set_title(title or (w["coverage_title"] + name))
        ax.legend(frameon=False, ncols=len(tiers), loc="upper center", bbox_to_anchor=(0.5, -0.1))
        fig.tight_layout()
        return _finish(fig, ax, fams, _attribution(result), path, lang)


def score_histogram(result, lang: str = "zh", *, bins=None, ax=None, path=None,
                    title: str | None = None):
    """Residents by life-circle score: a population-weighted histogram (bins of 5 points), the
    weighted mean and the Gini coefficient. Homes no street reaches are left out."""
    import matplotlib.pyplot as plt


    w = _w(lang)
    homes = result.homes if hasattr(result, "homes") else result
    score = homes[col.SCORE].to_numpy(float)
    pop = homes[col.POPULATION].to_numpy(float)
    ok = np.isfinite(score) & np.isfinite(pop)
    score, pop = score[ok], pop[ok]
    bins = np.arange(0.0, 100.0 + SCORE_BIN, SCORE_BIN) if bins is None else bins
    with _style(lang) as fams:
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        ax.hist(score, bins=bins, weights=pop, color="#2b83ba", edgecolor="white")
        mean = float(np.sum(score * pop) / pop.sum()) if pop.sum() > 0 else float("nan")
        if np.isfinite(mean):
            ax.axvline(mean, color="#d7191c", lw=1.5, ls="--")
            ax.text(mean, ax.get_ylim()[1] * 0.95, " " + w["mean"].format(v=mean), color="#d7191c",
                    va="top", fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_xlabel(w["hist_x"])
        ax.set_ylabel(w["hist_y"])
        g = gini(score, pop)
        if np.isfinite(g):
            g = w["gini"].format(v=g)
        else:           # no home with a score (no facility of any category): missing, and why
            why = i18n.missing_reason(result.overall(), lang) if hasattr(result, "overall") \
                else i18n.label("why.no_data", lang)
            g = i18n.label("cli.gini", lang, v="–")
            ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color="#666")
            ax.set_ylim(0, 1)                       # no residents below zero on an empty chart
        ax.set_title(title or (f"{w['hist_title']}（{g}）" if lang == "zh" else f"{w['hist_title']} ({g})"))
        fig.tight_layout()
        return _finish(fig, ax, fams, _attribution(result), path, lang)


def radar(result, lang: str = "zh", by: str | None = "community", *, metric: str = "score_mean",
          communities=None, ncols: int = 3, path=None, title: str | None = None):
    """雷达图: the six dimension scores (0–100, population-weighted means of ``s_<dim>``; or
    ``metric="covered"`` for coverage %), one small radar per community with the whole area as
    a dashed outline; one radar for the whole area when there are no communities (or
    ``by=None``). ``communities`` picks and orders the communities shown."""
    import matplotlib.pyplot as plt

    w = _w(lang)
    summary = _summary(result)
    units = [str(c) for c in summary["community"].astype(str).unique() if c != "ALL"]
    if by is None or not units:
        units = ["ALL"]
    elif communities is not None:
        units = [str(c) for c in communities]
    base = _dimension_rows(summary, "ALL")
    names = _names(base, lang)
    k = len(names)
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    ang_c = np.concatenate([ang, ang[:1]])

    def values(unit):
        rows = _dimension_rows(summary, unit).set_index("id").reindex(base["id"])
        v = rows[metric].to_numpy(float)
        return 100.0 * v if metric != "score_mean" else v

    all_v = values("ALL")
    n = len(units)
    cols = 2 if n == 4 and ncols >= 2 else min(ncols, n)
    nrows = math.ceil(n / cols)
    with _style(lang) as fams:
        fig, axes = plt.subplots(nrows, cols, subplot_kw={"projection": "polar"},
                                 figsize=(3.6 * cols, 3.6 * nrows + 0.4), squeeze=False)
        for i, ax in enumerate(axes.ravel()):
            if i >= n:
                ax.set_visible(False)
                continue
            unit = units[i]
            v = np.nan_to_num(values(unit), nan=0.0)
            ax.plot(ang_c, np.concatenate([v, v[:1]]), color="#2b83ba", lw=1.8, gid=f"radar:{unit}")
            ax.fill(ang_c, np.concatenate([v, v[:1]]), color="#2b83ba", alpha=0.25)
            if unit != "ALL":
                a = np.nan_to_num(all_v, nan=0.0)
                ax.plot(ang_c, np.concatenate([a, a[:1]]), color="#666", lw=1, ls="--",
                        label=w["all"])
            ax.set_xticks(ang, names)
            ax.set_ylim(0, 100)
            ax.set_yticks([20, 40, 60, 80, 100], ["20", "40", "60", "80", ""], fontsize=7, color="#777")
            ax.set_title(w["all"] if unit == "ALL" else unit, pad=14, fontsize=11)
        fig.suptitle(title or w["radar_title"], fontsize=13)
        fig.tight_layout()
        return _finish(fig, axes, fams, _attribution(result), path, lang)


def _what_if_pairs(before, after, lang, profile=None):
    """(labels, before values, after values, y label) for :func:`what_if_chart`."""
    w = _w(lang)
    if after is None:
        items = [before] if isinstance(before, Mapping) else list(before)
        if not all(isinstance(d, Mapping) and "covered_share_before" in d for d in items):
            raise TypeError("what_if_chart(x) with one argument takes what_if() result(s)")
        labels = []
        for d in items:
            label = str(d["category"])
            if profile is not None:
                label = profile.display_name(label, lang)
            labels.append(label)
        return (labels, [100 * d["covered_share_before"] for d in items],
                [100 * d["covered_share_after"] for d in items], w["whatif_y"])
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        labels = [k for k in before if k in after]
        return ([str(k) for k in labels], [float(before[k]) for k in labels],
                [float(after[k]) for k in labels], w["whatif_y"])
    b, a = _summary(before), _summary(after)
    rb, ra = _dimension_rows(b), _dimension_rows(a).set_index("id").reindex(_dimension_rows(b)["id"])
    return (_names(rb, lang), list(100 * rb["covered"].to_numpy(float)),
            list(100 * ra["covered"].to_numpy(float)), w["whatif_y"])


def what_if_chart(before, after=None, lang: str = "zh", *, ax=None, path=None,
                  title: str | None = None, attribution: str | None = None, profile=None):
    """Before/after bars.

    * two Results (or summary tables): residents covered (%) per dimension;
    * two mappings ``{label: value}`` (e.g. coverage % per category);
    * one :func:`lifecircle.analyses.recommend.what_if` result (or a list of them) as ``before``:
      residents covered within the category's threshold (%), before and after (``profile``
      names the categories in ``lang``).
    """
    import matplotlib.pyplot as plt

    w = _w(lang)
    labels, vb, va, ylab = _what_if_pairs(before, after, lang, profile)
    attribution = attribution or _attribution(before) or _attribution(after)
    with _style(lang) as fams:
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(
            figsize=(max(4.5, 1.3 * len(labels) + 2), 4))
        x = np.arange(len(labels))
        b1 = ax.bar(x - 0.2, np.nan_to_num(vb), 0.4, label=w["before"], color="#bababa",
                    gid="before")   # an unknown value (no data): no bar, labelled so
        b2 = ax.bar(x + 0.2, np.nan_to_num(va), 0.4, label=w["after"], color="#1a9641", gid="after")
        for bars, vals in ((b1, vb), (b2, va)):
            ax.bar_label(bars, labels=[f"{v:.1f}" if np.isfinite(v)   # unknown: no data
                                       else i18n.status_label(col.STATUS_NO_DATA, lang)
                                       for v in vals], fontsize=8, padding=1)
        ax.set_xticks(x, labels)
        top = max([100.0] + [v for v in vb + va if np.isfinite(v)])
        ax.set_ylim(0, top * 1.08)
        ax.set_ylabel(ylab)
        ax.set_title(title or w["whatif_title"])
        ax.legend(frameon=False)
        fig.tight_layout()
        return _finish(fig, ax, fams, attribution, path, lang)
