"""Standard output that cannot be written (``> /dev/full``): one line on standard error naming
it and the problem, never a traceback; the exit code stays the command's own (2 for a bad
input), 1 where only the output failed."""

from __future__ import annotations

import errno
import importlib
import io
import os
import subprocess
import sys

import pytest
import typer

from lifecircle.cli.common import console, fail
from lifecircle.errors import InputFileError

cli_app = importlib.import_module("lifecircle.cli.app")


class Full(io.TextIOBase):
    """A stdout on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        pass


def _app():
    app = typer.Typer(add_completion=False)

    @app.command()
    def talk(lang: str = "en", bad: bool = False):
        console.print("a summary line")
        if bad:
            fail(InputFileError("in.osm.pbf", "file not found", zh="文件不存在"))

    @app.command()
    def other():   # two commands: typer then expects the command's name
        pass
    return app


@pytest.mark.parametrize(("args", "code", "line"), [
    (["talk"], 1, "error: cannot write to standard output: No space left on device"),
    (["talk", "--lang", "zh"], 1, "错误：无法写入标准输出：设备上没有空间"),
    (["talk", "--bad"], 2, "error: cannot write to standard output: No space left on device"),
])
def test_full_stdout_is_one_line_and_keeps_the_exit_code(monkeypatch, capsys, args, code, line):
    monkeypatch.setattr(cli_app, "app", _app())
    monkeypatch.setattr(sys, "argv", ["lifecircle", *args])
    full = Full()
    monkeypatch.setattr(sys, "stdout", full)
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == code
    assert sys.stdout is full           # put back for the caller
    err = capsys.readouterr().err
    assert "Traceback" not in err and "OSError" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == line
    if "--bad" in args:                 # the bad input is still said, first
        assert lines == ["error: in.osm.pbf: file not found", line]
    else:
        assert len(lines) == 1


def test_writable_stdout_is_untouched(monkeypatch, capsys):
    monkeypatch.setattr(cli_app, "app", _app())
    monkeypatch.setattr(sys, "argv", ["lifecircle", "talk"])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code in (None, 0)
    out, err = capsys.readouterr()
    assert out == "a summary line\n" and err == ""


def test_dev_full_as_a_process():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lifecircle.cli", "--help"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"


@pytest.mark.parametrize(("args", "code", "line"), [
    (["talk"], 1, "error: cannot write to standard output: standard output is closed"),
    (["talk", "--lang", "zh"], 1, "错误：无法写入标准输出：文件描述符无效（已关闭）"),
    (["talk", "--bad"], 2, "error: cannot write to standard output: standard output is closed"),
])
def test_closed_stdout_is_said_as_a_full_one_is(monkeypatch, capsys, args, code, line):
    """Started with standard output closed (``>&-``: Python's ``sys.stdout`` is None): the
    output is lost, so the run says so and exits 1, as on a full disk (tester)."""
    monkeypatch.setattr(cli_app, "app", _app())
    monkeypatch.setattr(sys, "argv", ["lifecircle", *args])
    monkeypatch.setattr(sys, "stdout", None)
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == code
    assert sys.stdout is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == line and "Traceback" not in "".join(lines)
