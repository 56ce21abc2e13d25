"""The engine's searches run on the network renumbered for cache locality (``LocalGraph``), the
per-home pass lists facilities as its searches settle nodes, and its blocks of home edges vary
in size: none of it may change a result. Checked against the same kernels on the original
numbering, against the per-facility pass, and across block sizes, on a street grid with
one-way streets, dead ends, ties and points on shared edges."""

from __future__ import annotations

import numpy as np
import pytest

from lifecircle.core import _kernels as K
from lifecircle.core.engine import AccessEngine, FacilitySeeds, facility_seeds, local_graph, search_each
from lifecircle.core.network import WalkNetwork
from lifecircle.core.snapping import Snap
from lifecircle.settings import DEFAULTS


def _city(seed: int = 0, side: int = 24):
    """A ``side`` × ``side`` street grid (nodes numbered in a shuffled order, as OSM ids come),
    some streets one-way, some lengths tied, a few dead-end spurs; homes and three categories
    of facilities part-way along random edges."""
    rng = np.random.default_rng(seed)
    n = side * side
    order = rng.permutation(n)                       # node numbers unrelated to position
    gx, gy = np.divmod(np.arange(n), side)
    x, y = np.empty(n), np.empty(n)
    x[order], y[order] = gx * 80.0, gy * 80.0
    u, v = [], []
    for i in range(side):
        for j in range(side):
            if i + 1 < side:
                u.append(order[i * side + j])
                v.append(order[(i + 1) * side + j])
            if j + 1 < side:
                u.append(order[i * side + j])
                v.append(order[i * side + j + 1])
    # dead-end spurs off random nodes
    spur = rng.choice(n, 40, replace=False)
    x = np.r_[x, x[spur] + 15.0]
    y = np.r_[y, y[spur] + 25.0]
    u += spur.tolist()
    v += list(range(n, n + 40))
    u, v = np.array(u), np.array(v)
    length = rng.choice([80.0, 80.0, 95.5, 120.0, 30.0], len(u))
    oneway = rng.random(len(u)) < 0.15
    net = WalkNetwork.from_arrays(x, y, u, v, length=length, oneway=oneway, speed_kmh=4.5)

    def points(count):
        e = rng.integers(-1, len(u), count)          # -1: not attached
        off = np.where(e >= 0, rng.choice([0.0, 0.3, 0.5, 1.0], count) * length[np.maximum(e, 0)], 0.0)
        return Snap(e.astype(np.int64), off, rng.choice([0.0, 12.0, 40.0], count), np.zeros(count, bool))

    homes = points(900)
    facs = [points(c) for c in (60, 9, 0)]
    facs[1].edge[:3] = homes.edge[:3]                # facilities on homes' own edges
    facs[1].offset[:3] = homes.offset[:3]
    return net, homes, facs


def test_local_graph_searches_are_the_original_ones_renamed():
    net, _, _ = _city()
    loc = local_graph(net)
    assert sorted(loc.new_of.tolist()) == list(range(net.n_nodes))
    assert loc.nodes(np.array([-1, 5, -1])).tolist() == [-1, int(loc.new_of[5]), -1]
    src = np.arange(net.n_nodes)
    for csr, local in ((net.forward, loc.forward), (net.reverse, loc.reverse)):
        def run(g, nodes):
            seeds = FacilitySeeds(np.array([0, len(nodes)]), np.arange(len(nodes) + 1),
                                  nodes.astype(np.int32), np.zeros(len(nodes)), None, None, None, None)
            return search_each(g, seeds, 700.0, 1 << 16)
        p0, n0, c0 = run(csr, src)
        p1, n1, c1 = run(local, loc.new_of[src])
        # the same nodes reached, in the same order, at the same times, under local numbers
        assert np.array_equal(p0, p1) and np.array_equal(loc.new_of[n0], n1) and np.array_equal(c0, c1)
    assert np.array_equal(loc.edge_u, loc.new_of[net.edge_u])


def test_nearest_equals_the_kernel_on_the_original_numbering_in_contiguous_rows():
    net, homes, facs = _city(1)
    eng = AccessEngine(net, homes, settings=DEFAULTS.with_(max_minutes=6.0))
    got = eng.nearest(facs)
    assert got.shape == (3, len(homes)) and got.flags.c_contiguous     # a row per category
    seeds = facility_seeds(net, facs)
    want = np.empty((3, len(homes)))
    h = eng.homes
    rev = net.reverse
    K.nearest_many(rev.indptr, rev.indices, rev.weights, seeds.seed_ptr[seeds.cat_ptr], seeds.seed_node,
                   seeds.seed_cost, 360.0, h.u, h.v, h.a, h.b, want)
    for c in range(3):   # the straight walk along a shared edge, as the engine adds it
        from lifecircle.core.engine import _direct_same_edge
        direct = _direct_same_edge(net, h, seeds, c)
        want[c] = np.minimum(want[c], np.where(direct <= 360.0, direct, np.inf))
    want = want / 60.0
    want[~np.isfinite(want)] = np.nan
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(got[2]).all() and np.isfinite(got[0]).any()


@pytest.mark.parametrize("block", [1, 7, 100_000])
def test_per_home_pass_is_the_facility_pass_whatever_the_blocks(block, monkeypatch):
    net, homes, facs = _city(2)
    pop = np.linspace(0.5, 3.0, len(homes))
    s = DEFAULTS.with_(max_minutes=6.0)
    kw = dict(thresholds_min=(2, 4, 6), k=3)
    ref = AccessEngine(net, homes, pop, s).reach(facs, method="facilities", **kw)
    base = AccessEngine(net, homes, pop, s).reach(facs, method="homes", **kw)     # 48 a block
    monkeypatch.setattr(AccessEngine, "_block_edges", block)
    eng = AccessEngine(net, homes, pop, s)
    got = eng.reach(facs, method="homes", **kw)
    assert len(eng._home_blocks[0]) - 1 == -(-len(eng._home_blocks[1]) // block)
    assert got.counts.sum() > 1000                                    # many pairs in reach
    np.testing.assert_array_equal(got.counts, ref.counts)             # exact
    np.testing.assert_array_equal(got.found, ref.found)
    for m in ("nearest", "kmean"):   # the same whatever the blocks; the facility pass adds up
        assert np.array_equal(getattr(got, m), getattr(base, m), equal_nan=True), m   # the legs
        np.testing.assert_allclose(getattr(got, m), getattr(ref, m), rtol=1e-12, equal_nan=True)
    for m in ("decay", "sfca"):                                       # sums: order of addition only
        np.testing.assert_allclose(getattr(got, m), getattr(ref, m), rtol=1e-12, equal_nan=True)
    # the default metrics alone (counts and nearest: the pass's plain loop)
    plain = eng.reach(facs, k=0, with_decay=False, with_sfca=False, method="homes", thresholds_min=(2, 4, 6))
    np.testing.assert_array_equal(plain.counts, ref.counts)
    assert np.array_equal(plain.nearest, base.nearest, equal_nan=True)


@pytest.mark.parametrize("tiers", [(2, 4, 6), (6, 2, 4), (3,), (2, 2, 5), (2, 5)])
def test_counts_alone_equal_the_other_loops_in_any_tier_order(tiers):
    """Counts without the nearest minutes (each time counted once, in its first tier, when the
    tiers ascend; tier by tier otherwise) equal the counts of the loop that also keeps the
    nearest minutes and of the general loop (k-nearest on), shared edges included. (The
    per-facility pass adds the same legs in another order: at a tie with a tier it may differ
    by one.)"""
    net, homes, facs = _city(4)
    s = DEFAULTS.with_(max_minutes=6.0)
    kw = dict(thresholds_min=tiers, limit_min=6, with_decay=False, with_sfca=False, method="homes")
    alone = AccessEngine(net, homes, None, s).reach(facs, k=0, with_nearest=False, **kw)
    with_near = AccessEngine(net, homes, None, s).reach(facs, k=0, **kw)
    general = AccessEngine(net, homes, None, s).reach(facs, k=2, with_nearest=False, **kw)
    assert alone.nearest is None and with_near.nearest is not None
    assert alone.counts.sum() > 1000
    np.testing.assert_array_equal(alone.counts, with_near.counts)
    np.testing.assert_array_equal(alone.counts, general.counts)
    ref = AccessEngine(net, homes, None, s).reach(facs, k=0, with_nearest=False, with_decay=False,
                                                  with_sfca=False, thresholds_min=tiers, limit_min=6,
                                                  method="facilities")
    assert np.abs(alone.counts.astype(int) - ref.counts).max() <= 1
    assert (alone.counts != ref.counts).mean() < 1e-3
