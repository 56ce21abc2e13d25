"""Compliance with the Chinese life-circle standards: GB 50180-2018 and TD/T 1062-2021.

:func:`check` turns an analysis (a :class:`~lifecircle.pipeline.Result` or an ``analyze``
output folder) into a :class:`ComplianceReport`: for every facility of the standard, per
life-circle unit, the share of residents who reach it on foot within its threshold.

Units and tiers
---------------
* The whole study area is one **15-minute unit** (十五分钟生活圈). It is assessed at all three
  tiers (15, 10 and 5 minutes), so an area without community boundaries still gets a 5- and
  10-minute verdict for the area as a whole.
* Each community of the boundary file (when the analysis had one) is a **5–10-minute unit**
  (五分钟/十分钟生活圈, 社区 level) and is assessed at tiers 10 and 5.

A facility belongs to the tier given by ``tier`` in the standard's profile
(``data/profiles/<standard>.yaml``: where GB 50180-2018 requires a facility at both the 15- and
10-minute level the profile puts it at tier 10).

Rows and verdicts
-----------------
* ``share``: population-weighted share of the unit's residents whose walk to the nearest
  facility of that kind is at most the category's ``minutes`` (the 附录C service radius at the
  profile's 4 km/h: 300 m → 4.5 min, 500 m → 7.5 min, 1000 m → 15 min; the tier where the
  standard gives no radius). Homes farther than ``max_snap_m`` from any walkable street are
  left out of numerator and denominator, as in ``summary.csv`` (they are counted in
  ``unreachable_population``).
* ``facilities``: facilities of that kind *inside* the unit (the study area, or all analysed
  facilities when the analysis had no boundary; the community polygon for a community).
  ``present`` is ``facilities > 0``; a facility can be missing in a community and still be
  reached from the next one.
* ``status``: ``met`` when ``share >= min_share``; otherwise ``missing`` when there is no such
  facility inside the unit, else ``short`` (present, but too few residents reach it);
  ``no_data`` (无数据) when the analysed data hold no facility of that kind anywhere and the
  analysis did not declare it surveyed (``--complete``): its share is unknown (NaN), never 0 %.
* A **tier passes** when every *required* facility of the tier (▲ 应配建 in GB 50180-2018,
  基础保障型 in TD/T 1062-2021) is ``met``; it fails when one with data is not; when the others
  are met but some have no data, the verdict is *undetermined* (``passed`` None,
  ``n_no_data`` > 0) — add a POI table with ``--facilities`` or declare them surveyed.
  ``min_share`` defaults to **0.8**: 80 % of residents
  within the service radius — a project convention [I]; the standards state radii, not shares.
  Optional facilities (△ / 品质提升型) are reported separately and never fail a tier.
* Every row carries the facility id, Chinese and English names, tier, radius, requirement,
  the ``source`` clause of the profile and its confidence mark ([V] verified, [R] recalled,
  [I] interpretation; see ``../shared/design/standards.md``).

Which analysis is used
----------------------
When the result was analysed with the standard's own profile, its ``t_<id>`` columns are used
as they are. Otherwise only the facility step is redone: the OSM features of
``result.source`` are read again, classified into the standard's categories
(:func:`lifecircle.core.classify.classify_features`), snapped to the *same* network and timed from
the *same* homes with the result's engine. Homes, populations (including a population file used
by ``analyze``), network and settings stay those of the result; rerunning the whole of
``analyze`` would rebuild all of them and lose a population override. A facility table
(Amap/Baidu) merged in the original run is not re-read — run ``analyze --profile <standard>``
with it for that.
"""

from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.core.classify import classify_features
from lifecircle.core.coverage import data_status, reachable
from lifecircle.core.network import data_extent, projected_bounds
from lifecircle.core.profiles import DIMENSION_NAMES, Profile, load_profile
from lifecircle.core.snapping import snap_facilities
from lifecircle.errors import InputFileError, LifecircleError, ProfileError
from lifecircle.io.sources import WGS84, OSMData, read_osm
from lifecircle.result import load_result
from lifecircle.untrusted import csv_safe, readable_path, xlsx_frame, xlsx_safe, xlsx_value

__all__ = ["STANDARDS", "DEFAULT_MIN_SHARE", "ComplianceReport", "check",
           "resolve_standard", "label"]

#: Residents that must reach a required facility within its threshold for it to count as met.
DEFAULT_MIN_SHARE = 0.8
TIERS = (15, 10, 5)
ALL = "ALL"

#: The standards :func:`check` knows: the profile holding their facility list, titles, and how
#: the required / optional flag is written (zh, en).
STANDARDS: dict[str, dict] = {
    "gb50180-2018": {
        "profile": "gb50180-2018",
        "title_zh": "GB 50180-2018《城市居住区规划设计标准》",
        "title_en": "GB 50180-2018 Standard for urban residential area planning and design",
        "required": ("▲ 应配建", "required (▲)"),
        "optional": ("△ 按需配建", "optional (△)"),
    },
    "tdt1062-2021": {
        "profile": "tdt1062-2021",
        "title_zh": "TD/T 1062-2021《社区生活圈规划技术指南》",
        "title_en": "TD/T 1062-2021 Technical guideline for community life circle planning",
        "required": ("基础保障型", "basic (基础保障)"),
        "optional": ("品质提升型", "quality-improving (品质提升)"),
    },
}



def label(key: str, lang: str = "zh", **fmt) -> str:
    """The Chinese (``lang="zh"``) or English label of ``key`` (the ``std.`` section of
    :mod:`lifecircle.i18n`)."""
    return i18n.label("std." + key, lang, **fmt)


def _check_lang(lang: str) -> str:
    return i18n.check_lang(lang)


#: The English notes some profile ``source`` clauses carry (project additions, not clauses of
#: the standard) → Chinese, for the Chinese tables; the clause text and codes stay as written.
_SOURCE_ZH = (
    (re.compile(r"not a (GB 50180-2018|TD/T 1062-2021) element; project addition for the (\w+) dimension"),
     lambda m: f"非 {m[1]} 要素；本项目为{DIMENSION_NAMES.get(m[2], (m[2],))[0]}维度增补"),
    (re.compile(r"not a (GB 50180-2018|TD/T 1062-2021) element \((.*?) is\); reference facility"),
     lambda m: f"非 {m[1]} 要素（{m[2]}才是）；参考设施"),
    (re.compile(r"(\d+) per ([\d.–-]+ ?万?) residents"), lambda m: f"每 {m[2]} 居民 {m[1]} 处"),
    (re.compile(r"(.*?) and (\d+ ?m) per (GB 50180-2018|TD/T 1062-2021)"), lambda m: f"{m[1]}、{m[2]}，依 {m[3]}"),
    (re.compile(r"(\d+ ?m) per (GB 50180-2018|TD/T 1062-2021)"), lambda m: f"{m[1]}，依 {m[2]}"),
    (re.compile(r"\((\S+) is not a (TD/T|GB) element"), lambda m: f"（{m[1]}不是 {m[2]} 要素"),
)


def _source_text(source: str, lang: str) -> str:
    """A profile's ``source`` clause as shown in ``lang`` (see :data:`_SOURCE_ZH`)."""
    if lang != "zh" or not isinstance(source, str):
        return source
    for pattern, zh in _SOURCE_ZH:
        source = pattern.sub(zh, source)
    return source

def resolve_standard(standard: str) -> str:
    """The canonical key of ``standard`` (case and spaces/slashes ignored: "GB 50180-2018",
    "TD/T 1062-2021" work); :class:`ProfileError` listing the known ones otherwise."""
    key = re.sub(r"[\s/_]", "", str(standard)).lower()
    if key in STANDARDS:
        return key
    raise ProfileError(str(standard), "unknown standard; known standards: " + ", ".join(STANDARDS),
                       zh="未知的标准；可用标准：" + ", ".join(STANDARDS))


def _confidence(source: str | None) -> str:
    marks = []
    for m in re.findall(r"\[([VRI])\]", source or ""):
        if m not in marks:
            marks.append(m)
    return "/".join(marks)


# --------------------------------------------------------------------------------------------
# the report


@dataclass
class ComplianceReport:
    """Result of :func:`check`.

    ``rows``: one row per (unit, facility) with language-neutral columns ``unit``,
    ``unit_level`` ("15" or "5-10"), ``tier``, ``id``, ``name_zh``, ``name_en``, ``required``,
    ``radius_m``, ``minutes``, ``facilities``, ``present``, ``population``, ``reached``,
    ``share`` (0–1), ``status`` (met/short/missing/no_residents), ``goal``, ``source``,
    ``confidence``. ``summary``: one row per (unit, tier) with ``passed`` (True/False, None
    without residents), ``n_required``, ``n_met``, ``n_missing``, ``lowest_share``, ``failing``.
    ``home_times``: per home of the result (same order), ``population``, ``reachable``,
    ``community`` and the ``t_<id>`` minutes of every category of the standard.
    """

    standard: str
    profile: Profile
    rows: pd.DataFrame
    summary: pd.DataFrame
    home_times: pd.DataFrame
    min_share: float = DEFAULT_MIN_SHARE
    lang: str = "zh"
    source: str = ""
    attribution: str = ""
    analysis_profile: str = ""
    route: str = "profile"           # "profile" or "reclassified"
    notes: list = field(default_factory=list)
    #: category id → data / no_data / complete (see :mod:`lifecircle.columns`)
    data_status: dict = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        return STANDARDS[self.standard]

    @property
    def required_ids(self) -> set[str]:
        return set(self.rows.loc[self.rows.required, "id"])

    @property
    def optional_ids(self) -> set[str]:
        return set(self.rows.loc[~self.rows.required, "id"])

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(self.summary["unit"]))

    def passed(self, tier: int = 15, unit: str = ALL) -> bool | None:
        """Pass (True), fail (False) or no residents (None) of ``unit`` at ``tier``."""
        s = self.summary[(self.summary.unit == unit) & (self.summary.tier == tier)]
        if s.empty:
            raise KeyError(f"no verdict for unit {unit!r} at tier {tier}")
        v = s.iloc[0]["passed"]
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v)

    def title(self, lang: str | None = None) -> str:
        lang = lang or self.lang
        return self.info["title_en" if lang == "en" else "title_zh"]

    # -- localised tables ---------------------------------------------------------------------
    def _requirement(self, required: bool, lang: str) -> str:
        pair = self.info["required" if required else "optional"]
        return pair[1] if lang == "en" else pair[0]

    def _unit_name(self, unit: str, lang: str) -> str:
        return label("whole_area", lang) if unit == ALL else unit

    def table(self, lang: str | None = None, required: bool | None = None,
              tier: int | None = None, unit: str | None = None, headers: str = "human") -> pd.DataFrame:
        """The rows with values in ``lang``, filtered when asked; headers in ``lang``
        (``"human"``) or the stable English machine names (``"machine"``, compliance.csv)."""
        lang = _check_lang(lang or self.lang)
        r = self.rows
        if required is not None:
            r = r[r.required == required]
        if tier is not None:
            r = r[r.tier == tier]
        if unit is not None:
            r = r[r.unit == unit]
        out = pd.DataFrame({
            "unit": [self._unit_name(u, lang) for u in r.unit],
            "unit_level": [label("level_15" if lv == "15" else "level_5_10", lang) for lv in r.unit_level],
            "tier": r.tier.astype(int).to_numpy(),
            "id": r.id.to_numpy(),
            "name_zh": r.name_zh.to_numpy(),
            "name_en": r.name_en.to_numpy(),
            "requirement": [self._requirement(bool(q), lang) for q in r.required],
            "radius_m": r.radius_m.to_numpy(),
            "minutes": r.minutes.to_numpy(),
            "facilities": r.facilities.astype(int).to_numpy(),
            "present": [label("no_data", lang) if st == "no_data" else label("yes" if p else "no", lang)
                        for p, st in zip(r.present, r.status)],
            "population": r.population.round(0).to_numpy(),
            "reached": r.reached.round(0).to_numpy(),
            "share_pct": (100 * r.share).round(1).to_numpy(),
            "min_share_pct": [round(100 * self.min_share, 1) if q else np.nan for q in r.required],
            "status": [label(s, lang) if q or s == "no_residents" else
                       f"{label(s, lang)} · {label('optional_row', lang)}"
                       for s, q in zip(r.status, r.required)],
            "goal": r.goal.to_numpy(),
            "source": [_source_text(s, lang) for s in r.source],
            "confidence": r.confidence.to_numpy(),
        })
        if headers == "machine":
            return out
        if lang == "zh":           # a Chinese table: the English name is the English table's
            out = out.drop(columns="name_en")
        out.columns = [label(c, lang) for c in out.columns]
        return out

    def _names(self, ids, lang: str) -> str:
        """A comma-separated list of category ids as names in ``lang`` (、-separated in Chinese)."""
        if not isinstance(ids, str) or not ids:
            return "" if not isinstance(ids, str) else ids
        parts = [c.strip() for c in ids.split(",") if c.strip()]
        names = [self.profile.display_name(c, lang) if c in self.profile else c for c in parts]
        return ("、" if lang == "zh" else ", ").join(names)

    def summary_table(self, lang: str | None = None) -> pd.DataFrame:
        """Pass/fail per unit and tier, Chinese or English."""
        lang = _check_lang(lang or self.lang)
        s = self.summary

        def verdict(v, n_no_data=0, population=1.0):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if population > 0 and n_no_data:
                    return label("undetermined", lang)
                return label("no_residents", lang)
            return label("pass" if v else "fail", lang)

        n_nd = s.n_no_data if "n_no_data" in s else pd.Series(0, index=s.index)

        out = pd.DataFrame({
            "unit": [self._unit_name(u, lang) for u in s.unit],
            "unit_level": [label("level_15" if lv == "15" else "level_5_10", lang) for lv in s.unit_level],
            "tier": s.tier.astype(int).to_numpy(),
            "result": [verdict(v, k, p) for v, k, p in zip(s.passed, n_nd, s.population)],
            "n_required": s.n_required.astype(int).to_numpy(),
            "n_met": s.n_met.astype(int).to_numpy(),
            "n_missing": s.n_missing.astype(int).to_numpy(),
            "lowest_share_pct": (100 * s.lowest_share).round(1).to_numpy(),
            "failing": [self._names(f, lang) for f in s.failing],
            "n_no_data": n_nd.astype(int).to_numpy(),
            "no_data_ids": [self._names(f, lang) for f in
                            (s.no_data if "no_data" in s else pd.Series("", index=s.index))],
            "population": s.population.round(0).to_numpy(),
            "unreachable_population": s.unreachable_population.round(0).to_numpy(),
        })
        out.columns = [label(c, lang) for c in out.columns]
        return out

    def about(self, lang: str | None = None) -> list[tuple[str, str]]:
        lang = _check_lang(lang or self.lang)
        route = (label("route_profile", lang) if self.route == "profile"
                 else label("route_reclassified", lang, p=self.analysis_profile))
        items = [
            (label("standard", lang), self.title(lang)),
            (label("analysis", lang), f"{self.source} — {route}"),
            (label("rule", lang), label("rule_text", lang, p=f"{100 * self.min_share:g}")),
            (label("confidence", lang), label("confidence_legend", lang)),
            (label("attribution", lang), i18n.attribution_text(self.attribution, lang)),
        ]
        items += [(label("notes", lang), n) for n in self.notes]
        if any(v == col.STATUS_NO_DATA for v in self.data_status.values()):
            items.append((label("no_data", lang), i18n.no_data_hint(lang)))
        return items

    # -- exports ------------------------------------------------------------------------------
    def to_csv(self, path, lang: str | None = None) -> Path:
        """All rows (required and optional, every unit) as CSV in UTF-8 with BOM (Excel shows
        the Chinese): the same file in every language, for scripts — English machine column
        names and English codes (``status`` met/short/missing, ``present`` yes/no, ``unit``
        whole area), the facility's name in both languages (``name_zh``, ``name_en``); the last
        column holds the OSM attribution. ``lang`` is accepted for symmetry with
        :meth:`to_xlsx` and changes nothing."""
        _check_lang(lang or self.lang)
        t = self.table("en", headers="machine")         # the same columns and codes in every language
        t["attribution"] = i18n.attribution_text(self.attribution, "en")
        path = Path(path)
        csv_safe(t).to_csv(path, index=False, encoding="utf-8-sig")
        return path

    def to_xlsx(self, path, lang: str | None = None) -> Path:
        """An Excel workbook: a summary sheet, one sheet per tier (required facilities), a
        sheet of optional facilities and an about sheet (standard, rule, attribution)."""
        from openpyxl import Workbook
        from openpyxl.styles import Font, PatternFill

        lang = _check_lang(lang or self.lang)
        wb = Workbook()
        bold = Font(bold=True)
        red = PatternFill("solid", fgColor="F8CBAD")
        green = PatternFill("solid", fgColor="C6EFCE")
        bad_values = {label("fail", lang), label("short", lang), label("missing", lang)}
        good_values = {label("pass", lang), label("met", lang)}

        def sheet(ws, df: pd.DataFrame, status_col: str | None):
            df = xlsx_frame(df)                 # community names etc.: never a failed write
            status_col = xlsx_value(status_col)
            ws.append([str(c) for c in df.columns])
            for cell in ws[1]:
                cell.font = bold
            for row in df.itertuples(index=False):
                ws.append([None if (isinstance(v, float) and math.isnan(v)) else
                           (v.item() if isinstance(v, np.generic) else v) for v in row])
            if status_col is not None and status_col in df.columns:
                j = list(df.columns).index(status_col) + 1
                for i in range(2, ws.max_row + 1):
                    c = ws.cell(i, j)
                    if c.value in bad_values:
                        c.fill = red
                    elif c.value in good_values:
                        c.fill = green
            for j, c in enumerate(df.columns, 1):
                width = max([len(str(c))] + [len(str(v)) for v in df.iloc[:200, j - 1]]) if len(df) else len(str(c))
                ws.column_dimensions[ws.cell(1, j).column_letter].width = min(60, 4 + 1.6 * width)
            ws.freeze_panes = "A2"
            ws.append([])
            ws.append([xlsx_value(i18n.attribution_text(self.attribution, lang))])

        ws = wb.active
        ws.title = label("sheet_summary", lang)
        sheet(ws, self.summary_table(lang), label("result", lang))
        for t in TIERS:
            ws = wb.create_sheet(label("sheet_tier", lang, t=t))
            sheet(ws, self.table(lang, required=True, tier=t), label("status", lang))
        ws = wb.create_sheet(label("sheet_optional", lang))
        sheet(ws, self.table(lang, required=False), None)
        ws = wb.create_sheet(label("sheet_about", lang))
        for k, v in self.about(lang):
            ws.append([xlsx_value(k), xlsx_value(v)])
            ws.cell(ws.max_row, 1).font = bold
        ws.column_dimensions["A"].width = 16
        ws.column_dimensions["B"].width = 110
        path = Path(path)
        xlsx_safe(wb)                       # community names etc. are never stored as formulas
        wb.save(path)
        return path

    # -- display ------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        lang = self.lang
        esc = html.escape
        parts = [f"<h4>{esc(label('title', lang))} — {esc(self.title(lang))}</h4><ul>"]
        for k, v in self.about(lang)[:3]:
            parts.append(f"<li><b>{esc(k)}</b>: {esc(str(v))}</li>")
        parts.append("</ul>")
        s = self.summary_table(lang)
        res_col = label("result", lang)

        def colour(v):
            if v == label("pass", lang) or v == label("met", lang):
                return "background-color:#c6efce"
            if v in (label("fail", lang), label("short", lang), label("missing", lang)):
                return "background-color:#f8cbad"
            return ""

        def styled(df, column):
            try:
                return (df.style.hide(axis="index").map(colour, subset=[column])
                        .format(precision=1, na_rep="—").to_html())
            except Exception:  # jinja2 missing: plain table
                return df.to_html(index=False, na_rep="—")

        parts.append(styled(s, res_col))
        keep = ["unit", "tier", "id", "name_zh" if lang == "zh" else "name_en", "radius_m",
                "facilities", "share_pct", "status", "confidence"]
        cols = [label(k, lang) for k in keep]
        req = self.table(lang, required=True, unit=ALL)[cols]
        parts.append(f"<h5>{esc(label('required_facilities', lang))} — {esc(label('whole_area', lang))}</h5>")
        parts.append(styled(req, label("status", lang)))
        opt = self.table(lang, required=False, unit=ALL)[cols]
        parts.append(f"<details><summary>{esc(label('optional_facilities', lang))} ({len(opt)})</summary>")
        parts.append(opt.to_html(index=False, na_rep="—"))
        parts.append("</details>")
        n_comm = len(self.units) - 1
        if n_comm > 0:
            parts.append(f"<p>{n_comm} communities: see <code>report.table(unit=…)</code>.</p>")
        parts.append(f"<p><small>{esc(self.attribution)}</small></p>")
        return "".join(parts)

    def __repr__(self) -> str:
        def word(v):
            return "undetermined" if v is None else "pass" if v else "fail"

        verdicts = ", ".join(f"{t} min {word(self.passed(t))}" for t in TIERS
                             if not self.summary[(self.summary.unit == ALL) & (self.summary.tier == t)].empty)
        return f"<ComplianceReport {self.standard}: whole area {verdicts}>"


# --------------------------------------------------------------------------------------------
# computing it


def _standard_times(result, profile: Profile, lang: str = "en") -> tuple[pd.DataFrame, dict, str, list[str]]:
    """Minutes from every home to every category of ``profile`` and the facility geometries
    per category: from the result when it was analysed with this profile, else by
    re-classifying the OSM source for these categories on the same network and homes."""
    homes = result.homes
    cats = profile.categories
    have = all(col.time(c.id) in homes for c in cats)
    notes: list[str] = []
    if str(result.profile.name) == str(profile.name) and have:
        times = {col.time(c.id): homes[col.time(c.id)].to_numpy(float) for c in cats}
        fac = result.facilities
        if col.REACHABLE in fac:
            fac = fac[fac[col.REACHABLE].astype(bool)]
        geoms = {c.id: fac.geometry.to_numpy()[fac[col.CATEGORY].to_numpy() == c.id] for c in cats}
        return pd.DataFrame(times, index=homes.index), geoms, "profile", notes

    import geopandas as gpd


    src = result.source
    if result.features is not None:          # the folder keeps the study area's OSM features
        data = OSMData(result.network.edges_gdf().iloc[:0], result.features, src, result.data_date)
    else:                                    # a folder of an older format: read the source again
        if not src:
            raise InputFileError("(no source)", f"the analysis ran with profile {result.profile.name!r}; "
                                 f"checking {profile.name} needs its OSM source, which is not recorded — "
                                 f"run 'lifecircle analyze SOURCE --profile {profile.name}'",
                                 zh=f"分析所用的指标体系为 {result.profile.name!r}；核查 {profile.name} 需要分析的 "
                                    f"OSM 数据来源，但未记录——请运行 'lifecircle analyze SOURCE --profile "
                                    f"{profile.name}'")
        looks_like_file = any(str(src).lower().endswith(e) for e in (".pbf", ".osm", ".xml", ".bz2"))
        if looks_like_file and not Path(src).exists():
            raise InputFileError(src, f"OSM source of the analysis not found; it is needed to classify "
                                 f"the facilities of {profile.name} (the analysis ran with profile "
                                 f"{result.profile.name!r}); run 'lifecircle analyze SOURCE --profile "
                                 f"{profile.name}' instead",
                                 zh=f"找不到分析的 OSM 数据来源；按 {profile.name} 分类设施需要它（分析所用的"
                                    f"指标体系为 {result.profile.name!r}）；请改为运行 'lifecircle analyze "
                                    f"SOURCE --profile {profile.name}'")
        data = read_osm(src)
    settings = result.settings
    crs = result.crs
    if result.communities is not None and result.study_area is not None:
        keep = gpd.GeoSeries([result.study_area.buffer(settings.boundary_margin_m)], crs=crs).to_crs(WGS84).iloc[0]
        data = data.clip(keep)
    fac = classify_features(data.features, profile)
    fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=WGS84).to_crs(crs).reset_index(drop=True)
    # the analysis's POI-table rows: counted where the standard has a category of the same id
    src_col = result.facilities["source"].astype(str) if "source" in result.facilities else None
    table = result.facilities[src_col != "osm"] if src_col is not None else result.facilities.iloc[:0]
    same = table[col.CATEGORY].isin([c.id for c in profile.categories]).to_numpy() if len(table) else \
        np.zeros(0, bool)
    if same.any():
        extra = table[same][[col.CATEGORY, "geometry"]].to_crs(crs)
        fac = gpd.GeoDataFrame(pd.concat([fac[[col.CATEGORY, "geometry"]], extra], ignore_index=True),
                               geometry="geometry", crs=crs)
    snap = snap_facilities(result.network, fac.geometry.to_numpy(), settings.max_snap_m)
    cat_of = fac[col.CATEGORY].to_numpy()
    reach = snap.reachable
    snaps = [snap.take(np.flatnonzero((cat_of == c.id) & reach)) for c in cats]
    t = result.engine.nearest(snaps)
    times = {col.time(c.id): t[i] for i, c in enumerate(cats)}
    geoms = {c.id: fac.geometry.to_numpy()[(cat_of == c.id) & reach] for c in cats}
    notes.append(label("note_reclassified", lang, src=src, p=profile.name, a=result.profile.name))
    table_rows = int((~same).sum())
    if table_rows:      # POI-table rows of a category the standard does not have
        notes.append(label("note_table_left_out", lang, n=table_rows, p=profile.name))
    if (~reach).any():
        notes.append(i18n.label("note.facilities_unreachable", lang, n=int((~reach).sum()),
                                m=settings.max_snap_m))
    return pd.DataFrame(times, index=homes.index), geoms, "reclassified", notes


def _units(result) -> list[tuple[str, str, object, np.ndarray, tuple[int, ...]]]:
    """(name, level, polygon or None, home mask, tiers) of every life-circle unit."""
    n = len(result.homes)
    units = [(ALL, "15", result.study_area, np.ones(n, bool), TIERS)]
    if result.communities is not None and col.COMMUNITY in result.homes:
        hc = result.homes[col.COMMUNITY].astype(object).to_numpy()
        for name, geom in zip(result.communities[col.COMMUNITY].astype(str), result.communities.geometry):
            units.append((name, "5-10", geom, hc.astype(str) == name, (10, 5)))
    return units


def assess(home_times: pd.DataFrame, profile: Profile, units, facility_counts,
           min_share: float = DEFAULT_MIN_SHARE, status: dict | None = None,
           outside=frozenset()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows and the per-tier verdicts (see the module docstring).

    ``home_times``: ``population``, ``reachable`` and ``t_<id>`` per home. ``units``: (name,
    level, home mask, tiers). ``facility_counts``: (unit name, category id) → facilities
    inside the unit. ``status``: category id → data status (None: every category has data);
    ``no_data`` rows get a NaN share and status ``no_data`` and never decide a verdict.
    ``outside``: names of units wholly outside the data, every row of theirs ``no_data`` (its
    facilities and residents are unknown, not missing).
    """
    status = status or {}
    if not 0 <= min_share <= 1:
        raise LifecircleError(f"min_share must be between 0 and 1 (got {min_share!r})",
                              zh=f"min_share 须在 0 到 1 之间（实为 {min_share!r}）")
    pop_all = home_times[col.POPULATION].to_numpy(float)
    reach = reachable(home_times)
    rows, summ = [], []
    for name, level, mask, tiers in units:
        pop = np.where(reach & mask, pop_all, 0.0)
        total = float(pop.sum())
        for c in profile.categories:
            tier = int(c.tier or 15)
            if tier not in tiers:
                continue
            t = np.nan_to_num(home_times[col.time(c.id)].to_numpy(float), nan=np.inf)
            reached = float(pop[t <= c.minutes + 1e-9].sum())
            share = reached / total if total > 0 else float("nan")
            n_fac = int(facility_counts.get((name, c.id), 0))
            data = col.STATUS_NO_DATA if name in outside else status.get(c.id, col.STATUS_DATA)
            if data == col.STATUS_NO_DATA:
                verdict, reached, share = "no_data", float("nan"), float("nan")
            elif total <= 0:
                verdict = "no_residents"
            elif share >= min_share - 1e-12:
                verdict = "met"
            else:
                verdict = "missing" if n_fac == 0 else "short"
            rows.append(dict(unit=name, unit_level=level, tier=tier, id=c.id, name_zh=c.name_zh,
                             name_en=c.name_en, required=bool(c.required), radius_m=c.radius_m,
                             minutes=c.minutes, facilities=n_fac, present=n_fac > 0,
                             population=total, reached=reached, share=share, status=verdict,
                             data_status=data,
                             goal=c.goal or "", source=c.source or "",
                             confidence=_confidence(c.source)))
    df = pd.DataFrame(rows)
    if len(df):  # per unit: 15, 10, 5 minutes; required before optional; profile order within
        order = {n: i for i, (n, *_) in enumerate(units)}
        df["_u"] = df.unit.map(order)
        df["_p"] = np.arange(len(df))
        df = df.sort_values(["_u", "tier", "required", "_p"], ascending=[True, False, False, True],
                            kind="stable").drop(columns=["_u", "_p"]).reset_index(drop=True)
    for name, level, mask, tiers in units:
        u = df[df.unit == name]
        for tier in tiers:
            r = u[(u.tier == tier) & u.required]
            total = float(u.population.iloc[0]) if len(u) else 0.0
            known = r[r.status != "no_data"]
            nodata = r[r.status == "no_data"]
            if total <= 0:
                passed = None
            elif not (known.status == "met").all():
                passed = False
            else:
                passed = None if len(nodata) else True   # undetermined while some lack data
            summ.append(dict(unit=name, unit_level=level, tier=tier, passed=passed,
                             n_required=len(r), n_met=int((r.status == "met").sum()),
                             n_missing=int((~known.present).sum()),
                             n_no_data=len(nodata), no_data=", ".join(nodata.id),
                             lowest_share=float(known.share.min()) if len(known) else float("nan"),
                             failing=", ".join(r.loc[r.status.isin(["short", "missing"]), "id"]),
                             population=total,
                             unreachable_population=float(pop_all[mask & ~reach].sum())))
    return df, pd.DataFrame(summ)


def check(result_or_dir, standard: str = "gb50180-2018", lang: str = "zh",
          min_share: float = DEFAULT_MIN_SHARE) -> ComplianceReport:
    """Assess an analysis against GB 50180-2018 or TD/T 1062-2021.

    ``result_or_dir``: a :class:`~lifecircle.pipeline.Result` or an ``analyze`` output folder.
    ``min_share``: residents (0–1) a required facility must reach within its threshold for its
    tier to pass (default 0.8, a project convention). See the module docstring for units,
    tiers and how an analysis run with another profile is handled.

    >>> report = check("out/nanjing", "gb50180-2018")       # doctest: +SKIP
    >>> report.passed(15), report.summary_table("en")        # doctest: +SKIP
    """
    key = resolve_standard(standard)
    lang = _check_lang(lang)
    if not 0 <= float(min_share) <= 1:
        raise LifecircleError(f"min_share must be between 0 and 1 (got {min_share!r})",
                              zh=f"min_share 须在 0 到 1 之间（实为 {min_share!r}）")
    result = result_or_dir
    if isinstance(result_or_dir, (str, os.PathLike)):

        result = load_result(result_or_dir)
    elif not hasattr(result_or_dir, "homes"):
        raise TypeError("check() takes a lifecircle Result or an analysis folder")
    profile = load_profile(STANDARDS[key]["profile"])
    times, geoms, route, notes = _standard_times(result, profile, lang)
    status = _standard_status(result, profile, geoms, route)

    units = _units(result)
    counts: dict = {}
    for name, _, poly, _, _ in units:
        for c in profile.categories:
            g = geoms[c.id]
            if poly is None:
                counts[(name, c.id)] = len(g)
            else:
                counts[(name, c.id)] = int(shapely.intersects(g, poly).sum()) if len(g) else 0
    homes = result.homes
    home_times = pd.DataFrame({
        col.HOME_ID: homes[col.HOME_ID].to_numpy() if col.HOME_ID in homes else np.arange(len(homes)),
        col.POPULATION: homes[col.POPULATION].to_numpy(float),
        col.REACHABLE: reachable(homes),
    }, index=homes.index)
    if col.COMMUNITY in homes:
        home_times[col.COMMUNITY] = homes[col.COMMUNITY].to_numpy()
    home_times = pd.concat([home_times, times], axis=1)
    # communities wholly outside the data (where its network and features lie, not their box:
    # see data_extent): nothing is known there
    extent = data_extent(result.network, [projected_bounds(result.facilities, result.crs),
                                          projected_bounds(getattr(result, "features", None), result.crs)])
    outside = {n for n, _, poly, _, _ in units
               if poly is not None and extent is not None and not shapely.intersects(poly, extent)}
    rows, summary = assess(home_times, profile, [(n, lv, m, t) for n, lv, _, m, t in units],
                           counts, float(min_share), status=status, outside=outside)
    nodata = [c.id for c in profile.categories if status.get(c.id) == col.STATUS_NO_DATA]
    if nodata:
        notes.append(label("note_no_data", lang, n=len(nodata), cats=(
            "、".join(profile.display_name(c, "zh") for c in nodata) if lang == "zh" else ", ".join(nodata))))
    speed = result.settings.walk_speed_kmh
    if abs(speed - profile.speed_kmh) > 1e-9:
        notes.append(label("note_speed", lang, s=speed, p=profile.speed_kmh, r=speed / profile.speed_kmh))
    return ComplianceReport(key, profile, rows, summary, home_times, float(min_share), lang,
                            readable_path(str(result.source)), result.attribution, str(result.profile.name),
                            route, notes, status)


def _standard_status(result, profile: Profile, geoms: dict, route: str) -> dict:
    """Data status of the standard's categories: the analysis' own when it ran with this
    profile; else from the re-classified facilities, with the analysis' ``--complete`` ids."""
    if route == "profile" and hasattr(result, "data_status"):
        own = result.data_status
        if all(c.id in own for c in profile.categories):
            return {c.id: own[c.id] for c in profile.categories}
    counts = {cid: len(g) for cid, g in geoms.items()}
    complete = [c for c in getattr(result.settings, "complete", ()) if c in profile]
    return data_status(profile, counts, complete)


# --------------------------------------------------------------------------------------------
# map


def counted_required(report: ComplianceReport) -> tuple[int, int]:
    """(required facility types :func:`missing_required` counts — those with data —, required
    types without data, which it does not count)."""
    req = [c for c in report.profile.categories if c.required]
    nodata = sum(report.data_status.get(c.id) == col.STATUS_NO_DATA for c in req)
    return len(req) - nodata, nodata


def missing_required(report: ComplianceReport) -> np.ndarray:
    """Per home (report order): how many required facilities of the standard (any tier) it
    does not reach within their thresholds. Facility types without data are not counted."""
    ht = report.home_times
    n = np.zeros(len(ht), dtype=int)
    for c in report.profile.categories:
        if c.required and report.data_status.get(c.id) != col.STATUS_NO_DATA:
            t = np.nan_to_num(ht[col.time(c.id)].to_numpy(float), nan=np.inf)
            n += (t > c.minutes + 1e-9).astype(int)
    return n
