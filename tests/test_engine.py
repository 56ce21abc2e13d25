"""The engine against a brute-force networkx computation on random graphs (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bruteforce import all_times, nearest_minutes, split_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecircle.core.engine import AccessEngine
from lifecircle.core.network import WalkNetwork
from lifecircle.core.snapping import Snap
from lifecircle.errors import NetworkError
from lifecircle.settings import DEFAULTS


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 14))
    m = draw(st.integers(1, 30))
    x = draw(st.lists(st.floats(0, 400), min_size=n, max_size=n))
    y = draw(st.lists(st.floats(0, 400), min_size=n, max_size=n))
    u = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    v = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    # lengths: zero-length edges and ties (multiples of 50 m) on purpose
    length = draw(st.lists(st.sampled_from([0.0, 50.0, 100.0, 150.0, 37.5, 400.0, 812.3]),
                           min_size=m, max_size=m))
    oneway = draw(st.lists(st.booleans(), min_size=m, max_size=m))
    keep = [i for i in range(m) if u[i] != v[i]] or [0]
    v = [v[i] if v[i] != u[i] else (u[i] + 1) % n for i in keep]
    u = [u[i] for i in keep]
    length = [length[i] for i in keep]
    oneway = [oneway[i] for i in keep]
    net = WalkNetwork.from_arrays(x, y, u, v, length=length, oneway=oneway, speed_kmh=4.0)

    def points(count):
        e = draw(st.lists(st.integers(-1, len(u) - 1), min_size=count, max_size=count))
        frac = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 0.1]), min_size=count, max_size=count))
        leg = draw(st.lists(st.sampled_from([0.0, 10.0, 55.0]), min_size=count, max_size=count))
        e = np.array(e, dtype=np.int64)
        off = np.array([frac[i] * length[e[i]] if e[i] >= 0 else 0.0 for i in range(count)])
        return Snap(e, off, np.array(leg, dtype=float), np.zeros(count, bool))

    homes = points(draw(st.integers(1, 12)))
    facs = [points(draw(st.integers(0, 6))) for _ in range(draw(st.integers(1, 3)))]
    # put a facility on the same edge as a home now and then
    if draw(st.booleans()) and len(facs[0]) and homes.edge[0] >= 0:
        facs[0].edge[0] = homes.edge[0]
        facs[0].offset[0] = min(homes.offset[0] + 7.0, length[homes.edge[0]])

    def with_entries(f):
        xe, xo, xl, xw = [], [], [], []
        for j in range(len(f)):
            if f.edge[j] < 0:
                continue
            pool = [e for e in range(len(u)) if e != f.edge[j]]
            chosen = draw(st.permutations(pool))[:draw(st.integers(0, min(3, len(pool))))]
            h = int(homes.edge[0])
            if h in pool and h not in chosen and draw(st.booleans()):
                chosen = [h] + chosen[1:]
            for e in chosen:
                xe.append(e)
                xo.append(draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])) * length[e])
                xl.append(draw(st.sampled_from([0.0, 4.0, 20.0])))
                xw.append(j)
        return f.with_extra(np.array(xe, np.int64), np.array(xo), np.array(xl),
                            np.array(xw, np.int64)) if xe else f

    # areas: facilities with further entries (at most one per edge, none on their own
    # point's edge), now and then one on a home's edge
    if draw(st.booleans()):
        facs = [with_entries(f) for f in facs]
    return net, homes, facs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_nearest_equals_networkx(case):
    net, homes, facs = case
    eng = AccessEngine(net, homes, settings=DEFAULTS.with_(max_minutes=60.0))
    got = eng.nearest(facs)
    g = split_graph(net, homes, facs)
    for c in range(len(facs)):
        want = nearest_minutes(g, len(homes), len(facs[c]), c)
        want[want > 60.0] = np.nan
        np.testing.assert_allclose(got[c], want, atol=1e-9, equal_nan=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_pair_times_equal_networkx(case):
    """The public pair_times (what analyses use instead of engine internals) gives exactly the
    networkx home → point times within the limit, same-edge walks and one-way edges included."""
    net, homes, facs = case
    pts = facs[0]
    eng = AccessEngine(net, homes, settings=DEFAULTS.with_(max_minutes=60.0))
    limit = 9.0
    p, h, sec = eng.pair_times(pts, limit, chunk=2)
    got = {(int(a), int(b)): t / 60.0 for a, b, t in zip(p, h, sec)}
    want = all_times(split_graph(net, homes, facs), len(homes), len(pts), 0, limit)
    want = {(f, j): m for (j, f), m in want.items() if m <= limit}
    assert got.keys() == want.keys()
    for key, m in want.items():
        assert got[key] == pytest.approx(m, abs=1e-9)


@pytest.mark.parametrize("method", ["homes", "facilities"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=graphs())
def test_reach_metrics_equal_networkx(method, case):
    net, homes, facs = case
    pop = np.arange(1, len(homes) + 1, dtype=float)
    caps = [np.full(len(f), 2.0) for f in facs]
    # max_minutes == the reach limit: the per-home pass also gives the nearest minutes
    st_ = DEFAULTS.with_(max_minutes=5.0)
    eng = AccessEngine(net, homes, population=pop, settings=st_)
    thresholds = (1, 2, 5)
    k = 3
    r = eng.reach(facs, capacities=caps, thresholds_min=thresholds, limit_min=5, k=k,
                  method=method)
    g = split_graph(net, homes, facs)
    for c in range(len(facs)):
        pairs = all_times(g, len(homes), len(facs[c]), c, cutoff_min=5)
        reachable = homes.edge >= 0
        want_near = np.full(len(homes), np.nan)
        for (h, _f), t in pairs.items():
            if not t > want_near[h]:
                want_near[h] = t
        np.testing.assert_allclose(r.nearest[c], want_near, atol=1e-9, equal_nan=True)
        for q, thr in enumerate(thresholds):
            want = np.zeros(len(homes), int)
            for (h, _f), t in pairs.items():
                if t <= thr + 1e-9:
                    want[h] += 1
            np.testing.assert_array_equal(r.counts[c, q], want)
        # k nearest mean, censored at the limit
        for h in range(len(homes)):
            times = sorted(t for (hh, f), t in pairs.items() if hh == h)[:k]
            if not reachable[h]:
                assert math.isnan(r.kmean[c, h])
                continue
            want_k = (sum(times) + (k - len(times)) * 5.0) / k
            assert r.kmean[c, h] == pytest.approx(want_k, abs=1e-9)
            want_decay = sum(math.exp(-DEFAULTS.decay_beta * t) for (hh, f), t in pairs.items() if hh == h)
            assert r.decay[c, h] == pytest.approx(want_decay, abs=1e-9)
        # 2SFCA: R_f = cap / sum of pop within 5 min; A_h = sum of R_f within 5 min
        demand = {}
        for (h, f), _t in pairs.items():
            demand[f] = demand.get(f, 0.0) + pop[h]
        want_a = np.zeros(len(homes))
        for (h, f), _t in pairs.items():
            want_a[h] += 2.0 / demand[f]
        np.testing.assert_allclose(np.nan_to_num(r.sfca[c], nan=0.0), want_a, atol=1e-12)


@pytest.mark.parametrize("method", ["homes", "facilities"])
def test_no_facility_gives_nan_and_zero_counts(method):
    net = WalkNetwork.from_arrays([0, 100, 200], [0, 0, 0], [0, 1], [1, 2])
    homes = Snap(np.array([0, 1, -1]), np.array([10.0, 5.0, 0.0]), np.zeros(3), np.zeros(3, bool))
    empty = Snap(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, bool))
    one = Snap(np.array([1]), np.array([50.0]), np.array([0.0]), np.array([False]))
    eng = AccessEngine(net, homes)
    assert np.isnan(eng.nearest([empty])[0, 0])
    for facs in ([empty], [empty, one]):
        r = eng.reach(facs, method=method)
        assert r.counts[0].sum() == 0 and np.all(np.isnan(r.nearest[0]))
        assert np.all(r.sfca[0][:2] == 0) and np.isnan(r.sfca[0][2])
    # the one facility: 140 m and 45 m away at 4 km/h; the unsnapped home reaches nothing
    np.testing.assert_allclose(r.nearest[1], [140 / (4000 / 60), 45 / (4000 / 60), np.nan])
    np.testing.assert_array_equal(r.counts[1, :, 2], 0)


@pytest.mark.parametrize("method", ["homes", "facilities"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=graphs(), off=st.sets(st.sampled_from(["nearest", "counts", "kmean", "decay", "sfca"])))
def test_metrics_switched_off_are_none_and_leave_the_others_identical(method, case, off):
    """A metric switched off (the opt-in ones of ``analyze``) is neither computed nor returned,
    and every metric left on is bit for bit what the all-metrics call gives."""
    net, homes, facs = case
    pop = np.arange(1, len(homes) + 1, dtype=float)
    caps = [np.full(len(f), 2.0) for f in facs]
    eng = AccessEngine(net, homes, population=pop, settings=DEFAULTS.with_(max_minutes=5.0))
    kw = dict(capacities=caps, thresholds_min=(1, 2, 5), limit_min=5, method=method)
    full = eng.reach(facs, k=3, **kw)
    part = eng.reach(facs, k=0 if "kmean" in off else 3, with_nearest="nearest" not in off,
                     with_counts="counts" not in off, with_decay="decay" not in off,
                     with_sfca="sfca" not in off, **kw)
    for name in ("nearest", "counts", "kmean", "decay", "sfca", "found"):
        got = getattr(part, name)
        if (name if name != "found" else "kmean") in off:
            assert got is None, name
        else:
            np.testing.assert_array_equal(got, getattr(full, name), err_msg=name)


def test_counts_beyond_int16_stay_exact():
    """Counts are held as int16 when no category has more facilities than int16 holds, else
    as int32: 40,000 facilities on a home's own street are all counted."""
    net = WalkNetwork.from_arrays([0, 100], [0, 0], [0], [1])
    homes = Snap(np.array([0]), np.array([50.0]), np.zeros(1), np.zeros(1, bool))
    n = 40_000
    many = Snap(np.zeros(n, np.int64), np.linspace(0, 100, n), np.zeros(n), np.zeros(n, bool))
    few = many.take(np.arange(3))
    eng = AccessEngine(net, homes)
    small = eng.reach([few], k=0, with_decay=False, with_sfca=False)
    assert small.counts.dtype == np.int16 and small.counts[0, :, 0].tolist() == [3, 3, 3]
    for method in ("homes", "facilities"):
        big = eng.reach([few, many], k=0, with_decay=False, with_sfca=False, method=method)
        assert big.counts[:, :, 0].tolist() == [[3, 3, 3], [n, n, n]], method


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_lengths_rejected(bad):
    with pytest.raises(NetworkError, match="negative or NaN"):
        WalkNetwork.from_arrays([0, 100, 200], [0, 0, 0], [0, 1], [1, 2], length=[100.0, bad])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.data())
def test_what_if_add_and_remove_equal_full_recompute(case, data):
    net, homes, facs = case
    fac = facs[0]
    ok = np.flatnonzero(fac.edge >= 0)
    if len(ok) < 2:
        return
    fac = fac.take(ok)
    pop = np.arange(1, len(homes) + 1, dtype=float)
    eng = AccessEngine(net, homes, population=pop, settings=DEFAULTS.with_(max_minutes=60.0))
    kw = dict(thresholds_min=(1, 2, 5), limit_min=5, k=3)
    base = fac.take(np.arange(len(fac) - 1))
    extra = fac.take(np.array([len(fac) - 1]))
    state = eng.category_state(base, **kw)
    eng.add_facility(state, extra)
    full = eng.category_state(fac, **kw)
    for key, want in full.minutes().items():
        np.testing.assert_allclose(state.minutes()[key], want, atol=1e-9, equal_nan=True)
    drop = data.draw(st.integers(0, len(fac) - 1))
    eng.remove_facility(state, drop)
    keep = np.array([i for i in range(len(fac)) if i != drop])
    fresh = eng.category_state(fac.take(keep), **kw)
    for key, want in fresh.minutes().items():
        np.testing.assert_allclose(state.minutes()[key], want, atol=1e-9, equal_nan=True, err_msg=key)
