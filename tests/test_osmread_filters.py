"""The reader's C++ pre-filters and batches change what reaches Python, never what is read.

The main pass lets through only nodes with a key of the poi / land-use groups (no
``natural=tree``), the natural-area nodes come from their own filtered pass, feature ways' WKB
is decoded a batch at a time: each case here is checked against a reference that sends every
node through Python (file order kept per group, also in a file whose ids are not sorted)."""

from __future__ import annotations

import numpy as np
import osmium
import pytest
import shapely
from conftest import pbf_copy, shared_file

from lifecircle.io import osmread, sources
from lifecircle.io.sources import read_osm

LAT, LON = 28.1, -15.43


def _reference_node_features(path) -> list[tuple[int, dict]]:
    """Every node through Python, no filter: the feature nodes group by group (poi, building,
    land use, natural), each group in file order, as the reader must give them."""
    groups = osmread._Groups(sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS,
                             sources.FEATURE_PLACES, sources.NATURAL_AREAS)
    by_group: dict[int, list] = {0: [], 1: [], 2: [], 3: []}
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE):
        tags = {t.k: t.v for t in obj.tags}
        mask = groups.mask(tags, node=True)
        if mask and obj.location.valid():
            by_group[(mask & -mask).bit_length() - 1].append((obj.id, tags))
    return [x for g in range(4) for x in by_group[g]]


def _node_features(data) -> list[tuple[int, dict]]:
    f = data.features
    nodes = f[f.osm_type == "node"]
    return list(zip(nodes.osm_id.tolist(), nodes.tags.tolist()))


#: nodes in file order (ids deliberately not sorted): id, (dx, dy), tags
NODES = [
    (50, (0.0000, 0.0), {"natural": "tree", "amenity": "bench"}),   # poi: amenity
    (10, (0.0001, 0.0), {"natural": "tree"}),                       # nothing
    (40, (0.0002, 0.0), {"highway": "bus_stop"}),                   # poi: no poi key
    (30, (0.0003, 0.0), {"amenity": "cafe", "name": "Café"}),       # poi
    (60, (0.0004, 0.0), {"natural": "water"}),                      # natural (own pass)
    (20, (0.0005, 0.0), {"natural": "wood", "landuse": "forest"}),  # land use first
    (70, (0.0006, 0.0), {"highway": "crossing"}),                   # nothing
    (80, (0.0007, 0.0), {"natural": "beach", "highway": "crossing"}),  # natural, seen twice
    (90, (0.0008, 0.0), {"place": "square"}),                       # poi
    (15, (0.0009, 0.0), {"building": "yes"}),                       # buildings: ways only
    (25, (0.0010, 0.0), {"natural": "water", "amenity": "fountain"}),  # poi first
    (45, (0.0011, 0.0), {"natural": "sand"}),                       # natural, after the others
    # plain nodes for the ways
    (1, (0.0, 0.001), {}), (2, (0.001, 0.001), {}), (3, (0.001, 0.002), {}),
    (4, (0.0, 0.002), {}), (5, (0.002, 0.001), {}), (6, (0.003, 0.001), {}),
]
WANT_NODES = [50, 40, 30, 90, 25, 20, 60, 80, 45]


def _xml(nodes, ways=(), relations=()) -> str:
    out = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    for nid, (dx, dy), tags in nodes:
        body = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<node id="{nid}" lat="{LAT + dy:.7f}" lon="{LON + dx:.7f}" version="1" '
                   f'timestamp="2024-0{1 + nid % 9}-01T00:00:00Z">{body}</node>')
    for wid, refs, tags in ways:
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<way id="{wid}" version="1" timestamp="2023-05-01T00:00:00Z">{body}</way>')
    for rid, members, tags in relations:
        body = "".join(f'<member type="way" ref="{m}" role="{r}"/>' for m, r in members)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<relation id="{rid}" version="1">{body}</relation>')
    return "\n".join(out + ["</osm>"]) + "\n"


WAYS = [
    (200, [5, 6], {"highway": "residential"}),
    (210, [1, 2, 3, 4, 1], {}),                              # member without tags
    (211, [1, 2, 3, 1], {}),                                 # no tags, no relation: nothing
    (220, [1, 2, 3, 4, 1], {"building": "yes"}),
]
RELATIONS = [(300, [(210, "outer")], {"type": "multipolygon", "landuse": "grass"})]


@pytest.mark.parametrize("kind", ["xml", "pbf"])
def test_filtered_nodes_equal_every_node_through_python(tmp_path, kind):
    """A tree with a bench is a poi, a bare tree or crossing is nothing, a bus stop without any
    poi key is a poi, natural areas come from their own pass, exactly once even when the main
    pass sees them too (a beach with highway=crossing), and every group keeps file order in a
    file whose ids are not sorted."""
    xml = tmp_path / "nodes.osm"
    xml.write_text(_xml(NODES, WAYS, RELATIONS))
    path = xml
    if kind == "pbf":
        path = tmp_path / "nodes.osm.pbf"
        pbf_copy(xml, path)
    ref = _reference_node_features(path)
    assert [i for i, _ in ref] == WANT_NODES
    for layers in (("features",), ("streets", "features")):
        data = read_osm(path, layers=layers)
        assert _node_features(data) == ref, layers
        f = data.features.set_index(["osm_type", "osm_id"])
        # the untagged member makes the land-use relation; the untagged non-member is nothing
        assert f.loc[("relation", 300), "geometry"].geom_type == "Polygon"
        assert ("way", 210) not in f.index and ("way", 211) not in f.index
        assert f.loc[("way", 220), "tags"] == {"building": "yes"}
        point = f.loc[("node", 45), "geometry"]
        assert (point.x, point.y) == pytest.approx((LON + 0.0011, LAT), abs=1e-9)
    if kind == "pbf":   # (an XML file's date is its newest timestamp, found by a text scan)
        # a PBF without a header date: the newest feature read, node 80 (September; the
        # others are older), which only the natural pass reads
        assert read_osm(path, layers=("features",)).data_date == "2024-09-01"


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_wkb_batches_read_the_same(tmp_path, monkeypatch, batch):
    """Feature ways decoded a batch at a time, with ways cut by the extract between them,
    give the same features as one batch."""
    nodes = [(i, (0.0005 * (i % 7), 0.0005 * (i // 7)), {}) for i in range(1, 50)]
    ways = [(200, [1, 2], {"highway": "residential"})]
    for k in range(8):   # closed buildings; every third one has a node the file does not hold
        a = 1 + 3 * k
        refs = [a, a + 1, a + 8, a + 7, a] if k % 3 else [a, a + 1, 999, a + 8, a + 7, a]
        ways.append((300 + k, refs, {"building": "yes", "ref": str(k)}))
    ways.append((400, [30, 31, 32], {"highway": "pedestrian", "name": "Paseo"}))
    path = tmp_path / "batches.osm"
    path.write_text(_xml(nodes, ways))
    want = read_osm(path).features
    monkeypatch.setattr(osmread, "_BATCH", batch)
    got = read_osm(path).features
    assert len(want) == 9
    assert got.osm_id.tolist() == want.osm_id.tolist()
    assert [dict(t) for t in got.tags] == [dict(t) for t in want.tags]
    assert shapely.equals_exact(np.asarray(got.geometry.values), np.asarray(want.geometry.values),
                                tolerance=0).all()
    # the cut ways are polygons through the nodes the file has
    cut = got[got.osm_id == 300].geometry.iloc[0]
    assert cut.geom_type == "Polygon" and len(cut.exterior.coords) == 5


@pytest.mark.parametrize("relative", ["china/nanjing_xinjiekou_2021.osm.pbf",
                                      "world/las_palmas_2023_ghsci.osm.pbf"])
def test_real_extract_nodes_equal_every_node_through_python(relative):
    path = shared_file(relative)
    ref = _reference_node_features(path)
    got = _node_features(read_osm(path, layers=("features",)))
    assert len(ref) > 300
    assert got == ref
