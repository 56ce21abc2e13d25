"""What an analysis computed, as data: :class:`Result`.

Its convenience methods (``save``, ``load``, ``map``, ``summary_table``, Jupyter display) are
one-line delegations to the rooms that do the work: :mod:`lifecircle.io.outputs` for the folder,
:mod:`lifecircle.render` for maps and HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from lifecircle import columns as col
from lifecircle.core.engine import AccessEngine
from lifecircle.core.network import WalkNetwork
from lifecircle.core.profiles import Profile
from lifecircle.core.snapping import Snap
from lifecircle.io.outputs import MAP_HTML, atomic_dir, read_outputs, write_outputs
from lifecircle.io.sources import ATTRIBUTION
from lifecircle.settings import Settings


@dataclass
class Result:
    """Everything :func:`analyze` computed. Tables are GeoDataFrames in the analysis CRS."""

    homes: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    summary: pd.DataFrame
    profile: Profile
    settings: Settings
    network: WalkNetwork
    home_snap: Snap
    facility_snap: Snap
    communities: gpd.GeoDataFrame | None = None
    study_area: object = None            # shapely polygon, analysis CRS
    source: str = ""
    data_date: str | None = None
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    _engine: AccessEngine | None = field(default=None, repr=False)
    #: The OSM features of the study area (WGS-84, ``osm_type``, ``osm_id``, ``tags`` dicts), kept
    #: so that later analyses (idle sites, standards with another profile) never re-read the source.
    features: gpd.GeoDataFrame | None = field(default=None, repr=False)
    #: total residents and their source (``buildings estimate``, ``population raster`` or
    #: ``community totals``), with what was added or left unmatched; see :mod:`lifecircle.core.homes`
    population_info: dict = field(default_factory=dict)

    @property
    def crs(self) -> pyproj.CRS:
        return self.network.crs

    @property
    def attribution(self) -> str:
        return ATTRIBUTION + (f", data {self.data_date}" if self.data_date else "")

    @property
    def engine(self) -> AccessEngine:
        if self._engine is None:
            self._engine = AccessEngine(self.network, self.home_snap,
                                        self.homes[col.POPULATION].to_numpy(float), self.settings)
        return self._engine

    def category_facilities(self, cat_id: str) -> np.ndarray:
        return np.flatnonzero(self.facilities[col.CATEGORY].to_numpy() == cat_id)

    def overall(self) -> dict:
        row = self.summary[(self.summary.level == "overall") & (self.summary.community == "ALL")]
        return row.iloc[0].to_dict() if len(row) else {}

    def empty_categories(self) -> list[str]:
        present = set(self.facilities[col.CATEGORY])
        return [c.id for c in self.profile.categories if c.id not in present]

    # -- display ------------------------------------------------------------------------------
    def summary_table(self, lang: str | None = None, community: str = "ALL") -> pd.DataFrame:
        lang = lang or self.settings.lang
        s = self.summary[self.summary.community == community]
        name = "name_zh" if lang == "zh" else "name_en"
        tiers = [col.within(m) for m in self.settings.thresholds_min]
        t = s[["level", "id", name, "minutes", "facilities", "covered", *tiers, "median_min"]].copy()
        for c in ("covered", *tiers):
            t[c] = (100 * t[c]).round(1)
        t["median_min"] = t["median_min"].round(1)
        if lang == "zh":
            t.columns = ["层级", "编号", "名称", "阈值(分钟)", "设施数", "覆盖率%",
                         *[f"{m:g}分钟%" for m in self.settings.thresholds_min], "中位时间(分钟)"]
        return t

    def _repr_html_(self) -> str:
        from lifecircle.render.html import result_html

        return result_html(self)

    def __repr__(self) -> str:
        o = self.overall()
        return (f"<lifecircle.Result {len(self.homes)} homes, {len(self.facilities)} facilities, "
                f"score {o.get('score_mean', float('nan')):.1f}>")

    # -- outputs ------------------------------------------------------------------------------
    def save(self, out_dir, map_html: bool = True, force: bool = False) -> Path:
        """Write the analysis folder (see :mod:`lifecircle.io.outputs`) and, with
        ``map_html``, its map, atomically: into a temporary folder, then renamed into place.
        A folder holding files lifecircle did not write is refused unless ``force`` (which
        writes lifecircle's files into it and leaves the others)."""
        from lifecircle.render.maps import save_map

        out = Path(out_dir)
        inputs = [self.source] if self.source and Path(self.source).exists() else []
        with atomic_dir(out, force=force, inputs=inputs, kind="analysis") as tmp:
            write_outputs(self, tmp)
            if map_html:
                # service areas are a city-wide union (seconds per category): `lifecircle map` adds them
                save_map(self.map(service_areas=False), tmp / MAP_HTML)
        return out

    def map(self, **kwargs):
        """The folium map of this result (see :func:`lifecircle.render.maps.result_map`)."""
        from lifecircle.render.maps import result_map

        return result_map(self, **kwargs)

    explore = map

    @classmethod
    def load(cls, out_dir) -> "Result":
        """Read an analysis folder back (see :func:`load_result`)."""
        return load_result(out_dir)


def load_result(out_dir) -> Result:
    """Read an ``analyze`` output folder back into a :class:`Result`: everything later commands
    need is in the folder (network, snaps, profile, the OSM features), so it works wherever the
    folder is copied, without the source file."""
    return Result(**read_outputs(out_dir))
