"""``lifecircle links``: rank new walking links (破墙开门) by the residents they bring within
reach. A thin front end over :mod:`lifecircle.analyses.links`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from lifecircle import columns as col
from lifecircle.cli.common import FORCE_HELP, check_datum, console, literal, load_folder
from lifecircle.cli.common import fail as _fail
from lifecircle.errors import LifecircleError, LinkError
from lifecircle.i18n import attribution_text, note_text


def links(
    folder: Path = typer.Argument(..., help="An 'analyze' output folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (CSV, XLSX, GeoPackage, map)."),
    candidates: Optional[Path] = typer.Option(
        None, "--candidates", help="Candidate lines drawn by a planner: GeoJSON/GeoPackage/Shapefile, "
        "or CSV/XLSX with wkt or lng1,lat1,lng2,lat2; a 'name' column is carried through."),
    coords: str = typer.Option("wgs84", help="Coordinates of the candidate file: wgs84, gcj02 or bd09."),
    auto: bool = typer.Option(
        False, "--auto", help="Also propose links from the data: private ways in residential land use "
        "or behind locked gates, and missing links (≤150 m straight, ≥4× longer on foot today)."),
    close_gates: bool = typer.Option(
        False, "--close-gates", help="Model private or locked gates on public ways as closed to through "
        "walking (the analysis walks through them); each becomes a candidate to reopen and every gain is "
        "against that network."),
    k: int = typer.Option(5, "--k", help="Size of the greedy best set (accounts for overlap); 0: the ranking only."),
    snap: float = typer.Option(
        30.0, help="A link end farther than this (m) from any walkable street is reported, not scored."),
    lang: Optional[str] = typer.Option(None, help="Headers and map labels: zh or en (default: the analysis's)."),
    basemap: str = typer.Option("osm", help="Map basemap: osm, cartodb, blank, amap, tianditu."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Rank candidate walking links (gates, passages, footbridges) by the residents they
    newly bring within each category's threshold; exact, with a greedy best set of K."""
    from lifecircle.analyses.links import check_link_options, write_links
    from lifecircle.analyses.links import links as run_links
    from lifecircle.io.outputs import check_out_dir
    from lifecircle.render.maps import links_map, save_map

    if candidates is None and not auto and not close_gates:
        _fail(LinkError("no candidates: give --candidates FILE, --auto, --close-gates or several",
                        zh="没有候选连线：请给出 --candidates 文件、--auto、--close-gates 中的一个或几个"))
    try:
        check_datum("--coords", coords)
        check_link_options(k, snap)
        check_out_dir(out, force=force, inputs=[folder, candidates])     # before any work
        result = load_folder(folder)
        lang = lang or result.settings.lang
        lr = run_links(result, candidates=candidates, auto=auto, k=k, coords=coords, snap_m=snap,
                       close_gates=close_gates)

        def write_map(tmp: Path) -> None:
            save_map(links_map(lr, lang=lang, basemap=basemap), tmp / "links_map.html", offline=True)

        write_links(lr, out, lang=lang, extra=write_map, force=force, inputs=[folder, candidates])
    except LifecircleError as exc:
        _fail(exc)
    zh = lang == "zh"
    print_links(lr, lang)
    console.print(Text(attribution_text(result.attribution, lang), style="dim"))
    files = "links.csv, links_greedy.csv, links.xlsx, links.gpkg, links_map.html"
    console.print(literal(f"已写出 {out}：{files}" if zh else f"wrote {out}/{files}"))


#: ranked links the console table shows (every greedy pick besides)
TOP = 10


def print_links(lr, lang: str) -> None:
    """The console's view of a links run: a table of the :data:`TOP` best-ranked links and every
    link of the greedy best set ranked below them (after a ``…`` row), so each rank the greedy
    line names is in the table; where ranked links are left out, a line says that links.csv /
    links.xlsx hold them all; the notes."""
    from lifecircle.analyses.links import localized

    zh = lang == "zh"
    t = Table(title="新增步行连接排名" if zh else "Candidate links, best first")
    heads = (["排名", "名称", "理由", "长度(米)", "新增可达居民", "得分变化"] if zh else
             ["rank", "name", "reason", "length m", "residents", "score Δ"])
    for i, h in enumerate(heads):      # text wraps, numbers are never cut
        if i in (1, 2):
            t.add_column(h, justify="left", overflow="fold")
        else:
            t.add_column(h, justify="right", no_wrap=True, min_width=len(h))
    ranked = lr.table[lr.table["rank"].notna()].sort_values("rank", kind="stable")
    picked = set(lr.chosen["rank"].astype(int)) if len(lr.chosen) else set()
    top = ranked.head(TOP)
    below = ranked.iloc[TOP:]
    below = below[below["rank"].astype(int).isin(picked)]    # greedy picks ranked below the top
    status = getattr(lr.result, "data_status", None) or {}
    unknown = bool(status) and all(v == col.STATUS_NO_DATA for v in status.values())  # no facility at all
    for part, rows in (("top", top), ("below", below)):
        if part == "below" and len(rows):
            t.add_row("…", "", "", "", "", "")
        for _, row in localized(rows, lang).iterrows():
            t.add_row(str(int(row["rank"])), literal(row["name"]), literal(row["reason"]),
                      f"{row['link_m']:.0f}", "–" if unknown else f"{row['residents']:,.0f}",
                      "–" if unknown else f"{row['score_delta']:+.3f}")
    console.print(t)
    if len(ranked) > len(top) + len(below):
        console.print(Text(f"表中为前 {len(top)} 名{'及贪心最优组合' if len(below) else ''}；全部 {len(ranked)} 条排名见 "
                           "links.csv、links.xlsx" if zh else
                           f"the table shows the best {len(top)}{' and the greedy best set' if len(below) else ''}; "
                           f"all {len(ranked)} ranked links: links.csv, links.xlsx", style="dim"))
    if len(lr.chosen):
        picks = ", ".join(f"#{int(r)}" for r in lr.chosen["rank"])
        total = lr.chosen["cumulative_residents"].iloc[-1]
        console.print(Text(f"贪心最优 {len(lr.chosen)} 条：{picks}，共新增可达居民 {total:,.0f}" if zh else
                           f"greedy best {len(lr.chosen)}: {picks}; {total:,.0f} residents newly within reach"))
    for note in lr.notes:
        console.print(literal(("注：" if zh else "note: ") + note_text(note, lang)))
