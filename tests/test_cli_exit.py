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


def test_under_a_profiler_the_ordinary_exit_is_kept(tmp_path):
    # cProfile, trace and coverage write their results after the script: os._exit would lose them
    proc, mark = _run("""
        sys.setprofile(lambda *a: None)
        try:
            _leave(SystemExit(4))
        except SystemExit as exc:
            open(mark, "a").write(f"raised {exc.code};")
    """, tmp_path)
    assert proc.returncode == 0     # the SystemExit came back to the caller, which went on
    assert mark == "raised 4;atexit;"


def test_main_ends_with_systemexit_for_callers(tmp_path):
    # main() is the plain entry (callers catch SystemExit and go on); console() is the script's
    proc, mark = _run("""
        from lifecircle.cli import main
        sys.argv = ["lifecircle", "--help"]
        try:
            main()
        except SystemExit as exc:
            open(mark, "a").write(f"caller continues {exc.code};")
    """, tmp_path)
    assert proc.returncode == 0
    assert mark == "caller continues 0;atexit;"
    assert "analyze" in proc.stdout


def test_output_that_cannot_be_flushed_gives_120(tmp_path):
    # as Python's own exit: buffered output lost on a full disk is not a success
    code = textwrap.dedent("""
        import sys
        from lifecircle.cli.app import _leave
        sys.stdout.write("x" * 10)
        _leave(SystemExit(0))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE,
                              timeout=60, env=env)
    assert proc.returncode == 120


def test_console_script_runs_the_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lifecircle.cli", "analyze",
                           str(tmp_path / "missing.osm.pbf"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "missing.osm.pbf" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_closed_stdout_or_stderr_is_not_a_failure(tmp_path):
    # started with a stream closed (``>&-``): sys.stdout is None, nothing to flush, exit 0
    code = "from lifecircle.cli.app import _leave\n_leave(SystemExit(0))\n"
    for closed in ("stdout", "stderr"):
        proc = subprocess.run([sys.executable, "-c", code], timeout=60,
                              **{closed: subprocess.DEVNULL},
                              pass_fds=(), close_fds=True,
                              preexec_fn=lambda fd=1 if closed == "stdout" else 2: os.close(fd))
        assert proc.returncode == 0, closed


def test_ctrl_c_says_interrupted_and_exits_130(tmp_path):
    # typer turns Ctrl-C into a silent Exit(130): the line is printed by main()
    for lang, word in (("en", "interrupted"), ("zh", "已中断")):
        code = textwrap.dedent(f"""
            import importlib, sys
            cli_app = importlib.import_module("lifecircle.cli.app")

            @cli_app.app.command("sleepy")
            def sleepy(lang: str = "en"):
                raise KeyboardInterrupt

            sys.argv = ["lifecircle", "sleepy", "--lang", "{lang}"]
            cli_app.console()
        """)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 130
        assert word in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("fast", [True, False])
def test_the_analysis_is_kept_until_the_console_scripts_exit(tmp_path, monkeypatch, fast):
    """Under the console script the analysis is not freed when the command returns (its
    teardown, object by object, is what the fast exit skips); called otherwise, nothing is
    kept."""
    from conftest import shared_file
    from typer.testing import CliRunner

    from lifecircle.cli import app, common
    from lifecircle.result import Result

    monkeypatch.setattr(common, "FAST_EXIT", fast)
    monkeypatch.setattr(common, "_held", [])
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["analyze", str(shared_file("china/nanjing_xinjiekou_2021.osm.pbf")),
                                 "--out", str(tmp_path / "out"), "--no-map"])
    assert r.exit_code == 0, r.output
    assert [type(x) for x in common._held] == ([Result] if fast else [])
