"""Batch runs the resources and check steps per district (config keys resources / sites / check)
through the commands' own functions, and links every district's maps from index.html and
districts.csv/.xlsx — on the embedded Xinjiekou sample, in Chinese."""

from __future__ import annotations

import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
from typer.testing import CliRunner

from lifecircle.batch import load_config, run
from lifecircle.cli import app
from lifecircle.errors import ConfigError

WEST = [118.756, 32.029, 118.778, 32.059]
EAST = [118.778, 32.029, 118.800, 32.059]
CONFIG = """
    name = "steps"
    out = "out"
    lang = "zh"
    resources = true
    check = "gb50180-2018"

    [sources]
    xjk = {{ sample = "xinjiekou" }}

    [[districts]]
    name = "新街口 西"
    bbox = {west}
    sites = "sites.csv"

    [[districts]]
    name = "East"
    bbox = {east}
    sites = "bad_sites.csv"

    [[districts]]
    name = "Plain"
    bbox = {west}
    resources = false
    check = false
"""


def _config(folder: Path) -> Path:
    pd.DataFrame({"name": ["调查一", "调查二"], "lng": [118.766, 118.770], "lat": [32.040, 32.045],
                  "type": ["vacant lot", "vacant lot"], "area_m2": [600, 900]}).to_csv(
        folder / "sites.csv", index=False)
    (folder / "bad_sites.csv").write_text("name,colour\nx,red\n", encoding="utf-8")   # no coordinates
    path = folder / "batch.toml"
    path.write_text(textwrap.dedent(CONFIG.format(west=WEST, east=EAST)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client

    from lifecircle.batch import make_cluster

    with make_cluster(2, processes=False) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def batch(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("steps")
    config = _config(folder)
    first = run(config, client=client)
    second = run(config, client=client, resume=True)
    return config, first, second


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href"]


def _index_links(out: Path) -> list[str]:
    page = (out / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    # the map popups carry links too, inside the folium script as escaped HTML strings
    hrefs = parser.hrefs + [h.replace("\\/", "/") for h in re.findall(r'href=\\"([^"\\]+)\\"', page)]
    return [h for h in hrefs if h.endswith(".html")]


def test_steps_write_what_the_commands_write(batch, tmp_path):
    config, first, _ = batch
    out = first.out_dir
    assert first.statuses == {"新街口 西": "done", "East": "failed", "Plain": "done"}
    west = out / "新街口_西"
    for name in ("resources.csv", "resources.xlsx", "resources.gpkg", "resources_map.html",
                 "compliance.csv", "compliance.xlsx", "compliance_map.html", "map.html"):
        assert (west / name).is_file(), name
    plain = out / "Plain"
    assert (plain / "map.html").is_file()
    assert not any((plain / n).exists() for n in ("resources.csv", "resources_map.html", "compliance.csv"))
    # the same files the commands write on that district's analysis folder
    runner = CliRunner()
    res = tmp_path / "res"
    r = runner.invoke(app, ["resources", str(west), "--out", str(res), "--sites",
                            str(config.parent / "sites.csv")])
    assert r.exit_code == 0, r.output
    a = pd.read_csv(west / "resources.csv", encoding="utf-8-sig")
    b = pd.read_csv(res / "resources.csv", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(a, b)
    assert (a["source"] == "user").sum() == 2               # the surveyed sites in the district
    chk = tmp_path / "chk"
    r = runner.invoke(app, ["check", str(west), "--out", str(chk)])
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_csv(west / "compliance.csv", encoding="utf-8-sig"),
                                  pd.read_csv(chk / "compliance.csv", encoding="utf-8-sig"))
    # in Chinese, like the rest of the batch
    assert "资源清单" in pd.read_excel(west / "resources.xlsx", sheet_name=None)


def test_failing_step_is_a_district_failure(batch):
    _, first, _ = batch
    f = first.failures.set_index("district")
    assert list(f.index) == ["East"]
    # the step named, in the batch's language (zh)
    assert f.loc["East", "error"].startswith("闲置用地清单：") and "bad_sites.csv" in f.loc["East", "error"]
    assert not (first.out_dir / "East").exists()              # nothing half-written
    csv = pd.read_csv(first.out_dir / "failures.csv", encoding="utf-8-sig")
    # the CSV is the same in every language: English, the Chinese beside it
    assert csv["error"].str.startswith("resources: ").all() and csv["error_zh"].str.startswith("闲置用地清单：").all()


def test_index_links_every_map_and_resolves(batch, tmp_path):
    _, first, second = batch
    assert second.statuses == {"新街口 西": "skipped", "East": "failed", "Plain": "skipped"}
    for report in (first, second):             # a resumed run links the same maps
        out = report.out_dir
        hrefs = _index_links(out)
        targets = set()
        for h in hrefs:
            u = urlparse(h)
            assert not u.scheme and not u.netloc and not h.startswith("/") and ".." not in h, h
            p = out / unquote(u.path)
            assert p.is_file(), h
            targets.add(p.relative_to(out).as_posix())
        assert targets == {"新街口_西/map.html", "新街口_西/resources_map.html",
                           "新街口_西/compliance_map.html", "Plain/map.html"}
        page = (out / "index.html").read_text(encoding="utf-8")
        assert "达标评估地图" in page and "闲置资源地图" in page
        # the table reads as districts.xlsx does: Chinese headers, shares in %
        assert "<th>平均得分</th>" in page and "<th>score_mean</th>" not in page
        assert not re.search(r'<script[^>]+src=["\']https?:', page)
    # the tables give the same paths, relative to the batch folder
    t = pd.read_csv(first.out_dir / "districts.csv", encoding="utf-8-sig").set_index("district")
    assert t.loc["新街口 西", "compliance_map"] == "新街口_西/compliance_map.html"
    assert t.loc["Plain", "map"] == "Plain/map.html" and pd.isna(t.loc["Plain", "resources_map"])
    x = pd.read_excel(first.out_dir / "districts.xlsx", sheet_name=0)
    assert "达标评估地图" in x.columns and "新街口_西/resources_map.html" in set(x["资源地图"])


@pytest.mark.parametrize("edit, field, words", [
    (lambda t: t.replace('check = "gb50180-2018"', 'check = "gb9999"'), "check", "unknown standard"),
    (lambda t: t.replace('sites = "bad_sites.csv"', 'sites = "nowhere.csv"'), "districts[2].sites",
     "file not found"),
    (lambda t: t.replace("resources = true", "resources = 1"), "resources", "true or false"),
    (lambda t: t.replace("check = false", "check = false\nmin_share = 2"), "districts[3].min_share",
     "between 0 and 1"),
    (lambda t: t.replace("check = false", "sites_crs = \"moon\""), "districts[3].sites_crs", "moon"),
    (lambda t: t.replace('sites = "bad_sites.csv"', 'sites = "."'), "districts[2].sites", "is a folder"),
])
def test_step_keys_are_checked(tmp_path, edit, field, words):
    path = _config(tmp_path)
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field and words in str(info.value)
    assert info.value.line is not None


def test_steps_change_the_hash(tmp_path):
    from lifecircle.batch import district_hash

    path = _config(tmp_path)
    cfg = load_config(path)
    west, plain = cfg.districts[0], cfg.districts[2]
    assert west.steps.resources and west.steps.check == "gb50180-2018" and west.steps.sites.endswith("sites.csv")
    assert not plain.steps.resources and plain.steps.check is None
    before = district_hash(cfg, west)
    (tmp_path / "sites.csv").write_text("name,lng,lat\nz,118.77,32.04\n", encoding="utf-8")
    assert district_hash(load_config(path), load_config(path).districts[0]) != before
    # a district that opts out of resources takes no sites file from the top level
    text = path.read_text(encoding="utf-8").replace("resources = true\n", 'resources = true\nsites = "sites.csv"\n', 1)
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    plain = cfg.districts[2]
    assert not plain.steps.resources and plain.steps.sites is None
    h = district_hash(cfg, plain)
    (tmp_path / "sites.csv").write_text("name,lng,lat\nz,118.78,32.05\n", encoding="utf-8")
    assert district_hash(load_config(path), load_config(path).districts[2]) == h


def test_a_shared_survey_file_with_no_site_in_a_district_is_not_a_failure(tmp_path, helsinki):
    """One survey file for the whole batch: a district holding none of its sites gets no
    surveyed site and a note (the command on one area still refuses such a file)."""
    from lifecircle.analyses.resources import SOURCE, build_inventory
    from lifecircle.errors import TableError

    far = tmp_path / "survey.csv"
    pd.DataFrame({"name": ["elsewhere"], "lng": [118.766], "lat": [32.040], "type": ["vacant lot"]}).to_csv(
        far, index=False)
    with pytest.raises(TableError, match="no usable site"):
        build_inventory(helsinki, None, sites=far)
    inv = build_inventory(helsinki, None, sites=far, shared_sites=True)
    assert len(inv.sites) > 0 and (inv.sites[SOURCE] != "user").all()
    assert any("survey.csv" in n and "outside the study area" in n for n in inv.notes)
    # a file with no usable row for another reason is still refused
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["x"], "lng": ["east"], "lat": ["north"]}).to_csv(bad, index=False)
    with pytest.raises(TableError, match="no usable site"):
        build_inventory(helsinki, None, sites=bad, shared_sites=True)


def test_a_sites_file_inside_the_output_folder_is_refused(tmp_path):
    """sites = "out/W/resources.csv" fed each run's list back in (37 -> 48 -> 59 rows): the
    batch refuses a sites file inside its output folder, before any work."""
    from lifecircle.errors import OutputError

    path = _config(tmp_path)
    (tmp_path / "out" / "x").mkdir(parents=True)
    (tmp_path / "out" / "x" / "resources.csv").write_text("name,lng,lat\nz,118.77,32.04\n", encoding="utf-8")
    path.write_text(path.read_text(encoding="utf-8").replace('sites = "sites.csv"', 'sites = "out/x/resources.csv"'),
                    encoding="utf-8")
    with pytest.raises(OutputError, match="resources.csv"):
        run(path, client=None, workers=1)


def test_resume_recomputes_a_district_whose_files_do_not_read(tmp_path, client):
    """--resume over a finished district whose summary.csv was damaged aborted the whole batch
    (KeyError); the district is run again instead."""
    (tmp_path / "b.toml").write_text(textwrap.dedent("""
        name = "resume"
        out = "out"
        [sources]
        helsinki = { sample = "helsinki" }
        [[districts]]
        name = "Kamppi"
        bbox = [24.9352, 60.1641, 24.9443, 60.1716]
        source = "helsinki"
    """), encoding="utf-8")
    first = run(tmp_path / "b.toml", client=client)
    assert first.statuses == {"Kamppi": "done"}
    (tmp_path / "out" / "Kamppi" / "summary.csv").write_text('garbage"\n', encoding="utf-8")
    again = run(tmp_path / "b.toml", client=client, resume=True)
    assert again.statuses == {"Kamppi": "done"} and again.ok
    assert "community" in (tmp_path / "out" / "Kamppi" / "summary.csv").read_text(encoding="utf-8-sig")


def test_a_district_file_feature_without_a_name_is_refused(tmp_path):
    """name_column values that are null or blank made districts literally named 'nan'."""
    import geopandas as gpd
    import shapely

    gpd.GeoDataFrame({"name": ["甲", None]}, geometry=[shapely.box(*WEST), shapely.box(*EAST)],
                     crs=4326).to_file(tmp_path / "d.geojson")
    (tmp_path / "b.toml").write_text(textwrap.dedent("""
        out = "out"
        [sources]
        xjk = { sample = "xinjiekou" }
        [[districts]]
        file = "d.geojson"
        name_column = "name"
    """), encoding="utf-8")
    with pytest.raises(ConfigError, match="feature 2 of d.geojson has no name"):
        load_config(tmp_path / "b.toml")
