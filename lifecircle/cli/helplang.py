"""The command line's own help in the command line's language.

``lifecircle … --help`` is Chinese when the command line's language is zh
(:func:`lifecircle.cli.common.args_lang`: its last ``--lang``, else the locale) — the rule of
every other output. Nothing shared is changed for it: a Chinese help is printed by a copy of
``typer.rich_utils`` of its own (:func:`zh_rich_utils`), whose words (panel titles,
``[默认：…]``, ``[必填]`` …) are Chinese and which takes each description and parameter help
from :mod:`lifecircle.cli.help_zh` as it prints, and :class:`ZhHelp` gives click's usage line.
typer's own module, its constants and the click objects are never touched, so English help
stays typer's own and two command lines run at once (threads, a notebook, a server) never mix.

Chinese has no spaces: rich wraps only at spaces, and a Chinese sentence would be folded
anywhere (``districts.cs|v``, a line starting with ``。``). :class:`CjkText` wraps between
Chinese characters instead, keeps Latin words, option and file names whole, and never starts a
line with closing punctuation or ends one with opening punctuation.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from types import SimpleNamespace

from rich.cells import cell_len, chop_cells
from rich.highlighter import Highlighter
from rich.measure import Measurement
from rich.text import Lines, Text
from typer.core import TyperCommand

from lifecircle.cli import help_zh

_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_OPEN = "（「『《〈【〔〖“‘"
_CLOSE = "）」』》〉】〕〗”’。，、；：！？"


@functools.cache
def _piece():
    """The pattern of one piece a line never breaks inside: a tag ("[默认：", "[必填]"), or
    opening punctuation, then a Latin run (a word, an option or file name, a number) or one other
    character (a Chinese one), then closing punctuation (a bracket after Chinese included); then
    the spaces after it. Compiled when first used (8 ms: not for every start-up)."""
    return re.compile(
        rf"\s*(?:\[[{_CJK}]+(?:：|\])|(?:[{_OPEN}]|[(\[{{](?=[{_CJK}]))*"
        rf"(?:(?:(?![(\[{{][{_CJK}])[^\s{_CJK}{_OPEN}{_CLOSE}])+|\S))"
        rf"(?:[{_CLOSE}]|(?<=[{_CJK}])[)\]}}])*\s*")


#: where a Latin run too long for a line may break before it is folded: after a slash
_SLASH = re.compile(r"[^/]*/+|[^/]+")


def pieces(text: str) -> list[tuple[int, str]]:
    """``text`` cut where a line may break: each piece's start and text (with its trailing
    spaces). Latin text without Chinese gives rich's own words (split at spaces)."""
    return [(m.start(), m.group()) for m in _piece().finditer(text)]


def _fitted(text: str, width: int):
    """:func:`pieces`, one longer than ``width`` cut after its slashes."""
    for start, piece in pieces(text):
        if cell_len(piece.rstrip()) <= width or "/" not in piece.strip():
            yield start, piece
        else:
            yield from ((start + m.start(), m.group()) for m in _SLASH.finditer(piece))


def _fold(piece: str, width: int) -> list[str]:
    """``piece`` (longer than ``width``) cut into lines, the last not closing punctuation
    alone."""
    folded = chop_cells(piece, width)
    while (len(folded) > 1 and folded[-1][:1] in _CLOSE and len(folded[-2]) > 1
           and cell_len(folded[-2][-1] + folded[-1].rstrip()) <= width):
        folded[-2:] = [folded[-2][:-1], folded[-2][-1] + folded[-1]]
    return folded


def break_offsets(text: str, width: int) -> list[int]:
    """Where to break ``text`` into lines of at most ``width`` cells: rich's
    ``divide_line`` (greedy, a piece longer than a line folded), on :func:`pieces`."""
    breaks: list[int] = []
    offset = 0
    for start, piece in _fitted(text, width):
        length = cell_len(piece.rstrip())
        if width - offset >= length:
            offset += cell_len(piece)
        elif length > width:            # longer than any line: folded
            folded = _fold(piece, width)
            for i, part in enumerate(folded):
                if start:
                    breaks.append(start)
                if i == len(folded) - 1:
                    offset = cell_len(part)
                else:
                    start += len(part)
        elif offset and start:
            breaks.append(start)
            offset = cell_len(piece)
    return breaks


class CjkText(Text):
    """rich's :class:`~rich.text.Text`, wrapped and measured by :func:`pieces` (see the module)."""

    @classmethod
    def of(cls, text: Text) -> CjkText:
        new = cls(text.plain, style=text.style, justify=text.justify, overflow=text.overflow,
                  no_wrap=text.no_wrap, end=text.end, tab_size=text.tab_size)
        new._spans[:] = text._spans
        return new

    def __rich_measure__(self, console, options) -> Measurement:
        lines = self.plain.splitlines()
        widest = max((cell_len(line) for line in lines), default=0)
        narrowest = max((cell_len(p.strip()) for _, p in pieces(self.plain)), default=widest)
        return Measurement(narrowest, widest)

    def wrap(self, console, width, *, justify=None, overflow=None, tab_size=8, no_wrap=None) -> Lines:
        if no_wrap or self.no_wrap or overflow == "ignore":
            return super().wrap(console, width, justify=justify, overflow=overflow,
                                tab_size=tab_size, no_wrap=no_wrap)
        how = overflow or self.overflow or "fold"
        lines = Lines()
        for line in self.split(allow_blank=True):
            if "\t" in line:
                line.expand_tabs(tab_size)
            new_lines = line.divide(break_offsets(line.plain, width))
            for new in new_lines:
                if new.cell_len > width:    # rich's rstrip_end counts characters, not cells
                    new.rstrip()
            if justify or self.justify:
                new_lines.justify(console, width, justify=justify or self.justify, overflow=how)
            for new in new_lines:
                new.truncate(width, overflow=how)
            lines.extend(new_lines)
        return lines


class _CjkHighlighter(Highlighter):
    """typer's highlighter, its text then a :class:`CjkText`."""

    def __init__(self, highlighter):
        self._highlighter = highlighter

    def __call__(self, text):
        text = self._highlighter(text)
        return CjkText.of(text) if isinstance(text, Text) else text

    def highlight(self, text) -> None:
        self._highlighter.highlight(text)


def _name(ctx) -> str:
    """The key of ``ctx``'s command in :data:`help_zh.COMMANDS` (``""``: the group)."""
    return "" if ctx is None or ctx.parent is None else ctx.command.name


_TYPE = re.compile(r"<([^<>]+)>")
_lock = threading.Lock()
_zh_module = None
#: typer's settings that the Chinese copy reads as typer's module has them when it prints
_SETTINGS = re.compile(r"(STYLE_|ALIGN_)\w+|MAX_WIDTH|COLOR_SYSTEM|FORCE_TERMINAL")


def zh_rich_utils():
    """``typer.rich_utils`` loaded a second time, apart (not in ``sys.modules``), its words
    Chinese (:data:`help_zh.RICH_WORDS`), its text wrapped as :class:`CjkText` and each
    description and parameter help taken from :data:`help_zh.COMMANDS` as it prints. Made
    once; its styles and width follow typer's module at each use."""
    global _zh_module
    from typer import rich_utils

    with _lock:
        if _zh_module is None:
            spec = importlib.util.spec_from_file_location("typer._lifecircle_zh_rich_utils",
                                                          rich_utils.__file__)
            zh = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(zh)
            for name, text in help_zh.RICH_WORDS.items():
                setattr(zh, name, text)
            zh.highlighter = _CjkHighlighter(rich_utils.highlighter)
            _translate(zh)
            _zh_module = zh
        for name, value in vars(rich_utils).items():
            if _SETTINGS.fullmatch(name):
                setattr(_zh_module, name, value)
    return _zh_module


def _translate(zh) -> None:
    """Make ``zh``'s printing functions take the Chinese of :data:`help_zh.COMMANDS`."""
    get_help_text, parameter_help, commands_panel = (
        zh._get_help_text, zh._get_parameter_help, zh._print_commands_panel)

    def _get_help_text(*, obj, markup_mode):
        about = help_zh.COMMANDS.get("" if hasattr(obj, "commands") else obj.name, (None,))[0]
        return get_help_text(obj=SimpleNamespace(help=about or obj.help, deprecated=obj.deprecated),
                             markup_mode=markup_mode)

    def _get_parameter_help(*, param, ctx, markup_mode):
        columns = parameter_help(param=param, ctx=ctx, markup_mode=markup_mode)
        items = columns.renderables
        text = help_zh.HELP_OPTION if param.name == "help" else (
            help_zh.COMMANDS.get(_name(ctx), (None, {}))[1].get(param.name))
        if text and getattr(param, "help", None) and items:
            items[0] = zh._make_rich_text(text=text, style=zh.STYLE_OPTION_HELP,
                                          markup_mode=markup_mode)
        if items and all(isinstance(item, Text) for item in items):
            # the help and its [默认：…] [必填] as one paragraph, wrapped together: in Columns
            # a tag with no space in it was cut short ("[默认：2000…")
            return CjkText.of(Text(" ").join(items))
        return columns

    def _print_commands_panel(*, commands, **kwargs):
        commands = [SimpleNamespace(
            name=c.name, deprecated=c.deprecated, short_help=None,
            help=help_zh.COMMANDS.get(c.name, (c.short_help or c.help,))[0]) for c in commands]
        return commands_panel(commands=commands, **kwargs)

    types_highlighter = zh.types_highlighter

    def _types(text):
        plain = _TYPE.sub(lambda m: f"<{help_zh.TYPES.get(m[1], m[1])}>", text.plain)
        return types_highlighter(Text(plain, style=text.style, overflow=text.overflow))

    zh.types_highlighter = _types
    zh._get_help_text = _get_help_text
    zh._get_parameter_help = _get_parameter_help
    zh._print_commands_panel = _print_commands_panel


def is_zh(ctx) -> bool:
    """Whether the command line ``ctx`` belongs to runs in Chinese (set by the group's
    ``main`` on its own click objects, which typer builds afresh for each run)."""
    return ctx is not None and getattr(ctx.find_root().command, "help_lang", None) == "zh"


class ZhHelp:
    """Mixin of a click command: its help printed by :func:`zh_rich_utils` and its usage line in
    Chinese when the command line is in Chinese (:func:`is_zh`)."""

    def format_usage(self, ctx, formatter) -> None:
        if not is_zh(ctx):
            return super().format_usage(ctx, formatter)
        pieces_ = [help_zh.USAGE_PIECES.get(p, p) for p in self.collect_usage_pieces(ctx)]
        formatter.write_usage(ctx.command_path, " ".join(pieces_), prefix=help_zh.USAGE)

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            # click's parser errors (an option's missing value, an unknown option) carry no
            # context: the command they belong to is kept for the Chinese line's hint
            if getattr(exc, "ctx", None) is None:
                exc.lifecircle_ctx = ctx
            raise

    def format_help(self, ctx, formatter) -> None:
        if not is_zh(ctx) or getattr(self, "rich_markup_mode", None) is None:
            return super().format_help(ctx, formatter)
        return zh_rich_utils().rich_format_help(obj=self, ctx=ctx, markup_mode=self.rich_markup_mode)


class ZhHelpCommand(ZhHelp, TyperCommand):
    """typer's command, its help in the command line's language (see :class:`ZhHelp`)."""
