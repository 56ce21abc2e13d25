"""Settings with documented defaults, in one typed place.

Every number lifecircle assumes lives here, with the reason for its default. Pass a modified
copy (``dataclasses.replace(DEFAULTS, walk_speed_kmh=3.0)``) or keyword overrides to
:func:`lifecircle.analyze`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


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
    #: Output projected CRS: None picks the UTM zone of the data; "cgcs2000" picks the CGCS2000
    #: 3-degree Gauss-Krüger zone (EPSG:4534-4554); or any EPSG code / CRS string.
    crs: str | int | None = None
    #: Residents per m² of residential floor area (1/35: about 35 m² of floor per person, the
    #: order of urban China and of European city centres).
    persons_per_m2: float = 1.0 / 35.0
    #: Floors assumed where a residential building carries no ``building:levels`` tag.
    default_levels: float = 3.0
    #: Buildings smaller than this footprint are not homes (sheds, garages, kiosks).
    min_home_footprint_m2: float = 30.0
    #: Spacing of the stand-in grid of homes over residential land with no buildings mapped.
    grid_spacing_m: float = 50.0
    #: Residents per hectare assumed for stand-in grid points (per point: density × spacing²).
    grid_density_per_ha: float = 100.0
    #: Time thresholds reported for every category (minutes): the 5/10/15-minute tiers.
    thresholds_min: tuple[int, ...] = (5, 10, 15)
    #: Searches stop at this many minutes; nearest times beyond it are reported as NaN.
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
    #: Language of tables, map labels and popups: "zh" or "en".
    lang: str = "en"

    @property
    def walk_speed_mps(self) -> float:
        return self.walk_speed_kmh * 1000.0 / 3600.0

    def with_(self, **overrides) -> "Settings":
        """A copy with ``overrides`` applied; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


DEFAULTS = Settings()
