"""The walking network: chain contraction keeps one-way directions and every shortest path
(checked against networkx on the uncontracted segments); small disconnected pieces are left
out so that no home or facility attaches to them."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecircle.core.network import contract_chains


def _contract(x, y, u, v, oneway, osmid=None):
    x, y = np.asarray(x, float), np.asarray(y, float)
    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    osmid = np.arange(len(x)) if osmid is None else np.asarray(osmid)
    geom = shapely.linestrings(np.stack([np.stack([x[u], y[u]], 1), np.stack([x[v], y[v]], 1)], 1))
    length = shapely.length(geom)
    return contract_chains(osmid, x, y, u, v, length, np.asarray(oneway, bool), geom)


def test_oneway_foot_segment_keeps_its_direction_when_its_end_has_the_lower_id():
    """Three segments meeting at node 1 (0-1 and 1-3 two-way, 2 -> 1 one-way): the one-way
    segment runs from the higher node id to the lower, and contraction must keep 2 -> 1."""
    x, y = [0, 100, 200, 100], [0, 0, 0, 100]
    osmid, nx_, ny_, eu, ev, length, oneway, geom, _, _ = _contract(
        x, y, u=[0, 1, 2], v=[1, 3, 1], oneway=[False, False, True])
    assert oneway.sum() == 1
    k = int(np.flatnonzero(oneway)[0])
    # walking is allowed from OSM node 2 to OSM node 1 only
    assert (osmid[eu[k]], osmid[ev[k]]) == (2, 1)
    # and the geometry starts at the edge's u end
    start = shapely.get_coordinates(geom[k])[0]
    assert tuple(start) == (nx_[eu[k]], ny_[eu[k]])


def _nx_times(n, u, v, length, oneway, sources):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))

    def add(a, b, w):
        if not g.has_edge(a, b) or g[a][b]["w"] > w:
            g.add_edge(a, b, w=w)

    for a, b, w, one in zip(u, v, length, oneway):
        add(a, b, w)
        if not one:
            add(b, a, w)
    return {s: nx.single_source_dijkstra_path_length(g, s, weight="w") for s in sources}


@st.composite
def street_graphs(draw):
    """Random segment graphs with chains, loops, parallel segments and one-way segments."""
    n = draw(st.integers(2, 12))
    m = draw(st.integers(1, 24))
    u = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    v = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    oneway = draw(st.lists(st.booleans(), min_size=m, max_size=m))
    pairs, seen = [], set()
    for a, b, o in zip(u, v, oneway):
        if a == b or (min(a, b), max(a, b)) in seen:   # build_network keeps one segment per pair
            continue
        seen.add((min(a, b), max(a, b)))
        pairs.append((a, b, o))
    if not pairs:
        pairs = [(0, 1, False)]
    # node ids in a random order: the contraction must not depend on which end has the lower id
    perm = draw(st.permutations(list(range(n))))
    x = draw(st.lists(st.floats(0, 500, allow_nan=False), min_size=n, max_size=n))
    y = draw(st.lists(st.floats(0, 500, allow_nan=False), min_size=n, max_size=n))
    return n, pairs, np.array(perm), x, y


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(street_graphs())
def test_contraction_keeps_every_shortest_path(case):
    """Between any two nodes the contraction keeps, the shortest walk (with one-way
    segments) is the same as on the uncontracted segments."""
    n, pairs, perm, x, y = case
    u = np.array([perm[a] for a, _, _ in pairs])
    v = np.array([perm[b] for _, b, _ in pairs])
    oneway = np.array([o for _, _, o in pairs])
    x, y = np.asarray(x)[np.argsort(perm)], np.asarray(y)[np.argsort(perm)]
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    geom = shapely.linestrings(np.stack([np.stack([xs[u], ys[u]], 1),
                                         np.stack([xs[v], ys[v]], 1)], 1))
    length = shapely.length(geom)
    before = _nx_times(n, u, v, length, oneway, range(n))
    osmid, cx, cy, cu, cv, clen, cone, cgeom, _, _ = _contract(x, y, u, v, oneway)
    # every contracted edge's geometry runs from its u to its v and has its length
    for e in range(len(cu)):
        c = shapely.get_coordinates(cgeom[e])
        np.testing.assert_allclose(c[0], (cx[cu[e]], cy[cu[e]]), atol=1e-9)
        np.testing.assert_allclose(c[-1], (cx[cv[e]], cy[cv[e]]), atol=1e-9)
        assert cgeom[e].length == pytest.approx(clen[e], abs=1e-6)
    after = _nx_times(len(cx), cu, cv, clen, cone, range(len(cx)))
    for i in range(len(cx)):
        for j in range(len(cx)):
            a, b = int(osmid[i]), int(osmid[j])
            want = before[a].get(b)
            got = after[i].get(j)
            if want is None:
                assert got is None, (a, b)
            else:
                assert got == pytest.approx(want, abs=1e-6), (a, b)
