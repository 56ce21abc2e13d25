"""Batch runs on Dask: one config file, many districts, one combined table.

A config (TOML or YAML) names the OSM sources, the districts and the analysis settings::

    out = "out/batch"                 # output folder, relative to the config file
    profile = "default"               # or: standard = "gb50180-2018"
    speed = 4.0                       # walking speed, km/h
    lang = "en"                       # zh or en
    basemap = "osm"                   # osm, cartodb, blank, amap (GCJ-02), tianditu (TIANDITU_KEY)
    offline = true                    # maps work with no network (Leaflet inlined); false: CDN
    resources = true                  # per district: the idle-site list (lifecircle resources)
    sites = "survey.csv"              #   with surveyed sites (implies resources); sites_crs = "gcj02"
    check = "gb50180-2018"            # per district: lifecircle check (true = gb50180-2018); min_share

    [settings]                        # optional: any lifecircle.settings.Settings field
    max_snap_m = 200

    [sources]
    city = "extract.osm.pbf"          # a file (relative to the config), or "place:Some place",
    # city = { sample = "helsinki" }  # or the embedded offline sample

    [[districts]]                     # one district per feature of a file ...
    file = "districts.geojson"
    name_column = "name"
    source = "city"                   # optional when there is one source

    [[districts]]                     # ... or one file per district (features = communities)
    name = "Old town"
    file = "old_town.gpkg"

    [[districts]]                     # ... or a bbox inline (west, south, east, north)
    name = "Harbour"
    bbox = [24.93, 60.16, 24.95, 60.17]
    check = false                     # resources / sites / sites_crs / check / min_share per entry

:func:`run` reads each source once (as a Dask task), lets every district task clip it, runs
:func:`lifecircle.pipeline.analyze` per district on a Dask cluster (a LocalCluster of
processes by default, or any scheduler), records failures without stopping the others, skips
districts already done with the same config hash on ``resume=True``, and writes:

* ``<out>/<district>/`` — ``lifecircle.gpkg``, ``summary.csv``, ``meta.json``,
  ``network.npz``, ``map.html`` and ``batch.json`` (the config hash, the maps), and with the
  ``resources``/``check`` steps (:class:`DistrictSteps`) the files of ``lifecircle resources``
  (``resources_map.html`` …) and ``lifecircle check`` (``compliance_map.html`` …), all written
  atomically (a failing step fails its district);
* ``<out>/districts.csv`` / ``districts.xlsx`` / ``districts.gpkg`` — one row per district
  (config order) with ``rank`` on the with-data figures: ``all6_15`` (all dimensions with data
  covered within 15 min) then ``score_mean``; ``all6_15_allcat`` / ``score_mean_allcat`` count
  categories without data as no access, beside them. ``gap_1..3`` are the lowest-covered
  categories *with data* (``gap_<k>_kind``: access gap, or a surveyed category's real gap);
  categories with no facility in the data are listed apart in ``no_data`` (never as gaps).
  districts.csv and districts.gpkg are the same in every language (English names and kinds,
  an ``attribution`` column; the GeoPackage an ``about`` table); districts.xlsx, index.html
  and :attr:`BatchReport.table` are in the batch's language;
* ``<out>/failures.csv`` (``error`` in English and ``error_zh``, whatever the language) and
  ``<out>/index.html`` — an overview map linking every map of every district (relative links;
  ``districts.csv`` gives the same paths in ``map``, ``resources_map``, ``compliance_map``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import signal
import threading
import time
import tomllib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import numba
import numpy as np
import pandas as pd
import shapely

from lifecircle import __version__, i18n
from lifecircle import columns as col
from lifecircle.analyses.resources import build_inventory
from lifecircle.analyses.standards import DEFAULT_MIN_SHARE, check, resolve_standard
from lifecircle.core.profiles import DIMENSION_NAMES, load_profile
from lifecircle.errors import BoundaryError, ConfigError, LifecircleError
from lifecircle.i18n import LABELS, label
from lifecircle.io.boundary import read_boundary
from lifecircle.io.chinacoords import datum_zh, normalize_crs
from lifecircle.io.crs import utm_crs
from lifecircle.io.outputs import GPKG, META, NETWORK, SUMMARY, atomic_dir, ensure_out_dir, read_summary, sibling_name, write_outputs
from lifecircle.io.sources import ATTRIBUTION, SAMPLES, WGS84, combine, embedded_sample, read_osm, write_about_layer
from lifecircle.pipeline import analyze
from lifecircle.render.deliverables import COMPLIANCE_MAP, RESOURCES_MAP, write_compliance, write_resources
from lifecircle.render.maps import (
    BASEMAPS,
    SCORE_COLOURS,
    Legend,
    _ramp_html,
    _tiles,
    add_background,
    base_map,
    map_controls,
    result_map,
    save_map,
    to_display,
)
from lifecircle.result import load_result
from lifecircle.settings import DEFAULTS, Settings, thread_cap
from lifecircle.untrusted import RawHTML, csv_safe, escape_html, shown, xlsx_frame, xlsx_safe

DISTRICT_META = "batch.json"
TABLE_CSV = "districts.csv"
TABLE_XLSX = "districts.xlsx"
TABLE_GPKG = "districts.gpkg"
FAILURES_CSV = "failures.csv"
INDEX_HTML = "index.html"
RUN_META = "batch_run.json"

_BASEMAP_ALIASES = {"openstreetmap": "osm", "cartodb positron": "cartodb", "cartodbpositron": "cartodb",
                    "none": "blank"}
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.xml", ".xml", ".osm.bz2", ".bz2")
#: per-district steps besides the analysis: set at the top level (every district) or in a
#: [[districts]] entry (that entry's districts); see :class:`DistrictSteps`
STEP_KEYS = {"resources", "sites", "sites_crs", "check", "min_share"}
TOP_KEYS = {"out", "profile", "standard", "speed", "lang", "basemap", "offline", "settings", "sources",
            "districts", "name"} | STEP_KEYS
DISTRICT_KEYS = {"name", "file", "name_column", "bbox", "source"} | STEP_KEYS
#: the planning map every district has; resources and check add theirs
MAP_FILE = "map.html"
#: districts.csv columns holding each district's maps (paths relative to the batch folder)
MAP_COLUMNS = {MAP_FILE: "map", RESOURCES_MAP: "resources_map", COMPLIANCE_MAP: "compliance_map"}
SOURCE_KEYS = {"path", "place", "sample"}


# --------------------------------------------------------------------------------------------
# config


@dataclass
class SourceSpec:
    key: str
    kind: str          # "file", "place" or "sample"
    value: str         # absolute path, place name or sample name

    def fingerprint(self) -> str:
        """Content hash of a file source (so a changed extract invalidates resumed results)."""
        if self.kind == "sample":

            return _file_sha(Path(embedded_sample(self.value)))
        if self.kind == "file" and Path(self.value).exists():
            return _file_sha(Path(self.value))
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class DistrictSteps:
    """What a district runs besides the analysis, into its own folder, through the functions
    of the matching commands: ``resources`` (the idle-site list of ``lifecircle resources``,
    with the surveyed ``sites`` file — one file may cover every district, each keeps the sites
    in its area — in datum ``sites_crs``) and ``check`` (the standard of ``lifecircle check``,
    ``min_share`` its pass share); None: not run."""

    resources: bool = False
    sites: str | None = None          # absolute path
    sites_crs: str = "wgs84"
    check: str | None = None          # canonical standard key
    min_share: float = DEFAULT_MIN_SHARE

    def maps(self) -> list[str]:
        """The map files the district's folder holds."""
        return [MAP_FILE] + ([RESOURCES_MAP] if self.resources else []) + \
            ([COMPLIANCE_MAP] if self.check else [])

    def params(self) -> dict | None:
        """What the steps add to the config hash (None when there are none, so a config
        without steps keeps its hash)."""
        if not self.resources and not self.check:
            return None
        return {"resources": self.resources, "sites_crs": self.sites_crs, "check": self.check,
                "min_share": self.min_share,
                "sites": _file_sha(Path(self.sites)) if self.sites and Path(self.sites).is_file() else self.sites}


@dataclass
class DistrictSpec:
    name: str
    source: str                       # key in BatchConfig.sources
    boundary: gpd.GeoDataFrame        # WGS-84, with a 'community' column
    origin: str                       # where it came from in the config, for messages
    slug: str = ""
    index: int = 0                    # position of its [[districts]] entry (0-based)
    steps: DistrictSteps = field(default_factory=DistrictSteps)

    @property
    def geometry(self):
        return shapely.union_all(self.boundary.geometry.to_numpy())


@dataclass
class BatchConfig:
    path: Path
    out_dir: Path
    sources: dict[str, SourceSpec]
    districts: list[DistrictSpec]
    profile: str = "default"
    speed: float | None = None
    lang: str = "en"
    basemap: str = "osm"
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    offline: bool = True

    def analysis_params(self) -> dict:
        """Everything besides the district and its source that changes a district's outputs."""
        prof = load_profile(self.profile)
        prof_path = getattr(prof, "path", None)
        prof_id = _file_sha(Path(prof_path)) if prof_path and Path(prof_path).exists() else str(self.profile)
        return {"lifecircle": __version__, "profile": str(self.profile), "profile_sha": prof_id,
                "speed": self.speed, "lang": self.lang, "basemap": self.basemap, "offline": self.offline,
                "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(self.settings.items())}}


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Lines:
    """Line numbers of keys in a TOML or YAML text, by key path (``("districts", 2, "bbox")``)."""

    def __init__(self, lines: dict[tuple, int]):
        self.lines = lines

    def __call__(self, *path) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    @classmethod
    def toml(cls, text: str) -> _Lines:
        lines: dict[tuple, int] = {}
        current: tuple = ()
        counts: dict[tuple, int] = {}
        key_re = re.compile(r'^\s*("[^"]*"|\'[^\']*\'|[A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-"\']+)*)\s*=')

        def split(name: str) -> tuple:
            return tuple(p.strip().strip('"').strip("'") for p in name.split("."))

        for no, raw in enumerate(text.splitlines(), start=1):
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            if s.startswith("[["):
                name = split(s[2:s.index("]]")])
                n = counts.get(name, 0)
                counts[name] = n + 1
                current = name + (n,)
                lines.setdefault(name, no)
                lines[current] = no
                continue
            if s.startswith("["):
                current = split(s[1:s.index("]")])
                lines.setdefault(current, no)
                continue
            m = key_re.match(raw)
            if m:
                lines.setdefault(current + split(m.group(1)), no)
        return cls(lines)

    @classmethod
    def yaml(cls, text: str) -> _Lines:
        import yaml

        lines: dict[tuple, int] = {}

        def walk(node, path):
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    p = path + (str(k.value),)
                    lines.setdefault(p, k.start_mark.line + 1)
                    walk(v, p)
            elif isinstance(node, yaml.SequenceNode):
                for i, v in enumerate(node.value):
                    lines.setdefault(path + (i,), v.start_mark.line + 1)
                    walk(v, path + (i,))

        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            walk(root, ())
        return cls(lines)


def _parse_text(path: Path, text: str) -> tuple[dict, _Lines]:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise ConfigError(path, f"not valid TOML ({exc})", line=int(m.group(1)) if m else None,
                              zh=f"不是有效的 TOML（{exc}）") from None
        return data, _Lines.toml(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(path, f"not valid YAML ({problem})",
                              line=mark.line + 1 if mark is not None else None,
                              zh=f"不是有效的 YAML（{problem}）") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(path, "must be a mapping of fields (out, sources, districts, ...)", line=1,
                              zh="须为字段映射（out、sources、districts …）")
        return data, _Lines.yaml(text)
    raise ConfigError(path, "unknown config type: expected .toml, .yaml or .yml",
                      zh="未知的配置文件类型：应为 .toml、.yaml 或 .yml")


def error_text(exc: BaseException, lang: str = "en") -> str:
    """A district's failure as people read it: the error's message in ``lang`` (Chinese for
    lifecircle's own errors), else ``Type: message`` (an unexpected error: its type helps)."""
    if isinstance(exc, LifecircleError):
        return exc.message(lang)
    return f"{type(exc).__name__}: {exc}"


def step_label(step: str, lang: str = "en") -> str:
    """A district's step (resources, check) as named in a failure, in ``lang``."""
    return {"resources": "闲置用地清单", "check": "标准核查"}.get(step, step) if lang == "zh" else step


def _failure_texts(exc: BaseException, step: str = "analysis") -> dict[str, str]:
    """A district's failure in both languages (``{"en": …, "zh": …}``), the step named unless
    it is the analysis: the report and districts.xlsx show the batch's language, failures.csv
    both, the same whatever the language."""
    texts = {}
    for lang in ("en", "zh"):
        where = f"{step_label(step, lang)}{'：' if lang == 'zh' else ': '}" if step != "analysis" else ""
        texts[lang] = f"{where}{error_text(exc, lang)}"
    return texts


#: A district folder's name is at most this many bytes (file systems take 255; the rest is
#: room for a ``_2`` suffix of a repeated name).
SLUG_BYTES = 200


def _slug(name: str) -> str:
    """A district's folder name: its name with what no file name may hold replaced; a name too
    long for a file name (100 Chinese characters are 300 bytes) is cut at a character, with a
    hash of the whole name after it so that two long names alike stay apart.

    >>> _slug("Kamppi / Kluuvi"), len(_slug("区" * 100).encode()) <= 200
    ('Kamppi_Kluuvi', True)
    """
    s = re.sub(r"[^\w\-]+", "_", name.strip(), flags=re.UNICODE).strip("_.")
    s = s or "district"
    raw = s.encode("utf-8")
    if len(raw) <= SLUG_BYTES:
        return s
    digest = hashlib.sha1(raw).hexdigest()[:8]
    return raw[:SLUG_BYTES - 9].decode("utf-8", errors="ignore") + "~" + digest


# every field checked where it stands, so each message can name its field and line
def config_lang(path) -> str | None:
    """The ``lang`` a batch config asks for, read from the file even when the config is not
    valid otherwise (its errors are then said in that language); None when the file cannot be
    parsed or names no language lifecircle speaks."""
    path = Path(path)
    try:
        data, _ = _parse_text(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, LifecircleError):
        return None
    lang = data.get("lang") if isinstance(data, dict) else None
    return lang if lang in ("zh", "en") else None


def load_config(path) -> BatchConfig:  # noqa: C901
    """Read and validate a batch config (TOML or YAML). Paths are relative to the file.

    Raises :class:`~lifecircle.errors.ConfigError` naming the field and its line.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(path, "file not found", zh="找不到文件")
    if path.is_dir():
        raise ConfigError(path, "is a folder, not a config file", zh="是文件夹，不是配置文件")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read ({exc})", zh=f"无法读取（{exc}）") from None
    data, line = _parse_text(path, text)
    base = path.resolve().parent

    def bad(problem: str, *fpath, zh: str) -> ConfigError:
        name = ".".join(str(p) if not isinstance(p, int) else f"[{p + 1}]" for p in fpath).replace(".[", "[")
        return ConfigError(path, problem, field=name or None, line=line(*fpath), zh=zh)

    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise bad(f"unknown field; known fields: {', '.join(sorted(TOP_KEYS))}", unknown[0],
                  zh=f"未知的字段；可用字段：{', '.join(sorted(TOP_KEYS))}")

    def text_field(key: str, default: str | None, *, where=()) -> str | None:
        obj = data
        for p in where:
            obj = obj[p]
        v = obj.get(key, default)
        if v is not None and not isinstance(v, str):
            raise bad(f"must be text, got {v!r}", *where, key, zh=f"须为文本，实为 {v!r}")
        return v

    out = text_field("out", "batch_out")
    if not out.strip():
        raise bad("must not be empty", "out", zh="不能为空")
    out_dir = (base / out).resolve()

    if "profile" in data and "standard" in data:
        raise bad("give either 'profile' or 'standard', not both", "standard",
                  zh="'profile' 和 'standard' 只能给一个")
    profile_key = "standard" if "standard" in data else "profile"
    profile = text_field(profile_key, "default")

    prof_arg = profile
    if profile.endswith((".yaml", ".yml")) and not Path(profile).is_absolute():
        prof_arg = str(base / profile)
    try:
        loaded_profile = load_profile(prof_arg)
    except LifecircleError as exc:
        raise bad(f"{exc}", profile_key, zh=exc.message("zh")) from None

    speed = data.get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (0.5 <= speed <= 20):
            raise bad(f"walking speed must be a number of km/h between 0.5 and 20, got {speed!r}", "speed",
                      zh=f"步行速度须为 0.5 到 20 之间的 km/h 数值，实为 {speed!r}")
        speed = float(speed)

    lang = text_field("lang", "en")
    if lang not in ("zh", "en"):
        raise bad(f"must be 'zh' or 'en', got {lang!r}", "lang", zh=f"须为 'zh' 或 'en'，实为 {lang!r}")

    basemap = text_field("basemap", "osm")
    basemap = _BASEMAP_ALIASES.get(basemap.lower(), basemap.lower())
    if basemap not in BASEMAPS:
        raise bad(f"unknown basemap {basemap!r}; choose one of: {', '.join(BASEMAPS)}", "basemap",
                  zh=f"未知的底图 {basemap!r}；可选：{', '.join(BASEMAPS)}")
    try:

        _tiles(basemap, "")
    except LifecircleError as exc:
        raise bad(str(exc), "basemap", zh=exc.message("zh")) from None
    offline = data.get("offline", True)
    if not isinstance(offline, bool):
        raise bad(f"must be true or false, got {offline!r}", "offline", zh=f"须为 true 或 false，实为 {offline!r}")

    settings = data.get("settings", {}) or {}
    if not isinstance(settings, dict):
        raise bad("must be a table of setting = value", "settings", zh="须为 设置 = 值 的表")

    known = {f.name: f for f in fields(Settings)}
    for k, v in settings.items():
        if k not in known:
            raise bad("unknown setting; see lifecircle.settings.Settings for the list", "settings", k,
                      zh="未知的设置；可用设置见 lifecircle.settings.Settings")
        default = getattr(DEFAULTS, k)
        if k == "complete":   # categories declared surveyed: ids of the profile
            ids = [x.strip() for x in v.split(",")] if isinstance(v, str) else v
            if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
                raise bad(f"must be a list of category ids, got {v!r}", "settings", k,
                          zh=f"须为类别 id 列表，实为 {v!r}")
            unknown = [x for x in ids if x not in loaded_profile]
            if unknown:
                raise bad(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                          f"(profile {loaded_profile.name})", "settings", k,
                          zh=f"未知的类别 {', '.join(unknown)}（指标体系 {loaded_profile.name}）")
            settings[k] = tuple(ids)
            continue
        if k == "metrics":    # opt-in per-category metrics: names, a list or "a,b"
            try:
                settings[k] = DEFAULTS.with_(metrics=v).metrics
            except LifecircleError as exc:
                raise bad(f"{exc}", "settings", k, zh=exc.message("zh")) from None
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(v, bool) or not isinstance(v, (int, float))):
            raise bad(f"must be a number, got {v!r}", "settings", k, zh=f"须为数字，实为 {v!r}")
        if isinstance(default, tuple):
            if not isinstance(v, list) or not all(isinstance(x, (int, float)) for x in v):
                raise bad(f"must be a list of numbers, got {v!r}", "settings", k, zh=f"须为数字列表，实为 {v!r}")
            settings[k] = tuple(v)
    for k in ("walk_speed_kmh", "lang"):
        if k in settings:
            top = 'speed' if k == 'walk_speed_kmh' else 'lang'
            raise bad(f"set '{top}' at the top level instead", "settings", k, zh=f"请在顶层设置 '{top}'")
    # the values as Settings checks them (ranges, thresholds), now, not in the first district;
    # refused together (sfca_minutes = 45 is fine beside max_minutes = 60), then named by the
    # field and line of the one that fails alone (the section where none does)
    try:
        DEFAULTS.with_(**settings)
    except LifecircleError as exc:
        for k, v in settings.items():
            try:
                DEFAULTS.with_(**{k: v})
            except LifecircleError as one:
                raise bad(f"{one}", "settings", k, zh=one.message("zh")) from None
        raise bad(f"{exc}", "settings", zh=exc.message("zh")) from None

    # sources
    raw_sources = data.get("sources")
    if not raw_sources:
        raise bad("at least one source is needed, e.g. [sources] city = \"extract.osm.pbf\"", "sources",
                  zh="至少需要一个数据来源，如 [sources] city = \"extract.osm.pbf\"")
    if not isinstance(raw_sources, dict):
        raise bad("must be a table of name = file, place or { sample = \"helsinki\" }", "sources",
                  zh="须为 名称 = 文件、地名或 { sample = \"helsinki\" } 的表")
    sources: dict[str, SourceSpec] = {}
    for key, v in raw_sources.items():
        if isinstance(v, str):   # a place name must say so: a mistyped path is never geocoded
            v = {"place": v[6:].strip()} if v[:6].lower() == "place:" else {"path": v}
        if not isinstance(v, dict) or len(set(v) & SOURCE_KEYS) != 1 or set(v) - SOURCE_KEYS:
            raise bad("must be a file path, a place name, or a table with one of path, place, sample",
                      "sources", key, zh="须为文件路径、地名，或含 path、place、sample 之一的表")
        kind = next(iter(set(v) & SOURCE_KEYS))
        value = v[kind]
        if not isinstance(value, str) or not value.strip():
            raise bad(f"'{kind}' must be non-empty text", "sources", key, zh=f"'{kind}' 须为非空文本")
        if kind == "path":
            p = (base / value).resolve()
            if not p.exists():
                raise bad(f"file not found: {p}", "sources", key, zh=f"找不到文件：{p}")
            if not p.name.lower().endswith(OSM_SUFFIXES):
                raise bad(f"unknown file type {p.name}: expected .osm.pbf, .osm, .osm.xml or .osm.bz2",
                          "sources", key, zh=f"未知的文件类型 {p.name}：应为 .osm.pbf、.osm、.osm.xml 或 .osm.bz2")
            sources[key] = SourceSpec(key, "file", str(p))
        elif kind == "sample":
            if value.lower() not in SAMPLES:
                raise bad(f"unknown sample {value!r}; available: {', '.join(SAMPLES)}", "sources", key,
                          zh=f"未知的示例数据 {value!r}；可用：{', '.join(SAMPLES)}")
            sources[key] = SourceSpec(key, "sample", value.lower())
        else:
            sources[key] = SourceSpec(key, "place", value)

    def steps_of(obj: dict, where: tuple, default: DistrictSteps) -> DistrictSteps:
        """The steps of ``obj`` (the config or a district entry), over ``default``."""
        kw = {}
        if "resources" in obj:
            if not isinstance(obj["resources"], bool):
                raise bad(f"must be true or false, got {obj['resources']!r}", *where, "resources",
                          zh=f"须为 true 或 false，实为 {obj['resources']!r}")
            kw["resources"] = obj["resources"]
        if "sites" in obj:
            v = obj["sites"]
            if not isinstance(v, str) or not v.strip():
                raise bad(f"must be the path of a site file, got {v!r}", *where, "sites",
                          zh=f"须为用地文件的路径，实为 {v!r}")
            sp = (base / v).resolve()
            if sp.is_dir():
                raise bad(f"{sp} is a folder, not a site file", *where, "sites", zh=f"{sp} 是文件夹，不是用地文件")
            if not sp.is_file():
                raise bad(f"file not found: {sp}", *where, "sites", zh=f"找不到文件：{sp}")

            if obj.get("resources") is False:
                raise bad("surveyed sites need resources = true", *where, "sites",
                          zh="提供调查用地需要 resources = true")
            kw["sites"], kw["resources"] = str(sp), True
        if "sites_crs" in obj:
            try:
                kw["sites_crs"] = normalize_crs(obj["sites_crs"])
            except ValueError as exc:
                raise bad(str(exc), *where, "sites_crs",
                          zh=datum_zh(obj['sites_crs'])) from None
        if "check" in obj:
            v = obj["check"]
            if v is True:
                v = "gb50180-2018"
            if v is False:
                kw["check"] = None
            elif not isinstance(v, str):
                raise bad(f"must be true, false or a standard (gb50180-2018, tdt1062-2021), got {v!r}",
                          *where, "check", zh=f"须为 true、false 或标准（gb50180-2018、tdt1062-2021），实为 {v!r}")
            else:
                try:
                    kw["check"] = resolve_standard(v)
                except LifecircleError as exc:
                    raise bad(str(exc), *where, "check", zh=exc.message("zh")) from None
        if "min_share" in obj:
            v = obj["min_share"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v <= 1):
                raise bad(f"must be a share of residents between 0 and 1, got {v!r}", *where, "min_share",
                          zh=f"须为 0 到 1 之间的居民比例，实为 {v!r}")
            kw["min_share"] = float(v)
        merged = {**default.__dict__, **kw}
        if not merged["resources"]:      # a district that opts out of resources uses no sites file
            merged["sites"] = None        # (nor is its hash changed by one)
        return DistrictSteps(**merged)

    top_steps = steps_of(data, (), DistrictSteps())

    # districts
    raw = data.get("districts")
    if not raw:
        raise bad("at least one district is needed ([[districts]] with file or bbox)", "districts",
                  zh="至少需要一个区域（带 file 或 bbox 的 [[districts]]）")
    if not isinstance(raw, list):
        raise bad("must be a list of tables ([[districts]] in TOML, a '- ' list in YAML)", "districts",
                  zh="须为表的列表（TOML 中写 [[districts]]，YAML 中写 '- ' 列表）")
    districts: list[DistrictSpec] = []

    for i, d in enumerate(raw):
        where = ("districts", i)
        if not isinstance(d, dict):
            raise bad("must be a table with file or bbox", *where, zh="须为含 file 或 bbox 的表")
        extra = sorted(set(d) - DISTRICT_KEYS)
        if extra:
            raise bad(f"unknown field; known: {', '.join(sorted(DISTRICT_KEYS))}", *where, extra[0],
                      zh=f"未知的字段；可用：{', '.join(sorted(DISTRICT_KEYS))}")
        steps = steps_of(d, where, top_steps)
        src = d.get("source")
        if src is None:
            if len(sources) != 1:
                raise bad(f"name the source (one of: {', '.join(sources)})", *where,
                          zh=f"请指明数据来源（{', '.join(sources)} 之一）")
            src = next(iter(sources))
        elif src not in sources:
            raise bad(f"unknown source {src!r}; sources: {', '.join(sources)}", *where, "source",
                      zh=f"未知的数据来源 {src!r}；可用：{', '.join(sources)}")
        name = d.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise bad("must be non-empty text", *where, "name", zh="须为非空文本")
        if ("file" in d) == ("bbox" in d):
            raise bad("give exactly one of 'file' or 'bbox'", *where, zh="'file' 和 'bbox' 须且只能给一个")
        if "bbox" in d:
            bb = d["bbox"]
            if not (isinstance(bb, list) and len(bb) == 4 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in bb)):
                raise bad(f"must be [west, south, east, north] in degrees, got {bb!r}", *where, "bbox",
                          zh=f"须为以度计的 [西, 南, 东, 北]，实为 {bb!r}")
            w, s, e, n = map(float, bb)
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise bad(f"must be [west, south, east, north] with west < east and south < north "
                          f"in degrees, got {bb!r}", *where, "bbox",
                          zh=f"须为以度计的 [西, 南, 东, 北]，且西 < 东、南 < 北，实为 {bb!r}")
            if name is None:
                raise bad("a bbox district needs a 'name'", *where, "bbox", zh="用 bbox 给出的区域需要 'name'")
            gdf = gpd.GeoDataFrame({col.COMMUNITY: [name]}, geometry=[shapely.box(w, s, e, n)], crs=WGS84)
            districts.append(DistrictSpec(name, src, gdf, f"districts[{i + 1}]", index=i, steps=steps))
            continue
        f = d["file"]
        if not isinstance(f, str):
            raise bad("must be a file path", *where, "file", zh="须为文件路径")
        fp = (base / f).resolve()
        ncol = d.get("name_column")
        if ncol is not None and not isinstance(ncol, str):
            raise bad("must be text", *where, "name_column", zh="须为文本")
        try:
            gdf = read_boundary(fp, ncol)
        except LifecircleError as exc:
            raise bad(str(exc), *where, "name_column" if ncol and "column" in str(exc) else "file",
                      zh=exc.message("zh")) from None
        if name is not None:      # one district; the file's features are its communities
            districts.append(DistrictSpec(name, src, gdf.reset_index(drop=True), f"districts[{i + 1}]",
                                          index=i, steps=steps))
        else:                     # one district per feature
            for j in range(len(gdf)):
                part = gdf.iloc[[j]].reset_index(drop=True)
                label_ = part[col.COMMUNITY].iloc[0]
                if label_ is None or (isinstance(label_, float) and label_ != label_) or not str(label_).strip():
                    raise bad(f"feature {j + 1} of {f} has no name (column {ncol or 'name'!r} is empty): "
                              "every district needs one", *where, "name_column" if ncol else "file",
                              zh=f"{f} 的第 {j + 1} 个要素没有名称（{ncol or 'name'!r} 列为空）：每个区域都需要名称")
                districts.append(DistrictSpec(str(label_), src, part,
                                              f"districts[{i + 1}] feature {j + 1}", index=i, steps=steps))
    seen: dict[str, str] = {}
    slugs: dict[str, str] = {}
    for ds in districts:
        if ds.name in seen:
            raise bad(f"district name {ds.name!r} is used twice ({seen[ds.name]} and {ds.origin}); "
                      "names must be unique", "districts", ds.index,
                      "name" if "name" in raw[ds.index] else "name_column",
                      zh=f"区域名称 {ds.name!r} 用了两次（{seen[ds.name]} 和 {ds.origin}）；名称须唯一")
        seen[ds.name] = ds.origin
        slug = _slug(ds.name)
        k = 2
        while slug.lower() in slugs:
            slug = f"{_slug(ds.name)}_{k}"
            k += 1
        slugs[slug.lower()] = ds.name
        ds.slug = slug
    return BatchConfig(path.resolve(), out_dir, sources, districts, prof_arg, speed, lang, basemap,
                       dict(settings), text_field("name", path.stem) or path.stem, offline)


# --------------------------------------------------------------------------------------------
# hashing and resume


def district_hash(cfg: BatchConfig, ds: DistrictSpec, params: dict | None = None,
                  source_fp: str | None = None) -> str:
    """SHA-256 of everything that determines a district's outputs."""
    params = params if params is not None else cfg.analysis_params()
    source_fp = source_fp if source_fp is not None else cfg.sources[ds.source].fingerprint()
    b = ds.boundary
    payload = {"params": params, "source": source_fp, "name": ds.name,
               "communities": [str(x) for x in b[col.COMMUNITY]],
               "geometry": [shapely.to_wkt(g, rounding_precision=7) for g in b.geometry]}
    steps = ds.steps.params()
    if steps is not None:
        payload["steps"] = steps
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _done(folder: Path, digest: str, maps=(MAP_FILE,)) -> bool:
    meta = folder / DISTRICT_META
    if not meta.exists():
        return False
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False

    return info.get("config_hash") == digest and all(
        (folder / n).exists() for n in (GPKG, SUMMARY, META, NETWORK, *maps))


# --------------------------------------------------------------------------------------------
# worker side


def _one_thread(task):
    """``task`` run on one thread of its own, as a batch's Dask task: the districts side by
    side are the parallelism, and more threads per task would only take turns on the cores.
    A new LocalCluster's worker processes also get ``LIFECIRCLE_THREADS=1`` and
    ``NUMBA_NUM_THREADS=1`` (:func:`make_cluster`); this holds on any worker, also a thread of
    a threaded cluster (``processes=False``) or of the user's own scheduler, without changing
    the environment of the process it shares: :func:`lifecircle.settings.thread_cap` (the
    chunked calls, the reader) and numba's thread count are both this thread's own."""
    @functools.wraps(task)
    def one_thread(*args, **kwargs):
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            with thread_cap(1):
                return task(*args, **kwargs)
        finally:
            numba.set_num_threads(before)
    return one_thread


@_one_thread
def _load_source(spec: SourceSpec, layers=("streets", "features")):
    """Read one source (runs once, as Dask tasks); districts clip the result.

    A PBF is read as two tasks, streets and features, which two workers run side by side
    (:func:`lifecircle.io.sources.combine` joins them); other sources are read whole.
    """
    if spec.kind == "sample":
        return read_osm(embedded_sample(spec.value), layers=layers)
    if spec.kind == "place":
        return read_osm(f"place:{spec.value}", layers=layers)
    return read_osm(spec.value, layers=layers)


def _is_pbf(spec: SourceSpec) -> bool:
    return spec.kind == "sample" or str(spec.value).lower().endswith(".pbf")


def _worker_rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # pragma: no cover
        return float("nan")


@_one_thread
def _run_district(data, ds: DistrictSpec, cfg: BatchConfig, digest: str, out_dir: str,
                  force: bool = False) -> dict:
    """One district: clip, analyse, save atomically with its hash. Never raises for a
    district's own problems: returns ``status="failed"`` with the error instead. ``force``:
    as for the batch's folder, lifecircle's files go into a district folder that holds others
    (which stay as they are)."""
    import traceback


    t0 = time.perf_counter()
    cpu0 = time.process_time()
    info = {"district": ds.name, "slug": ds.slug, "source": ds.source, "config_hash": digest,
            "worker_pid": os.getpid()}
    step = ["analysis"]            # the step running, named in a failure
    try:
        settings = DEFAULTS.with_(**cfg.settings)
        # pre-clip with a margin a little wider than analyze's own (degrees, at this latitude)
        area = ds.geometry
        lat = area.centroid.y
        margin = 1.2 * settings.boundary_margin_m / (111_320.0 * max(0.1, np.cos(np.radians(lat))))
        t_clip = time.perf_counter()
        clip = data.clip(area.buffer(margin))
        t_clip = time.perf_counter() - t_clip
        if len(clip.streets) == 0:
            b = data.streets.total_bounds
            w, s, e, n = area.bounds
            exc = BoundaryError(f"district '{ds.name}' ({ds.origin})",
                                f"does not overlap the data of source '{ds.source}' ({data.source}: streets "
                                f"span lon {b[0]:.4f}..{b[2]:.4f}, lat {b[1]:.4f}..{b[3]:.4f}; the district "
                                f"spans lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f})",
                                zh=f"与数据来源 '{ds.source}' 的数据不重叠（{data.source}：道路范围为经度 "
                                   f"{b[0]:.4f}..{b[2]:.4f}，纬度 {b[1]:.4f}..{b[3]:.4f}；该区域为经度 "
                                   f"{w:.4f}..{e:.4f}，纬度 {s:.4f}..{n:.4f}）")
            exc.zh = f"区域 '{ds.name}'（{ds.origin}）：{exc.zh_problem}"
            raise exc
        result = analyze(clip, boundary=ds.boundary, place=ds.name,      # the maps' titles name it
                         profile=cfg.profile, speed=cfg.speed, settings=settings, lang=cfg.lang)
        t_save = time.perf_counter()
        folder = Path(out_dir) / ds.slug
        with atomic_dir(folder, force=force) as tmp:
            write_outputs(result, tmp)
            save_map(result_map(result, lang=cfg.lang, basemap=cfg.basemap, offline=cfg.offline),
                     tmp / MAP_FILE, offline=cfg.offline)
            maps = [MAP_FILE] + _run_steps(result, ds.steps, tmp, cfg, step)
            meta = dict(info, finished=_now(), data_date=result.data_date, maps=maps,
                        seconds=round(time.perf_counter() - t0, 3))
            (tmp / DISTRICT_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        info["timings"] = dict(result.timings, clip=t_clip,
                               save=time.perf_counter() - t_save)
        info.update(status="done", row=district_row(result.summary, cfg.lang),
                    row_en=district_row(result.summary, "en"), data_date=result.data_date,
                    notes=list(result.notes), maps=maps)
    except Exception as exc:  # isolate: the other districts go on
        texts = _failure_texts(exc, step[0])
        info.update(status="failed", error=texts[cfg.lang], errors=texts,
                    detail="" if isinstance(exc, LifecircleError) else traceback.format_exc(limit=6))
    info["seconds"] = time.perf_counter() - t0
    info["cpu_s"] = time.process_time() - cpu0     # CPU of the worker process during the task
    info["rss_mb"] = _worker_rss_mb()
    return info


def _run_steps(result, steps: DistrictSteps, folder: Path, cfg: BatchConfig, step: list) -> list[str]:
    """The district's resources and check steps, written into its (temporary) ``folder`` by the
    functions of ``lifecircle resources`` and ``lifecircle check``; the maps they wrote.
    ``step[0]`` names the step running (for the failure message).

    The steps read the analysis back from ``folder``, as the commands do, so their files are
    the ones ``lifecircle resources|check DISTRICT_FOLDER`` writes (the in-memory result can
    differ in the last digit of a geometry that breaks a snapping tie the other way)."""
    maps: list[str] = []
    if steps.resources or steps.check:
        result = load_result(folder)
    if steps.resources:
        step[0] = "resources"
        inv = build_inventory(result, None, sites=steps.sites, sites_crs=steps.sites_crs, lang=cfg.lang,
                              shared_sites=True)      # one survey file may cover every district
        maps += write_resources(result, inv, folder, cfg.lang, basemap=cfg.basemap, offline=cfg.offline)
    if steps.check:
        step[0] = "check"
        report = check(result, steps.check, lang=cfg.lang, min_share=steps.min_share)
        maps += write_compliance(report, result, folder, cfg.lang, basemap=cfg.basemap, offline=cfg.offline)
    step[0] = "analysis"
    return maps


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def district_row(summary: pd.DataFrame, lang: str = "en") -> dict:
    """One combined-table row from a district's summary (the 'ALL' block).

    The headline and coverage are over categories with data; the all-categories figures stand
    beside them. Top gaps are the lowest-covered categories with data; categories with no
    facility in the data go to ``no_data`` instead (a summary from before data statuses: a
    category with 0 facilities has no data).
    """
    s = summary[summary["community"].astype(str) == "ALL"]
    overall = s[s.level == "overall"].iloc[0]

    def num(key):
        v = overall.get(key, np.nan)
        return float(v) if v is not None and v == v else float("nan")

    row = {col.POPULATION: float(overall["population"]), "homes": int(overall["homes"]),
           "unreachable_homes": int(overall["unreachable_homes"]),
           # residents of homes with no street within reach: not in the shares (their base is
           # population minus these)
           "unreachable_population": num("unreachable_population"),
           "score_mean": float(overall["score_mean"]), "score_gini": float(overall["score_gini"]),
           col.ALL_SIX_15: float(overall["covered"]),
           col.SCORE_MEAN_ALL_CATEGORIES: num(col.SCORE_MEAN_ALL_CATEGORIES),
           col.ALL_SIX_15_ALL_CATEGORIES: num(col.COVERED_ALL_CATEGORIES),
           col.DIMENSIONS_WITH_DATA: num(col.DIMENSIONS_WITH_DATA),
           col.DIMENSIONS_TOTAL: num(col.DIMENSIONS_TOTAL)}
    for _, d in s[s.level == "dimension"].iterrows():
        row[col.dim_covered(d["id"])] = float(d["covered"])
    cats = s[s.level == "category"].copy()
    if col.DATA_STATUS in cats:
        status = cats[col.DATA_STATUS].astype(str)
    else:
        status = pd.Series(np.where(cats["facilities"].astype(int) > 0, col.STATUS_DATA, col.STATUS_NO_DATA),
                           index=cats.index)
    name = "name_zh" if lang == "zh" else "name_en"

    def shown(c):
        return c[name] if isinstance(c[name], str) and c[name] else c["id"]

    nodata = cats[status == col.STATUS_NO_DATA]
    row[col.DATA_STATUS + "_no_data"] = len(nodata)
    row["no_data"] = "; ".join(shown(c) for _, c in nodata.iterrows())
    with_data = cats[status != col.STATUS_NO_DATA].copy()
    with_data["covered"] = with_data["covered"].astype(float)
    gaps = with_data.sort_values(["covered", "id"], kind="mergesort").head(3)
    for k, (_, c) in enumerate(gaps.iterrows(), start=1):
        row[f"gap_{k}"] = c["id"]
        row[f"gap_{k}_name"] = shown(c)
        row[f"gap_{k}_covered"] = float(c["covered"])
        row[f"gap_{k}_kind"] = i18n.gap_kind(status[c.name], lang)
    row["top_gaps"] = "; ".join(
        f"{row[f'gap_{k}_name']} ({100 * row[f'gap_{k}_covered']:.0f}%, {row[f'gap_{k}_kind']})"
        for k in range(1, len(gaps) + 1))
    return row


def rank_districts(table: pd.DataFrame) -> pd.Series:
    """Rank (1 = best) on the with-data figures: all dimensions with data within 15 min, then
    the mean score over dimensions with data; NaN last."""
    if len(table) == 0:
        return pd.Series([], dtype="int64")
    key = pd.DataFrame({"a": table[col.ALL_SIX_15].astype(float).fillna(-1.0),
                        "s": table["score_mean"].astype(float).fillna(-1.0)})
    order = key.sort_values(["a", "s"], ascending=False, kind="mergesort").index
    rank = pd.Series(0, index=table.index, dtype="int64")
    rank.loc[order] = np.arange(1, len(order) + 1)
    return rank
def districts_sheet(table: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """The combined table as people read it (``districts.xlsx``): shares as percentages with
    one decimal, residents as whole numbers, score and Gini rounded, the coded gap ids left to
    the CSV, headers (and dimension names) in ``lang``."""
    t = table.copy()
    out = {}
    for c in t.columns:
        if re.fullmatch(r"gap_\d+", c) or c == "geometry":
            continue                                   # category ids: the CSV keeps them
        v = t[c]
        m = re.fullmatch(r"cov_(\w+)", c)
        if c in (col.ALL_SIX_15, col.ALL_SIX_15_ALL_CATEGORIES) or m or re.fullmatch(r"gap_\d+_covered", c):
            v = (100 * pd.to_numeric(v, errors="coerce")).round(1)
        elif c in (col.POPULATION, "unreachable_population"):
            v = pd.to_numeric(v, errors="coerce").round(0)
        elif c in ("score_mean", col.SCORE_MEAN_ALL_CATEGORIES):
            v = pd.to_numeric(v, errors="coerce").round(1)
        elif c == "score_gini":
            v = pd.to_numeric(v, errors="coerce").round(3)
        elif c == "status":
            v = v.map(lambda x: label(f"batch.status_{x}", lang) if f"batch.status_{x}" in LABELS else x)
        out[column_label(c, lang)] = v.to_numpy()
    return pd.DataFrame(out)


def column_label(c: str, lang: str = "en") -> str:
    """The header people read for a column of the combined table, in ``lang``."""
    if m := re.fullmatch(r"cov_(\w+)", c):
        zh_en = DIMENSION_NAMES.get(m.group(1))
        return label("batch.cov_dim", lang, d=(zh_en[0] if lang == "zh" else zh_en[1]) if zh_en else m.group(1))
    if g := re.fullmatch(r"gap_(\d+)_(name|covered|kind)", c):
        return label(f"batch.gap_{g.group(2)}", lang, k=g.group(1))
    return label(f"batch.{c}", lang) if f"batch.{c}" in LABELS else c


# --------------------------------------------------------------------------------------------
# client side


@dataclass
class BatchReport:
    """What :func:`run` did: one row per finished district, the failures and where it wrote."""

    table: pd.DataFrame
    failures: pd.DataFrame
    out_dir: Path
    statuses: dict[str, str] = field(default_factory=dict)   # district -> done / skipped / failed
    timings: dict[str, float] = field(default_factory=dict)
    workers: dict[str, dict] = field(default_factory=dict)    # worker -> {tasks, rss_mb, ...}
    data_dates: dict[str, str | None] = field(default_factory=dict)
    details: dict[str, dict] = field(default_factory=dict)    # district -> task info (timings, pid, error)

    @property
    def ok(self) -> bool:
        return len(self.failures) == 0

    @property
    def computed(self) -> list[str]:
        return [k for k, v in self.statuses.items() if v == "done"]

    @property
    def skipped(self) -> list[str]:
        return [k for k, v in self.statuses.items() if v == "skipped"]

    def __repr__(self) -> str:
        return (f"<BatchReport {len(self.table)} districts ok ({len(self.computed)} computed, "
                f"{len(self.skipped)} skipped), {len(self.failures)} failed, out={self.out_dir}>")


def make_cluster(workers: int | None = None, processes: bool = True):
    """A LocalCluster with one thread per worker and numba held to one thread."""
    import logging

    from dask.distributed import LocalCluster

    n = workers or max(1, min(os.cpu_count() or 1, 8))
    kw: dict[str, Any] = dict(n_workers=n, threads_per_worker=1, processes=processes,
                              # lifecircle reports every failed district itself, in one line: the
                              # workers' own "Compute Failed" tracebacks would only repeat it
                              silence_logs=logging.CRITICAL, dashboard_address=":0")
    if processes:
        kw["env"] = {"NUMBA_NUM_THREADS": "1", "LIFECIRCLE_THREADS": "1",
                     "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1"}
    # the worker processes start with Ctrl-C ignored (inherited through exec; Python then
    # installs no KeyboardInterrupt handler): a terminal's Ctrl-C reaches the whole process
    # group, and each worker printed its traceback; this process stops them as it ends
    if not (processes and threading.current_thread() is threading.main_thread()):
        return LocalCluster(**kw)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:    # started with Ctrl-C ignored (nohup,
        return LocalCluster(**kw)                              # `&` in a script): it stays so
    if not hasattr(signal, "sigtimedwait"):
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return LocalCluster(**kw)
        finally:
            signal.signal(signal.SIGINT, before)
    # A Ctrl-C meanwhile is held back, not dropped (the batch ran on): SIGINT is blocked in this
    # thread and in the thread that starts the cluster (and so in every thread that one starts),
    # which keeps it pending though ignored; this thread takes it with sigtimedwait, raises it
    # once the cluster is up, and a second one at once
    box: dict[str, Any] = {}

    def start() -> None:
        try:
            box["cluster"] = LocalCluster(**kw)
        except BaseException as exc:    # noqa: BLE001 - raised again in the calling thread
            box["error"] = exc

    got = 0
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        starter = threading.Thread(target=start, name="lifecircle cluster start", daemon=True)
        starter.start()
        while starter.is_alive() or got == 0:
            wait = 0.1 if starter.is_alive() else 0
            if signal.sigtimedwait({signal.SIGINT}, wait) is not None:
                got += 1
                if got > 1:             # a second Ctrl-C: the user insists; the cluster
                    threading.Thread(   # the start still makes is closed once it is made
                        target=lambda: (starter.join(), _close(None, box.get("cluster"))),
                        name="lifecircle cluster close", daemon=True).start()
                    raise KeyboardInterrupt
            elif not wait:
                break
    finally:
        signal.signal(signal.SIGINT, before)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if got:
        _close(None, box.get("cluster"))
        raise KeyboardInterrupt
    if "error" in box:
        raise box["error"]
    return box["cluster"]


def run(config, client=None, workers: int | None = None, resume: bool = False, *,
        scheduler: str | None = None, processes: bool = True,
        progress: bool | Callable[[int, int, str, str], None] = False,
        force: bool = False) -> BatchReport:
    """Run every district of a batch config on Dask and write the combined outputs.

    The output folder must be new, empty or a lifecircle folder; ``force`` writes lifecircle's
    files into a folder that holds others, the output folder or a district's (nothing else in
    it is touched).

    ``config``: a path to a TOML/YAML file or a :class:`BatchConfig`. ``client``: an existing
    ``dask.distributed.Client``; else ``scheduler`` (an address) or a new LocalCluster of
    ``workers`` processes (one thread each). ``resume``: skip districts whose folder holds
    outputs made with the same config hash. ``progress``: True for a rich progress bar, or a
    callable ``(done, total, district, status)``.

    A new LocalCluster starts worker processes that re-import the calling script: in a
    script, call ``run`` under ``if __name__ == "__main__":``. With ``scheduler``, every worker
    must see the config's files and the output folder at the same paths (a shared disk).
    """
    cfg = config if isinstance(config, BatchConfig) else load_config(config)
    t_start = time.perf_counter()
    out = cfg.out_dir
    inputs = [cfg.path] + [s.value for s in cfg.sources.values() if s.kind == "file"] + \
        sorted({d.steps.sites for d in cfg.districts if d.steps.sites})   # a sites file inside the
    ensure_out_dir(out, force=force, inputs=inputs, kind="batch")        # output would feed on itself
    params = cfg.analysis_params()
    fps = {k: s.fingerprint() for k, s in cfg.sources.items()}
    digests = {ds.name: district_hash(cfg, ds, params, fps[ds.source]) for ds in cfg.districts}
    statuses: dict[str, str] = {}
    results: dict[str, dict] = {}
    todo = []
    for ds in cfg.districts:
        info = None
        if resume and _done(out / ds.slug, digests[ds.name], ds.steps.maps()):
            try:
                info = _skipped_info(out / ds.slug, ds, cfg.lang)
            except Exception:   # noqa: BLE001 - a finished district whose files do not read: run it again
                info = None
        if info is not None:
            statuses[ds.name] = "skipped"
            results[ds.name] = info
        else:
            todo.append(ds)

    own_client = own_cluster = None
    timings: dict[str, float] = {}
    worker_info: dict[str, dict] = {}
    if todo:
        if client is None:
            from dask.distributed import Client

            if scheduler:
                try:
                    own_client = client = Client(scheduler, timeout="20s")
                except Exception as exc:
                    raise LifecircleError(f"cannot connect to the Dask scheduler at {scheduler} ({exc})",
                                          zh=f"无法连接 Dask 调度器 {scheduler}（{exc}）") from None
            else:
                own_cluster = make_cluster(workers, processes)
                own_client = client = Client(own_cluster)
        try:
            t0 = time.perf_counter()
            _run_on_dask(client, cfg, todo, digests, results, statuses, progress, worker_info, timings,
                         force)
            timings["districts_s"] = time.perf_counter() - t0
        finally:
            _close(own_client, own_cluster)

    t0 = time.perf_counter()
    with _interrupt_deferred():     # the combined files all from this run, or all as they were
        report = _write_outputs(cfg, results, statuses, digests)
    timings["combine_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    report.timings = timings
    report.workers = worker_info
    report.details = results
    return report


def _close(client, cluster) -> None:
    """Close the client and cluster this run made, a Ctrl-C meanwhile deferred (see
    :func:`_interrupt_deferred`): one in the middle of it left the cluster half closed, and
    Dask's exit handler then waited 10 s for it."""
    with _interrupt_deferred():
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _interrupt_deferred():
    """A Ctrl-C inside the block is raised when it ends (a second one at once): the combined
    outputs are replaced together or not at all, the cluster is closed whole. Only in the
    main thread (Python's signal handlers run there); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list = []

    def later(*_):
        if got:                 # a second Ctrl-C: the user insists
            raise KeyboardInterrupt
        got.append(True)

    before = signal.signal(signal.SIGINT, later)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
    if got:
        raise KeyboardInterrupt


def _skipped_info(folder: Path, ds: DistrictSpec, lang: str) -> dict:

    meta = json.loads((folder / DISTRICT_META).read_text(encoding="utf-8"))
    summary = read_summary(folder / SUMMARY)
    maps = meta.get("maps") or [m for m in ds.steps.maps() if (folder / m).exists()]
    return {"district": ds.name, "slug": ds.slug, "source": ds.source, "status": "skipped", "maps": maps,
            "row": district_row(summary, lang), "row_en": district_row(summary, "en"),
            "data_date": meta.get("data_date"),
            "config_hash": meta.get("config_hash")}


def _run_on_dask(client, cfg, todo, digests, results, statuses, progress, worker_info, timings,
                 force: bool = False) -> None:
    from dask.distributed import as_completed

    src_futures = {}

    for key in sorted({ds.source for ds in todo}):
        spec = cfg.sources[key]
        tag = os.urandom(4).hex()
        if _is_pbf(spec):
            parts = [client.submit(_load_source, spec, (layer,), pure=False,
                                   key=f"lifecircle-read-{key}-{layer}-{tag}")
                     for layer in ("streets", "features")]
            src_futures[key] = client.submit(combine, *parts, pure=False,
                                             key=f"lifecircle-read-{key}-{tag}")
        else:
            src_futures[key] = client.submit(_load_source, spec, pure=False,
                                             key=f"lifecircle-read-{key}-{tag}")
    futures = {}
    for ds in todo:
        fut = client.submit(_run_district, src_futures[ds.source], ds, cfg, digests[ds.name],
                            str(cfg.out_dir), force, pure=False,
                            key=f"lifecircle-district-{ds.slug}-{os.urandom(4).hex()}")
        futures[fut] = ds
    t0 = time.perf_counter()
    bar = None
    callback = progress if callable(progress) else None
    if progress is True:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]" + label("batch.sheet", cfg.lang)), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("{task.description}", markup=False),
                       console=Console(stderr=True))
        task = bar.add_task("", total=len(futures))
        bar.start()
    try:
        done = 0
        read_done = []
        for sf in src_futures.values():
            sf.add_done_callback(lambda _f: read_done.append(time.perf_counter()))
        for fut in as_completed(list(futures)):
            ds = futures[fut]
            try:
                info = fut.result()
            except Exception as exc:  # source read failed, worker died, ...
                texts = _failure_texts(exc)
                info = {"district": ds.name, "slug": ds.slug, "source": ds.source, "status": "failed",
                        "error": texts[cfg.lang], "errors": texts, "detail": ""}
            results[ds.name] = info
            statuses[ds.name] = info["status"]
            pid = str(info.get("worker_pid", "?"))
            slot = worker_info.setdefault(pid, {"tasks": 0, "rss_mb_max": 0.0, "busy_s": 0.0})
            slot["tasks"] += 1
            slot["rss_mb_max"] = max(slot["rss_mb_max"], float(info.get("rss_mb") or 0.0))
            slot["busy_s"] += float(info.get("seconds") or 0.0)
            done += 1
            if bar is not None:
                status = info["status"]
                status = label(f"batch.status_{status}", cfg.lang) if f"batch.status_{status}" in LABELS else status
                bar.update(task, advance=1, description=shown(f"{ds.name}: {status}"))   # a name: never a terminal command
            if callback is not None:
                callback(done, len(futures), ds.name, info["status"])
        if len(read_done) == len(src_futures):
            timings["read_s"] = max(read_done) - t0
            timings["after_read_s"] = time.perf_counter() - max(read_done)
    finally:
        if bar is not None:
            bar.stop()
        for f in list(futures) + list(src_futures.values()):
            f.release()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(sibling_name(path.name, f".{os.getpid()}.tmp{path.suffix}"))
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_outputs(cfg: BatchConfig, results: dict, statuses: dict, digests: dict) -> BatchReport:
    out = cfg.out_dir
    rows, rows_csv, fails, fails_csv, geoms, fail_geoms = [], [], [], [], [], []
    dates = {}
    for ds in cfg.districts:
        info = results.get(ds.name)
        if info is None:
            continue
        if info["status"] in ("done", "skipped"):
            maps = info.get("maps") or [MAP_FILE]
            where = {"district": ds.name, "source": ds.source, "folder": ds.slug, "status": info["status"]}
            links = {c: f"{ds.slug}/{f}" if f in maps else "" for f, c in MAP_COLUMNS.items()}
            rows.append({**where, **info["row"], **links, "config_hash": digests[ds.name][:12]})
            # districts.csv: the same in every language (gap names and kinds in English, the
            # ids beside them), each row with the attribution and data date of its source
            rows_csv.append({**where, **info.get("row_en", info["row"]), **links,
                             "config_hash": digests[ds.name][:12],
                             "attribution": _attribution({ds.source: info.get("data_date")})})
            geoms.append(ds.geometry)
            if info.get("data_date"):
                dates[ds.source] = info["data_date"]
        else:
            fail = {"district": ds.name, "source": ds.source, "origin": ds.origin}
            texts = info.get("errors") or {"en": info.get("error", ""), "zh": info.get("error", "")}
            fails.append({**fail, "error": info.get("error", ""), "detail": info.get("detail", "")})
            fails_csv.append({**fail, "error": texts["en"], "error_zh": texts["zh"], "detail": info.get("detail", "")})
            fail_geoms.append(ds.geometry)
    table = pd.DataFrame(rows)
    table_csv = pd.DataFrame(rows_csv)
    if len(table) and col.ALL_SIX_15 in table:
        table.insert(1, "rank", rank_districts(table))
        table_csv.insert(1, "rank", table["rank"].to_numpy())
    failures = pd.DataFrame(fails, columns=["district", "source", "origin", "error", "detail"])
    failures_csv = pd.DataFrame(fails_csv, columns=["district", "source", "origin", "error", "error_zh", "detail"])
    _atomic_write(out / TABLE_CSV, lambda p: csv_safe(table_csv).to_csv(p, index=False, encoding="utf-8-sig"))
    _atomic_write(out / FAILURES_CSV, lambda p: csv_safe(failures_csv).to_csv(p, index=False, encoding="utf-8-sig"))

    def xlsx(p: Path) -> None:
        lang = cfg.lang
        with pd.ExcelWriter(p, engine="openpyxl") as xw:
            xlsx_frame(districts_sheet(table, lang)).to_excel(xw, sheet_name=label("batch.sheet", lang), index=False)
            xlsx_frame(failures.rename(columns=lambda c: label(f"batch.{c}", lang))).to_excel(
                xw, sheet_name=label("batch.failures", lang), index=False)
            xlsx_frame(pd.DataFrame({label("sum.attribution", lang): [i18n.attribution_text(_attribution(dates), lang)]})).to_excel(
                xw, sheet_name=label("sum.about", lang), index=False)
            xlsx_safe(xw.book)                  # district names are never stored as formulas

    _atomic_write(out / TABLE_XLSX, xlsx)
    if len(table):
        gdf = gpd.GeoDataFrame(table_csv, geometry=geoms, crs=WGS84)     # the CSV's columns and values

        def gpkg(p: Path) -> None:
            gdf.to_file(p, layer="districts", driver="GPKG")
            # like every other GeoPackage: the attribution and data date travel with the file
            write_about_layer(p, _attribution(dates), data_date=", ".join(sorted({d for d in dates.values() if d})))

        _atomic_write(out / TABLE_GPKG, gpkg)
    fgdf = gpd.GeoDataFrame(failures, geometry=fail_geoms, crs=WGS84)

    save_map(_index_map(cfg, table, geoms, fgdf, dates, streets=_district_streets(out, table)),
             out / INDEX_HTML, offline=cfg.offline)
    run_meta = {"config": str(cfg.path), "finished": _now(), "districts": len(cfg.districts),
                "ok": len(table), "failed": len(failures), "statuses": statuses,
                "attribution": _attribution(dates)}
    _atomic_write(out / RUN_META, lambda p: p.write_text(json.dumps(run_meta, ensure_ascii=False, indent=2),
                                                          encoding="utf-8"))
    return BatchReport(table, failures, out, statuses, data_dates=dates)


def _attribution(dates: dict) -> str:
    ds = sorted({d for d in dates.values() if d})
    return ATTRIBUTION + (f", data {', '.join(ds)}" if ds else "")


def _href(relpath: str) -> str:
    """A link relative to the batch folder (percent-encoded, so a district named in Chinese
    or with spaces still resolves when the folder is zipped and opened elsewhere), escaped."""
    return escape_html(quote(str(relpath), safe="/"))


def _map_links(r, lang: str, target: bool = False) -> list[str]:
    """Links to every map a district row has (map, resources map, compliance map), in ``lang``."""
    out = []
    for f, c in MAP_COLUMNS.items():
        path = r.get(c) if c in r else (f"{r['folder']}/{f}" if f == MAP_FILE else "")
        if isinstance(path, str) and path:
            tgt = ' target="_blank"' if target else ""
            out.append(f'<a href="{_href(path)}"{tgt}>{escape_html(label(f"batch.link_{c}", lang))}</a>')
    return out


def _district_streets(out: Path, table: pd.DataFrame) -> gpd.GeoDataFrame | None:
    """The walking streets of every district that ran (its ``lifecircle.gpkg``), for the
    overview map's background; ``None`` when none can be read."""
    import pyogrio

    parts = []
    for folder in table.get("folder", pd.Series(dtype=str)):
        path = out / str(folder) / GPKG
        try:
            parts.append(pyogrio.read_dataframe(path, layer="streets", columns=["highway"]))
        except Exception:    # noqa: BLE001 - a district without readable streets: no background there
            continue
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs or WGS84)


class _Streets:
    """What :func:`~lifecircle.render.maps.background_layers` reads of a result: the walking
    streets (metric) and no OSM features — the overview map's background."""

    def __init__(self, streets: gpd.GeoDataFrame):
        c = shapely.centroid(shapely.union_all(shapely.envelope(streets.geometry.to_numpy())))
        self.crs = utm_crs(c.x, c.y)
        metric = streets.to_crs(self.crs)
        self.features = None
        self.network = type("Net", (), {"edge_geom": metric.geometry.to_numpy(),
                                         "edge_highway": metric["highway"].astype(str).to_numpy()})()


def _index_map(cfg: BatchConfig, table: pd.DataFrame, geoms: list, failures: gpd.GeoDataFrame, dates: dict,
               streets: gpd.GeoDataFrame | None = None):
    import branca.colormap as cm
    import folium


    zh = cfg.lang == "zh"
    attribution = _attribution(dates)
    gcj = _tiles(cfg.basemap, attribution)[3]
    if gcj:   # the basemap is in GCJ-02: shift the district outlines to line up
        geoms = list(to_display(gpd.GeoDataFrame(geometry=list(geoms), crs=WGS84), True).geometry)
        failures = to_display(failures, True)
    all_geoms = list(geoms) or list(failures.geometry)   # frame the districts that ran
    bounds = shapely.union_all(all_geoms).bounds if all_geoms else (-180, -60, 180, 75)
    # offline like every map: Leaflet inlined, online tiles an optional layer (off on opening)
    m, _ = base_map(bounds, lang=cfg.lang, basemap=cfg.basemap, attribution=attribution,
                    title=f"{cfg.name} — {'批量分析' if zh else 'batch'}",
                    subtitle=i18n.attribution_text(attribution, cfg.lang), height="65%")
    legend = Legend()
    if streets is not None:     # a map without tiles is still a map: the districts' own streets
        add_background(m, _Streets(streets), cfg.lang, gcj, legend)
    cmap = cm.LinearColormap(SCORE_COLOURS, vmin=0, vmax=100,
                             caption="平均生活圈得分（有数据的维度）" if zh
                             else "mean life-circle score (0-100, dimensions with data)")
    layer = folium.FeatureGroup(name="街道/社区" if zh else "Districts")
    for (_, r), g in zip(table.iterrows(), geoms):
        name = escape_html(str(r["district"]))
        n_dims = r.get(col.DIMENSIONS_WITH_DATA, float("nan"))
        n_dims = f"{int(n_dims)}" if n_dims == n_dims else "?"
        allcat = r.get(col.ALL_SIX_15_ALL_CATEGORIES, float("nan"))
        allcat = f"{100 * allcat:.1f}%" if allcat == allcat else "–"
        nodata = str(r.get("no_data", "") or "")
        # a district with no facility of any category has no score: "–", never "nan"
        score, gini, six = (f"{v:{f}}" if v == v else "–" for v, f in (
            (r["score_mean"], ".1f"), (r["score_gini"], ".3f"), (100 * r[col.ALL_SIX_15], ".1f")))
        six += "%" if six != "–" else ""
        left = r.get("unreachable_population", float("nan"))
        left = (f"{'不可达住宅人口(不计入比例)' if zh else 'residents in unreachable homes (not in the shares)'}: "
                f"{left:,.0f}<br>") if left == left and left > 0 else ""
        popup = (f"<b>{name}</b><br>{'平均得分(有数据的维度)' if zh else 'mean score (dimensions with data)'}: "
                 f"{score}<br>"
                 f"{label('batch.score_gini', cfg.lang)}: {gini}<br>{'人口' if zh else 'population'}: {r[col.POPULATION]:,.0f}<br>"
                 + left
                 + (f"有数据的 {n_dims} 个维度15分钟覆盖: {six}"
                    f"（全部六维、无数据按不可达计: {allcat}）<br>" if zh else
                    f"all {n_dims} of {n_dims} dimensions with data within 15 min: {six} "
                    f"(all six, no data counted as no access: {allcat})<br>")
                 + f"{'主要短板' if zh else 'top gaps'}: {escape_html(str(r.get('top_gaps', '')))}<br>"
                 + (f"{escape_html(i18n.label('data.no_data_list', 'zh' if zh else 'en'))}: "
                    f"{escape_html(nodata)}<br>" if nodata else "")
                 + " · ".join(_map_links(r, cfg.lang, target=True)))
        colour = cmap(r["score_mean"]) if np.isfinite(r["score_mean"]) else "#999999"
        folium.GeoJson(shapely.geometry.mapping(g), name=name,
                       style_function=lambda f, c=colour: {"fillColor": c, "color": "#333", "weight": 1,
                                                           "fillOpacity": 0.6},
                       tooltip=f"{name}: {score}",
                       popup=folium.Popup(popup, max_width=320)).add_to(layer)
    layer.add_to(m)
    if len(failures):
        flayer = folium.FeatureGroup(name="失败" if zh else "Failed")
        for _, r in failures.iterrows():
            name = escape_html(str(r["district"]))
            folium.GeoJson(shapely.geometry.mapping(r.geometry),
                           style_function=lambda f: {"fillColor": "#999999", "color": "#990000",
                                                     "weight": 1, "dashArray": "4", "fillOpacity": 0.3},
                           tooltip=f"{name}: {'失败' if zh else 'failed'}",
                           popup=folium.Popup(f"<b>{name}</b><br>{escape_html(str(r['error']))}",
                                              max_width=320)).add_to(flayer)
        flayer.add_to(m)
    legend.add(layer, _ramp_html(cmap.caption, SCORE_COLOURS))
    map_controls(m, cfg.lang, layers_collapsed=True)
    legend.add_to(m)

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if v != v else f"{v:,.0f}" if v == int(v) else f"{v:,.3f}".rstrip("0").rstrip(".")
        return escape_html(str(v))

    lang = cfg.lang
    m.get_root().header.add_child(RawHTML(
        "<style>body{display:flex;flex-direction:column}.folium-map{order:0;flex-shrink:0}"
        "#lifecircle-batch{order:1}#lifecircle-batch .lc-maps{white-space:nowrap}</style>"))
    parts = ["<div id='lifecircle-batch' style='font-family:sans-serif;padding:8px 16px'>",
             f"<h3>{escape_html(cfg.name)} — {'批量分析' if zh else 'batch'}: {len(table)} "
             f"{'个成功' if zh else 'districts'}, {len(failures)} {'个失败' if zh else 'failed'}</h3>"]
    if len(table):
        show = ["rank", col.POPULATION, "unreachable_population", "score_mean", "score_gini", col.ALL_SIX_15,
                col.ALL_SIX_15_ALL_CATEGORIES] + \
            [c for c in table.columns if c.startswith("cov_")] + ["top_gaps", "no_data"]
        show = [c for c in show if c in table.columns]
        ordered = table.sort_values("rank", kind="mergesort") if "rank" in table else table
        # as districts.xlsx shows them: headers in the language, shares in %, rounded
        sheet = districts_sheet(ordered[["district"] + show], lang)
        heads = list(sheet.columns)
        parts.append("<table border='1' cellpadding='3' style='border-collapse:collapse;font-size:13px'><tr>"
                     + f"<th>{escape_html(heads[0])}</th><th>{escape_html(label('batch.maps', lang))}</th>"
                     + "".join(f"<th>{escape_html(h)}</th>" for h in heads[1:]) + "</tr>")
        for (_, r), (_, shown) in zip(ordered.iterrows(), sheet.iterrows()):
            link = _href(r.get("map") or f"{r['folder']}/{MAP_FILE}")
            cells = [f"<a href=\"{link}\">{escape_html(str(r['district']))}</a>",
                     "<span class='lc-maps'>" + "<br>".join(_map_links(r, lang)) + "</span>"] + \
                [cell(v) for v in shown.iloc[1:]]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        if "no_data" in table and table["no_data"].fillna("").astype(bool).any():
            parts.append(f"<p><small>{escape_html(i18n.label('data.no_data_list', 'zh' if zh else 'en'))}: "
                         f"{escape_html(i18n.no_data_hint('zh' if zh else 'en', batch=True))}</small></p>")
    parts.append(f"<h4>{'失败' if zh else 'Failures'} ({len(failures)})</h4>")
    if len(failures):
        parts.append("<table border='1' cellpadding='3' style='border-collapse:collapse;font-size:13px'><tr>"
                     + "".join(f"<th>{escape_html(label(f'batch.{c}', lang))}</th>"
                               for c in ("district", "source", "origin", "error")) + "</tr>")
        for _, r in failures.iterrows():
            parts.append("<tr>" + "".join(f"<td>{escape_html(str(r[c]))}</td>"
                                          for c in ("district", "source", "origin", "error")) + "</tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>{'无' if zh else 'none'}</p>")
    parts.append(f"<p><small>{escape_html(i18n.attribution_text(attribution, cfg.lang))}</small></p></div>")
    m.get_root().html.add_child(RawHTML("\n".join(parts)))
    return m
