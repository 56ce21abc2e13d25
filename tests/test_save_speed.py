"""``Result.save`` hands the writes besides the GeoPackage and the map (the OSM features file,
the small files) to whichever of the parent (after the map) and the writer child (after the
GeoPackage) is free first (:class:`lifecircle.io.outputs._Claims`).

Whoever writes them, the folder reads the same as one written in a single process; each write
is done exactly once; a child that dies after taking one has it redone here; a write failing
here surfaces and leaves nothing behind; the map's objects are freed before the features are
written (their memory would add up); the map's background made kind by kind is the same.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
import weakref

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import test_write_parallel
from test_write_parallel import _assert_same, _content, _counting_fork

import lifecircle.io.outputs as O
from lifecircle.errors import OutputError
from lifecircle.render import background, maps

pytestmark = pytest.mark.skipif(not O.FORK_GPKG, reason="the writer child exists only on Linux")

#: the Helsinki folder written in one process (test_write_parallel's module fixtures)
one_process_folder = test_write_parallel.one_process_folder
one_process = test_write_parallel.one_process


def _who_writes(monkeypatch, tmp_path, fail_in_child=()):
    """Log (in a file: the child's memory is its own) which process ran each side write;
    the writes named in ``fail_in_child`` raise when the child runs them."""
    log = tmp_path / "who.log"
    real = O._side_writes

    def side_writes(result, folder):
        def logged(name, write):
            def run():
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                try:
                    os.write(fd, f"{name} {os.getpid()}\n".encode())
                finally:
                    os.close(fd)
                if name in fail_in_child and os.getpid() != parent:
                    raise MemoryError("the child ran out of memory")
                write()
            return run

        return {name: logged(name, write) for name, write in real(result, folder).items()}

    parent = os.getpid()
    monkeypatch.setattr(O, "_side_writes", side_writes)

    def read():
        pairs = [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []
        return [(name, "parent" if int(pid) == parent else "child") for name, pid in pairs]

    return read


def _slow_map(monkeypatch, seconds=1.5):
    real = maps.save_map

    def slow(m, path, offline=None):
        time.sleep(seconds)
        return real(m, path, offline)

    monkeypatch.setattr(maps, "save_map", slow)


def _slow_child(monkeypatch, seconds=1.5):
    parent, real = os.getpid(), O._write_gpkg

    def slow(result, folder, *handed):
        if os.getpid() != parent:
            time.sleep(seconds)
        real(result, folder, *handed)

    monkeypatch.setattr(O, "_write_gpkg", slow)


def test_a_long_map_leaves_the_side_writes_to_the_child(helsinki, one_process, tmp_path, monkeypatch):
    who = _who_writes(monkeypatch, tmp_path)
    _slow_map(monkeypatch)
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    assert sorted(who()) == [("features", "child"), ("files", "child")]
    _assert_same(_content(tmp_path / "out"), one_process)


def test_a_long_geopackage_leaves_the_side_writes_to_the_parent(helsinki, one_process, tmp_path,
                                                                 monkeypatch):
    who = _who_writes(monkeypatch, tmp_path)
    _slow_child(monkeypatch)
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    assert sorted(who()) == [("features", "parent"), ("files", "parent")]
    _assert_same(_content(tmp_path / "out"), one_process)


def test_a_child_dying_in_a_side_write_has_it_redone_here(helsinki, one_process, tmp_path, monkeypatch):
    """The child takes the features (the map is long), writes half a file and dies: the
    parent writes the GeoPackage and every side write it did not do itself."""
    who = _who_writes(monkeypatch, tmp_path, fail_in_child=("features",))
    _slow_map(monkeypatch)
    parent, real = os.getpid(), O._write_features_file

    def half(result, folder):
        if os.getpid() != parent:
            (folder / O.FEATURES_FILE).write_bytes(b"half")
        real(result, folder)

    monkeypatch.setattr(O, "_write_features_file", half)
    forks = _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert len(forks) == 1
    got = who()
    assert got[0] == ("features", "child")            # taken there first, failed there
    assert sorted(got[1:]) == [("features", "parent"), ("files", "parent")]
    _assert_same(_content(tmp_path / "out"), one_process)


def test_a_side_write_failing_here_surfaces_and_leaves_no_output(helsinki, tmp_path, monkeypatch):
    _slow_child(monkeypatch, 3.0)               # the parent takes the side writes
    parent = os.getpid()

    def broken(result, folder):
        if os.getpid() == parent:
            raise OutputError("summary.csv: disk full", zh="summary.csv：磁盘已满")

    monkeypatch.setattr(O, "_write_files", broken)
    forks = _counting_fork(monkeypatch)
    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(OutputError, match="disk full"):
        helsinki.save(out / "out")
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):      # the child was stopped and reaped
        os.waitpid(forks[0], os.WNOHANG)
    assert list(out.iterdir()) == []             # neither the folder nor a temporary one


def _claim_in_two(tmp_path, names, monkeypatch=None):
    log = tmp_path / "claims.log"

    def writes():
        def one(name):
            def run():
                time.sleep(0.002)
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                try:
                    os.write(fd, f"{name} {os.getpid()}\n".encode())
                finally:
                    os.close(fd)
            return run
        return {n: one(n) for n in names}

    monkeypatch.setattr(O, "_fork_safe", lambda: True)
    with O._Claims(names) as claims:
        child = O._fork(lambda: claims.run(writes()))
        assert child is not None
        mine = claims.run(writes())
        assert child.join()
    rows = [ln.split() for ln in log.read_text().splitlines()]
    return mine, [(n, int(p)) for n, p in rows]


def test_each_claimed_write_runs_once_in_one_of_the_two_processes(tmp_path, monkeypatch):
    names = [f"w{i}" for i in range(60)]
    mine, rows = _claim_in_two(tmp_path, names, monkeypatch)
    assert sorted(n for n, _ in rows) == sorted(names)              # each once
    assert sorted(mine) == sorted(n for n, p in rows if p == os.getpid())
    assert len({p for _, p in rows}) <= 2


def test_without_a_pipe_every_write_is_the_parents(tmp_path, monkeypatch):
    def no_pipe():
        raise OSError(24, "Too many open files")

    names = ["features", "files"]
    real_pipe = os.pipe
    calls = []

    def pipe():
        calls.append(1)
        if len(calls) == 1:          # the claims' pipe; _fork's own report pipe still opens
            return no_pipe()
        return real_pipe()

    monkeypatch.setattr(O.os, "pipe", pipe)
    mine, rows = _claim_in_two(tmp_path, names, monkeypatch)
    assert mine == names
    assert rows == [(n, os.getpid()) for n in names]


def test_the_map_is_freed_before_the_features_are_written(helsinki, tmp_path, monkeypatch):
    """Its objects (folium's elements are cycles) would otherwise live until the collector
    resumes, their memory beside the features' transient memory."""
    _slow_child(monkeypatch)                    # the parent writes the features, after the map
    maps_made = []
    real_save = maps.save_map

    def save_map(m, path, offline=None):
        maps_made.append(weakref.ref(m))
        return real_save(m, path, offline)

    monkeypatch.setattr(maps, "save_map", save_map)
    parent, real = os.getpid(), O._write_features_file
    alive = []

    def features(result, folder):
        if os.getpid() == parent:
            alive.append([r() is not None for r in maps_made])
        real(result, folder)

    monkeypatch.setattr(O, "_write_features_file", features)
    _counting_fork(monkeypatch)
    helsinki.save(tmp_path / "out")
    assert alive == [[False]]


def test_a_river_in_the_background_is_the_rivers_own_lines(helsinki):
    """Water, green and river geometry is made when its turn in the budget comes: the river
    is the union of the simplified river lines, not of lines of another kind made meanwhile
    (the main streets come first)."""
    r = helsinki
    box = shapely.box(*gpd.GeoSeries(r.network.edge_geom, crs=r.crs).to_crs(4326).total_bounds)
    c = box.centroid
    river = shapely.LineString([(c.x - 0.004, c.y - 0.001), (c.x - 0.001, c.y + 0.0004),
                                (c.x + 0.002, c.y + 0.0011), (c.x + 0.004, c.y - 0.0006)])
    feats = r.features
    extra = gpd.GeoDataFrame({"osm_type": ["way"], "osm_id": [-1], "tags": [{"waterway": "river"}]},
                             geometry=[river], crs=feats.crs)
    with_river = dataclasses.replace(r, features=pd.concat([feats, extra], ignore_index=True))
    gc.collect()
    bg = maps.background_layers(with_river)
    assert "major" in bg and "river" in bg
    metric = gpd.GeoSeries([river], crs=4326).to_crs(r.crs).to_numpy()
    expected = shapely.union_all(shapely.simplify(metric, 3.0, preserve_topology=False))
    shown = maps.display_geometries(np.array([expected], dtype=object), r.crs, False, maps.BACKGROUND_DECIMALS)
    assert len(bg["river"]) == 1
    assert shapely.to_wkb(bg["river"].iloc[0]) == shapely.to_wkb(shown[0])
    # the other kinds are what they are without the river
    plain = maps.background_layers(r)
    for kind in ("major", "water", "green", "streets", "buildings"):
        if kind in plain:
            assert shapely.to_wkb(bg[kind].iloc[0]) == shapely.to_wkb(plain[kind].iloc[0]), kind


def test_layer_batches_are_what_from_pandas_gives(monkeypatch):
    """The attribute columns of a layer written by lifecircle itself, converted a batch at a
    time from each column's values taken once, are the Arrow table ``from_pandas`` makes of
    each batch: NaN as null, the same types (text stored by Arrow, text in Python objects
    with gaps, small and nullable integers, flags), columns pandas holds in one 2-D block
    (not contiguous) included."""
    import pyarrow as pa
    import pyproj

    monkeypatch.setattr(O, "LAYER_CHUNK", 7)
    rng = np.random.default_rng(5)
    n = 30
    block = rng.uniform(0, 60, (n, 3))
    block[rng.random((n, 3)) < 0.3] = np.nan
    frame = pd.DataFrame(block, columns=["t_a", "t_b", "t_c"])      # one F-ordered block
    frame["n_x"] = rng.integers(0, 9, n).astype(np.int16)
    frame["flag"] = rng.random(n) < 0.5
    frame["name"] = pd.array([None if i % 4 == 0 else f"名 {i}" for i in range(n)], dtype="string[pyarrow]")
    frame["kind"] = np.array([None if i % 5 == 0 else "=cmd" if i % 3 else "shop" for i in range(n)],
                             dtype=object)
    frame["count"] = pd.array([None if i % 6 == 0 else i for i in range(n)], dtype="Int64")
    frame["big"] = np.arange(n, dtype=np.int64) * 10**12
    cols = list(frame.columns)
    geoms = shapely.points(rng.uniform(0, 1000, (n, 2)))
    crs = pyproj.CRS.from_epsg(32633)
    kind, schema, batches = O._layer_batches(frame, cols, geoms, crs, "geometry", 2)
    got = pa.Table.from_batches(list(batches), schema=schema)
    tr = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_user_input(O.WGS84), always_xy=True)
    want = []
    for a in range(0, n, 7):
        t = pa.Table.from_pandas(frame.iloc[a:a + 7], columns=cols, preserve_index=False)
        want.append(t.replace_schema_metadata(None).add_column(
            2, pa.field("geometry", pa.binary()), pa.chunked_array([O._layer_wkb(geoms[a:a + 7], 0, tr)])))
    want = pa.concat_tables(want)
    assert got.schema.equals(want.schema)
    assert got.equals(want)
    assert got.column("t_a").null_count == int(np.isnan(block[:, 0]).sum()) > 0
    assert shapely.to_wkb(shapely.from_wkb(got.column("geometry").to_pylist()[3])) == got.column("geometry").to_pylist()[3]


def test_hexagon_map_reads_only_the_reachable_homes_columns_it_needs(helsinki):
    """Beyond ``map_max_points`` homes the map bins the reachable homes into hexagons: the
    residents and the population-weighted scores of each hexagon are those of the reachable
    homes (computed here from the selected rows, as the map did before it stopped copying the
    whole home table to select them)."""
    from lifecircle import columns as col

    r = helsinki
    homes = r.homes.copy()
    reach = np.ones(len(homes), bool)
    reach[::7] = False
    homes[col.REACHABLE] = reach
    small = dataclasses.replace(r, homes=homes, settings=dataclasses.replace(r.settings, map_max_points=10))
    page = small.map(service_areas=False, gaps=False, nearest_names=False).get_root().render()

    base = homes[homes[col.REACHABLE]]
    reps = maps._surface_points(base.geometry.to_numpy())
    inv, centres = maps.hex_bins(shapely.get_coordinates(reps), r.settings.map_hex_m)
    k = len(centres)
    pop = base[col.POPULATION].to_numpy(float)
    residents = maps._numbers_js(np.round(np.bincount(inv, weights=pop, minlength=k)).astype(np.int64))
    counts = maps._numbers_js(np.bincount(inv, minlength=k))
    v = base[col.SCORE].to_numpy(float)
    ok = np.isfinite(v)
    wsum = np.bincount(inv, weights=np.where(ok, pop, 0.0), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, np.bincount(inv, weights=np.where(ok, pop * v, 0.0), minlength=k) / wsum, np.nan)
    assert k > 3 and np.bincount(inv, minlength=k).sum() == reach.sum() < len(homes)
    assert f'"p":{residents}' in page or f'"p": {residents}' in page
    assert f'"n":{counts}' in page or f'"n": {counts}' in page
    first = str(maps._numbers_js(mean[:, None], 1))     # the overall score, hexagon by hexagon
    assert [row.split(",")[0] for row in first[2:-2].split("],[")] == \
        [row.split(",")[0] for row in _js_rows(page, "s")]


def _js_rows(page: str, key: str) -> list[str]:
    """The rows of the 2-D number table ``key`` of the homes script's data."""
    at = page.index(f'"{key}":[[') + len(key) + 5
    return page[at:page.index("]]", at)].split("],[")


def test_polygons_keep_four_coordinates_a_part_however_simplified():
    """What the background's shortcut relies on: GEOS's topology-preserving simplification
    keeps every non-empty polygon part, each ring with at least 4 coordinates, at any
    tolerance; so 4 a part is the least a kind of areas can take of the budget."""
    sq = shapely.box(0, 0, 100, 100)
    holed = shapely.Polygon(sq.exterior.coords, [shapely.box(10, 10, 20, 20).exterior.coords,
                                                   shapely.box(50, 50, 52, 51).exterior.coords])
    wiggly = shapely.Polygon([(np.cos(a) * 500 + (7 if i % 2 else 0), np.sin(a) * 500)
                              for i, a in enumerate(np.linspace(0, 2 * np.pi, 400, endpoint=False))])
    geoms = np.array([
        sq, holed, wiggly,
        shapely.Polygon([(0, 0), (1e-9, 0), (2e-9, 0), (0, 0)]),                   # no area
        shapely.Polygon([(0, 0), (0, 0), (1, 0), (1, 1), (1, 1), (0, 0)]),         # repeated points
        shapely.MultiPolygon([shapely.box(200, 0, 201, 1), shapely.box(300, 0, 300.5, 0.5)]),
        shapely.Polygon(),
        shapely.MultiPolygon([shapely.box(400, 0, 401, 1)]),
    ], dtype=object)
    least = 4 * background._polygon_parts(geoms)
    assert background._polygon_parts(geoms) == 8
    for tol in (0.0, 2.0, 10.0, 30.0, 1e9):
        s = shapely.simplify(geoms, tol) if tol else geoms
        parts = shapely.get_parts(s[~shapely.is_empty(s)])
        assert len(parts) == 8
        n = shapely.get_num_coordinates(parts)
        assert n.min() >= 4 and n.sum() >= least


@pytest.mark.parametrize("budget", [background.BACKGROUND_BUDGET, 30_000, 8_000, 3_000, 600])
def test_areas_that_cannot_fit_are_left_out_as_after_simplifying_them(helsinki, monkeypatch, budget):
    """Water or green areas that cannot fit the budget at any tolerance are left out without
    being made: the same layers and the same "left out" list as making and trying them."""
    def layers():
        bg = maps.background_layers(helsinki)
        return {k: ([shapely.to_wkb(g) for g in v.to_numpy()] if hasattr(v, "to_numpy") else v)
                for k, v in bg.items()}

    monkeypatch.setattr(background, "BACKGROUND_BUDGET", budget)
    made = []
    real = shapely.simplify

    def counting(geoms, tolerance, *a, **k):
        made.append(np.size(geoms))
        return real(geoms, tolerance, *a, **k)

    monkeypatch.setattr(maps.shapely, "simplify", counting)
    quick = layers()
    quick_made = list(made)
    monkeypatch.setattr(background, "_polygon_parts", lambda geoms: 0)     # no shortcut: made, tried
    made.clear()
    slow = layers()
    assert quick == slow
    if any(k in quick["left_out"] for k in ("water", "green")):
        assert sum(quick_made) < sum(made)                    # the shortcut was taken
