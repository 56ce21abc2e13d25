"""HTML summaries: a :class:`~lifecircle.result.Result` shown in Jupyter."""

from __future__ import annotations

from pathlib import Path

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.i18n import label
from lifecircle.untrusted import escape_html, readable_path


def result_html(result) -> str:
    """The headline, the dimension rows of the summary, the notes and the attribution of a
    result, as an HTML fragment (text from the data escaped). The headline is over the
    dimensions with data, with the all-categories figure beside it."""
    o = result.overall()
    zh = result.settings.lang == "zh"

    def num(value, fmt):
        return "–" if value is None or value != value else format(value, fmt)

    name = escape_html(readable_path(Path(result.source).name) if result.source else "")
    src = result.population_info.get("source", "")
    src_text = escape_html(label(f"pop.{src}", "zh" if zh else "en")) if src else ""
    stats = dict(homes=f"{len(result.homes):,}", pop=num(o.get("population"), ",.0f"),
                 fac=f"{len(result.facilities):,}", cats=result.facilities[col.CATEGORY].nunique(),
                 score=num(o.get("score_mean"), ".1f"), gini=num(o.get("score_gini"), ".3f"))
    lang = "zh" if zh else "en"
    line = escape_html(i18n.headline_text(o, lang, snap_m=result.settings.max_snap_m))
    why = (("（{}）" if zh else " ({})").format(escape_html(i18n.missing_reason(o, lang)))
           if "–" in (stats["score"], stats["gini"]) else "")     # missing, and why
    if zh:
        head = (f"<h4>生活圈分析 — {name}</h4><p>住宅 {stats['homes']} 处，居民 {stats['pop']} 人"
                f"{'（' + src_text + '）' if src else ''}，"
                f"设施 {stats['fac']} 处（{stats['cats']} 类）；平均得分（有数据的维度）{stats['score']}，"
                f"基尼系数 {stats['gini']}{why}；{line}。</p>")
    else:
        head = (f"<h4>lifecircle result — {name}</h4><p>{stats['homes']} homes, {stats['pop']} residents"
                f"{' (' + src_text + ')' if src else ''}, "
                f"{stats['fac']} facilities in {stats['cats']} categories; mean score (dimensions with data) "
                f"{stats['score']}, Gini {stats['gini']}{why}; {line}.</p>")
    dims = result.summary_table(lang)
    dims = dims[dims.iloc[:, 0].isin([label(f"sum.level_{v}", lang) for v in ("dimension", "overall")])]
    notes = "".join(f"<li>{escape_html(n)}</li>" for n in result.notes)
    hint = i18n.no_data_hint(lang)
    if result.no_data_categories() and not any(hint in str(n) for n in result.notes):   # said once
        notes += f"<li>{escape_html(hint)}</li>"
    return (head + dims.to_html(index=False, na_rep="–") + (f"<ul>{notes}</ul>" if notes else "")
            + f"<p><small>{escape_html(i18n.attribution_text(result.attribution, lang))}</small></p>")
