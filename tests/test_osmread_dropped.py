"""The ways the reader's way filter drops in C++ and reads all the same (through the pass's
handler for filtered-out ways, in file order): untagged rings of feature relations, and in a
features-only read (the split read's parent) the ``highway=*`` features with no other key of
the groups and member ways whose only such key is ``highway``. On a small hand-written file,
as XML and as PBF, its ways not sorted by id."""

from __future__ import annotations

import pytest
import shapely
from conftest import pbf_copy
from test_osmread import _osm, _square
from test_osmread_overlap import _assert_same

from lifecircle.io import osmread
from lifecircle.io.sources import read_osm
from lifecircle.splitread import pedestrian_features

NODES = {1: (0.0, -0.002), 2: (0.003, -0.002), 3: (0.006, -0.002)}
NODES.update(_square(10, 0.0, 0.0, 0.004))       # the park's outer ring (untagged)
NODES.update(_square(20, 0.001, 0.001, 0.001))   # its inner ring (untagged)
NODES.update(_square(30, 0.005, 0.0, 0.001))     # a pedestrian square, no other key
NODES.update(_square(40, 0.008, 0.0, 0.001))     # a school
NODES.update(_square(50, 0.0, 0.006, 0.004))     # the grass's outer ring (untagged)
NODES.update(_square(60, 0.001, 0.007, 0.001))   # its inner ring: a footway, no other key

# file order, ids not sorted (each kind of way read between the others)
WAYS = [
    (300, [10, 11, 12, 13, 10], {}),
    (310, [20, 21, 22, 23, 20], {}),
    (205, [30, 31, 32, 33, 30], {"highway": "pedestrian", "area": "yes"}),
    (150, [40, 41, 42, 43, 40], {"amenity": "school"}),
    (120, [1, 2], {"highway": "pedestrian"}),
    (100, [2, 3], {"highway": "residential"}),
    (400, [60, 61, 62, 63, 60], {"highway": "footway"}),
    (90, [50, 51, 52, 53, 50], {}),
]
RELATIONS = [(900, [(300, "outer"), (310, "inner")], {"type": "multipolygon", "leisure": "park"}),
             (901, [(90, "outer"), (400, "inner")], {"type": "multipolygon", "landuse": "grass"})]


@pytest.fixture(params=["osm", "pbf"])
def city(request, tmp_path):
    xml = tmp_path / "city.osm"
    xml.write_text(_osm(NODES, WAYS, RELATIONS))
    if request.param == "osm":
        return xml
    return pbf_copy(xml, tmp_path / "city.osm.pbf")


@pytest.mark.parametrize("layers", [("streets", "features"), ("features",)])
def test_dropped_ways_still_read_in_file_order(city, layers):
    f = read_osm(city, layers=layers).features
    # group by group (poi, then land use), ways in file order, then relations
    assert list(zip(f.osm_type, f.osm_id)) == [("way", 205), ("way", 150), ("way", 120),
                                               ("relation", 900), ("relation", 901)]
    geom = dict(zip(f.osm_id, f.geometry))
    for rid, outer, hole in ((900, 0.004, 0.001), (901, 0.004, 0.001)):
        # the untagged (or street-only) inner ring is still the relation's hole
        assert geom[rid].geom_type == "Polygon" and len(geom[rid].interiors) == 1
        assert geom[rid].area == pytest.approx(outer ** 2 - hole ** 2)
    assert geom[205].geom_type == "Polygon" and geom[205].area == pytest.approx(0.001 ** 2)
    assert geom[120].geom_type == "LineString"
    assert dict(zip(f.osm_id, f.tags))[205] == {"highway": "pedestrian", "area": "yes"}
    # the plazas the split read's parent sends to the network
    assert pedestrian_features(f).osm_id.tolist() == [205, 120]


def test_features_only_read_is_the_full_reads_features(city):
    whole = read_osm(city)
    assert whole.streets.osm_id.tolist() == [120, 100] + [400] * 4   # the footway ring too
    _assert_same(read_osm(city, layers=("features",)).features, whole.features)


def test_an_error_in_the_dropped_ways_handler_stops_the_read(city, monkeypatch):
    def broken(self, obj):
        raise KeyError("from the handler")

    monkeypatch.setattr(osmread._Dropped, "way", broken)
    with pytest.raises(Exception, match="from the handler"):
        read_osm(city)
    # a handler for filtered ways only: libosmium never calls it for a node
    assert not hasattr(osmread._Dropped, "node")


def test_dropped_handler_sees_only_what_the_filter_drops(city, monkeypatch):
    seen = []
    real = osmread._Dropped.way

    def spy(self, obj):
        seen.append(obj.id)
        real(self, obj)

    monkeypatch.setattr(osmread._Dropped, "way", spy)
    read_osm(city, layers=("features",))
    # no node, no way with a non-highway key of the groups; all the others, in file order
    assert seen == [300, 310, 205, 120, 100, 400, 90]
    seen.clear()
    read_osm(city)
    assert seen == [300, 310, 90]
    assert shapely.is_valid(read_osm(city).features.geometry.values).all()
