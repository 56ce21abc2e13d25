"""The split read's streets child works without waiting for the features (lifecircle.splitread):
it finds the CRS and the clip from the streets' bounds and the boundary, projects the streets,
finds the residential streets and builds the network up to the plazas by itself, and takes only
the pedestrian features from the parent. The results stay those of one process, on a district
drawn where the CRS from the boundary is not the one from the streets (a UTM zone border) and
a plaza outside the boundary touches a street inside it; a child failing at any of its new
steps leaves the work to the parent."""

from __future__ import annotations

import os
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
import synthetic_osm
from test_plazas import district
from test_splitread import _fail_in_child as _fail_in_child_at
from test_splitread import _one_process, forks  # noqa: F401 - the fixture
from test_splitread import _same as _same_city

from lifecircle import pipeline, splitread
from lifecircle.core import network as network_mod
from lifecircle.core.network import build_network
from lifecircle.errors import BoundaryError
from lifecircle.io.crs import choose_crs
from lifecircle.io.sources import embedded_sample, read_osm
from lifecircle.settings import DEFAULTS

pytestmark = pytest.mark.skipif(not splitread.CAN_FORK, reason="the split read forks (Linux only)")


def _same(a, b) -> None:
    """Every output equal (test_splitread's comparison, for a district of a few streets)."""
    _same_city(a, b, min_edges=10)


#: The plaza district (tests/test_plazas.py) moved to just west of 6° E, the border of UTM
#: zones 31 and 32: its streets' centre lies in zone 32, the boundary's west part in zone 31.
LON0 = 5.999
MARGIN_M = 10.0


@pytest.fixture(scope="module")
def border(tmp_path_factory):
    """(the district file, its boundary: the west part, x -160..60 m, y -60..240 m)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(synthetic_osm, "LOCAL_LON0", LON0)
    try:
        path = tmp_path_factory.mktemp("border") / "border.osm"
        path.write_text(district(), encoding="utf-8")
        ring = [synthetic_osm.local_xy(x, y) for x, y in ((-160, -60), (60, -60), (60, 240), (-160, 240))]
    finally:
        mp.undo()
    return path, gpd.GeoDataFrame({"community": ["west"]}, geometry=[shapely.Polygon(ring)], crs=4326)


def test_border_district_tells_a_wrong_crs_or_clip_apart(border):
    """The district is one where each of the child's new steps matters: the CRS from the
    boundary is not the one from the streets' bounds, and the network built from the clipped
    streets with the plazas not clipped (a plaza outside the boundary, entered by a street
    that crosses it) is not the network of the clipped plazas."""
    path, box = border
    data = read_osm(path)
    b = data.streets.total_bounds
    crs, _, area, keep = pipeline._study_area(DEFAULTS.with_(boundary_margin_m=MARGIN_M), b,
                                              *pipeline._communities(box, None, "wgs84"), box, path)
    assert choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2).to_epsg() == 32632
    assert crs.to_epsg() == 32631
    clipped = data.clip(keep)
    right = build_network(clipped.streets, crs, areas=clipped.features)
    wrong = build_network(clipped.streets, crs, areas=data.features)
    assert right.edge_area.any() and wrong.n_edges > right.n_edges


def test_split_is_one_process_across_a_zone_border_with_plazas(monkeypatch, forks, border):  # noqa: F811
    path, box = border
    one = _one_process(monkeypatch, path, boundary=box, boundary_margin_m=MARGIN_M)
    two = pipeline.analyze(path, boundary=box, boundary_margin_m=MARGIN_M)
    assert forks[-1] is not None and forks[-1].step == 4 and not forks[-1].failed   # the child did it
    assert two.network.crs.to_epsg() == 32631 and two.network.edge_area.any()
    assert two.parallel_stages == ("network",)
    _same(one, two)


def test_child_builds_up_to_the_plazas_before_the_features_are_read(monkeypatch, forks, tmp_path):  # noqa: F811
    """The parent's features read waits (up to 30 s) until the child asks for the
    pedestrian features from inside build_network, its residential streets already sent: the
    child got there without any word from the parent."""
    parent = os.getpid()
    log = tmp_path / "child.log"
    seen = []
    real_read, real_build = pipeline.read_osm, pipeline.build_network

    def build(*args, areas=None, **kwargs):
        if os.getpid() != parent and callable(areas):
            ask = areas

            def areas():
                with open(log, "a") as f:
                    f.write("waiting\n")
                return ask()
        return real_build(*args, areas=areas, **kwargs)

    def read(source, *args, layers=("streets", "features"), **kwargs):
        out = real_read(source, *args, layers=layers, **kwargs)
        if os.getpid() == parent and layers == ("features",):
            until = time.monotonic() + 30
            while time.monotonic() < until:
                if log.exists() and log.read_text() == "waiting\n":
                    seen.append(True)     # before this process said anything to the child
                    break
                time.sleep(0.01)
        return out

    monkeypatch.setattr(pipeline, "build_network", build)
    monkeypatch.setattr(pipeline, "read_osm", read)
    two = pipeline.analyze(embedded_sample())
    assert seen == [True] and log.read_text() == "waiting\n"
    assert forks[-1] is not None and forks[-1].step == 4 and not forks[-1].failed
    one = _one_process(monkeypatch, embedded_sample())
    _same_city(one, two)


def test_streets_half_steps_in_order():
    """The streets half (the child's work, run here step by step): the study area from the
    streets' own bounds, the residential streets sent, then the pedestrian features asked for
    from inside build_network and clipped as OSMData.clip clips all features."""
    seen = []
    data = read_osm(embedded_sample())
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    keep = shapely.box(*shapely.centroid(shapely.box(*b)).buffer(0.004).bounds)
    pedestrian = splitread.pedestrian_features(data.features)
    inside = pedestrian.intersects(keep).to_numpy()
    assert inside.any() and not inside.all()        # the clip takes some, not all

    def area(bounds):
        seen.append(("area", tuple(bounds)))
        return crs, keep

    def receive():
        seen.append(("receive",))
        return pedestrian

    def build(*args, areas=None, **kwargs):
        seen.append(("build",))
        got = {}

        def asking():
            got["areas"] = areas()
            return got["areas"]
        net = build_network(*args, areas=asking, **kwargs)
        seen.append(("areas", got["areas"]))
        return net

    steps = splitread._streets_side(embedded_sample(), DEFAULTS, receive,
                                    (read_osm, pipeline.residential_streets, build, area))
    kind, nodes = next(steps)     # the feature nodes, read with the streets
    assert kind == "nodes" and seen == []
    assert sorted(nodes[0]) == sorted(data.features.osm_id[data.features.osm_type == "node"])
    assert next(steps)[0] == "streets" and seen == []
    assert next(steps)[0] == "homes" and seen == [("area", tuple(b))]
    kind, net = next(steps)
    assert kind == "network" and [s[0] for s in seen] == ["area", "build", "receive", "areas"]
    want = splitread.pedestrian_features(data.clip(keep).features)
    got = seen[-1][1]
    assert list(got["osm_id"]) == list(want["osm_id"]) and len(got) == inside.sum()
    ref = build_network(data.clip(keep).streets, crs, areas=data.clip(keep).features)
    assert np.array_equal(net.edge_u, ref.edge_u) and np.array_equal(net.node_x, ref.node_x)


def _fail_in_child(monkeypatch, how):
    parent = os.getpid()
    if how == "study area":
        _fail_in_child_at(monkeypatch, "_streets_area")
    elif how == "waiting":           # dies (a clean-looking exit) while waiting for the features
        real_build = pipeline.build_network

        def build(*args, areas=None, **kwargs):
            if os.getpid() != parent and callable(areas):
                areas = lambda: os._exit(0)   # noqa: E731
            return real_build(*args, areas=areas, **kwargs)
        monkeypatch.setattr(pipeline, "build_network", build)
    else:                            # after the features came: joining the plazas in
        real_areas = network_mod.pedestrian_areas

        def plazas(*args, **kwargs):
            if os.getpid() != parent:
                raise MemoryError("broken child")
            return real_areas(*args, **kwargs)
        monkeypatch.setattr(network_mod, "pedestrian_areas", plazas)


@pytest.mark.parametrize("how", ["study area", "waiting", "plazas"])
def test_child_failing_at_an_early_step_leaves_the_work_to_the_parent(monkeypatch, forks, border, how):  # noqa: F811
    path, box = border
    one = _one_process(monkeypatch, path, boundary=box, boundary_margin_m=MARGIN_M)
    _fail_in_child(monkeypatch, how)
    two = pipeline.analyze(path, boundary=box, boundary_margin_m=MARGIN_M)
    split = forks[-1]
    assert split is not None and split.failed and split.reaped and split.local is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(split.pid, os.WNOHANG)          # reaped
    assert two.parallel_stages == ()
    _same(one, two)


def test_boundary_off_the_data_same_error_and_child_reaped(monkeypatch, forks, border):  # noqa: F811
    """The child meets the boundary's error too (and stops); the parent's own study area
    raises it, as in one process."""
    path, _ = border
    far = gpd.GeoDataFrame({"community": ["far"]}, geometry=[shapely.box(7.5, 45.0, 7.6, 45.1)], crs=4326)
    with pytest.raises(BoundaryError) as one:
        _one_process(monkeypatch, path, boundary=far)
    with pytest.raises(BoundaryError) as two:
        pipeline.analyze(path, boundary=far)
    assert str(one.value) == str(two.value) and "does not overlap" in str(two.value)
    assert forks[-1] is not None and forks[-1].reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[-1].pid, os.WNOHANG)


def test_chain_walk_loaded_before_the_wait(monkeypatch):
    """With the features to come (``areas`` a function), build_network loads the compiled
    chain walk first (numba's cache: ~0.4 s that would otherwise follow the features), for a
    network that uses it; the network is the one built with the features at hand."""
    data = read_osm(embedded_sample())
    b = data.streets.total_bounds
    crs = choose_crs(None, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    order = []
    real = network_mod._load_chain_walk
    monkeypatch.setattr(network_mod, "_load_chain_walk", lambda: (order.append("load"), real()))
    monkeypatch.setattr(network_mod, "COMPILED_WALK_MIN", 0)
    net = build_network(data.streets, crs, areas=lambda: (order.append("areas"), data.features)[1])
    assert order == ["load", "areas"]
    ref = build_network(data.streets, crs, areas=data.features)
    assert order == ["load", "areas"]            # features at hand: nothing to wait for
    for f in ("node_osmid", "node_x", "edge_u", "edge_v", "edge_len", "edge_area"):
        assert np.array_equal(getattr(net, f), getattr(ref, f)), f
    assert net.edge_area.any()
    monkeypatch.setattr(network_mod, "COMPILED_WALK_MIN", 10**9)   # a district: the Python walk
    build_network(data.streets, crs, areas=lambda: data.features)
    assert order == ["load", "areas"]
