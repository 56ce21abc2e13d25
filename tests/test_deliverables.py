"""What resources / recommend write besides their numbers, on the embedded Xinjiekou sample:
resources.gpkg with one geometry type per layer (surveyed point sites beside the areas) and
field aliases; the recommendations' newly covered homes, in the table and on the map."""

from __future__ import annotations

import copy
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.analyses import resources as R
from lifecircle.analyses.recommend import NEW_HOME_IDS, NEW_HOMES, recommend
from lifecircle.cli import app
from lifecircle.io.outputs import read_field_aliases
from lifecircle.io.sources import embedded_sample
from lifecircle.render.deliverables import read_map_recommendations, read_map_sites


@pytest.fixture(scope="module")
def xjk(tmp_path_factory):
    """The sample analysed and saved, with a survey of three point sites on homes."""
    result = lifecircle.analyze(embedded_sample("xinjiekou"), lang="en")
    base = tmp_path_factory.mktemp("xjk")
    folder = base / "analysis"
    result.save(folder, map_html=False)
    pts = result.homes.to_crs(4326).geometry.iloc[[5, 50, 100]]
    sites = base / "sites.csv"
    pd.DataFrame({"name": ["甲", "乙", "丙"], "lng": pts.x.round(6), "lat": pts.y.round(6),
                  "type": ["vacant lot"] * 3, "area_m2": [500, 800, 1200]}).to_csv(sites, index=False)
    return result, folder, sites


def test_point_sites_get_their_own_layer(xjk, tmp_path):
    result, _folder, sites = xjk
    inv = R.build_inventory(result, None, sites=sites)
    kinds = inv.sites.geom_type.value_counts().to_dict()
    assert kinds.get("Point") == 3 and kinds.get("Polygon", 0) > 0     # the mix that made QGIS ask
    R.write_inventory(inv, tmp_path / "res", lang="zh", profile=result.profile)
    gpkg = tmp_path / "res" / "resources.gpkg"
    layers = {name: kind for name, kind in pyogrio.list_layers(gpkg)}
    assert layers["sites"] == "Polygon" and layers["site_points"] == "Point"
    for name in ("sites", "site_points"):        # one geometry type per layer, checked row by row
        types = set(pyogrio.read_dataframe(gpkg, layer=name).geom_type)
        assert len(types) == 1, (name, types)
    pts = pyogrio.read_dataframe(gpkg, layer="site_points")
    assert sorted(pts[R.NAME]) == ["丙", "乙", "甲"] and len(pts) == 3
    # field aliases in the chosen language, as lifecircle.gpkg has them
    aliases = read_field_aliases(gpkg, "site_points")
    assert aliases[R.SITE_ID] == "资源编号" and aliases[R.gap("park")] == "缺口人口_公园/游园"
    assert aliases["pop15"] == "15分钟步行可达人口"
    # the readers take every layer back in the inventory's order
    back = R.read_sites_gpkg(gpkg)
    assert list(back[R.SITE_ID]) == list(inv.sites[R.SITE_ID])
    shown = read_map_sites(tmp_path / "res", result.crs)
    assert len(shown) == len(inv.sites) and (shown.geom_type == "Point").sum() == 3


def test_recommendations_carry_the_homes_they_newly_cover(xjk):
    result, _folder, _sites = xjk
    inv = R.build_inventory(result, None)
    table = recommend(result, inv, "park", k=3)
    assert len(table) == 3
    pop = result.homes[col.POPULATION].to_numpy(float)
    ids = result.homes[col.HOME_ID].to_numpy()
    seen = set()
    for _, row in table.iterrows():
        homes = [int(x) for x in row[NEW_HOME_IDS].split()]
        assert len(homes) == row[NEW_HOMES] > 0
        rows = np.flatnonzero(np.isin(ids, homes))
        assert pop[rows].sum() == pytest.approx(row["newly_covered"], abs=0.06)
        # newly: every one lacked a park within its minutes, and no earlier pick covered it
        limit = result.profile.category("park").minutes
        assert not (result.homes[col.time("park")].to_numpy(float)[rows] <= limit).any()
        assert not seen & set(homes)
        seen |= set(homes)


def test_recommend_map_draws_pick_homes(xjk, tmp_path):
    result, folder, _sites = xjk
    out = tmp_path / "rec"
    run = CliRunner().invoke(app, ["recommend", str(folder), "--category", "park", "--k", "2",
                                   "--out", str(out), "--lang", "en"])
    assert run.exit_code == 0, run.output
    csv = pd.read_csv(out / "recommendations.csv", encoding="utf-8-sig", dtype={NEW_HOME_IDS: str})
    first = csv.iloc[0]
    n, people = int(first[NEW_HOMES]), float(first["newly_covered"])
    # the sheet people read keeps the count, not the long id list
    sheet = pd.read_excel(out / "recommendations.xlsx", sheet_name=0)
    assert NEW_HOMES in sheet.columns and NEW_HOME_IDS not in sheet.columns
    for page in ((out / "resources_map.html").read_text(encoding="utf-8"),
                 _map_command(folder, out, tmp_path)):
        # a layer for pick 1 named with its homes and residents, the popup saying so, and one
        # marker per newly covered home
        park = result.profile.display_name("park", "en")           # the layer names the category
        assert f"#1 {park}: homes newly covered ({n}, {people:,.0f} residents)" in page
        assert f"newly covers {n} homes, {people:,.0f} residents" in page
        assert f"<td>homes newly covered</td><td>{n}</td>" in page          # the column, named
        assert len(re.findall(r'"pick": 1\b', page)) == n
        assert len(re.findall(r'"pick": 2\b', page)) == int(csv.iloc[1][NEW_HOMES])
    recs = read_map_recommendations(out, read_map_sites(out, result.crs), result.crs)
    assert list(recs[NEW_HOME_IDS]) == list(csv[NEW_HOME_IDS])


def _map_command(folder, out, tmp_path) -> str:
    target = tmp_path / "again.html"
    run = CliRunner().invoke(app, ["map", str(folder), "--resources", str(out), "--recommend",
                                   str(out / "recommendations.csv"), "--out", str(target),
                                   "--lang", "en"])
    assert run.exit_code == 0, run.output
    return target.read_text(encoding="utf-8")



def test_many_covered_homes_become_hexagons(xjk):
    """Beyond settings.map_max_points covered homes, a pick's homes are drawn as hexagons whose
    homes and residents add up to the pick's."""
    import dataclasses

    from lifecircle.render.maps import result_map

    result, _folder, _sites = xjk
    inv = R.build_inventory(result, None)
    table = recommend(result, inv, "park", k=1)
    n, people = int(table[NEW_HOMES].iloc[0]), float(table["newly_covered"].iloc[0])
    recs = gpd.GeoDataFrame(table, geometry=inv.sites.geometry.to_numpy()[table.attrs["site_index"]],
                            crs=inv.sites.crs)
    r = copy.copy(result)
    r.settings = dataclasses.replace(result.settings, map_max_points=n - 1)
    page = result_map(r, lang="en", recommendations=recs, gaps=False,
                      nearest_names=False).get_root().render()
    hexes = re.findall(r'"homes": (\d+), "pick": 1, "residents": ([\d.]+)', page)
    assert 1 < len(hexes) < n
    assert sum(int(h) for h, _ in hexes) == n
    assert sum(float(p) for _, p in hexes) == pytest.approx(people, abs=0.1 * len(hexes))


def test_recommendation_popup_shows_coordinates_and_shares_as_they_are():
    """The popup rounded every float like a count: lng 118.7663 read '119' and a share of the
    gap of 0.076 read '0.1' under a (%) header."""
    import pandas as pd

    from lifecircle.render.maps import _rows_html

    row = pd.Series({"lng": 118.766312, "lat": 32.040218, "lng_gcj02": 118.771489, "share_of_gap": 0.0763,
                     "newly_covered": 2990.4})
    html = _rows_html(row, list(row.index), "zh", None)
    assert "118.766312" in html and "32.040218" in html and "118.771489" in html
    assert "<td>7.6</td>" in html and "2,990" in html


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.assign(lng=["abc"] + list(d["lng"].iloc[1:])), r"bad coordinates in row\(s\) 1 "),
    (lambda d: d.assign(lat=[99.0] * len(d)), r"bad coordinates in row\(s\) 1, 2"),
    (lambda d: d.assign(rank=["x"] + list(d["rank"].iloc[1:])), r"'rank' must be a whole number"),
])
def test_a_damaged_recommendations_file_is_one_line(tmp_path, edit, words):
    """map --recommend with a hand-edited CSV: a bad cell is named (it was a ValueError)."""
    import pandas as pd

    from lifecircle.errors import InputFileError
    from lifecircle.render.deliverables import read_map_recommendations

    df = pd.DataFrame({"rank": [1, 2], "use": ["park", "park"], "lng": [118.78, 118.79], "lat": [32.04, 32.05]})
    edit(df).to_csv(tmp_path / "r.csv", index=False)
    assert len(read_map_recommendations(_write(df, tmp_path), None, "EPSG:32650")) == 2
    with pytest.raises(InputFileError, match=words):
        read_map_recommendations(tmp_path / "r.csv", None, "EPSG:32650")


def _write(df, folder):
    path = folder / "ok.csv"
    df.to_csv(path, index=False)
    return path


def test_map_refuses_sites_of_another_analysis(tmp_path, helsinki):
    """Recommendations of a Nanjing analysis drawn on a Helsinki map: refused, one line."""
    import pandas as pd
    from typer.testing import CliRunner

    from lifecircle.cli import app

    folder = tmp_path / "a"
    helsinki.save(folder, map_html=False)
    pd.DataFrame({"rank": [1], "use": ["park"], "lng": [118.78], "lat": [32.04]}).to_csv(tmp_path / "r.csv", index=False)
    r = CliRunner().invoke(app, ["map", str(folder), "--recommend", str(tmp_path / "r.csv"), "-o", str(tmp_path / "m.html"),
                                 "--lang", "en"])
    assert r.exit_code == 2 and "another analysis" in r.output and not (tmp_path / "m.html").exists()
