"""The split read's streets child reads the feature nodes too (its pass lets them through, the
parent's features pass then lets no node reach Python): the features, their order and the data
date stay those of one read, on a hand-made file whose nodes are not sorted by id and on a real
extract; and whenever the child fails (before or after sending the nodes, or its reader reads
none), the parent still gets them."""

from __future__ import annotations

import os

import pytest
from conftest import pbf_copy
from test_osmread import _osm, _square
from test_osmread_overlap import _assert_same
from test_splitread import _fail_in_child, _one_process, _same, forks  # noqa: F401 - the fixture

from lifecircle import pipeline, splitread
from lifecircle.io import osmread
from lifecircle.io.sources import combine, embedded_sample, read_osm

pytestmark = pytest.mark.skipif(not splitread.CAN_FORK, reason="the split read forks (Linux only)")

#: feature nodes (ids not sorted) with the newest timestamp of the file; the ways have none
NODES = [(9005, {"amenity": "cafe"}, "2031-05-06T10:00:00Z"),
         (9003, {"natural": "water", "name": "pond"}, None),       # natural first: relation pass
         (9004, {"landuse": "grass"}, None),
         (9001, {"highway": "bus_stop"}, "2020-01-01T00:00:00Z"),
         (9002, {"shop": "bakery", "natural": "water"}, None),
         (9006, {"barrier": "gate"}, None)]                         # no group


@pytest.fixture(params=["osm", "pbf"])
def dated(request, tmp_path):
    """The file as XML (its date: the newest timestamp in the text) and as PBF (no header
    date: the newest element timestamp the pass reads)."""
    nodes = {1: (0.0, 0.0), 2: (0.003, 0.0), 3: (0.006, 0.0)}
    nodes.update(_square(10, 0.0, 0.002, 0.001))
    ways = [(120, [1, 2], {"highway": "residential"}), (110, [2, 3], {"highway": "footway"}),
            (100, [10, 11, 12, 13, 10], {"building": "yes"})]
    text = _osm(nodes, ways)
    lines = []
    for k, (nid, tags, stamp) in enumerate(NODES):
        when = f' timestamp="{stamp}"' if stamp else ""
        body = "".join(f'<tag k="{a}" v="{b}"/>' for a, b in tags.items())
        lines.append(f'<node id="{nid}" lat="{32.05 + k * 1e-4:.7f}" lon="118.79" version="1"{when}>'
                     f"{body}</node>")
    at = text.index("<way")
    path = tmp_path / "dated.osm"
    path.write_text(text[:at] + "\n".join(lines) + "\n" + text[at:])
    if request.param == "osm":
        return path
    return pbf_copy(path, tmp_path / "dated.osm.pbf")


def test_nodes_read_with_the_streets_give_the_one_read_features(dated):
    whole = read_osm(dated)
    f = whole.features
    # group by group (poi, building, land use, natural), nodes in file order in each
    assert list(zip(f.osm_type, f.osm_id)) == [("node", 9005), ("node", 9001), ("node", 9002),
                                               ("way", 100), ("node", 9004), ("node", 9003)]
    assert whole.data_date == "2031-05-06"
    streets = read_osm(dated, layers=("streets", "nodes"))
    nodes = streets.meta.pop("nodes")
    assert list(nodes[0]) == [9005, 9004, 9001, 9002]              # file order, groups 0/2 only
    if dated.suffix == ".pbf":
        assert streets.data_date is None                          # the streets carry no date
    for given in (lambda: nodes, lambda: None):                   # None: read here
        asked = []
        features = read_osm(dated, layers=("features",), nodes=lambda g=given, a=asked: a.append(1) or g())
        assert asked == [1]
        both = combine(streets, features)
        _assert_same(both.features, whole.features)
        assert both.data_date == whole.data_date
        assert both.streets.equals(whole.streets)


def test_features_pass_without_nodes_lets_none_through(dated, monkeypatch):
    seen = []
    real = osmread._tag_list
    monkeypatch.setattr(osmread, "_tag_list", lambda obj: (seen.append(type(obj).__name__), real(obj))[1])
    read_osm(dated, layers=("features",), nodes=lambda: None)
    # the relation pass (the natural nodes), the main pass (no node: the building), the
    # nodes' own pass (the four nodes of groups poi and land use)
    assert seen == ["Node", "Node", "Way", "Node", "Node", "Node", "Node"]


def _die_in_child(monkeypatch, when):
    parent = os.getpid()
    if when == "before the nodes":
        _fail_in_child(monkeypatch, "read_osm")
    elif when == "after the nodes":
        real_pack = splitread._pack

        def pack(message):
            if os.getpid() != parent and message[0] == "streets":
                os._exit(0)
            return real_pack(message)
        monkeypatch.setattr(splitread, "_pack", pack)
    else:   # its reader read no nodes: the parent reads them
        real = pipeline.read_osm

        def without(*args, **kwargs):
            data = real(*args, **kwargs)
            if os.getpid() != parent:
                data.meta.pop("nodes")
            return data
        monkeypatch.setattr(pipeline, "read_osm", without)


@pytest.mark.parametrize("when", [None, "before the nodes", "after the nodes", "no nodes"])
def test_split_read_features_are_one_process_features(monkeypatch, forks, when):  # noqa: F811
    src = embedded_sample()
    one = _one_process(monkeypatch, src)
    if when:
        _die_in_child(monkeypatch, when)
    two = pipeline.analyze(src)
    split = forks[-1]
    assert split is not None and split.step == 4 and split.failed == (when in ("before the nodes",
                                                                             "after the nodes"))
    _assert_same(two.features, one.features)
    assert (one.features.osm_type == "node").sum() > 50
    _same(one, two)


def test_child_works_on_while_the_parent_has_not_read_the_nodes(monkeypatch):
    """The feature nodes (megabytes: more than a pipe holds) wait in the pipe until the
    parent's features pass is over; the child's work goes on meanwhile (its writers wait
    for one another, its main thread for none), and the messages arrive in order."""
    import threading

    went_on = threading.Event()

    def side(source, settings, receive, steps):
        yield "nodes", b"n" * (4 << 20)
        yield "streets", (0, 0, 1, 1), None, {}
        went_on.set()              # the steps after, while the parent reads nothing
        yield "homes", None

    monkeypatch.setattr(splitread, "_streets_side", side)
    monkeypatch.setattr(splitread, "_pack", lambda message: message)
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    child = threading.Thread(target=splitread._child_main, args=(None, None, None, up_w, down_r))
    child.start()
    try:
        assert went_on.wait(10)
    finally:
        got = [splitread._recv(up_r)[0] for _ in range(4)]   # drained: the writers end
        child.join(10)
        for fd in (up_r, up_w, down_r, down_w):
            os.close(fd)
    # the relations first (none here: no file to read them from, the parent would read them)
    assert got[0] == ("relations", None)
    assert [m[0] for m in got[1:]] == ["nodes", "streets", "homes"] and len(got[1][1]) == 4 << 20
