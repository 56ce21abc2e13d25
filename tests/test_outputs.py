"""Output folders are safe to point anywhere: lifecircle replaces only what it wrote, refuses
anything else (``force`` writes its files into a foreign folder and keeps the others), keeps the
old or the new folder under the target name at every instant, and cleans up after killed runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lifecircle.errors import OutputError
from lifecircle.io.outputs import (
    HTML_MARKER,
    MARKER,
    atomic_dir,
    check_out_dir,
    check_out_file,
    ensure_out_dir,
    mark_html,
)


def _write(out, force=False, inputs=(), files=("summary.csv", "meta.json", "lifecircle.gpkg"), text="new"):
    with atomic_dir(out, force=force, inputs=inputs) as tmp:
        for f in files:
            (tmp / f).write_text(text)
    return out


def test_new_folder_is_marked_and_replaced_by_the_next_run(tmp_path):
    out = _write(tmp_path / "out", text="one")
    assert (out / MARKER).is_file()
    _write(out, text="two")
    assert (out / "summary.csv").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]      # no temp or old folder left


def test_foreign_folder_is_refused_and_untouched(tmp_path):
    thesis = tmp_path / "thesis"
    (thesis / "chapter").mkdir(parents=True)
    (thesis / "thesis.docx").write_text("years of work")
    with pytest.raises(OutputError, match="did not make"):
        _write(thesis)
    assert (thesis / "thesis.docx").read_text() == "years of work"
    assert (thesis / "chapter").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_force_writes_into_a_foreign_folder_and_keeps_its_files(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.docx").write_text("years of work")
    _write(thesis, force=True)
    assert (thesis / "thesis.docx").read_text() == "years of work"
    assert (thesis / "summary.csv").read_text() == "new"
    # marked now, but it still holds a foreign file: a second run without --force is refused
    with pytest.raises(OutputError, match="thesis.docx"):
        _write(thesis)
    _write(thesis, force=True, text="again")
    assert (thesis / "thesis.docx").read_text() == "years of work"
    assert (thesis / "summary.csv").read_text() == "again"


def test_file_dropped_into_a_lifecircle_folder_is_not_deleted(tmp_path):
    out = _write(tmp_path / "out")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        _write(out)
    assert (out / "notes.txt").read_text() == "mine"


def test_older_lifecircle_folder_without_marker_is_recognised(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for f in ("meta.json", "lifecircle.gpkg", "summary.csv", "network.npz", "map.html"):
        (old / f).write_text("old")
    assert check_out_dir(old) == "replace"
    _write(old)
    assert (old / "summary.csv").read_text() == "new" and not (old / "network.npz").exists()


def test_existing_file_current_folder_and_inputs_are_refused(tmp_path, monkeypatch):
    f = tmp_path / "report.pdf"
    f.write_text("pdf")
    with pytest.raises(OutputError, match="existing file"):
        _write(f, force=True)
    assert f.read_text() == "pdf" and sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]
    monkeypatch.chdir(tmp_path)
    for bad in ("", ".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(OutputError):
            check_out_dir(bad, force=True)
    analysis = _write(tmp_path / "p" / "analysis")
    with pytest.raises(OutputError, match="would replace the input"):
        _write(analysis, inputs=[analysis])
    with pytest.raises(OutputError, match="would replace the input"):
        _write(tmp_path / "p", inputs=[analysis / "meta.json"], force=True)
    assert (analysis / "summary.csv").read_text() == "new"


def test_crash_between_the_renames_is_recovered(tmp_path):
    out = _write(tmp_path / "out", text="old")
    os.rename(out, tmp_path / ".out.lifecircle-old")        # as if killed between the renames
    assert check_out_dir(out) == "new"
    with pytest.raises(RuntimeError):
        with atomic_dir(out):
            assert (out / "summary.csv").read_text() == "old"   # put back before the run writes
            raise RuntimeError("the run fails")
    assert (out / "summary.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_temp_folders_of_killed_runs_are_removed_but_not_those_in_use(tmp_path):
    out = tmp_path / "out"
    stale = tmp_path / ".out.lifecircle-tmp-abc123"
    stale.mkdir()
    (stale / "lifecircle.gpkg").write_text("x" * 1000)
    legacy = tmp_path / ".out.k2j4_x9q"               # mkdtemp name of an older version
    legacy.mkdir()
    (legacy / "summary.csv").write_text("x")
    foreign = tmp_path / ".out.notmine1"              # same pattern, but not lifecircle's files
    foreign.mkdir()
    (foreign / "diary.txt").write_text("x")
    busy = tmp_path / ".out.lifecircle-tmp-busy"
    busy.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)"), str(busy)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _write(out)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == [".out.lifecircle-tmp-busy", ".out.notmine1", "out"], names
    finally:
        holder.kill()
        holder.wait()


def test_single_files_overwrite_only_what_lifecircle_wrote(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html>my page</html>")
    with pytest.raises(OutputError, match="not written by lifecircle"):
        check_out_file(page)
    check_out_file(page, force=True)
    ours = tmp_path / "ours.html"
    ours.write_text(mark_html("<!DOCTYPE html>\n<html></html>"))
    assert ours.read_text().startswith("<!DOCTYPE html>\n" + HTML_MARKER)
    check_out_file(ours)
    with pytest.raises(OutputError, match="is a folder"):
        check_out_file(tmp_path, force=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_out_file(tmp_path / "nowhere" / "map.html")


def test_own_file_name_replaced_by_hand_is_not_lifecircles(tmp_path):
    """In a folder lifecircle made, a page or GeoPackage under lifecircle's own name that someone
    replaced by hand is still not overwritten (its content carries no lifecircle mark)."""
    out = _write(tmp_path / "run")
    for name in ("isochrones.gpkg", "map.html"):
        (out / name).write_text("MINE")
        with pytest.raises(OutputError, match="not written by lifecircle"):
            check_out_file(out / name)
        assert (out / name).read_text() == "MINE"
    (out / "map.html").write_text(mark_html("<!DOCTYPE html>\n<html></html>"))
    check_out_file(out / "map.html")                   # lifecircle's own page: fine


def test_batch_folder_refuses_foreign_and_accepts_its_own(tmp_path):
    out = ensure_out_dir(tmp_path / "batch")
    (out / "districts.csv").write_text("x")
    sub = _write(out / "district-a")
    assert sub.is_dir()
    assert check_out_dir(out) == "replace"            # its district folders count as its own
    (out / "budget.xlsx").write_text("x")
    with pytest.raises(OutputError, match="budget.xlsx"):
        ensure_out_dir(out)


def test_unwritable_target_is_one_clear_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        _write(blocker / "out")                       # a file where a parent folder should be
    assert blocker.read_text() == "x"
    if os.geteuid() != 0:                             # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="cannot create"):
                _write(ro / "out")
        finally:
            ro.chmod(0o755)


def test_analyze_no_map_writes_the_tables_only(tmp_path, monkeypatch):
    """``analyze --no-map`` writes every table and no map (none is rendered either); the folder
    loads, and ``lifecircle map`` draws the map from it later."""
    from typer.testing import CliRunner

    from lifecircle.cli import app
    from lifecircle.io.sources import embedded_sample
    from lifecircle.render import maps
    from lifecircle.result import load_result

    monkeypatch.chdir(tmp_path)
    drawn = []
    monkeypatch.setattr(maps, "result_map", lambda *a, **k: drawn.append(1) or 1 / 0)
    out = tmp_path / "a"
    r = CliRunner().invoke(app, ["analyze", str(embedded_sample("helsinki")), "--out", str(out), "--no-map"])
    assert r.exit_code == 0, r.output
    assert not drawn and not (out / "map.html").exists() and (out / "lifecircle.gpkg").exists()
    assert "map.html" not in r.output
    assert len(load_result(out).homes) > 0
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["map", str(out), "--basemap", "blank"])
    assert r.exit_code == 0, r.output
    assert (out / "map.html").exists()


def test_features_kept_as_geoparquet_and_format_2_folders_still_read(tmp_path, helsinki):
    """The study area's OSM features travel in osm_features.parquet (format 3), in their order
    with their tags; a format-2 folder (osm_features.gpkg, one layer per geometry kind) reads to
    the same features."""
    import json

    import geopandas as gpd
    import shapely

    from lifecircle.io.outputs import _FEATURE_LAYERS
    from lifecircle.result import load_result

    out = tmp_path / "a"
    helsinki.save(out, map_html=False)
    assert (out / "osm_features.parquet").exists() and not (out / "osm_features.gpkg").exists()
    assert json.loads((out / "meta.json").read_text(encoding="utf-8"))["format"] == 3
    want = helsinki.features
    got = load_result(out).features
    assert len(got) == len(want) > 100
    assert list(got["tags"]) == list(want["tags"]) and list(got["osm_id"]) == list(want["osm_id"])
    assert shapely.equals_exact(got.geometry.to_numpy(), want.to_crs(got.crs).geometry.to_numpy(), 1e-9).all()
    # the same folder as format 2 wrote it
    parquet = gpd.read_parquet(out / "osm_features.parquet")
    kinds = shapely.get_type_id(parquet.geometry.to_numpy())
    for layer, ids in _FEATURE_LAYERS.items():
        parquet[[k in ids for k in kinds]].to_file(out / "osm_features.gpkg", layer=layer)
    (out / "osm_features.parquet").unlink()
    old = load_result(out).features
    assert sorted(map(json.dumps, old["tags"])) == sorted(map(json.dumps, want["tags"]))
    # a folder from a newer lifecircle is refused by name, not half read
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    (out / "meta.json").write_text(json.dumps({**meta, "format": 99}), encoding="utf-8")
    with pytest.raises(OutputError, match="newer lifecircle .*format 99"):
        load_result(out)


def test_map_and_isochrones_never_replace_a_file_of_the_folder_they_read(tmp_path, helsinki):
    """`map DIR -o DIR/lifecircle.gpkg` (or summary.csv, network.npz …) replaced the analysis
    with a page; every later command then found the folder damaged. Refused now; the default
    targets inside the folder (map.html, isochrones.gpkg) stay allowed."""
    import hashlib

    from typer.testing import CliRunner

    from lifecircle.cli import app

    folder = tmp_path / "a"
    helsinki.save(folder, map_html=False)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    runner = CliRunner()
    for argv in (["map", str(folder), "-o", str(folder / "lifecircle.gpkg")],
                 ["map", str(folder), "-o", str(folder / "summary.csv"), "--force"],
                 ["isochrones", str(folder), "--homes", "2", "-o", str(folder / "lifecircle.gpkg")],
                 ["isochrones", str(folder), "--homes", "2", "-o", str(folder / "network.npz")]):
        r = runner.invoke(app, argv + ["--lang", "en"])
        assert r.exit_code == 2 and "is part of the input folder" in r.output, r.output
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before
    r = runner.invoke(app, ["map", str(folder), "--basemap", "blank"])
    assert r.exit_code == 0 and (folder / "map.html").exists(), r.output


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lifecircle.cli import app
    from lifecircle.io.sources import embedded_sample

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["analyze", str(embedded_sample("helsinki")), "-o", "a" * 300, "--lang", "en"])
    assert r.exit_code == 2 and r.output.startswith("error: aaa") and "cannot be written here" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    with pytest.raises(OutputError, match="cannot be written here"):
        check_out_file(tmp_path / ("b" * 300 + ".html"))


def test_force_with_a_folder_in_the_way_moves_nothing(tmp_path):
    """--force into a foreign folder holding a folder named like one of lifecircle's files
    (summary.csv/): refused before any file is moved in (it used to leave half an analysis)."""
    out = tmp_path / "f"
    (out / "summary.csv").mkdir(parents=True)
    (out / "mine.docx").write_text("keep")
    with pytest.raises(OutputError, match="is a folder where lifecircle writes a file"):
        _write(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["mine.docx", "summary.csv"]
