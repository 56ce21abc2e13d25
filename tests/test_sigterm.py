"""SIGTERM and SIGHUP end a command as Ctrl-C does: its clean-up runs (a .osm.bz2's temporary
copy, the output's temporary sibling) and the exit code is 128 + the signal (tester: `timeout`
left a decompressed copy of the extract in the temporary folder for every run it cut short)."""
from __future__ import annotations

import bz2
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_cleans_up_as_ctrl_c(tmp_path, signum):
    xml = shared_file("china/nanjing_xinjiekou_2021.osm")
    packed = tmp_path / "x.osm.bz2"
    packed.write_bytes(bz2.compress(xml.read_bytes()))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lifecircle.cli", "analyze", str(packed),
                             "--out", str(tmp_path / "out"), "--no-map"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("lifecircle-osm-") for p in scratch.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the copy never appeared"
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err.decode()
    assert "Traceback" not in err.decode()
    assert list(scratch.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if "lifecircle-tmp" in p.name]


def test_an_ignored_hangup_stays_ignored():
    """``nohup``: SIGHUP ignored by the caller is not taken over."""
    from lifecircle.cli.app import _stop_signals

    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        replaced = _stop_signals()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        for s, h in replaced:
            signal.signal(s, h)
    finally:
        signal.signal(signal.SIGHUP, old)
