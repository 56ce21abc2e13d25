"""A synthetic city made from a real result by repetition, for the map's size budget."""

from __future__ import annotations

import dataclasses
import types

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def tiled(result, nx: int, ny: int):
    """A synthetic city: ``result`` repeated on an nx × ny grid (homes, facilities, OSM
    features, streets), for the map's size budget."""
    x0, y0, x1, y1 = shapely.total_bounds(result.network.edge_geom)
    offs = [(i * (x1 - x0) * 1.05, j * (y1 - y0) * 1.05) for i in range(nx) for j in range(ny)]

    def geoms(g):
        return np.concatenate([shapely.transform(g, lambda c, d=d: c + d) for d in offs])

    def frame(df):
        data = pd.concat([pd.DataFrame(df.drop(columns=df.geometry.name))] * len(offs), ignore_index=True)
        return gpd.GeoDataFrame(data, geometry=geoms(df.geometry.to_numpy()), crs=df.crs)

    net = types.SimpleNamespace(crs=result.crs, edge_geom=geoms(np.asarray(result.network.edge_geom)),
                                edge_highway=np.tile(np.asarray(result.network.edge_highway, dtype=object),
                                                     len(offs)))
    return dataclasses.replace(result, homes=frame(result.homes), facilities=frame(result.facilities),
                               features=frame(result.features.to_crs(result.crs)).to_crs(4326),
                               network=net, _engine=None)
