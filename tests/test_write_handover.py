"""The GeoPackage's later layers (facilities, streets) prepared by the parent for the writer
child while it writes the homes (:class:`lifecircle.io.outputs._Handover`).

Whoever prepares them, the GeoPackage holds the same entries as one written in a single
process (every SQLite table, the spatial indexes' nodes included); the parent prepares them only
when the child is early in the homes and claims them first, else the child makes them; a layer
the parent fails to prepare is made by the child; a child dying while writing a prepared layer
has the parent write the GeoPackage again; no file of the handover is left in the folder.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest
import test_write_parallel
from test_save_speed import _slow_map
from test_write_parallel import _assert_same, _content, _counting_fork

import lifecircle.io.outputs as O

pytestmark = pytest.mark.skipif(not O.FORK_GPKG, reason="the writer child exists only on Linux")

#: the Helsinki folder written in one process (test_write_parallel's module fixtures)
one_process_folder = test_write_parallel.one_process_folder
one_process = test_write_parallel.one_process


def _entries(gpkg):
    """Every row of every SQLite table of a GeoPackage (the R-tree's node tables included),
    but the time each layer was written."""
    con = sqlite3.connect(gpkg)
    try:
        out = {}
        for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"):
            if (sql or "").upper().startswith("CREATE VIRTUAL"):
                continue
            rows = con.execute(f'SELECT * FROM "{name}"').fetchall()
            if name == "gpkg_contents":
                rows = [r[:4] + r[5:] for r in rows]           # last_change
            out[name] = rows
        out["sqlite_master"] = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def one_process_entries(one_process_folder):
    return _entries(one_process_folder / O.GPKG)


def _log(tmp_path, name):
    path = tmp_path / name

    def write(text):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{text} {os.getpid()}\n".encode())
        finally:
            os.close(fd)

    def read(parent):
        rows = [ln.split() for ln in path.read_text().splitlines()] if path.exists() else []
        return [(text, "parent" if int(pid) == parent else "child") for text, pid in rows]

    return write, read


def _watch(monkeypatch, tmp_path, homes_delay=0.0, fail_in_child=None):
    """Log which process prepares and which writes a prepared layer; the child waits
    ``homes_delay`` seconds before writing the homes; ``fail_in_child``: a prepared layer
    the child dies writing (half of it written)."""
    write, read = _log(tmp_path, "handover.log")
    parent = os.getpid()
    real_layer, real_prepared, real_prepare = O._write_layer, O._write_prepared, O._Handover._prepare

    def write_layer(path, layer, *args, **kwargs):
        if layer == "homes" and os.getpid() != parent:
            time.sleep(homes_delay)
        return real_layer(path, layer, *args, **kwargs)

    def write_prepared(gpkg, layer, *args):
        write(f"wrote:{layer}")
        if layer == fail_in_child and os.getpid() != parent:
            real_prepared(gpkg, layer, *args)
            os._exit(3)
        return real_prepared(gpkg, layer, *args)

    def prepare(self, layer, *args):
        write(f"prepared:{layer}")
        return real_prepare(self, layer, *args)

    monkeypatch.setattr(O, "LAYER_CHUNK", 500)          # layers of several batches
    monkeypatch.setattr(O, "_write_layer", write_layer)
    monkeypatch.setattr(O, "_write_prepared", write_prepared)
    monkeypatch.setattr(O._Handover, "_prepare", prepare)
    return lambda: read(parent)


def _no_handover_files(out):
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.endswith(".arrows")], names
    assert not [n for n in O.read_marker(out)["files"] if n.endswith(".arrows")]


def test_the_parent_prepares_the_later_layers_while_the_child_writes_the_homes(
        helsinki, one_process, one_process_entries, tmp_path, monkeypatch):
    who = _watch(monkeypatch, tmp_path, homes_delay=2.0)
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    got = who()
    assert ("prepared:streets", "parent") in got and ("wrote:streets", "child") in got
    assert ("prepared:facilities", "parent") in got and ("wrote:facilities", "child") in got
    assert not [w for w in got if w[0].startswith("prepared:") and w[1] == "child"]
    _assert_same(_content(tmp_path / "out"), one_process)
    assert _entries(tmp_path / "out" / O.GPKG) == one_process_entries
    _no_handover_files(tmp_path / "out")


def test_the_child_makes_them_when_it_reaches_them_first(helsinki, one_process, one_process_entries,
                                                         tmp_path, monkeypatch):
    who = _watch(monkeypatch, tmp_path)
    _slow_map(monkeypatch)
    _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert who() == []
    _assert_same(_content(tmp_path / "out"), one_process)
    assert _entries(tmp_path / "out" / O.GPKG) == one_process_entries


def test_late_in_the_homes_the_layers_are_left_to_the_child(helsinki, one_process_entries, tmp_path,
                                                           monkeypatch):
    """The parent, done with the map when the child has written most of the homes, takes
    the side writes and leaves the layers to the child."""
    who = _watch(monkeypatch, tmp_path)
    real = O._Handover.homes_share
    monkeypatch.setattr(O._Handover, "homes_share", lambda self: max(real(self), O.PREPARE_BEFORE))
    monkeypatch.setattr(O, "_write_layer", _delayed_layer(O._write_layer, 2.0))   # the child is late
    _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out", map_html=False)
    assert who() == []
    assert _entries(tmp_path / "out" / O.GPKG) == one_process_entries


def _delayed_layer(real, seconds):
    parent = os.getpid()

    def write_layer(path, layer, *args, **kwargs):
        if layer == "homes" and os.getpid() != parent:
            time.sleep(seconds)
        return real(path, layer, *args, **kwargs)

    return write_layer


def test_a_layer_the_parent_fails_to_prepare_is_the_childs(helsinki, one_process_entries, tmp_path,
                                                          monkeypatch):
    who = _watch(monkeypatch, tmp_path, homes_delay=2.0)
    parent, real = os.getpid(), O._layer_batches

    def batches(frame, cols, *args):
        if os.getpid() == parent and "highway" in cols:           # the streets
            raise MemoryError("no room to prepare the streets")
        return real(frame, cols, *args)

    monkeypatch.setattr(O, "_layer_batches", batches)
    _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out", map_html=False)
    got = who()
    assert ("prepared:streets", "parent") in got and ("wrote:facilities", "child") in got
    assert ("wrote:streets", "child") not in got                  # made there, not handed over
    assert _entries(tmp_path / "out" / O.GPKG) == one_process_entries
    _no_handover_files(tmp_path / "out")


def test_a_child_dying_in_a_prepared_layer_leaves_a_complete_folder(helsinki, one_process,
                                                                   one_process_entries, tmp_path,
                                                                   monkeypatch):
    who = _watch(monkeypatch, tmp_path, homes_delay=2.0, fail_in_child="streets")
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    assert ("wrote:streets", "child") in who()
    _assert_same(_content(tmp_path / "out"), one_process)
    assert _entries(tmp_path / "out" / O.GPKG) == one_process_entries
    _no_handover_files(tmp_path / "out")
