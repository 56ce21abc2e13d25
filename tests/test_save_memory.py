"""``Result.save`` lets go of what it does not use before it forks the GeoPackage writer
(:meth:`lifecircle.result.Result._release_for_save`): the network's search graphs and spatial
indexes, the engine's renumbered network, and the engine itself where the map does not name the
nearest facilities (a map of hexagons, or none). The forked child would otherwise share them and
the save, where a city's run peaks, held them for nothing. The folder is the same, and what was
let go is built again, with the same answers, when next asked for."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from test_write_parallel import _assert_same, _content

import lifecircle.io.outputs as O
from lifecircle import columns as col
from lifecircle.core.engine import AccessEngine


def _own_copy(result, **settings):
    """A copy of the session's result with its own network and engine (their caches built),
    so releasing them leaves the shared fixture alone."""
    net = copy.copy(result.network)
    st = dataclasses.replace(result.settings, **settings)
    r = dataclasses.replace(result, network=net, settings=st, _map_prep=None,
                            _engine=AccessEngine(net, result.home_snap,
                                                 result.homes[col.POPULATION].to_numpy(float), st))
    _ = net.forward, net.reverse, net.tree, net.snap_tree
    _ = r.engine._local, r.engine._local_ends, r.engine._home_blocks
    return r


def _nearest(r):
    cat_of = r.facilities[col.CATEGORY].to_numpy()
    snaps = [r.facility_snap.take(np.flatnonzero(cat_of == c.id)) for c in r.profile.categories]
    return r.engine.nearest(snaps)


def _state_at_fork(monkeypatch, r):
    """What ``r`` holds when the save forks its writer."""
    seen = {}
    real = O._fork

    def fork(*args, **kwargs):
        net = r.network
        seen.update(engine=r._engine, forward=net._forward, reverse=net._reverse, tree=net._tree,
                    snap_tree=net._snap_tree,
                    local=None if r._engine is None else r._engine.__dict__.get("_local"),
                    blocks=None if r._engine is None else r._engine.__dict__.get("_home_blocks"))
        return real(*args, **kwargs)

    monkeypatch.setattr(O, "_fork", fork)
    return seen


@pytest.mark.skipif(not O.FORK_GPKG, reason="the GeoPackage is written in a child only on Linux")
def test_a_hexagon_map_save_forks_without_the_engine_and_indexes(helsinki, tmp_path, monkeypatch):
    kept = _own_copy(helsinki, map_max_points=50)
    assert len(kept.homes) > 50                     # a map of hexagons
    before = _nearest(kept)
    with monkeypatch.context() as mp:               # the folder as saved holding everything
        mp.setattr(type(kept), "_release_for_save", lambda self, map_html: None)
        kept.save(tmp_path / "kept")
    r = _own_copy(helsinki, map_max_points=50)
    seen = _state_at_fork(monkeypatch, r)
    r.save(tmp_path / "released")
    assert seen and all(v is None for v in seen.values()), seen
    _assert_same(_content(tmp_path / "kept"), _content(tmp_path / "released"))
    # built again when asked for, with the same minutes
    np.testing.assert_array_equal(_nearest(r), before)
    assert r.network.forward.indptr.shape == (r.network.n_nodes + 1,)


@pytest.mark.skipif(not O.FORK_GPKG, reason="the GeoPackage is written in a child only on Linux")
def test_a_point_map_save_keeps_what_its_nearest_facilities_use(helsinki, tmp_path, monkeypatch):
    """A map of points names each home's nearest facilities (the engine on the reversed
    network): those stay; the engine's renumbered network and the other indexes go."""
    r = _own_copy(helsinki)
    assert len(r.homes) <= r.settings.map_max_points
    engine, reverse = r._engine, r.network._reverse
    before = _nearest(r)
    seen = _state_at_fork(monkeypatch, r)
    r.save(tmp_path / "out")
    assert seen["engine"] is engine and seen["reverse"] is reverse
    assert seen["forward"] is None and seen["tree"] is None and seen["snap_tree"] is None
    assert seen["local"] is None and seen["blocks"] is None
    np.testing.assert_array_equal(_nearest(r), before)


def test_without_a_map_the_engine_goes_too(helsinki, tmp_path):
    r = _own_copy(helsinki)
    r.save(tmp_path / "out", map_html=False)
    assert r._engine is None and r.network._reverse is None and r.network._forward is None
    assert not (tmp_path / "out" / O.MAP_HTML).exists()


def test_background_pieces_take_no_reference_to_the_buildings(helsinki):
    """The background's pieces hold the features' polygons by position: the buildings (a
    city's millions, never drawn there) are not referenced until they are made. A reference
    writes to the geometry object's page, which beside the forked writer is copied."""
    import sys

    import shapely

    from lifecircle.render import background as bg

    geoms, tags, crs = bg.feature_arrays(helsinki.features)
    kinds = shapely.get_type_id(geoms)
    at = [i for i in range(len(geoms)) if kinds[i] in (3, 6) and isinstance(tags[i], dict)
          and tags[i].get("building", "no") != "no"]
    assert len(at) > 100
    before = [sys.getrefcount(geoms[i]) for i in at[:50]]
    parts, least, buildings = bg.feature_pieces(geoms, tags, crs, helsinki.crs)
    assert parts["buildings"] == int(shapely.get_num_coordinates(geoms[at]).sum())
    assert [sys.getrefcount(geoms[i]) for i in at[:50]] == before
    made = buildings()                              # made when asked: the same polygons
    assert len(made) == len(at)


def test_analyze_lets_go_of_the_search_caches_after_the_engine():
    """After the engine stage nothing uses the engine's renumbered network and blocks or the
    network's forward graph and spatial indexes: the analysis returns without them (the
    coverage stage and the save no longer hold them); the reversed graph, on which a map of
    points names the nearest facilities, stays. The same minutes when they are built again."""
    import lifecircle
    from lifecircle.io.sources import embedded_sample

    r = lifecircle.analyze(embedded_sample("helsinki"))
    cached = r._engine.__dict__
    assert "_local" not in cached and "_local_ends" not in cached and "_home_blocks" not in cached
    net = r.network
    assert net._forward is None and net._tree is None and net._snap_tree is None
    assert net._reverse is not None
    cats = r.profile.categories
    again = _nearest(r)              # the renumbered network built again: the table's minutes
    assert all(np.array_equal(again[i], r.homes[col.time(c.id)].to_numpy(), equal_nan=True)
               for i, c in enumerate(cats))
