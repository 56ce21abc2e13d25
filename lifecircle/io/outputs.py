"""The analysis folder: what ``analyze`` writes and every later command reads.

A folder is self-contained — later commands (``map``, ``isochrones``, ``resources``,
``recommend``, ``check``) never re-read the OSM source or the profile file:

- ``lifecircle.gpkg``: layers ``homes``, ``facilities``, ``streets``, ``communities`` (with a
  boundary) and ``about`` (attribution, source, data date), all WGS-84;
- ``osm_features.gpkg``: the OSM features of the study area with their tags (JSON), one layer
  per geometry kind (``points``, ``lines``, ``polygons``);
- ``profile.yaml``: the profile the analysis ran with, as it was then;
- ``summary.csv``, ``meta.json`` (``format`` version, source, data date, CRS, settings, notes,
  timings), ``network.npz`` (the network and the snaps).

Folders are written atomically (:func:`atomic_dir`): into a temporary folder beside the target,
then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from lifecircle import __version__
from lifecircle.core.network import WalkNetwork
from lifecircle.core.profiles import load_profile
from lifecircle.core.snapping import Snap
from lifecircle.errors import OutputError
from lifecircle.io.sources import WGS84, write_about_layer
from lifecircle.settings import Settings

GPKG = "lifecircle.gpkg"
FEATURES_GPKG = "osm_features.gpkg"
PROFILE = "profile.yaml"
SUMMARY = "summary.csv"
META = "meta.json"
NETWORK = "network.npz"
MAP_HTML = "map.html"
#: Version of the folder layout; 2 added the stored profile and OSM features.
FORMAT = 2
_FEATURE_LAYERS = {"points": (0, 4), "lines": (1, 2, 5), "polygons": (3, 6)}   # shapely type ids


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


def write_outputs(result, folder: Path) -> None:
    """Write every file of an analysis folder (but the map) into ``folder``.

    Parameters
    ----------
    result : lifecircle.result.Result
        The analysis.
    folder : pathlib.Path
        An existing (temporary) folder.
    """
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
    if result.features is not None:
        _write_features(result.features, folder / FEATURES_GPKG)
    profile_file = getattr(result.profile, "source_path", None)
    if profile_file and Path(profile_file).is_file():
        shutil.copyfile(profile_file, folder / PROFILE)
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
        "format": FORMAT,
        "lifecircle": __version__, "source": result.source, "data_date": result.data_date,
        "attribution": result.attribution, "crs": result.crs.to_wkt(),
        "profile": result.profile.path if getattr(result.profile, "path", None) else str(result.profile.name),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.settings).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": result.notes,
        "population": getattr(result, "population_info", {}),
        "study_area_wkt": shapely.to_wkt(result.study_area) if result.study_area is not None else None,
    }
    (folder / META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def _write_features(features: gpd.GeoDataFrame, path: Path) -> None:
    kinds = shapely.get_type_id(features.geometry.to_numpy())
    table = pd.DataFrame({
        "osm_type": features["osm_type"].astype(str).to_numpy() if "osm_type" in features else "",
        "osm_id": features["osm_id"].to_numpy() if "osm_id" in features else -1,
        "tags": [json.dumps(t if isinstance(t, dict) else {}, ensure_ascii=False)
                 for t in features["tags"]],
    })
    for layer, ids in _FEATURE_LAYERS.items():
        sel = np.isin(kinds, ids)
        if sel.any():
            gpd.GeoDataFrame(table[sel], geometry=features.geometry.to_numpy()[sel],
                             crs=features.crs or WGS84).to_file(path, layer=layer, driver="GPKG")


def _read_features(path: Path) -> gpd.GeoDataFrame | None:
    if not path.exists():
        return None
    import pyogrio

    parts = []
    for layer, *_ in pyogrio.list_layers(path):
        if layer in _FEATURE_LAYERS:
            parts.append(gpd.read_file(path, layer=layer))
    if not parts:
        return gpd.GeoDataFrame({"osm_type": [], "osm_id": [], "tags": []}, geometry=[], crs=WGS84)
    gdf = pd.concat(parts, ignore_index=True)
    gdf["tags"] = [json.loads(t) if isinstance(t, str) and t else {} for t in gdf["tags"]]
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=WGS84)


def read_outputs(out_dir) -> dict:
    """The fields of a :class:`~lifecircle.result.Result` read from an analysis folder.

    Parameters
    ----------
    out_dir : str or os.PathLike
        A folder written by ``analyze`` / ``Result.save``.

    Returns
    -------
    dict
        Keyword arguments of ``Result``. Folders of an older format load too; their ``features``
        are None (commands that need them say so).
    """
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
    profile = load_profile(out / PROFILE if (out / PROFILE).exists() else meta["profile"])
    hs = Snap(z["home_edge"], z["home_off"], z["home_leg"], np.zeros(len(z["home_edge"]), bool))
    fs = Snap(z["fac_edge"], z["fac_off"], z["fac_leg"], np.zeros(len(z["fac_edge"]), bool))
    area = shapely.from_wkt(meta["study_area_wkt"]) if meta.get("study_area_wkt") else None
    summary = pd.read_csv(out / SUMMARY, encoding="utf-8-sig", keep_default_na=False,
                          na_values=[""])
    return dict(homes=homes, facilities=fac, summary=summary, profile=profile, settings=settings,
                network=net, home_snap=hs, facility_snap=fs, communities=comm, study_area=area,
                source=meta.get("source", ""), data_date=meta.get("data_date"),
                timings=meta.get("timings_s", {}), notes=meta.get("notes", []),
                population_info=meta.get("population") or {},
                features=_read_features(out / FEATURES_GPKG))
