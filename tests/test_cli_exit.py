"""The console script ends without the interpreter's teardown (cli.app._leave), and still
behaves as ``sys.exit`` would: exit code, flushed output, exit handlers run, live threads
waited for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _run(body: str, tmp_path):
    code = textwrap.dedent("""
        import atexit, sys, threading, time
        from lifecircle.cli.app import _leave
        mark = sys.argv[1]
        atexit.register(lambda: open(mark, "a").write("atexit;"))
    """) + textwrap.dedent(body)
    mark = tmp_path / "mark.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # buffered, as usual
    proc = subprocess.run([sys.executable, "-c", code, str(mark)], capture_output=True,
                          text=True, timeout=60, env=env)
    return proc, (mark.read_text() if mark.exists() else "")


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (2, 2), (130, 130)])
def test_status_output_and_exit_handlers(tmp_path, code, status):
    # buffered output with no newline: lost unless flushed before os._exit
    proc, mark = _run(f"""
        sys.stdout.write("out-no-newline")
        sys.stderr.write("err-no-newline")
        _leave(SystemExit({code!r}))
        open(mark, "a").write("after;")   # never reached
    """, tmp_path)
    assert proc.returncode == status
    assert proc.stdout == "out-no-newline"
    assert proc.stderr == "err-no-newline"
    assert mark == "atexit;"


def test_message_code_is_printed_with_status_1(tmp_path):
    proc, mark = _run('_leave(SystemExit("bad thing"))', tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "bad thing"
    assert mark == "atexit;"


def test_live_thread_is_waited_for(tmp_path):
    # a non-daemon thread still working: the ordinary exit (which waits for it) is kept
    proc, mark = _run("""
        def work():
            time.sleep(0.5)
            open(mark, "a").write("thread;")
        threading.Thread(target=work).start()
        _leave(SystemExit(3))
    """, tmp_path)
    assert proc.returncode == 3
    assert mark == "thread;atexit;"


def test_daemon_thread_does_not_hold_the_exit(tmp_path):
    proc, mark = _run("""
        def work():
            time.sleep(30)
            open(mark, "a").write("thread;")
        threading.Thread(target=work, daemon=True).start()
        _leave(SystemExit(0))
    """, tmp_path)
    assert proc.returncode == 0
    assert mark == "atexit;"
