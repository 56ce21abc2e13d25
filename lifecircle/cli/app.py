"""The ``lifecircle`` command line (typer + rich): a thin front end, no analysis logic.

Every command is registered here, in one place; each lives in the module of its task. Errors
that the user can fix print one line naming the input and the problem and exit with code 2.
"""

from __future__ import annotations

import atexit
import errno
import inspect
import io
import os
import signal
import sys
import threading
from typing import Optional

import typer
from typer.core import TyperGroup

import lifecircle
from lifecircle.cli import analysis, batch, common, links, maps, resources, standards
from lifecircle.cli.common import (
    CLOSED_PIPE_EXIT,
    GuardedStdout,
    args_lang,
    err_console,
    forget_lang,
    is_click_error,
    is_usage_error,
    run_lang,
    say_literal,
    stdout_failure,
    usage_error_zh,
)
from lifecircle.cli.helplang import ZhHelp, ZhHelpCommand

try:  # typer >= 0.24 runs on its own copy of click
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import NoArgsIsHelpError


class _Group(ZhHelp, TyperGroup):
    """The command group: its help and every command's is in the command line's language
    (:mod:`lifecircle.cli.helplang`), and click's errors (missing argument, no such option, a
    bad value …) become one Chinese line and exit 2 when the command line is in Chinese
    (:func:`~lifecircle.cli.common.args_lang`); in English they are click's own."""

    #: the language of this run's help (typer builds the group afresh for each run)
    help_lang = "en"

    def main(self, args=None, *rest, **kwargs):
        self.help_lang = args_lang(sys.argv[1:] if args is None else list(args))
        return super().main(args, *rest, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        self._line = list(args)       # the whole command line: its --lang may come first
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:      # an unknown option before the command name, …
            _usage_error_zh(exc, self._line, None)
            raise

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        if not ctx._protected_args and not rest and not ctx.resilient_parsing:
            # ``lifecircle --lang zh``: no command, as ``lifecircle`` alone: the help (typer's
            # NoArgsIsHelpError prints it), not "Missing command"
            raise NoArgsIsHelpError(ctx)
        return rest

    def resolve_command(self, ctx, args):
        # ``lifecircle --lang zh COMMAND …``: the command runs as if its own --lang came first,
        # so one given after the command name wins (click's rule) and the command's help does
        # not show the top-level value as its default. Not to a command whose --lang is hidden
        # (batch: its language is its config's, --lang only picks its help's), so that an
        # alias such as ``lifecircle --lang zh`` still runs it
        name, cmd, rest = super().resolve_command(ctx, args)
        lang = ctx.params.get("lang")
        if lang is not None and cmd is not None and \
                any(p.name == "lang" and not getattr(p, "hidden", False) for p in cmd.params):
            rest = ["--lang", lang, *rest]
        return name, cmd, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            _usage_error_zh(exc, getattr(self, "_line", ctx.args), ctx)
            raise


def _usage_error_zh(exc: Exception, args: list[str], ctx) -> None:
    """Say click's error ``exc`` (a usage error, a file that cannot be opened …) as one Chinese
    line and exit with its code when the command line ``args`` is in Chinese; otherwise return
    (the caller raises it again for click)."""
    if (not is_click_error(exc) or type(exc).__name__ == "NoArgsIsHelpError"   # typer's help
            or args_lang(args) != "zh"):
        return
    sub = getattr(exc, "ctx", None) or getattr(exc, "lifecircle_ctx", None) or ctx
    text = usage_error_zh(exc) if is_usage_error(exc) else " ".join(exc.format_message().split())
    hint = f"（用 '{sub.command_path} --help' 查看用法）" if is_usage_error(exc) and sub is not None else ""
    say_literal(err_console, f"{text}{hint}", prefix="错误：", prefix_style="bold red")
    raise typer.Exit(getattr(exc, "exit_code", 2)) from None


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True,
                  help="15-minute community life circle (十五分钟社区生活圈) analysis.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lifecircle {lifecircle.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", is_eager=True, expose_value=False,
                                 callback=_version, help="Show the version and exit."),
    lang: Optional[str] = typer.Option(None, "--lang", hidden=True,
                                       help="Language of the help and of the command's output: zh or en."),
) -> None:
    # ``lifecircle --lang zh COMMAND …``: given to the command (_Group.resolve_command)
    del ctx, lang


def _reflowed(func) -> str:
    r"""``func``'s docstring as its English help: each paragraph one line, which rich wraps at
    the console's width. typer's rich markup mode keeps a docstring's line breaks in the
    command list of ``lifecircle --help`` and in every paragraph but the first of a command's
    own help ("(default, in" / "Chinese), or Helsinki" on lines of their own); a paragraph
    that starts with ``\b`` is kept as written (click's mark). The Chinese help is
    :mod:`~lifecircle.cli.help_zh`'s."""
    text = inspect.cleandoc(func.__doc__ or "")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in text.split("\n\n"))


for _name, _func in (("analyze", analysis.analyze), ("demo", analysis.demo), ("map", maps.map_command),
                     ("isochrones", maps.isochrones_command), ("resources", resources.resources),
                     ("recommend", resources.recommend), ("check", standards.check_cmd),
                     ("batch", batch.batch), ("links", links.links)):
    app.command(_name, cls=ZhHelpCommand, help=_reflowed(_func))(_func)
del _name, _func


def main() -> None:
    """Run the command line; ends with ``SystemExit`` as a typer app does.

    Standard output is guarded while the command runs (:class:`~lifecircle.cli.common.GuardedStdout`):
    when it cannot be written (a full disk, closed), one line on standard error says so, and the exit
    code is the command's own (2 for a bad input) or 1 where the command itself succeeded; 141 (a
    SIGPIPE's) when standard output was a pipe closed early (``| head``). A character the console's
    encoding lacks is written as ``?``, never a ``UnicodeEncodeError``."""
    forget_lang()
    stdout = sys.stdout
    handlers = _stop_signals()
    replaced = _replace_unencodable(stdout, sys.stderr)
    guard = sys.stdout = GuardedStdout(stdout if stdout is not None else io.StringIO())
    if stdout is None:      # started with standard output closed (``>&-``): said as a failure
        guard.error = OSError(errno.EBADF, "standard output is closed")
    try:
        _run()
    except SystemExit as exc:
        if guard.closed_pipe:   # ``| head``: rich and click ended it quietly, with 1
            raise SystemExit(CLOSED_PIPE_EXIT) from None
        try:
            guard.flush()       # what print() left in the buffer: its failure is this run's
        except BrokenPipeError:
            _drain(stdout)
            raise SystemExit(CLOSED_PIPE_EXIT) from None
        if stdout_failure(guard) and exc.code in (None, 0):
            raise SystemExit(1) from None
        raise
    finally:
        if sys.stdout is guard:
            sys.stdout = stdout
        for stream, errors in replaced:
            stream.reconfigure(errors=errors)
        for signum, handler in handlers:
            signal.signal(signum, handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, ``kill``, a closed terminal, a stopped container or
    notebook kernel) taken as Ctrl-C is: every clean-up a Ctrl-C runs runs (temporary copies
    and output folders removed, the split read's child reaped), and the exit code is 128 + the
    signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminated(signum, frame):
    raise Terminated(signum)


def _stop_signals() -> list:
    """Take SIGTERM and SIGHUP as :class:`Terminated` while a command runs, where they would
    end the process at once (their default): one that is ignored (``nohup``) or handled by
    the caller stays so. The handlers replaced, to put back."""
    replaced = []
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            replaced.append((signum, signal.signal(signum, _terminated)))
    return replaced


def _replace_unencodable(*streams) -> list:
    """Let the console streams write a character their encoding lacks as ``?`` (the Chinese of
    ``十五分钟社区生活圈`` under ``PYTHONIOENCODING=cp1252``) instead of raising
    ``UnicodeEncodeError`` from whatever printed; the streams and their former setting."""
    replaced = []
    for stream in streams:
        errors = getattr(stream, "errors", None)
        if errors == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
            except (ValueError, OSError):   # pragma: no cover - a stream that cannot
                continue
            replaced.append((stream, errors))
    return replaced


def _drain(stream) -> None:
    """Point ``stream``'s file at /dev/null: what it still buffers for a closed pipe goes
    nowhere at the exit (no "Exception ignored … BrokenPipeError")."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except Exception:   # noqa: BLE001, S110 - not a file: nothing to drain
        pass


def _run() -> None:
    try:
        app()
    except KeyboardInterrupt as exc:
        _say_interrupted()
        sys.exit(128 + exc.signum if isinstance(exc, Terminated) else 130)
    except SystemExit as exc:
        cause = _from_interrupt(exc) if exc.code == 130 else None
        if cause is not None:       # typer's Exit(130) for Ctrl-C, silent
            _say_interrupted()
            if isinstance(cause, Terminated):
                raise SystemExit(128 + cause.signum) from None
        raise
    except Exception:   # a defect, never a bad input's: its traceback on err_console, whose
        err_console.print_exception(suppress=[typer])   # control characters show, never act
        sys.exit(1)


def _say_interrupted() -> None:
    err_console.print("已中断" if run_lang() == "zh" else "interrupted")


def _from_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt among the exceptions ``exc`` was raised from, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def console() -> None:
    """The ``lifecircle`` console script and ``python -m lifecircle.cli``: :func:`main`, then
    the process ends without the interpreter's teardown (see :func:`_leave`)."""
    common.FAST_EXIT = True
    try:
        main()
    except SystemExit as exc:
        _leave(exc)


def _leave(exc: SystemExit) -> None:
    """End the process as ``raise exc`` would, without the interpreter's teardown.

    Everything the command wrote is closed by then; what is left is freeing every object one by
    one (an analysis holds millions: 0.6 s after a Las Palmas run, several seconds at city
    scale). Only a success ends this way: the exit handlers still run (logging, temporary
    folders, multiprocessing), the console streams are flushed, and the exit code is 0 (120
    when output could not be flushed, as Python's own exit). The ordinary exit is kept for a
    failure or Ctrl-C, when a thread other than daemon ones is still alive (the interpreter
    would wait for it) and under a profiler or tracer (cProfile, trace, coverage write their
    results after the script)."""
    if sys.getprofile() is not None or sys.gettrace() is not None or any(
            t is not threading.main_thread() and not t.daemon and t.is_alive()
            for t in threading.enumerate()):
        raise exc
    if exc.code not in (None, 0):
        if not _map_prepared_still():
            # a failure or Ctrl-C: the ordinary exit (speed does not matter there, and exit
            # handlers such as Dask's cluster shutdown expect it: from here it waited 10 s)
            raise exc
        # the map preparation of an interrupted analysis still ends its piece, a daemon
        # thread inside GEOS: the interpreter's teardown under it crashed (a segmentation
        # fault after "interrupted"), and its exit handler would wait for the piece. Out at
        # once, the streams flushed; nothing of analyze's needs an exit handler then (its
        # temporary folders went with the failure)
        _flushed_exit(exc.code if isinstance(exc.code, int) else 1)
    try:
        atexit._run_exitfuncs()
    finally:
        _flushed_exit(0)


def _map_prepared_still() -> bool:
    """Whether a map preparation (:class:`lifecircle.result.MapPrep`) still runs: only where
    :mod:`lifecircle.result` was imported (not imported here for the commands without it)."""
    result = sys.modules.get("lifecircle.result")
    return result is not None and bool(result.map_preparations())


def _flushed_exit(status: int) -> None:
    """``os._exit(status)`` once the console streams are flushed (120 for a success whose
    output could not be: Python's own exit says so)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:                # started with the stream closed: nothing to flush
            continue
        try:
            stream.flush()
        except Exception:             # a full disk, a closed pipe: Python's own exit says 120
            if status == 0:
                status = 120
    os._exit(status)


if __name__ == "__main__":
    main()
