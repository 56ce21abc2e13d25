"""The command line's own help follows the command line's language: Chinese with ``--lang zh``
(anywhere on the command line) or, without ``--lang``, a zh_* locale; English otherwise, as
typer prints it. Every command is taken from the registered click group, so a new command or
option without its Chinese fails here. ``lifecircle --version`` prints the package's version."""

from __future__ import annotations

import subprocess
import sys
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
heavy = sorted(m for m in ("numpy", "pandas", "geopandas", "shapely", "numba", "branca", "jinja2",
                           "folium", "osmium", "scipy") if m in sys.modules)
print(",".join(heavy))
"""


def test_chinese_help_and_version_load_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
