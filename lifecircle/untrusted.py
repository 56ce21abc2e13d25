"""Text from data is untrusted: the one place that decides how it may reach a renderer.

OSM names, POI tables, boundary and site files, profiles and configs can hold any text. This
module owns how such text reaches HTML and templates.

Templates. branca (under folium) renders every element's Jinja2 macro, wraps the *output* in a
new ``Element`` — which compiles that output as a new template — and renders it again when the
page is assembled. Text from the data inside that output is then evaluated as Jinja2, unsandboxed:
``{{7*7}}`` shows as ``49``, ``{% … %}`` can run code, an unclosed ``{{`` aborts the map. A page
rendered through :class:`SafeFigure` (every map lifecircle makes has one as its root) renders each
template exactly once: the second pass keeps the first pass's output as it is. Raw HTML that
lifecircle adds to a page goes in as :class:`RawHTML`, which is never compiled.
"""

from __future__ import annotations

import html
import threading
from contextlib import contextmanager

import branca.element
from branca.element import Element, Figure

__all__ = ["RawHTML", "SafeFigure", "escape_html", "render_once", "safe_root"]

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


def escape_html(value) -> str:
    """Text for an HTML context: ``& < > " '`` escaped."""
    return html.escape("" if value is None else str(value), quote=True)
