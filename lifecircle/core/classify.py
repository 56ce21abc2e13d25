"""Classify OSM features into the categories of a profile.

:func:`classify_features` takes a GeoDataFrame of OSM features (columns ``osm_type``,
``osm_id``, ``tags`` — a dict of str → str per row — and ``geometry`` in EPSG:4326) and
returns one row per (feature, category) match: a feature may belong to several categories
(a 便利超市 is a convenience store and a supermarket; a school can be primary and middle).
:func:`match_tags` classifies one tag dict.

Tags first
----------
Before the rules run, :func:`tag_facts` reads what the tags themselves say and adds it as
``lc:*`` pseudo-tags that the profile rules can test like any tag (they are never written out):

* ``lc:school`` — the levels the tags declare, as an OSM ``;`` list of ``kindergarten``,
  ``primary``, ``middle`` (junior secondary, 初中), ``high`` (senior secondary, 高中),
  ``higher`` and ``specialised`` (driving, music, dance, language … schools), from
  ``isced:level`` (0 → kindergarten, 1 → primary, 2 → middle, 3 → high, 4–8 → higher; ranges
  such as ``1-3`` and lists), ``school=*`` (primary, secondary = middle;high, grundschule,
  gymnasium, collège, lycée, driving …), ``school:FR``, ``grades`` (1–6 primary, 7–9 middle,
  10–13 high, K/PK kindergarten) and ``amenity`` (kindergarten, college/university = higher,
  driving/music/language/dancing schools = specialised). Absent when the tags say nothing:
  then, and only then, the profile's name rules decide.
* ``lc:education`` — ``yes`` on anything an education tag marks (``amenity`` school, college,
  university, kindergarten …, ``office=educational_institution``, ``school=*``,
  ``isced:level``): the profiles keep commercial, health and office name rules off it (a
  university institute named after a bank is not a bank branch).
* ``lc:market`` — ``food`` or ``other`` from a marketplace's goods tags (``marketplace``,
  ``market``, ``fresh_food``, ``second_hand`` …): a flea, antiques, bird, coin, stamp, book or
  Christmas market is not a fresh-food market.
* ``lc:health`` — ``specialist`` for dentists, physiotherapists, opticians, laboratories,
  alternative medicine and vets (``healthcare=*``, ``amenity=dentist|veterinary``): not a
  clinic, health centre or hospital of the life circle whatever the name says.

The facts are computed from the tag dicts any reader produces (:class:`~lifecircle.sources.OSMData`
``features.tags``), so a change of reader does not touch them.

Duplicates: the same named feature mapped twice — a node and a way, a way and a relation —
(same category, same name, different OSM type, touching or within ``dedupe_m``) is counted once
(the polygon is kept); so is a node inside an area of the same category when one name contains the other (node
"Café Guflina" in way "Guflina") or, the area holding no other such node, either has no name
(a supermarket node in an unnamed supermarket way; not the sixteen offices of an unnamed
office building, nor a shop in a mall of another name). The area stays
(with the node's name when it had none); ``attrs["duplicates_merged"]`` says how many rows went.

Speed: the rules of a profile are indexed once per profile by the tag (key, value) or key
each rule needs, so a feature is tested only against rules that can match it; rules that look
only at names are pre-screened with one combined regex. A feature with no indexed key (or only
a value no rule names, such as ``building=yes``) and no fact key is skipped at once, and the
features of one call that agree on every key a rule or a fact reads are matched once. A tag dict
shared by many rows (the reader keeps one per distinct tag list) is cleaned, matched and
named once. The loop runs over plain Python dicts (no per-row pandas), about 1 s per million
tags.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import regex

from lifecircle import columns as C
from lifecircle.core.profiles import (
    NAME_ANY,
    NAME_KEYS,
    REGEX_TIMEOUT_S,
    UNTIMED_CHARS,
    Category,
    Profile,
    Rule,
    bounded,
    load_profile,
)
from lifecircle.errors import RegexTimeout

__all__ = ["classify_features", "classify_tags", "match_tags", "match_amap_typecode", "best_name",
           "capacity_of", "tag_facts", "OUTPUT_COLUMNS"]

AREA = "area_m2"
OSM_TYPE = "osm_type"
OSM_ID = "osm_id"
#: Columns of :func:`classify_features` output, in order (plus ``geometry``).
OUTPUT_COLUMNS = (C.CATEGORY, C.DIMENSION, C.NAME, OSM_TYPE, OSM_ID, C.CAPACITY, AREA)

_BEST_NAME_KEYS = ("name:zh", "name:zh-Hans", "name", "name:en")
_CAPACITY_KEYS = ("capacity", "beds", "seats")
_NUM_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*$")


# ------------------------------------------------------------------------------------------
# facts from tags (see the module docstring)
# ------------------------------------------------------------------------------------------

FACT_SCHOOL = "lc:school"
FACT_EDUCATION = "lc:education"
FACT_MARKET = "lc:market"
FACT_HEALTH = "lc:health"
_LEVEL_ORDER = ("kindergarten", "primary", "middle", "high", "higher", "specialised")
_ISCED = {0: ("kindergarten",), 1: ("primary",), 2: ("middle",), 3: ("high",)}
#: ``school=*`` (and ``school:FR``, ``school:type``) values → levels. Unknown values say nothing.
_SCHOOL_VALUES = {
    "kindergarten": ("kindergarten",), "nursery": ("kindergarten",), "preschool": ("kindergarten",),
    "pre-school": ("kindergarten",), "maternelle": ("kindergarten",), "infant": ("primary",),
    "primary": ("primary",), "elementary": ("primary",), "primary_school": ("primary",),
    "elementary_school": ("primary",), "grundschule": ("primary",), "primaire": ("primary",),
    "élémentaire": ("primary",), "elementaire": ("primary",), "junior": ("primary",),
    "first": ("primary",), "lower_primary": ("primary",), "upper_primary": ("primary",),
    "middle": ("middle",), "middle_school": ("middle",), "lower_secondary": ("middle",),
    "junior_high": ("middle",), "junior_high_school": ("middle",), "intermediate": ("middle",),
    "hauptschule": ("middle",), "realschule": ("middle",), "mittelschule": ("middle",),
    "collège": ("middle",), "college_fr": ("middle",), "secondary_modern": ("middle",),
    "secondary": ("middle", "high"), "secondary_school": ("middle", "high"),
    "comprehensive": ("middle", "high"), "gesamtschule": ("middle", "high"),
    "gymnasium": ("middle", "high"), "grammar": ("middle", "high"), "academy": ("middle", "high"),
    "high": ("high",), "high_school": ("high",), "upper_secondary": ("high",),
    "senior_high": ("high",), "lycée": ("high",), "lycee": ("high",), "lyceum": ("high",),
    "sixth_form": ("high",), "liceo": ("high",), "bachillerato": ("high",),
    "all_through": ("primary", "middle", "high"), "through": ("primary", "middle", "high"),
    "primary;secondary": ("primary", "middle", "high"),
    "driving": ("specialised",), "driving_school": ("specialised",), "music": ("specialised",),
    "music_school": ("specialised",), "dance": ("specialised",), "dancing": ("specialised",),
    "language": ("specialised",), "language_school": ("specialised",), "art": ("specialised",),
    "arts": ("specialised",), "sport": ("specialised",), "sports": ("specialised",),
    "cooking": ("specialised",), "flight": ("specialised",), "diving": ("specialised",),
    "surf": ("specialised",), "tutoring": ("specialised",), "religious": ("specialised",),
    "university": ("higher",), "college": ("higher",), "vocational": ("higher",),
}
_AMENITY_LEVELS = {
    "kindergarten": ("kindergarten",), "university": ("higher",), "college": ("higher",),
    "driving_school": ("specialised",), "music_school": ("specialised",),
    "language_school": ("specialised",), "dancing_school": ("specialised",),
    "dance_school": ("specialised",), "prep_school": ("specialised",),
    "training": ("specialised",), "surf_school": ("specialised",),
    "research_institute": ("higher",),
}
_EDU_AMENITIES = frozenset({"school", "college", "university", "kindergarten", "research_institute",
                            "childcare"} | set(_AMENITY_LEVELS))
_ISCED_RE = re.compile(r"(\d)\s*[-–]\s*(\d)|(\d)")
_GRADE_RE = re.compile(r"(pk|k|\d{1,2})(?:\s*[-–]\s*(pk|k|\d{1,2}))?", re.IGNORECASE)
_MARKET_FOOD = frozenset({"farmers", "farmers_market", "food", "fresh_food", "greengrocer", "fish",
                          "produce", "wet_market", "fruit", "vegetables", "fruit_and_vegetables",
                          "meat", "seafood", "grocery", "groceries", "daily", "public_market",
                          "covered_market", "municipal"})
_MARKET_OTHER = frozenset({"flea_market", "flea", "antiques", "antique", "bird", "birds", "pets",
                           "animals", "coins", "coin", "stamps", "stamp", "numismatic", "philately",
                           "books", "book", "clothes", "clothing", "crafts", "craft", "art",
                           "christmas_market", "christmas", "second_hand", "car_boot",
                           "flowers", "flower", "plants", "electronics", "furniture", "vehicles",
                           "cars", "livestock", "textiles", "jewelry", "souvenirs", "night_market_goods"})
_HEALTH_SPECIALIST = frozenset({"dentist", "physiotherapist", "alternative", "optometrist",
                                "psychotherapist", "audiologist", "podiatrist", "speech_therapist",
                                "occupational_therapist", "counselling", "laboratory",
                                "sample_collection", "blood_donation", "blood_bank", "dialysis",
                                "hearing_care", "nutrition_counselling", "massage",
                                "veterinary", "chiropractor", "osteopath"})


#: Every key :func:`tag_facts` reads first: without any of them it says nothing.
_FACT_KEYS = frozenset({"amenity", "office", "school", "school:FR", "school:type", "isced:level", "isced",
                        "leisure", "marketplace", "market", "healthcare"})
#: Every key :func:`tag_facts` reads at all.
_FACT_READS = _FACT_KEYS | {"grades", "dance:teaching", "market:type", "goods", "fresh_food", "produce",
                            "food", "second_hand", "flea_market"}


def _levels_of_isced(v: str) -> set[str]:
    out: set[str] = set()
    for a, b, one in _ISCED_RE.findall(v):
        lo, hi = (int(a), int(b)) if a else (int(one), int(one))
        for k in range(min(lo, hi), max(lo, hi) + 1):
            out.update(_ISCED.get(k, ("higher",)) if k <= 8 else ())
    return out


def _grade(g: str) -> int:
    g = g.lower()
    return 0 if g in ("k", "pk") else int(g)


def _levels_of_grades(v: str) -> set[str]:
    """Levels of a ``grades`` range: K/PK kindergarten, 1–6 primary, 7–9 middle, 10–13 high;
    a range from grade 9 upwards (9–12, a US high school) is high only."""
    out: set[str] = set()
    for a, b in _GRADE_RE.findall(v):
        lo = _grade(a)
        hi = _grade(b) if b else lo
        lo, hi = min(lo, hi), max(lo, hi)
        if lo == 9 and hi >= 10:
            lo = 10
        for k in range(lo, min(hi, 13) + 1):
            out.add("kindergarten" if k == 0 else "primary" if k <= 6 else "middle" if k <= 9 else "high")
    return out


def tag_facts(tags: Mapping[str, str]) -> dict[str, str]:
    """What the tags themselves say about a feature, as ``lc:*`` pseudo-tags (see the module
    docstring); empty when they say nothing.

    >>> tag_facts({"amenity": "school", "isced:level": "1;2"})["lc:school"]
    'primary;middle'
    >>> tag_facts({"amenity": "school", "school": "secondary"})["lc:school"]
    'middle;high'
    >>> tag_facts({"amenity": "driving_school", "name": "Autoescuela Sol"})["lc:school"]
    'specialised'
    >>> tag_facts({"amenity": "marketplace", "marketplace": "flea_market"})
    {'lc:market': 'other'}
    >>> tag_facts({"amenity": "cafe"})
    {}
    """
    get = tags.get
    out: dict[str, str] = {}
    amenity = get("amenity")
    levels: set[str] = set()
    edu = False
    if amenity:
        for a in amenity.split(";"):
            a = a.strip()
            if a in _EDU_AMENITIES:
                edu = True
                levels.update(_AMENITY_LEVELS.get(a, ()))
    if get("office") == "educational_institution":
        edu = True
    for key in ("school", "school:FR", "school:type"):
        v = get(key)
        if v and v != "no":
            edu = True
            low = v.strip().lower()
            if low in _SCHOOL_VALUES:
                levels.update(_SCHOOL_VALUES[low])
            else:
                for part in re.split(r"[;,]", low):
                    levels.update(_SCHOOL_VALUES.get(part.strip(), ()))
    v = get("isced:level") or get("isced")
    if v:
        edu = True
        levels.update(_levels_of_isced(v))
    v = get("grades")
    if v and edu:
        levels.update(_levels_of_grades(v))
    if get("leisure") == "dance" and get("dance:teaching") in ("yes", "only"):
        edu = True
        levels.add("specialised")
    if edu:
        out[FACT_EDUCATION] = "yes"
    if levels:
        out[FACT_SCHOOL] = ";".join(lv for lv in _LEVEL_ORDER if lv in levels)
    if amenity == "marketplace" or get("marketplace") or get("market"):
        kinds = set()
        for key in ("marketplace", "market", "market:type", "goods"):
            v = get(key)
            if v:
                for part in v.lower().split(";"):
                    part = part.strip()
                    if part in _MARKET_FOOD:
                        kinds.add("food")
                    elif part in _MARKET_OTHER:
                        kinds.add("other")
        if get("fresh_food") in ("yes", "only") or get("produce") or get("food") in ("yes", "only"):
            kinds.add("food")
        if get("second_hand") in ("yes", "only") or get("flea_market") == "yes":
            kinds.add("other")
        if "food" in kinds:
            out[FACT_MARKET] = "food"
        elif "other" in kinds:
            out[FACT_MARKET] = "other"
    hc = get("healthcare")
    if (hc and hc.split(";")[0].strip() in _HEALTH_SPECIALIST) or amenity in ("dentist", "veterinary"):
        out[FACT_HEALTH] = "specialist"
    return out


def with_facts(tags: Mapping[str, str]) -> Mapping[str, str]:
    """``tags`` plus :func:`tag_facts` (the same dict when there are none)."""
    if _FACT_KEYS.isdisjoint(tags):
        return tags
    facts = tag_facts(tags)
    if not facts:
        return tags
    merged = dict(tags)
    merged.update(facts)
    return merged


# ------------------------------------------------------------------------------------------
# the compiled matcher
# ------------------------------------------------------------------------------------------

class _Matcher:
    """Rules of a profile indexed by what a feature must carry for them to match."""

    def __init__(self, profile: Profile):
        self.profile = profile.source_path or str(profile.name)
        self.cats: list[Category] = profile.categories
        self.by_kv: dict[tuple[str, str], list[tuple[int, Rule]]] = defaultdict(list)
        self.by_key: dict[str, list[tuple[int, Rule]]] = defaultdict(list)
        self.by_name: list[tuple[int, Rule]] = []
        self.always: list[tuple[int, Rule]] = []
        name_patterns: list[str] = []
        for ci, cat in enumerate(self.cats):
            for rule in cat.match:
                anchor = _anchor(rule)
                if anchor is None:
                    self.always.append((ci, rule))
                elif anchor[0] == "kv":
                    for v in anchor[2]:
                        self.by_kv[(anchor[1], v)].append((ci, rule))
                elif anchor[0] == "key":
                    self.by_key[anchor[1]].append((ci, rule))
                else:
                    self.by_name.append((ci, rule))
                    name_patterns.append(anchor[1].pattern)
        self.by_kv = dict(self.by_kv)
        self.by_key = dict(self.by_key)
        # one regex that matches whenever any name-only rule could; most names fail it at once
        self.name_screen: regex.Pattern | None = None
        self.screen_quick: re.Pattern | None = None      # re's, when every part is bounded
        if name_patterns:
            joined = "|".join(f"(?:{p})" for p in name_patterns)
            try:
                self.name_screen = regex.compile(joined, regex.IGNORECASE | regex.VERSION0)
                if all(bounded(p) for p in name_patterns):
                    self.screen_quick = re.compile(joined, re.IGNORECASE)
            except (regex.error, re.error):  # e.g. back-references that do not survive joining
                self.name_screen = self.screen_quick = None
        self.min_area = [c.min_area_m2 or 0.0 for c in self.cats]
        # what a feature must carry to have a candidate rule or a fact (see :meth:`match`)
        self.any_value = frozenset(set(self.by_key) | set(NAME_KEYS) | _FACT_KEYS)
        self.relevant = self.any_value | {k for k, _ in self.by_kv}
        # every key a rule or a fact reads: two features that agree on these match alike
        reads = set(_FACT_READS)
        for cat in self.cats:
            for rule in [*cat.match, *cat.exclude]:
                for c in rule.conditions:
                    reads.update(NAME_KEYS if c.key == NAME_ANY else (c.key,))
        self.reads = frozenset(reads)

    def candidates(self, tags: Mapping[str, str]) -> list[tuple[int, Rule]]:
        out: list[tuple[int, Rule]] = list(self.always)
        by_kv, by_key = self.by_kv, self.by_key
        named = False
        for k in self.relevant.intersection(tags):   # other keys name no rule
            v = tags[k]
            if v is None:
                continue
            lst = by_kv.get((k, v))
            if lst:
                out.extend(lst)
            elif ";" in v:
                for part in v.split(";"):
                    lst = by_kv.get((k, part.strip()))
                    if lst:
                        out.extend(lst)
            lst = by_key.get(k)
            if lst:
                out.extend(lst)
        if self.by_name:
            screen = self.name_screen
            for k in NAME_KEYS:
                v = tags.get(k)
                if v and (screen is None or _screened(screen, v, self.screen_quick)):
                    named = True
                    break
            if named:
                out.extend(self.by_name)
        return out

    def skips(self, tags: Mapping[str, str]) -> bool:
        """True when no rule can take ``tags`` and no fact comes from them: none of the keys
        the rules are indexed by, or only keys indexed by value with a value no rule names
        (most buildings: ``building=yes``)."""
        if self.always:
            return False
        keys = self.relevant.intersection(tags)
        if not keys:
            return True
        if self.any_value.isdisjoint(keys):
            by_kv = self.by_kv
            return not any((v := tags[k]) is not None and ((k, v) in by_kv or ";" in v) for k in keys)
        return False

    def match_all(self, tag_dicts: Iterable[Mapping[str, str]]) -> list[list[int]]:
        """:meth:`match` of every tag dict; features that agree on every key a rule or a fact
        reads (:attr:`reads`; the same bus stop, pitch or parking mapped a thousand times) are
        matched once."""
        out: list[list[int]] = []
        seen: dict[frozenset, list[int]] = {}
        reads = self.reads
        for tags in tag_dicts:
            if not tags or self.skips(tags):
                out.append([])
                continue
            key = frozenset([(k, tags[k]) for k in reads.intersection(tags)])
            hits = seen.get(key)
            if hits is None:
                hits = seen[key] = self.match(tags)
            out.append(hits)
        return out

    def match(self, tags: Mapping[str, str]) -> list[int]:
        """Indices of categories whose rules take ``tags`` (area not checked), sorted.

        A regex of the profile that runs over its time on a value raises a
        :class:`~lifecircle.errors.ProfileError` naming the profile, the category, the
        condition and the pattern."""
        try:
            return self._match(tags)
        except RegexTimeout as exc:
            cat = next((c for c in self.cats for r in (*c.match, *c.exclude)
                        if any(c2.describe() == exc.condition for c2 in r.conditions)), None)
            where = f"category {cat.id}, " if cat is not None else ""
            where_zh = f"类别 {cat.id}，" if cat is not None else ""
            raise RegexTimeout(f"{self.profile}: {where}condition {exc.condition!r}", exc.problem,
                               zh=exc.zh_problem, condition=exc.condition, pattern=exc.pattern,
                               value=exc.value,
                               source_zh=f"{self.profile}：{where_zh}条件 {exc.condition!r}") from None

    def _match(self, tags: Mapping[str, str]) -> list[int]:
        if self.skips(tags):
            return []
        tags = with_facts(tags)
        cands = self.candidates(tags)
        if not cands:
            return []
        hit: set[int] = set()
        for ci, rule in cands:
            if ci not in hit and rule.matches(tags):
                hit.add(ci)
        if not hit:
            return []
        cats = self.cats
        out = []
        for ci in sorted(hit):
            ex = cats[ci].exclude
            if ex and any(r.matches(tags) for r in ex):
                continue
            out.append(ci)
        return out


def _screened(screen, value: str, quick) -> bool:
    """Whether the name screen finds ``value`` (``quick``: re's screen of :func:`bounded`
    patterns, searched without a timeout up to :data:`UNTIMED_CHARS`); one that runs over its
    time lets every name rule test the value (the rule at fault then names itself)."""
    if quick is not None and len(value) <= UNTIMED_CHARS:
        return quick.search(value) is not None
    try:
        return screen.search(value, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        return True


def _anchor(rule: Rule):
    """What a feature must carry for ``rule`` to possibly match: ("kv", key, values),
    ("key", key), ("name", pattern) or None (nothing; checked for every feature)."""
    best = None
    for c in rule.conditions:
        if c.key == NAME_ANY:
            if c.op == "regex" and best is None:
                best = ("name", c.pattern)
            continue
        if c.op == "in":
            return ("kv", c.key, tuple(c.values))
        if c.op in ("present", "regex") and (best is None or best[0] == "name"):
            best = ("key", c.key)
    return best


def _matcher(profile: Profile) -> _Matcher:
    m = profile._cache.get("matcher")
    if m is None:
        m = _Matcher(profile)
        profile._cache["matcher"] = m
    return m


# ------------------------------------------------------------------------------------------
# public helpers
# ------------------------------------------------------------------------------------------

def match_tags(tags: Mapping[str, str], profile: Profile | str = "default",
               area_m2: float | None = None) -> list[str]:
    """Category ids (in profile order) that a feature with ``tags`` belongs to.

    ``min_area_m2`` limits are applied only when ``area_m2`` is given.
    """
    profile = load_profile(profile)
    m = _matcher(profile)
    tags = _clean_tags(tags)
    out = []
    for ci in m.match(tags):
        if area_m2 is not None and m.min_area[ci] and area_m2 < m.min_area[ci]:
            continue
        out.append(m.cats[ci].id)
    return out


def match_amap_typecode(typecode: str | int, profile: Profile | str = "default") -> list[str]:
    """Category ids whose ``amap_typecodes`` prefix-match an Amap (高德) POI typecode.

    Amap gives several codes joined by ``|`` for some POIs; each is tried.
    """
    profile = load_profile(profile)
    codes = [c.strip() for c in str(typecode).split("|") if c.strip()]
    codes = [c.zfill(6) if c.isdigit() and len(c) == 5 else c for c in codes]  # 050000 read as int
    out = []
    for cat in profile.categories:
        if any(code.startswith(p) for code in codes for p in cat.amap_typecodes):
            out.append(cat.id)
    return out


def best_name(tags: Mapping[str, str]) -> str | None:
    """The display name of a feature: ``name:zh``, ``name:zh-Hans``, ``name``, ``name:en``."""
    for k in _BEST_NAME_KEYS:
        v = tags.get(k)
        if v and str(v).strip():
            return str(v).strip()
    return None


def capacity_of(tags: Mapping[str, str]) -> float:
    """``capacity``, ``beds`` or ``seats`` when one is a positive number, else 1.0."""
    for k in _CAPACITY_KEYS:
        v = tags.get(k)
        if v is None:
            continue
        m = _NUM_RE.match(str(v))
        if m:
            x = float(m.group(1).replace(",", "."))
            if x > 0 and math.isfinite(x):
                return x
    return 1.0


# ------------------------------------------------------------------------------------------
# GeoDataFrame classification
# ------------------------------------------------------------------------------------------

def _clean_tags(t) -> dict:
    if isinstance(t, dict):
        if all(isinstance(v, str) for v in t.values()):
            return t
        return {str(k): _str(v) for k, v in t.items() if _str(v) is not None}
    if t is None:
        return {}
    if isinstance(t, float) and math.isnan(t):
        return {}
    if isinstance(t, str):
        try:
            d = json.loads(t) if t.strip() else {}
        except ValueError:
            return {}
        return _clean_tags(d) if isinstance(d, dict) else {}
    if isinstance(t, Mapping):
        return _clean_tags(dict(t))
    return {}


def _str(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _tag_dicts(features) -> tuple[list[dict], np.ndarray]:
    """The distinct tag dicts of ``features`` (cleaned) and each row's index into them.

    The reader shares one tag dict among every element with the same tags (a city's
    ``building=yes``): each distinct object is cleaned, matched and named once. Rows are told
    apart by object identity, which the ``tags`` column keeps alive meanwhile."""
    if "tags" in features.columns:
        raw = features["tags"].tolist()
        ids = np.fromiter(map(id, raw), dtype=np.uint64, count=len(raw))
        _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
        return [_clean_tags(raw[i]) for i in first.tolist()], inv.reshape(-1).astype(np.int64)
    # no tags column: every other column is a tag (as osmnx returns features)
    skip = {features.geometry.name, OSM_TYPE, OSM_ID, "id", "element", "element_type", "osmid"}
    cols = [c for c in features.columns if c not in skip]
    records = features[cols].to_dict("records")
    out = []
    for r in records:
        out.append({str(k): s for k, v in r.items() if (s := _str(v)) is not None})
    return out, np.arange(len(out), dtype=np.int64)


def _empty(crs):
    import geopandas as gpd

    df = pd.DataFrame({
        C.CATEGORY: pd.Series([], dtype=object), C.DIMENSION: pd.Series([], dtype=object),
        C.NAME: pd.Series([], dtype=object), OSM_TYPE: pd.Series([], dtype=object),
        OSM_ID: pd.Series([], dtype="int64"), C.CAPACITY: pd.Series([], dtype="float64"),
        AREA: pd.Series([], dtype="float64"),
    })
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _utm_crs(bounds) -> str:
    """The WGS-84 UTM zone of the centre of ``bounds`` (lon/lat); an equal-area world CRS when
    the bounds are not finite. (``estimate_utm_crs`` gives the same zone but queries the PROJ
    database, ~0.15 s.)"""
    x0, y0, x1, y1 = (float(b) for b in bounds)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return "EPSG:6933"
    lon, lat = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    if abs(lat) > 84:
        return "EPSG:6933"
    zone = min(60, max(1, int((lon + 180.0) // 6.0) + 1))
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def _areas(geoms, crs_in, crs) -> np.ndarray:
    """Area (m²) of each geometry; 0 for points and lines."""
    import geopandas as gpd
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype="float64")
    if len(geoms) == 0:
        return out
    types = shapely.get_type_id(geoms)
    poly = (types == 3) | (types == 6) | (types == 7)  # Polygon, MultiPolygon, GeometryCollection
    if not poly.any():
        return out
    gs = gpd.GeoSeries(geoms[poly], crs=crs_in or "EPSG:4326")
    if crs is None:
        if gs.crs is not None and gs.crs.is_projected:
            target = gs.crs
        else:
            target = _utm_crs(gs.total_bounds)
    else:
        target = crs
    out[poly] = gs.to_crs(target).area.to_numpy()
    return out


_TYPE_RANK = {"relation": 0, "way": 1, "node": 2}


def _find(parent: list[int], a: int) -> int:
    """Union-find root of ``a`` (with path halving)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _duplicates(df: pd.DataFrame, geoms: np.ndarray, in_crs, crs, dedupe_m: float) -> np.ndarray:
    """Rows to drop: the same named feature of one category mapped as node, way and/or
    relation (different OSM types, same name, touching or within ``dedupe_m`` metres). Of each
    such group the largest polygon (else relation, way, node) stays."""
    import geopandas as gpd
    import shapely

    drop = np.zeros(len(df), dtype=bool)
    if OSM_TYPE not in df or df[C.NAME].isna().all():
        return drop
    named = (df[C.NAME].notna() & df[OSM_TYPE].notna()).to_numpy()
    if not named.any():
        return drop
    key = (df[C.CATEGORY].astype(str) + "\x00" + df[C.NAME].astype(str).str.strip().str.casefold()).to_numpy()
    sub = pd.DataFrame({"key": key[named], "t": df[OSM_TYPE].to_numpy()[named]})
    multi = (sub.groupby("key")["t"].transform("nunique") > 1).to_numpy()
    cand = np.flatnonzero(named)[multi]
    if len(cand) == 0:
        return drop
    gs = gpd.GeoSeries(geoms[cand], crs=in_crs)
    target = crs if crs is not None else (gs.crs if gs.crs is not None and gs.crs.is_projected
                                          else _utm_crs(gs.total_bounds))
    metric = gs.to_crs(target).to_numpy()
    keys = key[cand]
    types = df[OSM_TYPE].to_numpy()[cand]
    area = df[AREA].to_numpy(float)[cand]
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_key[k].append(i)
    for members in by_key.values():
        parent = list(range(len(members)))
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if types[i] != types[j] and shapely.dwithin(metric[i], metric[j], dedupe_m):
                    parent[_find(parent, x)] = _find(parent, y)
        groups: dict[int, list[int]] = defaultdict(list)
        for x in range(len(members)):
            groups[_find(parent, x)].append(members[x])
        for g in groups.values():
            if len(g) < 2:
                continue
            best = min(g, key=lambda i: (-area[i], _TYPE_RANK.get(str(types[i]), 3)))
            for i in g:
                if i != best:
                    drop[cand[i]] = True
    return drop


#: railway values of a station's entrances (never merged into the station's area)
_ENTRANCES = frozenset({"subway_entrance", "train_station_entrance", "entrance"})

_NAME_NOISE = re.compile(r"[\W_]+", re.UNICODE)


def _name_key(name) -> str:
    """Name for comparison: NFKC, case-folded, without spaces and punctuation ("" if none)."""
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return ""
    return _NAME_NOISE.sub("", unicodedata.normalize("NFKC", str(name)).casefold())


def _nodes_in_areas(df: pd.DataFrame, geoms: np.ndarray, entrance=None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes that are an area of the same category mapped again: a point inside (or on) a
    polygon of its category when one name contains the other (normalised, :func:`_name_key`),
    or either has no name and the node is the area's only one of that category; never an
    entrance (``entrance``: a mask of rows; a subway entrance is where a station is entered).
    Returns the rows to drop and, for each, the row of the area that stays (the largest)."""
    import shapely

    none = np.zeros(0, dtype=np.int64)
    if OSM_TYPE not in df or len(df) < 2:
        return none, none
    kind = shapely.get_type_id(geoms)
    point = np.flatnonzero((kind == 0) & (True if entrance is None else ~np.asarray(entrance, dtype=bool)))
    poly = np.flatnonzero(np.isin(kind, (3, 6)))
    if not len(point) or not len(poly):
        return none, none
    cat = df[C.CATEGORY].to_numpy(dtype=object)
    pi, ai = shapely.STRtree(geoms[poly]).query(geoms[point], predicate="intersects")
    pi, ai = point[pi], poly[ai]
    same = cat[pi] == cat[ai]
    pi, ai = pi[same], ai[same]
    if not len(pi):
        return none, none
    names = df[C.NAME].to_numpy(dtype=object)
    keys = {i: _name_key(names[i]) for i in np.unique(np.r_[pi, ai]).tolist()}
    # a name missing says nothing when the area holds several nodes of its category (the
    # offices of an unnamed office building): then only names that agree merge
    alone = (np.bincount(ai, minlength=len(df)) == 1)[ai]
    ok = np.fromiter(((bool(keys[a]) and bool(keys[b]) and (keys[a] in keys[b] or keys[b] in keys[a]))
                      or (solo and not (keys[a] and keys[b]))
                      for a, b, solo in zip(pi.tolist(), ai.tolist(), alone.tolist())),
                     dtype=bool, count=len(pi))
    pi, ai = pi[ok], ai[ok]
    if not len(pi):
        return none, none
    area = df[AREA].to_numpy(float)
    order = np.lexsort((ai, -area[ai], pi))           # per node, its largest area first
    pi, ai = pi[order], ai[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    return pi[first], ai[first]


def classify_features(features, profile: Profile | str = "default", crs=None, dedupe_m: float | None = 30.0):
    """One row per (feature, category) match of ``features`` under ``profile``.

    ``features``: GeoDataFrame with ``osm_type``, ``osm_id``, ``tags`` (dict per row; a JSON
    string is accepted; without a ``tags`` column every other column is read as a tag) and
    ``geometry`` (EPSG:4326). ``crs``: metric CRS for areas; ``None`` picks the UTM zone.
    ``dedupe_m``: the same named feature of one category mapped as node, way and/or relation
    within this many metres is kept once (the polygon), and so is a node inside an area of its
    category when one name contains the other or, the node alone there, either has no name;
    ``None`` keeps every row.

    Returns a GeoDataFrame with columns ``category``, ``dimension``, ``name``, ``osm_type``,
    ``osm_id``, ``capacity``, ``area_m2`` and the original ``geometry`` (same CRS as the input),
    ordered by feature, then by the category's position in the profile.
    """
    import geopandas as gpd

    profile = load_profile(profile)
    if not isinstance(features, gpd.GeoDataFrame):
        if isinstance(features, pd.DataFrame) and "geometry" in features.columns:
            features = gpd.GeoDataFrame(features, geometry="geometry", crs="EPSG:4326")
        else:
            raise TypeError("classify_features expects a GeoDataFrame with osm_type, osm_id, "
                            "tags and geometry columns")
    in_crs = features.crs if features.crs is not None else "EPSG:4326"
    n = len(features)
    if n == 0:
        return _empty(in_crs)
    m = _matcher(profile)
    tag_list, tag_of = _tag_dicts(features)      # distinct tag dicts; row -> its dict

    # each distinct dict matched once; rows in feature order, then category order
    hits_u = m.match_all(tag_list)
    n_hits_u = np.fromiter(map(len, hits_u), dtype=np.int64, count=len(hits_u))
    n_hits = n_hits_u[tag_of]
    total = int(n_hits.sum())
    if total == 0:
        return _empty(in_crs)
    hit_ptr = np.zeros(len(hits_u) + 1, dtype=np.int64)
    np.cumsum(n_hits_u, out=hit_ptr[1:])
    flat = np.fromiter((ci for hits in hits_u for ci in hits), dtype=np.int64, count=int(hit_ptr[-1]))
    feat_idx = np.repeat(np.arange(n, dtype=np.int64), n_hits)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n_hits) - n_hits, n_hits)
    cat_idx = flat[hit_ptr[tag_of[feat_idx]] + within]
    uniq = np.unique(feat_idx)
    geoms_all = features.geometry.to_numpy()
    area_u = _areas(geoms_all[uniq], in_crs, crs)
    area = area_u[np.searchsorted(uniq, feat_idx)]

    min_area = np.asarray(m.min_area, dtype="float64")[cat_idx]
    keep = ~((min_area > 0) & (area < min_area))
    feat_idx, cat_idx, area = feat_idx[keep], cat_idx[keep], area[keep]
    if len(feat_idx) == 0:
        return _empty(in_crs)

    cats = m.cats
    cat_ids = np.asarray([c.id for c in cats], dtype=object)
    dim_ids = np.asarray([c.dimension for c in cats], dtype=object)
    # name and capacity of each distinct tag dict that matched
    dict_idx = tag_of[feat_idx]
    used, row_of = np.unique(dict_idx, return_inverse=True)
    names_u = np.asarray([best_name(tag_list[i]) for i in used.tolist()], dtype=object)
    caps_u = np.fromiter((capacity_of(tag_list[i]) for i in used.tolist()), dtype="float64", count=len(used))

    if OSM_TYPE in features.columns:
        osm_type = features[OSM_TYPE].to_numpy(dtype=object)[feat_idx]
    else:
        osm_type = np.full(len(feat_idx), None, dtype=object)
    if OSM_ID in features.columns:
        osm_id = pd.to_numeric(features[OSM_ID], errors="coerce").fillna(-1).to_numpy(dtype="int64")[feat_idx]
    else:
        osm_id = np.full(len(feat_idx), -1, dtype="int64")

    df = pd.DataFrame({
        C.CATEGORY: cat_ids[cat_idx],
        C.DIMENSION: dim_ids[cat_idx],
        C.NAME: names_u[row_of],
        OSM_TYPE: osm_type,
        OSM_ID: osm_id,
        C.CAPACITY: caps_u[row_of],
        AREA: area.astype("float64"),
    })
    geoms = geoms_all[feat_idx]
    merged = 0
    if dedupe_m is not None and len(df) > 1:
        drop = _duplicates(df, geoms, in_crs, crs, float(dedupe_m))
        door = np.fromiter((bool(t.get("entrance")) or t.get("railway") in _ENTRANCES
                            for t in (tag_list[i] for i in dict_idx.tolist())), dtype=bool, count=len(df))
        node, into = _nodes_in_areas(df, geoms, door)
        keep_area = ~drop[into]                 # (an area itself merged away takes none)
        node, into = node[keep_area], into[keep_area]
        if len(node):
            names = df[C.NAME].to_numpy(dtype=object).copy()
            unnamed = pd.isna(names[into]) & pd.notna(names[node])
            names[into[unnamed]] = names[node[unnamed]]       # the area takes the node's name
            df[C.NAME] = names
            drop[node] = True
        merged = int(drop.sum())
        if merged:
            df = df[~drop].reset_index(drop=True)
            geoms = geoms[~drop]
    out = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=in_crs), crs=in_crs)
    out.attrs["duplicates_merged"] = merged
    return out


def classify_tags(tag_dicts: Iterable[Mapping[str, str]], profile: Profile | str = "default") -> list[list[str]]:
    """:func:`match_tags` for many tag dicts (no areas)."""
    profile = load_profile(profile)
    m = _matcher(profile)
    ids = [c.id for c in m.cats]
    return [[ids[ci] for ci in hits] for hits in m.match_all(_clean_tags(t) for t in tag_dicts)]
