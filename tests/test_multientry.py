"""Areas entered from every street at their outline (snapping.area_entries): nearest times are
the least over the entries, counts count the area once, a saved folder keeps the entries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from bruteforce import nearest_minutes, split_graph

from lifecircle import columns as col
from lifecircle.core.engine import AccessEngine
from lifecircle.core.network import WalkNetwork
from lifecircle.core.snapping import Snap, area_entries, entry_points, snap_points
from lifecircle.errors import LifecircleError
from lifecircle.result import Result
from lifecircle.settings import DEFAULTS

SPEED_KMH = 4.0


def _park_grid():
    """A 100 m square park (100..200 × 100..200) with a gate street ending at the middle of
    each side, the four streets' far ends joined by a diamond ring road (35 m from the park's
    corners at the nearest: farther than an entry's reach). Homes 5 m beside each gate
    street, 40 m from its far end."""
    x = [150, 150, 300, 200, 150, 150, 0, 100]
    y = [0, 100, 150, 150, 300, 200, 150, 150]
    u = [0, 2, 4, 6, 0, 2, 4, 6]
    v = [1, 3, 5, 7, 2, 4, 6, 0]
    net = WalkNetwork.from_arrays(x, y, u, v, speed_kmh=SPEED_KMH)
    park = shapely.box(100, 100, 200, 200)
    homes = shapely.points([(155, 40), (260, 155), (145, 260), (40, 145)])
    return net, park, homes


def _snaps(net, park, homes):
    fs = snap_points(net, entry_points(net, np.array([park])), 50.0)
    fs = area_entries(net, np.array([park]), fs, 50.0)
    hs = snap_points(net, homes, 50.0)
    return hs, fs


def test_square_park_is_entered_at_every_gate():
    net, park, homes = _park_grid()
    hs, fs = _snaps(net, park, homes)
    assert 1 + fs.n_extra == 4                    # the four gates
    eng = AccessEngine(net, hs, settings=DEFAULTS.with_(max_minutes=60.0))
    got = eng.nearest([fs])[0]
    # hand-computed: 5 m leg + 60 m along the gate street to its gate (leg 0), each home
    want = (5.0 + 60.0) / (SPEED_KMH / 3.6) / 60.0
    np.testing.assert_allclose(got, np.full(4, want), rtol=0, atol=1e-9)
    # the same minimum through the labelled search (maps name the nearest facility)
    t, f = eng.nearest_facility([fs])
    np.testing.assert_allclose(t[0], got, atol=1e-9)
    assert (f[0] == 0).all()


def test_an_area_is_counted_once():
    net, park, homes = _park_grid()
    hs, fs = _snaps(net, park, homes)
    eng = AccessEngine(net, hs, population=np.ones(4), settings=DEFAULTS.with_(max_minutes=60.0))
    near = (5.0 + 60.0) / (SPEED_KMH / 3.6) / 60.0
    for method in ("homes", "facilities"):
        # within 1 min only through its own gate; within 60 min through all four: once either way
        r = eng.reach([fs], capacities=[np.array([3.0])], thresholds_min=(1, 60), limit_min=60,
                      k=2, method=method)
        np.testing.assert_array_equal(r.counts[0], np.ones((2, 4)))
        np.testing.assert_allclose(r.nearest[0], near, atol=1e-9)
        np.testing.assert_allclose(r.decay[0], math.exp(-DEFAULTS.decay_beta * near), atol=1e-12)
        np.testing.assert_allclose(r.kmean[0], (near + 60.0) / 2, atol=1e-9)
        np.testing.assert_allclose(r.sfca[0], 3.0 / 4, atol=1e-12)     # demand: 4 homes once
    # every home is within 15 min of all four gates (as four separate points: 4 each), and
    # counts the park they belong to once
    own, e, off, leg = fs.entries()
    gates = Snap(e, off, leg, np.zeros(len(e), bool))
    assert (eng.reach([gates], thresholds_min=(15,), limit_min=15, k=0).counts[0, 0] == 4).all()
    assert (eng.reach([fs], thresholds_min=(15,), limit_min=15, k=0).counts[0, 0] == 1).all()
    st = eng.category_state(fs, thresholds_min=(1, 60), limit_min=60, k=2)
    m = st.minutes()
    np.testing.assert_array_equal(m["counts"], np.ones((2, 4)))
    np.testing.assert_allclose(m["nearest"], near, atol=1e-9)
    # what-if: remove it by its id, add it back: the same metrics
    eng.remove_facility(st, 0)
    assert (st.counts == 0).all() and np.isnan(st.minutes()["nearest"]).all()
    eng.add_facility(st, fs)
    np.testing.assert_array_equal(st.counts, np.ones((2, 4)))
    np.testing.assert_allclose(st.minutes()["nearest"], near, atol=1e-9)


def test_entries_are_spread_and_capped():
    """A park crossed by 40 parallel paths: at most 16 entries, spread along the outline
    (both ends of the crossings, all x), the same on a network numbered backwards."""
    n = 40
    xs = np.linspace(10, 390, n)
    x = np.r_[xs, xs]
    y = np.r_[np.full(n, -50.0), np.full(n, 150.0)]
    u, v = np.arange(n), np.arange(n) + n
    park = shapely.box(0, 0, 400, 100)
    got = []
    for order in (np.arange(n), np.arange(n)[::-1]):
        net = WalkNetwork.from_arrays(x, y, u[order], v[order])
        fs = area_entries(net, np.array([park]),
                          snap_points(net, entry_points(net, np.array([park])), 50.0), 50.0)
        assert 1 + fs.n_extra == 16
        own, e, off, _ = fs.entries()
        pts = shapely.get_coordinates(shapely.line_interpolate_point(net.edge_geom[e], off))
        got.append(sorted(map(tuple, np.round(pts, 6))))
        assert np.ptp(pts[:, 0]) > 300               # spread over the park's length
    assert got[0] == got[1]


@pytest.fixture(scope="module")
def xinjiekou(nanjing):
    return nanjing


def test_real_extract_equals_networkx_over_every_entry(xinjiekou):
    """Xinjiekou: ~50 homes × the park and school categories against networkx multi-source
    Dijkstra from every entry of every facility (each entry's edge split at it)."""
    r = xinjiekou
    fs = r.facility_snap
    assert fs.n_extra > 100
    cats = ["park", "public_square", "primary_school", "middle_school", "kindergarten"]
    cat_of = r.facilities[col.CATEGORY].to_numpy()
    snaps = [fs.take(np.flatnonzero(cat_of == c)) for c in cats]
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(np.flatnonzero(r.home_snap.reachable), 50, replace=False))
    homes = r.home_snap.take(pick)
    g = split_graph(r.network, homes, snaps)
    only_own = split_graph(r.network, homes, [Snap(s.edge, s.offset, s.leg, s.ambiguous) for s in snaps])
    differs = 0
    for i, c in enumerate(cats):
        want = nearest_minutes(g, len(pick), len(snaps[i]), i)
        want[want > r.settings.max_minutes] = np.nan
        got = r.homes[col.time(c)].to_numpy(float)[pick]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True, err_msg=c)
        one = nearest_minutes(only_own, len(pick), len(snaps[i]), i)
        differs += int(np.sum(~(np.abs(one - want) < 1e-6) & np.isfinite(want)))
    assert differs > 10          # the entries matter for these homes


def test_saved_folder_gives_the_same_times(xinjiekou, tmp_path):
    r = xinjiekou
    out = r.save(tmp_path / "run", map_html=False)
    back = Result.load(out)
    a, b = r.facility_snap, back.facility_snap
    assert b.n_extra == a.n_extra > 0
    for f in ("edge", "offset", "leg", "xedge", "xoff", "xleg", "xown"):
        np.testing.assert_array_equal(getattr(b, f), getattr(a, f), err_msg=f)
    # what links, isochrones and recommend compute from a loaded folder: the engine's times
    # from its facility snaps, equal to the fresh analysis's columns
    cats = ["park", "public_square", "primary_school"]
    cat_of = back.facilities[col.CATEGORY].to_numpy()
    got = back.engine.nearest([b.take(np.flatnonzero(cat_of == c)) for c in cats])
    for i, c in enumerate(cats):
        np.testing.assert_allclose(got[i], r.homes[col.time(c)].to_numpy(float), atol=1e-9,
                                   equal_nan=True, err_msg=c)
        st = back.engine.category_state(b.take(back.category_facilities(c)), k=1)
        np.testing.assert_allclose(st.minutes()["nearest"], r.homes[col.time(c)].to_numpy(float),
                                   atol=1e-9, equal_nan=True, err_msg=c)


def test_damaged_or_older_entries_in_a_folder(xinjiekou, tmp_path):
    """Entries naming a facility or an edge that does not exist: one error naming the file;
    a folder from before the entries (no fac_x* arrays) loads with one entry a facility."""
    out = xinjiekou.save(tmp_path / "run", map_html=False)
    path = out / "network.npz"
    with np.load(path) as npz:
        z = {k: npz[k] for k in npz.files}
    bad = dict(z, fac_xown=z["fac_xown"] + len(z["fac_edge"]))
    np.savez(path, **bad)
    with pytest.raises(LifecircleError, match="network.npz"):
        Result.load(out)
    np.savez(path, **{k: v for k, v in z.items() if not k.startswith("fac_x")})
    back = Result.load(out)
    assert back.facility_snap.n_extra == 0
    np.testing.assert_array_equal(back.facility_snap.edge, xinjiekou.facility_snap.edge)
