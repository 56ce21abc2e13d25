"""The command line's own help in the command line's language.

``lifecircle … --help`` is Chinese when the command line says ``--lang zh`` (``--lang=zh``,
anywhere in it) or, without a valid ``--lang``, the locale is zh_* — the rule of every other
output (:func:`lifecircle.cli.common.args_lang`). typer builds the click commands afresh for each
run; while a Chinese run lasts, :func:`help_language` puts the Chinese of
:mod:`lifecircle.cli.help_zh` on them (descriptions, parameters' help) and on typer's own words
(``typer.rich_utils``' constants: panel titles, ``[default: …]``, ``[required]``, the "Try … for
help" hint, the error panel's title), and :class:`ZhHelp` gives click's usage prefix and the help
of ``--help``. Everything is put back when the run ends: English output is typer's own.
"""

from __future__ import annotations

from contextlib import contextmanager

from rich.highlighter import Highlighter
from typer.core import TyperCommand

from lifecircle.cli import help_zh
from lifecircle.cli.common import args_lang

#: The texts put in Chinese for the running command line (each ``(object, attribute, English)``,
#: put back when it ends); None while it runs in English.
_zh_texts: list | None = None


def _put_zh(obj, attr: str, text) -> None:
    """Set ``obj.attr`` to ``text`` (Chinese) for the running command line."""
    _zh_texts.append((obj, attr, getattr(obj, attr)))
    setattr(obj, attr, text)


class _Folding(Highlighter):
    """typer's highlighter, its text folding where a line is full: rich wraps only at spaces and
    cut a Chinese sentence (no spaces) short with "…"; folded, every word of it shows (rich's own
    advice for Chinese, Textualize/rich#2494)."""

    def __init__(self, highlighter):
        self._highlighter = highlighter

    def __call__(self, text):
        text = self._highlighter(text)
        text.overflow = "fold"
        return text

    def highlight(self, text) -> None:
        self._highlighter.highlight(text)


@contextmanager
def help_language(group, args: list[str]):
    """While the command line ``args`` of ``group`` (typer's click group) runs: its help in
    Chinese when :func:`~lifecircle.cli.common.args_lang` says zh, else untouched."""
    global _zh_texts
    if args_lang(args) != "zh" or _zh_texts is not None:
        yield
        return
    # loaded by any help screen anyway; typer reads its constants when it prints
    from typer import rich_utils

    _zh_texts = []
    try:
        for name, text in help_zh.RICH_WORDS.items():
            _put_zh(rich_utils, name, text)
        _put_zh(rich_utils, "highlighter", _Folding(rich_utils.highlighter))
        for name, cmd in {"": group, **group.commands}.items():
            about, params = help_zh.COMMANDS.get(name, (None, {}))
            if about:
                _put_zh(cmd, "help", about)
            for param in cmd.params:
                if param.name in params:
                    _put_zh(param, "help", params[param.name])
        yield
    finally:
        texts, _zh_texts = _zh_texts, None
        for obj, attr, english in reversed(texts):
            setattr(obj, attr, english)


class ZhHelp:
    """Mixin of a click command: the usage line's prefix and the help of ``--help`` (which click
    makes as it parses) in Chinese while :func:`help_language` has the help in Chinese."""

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)),
                              prefix=help_zh.USAGE if _zh_texts is not None else None)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None and _zh_texts is not None and option.help != help_zh.HELP_OPTION:
            _put_zh(option, "help", help_zh.HELP_OPTION)
        return option


class ZhHelpCommand(ZhHelp, TyperCommand):
    """typer's command, its help in the command line's language (see :class:`ZhHelp`)."""
