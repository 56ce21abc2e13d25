"""The map's inputs made beside the analysis (:class:`lifecircle.result.MapPrep`): the same map,
used only for the data they were made from, errors met as without them, no thread left."""

from __future__ import annotations

import dataclasses
import re
import threading
import time

import numpy as np
import pytest
import shapely

import lifecircle
from lifecircle import pipeline, splitread
from lifecircle import result as result_mod
from lifecircle.analyses import isochrones
from lifecircle.io.sources import embedded_sample
from lifecircle.render import maps
from lifecircle.settings import cores, thread_cap

pytestmark = pytest.mark.skipif(cores() < 2, reason="the map is prepared only where a second core may be used")

XJK = embedded_sample("xinjiekou")


def _prep_threads():
    return [t for t in threading.enumerate() if t.name == "lifecircle-map-prep" and t.is_alive()]


def _page(m, path) -> str:
    """The saved map's text with folium's random element ids numbered in order of appearance."""
    text = maps.save_map(m, path).read_text(encoding="utf-8")
    ids: dict = {}
    return re.sub(r"_[0-9a-f]{32}", lambda mt: "_" + str(ids.setdefault(mt.group(0), len(ids))), text)


@pytest.fixture(autouse=True)
def idle(monkeypatch):
    """The other core idle, whatever else runs on the test machine (see test_no_preparation_...)."""
    monkeypatch.setattr(splitread, "_runnable_others", lambda *a, **k: 0)


@pytest.fixture(scope="module")
def prepared():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(splitread, "_runnable_others", lambda *a, **k: 0)
        r = lifecircle.analyze(XJK)
    assert not _prep_threads()                 # joined before analyze returned
    return r


def test_the_prepared_map_is_the_map(prepared, tmp_path, monkeypatch):
    """The background and the cells made beside the analysis are the ones the map makes, and
    the map takes them instead of making them (it would fail here if it made them)."""
    r = prepared
    prep = r._map_prep
    assert prep is not None and "map" in r.timings
    bg, cells = prep.background(r), prep.cells(r)
    assert bg is not None and cells is not None
    plain = dataclasses.replace(r, _map_prep=None)
    want_bg = maps.background_text(plain)
    assert bg["left_out"] == want_bg["left_out"] and bg["text"] == want_bg["text"]
    want_gaps = isochrones.gap_areas(plain)
    got_gaps = isochrones.gap_areas(plain, cells=cells)
    assert shapely.equals_exact(got_gaps.geometry.to_numpy(), want_gaps.geometry.to_numpy(), 0).all()
    want = _page(maps.result_map(plain), tmp_path / "plain.html")

    def refused(*a, **k):
        raise AssertionError("made again")

    monkeypatch.setattr(maps, "background_layers", refused)
    monkeypatch.setattr(isochrones, "home_cells", refused)
    assert _page(maps.result_map(r), tmp_path / "prepared.html") == want
    # the same homes in a copy of the table are the same homes; a home moved (in place), other
    # features, or a GCJ-02 map: made again
    assert _page(maps.result_map(dataclasses.replace(r, homes=r.homes.copy())), tmp_path / "c.html") == want
    moved = r.homes.copy()
    moved.loc[0, "geometry"] = shapely.Point(moved.geometry.iloc[0].x + 1.0, moved.geometry.iloc[0].y)
    with pytest.raises(AssertionError, match="made again"):
        maps.result_map(dataclasses.replace(r, homes=moved))
    with pytest.raises(AssertionError, match="made again"):
        maps.result_map(dataclasses.replace(r, homes=r.homes.iloc[1:]))
    with pytest.raises(AssertionError, match="made again"):
        maps.result_map(dataclasses.replace(r, features=r.features.copy()))
    with pytest.raises(AssertionError, match="made again"):
        maps.result_map(r, basemap="amap")


def test_a_result_still_pickles(prepared):
    """A Result travels between processes (Dask) and copies deeply: without the thread, with
    nothing prepared."""
    import copy
    import pickle

    back = pickle.loads(pickle.dumps(prepared))
    assert back._map_prep is None and len(back.homes) == len(prepared.homes)
    assert copy.deepcopy(prepared)._map_prep is None
    assert prepared._map_prep is not None


def test_save_writes_the_same_map(prepared, tmp_path):
    """Result.save with the prepared pieces: the same map.html as without (the GeoPackage
    writer still forks: no thread runs at the save)."""
    r = prepared
    r.save(tmp_path / "prepared")
    dataclasses.replace(r, _map_prep=None).save(tmp_path / "plain")

    def page(p):
        text = (p / "map.html").read_text(encoding="utf-8")
        ids: dict = {}
        return re.sub(r"_[0-9a-f]{32}", lambda mt: "_" + str(ids.setdefault(mt.group(0), len(ids))), text)

    assert page(tmp_path / "prepared") == page(tmp_path / "plain")


def test_a_failed_piece_is_made_by_the_map_and_its_error_met_there(monkeypatch, tmp_path):
    """A piece whose making fails beside the analysis is left out: the analysis succeeds, and
    the map makes it itself, meeting the same error as without preparation."""
    def broken(*a, **k):
        raise ValueError("broken cells")

    monkeypatch.setattr(result_mod, "home_cells", broken)
    monkeypatch.setattr(isochrones, "home_cells", broken)
    r = lifecircle.analyze(XJK)
    assert not _prep_threads()
    assert r._map_prep.cells(r) is None and r._map_prep.background(r) is not None
    with pytest.raises(ValueError, match="broken cells"):
        maps.result_map(r)
    with pytest.raises(ValueError, match="broken cells"):
        maps.result_map(dataclasses.replace(r, _map_prep=None))
    monkeypatch.undo()
    plain = _page(maps.result_map(dataclasses.replace(r, _map_prep=None)), tmp_path / "a.html")
    assert _page(maps.result_map(r), tmp_path / "b.html") == plain     # made by the map


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_analysis_leaves_no_thread(monkeypatch, error):
    """An error in a stage after the preparation started stops it (waiting for the piece under
    way: no thread is left); Ctrl-C stops the analysis at once, without that wait (the piece
    ends by itself and nothing more is made)."""
    started, failed_at = [], []
    real = result_mod.feature_pieces

    def slow_pieces(*a, **k):
        started.append(time.perf_counter())
        time.sleep(4.0)       # longer than the stages up to "snap" take, even on a loaded machine
        return real(*a, **k)

    def failing(*a, **k):
        failed_at.append(time.perf_counter())
        raise error("stopped")

    monkeypatch.setattr(result_mod, "feature_pieces", slow_pieces)
    monkeypatch.setattr(pipeline, "snap_points", failing)
    with pytest.raises(error, match="stopped"):
        lifecircle.analyze(XJK)
    waited = time.perf_counter() - failed_at[0]
    assert started and failed_at[0] - started[0] < 4.0        # failed while the piece was made
    if error is KeyboardInterrupt:
        assert waited < 1.0 and _prep_threads()               # at once; the piece still ends
        for t in _prep_threads():
            t.join(10)
    else:
        assert waited > 2.0 - (failed_at[0] - started[0]) - 0.1
    assert not _prep_threads()


@pytest.mark.parametrize("at", ["snap", "engine"])
def test_a_progress_callback_that_raises_leaves_no_thread(at):
    """A progress callback that raises (a notebook's cancel button, Ctrl-C landing in the
    CLI's bar) fails the analysis outside any stage's body: the preparation stops all the
    same (at "snap" it had not been given the homes yet and waited for them for good), so no
    thread is left and the next save may fork its writer."""
    import threading

    def progress(name):
        if name == at:
            raise RuntimeError("cancelled")

    before = set(threading.enumerate())   # other tests' (pyrosm's tqdm monitor, a Dask client's)
    with pytest.raises(RuntimeError, match="cancelled"):
        lifecircle.analyze(XJK, progress=progress)
    assert not _prep_threads() and set(threading.enumerate()) <= before   # none left behind


def test_placed_pieces_are_not_held_by_the_pieces(prepared):
    """A background piece made beforehand is handed out once: once placed, the map holds it,
    the pieces (kept by the preparation or the map's caller) do not."""
    from lifecircle.render import background

    r = prepared
    pieces = background.feature_pieces(*background.feature_arrays(r.features), r.crs, make=True)
    parts, _, buildings = pieces
    onces = [v for v in parts.values() if isinstance(v, background._Once)] + [buildings]
    assert onces and all(o._value is not None for o in onces)
    maps.background_layers(dataclasses.replace(r, _map_prep=None), pieces=pieces)
    assert all(o._value is None for o in onces)


def test_features_changed_in_place_are_drawn_as_they_are(tmp_path):
    """Buildings moved in place in ``r.features`` (the same table) after the analysis: the map
    draws them where they are now, as without preparation, not the background prepared before."""
    r = lifecircle.analyze(XJK)
    f = r.features
    rows = np.flatnonzero([isinstance(t, dict) and "building" in t for t in f["tags"]])[:200]
    f.loc[f.index[rows], "geometry"] = [shapely.affinity.translate(g, 0.003, 0.003)
                                        for g in f.geometry.iloc[rows]]
    assert r._map_prep.background(r) is None and r._map_prep.pieces(r) is None
    want = _page(maps.result_map(dataclasses.replace(r, _map_prep=None)), tmp_path / "plain.html")
    assert _page(maps.result_map(r), tmp_path / "prepared.html") == want


_EXIT_SCRIPT = """
import sys, threading, time
from pathlib import Path
import lifecircle.cli.app
import lifecircle.result
app = sys.modules["lifecircle.cli.app"]     # the module (lifecircle.cli.app is also the Typer app)

def piece():
    time.sleep(5.0 if sys.argv[2] == "cli" else 1.5)   # cli: far past the exit, were it waited for
    Path(sys.argv[1]).write_text("ended")

threading.Thread(target=piece, daemon=True, name=lifecircle.result.MAP_PREP_THREAD).start()
if sys.argv[2] == "cli":
    app._leave(SystemExit(130))
sys.exit(130)
"""


@pytest.mark.parametrize("how", ["cli", "api"])
def test_an_interrupted_preparation_is_not_torn_down_under_its_piece(tmp_path, how):
    """After Ctrl-C the preparation ends its piece, a daemon thread inside GEOS, and the
    interpreter's teardown under it crashed (a segmentation fault after "interrupted"): the
    console script then ends at once without the teardown; any other exit waits for the piece
    first (an exit handler)."""
    import subprocess
    import sys

    flag = tmp_path / "ended"
    done = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(flag), how], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    # cli: not waited for (the piece, 5 s long, never ended); any other exit waits for it (not
    # timed: the start-up's imports under a loaded machine took longer than a timed bound)
    assert flag.exists() == (how == "api")


def test_no_preparation_where_it_would_not_pay(monkeypatch):
    """Not asked for, on one core (a batch's districts run under thread_cap(1)), or with the
    other core busy: nothing is made beside the analysis."""
    assert lifecircle.analyze(XJK, prepare_map=False)._map_prep is None
    with thread_cap(1):
        assert lifecircle.analyze(XJK)._map_prep is None
    monkeypatch.setattr(splitread, "_runnable_others", lambda *a, **k: 2)
    busy = lifecircle.analyze(XJK)
    assert busy._map_prep is None
    assert busy.timings["map"] < 0.005            # the same stages as a prepared run, no wait


def test_a_hexagon_map_takes_the_feature_pieces(monkeypatch, tmp_path):
    """More homes than settings.map_max_points (a hexagon map): no cells and no background are
    made beside the analysis, only the features' pieces, which the map places (once) instead of
    making them — the same page."""
    made = []
    real = isochrones.home_cells
    monkeypatch.setattr(result_mod, "home_cells", lambda *a, **k: made.append(1) or real(*a, **k))
    r = lifecircle.analyze(XJK, map_max_points=600)        # 788 homes, 1,953 features
    assert not _prep_threads() and made == []
    prep = r._map_prep
    assert prep.cells(r) is None and prep.background(r) is None
    assert prep.pieces(dataclasses.replace(r, features=r.features.copy())) is None   # other features
    assert "pieces" in prep._made
    want = _page(maps.result_map(dataclasses.replace(r, _map_prep=None)), tmp_path / "plain.html")
    calls = []
    real_pieces = maps.feature_pieces
    monkeypatch.setattr(maps, "feature_pieces", lambda *a, **k: calls.append(1) or real_pieces(*a, **k))
    assert _page(maps.result_map(r), tmp_path / "prepared.html") == want
    assert calls == [] and "pieces" not in prep._made              # placed, and let go
    assert _page(maps.result_map(r), tmp_path / "again.html") == want and calls == [1]


def test_no_preparation_for_features_past_the_bound():
    """More than MAP_PREP_FEATURES x map_max_points features (a city, whose map draws
    hexagons): no preparation, the map is made in the save as without it."""
    n = len(lifecircle.analyze(XJK, prepare_map=False).features)
    limit = -(-n // pipeline.MAP_PREP_FEATURES)             # n features: just within
    assert lifecircle.analyze(XJK, map_max_points=limit)._map_prep is not None
    assert lifecircle.analyze(XJK, map_max_points=limit - 1)._map_prep is None


def test_the_thread_carries_the_cap(monkeypatch):
    """The preparing thread works under the thread cap of the thread that started it."""
    from lifecircle import settings as settings_mod

    seen = []
    real = result_mod.feature_pieces

    def pieces(*a, **k):
        seen.append((threading.current_thread().name, getattr(settings_mod._thread_cap, "n", 0)))
        return real(*a, **k)

    monkeypatch.setattr(result_mod, "feature_pieces", pieces)
    with thread_cap(2):
        r = lifecircle.analyze(XJK)
    assert seen == [("lifecircle-map-prep", 2)]
    assert r._map_prep.background(r) is not None
    assert np.isfinite(r.timings["map"])
