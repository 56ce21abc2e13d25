"""One answer to "how many cores may lifecircle's own threads and children use"."""

from __future__ import annotations

import os

import pytest

from lifecircle.settings import cores


@pytest.mark.parametrize(("value", "expect"), [("1", 1), ("", None), ("0", None), ("x", None),
                                                ("-3", None), ("999", None)])
def test_lifecircle_threads_caps_the_affinity(monkeypatch, value, expect):
    allowed = len(os.sched_getaffinity(0))
    monkeypatch.setenv("LIFECIRCLE_THREADS", value)
    assert cores() == (expect if expect is not None else allowed)


def test_one_core_allowed(monkeypatch):
    monkeypatch.delenv("LIFECIRCLE_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert cores() == 1


def test_batch_workers_run_single_threaded(monkeypatch):
    # the districts side by side are the parallelism: each worker's own threads are capped
    pytest.importorskip("dask.distributed")
    from lifecircle.batch.run import make_cluster

    seen = {}

    class FakeCluster:
        def __init__(self, **kw):
            seen.update(kw)

    import dask.distributed
    monkeypatch.setattr(dask.distributed, "LocalCluster", FakeCluster)
    make_cluster(workers=2)
    assert seen["env"]["LIFECIRCLE_THREADS"] == "1"
    assert seen["env"]["NUMBA_NUM_THREADS"] == "1"


def test_chunks_follow_lifecircle_threads_set_after_import(monkeypatch):
    # read at each call, as the reader does: not fixed when lifecircle was imported
    from lifecircle.core import chunks

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    n = 4 * chunks.MIN_ITEMS
    monkeypatch.setenv("LIFECIRCLE_THREADS", "1")
    assert chunks.spans(n) == [(0, n)]
    seen = set()
    chunks.run([lambda: seen.add(__import__("threading").get_ident()) for _ in range(4)])
    assert len(seen) == 1
    monkeypatch.delenv("LIFECIRCLE_THREADS")
    assert len(chunks.spans(n)) > 1


def test_a_batch_task_runs_on_one_thread_on_any_worker(monkeypatch):
    # a threaded cluster's worker (or the user's own scheduler's) shares its process: the cap
    # is the task thread's own, the environment and the other threads are untouched
    import importlib
    import threading
    import types

    import numba
    import shapely

    from lifecircle.core import chunks

    batch_run = importlib.import_module("lifecircle.batch.run")
    monkeypatch.delenv("LIFECIRCLE_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    seen = {}

    def analyze(*args, **kwargs):
        seen.update(cores=cores(), chunks=chunks.threads(), numba=numba.get_num_threads())
        raise RuntimeError("stop here")

    monkeypatch.setattr(batch_run, "analyze", analyze)
    data = types.SimpleNamespace(clip=lambda area: types.SimpleNamespace(streets=[1]))
    ds = types.SimpleNamespace(name="A", slug="a", source="s", boundary=None, origin="bbox",
                               geometry=shapely.box(24.93, 60.16, 24.94, 60.17))
    cfg = types.SimpleNamespace(settings={}, profile="default", speed=None, lang="en")
    out = {}
    numba_before = numba.get_num_threads()

    def worker_thread():
        out["info"] = batch_run._run_district(data, ds, cfg, "digest", "unused")
        out["numba_after"] = numba.get_num_threads()
        out["cores_after"] = cores()
    t = threading.Thread(target=worker_thread)
    t.start()
    t.join()
    assert out["info"]["status"] == "failed" and "stop here" in out["info"]["error"]
    assert seen == {"cores": 1, "chunks": 1, "numba": 1}
    assert out["numba_after"] == numba_before and out["cores_after"] == 4
    assert cores() == 4 and chunks.threads() == 2 and "LIFECIRCLE_THREADS" not in os.environ
    # Dask ships the task by reference: the name resolves to the wrapped task
    import cloudpickle
    assert cloudpickle.loads(cloudpickle.dumps(batch_run._run_district)) is batch_run._run_district


def test_the_threads_a_batch_task_starts_keep_its_one_thread(monkeypatch):
    """The map's and the isochrones' worker threads run kernels too: started by a batch task
    (one thread), they run them on one thread, not on numba's default count (reviewer)."""
    import importlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from lifecircle import settings
    from lifecircle.core import _kernels

    monkeypatch.delenv("LIFECIRCLE_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_kernels.numba, "get_num_threads", lambda: 2)   # a new thread's count
    batch_run = importlib.import_module("lifecircle.batch.run")
    used = []

    def work(i):
        used.append(threading.current_thread().name)
        time.sleep(0.05)

    def kernel_in_a_pool():
        with ThreadPoolExecutor(1) as pool:
            pool.submit(settings.carried(_kernels._in_threads), work, 4).result()

    batch_run._one_thread(kernel_in_a_pool)()
    assert len(used) == 4 and len(set(used)) == 1      # one thread ran all four
    used.clear()
    kernel_in_a_pool()                                  # outside a batch task: two threads
    assert len(used) == 4 and len(set(used)) == 2
