"""The demo: the shipped Xinjiekou extract (provenance, data date), run offline in Chinese."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from lifecircle.cli import app
from lifecircle.io.sources import embedded_sample, provenance, read_osm


def test_shipped_sample_and_its_provenance():
    path = embedded_sample()
    assert path.name == "nanjing_xinjiekou_2021.osm.pbf" and path.stat().st_size == 113_746
    rec = provenance(path)
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec["data_date"] == "2021-06-12" and "ODbL" in rec["licence"]
    assert rec["attribution"] == "© OpenStreetMap contributors"
    # the PBF carries no date (no header timestamp, no element timestamps): the record gives it
    data = read_osm(path)
    assert data.data_date == "2021-06-12" and data.meta["data_date_from"] == "provenance.yaml"
    assert data.attribution == "© OpenStreetMap contributors, data 2021-06-12"
    assert (path.parent / "PROVENANCE.md").read_text(encoding="utf-8").count("ODbL") >= 1
    # a file with its own date keeps it
    assert read_osm(embedded_sample("helsinki")).data_date == "2019-04-21"


def test_provenance_record_beside_the_file_or_by_content(tmp_path):
    src = embedded_sample()
    copy = tmp_path / "other.osm.pbf"
    copy.write_bytes(src.read_bytes())
    # no record beside it: the shipped record of the same content (size and sha256) dates it
    assert read_osm(copy).data_date == "2021-06-12"
    # a record beside the file names it: that one wins
    (tmp_path / "provenance.yaml").write_text(yaml.safe_dump(
        {"other.osm.pbf": {"data_date": "1999-01-01"}}), encoding="utf-8")
    assert read_osm(copy).data_date == "1999-01-01"
    # a file of other content gets no date from the shipped records
    other = tmp_path / "sub" / "x.osm.pbf"
    other.parent.mkdir()
    other.write_bytes(embedded_sample("helsinki").read_bytes())
    assert provenance(other) is None


def test_demo_is_xinjiekou_in_chinese(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(app, ["demo"])
    assert run.exit_code == 0, run.output
    out = tmp_path / "out" / "xinjiekou"
    assert (tmp_path / "maps" / "xinjiekou.html").is_file()
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["settings"]["lang"] == "zh" and meta["data_date"] == "2021-06-12"
    assert meta["source"].endswith("nanjing_xinjiekou_2021.osm.pbf")
    # Chinese console with the real figures of the sample
    s = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    o = s[(s.level == "overall") & (s.community == "ALL")].iloc[0]
    assert int(o["homes"]) > 500 and f"住宅 {int(o['homes']):,}" in run.output
    assert "十五分钟生活圈覆盖" in run.output and "© OpenStreetMap contributors，数据日期 2021-06-12" in run.output
    # every output carries the attribution and the date
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "OpenStreetMap contributors" in html and "2021-06-12" in html
    import pyogrio

    about = pyogrio.read_dataframe(out / "lifecircle.gpkg", layer="about")
    assert "2021-06-12" in " ".join(map(str, about.iloc[0].to_list()))
    x = pd.read_excel(out / "summary.xlsx", sheet_name="说明")
    assert "2021-06-12" in " ".join(x.iloc[:, 0].astype(str))


def test_demo_unknown_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(app, ["demo", "--sample", "paris"])
    assert run.exit_code == 2 and "unknown sample" in run.output and "xinjiekou" in run.output
    assert not (tmp_path / "out").exists()
