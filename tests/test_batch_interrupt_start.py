"""A Ctrl-C while ``lifecircle batch`` starts its Dask cluster is held back and raised once
the cluster is up, not dropped (tester: the batch ran to the end and exited 0); the worker
processes still start with Ctrl-C ignored."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time

import pytest

batch_run = importlib.import_module("lifecircle.batch.run")
cli_app = importlib.import_module("lifecircle.cli.app")
common = importlib.import_module("lifecircle.cli.common")

pytestmark = pytest.mark.skipif(not hasattr(signal, "sigtimedwait"), reason="POSIX signals")

MAIN = threading.main_thread().ident


def ctrl_c():
    """Ctrl-C to the main thread (the thread a terminal's Ctrl-C reaches in the CLI; aimed
    at it so that a test runner's own threads cannot take it)."""
    signal.pthread_kill(MAIN, signal.SIGINT)


class FakeCluster:
    """Stands in for LocalCluster: Ctrl-C ``presses`` times while it starts."""

    made: list = []

    def __init__(self, presses=1, start_s=0.3, **kwargs):
        self.closed = False
        FakeCluster.made.append(self)
        for _ in range(presses):     # a second press a moment later (two at once are one signal)
            ctrl_c()
            time.sleep(0.3)
        time.sleep(start_s)
        self.started = True

    def close(self):
        self.closed = True


@pytest.fixture
def fake_cluster(monkeypatch):
    import dask.distributed

    FakeCluster.made = []

    def make(presses=1, start_s=0.3):
        monkeypatch.setattr(dask.distributed, "LocalCluster",
                            lambda **kw: FakeCluster(presses, start_s, **kw))
        return FakeCluster.made
    return make


def test_a_ctrl_c_during_the_start_is_raised_once_the_cluster_is_up(fake_cluster):
    made = fake_cluster(presses=1)
    before = signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with pytest.raises(KeyboardInterrupt):
        batch_run.make_cluster(1)
    assert len(made) == 1 and made[0].started     # the start was let finish, then closed
    assert made[0].closed
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask
    assert signal.SIGINT not in signal.sigpending()


def test_a_second_ctrl_c_during_the_start_stops_at_once(fake_cluster):
    made = fake_cluster(presses=2, start_s=2.0)
    with pytest.raises(KeyboardInterrupt):
        batch_run.make_cluster(1)
    assert len(made) == 1 and not hasattr(made[0], "started")    # not waited for
    # ... and the cluster the start still makes is closed once it is made (left running, its
    # loop thread and worker processes lived on in a notebook)
    until = time.monotonic() + 20
    while not getattr(made[0], "closed", False) and time.monotonic() < until:
        time.sleep(0.05)
    assert made[0].started and made[0].closed


def test_no_ctrl_c_gives_the_cluster(fake_cluster):
    made = fake_cluster(presses=0, start_s=0.0)
    assert batch_run.make_cluster(1) is made[0] and not made[0].closed


def test_a_batch_interrupted_while_its_cluster_starts_ends_interrupted(tmp_path, monkeypatch,
                                                                      capsys, fake_cluster):
    made = fake_cluster(presses=1)
    monkeypatch.setattr(common, "_remembered_lang", None)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    config = tmp_path / "batch.toml"
    config.write_text('out = "out"\nlang = "zh"\n\n[sources]\nhelsinki = { sample = "helsinki" }\n\n'
                      '[[districts]]\nname = "A"\nbbox = [24.9352, 60.1641, 24.9443, 60.1716]\n',
                      encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["lifecircle", "batch", str(config), "-w", "1"])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert err.strip() == "已中断" and "Traceback" not in err
    assert made and made[0].closed
    assert not (tmp_path / "out" / "districts.csv").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_the_workers_start_with_ctrl_c_ignored_and_a_real_start_is_interrupted(monkeypatch):
    """A real LocalCluster: its worker processes ignore SIGINT; a Ctrl-C while it starts
    ends with KeyboardInterrupt once it is up, the cluster closed."""
    import dask.distributed

    real = dask.distributed.LocalCluster

    def ignores_sigint(pid):
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
        raise AssertionError("no SigIgn")

    cluster = batch_run.make_cluster(1)
    try:
        pids = [w.process.pid for w in cluster.workers.values()]
        assert pids and all(ignores_sigint(p) for p in pids)
    finally:
        cluster.close()

    made = []

    def pressed(**kw):
        ctrl_c()
        made.append(real(**kw))
        return made[-1]

    monkeypatch.setattr(dask.distributed, "LocalCluster", pressed)
    with pytest.raises(KeyboardInterrupt):
        batch_run.make_cluster(1)
    assert made and made[0].status.name == "closed"


def test_a_process_started_with_ctrl_c_ignored_keeps_ignoring_it(fake_cluster):
    """``lifecircle batch ... &`` in a script (or nohup): SIGINT ignored from the start is not
    taken up while the cluster starts."""
    made = fake_cluster(presses=1, start_s=0.1)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            cluster = batch_run.make_cluster(1)
        except KeyboardInterrupt:
            pytest.fail("a Ctrl-C taken up though SIGINT was ignored")
        assert cluster is made[0] and not made[0].closed
    finally:
        signal.signal(signal.SIGINT, before)
