"""Batch runs on Dask (lifecircle.batch): config validation, failure isolation, resume,
combined table and index page, on the Nanjing extract and the embedded Helsinki sample."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file

from lifecircle import columns as col
from lifecircle.batch import DISTRICT_META, district_hash, district_row, load_config, run
from lifecircle.errors import ConfigError
from lifecircle.settings import DEFAULTS

NANJING_WEST = (118.756, 32.029, 118.778, 32.059)
NANJING_EAST = (118.778, 32.029, 118.800, 32.059)
KAMPPI = [24.9352, 60.1641, 24.9443, 60.1716]
BROKEN = [118.70, 32.00, 118.72, 32.02]   # Nanjing coordinates, but taken from the Helsinki source


def _write_config(folder: Path, nanjing: Path) -> Path:
    gpd.GeoDataFrame({"name": ["Nanjing West", "Nanjing East"], "pop": [1, 2]},
                     geometry=[shapely.box(*NANJING_WEST), shapely.box(*NANJING_EAST)],
                     crs="EPSG:4326").to_file(folder / "nanjing_districts.geojson", driver="GeoJSON")
    text = f"""
        name = "test batch"
        out = "out"
        profile = "default"
        speed = 4.0
        lang = "en"

        [sources]
        nanjing = "{nanjing}"
        helsinki = {{ sample = "helsinki" }}

        [[districts]]
        file = "nanjing_districts.geojson"
        name_column = "name"
        source = "nanjing"

        [[districts]]
        name = "Kamppi"
        bbox = {KAMPPI}
        source = "helsinki"

        [[districts]]
        name = "Broken"
        bbox = {BROKEN}
        source = "helsinki"
    """
    path = folder / "batch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client

    from lifecircle.batch import make_cluster

    with make_cluster(2, processes=False) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def batch(tmp_path_factory, client):
    nanjing = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    folder = tmp_path_factory.mktemp("batch")
    config = _write_config(folder, nanjing)
    first = run(config, client=client)
    out = first.out_dir
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.parent != out}
    second = run(config, client=client, resume=True)
    return config, first, second, stamps


def test_config_reads_districts(batch):
    config, *_ = batch
    cfg = load_config(config)
    assert [d.name for d in cfg.districts] == ["Nanjing West", "Nanjing East", "Kamppi", "Broken"]
    assert [d.source for d in cfg.districts] == ["nanjing", "nanjing", "helsinki", "helsinki"]
    assert cfg.out_dir == (config.parent / "out").resolve()
    assert cfg.districts[0].geometry.equals(shapely.box(*NANJING_WEST))
    assert [d.slug for d in cfg.districts] == ["Nanjing_West", "Nanjing_East", "Kamppi", "Broken"]


def test_broken_district_is_isolated(batch):
    _, first, _, _ = batch
    assert first.statuses == {"Nanjing West": "done", "Nanjing East": "done", "Kamppi": "done",
                              "Broken": "failed"}
    assert list(first.table["district"]) == ["Nanjing West", "Nanjing East", "Kamppi"]
    assert list(first.failures["district"]) == ["Broken"]
    err = first.failures["error"].iloc[0]
    assert "BoundaryError" not in err and "does not overlap" in err and "helsinki" in err   # the message, as people read it
    assert not (first.out_dir / "Broken").exists()
    fails = pd.read_csv(first.out_dir / "failures.csv", encoding="utf-8-sig")
    assert list(fails["district"]) == ["Broken"]


def test_district_folders_and_hash(batch):
    config, first, _, _ = batch
    cfg = load_config(config)
    for ds in cfg.districts[:3]:
        folder = first.out_dir / ds.slug
        for name in ("lifecircle.gpkg", "summary.csv", "meta.json", "network.npz", "map.html", DISTRICT_META):
            assert (folder / name).exists(), (folder, name)
        meta = json.loads((folder / DISTRICT_META).read_text(encoding="utf-8"))
        assert meta["config_hash"] == district_hash(cfg, ds)
        assert meta["district"] == ds.name
        page = (folder / "map.html").read_text(encoding="utf-8")
        assert "OpenStreetMap contributors" in page
        # the district's own name titles its map (it was the source file's name)
        assert f"<title>{ds.name} — 15-minute life circle</title>" in page
    # no temporary folders left behind by the atomic writes (only lifecircle's marker)
    assert [p.name for p in first.out_dir.iterdir() if p.name.startswith(".")] == [".lifecircle"]
    # the hash follows the config: another walking speed or another bbox is another hash
    ds = cfg.districts[2]
    base = district_hash(cfg, ds)
    cfg.speed = 3.0
    assert district_hash(cfg, ds) != base
    cfg.speed = 4.0
    assert district_hash(cfg, ds) == base
    ds.boundary = ds.boundary.set_geometry([shapely.box(24.9352, 60.1641, 24.9443, 60.1700)])
    assert district_hash(cfg, ds) != base


def test_combined_row_matches_a_direct_analysis(batch):
    """The batch pre-clips the extract per district; the row must equal a plain analyze()."""
    from lifecircle.io.sources import read_osm
    from lifecircle.pipeline import analyze

    _, first, _, _ = batch
    nanjing = shared_file("china/nanjing_xinjiekou_2021.osm.pbf")
    boundary = gpd.GeoDataFrame({col.COMMUNITY: ["Nanjing East"]}, geometry=[shapely.box(*NANJING_EAST)],
                                crs="EPSG:4326")
    direct = analyze(read_osm(nanjing), boundary=boundary, speed=4.0)
    row = first.table.set_index("district").loc["Nanjing East"]
    expect = district_row(direct.summary)
    for key in ("population", "homes", "score_mean", "score_gini", col.ALL_SIX_15):
        assert row[key] == pytest.approx(expect[key], rel=1e-9, abs=1e-12), key
    homes = direct.homes
    pop = homes[col.POPULATION].to_numpy(float)
    reach = homes[col.REACHABLE].to_numpy(bool)
    assert row["population"] == pytest.approx(pop.sum())
    assert row["homes"] == len(homes) > 20
    # coverage per dimension = population share of reachable homes with cov_<dim> = 1
    for dim in direct.profile.dimensions:
        flag = np.nan_to_num(homes[col.dim_covered(dim.id)].to_numpy(float)) > 0
        assert row[col.dim_covered(dim.id)] == pytest.approx((flag * pop * reach).sum() / (pop * reach).sum())
    # top gaps: the three categories *with data* with the lowest covered share, recomputed from
    # minutes; categories with no facility in the data are listed apart, never as gaps
    status = direct.data_status
    nodata = [c for c in direct.profile.categories if status[c.id] == col.STATUS_NO_DATA]
    assert nodata, "the Nanjing extract lacks some categories"
    shares = {}
    for c in direct.profile.categories:
        if status[c.id] == col.STATUS_NO_DATA:
            continue
        t = np.nan_to_num(homes[col.time(c.id)].to_numpy(float), nan=np.inf)
        shares[c.id] = ((t <= c.minutes) * pop * reach).sum() / (pop * reach).sum()
    lowest = sorted(shares, key=lambda k: (shares[k], k))[:3]
    assert [row["gap_1"], row["gap_2"], row["gap_3"]] == lowest
    assert row["gap_1_covered"] == pytest.approx(shares[lowest[0]])
    assert row["gap_1_kind"] == "access gap"
    assert row["no_data"] == "; ".join(c.name_en for c in nodata)
    assert row["data_status_no_data"] == len(nodata)
    # the headline over dimensions with data, the all-categories figure beside it
    assert row[col.ALL_SIX_15_ALL_CATEGORIES] == pytest.approx(
        direct.overall()[col.COVERED_ALL_CATEGORIES], rel=1e-9, abs=1e-12)
    assert row[col.ALL_SIX_15] >= row[col.ALL_SIX_15_ALL_CATEGORIES]
    # and the gpkg written by the batch holds the same homes
    saved = gpd.read_file(first.out_dir / "Nanjing_East" / "lifecircle.gpkg", layer="homes")
    assert saved[col.POPULATION].sum() == pytest.approx(pop.sum())


def test_tables_and_index(batch):
    _, first, _, _ = batch
    out = first.out_dir
    csv = pd.read_csv(out / "districts.csv", encoding="utf-8-sig")
    assert list(csv["district"]) == ["Nanjing West", "Nanjing East", "Kamppi"]
    # ranked on the with-data headline (then the score), both figures shown
    best = csv.sort_values([col.ALL_SIX_15, "score_mean"], ascending=False)
    assert list(best["rank"]) == [1, 2, 3]
    assert col.ALL_SIX_15_ALL_CATEGORIES in csv and "no_data" in csv
    for key in ("population", "score_mean", "score_gini", col.ALL_SIX_15, "top_gaps") + tuple(
            col.dim_covered(d) for d in ("housing", "employment", "services", "transport", "leisure", "social")):
        assert key in csv, key
    assert ((csv["score_mean"] >= 0) & (csv["score_mean"] <= 100)).all()
    xlsx = pd.read_excel(out / "districts.xlsx", sheet_name=None)
    assert list(xlsx["districts"]["district"]) == list(csv["district"])
    assert list(xlsx["failures"]["district"]) == ["Broken"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "© OpenStreetMap contributors" in page and "2019-04-21" in page   # Helsinki data date
    for folder in ("Nanjing_West", "Nanjing_East", "Kamppi"):
        assert f'href=\\"{folder}/map.html\\"' in page or f'href="{folder}/map.html"' in page
    assert "Broken" in page and "does not overlap" in page
    # a background drawn from the districts' own streets (a map without tiles is still a map)
    assert "Background (OSM data)" in page and ">streets<" in page.replace("\\u003e", ">").replace("\\u003c", "<")
    # the no-data categories are named apart, with what to do, never as gaps
    assert "--facilities" in page and "dimensions with data" in page
    gpkg = gpd.read_file(out / "districts.gpkg", layer="districts")
    assert len(gpkg) == 3 and gpkg.crs.to_epsg() == 4326


def test_resume_recomputes_nothing(batch):
    _, first, second, stamps = batch
    assert second.statuses == {"Nanjing West": "skipped", "Nanjing East": "skipped", "Kamppi": "skipped",
                               "Broken": "failed"}
    assert second.computed == []
    after = {p: p.stat().st_mtime_ns for p in stamps}
    assert after == stamps        # no district file was rewritten
    pd.testing.assert_frame_equal(
        first.table.drop(columns=["status"]).reset_index(drop=True),
        second.table.drop(columns=["status"]).reset_index(drop=True), check_exact=False, rtol=1e-12)
    assert list(second.failures["district"]) == ["Broken"]


# -- validation --------------------------------------------------------------------------------

GOOD = """\
out = "out"
speed = 4.0

[sources]
helsinki = { sample = "helsinki" }

[[districts]]
name = "A"
bbox = [24.9352, 60.1641, 24.9443, 60.1716]
"""


@pytest.mark.parametrize("edit, field, line, words", [
    (lambda t: t.replace('speed = 4.0', 'speed = -1'), "speed", 2, "between 0.5 and 20"),
    (lambda t: t.replace('out = "out"', 'out = "out"\ncolour = "red"'), "colour", 2, "unknown field"),
    (lambda t: t.replace("60.1716]", "60.1716, 3]"), "districts[1].bbox", 9, "west, south, east, north"),
    (lambda t: t.replace("24.9443", "24.9000"), "districts[1].bbox", 9, "west < east"),
    (lambda t: t + 'source = "nowhere"\n', "districts[1].source", 10, "unknown source"),
    (lambda t: t.replace('{ sample = "helsinki" }', '"missing.osm.pbf"'), "sources.helsinki", 5, "file not found"),
    (lambda t: t.replace('name = "A"\n', ''), "districts[1].bbox", 8, "needs a 'name'"),
    (lambda t: t + '\n[[districts]]\nname = "A"\nbbox = [24.93, 60.16, 24.94, 60.17]\n', "districts[2].name", 12,
     "used twice"),
    (lambda t: t.replace('speed = 4.0', 'speed = 4.0\nprofile = "no-such-profile"'), "profile", 3, "no-such-profile"),
    (lambda t: t + "[settings]\nmax_snap_meters = 10\n", "settings.max_snap_meters", 11, "unknown setting"),
    (lambda t: t + '[settings]\ncomplete = ["bank", "banks"]\n', "settings.complete", 11, "unknown category banks"),
    (lambda t: t + '[settings]\nmetrics = ["time", "speed"]\n', "settings.metrics", 11, "unknown metric(s) 'speed'"),
    (lambda t: t.replace('bbox = [24.9352, 60.1641, 24.9443, 60.1716]', 'file = "nowhere.geojson"'),
     "districts[1].file", 9, "not found"),
])
def test_config_errors_name_field_and_line(tmp_path, edit, field, line, words):
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    exc = info.value
    assert exc.field == field
    assert exc.line == line
    assert words in str(exc)
    assert str(path) in str(exc) and (line is None or f"line {line}" in str(exc))


def test_config_declares_surveyed_categories(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD + '[settings]\ncomplete = ["bank", "police"]\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.settings["complete"] == ("bank", "police")
    base = district_hash(cfg, cfg.districts[0])
    cfg.settings["complete"] = ("bank",)
    assert district_hash(cfg, cfg.districts[0]) != base      # another declaration, another run


def test_config_asks_for_opt_in_metrics(tmp_path):
    """``metrics`` in [settings] reaches analyze (k-nearest mean, decay, 2SFCA are opt-in) and
    is part of a district's hash: asking for more metrics runs the district again."""
    path = tmp_path / "ok.toml"
    path.write_text(GOOD, encoding="utf-8")
    base = district_hash(load_config(path), load_config(path).districts[0])
    path.write_text(GOOD + '[settings]\nmetrics = "time,count,sfca"\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.settings["metrics"] == ("time", "count", "sfca")
    assert DEFAULTS.with_(**cfg.settings).wants("sfca")
    assert district_hash(cfg, cfg.districts[0]) != base


def test_a_metric_setting_brings_its_metric(tmp_path):
    """An old config that sets a metric's own parameter (``sfca_minutes``, ``k_nearest``) gets
    that metric's columns, as before the metrics became opt-in — not a silently ignored key."""
    path = tmp_path / "ok.toml"
    path.write_text(GOOD + "[settings]\nsfca_minutes = 10\nk_nearest = 5\n", encoding="utf-8")
    s = DEFAULTS.with_(**load_config(path).settings)
    assert s.wants("sfca") and s.wants("kmean") and not s.wants("decay")


def test_toml_syntax_error_has_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace('speed = 4.0', 'speed = = 4.0'), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 2 and "not valid TOML" in str(info.value)


def test_yaml_config_and_its_errors(tmp_path):
    good = textwrap.dedent("""\
        out: out
        sources:
          helsinki: {sample: helsinki}
        districts:
          - name: A
            bbox: [24.9352, 60.1641, 24.9443, 60.1716]
          - name: B
            bbox: [24.9443, 60.1641, 24.9535]
        """)
    path = tmp_path / "c.yaml"
    path.write_text(good, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "districts[2].bbox" and info.value.line == 8
    path.write_text(good.replace(", 24.9535]", ", 24.9535, 60.1716]"), encoding="utf-8")
    cfg = load_config(path)
    assert [d.name for d in cfg.districts] == ["A", "B"]
    assert cfg.sources["helsinki"].kind == "sample"


def test_example_config_is_valid():
    example = Path(__file__).resolve().parents[1] / "data" / "samples" / "batch_example.toml"
    cfg = load_config(example)
    assert len(cfg.districts) >= 2 and cfg.sources["helsinki"].kind == "sample"
    # the example a user copies keeps the promise that every HTML opens with no network
    assert cfg.offline is True


def test_cli_reports_config_error(tmp_path):
    from typer.testing import CliRunner

    from lifecircle.cli import app

    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace('speed = 4.0', 'speed = "fast"'), encoding="utf-8")
    res = CliRunner().invoke(app, ["batch", str(path)])
    assert res.exit_code == 2
    assert "line 2" in res.output and "speed" in res.output and "Traceback" not in res.output


def test_config_errors_speak_the_configs_language(tmp_path, monkeypatch):
    """A config that says lang = "zh" gets its own errors in Chinese, even when another field is
    what is wrong (tester: an unknown field was reported in English under a C locale)."""
    from typer.testing import CliRunner

    from lifecircle.batch.run import config_lang
    from lifecircle.cli import app

    monkeypatch.setenv("LANG", "C.UTF-8")
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nout = "o"\nlang = "zh"\nbogus_key = 1\n', encoding="utf-8")
    assert config_lang(path) == "zh"
    res = CliRunner().invoke(app, ["batch", str(path)])
    assert res.exit_code == 2
    assert "第 4 行" in res.output and "未知的字段" in res.output and "unknown field" not in res.output
    path.write_text('name = "x"\nlang = "fr"\nbogus_key = 1\n', encoding="utf-8")
    assert config_lang(path) is None
    res = CliRunner().invoke(app, ["batch", str(path)])
    assert res.exit_code == 2 and "unknown field" in res.output


def test_a_long_district_name_gets_a_folder(tmp_path):
    """A district named with 100 Chinese characters (300 bytes) failed at run time, after the
    others were computed, with 'File name too long' (tester); its folder name is cut at a
    character with a hash of the whole name, so two such names stay apart."""
    from lifecircle.batch.run import _slug

    a, b = "区" * 100, "区" * 99 + "县"
    for name in (a, b):
        (tmp_path / _slug(name)).mkdir()
        (tmp_path / ("." + _slug(name) + ".lifecircle-tmp-abcdefgh")).mkdir()
    assert _slug(a) != _slug(b) and _slug(a) == _slug(a)
    assert _slug("五老村社区") == "五老村社区"
