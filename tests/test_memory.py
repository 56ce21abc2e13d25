"""Memory at city scale: what analyze drops as soon as later stages no longer need it, with
the same results (the peaks themselves are measured by bench/e2e.py, not here)."""

from __future__ import annotations

import weakref

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle import pipeline, splitread
from lifecircle.io.sources import read_osm

UTM50 = "EPSG:32650"


@pytest.fixture(scope="module")
def streets():
    """The shipped sample's street segments (WGS-84): two-point LineStrings."""
    from lifecircle.io.sources import embedded_sample

    return read_osm(embedded_sample(), layers=("streets",)).streets


def _equal_frames(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a.geometry.name == b.geometry.name
    assert a.crs == b.crs
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns=a.geometry.name)),
                                  pd.DataFrame(b.drop(columns=b.geometry.name)))
    pd.testing.assert_index_equal(a.index, b.index)
    # exactly the same coordinates (WKB is every bit of them), kinds and dimensions
    assert (shapely.to_wkb(a.geometry.to_numpy()) == shapely.to_wkb(b.geometry.to_numpy())).all()


def test_projected_streets_are_to_crs_exactly(streets):
    assert len(streets) > 1000 and (shapely.get_type_id(streets.geometry.to_numpy()) == 1).all()
    expected = streets.to_crs(UTM50)
    held = [streets.copy()]
    got = splitread.project_streets(held, UTM50)
    assert held == []                                       # the caller's reference is taken
    _equal_frames(got, expected)
    # a subset with a non-default index keeps it (the clip of a boundary reindexes, but
    # nothing here may rely on that)
    part = streets.iloc[::7]
    _equal_frames(splitread.project_streets([part], UTM50), part.to_crs(UTM50))


def test_projected_streets_other_geometries_fall_back_to_to_crs(streets):
    """Anything but plain 2D LineStrings (a 3D line, an empty one, a point) goes through
    to_crs: the same frame as before."""
    part = streets.iloc[:50].copy()
    for odd in (shapely.LineString([(118.78, 32.04, 5.0), (118.79, 32.05, 5.0)]),
                shapely.LineString(), shapely.Point(118.78, 32.04)):
        geoms = part.geometry.to_numpy().copy()
        geoms[3] = odd
        frame = part.set_geometry(gpd.GeoSeries(geoms, index=part.index, crs=part.crs))
        _equal_frames(splitread.project_streets([frame], UTM50), frame.to_crs(UTM50))
    empty = streets.iloc[:0]
    assert splitread.project_streets([empty], UTM50) is empty


def test_projected_streets_free_the_wgs84_lines_first(streets, monkeypatch):
    """When the projected lines are made, the WGS-84 ones are gone already (one set of a
    city's millions of segment geometries in memory, not two): nothing in project_streets
    holds them any more once the caller gave up its reference."""
    frame = streets.copy()
    frame = frame.set_geometry(gpd.GeoSeries(shapely.from_wkb(shapely.to_wkb(frame.geometry.to_numpy())),
                                             index=frame.index, crs=frame.crs))   # its own objects
    probes = [weakref.ref(g) for g in frame.geometry.to_numpy()[:: max(1, len(frame) // 50)]]
    alive_at_build = []
    make = shapely.linestrings

    def watching(*args, **kwargs):
        alive_at_build.append(sum(p() is not None for p in probes))
        return make(*args, **kwargs)

    monkeypatch.setattr(splitread.shapely, "linestrings", watching)
    held = [frame]
    del frame
    got = splitread.project_streets(held, UTM50)
    assert alive_at_build == [0]
    assert len(got) == len(streets)


def test_one_process_analyze_drops_the_wgs84_streets(monkeypatch):
    """In one process the read's WGS-84 street segments are not kept to the end of analyze
    (nothing after the network reads them): they are handed to project_streets, and the
    OSMData analyze keeps holds none."""
    monkeypatch.setattr(splitread, "FORK_READ", False)
    seen = {}
    project = splitread.project_streets

    def spying(held, crs):
        seen["streets"] = weakref.ref(held[0].geometry.to_numpy()[0])
        return project(held, crs)

    monkeypatch.setattr(splitread, "project_streets", spying)
    r = pipeline.analyze()
    assert "streets" in seen and seen["streets"]() is None
    assert len(r.homes) and r.network.n_edges > 0


def test_one_process_same_network_as_before(monkeypatch):
    """The network and homes of one process equal those of the projection by to_crs (what
    analyze did before)."""
    monkeypatch.setattr(splitread, "FORK_READ", False)
    r = pipeline.analyze()
    monkeypatch.setattr(splitread, "project_streets", lambda held, crs: held.pop().to_crs(crs))
    old = pipeline.analyze()
    for f in ("node_osmid", "node_x", "node_y", "edge_u", "edge_v", "edge_len"):
        assert np.array_equal(getattr(r.network, f), getattr(old.network, f)), f
    assert (shapely.to_wkb(r.network.edge_geom) == shapely.to_wkb(old.network.edge_geom)).all()
    pd.testing.assert_frame_equal(pd.DataFrame(r.homes.drop(columns="geometry")),
                                  pd.DataFrame(old.homes.drop(columns="geometry")))


def test_streets_child_drops_the_wgs84_streets(monkeypatch):
    """The streets half (the forked child's work, run here step by step) keeps no WGS-84
    segment once they are projected, and holds no message it sent while building the
    network."""
    from lifecircle.core.homes import residential_streets
    from lifecircle.core.network import build_network
    from lifecircle.io.sources import _concat_features, embedded_sample
    from lifecircle.settings import DEFAULTS

    seen = {}
    project = splitread.project_streets

    def spying(held, crs):
        seen["line"] = weakref.ref(held[0].geometry.to_numpy()[0])
        out = project(held, crs)
        seen["alive_after"] = seen["line"]() is not None
        return out

    monkeypatch.setattr(splitread, "project_streets", spying)
    steps = splitread._streets_side(embedded_sample(), DEFAULTS, lambda: _concat_features([]),
                                    (read_osm, residential_streets, build_network, lambda b: (UTM50, None)))
    assert next(steps)[0] == "nodes"
    assert next(steps)[0] == "streets"
    kind, home_streets = next(steps)
    assert kind == "homes" and seen["alive_after"] is False
    assert next(steps)[0] == "network"


def test_one_process_trims_once_the_segments_are_freed(monkeypatch):
    """In one process the freed heap is handed back after the network stage, when the
    WGS-84 and projected segments (millions of small blocks glibc would keep) are gone,
    and again at the end of analyze."""
    monkeypatch.setattr(splitread, "FORK_READ", False)
    seen, calls = {}, []
    project = splitread.project_streets

    def spying(held, crs):
        seen["wgs"] = weakref.ref(held[0].geometry.to_numpy()[0])
        out = project(held, crs)
        seen["projected"] = weakref.ref(out.geometry.to_numpy()[-1])
        return out

    monkeypatch.setattr(splitread, "project_streets", spying)
    monkeypatch.setattr(pipeline, "release_freed_memory",
                        lambda: calls.append((seen["wgs"]() is None, seen["projected"]() is None)))
    pipeline.analyze()
    assert len(calls) == 2 and calls[0][0]


def test_projected_streets_keep_geometry_name_and_dtypes(streets):
    """A frame whose geometry column is not called ``geometry`` (``read_postgis`` names it
    ``geom``), a categorical column and an all-missing text column: what to_crs gives."""
    frame = streets.iloc[:200].rename_geometry("geom")
    frame = frame.assign(kind=pd.Categorical(["a", "b"] * 100),
                         nothing=pd.Series([None] * 200, index=frame.index, dtype="str"))
    got = splitread.project_streets([frame.copy()], UTM50)
    _equal_frames(got, frame.to_crs(UTM50))
    assert got.geometry.name == "geom" and got["kind"].dtype == "category"


def test_analyze_streets_with_another_geometry_name(monkeypatch):
    """analyze of an OSMData whose streets' geometry column is ``geom``: the same homes as
    with ``geometry`` (it was a KeyError traceback)."""
    import dataclasses

    from lifecircle.io.sources import embedded_sample

    monkeypatch.setenv("LIFECIRCLE_SPLIT_READ", "0")
    data = read_osm(embedded_sample())
    renamed = dataclasses.replace(data, streets=data.streets.rename_geometry("geom"))
    a, b = pipeline.analyze(data), pipeline.analyze(renamed)
    assert len(a.homes) > 100
    pd.testing.assert_frame_equal(pd.DataFrame(a.homes), pd.DataFrame(b.homes))


# --------------------------------------------------------------------------------------------
# the network built from the segments' coordinates: the projected lines go first


@pytest.fixture(scope="module")
def projected():
    """The sample's projected street segments (their own geometry objects) and features."""
    from lifecircle.io.sources import embedded_sample

    data = read_osm(embedded_sample())
    return splitread.project_streets([data.streets.copy()], UTM50), data.features


def _own_lines(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.set_geometry(gpd.GeoSeries(shapely.from_wkb(shapely.to_wkb(frame.geometry.to_numpy())),
                                            index=frame.index, crs=frame.crs))


@pytest.mark.parametrize("contract, prune", [(True, True), (False, True), (True, False)])
def test_network_from_handed_streets_is_the_same(projected, contract, prune):
    """Handed over in a list, the streets' lines are dropped and the network's made again
    from their coordinates: every array and every geometry (kept and left-out segments,
    chains, single segments, the plazas' segments) the same as built from the frame."""
    from lifecircle.core.network import build_network, pedestrian_areas

    streets, features = projected
    assert len(pedestrian_areas(features)) >= 1            # the plaza path is taken
    kw = dict(contract=contract, prune=prune, areas=features)
    a = build_network(streets, UTM50, **kw)
    held = [_own_lines(streets)]
    b = build_network(held, UTM50, **kw)
    assert held == []
    for f in ("node_osmid", "node_x", "node_y", "edge_u", "edge_v", "edge_len", "edge_oneway",
              "edge_highway", "edge_name", "edge_area"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.pruned == b.pruned
    for f in ("edge_geom", "pruned_geom"):
        ga, gb = getattr(a, f), getattr(b, f)
        if not prune and f == "pruned_geom":
            assert ga is None and gb is None
            continue
        assert len(ga) == len(gb) and (shapely.to_wkb(ga) == shapely.to_wkb(gb)).all(), f
    assert (~np.asarray(a.edge_area)).any() and np.asarray(a.edge_area).any()


def test_network_drops_the_handed_lines_before_building(projected):
    """The segments' lines are gone when the network's arrays are built (``release`` is
    called then), and none of them is in the network."""
    from lifecircle.core.network import build_network

    streets, features = projected
    frame = _own_lines(streets)
    probes = [weakref.ref(g) for g in frame.geometry.to_numpy()[:: max(1, len(frame) // 50)]]
    alive = []
    held = [frame]
    del frame
    net = build_network(held, UTM50, areas=features,
                        release=lambda: alive.append(sum(p() is not None for p in probes)))
    assert alive == [0]
    assert net.n_edges > 0 and all(p() is None for p in probes)


def test_network_keeps_other_geometries(projected):
    """Lines it could not make again from two coordinates (a 3D one) stay as they are: the
    same network as from the frame, and ``release`` is not called."""
    from lifecircle.core.network import build_network

    streets, features = projected
    frame = _own_lines(streets)
    geoms = frame.geometry.to_numpy().copy()
    (x0, y0), (x1, y1) = shapely.get_coordinates(geoms[5])
    geoms[5] = shapely.LineString([(x0, y0, 1.0), (x1, y1, 1.0)])
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    a = build_network(frame, UTM50, areas=features)
    called = []
    b = build_network([frame], UTM50, areas=features, release=lambda: called.append(1))
    assert called == []
    assert (shapely.to_wkb(a.edge_geom) == shapely.to_wkb(b.edge_geom)).all()


def test_streets_child_drops_the_projected_streets_while_building(monkeypatch):
    """The streets half (the child's work) hands its projected segments to build_network:
    when it trims the freed heap, no projected segment is alive any more (but those of the
    residential streets it sent, which the sent frame holds until sent)."""
    from lifecircle.core.homes import residential_streets
    from lifecircle.core.network import build_network
    from lifecircle.io.sources import _concat_features, embedded_sample
    from lifecircle.settings import DEFAULTS

    seen, alive = {}, []
    project = splitread.project_streets

    def spying(held, crs):
        out = project(held, crs)
        seen["probes"] = [weakref.ref(g) for g in out.geometry.to_numpy()]
        return out

    monkeypatch.setattr(splitread, "project_streets", spying)
    monkeypatch.setattr(splitread, "release_freed_memory",
                        lambda: alive.append(sum(p() is not None for p in seen["probes"])))
    steps = splitread._streets_side(embedded_sample(), DEFAULTS, lambda: _concat_features([]),
                                    (read_osm, residential_streets, build_network, lambda b: (UTM50, None)))
    assert next(steps)[0] == "nodes"
    assert next(steps)[0] == "streets"
    kind, home_streets = next(steps)
    kind, net = next(steps)
    assert kind == "network" and net.n_edges > 0
    assert len(alive) == 1 and alive[0] <= len(home_streets) < len(seen["probes"]) // 2
    del home_streets
    assert all(p() is None for p in seen["probes"])


# --------------------------------------------------------------------------------------------
# homes: the buildings projected a chunk at a time


def test_homes_project_buildings_a_chunk_at_a_time(monkeypatch):
    """find_homes projects the buildings and land use a few geometries at a time (never all
    their corners copied at once), with exactly to_crs's coordinates: polygons with holes,
    multipolygons, chunks that split them anywhere."""
    from lifecircle.core import homes
    from lifecircle.io.sources import embedded_sample

    feats = read_osm(embedded_sample()).features
    geoms = feats.geometry.to_numpy()
    geoms = geoms[np.isin(shapely.get_type_id(geoms), (3, 6))]
    holes = shapely.Polygon([(118.78, 32.04), (118.79, 32.04), (118.79, 32.05), (118.78, 32.05)],
                            [[(118.782, 32.042), (118.785, 32.042), (118.785, 32.045)]])
    multi = shapely.MultiPolygon([holes, shapely.box(118.80, 32.06, 118.81, 32.07)])
    geoms = np.concatenate([geoms, [holes, multi, holes]])
    expected = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(UTM50).to_numpy()
    sizes = []
    counts = shapely.get_coordinates

    def counting(g, *args, **kwargs):
        sizes.append(len(g))
        return counts(g, *args, **kwargs)

    monkeypatch.setattr(homes, "TO_CRS_CHUNK", 7)
    monkeypatch.setattr(homes.shapely, "get_coordinates", counting)
    got = homes._to_crs(geoms, "EPSG:4326", UTM50)
    monkeypatch.undo()
    assert len(geoms) > 500 and sizes and max(sizes) <= 7 and sum(sizes) == len(geoms)
    assert (shapely.to_wkb(got) == shapely.to_wkb(expected)).all()
    assert got is not geoms and (shapely.get_coordinates(geoms)[:, 0] < 180).all()   # not touched
