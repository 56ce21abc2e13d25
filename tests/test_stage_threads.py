"""The facilities/homes/snap/coverage stages on two threads give exactly what one thread gives.

:mod:`lifecircle.core.chunks` cuts a vectorised call's arrays into chunks run on threads. Each
test forces tiny chunks on two threads (so every chunk boundary, offset and join is
exercised) and compares with the plain single call: the chunk helpers on hand-made data with
ties (GEOS's pick among equidistant edges), and the homes, snapping and coverage stages on a
real extract (Nanjing Xinjiekou), field by field and geometry by geometry.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file
from test_homes_snap_paths import grid_net

from lifecircle import columns as col
from lifecircle.core import chunks
from lifecircle.core import coverage as V
from lifecircle.core import homes as H
from lifecircle.core import snapping as S
from lifecircle.core.network import build_network
from lifecircle.core.profiles import load_profile
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import read_osm
from lifecircle.settings import DEFAULTS


@pytest.fixture
def tiny(monkeypatch):
    """Two threads, chunks of 7 items, chunking from 2 items up."""
    monkeypatch.setattr(chunks, "THREADS", 2)
    monkeypatch.setattr(chunks, "CHUNK", 7)
    monkeypatch.setattr(chunks, "MIN_ITEMS", 2)


def plain(monkeypatch):
    monkeypatch.setattr(chunks, "THREADS", 1)


def same_geoms(a, b):
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return len(a) == len(b) and bool((shapely.to_wkb(a) == shapely.to_wkb(b)).all())


def same_frames(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if c == "geometry":
            assert same_geoms(x, y), c
        elif x.dtype == object:
            assert x.tolist() == y.tolist(), c
        else:
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), c


# ------------------------------------------------------------------------------------------
# the helpers


def test_spans_cover_every_item_once(tiny):
    for n in (0, 1, 2, 7, 8, 50):
        parts = chunks.spans(n)
        got = np.concatenate([np.arange(lo, hi) for lo, hi in parts]) if n else np.zeros(0)
        assert got.tolist() == list(range(n))
        assert all(hi - lo <= 7 for lo, hi in parts)
    assert len(chunks.spans(50)) == 8


def test_run_keeps_order_and_uses_two_threads(tiny):
    import threading
    import time

    seen = set()

    def task(i):
        def f():
            seen.add(threading.get_ident())
            time.sleep(0.01)     # releases the GIL: the other thread takes the next task
            return i * i
        return f
    assert chunks.run([task(i) for i in range(12)]) == [i * i for i in range(12)]
    assert len(seen) == 2


def test_run_raises_the_first_failing_task(tiny):
    def fail(i):
        def f():
            raise ValueError(i)
        return f
    with pytest.raises(ValueError, match="^2$"):
        chunks.run([lambda: 0, lambda: 1, fail(2), lambda: 3, fail(4)])


def test_a_failure_stops_the_handing_out(tiny):
    import time

    ran = []

    def task(i):
        def f():
            ran.append(i)
            time.sleep(0.005)
            if i == 3:
                raise KeyError(i)
            return i
        return f
    with pytest.raises(KeyError):
        chunks.run([task(i) for i in range(40)])
    assert 3 in ran and len(ran) < 10


def test_beside_runs_both_and_raises_the_background_error(tiny):
    import threading

    where = {}
    got = chunks.beside(lambda: where.setdefault("bg", threading.get_ident()) and 1,
                        lambda: where.setdefault("fg", threading.get_ident()) and 2)
    assert got == (1, 2) and where["fg"] == threading.get_ident() != where["bg"]
    with pytest.raises(ZeroDivisionError):
        chunks.beside(lambda: 1 / 0, lambda: 2)


def test_query_offsets_and_order_are_the_plain_query(tiny):
    rng = np.random.default_rng(1)
    lines = shapely.linestrings(rng.random((300, 1, 2)) * 1000 + rng.random((300, 3, 2)) * 40)
    pts = shapely.points(rng.random((101, 2)) * 1000)
    tree = shapely.STRtree(lines)
    reach = rng.random(101) * 60
    got = chunks.query(tree, pts, predicate="dwithin", distance=reach)
    want = shapely.STRtree(lines).query(pts, predicate="dwithin", distance=reach)
    assert got.shape[1] > 101 and np.array_equal(got, want)
    boxes = shapely.buffer(pts, 25.0)
    assert np.array_equal(chunks.query(tree, lambda lo, hi: boxes[lo:hi], n=len(boxes)), tree.query(boxes))
    # an empty chunk answer and an empty call keep the (2, 0) shape
    far = shapely.points(np.full((20, 2), 1e7))
    assert chunks.query(tree, far).shape == (2, 0)
    assert chunks.query(tree, far[:0]).shape == (2, 0)


def test_itemwise_and_made_are_the_plain_call(tiny):
    rng = np.random.default_rng(2)
    polys = shapely.buffer(shapely.points(rng.random((60, 2)) * 100), rng.random(60) * 5 + 1)
    lines = shapely.linestrings(rng.random((60, 3, 2)) * 100)
    assert np.array_equal(chunks.itemwise(shapely.distance, 60, polys, lines), shapely.distance(polys, lines))
    assert same_geoms(chunks.itemwise(shapely.shortest_line, 60, polys, lines),
                      shapely.shortest_line(polys, lines))
    idx = rng.integers(0, 60, 200)
    assert np.array_equal(chunks.made(lambda lo, hi: shapely.distance(polys[idx[lo:hi]], lines[0]), 200),
                          shapely.distance(polys[idx], lines[0]))
    # rows per item (coordinates) join in item order
    assert np.array_equal(chunks.itemwise(shapely.get_coordinates, 60, lines), shapely.get_coordinates(lines))


# ------------------------------------------------------------------------------------------
# the stages on a real extract


@pytest.fixture(scope="module")
def xinjiekou():
    data = read_osm(shared_file("china/nanjing_xinjiekou_2021.osm.pbf"))
    b = data.streets.total_bounds
    crs = choose_crs(DEFAULTS.crs, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    streets = data.streets.to_crs(crs)
    net = build_network(streets, crs, DEFAULTS, source=data.source, areas=data.features)
    return data, crs, net, streets


def snap_all(net, homes, fac_geoms):
    home_pts = homes.geometry.to_numpy()
    fac_pts = S.entry_points(net, fac_geoms)
    both = S.snap_points(net, np.concatenate([home_pts, fac_pts]), DEFAULTS.max_snap_m)
    hs = both.take(np.arange(len(home_pts)))
    caps = S.fragment_captures(net, home_pts, hs, DEFAULTS.max_snap_m)
    return fac_pts, both, caps


def test_homes_and_snap_on_threads_are_the_plain_ones(xinjiekou, monkeypatch):
    data, crs, net, streets = xinjiekou
    fac = data.features.geometry.to_crs(crs).to_numpy()
    fac = fac[~shapely.is_empty(fac)]

    def stages():
        homes = H.find_homes(data.features, crs, DEFAULTS, streets=H.residential_streets(streets))
        return homes, *snap_all(net, homes, fac)

    plain(monkeypatch)
    homes0, fac0, snap0, caps0 = stages()
    monkeypatch.setattr(chunks, "THREADS", 2)
    monkeypatch.setattr(chunks, "CHUNK", 97)
    monkeypatch.setattr(chunks, "MIN_ITEMS", 2)
    monkeypatch.setattr(H, "TO_CRS_CHUNK", 61)       # the projection on threads, many chunks
    homes1, fac1, snap1, caps1 = stages()
    assert len(homes0) > 300 and snap0.reachable.sum() > 300
    same_frames(homes0, homes1)
    assert same_geoms(fac0, fac1)
    for f in ("edge", "offset", "leg", "ambiguous"):
        assert np.array_equal(getattr(snap0, f), getattr(snap1, f), equal_nan=True), f
    assert snap0.ambiguous.any()          # ties flagged: the tie test ran on threads too
    for a, b in zip(caps0, caps1):
        assert np.array_equal(a, b)


def test_snap_ties_on_threads(tiny, monkeypatch):
    # points midway between two parallel streets, and at a junction: the nearest edge is the
    # lowest index among equidistant ones, flagged ambiguous, chunked or not
    net = grid_net(5, 100.0)
    pts = shapely.points(np.array([(50.0, 50.0 + 0.1 * i) for i in range(30)]
                                  + [(100.0 + 3 * i, 100.0 + 3 * i) for i in range(10)]))
    got = S.snap_points(net, pts, 60.0)
    monkeypatch.setattr(chunks, "THREADS", 1)
    want = S.snap_points(net, pts, 60.0)
    for f in ("edge", "offset", "leg", "ambiguous"):
        assert np.array_equal(getattr(got, f), getattr(want, f)), f
    assert want.ambiguous[0] and want.ambiguous.sum() >= 10 and (want.edge >= 0).all()


def test_coverage_medians_on_threads(monkeypatch):
    prof = load_profile("default")
    rng = np.random.default_rng(3)
    n = 500
    data = {col.time(c.id): np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 40) for c in prof.categories}
    data[col.POPULATION] = rng.random(n) * 50
    data[col.REACHABLE] = rng.random(n) < 0.95
    homes = pd.DataFrame(data)
    status = V.data_status(prof, {c.id: 1 for c in prof.categories[:-3]})
    counts = {c.id: 2 for c in prof.categories}

    def run():
        scored = V.home_scores(homes, prof, 0.5, (5, 10, 15), status=status)
        return V.summarize(scored, prof, counts, tiers=(5, 10, 15), status=status)
    plain(monkeypatch)
    want = run()
    monkeypatch.setattr(chunks, "THREADS", 2)
    got = run()
    same_frames(want, got)
    meds = want.loc[want["level"] == "category", "median_min"].to_numpy(float)
    assert np.isfinite(meds[:-3]).all() and np.isnan(meds[-3:]).all()


def test_to_crs_on_threads_is_geopandas(tiny, monkeypatch):
    rng = np.random.default_rng(4)
    polys = shapely.buffer(shapely.points(rng.random((300, 2)) * 0.05 + [118.78, 32.04]), 0.0005)
    monkeypatch.setattr(H, "TO_CRS_CHUNK", 13)
    got = H._to_crs(polys, "EPSG:4326", "EPSG:32650")
    want = gpd.GeoSeries(polys, crs="EPSG:4326").to_crs("EPSG:32650").to_numpy()
    assert same_geoms(got, want)
