"""What an analysis computed, as data: :class:`Result`.

Its convenience methods (``save``, ``load``, ``map``, ``summary_table``, Jupyter display) are
one-line delegations to the rooms that do the work: :mod:`lifecircle.io.outputs` for the folder,
:mod:`lifecircle.render` for maps and HTML.
"""

from __future__ import annotations

import atexit
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from lifecircle import columns as col
from lifecircle import i18n
from lifecircle.analyses.isochrones import GAP_RADIUS_M, home_cells
from lifecircle.core.coverage import data_status
from lifecircle.core.engine import AccessEngine
from lifecircle.core.network import WalkNetwork
from lifecircle.core.profiles import Profile
from lifecircle.core.snapping import Snap
from lifecircle.io.osmread import release_freed_memory
from lifecircle.io.outputs import MAP_HTML, atomic_dir, read_outputs, write_outputs
from lifecircle.io.sources import ATTRIBUTION
from lifecircle.render.background import feature_arrays, feature_pieces
from lifecircle.settings import Settings, carried


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
    #: The walking network's connected pieces: kept and left out, and the homes and facilities
    #: that attach to the connected network instead of a left-out piece (see
    #: :func:`lifecircle.core.network.prune_components`). Saved as ``network`` in meta.json.
    network_report: dict = field(default_factory=dict)
    #: Stages run alongside others in a second process (the split read's ``network``): their
    #: time in :attr:`timings` is the wait for it, not its cost. Not saved.
    parallel_stages: tuple = field(default=(), repr=False)
    #: What the analysis worked out for the map beside its later stages (:class:`MapPrep`), or
    #: None. Not saved.
    _map_prep: MapPrep | None = field(default=None, repr=False)
    #: The study area's name as people call it (a batch district's name, a shipped sample's
    #: place, a one-feature boundary's name, or ``analyze(place=...)``); "" when none is known.
    #: Maps put it in their title (the source file's name is then the secondary line).
    place: str = ""

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
        """Categories with no facility in the data (whatever their data status)."""
        present = set(self.facilities[col.CATEGORY])
        return [c.id for c in self.profile.categories if c.id not in present]

    @property
    def data_status(self) -> dict:
        """Category id → ``data`` / ``no_data`` / ``complete`` (see :mod:`lifecircle.columns`)."""
        s = self.summary
        if col.DATA_STATUS in s:
            rows = s[(s.level == "category") & (s.community.astype(str) == "ALL")]
            return dict(zip(rows["id"], rows[col.DATA_STATUS]))
        counts = self.facilities[col.CATEGORY].value_counts().to_dict()
        return data_status(self.profile, counts, self.settings.complete)

    def no_data_categories(self) -> list[str]:
        """Categories with no facility in the data and not declared surveyed: "no data",
        never read as 0 % access."""
        return [k for k, v in self.data_status.items() if v == col.STATUS_NO_DATA]

    def gap_categories(self) -> list[str]:
        """Categories declared surveyed (``complete``) that have no facility: real gaps."""
        present = set(self.facilities[col.CATEGORY])
        return [k for k, v in self.data_status.items() if v == col.STATUS_COMPLETE and k not in present]

    def headline(self, lang: str | None = None) -> str:
        """The "all dimensions within 15 minutes" sentence: over dimensions with data, with the
        figure over all categories beside it."""
        return i18n.headline_text(self.overall(), lang or self.settings.lang, snap_m=self.settings.max_snap_m)

    # -- display ------------------------------------------------------------------------------
    def summary_table(self, lang: str | None = None, community: str = "ALL") -> pd.DataFrame:
        """The summary for people: a category or dimension without data reads 无数据 / "no
        data" (never 0 %); the overall row is over dimensions with data, followed by the same
        figure over all categories, labelled. Levels read as summary.xlsx says them (设施类别 /
        维度 / 总体 in Chinese)."""
        lang = lang or self.settings.lang
        s = self.summary[self.summary.community.astype(str) == str(community)]
        name = "name_zh" if lang == "zh" else "name_en"
        tiers = [col.within(m) for m in self.settings.thresholds_min]
        pct = ["covered", *tiers]
        t = s[["level", "id", name, "minutes", "facilities", *pct, "median_min"]].copy()
        for c in pct:
            t[c] = (100 * t[c].astype(float)).round(1)
        t["median_min"] = t["median_min"].astype(float).round(1)
        status = s[col.DATA_STATUS] if col.DATA_STATUS in s else pd.Series(col.STATUS_DATA, index=s.index)
        t.insert(5, col.DATA_STATUS, [i18n.status_label(v, lang) for v in status])
        t = t.astype({c: object for c in pct + ["median_min"]})
        nodata = (status == col.STATUS_NO_DATA).to_numpy()
        for c in pct + ["median_min"]:
            t.loc[nodata, c] = i18n.status_label(col.STATUS_NO_DATA, lang)
        over = s[s.level == "overall"]
        if len(over) and col.COVERED_ALL_CATEGORIES in over:
            o = over.iloc[0]
            m = o.get(col.DIMENSIONS_TOTAL, np.nan)
            m = int(m) if m == m else len(self.profile.dimensions)
            extra = {c: np.nan for c in t.columns}
            extra.update(level="overall", id="all_categories", minutes=o["minutes"],
                         facilities=o["facilities"])
            extra[name] = (f"全部 {m} 个维度（无数据的类别按不可达计）" if lang == "zh" else
                           f"all {m} dimensions, categories without data counted as no access")
            extra[col.DATA_STATUS] = ""
            extra["covered"] = round(100 * float(o[col.COVERED_ALL_CATEGORIES]), 1)
            t = pd.concat([t, pd.DataFrame([extra], index=[-1])])
        t["level"] = [i18n.label(f"sum.level_{v}", lang) for v in t["level"]]    # 设施类别/维度/总体
        if lang == "zh":
            zh = {"level": "层级", "id": "编号", name: "名称", "minutes": "阈值(分钟)",
                  "facilities": "设施数", col.DATA_STATUS: "数据", "covered": "覆盖率%",
                  "median_min": "中位时间(分钟)"}
            zh.update({col.within(m): f"{m:g}分钟%" for m in self.settings.thresholds_min})
            t.columns = [zh.get(c, c) for c in t.columns]
        return t

    def _repr_html_(self) -> str:
        from lifecircle.render.html import result_html

        return result_html(self)

    def __repr__(self) -> str:
        o = self.overall()
        score = o.get("score_mean", float("nan"))
        shown = f"{score:.1f}" if np.isfinite(score) else "– (no data)"   # never 'nan'
        return (f"<lifecircle.Result {len(self.homes)} homes, {len(self.facilities)} facilities, "
                f"score {shown}>")

    # -- outputs ------------------------------------------------------------------------------
    def save(self, out_dir, map_html: bool = True, force: bool = False) -> Path:
        """Write the analysis folder (see :mod:`lifecircle.io.outputs`) and, with
        ``map_html``, its map, atomically: into a temporary folder, then renamed into place.
        A folder holding files lifecircle did not write is refused unless ``force`` (which
        writes lifecircle's files into it and leaves the others)."""
        out = Path(out_dir)
        inputs = [self.source] if self.source and Path(self.source).exists() else []

        def make_map():
            # imported here, while the GeoPackage is being written: folium's import is a
            # quarter of a second that a command never drawing a map should not pay
            from lifecircle.render.maps import save_map

            # service areas are a city-wide union (seconds per category): `lifecircle map` adds them
            save_map(self.map(service_areas=False), tmp / MAP_HTML)

        self._release_for_save(map_html)
        with atomic_dir(out, force=force, inputs=inputs, kind="analysis") as tmp:
            write_outputs(self, tmp, beside=make_map if map_html else None)
        return out

    def _release_for_save(self, map_html: bool) -> None:
        """Before a save: drop the caches it does not use, and give their memory back, so the
        forked GeoPackage writer does not share them. The network's search graphs and spatial
        indexes, the engine's renumbered network and blocks; the engine itself unless the map
        names each home's nearest facilities (a map of points, not hexagons: the engine's
        :meth:`~lifecircle.core.engine.AccessEngine.nearest_facility` on the reversed network).
        Each is built again when next asked for (:attr:`engine`), with the same results. At a
        million walking nodes ~400 MB that the save (its peak) held for nothing."""
        points_map = map_html and len(self.homes) <= self.settings.map_max_points
        if self._engine is not None:
            if points_map:
                self._engine.release_caches()
            else:
                self._engine = None
        self.network.release_indexes(reverse=not points_map)
        release_freed_memory()

    def map(self, **kwargs):
        """The folium map of this result (see :func:`lifecircle.render.maps.result_map`)."""
        from lifecircle.render.maps import result_map

        return result_map(self, **kwargs)

    explore = map

    @classmethod
    def load(cls, out_dir) -> Result:
        """Read an analysis folder back (see :func:`load_result`)."""
        return load_result(out_dir)


def _background(view, pieces):
    # imported here, on the thread beside the analysis (after the facilities and homes stages,
    # which hold the GIL it needs): folium's import is a quarter of a second that an analysis
    # never drawing a map should not pay
    from lifecircle.render.maps import background_text

    return background_text(view, pieces=pieces)


def _ids(objects) -> np.ndarray:
    return np.fromiter(map(id, objects), dtype=np.uint64, count=len(objects))


#: The name of :class:`MapPrep`'s thread.
MAP_PREP_THREAD = "lifecircle-map-prep"


def map_preparations() -> list[threading.Thread]:
    """The threads of :class:`MapPrep` still alive: only after an analysis failed or was
    interrupted (a stopped preparation ends the piece under way, then its thread)."""
    return [t for t in threading.enumerate() if t.name == MAP_PREP_THREAD and t.is_alive()]


@atexit.register
def _join_map_preparations() -> None:
    """At the interpreter's exit, the preparations still ending their piece (an analysis
    interrupted by Ctrl-C) are waited for: the teardown under a thread inside GEOS crashed
    (a segmentation fault after "interrupted", about 1 Ctrl-C in 10). The console script
    never gets here after a failure with one alive (:func:`lifecircle.cli.app._leave`)."""
    for t in map_preparations():
        t.join()


class MapPrep:
    """The inputs of an analysis's map that its later stages do not change, worked out on
    another thread while those stages run (the map was the longest part of a district's
    save; see ``prepare_map`` in :func:`lifecircle.pipeline.analyze`):

    * from the study area on (the OSM features, clipped, and the analysis CRS known), the
      background's pieces from the features (:func:`lifecircle.render.background.feature_pieces`:
      buildings, water, green areas, rivers, projected and simplified, those that can fit the
      background's budget) — the facilities and homes stages run on one core;
    * once the network and the homes are known (:meth:`then`), for a map of points the homes'
      Voronoi cells (:func:`lifecircle.analyses.isochrones.home_cells`, the gap areas' radius)
      and the whole background with its text (:func:`lifecircle.render.maps.background_text`;
      WGS-84); for a map of hexagons nothing more: the map places the pieces (:meth:`pieces`).

    One thread (one idle core), which :meth:`join` waits for before :func:`analyze` returns:
    no thread outlives the analysis (a save forks its writer only where no other thread runs).
    It reads the features' geometry and tag arrays and the network's edge arrays, which no
    stage changes, and its own copy of the homes' geometries, under the starting thread's
    thread cap. A piece whose making failed is left out (the map makes it itself and meets the
    error as it would have); a piece is handed out only for the very data it was made from
    (:meth:`background`, :meth:`pieces`, :meth:`cells`), else the map makes it.
    """

    def __init__(self, features, crs):
        self._features = features
        self._network = self._homes = None       # set by then()
        self._made: dict = {}
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # the thread reads the features' geometry and tag arrays (no stage changes them: the
        # tables the stages make are new ones), never the frame itself
        self._view = SimpleNamespace(features=None, crs=crs, network=None)
        self._feature_ids = None     # the features' geometry and tag objects (see _same_features)
        if features is not None and len(features):
            self._jobs.put(("pieces", self._pieces, (*feature_arrays(features), crs)))
        self._thread = threading.Thread(target=carried(self._run), daemon=True, name=MAP_PREP_THREAD)
        self._thread.start()

    def __reduce__(self):
        # pickled or deep-copied (a Result sent between processes): nothing prepared, the
        # map makes it all (a thread and its queue do not travel)
        return type(None), ()

    def then(self, network: WalkNetwork, homes_geoms) -> None:
        """The network and the homes' geometries are known: the cells and the background next;
        ``homes_geoms`` None (a hexagon map): neither, the feature pieces are kept for the map
        (:meth:`pieces`)."""
        self._network = network
        if homes_geoms is not None:
            self._view.network = SimpleNamespace(edge_geom=network.edge_geom,
                                                 edge_highway=network.edge_highway)
            # its own array of the homes' geometry objects (held: no other object takes their ids)
            self._homes = np.array(homes_geoms, dtype=object)
            self._jobs.put(("cells", home_cells, (self._homes, GAP_RADIUS_M)))
            self._jobs.put(("background", self._background, ()))
        self._jobs.put(None)

    def _pieces(self, geoms, tags, features_crs, crs):
        # the features as the pieces are made from them: their objects, in order
        self._feature_ids = (_ids(geoms), _ids(tags))
        return feature_pieces(geoms, tags, features_crs, crs, True)

    def _same_features(self, result) -> bool:
        """``result``'s features are those the pieces were made from: the same table holding
        the same geometry and tag objects in the same order (a geometry replaced in place, a
        row dropped: made again, as the homes in :meth:`cells`)."""
        features = result.features
        if features is not self._features:
            return False
        if features is None or not len(features):
            return True
        if self._feature_ids is None:
            return False
        geoms, tags, _ = feature_arrays(features)
        gids, tids = self._feature_ids
        return len(geoms) == len(gids) and np.array_equal(_ids(geoms), gids) \
            and np.array_equal(_ids(tags), tids)

    def _background(self):
        # the pieces stand for the features (background_layers reads them only)
        pieces = self._made.pop("pieces", None)
        if pieces is None and self._features is not None and len(self._features):
            return None     # their making failed: the map makes the background
        return _background(self._view, pieces)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or self._stop.is_set():
                return
            name, fn, args = job
            try:
                made = fn(*args)
            except Exception:   # noqa: BLE001 - left out: the map makes it and meets the error itself
                continue
            if made is not None and not self._stop.is_set():   # stopped: nothing kept
                self._made[name] = made

    def stop(self, wait: bool = True) -> None:
        """No further piece is started and nothing is handed out; ``wait``: wait for the piece
        under way (a failed analysis, or one whose map draws hexagons; not after Ctrl-C, which
        must stop at once: the thread is a daemon and ends after that piece)."""
        self._stop.set()
        self._jobs.put(None)
        if wait:
            self._thread.join()
        self._made.clear()

    def join(self) -> None:
        """Wait until every piece is made (Ctrl-C while waiting stops the rest)."""
        try:
            self._thread.join()
        except BaseException:
            self.stop(wait=False)
            raise

    def background(self, result, gcj: bool = False):
        """The background made for ``result``'s features and network, or None (GCJ-02 is made
        by the map)."""
        if gcj or self._thread.is_alive() or self._stop.is_set() or self._network is None \
                or result.network is not self._network or not self._same_features(result):
            return None
        return self._made.get("background")

    def pieces(self, result):
        """The feature pieces made for ``result``'s features (any basemap: they are metric),
        where the background was not made from them; handed out once (the map places them and
        lets them go: a city's are tens of MB), else None."""
        if self._thread.is_alive() or self._stop.is_set() or not self._same_features(result):
            return None
        return self._made.pop("pieces", None)

    def cells(self, result):
        """The homes' cells made for ``result``'s homes, or None."""
        if self._thread.is_alive() or self._stop.is_set() or self._homes is None:
            return None
        # the very same geometry objects, in the same order (a geometry replaced in place, a
        # home added or dropped: made again): their ids, a millisecond for 20,000 homes
        now = result.homes.geometry.to_numpy()
        if len(now) != len(self._homes) or not np.array_equal(_ids(now), _ids(self._homes)):
            return None
        return self._made.get("cells")


def load_result(out_dir) -> Result:
    """Read an ``analyze`` output folder back into a :class:`Result`: everything later commands
    need is in the folder (network, snaps, profile, the OSM features), so it works wherever the
    folder is copied, without the source file."""
    return Result(**read_outputs(out_dir))
