"""The one place that names output columns.

The CLI, maps, exports and tests call these helpers instead of spelling column names by hand,
so a renamed column changes in one place.

>>> from lifecircle import columns as col
>>> col.time("kindergarten"), col.count("bus_stop", 15), col.dim_score("leisure")
('t_kindergarten', 'n15_bus_stop', 's_leisure')
>>> [col.kmean("park"), col.decay("park"), col.sfca("park"), col.dim_covered_at("social", 10)]
['k_park', 'g_park', 'a_park', 'cov10_social']
>>> col.parse("n10_primary_school"), col.parse("population")
(('n10', 'primary_school'), None)
"""

from __future__ import annotations

POPULATION = "population"
SCORE = "score"
HOME_ID = "home_id"
ALL_SIX_15 = "all6_15"          # every dimension covered within 15 minutes (default tiers)
COMMUNITY = "community"
CATEGORY = "category"
DIMENSION = "dimension"
NAME = "name"
CAPACITY = "capacity"
SNAP_LEG_M = "snap_m"           # straight leg from the point to its edge, metres
REACHABLE = "reachable"


def all_six(minutes: int | float) -> str:
    """1 when every dimension is covered within ``minutes`` (the largest tier), else 0.

    >>> all_six(15), all_six(20)
    ('all6_15', 'all6_20')
    """
    return f"all6_{minutes:g}"


def within(minutes: int | float) -> str:
    """Summary column: share of residents within ``minutes`` (a tier).

    >>> within(10)
    'within_10'
    """
    return f"within_{minutes:g}"


def time(category: str) -> str:
    """Minutes to the nearest facility of ``category``.

    >>> time("park")
    't_park'
    """
    return f"t_{category}"


def count(category: str, minutes: int | float) -> str:
    """Number of facilities of ``category`` within ``minutes``."""
    return f"n{int(minutes)}_{category}"


def kmean(category: str) -> str:
    """Mean minutes to the k nearest facilities (Bruno et al. 2024 proximity time)."""
    return f"k_{category}"


def decay(category: str) -> str:
    """Distance-decay weighted sum of facilities of ``category``."""
    return f"g_{category}"


def sfca(category: str) -> str:
    """Two-step floating catchment supply/demand ratio for ``category``."""
    return f"a_{category}"


def dim_covered(dimension: str) -> str:
    """1 when the dimension is covered at its categories' own thresholds, else 0."""
    return f"cov_{dimension}"


def dim_covered_at(dimension: str, minutes: int | float) -> str:
    """1 when the dimension is covered with every category held to ``minutes``."""
    return f"cov{int(minutes)}_{dimension}"


def dim_score(dimension: str) -> str:
    """Dimension sub-score, 0-100."""
    return f"s_{dimension}"


def parse(column: str) -> tuple[str, str] | None:
    """Split a metric column into (kind, key), e.g. ``t_bus_stop`` -> ("t", "bus_stop").

    >>> parse("t_bus_stop"), parse("cov15_housing"), parse("score")
    (('t', 'bus_stop'), ('cov15', 'housing'), None)
    """
    head, sep, rest = column.partition("_")
    if not sep or not rest:
        return None
    if head in {"t", "k", "g", "a", "cov", "s"} or (head[:1] in {"n"} and head[1:].isdigit()) or (
        head.startswith("cov") and head[3:].isdigit()
    ):
        return head, rest
    return None


# -- data completeness ------------------------------------------------------------------------
#: Per category: ``data`` (facilities in the data, OSM or a user table), ``no_data`` (none in
#: the data: unknown, never read as 0 % access) or ``complete`` (declared surveyed by the user:
#: zero facilities means none exist, a real gap). Summary column and meta.json key.
DATA_STATUS = "data_status"
#: recommendations.csv: the data status of a pick's use (``no_data``: its gap assumes none exist)
CATEGORY_DATA = "category_data"
STATUS_DATA = "data"
STATUS_NO_DATA = "no_data"
STATUS_COMPLETE = "complete"
DATA_STATUSES = (STATUS_DATA, STATUS_NO_DATA, STATUS_COMPLETE)
#: Per home: the score and the all-dimensions flag counting categories without data as no
#: access (the old, pessimistic reading), beside ``score`` / ``all6_15`` over data.
SCORE_ALL_CATEGORIES = "score_allcat"
ALL_SIX_15_ALL_CATEGORIES = "all6_15_allcat"


def all_six_allcat(minutes: int | float) -> str:
    """:func:`all_six` counting categories without data as no access.

    >>> all_six_allcat(15)
    'all6_15_allcat'
    """
    return f"{all_six(minutes)}_allcat"

#: Summary columns: the same figures over all categories, and how many categories/dimensions
#: the with-data figures stand on.
COVERED = "covered"
COVERED_ALL_CATEGORIES = "covered_allcat"
SCORE_MEAN = "score_mean"
SCORE_MEAN_ALL_CATEGORIES = "score_mean_allcat"
CATEGORIES_WITH_DATA = "categories_with_data"
CATEGORIES_TOTAL = "categories"
DIMENSIONS_WITH_DATA = "dimensions_with_data"
DIMENSIONS_TOTAL = "dimensions"
#: Summary columns: facilities of the row's kind inside the row's unit (the study area, a
#: community polygon), as ``check`` counts them; and every facility the walks reach, the
#: boundary margin (``boundary_margin_m``, 1,500 m) around the study area included.
FACILITIES = "facilities"
FACILITIES_INCL_MARGIN = "facilities_incl_margin"
