"""Profiles: which facilities count, in which of the six dimensions, within how many minutes.

A profile is a YAML file in ``data/profiles`` (shipped as ``lifecircle.data/profiles``) or
anywhere on disk. :func:`load_profile` reads and checks it once and returns a frozen
:class:`Profile`; every malformed file raises :class:`~lifecircle.errors.ProfileError` whose
message names the file, the line and the problem.

File layout
-----------
Top level: ``name``, ``name_zh``, ``version``, ``description``, ``speed_kmh`` (4.0),
``dimension_cover_share`` (0.5), optional ``exclude`` (rules applied to every category),
optional ``complete`` (a list of category ids declared surveyed: none found means none exist,
a real gap; other categories with no facility in the data read "no data", not 0 %),
optional ``definitions`` (ignored; a place for YAML anchors) and ``dimensions``: a list of
dimensions, each with ``id`` (one of the six: housing, employment, services, transport,
leisure, social), ``name_zh``, ``name_en``, ``weight`` and ``categories``. A category has
``id`` (snake_case, unique in the file; it names output columns ``t_<id>``), ``name_zh``,
``name_en``, ``minutes`` (walking-time threshold; when absent it is derived from ``radius_m``
at ``speed_kmh``, else taken from ``tier``), ``essential``, ``weight``, ``match`` and
optionally ``exclude``, ``min_area_m2``, ``radius_m``, ``tier`` (5/10/15, the life-circle
level), ``required`` (▲ / 基础保障), ``amap_typecodes`` (quoted digit strings, prefix match),
``baidu_categories``, ``source``, ``goal`` (宜居/宜业/宜游/宜养/宜学) and ``note``. Keys that
start with ``x-`` or ``x_`` are ignored anywhere (room for notes and extensions); any other
unknown key is an error, so a typo such as ``minuts`` is caught.

Rule language
-------------
``match`` and ``exclude`` are lists of *rules*. A feature belongs to a category when it
satisfies at least one ``match`` rule (OR) and no ``exclude`` rule. A rule is a mapping and all
its conditions must hold (AND). Conditions:

=========================  =================================================================
``key: value``             the tag equals ``value``
``key: [v1, v2]``          the tag equals one of the values
``key: "*"``               the tag is present with any value other than ``no``
``key: "!"``               the tag is absent (or ``no``)
``"key~": "regex"``        Python ``re.search`` on the tag value, case-insensitive; an absent
                           tag does not match. Chinese patterns are fine.
``"key!~": "regex"``       the tag is absent or its value does not match the regex
``"name*~": "regex"``      the regex matches one of ``name``, ``name:zh``, ``name:zh-Hans``,
                           ``name:en``, ``official_name``, ``short_name``
``"name*!~": "regex"``     none of those name tags matches
=========================  =================================================================

Profiles are untrusted: a regex that may backtrack without end (``^(a|a)*$``) searches with a
timeout (the ``regex`` module's), and one that runs over :data:`REGEX_TIMEOUT_S` on a value
stops the run with a :class:`~lifecircle.errors.ProfileError` naming the profile, the
category, the condition and the pattern (see :func:`bounded`).

Equality also looks inside OSM ``;`` lists: ``amenity: cafe`` matches ``amenity=cafe;restaurant``.
Keys starting with ``lc:`` are facts lifecircle derives from the tags before matching
(:func:`lifecircle.core.classify.tag_facts`): ``lc:school`` (levels the tags declare: isced:level,
school=*, grades …), ``lc:education``, ``lc:market`` (food / other) and ``lc:health``
(specialist). Rules test them like tags, so a name rule can be kept to features whose tags say
nothing (``"lc:school": "!"``).
YAML reads ``yes``/``no``/numbers as booleans/numbers; they are compared as the OSM strings
``yes``/``no``/``1``. ``"*"`` and ``"!"`` must be quoted in YAML. Example::

    match:
      - {amenity: school, "name*~": "小学|primary school"}
      - {amenity: school, "isced:level~": "1"}
    exclude:
      - {"name*~": "培训|驾校"}
"""

from __future__ import annotations

import math
import os
import re
import re._constants as _sre
import re._parser as _sre_parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex
import yaml

from lifecircle.errors import ProfileError, RegexTimeout
from lifecircle.settings import data_path

__all__ = [
    "DIMENSIONS",
    "DIMENSION_NAMES",
    "GOALS",
    "NAME_KEYS",
    "Condition",
    "Rule",
    "Category",
    "Dimension",
    "Profile",
    "available_profiles",
    "load_profile",
    "profiles_dir",
]

#: The six dimensions of the life circle, in their usual order.
DIMENSIONS: tuple[str, ...] = ("housing", "employment", "services", "transport", "leisure", "social")
DIMENSION_NAMES: dict[str, tuple[str, str]] = {
    "housing": ("居住", "Housing & daily living"),
    "employment": ("就业", "Employment"),
    "services": ("服务", "Public services"),
    "transport": ("交通", "Transport"),
    "leisure": ("休闲", "Leisure"),
    "social": ("交往", "Social interaction"),
}
#: TD/T 1062-2021 goals.
GOALS: tuple[str, ...] = ("宜居", "宜业", "宜游", "宜养", "宜学")
#: Tags searched by the ``name*~`` pseudo-key.
NAME_KEYS: tuple[str, ...] = (
    "name", "name:zh", "name:zh-Hans", "name:en", "official_name", "short_name",
)
NAME_ANY = "name*"
TIERS = (5, 10, 15)

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPECODE_RE = re.compile(r"^[0-9]{2,6}$")


# ------------------------------------------------------------------------------------------
# rules
# ------------------------------------------------------------------------------------------

#: A profile's regex may search one tag value this long (s). Profiles are untrusted: a pattern
#: that backtracks catastrophically (``^(a+)+$`` on ``aaa…a!``) would hang the analysis; it is
#: refused (:class:`RegexTimeout`) instead. The ``regex`` module's searches take a timeout.
REGEX_TIMEOUT_S = 1.0


def regex_search(pattern, value: str, condition: str = ""):
    """``pattern.search(value)`` within :data:`REGEX_TIMEOUT_S`, else :class:`RegexTimeout`."""
    try:
        return pattern.search(value, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        shown = value if len(value) <= 60 else value[:60] + "…"
        raise RegexTimeout(f"condition {condition!r}",
                           f"the regex {pattern.pattern!r} took over {REGEX_TIMEOUT_S:g} s on the value "
                           f"{shown!r} (it backtracks without end: rewrite it)",
                           zh=f"正则表达式 {pattern.pattern!r} 在值 {shown!r} 上用时超过 {REGEX_TIMEOUT_S:g} 秒"
                              "（回溯无穷无尽：请改写）",
                           condition=condition, pattern=pattern.pattern, value=value,
                           source_zh=f"条件 {condition!r}") from None


#: A search with a timeout costs ~3 µs more than one without (twice the classification of a
#: city): a :func:`bounded` pattern searches values up to this long without one.
UNTIMED_CHARS = 64

_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)


def quick_pattern(pattern: str) -> re.Pattern | None:
    """``pattern`` compiled by ``re`` (case-insensitive) when it is :func:`bounded` and ``re``
    reads it as ``regex`` does, else None (it then always searches with ``regex``)."""
    if not bounded(pattern) or "[:" in pattern:     # POSIX classes: regex reads [[:digit:]]
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # "possible nested set": the two would differ
            return re.compile(pattern, re.IGNORECASE)
    except (re.error, Warning):
        return None


def _literal(items) -> str | None:
    """The text ``items`` (a parsed sequence) matches when it is plain literal characters."""
    if not all(op is _sre.LITERAL for op, _ in items):
        return None
    return "".join(chr(c) for _, c in items).casefold()


def _deterministic_branch(alternatives) -> bool:
    """Whether at most one of ``alternatives`` can match at a position: each non-empty literal
    text, none a prefix of another (``小学|primary``; not ``a|aa``, not ``a|``)."""
    texts = [_literal(a) for a in alternatives]
    if any(not t for t in texts):
        return False
    return not any(a != b and b.startswith(a) for a in texts for b in texts) and len(set(texts)) == len(texts)


#: A bounded pattern's ways of matching at one place: its small choices (an optional part, an
#: alternation other than of literal texts) multiplied, times :data:`UNTIMED_CHARS` for each
#: repeat without a small bound, at most this many (``.*a.*b``: 64², ``a?a?.*b``: 4·64).
SMALL_CHOICES = 1 << 12


def bounded(pattern: str) -> bool:
    r"""Whether ``pattern``'s backtracking is bounded by a small power of the value's length: no
    back-reference, no repeat (of more than once) around a variable-width repeat or an
    alternation (``(a+)+``, ``(a|aa)*``), and few ways of matching at one place
    (:data:`SMALL_CHOICES`): its small choices — an optional part (``a?``, ``{0,3}``), an
    alternation other than of literal texts none of which starts another (``小学|primary``) —
    multiplied, times the value's length for each repeat without a small bound (``.*``, ``+``;
    at most two). ``a?a?a?…aaa`` has 2^n. The alternatives of
    a whole-pattern alternation are tried one after another, so each is judged alone. On a
    value of :data:`UNTIMED_CHARS` such a search takes a few ms at worst; every other pattern
    (or one Python's parser does not read) searches with the timeout.

    >>> bounded("小学|primary school"), bounded("驿站.*(快递|包裹)"), bounded("^(a|a)*$")
    (True, True, False)
    >>> bounded("^" + "a?" * 20 + "a" * 20 + "$"), bounded("(?:a|)" * 20), bounded(r"\bI\.? ?E\.? ?S")
    (False, False, True)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # "possible nested set": quick_pattern's to judge
            tree = _sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:  # noqa: BLE001 - what re cannot read is timed
        return False
    items = list(tree)
    if len(items) == 1 and items[0][0] is _sre.BRANCH:      # a|b|c: tried one after another
        return all(_bounded_items(list(alt)) for alt in items[0][1][1])
    return _bounded_items(items)


def _bounded_items(items) -> bool:
    loops, factor = 0, 1

    def walk(items, in_loop: bool) -> bool:
        nonlocal loops, factor
        for op, av in items:
            if op in _REPEATS:
                lo, hi, body = av
                if in_loop and hi != lo:
                    return False
                if hi != lo:
                    if hi > 1:
                        loops += 1
                    else:
                        factor *= hi - lo + 1
                if not walk(body, in_loop or hi > 1):
                    return False
            elif op is _sre.BRANCH:
                if in_loop:
                    return False
                if not _deterministic_branch(av[1]):
                    factor *= len(av[1])
                if not all(walk(b, in_loop) for b in av[1]):
                    return False
            elif op is _sre.SUBPATTERN:
                if not walk(av[3], in_loop):
                    return False
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                if not walk(av[1], in_loop):
                    return False
            elif op is _sre.ATOMIC_GROUP:
                if not walk(av, in_loop):
                    return False
            elif op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS, _sre.GROUPREF_IGNORE,
                        _sre.GROUPREF_LOC_IGNORE, _sre.GROUPREF_UNI_IGNORE):
                return False
            if factor * UNTIMED_CHARS ** loops > SMALL_CHOICES:
                return False
        return True

    return walk(items, False) and factor * UNTIMED_CHARS ** loops <= SMALL_CHOICES


@dataclass(frozen=True)
class Condition:
    """One compiled condition of a rule.

    ``op`` is ``"in"`` (tag value in ``values``), ``"present"``, ``"absent"``, ``"regex"`` or
    ``"not_regex"``; ``key`` is a tag key or ``"name*"`` (any of :data:`NAME_KEYS`).
    """

    key: str
    op: str
    values: frozenset[str] = frozenset()
    #: compared by its text (``regex``'s compiled patterns equal only themselves: a profile
    #: pickled to a Dask worker would differ from its original)
    pattern: regex.Pattern | None = field(default=None, compare=False)
    #: a :func:`bounded` pattern compiled by ``re`` too (as fast, faster on literal
    #: alternations): it searches values up to :data:`UNTIMED_CHARS` without a timeout
    quick: re.Pattern | None = field(default=None, compare=False)
    text: str | None = None

    def search(self, value: str):
        """The pattern's search of ``value``, within :data:`REGEX_TIMEOUT_S` unless it is
        sure to be quick (:attr:`quick`)."""
        if self.quick is not None and len(value) <= UNTIMED_CHARS:
            return self.quick.search(value)
        return regex_search(self.pattern, value, self.describe())

    def test(self, tags: Mapping[str, str]) -> bool:
        op = self.op
        if self.key == NAME_ANY:
            hit = False
            for k in NAME_KEYS:
                v = tags.get(k)
                if v and self.search(v):
                    hit = True
                    break
            return hit if op == "regex" else not hit
        v = tags.get(self.key)
        if op == "in":
            if v is None:
                return False
            if v in self.values:
                return True
            if ";" in v:
                return any(p.strip() in self.values for p in v.split(";"))
            return False
        if op == "present":
            return v is not None and v != "no"
        if op == "absent":
            return v is None or v == "no"
        if op == "regex":
            return v is not None and self.search(v) is not None
        # not_regex
        return v is None or self.search(v) is None

    def describe(self) -> str:
        if self.op == "in":
            vals = sorted(self.values)
            return f"{self.key}={vals[0]}" if len(vals) == 1 else f"{self.key} in {vals}"
        if self.op == "present":
            return f"{self.key}=*"
        if self.op == "absent":
            return f"no {self.key}"
        sign = "~" if self.op == "regex" else "!~"
        return f"{self.key}{sign}/{self.pattern.pattern}/"


@dataclass(frozen=True)
class Rule:
    """A conjunction of conditions; :meth:`matches` is true when all hold."""

    conditions: tuple[Condition, ...]

    def matches(self, tags: Mapping[str, str]) -> bool:
        for c in self.conditions:
            if not c.test(tags):
                return False
        return True

    def __str__(self) -> str:
        return " & ".join(c.describe() for c in self.conditions)


# ------------------------------------------------------------------------------------------
# profile objects
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Category:
    """A kind of facility (kindergarten, bus stop …) with its walking-time threshold."""

    id: str
    name_zh: str
    name_en: str
    dimension: str
    minutes: float
    essential: bool = False
    weight: float = 1.0
    match: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    min_area_m2: float | None = None
    radius_m: float | None = None
    tier: int | None = None
    required: bool | None = None
    amap_typecodes: tuple[str, ...] = ()
    baidu_categories: tuple[str, ...] = ()
    source: str | None = None
    goal: str | None = None
    note: str | None = None

    def matches(self, tags: Mapping[str, str], area_m2: float | None = None) -> bool:
        """True when ``tags`` satisfy a match rule and no exclude rule.

        ``min_area_m2`` is checked only when ``area_m2`` is given.
        """
        if not any(r.matches(tags) for r in self.match):
            return False
        if any(r.matches(tags) for r in self.exclude):
            return False
        if area_m2 is not None and self.min_area_m2 and area_m2 < self.min_area_m2:
            return False
        return True

    def name(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class Dimension:
    id: str
    name_zh: str
    name_en: str
    weight: float = 1.0
    categories: tuple[Category, ...] = ()

    def name(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name_zh


class _ProfileName(str):
    """The profile's name: a ``str`` that can also be called, ``profile.name("park", "en")``
    giving the display name of a category or dimension."""

    __slots__ = ("_profile",)

    def __new__(cls, value: str, profile: Profile):
        obj = super().__new__(cls, value)
        obj._profile = profile
        return obj

    def __call__(self, item_id: str, lang: str = "zh") -> str:
        return self._profile.display_name(item_id, lang)

    def __reduce__(self):
        return (str, (str(self),))


@dataclass(frozen=True)
class Profile:
    """A loaded profile. ``name`` is the profile name (a ``str``); called as
    ``profile.name(id, lang)`` it gives the Chinese or English name of a category or dimension.
    """

    name: str
    name_zh: str
    version: str
    description: str
    speed_kmh: float
    dimension_cover_share: float
    dimensions: tuple[Dimension, ...]
    exclude: tuple[Rule, ...] = ()
    source_path: str | None = None
    #: Categories declared surveyed (top-level ``complete:`` list): none found means none
    #: exist — a real gap, not missing data.
    complete: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "name", _ProfileName(str(self.name), self))
        cats: dict[str, Category] = {}
        for d in self.dimensions:
            for c in d.categories:
                cats[c.id] = c
        self._cache["cats"] = cats
        self._cache["dims"] = {d.id: d for d in self.dimensions}

    def __setstate__(self, state):  # keep ``name`` callable after unpickling
        state = dict(state)
        state["name"] = _ProfileName(str(state["name"]), self)
        self.__dict__.update(state)

    # -- convenience -------------------------------------------------------------------
    @property
    def categories(self) -> list[Category]:
        """All categories in file order."""
        return list(self._cache["cats"].values())

    @property
    def category_ids(self) -> list[str]:
        """Category ids in file order."""
        return list(self._cache["cats"])

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]

    @property
    def max_minutes(self) -> float:
        """The largest category threshold (minutes)."""
        return max((c.minutes for c in self._cache["cats"].values()), default=0.0)

    @property
    def path(self) -> str | None:
        """The file of a profile loaded from a path of one's own; ``None`` for a shipped
        profile, which is found again by :attr:`name` (so saved analyses stay portable)."""
        if not self.source_path:
            return None
        try:
            Path(self.source_path).resolve().relative_to(profiles_dir().resolve())
            return None
        except ValueError:
            return self.source_path

    @property
    def speed_m_per_min(self) -> float:
        return self.speed_kmh * 1000.0 / 60.0

    def category(self, cat_id: str) -> Category:
        """The category with id ``cat_id``; :class:`ProfileError` when unknown."""
        try:
            return self._cache["cats"][cat_id]
        except KeyError:
            raise ProfileError(str(self.name), f"unknown category {cat_id!r}; known: "
                               + ", ".join(self._cache["cats"]),
                               zh=f"未知的类别 {cat_id!r}；已有：" + ", ".join(self._cache["cats"])) from None

    def dimension(self, dim_id: str) -> Dimension:
        try:
            return self._cache["dims"][dim_id]
        except KeyError:
            raise ProfileError(str(self.name), f"unknown dimension {dim_id!r}; known: "
                               + ", ".join(self._cache["dims"]),
                               zh=f"未知的维度 {dim_id!r}；已有：" + ", ".join(self._cache["dims"])) from None

    def resolve(self, name: str) -> str:
        """The category id that ``name`` means: an id, the Chinese or English name, or one of
        the ``/``-separated alternatives of a name (``幼儿园``, ``农贸市场``, ``Kindergarten``),
        compared without case or surrounding blanks. :class:`ProfileError` when none or
        several categories match."""
        key = str(name).strip()
        cats = self._cache["cats"]
        if key in cats:
            return key
        fold = key.casefold()
        exact, part = [], []
        for c in cats.values():
            names = [c.id, c.name_zh, c.name_en]
            if fold in (n.strip().casefold() for n in names):
                exact.append(c.id)
            elif any(fold == p.strip().casefold() for n in names[1:]
                     for p in re.split(r"[/／、,，]", n)):
                part.append(c.id)
        found = exact or part
        if len(found) == 1:
            return found[0]
        if found:
            raise ProfileError(str(self.name), f"category {key!r} is ambiguous: "
                               + ", ".join(found), zh=f"类别 {key!r} 有歧义：" + ", ".join(found))
        known = ", ".join(f"{c.id} ({c.name_zh})" for c in cats.values())
        raise ProfileError(str(self.name), f"unknown category {key!r}; known: " + known,
                           zh=f"未知的类别 {key!r}；已有：" + known)

    def dimension_of(self, cat_id: str) -> str:
        """The dimension id of category ``cat_id``."""
        return self.category(cat_id).dimension

    def display_name(self, item_id: str, lang: str = "zh") -> str:
        """Chinese (``lang="zh"``) or English (``"en"``) name of a category or dimension id;
        the same as ``profile.name(item_id, lang)``."""
        obj = self._cache["cats"].get(item_id) or self._cache["dims"].get(item_id)
        if obj is None:
            raise ProfileError(str(self.name), f"unknown category or dimension {item_id!r}",
                               zh=f"未知的类别或维度 {item_id!r}")
        return obj.name(lang)

    def __contains__(self, cat_id: object) -> bool:
        return cat_id in self._cache["cats"]

    def __len__(self) -> int:
        return len(self._cache["cats"])


# ------------------------------------------------------------------------------------------
# locating profiles
# ------------------------------------------------------------------------------------------

def profiles_dir() -> Path:
    """The folder of shipped profiles (``lifecircle.data/profiles``)."""
    return data_path("profiles")


def available_profiles() -> list[str]:
    """Names of the shipped profiles (file names without ``.yaml``), sorted."""
    d = profiles_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _resolve(name_or_path: str | os.PathLike) -> Path:
    s = os.fspath(name_or_path)
    p = Path(s).expanduser()
    if p.is_file():
        return p
    d = profiles_dir()
    names = available_profiles()
    # names compare without case, spaces and punctuation: "GB 50180-2018", "TD/T 1062" and
    # "gb50180" all find their file; a unique prefix is enough
    key = _name_key(s)
    for stem in names:
        if _name_key(stem) == key:
            return _existing(d, stem)
    if key:
        starts = [n for n in names if _name_key(n).startswith(key)]
        if len(starts) == 1:
            return _existing(d, starts[0])
    if p.suffix.lower() in (".yaml", ".yml") or os.sep in s or "/" in s:
        if p.is_dir():
            raise ProfileError(s, "is a folder, not a profile file", zh="是文件夹，不是指标体系文件")
        raise ProfileError(s, "profile file not found", zh="找不到指标体系文件")
    raise ProfileError(s, "unknown profile; available: " + (", ".join(names) or "(none)")
                       + " (or give the path of a .yaml profile file)",
                       zh="未知的指标体系；可用：" + (", ".join(names) or "（无）")
                       + "（或给出 .yaml 指标体系文件的路径）")


def _name_key(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def _existing(d: Path, stem: str) -> Path:
    for ext in (".yaml", ".yml"):
        if (d / (stem + ext)).is_file():
            return d / (stem + ext)
    raise ProfileError(stem, "profile file not found", zh="找不到指标体系文件")  # pragma: no cover


def load_profile(name_or_path: str | os.PathLike | Profile = "default") -> Profile:
    """Load a profile by name (see :func:`available_profiles`; a unique prefix such as
    ``"gb50180"`` is enough) or from a YAML file path. A :class:`Profile` is returned as is.

    Raises :class:`ProfileError` for an unknown name or a malformed file; the message names the
    file, the line and what is wrong, e.g. ``…/my.yaml: line 57, category #3 'kindergarten' in
    dimension services: minutes must be a positive number (got -5)``. Loaded files are cached
    (keyed by path and modification time) and rules are compiled once, regexes included.

    Rule language (``match`` / ``exclude`` lists; a category takes a feature when one ``match``
    rule holds and no ``exclude`` rule does; all conditions of a rule must hold):

    * ``key: value`` — tag equals value (also an element of an OSM ``a;b`` list)
    * ``key: [v1, v2]`` — tag equals one of the values
    * ``key: "*"`` — tag present with a value other than ``no``
    * ``key: "!"`` — tag absent (or ``no``)
    * ``"key~": "regex"`` — ``re.search`` on the value, case-insensitive; absent tag: no match
    * ``"key!~": "regex"`` — tag absent or not matching
    * ``"name*~": "regex"`` / ``"name*!~"`` — any / none of ``name``, ``name:zh``,
      ``name:zh-Hans``, ``name:en``, ``official_name``, ``short_name`` matches

    A top-level ``exclude`` applies to every category; ``min_area_m2`` drops smaller features
    (points and lines have no area). See the module docstring for the whole file layout.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ProfileError(repr(name_or_path), "a profile is given by name or file path",
                           zh="指标体系须以名称或文件路径给出")
    path = _resolve(name_or_path)
    try:
        st = path.stat()
    except OSError as e:
        raise ProfileError(path, f"cannot read the file ({e.strerror})", zh=f"无法读取文件（{e.strerror}）") from None
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _load_cached(path: str, mtime_ns: int, size: int) -> Profile:
    return _parse_file(Path(path))


# ------------------------------------------------------------------------------------------
# YAML with line numbers and duplicate-key detection
# ------------------------------------------------------------------------------------------

class _LineDict(dict):
    line: int = 0


class _LineList(list):
    line: int = 0


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    pass


def _construct_map(loader, node):
    data = _LineDict()
    data.line = node.start_mark.line + 1
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue
        if key in seen:
            raise _DupKey(key, key_node.start_mark.line + 1, seen[key])
        seen[key] = key_node.start_mark.line + 1
    data.update(loader.construct_mapping(node, deep=True))


def _construct_seq(loader, node):
    data = _LineList()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node, deep=True))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


class _DupKey(Exception):
    def __init__(self, key, line, first_line):
        self.key, self.line, self.first_line = key, line, first_line


def _read_yaml(path: Path):
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(path, f"cannot read the file ({e.strerror})", zh=f"无法读取文件（{e.strerror}）") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProfileError(path, f"not UTF-8 text (byte {e.start}); save the file as UTF-8",
                           zh=f"不是 UTF-8 文本（第 {e.start} 字节）；请把文件另存为 UTF-8") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _DupKey as e:
        raise ProfileError(path, f"line {e.line}: key {e.key!r} is given twice in the same mapping "
                                 f"(first on line {e.first_line})",
                           zh=f"第 {e.line} 行：键 {e.key!r} 在同一映射中出现两次（第一次在第 {e.first_line} 行）") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        where_zh = f"第 {mark.line + 1} 行第 {mark.column + 1} 列：" if mark else ""
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        hint = hint_zh = ""
        if "alias" in problem or "anchor" in problem or "tag" in problem:
            hint = ' (write "*" and "!" in quotes)'
            hint_zh = '（"*" 和 "!" 要加引号）'
        raise ProfileError(path, f"{where}YAML syntax error: {problem}{hint}",
                           zh=f"{where_zh}YAML 语法错误：{problem}{hint_zh}") from None
    except yaml.YAMLError as e:
        raise ProfileError(path, f"YAML error: {e}", zh=f"YAML 错误：{e}") from None


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------

_TOP_KEYS = {"name", "name_zh", "version", "description", "speed_kmh", "dimension_cover_share",
             "dimensions", "exclude", "definitions", "source", "standard", "note", "name_en",
             "complete"}
_DIM_KEYS = {"id", "name_zh", "name_en", "weight", "categories", "description", "note"}
_CAT_KEYS = {"id", "name_zh", "name_en", "minutes", "essential", "weight", "match", "exclude",
             "min_area_m2", "radius_m", "tier", "required", "amap_typecodes", "baidu_categories",
             "source", "goal", "note"}


class _Bad(Exception):
    """A validation problem in English and Chinese (``zh``); ``where`` is prefixed to both."""

    def __init__(self, message: str, zh: str):
        super().__init__(message)
        self.zh = zh


def _line(obj, fallback: int | None = None) -> str:
    ln = getattr(obj, "line", None) or fallback
    return f"line {ln}, " if ln else ""


def _line_zh(obj, fallback: int | None = None) -> str:
    ln = getattr(obj, "line", None) or fallback
    return f"第 {ln} 行，" if ln else ""


#: The Chinese of the few English ``what`` prefixes the validators are given (keys stay keys).
_WHAT_ZH = {"top level: ": "顶层：", "top-level exclude": "顶层 exclude"}


def _wz(what: str) -> str:
    return _WHAT_ZH.get(what, what)


def _is_ext(key) -> bool:
    return isinstance(key, str) and (key.startswith("x-") or key.startswith("x_"))


def _check_keys(obj: Mapping, allowed: set[str], what: str = "") -> None:
    unknown = [k for k in obj if k not in allowed and not _is_ext(k)]
    if unknown:
        raise _Bad(f"{what}unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))}; "
                   f"keys starting with x- are ignored)",
                   zh=f"{_wz(what)}未知的键 {unknown[0]!r}（可用：{', '.join(sorted(allowed))}；"
                      "以 x- 开头的键会被忽略）")


def _kind(v, lang: str = "en") -> str:
    zh = lang == "zh"
    if isinstance(v, Mapping):
        return "映射" if zh else "a mapping"
    if isinstance(v, list):
        return "列表" if zh else "a list"
    if isinstance(v, str):
        return "文本" if zh else "text"
    return f" {type(v).__name__}" if zh else type(v).__name__


def _number(v, what: str, *, positive: bool = True, allow_zero: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Bad(f"{what} must be a {'positive ' if positive else ''}number (got {v!r})",
                   zh=f"{what} 须为{'正' if positive else ''}数（实为 {v!r}）")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise _Bad(f"{what} must be a positive number (got {v!r})", zh=f"{what} 须为正数（实为 {v!r}）")
    return float(v)


def _text(v, what: str, *, required: bool = True) -> str | None:
    if v is None:
        if required:
            raise _Bad(f"{what} is missing", zh=f"缺少 {what}")
        return None
    if isinstance(v, bool):
        raise _Bad(f"{what} must be text (got {str(v).lower()}: YAML reads yes/no/on/off as "
                   f"true/false, write it in quotes)",
                   zh=f"{what} 须为文本（实为 {str(v).lower()}：YAML 把 yes/no/on/off 读作 true/false，"
                      "请加引号）")
    if not isinstance(v, (str, int, float)):
        raise _Bad(f"{what} must be text (got {_kind(v)})", zh=f"{what} 须为文本（实为{_kind(v, 'zh')}）")
    s = str(v).strip()
    if required and not s:
        raise _Bad(f"{what} is empty", zh=f"{what} 为空")
    return s


def _tag_value(v, key: str) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else str(v)
    if isinstance(v, str):
        if not v:
            raise _Bad(f"condition {key!r} has an empty value (write \"*\" for any value, "
                       f"\"!\" for absent, both in quotes)",
                       zh=f"条件 {key!r} 的值为空（任意值写 \"*\"，不存在写 \"!\"，都要加引号）")
        return v
    raise _Bad(f"condition {key!r}: value must be text, a list of texts, \"*\" or \"!\" "
               f"(got {_kind(v)})",
               zh=f"条件 {key!r}：值须为文本、文本列表、\"*\" 或 \"!\"（实为{_kind(v, 'zh')}）")


def _compile_regex(key: str, pattern) -> regex.Pattern:
    """``pattern`` compiled as Python's ``re`` reads it (the ``regex`` module's version 0),
    case-insensitive; its searches take a timeout (:func:`regex_search`)."""
    if not isinstance(pattern, str) or not pattern:
        raise _Bad(f"condition {key!r} needs a regular expression as text (got {pattern!r})",
                   zh=f"条件 {key!r} 需要文本形式的正则表达式（实为 {pattern!r}）")
    try:
        return regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)
    except (regex.error, re.error) as e:
        raise _Bad(f"invalid regex for {key!r}: {e} in {pattern!r}",
                   zh=f"{key!r} 的正则表达式无效：{pattern!r} 中 {e}") from None


def _compile_rule(raw) -> Rule:
    if not isinstance(raw, Mapping):
        raise _Bad(f"a rule must be a mapping such as {{amenity: school}} (got {raw!r})",
                   zh=f"规则须为映射，如 {{amenity: school}}（实为 {raw!r}）")
    if not raw:
        raise _Bad("empty rule {} (it would match every feature)", zh="空规则 {}（会匹配所有要素）")
    conds: list[Condition] = []
    for key, val in raw.items():
        if _is_ext(key):
            continue
        if not isinstance(key, str) or not key.strip():
            raise _Bad(f"condition key must be a tag key (got {key!r})", zh=f"条件的键须为标签键（实为 {key!r}）")
        if key.endswith("!~"):
            tag, op = key[:-2], "not_regex"
        elif key.endswith("~"):
            tag, op = key[:-1], "regex"
        else:
            tag, op = key, None
        if not tag or (("*" in tag) and tag != NAME_ANY) or any(ch in tag for ch in "~!="):
            raise _Bad(f"unknown condition form {key!r} (use key, \"key~\", \"key!~\", "
                       f"\"name*~\" or \"name*!~\")",
                       zh=f"未知的条件写法 {key!r}（请用 key、\"key~\"、\"key!~\"、\"name*~\" 或 \"name*!~\"）")
        if tag == NAME_ANY and op is None:
            raise _Bad(f"unknown condition form {key!r}: the name* pseudo-key takes a regex, "
                       f"write \"name*~\"",
                       zh=f"未知的条件写法 {key!r}：name* 伪键只接受正则表达式，请写 \"name*~\"")
        if op is not None:
            conds.append(Condition(tag, op, pattern=_compile_regex(key, val), quick=quick_pattern(val), text=val))
            continue
        if val is None:
            raise _Bad(f"condition {key!r} has no value (write \"*\" for any value, \"!\" for "
                       f"absent, both in quotes)",
                       zh=f"条件 {key!r} 没有值（任意值写 \"*\"，不存在写 \"!\"，都要加引号）")
        if isinstance(val, list):
            if not val:
                raise _Bad(f"condition {key!r} has an empty list of values", zh=f"条件 {key!r} 的值列表为空")
            vals = [_tag_value(v, key) for v in val]
            if "*" in vals or "!" in vals:
                raise _Bad(f"condition {key!r}: \"*\" and \"!\" cannot be inside a list",
                           zh=f"条件 {key!r}：\"*\" 和 \"!\" 不能放在列表中")
            conds.append(Condition(tag, "in", values=frozenset(vals)))
            continue
        if isinstance(val, Mapping):
            raise _Bad(f"condition {key!r}: value must be text, a list, \"*\" or \"!\" "
                       f"(got a mapping; is a comma or bracket missing?)",
                       zh=f"条件 {key!r}：值须为文本、列表、\"*\" 或 \"!\"（实为映射；是否漏了逗号或括号？）")
        s = _tag_value(val, key)
        if s == "*":
            conds.append(Condition(tag, "present"))
        elif s == "!":
            conds.append(Condition(tag, "absent"))
        else:
            conds.append(Condition(tag, "in", values=frozenset([s])))
    if not conds:
        raise _Bad("rule has no conditions", zh="规则没有条件")
    # cheap and selective tests first; "absent" rarely fails, so it goes last
    conds.sort(key=lambda c: _OP_ORDER[(c.op, c.key == NAME_ANY)])
    return Rule(tuple(conds))


_OP_ORDER = {("in", False): 0, ("present", False): 1, ("regex", False): 2, ("regex", True): 3,
             ("not_regex", False): 4, ("not_regex", True): 5, ("absent", False): 6}


def _compile_rules(raw, what: str, *, required: bool) -> tuple[Rule, ...]:
    if raw is None:
        if required:
            raise _Bad(f"{what} is missing (a list of tag rules)", zh=f"缺少 {_wz(what)}（标签规则列表）")
        return ()
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise _Bad(f"{what} must be a list of rules (got {_kind(raw)})",
                   zh=f"{_wz(what)} 须为规则列表（实为{_kind(raw, 'zh')}）")
    if required and not raw:
        raise _Bad(f"{what} is empty", zh=f"{_wz(what)} 为空")
    rules = []
    for i, r in enumerate(raw, 1):
        try:
            rules.append(_compile_rule(r))
        except _Bad as e:
            raise _Bad(f"{_line(r, getattr(raw, 'line', None))}{what} rule #{i}: {e}",
                       zh=f"{_line_zh(r, getattr(raw, 'line', None))}{_wz(what)} 第 {i} 条规则：{e.zh}") from None
    return tuple(rules)


def _bool(v, what: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"{what} must be true or false (got {v!r})", zh=f"{what} 须为 true 或 false（实为 {v!r}）")
    return v


def _parse_category(raw, dim_id: str, speed_kmh: float, global_exclude: tuple[Rule, ...]) -> Category:
    if not isinstance(raw, Mapping):
        raise _Bad(f"must be a mapping with id, name_zh, minutes, match … (got {raw!r})",
                   zh=f"须为含 id、name_zh、minutes、match … 的映射（实为 {raw!r}）")
    _check_keys(raw, _CAT_KEYS)
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        raise _Bad(f"id must be snake_case text such as 'bus_stop' (got {cid!r})",
                   zh=f"id 须为 snake_case 文本，如 'bus_stop'（实为 {cid!r}）")
    name_zh = _text(raw.get("name_zh"), "name_zh")
    name_en = _text(raw.get("name_en"), "name_en")
    radius = raw.get("radius_m")
    radius_m = _number(radius, "radius_m") if radius is not None else None
    tier = raw.get("tier")
    if tier is not None and (isinstance(tier, bool) or tier not in TIERS):
        raise _Bad(f"tier must be 5, 10 or 15 (got {tier!r})", zh=f"tier 须为 5、10 或 15（实为 {tier!r}）")
    if "minutes" in raw:
        minutes = _number(raw["minutes"], "minutes")
    elif radius_m is not None:
        minutes = round(radius_m / (speed_kmh * 1000.0 / 60.0), 2)
    elif tier is not None:
        minutes = float(tier)
    else:
        raise _Bad("minutes is missing (give minutes, radius_m or tier)",
                   zh="缺少 minutes（请给出 minutes、radius_m 或 tier）")
    if minutes > 240:
        raise _Bad(f"minutes must be at most 240 (got {minutes!r})", zh=f"minutes 不能超过 240（实为 {minutes!r}）")
    required = raw.get("required")
    if required is not None:
        required = _bool(required, "required")
    essential = raw.get("essential")
    essential = _bool(essential, "essential") if essential is not None else bool(required)
    weight = _number(raw.get("weight", 1), "weight", allow_zero=True)
    min_area = raw.get("min_area_m2")
    min_area_m2 = _number(min_area, "min_area_m2", allow_zero=True) if min_area is not None else None
    codes_raw = raw.get("amap_typecodes") or []
    if isinstance(codes_raw, str):
        codes_raw = [codes_raw]
    if not isinstance(codes_raw, list):
        raise _Bad("amap_typecodes must be a list of quoted codes such as [\"141203\"]",
                   zh="amap_typecodes 须为加引号的代码列表，如 [\"141203\"]")
    codes = []
    for c in codes_raw:
        if not isinstance(c, str):
            raise _Bad(f"amap_typecodes: write each code in quotes (got {c!r}; YAML reads "
                       f"050000 as a number)",
                       zh=f"amap_typecodes：每个代码都要加引号（实为 {c!r}；YAML 会把 050000 读作数字）")
        if not _TYPECODE_RE.match(c):
            raise _Bad(f"amap_typecodes: {c!r} is not 2-6 digits", zh=f"amap_typecodes：{c!r} 不是 2-6 位数字")
        codes.append(c)
    baidu_raw = raw.get("baidu_categories") or []
    if isinstance(baidu_raw, str):
        baidu_raw = [baidu_raw]
    if not isinstance(baidu_raw, list) or not all(isinstance(b, str) and b for b in baidu_raw):
        raise _Bad("baidu_categories must be a list of texts such as [\"教育培训;小学\"]",
                   zh="baidu_categories 须为文本列表，如 [\"教育培训;小学\"]")
    goal = _text(raw.get("goal"), "goal", required=False)
    if goal is not None and goal not in GOALS:
        raise _Bad(f"goal must be one of {', '.join(GOALS)} (got {goal!r})",
                   zh=f"goal 须为 {', '.join(GOALS)} 之一（实为 {goal!r}）")
    match = _compile_rules(raw.get("match"), "match", required=True)
    exclude = _compile_rules(raw.get("exclude"), "exclude", required=False) + global_exclude
    return Category(
        id=cid, name_zh=name_zh, name_en=name_en, dimension=dim_id, minutes=minutes,
        essential=essential, weight=weight, match=match, exclude=exclude, min_area_m2=min_area_m2,
        radius_m=radius_m, tier=tier, required=required, amap_typecodes=tuple(codes),
        baidu_categories=tuple(baidu_raw), source=_text(raw.get("source"), "source", required=False),
        goal=goal, note=_text(raw.get("note"), "note", required=False),
    )


def _parse_file(path: Path) -> Profile:
    doc = _read_yaml(path)
    try:
        return _build(doc, path)
    except _Bad as e:
        raise ProfileError(path, str(e), zh=e.zh) from None


def _build(doc, path: Path) -> Profile:
    if doc is None:
        raise _Bad("the file is empty", zh="文件为空")
    if not isinstance(doc, Mapping):
        raise _Bad(f"the top level must be a mapping with name, dimensions … (got {_kind(doc)})",
                   zh=f"顶层须为含 name、dimensions … 的映射（实为{_kind(doc, 'zh')}）")
    try:
        _check_keys(doc, _TOP_KEYS, "top level: ")
        name = _text(doc.get("name"), "name")
        speed = _number(doc.get("speed_kmh", 4.0), "speed_kmh")
        if speed > 30:
            raise _Bad(f"speed_kmh must be a walking speed in km/h (got {speed!r})",
                       zh=f"speed_kmh 须为以 km/h 计的步行速度（实为 {speed!r}）")
        share = _number(doc.get("dimension_cover_share", 0.5), "dimension_cover_share")
        if share > 1:
            raise _Bad(f"dimension_cover_share must be between 0 and 1 (got {share!r})",
                       zh=f"dimension_cover_share 须在 0 到 1 之间（实为 {share!r}）")
        global_exclude = _compile_rules(doc.get("exclude"), "top-level exclude", required=False)
    except _Bad as e:
        raise _Bad(f"{_line(doc)}{e}", zh=f"{_line_zh(doc)}{e.zh}") from None
    dims_raw = doc.get("dimensions")
    if not isinstance(dims_raw, list) or not dims_raw:
        raise _Bad(f"{_line(dims_raw, getattr(doc, 'line', None))}dimensions must be a non-empty "
                   f"list of dimensions (ids: {', '.join(DIMENSIONS)})",
                   zh=f"{_line_zh(dims_raw, getattr(doc, 'line', None))}dimensions 须为非空的维度列表"
                      f"（id：{', '.join(DIMENSIONS)}）")
    dims: list[Dimension] = []
    seen_dims: dict[str, int] = {}
    seen_cats: dict[str, str] = {}
    for di, draw in enumerate(dims_raw, 1):
        where = f"{_line(draw)}dimension #{di}"
        where_zh = f"{_line_zh(draw)}第 {di} 个维度"
        if not isinstance(draw, Mapping):
            raise _Bad(f"{where}: must be a mapping with id, name_zh, name_en, categories",
                       zh=f"{where_zh}：须为含 id、name_zh、name_en、categories 的映射")
        did = draw.get("id")
        if did not in DIMENSIONS:
            raise _Bad(f"{where}: id must be one of {', '.join(DIMENSIONS)} (got {did!r})",
                       zh=f"{where_zh}：id 须为 {', '.join(DIMENSIONS)} 之一（实为 {did!r}）")
        where = f"{_line(draw)}dimension #{di} ({did})"
        where_zh = f"{_line_zh(draw)}第 {di} 个维度（{did}）"
        if did in seen_dims:
            raise _Bad(f"{where}: dimension {did!r} appears twice (also #{seen_dims[did]})",
                       zh=f"{where_zh}：维度 {did!r} 出现两次（另见第 {seen_dims[did]} 个）")
        seen_dims[did] = di
        try:
            _check_keys(draw, _DIM_KEYS)
            dzh = _text(draw.get("name_zh"), "name_zh", required=False) or DIMENSION_NAMES[did][0]
            den = _text(draw.get("name_en"), "name_en", required=False) or DIMENSION_NAMES[did][1]
            dweight = _number(draw.get("weight", 1), "weight", allow_zero=True)
        except _Bad as e:
            raise _Bad(f"{where}: {e}", zh=f"{where_zh}：{e.zh}") from None
        cats_raw = draw.get("categories")
        if not isinstance(cats_raw, list) or not cats_raw:
            raise _Bad(f"{where}: categories must be a non-empty list", zh=f"{where_zh}：categories 须为非空列表")
        cats = []
        for ci, craw in enumerate(cats_raw, 1):
            cid = craw.get("id") if isinstance(craw, Mapping) else None
            label = f" '{cid}'" if isinstance(cid, str) else ""
            cwhere = f"{_line(craw, getattr(cats_raw, 'line', None))}category #{ci}{label} in dimension {did}"
            cwhere_zh = f"{_line_zh(craw, getattr(cats_raw, 'line', None))}维度 {did} 的第 {ci} 个类别{label}"
            try:
                cat = _parse_category(craw, did, speed, global_exclude)
            except _Bad as e:
                msg = str(e)
                if msg.startswith("line "):  # a rule error with its own, more precise line
                    ln, _, rest = msg.partition(", ")
                    ln_zh, _, rest_zh = e.zh.partition("，")
                    raise _Bad(f"{ln}, category #{ci}{label} in dimension {did}: {rest}",
                               zh=f"{ln_zh}，维度 {did} 的第 {ci} 个类别{label}：{rest_zh}") from None
                raise _Bad(f"{cwhere}: {msg}", zh=f"{cwhere_zh}：{e.zh}") from None
            if cat.id in seen_cats:
                raise _Bad(f"{cwhere}: duplicate category id {cat.id!r} (also in {seen_cats[cat.id]})",
                           zh=f"{cwhere_zh}：类别 id {cat.id!r} 重复（另见维度 "
                              f"{seen_cats[cat.id].removeprefix('dimension ')}）")
            seen_cats[cat.id] = f"dimension {did}"
            cats.append(cat)
        dims.append(Dimension(did, dzh, den, dweight, tuple(cats)))
    complete = doc.get("complete")
    if complete is None:
        complete = []
    if isinstance(complete, str):
        complete = [complete]
    if not isinstance(complete, list) or not all(isinstance(c, str) for c in complete):
        raise _Bad(f"{_line(doc)}complete must be a list of category ids (got {_kind(complete)})",
                   zh=f"{_line_zh(doc)}complete 须为类别 id 列表（实为{_kind(complete, 'zh')}）")
    unknown = [c for c in complete if c not in seen_cats]
    if unknown:
        raise _Bad(f"{_line(complete, getattr(doc, 'line', None))}complete names unknown "
                   f"categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}",
                   zh=f"{_line_zh(complete, getattr(doc, 'line', None))}complete 中有未知的类别 "
                      f"{', '.join(map(repr, unknown))}")
    version = doc.get("version")
    return Profile(
        name=name,
        name_zh=_text(doc.get("name_zh"), "name_zh", required=False) or name,
        version="" if version is None else str(version),
        description=_text(doc.get("description"), "description", required=False) or "",
        speed_kmh=speed,
        dimension_cover_share=share,
        dimensions=tuple(dims),
        exclude=global_exclude,
        source_path=str(path),
        complete=tuple(dict.fromkeys(complete)),
    )

