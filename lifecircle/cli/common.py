"""What every command shares: the consoles and the one way a user error ends a command."""

from __future__ import annotations

import errno
import os
import re
import sys

import typer
from rich.console import Console, RenderHook
from rich.text import Text

from lifecircle.i18n import LANGS, default_lang

try:  # typer >= 0.24 runs on its own copy of click
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click import get_current_context


#: a control character but a newline (what :class:`lifecircle.untrusted.ShownControls` shows:
#: its ``CONTROL_CHARACTERS``, kept the same by a test; not imported, to keep start-up light)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


class _ShownControls(RenderHook):
    """:class:`lifecircle.untrusted.ShownControls`, loaded when first used (see :func:`say`):
    no control character in what the consoles print reaches the terminal raw."""

    def process_renderables(self, renderables):
        if all(isinstance(r, Text) and not _CONTROL.search(r.plain + r.end) for r in renderables):
            # plain lines without a control character (a usage error's, a note's) print as
            # they are: untrusted (branca, jinja2, numpy: 0.1 s) is not loaded for them
            return renderables
        from lifecircle.untrusted import ShownControls

        return ShownControls().process_renderables(renderables)


console = Console()
err_console = Console(stderr=True)
console.push_render_hook(_ShownControls())
err_console.push_render_hook(_ShownControls())

FORCE_HELP = ("Write into an output folder (or over a file) that lifecircle did not make: its own "
              "files are replaced, nothing else is touched. Without it such targets are refused.")


def say(*args, **kwargs) -> None:
    """:func:`lifecircle.untrusted.say`, loaded when first used: :mod:`lifecircle.untrusted`
    brings branca, jinja2 and numpy (the HTML side), which ``--help`` and a command's start-up
    do without."""
    from lifecircle.untrusted import say as _say

    _say(*args, **kwargs)


def say_literal(console: Console, text: str, prefix: str, prefix_style: str) -> None:
    """Print ``prefix`` then ``text`` literally (never as markup), as :func:`say` does, without
    loading :mod:`lifecircle.untrusted`: for click's usage errors in Chinese, which must come as
    fast as typer's English ones."""
    line = Text()
    line.append(prefix, style=prefix_style)
    line.append(text)
    console.print(line, highlight=False, soft_wrap=True)


def literal(value, style: str | None = None):
    """:func:`lifecircle.untrusted.literal`, loaded when first used (see :func:`say`)."""
    from lifecircle.untrusted import literal as _literal

    return _literal(value, style)


def command_lang(lang: str | None = None) -> str:
    """The language of the running command's messages: ``lang`` if valid, else the command's
    ``--lang`` when it is zh or en, else the language of the analysis folder it loaded
    (:func:`load_folder`), else the locale's (:func:`lifecircle.i18n.default_lang`)."""
    if lang not in LANGS:
        ctx = get_current_context(silent=True)
        lang = ctx.params.get("lang") if ctx is not None else None
        if lang not in LANGS and ctx is not None:
            lang = ctx.meta.get("lifecircle.analysis_lang")
    return lang if lang in LANGS else default_lang()


def load_folder(folder):
    """:func:`lifecircle.result.load_result`, remembering the analysis's language: without
    ``--lang`` the command's refusals then read as its output does."""
    from lifecircle.result import load_result

    result = load_result(folder)
    remember_lang(result.settings.lang)
    return result


def check_datum(option: str, value) -> None:
    """Refuse a datum option (``--coords``, ``--sites-crs``, ``--origins-crs`` …) that is not
    wgs84, gcj02 or bd09 in any spelling :func:`~lifecircle.io.chinacoords.normalize_crs` reads,
    whether or not the file it is for was given: a typo is never silently ignored."""
    from lifecircle.errors import OptionError
    from lifecircle.io.chinacoords import datum_zh, normalize_crs

    try:
        normalize_crs(value)
    except ValueError as exc:
        raise OptionError(option, str(exc), zh=datum_zh(value)) from None


def fail(exc: Exception, lang: str | None = None) -> None:
    """Print ``error: <message>`` (``错误：<message>`` in Chinese) on one line, the message
    literally, never as markup, in the command's language (:func:`command_lang`), and exit with
    the error's code (2 for every :class:`~lifecircle.errors.LifecircleError`)."""
    lang = command_lang(lang)
    text = exc.message(lang) if hasattr(exc, "message") and callable(exc.message) else str(exc)
    message = " ".join(text.split()) or type(exc).__name__
    say(err_console, message, prefix="错误：" if lang == "zh" else "error:", prefix_style="bold red")
    raise typer.Exit(getattr(exc, "exit_code", 2))


#: Whether the process ends through the console script's fast exit (set by ``console()``).
FAST_EXIT = False
_held: list = []


def hold_until_exit(obj) -> None:
    """Keep ``obj`` (a command's analysis) referenced until the console script's process ends:
    freeing it object by object when the command returns is the teardown the fast exit skips
    (0.23 s after the 8-tile city, ~1.8 s after a million walking nodes). Elsewhere (``main()``
    called from Python, tests) nothing is kept."""
    if FAST_EXIT:
        _held[:] = [obj]


def remember_lang(lang: str | None, *, over_line: bool = False) -> None:
    """Remember ``lang`` (zh or en) as the running command's language when it comes from
    elsewhere than ``--lang`` (an analysis folder, a batch config): its refusals
    (:func:`command_lang`) and the lines printed after it ended (Ctrl-C, standard output not
    writable: :func:`run_lang`) then read as its output does. ``over_line``: above the
    command line's ``--lang`` too (a batch config's: the batch speaks it whatever the line
    says, its ``--lang`` picks only the help's)."""
    global _remembered_lang, _remembered_over_line
    if lang not in LANGS:
        return
    _remembered_lang = lang
    _remembered_over_line = over_line
    ctx = get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["lifecircle.analysis_lang"] = lang


_remembered_lang: str | None = None
_remembered_over_line = False


def forget_lang() -> None:
    """Forget the language :func:`remember_lang` kept: a new command starts (``main()`` called
    again in one process, as tests and notebooks do)."""
    global _remembered_lang, _remembered_over_line
    _remembered_lang = None
    _remembered_over_line = False


def top_lang() -> str | None:
    """The top-level ``--lang`` of the running command's line (``lifecircle --lang zh batch
    …``; the last one, click's rule) when zh or en, else None."""
    ctx = get_current_context(silent=True)
    lang = ctx.find_root().params.get("lang") if ctx is not None else None
    return lang if lang in LANGS else None


def run_lang(args: list[str] | None = None) -> str:
    """The language of the lines printed once a command has ended: the command line's
    ``--lang``, else the one the command remembered (:func:`remember_lang`), else the
    locale's; a language remembered ``over_line`` (a batch config's) before all."""
    if _remembered_over_line and _remembered_lang in LANGS:
        return _remembered_lang
    given = line_lang(sys.argv[1:] if args is None else args)
    if given in LANGS:
        return given
    return _remembered_lang if _remembered_lang in LANGS else default_lang()


#: The exit code of a command whose standard output was a pipe closed early (``| head``): a
#: SIGPIPE's as the shell reports it (128 + 13), as ``ls``, ``git`` or ``cat`` end there.
CLOSED_PIPE_EXIT = 141


class GuardedStdout:
    """Standard output while a command runs: a write or flush that fails (a full disk, an I/O
    error) is remembered and the rest of the output dropped, instead of an ``OSError`` raised
    from whatever was printing (rich's traceback, exit 1, a bad input's exit 2 lost). The
    command goes on; :func:`stdout_failure` then says what happened in one line. A closed
    pipe (``| head``) is left to rich and click, which end the command quietly; it is
    remembered (:attr:`closed_pipe`) so that the exit code says so as other command-line tools
    do (141, a SIGPIPE's, :data:`CLOSED_PIPE_EXIT`)."""

    def __init__(self, stream):
        self._stream = stream
        self.error: OSError | None = None
        self.lang: str | None = None
        self.closed_pipe = False

    def write(self, text):
        if self.error is None:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self.closed_pipe = True
                raise
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self.error is None:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self.closed_pipe = True
                raise
            except OSError as exc:
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.error = exc
        # the running command's language once its --lang is parsed (or its analysis loaded);
        # before that (a help printed as the command line is parsed) run_lang() decides, from
        # the command line
        ctx = get_current_context(silent=True)
        known = ctx is not None and (ctx.params.get("lang") in LANGS
                                     or ctx.meta.get("lifecircle.analysis_lang") in LANGS)
        self.lang = command_lang() if known else None
        # what is still buffered would fail again at the exit (Python's "Exception ignored",
        # code 120): it drains into /dev/null instead, as rich does for a closed pipe
        try:
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
            self._stream.flush()
        except Exception:   # noqa: BLE001, S110 - not a file (a test's stream): nothing to drain
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


#: Chinese for the usual reasons standard output cannot be written (else the system's words).
_ERRNO_ZH = {errno.ENOSPC: "设备上没有空间", errno.EIO: "输入/输出错误", errno.EFBIG: "文件过大",
             errno.EDQUOT: "超出磁盘配额", errno.EBADF: "文件描述符无效（已关闭）"}


def stdout_failure(guard: GuardedStdout) -> bool:
    """Print the one line saying that standard output could not be written and why (in the
    command's language), if ``guard`` saw it fail; whether it did."""
    exc = guard.error
    if exc is None:
        return False
    lang = guard.lang if guard.lang in LANGS else run_lang()
    if lang == "zh":
        text = f"无法写入标准输出：{_ERRNO_ZH.get(exc.errno) or exc.strerror or exc}"
    else:
        text = f"cannot write to standard output: {exc.strerror or exc}"
    try:
        say(err_console, text, prefix="错误：" if lang == "zh" else "error:", prefix_style="bold red")
    except OSError:     # standard error is not writable either: the exit code says it
        pass
    return True


def note(text, to: Console | None = None) -> None:
    """Print ``note: <text>`` (the text literally)."""
    say(to or console, text, prefix="note:", prefix_style="yellow")


#: click's usage messages (English; click's and typer's own copy of click word them alike) →
#: Chinese, for the common ones: missing argument or option, no such option or command, a bad
#: value, extra arguments. Option names, values and metavars keep their spelling.
_USAGE_ZH = (
    (r"Missing argument (.*?)\.?", lambda m: f"缺少参数 {m[1]}"),
    (r"Missing option (.*?)\.?", lambda m: f"缺少选项 {m[1]}"),
    (r"Missing parameter:? (.*?)\.?", lambda m: f"缺少参数 {m[1]}"),
    (r"Missing command\.?", lambda m: "缺少命令"),
    (r"No such option:? '?(.*?)'?\.? \(Possible options: (.*)\)",
     lambda m: f"没有选项 {m[1]}（可能是：{m[2]}）"),
    (r"No such option:? '?(.*?)'?\.?(?: Did you mean (.*?)\?)?",
     lambda m: f"没有选项 {m[1]}" + (f"（是否想用：{m[2]}）" if m[2] else "")),
    (r"No such command '(.*?)'\.?(?: Did you mean (.*?)\?)?",
     lambda m: f"没有命令 '{m[1]}'" + (f"（是否想用：{m[2]}）" if m[2] else "")),
    (r"Got unexpected extra arguments? ?\(?s?\)? \((.*)\)", lambda m: f"多余的参数 '{m[1]}'"),
    (r"Option '(.*?)' requires (?:an argument|\d+ arguments?)\.?", lambda m: f"选项 '{m[1]}' 需要一个值"),
    (r"Option '(.*?)' does not take a value\.?", lambda m: f"选项 '{m[1]}' 不接受值"),
    (r"Invalid value for (.*?): (.*)", lambda m: f"{m[1]} 的值无效：{_value_zh(m[2])}"),
    (r"Invalid value: (.*)", lambda m: f"值无效：{_value_zh(m[1])}"),
)
_VALUE_ZH = (
    (r"Input should be a valid (number|integer|boolean).*|'?(.*?)'? is not a valid (float|integer|int|boolean)\.?",
     lambda m: "不是有效的" + {"number": "数值", "float": "数值", "boolean": "布尔值（true/false）"}.get(
         m[1] or m[3], "整数")),
    (r"(.*?) is not in the range (.*?)\.?", lambda m: f"{m[1]} 不在范围 {m[2]} 内"),
    (r"Input should be (greater|less) than( or equal to)? (.*?)\.?",
     lambda m: f"须{'大' if m[1] == 'greater' else '小'}于{'等于' if m[2] else ''} {m[3]}"),
    (r"'(.*)' is not one of (.*?)\.?", lambda m: f"'{m[1]}' 不是可选值之一：{m[2]}"),
    (r"(?:File|Directory|Path) '(.*)' does not exist\.?", lambda m: f"'{m[1]}' 不存在"),
)


def _translate(text: str, table) -> str | None:
    text = " ".join(str(text).split())
    for pattern, zh in table:
        m = re.fullmatch(pattern, text)
        if m:
            return zh(m)
    return None


def _value_zh(text: str) -> str:
    return _translate(text, _VALUE_ZH) or text


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a click usage error (click's own class or typer's copy of it)."""
    return any(c.__name__ == "UsageError" for c in type(exc).__mro__)


def is_click_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error click prints for the user (a usage error, a file click could
    not open …: click's ClickException or typer's copy of it)."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__)


def usage_error_zh(exc) -> str:
    """The Chinese one-line message of click's usage error ``exc``; click's English where the
    message is not one of the common kinds."""
    text = exc.format_message()
    return _translate(text, _USAGE_ZH) or " ".join(str(text).split())


def line_lang(args: list[str]) -> str | None:
    """The value of the command line's last ``--lang`` (click's rule: the last one wins, and a
    command's own comes after the top-level one), None without one. Nothing after ``--`` is
    an option (click reads it as arguments)."""
    if "--" in args:
        args = args[:args.index("--")]
    for i in range(len(args) - 1, -1, -1):
        if args[i].startswith("--lang="):
            return args[i].split("=", 1)[1]
        if args[i] == "--lang" and i + 1 < len(args):
            return args[i + 1]
    return None


def args_lang(args: list[str]) -> str:
    """The language of a command line: its last ``--lang`` (:func:`line_lang`) when zh or en,
    else the locale's (a last ``--lang`` that is neither is the run's error)."""
    value = line_lang(args)
    return value if value in LANGS else default_lang()
