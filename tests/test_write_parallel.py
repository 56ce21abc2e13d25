"""``Result.save`` writes the GeoPackage in a forked child process while this one draws the map;
the OSM features and the small files go to whichever is free first
(:func:`lifecircle.io.outputs.write_outputs`; see also ``test_save_speed.py``).

The folder must read back the same as one written in a single process; a child that fails is
replaced by the parent doing its part (a real error still surfaces, and no partial output is
left); the child's warnings reach the caller; no fork while another Python thread runs.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest

import lifecircle.io.outputs as O
from lifecircle.errors import OutputError

pytestmark = pytest.mark.skipif(not O.FORK_GPKG, reason="the GeoPackage is written in a child only on Linux")


def _content(folder):
    """What a reader gets from an analysis folder (not its bytes: a GeoPackage records when
    it was written, and the map's element ids are random)."""
    got = {}
    gpkg = folder / O.GPKG
    for layer, *_ in pyogrio.list_layers(gpkg):
        got[f"layer {layer}"] = pd.DataFrame(pyogrio.read_dataframe(gpkg, layer=layer))
    with sqlite3.connect(gpkg) as con:
        got["aliases"] = sorted(con.execute("SELECT table_name, column_name, name, title "
                                            "FROM gpkg_data_columns").fetchall())
    got["features"] = pd.DataFrame(gpd.read_parquet(folder / O.FEATURES_FILE))
    with np.load(folder / O.NETWORK) as z:
        got["network"] = {k: z[k].tolist() for k in z.files}
    got["meta"] = json.loads((folder / O.META).read_text(encoding="utf-8"))
    got["marker"] = json.loads((folder / O.MARKER).read_text(encoding="utf-8"))
    for name in (O.SUMMARY, O.PROFILE):
        got[name] = (folder / name).read_bytes()
    for sheet, frame in pd.read_excel(folder / O.SUMMARY_XLSX, sheet_name=None).items():
        got[f"xlsx {sheet}"] = frame
    got["map"] = re.sub(r"_[0-9a-f]{32}", "_ID", (folder / O.MAP_HTML).read_text(encoding="utf-8"))
    return got


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k], obj=k)
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def one_process_folder(helsinki, tmp_path_factory):
    """The Helsinki folder written in one process (no child): its path."""
    out = tmp_path_factory.mktemp("one") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(O, "FORK_GPKG", False)
    try:
        helsinki.save(out)
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def one_process(one_process_folder):
    """The Helsinki folder written in one process (no child): its content."""
    return _content(one_process_folder)


def _counting_fork(monkeypatch):
    """Count the forks; fork even if an earlier test left an idle thread behind (a dask
    client's, a thread pool's): what :func:`O._fork_safe` refuses is tested on its own."""
    monkeypatch.setattr(O, "_fork_safe", lambda: True)
    forks = []
    real = os.fork

    def fork():
        pid = real()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(O.os, "fork", fork)
    return forks


def test_folder_written_beside_the_map_reads_the_same(helsinki, one_process, tmp_path, monkeypatch):
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    _assert_same(_content(tmp_path / "out"), one_process)
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {O.GPKG, O.SUMMARY, O.META, O.MAP_HTML}


def test_a_failed_child_is_replaced_by_this_process(helsinki, one_process, tmp_path, monkeypatch):
    parent, real = os.getpid(), O._write_gpkg

    def flaky(result, folder, *handed):
        if os.getpid() != parent:              # half a GeoPackage, then the child dies
            (folder / O.GPKG).write_bytes(b"half")
            raise MemoryError("the child ran out of memory")
        real(result, folder, *handed)

    monkeypatch.setattr(O, "_write_gpkg", flaky)
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    _assert_same(_content(tmp_path / "out"), one_process)


def test_a_real_error_surfaces_and_leaves_no_output(helsinki, tmp_path, monkeypatch):
    def broken(result, folder, *handed):
        raise OutputError("lifecircle.gpkg: disk full", zh="lifecircle.gpkg：磁盘已满")

    monkeypatch.setattr(O, "_write_gpkg", broken)
    with pytest.raises(OutputError, match="disk full"):
        helsinki.save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []          # neither the folder nor a temporary one


def test_the_childs_warnings_reach_the_caller(helsinki, tmp_path, monkeypatch):
    parent, real = os.getpid(), O._write_gpkg

    def warning(result, folder, *handed):
        if os.getpid() != parent:      # only the child warns: it can only arrive through the pipe
            warnings.warn("said in the child", UserWarning, stacklevel=1)
        real(result, folder, *handed)

    monkeypatch.setattr(O, "_write_gpkg", warning)
    forks = _counting_fork(monkeypatch)
    with pytest.warns(UserWarning, match="said in the child"):
        helsinki.save(tmp_path / "out")
    assert len(forks) == 1


def test_no_fork_while_another_thread_runs(helsinki, one_process, tmp_path, monkeypatch):
    def no_fork():
        raise AssertionError("forked while another thread was running")

    monkeypatch.setattr(O.os, "fork", no_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not O._fork_safe()
        helsinki.save(tmp_path / "out")
    finally:
        stop.set()
        other.join()
    _assert_same(_content(tmp_path / "out"), one_process)


def test_a_failing_map_stops_the_child_and_leaves_no_output(helsinki, tmp_path, monkeypatch):
    import lifecircle.render.maps as maps
    from lifecircle.errors import MapError

    def broken(m, path, offline=None):
        raise MapError("map.html: no room", zh="map.html：没有空间")

    monkeypatch.setattr(maps, "save_map", broken)
    forks = _counting_fork(monkeypatch)
    with pytest.raises(MapError, match="no room"):
        helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):      # the child was reaped: no zombie left
        os.waitpid(forks[0], os.WNOHANG)
    assert list(tmp_path.iterdir()) == []


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(ln.split()[1] for ln in fh if ln.startswith("State:"))
    except (OSError, StopIteration):
        return None


def child_states_around_sigterm(code: str) -> tuple[str | None, str | None]:
    """Run ``code`` (it prints the pid of the child it forks, then waits) in a parent process,
    SIGTERM the parent: the child's state before, and up to 5 s after (None or "Z": gone)."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    before = _state(child)
    parent.send_signal(signal.SIGTERM)
    parent.wait(10)
    for _ in range(50):
        if _state(child) in (None, "Z"):
            break
        time.sleep(0.1)
    return before, _state(child)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only")
def test_the_child_ends_with_its_parent(tmp_path):
    """A parent killed mid-save (SIGTERM from a job manager, `timeout`) takes the writing child
    with it: no orphan left writing with the parent's memory."""
    code = ("import time, lifecircle.io.outputs as O\n"
            "c = O._fork(lambda: time.sleep(60))\n"
            "print(c.pid, flush=True)\n"
            "time.sleep(60)\n")
    before, after = child_states_around_sigterm(code)
    assert before not in (None, "Z")
    assert after in (None, "Z")
