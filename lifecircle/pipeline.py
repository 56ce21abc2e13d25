"""One call from OSM data to per-home walking access: :func:`analyze`.

Stages (each timed in ``Result.timings``): read → study area → network → facilities → homes
→ snapping → engine → coverage. The result holds the tables, the network and the snaps, so
maps, isochrones, what-ifs and the idle-site inventory reuse them without recomputing.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from lifecircle import columns as col
from lifecircle.errors import BoundaryError, InputFileError, LifecircleError, OutputError
from lifecircle.core.coverage import home_scores, summarize
from lifecircle.core.engine import AccessEngine
from lifecircle.core.homes import (apply_population, apply_population_raster, estimate_info,
                                    find_homes, population_notes, read_population_zones)
from lifecircle.core.network import WalkNetwork, build_network
from lifecircle.core.profiles import Profile, load_profile
from lifecircle.settings import DEFAULTS, Settings
from lifecircle.core.snapping import Snap, entry_points, snap_points
from lifecircle.io.sources import ATTRIBUTION, WGS84, OSMData, read_osm, write_about_layer
from lifecircle import __version__
from lifecircle.io.sources import embedded_sample
from lifecircle.io.crs import choose_crs
from lifecircle.i18n import label
from lifecircle.core.classify import classify_features
from lifecircle.io.poitable import merge_facilities, read_poi_table

GPKG = "lifecircle.gpkg"
SUMMARY = "summary.csv"
META = "meta.json"
NETWORK = "network.npz"


# --------------------------------------------------------------------------------------------
# study area


def read_boundary(path, name_column: str | None = None) -> gpd.GeoDataFrame:
    """Boundary polygons in WGS-84 with a ``community`` column (from ``name_column`` or the
    first text column; ``community_<n>`` otherwise)."""
    path = Path(path)
    if not path.exists():
        raise BoundaryError(path, "file not found")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:
        raise BoundaryError(path, f"cannot read as a vector file ({type(exc).__name__}: {exc})") from None
    if len(gdf) == 0:
        raise BoundaryError(path, "holds no features")
    if gdf.crs is None:
        raise BoundaryError(path, "has no coordinate reference system; save it with one (e.g. EPSG:4326)")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise BoundaryError(path, f"must hold polygons, found {', '.join(sorted(kinds))}")
    gdf = gdf.to_crs(WGS84)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.to_numpy())
    if name_column is not None and name_column not in gdf:
        raise BoundaryError(path, f"no column '{name_column}'; columns: {', '.join(map(str, gdf.columns))}")
    if name_column is None:
        text = [c for c in gdf.columns if c != "geometry" and (
            gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c]))]
        prefer = [c for c in text if c.lower() in ("name", "name_zh", "community", "名称", "社区")]
        name_column = (prefer or text or [None])[0]
    names = gdf[name_column].astype(str) if name_column else \
        pd.Series([f"community_{i + 1}" for i in range(len(gdf))], index=gdf.index)
    return gpd.GeoDataFrame({col.COMMUNITY: names.to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=WGS84)


# --------------------------------------------------------------------------------------------
# result


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
    #: total residents and their source (``buildings estimate``, ``population raster`` or
    #: ``community totals``), with what was added or left unmatched; see :mod:`lifecircle.homes`
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
        o = self.overall()
        zh = self.settings.lang == "zh"

        def num(value, fmt):
            return "–" if value is None or value != value else format(value, fmt)

        name = Path(self.source).name if self.source else ""
        src = self.population_info.get("source", "")
        src_zh = label(f"pop.{src}", "zh") if src else ""
        stats = dict(homes=f"{len(self.homes):,}", pop=num(o.get("population"), ",.0f"),
                     fac=f"{len(self.facilities):,}", cats=self.facilities[col.CATEGORY].nunique(),
                     score=num(o.get("score_mean"), ".1f"), gini=num(o.get("score_gini"), ".3f"),
                     all6=num(100 * o["covered"] if o.get("covered") == o.get("covered") else None, ".1f"))
        if zh:
            head = (f"<h4>生活圈分析 — {name}</h4><p>住宅 {stats['homes']} 处，居民 {stats['pop']} 人"
                    f"{'（' + html.escape(src_zh) + '）' if src else ''}，"
                    f"设施 {stats['fac']} 处（{stats['cats']} 类）；平均得分 {stats['score']}，"
                    f"基尼系数 {stats['gini']}；15 分钟内六个维度齐全的居民占 {stats['all6']}%。</p>")
        else:
            head = (f"<h4>lifecircle result — {name}</h4><p>{stats['homes']} homes, {stats['pop']} residents"
                    f"{' (' + html.escape(src) + ')' if src else ''}, "
                    f"{stats['fac']} facilities in {stats['cats']} categories; mean score {stats['score']}, "
                    f"Gini {stats['gini']}; all six dimensions within 15 min: {stats['all6']}% of residents.</p>")
        dims = self.summary_table()
        dims = dims[dims.iloc[:, 0].isin(["dimension", "overall"])]
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (head + dims.to_html(index=False, na_rep="–") + (f"<ul>{notes}</ul>" if notes else "")
                + f"<p><small>{html.escape(self.attribution)}</small></p>")

    def __repr__(self) -> str:
        o = self.overall()
        return (f"<lifecircle.Result {len(self.homes)} homes, {len(self.facilities)} facilities, "
                f"score {o.get('score_mean', float('nan')):.1f}>")

    # -- outputs ------------------------------------------------------------------------------
    def save(self, out_dir, map_html: bool = True) -> Path:
        """Write DIR/lifecircle.gpkg, summary.csv, meta.json, network.npz (and map.html),
        atomically: into a temporary folder first, then renamed into place."""
        out = Path(out_dir)
        with atomic_dir(out) as tmp:
            write_outputs(self, tmp, map_html=map_html)
        return out

    def map(self, **kwargs):
        from lifecircle.render.maps import result_map

        return result_map(self, **kwargs)

    explore = map

    @classmethod
    def load(cls, out_dir) -> "Result":
        return load_result(out_dir)


@contextmanager
def atomic_dir(out: Path):
    """Yield a temporary folder beside ``out``; on success it replaces ``out``."""
    out = Path(out)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; results are shared folders
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc})") from None
    try:
        yield tmp
        if out.exists():
            backup = parent / f".{out.name}.old.{os.getpid()}"
            out.rename(backup)
            tmp.rename(out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_outputs(result: Result, folder: Path, map_html: bool = True) -> None:
    folder = Path(folder)
    gpkg = folder / GPKG
    homes = result.homes.to_crs(WGS84)
    homes.to_file(gpkg, layer="homes", driver="GPKG")
    # facilities keep their own geometry (areas stay polygons)
    result.facilities.to_crs(WGS84).drop(columns="tags", errors="ignore").to_file(
        gpkg, layer="facilities", driver="GPKG")
    if result.communities is not None:
        result.communities.to_crs(WGS84).to_file(gpkg, layer="communities", driver="GPKG")
    streets = result.network.edges_gdf()
    streets.to_crs(WGS84).to_file(gpkg, layer="streets", driver="GPKG")
    write_about_layer(gpkg, result.attribution, source=result.source, data_date=result.data_date)
    summary = result.summary.copy()
    summary["attribution"] = result.attribution   # the CSV travels alone: it carries it too
    summary.to_csv(folder / SUMMARY, index=False, encoding="utf-8-sig")
    net = result.network
    np.savez_compressed(
        folder / NETWORK, node_osmid=net.node_osmid, node_x=net.node_x, node_y=net.node_y,
        edge_u=net.edge_u, edge_v=net.edge_v, edge_len=net.edge_len, edge_oneway=net.edge_oneway,
        home_edge=result.home_snap.edge, home_off=result.home_snap.offset,
        home_leg=result.home_snap.leg, fac_edge=result.facility_snap.edge,
        fac_off=result.facility_snap.offset, fac_leg=result.facility_snap.leg)
    meta = {
        "lifecircle": _version(), "source": result.source, "data_date": result.data_date,
        "attribution": result.attribution, "crs": result.crs.to_wkt(),
        "profile": result.profile.path if getattr(result.profile, "path", None) else str(result.profile.name),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.settings).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": result.notes,
        "population": result.population_info,
        "study_area_wkt": shapely.to_wkt(result.study_area) if result.study_area is not None else None,
    }
    (folder / META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    if map_html:
        from lifecircle.render.maps import result_map

        # service areas are a city-wide union (seconds per category): `lifecircle map` adds them
        result_map(result, service_areas=False).save(str(folder / "map.html"))


def _version() -> str:

    return __version__


def load_result(out_dir) -> Result:
    """Read an ``analyze`` output folder back into a :class:`Result`."""
    out = Path(out_dir)
    for name in (GPKG, META, NETWORK, SUMMARY):
        if not (out / name).exists():
            raise OutputError(f"{out}: not a lifecircle analysis folder (missing {name}); "
                              "run 'lifecircle analyze SOURCE --out DIR' first")
    meta = json.loads((out / META).read_text(encoding="utf-8"))
    crs = pyproj.CRS.from_wkt(meta["crs"])
    st = dict(meta["settings"])
    st["thresholds_min"] = tuple(st["thresholds_min"])
    settings = Settings(**st)
    z = np.load(out / NETWORK)
    edges = gpd.read_file(out / GPKG, layer="streets").to_crs(crs)
    net = WalkNetwork(crs, z["node_osmid"], z["node_x"], z["node_y"], z["edge_u"], z["edge_v"],
                      z["edge_len"], z["edge_oneway"], edges.geometry.to_numpy(),
                      settings.walk_speed_mps,
                      edges["highway"].to_numpy() if "highway" in edges else None)
    homes = gpd.read_file(out / GPKG, layer="homes").to_crs(crs)
    fac = gpd.read_file(out / GPKG, layer="facilities").to_crs(crs)
    try:
        comm = gpd.read_file(out / GPKG, layer="communities").to_crs(crs)
    except Exception:
        comm = None
    profile = load_profile(meta["profile"])
    hs = Snap(z["home_edge"], z["home_off"], z["home_leg"], np.zeros(len(z["home_edge"]), bool))
    fs = Snap(z["fac_edge"], z["fac_off"], z["fac_leg"], np.zeros(len(z["fac_edge"]), bool))
    area = shapely.from_wkt(meta["study_area_wkt"]) if meta.get("study_area_wkt") else None
    summary = pd.read_csv(out / SUMMARY, encoding="utf-8-sig", keep_default_na=False,
                          na_values=[""])
    return Result(homes, fac, summary, profile, settings, net, hs, fs, comm, area,
                  meta.get("source", ""), meta.get("data_date"), meta.get("timings_s", {}),
                  meta.get("notes", []), population_info=meta.get("population") or {})


# --------------------------------------------------------------------------------------------
# the pipeline


class _Stages:
    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, name: str):
        if self.progress:
            self.progress(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0


STAGES = ("read", "study area", "network", "facilities", "homes", "snap", "engine", "coverage")


def analyze(source=None, *, boundary=None, boundary_name: str | None = None,
            profile: str | os.PathLike | Profile = "default", speed: float | None = None,
            settings: Settings | None = None, facilities_table=None, facilities_crs: str = "wgs84",
            population=None, population_column: str = col.POPULATION, population_raster=None,
            progress: Callable[[str], None] | None = None, **overrides) -> Result:
    """Analyse a district: walking time from every home to every facility category.

    ``source``: an OSM file (.osm.pbf/.osm/.osm.bz2), a place name, a bbox tuple, a polygon,
    an :class:`~lifecircle.io.sources.OSMData`, or None for the embedded Helsinki sample.
    ``boundary``: a polygon file (any CRS); several polygons give per-community results.
    ``facilities_table``: an extra facility table (CSV/XLSX, e.g. Amap POIs) merged with OSM.
    ``population_raster``: a people-per-cell GeoTIFF (WorldPop/GHSL) spread over the homes by
    floor area; ``population``: polygons with a ``population_column`` of residents (community
    totals, a file or a GeoDataFrame) that rescale the homes inside them. Given both, the
    raster is applied first and the community totals then rescale it. Every resident of the
    raster / zones over the study area ends up at a home (stand-in homes where none is mapped).
    ``speed`` (km/h) and other keyword ``overrides`` change :class:`Settings` fields.

    >>> import lifecircle
    >>> r = lifecircle.analyze()                      # doctest: +SKIP
    >>> r.summary_table().head()                      # doctest: +SKIP
    """
    settings = (settings or DEFAULTS).with_(walk_speed_kmh=speed, **overrides)
    stage = _Stages(progress)
    notes: list[str] = []
    prof = load_profile(profile)
    with stage("read"):
        if source is None:

            source = embedded_sample()
        data = source if isinstance(source, OSMData) else read_osm(source)

    with stage("study area"):
        communities = None
        streets_wgs = data.streets
        bounds = streets_wgs.total_bounds
        lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        if boundary is not None:
            communities = boundary if isinstance(boundary, gpd.GeoDataFrame) else \
                read_boundary(boundary, boundary_name)
            if col.COMMUNITY not in communities:
                communities = communities.assign(**{col.COMMUNITY: [f"community_{i + 1}" for i in range(len(communities))]})
            communities = communities.to_crs(WGS84)
            area_wgs = shapely.union_all(communities.geometry.to_numpy())
            data_box = shapely.box(*bounds)
            if not area_wgs.intersects(data_box):
                raise BoundaryError(str(boundary), f"does not overlap the data ({data.source}: streets "
                                    f"span lon {bounds[0]:.4f}..{bounds[2]:.4f}, lat {bounds[1]:.4f}..{bounds[3]:.4f})")
            c = area_wgs.centroid
            lon, lat = c.x, c.y

        crs = choose_crs(settings.crs, lon, lat)
        if communities is not None:
            communities = communities.to_crs(crs)
            area = shapely.union_all(communities.geometry.to_numpy())
            keep_area = area.buffer(settings.boundary_margin_m)
            keep_wgs = gpd.GeoSeries([keep_area], crs=crs).to_crs(WGS84).iloc[0]
            data = data.clip(keep_wgs)
        else:
            area = None

    with stage("network"):
        net = build_network(data.streets, crs, settings, source=data.source)

    with stage("facilities"):

        fac = classify_features(data.features, prof)
        fac["source"] = "osm"
        if facilities_table is not None:

            table = read_poi_table(facilities_table, profile=prof, crs=facilities_crs)
            dropped = table.attrs.get("dropped", [])
            if dropped:
                notes.append(f"{facilities_table}: {len(dropped)} row(s) dropped")
            fac = merge_facilities(fac, table, distance_m=settings.merge_distance_m)
            fac[col.DIMENSION] = [prof.dimension_of(c) for c in fac[col.CATEGORY]]
        fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=WGS84).to_crs(crs)
        if col.CAPACITY not in fac:
            fac[col.CAPACITY] = 1.0
        fac = fac.reset_index(drop=True)

    with stage("homes"):
        homes = find_homes(data.features, crs, settings, streets=data.streets)
        if area is not None:
            inside = shapely.intersects(homes.geometry.to_numpy(), area)
            homes = homes[inside].reset_index(drop=True)
            homes[col.HOME_ID] = np.arange(len(homes))
        pop_info = estimate_info(homes)
        estimate_total = pop_info["total"]
        # where measured population is matched: the study area, or the street network's hull
        region = area if area is not None else shapely.convex_hull(shapely.multipoints(
            np.column_stack([net.node_x, net.node_y])))
        if population_raster is not None:
            homes, pop_info = apply_population_raster(homes, population_raster, region)
        if population is not None:
            if isinstance(population, gpd.GeoDataFrame):
                table, name = population, "population table"
            else:
                table, name = read_population_zones(population), str(population)
            over = pop_info["source"]
            homes, pop_info = apply_population(homes, table, population_column, name, region)
            if population_raster is not None:
                pop_info["over"] = over
        pop_info["estimate_total"] = estimate_total
        if area is not None:
            joined = gpd.sjoin(homes[["geometry"]], communities[[col.COMMUNITY, "geometry"]],
                               predicate="intersects", how="left")
            joined = joined[~joined.index.duplicated()]
            homes[col.COMMUNITY] = joined[col.COMMUNITY].to_numpy()
        notes.extend(population_notes(pop_info))
        if len(homes) == 0:
            raise InputFileError(data.source, "no homes found: no residential buildings or residential "
                                 "land use in the study area (pass a population file)")

    with stage("snap"):
        hs = snap_points(net, homes.geometry.to_numpy(), settings.max_snap_m)
        fs = snap_points(net, entry_points(net, fac.geometry.to_numpy()), settings.max_snap_m)
        homes[col.REACHABLE] = hs.reachable
        homes[col.SNAP_LEG_M] = hs.leg
        fac[col.REACHABLE] = fs.reachable
        if (~hs.reachable).any():
            notes.append(f"{int((~hs.reachable).sum())} home(s) farther than {settings.max_snap_m:g} m "
                         "from any walkable street: unreachable")
        if (~fs.reachable).any():
            notes.append(f"{int((~fs.reachable).sum())} facility(ies) farther than "
                         f"{settings.max_snap_m:g} m from any walkable street: left out")

    with stage("engine"):
        engine = AccessEngine(net, hs, homes[col.POPULATION].to_numpy(float), settings)
        cats = prof.categories
        cat_of = fac[col.CATEGORY].to_numpy()
        snaps = [fs.take(np.flatnonzero(cat_of == c.id)) for c in cats]
        caps = [fac[col.CAPACITY].to_numpy(float)[cat_of == c.id] for c in cats]
        sfca_min = [settings.sfca_minutes or c.minutes for c in cats]
        metrics = engine.reach(snaps, capacities=caps, sfca_min=sfca_min)
        new = {}
        for i, c in enumerate(cats):
            new[col.time(c.id)] = metrics.nearest[i]
        for i, c in enumerate(cats):
            for q, thr in enumerate(metrics.thresholds):
                new[col.count(c.id, thr)] = metrics.counts[i, q]
        for i, c in enumerate(cats):
            new[col.kmean(c.id)] = metrics.kmean[i]
            new[col.decay(c.id)] = metrics.decay[i]
            new[col.sfca(c.id)] = metrics.sfca[i]
        homes = pd.concat([homes, pd.DataFrame(new, index=homes.index)], axis=1)
        homes = gpd.GeoDataFrame(homes, geometry="geometry", crs=crs)

    with stage("coverage"):
        homes = home_scores(homes, prof, settings.dimension_cover_share, settings.thresholds_min)
        counts = fac[fac[col.REACHABLE]].groupby(col.CATEGORY).size().to_dict()
        summary = summarize(homes, prof, counts, group=col.COMMUNITY if communities is not None else None,
                            tiers=settings.thresholds_min)
        empty = [c.id for c in cats if counts.get(c.id, 0) == 0]
        if empty:
            notes.append(f"{len(empty)} categor{'y has' if len(empty) == 1 else 'ies have'} no facility in "
                         f"the area: {', '.join(empty)}")
    return Result(homes, fac, summary, prof, settings, net, hs, fs, communities, area,
                  data.source, data.data_date, stage.timings, notes, engine, population_info=pop_info)
