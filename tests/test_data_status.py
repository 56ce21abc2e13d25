"""Data completeness as a first-class result.

A synthetic district (tests/synthetic_osm.py) holds five facilities: a supermarket (housing),
a school (public services), a bus stop (transport), a park (leisure) and a café (social);
employment has nothing. Every other category has no facility in the data: it must read
"no data" (NaN, never 0 %), dimension coverage and the headline must stand on the categories
and dimensions with data ("all 5 of 5 dimensions with data") with the all-categories figure
beside them, and a category declared surveyed (``complete``) with no facility is a real 0 %.
Expected values are recomputed here from the per-home minutes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_osm import grid_osm
from typer.testing import CliRunner

import lifecircle
from lifecircle import columns as col
from lifecircle.cli import app
from lifecircle.core.profiles import load_profile
from lifecircle.errors import ProfileError
from lifecircle.pipeline import load_result

runner = CliRunner()
FACILITIES = {"shop=supermarket": "Super Uno", "amenity=school": "Escola da Vila",
              "highway=bus_stop": "Praça", "leisure=park": "Jardim", "amenity=cafe": "Café Central"}
WITH_DATA = {"supermarket", "primary_school", "bus_stop", "park", "cafe_teahouse"}


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    path = tmp_path_factory.mktemp("district") / "grid.osm"
    path.write_text(grid_osm(FACILITIES), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result(district):
    return lifecircle.analyze(str(district))


@pytest.fixture(scope="module")
def surveyed(district):
    return lifecircle.analyze(str(district), complete="bank,office")


def _share(mask, homes):
    pop = homes[col.POPULATION].to_numpy(float) * homes[col.REACHABLE].to_numpy(bool)
    return float((mask * pop).sum() / pop.sum())


def _rows(r, level):
    s = r.summary
    return s[(s.level == level) & (s.community == "ALL")].set_index("id")


def test_statuses_follow_the_data(result):
    status = result.data_status
    assert {k for k, v in status.items() if v == col.STATUS_DATA} == WITH_DATA
    assert set(result.no_data_categories()) == set(result.profile.category_ids) - WITH_DATA
    assert result.gap_categories() == []


def test_no_data_is_nan_not_zero(result, district):
    cats = _rows(result, "category")
    every = lifecircle.analyze(str(district), metrics="all")   # k-mean, decay and 2SFCA too
    for cid in ("bank", "pharmacy", "office", "middle_school", "community_centre"):
        row = cats.loc[cid]
        assert row[col.DATA_STATUS] == col.STATUS_NO_DATA
        assert np.isnan(row["covered"]) and np.isnan(row["within_15"]) and np.isnan(row["median_min"])
        assert row[col.COVERED_ALL_CATEGORIES] == 0.0        # the pessimistic reading, labelled apart
        # per-home counts, k-nearest means, decay and supply ratios are unknown too
        h = result.homes
        assert h[col.count(cid, 15)].isna().all() and col.decay(cid) not in h
        for name in (col.count(cid, 15), col.kmean(cid), col.decay(cid), col.sfca(cid)):
            assert every.homes[name].isna().all(), name
    for cid in WITH_DATA:    # with data: known, and the opt-in metrics are numbers
        for name in (col.kmean(cid), col.decay(cid), col.sfca(cid)):
            assert every.homes.loc[every.homes[col.REACHABLE], name].notna().all(), name
    homes = result.homes
    for cid in WITH_DATA:
        t = np.nan_to_num(homes[col.time(cid)].to_numpy(float), nan=np.inf)
        c = result.profile.category(cid)
        assert cats.loc[cid, "covered"] == pytest.approx(_share(t <= c.minutes, homes))
        assert homes[col.count(cid, 15)].notna().all()


def test_dimensions_and_headline_stand_on_data(result):
    homes = result.homes
    dims = _rows(result, "dimension")
    assert dims.loc["employment", col.DATA_STATUS] == col.STATUS_NO_DATA
    assert np.isnan(dims.loc["employment", "covered"]) and np.isnan(dims.loc["employment", "score_mean"])
    assert homes[col.dim_covered("employment")].isna().all()
    # one category with data per dimension: covered where that one is within its threshold
    covered = {}
    for dim in result.profile.dimensions:
        cats = [c for c in dim.categories if c.id in WITH_DATA]
        if not cats:
            continue
        (c,) = cats
        t = np.nan_to_num(homes[col.time(c.id)].to_numpy(float), nan=np.inf)
        covered[dim.id] = t <= c.minutes
        assert dims.loc[dim.id, "covered"] == pytest.approx(_share(covered[dim.id], homes))
        assert dims.loc[dim.id, col.CATEGORIES_WITH_DATA] == 1
        assert dims.loc[dim.id, col.CATEGORIES_TOTAL] == len(dim.categories)
    assert len(covered) == 5
    over = _rows(result, "overall").loc["all"]
    assert over[col.DIMENSIONS_WITH_DATA] == 5 and over[col.DIMENSIONS_TOTAL] == 6
    all5 = np.logical_and.reduce([covered[d] for d in covered])
    want = _share(all5, homes)
    assert 0.0 < want and over["covered"] == pytest.approx(want)
    assert over[col.COVERED_ALL_CATEGORIES] == 0.0      # employment has nothing at all
    assert over["name_en"] == "all 5 of 5 dimensions with data (6 in all)"
    assert result.headline() == (
        f"all 5 of 5 dimensions with data within 15 min: {100 * want:.1f}% of residents "
        "(all 6 dimensions, categories without data counted as no access: 0.0%)")
    # the score: mean over the five dimensions with data of the one category's access
    ok = homes[col.REACHABLE].to_numpy(bool)
    acc = []
    for dim in result.profile.dimensions:
        for c in dim.categories:
            if c.id in WITH_DATA:
                t = homes[col.time(c.id)].to_numpy(float)
                acc.append(np.where(np.isnan(t), 0, np.clip((2 * c.minutes - t) / c.minutes, 0, 1)))
    np.testing.assert_allclose(homes[col.SCORE].to_numpy(float)[ok], 100 * np.mean(acc, axis=0)[ok])


def test_human_tables_say_no_data(result):
    en = result.summary_table("en").set_index("id")
    assert en.loc["bank", "covered"] == "no data" and en.loc["bank", col.DATA_STATUS] == "no data"
    assert en.loc["employment", "within_15"] == "no data"
    assert en.loc["supermarket", col.DATA_STATUS] == "data" and isinstance(en.loc["supermarket", "covered"], float)
    assert en.loc["all_categories", "covered"] == 0.0
    assert "counted as no access" in en.loc["all_categories", "name_en"]
    zh = result.summary_table("zh").set_index("编号")
    assert zh.loc["bank", "覆盖率%"] == "无数据" and zh.loc["bank", "数据"] == "无数据"
    page = result._repr_html_()
    assert "all 5 of 5 dimensions with data" in page and "--facilities" in page


def test_declared_complete_is_a_real_gap(surveyed, result):
    status = surveyed.data_status
    assert status["bank"] == status["office"] == col.STATUS_COMPLETE
    assert surveyed.gap_categories() == ["bank", "office"]
    cats = _rows(surveyed, "category")
    assert cats.loc["bank", "covered"] == 0.0 and cats.loc["bank", "within_15"] == 0.0
    assert (surveyed.homes[col.count("bank", 15)] == 0).all()
    # employment now has data (a surveyed zero): six dimensions, none covers employment -> 0 %
    over = _rows(surveyed, "overall").loc["all"]
    assert over[col.DIMENSIONS_WITH_DATA] == 6 and over["covered"] == 0.0
    dims = _rows(surveyed, "dimension")
    assert dims.loc["employment", "covered"] == 0.0 and dims.loc["employment", "score_mean"] == 0.0
    # housing holds supermarket and bank: the bank halves its score
    h0, h1 = result.homes, surveyed.homes
    ok = h0[col.REACHABLE].to_numpy(bool)
    np.testing.assert_allclose(h1[col.dim_score("housing")].to_numpy(float)[ok],
                               h0[col.dim_score("housing")].to_numpy(float)[ok] / 2)
    assert any("real gap" in n for n in surveyed.notes)


def test_cli_complete_option_csv_and_meta(district, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", str(district), "--out", str(out), "--complete", "bank",
                              "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert "all 5 of 5 dimensions with data" in res.output
    assert "no data" in res.output and "--facilities" in res.output
    csv = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    cats = csv[(csv.level == "category") & (csv.community == "ALL")].set_index("id")
    assert cats.loc["bank", col.DATA_STATUS] == "complete" and cats.loc["bank", "covered"] == 0.0
    assert cats.loc["pharmacy", col.DATA_STATUS] == "no_data" and np.isnan(cats.loc["pharmacy", "covered"])
    assert csv["covered"].dtype.kind == "f"                # machine columns stay numeric
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta[col.DATA_STATUS]["bank"] == "complete" and meta[col.DATA_STATUS]["pharmacy"] == "no_data"
    assert meta["settings"]["complete"] == ["bank"]
    back = load_result(out)
    assert back.data_status == meta[col.DATA_STATUS]
    assert back.settings.complete == ("bank",)
    zh = runner.invoke(app, ["analyze", str(district), "--out", str(tmp_path / "zh"), "--lang", "zh"])
    assert zh.exit_code == 0 and "无数据" in zh.output


def test_unknown_complete_category_is_refused(district, tmp_path):
    out = tmp_path / "bad"
    res = runner.invoke(app, ["analyze", str(district), "--out", str(out), "--complete", "bank,banks"])
    assert res.exit_code == 2
    assert "banks" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_profile_complete_key(tmp_path, district):
    text = load_profile("default").source_path
    with open(text, encoding="utf-8") as f:
        body = f.read()
    good = tmp_path / "surveyed.yaml"
    good.write_text(body.replace("name: default\n", "name: surveyed\ncomplete: [police]\n", 1), encoding="utf-8")
    prof = load_profile(good)
    assert prof.complete == ("police",)
    r = lifecircle.analyze(str(district), profile=prof)
    assert r.data_status["police"] == col.STATUS_COMPLETE
    bad = tmp_path / "bad.yaml"
    bad.write_text(body.replace("name: default\n", "name: bad\ncomplete: [policia]\n", 1), encoding="utf-8")
    with pytest.raises(ProfileError, match="policia"):
        load_profile(bad)


def test_figures_and_map_name_the_dimensions_without_data(result):
    import folium

    from lifecircle.render import figures as lf
    from lifecircle.render.maps import result_map

    fig = lf.coverage_bar(result, "en")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "Employment\n(no data)" in labels and "Public services" in labels
    zh = [t.get_text() for t in lf.radar(result, "zh", by=None).axes[0].get_xticklabels()]
    assert "就业\n(无数据)" in zh
    m = result_map(result, lang="en", service_areas=False)
    names = [ch.layer_name for ch in m._children.values() if isinstance(ch, folium.FeatureGroup)]
    assert "Employment (no data)" in names
    assert "Public services (11 of 12 categories: no data)" in names
    assert "dimensions with data" in m.get_root().render()


def test_cli_metrics_option_writes_the_opt_in_columns(district, tmp_path):
    """``analyze --metrics`` asks for the opt-in metrics: their columns (with their aliases)
    are in the GeoPackage, and without it they are not."""
    import pyogrio

    for opt, want in (([], False), (["--metrics", "time,count,kmean,decay,sfca"], True)):
        out = tmp_path / ("all" if opt else "default")
        run = runner.invoke(app, ["analyze", str(district), "-o", str(out), "--no-map", "--lang", "en", *opt])
        assert run.exit_code == 0, run.output
        names = set(pyogrio.read_info(out / "lifecircle.gpkg", layer="homes")["fields"])
        assert {col.time("park"), col.count("park", 15)} <= names
        assert ({col.kmean("park"), col.decay("park"), col.sfca("park")} <= names) is want
        assert (col.kmean("bank") in names) is want          # no data: a column of NaN
        assert json.loads((out / "meta.json").read_text())["settings"]["metrics"][-1] == \
            ("sfca" if want else "count")
