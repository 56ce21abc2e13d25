r"""Text from data is untrusted: the one place that decides how it may reach a renderer.

OSM names, POI tables, boundary and site files, profiles and configs can hold any text. This
module owns how such text reaches HTML and templates.

Templates. branca (under folium) renders every element's Jinja2 macro, wraps the *output* in a
new ``Element`` — which compiles that output as a new template — and renders it again when the
page is assembled. Text from the data inside that output is then evaluated as Jinja2, unsandboxed:
``{{7*7}}`` shows as ``49``, ``{% … %}`` can run code, an unclosed ``{{`` aborts the map. A page
rendered through :class:`SafeFigure` (every map lifecircle makes has one as its root) renders each
template exactly once: the second pass keeps the first pass's output as it is. Raw HTML that
lifecircle adds to a page goes in as :class:`RawHTML`, which is never compiled.

HTML. Text from the data that lifecircle puts into HTML (popups, tooltips, the layer control,
legends) goes through :func:`escape_html` first.

Tables. A spreadsheet evaluates a cell that starts with ``= + - @`` (or a tab or carriage
return before one) as a formula. Every CSV lifecircle writes passes through :func:`csv_safe`
(text cells with such a start get a leading ``'``) and every workbook through :func:`xlsx_safe`
(no cell is stored as a formula: such text is written as text, unchanged). A workbook cannot
hold the C0 control characters other than tab, newline and carriage return (openpyxl raises
``IllegalCharacterError`` on one, and the whole write fails): every frame goes through
:func:`xlsx_frame` (a single value through :func:`xlsx_value`) before it is written, which shows
each such character as its escape, ``\x01`` for U+0001, the way the console does.

Console. rich parses ``[...]`` in printed strings as markup (``[/x]`` raises, ``[link=...]``
makes a link), and a control character printed raw reaches the terminal as a command: ``ESC ]0;…
BEL`` sets the window title, ``ESC [2J`` clears the screen (rich's ``Text`` drops only BEL, BS,
VT, FF and CR — :func:`rich.control.strip_control_codes` — and keeps ESC). User text reaches the
terminal only through :func:`literal` / :func:`say`, which print it as it is with every C0 and C1
control character and DEL shown as its escape (:func:`shown`: ``\x1b``, ``\x07``, ``\t``),
the way click shows them. Under that, :class:`ShownControls` (a render hook on the command
line's consoles) shows any control character left in what a console prints, so text printed
some other way (a path in ``wrote …``, a name in a note, a traceback's message: the command line
prints a defect's traceback on its error console) cannot control the terminal either; the BEL,
BS, VT, FF and CR that rich dropped on making such a ``Text`` stay dropped.
"""

from __future__ import annotations

import html
import re
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import branca.element
from branca.element import Element, Figure
from rich.console import RenderHook
from rich.segment import Segment
from rich.text import Text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.console import Console

__all__ = ["FORMULA_PREFIXES", "RawHTML", "SafeFigure", "ShownControls", "csv_safe", "escape_html",
           "literal", "neutralise_formula", "render_once", "restore_formula", "safe_root", "say", "shown",
           "xlsx_frame", "xlsx_safe", "xlsx_value"]

#: first characters that make a spreadsheet read a cell as a formula
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_RENDER_LOCK = threading.RLock()


class _Verbatim:
    """Stands in for a Jinja2 template made from already-rendered output: renders to itself."""

    def __init__(self, source="", *args, **kwargs):
        self.source = "" if source is None else str(source)

    def render(self, *args, **kwargs) -> str:
        return self.source


@contextmanager
def render_once():
    """While active, an ``Element`` made from a string keeps that string as it is instead of
    compiling it as a template (branca's second render). Re-entrant; one render at a time."""
    with _RENDER_LOCK:
        saved = branca.element.Template
        branca.element.Template = _Verbatim
        try:
            yield
        finally:
            branca.element.Template = saved


class SafeFigure(Figure):
    """A branca Figure whose rendering evaluates each template once: text placed on the page
    (names, labels, popups) is never evaluated as a template."""

    def render(self, **kwargs) -> str:
        with render_once():
            return super().render(**kwargs)


def safe_root(m):
    """Give a folium map a :class:`SafeFigure` root (so ``save``, ``_repr_html_`` and
    ``get_root().render()`` are all safe) and return the map."""
    root = m.get_root()
    if isinstance(root, SafeFigure):
        return m
    figure = SafeFigure()
    if isinstance(root, Figure):
        for attr in ("width", "height", "ratio", "title"):
            if hasattr(root, attr):
                setattr(figure, attr, getattr(root, attr))
    figure.add_child(m)
    return m


class RawHTML(Element):
    """HTML that lifecircle adds to a page as it is (never compiled as a template). Any text
    from the data inside it must already be escaped with :func:`escape_html`."""

    def __init__(self, text: str):
        super().__init__()
        self.text = str(text)

    def render(self, **kwargs) -> str:
        return self.text


#: characters that end or open code in a JavaScript template literal (folium puts tooltip and
#: popup HTML between backticks): as character references they show the same in HTML
_JS_LITERAL = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def escape_html(value) -> str:
    """Text for an HTML context: ``& < > " '`` escaped, and the backtick, ``$`` and backslash
    as character references, so the text stays text inside the JavaScript template literals
    folium wraps tooltips and popups in (``${…}`` would run there, a backtick end it)."""
    return html.escape("" if value is None else str(value), quote=True).translate(_JS_LITERAL)


# --------------------------------------------------------------------------------------------
# tables (CSV, XLSX)


def neutralise_formula(value):
    """A text cell for a CSV: ``'`` put before text that a spreadsheet would run as a formula
    (``= + - @``, tab, carriage return). Anything that is not text is returned unchanged."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


def restore_formula(value):
    """Undo :func:`neutralise_formula` for a value read back from a CSV lifecircle wrote."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for ``to_csv``: text cells and column names neutralised with
    :func:`neutralise_formula`; numeric columns untouched (``-1.5`` stays a number)."""
    out = frame.copy()
    _map_text_columns(out, neutralise_formula)
    out.columns = [neutralise_formula(c) if isinstance(c, str) else c for c in out.columns]
    return out


def _map_text_columns(frame: pd.DataFrame, func) -> None:
    """``func`` over each text cell of ``frame``, in place; columns taken by position, so two
    columns of the same name (a profile's categories may share a display name) are each
    converted, never read together as a frame."""
    import pandas as pd

    for i in range(frame.shape[1]):
        s = frame.iloc[:, i]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            frame.isetitem(i, s.map(func))


def _escape(match: re.Match) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: what a workbook (XML 1.0) cannot hold: the C0 controls but tab, newline and carriage return
#: (openpyxl refuses them: ``ILLEGAL_CHARACTERS_RE``), and what openpyxl lets through into a
#: file no reader opens: surrogates (a file name's undecodable bytes), U+FFFE and U+FFFF
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xlsx_value(value):
    r"""A value for a workbook cell: in text, each character a workbook cannot hold (the C0
    controls but tab, newline and carriage return; surrogates, U+FFFE and U+FFFF) shown as its
    escape (``\x01``, ``\ufffe``); anything that is not text is returned unchanged."""
    if isinstance(value, str):
        return _NOT_IN_XML.sub(_escape, value)
    return value


def xlsx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for ``to_excel``: text cells and column names through
    :func:`xlsx_value`, so no text from the data can make the write fail. Formulas are
    :func:`xlsx_safe`'s (after the sheets are written)."""
    out = frame.copy()
    _map_text_columns(out, xlsx_value)
    out.columns = [xlsx_value(c) for c in out.columns]
    return out


def readable_path(text: str) -> str:
    r"""A path as text for outputs (meta.json, the GeoPackage's about layer, maps, workbooks):
    the bytes of a file name that are not UTF-8 (a GBK name on a UTF-8 system, which Python
    holds as surrogates and no UTF-8 file can store) written as their escapes (``\xc4``), as
    ``ls -b`` shows them; any other text unchanged."""
    if not isinstance(text, str) or not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "surrogateescape" if not _NOT_ESCAPED.search(text) else "backslashreplace") \
        .decode("utf-8", "backslashreplace")


_SURROGATE = re.compile("[\ud800-\udfff]")
#: surrogates that are no undecodable byte (``surrogateescape`` holds those as U+DC80-U+DCFF)
_NOT_ESCAPED = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def xlsx_safe(workbook) -> None:
    """Store every formula cell of an openpyxl workbook as plain text (its value unchanged):
    lifecircle writes no formulas, so any there came from text in the data."""
    for ws in workbook.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"


# --------------------------------------------------------------------------------------------
# console


#: every control character (C0, DEL, C1) → its escape, as Python and click write it; and the
#: bidirectional embeddings, overrides and isolates and the line and paragraph separators
#: (U+202A-U+202E, U+2066-U+2069, U+2028, U+2029), which reorder or break what a terminal
#: shows after them (a name could make a path or a number read differently)
_SHOWN = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_SHOWN.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
_SHOWN.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)})
#: the same, newlines kept (a message of several lines)
_SHOWN_LINES = {c: e for c, e in _SHOWN.items() if c != 0x0A}
#: what :data:`_SHOWN` escapes (:data:`lifecircle.cli.common`'s console hook looks for the same)
CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


def shown(value, newlines: bool = False) -> str:
    r"""``value`` as text for a terminal: every control character (C0 — ESC, BEL, tab, newline
    … —, DEL and C1) written as its escape (``\x1b``, ``\x07``, ``\t``), so it shows and
    never acts; the bidirectional overrides and isolates too (``\u202e``). ``newlines=True``
    keeps newlines (a message of several lines)."""
    text = "" if value is None else str(value)
    return text.translate(_SHOWN_LINES if newlines else _SHOWN) if _CONTROL.search(text) else text


def literal(value, style: str | None = None) -> Text:
    """User text as a rich :class:`~rich.text.Text`: printed and put in tables as it is, never
    parsed as markup, its control characters (newlines too) shown as escapes (:func:`shown`)."""
    return Text(shown(value), style=style or "")


def say(console: Console, text, prefix: str | None = None, style: str | None = None,
        prefix_style: str | None = None) -> None:
    """Print ``text`` literally (an optional styled ``prefix`` such as ``error:`` before it),
    its control characters shown as escapes (:func:`shown`; its newlines kept)."""
    line = Text()
    if prefix:
        line.append(prefix, style=prefix_style or "")
        if not prefix.endswith("："):          # a full-width colon carries its own space
            line.append(" ")
    line.append(shown(text, newlines=True), style=style or "")
    console.print(line, highlight=False, soft_wrap=True)


class _Shown:
    """Renders as ``renderable`` does, control characters in its text shown as escapes."""

    def __init__(self, renderable):
        self.renderable = renderable

    def __rich_console__(self, console, options):
        for segment in console.render(self.renderable, options):
            if segment.control or not _CONTROL.search(segment.text):
                yield segment
            else:   # newlines are kept: rich's own line breaks (wrapping, a table's rows) are in the text
                yield Segment(shown(segment.text, newlines=True), segment.style)


class ShownControls(RenderHook):
    """A rich render hook (``console.push_render_hook(ShownControls())``): every control
    character in the text a console prints is shown as its escape (:func:`shown`), whatever
    printed it; rich's own control codes (styles, cursor moves) are untouched. The layout is
    measured before: text that should show its escapes in a table goes through :func:`literal`."""

    def process_renderables(self, renderables):
        return [_Shown(r) for r in renderables]
