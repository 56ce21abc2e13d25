"""Open the walls (破墙开门): rank new walking links by the residents they bring within reach.

A *candidate link* is a new two-way walking connection between two points of the network: a
gate to open, a passage through a compound, a footbridge. Its two ends are snapped to the
nearest walkable edge (within ``snap_m``); an end in the middle of an edge splits that edge
at its exact offset. The link is as long as the drawn line plus the two straight legs from
its ends to the streets.

Scoring is exact (:class:`lifecircle.engine.LinkScorer`): for every candidate, the residents
newly within each category's threshold (and each 5/10/15-minute tier), each dimension newly
covered, residents newly with all six dimensions within 15 minutes, the minutes saved and the
change of the mean life-circle score — the same numbers as a full re-analysis with the link
added to the network, homes and facilities keeping their attachments. :func:`greedy` picks
a best set of ``k`` links that accounts for their overlap: after each pick the link is added
to the network and every other candidate is scored again.

Candidates come from a file the planner draws (:func:`read_candidates`) or from the data
(:func:`auto_candidates`): private ways inside residential land use and private/locked gates
(``--auto`` opens them to through walking), and *missing links*: two walkable points at most
``max_straight_m`` (150 m) apart whose walk today is at least ``min_ratio`` (4×) longer, the
straight line crossing no water, railway, motorway, building or street.

What the model does today with walls and gates (see the README): the walking network is the
public walkable ways; ``access=private|no`` ways are left out, ``barrier=*`` nodes and
``barrier=wall|fence`` lines are not modelled, and a home attaches by a straight leg (up to
``settings.max_snap_m``) to the nearest public street, through any compound wall. A gated
compound is therefore already "open" for its own residents' way out; the links this module
ranks are the ones that shorten walks *between* streets (and the private ways it proposes are
exactly those the public network leaves out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle import columns as col
from lifecircle.core.engine import (
    AccessEngine,
    FacilitySeeds,
    LinkScorer,
    LinkScores,
    facility_seeds_forward,
    search_each,
)
from lifecircle.core.network import cut_edges, split_and_link
from lifecircle.core.snapping import Snap, snap_points
from lifecircle.errors import InputFileError, LinkError, OptionError, OutputError, TableError
from lifecircle.i18n import Note, attribution_text, note_text
from lifecircle.io.chinacoords import datum_zh, normalize_crs, to_wgs84, transform_geometries
from lifecircle.io.osmread import osm_file
from lifecircle.io.outputs import atomic_dir
from lifecircle.io.poitable import _read_frame
from lifecircle.io.sources import WALK_HIGHWAYS, WGS84, walkable_mask, write_about_layer
from lifecircle.result import load_result
from lifecircle.untrusted import csv_safe, readable_path, xlsx_frame, xlsx_safe

#: Link ends farther than this from any walkable edge are reported, not scored (metres).
SNAP_M = 30.0
#: ``snap_m`` may be at most this (metres), as ``settings.max_snap_m``.
MAX_SNAP_M = 5000.0
#: Missing links: at most this straight distance (metres) ...
MAX_STRAIGHT_M = 150.0
#: ... and a walk today at least this many times longer (and ``MIN_SAVED_M`` longer).
MIN_RATIO = 4.0
MIN_SAVED_M = 200.0
#: Most missing links kept (best detour saved first) before scoring.
MAX_MISSING = 400

STATUS_OK = "ok"
#: a candidate whose coordinates are not finite or not longitude/latitude
STATUS_BAD_COORDS = "bad_coordinates"
RANK_KEYS = ("residents", "resident_categories", "score_delta", "minutes_saved")


# --------------------------------------------------------------------------------------------
# candidates


def _empty_candidates(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [], "reason": [], "reason_zh": [], "source": []},
                            geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def read_candidates(path, crs_out, coords: str = "wgs84") -> gpd.GeoDataFrame:
    """Candidate lines drawn by a planner: GeoJSON / GeoPackage / Shapefile of lines, or a
    CSV/XLSX with a ``wkt`` column (or ``lng1, lat1, lng2, lat2``). A ``name`` column (or
    名称) is carried through; ``coords`` (wgs84/gcj02/bd09) is the datum of the coordinates
    (vector files are first reprojected to WGS-84, then converted from it). Rows without a
    usable line keep their place with an empty geometry: :func:`prepare` reports them."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found", zh="找不到文件")
    try:
        datum = normalize_crs(coords)
    except ValueError as exc:
        raise TableError(path, str(exc),
                         zh=datum_zh(coords)) from None
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json", ".gpkg", ".shp", ".fgb"):
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:
            raise InputFileError(path, f"cannot read as a vector file ({type(exc).__name__}: {exc})",
                                 zh=f"无法作为矢量文件读取（{type(exc).__name__}: {exc}）") from None
        if gdf.crs is None:
            gdf = gdf.set_crs(WGS84)
        gdf = gdf.to_crs(WGS84)
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        geom = np.asarray(gdf.geometry.to_numpy(), dtype=object)
    elif suffix in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):
        frame = _read_frame(path)
        cols = {str(c).strip().lower(): c for c in frame.columns}
        geom = np.full(len(frame), None, dtype=object)
        if "wkt" in cols:
            for i, text in enumerate(frame[cols["wkt"]].tolist()):
                try:
                    geom[i] = shapely.from_wkt(str(text))
                except Exception:
                    geom[i] = None
        elif all(k in cols for k in ("lng1", "lat1", "lng2", "lat2")):
            xy = frame[[cols[k] for k in ("lng1", "lat1", "lng2", "lat2")]].apply(
                pd.to_numeric, errors="coerce").to_numpy(float)
            for i, (x1, y1, x2, y2) in enumerate(xy):
                if np.isfinite([x1, y1, x2, y2]).all():
                    geom[i] = shapely.linestrings([[x1, y1], [x2, y2]])
        else:
            raise TableError(path, "no line geometry: expected a 'wkt' column or lng1, lat1, lng2, "
                             f"lat2; columns found: {', '.join(map(str, frame.columns))}",
                             zh="没有线几何：应有 'wkt' 列或 lng1、lat1、lng2、lat2 列；文件中的列："
                                f"{', '.join(map(str, frame.columns))}")
    else:
        raise InputFileError(path, f"unknown candidate file kind '{suffix}': use .geojson, .gpkg, "
                             ".shp, .csv or .xlsx",
                             zh=f"未知的候选连线文件类型 '{suffix}'：请用 .geojson、.gpkg、.shp、.csv 或 .xlsx")
    if len(frame) == 0:
        raise TableError(path, "holds no candidate lines", zh="不含候选连线")
    first_row = 2 if suffix in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm") else 1   # after a header
    bad = np.array([_off_the_globe(g) for g in geom], dtype=bool)
    if bad.all():
        raise TableError(path, f"no row has longitude/latitude coordinates (row {first_row}: "
                         f"{_coords_text(geom[0])}); give lines in degrees, or a vector file with its CRS",
                         zh=f"没有一行是经纬度坐标（第 {first_row} 行：{_coords_text(geom[0])}）；"
                            "请给出以度为单位的线，或带坐标系的矢量文件")
    geom[bad] = None
    name_col = next((c for c in frame.columns if str(c).strip().lower() in ("name", "名称", "name_zh")), None)
    names = [str(v) if v is not None and v == v else f"link {i + 1}"
             for i, v in enumerate(frame[name_col].tolist() if name_col is not None else [None] * len(frame))]
    if datum != "wgs84":
        ok = np.array([g is not None and not shapely.is_empty(g) for g in geom])
        if ok.any():
            conv = transform_geometries(gpd.GeoSeries(geom[ok], crs=WGS84),
                                        lambda x, y: to_wgs84(x, y, datum))
            geom[ok] = conv.to_numpy()
    gdf = gpd.GeoDataFrame({"name": names, "reason": "drawn by the planner", "reason_zh": "规划绘制",
                            "source": "file", "row": np.arange(len(frame)) + first_row,
                            "status": np.where(bad, STATUS_BAD_COORDS, None)},
                           geometry=gpd.GeoSeries(geom, crs=WGS84), crs=WGS84)
    return gdf.to_crs(crs_out)


def _off_the_globe(g) -> bool:
    """Whether line ``g`` (longitude/latitude) has a coordinate that is not finite or not on
    the globe (|lon| > 180, |lat| > 90): no projection can place it."""
    if g is None or shapely.is_empty(g):
        return False
    xy = shapely.get_coordinates(g)
    return not (np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all())


def _coords_text(g) -> str:
    """A line's first coordinates, short, for a message."""
    if g is None or shapely.is_empty(g):
        return "no line"
    xy = shapely.get_coordinates(g)[:2]
    return ", ".join(f"{x:g} {y:g}" for x, y in xy)


def check_link_options(k, snap_m) -> None:
    """Refuse a ``k`` (greedy set size) that is not a whole number ≥ 0 and a ``snap_m`` that is
    not a number above 0 and at most :data:`MAX_SNAP_M`, naming the option."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise OptionError("--k", f"{k!r}: the size of the greedy best set must be a whole number of at least 0",
                          zh=f"{k!r}：贪心最优组合的条数须为不小于 0 的整数")
    ok = isinstance(snap_m, (int, float, np.number)) and not isinstance(snap_m, bool) and \
        np.isfinite(snap_m) and 0 < snap_m <= MAX_SNAP_M
    if not ok:
        raise OptionError("--snap", f"{snap_m!r}: must be a distance above 0 and at most {MAX_SNAP_M:g} m",
                          zh=f"{snap_m!r}：须为大于 0、不超过 {MAX_SNAP_M:g} 米的距离")


@dataclass
class Prepared:
    """Candidates on the network: per row a ``status`` (ok, or why it is not scored)."""

    table: gpd.GeoDataFrame        # the candidates with status, message, link_m, ends
    ok: np.ndarray                 # row indices that are scored
    end_edge: np.ndarray           # 2 per ok row
    end_off: np.ndarray
    link_m: np.ndarray


def prepare(net, cands: gpd.GeoDataFrame, snap_m: float = SNAP_M) -> Prepared:
    """Snap each candidate's two ends; report rows that cannot be scored: no line
    (``no_geometry``), an end farther than ``snap_m`` from any walkable street
    (``no_street``), zero length (``zero_length``), or a line running along an existing edge
    (within 3 m) between points the network already joins as short (``duplicates_edge``).
    Nothing is dropped silently: every row stays, with its status."""
    n = len(cands)
    geom = np.asarray(cands.geometry.to_numpy(), dtype=object)
    status = np.full(n, STATUS_OK, dtype=object)
    message = np.full(n, "", dtype=object)
    lines = np.full(n, None, dtype=object)
    preset = cands["status"].to_numpy(object) if "status" in cands else np.full(n, None, dtype=object)
    for i, g in enumerate(geom):
        if preset[i] == STATUS_BAD_COORDS or (g is not None and not np.isfinite(shapely.get_coordinates(g)).all()):
            status[i], message[i] = STATUS_BAD_COORDS, "coordinates not finite or not longitude/latitude"
            continue
        if g is None or shapely.is_empty(g):
            status[i], message[i] = "no_geometry", "no line geometry"
            continue
        if g.geom_type == "MultiLineString":
            merged = shapely.line_merge(g)
            g = merged if merged.geom_type == "LineString" else None
        if g is None or g.geom_type != "LineString":
            status[i], message[i] = "no_geometry", f"not a single line ({geom[i].geom_type})"
            continue
        lines[i] = g
    good = np.flatnonzero(status == STATUS_OK)
    starts = np.array([shapely.get_point(lines[i], 0) for i in good], dtype=object)
    ends = np.array([shapely.get_point(lines[i], -1) for i in good], dtype=object)
    sa = snap_points(net, starts, snap_m, tie_m=0)
    sb = snap_points(net, ends, snap_m, tie_m=0)
    e_a, e_b = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    o_a, o_b = np.zeros(n), np.zeros(n)
    leg_a, leg_b = np.full(n, np.nan), np.full(n, np.nan)
    e_a[good], e_b[good], o_a[good], o_b[good] = sa.edge, sb.edge, sa.offset, sb.offset
    leg_a[good], leg_b[good] = sa.leg, sb.leg
    length = np.array([shapely.length(g) if g is not None else np.nan for g in lines])
    link_m = length + np.nan_to_num(leg_a) + np.nan_to_num(leg_b)
    for i in good:
        far = [w for w, e in (("start", e_a[i]), ("end", e_b[i])) if e < 0]
        if far:
            status[i] = "no_street"
            message[i] = f"{' and '.join(far)} farther than {snap_m:g} m from any walkable street"
        elif length[i] < 0.5 or (e_a[i] == e_b[i] and abs(o_a[i] - o_b[i]) < 0.5):
            status[i], message[i] = "zero_length", "zero length (both ends at the same point)"
    # a line running along one existing edge adds nothing new
    chk = np.flatnonzero(status == STATUS_OK)
    if len(chk):
        li, ei = net.tree.query(lines[chk], predicate="dwithin", distance=3.0)
        if len(li):
            cover = shapely.covers(shapely.buffer(net.edge_geom[ei], 3.0), lines[chk][li])
            for j in np.unique(li[cover]):
                i = chk[j]
                # along an edge, and the network already walks between the ends as short
                # (a line along an edge whose ends are not joined to it is a real gap)
                d = _walk_between(net, e_a[i], o_a[i], e_b[i], o_b[i], 2.0 * link_m[i] + 100.0)
                if d <= 1.05 * link_m[i] + 1.0:
                    status[i], message[i] = "duplicates_edge", "runs along an existing walkable edge"
    table = cands.copy()
    table["status"] = status
    table["message"] = message
    table["link_m"] = np.where(status == STATUS_OK, link_m, np.nan)
    ok = np.flatnonzero(status == STATUS_OK)
    ee, oo = np.empty(2 * len(ok), np.int64), np.empty(2 * len(ok))
    ee[0::2], ee[1::2] = e_a[ok], e_b[ok]
    oo[0::2], oo[1::2] = o_a[ok], o_b[ok]
    return Prepared(table, ok, ee, oo, link_m[ok])


def _walk_between(net, ea, sa, eb, sb, limit_m: float) -> float:
    """Metres walked from (ea, sa) to (eb, sb) on the network (inf beyond ``limit_m``)."""
    speed = net.speed_mps
    seeds = facility_seeds_forward(net, Snap(np.array([ea]), np.array([sa]), np.zeros(1),
                                             np.zeros(1, bool)))
    ptr, node, cost = search_each(net.forward, seeds, limit_m / speed, 1024)
    reached = dict(zip(node.tolist(), (cost * speed).tolist()))
    best = np.inf
    best = min(best, reached.get(int(net.edge_u[eb]), np.inf) + sb)
    if not net.edge_oneway[eb]:
        best = min(best, reached.get(int(net.edge_v[eb]), np.inf) + net.edge_len[eb] - sb)
    if ea == eb and (sb >= sa or not net.edge_oneway[ea]):
        best = min(best, abs(sb - sa))
    return float(best)


# --------------------------------------------------------------------------------------------
# scoring


def scorer_for(result, network=None, home_snap=None, fac_snap=None) -> LinkScorer:
    """A :class:`LinkScorer` for an analysis result (optionally on a changed network with
    the snaps moved onto it)."""
    prof = result.profile
    net = network if network is not None else result.network
    hs = home_snap if home_snap is not None else result.home_snap
    fs = fac_snap if fac_snap is not None else result.facility_snap
    if network is None:
        engine = result.engine
    else:
        engine = AccessEngine(net, hs, result.homes[col.POPULATION].to_numpy(float), result.settings)
    cats = prof.categories
    cat_of = result.facilities[col.CATEGORY].to_numpy()
    snaps = [fs.take(np.flatnonzero(cat_of == c.id)) for c in cats]
    dims = [d for d in prof.dimensions]
    dim_index = {d.id: i for i, d in enumerate(dims)}
    return LinkScorer(engine, snaps, [c.minutes for c in cats],
                      [dim_index[prof.dimension_of(c.id)] for c in cats],
                      [c.weight for c in cats], [d.weight for d in dims],
                      result.settings.dimension_cover_share, result.settings.thresholds_min)


def _rank_order(s: LinkScores) -> np.ndarray:
    rc = s.gain[:, :, 0].sum(1)
    return np.lexsort((-s.saved.sum(1), -s.score_delta, -rc, -s.residents))


def _scores_frame(s: LinkScores, result) -> pd.DataFrame:
    prof = result.profile
    cats = prof.categories
    dims = list(prof.dimensions)
    d = {"residents": s.residents, "homes": s.homes,
         "resident_categories": s.gain[:, :, 0].sum(1),
         col.all_six(max(s.tiers)): s.all6, "score_delta": s.score_delta,
         "minutes_saved": s.saved.sum(1)}
    for j, dim in enumerate(dims):
        d[f"dim_{dim.id}"] = s.dim_gain[:, j, 0]
    for j, dim in enumerate(dims):
        for q, t in enumerate(s.tiers):
            d[f"dim_{dim.id}_{t}"] = s.dim_gain[:, j, q + 1]
    for i, c in enumerate(cats):
        d[f"cat_{c.id}"] = s.gain[:, i, 0]
    for i, c in enumerate(cats):
        for q, t in enumerate(s.tiers):
            d[f"cat_{c.id}_{t}"] = s.gain[:, i, q + 1]
    for i, c in enumerate(cats):
        d[f"saved_{c.id}"] = s.saved[:, i]
    return pd.DataFrame(d)


@dataclass
class LinksResult:
    """Ranked candidates (``table``, one row per candidate, best first; rows that could not
    be scored at the end with their status), the greedy set (``chosen``: ranks in the order
    picked, with the gains each adds given the links picked before), the homes each of the
    ``top`` candidates brings a category within reach of (``gained``: rank -> home indices),
    and timings."""

    table: gpd.GeoDataFrame
    chosen: pd.DataFrame
    gained: dict
    result: object
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    layers: LinkLayers | None = None     # what --auto read: gates, private ways, walls, blockers


def score_candidates(result, cands: gpd.GeoDataFrame, k: int = 5, snap_m: float = SNAP_M,
                     top: int = 50, base: Base | None = None) -> LinksResult:
    """Score every candidate exactly, rank them and pick a greedy best set of ``k``.

    Ranking: residents with at least one category newly within its threshold, then
    resident-categories gained, score change, minutes saved. ``top``: how many of the best
    get their newly served homes listed (for the map and the GeoPackage). ``base``: score
    against a changed network (see :func:`closed_gates`) instead of the analysis's; its
    own candidates (``base.candidates``, e.g. the gates to reopen) are scored too.
    """
    timings = {}
    t0 = time.perf_counter()
    prep = prepare(result.network, cands, snap_m)
    if base is not None:
        prep = base.place(prep)
    timings["prepare"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = scorer_for(result, *((base.net, base.home_snap, base.fac_snap) if base else ()))
    timings["base"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = scorer.score(prep.end_edge, prep.end_off, prep.link_m)
    timings["score"] = time.perf_counter() - t0
    frame = _scores_frame(s, result)
    order = _rank_order(s)
    full = pd.DataFrame(np.nan, index=prep.table.index, columns=frame.columns)
    full.iloc[prep.ok] = frame.to_numpy()
    rank = np.full(len(prep.table), np.nan)
    rank[prep.ok[order]] = np.arange(1, len(order) + 1)
    table = pd.concat([prep.table.drop(columns="geometry"), full,
                       pd.DataFrame({"rank": rank}, index=prep.table.index)], axis=1)
    # best first; unscored rows after, in file order
    key = np.where(np.isfinite(rank), rank, len(rank) + np.arange(len(rank)))
    o = np.argsort(key, kind="stable")
    table = gpd.GeoDataFrame(table.iloc[o].reset_index(drop=True),
                             geometry=prep.table.geometry.iloc[o].to_numpy(), crs=prep.table.crs)
    table.insert(0, "candidate", o + 1)          # its position among the inputs
    # homes newly served by the top candidates
    t0 = time.perf_counter()
    sel = order[:top]
    gained = {}
    if len(sel):
        ee = prep.end_edge.reshape(-1, 2)[sel].reshape(-1)
        oo = prep.end_off.reshape(-1, 2)[sel].reshape(-1)
        _, rec = scorer.score(ee, oo, prep.link_m[sel], record=True)
        for r in range(len(sel)):
            gained[r + 1] = np.flatnonzero(rec[r])
    timings["homes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chosen = greedy(result, prep, k, first=(s, scorer), base=base)
    timings["greedy"] = time.perf_counter() - t0
    rank_of = dict(zip(prep.ok[order].tolist(), range(1, len(order) + 1)))
    if len(chosen):
        chosen.insert(1, "rank", [rank_of[i] for i in chosen["row_index"]])
        chosen.insert(2, "name", [prep.table["name"].iloc[i] for i in chosen["row_index"]])
        chosen = chosen.drop(columns="row_index")
    notes = []
    bad = prep.table["status"] != STATUS_OK
    if bad.any():
        counts = prep.table.loc[bad, "status"].value_counts()
        notes.append(Note(f"{int(bad.sum())} candidate(s) not scored: "
                          + ", ".join(f"{v} {k}" for k, v in counts.items()),
                          zh=f"{int(bad.sum())} 条候选连线未评分："
                          + "，".join(f"{_STATUS_ZH.get(k) or k} {v} 条" for k, v in counts.items())))
    return LinksResult(table, chosen, gained, result, timings, notes)


def greedy(result, prep: Prepared, k: int, first=None, base: Base | None = None) -> pd.DataFrame:
    """Pick ``k`` links one at a time: each time the one with the best gains (the ranking
    keys) given the links already picked, which are added to the network (ends split their
    edges exactly) before every remaining candidate is scored again. Stops early when no
    candidate brings anyone within reach."""
    rows = []
    if k <= 0 or len(prep.ok) == 0:
        return pd.DataFrame(rows)
    net = result.network if base is None else base.net
    hs, fs = (result.home_snap, result.facility_snap) if base is None else (base.home_snap, base.fac_snap)
    ee, oo, lm = prep.end_edge.copy(), prep.end_off.copy(), prep.link_m.copy()
    geoms = [prep.table.geometry.iloc[i] for i in prep.ok]
    alive = np.ones(len(prep.ok), bool)
    s, scorer = first if first is not None else (None, None)
    total = {"residents": 0.0, "resident_categories": 0.0, "score_delta": 0.0}
    for step in range(k):
        if s is None:
            scorer = scorer_for(result, net, hs, fs)
            s = scorer.score(ee, oo, lm)
        order = [j for j in _rank_order(s) if alive[j]]
        if not order:
            break
        j = order[0]
        if s.residents[j] <= 0 and s.score_delta[j] <= 0:
            break
        rc = float(s.gain[j, :, 0].sum())
        total["residents"] += float(s.residents[j])
        total["resident_categories"] += rc
        total["score_delta"] += float(s.score_delta[j])
        rows.append({"step": step + 1, "row_index": int(prep.ok[j]),
                     "residents": float(s.residents[j]), "resident_categories": rc,
                     "score_delta": float(s.score_delta[j]),
                     "minutes_saved": float(s.saved[j].sum()),
                     "cumulative_residents": total["residents"],
                     "cumulative_score_delta": total["score_delta"]})
        alive[j] = False
        # add the link; move every position onto the new network
        net2, remap = split_and_link(net, ee[2 * j:2 * j + 2], oo[2 * j:2 * j + 2], lm[j:j + 1],
                                     [geoms[j]])
        hs = hs.moved(remap, "left")
        fs = fs.moved(remap, "right")
        ee, oo = remap(ee, oo, "left")
        net = net2
        s = None
    return pd.DataFrame(rows)


@dataclass
class Base:
    """A changed network to score against (e.g. gates closed), the snaps moved onto it, how
    positions of the analysis's network move onto it, and its own candidates (rows of a
    candidate table with their ends already placed on it)."""

    net: object
    home_snap: Snap
    fac_snap: Snap
    remap: object
    candidates: gpd.GeoDataFrame
    end_edge: np.ndarray
    end_off: np.ndarray
    link_m: np.ndarray
    notes: list = field(default_factory=list)

    def place(self, prep: Prepared) -> Prepared:
        """``prep`` (snapped on the analysis's network) moved onto this one, with this
        base's own candidates appended."""
        ee, oo = self.remap(prep.end_edge, prep.end_off, "left")
        n0 = len(prep.table)
        extra = self.candidates.assign(status=STATUS_OK, message="", link_m=self.link_m)
        table = gpd.GeoDataFrame(pd.concat([prep.table, extra.to_crs(prep.table.crs)], ignore_index=True),
                                 geometry="geometry", crs=prep.table.crs)
        return Prepared(table, np.r_[prep.ok, n0 + np.arange(len(extra))].astype(np.int64),
                        np.r_[ee, self.end_edge].astype(np.int64), np.r_[oo, self.end_off],
                        np.r_[prep.link_m, self.link_m])


def closed_gates(result, layers: LinkLayers, gate_m: float = 1.0) -> Base:
    """The analysis's network with every private or locked gate that sits on a public walkable
    way (within ``gate_m``) closed to through walking: the way is cut at the gate, homes and
    facilities keep their places (a home on one side stays on that side). Each closed gate is
    a candidate to reopen (a link of length 0 across the cut), named by its OSM id."""
    net = result.network
    private_nodes = {n for nodes in layers.private_ways["nodes"] for n in nodes}
    gates = layers.gates[~layers.gates["osm_id"].isin(private_nodes)].to_crs(result.crs)
    snap = snap_points(net, gates.geometry.to_numpy(), gate_m, tie_m=0)
    inside = (snap.edge >= 0) & (snap.offset > 0) & (snap.offset < net.edge_len[np.maximum(snap.edge, 0)])
    notes = []
    at_node = int(((snap.edge >= 0) & ~inside).sum())
    if at_node:
        notes.append(Note(f"{at_node} gate(s) at a street junction were left open (closing one would "
                          "close every street through it)",
                          zh=f"{at_node} 处位于路口的大门保持开放（关闭它会截断经过它的所有道路）"))
    # one cut per position (two gates mapped on the same point close it once)
    keys = sorted({(int(e), float(o)) for e, o in zip(snap.edge[inside], snap.offset[inside])})
    first = {}
    for i in np.flatnonzero(inside):
        first.setdefault((int(snap.edge[i]), float(snap.offset[i])), i)
    rows = [first[kk] for kk in keys]
    e = np.array([kk[0] for kk in keys], dtype=np.int64)
    o = np.array([kk[1] for kk in keys])
    net2, remap, sides = cut_edges(net, e, o)
    hs, fs = result.home_snap, result.facility_snap
    hs2 = hs.moved(remap, "left")
    fs2 = fs.moved(remap, "right")
    g = gates.iloc[rows]
    pts = g.geometry.to_numpy()
    cands = gpd.GeoDataFrame(
        {"name": [f"gate {i}" for i in g["osm_id"]],
         "reason": [f"reopen the {a} gate (closed to through walking in this model)" for a in g["access"]],
         "reason_zh": ["重新开放该门（本模型中对穿行关闭）"] * len(g), "source": "auto:gate"},
        geometry=[shapely.LineString([p, p]) for p in pts], crs=result.crs)
    ee = np.array([[a, c] for a, _, c, _ in sides], dtype=np.int64).reshape(-1)
    oo = np.array([[b, d] for _, b, _, d in sides]).reshape(-1)
    return Base(net2, hs2, fs2, remap, cands, ee, oo, np.zeros(len(rows)), notes)


# --------------------------------------------------------------------------------------------
# automatic candidates


@dataclass
class LinkLayers:
    """What the OSM file says about walls, gates and private ways (WGS-84)."""

    gates: gpd.GeoDataFrame       # barrier=gate nodes that are private/no/locked
    private_ways: gpd.GeoDataFrame  # walkable highways closed by access (with node ids)
    residential: gpd.GeoDataFrame   # landuse=residential areas
    walls: gpd.GeoDataFrame         # barrier=wall|fence lines
    blockers: gpd.GeoDataFrame      # water, railways, motorways (kind column)
    buildings: gpd.GeoDataFrame


_CLOSED = {"private", "no"}
_RAIL = {"rail", "light_rail", "subway", "narrow_gauge", "monorail", "tram"}
_MOTOR = {"motorway", "motorway_link", "trunk", "trunk_link"}
_WATERWAY = {"river", "canal", "stream", "drain"}


def read_link_layers(path) -> LinkLayers:
    """Gates, private ways, residential areas, walls, blockers and buildings from an OSM file
    (PBF or XML) with pyosmium, in one pass."""
    import osmium

    wkb = osmium.geom.WKBFactory()

    class H(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.gates, self.priv, self.walls, self.block, self.res, self.bld = [], [], [], [], [], []

        def node(self, n):
            t = n.tags
            if t.get("barrier") == "gate" and (t.get("access") in _CLOSED or t.get("locked") == "yes"
                                              or t.get("foot") in _CLOSED):
                self.gates.append((n.id, t.get("access") or t.get("foot") or "locked",
                                   n.location.lon, n.location.lat))

        def way(self, w):
            t = w.tags
            hw = t.get("highway")
            try:
                if hw in WALK_HIGHWAYS or hw in ("cycleway", "busway", "bridleway"):
                    tags = {k.k: k.v for k in t}
                    if t.get("area") != "yes" and not walkable_mask([hw], [tags])[0] \
                            and t.get("foot") not in _CLOSED and t.get("access") != "military":
                        self.priv.append((w.id, hw, t.get("access") or t.get("service") or "",
                                          [nd.ref for nd in w.nodes], wkb.create_linestring(w)))
                elif hw in _MOTOR and t.get("tunnel") not in ("yes",) and t.get("bridge") not in ("yes",):
                    self.block.append(("motorway", wkb.create_linestring(w)))
                if t.get("railway") in _RAIL and t.get("tunnel") != "yes" and t.get("bridge") != "yes":
                    self.block.append(("railway", wkb.create_linestring(w)))
                if t.get("waterway") in _WATERWAY and t.get("tunnel") not in ("yes", "culvert"):
                    self.block.append(("water", wkb.create_linestring(w)))
                if t.get("barrier") in ("wall", "fence"):
                    self.walls.append((t.get("barrier"), wkb.create_linestring(w)))
            except Exception:   # ways with missing node locations (clipped extracts)
                pass

        def area(self, a):
            t = a.tags
            try:
                if t.get("landuse") == "residential":
                    self.res.append(wkb.create_multipolygon(a))
                if t.get("natural") == "water" or t.get("waterway") == "riverbank":
                    self.block.append(("water", wkb.create_multipolygon(a)))
                if t.get("building") and t.get("building") != "no":
                    self.bld.append(wkb.create_multipolygon(a))
            except Exception:
                pass

    h = H()
    try:
        h.apply_file(osm_file(path), locations=True)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(path, f"cannot read walls, gates and private ways ({type(exc).__name__}: {exc})",
                             zh=f"无法读取围墙、大门和私有道路（{type(exc).__name__}: {exc}）") from None

    def gdf(data, geom):
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(shapely.from_wkb(geom) if len(geom) else [],
                                                             crs=WGS84), crs=WGS84)

    gates = gpd.GeoDataFrame({"osm_id": [g[0] for g in h.gates], "access": [g[1] for g in h.gates]},
                             geometry=gpd.points_from_xy([g[2] for g in h.gates], [g[3] for g in h.gates]),
                             crs=WGS84)
    priv = gdf({"osm_id": [p[0] for p in h.priv], "highway": [p[1] for p in h.priv],
                "access": [p[2] for p in h.priv], "nodes": [p[3] for p in h.priv]},
               [p[4] for p in h.priv])
    return LinkLayers(gates, priv, gdf({}, h.res), gdf({"kind": [w[0] for w in h.walls]}, [w[1] for w in h.walls]),
                      gdf({"kind": [b[0] for b in h.block]}, [b[1] for b in h.block]), gdf({}, h.bld))


def _layers_from_features(features: gpd.GeoDataFrame) -> LinkLayers:
    """What an analysis folder's stored OSM features give (residential land, water, buildings)
    when the OSM file is gone; gates, private ways, railways and motorways are not stored."""
    tags = features["tags"].tolist()
    geom = features.geometry.to_numpy()
    kinds = shapely.get_type_id(geom)
    area = np.isin(kinds, (3, 6))

    def pick(test):
        m = np.array([area[i] and test(t) for i, t in enumerate(tags)], dtype=bool)
        return geom[m]

    res = pick(lambda t: t.get("landuse") == "residential")
    water = pick(lambda t: t.get("natural") == "water" or t.get("waterway") == "riverbank")
    bld = pick(lambda t: bool(t.get("building")) and t.get("building") != "no")
    empty_pts = gpd.GeoDataFrame({"osm_id": [], "access": []}, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    empty_ways = gpd.GeoDataFrame({"osm_id": [], "highway": [], "access": [], "nodes": []},
                                  geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    return LinkLayers(empty_pts, empty_ways, gpd.GeoDataFrame(geometry=gpd.GeoSeries(res, crs=WGS84)),
                      gpd.GeoDataFrame({"kind": []}, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84),
                      gpd.GeoDataFrame({"kind": ["water"] * len(water)}, geometry=gpd.GeoSeries(water, crs=WGS84)),
                      gpd.GeoDataFrame(geometry=gpd.GeoSeries(bld, crs=WGS84)))


def _private_candidates(net, layers: LinkLayers, crs, touch_m: float = 2.0) -> gpd.GeoDataFrame:
    """Connected private ways inside residential land use (or with a private/locked gate):
    one candidate per pair of the points where they meet the public network, as long as the
    private walk between them."""
    import networkx as nx

    pw = layers.private_ways.to_crs(crs)
    if len(pw) == 0:
        return _empty_candidates(crs)
    res = layers.residential.to_crs(crs)
    res_u = shapely.union_all(res.geometry.to_numpy()) if len(res) else None
    gates = layers.gates.to_crs(crs)
    gate_nodes = set(gates["osm_id"].tolist())
    g = nx.Graph()
    coords = {}
    way_gate = {}
    for geom, nodes, wid in zip(pw.geometry.to_numpy(), pw["nodes"], pw["osm_id"]):
        xy = shapely.get_coordinates(geom)
        if len(xy) != len(nodes):
            continue
        for a in range(len(nodes) - 1):
            d = float(np.hypot(*(xy[a + 1] - xy[a])))
            g.add_edge(nodes[a], nodes[a + 1], weight=d)
        for nd, p in zip(nodes, xy):
            coords[nd] = p
            if nd in gate_nodes:
                way_gate[nd] = wid
    if g.number_of_nodes() == 0:
        return _empty_candidates(crs)
    ids = np.array(list(coords))
    pts = shapely.points(np.array([coords[i] for i in ids]))
    pi, ei = net.tree.query(pts, predicate="dwithin", distance=touch_m)
    touching = set(ids[np.unique(pi)].tolist())
    rows = []
    for comp in nx.connected_components(g):
        touch = [n for n in comp if n in touching]
        if len(touch) < 2:
            continue
        cpts = shapely.points(np.array([coords[n] for n in comp]))
        inside = res_u is not None and bool(shapely.intersects(shapely.multipoints(cpts), res_u))
        has_gate = any(n in way_gate for n in comp)
        if not (inside or has_gate):
            continue
        touch = touch[:12]
        sub = g.subgraph(comp)
        for i, a in enumerate(touch):
            dist, paths = nx.single_source_dijkstra(sub, a, weight="weight")
            for b in touch[i + 1:]:
                if b not in dist or dist[b] < 1.0:
                    continue
                line = shapely.linestrings(np.array([coords[n] for n in paths[b]]))
                why, why_zh = [], []
                if has_gate:
                    why.append("private/locked gate")
                    why_zh.append("私有或上锁的大门")
                if inside:
                    why.append("private way inside residential land use")
                    why_zh.append("小区内部私有道路")
                rows.append({"name": f"private way {min(a, b)}–{max(a, b)}",
                             "reason": "open " + " and ".join(why),
                             "reason_zh": "开放" + "及".join(why_zh), "source": "auto:private",
                             "geometry": line})
    if not rows:
        return _empty_candidates(crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def _missing_links(net, layers: LinkLayers | None, crs, max_straight_m: float, min_ratio: float,
                   min_saved_m: float, limit: int) -> gpd.GeoDataFrame:
    """Pairs of network nodes at most ``max_straight_m`` apart whose walk today is at least
    ``min_ratio`` times the straight distance (and ``min_saved_m`` longer), the straight line
    crossing no water, railway, motorway, building or walkable edge (a line that crosses a
    street without meeting it runs over or under it); best detour saved first, thinned so no
    two share both ends within 40 m."""
    pts = shapely.points(net.node_x, net.node_y)
    tree = shapely.STRtree(pts)
    a, b = tree.query(pts, predicate="dwithin", distance=max_straight_m)
    keep = a < b
    a, b = a[keep], b[keep]
    straight = np.hypot(net.node_x[a] - net.node_x[b], net.node_y[a] - net.node_y[b])
    ok = straight > 5.0
    a, b, straight = a[ok], b[ok], straight[ok]
    if len(a) == 0:
        return _empty_candidates(crs)
    # walk today from each source node, truncated at ratio × max straight
    speed = net.speed_mps
    lim_m = max(min_ratio * max_straight_m, max_straight_m + min_saved_m)
    src = np.unique(a)
    seeds = FacilitySeeds(np.array([0, len(src)], np.int64), np.arange(len(src) + 1, dtype=np.int64),
                          src.astype(np.int32), np.zeros(len(src)), np.ones(len(src)),
                          np.zeros(len(src), np.int64), np.zeros(len(src)), np.zeros(len(src)))
    ptr, node, cost = search_each(net.forward, seeds, lim_m / speed, 64 * len(src))
    # look every pair up in the flat search output: key (source position, node) sorted once
    n = np.int64(net.n_nodes)
    origin = np.repeat(np.arange(len(src), dtype=np.int64), np.diff(ptr))
    keys = origin * n + node.astype(np.int64)
    order_k = np.argsort(keys, kind="stable")
    keys, kcost = keys[order_k], cost[order_k]
    want = np.searchsorted(src, a).astype(np.int64) * n + b.astype(np.int64)
    at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    walk = np.where((len(keys) > 0) & (keys[at] == want), kcost[at] * speed, np.inf) \
        if len(keys) else np.full(len(a), np.inf)
    walk_m = np.minimum(walk, lim_m)           # beyond the search: at least lim_m
    good = (walk_m >= min_ratio * straight) & (walk_m - straight >= min_saved_m)
    a, b, straight, walk = a[good], b[good], straight[good], walk[good]
    saved = np.minimum(walk, lim_m) - straight
    order = np.argsort(-saved, kind="stable")
    lines = shapely.linestrings(np.stack([np.stack([net.node_x[a], net.node_y[a]], 1),
                                          np.stack([net.node_x[b], net.node_y[b]], 1)], 1))
    # blockers: a line that crosses a walkable edge without meeting it passes over or under
    # a street (bridges, tunnels, grade-separated roads); water, railways, motorways, buildings
    trees = [net.tree]
    if layers is not None:
        for frame in (layers.blockers, layers.buildings):
            if len(frame):
                trees.append(shapely.STRtree(frame.to_crs(crs).geometry.to_numpy()))
    ax, ay = net.node_x[a], net.node_y[a]
    bx, by = net.node_x[b], net.node_y[b]
    kept: list[int] = []
    ka = np.empty((0, 2))
    kb = np.empty((0, 2))
    chunk = 4 * limit
    for c0 in range(0, len(order), chunk):     # best first, only as many as needed
        idx = order[c0:c0 + chunk]
        blocked = np.zeros(len(idx), bool)
        for k, tree in enumerate(trees):
            li, _ = tree.query(lines[idx], predicate="crosses" if k == 0 else "intersects")
            blocked[li] = True
        for i in idx[~blocked]:
            pa = np.array([ax[i], ay[i]])
            pb = np.array([bx[i], by[i]])
            if len(kept):
                da, db = np.hypot(*(ka - pa).T), np.hypot(*(kb - pb).T)
                dc, dd = np.hypot(*(kb - pa).T), np.hypot(*(ka - pb).T)
                if (((da < 40) & (db < 40)) | ((dc < 40) & (dd < 40))).any():
                    continue
            kept.append(int(i))
            ka = np.vstack([ka, pa])
            kb = np.vstack([kb, pb])
            if len(kept) >= limit:
                break
        if len(kept) >= limit:
            break
    kept = np.array(kept, dtype=np.int64)
    if len(kept) == 0:
        return _empty_candidates(crs)
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(net.forward.to_scipy(), directed=False)
    split = [comp[a[i]] != comp[b[i]] for i in kept]
    reason_zh = [f"缺失连接：直线 {straight[i]:.0f} 米，现状步行"
                 + (f" {walk[i]:.0f} 米" if np.isfinite(walk[i]) else f"超过 {lim_m:.0f} 米")
                 + ("；连通两处现状互不连通的路网（数据缺口或真实阻隔，请现场核实）" if sp else "")
                 for i, sp in zip(kept, split)]
    reason = [f"missing link: {straight[i]:.0f} m straight, "
              + (f"{walk[i]:.0f} m" if np.isfinite(walk[i]) else f"over {lim_m:.0f} m")
              + " on foot today"
              + ("; joins two parts of the network not connected today (a gap in the data or a "
                 "real barrier: check on site)" if comp[a[i]] != comp[b[i]] else "")
              for i in kept]
    return gpd.GeoDataFrame({"name": [f"missing link {j + 1}" for j in range(len(kept))],
                             "reason": reason, "reason_zh": reason_zh, "source": "auto:missing",
                             "detour_saved_m": saved[kept]},
                            geometry=lines[kept], crs=crs)


def auto_candidates(result, layers: LinkLayers | None = None, osm_path=None,
                    max_straight_m: float = MAX_STRAIGHT_M, min_ratio: float = MIN_RATIO,
                    min_saved_m: float = MIN_SAVED_M, max_missing: int = MAX_MISSING) -> gpd.GeoDataFrame:
    """Candidates from the data: private ways in residential land use or behind private or
    locked gates (opened to through walking) and missing links (see :func:`_missing_links`).
    ``layers`` come from :func:`read_link_layers` of ``osm_path`` (default: the analysis
    source). Each row says why it was proposed (``reason``)."""
    crs = result.crs
    notes = []
    if layers is None:
        if osm_path is None:
            src = result.source
            osm_path = src if src and Path(src).exists() else None
        if osm_path is not None:
            layers = read_link_layers(osm_path)
        elif getattr(result, "features", None) is not None and len(result.features):
            layers = _layers_from_features(result.features)
            notes.append(Note(f"the OSM file '{readable_path(result.source)}' is gone: gates, private ways, railways and "
                              "motorways were not read (water, buildings and residential land come from "
                              "the analysis folder)",
                              zh=f"OSM 文件 '{readable_path(result.source)}' 已不存在：未读取大门、内部道路、铁路和高速公路"
                                 "（水域、建筑和居住用地取自分析结果文件夹）"))
        else:
            notes.append(Note("no OSM file and no stored features: only missing links, without checks "
                              "against water, railways, motorways or buildings",
                              zh="没有 OSM 文件，也没有保存的要素：只提出缺失连接，未检查水域、铁路、"
                                 "高速公路或建筑"))
    parts = []
    if layers is not None:
        parts.append(_private_candidates(result.network, layers, crs))
    parts.append(_missing_links(result.network, layers, crs, max_straight_m, min_ratio,
                                min_saved_m, max_missing))
    if layers is not None and len(layers.gates):
        # a gate on a public way: the model walks through it today (barriers are not modelled)
        private_nodes = {n for nodes in layers.private_ways["nodes"] for n in nodes}
        gates = layers.gates[~layers.gates["osm_id"].isin(private_nodes)]
        g = gates.to_crs(crs).geometry.to_numpy()
        on_public = np.unique(result.network.tree.query(g, predicate="dwithin", distance=1.0)[0])
        if len(on_public):
            notes.append(Note(f"{len(on_public)} private or locked gate(s) sit on public walkable ways: "
                              "the model walks through them today (barriers are not modelled yet)",
                              zh=f"{len(on_public)} 处私有或上锁的大门位于公共步行道路上：模型目前按可通行"
                                 "计算（尚未模拟障碍）"))
    parts = [p for p in parts if len(p)]
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs) \
        if parts else _empty_candidates(crs)
    out.attrs["notes"] = notes
    out.attrs["layers"] = layers
    return out


# --------------------------------------------------------------------------------------------
# the notebook entry point


def links(result, candidates=None, auto: bool = False, k: int = 5, coords: str = "wgs84",
          snap_m: float = SNAP_M, osm_path=None, top: int = 50,
          close_gates: bool = False) -> LinksResult:
    """Rank candidate links for an analysis ``result`` (a :class:`~lifecircle.analysis.Result`
    or an analysis folder): ``candidates`` a file (see :func:`read_candidates`) or a
    GeoDataFrame of lines with a ``name``; ``auto`` adds :func:`auto_candidates`;
    ``close_gates`` scores against the network with private or locked gates on public ways
    closed (:func:`closed_gates`), each gate a candidate to reopen.

    >>> r = lifecircle.analyze("xinjiekou.osm.pbf")           # doctest: +SKIP
    >>> lr = links(r, auto=True, k=5); lr.table.head()        # doctest: +SKIP
    """
    check_link_options(k, snap_m)
    if isinstance(result, (str, Path)):
        result = load_result(result)
    parts = []
    if candidates is not None:
        if isinstance(candidates, gpd.GeoDataFrame):
            c = candidates.to_crs(result.crs) if candidates.crs is not None else \
                candidates.set_crs(result.crs)
            if "name" not in c:
                c = c.assign(name=[f"link {i + 1}" for i in range(len(c))])
            reason = c["reason"] if "reason" in c else "given"
            c = c.assign(reason=reason, reason_zh=c["reason_zh"] if "reason_zh" in c else
                         (reason if "reason" in c else "用户提供"), source="given")
            parts.append(c)
        else:
            parts.append(read_candidates(candidates, result.crs, coords))
    notes = []
    layers = None
    if auto:
        found = auto_candidates(result, osm_path=osm_path)
        notes += found.attrs.get("notes", [])
        layers = found.attrs.get("layers")
        parts.append(found)
    base = None
    if close_gates:
        if layers is None:
            src = osm_path or result.source
            if not src or not Path(src).exists():
                raise LinkError(f"closing gates needs the OSM file of the analysis ('{readable_path(src)}' is gone)",
                                zh=f"关闭大门需要分析所用的 OSM 文件（'{readable_path(src)}' 已不存在）")
            layers = read_link_layers(src)
        base = closed_gates(result, layers)
        notes = [n for n in notes if "walks through them today" not in n]
        notes += [Note(f"baseline: {len(base.candidates)} private or locked gate(s) on public ways closed "
                       "to through walking; every gain is against that network",
                       zh=f"基准：公共道路上 {len(base.candidates)} 处私有或上锁的大门按不可穿行计算；"
                          "所有增益都相对于该路网")] + base.notes
    if not parts and base is None:
        raise LinkError("no candidates: give a candidate file or ask for --auto",
                        zh="没有候选连线：请给出候选连线文件，或使用 --auto")
    cands = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=result.crs) \
        if parts else _empty_candidates(result.crs)
    if len(cands) == 0 and (base is None or len(base.candidates) == 0):
        raise LinkError("no candidate links: the file holds none and --auto proposed none"
                        + "".join(f" ({n})" for n in notes),
                        zh="没有候选连线：文件中没有，--auto 也没有提出"
                           + "".join(f"（{note_text(n, 'zh')}）" for n in notes))
    lr = score_candidates(result, cands, k=k, snap_m=snap_m, top=top, base=base)
    status = getattr(result, "data_status", None) or {}
    if status and all(v == col.STATUS_NO_DATA for v in status.values()):
        notes.append(Note("no facility of any category in the data: what a link brings within reach is "
                          "unknown (its 0 residents mean no data, not no gain); add facilities first "
                          "(analyze --facilities)",
                          zh="数据中没有任何类别的设施：连接能带来的可达性无从得知（新增可达居民 0 表示无数据，"
                             "并非没有收益）；请先补充设施（analyze --facilities）"))
    lr.notes = notes + lr.notes
    lr.layers = layers
    return lr


# --------------------------------------------------------------------------------------------
# outputs


_ZH = {"candidate": "候选编号", "rank": "排名", "name": "名称", "reason": "理由", "source": "来源类型",
       "status": "状态", "message": "说明", "link_m": "连接长度(米)", "residents": "新增可达居民",
       "homes": "新增可达住宅", "resident_categories": "新增可达居民×类别", "all6_15": "新增六维齐全居民(15分钟)",
       "score_delta": "平均得分变化", "minutes_saved": "节省时间(人·分钟)", "detour_saved_m": "节省绕行(米)",
       "row": "文件行号", "step": "步骤", "cumulative_residents": "累计新增可达居民",
       "cumulative_score_delta": "累计得分变化"}

_STATUS_ZH = {"ok": "", "no_geometry": "无线几何", "no_street": "端点在吸附距离内无可步行道路",
              "zero_length": "长度为零（两端为同一点）", "duplicates_edge": "与现有步行道路重合",
              STATUS_BAD_COORDS: "坐标非有限值或不是经纬度"}


#: where a candidate comes from, as the Chinese table says it
_SOURCE_ZH = {"auto:missing": "自动·缺失连接", "auto:private": "自动·内部道路", "auto:gate": "自动·大门",
              "file": "候选文件", "given": "用户提供"}


def localized(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``name`` and ``reason`` of candidates in ``lang``: the names lifecircle made up for
    ``--auto`` candidates and the reasons are translated; a planner's names stay as drawn."""
    t = frame.copy()
    if lang != "zh":
        return t
    if "reason_zh" in t:
        t["reason"] = t["reason_zh"].where(t["reason_zh"].notna(), t["reason"])
    if "name" in t:
        auto = t["source"].astype(str).str.startswith("auto") if "source" in t else \
            t["name"].astype(str).str.match(r"(missing link|private way)\b")
        t.loc[auto, "name"] = (t.loc[auto, "name"].astype(str)
                               .str.replace("missing link", "缺失连接", regex=False)
                               .str.replace("private way", "内部道路", regex=False))
    return t


#: decimals people read in links.xlsx (the CSV keeps full precision): metres and residents to
#: one decimal, as resources.xlsx; person-minutes whole; score changes to three decimals
_XLSX_DECIMALS = {"link_m": 1, "detour_saved_m": 1, "residents": 1, "homes": 0, "resident_categories": 1,
                  "all6_15": 1, "cumulative_residents": 1, "minutes_saved": 0, "score_delta": 3,
                  "cumulative_score_delta": 3}


def rounded_for_people(t: pd.DataFrame) -> pd.DataFrame:
    """``t`` (machine column names) with its numbers rounded as links.xlsx shows them: the
    columns of :data:`_XLSX_DECIMALS`, and the per-dimension and per-category residents
    (``dim_*``, ``cat_*``: one decimal) and person-minutes (``saved_*``: whole)."""
    t = t.copy()
    for c in t.columns:
        d = _XLSX_DECIMALS.get(c)
        if d is None and isinstance(c, str) and c.startswith(("dim_", "cat_", "saved_")):
            d = 0 if c.startswith("saved_") else 1
        if d is not None and pd.api.types.is_numeric_dtype(t[c]) and not pd.api.types.is_bool_dtype(t[c]):
            t[c] = t[c].round(d)
    return t


def links_table(lr: LinksResult, lang: str = "en", headers: str = "human") -> pd.DataFrame:
    """The ranked table: values in ``lang``; ``headers="machine"`` keeps the English column
    names (links.csv, written with ``lang="en"`` whatever the language: English codes, reason
    and reason_zh), ``"human"`` gives rounded numbers and, with ``lang="zh"``, Chinese headers
    (links.xlsx)."""
    t = pd.DataFrame(lr.table.drop(columns="geometry"))
    # a category with no facility in the data: its gains are unknown (empty), not 0
    status = getattr(lr.result, "data_status", None) or {}
    for cid, st in status.items():
        if st == col.STATUS_NO_DATA:
            gone = [c for c in t.columns if c in (f"cat_{cid}", f"saved_{cid}")
                    or (c.startswith(f"cat_{cid}_") and c[len(f"cat_{cid}_"):].isdigit())]
            t[gone] = np.nan
    if lang == "zh":
        t = localized(t, lang).drop(columns=["reason_zh"], errors="ignore")
        t["message"] = [_STATUS_ZH.get(st, m) for st, m in zip(t["status"], t["message"])]
        t["status"] = [_STATUS_ZH.get(st) or ("正常" if st == "ok" else st) for st in t["status"]]
        if "source" in t:
            t["source"] = [_SOURCE_ZH.get(s, s) for s in t["source"]]
    if headers == "human":
        t = rounded_for_people(t)
    if lang == "zh" and headers == "human":
        prof = lr.result.profile
        ren = {}
        for c in t.columns:
            if c in _ZH:
                ren[c] = _ZH[c]
            elif c.startswith(("dim_", "cat_", "saved_")):
                head, rest = c.split("_", 1)
                tier = None
                if rest.rsplit("_", 1)[-1].isdigit() and rest.rsplit("_", 1)[0] in prof:
                    rest, tier = rest.rsplit("_", 1)
                elif rest.rsplit("_", 1)[-1].isdigit() and head == "dim":
                    base, tt = rest.rsplit("_", 1)
                    if base in prof.dimension_ids:
                        rest, tier = base, tt
                label = prof.display_name(rest, "zh") if (rest in prof or rest in prof.dimension_ids) else rest
                what = {"dim": "新增覆盖居民", "cat": "新增可达居民", "saved": "节省(人·分钟)"}[head]
                ren[c] = f"{label}·{what}" + (f"({tier}分钟)" if tier else "")
        t = t.rename(columns=ren)
    return t


def write_links(lr: LinksResult, out_dir, lang: str = "en", extra=None, force: bool = False,
                inputs=()) -> Path:
    """Write OUT/links.csv, links_greedy.csv, links.xlsx (ranked table; sheet ``greedy`` with
    the best set) and links.gpkg (layers ``links`` numbered by rank, ``homes_gained``,
    ``about``, and with ``--auto`` the OSM layers it read: ``osm_gates``, ``osm_private_ways``,
    ``osm_walls``, ``osm_blockers``) — atomically; ``extra(folder)`` writes more files into the same folder before
    it is put in place (the command line writes the map with
    :func:`lifecircle.render.maps.links_map` this way)."""
    out = Path(out_dir)
    res = lr.result
    table = links_table(lr, lang)
    chosen = localized(lr.chosen, lang).drop(columns=["reason_zh"], errors="ignore")
    # the machine CSVs are the same in every language: English column names and codes
    # (status ok, source auto:missing), reason and reason_zh side by side, and the attribution
    # as its own column, as links.csv has it
    chosen_csv = lr.chosen.assign(attribution=attribution_text(res.attribution, "en"))
    chosen = rounded_for_people(chosen)
    if lang == "zh":
        chosen = chosen.rename(columns=_ZH)
    attribution = res.attribution
    with atomic_dir(out, force=force, inputs=inputs, kind="links") as tmp:
        csv_safe(links_table(lr, "en", headers="machine").assign(attribution=attribution_text(attribution, "en"))).to_csv(
            tmp / "links.csv", index=False, encoding="utf-8-sig")
        csv_safe(chosen_csv).to_csv(tmp / "links_greedy.csv", index=False, encoding="utf-8-sig")
        with pd.ExcelWriter(tmp / "links.xlsx", engine="openpyxl") as xw:
            zh = lang == "zh"
            xlsx_frame(table).to_excel(xw, sheet_name="候选连接" if zh else "links", index=False)   # names: never a failed write
            xlsx_frame(chosen).to_excel(xw, sheet_name="最优组合" if zh else "greedy", index=False)
            xlsx_frame(pd.DataFrame({("数据来源" if zh else "source"): [attribution_text(attribution, lang)]})).to_excel(
                xw, sheet_name="说明" if zh else "attribution", index=False)
            xlsx_safe(xw.book)              # text from the data is never stored as a formula
        try:
            g = lr.table.copy()
            g = g[g.geometry.notna() & ~g.geometry.is_empty]
            g.to_crs(WGS84).to_file(tmp / "links.gpkg", layer="links", driver="GPKG")
            hg = gained_homes(lr)
            if len(hg):
                hg.to_crs(WGS84).to_file(tmp / "links.gpkg", layer="homes_gained", driver="GPKG")
            if lr.layers is not None:     # the walls, gates and private ways --auto read
                for name in ("gates", "private_ways", "walls", "blockers"):
                    frame = getattr(lr.layers, name)
                    if len(frame):
                        frame.drop(columns=[c for c in ("nodes",) if c in frame]).to_file(
                            tmp / "links.gpkg", layer=f"osm_{name}", driver="GPKG")
            write_about_layer(tmp / "links.gpkg", attribution, source=res.source)
        except Exception as exc:
            raise OutputError(f"{out}: cannot write the GeoPackage ({exc})",
                              zh=f"{out}：无法写出 GeoPackage（{exc}）") from None
        if extra is not None:
            extra(tmp)
    return out


def gained_homes(lr: LinksResult) -> gpd.GeoDataFrame:
    """Homes newly within a category's threshold, one row per (rank, home), for the top
    candidates."""
    homes = lr.result.homes
    rows = [(r, h) for r, hs in lr.gained.items() for h in hs.tolist()]
    if not rows:
        return gpd.GeoDataFrame({"rank": [], col.HOME_ID: []}, geometry=gpd.GeoSeries([], crs=homes.crs),
                                crs=homes.crs)
    r, h = np.array(rows).T
    pts = shapely.point_on_surface(homes.geometry.to_numpy()[h])
    return gpd.GeoDataFrame({"rank": r, col.HOME_ID: h, col.POPULATION: homes[col.POPULATION].to_numpy()[h]},
                            geometry=pts, crs=homes.crs)
