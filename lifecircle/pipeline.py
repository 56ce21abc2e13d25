"""One call from OSM data to per-home walking access: :func:`analyze`.

Stages (each timed in ``Result.timings``): read → study area → network → facilities → homes
→ snapping → engine → coverage. The result holds the tables, the network and the snaps, so
maps, isochrones, what-ifs and the idle-site inventory reuse them without recomputing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from lifecircle import columns as col
from lifecircle import i18n, splitread
from lifecircle.core.classify import classify_features
from lifecircle.core.coverage import data_status, home_scores, search_minutes, summarize, unit_facility_counts, with_unit_facilities
from lifecircle.core.engine import AccessEngine
from lifecircle.core.homes import (
    apply_population,
    apply_population_raster,
    estimate_info,
    find_homes,
    population_notes,
    read_population_zones,
    residential_streets,
)
from lifecircle.core.network import WalkNetwork, build_network, data_extent, projected_bounds
from lifecircle.core.profiles import Profile, load_profile
from lifecircle.core.snapping import Snap, area_entries, entry_points, fragment_captures, snap_points
from lifecircle.errors import BoundaryError, InputFileError, OptionError, ProfileError
from lifecircle.i18n import label
from lifecircle.io.boundary import read_boundary
from lifecircle.io.chinacoords import datum_zh, frame_to_wgs84, normalize_crs
from lifecircle.io.crs import choose_crs, distance_scale
from lifecircle.io.osmread import gc_paused, release_freed_memory
from lifecircle.io.poitable import merge_facilities, read_poi_table
from lifecircle.io.sources import WGS84, OSMData, combine, embedded_sample, plain_copies, plain_copy, read_osm
from lifecircle.result import MapPrep, Result, load_result
from lifecircle.settings import DEFAULTS, Settings, cores

__all__ = ["STAGES", "Result", "analyze", "load_result", "read_boundary"]


# --------------------------------------------------------------------------------------------
# the pipeline


class _Stages:
    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: dict[str, float] = {}
        self.progress = progress

    def beside(self, work):
        """``work`` (a :class:`MapPrep`) runs beside the stages: an analysis that fails
        anywhere (a stage, between stages, a progress callback that raises) stops it
        (:func:`_reaping`)."""
        _SIDE.works.append(work)
        return work

    @contextmanager
    def __call__(self, name: str):
        if self.progress and name in STAGES:
            self.progress(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0


#: The side work (:class:`MapPrep`) of the analysis running on each thread, stopped by
#: :func:`_reaping` when it fails.
_SIDE = threading.local()


STAGES = ("read", "study area", "network", "facilities", "homes", "snap", "engine", "coverage")


#: A study area wider or taller than this (degrees) is not a district: refused (a UTM zone is 6°).
MAX_AREA_DEG = 10.0


def _crs_zh(spec) -> str:
    return (f"无法使用坐标系 {spec!r}：距离需要以米为单位的投影坐标系；请用 utm（默认）、cgcs2000，"
            "或投影坐标系的 EPSG 代码（如 4549、EPSG:32650）")


def _check_crs_spec(spec) -> None:
    """Refuse a CRS option pyproj cannot read or that is not projected in metres, before any
    data is read (``utm``/``cgcs2000`` depend on the data and are always valid)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower().replace("_", "-").replace(" ", "-")
                        in {"", "utm", "auto", "cgcs2000", "cgcs2000-gk", "gk", "cgcs2000-3-degree-gk"}):
        return
    try:
        choose_crs(spec, 0.0, 0.0)
    except ValueError as exc:
        raise OptionError("--crs", " ".join(str(exc).split()), zh=_crs_zh(spec)) from None


def _metric_crs(spec, lon: float, lat: float):
    """The analysis CRS; refused when it stretches distances by more than 1 % at the data
    (Web Mercator does by 1/cos(latitude): +18 % at Nanjing, +100 % at Helsinki)."""
    try:
        crs = choose_crs(spec, lon, lat)
    except ValueError as exc:
        raise OptionError("--crs", " ".join(str(exc).split()), zh=_crs_zh(spec)) from None
    k = distance_scale(crs, lon, lat)
    if not k <= 0.01:
        what = "cannot project the data" if k != k else f"stretches distances by {100 * k:.1f} %"
        what_zh = "无法投影这些数据" if k != k else f"在数据所在处把距离拉长 {100 * k:.1f} %"
        raise OptionError("--crs", f"{spec} ({crs.name}) {what} at the data (lon {lon:.2f}, lat {lat:.2f}); "
                          "walking times and areas would be wrong: use utm (the default) or cgcs2000",
                          zh=f"{spec}（{crs.name}）{what_zh}（经度 {lon:.2f}，纬度 {lat:.2f}），步行时间和面积"
                             "会算错：请用 utm（默认）或 cgcs2000")
    return crs


def _boundary_label(boundary) -> tuple[str, str]:
    """How messages name ``boundary`` (English, Chinese): a file by its path, an object by
    its kind and size (never its repr, which runs over lines)."""
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)):
        kind, n = type(boundary).__name__, len(boundary)
        return f"the boundary ({kind}, {n} feature{'s' if n != 1 else ''})", f"边界（{kind}，{n} 个要素）"
    if isinstance(boundary, shapely.Geometry):
        return f"the boundary (shapely {boundary.geom_type})", f"边界（shapely {boundary.geom_type}）"
    return str(boundary), str(boundary)


def _boundary_error(boundary, problem: str, zh: str) -> BoundaryError:
    """BoundaryError naming ``boundary`` as :func:`_boundary_label` does, in both languages."""
    name, name_zh = _boundary_label(boundary)
    exc = BoundaryError(name, problem, zh=zh)
    exc.zh = f"{name_zh}：{zh}"
    return exc


def _boundary_frame(boundary, boundary_crs: str) -> gpd.GeoDataFrame:
    """A boundary given as an object (GeoDataFrame, GeoSeries, shapely geometry) as a
    GeoDataFrame with its CRS; BoundaryError for anything else that is not a file path."""
    if isinstance(boundary, shapely.Geometry):     # longitude/latitude, as a polygon source is
        frame = gpd.GeoDataFrame(geometry=[boundary], crs=WGS84)
        return frame if normalize_crs(boundary_crs) == "wgs84" else frame_to_wgs84(frame, boundary_crs)
    if isinstance(boundary, gpd.GeoSeries):
        boundary = gpd.GeoDataFrame(geometry=boundary)
    if boundary.crs is None:
        raise _boundary_error(boundary, "has no CRS: set one (e.g. gdf.set_crs(4326) for "
                              "longitude/latitude)", zh="没有坐标参考系：请先设置（经纬度用 gdf.set_crs(4326)）")
    return boundary


def _communities(boundary, boundary_name: str | None, boundary_crs: str):
    """The boundary's communities (WGS-84, every one named) and their union (WGS-84), or
    ``(None, None)`` without a boundary; BoundaryError for a boundary with no geometry or
    wider than a study area. Needs no OSM data."""
    if boundary is None:
        return None, None
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries, shapely.Geometry)):
        communities = _boundary_frame(boundary, boundary_crs)
    elif isinstance(boundary, (str, os.PathLike)):
        communities = read_boundary(boundary, boundary_name, crs=boundary_crs)
    else:
        raise BoundaryError(f"the boundary ({type(boundary).__name__})",
                            "must be a polygon file, a GeoDataFrame or a shapely geometry "
                            "(longitude/latitude)",
                            zh="须为多边形文件、GeoDataFrame 或 shapely 几何图形（经纬度）")
    if col.COMMUNITY not in communities:
        communities = communities.assign(**{col.COMMUNITY: [f"community_{i + 1}" for i in range(len(communities))]})
    else:     # a community without a name is numbered (it read "nan" before)
        names = communities[col.COMMUNITY]
        blank = names.isna() | (names.astype(str).str.strip() == "")
        if blank.any():
            communities = communities.assign(**{col.COMMUNITY: [
                f"community_{i + 1}" if b else n for i, (n, b) in enumerate(zip(names, blank))]})
    communities = communities.to_crs(WGS84)
    area_wgs = shapely.union_all(communities.geometry.to_numpy())
    if area_wgs is None or area_wgs.is_empty:
        raise _boundary_error(boundary, "holds no geometry", zh="不含任何几何图形")
    w, s, e, n = area_wgs.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):     # read as lon/lat, and it is not
        raise BoundaryError(str(boundary), f"coordinates reach x {w:.0f}..{e:.0f}, y {s:.0f}..{n:.0f}: they "
                            "look like metres of a projected CRS, not longitude/latitude, and the file "
                            "names no CRS; give it its CRS (a GeoPackage or a Shapefile with its .prj) or "
                            "reproject it to WGS-84 lon/lat",
                            zh=f"坐标范围为 x {w:.0f}..{e:.0f}，y {s:.0f}..{n:.0f}：看起来是投影坐标系的米，"
                               "不是经纬度，且文件未注明坐标系；请为文件注明坐标系（带坐标系的 GeoPackage，"
                               "或带 .prj 的 Shapefile），或将其转换为 WGS-84 经纬度")
    if e - w > MAX_AREA_DEG or n - s > MAX_AREA_DEG:
        raise _boundary_error(boundary, f"spans {e - w:.1f}° × {n - s:.1f}° (lon {w:.1f}..{e:.1f}, "
                              f"lat {s:.1f}..{n:.1f}): larger than a study area (at most "
                              f"{MAX_AREA_DEG:g}°); draw the district or city you mean",
                              zh=f"范围达 {e - w:.1f}° × {n - s:.1f}°（经度 {w:.1f}..{e:.1f}，纬度 "
                                 f"{s:.1f}..{n:.1f}），超过一个研究范围（最多 {MAX_AREA_DEG:g}°）；"
                                 "请画出所指的区县或城市")
    return communities, area_wgs


def _study_area(settings: Settings, bounds, communities, area_wgs, boundary, source):
    """What the streets' ``bounds`` (WGS-84) and the boundary (:func:`_communities`) decide:
    ``(crs, communities in it, their union in it, the clip polygon in WGS-84)`` (the last three
    None without a boundary); BoundaryError when the boundary misses the data (named with
    ``source``), OptionError for a CRS that cannot measure there. A function of these values
    alone: the split read's streets child computes it too, and finds the same."""
    lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    area = keep_wgs = None
    if communities is not None:
        data_box = shapely.box(*bounds)
        if not area_wgs.intersects(data_box):
            raise _boundary_error(boundary, f"does not overlap the data ({source}: streets "
                                  f"span lon {bounds[0]:.4f}..{bounds[2]:.4f}, lat {bounds[1]:.4f}..{bounds[3]:.4f})",
                                  zh=f"与数据不重叠（{source}：道路范围为经度 {bounds[0]:.4f}..{bounds[2]:.4f}，"
                                     f"纬度 {bounds[1]:.4f}..{bounds[3]:.4f}）")
        c = area_wgs.centroid
        lon, lat = c.x, c.y
    crs = _metric_crs(settings.crs, lon, lat)
    if communities is not None:
        communities = communities.to_crs(crs)
        area = shapely.union_all(communities.geometry.to_numpy())
        keep_area = area.buffer(settings.boundary_margin_m)
        keep_wgs = gpd.GeoSeries([keep_area], crs=crs).to_crs(WGS84).iloc[0]
    return crs, communities, area, keep_wgs


def _streets_area(settings: Settings, communities, area_wgs, boundary, source, bounds):
    """The (CRS, clip polygon in WGS-84 or None) of :func:`_study_area`: all the streets half
    of the read needs (the streets child finds them from the streets' ``bounds``)."""
    crs, _, _, keep_wgs = _study_area(settings, bounds, communities, area_wgs, boundary, source)
    return crs, keep_wgs


#: The share of street node references without a location above which a run says so. The
#: shared extracts have 0-7.2 % (Helsinki's is clipped at the extract's edge, where ways run on
#: to nodes outside it; Las Palmas 2.4 %); a file whose ways come before many of their nodes
#: (not sorted) had 48 %. 20 % is well above an extract's clipped edge and well below that.
UNLOCATED_NOTE = 0.20
#: The key of that share (0-1) in :attr:`Result.network_report` (meta.json's ``network``),
#: whatever its size: what the note says, for the machine (a batch script, a comparison).
UNLOCATED_KEY = "street_nodes_unlocated"


def source_notes(meta: dict, lang: str = "en") -> list[str]:
    """Notes (in ``lang``) on the OSM file as read (its reader's ``meta``): a large share of
    street node references without a location (streets cut short or lost, and with them
    homes), with the two likely causes."""
    share = meta.get("street_nodes_unlocated") or 0.0
    if share > UNLOCATED_NOTE:
        return [label("note.unlocated", lang, p=100 * share)]
    return []


#: The share of a boundary's area outside the data's extent above which a run says so: a
#: boundary drawn to the district's edge leaves a few per cent outside the extract's streets
#: (their box lies a little inside the extract's); a quarter is a boundary the data misses.
OFF_DATA_NOTE = 0.25
#: Communities named in a note at most (the others counted).
_NAMES_SHOWN = 10


def boundary_notes(communities: gpd.GeoDataFrame, bounds, crs, source: str = "",
                   lang: str = "en") -> list[str]:
    """Notes (in ``lang``) on a boundary the data covers only in part: the share of its area
    outside the box of the streets (``bounds``, WGS-84; what decides the study area too, and
    all the parent of the split read knows of the streets then); the areas are measured in
    the analysis ``crs`` (``communities`` are in it). Which communities lie wholly outside
    the data is decided later, on the data's real extent (:func:`communities_off_data`)."""
    box = gpd.GeoSeries([shapely.segmentize(shapely.box(*bounds), 0.001)], crs=WGS84).to_crs(crs).iloc[0]
    union = shapely.union_all(communities.geometry.to_numpy())
    total = union.area
    share = 1 - shapely.intersection(union, box).area / total if total > 0 else 0.0
    extent = dict(src=source, w=bounds[0], e=bounds[2], s=bounds[1], n=bounds[3])
    notes = []
    if share > OFF_DATA_NOTE:
        notes.append(label("note.boundary_off_data", lang, p=100 * share, **extent))
    return notes


def communities_off_data(communities: gpd.GeoDataFrame, extent) -> list:
    """The names of the communities lying wholly outside ``extent``, the area the data covers
    (:func:`lifecircle.core.network.data_extent` of the network and the features, in the
    communities' CRS; None: no data, all of them), for :func:`absent_notes`. Not the box of
    the streets: it holds the empty corner of an L-shaped extract (a community there has no
    data, not "no homes") and misses the places where only features lie (a community there
    has data)."""
    geoms = communities.geometry.to_numpy()
    if extent is None:
        off = np.ones(len(geoms), dtype=bool)
    else:
        inside = shapely.area(shapely.intersection(geoms, extent))
        off = ~shapely.intersects(geoms, extent) | ((inside <= 0) & (shapely.area(geoms) > 0))
    return communities[col.COMMUNITY].to_numpy()[off].tolist()


def _place(place: str | None, communities) -> str:
    """The study area's name: ``place`` when given, else the name of the boundary's only
    community (not one :func:`_communities` numbered for want of a name), else ""."""
    if place is not None:
        return " ".join(str(place).split())
    if communities is None or len(communities) != 1:
        return ""
    name = " ".join(str(communities[col.COMMUNITY].iloc[0]).split())
    return "" if name == "community_1" else name


def absent_communities(summary: pd.DataFrame, communities: gpd.GeoDataFrame) -> list:
    """The boundary's communities without rows in ``summary`` (no home of the data in them),
    once each, in the boundary's order."""
    have = set(summary[col.COMMUNITY].tolist())
    return [n for n in dict.fromkeys(communities[col.COMMUNITY].tolist()) if n not in have]


def absent_notes(absent: list, off: list, lang: str = "en") -> list[str]:
    """Notes (in ``lang``) naming the communities without results (``absent``, see
    :func:`absent_communities`): those wholly outside the data's extent (``off``), then the
    others (no home in the data). Names are the boundary file's, as they are (printed
    literally, escaped in HTML)."""
    off = set(off)
    notes = []
    for key, names in (("note.communities_off_data", [n for n in absent if n in off]),
                       ("note.communities_no_homes", [n for n in absent if n not in off])):
        if not names:
            continue
        shown = [" ".join(str(n).split()) for n in names[:_NAMES_SHOWN]]
        listed = "、".join(f"“{n}”" for n in shown) if lang == "zh" else ", ".join(f"'{n}'" for n in shown)
        if len(names) > _NAMES_SHOWN:
            listed += label("note.and_more", lang, k=len(names) - _NAMES_SHOWN)
        notes.append(label(key, lang, k=len(names), names=listed))
    return notes


def with_absent_communities(summary: pd.DataFrame, names: list) -> pd.DataFrame:
    """``summary`` with rows for the communities ``names`` (no home in the data: no rows of
    their own), every figure of theirs missing (NaN, never 0; the facility counts are the
    data's, as for every community) and ``data_status`` no_data: summary.csv still lists
    them. Made from the whole area's rows (the same levels, ids and names), after the others
    (whose order is kept)."""
    have = set(summary[col.COMMUNITY].tolist())
    names = [n for n in dict.fromkeys(names) if n not in have]
    if not names:
        return summary
    whole = summary[summary[col.COMMUNITY].astype(str) == "ALL"]
    keep = {col.COMMUNITY, "level", "id", "dimension", "name_zh", "name_en", "minutes", "facilities",
            col.CATEGORIES_TOTAL, col.DIMENSIONS_TOTAL}
    blank = whole.copy()
    for c in blank.columns:
        if c not in keep and c != col.DATA_STATUS and pd.api.types.is_numeric_dtype(blank[c]):
            blank[c] = np.nan
    blank[col.DATA_STATUS] = col.STATUS_NO_DATA
    return pd.concat([summary] + [blank.assign(**{col.COMMUNITY: n}) for n in names], ignore_index=True)


def _complete_ids(profile: Profile, complete, already=()) -> tuple[str, ...]:
    """``complete`` (ids or Chinese/English names, as a list or "a,b") as category ids of
    ``profile``; OptionError naming the unknown ones otherwise."""
    if complete is None:
        items: list[str] = []
    elif isinstance(complete, str):
        items = [complete]
    else:
        items = list(complete)
    names = [p.strip() for item in list(already) + items for p in re.split(r"[,，、]", str(item)) if p.strip()]
    ids, unknown = [], []
    for n in names:            # an id, or a category's Chinese or English name (幼儿园, Kindergarten)
        try:
            ids.append(profile.resolve(n))
        except ProfileError:
            unknown.append(n)
    if unknown:
        raise OptionError("--complete", f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                          f"{', '.join(unknown)} in profile {profile.name}; categories: "
                          f"{', '.join(profile.category_ids)}",
                          zh=f"指标体系 {profile.name} 中没有类别 {', '.join(unknown)}；可用类别（名称或 id 均可）："
                             f"{'、'.join(profile.display_name(c, 'zh') for c in profile.category_ids)}")
    return tuple(dict.fromkeys(ids))


def status_notes(profile: Profile, status: dict, counts: dict, lang: str = "en") -> list[str]:
    """Notes (in ``lang``) naming the categories without data (and what to do) and the
    surveyed ones with no facility (real gaps)."""
    nodata = [c.id for c in profile.categories if status.get(c.id) == col.STATUS_NO_DATA]
    gaps = [c.id for c in profile.categories
            if status.get(c.id) == col.STATUS_COMPLETE and counts.get(c.id, 0) == 0]

    def names(ids):   # Chinese names in Chinese; ids (stable, searchable) in English
        return "、".join(profile.display_name(c, "zh") for c in ids) if lang == "zh" else ", ".join(ids)

    notes = []
    if nodata:
        dims = [d.id for d in profile.dimensions
                if d.categories and all(status.get(c.id) == col.STATUS_NO_DATA for c in d.categories)]
        notes.append(label("note.no_data", lang, n=len(nodata), cats=names(nodata))
                     + (label("note.no_data_dims", lang, dims=names(dims)) if dims else "")
                     + " — " + i18n.no_data_hint(lang))
    if gaps:
        notes.append(label("note.surveyed_gaps", lang, n=len(gaps), cats=names(gaps)))
    return notes


def _reaping(func):
    """``func`` with the streets child it may fork (:mod:`lifecircle.splitread`) killed and
    reaped, and the side work it starts (:meth:`_Stages.beside`) stopped, on any error or
    Ctrl-C: no thread outlives a failed analysis (it would keep the next save from forking
    its writer). The side work's piece under way is waited for, but not after Ctrl-C, which
    must stop at once (the thread is a daemon and ends after that piece). However it ends, a
    ``.bz2`` source's decompressed copy (:func:`plain_copies`) is removed, after the child."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        outer = getattr(_SIDE, "works", None)
        _SIDE.works = []
        try:
            # a .bz2 source's plain copy (made in the read) removed last, once the child is gone
            with plain_copies(), splitread.reaped():
                return func(*args, **kwargs)
        except BaseException as exc:
            for work in _SIDE.works:
                work.stop(wait=not isinstance(exc, (KeyboardInterrupt, SystemExit)))
            raise
        finally:
            _SIDE.works = outer
    return wrapper


# the named stages in order, each a `with stage(...)` block a reader follows top to bottom;
# Python's cycle collector waits until the end: the read leaves millions of long-lived tag
# dicts that every full collection would walk again (2-tile city: 6.2 -> 5.25 CPU-s, same peak)
@_reaping
@gc_paused()
def analyze(source=None, *, boundary=None, boundary_name: str | None = None,  # noqa: C901
            boundary_crs: str = "wgs84", population_crs: str = "wgs84",
            profile: str | os.PathLike | Profile = "default", speed: float | None = None,
            settings: Settings | None = None, facilities_table=None, facilities_crs: str = "wgs84",
            population=None, population_column: str = col.POPULATION, population_raster=None,
            complete=None, prepare_map: bool = True, place: str | None = None,
            progress: Callable[[str], None] | None = None, **overrides) -> Result:
    """Analyse a district: walking time from every home to every facility category.

    ``source``: an OSM file (.osm.pbf/.osm/.osm.bz2), ``"place:<name>"``, a bbox tuple, a polygon,
    an :class:`~lifecircle.io.sources.OSMData`, or None for the shipped Xinjiekou (Nanjing) sample.
    ``boundary``: a polygon file (any CRS), a GeoDataFrame or GeoSeries with its CRS set, or a
    shapely geometry in longitude/latitude (WGS-84, or the ``boundary_crs`` datum); several
    polygons give per-community results.
    ``facilities_table``: an extra facility table (CSV/XLSX, e.g. Amap POIs, or a DataFrame or
    GeoDataFrame of the same columns: see :func:`~lifecircle.io.poitable.read_poi_table`)
    merged with OSM.
    ``population_raster``: a people-per-cell GeoTIFF (WorldPop/GHSL) spread over the homes by
    floor area; ``population``: polygons with a ``population_column`` of residents (community
    totals, a file or a GeoDataFrame) that rescale the homes inside them. Given both, the
    raster is applied first and the community totals then rescale it. Every resident of the
    raster / zones over the study area ends up at a home (stand-in homes where none is mapped).
    ``boundary_crs`` / ``population_crs``: the datum of those files' coordinates, ``wgs84``
    (default), ``gcj02`` (Gaode/Tencent) or ``bd09`` (Baidu), shifted back to WGS-84.
    ``speed`` (km/h) and other keyword ``overrides`` change :class:`Settings` fields.
    ``complete``: category ids (a list or "a,b") declared surveyed — none found means none
    exist (0 %); every other category with no facility in the data reads "no data" and is left
    out of dimension coverage, the score and the "all dimensions" headline.
    ``place``: the study area's name for map titles (:attr:`Result.place`); by default the
    name of a boundary's only feature, if it has one, else none (maps then use the file's name).

    >>> import lifecircle
    >>> r = lifecircle.analyze()                      # doctest: +SKIP
    >>> r.summary_table().head()                      # doctest: +SKIP

    Reading an OSM file uses two cores where that is safe (Linux, no other Python thread) and a
    core is idle: a forked child reads the streets and builds the network while this process
    reads the features, classifies them and finds the homes (:mod:`lifecircle.splitread`; the
    same results; ``LIFECIRCLE_SPLIT_READ=0`` turns it off). The "network" stage is then the
    wait for the child's network.

    ``prepare_map`` (default True): what the map (:meth:`Result.save`, :meth:`Result.map`)
    draws from the features, the network and the homes alone is made on another thread beside
    the later stages (:class:`~lifecircle.result.MapPrep`; GEOS releases the GIL), and the map
    takes it instead of making it while the tables are written: from the study area on, the
    background's pieces from the features (the facilities and homes stages run on one core);
    once the homes and the network are known, the homes' Voronoi cells and the whole
    background — only where the map draws homes as points (at most
    ``settings.map_max_points`` homes): on a hexagon map the GeoPackage, not the map, is the
    save's longest part, and a city's engine and coverage stages use both cores. Only where a
    core is to spare (:func:`_core_to_spare`; never in a batch's districts, which run on one)
    and for at most :data:`MAP_PREP_FEATURES` times ``settings.map_max_points`` features.
    A "map" stage in ``timings`` is the wait for it after the coverage; it is there whenever
    ``prepare_map`` and a second core may be used (about 0 s where the load left no core for
    it), so runs of one setting have the same stages.
    """
    settings = (settings or DEFAULTS).with_(walk_speed_kmh=speed, **overrides)
    _check_crs_spec(settings.crs)                     # bad options fail before any data is read
    try:
        normalize_crs(facilities_crs)
    except ValueError as exc:
        raise OptionError("--facilities-crs", str(exc), zh=datum_zh(facilities_crs)) from None
    for option, crs_name in (("--boundary-crs", boundary_crs), ("--population-crs", population_crs)):
        try:
            normalize_crs(crs_name)
        except ValueError as exc:
            raise OptionError(option, str(exc), zh=datum_zh(crs_name)) from None
    stage = _Stages(progress)
    lang = settings.lang
    notes: list[str] = []   # in the analysis language: they are shown to people
    prof = load_profile(profile)
    settings = settings.with_(complete=_complete_ids(prof, complete, settings.complete))
    # the searches reach as far as the profile's thresholds and scores need (a 60-minute
    # category is scored up to 120): the result keeps the horizon it was measured with
    settings = settings.with_(max_minutes=search_minutes(prof, settings))
    with stage("read"):
        if source is None:

            source = embedded_sample()
        # the boundary first: with the streets' bounds it decides the CRS and the clip, which
        # the streets child then finds by itself (it inherits these) without waiting for the
        # features; a bad boundary file fails before the OSM file is read
        communities, area_wgs = _communities(boundary, boundary_name, boundary_crs)
        study_area = functools.partial(_streets_area, settings, communities, area_wgs, boundary, source)
        # a .bz2 decompressed once, before the fork: every pass of both processes reads the copy
        plain_copy(source)
        # None: one process reads both; else a child reads the streets, with these functions
        split = splitread.start(source, settings, (read_osm, residential_streets, build_network, study_area))
        if split is None:
            data = source if isinstance(source, OSMData) else read_osm(source)
        else:
            features = read_osm(source, layers=("features",), nodes=split.nodes)   # the child reads the feature nodes
            split.ask(features.features)     # the network's pedestrian areas (the child clips them)
            bounds, date, meta = split.streets()
            data = combine(OSMData(features.streets, features.features, features.source, date, meta), features)
            del features

    notes.extend(source_notes(data.meta, lang))

    with stage("study area"):
        if split is None:
            bounds = data.streets.total_bounds
        crs, communities, area, keep_wgs = _study_area(settings, bounds, communities, area_wgs, boundary,
                                                       data.source)
        if communities is not None:
            notes.extend(boundary_notes(communities, bounds, crs, data.source, lang))
        if keep_wgs is not None:
            data = data.clip(keep_wgs)
        if split is not None:
            split.crs = crs
        prep = stage.beside(MapPrep(data.features, crs)) \
            if prepare_map and len(data.features) <= MAP_PREP_FEATURES * settings.map_max_points \
            and _core_to_spare(split) else None

    net = home_streets = None
    if split is None:
        with stage("network"):
            # projected once: for the network and for the homes' residential-street evidence;
            # the WGS-84 segments (nothing later reads them) go as they are projected
            held = [data.streets]
            data = dataclasses.replace(data, streets=data.streets.iloc[:0].copy())   # no view of them
            streets = splitread.project_streets(held, crs)
            home_streets = residential_streets(streets)
            held = [streets]
            del streets    # the projected segments go as soon as their coordinates are read
            net = build_network(held, crs, settings, source=data.source, areas=data.features)
            release_freed_memory()     # the segments' geometries (millions of small blocks)

    with stage("facilities"):

        fac = classify_features(data.features, prof)
        merged = int(fac.attrs.get("duplicates_merged", 0))
        fac["source"] = "osm"
        if facilities_table is not None:

            table = read_poi_table(facilities_table, profile=prof, crs=facilities_crs, lang=lang)
            dropped = table.attrs.get("dropped", [])
            notes.extend(table.attrs.get("notes", []))
            if dropped:
                if lang == "zh":
                    shown = "；".join(f"第 {d['row']} 行：{d.get('reason_zh') or d['reason']}" for d in dropped[:5])
                    more = f"；另有 {len(dropped) - 5} 行" if len(dropped) > 5 else ""
                else:
                    shown = "; ".join(f"row {d['row']}: {d['reason']}" for d in dropped[:5])
                    more = f"; and {len(dropped) - 5} more" if len(dropped) > 5 else ""
                notes.append(label("note.rows_dropped", lang, f=table.attrs["table"], n=len(dropped))
                             + f" ({shown}{more})")
            fac = merge_facilities(fac, table, distance_m=settings.merge_distance_m)
            merged += int(fac.attrs.get("repeated", 0))     # rows the table repeats
            fac[col.DIMENSION] = [prof.dimension_of(c) for c in fac[col.CATEGORY]]
        if merged:
            notes.append(label("note.duplicates", lang, n=merged))
        fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=WGS84).to_crs(crs)
        if col.CAPACITY not in fac:
            fac[col.CAPACITY] = 1.0
        fac = fac.reset_index(drop=True)

    with stage("homes"):
        if split is not None:
            home_streets = split.home_streets()
        homes = find_homes(data.features, crs, settings, streets=home_streets)
        del home_streets
        if area is not None:
            inside = shapely.intersects(homes.geometry.to_numpy(), area)
            homes = homes[inside].reset_index(drop=True)
            homes[col.HOME_ID] = np.arange(len(homes))
        pop_info = estimate_info(homes)
        estimate_total = pop_info["total"]
        if (population_raster is not None or population is not None) and net is None:
            net = split.network()
        # where measured population is matched: the study area, or the street network's hull
        region = area if area is not None or net is None else shapely.convex_hull(shapely.multipoints(
            np.column_stack([net.node_x, net.node_y])))
        if population_raster is not None:
            homes, pop_info = apply_population_raster(homes, population_raster, region)
        if population is not None:
            if isinstance(population, gpd.GeoDataFrame):
                table, name = population, "population table"
            else:
                table, name = read_population_zones(population), str(population)
            if normalize_crs(population_crs) != "wgs84":   # Gaode / Baidu community polygons
                table = frame_to_wgs84(table, population_crs)
            over = pop_info["source"]
            homes, pop_info = apply_population(homes, table, population_column, name, region, clipped=area)
            if population_raster is not None:
                pop_info["over"] = over
        pop_info["estimate_total"] = estimate_total
        if area is not None:
            joined = gpd.sjoin(homes[["geometry"]], communities[[col.COMMUNITY, "geometry"]],
                               predicate="intersects", how="left")
            joined = joined[~joined.index.duplicated()]
            homes[col.COMMUNITY] = joined[col.COMMUNITY].to_numpy()
        notes.extend(population_notes(pop_info, lang))
        if len(homes) == 0 and net is None:
            net = split.network()   # its error (no streets in the study area) comes first, as in one process
        if len(homes) == 0:
            raise InputFileError(data.source, "no homes found: no residential buildings or residential "
                                 "land use in the study area (pass a population file)",
                                 zh="没有找到住宅：研究范围内没有居住建筑或居住用地（请提供人口文件）")

    if net is None:
        with stage("network"):                 # the child's network (built meanwhile)
            net = split.network()

    with stage("snap"):
        home_pts = homes.geometry.to_numpy()
        if prep is not None:          # a hexagon map: no cells, nor the background (see prepare_map)
            prep.then(net, home_pts if len(homes) <= settings.map_max_points else None)
        fac_pts = entry_points(net, fac.geometry.to_numpy())
        both = snap_points(net, np.concatenate([home_pts, fac_pts]), settings.max_snap_m)  # one index
        hs, fs = both.take(np.arange(len(home_pts))), both.take(np.arange(len(home_pts), len(both)))
        del both
        # facilities nowhere near the study area (a POI table of another city, a datum mixed
        # up) are not data about it: left out and said so, so a category with no facility here
        # stays "no data" instead of a measured 0 %
        outside, far_km = _outside_study_area(net, fac_pts, ~fs.reachable, area,
                                              crs, settings)
        if outside.any():
            keep = np.flatnonzero(~outside)
            fac = fac.iloc[keep].reset_index(drop=True)
            fac_pts, fs = fac_pts[keep], fs.take(keep)
            notes.append(_outside_note(int(outside.sum()), far_km, area is not None, settings, lang))
        # an area (a park, a school ground) is entered from every street at its outline
        fs = area_entries(net, fac.geometry.to_numpy(), fs, settings.max_snap_m)
        network_report = _network_report(net, home_pts, hs, fac_pts, fs, settings, notes, lang)
        if "street_nodes_unlocated" in data.meta:     # machine-readable too, not only its note
            network_report[UNLOCATED_KEY] = float(data.meta["street_nodes_unlocated"])
        homes[col.REACHABLE] = hs.reachable
        homes[col.SNAP_LEG_M] = hs.leg
        fac[col.REACHABLE] = fs.reachable
        if (~hs.reachable).any():
            notes.append(label("note.homes_unreachable", lang, n=int((~hs.reachable).sum()),
                               p=float(homes[col.POPULATION].to_numpy(float)[~hs.reachable].sum()),
                               m=settings.max_snap_m))
        if (~fs.reachable).any():
            notes.append(label("note.facilities_unreachable", lang, n=int((~fs.reachable).sum()),
                               m=settings.max_snap_m))

    with stage("engine"):
        engine = AccessEngine(net, hs, homes[col.POPULATION].to_numpy(float), settings)
        cats = prof.categories
        cat_of = fac[col.CATEGORY].to_numpy()
        snaps = [fs.take(np.flatnonzero(cat_of == c.id)) for c in cats]
        caps = [fac[col.CAPACITY].to_numpy(float)[cat_of == c.id] for c in cats]
        sfca_min = [settings.sfca_minutes or c.minutes for c in cats]
        wants = settings.wants   # the opt-in metrics are neither computed nor held unless asked
        if any(map(wants, ("count", "kmean", "decay", "sfca"))):
            metrics = engine.reach(snaps, capacities=caps, sfca_min=sfca_min,
                                   k=settings.k_nearest if wants("kmean") else 0,
                                   with_counts=wants("count"), with_decay=wants("decay"),
                                   with_sfca=wants("sfca"))
            nearest = metrics.nearest
        else:
            metrics, nearest = None, engine.nearest(snaps)
        tiers = settings.thresholds_min if wants("count") else ()
        extra = [(m, f) for m, f in (("kmean", col.kmean), ("decay", col.decay), ("sfca", col.sfca))
                 if wants(m)]
        new = {}
        for i, c in enumerate(cats):
            new[col.time(c.id)] = nearest[i]
        for i, c in enumerate(cats):
            for q, thr in enumerate(tiers):
                new[col.count(c.id, thr)] = metrics.counts[i, q]
        for i, c in enumerate(cats):
            for m, name in extra:
                new[name(c.id)] = getattr(metrics, m)[i]
        in_data = fac[col.CATEGORY].value_counts().to_dict()
        status = data_status(prof, in_data, settings.complete)
        for c in cats:  # no data: counts, decay and supply ratios are unknown, not zero
            if status[c.id] == col.STATUS_NO_DATA:
                for key in [col.count(c.id, thr) for thr in tiers] + [name(c.id) for _, name in extra]:
                    new[key] = np.full(len(homes), np.nan)
        # copy=False: the columns stay views of the engine's arrays; building the frame would
        # otherwise copy ~315 columns × homes into one block (~3 GB at a million-node city)
        homes = pd.concat([homes, pd.DataFrame(new, index=homes.index, copy=False)], axis=1)
        homes = gpd.GeoDataFrame(homes, geometry="geometry", crs=crs)
        # what the searches built and kept (the engine's renumbered network and blocks, the
        # network's forward graph and spatial indexes): no later stage uses them, and the
        # coverage stage and the save (the run's peaks) held them for nothing, ~200 MB at a
        # million walking nodes. Built again when next asked for (the reversed graph stays:
        # a map of points names the nearest facilities on it)
        engine.release_caches()
        net.release_indexes(reverse=False)

    with stage("coverage"):
        homes = home_scores(homes, prof, settings.dimension_cover_share, settings.thresholds_min,
                            status=status)
        counts = fac[fac[col.REACHABLE]].groupby(col.CATEGORY).size().to_dict()
        summary = summarize(homes, prof, counts, group=col.COMMUNITY if communities is not None else None,
                            tiers=settings.thresholds_min, status=status,
                            cover_share=settings.dimension_cover_share)
        if communities is not None:
            absent = absent_communities(summary, communities)
            summary = with_absent_communities(summary, absent)
            if absent:      # those wholly outside the data, on its real extent
                extent = data_extent(net, [projected_bounds(fac, crs), projected_bounds(data.features, crs)])
                notes.extend(absent_notes(absent, communities_off_data(communities, extent), lang))
        # facilities counted inside each unit (as check counts them), the margin's beside
        summary = with_unit_facilities(summary, prof, unit_facility_counts(
            fac[fac[col.REACHABLE]], area, communities))
        notes.extend(status_notes(prof, status, counts, lang))
    # the stages' freed temporaries back to the system (glibc keeps them: ~25 % of the
    # process at the end of a city); a save forks its writer from this process, and a page
    # of freed heap either process reuses is then copied for it
    if prep is not None or (prepare_map and cores() >= 2):
        # timed whether or not the machine left a core for it: the same stages on every run
        with stage("map"):
            if prep is not None:
                prep.join()
    release_freed_memory()
    return Result(homes, fac, summary, prof, settings, net, hs, fs, communities, area,
                  data.source, data.data_date, _in_order(stage.timings), notes, engine,
                  features=data.features, population_info=pop_info,
                  network_report=network_report,
                  # built by the child while this process read the features: the "network"
                  # time is only the wait for it (the CLI says so beside the figure)
                  parallel_stages=("network",) if split is not None and not split.failed else (),
                  _map_prep=prep, place=_place(place, communities))


#: The map is prepared beside the analysis for at most this many times
#: ``settings.map_max_points`` features (80,000 by default). Its first piece, made in the
#: facilities stage, grows with the features and competes with that stage's Python: at the
#: 60-tile city (3.3 M features) it cost the stage 0.9 s and 50 MB for nothing, as its map
#: draws hexagons, whose save waits for the GeoPackage, not the map. The homes were 40-75 % of
#: the features in the shared extracts (3 % in Helsinki's centre), so past this a district's
#: map is hexagons but where homes are that rare (such a map is then made in the save, as
#: without preparation).
MAP_PREP_FEATURES = 4

#: ``LIFECIRCLE_MAP_PREP=0``: never prepare the map beside the analysis; ``=1``: even when the
#: machine looks busy (benchmarks); else where :func:`_core_to_spare` says.
MAP_PREP = os.environ.get("LIFECIRCLE_MAP_PREP", "").strip()


def _core_to_spare(split) -> bool:
    """A core for :class:`MapPrep` beside the analysis: a second core may be used
    (:func:`cores`: 1 in a batch's districts) and none of the cores is taken by another task
    now — this process holds one, the split read's streets child a second while it runs (from
    the kernel's count of runnable tasks, as :func:`lifecircle.splitread.start` decides).
    Beside another busy task the work is only moved, and the analysis's own stages (the engine
    uses every core) wait for it. See :data:`MAP_PREP`."""
    n = cores()
    if n < 2 or MAP_PREP == "0":
        return False
    if MAP_PREP == "1":
        return True
    others = splitread._runnable_others()
    if others is None:
        return True
    return others - (1 if split is not None else 0) <= n - 2


def _in_order(timings: dict) -> dict:
    """The stage timings in :data:`STAGES` order (the split read times "network" last)."""
    return {**{k: timings[k] for k in STAGES if k in timings}, **timings}


def _outside_study_area(net: WalkNetwork, points, unattached, area, crs, settings: Settings):
    """Which of the ``unattached`` points (those farther than ``max_snap_m`` from any street)
    lie outside the study area: beyond ``boundary_margin_m`` of the boundary's ``area``, or
    without a boundary outside the extent of the walking network (the convex hull of its
    nodes). Returns the mask and the geodesic distances (km) of those points from that region
    (NaN where not measurable). Only unattached points are tested: a facility that reaches a
    street is never called outside."""
    out = np.zeros(len(points), bool)
    idx = np.flatnonzero(unattached)
    if len(idx) == 0:
        return out, np.zeros(0)
    pts = points[idx]
    if area is not None:
        region, slack = area, settings.boundary_margin_m
    else:
        region, slack = shapely.convex_hull(shapely.multipoints(
            np.column_stack([net.node_x, net.node_y]))), 0.0
    d = shapely.distance(pts, region)
    far = ~(d <= slack)                     # NaN (a point the CRS cannot hold): outside too
    out[idx[far]] = True
    # how far, on the ellipsoid: a projected distance is off by far more than a few % at 1000 km
    lines = shapely.shortest_line(pts[far], region)
    xy = shapely.get_coordinates(lines)
    km = np.full(int(far.sum()), np.nan)
    if len(xy) == 2 * len(km) and len(km):
        lon, lat = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True).transform(xy[:, 0], xy[:, 1])
        lon, lat = np.asarray(lon), np.asarray(lat)
        ok = np.isfinite(lon[0::2]) & np.isfinite(lat[0::2]) & np.isfinite(lon[1::2]) & np.isfinite(lat[1::2])
        if ok.any():
            _, _, m = pyproj.Geod(ellps="WGS84").inv(lon[0::2][ok], lat[0::2][ok], lon[1::2][ok], lat[1::2][ok])
            km[ok] = np.asarray(m) / 1000.0
    return out, km


def _outside_note(n: int, km: np.ndarray, boundary: bool, settings: Settings, lang: str) -> str:
    """The note on ``n`` facilities outside the study area, ``km`` from it."""
    where = label("note.outside_boundary", lang, m=settings.boundary_margin_m) if boundary \
        else label("note.outside_streets", lang)
    km = km[np.isfinite(km)]
    far = ""
    if len(km):
        lo, hi = (f"{v:,.1f}" if v < 10 else f"{v:,.0f}" for v in (km.min(), km.max()))
        far = label("note.outside_km", lang, d=lo if lo == hi else f"{lo}–{hi}")
    return label("note.facilities_outside", lang, n=n, where=where, far=far)


def _network_report(net: WalkNetwork, home_pts, hs: Snap, fac_pts, fs: Snap,
                    settings: Settings, notes: list, lang: str = "en") -> dict:
    """What pruning the network's small pieces changed, for meta.json and a note."""
    report = dict(net.pruned or {})
    if not report:
        return report
    h_moved, h_lost = fragment_captures(net, home_pts, hs, settings.max_snap_m)
    f_moved, f_lost = fragment_captures(net, fac_pts, fs, settings.max_snap_m)
    report.update(homes_reattached=int(h_moved.sum()), homes_stranded=int(h_lost.sum()),
                  facilities_reattached=int(f_moved.sum()), facilities_stranded=int(f_lost.sum()))
    if report["components_dropped"]:
        km = report["length_dropped_m"] / 1000
        notes.append(label(
            "note.network_pruned", lang, k=report["components_kept"],
            km_kept=report["length_kept_m"] / 1000, d=report["components_dropped"],
            nodes=report["nodes_dropped"], segs=report["segments_dropped"], km=km,
            h=report["homes_reattached"], f=report["facilities_reattached"])
            + (label("note.network_stranded", lang, h=report["homes_stranded"],
                     f=report["facilities_stranded"])
               if report["homes_stranded"] or report["facilities_stranded"] else ""))
    return report
