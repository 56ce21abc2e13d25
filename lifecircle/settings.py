"""Settings with documented defaults, in one typed place.

Every number lifecircle assumes lives here, with the reason for its default. Pass a modified
copy (``DEFAULTS.with_(walk_speed_kmh=3.0)``) or keyword overrides to :func:`lifecircle.analyze`.
A ``Settings`` checks itself when made: a value out of range raises
:class:`~lifecircle.errors.SettingsError` naming the setting, before any data is read.

>>> Settings(thresholds_min=(5, 10, 20)).thresholds_min
(5, 10, 20)
>>> Settings(walk_speed_kmh=1e9)
Traceback (most recent call last):
...
lifecircle.errors.SettingsError: walk_speed_kmh must be a number from 0.5 to 20 (km/h), got 1000000000.0
"""

from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from importlib.resources import files
from pathlib import Path

from lifecircle.errors import SettingsError
from lifecircle.i18n import check_lang, default_lang


def cores() -> int:
    """The cores lifecircle's own threads and forked children may use: those this process may
    run on (a container or ``taskset`` may allow one only), or fewer when the environment
    variable ``LIFECIRCLE_THREADS`` says so (a batch's workers run with 1: the districts side by
    side are the parallelism there, and more threads would only take turns on the cores)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        n = os.cpu_count() or 1
    try:
        cap = int(os.environ.get("LIFECIRCLE_THREADS", "0"))
    except ValueError:
        cap = 0
    n = min(n, cap) if cap > 0 else n
    local = getattr(_thread_cap, "n", 0)
    return max(1, min(n, local) if local > 0 else n)


_thread_cap = threading.local()


@contextmanager
def thread_cap(n: int):
    """Within the block, :func:`cores` says at most ``n`` in this thread alone (the work it
    starts from here follows it; other threads and the environment are untouched). A batch's
    district runs under ``thread_cap(1)`` on whatever Dask worker it lands on: a worker thread
    of a threaded cluster or of the user's own scheduler, where ``LIFECIRCLE_THREADS`` in the
    environment would be the whole process's (the user's session's, in-process)."""
    before = getattr(_thread_cap, "n", 0)
    _thread_cap.n = n if before <= 0 else min(n, before)
    try:
        yield
    finally:
        _thread_cap.n = before


def carried(fn):
    """``fn``, to run on another thread under the calling thread's :func:`thread_cap` (the
    threads lifecircle starts follow the cap of the thread that starts them; a thread-local
    cap is not inherited by itself)."""
    n = getattr(_thread_cap, "n", 0)
    if n <= 0:
        return fn

    def capped(*args, **kwargs):
        with thread_cap(n):
            return fn(*args, **kwargs)

    return capped


#: The life-circle tiers (minutes) of an analysis unless ``thresholds_min`` says otherwise:
#: the 5/10/15-minute levels of GB 50180-2018. The one source of the default tiers.
TIERS: tuple[int, ...] = (5, 10, 15)

#: The per-category metrics of the home table, by name: ``time`` (``t_<category>``, minutes
#: to the nearest), ``count`` (``n5_/n10_/n15_<category>``), ``kmean`` (``k_<category>``, mean
#: minutes to the k nearest), ``decay`` (``g_<category>``, decay-weighted count) and ``sfca``
#: (``a_<category>``, 2SFCA supply/demand ratio). The last three are opt-in (see
#: :attr:`Settings.metrics`).
METRICS: tuple[str, ...] = ("time", "count", "kmean", "decay", "sfca")
#: The metrics of an analysis unless ``metrics`` says otherwise: what the score, coverage,
#: summary, maps, standards, recommendations and links read.
DEFAULT_METRICS: tuple[str, ...] = ("time", "count")
#: The settings that shape an opt-in metric: set away from its default, the metric is computed
#: (a config that asks for ``sfca_minutes = 10`` wants the ``a_`` columns).
METRIC_PARAMETERS: dict[str, str] = {"k_nearest": "kmean", "decay": "decay", "decay_beta": "decay",
                                     "decay_sigma_min": "decay", "sfca_minutes": "sfca"}

#: (lowest, highest, unit) of every numeric setting; None = unbounded on that side.
#: The Chinese of the units in :data:`_RANGES` (m, km/h, m² stay as they are).
_UNITS_ZH = {
    "share of the largest piece's street length": "占最大连通片道路长度的比例",
    "m of street": "m 道路", "persons per m² of floor": "人/m² 建筑面积", "floors": "层",
    "m per floor": "m/层", "residents per ha": "人/公顷", "minutes": "分钟", "facilities": "个设施",
    "per minute": "每分钟", "share": "比例", "homes": "个住宅",
}

_RANGES = {
    "walk_speed_kmh": (0.5, 20.0, "km/h"),
    "boundary_margin_m": (0.0, 50_000.0, "m"),
    "max_snap_m": (1.0, 5_000.0, "m"),
    "min_component_share": (0.0, 1.0, "share of the largest piece's street length"),
    "min_component_m": (0.0, 1e9, "m of street"),
    "persons_per_m2": (1e-4, 1.0, "persons per m² of floor"),
    "default_levels": (1.0, 200.0, "floors"),
    "min_home_footprint_m2": (0.0, 10_000.0, "m²"),
    "metres_per_level": (1.0, 20.0, "m per floor"),
    "untagged_home_max_footprint_m2": (0.0, 1_000_000.0, "m²"),
    "untagged_home_street_m": (0.0, 1_000.0, "m"),
    "grid_spacing_m": (5.0, 1_000.0, "m"),
    "grid_density_per_ha": (0.0, 10_000.0, "residents per ha"),
    "max_minutes": (1.0, 480.0, "minutes"),    # twice a category's longest threshold (240)
    "k_nearest": (1, 1_000, "facilities"),
    "decay_beta": (1e-6, 10.0, "per minute"),
    "decay_sigma_min": (0.1, 240.0, "minutes"),
    "dimension_cover_share": (0.01, 1.0, "share"),
    "merge_distance_m": (0.0, 1_000.0, "m"),
    "map_max_points": (1, 10_000_000, "homes"),
    "map_hex_m": (5.0, 10_000.0, "m"),
}


@dataclass(frozen=True)
class Settings:
    #: Walking speed. 4 km/h walks about 1,000 m in 15 minutes, the GB 50180-2018 reading of
    #: the 15-minute life circle (800-1000 m). Use 3 km/h for elderly residents.
    walk_speed_kmh: float = 4.0
    #: Streets and facilities this far outside the boundary stay in, so residents near the edge
    #: are not cut off from the shop across the line.
    boundary_margin_m: float = 1500.0
    #: Points farther than this from any walkable edge are unreachable (never attached far away).
    #: Chinese superblocks have legs of 50-200 m from building to street.
    max_snap_m: float = 300.0
    #: Disconnected pieces of the walking network (an indoor corridor cluster, a street stub
    #: cut off by a foot=no tunnel, footways around an unmapped plaza) are left out, so that no
    #: home or facility attaches to a piece from which nothing can be walked to. The largest
    #: piece is always kept; another only when its street length is at least this share of the
    #: largest's and at least ``min_component_m`` — a district cut off by the edge of the
    #: extract or by a river whose bridge lies outside it stays in. On the shared extracts
    #: (Boston, Helsinki, Nanjing, Liechtenstein, Las Palmas, Andorra) every other piece is
    #: under 2.3% of the largest: they are all left out.
    min_component_share: float = 0.1
    #: See ``min_component_share``: 1,000 m is one 15-minute walk at 4 km/h.
    min_component_m: float = 1000.0
    #: Output projected CRS: None picks the UTM zone of the data; "cgcs2000" picks the CGCS2000
    #: 3-degree Gauss-Krüger zone (EPSG:4534-4554); or any EPSG code / CRS string.
    crs: str | int | None = None
    #: Residents per m² of residential floor area (1/35: about 35 m² of floor per person, the
    #: order of urban China and of European city centres).
    persons_per_m2: float = 1.0 / 35.0
    #: Floors assumed for a home whose type is not in :data:`LEVELS_BY_TYPE` and that carries
    #: neither ``building:levels`` nor ``height``.
    default_levels: float = 3.0
    #: Storey height used to turn a ``height`` tag (metres) into floors: levels = height / this,
    #: rounded, at least 1 (3 m is the usual floor-to-floor height of housing).
    metres_per_level: float = 3.0
    #: Buildings smaller than this footprint are not homes (sheds, garages, kiosks).
    min_home_footprint_m2: float = 30.0
    #: An untagged building (``building=yes``) larger than this footprint is not counted as a
    #: home (warehouses, malls, halls and stations are the large untagged buildings; a city
    #: apartment block rarely covers more than 3,000 m²). Typed residential buildings have no cap.
    untagged_home_max_footprint_m2: float = 3000.0
    #: An untagged building counts as a home only if it lies in residential land use or within
    #: this distance (metres, outline to street) of a ``highway=residential|living_street``.
    untagged_home_street_m: float = 50.0
    #: Spacing of the stand-in grid of homes over residential land with no buildings mapped.
    grid_spacing_m: float = 50.0
    #: Residents per hectare assumed for stand-in grid points (per point: density × spacing²).
    grid_density_per_ha: float = 100.0
    #: Time thresholds reported for every category (minutes): the life-circle tiers, any
    #: increasing positive minutes (default :data:`TIERS`). Homes, the
    #: summary, maps and batch follow them; the "all six" column uses the largest.
    thresholds_min: tuple[int, ...] = TIERS
    #: Searches stop at this many minutes; nearest times beyond it are reported as NaN. An
    #: analysis raises it to what its outputs need (:func:`lifecircle.core.coverage.search_minutes`:
    #: twice the profile's longest threshold, the largest tier), and its result keeps that.
    max_minutes: float = 30.0
    #: k of the "mean of the k nearest" proximity time (Bruno et al. 2024 use 20).
    k_nearest: int = 20
    #: Negative-exponential decay exp(-beta * minutes): beta = ln 2 / 5 halves weight every 5 min.
    decay_beta: float = 0.1386
    #: Gaussian decay exp(-0.5 * (minutes / sigma)^2).
    decay_sigma_min: float = 7.5
    #: Distance-decay form used for the ``g_<category>`` columns: "exponential" or "gaussian".
    decay: str = "exponential"
    #: Catchment of the 2SFCA ratio (minutes); None uses the category's own threshold.
    sfca_minutes: float | None = None
    #: Share of a dimension's categories a home must reach (each within its threshold) for the
    #: dimension to count as covered.
    dimension_cover_share: float = 0.5
    #: Facilities of the same category closer than this (metres) with the same or no name are
    #: merged when OSM and user tables are combined.
    merge_distance_m: float = 30.0
    #: Above this many homes the map shows a hexagon aggregate instead of single homes.
    map_max_points: int = 20000
    #: Hexagon size (metres, centre to corner) of the map aggregate.
    map_hex_m: float = 150.0
    #: Language of tables, console, map labels and popups: "zh" or "en"; None takes the
    #: user's locale (``zh_*`` → zh), else English.
    lang: str | None = None
    #: Categories declared surveyed for this run (``--complete``), added to the profile's
    #: ``complete`` list: none found means none exist (a real gap, 0 %). Every other category
    #: without a facility in the data reads "no data" and is left out of dimension coverage.
    complete: tuple[str, ...] = ()
    #: Per-category metrics computed and written to the home table (see :data:`METRICS`):
    #: by default the nearest minutes and the counts, which every score, summary, map and
    #: check reads. ``kmean``, ``decay`` and ``sfca`` add the k-nearest mean, the
    #: distance-decay sum and the 2SFCA ratio (``"all"``: every metric); at city scale each
    #: costs as much memory as the minutes and 2SFCA a second pass of the engine. A list or a
    #: comma-separated string; ``time`` is always included, and so is a metric whose own
    #: setting (:data:`METRIC_PARAMETERS`, e.g. ``k_nearest``) is set away from its default.
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def __post_init__(self):
        object.__setattr__(self, "complete", tuple(str(c) for c in (
            [self.complete] if isinstance(self.complete, str) else self.complete or ())))
        metrics = _check_metrics(self.metrics)
        defaults = {f.name: f.default for f in fields(self)}
        asked = {m for name, m in METRIC_PARAMETERS.items() if getattr(self, name) != defaults[name]}
        object.__setattr__(self, "metrics", tuple(m for m in METRICS if m in metrics or m in asked))
        for name, (low, high, unit) in _RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value) and low <= value <= high
            if not ok:
                raise SettingsError(f"{name} must be a number from {low:g} to {high:g} ({unit}), "
                                    f"got {value!r}",
                                    zh=f"{name} 须为 {low:g} 到 {high:g} 之间的数（{_UNITS_ZH.get(unit, unit)}），"
                                       f"实为 {value!r}")
        tiers = self.thresholds_min
        if isinstance(tiers, (int, float)):
            tiers = (tiers,)
        try:
            tiers = tuple(tiers)
            good = len(tiers) > 0 and all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                for t in tiers)
        except TypeError:
            good = False
        if good:
            tiers = tuple(int(t) if float(t).is_integer() else float(t) for t in tiers)
            good = all(t > 0 for t in tiers) and all(a < b for a, b in zip(tiers, tiers[1:]))
        if not good:
            raise SettingsError(f"thresholds_min must be increasing positive minutes, e.g. "
                                f"(5, 10, 15); got {self.thresholds_min!r}",
                                zh=f"thresholds_min 须为递增的正分钟数，如 (5, 10, 15)；实为 {self.thresholds_min!r}")
        object.__setattr__(self, "thresholds_min", tiers)
        if self.decay not in ("exponential", "gaussian"):
            raise SettingsError(f"decay must be 'exponential' or 'gaussian', got {self.decay!r}",
                                zh=f"decay 须为 'exponential' 或 'gaussian'，实为 {self.decay!r}")
        if self.sfca_minutes is not None and not (
                isinstance(self.sfca_minutes, (int, float)) and 0 < self.sfca_minutes <= self.max_minutes):
            raise SettingsError(f"sfca_minutes must be None or minutes in (0, max_minutes], "
                                f"got {self.sfca_minutes!r}",
                                zh=f"sfca_minutes 须为 None 或 (0, max_minutes] 内的分钟数，实为 {self.sfca_minutes!r}")
        if not isinstance(self.k_nearest, int):
            raise SettingsError(f"k_nearest must be a whole number, got {self.k_nearest!r}",
                                zh=f"k_nearest 须为整数，实为 {self.k_nearest!r}")
        object.__setattr__(self, "lang", default_lang(self.lang) if self.lang is None
                           else check_lang(self.lang))

    def wants(self, metric: str) -> bool:
        """Whether the per-category ``metric`` (a name of :data:`METRICS`) is computed.

        >>> DEFAULTS.wants("count"), DEFAULTS.wants("sfca"), Settings(metrics="all").wants("sfca")
        (True, False, True)
        """
        return metric in self.metrics

    @property
    def max_tier(self):
        """The largest tier (minutes): the "all six dimensions" headline is computed at it."""
        return self.thresholds_min[-1]

    @property
    def walk_speed_mps(self) -> float:
        return self.walk_speed_kmh * 1000.0 / 3600.0

    def with_(self, **overrides) -> Settings:
        """A copy with ``overrides`` applied; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: "
                                + ", ".join(sorted(known)),
                                zh=f"未知的设置：{', '.join(sorted(unknown))}；可用：" + ", ".join(sorted(known)))
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _check_metrics(value) -> tuple[str, ...]:
    """``metrics`` as a tuple of :data:`METRICS` names in their canonical order, ``time``
    included; a comma-separated string and ``"all"`` are read too.

    >>> _check_metrics("decay, time"), _check_metrics(["count"]), _check_metrics("all")[-1]
    (('time', 'decay'), ('time', 'count'), 'sfca')
    """
    names = value.split(",") if isinstance(value, str) else value
    try:
        names = [n.strip().lower() if isinstance(n, str) else n for n in names]
    except TypeError:
        names = [value]
    names = [n for n in names if n != ""]
    unknown = [n for n in names if n not in METRICS and n != "all"]
    if unknown:
        known, default = ", ".join(map(repr, METRICS)), repr(",".join(DEFAULT_METRICS))
        raise SettingsError(f"metrics: unknown metric(s) {', '.join(map(repr, unknown))}; known: "
                            f"{known} or 'all' (default {default})",
                            zh=f"metrics: 未知的指标 {', '.join(map(repr, unknown))}；可用：{known} 或 "
                               f"'all'（默认 {default}）")
    if "all" in names:
        names = list(METRICS)
    return tuple(m for m in METRICS if m == "time" or m in names)


DEFAULTS = Settings()


def data_path(*parts: str) -> Path:
    """A file or folder shipped in ``lifecircle.data`` (``data/`` at the repository root:
    profiles, taxonomies, samples) — the one lookup of shipped data.

    >>> data_path("profiles", "default.yaml").name
    'default.yaml'
    """
    try:
        base = Path(str(files("lifecircle.data")))
    except (ModuleNotFoundError, TypeError):   # a source checkout that is not installed
        base = Path(__file__).resolve().parent.parent / "data"
    return base.joinpath(*parts)


#: Floors assumed per ``building=*`` type where neither ``building:levels`` nor ``height`` is
#: tagged (other types: :attr:`Settings.default_levels`). Houses are one- or two-storey
#: family homes; ``apartments`` are blocks of flats (mid-rise in most cities: 5-7 floors in
#: Las Palmas' tagged ones, median 5; 6 in Chinese walk-ups and slabs); ``residential`` is used
#: for both, median 4 where tagged; ``yes`` (untagged, counted by evidence, see
#: :mod:`lifecircle.core.homes`) takes the generic 3.
LEVELS_BY_TYPE: dict[str, float] = {
    "house": 2.0, "detached": 2.0, "semidetached_house": 2.0, "terrace": 2.0, "villa": 2.0,
    "farm": 2.0, "bungalow": 1.0, "cabin": 1.0, "static_caravan": 1.0, "houseboat": 1.0,
    "stilt_house": 1.0, "trullo": 1.0, "residential": 4.0, "apartments": 6.0, "dormitory": 4.0,
    "yes": 3.0,
}
