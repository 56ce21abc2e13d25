"""The command line's own help follows the command line's language: Chinese with ``--lang zh``
(anywhere on the command line) or, without ``--lang``, a zh_* locale; English otherwise, as
typer prints it. Every command is taken from the registered click group, so a new command or
option without its Chinese fails here. ``lifecircle --version`` prints the package's version."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import lifecircle
from lifecircle.cli import app
from lifecircle.cli.help_zh import COMMANDS, HELP_OPTION, RICH_WORDS, USAGE

ROOT = Path(__file__).resolve().parents[1]
_UNSET = {"LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None}
EN = {**_UNSET, "LANG": "C"}
ZH = {**_UNSET, "LANG": "zh_CN.UTF-8"}
WIDE = {"COLUMNS": "3000"}          # no wrapping: each help on one line
GROUP = typer.main.get_command(app)  # built once here: English (a run in Chinese puts it back)
NAMES = list(GROUP.commands)
#: the English of typer's help screen that must not show in Chinese
TYPER_EN = ("Usage:", "Options", "Arguments", "Commands", "Show this message and exit.", "[default:",
            "[required]")


def flat(text: str) -> str:
    """``text`` without whitespace and the panels' box lines: a help folded over several lines
    reads as one string again."""
    return "".join(text.translate(str.maketrans("", "", "│╭╮╰╯─")).split())


def run(args, env):
    result = CliRunner().invoke(app, args, env=env, prog_name="lifecircle")
    return result.exit_code, result.output


def command(name: str):
    return GROUP if name == "" else GROUP.commands[name]


def shown(cmd) -> list:
    return [p for p in cmd.params if not getattr(p, "hidden", False)]


def test_every_command_and_parameter_has_its_chinese():
    assert set(COMMANDS) == {"", *NAMES}         # none missing, none of a command that is gone
    for name in COMMANDS:
        about, params = COMMANDS[name]
        cmd = command(name)
        assert about.strip() and any("\u4e00" <= ch <= "\u9fff" for ch in about), name
        assert set(params) == {p.name for p in cmd.params}, name
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in params.values()), name
    from typer import rich_utils

    for word, text in RICH_WORDS.items():      # typer's words still named so (a typer upgrade)
        english = getattr(rich_utils, word)
        assert isinstance(english, str) and english.count("{") == text.count("{"), word


@pytest.mark.parametrize("name", ["", *NAMES])
def test_help_in_chinese_with_lang_zh(name):
    args = ([name] if name else []) + ["--help", "--lang", "zh"]
    code, out = run(args, {**EN, **WIDE})
    assert code == 0, out
    text = flat(out)
    about, params = COMMANDS[name]
    assert flat(about) in text                                # the whole description
    for param in shown(command(name)):
        assert flat(params[param.name]) in text, param.name
        assert flat(param.help) not in text, param.name      # no English help left
    assert flat(command(name).help) not in text
    assert flat(HELP_OPTION) in text and out.lstrip().startswith(USAGE)
    panels = ["OPTIONS_PANEL_TITLE", "COMMANDS_PANEL_TITLE" if name == "" else None,
              "ARGUMENTS_PANEL_TITLE" if any(p.param_type_name == "argument" for p in command(name).params) else None]
    for word in filter(None, panels):
        assert f"─ {RICH_WORDS[word]} ─" in out, word
    for english in TYPER_EN:
        assert english not in out, english
    if name == "":                                            # the command list: first paragraphs
        for sub in NAMES:
            assert flat(COMMANDS[sub][0].split("\n\n")[0]) in text, sub
            assert flat(GROUP.commands[sub].help.split("\n\n")[0]) not in text, sub


def test_chinese_defaults_required_and_folding_at_80_columns():
    """typer's ``[default: …]`` and ``[required]`` in Chinese; at 80 columns a Chinese help
    without spaces folds onto the next line, never cut short with "…"."""
    code, out = run(["analyze", "--help", "--lang", "zh"], {**EN, "COLUMNS": "80"})
    assert code == 0, out
    assert "[默认：wgs84]" in flat(out) and "[必填]" in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    text = flat(out)
    for name, help_zh in COMMANDS["analyze"][1].items():
        assert flat(help_zh) in text, name


@pytest.mark.parametrize("args", [["--lang=zh", "map", "--help"], ["map", "--lang", "zh", "--help"],
                                  ["--lang", "zh", "--help"], ["--help", "--lang=zh"]])
def test_lang_zh_anywhere_on_the_command_line(args):
    code, out = run(args, {**EN, **WIDE})
    assert code == 0, out
    assert out.lstrip().startswith(USAGE) and "Options" not in out


def test_zh_locale_without_lang_gives_chinese():
    for args, about in ((["--help"], COMMANDS[""][0]), (["check", "--help"], COMMANDS["check"][0])):
        code, out = run(args, {**ZH, **WIDE})
        assert code == 0, out
        assert flat(about) in flat(out) and out.lstrip().startswith(USAGE)


@pytest.mark.parametrize("name", ["", *NAMES])
def test_english_help_is_typers_own(name):
    """``--lang en`` (even under a zh locale) and LANG=C give the same English screen, every
    help in its English; a Chinese run before leaves nothing Chinese behind."""
    help_args = ([name] if name else []) + ["--help"]
    code, before = run(help_args, {**EN, **WIDE})
    assert code == 0, before
    assert run([*help_args, "--lang", "zh"], {**EN, **WIDE})[0] == 0
    assert run(help_args, {**EN, **WIDE}) == (0, before)
    assert run([*help_args, "--lang", "en"], {**ZH, **WIDE}) == (0, before)
    text = flat(before)
    assert before.lstrip().startswith("Usage: ") and "Show this message and exit." in before
    for param in shown(command(name)):
        assert flat(param.help) in text, param.name
    zh = [COMMANDS[name][0], *COMMANDS[name][1].values(), HELP_OPTION, *RICH_WORDS.values()]
    assert not any(flat(t) in text for t in zh)


@pytest.mark.parametrize("env", [EN, ZH])
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag, env):
    for args in ([flag], [flag, "--lang", "zh"]):
        assert run(args, env) == (0, f"lifecircle {lifecircle.__version__}\n")


def test_usage_errors_in_chinese():
    for args, said in ((["--bogus", "--lang", "zh"], "没有选项 --bogus"),
                       (["--lang", "zh", "bogus"], "没有命令 'bogus'"),
                       (["analyze", "--lang", "zh"], "缺少参数 'source'")):
        code, out = run(args, EN)
        assert code == 2, out
        assert out.startswith("错误：") and said in out and "查看用法" in out, out
        assert "Usage:" not in out and "Error" not in out
    code, out = run(["--bogus"], EN)                   # English: typer's own panel
    assert code == 2 and "No such option: --bogus" in out and "Try 'lifecircle --help' for help." in out


def test_lang_before_the_command_is_the_commands():
    """``lifecircle --lang zh demo …`` is ``lifecircle demo --lang zh …``: its refusal in
    Chinese; ``batch`` takes its language from its config and says so."""
    code, out = run(["--lang", "zh", "demo", "--sample", "nowhere"], EN)
    assert code == 2 and out.startswith("错误：未知的示例数据"), out
    code, out = run(["--lang", "en", "demo", "--sample", "nowhere"], ZH)
    assert code == 2 and out.startswith("error: unknown sample"), out
    config = ROOT / "data" / "samples" / "batch_example.toml"      # its lang: en
    code, out = run(["batch", str(config), "--lang", "zh"], EN)
    assert code == 2 and out.startswith("错误：--lang：批量运行的语言由配置文件中的 lang 决定"), out
    code, out = run(["batch", str(config), "--lang", "en"], ZH)
    assert code == 2 and out.startswith("error: --lang: a batch's language is the 'lang' of its config"), out


PROBE = """
import sys
from typer.testing import CliRunner
from lifecircle.cli import app
for args in (["--version"], ["analyze", "--help", "--lang", "zh"], ["--help", "--lang", "zh"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
for args in (["--lang", "zh", "analyze", "x"], ["--lang", "zh", "batch", "c", "-w", "0"]):
    result = CliRunner().invoke(app, args)      # a usage error in Chinese: as light as typer's
    assert result.exit_code == 2 and result.output.startswith("错误："), result.output
heavy = sorted(m for m in ("numpy", "pandas", "geopandas", "shapely", "numba", "branca", "jinja2",
                           "folium", "osmium", "scipy") if m in sys.modules)
print(",".join(heavy))
"""


def test_chinese_help_and_version_load_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------------------------
# one language per command line: click's rule (the last --lang; a command's own after the
# top-level one), for help, usage errors, the run and "interrupted" alike


@pytest.mark.parametrize("args, lang", [
    (["analyze", "--lang", "zh", "--lang", "en", "--help"], "en"),
    (["analyze", "--lang", "en", "--lang", "zh", "--help"], "zh"),
    (["--lang", "en", "analyze", "--lang", "zh", "--help"], "zh"),
    (["--lang", "zh", "analyze", "--lang", "en", "--help"], "en"),
    (["--lang", "zh", "--lang", "en", "analyze", "--help"], "en"),
    (["--lang=en", "--lang=zh", "--help"], "zh"),
])
def test_the_last_lang_wins_for_help(args, lang):
    code, out = run(args, {**EN, **WIDE})
    assert code == 0, out
    assert out.lstrip().startswith(USAGE if lang == "zh" else "Usage: ")


@pytest.mark.parametrize("args, lang", [
    (["analyze", "nofile.pbf", "-o", "o4", "--lang", "zh", "--lang", "en", "--speed", "x"], "en"),
    (["--lang", "en", "analyze", "nofile.pbf", "--lang", "zh", "-o", "o4", "--speed", "x"], "zh"),
    (["--lang", "zh", "--lang", "en", "analyze", "nofile.pbf", "-o", "o4", "--speed", "x"], "en"),
])
def test_the_last_lang_wins_for_usage_errors(args, lang):
    code, out = run(args, EN)
    assert code == 2, out
    assert out.startswith("错误：") == (lang == "zh"), out
    assert ("Invalid value for '--speed'" in out) == (lang == "en"), out


@pytest.mark.parametrize("args, lang", [
    (["demo", "--sample", "nowhere", "--lang", "zh", "--lang", "en"], "en"),
    (["--lang", "en", "demo", "--lang", "zh", "--sample", "nowhere"], "zh"),
    (["--lang", "zh", "--lang", "en", "demo", "--sample", "nowhere"], "en"),
])
def test_the_last_lang_wins_for_the_run(args, lang):
    code, out = run(args, EN)
    assert code == 2, out
    assert out.startswith("错误：未知的示例数据" if lang == "zh" else "error: unknown sample"), out


def test_the_last_lang_wins_for_interrupted(monkeypatch):
    from lifecircle.cli.common import args_lang, run_lang

    for var, value in EN.items():
        monkeypatch.delenv(var, raising=False) if value is None else monkeypatch.setenv(var, value)

    assert run_lang(["--lang", "zh", "--lang", "en", "analyze", "x"]) == "en"
    assert run_lang(["--lang", "en", "analyze", "x", "--lang=zh"]) == "zh"
    assert args_lang(["--lang", "zh", "--lang", "fr"]) == "en"     # the last is wrong: the locale's
    assert args_lang(["--lang", "zh", "--lang"]) == "zh"            # a --lang without its value


@pytest.mark.parametrize("top", ["zh", "fr", "[bold red]x[/bold red]"])
def test_top_level_lang_is_never_shown_as_the_commands_default(top):
    code, out = run(["--lang", top, "analyze", "--help"], {**EN, **WIDE})
    assert code == 0, out
    assert f"[默认：{top}]" not in out and f"[default: {top}]" not in out and "[bold" not in out
    assert out.lstrip().startswith(USAGE if top == "zh" else "Usage: ")


def test_lang_zh_alone_prints_the_chinese_help():
    code, out = run(["--lang", "zh"], EN)
    assert (code, out.lstrip().startswith(USAGE)) == (run([], EN)[0], True), out
    assert flat(COMMANDS[""][0]) in flat(out) and "缺少命令" not in out


# --------------------------------------------------------------------------------------------
# the rest of typer's words, the usage hint's command, standard output that cannot be written


def test_range_errors_usage_line_and_type_tags_in_chinese():
    code, out = run(["--lang", "zh", "batch", "c", "-w", "0"], EN)
    assert code == 2 and "'--workers' / '-w' 的值无效：须大于等于 1" in out, out
    code, out = run(["--lang", "zh", "--help"], {**EN, **WIDE})
    assert "用法：lifecircle [选项] 命令 [参数]..." in out and "<布尔>" in out and "<bool>" not in out
    code, out = run(["--lang", "zh", "analyze", "--help"], {**EN, **WIDE})
    assert "[选项]" in out and "<路径>" in out and "<数值>" in out and "<path>" not in out


@pytest.mark.parametrize("args, path", [
    (["analyze", "x", "-o", "o", "--force=yes"], "lifecircle analyze"),
    (["analyze", "x", "-o"], "lifecircle analyze"),
    (["recommend", "d", "-o", "o", "-c"], "lifecircle recommend"),
    (["isochrones", "d", "--minutes"], "lifecircle isochrones"),
    (["analyze", "--help=1"], "lifecircle analyze"),
    (["--bogus"], "lifecircle"),
])
def test_usage_hint_names_the_failing_command(args, path):
    code, out = run(["--lang", "zh", *args], EN)
    assert code == 2 and out.startswith("错误：") and f"（用 '{path} --help' 查看用法）" in out, out


def test_chinese_usage_error_prints_user_text_literally():
    code, out = run(["--lang", "zh", "[red]x[/red]"], EN)
    assert code == 2 and out.startswith("错误：没有命令 '[red]x[/red]'"), out


def _cli(args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "lifecircle.cli", *args], cwd=ROOT, timeout=120,
                          capture_output=kwargs.pop("stdout", None) is None, text=True,
                          env={**os.environ, "COLUMNS": "80", **(env or {})}, **kwargs)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("args, env, said", [
    (["--lang", "zh", "--help"], {"LANG": "C"}, "错误：无法写入标准输出"),
    (["analyze", "--help", "--lang", "en"], {"LANG": "zh_CN.UTF-8"}, "error: cannot write to standard output"),
])
def test_cannot_write_help_said_in_the_command_lines_language(args, env, said):
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "lifecircle.cli", *args], cwd=ROOT, timeout=120,
                             stdout=full, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "LANGUAGE": "", "LC_ALL": "", **env})
    assert out.returncode == 1 and said in out.stderr, out.stderr


@pytest.mark.parametrize("args", [["--help"], ["--lang", "zh", "analyze", "--help"], ["--version"]])
def test_closed_pipe_ends_quietly_as_sigpipe(args):
    read, write = os.pipe()
    os.close(read)                      # the reader is gone before anything is written
    try:
        out = subprocess.run([sys.executable, "-m", "lifecircle.cli", *args], cwd=ROOT, timeout=120,
                             stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


@pytest.mark.parametrize("args", [["--help"], ["--help", "--lang", "zh"], ["--lang", "zh", "analyze", "x"]])
def test_an_encoding_without_chinese_prints_no_traceback(args):
    out = _cli(args, {"PYTHONIOENCODING": "cp1252"})
    assert out.returncode in (0, 2) and "Traceback" not in out.stderr + out.stdout, out.stderr
    assert "Error" not in out.stderr and (out.returncode == 2 or "?" in out.stdout)


# --------------------------------------------------------------------------------------------
# wrapping Chinese: between characters, names whole, no line starting with closing punctuation

NAMES_KEPT = ("districts.csv/.xlsx", "gb50180-2018", "tdt1062-2021", "lifecircle", "n5_/n10_/n15_",
              "--no-map", "GeoJSON", "TIANDITU_KEY", "--population", "time,count,sfca", "failures.csv")
CLOSING = re.compile(r"(│|\s{2})[）。；，、：」』》”’]")


def all_chinese_helps(columns: int) -> str:
    return "".join(run([*([n] if n else []), "--help", "--lang", "zh"], {**EN, "COLUMNS": str(columns)})[1]
                   for n in ["", *NAMES])


def test_break_offsets_keep_names_and_punctuation():
    from lifecircle.cli.helplang import break_offsets

    def lines(text, width):
        cut = [0, *break_offsets(text, width), len(text)]
        return [text[a:b].strip() for a, b in zip(cut, cut[1:], strict=False)]

    assert lines("用地文件的坐标系：wgs84、gcj02或bd09。", 12) == ["用地文件的坐", "标系：", "wgs84、gcj02", "或bd09。"]
    assert lines("输出文件夹（CSV、XLSX）。 [必填]", 12) == ["输出文件夹", "（CSV、", "XLSX）。", "[必填]"]
    assert lines("面积，m²。 [默认：2000.0]", 12) == ["面积，m²。", "[默认：", "2000.0]"]
    assert lines("Write into an output folder", 10) == ["Write into", "an output", "folder"]   # rich's
    assert lines("拒绝GeoJSON/GeoPackage/Shapefile。", 14) == ["拒绝GeoJSON/", "GeoPackage/", "Shapefile。"]


@pytest.mark.parametrize("columns", [60, 80, 100])
def test_chinese_help_wraps_between_characters(columns):
    out = all_chinese_helps(columns)
    assert max(len(line) for line in out.splitlines()) <= columns
    bad = [line for line in out.splitlines() if CLOSING.search(line)]
    assert bad == [], "\n".join(bad)
    if columns >= 80:
        for name in NAMES_KEPT:
            assert name in out, name


@pytest.mark.parametrize("columns", [40, 60])
def test_default_tags_wrap_instead_of_being_cut(columns):
    for name in ["analyze", "map", "resources"]:
        code, out = run([name, "--help", "--lang", "zh"], {**EN, "COLUMNS": str(columns)})
        assert code == 0, out
        text = flat(out)
        tags = re.findall(r"\[默认：[^\]]*\]", text)
        assert len(tags) == text.count("[默认：") >= 2 and not any("…" in t for t in tags), out
        assert "[必填]" in text or name == "map"


# --------------------------------------------------------------------------------------------
# threads: Chinese and English help at once never mix, and English is typer's own afterwards


class _PerThread(io.TextIOBase):
    """Standard output kept apart for each thread."""

    def __init__(self):
        self.bufs = {}

    def write(self, s):
        self.bufs.setdefault(threading.get_ident(), io.StringIO()).write(s)
        return len(s)

    def take(self):
        return self.bufs.pop(threading.get_ident(), io.StringIO()).getvalue()

    def isatty(self):
        return False


def _help_in_threads(monkeypatch, langs, n=6):
    monkeypatch.setenv("COLUMNS", "100")
    for var, value in EN.items():
        monkeypatch.delenv(var, raising=False) if value is None else monkeypatch.setenv(var, value)
    out = _PerThread()
    monkeypatch.setattr(sys, "stdout", out)

    def call(args):
        try:
            app(args, standalone_mode=False)
        except SystemExit:
            pass
        return out.take()

    args = {"zh": ["--lang", "zh", "map", "--help"], "en": ["map", "--help"]}
    ref = {lang: call(args[lang]) for lang in ("zh", "en")}
    got, errors = [], []

    def work(lang):
        for _ in range(n):
            try:
                got.append((lang, call(args[lang])))
            except Exception as exc:    # noqa: BLE001 - the test reports it
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(lang,)) for lang in langs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [lang for lang, text in got if text != ref[lang]] == []
    assert call(args["en"]) == ref["en"]
    assert "Options" in ref["en"] and "选项" not in ref["en"] and "选项" in ref["zh"]


@pytest.mark.parametrize("langs", [("zh", "en"), ("zh", "zh"), ("en", "zh", "en", "zh")])
def test_help_in_threads_never_mixes(monkeypatch, langs):
    _help_in_threads(monkeypatch, langs)


def test_first_chinese_helps_at_once(monkeypatch):
    """Two threads making the Chinese printer at the same moment (typer's module slow to come):
    neither fails, English stays English."""
    import typer
    from typer import rich_utils

    from lifecircle.cli import helplang

    monkeypatch.setattr(helplang, "_zh_module", None)
    monkeypatch.delattr(typer, "rich_utils")

    def slow(name):
        if name == "rich_utils":
            time.sleep(0.2)
            return rich_utils
        raise AttributeError(name)

    monkeypatch.setattr(typer, "__getattr__", slow, raising=False)
    _help_in_threads(monkeypatch, ("zh", "zh"), n=1)


# --------------------------------------------------------------------------------------------
# the profile's one Chinese name; the locale read as gettext reads it

#: other Chinese names the profile had (help, check's lines) before it was 指标体系 everywhere
OTHER_PROFILE_NAMES = ("配置方案", "使用配置", "原配置", "配置中的分钟数", "标准配置文件")


def test_the_profile_has_one_chinese_name():
    assert "指标体系" in COMMANDS["analyze"][1]["profile"] and "指标体系" in COMMANDS["batch"][1]["config"]
    found = [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / "lifecircle").rglob("*.py"))
             for name in OTHER_PROFILE_NAMES if name in path.read_text(encoding="utf-8")]
    assert found == []
    from lifecircle.i18n import label

    assert "指标体系" in label("std.route_reclassified", "zh", p="x")


@pytest.mark.parametrize("env, lang", [
    ({"LANGUAGE": "zh_CN", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "en:zh_CN", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_TW:en", "LANG": "C"}, "zh"),
    ({"LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
])
def test_locale_read_as_gettext_reads_it(monkeypatch, env, lang):
    from lifecircle.i18n import default_lang

    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert default_lang() == lang
    code, out = run(["--help"], {var: env.get(var) for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")})
    assert out.lstrip().startswith(USAGE if lang == "zh" else "Usage: ")


def test_a_top_level_lang_runs_batch_with_its_configs_language():
    # ``alias lc='lifecircle --lang zh'``: batch still runs (its --lang, hidden, only picks its
    # help's language); a missing config is its refusal, not --lang's
    code, out = run(["--lang", "zh", "batch", "no_such_config.toml"], EN)
    assert code == 2 and "no_such_config.toml" in out and "--lang" not in out, out
    code, out = run(["--lang", "zh", "batch", "--help"], {**EN, **WIDE})
    assert code == 0 and out.lstrip().startswith(USAGE), out


def test_nothing_after_double_dash_is_a_lang():
    from lifecircle.cli.common import args_lang, line_lang

    assert line_lang(["--lang", "zh", "analyze", "--", "x", "--lang", "en"]) == "zh"
    assert line_lang(["analyze", "--", "--lang=zh"]) is None
    assert args_lang(["--lang", "en", "analyze", "--", "x", "--lang", "zh"]) == "en"


def test_a_list_option_type_tag_in_chinese():
    code, out = run(["--lang", "zh", "recommend", "--help"], {**EN, **WIDE})
    assert code == 0 and "<文本列表>" in out and "list[str]" not in out, out


@pytest.mark.parametrize("name", ["", *NAMES])
def test_english_descriptions_wrap_as_paragraphs(name):
    """Each paragraph of a command's docstring is one paragraph of the English help, wrapped
    at the console's width only: typer's rich mode kept the docstring's line breaks in the
    command list ("(default, in" and "Chinese), or Helsinki" on lines of their own) and in
    the paragraphs after the first (analyze's). At 3000 columns, each on one line."""
    import inspect

    from lifecircle.cli import analysis, batch, links, maps, resources, standards

    funcs = {"analyze": analysis.analyze, "demo": analysis.demo, "map": maps.map_command,
             "isochrones": maps.isochrones_command, "resources": resources.resources,
             "recommend": resources.recommend, "check": standards.check_cmd, "batch": batch.batch,
             "links": links.links}
    assert set(funcs) == set(NAMES)
    code, out = run(([name] if name else []) + ["--help"], {**EN, **WIDE})
    assert code == 0, out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    wanted = [inspect.cleandoc(funcs[sub].__doc__).split("\n\n")[0] for sub in NAMES] if name == "" \
        else inspect.cleandoc(funcs[name].__doc__).split("\n\n")
    for paragraph in wanted:
        one = " ".join(paragraph.split())
        assert any(one in line for line in lines), one
