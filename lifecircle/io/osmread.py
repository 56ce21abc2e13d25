"""One-pass reading of an OSM file (PBF or XML) with pyosmium into lifecircle's raw layers.

libosmium decodes the file once; Python sees only the tagged nodes that may be features and
the ways that may be streets or features (libosmium's key filters drop the others in C++;
the member ways of feature relations among them come through its handler for filtered-out
ways, see :class:`_Dropped`), and keeps per element
only what the later stages read: ids, integer coordinates and libosmium's WKB in flat machine
buffers, and a tag dict shared by every element with the same tags (one per distinct tag
list, its strings shared too: a city's millions of ``building=yes`` hold one dict). The
features' geometry is built while the pass reads on, in one worker thread (GEOS without the
GIL beside the Python pass, see :class:`_Geometry`): feature ways a batch at a time, from
coordinate arrays (WKB read with numpy) with shapely 2's vectorised constructors
(``linestrings``/``linearrings``/``polygons`` with ``indices``); relations, once the pass is
past their member ways, merged, closed into rings and their rings combined for many at once.

The result follows what the pyrosm reader gave (:mod:`lifecircle.io.sources` keeps it for the
embedded sample and as a fallback), element for element:

* streets: every ``highway=*`` way outside pyrosm's "all" exclusions, cut into one segment
  per pair of consecutive nodes that have coordinates;
* features: tagged nodes, ways and relations of four groups read in this order — points of
  interest (:data:`~lifecircle.io.sources.FEATURE_KEYS` …), buildings (ways and relations),
  land use, natural areas — each element once, in the first group it belongs to;
* a closed way is a Polygon when its tags make it an area (the OSM wiki's polygon features,
  as osmnx and pyrosm read them), otherwise a LineString; a relation is a LineString when
  its tags say linear (routes, barriers …), otherwise its member ways are merged into rings
  and combined even-odd (outer/inner by geometry, not by role); polygons are oriented
  exterior counter-clockwise.
"""

from __future__ import annotations

import ctypes
import gc
import os
import queue
import sys
import threading
from array import array
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from lifecircle.core.network import _ranges
from lifecircle.errors import InputFileError
from lifecircle.settings import cores as _cores

#: libosmium's "no coordinate" value (a node the file does not hold)
_UNDEFINED = 2147483647
_PRECISION = 10_000_000

_ALL, _PASS, _BLOCK = 0, 1, 2
#: Closed ways that are areas: the OSM wiki's polygon features (as osmnx and pyrosm use them).
POLYGON_FEATURES = {
    "aeroway": (_BLOCK, frozenset({"taxiway"})),
    "amenity": (_ALL, frozenset()),
    "area": (_ALL, frozenset()),
    "area:highway": (_ALL, frozenset()),
    "barrier": (_PASS, frozenset({"city_wall", "ditch", "hedge", "retaining_wall", "spikes"})),
    "boundary": (_ALL, frozenset()),
    "building": (_ALL, frozenset()),
    "building:part": (_ALL, frozenset()),
    "craft": (_ALL, frozenset()),
    "golf": (_ALL, frozenset()),
    "highway": (_PASS, frozenset({"elevator", "escape", "rest_area", "services"})),
    "historic": (_ALL, frozenset()),
    "indoor": (_ALL, frozenset()),
    "landuse": (_ALL, frozenset()),
    "leisure": (_ALL, frozenset()),
    "man_made": (_BLOCK, frozenset({"cutline", "embankment", "pipeline"})),
    "military": (_ALL, frozenset()),
    "natural": (_BLOCK, frozenset({"arete", "cliff", "coastline", "ridge", "tree_row"})),
    "office": (_ALL, frozenset()),
    "place": (_ALL, frozenset()),
    "power": (_PASS, frozenset({"generator", "plant", "substation", "transformer"})),
    "public_transport": (_ALL, frozenset()),
    "railway": (_PASS, frozenset({"platform", "roundhouse", "station", "turntable"})),
    "ruins": (_ALL, frozenset()),
    "shop": (_ALL, frozenset()),
    "tourism": (_ALL, frozenset()),
    "waterway": (_PASS, frozenset({"boatyard", "dam", "dock", "riverbank"})),
}

#: highway values that are never part of a street network (pyrosm's and osmnx's "all")
_NOT_NETWORK = frozenset({"abandoned", "construction", "no", "planned", "platform", "proposed",
                          "raceway", "razed", "rest_area", "services"})
#: the tags a street keeps (what the walk rules and the street layer read)
STREET_TAGS = ("foot", "access", "service", "area", "oneway:foot", "name", "name:zh")


def is_area(tags: dict) -> bool:
    """Whether a closed way with ``tags`` is an area (polygon), not a line."""
    if tags.get("area") == "no":
        return False
    for key, value in tags.items():
        feature = POLYGON_FEATURES.get(key)
        if feature is None:
            continue
        rule, values = feature
        if rule == _ALL or (rule == _PASS and value in values) or (rule == _BLOCK and value not in values):
            return True
    return False


def _multi(value: str | None, options) -> bool:
    """``value`` is one of ``options``, also as one of several ``;``-separated values."""
    if value is None:
        return False
    if value in options:
        return True
    return ";" in value and any(part.strip() in options for part in value.split(";"))


def _relation_linear(tags: dict) -> bool:
    """Whether a relation's geometry is a line (routes, barriers …) rather than an area."""
    linear = False
    for key in ("barrier", "route", "railway", "highway", "waterway"):
        if key not in tags:
            continue
        value = tags[key]
        if key == "railway":
            if value not in ("platform", "station", "turntable", "roundhouse", "traverser", "wash"):
                linear = True
                break
        elif key == "highway":
            if value == "pedestrian":
                if "area" in tags:
                    if tags["area"] != "yes":
                        linear = True
                    break
            elif value not in ("platform", "rest_area", "services"):
                linear = True
                break
        elif key == "waterway":
            if value not in ("riverbank", "dock", "boatyard", "dam", "fuel"):
                linear = True
                break
        else:
            linear = True
            break
    if tags.get("area") == "no":
        linear = True
    if tags.get("type") in ("multipolygon", "boundary"):
        linear = False
    return linear


class _Groups:
    """The feature groups (0 poi, 1 building, 2 land use, 3 natural) that select given tags."""

    def __init__(self, feature_keys, feature_highways, feature_places, natural_areas):
        self.keys = tuple(feature_keys)
        self.highways = frozenset(feature_highways)
        self.places = frozenset(feature_places)
        self.natural = frozenset(natural_areas)
        self.keyset = frozenset(self.keys)

    def mask(self, tags, *, node: bool) -> int:
        """Bit g set when the read of group g selects an element with ``tags``."""
        m = 0
        if not self.keyset.isdisjoint(tags):
            m = 1
        elif tags.get("highway") in self.highways or tags.get("place") in self.places:
            m = 1
        if not node and "building" in tags:
            m |= 2
        if "landuse" in tags:
            m |= 4
        if tags.get("natural") in self.natural:
            m |= 8
        return m

    def filter_keys(self) -> tuple[str, ...]:
        return self.keys + ("highway", "place", "building", "landuse", "natural")

    def node_keys(self) -> tuple[str, ...]:
        """Keys one of which every node of the groups 0 (poi) and 2 (land use) has. A node
        whose first group is 3 (natural) may have none of them: it is read in the pass of
        :meth:`natural_tags`, so that the main pass never sees the many ``natural=tree``."""
        return self.keys + ("highway", "place", "landuse")

    def natural_tags(self) -> tuple[tuple[str, str], ...]:
        """The (key, value) pairs one of which every element of group 3 (natural) has."""
        return tuple(("natural", value) for value in sorted(self.natural))


class _Collected:
    """What the pass keeps: flat node ids/coordinates plus per-element records."""

    def __init__(self):
        # streets: per way id, length and the street tags; node ids and coordinates flat, as
        # machine integers (8 and 4 bytes each, not a Python int object per node)
        self.s_id = array("q")
        self.s_len = array("q")
        self.s_tags: list[tuple] = []
        self.s_refs = array("q")
        self.s_x = array("i")
        self.s_y = array("i")
        # feature nodes
        self.n_id = array("q")
        self.n_x = array("i")
        self.n_y = array("i")
        self.n_tags: list[dict] = []
        self.n_group = array("b")
        self.n_stamp = 0.0   # their newest timestamp (also in max_stamp when features are read)
        # feature ways: ids, tags and groups as read; their geometry is built a batch at a
        # time by ``geometry`` (see :class:`_Geometry`), except for the ways cut by the
        # extract: per way index, their node coordinates and whether they close an area
        self.w_id = array("q")
        self.w_tags: list[dict] = []
        self.w_group = array("b")
        self.w_cut: dict[int, tuple[list[int], list[int], bool]] = {}
        self.geometry: _Geometry | None = None
        # member ways of feature relations: id -> WKB or (xs, ys)
        self.members: dict[int, object] = {}
        self.n_highway = 0
        self.max_stamp = 0.0

    def drop_streets(self) -> None:
        """Free the street records once the street layer is built."""
        self.s_id, self.s_len, self.s_refs = array("q"), array("q"), array("q")
        self.s_x, self.s_y, self.s_tags = array("i"), array("i"), []


@contextmanager
def gc_paused():
    """Python's cycle collector off while the reader makes its millions of small acyclic
    objects (tag dicts, tuples, geometries): it would scan them again and again (~10 % of
    the read). Also a decorator."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def release_freed_memory() -> None:
    """Give the memory that reading freed back to the system.

    Reading makes and drops millions of small objects (WKB, tag lists, coordinate arrays below
    glibc's mmap threshold) and pandas' Arrow string columns go through Arrow's own allocator;
    both keep freed pages in the process, so a read would hold ~25 % more than its layers use.
    ``malloc_trim`` (glibc; elsewhere nothing) and Arrow's ``release_unused`` hand them back."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)
    arrow = sys.modules.get("pyarrow")   # only when pandas already uses it: never imported here
    if arrow is not None:
        try:
            arrow.default_memory_pool().release_unused()
        except Exception:  # an Arrow build without it: nothing to give back
            pass


_malloc_trim = None


def read_layers(path: str, groups: _Groups, *, streets: bool = True, features: bool = True,
                nodes: bool | None = None, stamps: bool = False, overlap: bool | None = None,
                relations=None):
    """One pass over ``path`` (plus one over its relations: first, or elsewhere, see
    ``relations``): the collected records and the feature relations, see
    :func:`build_streets` and :func:`build_features`.
    ``nodes``: read the feature nodes of the pass (groups poi and land use; default: with
    ``features``). A features read without them lets no node reach Python but the nodes
    whose first group is natural (read with the relations, or with ``relations`` by the pass
    itself): they are read elsewhere and added with :func:`add_nodes` (see :func:`take_nodes`).
    ``stamps``: track the newest element timestamp (for files without a header date).
    ``overlap``: build the feature geometry in a worker thread while the pass reads on
    (default: when the process may run on more than one core, unless
    ``LIFECIRCLE_READ_THREAD=0``), see :class:`_Geometry`.
    ``relations``: for a features pass without the feature nodes, a function returning the
    feature relations read elsewhere (:func:`read_relations`, e.g. by another process while
    this pass decodes the nodes), or None when they were not (then read here, at that
    point): called when the pass reaches its first way (the first point that needs them), or
    at its end; the pass then reads the nodes whose first group is natural itself (a tag
    filter in C++ lets only them through). Without it the relations and those nodes are read
    first, in a pass of their own."""
    if overlap is None:
        overlap = _cores() > 1 and os.environ.get("LIFECIRCLE_READ_THREAD") != "0"
    nodes = features if nodes is None else nodes
    with gc_paused():
        return _read_layers(path, groups, streets=streets, features=features, nodes=nodes,
                            stamps=stamps, overlap=overlap, relations=None if nodes else relations)


def osm_file(path):
    """``path`` for libosmium, its format named from the file name as
    :func:`lifecircle.io.sources.read_osm` reads it, whatever the case: libosmium's own
    detection reads the suffix case-sensitively (a PBF named ``CITY.OSM.PBF`` was "Could not
    detect file format"): ``.pbf`` is PBF, ``.bz2`` bzip2-compressed XML, any other name
    (``.osm``, ``.xml``) XML. A ``.pbf`` that does not start as a PBF is refused here
    (:func:`_pbf_start`)."""
    import osmium

    name = os.fspath(path)
    low = name.lower()
    fmt = "pbf" if low.endswith(".pbf") else "osm.bz2" if low.endswith(".bz2") else "osm"
    if fmt == "pbf" and not _pbf_start(name):
        raise InputFileError(path, "not a valid OSM PBF file (it does not start with an OSM PBF header)",
                             zh="不是有效的 OSM PBF 文件（文件开头不是 OSM PBF 文件头）")
    return osmium.io.File(name, fmt)


def _pbf_start(path) -> bool:
    """Whether ``path`` starts as an OSM PBF file does: a 4-byte length (under the 64 KB the
    format allows) and a blob header of that length naming an ``OSMHeader`` blob. Checked
    before libosmium opens the file: its reader, given another file (gzip named .pbf), fails
    in its constructor and keeps the file open (one descriptor lost each time, in a batch
    worker or a notebook that lives on)."""
    with open(path, "rb") as f:
        head = f.read(4)
        size = int.from_bytes(head, "big") if len(head) == 4 else 0
        return 0 < size < 64 * 1024 and b"OSMHeader" in f.read(size)


def read_relations(path: str, groups: _Groups) -> list[dict]:
    """The feature relations, read on their own (libosmium decodes only the relations) for a
    features pass elsewhere (:func:`read_layers`'s ``relations``). Pickled as one object,
    the tag dicts stay shared."""
    with gc_paused():
        return _read_relations(path, groups)


def _adopt_relations(relations: list[dict], sets: _TagSets) -> list[dict]:
    """The relations of :func:`read_relations` (read elsewhere), their tag dicts swapped for
    the pass's shared ones (the same tags)."""
    for rel in relations:
        rel["tags"] = sets.tags(tuple(rel["tags"].items()))
    return relations


def take_nodes(col: _Collected) -> tuple:
    """The feature nodes a pass with ``nodes`` read (ids, coordinates, tags, groups, newest
    timestamp), to add to another pass's records with :func:`add_nodes`. Pickled as one
    object, the tag dicts stay shared."""
    return col.n_id, col.n_x, col.n_y, col.n_tags, col.n_group, col.n_stamp


def add_nodes(col: _Collected, nodes: tuple) -> None:
    """Add the feature nodes of :func:`take_nodes` to the records of a features pass read
    without them: after its natural nodes, which changes no order (:func:`build_features`
    orders by group, and no node of these groups is natural first)."""
    n_id, n_x, n_y, n_tags, n_group, stamp = nodes
    col.n_id.extend(n_id)
    col.n_x.extend(n_x)
    col.n_y.extend(n_y)
    col.n_tags.extend(n_tags)
    col.n_group.extend(n_group)
    col.max_stamp = max(col.max_stamp, stamp)


def _tag_list(obj) -> tuple:
    """An element's tags as a tuple of (key, value) pairs, read through libosmium's own
    iterator (``dict(obj.tags)`` goes through a Python iterator object per element: 3-4x slower)."""
    try:
        data = obj._pyosmium_data
        n = data.tags_size()
        return tuple(map(data.tags_next, repeat(data.tags_begin(), n))) if n else ()
    except (AttributeError, TypeError):  # another pyosmium layout: the public iterator
        return tuple(obj.tags)


def _members(rel):
    """A relation's members, read through libosmium's own iterator (pyosmium's public one
    adds a Python iterator object and frame per member: ~3x slower, a third of the relation
    pass at the tiled city)."""
    try:
        data = rel._pyosmium_data
        return map(data.members_next, repeat(data.members_begin(), data.members_size()))
    except (AttributeError, TypeError):  # another pyosmium layout: the public iterator
        return rel.members


class _TagSets:
    """One shared, read-only tag dict per distinct tag list, its strings shared by every dict.

    OSM repeats tag lists massively (``building=yes`` alone on most buildings) and values even
    more (``yes``, ``residential``): a fresh dict of fresh strings per element was most of
    what the read held. What the pass derives from the tags (street or not, feature groups) is
    computed once per distinct list too. The lists seen are kept as keys while the pass runs;
    past :attr:`LIMIT` distinct lists (a file of mostly unique tags) they are forgotten and
    sharing starts again, so the keys never cost more than a bounded amount."""

    LIMIT = 400_000

    def __init__(self, groups: _Groups, *, streets: bool, features: bool):
        self.groups, self.streets, self.features = groups, streets, features
        self.strings: dict[str, str] = {}
        self.dicts: dict[tuple, dict] = {}
        self.ways: dict[tuple, tuple] = {}
        self.nodes: dict[tuple, tuple] = {}

    def tags(self, key: tuple) -> dict:
        tags = self.dicts.get(key)
        if tags is None:
            if len(self.dicts) >= self.LIMIT:
                self.dicts.clear()
                self.ways.clear()
                self.nodes.clear()
            one = self.strings.setdefault
            tags = self.dicts[key] = {one(k, k): one(v, v) for k, v in key}
        return tags

    def way(self, key: tuple) -> tuple:
        """(tags, the street record or None, feature group mask, first group, whether the way
        is an area when closed) of a way's tag list."""
        tags = self.tags(key)
        hw = tags.get("highway")
        street = None
        if self.streets and hw is not None and not _multi(hw, _NOT_NETWORK) \
                and not _multi(tags.get("area"), ("yes",)):
            street = (hw, *map(tags.get, STREET_TAGS))
        mask = self.groups.mask(tags, node=False) if self.features and tags else 0
        got = self.ways[key] = (tags, street, mask, (mask & -mask).bit_length() - 1,
                                bool(mask) and is_area(tags))
        return got

    def node(self, key: tuple) -> tuple:
        """(tags, feature group mask) of a node's tag list."""
        tags = self.tags(key)
        got = self.nodes[key] = (tags, self.groups.mask(tags, node=True))
        return got


def _pass_processor(path: str, groups: _Groups, *, streets: bool, features: bool, nodes: bool,
                    natural: bool = False):
    """The main pass's FileProcessor: what libosmium lets through to Python (see
    :func:`_read_layers`; the handler for the dropped ways is added there)."""
    import osmium

    if not (streets or features):   # the feature nodes alone
        return osmium.FileProcessor(osm_file(path), osmium.osm.NODE).with_filter(
            osmium.filter.KeyFilter(*groups.node_keys()))
    fp = osmium.FileProcessor(osm_file(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    if nodes:
        fp = fp.with_filter(osmium.filter.KeyFilter(*groups.node_keys()).enable_for(osmium.osm.NODE))
    elif natural and groups.natural:   # only the nodes whose first group may be natural (a handful)
        fp = fp.with_filter(osmium.filter.TagFilter(*groups.natural_tags()).enable_for(osmium.osm.NODE))
    else:   # no node reaches Python (crossings, stops … have highway=* too)
        fp = fp.with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
    if features:
        # the ways with none of the keys the pass reads never reach Python; those of them it
        # still needs come through ``dropped`` (called by libosmium in file order, within the
        # pass): member ways of feature relations without such a key (untagged rings) and,
        # with no streets read, the feature ways whose only such key is ``highway``
        way_keys = groups.filter_keys() if streets else \
            tuple(k for k in groups.filter_keys() if k != "highway")
        fp = fp.with_filter(osmium.filter.KeyFilter(*way_keys).enable_for(osmium.osm.WAY))
    else:
        fp = fp.with_filter(osmium.filter.KeyFilter("highway").enable_for(osmium.osm.WAY))
    return fp


def _read_layers(path: str, groups: _Groups, *, streets: bool, features: bool, nodes: bool,
                 stamps: bool, overlap: bool = False, relations=None):
    import osmium

    sets = _TagSets(groups, streets=streets, features=features)
    col = _Collected()
    given, relations = relations, []
    geometry = None
    # what the pass's way filter drops and the pass still reads (its ``read``: ``way`` below;
    # its ``held``: ``held_get``)
    dropped = _Dropped(None, None, None if streets else groups.highways)

    def take_relations(wid: int = -1, default: int = 0) -> int:
        """The relations, as read elsewhere (``given``) or here (without ``given``, with the
        nodes whose first group is natural: the pass lets through only nodes with a key of
        the other groups, see _Groups.node_keys); the pass's way reading set up for them. It
        is ``held_get`` until then: with ``given``, the pass takes them when it reaches its
        first way (read elsewhere while it decoded the nodes), and ``held_get`` is replaced."""
        nonlocal relations, held_get, geometry
        relations, held = _relations_held(path, groups, sets, col, stamps, given)
        held_get = dropped.held = held.get
        geometry = col.geometry = _Geometry(relations, members, threaded=overlap)
        return held_get(wid, default)

    held_get = dropped.held = take_relations if features else {}.get
    members = col.members
    if features and given is None:
        take_relations()
    fp = _pass_processor(path, groups, streets=streets, features=features, nodes=nodes,
                         natural=given is not None)
    node_group = _node_groups(natural=given is not None)
    way_get, node_get = sets.ways.get, sets.nodes.get
    wkb_of = osmium.geom.WKBFactory().create_linestring
    fromhex = bytes.fromhex
    all_nodes = osmium.geom.use_nodes.ALL
    s_refs, s_x, s_y = col.s_refs.extend, col.s_x.extend, col.s_y.extend
    ref_of, location_of = attrgetter("ref"), attrgetter("location")
    x_of, y_of = attrgetter("x"), attrgetter("y")
    n_id, n_x, n_y, n_tags, n_group = (col.n_id.append, col.n_x.append, col.n_y.append,
                                       col.n_tags.append, col.n_group.append)
    w_id, w_tags, w_group = col.w_id.append, col.w_tags.append, col.w_group.append
    # the feature ways' WKB as hex, and whether each closes an area, handed to the geometry
    # builder a batch at a time; member ways read below ``upto`` were due before now
    batch: list[str] = []
    rings: list[bool] = []
    batch_add, ring_add = batch.append, rings.append
    upto = -(1 << 63)
    late: list[int] = []
    node_type = osmium.osm.Node
    newest = _NO_STAMP   # the newest element timestamp (a datetime), when ``stamps``
    node_newest = _NO_STAMP   # the same of the feature nodes

    def way(obj) -> None:
        """One way of the pass (from the loop, or from ``dropped``)."""
        nonlocal batch, rings, batch_add, ring_add, upto, newest
        data = obj._pyosmium_data
        wid = data.id()
        held = held_get(wid, 0)
        key = _tag_list(obj)
        tags, street, mask, group, area = way_get(key) or sets.way(key)
        if held:
            mask &= ~held
            group = (mask & -mask).bit_length() - 1
        elif not (street or mask):
            return
        if street:
            node_list = data.nodes()
            n_nodes = node_list.size(data)
            if n_nodes == 0:
                return
            col.n_highway += 1
            col.s_id.append(wid)
            col.s_len.append(n_nodes)
            col.s_tags.append(street)
            # the node references through libosmium's list directly (pyosmium's public
            # iterator adds two Python frames per node)
            refs = list(map(node_list.get, repeat(data, n_nodes), range(n_nodes)))
            s_refs(map(ref_of, refs))
            locs = list(map(location_of, refs))
            s_x(map(x_of, locs))
            s_y(map(y_of, locs))
            if stamps and not mask:
                newest = max(newest, data.timestamp())
            if not (mask or held):
                return
        try:
            wkb = wkb_of(obj, use_nodes=all_nodes)
        except Exception:  # a node without location, or a single-node way
            nodes = obj.nodes
            if len(nodes) == 0:
                return
            wkb = ([n.x for n in nodes], [n.y for n in nodes])
        if held:
            members[wid] = wkb if type(wkb) is tuple else fromhex(wkb)
            if wid < upto:   # after relations it belongs to were built: built again
                late.append(wid)
        if mask:
            if stamps:
                newest = max(newest, data.timestamp())
            if type(wkb) is tuple:
                col.w_cut[len(col.w_id)] = (*wkb, area and data.is_closed())
            else:
                batch_add(wkb)
                ring_add(area and data.is_closed())
            w_id(wid)
            w_tags(tags)
            w_group(group)
            if len(batch) == _BATCH:
                # the highest boundary yet: in a file not sorted by id it can go down
                upto = max(upto, geometry.ways(batch, rings, wid))
                batch, rings = [], []
                batch_add, ring_add = batch.append, rings.append

    if features:
        dropped.read = way
        fp = fp.handler_for_filtered(dropped)
    try:
        for obj in fp:
            if type(obj) is not node_type:
                way(obj)
                continue
            data = obj._pyosmium_data
            key = _tag_list(obj)
            tags, mask = node_get(key) or sets.node(key)
            group = node_group[mask]
            if group < 0:   # no group, or not read here (see _node_groups)
                continue
            loc = data.location()
            if not loc.valid():
                continue
            n_id(data.id())
            n_x(loc.x)
            n_y(loc.y)
            n_tags(tags)
            n_group(group)
            if stamps:
                node_newest = max(node_newest, data.timestamp())
        if features:
            held_get(-1, 0)   # the relations taken, when no way did
            geometry.ways(batch, rings, None)
            geometry.finish(late)
    except BaseException:
        if geometry is not None:
            geometry.abandon()
        raise
    if node_newest is not _NO_STAMP:
        col.n_stamp = node_newest.timestamp()
        if features:
            newest = max(newest, node_newest)
    if newest is not _NO_STAMP:
        col.max_stamp = max(col.max_stamp, newest.timestamp())
    return col, relations


def _node_groups(*, natural: bool) -> tuple[int, ...]:
    """Per feature group mask (:meth:`_Groups.mask`), the group a node of the pass is read in,
    -1 for none: poi or land use (the pass's node filter lets through the nodes with a key of
    these groups, see :meth:`_Groups.node_keys`); with ``natural``, natural and only when
    that is its only group (the filter lets through those with a natural value of the group,
    see :meth:`_Groups.natural_tags`; the others are read with the poi and land-use nodes)."""
    if natural:
        return tuple(3 if m == 8 else -1 for m in range(16))
    return tuple(0 if m & 1 else 2 if m & 4 else -1 for m in range(16))


def _relations_held(path: str, groups: _Groups, sets: _TagSets, col: _Collected, stamps: bool,
                    given) -> tuple[list[dict], dict[int, int]]:
    """The feature relations as read elsewhere (``given()``, see :func:`read_layers`) or,
    when they were not, here (without ``given``, with the nodes whose first group is natural,
    added to ``col``); and the member ways of the relations each group selects (way id -> the
    groups' bits): that group shows them through the relation, not on their own (pyrosm's
    rule; an inner ring that is itself a pitch is read as a pitch only when no relation of
    its group holds it)."""
    if given is None:   # read first, with the nodes whose first group is natural
        relations = _read_relations(path, groups, sets, col, stamps)
    else:               # the pass reads those nodes
        got = given()
        relations = _read_relations(path, groups, sets) if got is None else _adopt_relations(got, sets)
    held: dict[int, int] = {}
    for rel in relations:
        for wid in rel["members"]:
            held[wid] = held.get(wid, 0) | rel["mask"]
    return relations, held


class _Dropped:
    """What the pass's way filter drops (libosmium calls :meth:`way` for each, in file order,
    inside the pass; only ways: there is no ``node`` method) and the pass still reads: the
    member ways of feature relations (``held``), and with ``highways`` (no streets read) the
    ways whose ``highway`` value is one of them (their only key of the groups: a feature). The
    way is read by the pass's own ``read``."""

    __slots__ = ("read", "held", "highways")

    def __init__(self, read, held, highways):
        self.read, self.held, self.highways = read, held, highways

    def way(self, obj) -> None:
        data = obj._pyosmium_data
        if self.held(data.id(), 0) or (self.highways is not None and
                                       data.tags_get_value_by_key("highway", None) in self.highways):
            self.read(obj)


#: below every element's timestamp (libosmium's are UTC datetimes)
_NO_STAMP = datetime.min.replace(tzinfo=UTC)

#: feature ways whose geometry is built at once (see :class:`_Geometry`)
_BATCH = 4096
#: relations left at the end of the pass built at once
_REL_CHUNK = 1024


class _Geometry:
    """The feature ways' and relations' geometry, built while the pass reads on.

    The pass hands over the feature ways a batch at a time (libosmium's WKB); a relation is
    built once the pass has gone past its highest member way id (files hold ways by
    ascending id: a member read after that is noted late, and its relations are built again at
    the end), the others at the end. With ``threaded``, one worker thread does the work, in
    the order handed over (once the pass is over, the calling thread takes what is still
    queued too, see :meth:`result`): GEOS (building, validity, symmetric differences, orientation) runs
    there without the GIL while the pass, which is Python, goes on (at the normal priority:
    a lower one starves it on a busy machine, and the reader then waits for it, or for the
    GIL it holds, at the end). Without, every batch is built as it comes and the relations
    all at the end, in the calling thread. Either way each way's and relation's geometry is
    the one built from all at once (every step is per geometry), oriented and valid."""

    def __init__(self, relations: list[dict], members: dict, *, threaded: bool):
        self.relations, self.members, self.threaded = relations, members, threaded
        self.way_parts: list[np.ndarray | None] = []   # per batch, in the order handed over
        self.rel_geom: list = [None] * len(relations)
        # per relation, the hand-over of its geometry: a relation built again (a late member)
        # keeps the later build, whichever thread ends first (see :meth:`result`)
        self.rel_seq = np.zeros(len(relations), dtype=np.int64)
        self.seq = 0
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        top = np.fromiter((rel["members"][-1] for rel in relations), dtype=np.int64,
                          count=len(relations))   # members are sorted
        self.order = np.argsort(top, kind="stable")
        self.top = top[self.order]
        self.done = 0   # relations handed over: self.order[:done]
        self.thread = None
        if threaded:
            self.queue: queue.SimpleQueue = queue.SimpleQueue()
            self.thread = threading.Thread(target=self._work, name="lifecircle-geometry", daemon=True)
            self.thread.start()

    def ways(self, batch: list[str], rings: list[bool], wid: int | None) -> int:
        """Hand over a batch of feature ways (their WKB hex, whether each closes an area),
        read up to way ``wid``, and the relations whose members all come before ``wid``;
        returns the way id below which members are due."""
        if batch:
            self.way_parts.append(None)
            self._submit(self._ways, len(self.way_parts) - 1, batch, rings)
        if not self.threaded or wid is None:
            return -(1 << 63)
        k = int(np.searchsorted(self.top, wid, side="left"))
        if k > self.done:
            self._submit_relations(self.order[self.done:k])
            self.done = k
        return wid

    def finish(self, late: list[int]) -> None:
        """The pass is over: hand over the relations left, and those built before a member
        (``late``) was read."""
        rest = self.order[self.done:]
        if late:
            late = set(late)
            again = [r for r in self.order[:self.done].tolist()
                     if not late.isdisjoint(self.relations[r]["members"])]
            rest = np.concatenate([np.asarray(again, dtype=np.int64), rest])
        self.done = len(self.order)
        for start in range(0, len(rest), _REL_CHUNK):   # shared by two threads in result()
            self._submit_relations(rest[start:start + _REL_CHUNK])
        if self.threaded:
            self.queue.put(None)

    def abandon(self) -> None:
        """The pass failed: stop the worker (what it was handed is dropped)."""
        if self.thread is not None:
            self.error = self.error or RuntimeError("abandoned")
            self.queue.put(None)
            self.thread.join()

    def result(self) -> tuple[np.ndarray, list]:
        """The way geometries of the batches in order, and one per relation.

        With a worker, the calling thread (its pass over) takes the tasks still queued too:
        GEOS runs in both without the GIL, so what the worker has not caught up with (6.6 s
        at a million walking nodes, with the other core idle) is built on two cores."""
        if self.thread is not None:
            self._run_tasks(self.queue.get_nowait)
            self.thread.join()
        if self.error is not None:
            raise self.error
        parts = self.way_parts
        return (np.concatenate(parts) if parts else np.empty(0, dtype=object)), self.rel_geom

    def _submit(self, fn, *args) -> None:
        if self.threaded:
            self.queue.put((fn, args))
        else:
            fn(*args)

    def _submit_relations(self, which: np.ndarray) -> None:
        self.seq += 1
        self._submit(self._relations, which, self.seq)

    def _work(self) -> None:
        self._run_tasks(self.queue.get)

    def _run_tasks(self, get) -> None:
        """Run the queued tasks until the end mark (put back for the other thread) or, with
        ``get_nowait``, an empty queue; an error is kept for :meth:`result` to raise."""
        while True:
            try:
                task = get()
            except queue.Empty:
                return
            if task is None:
                self.queue.put(None)
                return
            if self.error is not None:
                continue
            try:
                task[0](*task[1])
            except BaseException as exc:   # raised in the reading thread by result()
                self.error = self.error or exc

    def _ways(self, index: int, batch: list[str], rings: list[bool]) -> None:
        raw = bytes.fromhex("".join(batch))
        size = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch)) >> 1
        xy, lengths = _wkb_buffer(raw, size)
        del raw
        self.way_parts[index] = _way_shapes(xy, lengths, None, np.asarray(rings, dtype=bool))

    def _relations(self, which: np.ndarray, seq: int = 0) -> None:
        rels = [self.relations[r] for r in which.tolist()]
        get = self.members.get
        got, ids, raw = {}, [], []
        for wid in {wid for rel in rels for wid in rel["members"]}:
            g = get(wid)
            if g is None:
                continue
            if isinstance(g, tuple):
                got[wid] = g
            else:
                ids.append(wid)
                raw.append(g)
        if ids:   # member ways from libosmium's WKB in one call, not one per member
            m_xy, m_len = _wkb_linestrings(raw)
            got.update(zip(ids, shapely.linestrings(m_xy, indices=np.repeat(np.arange(len(ids)), m_len))))
        geoms = np.asarray(_relation_geometries(rels, got) + [None], dtype=object)[:-1]
        _orient(geoms)
        _valid(geoms)
        out, seen = self.rel_geom, self.rel_seq
        with self.lock:
            for r, g in zip(which.tolist(), geoms):
                if seen[r] <= seq:
                    out[r] = g
                    seen[r] = seq


def _orient(geoms: np.ndarray) -> None:
    """Polygons (also in multipolygons and collections) oriented exterior counter-clockwise,
    in place."""
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6, 7))
    if polygonal.any():
        geoms[polygonal] = shapely.orient_polygons(geoms[polygonal], exterior_cw=False)


def _valid(geoms: np.ndarray) -> np.ndarray:
    """``make_valid`` of the invalid ones (after orientation), in place: what the features
    frame did to every feature (self-touching rings are common in OSM, a way's nodes can all
    be at one place; later overlays need valid input)."""
    invalid = ~(shapely.is_valid(geoms) | shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


def _read_relations(path: str, groups: _Groups, sets: _TagSets | None = None,
                    col: _Collected | None = None, stamps: bool = False) -> list[dict]:
    """The feature relations; with ``col``, also the nodes whose first group is natural,
    appended to ``col`` in file order (a node filter in C++ lets only ``natural=`` values of
    that group through, so reading them here costs little more than the relations)."""
    import osmium

    out = []
    relation_filter = osmium.filter.KeyFilter(*groups.filter_keys())
    natural = groups.natural_tags() if col is not None else ()
    if natural:
        fp = osmium.FileProcessor(osm_file(path), osmium.osm.NODE | osmium.osm.RELATION).with_filter(
            osmium.filter.TagFilter(*natural).enable_for(osmium.osm.NODE)).with_filter(
            relation_filter.enable_for(osmium.osm.RELATION))
    else:
        fp = osmium.FileProcessor(osm_file(path), osmium.osm.RELATION).with_filter(relation_filter)
    sets = sets or _TagSets(groups, streets=False, features=True)
    node_type = osmium.osm.Node
    for rel in fp:
        if type(rel) is node_type:
            key = _tag_list(rel)
            tags, mask = sets.nodes.get(key) or sets.node(key)
            loc = rel.location
            if mask != 8 or not loc.valid():   # natural only: the other groups' nodes are read in the main pass
                continue
            col.n_id.append(rel.id)
            col.n_x.append(loc.x)
            col.n_y.append(loc.y)
            col.n_tags.append(tags)
            col.n_group.append(3)
            if stamps:
                col.max_stamp = max(col.max_stamp, rel.timestamp.timestamp())
            continue
        tags = sets.tags(_tag_list(rel))
        mask = groups.mask(tags, node=False)
        if not mask:
            continue
        members = sorted({m.ref for m in _members(rel) if m.type == "w"})
        if not members:
            continue
        out.append({"id": rel.id, "tags": tags, "mask": mask,
                    "group": (mask & -mask).bit_length() - 1, "members": members})
    return out


# --------------------------------------------------------------------------------------------
# geometry from the collected arrays


def _coords(xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat arrays (degrees) and a validity mask from libosmium integer coordinates."""
    x = np.asarray(xs, dtype=np.int64)
    y = np.asarray(ys, dtype=np.int64)
    valid = (x != _UNDEFINED) & (y != _UNDEFINED)
    lon = x / _PRECISION
    lat = y / _PRECISION
    valid &= (lon <= 180.0) & (lon >= -180.0) & (lat <= 90.0) & (lat >= -90.0)
    return lon, lat, valid


def build_streets(col: _Collected, keep_way: np.ndarray | None = None):
    """Segment arrays of the collected streets: dict of u, v, osm_id, way index, geometry.
    ``keep_way``: only the segments of these ways (a mask over the collected streets) that join
    two different nodes; the others get no geometry made."""
    lengths = np.asarray(col.s_len, dtype=np.int64)
    way_of = np.repeat(np.arange(len(lengths)), lengths)
    refs = np.asarray(col.s_refs, dtype=np.int64)
    lon, lat, valid = _coords(col.s_x, col.s_y)
    # nodes without coordinates are dropped; the way is cut through the nodes that remain
    way_of, refs, lon, lat = way_of[valid], refs[valid], lon[valid], lat[valid]
    same = way_of[1:] == way_of[:-1]
    start = np.flatnonzero(same)
    if keep_way is not None:
        start = start[keep_way[way_of[start]] & (refs[start] != refs[start + 1])]
    xy = np.column_stack([lon, lat])
    geom = shapely.linestrings(np.stack([xy[start], xy[start + 1]], axis=1)) if len(start) else \
        np.empty(0, dtype=object)
    return {"u": refs[start], "v": refs[start + 1], "way": way_of[start], "geometry": geom}


def _wkb_linestrings(raw: list) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (n, 2) and point counts of WKB linestrings (bytes), decoded with numpy in
    one go (``shapely.from_wkb`` of libosmium's hex is ~10x slower), see :func:`_wkb_buffer`."""
    size = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    return _wkb_buffer(b"".join(raw), size)


def _wkb_buffer(data, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (n, 2) and point counts of WKB linestrings stored one after the other in
    ``data`` (``size`` bytes each). The same doubles as GEOS reads; anything but plain
    little-endian 2D linestrings goes through shapely."""
    size = np.asarray(size, dtype=np.int64)
    count = (size - 9) // 16
    if len(size) == 0:
        return np.empty((0, 2)), count
    buf = np.frombuffer(data, dtype=np.uint8)
    start = np.zeros(len(size), dtype=np.int64)
    np.cumsum(size[:-1], out=start[1:])
    header = buf[_ranges(start, np.full(len(size), 9))].reshape(-1, 9)
    plain = (header[:, :5] == (1, 2, 0, 0, 0)).all() and (size == 9 + 16 * count).all() and \
        np.array_equal(header[:, 5:].copy().view("<u4").ravel(), count)
    if not plain:
        raw = [bytes(data[a:a + n]) for a, n in zip(start.tolist(), size.tolist())]
        lines = shapely.from_wkb(np.asarray(raw, dtype=object))
        return shapely.get_coordinates(lines), shapely.get_num_coordinates(lines).astype(np.int64)
    body = np.ones(len(buf), dtype=bool)
    body[_ranges(start, np.full(len(size), 9))] = False
    return buf[body].view("<f8").reshape(-1, 2), count


def _way_shapes(xy: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None,
                area: np.ndarray) -> np.ndarray:
    """Polygons (oriented) for the ways that close an area (``area``), LineStrings for the
    others, from their coordinates one way after the other (``lengths`` each; ``valid``: the
    coordinates the file has, None for all), built in two vectorised calls (the polygons
    straight from the flat coordinates and ring offsets, no ring objects first); ways with
    missing nodes one by one, through the nodes that have coordinates. Made valid where they
    are not (:func:`_valid`)."""
    n = len(lengths)
    geoms = np.empty(n, dtype=object)
    if n == 0:
        return geoms
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if valid is None or valid.all():
        complete = np.ones(n, dtype=bool)
    else:
        n_valid = np.add.reduceat(valid.astype(np.int64), offsets[:-1])
        n_valid[lengths == 0] = 0
        complete = n_valid == lengths
    done = np.zeros(n, dtype=bool)
    rings = area & complete & (lengths >= 4)
    if rings.any():
        ring_offsets = np.zeros(int(rings.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[rings], out=ring_offsets[1:])
        try:
            geoms[rings] = shapely.from_ragged_array(
                shapely.GeometryType.POLYGON, xy[np.repeat(rings, lengths)],
                (ring_offsets, np.arange(len(ring_offsets), dtype=np.int64)))
            done |= rings
        except shapely.errors.GEOSException:
            pass
    lines = ~area & complete & (lengths >= 2)
    if lines.any():
        cnt = lengths[lines]
        geoms[lines] = shapely.linestrings(xy[np.repeat(lines, lengths)],
                                           indices=np.repeat(np.arange(len(cnt)), cnt))
        done |= lines
    for w in np.flatnonzero(~done):  # ways with nodes outside the file, too-short rings
        sel = slice(offsets[w], offsets[w + 1])
        pts = xy[sel] if valid is None else xy[sel][valid[sel]]
        geoms[w] = _polygon_or_none(pts) if area[w] else (
            shapely.linestrings(pts) if len(pts) >= 2 else None)
    if area.any():
        geoms[area] = shapely.orient_polygons(geoms[area], exterior_cw=False)
    return _valid(geoms)


def _cut_way_shapes(cut: dict) -> np.ndarray:
    """:func:`_way_shapes` of the ways cut by the extract (per way, their nodes' coordinates
    and whether they close an area)."""
    values = list(cut.values())
    lengths = np.fromiter((len(v[0]) for v in values), dtype=np.int64, count=len(values))
    lon, lat, valid = _coords([x for v in values for x in v[0]], [y for v in values for y in v[1]])
    rings = np.fromiter((v[2] for v in values), dtype=bool, count=len(values))
    return _way_shapes(np.column_stack([lon, lat]), lengths, valid, rings)


def _polygon_or_none(pts):
    if len(pts) <= 2:
        return None
    try:
        return shapely.polygons(pts)
    except (shapely.errors.GEOSException, ValueError):
        return None


def _fix_geometry(geometry, diff_threshold=20):
    """buffer(0), or the bowtie fix, unless either changes the area wildly (as pyrosm does)."""
    candidate = geometry.buffer(0)
    if candidate.is_valid:
        try:
            if abs(1 - geometry.area / candidate.area) < diff_threshold:
                return candidate
        except ZeroDivisionError:
            pass
    if isinstance(geometry, MultiPolygon):
        return geometry
    ext = geometry.exterior
    candidate = MultiPolygon(list(shapely.ops.polygonize(ext.intersection(ext))))
    if candidate.is_valid:
        try:
            if abs(1 - geometry.area / candidate.area) < diff_threshold:
                return candidate
        except ZeroDivisionError:
            pass
    return geometry


def _polygonal(geometry):
    if geometry is None or geometry.is_empty:
        return None
    kind = geometry.geom_type
    if kind in ("Polygon", "MultiPolygon"):
        return geometry
    if kind == "GeometryCollection":
        parts = []
        for part in geometry.geoms:
            if part.is_empty:
                continue
            if part.geom_type == "Polygon":
                parts.append(part)
            elif part.geom_type == "MultiPolygon":
                parts.extend(sub for sub in part.geoms if not sub.is_empty)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else MultiPolygon(parts)
    return None


def _relation_geometry(rel: dict, members: dict):
    lines = []
    for wid in rel["members"]:
        got = members.get(wid)
        if got is None:
            continue
        if not isinstance(got, tuple):
            lines.append(got)
            continue
        lon, lat, valid = _coords(*got)
        if valid.sum() < 2:
            continue
        lines.append(shapely.linestrings(np.column_stack([lon[valid], lat[valid]])))
    if not lines:
        return None
    if _relation_linear(rel["tags"]):
        if len(lines) == 1:
            return lines[0]
        return shapely.line_merge(shapely.multilinestrings(lines))
    merged = shapely.line_merge(shapely.multilinestrings(lines))
    if merged.geom_type == "LineString":
        parts = [merged]
    elif merged.geom_type in ("MultiLineString", "GeometryCollection"):
        parts = [p for p in merged.geoms if p.geom_type == "LineString"]
    else:
        parts = []
    polys = []
    for line in parts:
        c = shapely.get_coordinates(line)
        if c.shape[0] < 4 or c[0, 0] != c[-1, 0] or c[0, 1] != c[-1, 1]:
            continue
        try:
            poly = shapely.polygons(shapely.linearrings(c))
            if not poly.is_valid:
                poly = poly.buffer(0)
        except shapely.errors.GEOSException:
            continue
        if poly is None or poly.is_empty:
            continue
        polys.append(poly)
    if not polys:
        return None
    try:
        area = _xor_all(np.asarray(polys + [None], dtype=object)[:-1])
    except shapely.errors.GEOSException:
        return None
    return _polygon_result(area)


def _xor_all(arr: np.ndarray):
    """The symmetric difference of all the rings' polygons (holes cut, islands kept), pairwise."""
    while len(arr) > 1:
        k = len(arr) // 2 * 2
        arr = np.concatenate([shapely.symmetric_difference(arr[0:k:2], arr[1:k:2]), arr[k:]])
    return arr[0]


def _relation_geometries(relations: list[dict], members: dict) -> list:
    """:func:`_relation_geometry` for every relation, the same geometries with the common
    steps vectorised over all relations (merging member ways, rings to polygons, repairing
    invalid rings); only relations with several rings, and repairs, go one by one."""
    n = len(relations)
    out: list = [None] * n
    lines, owner = [], []
    for r, rel in enumerate(relations):
        for wid in rel["members"]:
            got = members.get(wid)
            if got is None:
                continue
            if isinstance(got, tuple):
                lon, lat, valid = _coords(*got)
                if valid.sum() < 2:
                    continue
                got = shapely.linestrings(np.column_stack([lon[valid], lat[valid]]))
            lines.append(got)
            owner.append(r)
    if not lines:
        return out
    owner = np.asarray(owner, dtype=np.int64)
    has, first, count = np.unique(owner, return_index=True, return_counts=True)
    lines = np.asarray(lines + [None], dtype=object)[:-1]
    merged = np.empty(n, dtype=object)
    merged[has] = shapely.line_merge(shapely.multilinestrings(lines, indices=np.searchsorted(has, owner)))
    linear = np.zeros(n, dtype=bool)
    linear[has] = [_relation_linear(relations[r]["tags"]) for r in has.tolist()]
    for r, f, c in zip(has.tolist(), first.tolist(), count.tolist()):
        if linear[r]:
            out[r] = lines[f] if c == 1 else merged[r]
    # areas: the merged rings that close, as polygons
    area = has[~linear[has]]
    if not len(area):
        return out
    parts, part_of = shapely.get_parts(merged[area], return_index=True)
    keep = shapely.get_type_id(parts) == 1
    parts, part_of = parts[keep], area[part_of[keep]]
    coords, cidx = shapely.get_coordinates(parts, return_index=True)
    ncoord = np.bincount(cidx, minlength=len(parts))
    start = np.zeros(len(parts), dtype=np.int64)
    np.cumsum(ncoord[:-1], out=start[1:])
    closed = ncoord >= 4
    ring = np.flatnonzero(closed)
    closed[ring] = (coords[start[ring]] == coords[start[ring] + ncoord[ring] - 1]).all(axis=1)
    parts, part_of = parts[closed], part_of[closed]
    ring_offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(ncoord[closed], out=ring_offsets[1:])
    try:   # straight from the rings' coordinates (no ring objects first)
        polys = shapely.from_ragged_array(shapely.GeometryType.POLYGON,
                                          coords[np.repeat(closed, ncoord)],
                                          (ring_offsets, np.arange(len(parts) + 1, dtype=np.int64)))
        valid = shapely.is_valid(polys)
        bad = ~valid
        if bad.any():
            polys[bad] = shapely.buffer(polys[bad], 0)
            valid[bad] = shapely.is_valid(polys[bad])
    except shapely.errors.GEOSException:   # one by one, as the single-relation path does
        return [_relation_geometry(rel, members) for rel in relations]
    ok = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
    polys, part_of, valid = polys[ok], part_of[ok], valid[ok]
    single = np.bincount(part_of, minlength=n) == 1
    simple = single[part_of]
    # one ring: the polygon as it is when valid (else repaired one by one below)
    valid &= simple
    for g, r in zip(polys[simple & valid], part_of[simple & valid].tolist()):
        out[r] = g
    # several rings (or a repair): their symmetric difference, the same pairs in the same
    # rounds as _xor_all, for all these relations at once
    sel = np.flatnonzero(~(simple & valid))
    sel = sel[np.argsort(part_of[sel], kind="stable")]
    try:
        areas, owners = _xor_groups(polys[sel], part_of[sel])
    except shapely.errors.GEOSException:   # one by one: only the failing relation is lost
        areas, owners = [], []
        starts = np.flatnonzero(np.r_[True, part_of[sel][1:] != part_of[sel][:-1]]) if len(sel) else []
        for a, b in zip(starts, [*starts[1:], len(sel)]):
            try:
                areas.append(_xor_all(polys[sel[a:b]]))
            except shapely.errors.GEOSException:
                areas.append(None)
            owners.append(int(part_of[sel[a]]))
    areas = np.asarray(list(areas) + [None], dtype=object)[:-1]
    # polygonal, non-empty and valid: as they are (what _polygon_result returns for them)
    ready = np.isin(shapely.get_type_id(areas), (3, 6)) & ~shapely.is_empty(areas)
    ready[ready] = shapely.is_valid(areas[ready])
    for area, r, ok in zip(areas, np.asarray(owners).tolist(), ready.tolist()):
        if ok:
            out[r] = area
            continue
        try:
            out[r] = None if area is None else _polygon_result(area)
        except shapely.errors.GEOSException:
            out[r] = None
    return out


def _xor_groups(arr: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_xor_all` of every run of equal ``owner`` values (sorted) at once: one
    vectorised symmetric difference per round over all groups. Returns one geometry per group
    and its owner."""
    while len(owner) > 1:
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        lens = np.diff(np.r_[starts, len(owner)])
        if lens.max() == 1:
            break
        pos = np.arange(len(owner)) - np.repeat(starts, lens)
        paired = np.repeat(lens // 2 * 2, lens)
        left = np.flatnonzero((pos < paired) & (pos % 2 == 0))
        alone = pos >= paired
        merged = shapely.symmetric_difference(arr[left], arr[left + 1])
        owner = np.concatenate([owner[left], owner[alone]])
        arr = np.concatenate([merged, arr[alone]])
        order = np.argsort(owner, kind="stable")
        arr, owner = arr[order], owner[order]
    return arr, owner


def _polygon_result(area):
    """The end of :func:`_relation_geometry`: polygonal parts, repaired when invalid."""
    area = _polygonal(area)
    if area is None:
        return None
    if not area.is_valid:
        area = _polygonal(_fix_geometry(area))
        if area is None:
            return None
    if not area.is_valid:
        area = _fix_geometry(area)
    return area


def build_features(col: _Collected, relations: list[dict], nodes=None):
    """Feature records in pyrosm's order: group by group (poi, building, land use, natural),
    nodes, then ways, then relations, each element in its first group only.
    Returns (osm_type, osm_id, tags, geometry): arrays (object, int64, a list of the shared tag
    dicts, geometries, valid: polygons oriented then made valid where GEOS finds them
    invalid). Consumes ``col``'s way and member geometry (freed as they are built).
    ``nodes``: a function returning the feature nodes read elsewhere (:func:`add_nodes`),
    called once the ways' and relations' geometry is built (it may wait for them)."""
    with gc_paused():
        return _build_features(col, relations, nodes)


def _node_points(col: _Collected) -> np.ndarray:
    n_lon, n_lat, n_valid = _coords(col.n_x, col.n_y)
    n_geom = shapely.points(np.column_stack([n_lon, n_lat])) if len(n_lon) else np.empty(0, object)
    return np.where(n_valid, n_geom, None) if len(n_lon) else n_geom


def _build_features(col: _Collected, relations: list[dict], nodes=None):
    n_geom = _node_points(col) if nodes is None else None
    cut = _cut_way_shapes(col.w_cut) if col.w_cut else None
    built, r_geom = col.geometry.result()
    col.geometry = None
    w_geom = np.empty(len(col.w_id), dtype=object)
    if cut is not None:
        whole = np.ones(len(w_geom), dtype=bool)
        whole[list(col.w_cut)] = False
        w_geom[whole] = built
        w_geom[~whole] = cut
    else:
        w_geom[:] = built
    col.w_cut, col.members = {}, {}
    if nodes is not None:
        add_nodes(col, nodes())
        n_geom = _node_points(col)
    # group by group; within a group nodes, ways, relations, each in reading order: a stable
    # sort of the concatenated kinds by group
    counts = (len(col.n_id), len(col.w_id), len(relations))
    group = np.concatenate([np.asarray(col.n_group, dtype=np.int8), np.asarray(col.w_group, dtype=np.int8),
                            np.asarray([r["group"] for r in relations], dtype=np.int8)])
    geom = np.empty(sum(counts), dtype=object)
    geom[:counts[0]] = n_geom
    geom[counts[0]:counts[0] + counts[1]] = w_geom
    geom[counts[0] + counts[1]:] = np.asarray(r_geom + [None], dtype=object)[:-1]
    order = np.argsort(group, kind="stable")
    order = order[~shapely.is_missing(geom[order])]
    geom = geom[order]
    kinds = np.array(["node", "way", "relation"], dtype=object)
    osm_type = np.repeat(kinds, counts)[order]
    osm_id = np.concatenate([np.asarray(col.n_id, dtype=np.int64), np.asarray(col.w_id, dtype=np.int64),
                             np.asarray([r["id"] for r in relations], dtype=np.int64)])[order]
    all_tags = col.n_tags + col.w_tags + [r["tags"] for r in relations]
    tags = [all_tags[i] for i in order.tolist()]
    del all_tags
    return osm_type, osm_id, tags, geom
