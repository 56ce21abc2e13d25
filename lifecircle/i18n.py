"""One vocabulary for every human-facing word: tables, console lines, notes, popups, tooltips,
layer names and figures, in Chinese and English.

Keys are ``section.key`` (``map.score``, ``fig.hist_title``, ``std.pass`` …); :func:`label` looks
one up, :func:`words` gives a whole section in one language. :func:`check_lang` is the one
validator of a language code and :func:`default_lang` the one default: the ``--lang``/``lang=``
given, else the user's locale (``zh_*`` → zh), else English.
"""

from __future__ import annotations

import locale
import os

from lifecircle import columns as col
from lifecircle.errors import SettingsError

#: The languages of every human-facing output.
LANGS = ("zh", "en")

#: ``section.key`` → (Chinese, English).
LABELS: dict[str, tuple[str, str]] = {
    # maps
    "map.score": ('生活圈得分', 'Score'),
    "map.residents": ('人口', 'residents'),
    "map.homes": ('住宅 (得分)', 'Homes (score)'),
    "map.unreachable": ('不可达', 'unreachable'),
    "map.category": ('类别', 'Category'),
    "map.name": ('名称', 'Name'),
    "map.service": ('服务范围', 'service area'),
    "map.iso": ('等时圈', 'Isochrones'),
    "map.minutes": ('分钟', 'minutes'),
    "map.origin": ('起点', 'Origin'),
    "map.gaps": ('服务缺口', 'Gap areas'),
    "map.gap_tip": ('未覆盖', 'not covered'),
    "map.sites": ('闲置用地', 'Idle sites'),
    "map.communities": ('社区边界', 'Communities'),
    "map.legend": ('生活圈得分（有数据的维度）',
                   'life-circle score (0-100, dimensions with data)'),
    "map.dim_no_data": ('{name}（无数据）', '{name} (no data)'),
    "map.dim_part_no_data": ('{name}（{k}/{n} 类无数据）', '{name} ({k} of {n} categories: no data)'),
    "map.gap_kind": ('未覆盖（有数据的类别；无数据的类别不计）',
                     'not covered (categories with data; those without data not counted)'),
    "map.data": ('数据', 'data'),
    "map.title": ('十五分钟社区生活圈', '15-minute life circle'),
    "map.date": ('数据日期', 'data date'),
    "map.no_date": ('日期未知', 'date unknown'),
    "map.overall": ('综合得分', 'Overall score'),
    "map.sub_scores": ('分项得分', 'Sub-scores'),
    "map.nearest": ('最近设施', 'nearest facility'),
    "map.none_within": ('范围内没有', 'none within reach'),
    "map.home": ('住宅', 'Home'),
    "map.hexagon": ('六边形汇总', 'Hexagon'),
    "map.homes_n": ('住宅数', 'homes'),
    # a gap area's tooltip around its two numbers: "<dim>: <kind> — 12 homes, 300 residents"
    "map.gap_tip_pre": ('{d}：{k} — ', '{d}: {k} — '),
    "map.gap_tip_mid": (' 处住宅，', ' homes, '),
    "map.gap_tip_post": (' 人', ' residents'),
    "map.background": ('背景 (OSM 数据)', 'Background (OSM data)'),
    "map.buildings": ('建筑', 'buildings'),
    "map.building_blocks": ('建筑 (合并为街区)', 'buildings (merged into blocks)'),
    "map.water": ('水域', 'water'),
    "map.green": ('绿地', 'green space'),
    "map.streets": ('道路', 'streets'),
    "map.major_streets": ('主要道路', 'main streets'),
    "map.tiles": ('在线底图 (需联网)', 'Online tiles (needs network)'),
    "map.facilities": ('设施', 'facilities'),
    "map.gap_legend": ('未覆盖住宅所在范围', 'where uncovered homes are'),
    "map.service_legend": ('15分钟服务范围', '15-minute service area'),
    "map.select": ('一次显示一个维度', 'one dimension at a time'),
    "map.unreachable_legend": ('不可达 / 无数据', 'unreachable / no data'),
    "map.sites_legend": ('闲置用地 (按状态)', 'idle sites (by status)'),
    "map.recs": ('推荐选址', 'Recommendations'),
    "map.recs_no_data": ('无数据类别（{c}）：数据中没有此类设施，缺口按不存在此类设施计算，新增覆盖人数可能偏高',
                         'no-data category ({c}): the data hold none, so the gap assumes none exist and '
                         'the residents newly covered may be overstated'),
    "map.rank": ('排名', 'rank'),
    "map.use": ('用途', 'use'),
    "map.area": ('面积 (m²)', 'area (m²)'),
    "map.status": ('状态', 'status'),
    "map.type": ('类型', 'type'),
    "map.source": ('来源', 'source'),
    "map.within": ('步行范围内居民', 'residents within'),
    "map.gap_pop": ('缺口人口', 'gap population'),
    "map.new_cover": ('新覆盖居民', 'residents newly covered'),
    "map.new_homes": ('新增覆盖住宅数', 'homes newly covered'),
    "map.new_homes_text": ('新增覆盖 {n} 处住宅、{p} 位居民', 'newly covers {n} homes, {p} residents'),
    "map.new_homes_layer": ('#{r} 新增覆盖住宅（{n} 处，{p} 人）', '#{r} homes newly covered ({n}, {p} residents)'),
    "map.new_homes_layer_use": ('#{r} {u}：新增覆盖住宅（{n} 处，{p} 人）',
                                '#{r} {u}: homes newly covered ({n}, {p} residents)'),
    "map.same_site": ('同一地块上的推荐：', 'picks on the same site: '),
    "map.compliance": ('标准核查', 'standards check'),
    "map.districts": ('街道/社区', 'Districts'),
    "map.failed": ('失败', 'failed'),
    "map.fac_hexagons": ('设施按六边形汇总（越深越多）', 'facilities summed in hexagons (darker: more)'),
    "map.left_out": ('未绘出（超出单页容量）', 'not drawn (too many for one page)'),
    "map.zoom_in": ('放大', 'Zoom in'),
    "map.zoom_out": ('缩小', 'Zoom out'),
    "map.fullscreen": ('全屏', 'Full screen'),
    "map.fullscreen_exit": ('退出全屏', 'Exit full screen'),
    "map.links_title": ('新增步行连接', 'new walking links'),
    "map.link_chosen": ('组合方案选中的连接（逐条贪心选出）', 'link in the chosen set (greedy picks)'),
    "map.link_ranked": ('候选连接（数字为单独评估的排名）', 'candidate link (number: its rank on its own)'),
    "map.link_gained": ('因该连接新进入步行范围的住宅（按连接分图层）',
                        'homes the link brings within walking reach (a layer per link)'),
    "map.link_other": ('其他候选', 'other candidates'),
    # where the residents come from (Result.population_info["source"])
    "pop.buildings estimate": ('建筑估算', 'buildings estimate'),
    "pop.population raster": ('人口栅格', 'population raster'),
    "pop.community totals": ('社区人口', 'community totals'),
    # figures
    "fig.coverage_title": ('各维度覆盖率', 'Coverage per dimension'),
    "fig.coverage_y": ('覆盖人口比例（%）', 'residents covered (%)'),
    "fig.tier": ('{t}分钟', '{t} min'),
    "fig.own": ('按设施阈值', 'own thresholds'),
    "fig.hist_title": ('生活圈得分分布', 'Life-circle score'),
    "fig.hist_x": ('生活圈得分（0–100，有数据的维度）', 'life-circle score (0–100, dimensions with data)'),
    "fig.hist_y": ('居民（人）', 'residents'),
    "fig.mean": ('平均 {v:.1f}', 'mean {v:.1f}'),
    "fig.gini": ('基尼系数 {v:.3f}', 'Gini {v:.3f}'),
    "fig.radar_title": ('六维度得分雷达图', 'Dimension scores'),
    "fig.all": ('全域', 'whole area'),
    "fig.before": ('现状', 'before'),
    "fig.after": ('规划后', 'after'),
    "fig.whatif_title": ('规划前后对比', 'Before / after'),
    "fig.whatif_y": ('覆盖人口比例（%）', 'residents covered (%)'),
    "fig.score": ('得分', 'score'),
    # data completeness: how a category with no facility in the data reads
    "data.data": ("有数据", "data"),
    "data.no_data": ("无数据", "no data"),
    "data.complete": ("已普查", "surveyed"),
    "data.hint": ("无数据不等于无设施：可用 --facilities 导入高德/百度 POI 表补充，"
                  "或用 --complete 声明该类已普查（此时 0 即确无设施）",
                  "no data is not no facility: add a POI table with --facilities (Amap/Baidu export), "
                  "or declare the category surveyed with --complete (then zero means none exist)"),
    "data.hint_batch": ("无数据不等于无设施：批量配置的 settings 中可用 complete = [\"类别 id\", …] 声明已普查的类别"
                        "（此时 0 即确无设施）；要补充高德/百度 POI，请对该区域运行 lifecircle analyze --facilities",
                        "no data is not no facility: declare surveyed categories in the config's settings with "
                        "complete = [\"id\", …] (then zero means none exist); to add Amap/Baidu POIs, run "
                        "lifecircle analyze --facilities on that district"),
    "data.gap_no_data": ("无数据（不计入）", "no data (not counted)"),
    "data.gap_complete": ("确实缺少（已普查）", "access gap (surveyed)"),
    "data.gap_data": ("覆盖不足", "access gap"),
    "data.no_data_list": ("无数据的类别", "categories without data"),
    # standards: tables, sheets, compliance map and the CLI
    # row columns
    "std.unit": ("单元", "unit"),
    "std.unit_level": ("生活圈层级", "life-circle level"),
    "std.tier": ("设施层级(分钟)", "tier (min)"),
    "std.id": ("设施编号", "facility id"),
    "std.name_zh": ("设施名称", "name (zh)"),
    "std.name_en": ("英文名称", "name (en)"),
    "std.requirement": ("配置要求", "requirement"),
    "std.radius_m": ("服务半径(米)", "service radius (m)"),
    "std.minutes": ("步行时间阈值(分钟)", "walking threshold (min)"),
    "std.facilities": ("区内设施数", "facilities in unit"),
    "std.present": ("是否配置", "present"),
    "std.population": ("人口", "residents"),
    "std.reached": ("覆盖人口", "residents reached"),
    "std.share_pct": ("覆盖率(%)", "share reached (%)"),
    "std.min_share_pct": ("达标覆盖率(%)", "required share (%)"),
    "std.status": ("状态", "status"),
    "std.goal": ("目标", "goal"),
    "std.source": ("标准条款", "clause in the standard"),
    "std.confidence": ("可信度", "confidence"),
    "std.attribution": ("数据来源", "data"),
    # summary columns
    "std.result": ("结论", "result"),
    "std.n_required": ("必配设施数", "required facilities"),
    "std.n_met": ("达标数", "met"),
    "std.n_missing": ("缺失数", "missing"),
    "std.lowest_share_pct": ("最低覆盖率(%)", "lowest share (%)"),
    "std.failing": ("未达标设施", "facilities not met"),
    "std.unreachable_population": ("不可达人口", "unreachable residents"),
    "std.n_no_data": ("无数据设施数", "without data"),
    "std.no_data_ids": ("无数据设施", "facilities without data"),
    "std.data_status": ("数据", "data"),
    # values
    "std.met": ("达标", "met"),
    "std.short": ("覆盖不足", "short"),
    "std.missing": ("缺失", "missing"),
    "std.no_residents": ("无居民", "no residents"),
    "std.no_data": ("无数据", "no data"),
    "std.undetermined": ("无法判定(部分设施无数据)", "undetermined (facilities without data)"),
    "std.optional_row": ("可选(不计入结论)", "optional (not counted)"),
    "std.pass": ("达标", "pass"),
    "std.fail": ("不达标", "fail"),
    "std.n/a": ("不适用", "n/a"),
    "std.yes": ("是", "yes"),
    "std.no": ("否", "no"),
    "std.whole_area": ("全区", "whole area"),
    "std.level_15": ("十五分钟生活圈", "15-minute life circle"),
    "std.level_5_10": ("五至十分钟生活圈(社区)", "5–10-minute life circle (community)"),
    # sheets, titles, map
    "std.sheet_summary": ("汇总", "Summary"),
    "std.sheet_tier": ("{t}分钟层级", "{t}-minute tier"),
    "std.sheet_optional": ("可选设施", "Optional"),
    "std.sheet_about": ("说明", "About"),
    "std.title": ("生活圈配套设施达标评估", "Life-circle facility compliance"),
    "std.required_facilities": ("必配设施", "Required facilities"),
    "std.optional_facilities": ("可选设施(不计入结论)", "Optional facilities (never failing)"),
    "std.standard": ("标准", "standard"),
    "std.analysis": ("分析数据", "analysis"),
    "std.rule": ("达标规则", "rule"),
    "std.rule_text": ("每项必配设施在其服务半径(步行时间)内覆盖的居民比例不低于 {p}%",
                  "every required facility reaches at least {p}% of residents within its radius (walking time)"),
    "std.route_profile": ("使用该标准的指标体系完成的分析", "analysis run with the standard's profile"),
    "std.route_reclassified": ("原分析使用指标体系 {p}; 已按标准设施重新分类并在同一路网与住宅上计算",
                           "analysis ran with profile {p}; facilities re-classified for the standard "
                           "and timed on the same network and homes"),
    "std.confidence_legend": ("可信度: V 已核实; R 据已发布文本回忆, 引用前请核对正式文本; I 解释或项目约定",
                          "confidence: V verified; R recalled from the published text, verify before "
                          "quoting; I interpretation / project convention"),
    "std.map_layer": ("缺少必配设施(数量)", "Missing required facilities (count)"),
    "std.map_missing": ("平均缺少必配设施数", "mean missing required facilities"),
    "std.map_missing_of": ("平均缺少必配设施数（共 {n} 类有数据的必配设施）",
                           "mean missing required facilities (of {n} required types with data)"),
    "std.map_missing_of_nd": ("平均缺少必配设施数（共 {n} 类有数据的必配设施；另 {m} 类无数据，不计入）",
                              "mean missing required facilities (of {n} required types with data; "
                              "{m} without data not counted)"),
    "std.map_homes": ("住宅数", "homes"),
    "std.notes": ("备注", "notes"),
    "std.note_table_left_out": ("分析所用 POI 表中的 {n} 处设施未计入本次达标评估（其类别按原指标体系划分）；"
                                "如需计入，请用 --profile {p} 连同 --facilities 重新运行 analyze",
                                "{n} facilities from the analysis's POI table are not counted here (they "
                                "carry the analysis profile's categories); to count them, re-run analyze "
                                "with --profile {p} and the same --facilities"),
    "std.note_reclassified": ("已按 {p} 从 {src} 重新分类设施（原分析使用指标体系 {a}）",
                              "facilities re-classified from {src} for {p} (the analysis used profile {a})"),
    "std.note_no_data": ("标准中有 {n} 类设施在数据中没有设施（无数据，不计为缺失）：{cats}",
                         "{n} facility type(s) of the standard have no facility in the data "
                         "(no data, not counted as missing): {cats}"),
    "std.note_speed": ("分析步行速度为 {s:g} 公里/小时；阈值为指标体系中的分钟数（服务半径按 {p:g} 公里/小时），"
                       "因此覆盖 {r:.2f} 倍半径",
                       "the analysis walked at {s:g} km/h; thresholds are the profile's minutes "
                       "(service radius at {p:g} km/h), so they cover {r:.2f}× the radius"),
    "std.wrote": ("已写出 {out}：{files}", "wrote {out}: {files}"),
    # console summary of analyze / demo
    "cli.title": ("十五分钟生活圈覆盖（居民比例，%）", "Life-circle coverage (share of residents, %)"),
    "cli.dimension": ("维度", "dimension"),
    "cli.category": ("设施类别", "category"),
    "cli.facilities": ("设施数", "facilities"),
    "cli.covered": ("覆盖率%", "covered %"),
    "cli.tier": ("{t:g}分钟%", "{t:g} min %"),
    "cli.minutes": ("阈值", "limit"),
    "cli.median": ("中位", "median"),
    "cli.short_facilities": ("设施", "n"),
    "cli.short_covered": ("覆盖", "cov."),
    "cli.short_tier": ("{t:g}分钟", "{t:g} min"),
    "cli.category_note": ("各设施类别（居民比例 %；阈值与中位步行时间为分钟）",
                          "every category (share of residents, %; limit and median in minutes)"),
    "cli.homes": ("住宅 {n:,}", "homes {n:,}"),
    "cli.residents": ("居民 {n:,.0f}", "residents {n:,.0f}"),
    "cli.score": ("平均得分（有数据的维度）{v}", "mean score (dimensions with data) {v}"),
    "cli.gini": ("基尼系数 {v}", "Gini {v}"),
    # why the mean score and the Gini are missing (shown beside their "–")
    "why.no_facilities": ("无数据：数据中没有任何类别的设施", "no data: no facility of any category in the data"),
    "why.no_residents": ("无数据：住宅中没有居民", "no data: no residents in the homes"),
    "why.no_data": ("无数据", "no data"),
    "cli.all_six": ("六个维度15分钟内全部覆盖 {v:.1f}%", "all six within 15 min {v:.1f}%"),
    "cli.note": ("注：", "note: "),
    "cli.full_table": ("全部 {n} 个设施类别见 {files}（或加 --verbose 显示）",
                       "all {n} categories: {files} (or --verbose)"),
    "cli.stages": ("各阶段用时：", "stages: "),
    "cli.total": ("合计", "total"),
    "cli.wrote": ("已写出 {out}：{files}", "wrote {out}: {files}"),
    "cli.map_copied": ("地图已复制到 {p}", "map copied to {p}"),
    # the stages of analyze (progress bar and timings)
    "stage.starting": ("开始", "starting"),
    "stage.read": ("读取", "read"),
    "stage.study area": ("研究范围", "study area"),
    "stage.network": ("路网", "network"),
    "stage.network_parallel": ("路网（与读取并行，此为等待）", "network (built alongside the read; the wait)"),
    "stage.facilities": ("设施", "facilities"),
    "stage.homes": ("住宅", "homes"),
    "stage.snap": ("吸附", "snap"),
    "stage.engine": ("步行计算", "engine"),
    "stage.coverage": ("覆盖", "coverage"),
    "stage.writing": ("写出", "writing"),
    "stage.write": ("写出", "write"),
    "stage.map": ("地图准备（与后几步并行，此为等待）", "map (prepared alongside the later stages; the wait)"),
    "stage.done": ("完成", "done"),
    # summary.xlsx (the human twin of summary.csv)
    "sum.community": ("社区", "community"),
    "sum.level": ("层级", "level"),
    "sum.level_category": ("设施类别", "category"),
    "sum.level_dimension": ("维度", "dimension"),
    "sum.level_overall": ("总体", "overall"),
    "sum.dimension": ("所属维度", "dimension"),
    "sum.name": ("名称", "name"),
    "sum.minutes": ("阈值(分钟)", "threshold (min)"),
    "sum.facilities": ("设施数", "facilities"),
    "sum.facilities_margin": ("设施数(含边界外 {m:g} 米缓冲区)", "facilities incl. {m:g} m margin"),
    "sum.covered": ("覆盖率(%)", "covered (%)"),
    "sum.data": ("数据", "data"),
    "sum.tier": ("{t:g}分钟内(%)", "within {t:g} min (%)"),
    "sum.median": ("中位步行时间(分钟)", "median walk (min)"),
    "sum.score": ("平均得分", "mean score"),
    "sum.population": ("人口", "residents"),
    "sum.homes": ("住宅数", "homes"),
    "sum.unreachable": ("不可达住宅", "unreachable homes"),
    "sum.unreachable_pop": ("不可达住宅人口(不计入比例)", "residents in unreachable homes (not in the shares)"),
    "sum.gini": ("基尼系数", "Gini"),
    "sum.sheet": ("汇总", "summary"),
    "sum.about": ("说明", "about"),
    "sum.attribution": ("数据来源", "data"),
    "sum.machine": ("机器可读版本见 summary.csv（英文列名、比例为 0–1）",
                    "machine-readable twin: summary.csv (stable column names, shares 0–1)"),
    # recommend: why nothing was recommended, and the console
    "rec.why_no_gap": ("住宅可达步行道路的居民均已在 {m:g} 分钟内步行可达{c}，无缺口。",
                       "Every resident whose home reaches the walking network already reaches {c} "
                       "within {m:g} min: there is no gap."),
    "rec.why_no_rule": ("{c}不是闲置用地可承载的功能（data/site_uses.yaml 的 uses 中没有 {id}）；"
                        "在其中加入一条规则即可推荐。",
                        "{c} is not a use an idle site can take (no rule for {id} under uses: in "
                        "data/site_uses.yaml); add one to get recommendations."),
    "rec.why_no_site": ("{n} 处资源中没有能承载{c}的用地：需要{forms}且面积不小于 {a:,.0f} 平方米"
                        "（同类用地最大 {big:,.0f} 平方米）；用 --sites 补充调查用地即可。",
                        "None of the {n} sites can take {c}: it needs {forms} land of at least "
                        "{a:,.0f} m² (the largest such site is {big:,.0f} m²); add surveyed sites "
                        "with --sites."),
    "rec.why_too_far": ("{n} 处可承载{c}的用地均不在缺口居民（{g:,.0f} 人）{m:g} 分钟步行范围内；"
                        "距缺口更近的用地（--sites）才能改善。",
                        "The {n} sites that can take {c} are all beyond {m:g} min of the {g:,.0f} "
                        "residents lacking it; sites nearer to them (--sites) would help."),
    "rec.form_building": ("既有建筑", "building"),
    "rec.form_buildable": ("可建设用地", "buildable"),
    "rec.form_open": ("开敞空间", "open"),
    "rec.title": ("{c}：选址 {k} 处（{method}，{s:.2f} 秒）", "{c}: k={k} ({method}, {s:.2f}s)"),
    "rec.gap": ("缺口人口（{m}）：{g}", "residents lacking it ({m}): {g}"),
    "stage.osm": ("OSM 用地", "osm"),
    "stage.corners": ("边角地", "corners"),
    "stage.access": ("可达性", "access"),
    "stage.user": ("用户用地", "user sites"),
    "rec.unreachable": ("另有 {p:,.0f} 名居民的住宅距步行道路过远（不可达）：不计入缺口，任何用地都无法靠步行改善，"
                        "请先核对该处道路数据",
                        "{p:,.0f} residents in homes that reach no walking street are not in the gap: no "
                        "site can close it by walking; check the street data there first"),
    "rec.none": ("没有推荐用地。", "No site recommended."),
    "rec.rank": ("序号", "rank"),
    "rec.site": ("资源编号", "site"),
    "rec.type": ("类型", "type"),
    "rec.status": ("现状", "status"),
    "rec.area": ("面积㎡", "area m²"),
    "rec.use": ("建议功能", "use"),
    "rec.new": ("新增覆盖", "newly covered"),
    "rec.share": ("累计占缺口%", "cumulative % of gap"),
    "rec.gap_total": ("合计（按类别累加：缺几类计几次）{g}", "in all (added over the categories: a resident lacking two counts twice) {g}"),
    "rec.wrote": ("已写出 {out}：{files}", "wrote {out}: {files}"),
    "rec.no_data": ("{c}：{s}——缺口按不存在此类设施计算；{hint}",
                    "{c}: {s} — the gap assumes no such facility exists; {hint}"),
    "rec.whatif_no_data": ("{c}：{s}——今天的覆盖未知（不是 0），“之后”只计新增的用地；{hint}",
                           "{c}: {s} — today's coverage is unknown (not 0); 'after' counts the added sites alone; {hint}"),
    "rec.exact": ("精确求解", "exact"),
    "rec.greedy": ("贪心算法", "greedy"),
    "rec.gap_def": ("今天在阈值内步行不可达的居民", "beyond its threshold today"),
    "rec.status_in use": ("使用中", "in use"),
    "rec.status_idle": ("闲置", "idle"),
    "rec.status_left-over": ("边角空间", "left-over"),
    "rec.status_vacant": ("空置", "vacant"),
    "rec.status_disused": ("停用", "disused"),
    "rec.status_construction": ("在建", "construction"),
    "rec.status_ruins": ("废墟", "ruins"),
    "cli.source": ("来源", "source"),
    "cli.count": ("数量", "count"),
    "res.summary": ("共 {n:,} 处资源；各阶段用时：{t}", "{n:,} sites; stages: {t}"),
    "res.source_osm": ("OSM", "OSM"),
    "res.source_derived": ("几何识别", "derived"),
    "res.source_user": ("调查", "surveyed"),
    # batch: districts.xlsx (the CSV keeps the machine names)
    "batch.sheet": ("各片区", "districts"),
    "batch.failures": ("失败", "failures"),
    "batch.district": ("片区", "district"),
    "batch.source": ("数据源", "source"),
    "batch.folder": ("文件夹", "folder"),
    "batch.status": ("状态", "status"),
    "batch.status_done": ("完成", "done"),
    "batch.status_skipped": ("沿用上次结果", "skipped (resumed)"),
    "batch.status_failed": ("失败", "failed"),
    "batch.population": ("人口", "residents"),
    "batch.homes": ("住宅数", "homes"),
    "batch.unreachable_homes": ("不可达住宅", "unreachable homes"),
    "batch.unreachable_population": ("不可达住宅人口(不计入比例)", "residents in unreachable homes (not in the shares)"),
    "batch.score_mean": ("平均得分", "mean score"),
    "batch.score_gini": ("基尼系数", "Gini"),
    "batch.all6_15": ("有数据维度15分钟全覆盖(%)", "all dimensions with data within 15 min (%)"),
    "batch.all6_15_allcat": ("全部维度15分钟全覆盖(%，无数据按不可达)",
                             "all six within 15 min (%, no data as no access)"),
    "batch.score_mean_allcat": ("平均得分(全部类别)", "mean score (all categories)"),
    "batch.dimensions_with_data": ("有数据的维度数", "dimensions with data"),
    "batch.dimensions": ("维度数", "dimensions"),
    "batch.data_status_no_data": ("无数据类别数", "categories without data"),
    "batch.no_data": ("无数据的类别", "categories without data (names)"),
    "batch.gap_kind": ("短板{k}类型", "gap {k} kind"),
    "batch.rank": ("排名", "rank"),
    "batch.cov_dim": ("{d}覆盖率(%)", "{d} covered (%)"),
    "batch.gap_name": ("短板{k}", "gap {k}"),
    "batch.gap_covered": ("短板{k}覆盖率(%)", "gap {k} covered (%)"),
    "batch.top_gaps": ("主要短板", "top gaps"),
    "batch.config_hash": ("配置指纹", "config hash"),
    "batch.map": ("地图", "map"),
    "batch.resources_map": ("资源地图", "resources map"),
    "batch.compliance_map": ("达标评估地图", "compliance map"),
    "batch.maps": ("地图", "maps"),
    "batch.link_map": ("生活圈地图", "planning map"),
    "batch.link_resources_map": ("闲置资源地图", "idle-site map"),
    "batch.link_compliance_map": ("达标评估地图", "compliance map"),
    "batch.origin": ("出处", "origin"),
    "batch.error": ("错误", "error"),
    "batch.detail": ("详情", "detail"),
    "batch.title": ("{n} 个片区（按有数据的维度排名）", "{n} district(s), ranked on the dimensions with data"),
    "batch.no_data_note": ("无数据（单独列出，不作为短板）：", "no data (listed apart, never as gaps): "),
    "batch.failed": ("失败：", "failed: "),
    "batch.done": ("计算 {c} 个，沿用 {s} 个，失败 {f} 个；已写出 {out}/index.html、districts.csv、"
                   "districts.xlsx、failures.csv",
                   "{c} computed, {s} skipped (resume), {f} failed; wrote {out}/index.html, "
                   "districts.csv, districts.xlsx, failures.csv"),
    # notes of resources (site files, the inventory)
    "site.unknown_columns": ("{f}：未识别的列已忽略：{c}（可识别：{k}）",
                             "{f}: column(s) not understood and ignored: {c} (known: {k})"),
    "site.outside_china": ("{f}：{n} 处 {d} 坐标用地中有 {o} 处位于中国境外（境外不使用 {d}），已按 WGS-84 处理"
                           "（请检查 --sites-crs 或 crs 列）",
                           "{f}: {o} of {n} {d} site(s) lie outside China, where {d} coordinates are "
                           "not used; they were taken as WGS-84 (check --sites-crs or the crs column)"),
    "site.unknown_types": ("{f}：未知的用地类型按“其他”处理：{t}（可识别：{k}）",
                           "{f}: site type(s) not known, taken as 'other': {t} (known: {k})"),
    "site.unknown_ownership": ("{f}：未知的权属按“未知”处理：{v}（可用 国有/集体/私有 或 state/collective/private）",
                               "{f}: ownership value(s) not known, taken as 'unknown': {v} "
                               "(use state/collective/private or 国有/集体/私有)"),
    "site.dropped": ("{f}：{n} 行中丢弃 {d} 行：{r}", "{f}: {d} of {n} row(s) dropped: {r}"),
    "site.unreachable": ("{n} 处用地距步行道路超过 {m:g} 米：无可达性数据",
                         "{n} site(s) farther than {m:g} m from any walkable street: no access figures"),
    # notes of the analysis (Result.notes, in the analysis language)
    "note.population": ("居民 {n:,.0f} 人；来源：{src}{over}{how}", "{n:,.0f} residents; source: {src}{over}{how}"),
    "note.population_over": ("（覆盖于{v}之上）", " over the {v}"),
    "note.population_how": ("（建筑占地面积 × 层数 × 人均面积；未标注建筑按居住证据判断）",
                            " (footprint × levels × persons per m²; untagged buildings by residential evidence)"),
    "note.raster_stand_in": ("{n} 个栅格单元有人口但无住宅：{p:,.0f} 人置于单元中心的替代住宅",
                             "{n} raster cell(s) with people but no mapped home: {p:,.0f} residents placed "
                             "at stand-in homes at the cell centres"),
    "note.raster_empty": ("{n} 个住宅位于人口为 0 的栅格单元，居民记为 0",
                          "{n} home(s) lie in raster cells of 0 people and get 0 residents"),
    "note.zone_stand_in": ("{n} 个有人口的社区内无住宅：{p:,.0f} 人置于每个社区一个替代住宅",
                           "{n} zone(s) with residents but no mapped home: {p:,.0f} residents placed at "
                           "one stand-in home per zone"),
    "note.zones_crossing": ("{n} 个人口分区跨越研究范围边界：按其在范围内的面积比例计入人口（范围外约 {p:,.0f} 人未计入）",
                            "{n} population zone(s) cross the study area's edge: each brings the share "
                            "of its residents its area inside holds (about {p:,.0f} residents beyond "
                            "the edge left out)"),
    "note.zones_off": ("{n} 个社区位于研究范围外，未计入（{p:,.0f} 人）",
                       "{n} zone(s) outside the study area left out ({p:,.0f} residents)"),
    "note.homes_outside": ("{n} 个住宅位于{what}之外，保留{kept}（{p:,.0f} 人）",
                           "{n} home(s) outside {what} keep their {kept} figure ({p:,.0f} residents)"),
    "note.the_raster": ("人口栅格", "the raster"),
    "note.every_zone": ("所有社区", "every zone"),
    "note.unlocated": ("{p:.0f}% 的道路节点没有坐标：这些道路被截短或丢失，道路和住宅可能偏少。可能的原因："
                       "文件缺少这些节点（截取不完整），或文件未排序（路排在其节点之前，请先运行 osmium sort）",
                       "{p:.0f} % of the street node references have no location: those streets are cut "
                       "short or lost, and streets and homes may be too few. Likely causes: the nodes are "
                       "missing from the extract, or the file is not sorted (ways before their nodes: run "
                       "`osmium sort` first)"),
    "note.boundary_off_data": ("边界面积的 {p:.0f}% 位于数据范围之外（{src} 的道路范围为经度 {w:.4f}..{e:.4f}，"
                               "纬度 {s:.4f}..{n:.4f}）：那里的住宅和设施缺失，靠近该边缘的覆盖率偏低；"
                               "请使用覆盖整个边界的 OSM 数据",
                               "{p:.0f} % of the boundary's area lies outside the data's extent (the "
                               "streets of {src} span lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}): homes and "
                               "facilities there are missing and coverage near that edge reads low; use an "
                               "extract that covers the whole boundary"),
    "note.communities_off_data": ("{k} 个社区完全位于数据范围之外，没有结果（summary.csv 中其各项数值为空，"
                                  "不是 0）：{names}",
                                  "{k} community(ies) lie wholly outside the data's extent and have no "
                                  "results (their figures in summary.csv are empty, not 0): {names}"),
    "note.communities_no_homes": ("{k} 个社区在数据中没有住宅，没有结果（summary.csv 中其各项数值为空，不是 0）：{names}",
                                  "{k} community(ies) have no homes in the data and no results (their "
                                  "figures in summary.csv are empty, not 0): {names}"),
    "note.and_more": ("等（另有 {k} 个）", " and {k} more"),
    "note.rows_dropped": ("{f}：丢弃 {n} 行", "{f}: {n} row(s) dropped"),
    "note.homes_unreachable": ("{n} 个住宅（{p:,.0f} 人）距步行道路超过 {m:g} 米：不可达，不计入任何居民比例"
                               "（也可能是道路数据缺失）",
                               "{n} home(s) ({p:,.0f} residents) farther than {m:g} m from any walkable "
                               "street: unreachable, left out of every share of residents (their street "
                               "may be missing from the data)"),
    "note.facilities_unreachable": ("{n} 个设施距步行道路超过 {m:g} 米：未计入",
                                    "{n} facility(ies) farther than {m:g} m from any walkable street: left out"),
    "note.facilities_outside": ("{n} 个设施位于{where}之外{far}：未计入（不是本研究范围的数据；请检查其坐标及"
                                "坐标系，如 --facilities-crs）",
                                "{n} facility(ies) outside {where}{far}: left out (not data about this "
                                "study area; check their coordinates and datum, e.g. --facilities-crs)"),
    "note.outside_boundary": ("研究范围及其 {m:,.0f} 米外扩范围", "the study area and its {m:,.0f} m margin"),
    "note.outside_streets": ("研究范围（步行道路网的范围）", "the study area (the extent of the walking network)"),
    "note.outside_km": ("，距其 {d} 公里", ", {d} km from it"),
    "note.duplicates": ("合并了 {n} 处重复标注的设施（同名要素同时标为点、线和/或关系，面内同类的点，"
                        "或设施表中重复的行）",
                        "{n} duplicate facility mapping(s) merged (the same named feature as node, way "
                        "and/or relation, a node inside an area of its kind, or a facility table's "
                        "repeated row)"),
    "note.network_pruned": ("步行网络：保留 {k} 个连通部分（{km_kept:.1f} 公里）；舍去 {d} 个无法通达的小片段"
                            "（{nodes} 个节点、{segs} 段、{km:.2f} 公里）；最近处为这些片段的 {h} 个住宅和 "
                            "{f} 个设施改接到连通网络",
                            "walking network: kept {k} connected piece(s) ({km_kept:.1f} km); left out {d} "
                            "small disconnected piece(s) ({nodes} nodes, {segs} segments, {km:.2f} km) from "
                            "which nothing can be walked to; {h} home(s) and {f} facility(ies) nearest to one "
                            "attach to the connected network instead"),
    "note.network_stranded": ("，{h} 个住宅和 {f} 个设施只靠近这些片段，不可达",
                              ", {h} home(s) and {f} facility(ies) near only such a piece are unreachable"),
    "note.no_data": ("{n}个设施类别在数据中没有设施（无数据，不计入覆盖率，绝不按 0% 计）：{cats}",
                     "{n} categories have no facility in the data (no data, left out of coverage, "
                     "never counted as 0%): {cats}"),
    "note.no_data_dims": ("；完全无数据的维度：{dims}", "; dimension(s) with no data at all: {dims}"),
    "note.surveyed_gaps": ("{n}个已普查的设施类别无可达设施（确实缺少，0%）：{cats}",
                           "{n} categories declared surveyed with no facility reachable (a real gap, 0%): {cats}"),
}


class Note(str):
    """A note to people: the English text (the string itself, so code that reads notes as
    strings is unchanged) that also carries its Chinese (``.zh``); :func:`note_text` picks."""

    zh: str | None

    def __new__(cls, en: str, zh: str | None = None):
        note = super().__new__(cls, en)
        note.zh = zh
        return note


def note_text(note, lang: str = "en") -> str:
    """``note`` in ``lang``: its Chinese (:class:`Note`) under zh when it has one."""
    zh = getattr(note, "zh", None)
    return zh if lang == "zh" and zh else str(note)


def attribution_text(text: str, lang: str = "en") -> str:
    """The attribution as people read it in ``lang``: "© OpenStreetMap contributors, data
    2021-06-12" → "© OpenStreetMap contributors，数据日期 2021-06-12" in Chinese (the OSM credit
    itself stays as the licence words it)."""
    return str(text).replace(", data ", "，数据日期 ") if lang == "zh" else str(text)


def check_lang(lang) -> str:
    """``lang`` if it is one of :data:`LANGS`; :class:`~lifecircle.errors.SettingsError` otherwise."""
    if lang not in LANGS:
        raise SettingsError(f"unknown language {lang!r}: use zh (中文) or en (English)",
                            zh=f"未知的语言 {lang!r}：请用 zh（中文）或 en（English）")
    return lang


def default_lang(lang: str | None = None) -> str:
    """``lang`` when given (checked), else the user's locale (``zh_*`` → zh), else ``en``.

    The locale is read as gettext reads it (Python's :func:`gettext.find`): the first of
    ``LANGUAGE`` (a list such as ``zh_CN:en``: its first language), ``LC_ALL``, ``LC_MESSAGES``
    and ``LANG`` that is set and not empty — a user who asks for Chinese messages with
    ``LANGUAGE`` gets them from lifecircle too."""
    if lang is not None:
        return check_lang(lang)
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "").split(":")[0]
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    try:
        code = locale.getlocale()[0] or ""
    except ValueError:
        code = ""
    return "zh" if code.lower().startswith("zh") else "en"


def label(key: str, lang: str = "en", **fmt) -> str:
    """The Chinese (``lang="zh"``) or English text of ``key`` (``section.key``), formatted with
    ``fmt``.

    >>> label("std.pass", "zh"), label("fig.tier", "en", t=15)
    ('达标', '15 min')
    """
    zh, en = LABELS[key]
    text = zh if check_lang(lang) == "zh" else en
    return text.format(**fmt) if fmt else text


def words(section: str, lang: str) -> dict[str, str]:
    """Every key of ``section`` (without the prefix) → its text in ``lang``."""
    i = 0 if check_lang(lang) == "zh" else 1
    prefix = section + "."
    return {k[len(prefix):]: v[i] for k, v in LABELS.items() if k.startswith(prefix)}


def status_label(status: str, lang: str = "en") -> str:
    """Human label of a data status (:data:`lifecircle.columns.DATA_STATUSES`): 无数据 /
    "no data" for ``no_data``.

    >>> status_label("no_data", "zh"), status_label("no_data", "en"), status_label("complete")
    ('无数据', 'no data', 'surveyed')
    """
    key = f"data.{status}"
    return label(key, lang) if key in LABELS else str(status)


def no_data_hint(lang: str = "en", batch: bool = False) -> str:
    """What to do about categories without data: printed wherever they are listed (``batch``:
    in the words of a batch config, which has no --facilities or --complete option)."""
    return label("data.hint_batch" if batch else "data.hint", lang)


def gap_kind(status: str, lang: str = "en") -> str:
    """How to read a category's low coverage: a real gap or missing data.

    >>> gap_kind("no_data"), gap_kind("data"), gap_kind("complete", "zh")
    ('no data (not counted)', 'access gap', '确实缺少（已普查）')
    """
    key = f"data.gap_{status}"
    return label(key if key in LABELS else "data.gap_data", lang)


def missing_reason(overall: dict, lang: str = "en") -> str:
    """Why the summary's overall row has no mean score (or no Gini): no facility of any
    category in the data, or no residents in the homes — said beside the "–" people see.

    >>> missing_reason({"dimensions_with_data": 0, "population": 2000.0}, "zh")
    '无数据：数据中没有任何类别的设施'
    >>> missing_reason({"dimensions_with_data": 3, "population": 0.0})
    'no data: no residents in the homes'
    """
    n, pop = overall.get(col.DIMENSIONS_WITH_DATA), overall.get("population")
    if n is not None and n == n and int(n) == 0:
        return label("why.no_facilities", lang)
    if pop is None or not pop > 0:
        return label("why.no_residents", lang)
    return label("why.no_data", lang)


def _share_base(overall: dict, lang: str, snap_m) -> tuple[str, str]:
    """What the headline's share is of, and who is left out of it: the shares are over the
    residents whose homes reach the walking network; with homes that do not (no street within
    ``snap_m`` metres: perhaps no access, perhaps a street missing from the data), their
    residents are named beside the share instead of vanishing from it."""
    u, tot, h = (overall.get(k) for k in ("unreachable_population", "population", "unreachable_homes"))
    if u is None or u != u or not u > 0 or tot is None or tot != tot:
        return ("" if lang == "zh" else "residents"), ""
    h = int(h) if h is not None and h == h else 0
    base = float(tot) - float(u)
    far = (f"距任何道路超过 {float(snap_m):g} 米" if lang == "zh" else f"farther than {float(snap_m):g} m from any street") \
        if snap_m is not None else ("附近没有步行道路" if lang == "zh" else "with no walkable street within reach")
    if lang == "zh":
        return (f"住宅连通步行网络的 {base:,.0f} 名居民的",
                f"另有 {h:,} 个住宅{far}，其 {float(u):,.0f} 名居民未计入")
    return (f"the {base:,.0f} residents whose homes reach the walking network",
            f"{float(u):,.0f} residents in {h:,} home(s) {far} left out")


def headline_text(overall: dict, lang: str = "en", snap_m=None) -> str:
    """"All N of N dimensions with data within 15 min: X % of residents (all six, categories
    without data counted as no access: Y %)" from the summary's overall row (its ``minutes``
    is the largest tier). Where homes do not reach the walking network (``unreachable_population``
    of the row; ``snap_m`` the distance that decided it), the share says it is of the residents
    whose homes do, and how many residents in how many homes are left out.

    >>> o = {"minutes": 15, "covered": 0.585, "covered_allcat": 0.0, "dimensions_with_data": 6,
    ...      "dimensions": 6, "population": 73330, "unreachable_population": 26920, "unreachable_homes": 1}
    >>> share, left = headline_text(o, "en", snap_m=300).split(" (", 1)
    >>> share[-67:]
    '58.5% of the 46,410 residents whose homes reach the walking network'
    >>> left.split(";")[0]
    '26,920 residents in 1 home(s) farther than 300 m from any street left out'
    """
    base, left = _share_base(overall, lang, snap_m)

    def pct(v):
        return "–" if v is None or v != v else f"{100 * float(v):.1f}%"

    t = overall.get("minutes", 15)
    t = f"{float(t):g}" if t is not None and t == t else "15"
    n = overall.get(col.DIMENSIONS_WITH_DATA)
    m = overall.get(col.DIMENSIONS_TOTAL)
    cov, allcat = overall.get(col.COVERED), overall.get(col.COVERED_ALL_CATEGORIES)
    if n is None or n != n:  # a summary from before data statuses
        if lang == "zh":
            return f"{t} 分钟内六个维度齐全的居民占{base} {pct(cov)}" + (f"（{left}）" if left else "")
        return f"all six dimensions within {t} min: {pct(cov)} of {base}" + (f" ({left})" if left else "")
    n, m = int(n), int(m)
    if lang == "zh":
        return (f"{t} 分钟内有数据的 {n} 个维度（共 {m} 个）全部覆盖的居民占{base} "
                f"{pct(cov)}（{left + '；' if left else ''}全部 {m} 个维度、无数据按不可达计：{pct(allcat)}）")
    return (f"all {n} of {n} dimensions with data within {t} min: {pct(cov)} of {base} "
            f"({left + '; ' if left else ''}all {m} dimensions, categories without data counted as no "
            f"access: {pct(allcat)})")
