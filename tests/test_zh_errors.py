"""Refusals in Chinese (issue 15, "--lang zh leaves no English"): every one-line error a user
can cause is printed in the command's language, and every raise site carries its Chinese.

* a table of refusals run in-process with ``--lang zh`` (bad paths, files, profiles, output
  folders, option values, site files, batch configs, click's own usage errors): exit 2, one line,
  Chinese, no English words; the same with ``--lang en`` stays English;
* a lint over ``lifecircle/`` with :mod:`ast`: every error lifecircle raises is built with a
  Chinese ``zh=`` message, so a new raise cannot slip through in English.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from lifecircle import errors
from lifecircle.batch.run import DISTRICT_KEYS, TOP_KEYS
from lifecircle.cli import app
from lifecircle.core.profiles import DIMENSIONS, load_profile
from lifecircle.io.sources import SAMPLES, data_path

SAMPLE = Path(data_path("samples/nanjing_xinjiekou_2021.osm.pbf"))
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Hostile inputs, each wrong in one way."""
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("hello\n")
    (d / "empty.osm.pbf").write_bytes(b"")
    (d / "junk.osm.pbf").write_bytes(b"\x00\x01 not a pbf at all" * 20)
    (d / "far.geojson").write_text(
        '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
        '"urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": [{"type": "Feature", "properties": '
        '{"name": "x"}, "geometry": {"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], '
        '[10.01, 50.01], [10, 50.01], [10, 50]]]}}]}')
    (d / "lines.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        '"geometry": {"type": "LineString", "coordinates": [[118.78, 32.04], [118.79, 32.05]]}}]}')
    (d / "prof.yaml").write_text("name: mine\ndimensions:\n  - id: services\n    categories:\n"
                                 "      - id: clinic\n        name_zh: 诊所\n        name_en: Clinic\n"
                                 "        minutes: -5\n        match: [{amenity: clinic}]\n")
    (d / "nocols.csv").write_text("名称,地址\n药店,中山路 1 号\n", encoding="utf-8")
    (d / "badrows.csv").write_text("name,lng,lat,category\n甲,abc,32.04,pharmacy\n乙,118.78,32.04,no_such\n"
                                   "丙,0,0,pharmacy\n", encoding="utf-8")
    (d / "sites.csv").write_text("name,地址\n空地,中山路\n", encoding="utf-8")
    foreign = d / "foreign"
    foreign.mkdir()
    (foreign / "mine.docx").write_text("not lifecircle's")
    (d / "unknown.toml").write_text('out = "o"\ncolour = "red"\n[sources]\na = "x.osm.pbf"\n')
    (d / "nodistricts.toml").write_text(f'out = "o"\n[sources]\na = "{SAMPLE.as_posix()}"\n')
    (d / "badspeed.toml").write_text(f'out = "o"\nspeed = 99\n[sources]\na = "{SAMPLE.as_posix()}"\n')
    with pytest.MonkeyPatch.context() as mp:     # an analysis folder (its map copy goes to d/maps)
        mp.chdir(d)
        run = CliRunner().invoke(app, ["analyze", str(SAMPLE), "-o", str(d / "a"), "--lang", "zh"])
    assert run.exit_code == 0, run.output
    return d


# name → command line (``{d}``: the folder of bad files, ``{s}``: the Xinjiekou sample)
CASES = {
    "missing source": ["analyze", "{d}/nope.osm.pbf", "-o", "{d}/o1"],
    "unknown file kind": ["analyze", "{d}/notes.txt", "-o", "{d}/o1"],
    "empty file": ["analyze", "{d}/empty.osm.pbf", "-o", "{d}/o1"],
    "corrupt pbf": ["analyze", "{d}/junk.osm.pbf", "-o", "{d}/o1"],
    "boundary elsewhere": ["analyze", "{s}", "-o", "{d}/o1", "--boundary", "{d}/far.geojson"],
    "boundary of lines": ["analyze", "{s}", "-o", "{d}/o1", "--boundary", "{d}/lines.geojson"],
    "boundary missing": ["analyze", "{s}", "-o", "{d}/o1", "--boundary", "{d}/none.geojson"],
    "unknown profile": ["analyze", "{s}", "-o", "{d}/o1", "--profile", "nosuchprofile"],
    "bad profile file": ["analyze", "{s}", "-o", "{d}/o1", "--profile", "{d}/prof.yaml"],
    "POI table without columns": ["analyze", "{s}", "-o", "{d}/o1", "--facilities", "{d}/nocols.csv"],
    "POI table, no usable row": ["analyze", "{s}", "-o", "{d}/o1", "--facilities", "{d}/badrows.csv"],
    "POI table missing": ["analyze", "{s}", "-o", "{d}/o1", "--facilities", "{d}/none.csv"],
    "foreign out folder": ["analyze", "{s}", "-o", "{d}/foreign"],
    "out is the input": ["analyze", "{s}", "-o", "{s}"],
    "speed out of range": ["analyze", "{s}", "-o", "{d}/o1", "--speed", "0"],
    "geographic crs": ["analyze", "{s}", "-o", "{d}/o1", "--crs", "4326"],
    "unknown datum": ["analyze", "{s}", "-o", "{d}/o1", "--facilities", "{d}/badrows.csv",
                      "--facilities-crs", "mars"],
    "unknown complete id": ["analyze", "{s}", "-o", "{d}/o1", "--complete", "no_such"],
    "unknown metric": ["analyze", "{s}", "-o", "{d}/o1", "--metrics", "time,speed"],
    "map of a non-analysis": ["map", "{d}/foreign"],
    "isochrones bad minutes": ["isochrones", "{d}/foreign", "--minutes", "abc"],
    "resources of a non-analysis": ["resources", "{d}/foreign", "--sites", "{d}/sites.csv", "-o", "{d}/o2"],
    "unknown sample": ["demo", "--sample", "atlantis"],
    "site file without coordinates": ["resources", "{d}/a", "--sites", "{d}/sites.csv", "-o", "{d}/o2"],
    "recommend unknown category": ["recommend", "{d}/a", "--category", "no_such_use", "-o", "{d}/o3"],
    "recommend k of zero": ["recommend", "{d}/a", "--category", "幼儿园", "--k", "0", "-o", "{d}/o3"],
    "check unknown standard": ["check", "{d}/a", "--standard", "nosuch", "-o", "{d}/o4"],
    "map without resources": ["map", "{d}/a", "-o", "{d}/m.html", "--resources", "{d}/foreign"],
    "isochrones without communities": ["isochrones", "{d}/a", "--communities", "-o", "{d}/i.gpkg"],
    "links without candidates": ["links", "{d}/a", "-o", "{d}/o5"],
    "bad origins": ["isochrones", "{d}/a", "--origins", "{d}/nocols.csv", "-o", "{d}/i.gpkg"],
    "batch config missing": ["batch", "{d}/none.toml"],
    "batch unknown field": ["batch", "{d}/unknown.toml"],
    "batch no districts": ["batch", "{d}/nodistricts.toml"],
    "batch bad speed": ["batch", "{d}/badspeed.toml"],
    "batch workers and scheduler": ["batch", "{d}/badspeed.toml", "--workers", "1", "--scheduler", "tcp://x:1"],
    # click's own usage errors
    "missing argument": ["analyze"],
    "no such option": ["analyze", "{s}", "-o", "{d}/o1", "--colour", "red"],
    "not a number": ["analyze", "{s}", "-o", "{d}/o1", "--speed", "fast"],
    "no such command": ["analyse"],
    "extra argument": ["map", "{d}/foreign", "extra"],
}

#: Latin words a Chinese message may hold: units, standard codes, names of formats, geometry
#: types and programs, option values, and the ids and keys of profiles, samples and batch
#: configs (paths, options, quoted values and ids with digits or "_" are removed before).
ALLOWED = {"m", "km", "h", "min", "OSM", "PBF", "XML", "YAML", "TOML", "CSV", "EPSG", "WGS",
           "GeoPackage", "GeoJSON", "LineString", "Point", "Polygon", "MultiPolygon",
           "lifecircle", "analyze", "resources", "zh", "en", "lng", "lat", "wkt", "pip", "utm",
           "id", "default", "minutes", *SAMPLES, *TOP_KEYS, *DISTRICT_KEYS, *DIMENSIONS,
           *load_profile("default").category_ids}


def english_words(message: str, *paths: Path) -> list[str]:
    """The ASCII words of ``message`` once paths, options, quoted values, ids and the allowed
    words are taken out."""
    text = message
    for p in sorted(map(str, paths), key=len, reverse=True):
        text = text.replace(p, " ")
    text = re.sub(r"'[^']*'|\"[^\"]*\"", " ", text)        # quoted values, metavars, names
    text = re.sub(r"--?[\w-]+", " ", text)                   # options
    text = re.sub(r"\S*[/\\]\S*|\S*\.\w+\b", " ", text)      # paths and file names
    text = re.sub(r"\b\w*[_\d]\w*\b", " ", text)            # ids, numbers
    return [w for w in re.findall(r"[A-Za-z]+", text) if w not in ALLOWED]


#: commands without --lang: their messages are in the locale's language
NO_LANG = {"batch"}


def _run(args, files, lang=None, env=None):
    line = [a.format(d=files, s=SAMPLE) for a in args]
    if args[0] in NO_LANG:
        env = {"LANG": "zh_CN.UTF-8" if lang == "zh" else "C.UTF-8", "LC_ALL": ""}
    else:
        line += ["--lang", lang]
    run = CliRunner().invoke(app, line, env=env, catch_exceptions=False)
    return run.exit_code, run.output.strip()


#: refusals that quote a library's own message (kept, in brackets, to diagnose the file)
LIBRARY_DETAIL = {"corrupt pbf"}


@pytest.mark.parametrize("case", list(CASES))
def test_refusal_in_chinese(case, files):
    code, out = _run(CASES[case], files, "zh")
    assert code == 2, out
    assert len(out.splitlines()) == 1, out
    assert out.startswith("错误："), out
    assert CJK.search(out.removeprefix("错误：")), out
    ours = re.sub(r"（[^（]*）$", "", out) if case in LIBRARY_DETAIL else out
    given = [a.format(d=files, s=SAMPLE) for a in CASES[case] if not a.startswith("-")]  # user's words
    assert english_words(ours, files, SAMPLE, *given) == [], out
    assert "Traceback" not in out


@pytest.mark.parametrize("case", ["missing source", "bad profile file", "POI table, no usable row",
                                  "foreign out folder", "speed out of range", "batch unknown field",
                                  "missing argument", "isochrones bad minutes", "unknown metric"])
def test_refusal_stays_english_with_lang_en(case, files):
    code, out = _run(CASES[case], files, "en")
    assert code == 2, out
    assert not CJK.search(out.replace("经度/纬度", "")), out
    assert "错误" not in out
    assert re.search(r"\b(not|no|must|unknown|Missing|found|holds)\b", out), out


def test_details_of_chinese_messages(files):
    """The Chinese says what the English says: rows and reasons, lines and fields."""
    _, out = _run(CASES["POI table, no usable row"], files, "zh")
    assert "第 2 行：经度 'abc' 不是数字" in out and "第 3 行：未知的类别 'no_such'" in out
    assert "坐标为 0,0" in out
    _, out = _run(CASES["bad profile file"], files, "zh")
    assert "第 5 行" in out and "维度 services 的第 1 个类别 'clinic'" in out and "minutes 须为正数（实为 -5）" in out
    _, out = _run(CASES["batch unknown field"], files, "zh")
    assert "第 2 行" in out and "字段 'colour'" in out and "未知的字段" in out


def test_batch_speaks_its_config_language(files):
    """Once the config is read, a refusal is in the config's language, whatever the locale."""
    (files / "zhcfg.toml").write_text(f'out = "foreign"\nlang = "zh"\n[sources]\na = "{SAMPLE.as_posix()}"\n'
                                      '[[districts]]\nname = "甲"\nbbox = [118.78, 32.04, 118.79, 32.05]\n',
                                      encoding="utf-8")
    run = CliRunner().invoke(app, ["batch", str(files / "zhcfg.toml")], env={"LANG": "C.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and run.output.startswith("错误："), run.output
    assert "不是 lifecircle 建的文件夹" in run.output


def test_locale_decides_without_lang(files):
    run = CliRunner().invoke(app, ["analyze", str(files / "nope.osm.pbf"), "-o", str(files / "o1")],
                             env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and run.output.startswith("错误："), run.output
    run = CliRunner().invoke(app, ["analyze"], env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and run.output.startswith("错误：缺少参数"), run.output
    run = CliRunner().invoke(app, ["analyze"], env={"LANG": "C.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and "Missing argument" in run.output


@pytest.mark.parametrize("argv", [
    ["recommend", "{d}/a", "--category", "no_such_use", "-o", "{d}/o7"],
    ["check", "{d}/a", "--min-share", "1.5", "-o", "{d}/o8"],
    ["map", "{d}/a", "--resources", "{d}/nope.csv"],
])
def test_a_chinese_analysis_refuses_in_chinese_without_lang(files, argv):
    """No --lang and an English locale: a command on a Chinese analysis folder speaks Chinese,
    its refusals included (they used to fall back to the locale's English)."""
    run = CliRunner().invoke(app, [a.format(d=files) for a in argv], env={"LANG": "C.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and run.output.startswith("错误："), run.output


def test_python_api_message_stays_english():
    exc = errors.InputFileError("a.csv", "file not found", zh="找不到文件")
    assert str(exc) == "a.csv: file not found" and exc.message("zh") == "a.csv：找不到文件"
    assert exc.message("en") == str(exc)
    exc = errors.ConfigError("b.toml", "must be text", field="out", line=3, zh="须为文本")
    assert str(exc) == "b.toml, line 3, field 'out': must be text"
    assert exc.message("zh") == "b.toml，第 3 行，字段 'out'：须为文本"
    assert errors.OutputError("x").message("zh") == "x"          # no Chinese given: English


def test_english_words_finds_english():
    """The checker itself: English prose is caught, paths, options and ids are not."""
    assert english_words("/tmp/x.pbf：cannot read the table", Path("/tmp/x.pbf")) == [
        "cannot", "read", "the", "table"]
    assert english_words("--speed 须为 0.5 到 20 之间的数（km/h），实为 'fast' 与 no_such") == []


# --------------------------------------------------------------------------------------------
# lint: every raise carries Chinese

ERROR_CLASSES = {n for n, c in vars(errors).items()
                 if inspect.isclass(c) and issubclass(c, errors.LifecircleError)}
#: raised calls that are not messages to people: click's exit, internal exceptions caught and
#: re-raised with a message, a helper returning an error built with ``zh=``
NOT_MESSAGES = {"Exit", "_Inconsistent", "_DupKey", "damaged",
                "NoArgsIsHelpError",  # typer's: prints the help (in the command line's language)
                "_Failed",   # splitread: caught inside, the parent then reads the streets itself
                "Terminated"}   # cli: SIGTERM/SIGHUP as Ctrl-C, said as "已中断"/"interrupted"


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _literal_has_cjk(node: ast.AST) -> bool | None:
    """Whether a string literal (or f-string, or a sum of them) holds Chinese; None when the
    value is not a literal (an error's Chinese handed on, e.g. ``zh=exc.message("zh")``)."""
    parts = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    if isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)):
        return any(CJK.search(p) for p in parts)
    return None


def _has_latin_text(node: ast.AST) -> bool:
    """Whether the literal parts of ``node`` hold words (an f-string that only joins other
    Chinese texts, ``f"{where_zh}：{e.zh}"``, holds none)."""
    return any(re.search(r"[A-Za-z]{2,}", n.value) for n in ast.walk(node)
               if isinstance(n, ast.Constant) and isinstance(n.value, str))


def missing_chinese(root: Path) -> list[str]:
    """``file:line: what`` for every raise or error built without Chinese text."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node)
            zh = next((k.value for k in node.keywords if k.arg == "zh"), None)
            where = f"{path.relative_to(root.parent)}:{node.lineno}: {name}"
            if zh is not None and _literal_has_cjk(zh) is False and _has_latin_text(zh):
                bad.append(where + " (zh= holds no Chinese)")
            elif zh is None and name in ERROR_CLASSES:
                bad.append(where + " (no zh=)")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = _name(node.exc)
                if isinstance(getattr(builtins, name, None), type) or name in NOT_MESSAGES | ERROR_CLASSES:
                    continue
                if not any(k.arg == "zh" for k in node.exc.keywords):
                    bad.append(f"{path.relative_to(root.parent)}:{node.lineno}: raise {name} (no zh=)")
    return bad


def test_every_raise_has_chinese():
    bad = missing_chinese(REPO / "lifecircle")
    assert bad == [], "\n".join(bad)


def test_lint_catches_a_missing_translation(tmp_path):
    """The lint fails on an error without zh=, with an English zh=, and on a helper raise."""
    pkg = tmp_path / "lifecircle"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "def f(p, bad, error):\n"
        "    if p:\n        raise InputFileError(p, 'file not found')\n"
        "    if bad:\n        raise OptionError('--k', 'too big', zh='too big')\n"
        "    raise error(p, 'empty')\n"
        "def g(p):\n    raise InputFileError(p, 'file not found', zh='找不到文件')\n")
    found = missing_chinese(pkg)
    assert len(found) == 3, found
    assert any(":3: InputFileError (no zh=)" in f for f in found)
    assert any(":5: OptionError (zh= holds no Chinese)" in f for f in found)
    assert any(":6: raise error (no zh=)" in f for f in found)


@pytest.mark.parametrize("extra, en", [
    (["--minutes", "0,-5"], "--minutes"),
    (["--homes", "0"], "--homes"),
    (["--communities", "--homes", "3"], "one kind of origin"),
])
def test_isochrones_options_refused_in_the_analysis_language(files, extra, en):
    argv = ["isochrones", str(files / "a"), "-o", str(files / "iso.gpkg")] + extra
    run = CliRunner().invoke(app, argv, env={"LANG": "C.UTF-8", "LC_ALL": ""})
    assert run.exit_code == 2 and run.output.startswith("错误："), run.output
    run = CliRunner().invoke(app, argv + ["--lang", "en"])
    assert run.exit_code == 2 and en in run.output, run.output
