"""Ctrl-C on ``lifecircle batch`` says "interrupted" in the language of the batch config
(``lang = "zh"``), which has no ``--lang`` of its own."""

from __future__ import annotations

import importlib
import sys

import pytest

cli_app = importlib.import_module("lifecircle.cli.app")
common = importlib.import_module("lifecircle.cli.common")

CONFIG = """\
out = "out"
lang = "{lang}"

[sources]
helsinki = {{ sample = "helsinki" }}

[[districts]]
name = "A"
bbox = [24.9352, 60.1641, 24.9443, 60.1716]
"""


@pytest.mark.parametrize(("lang", "word"), [("zh", "已中断"), ("en", "interrupted")])
def test_ctrl_c_in_a_batch_speaks_the_configs_language(tmp_path, monkeypatch, capsys, lang, word):
    batch_run = importlib.import_module("lifecircle.batch.run")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_run, "run", interrupted)
    monkeypatch.setattr(common, "_remembered_lang", None)
    monkeypatch.setenv("LANG", "en_US.UTF-8")       # the locale says English
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    config = tmp_path / "batch.toml"
    config.write_text(CONFIG.format(lang=lang), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["lifecircle", "batch", str(config)])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert err.strip() == word and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_configs_language_does_not_outlive_its_command(tmp_path, monkeypatch, capsys):
    """``main()`` called again in one process (a test, a notebook): a Chinese batch config's
    language is not the next command's."""
    batch_run = importlib.import_module("lifecircle.batch.run")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_run, "run", interrupted)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    config = tmp_path / "batch.toml"
    config.write_text(CONFIG.format(lang="zh"), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["lifecircle", "batch", str(config)])
    with pytest.raises(SystemExit):
        cli_app.main()
    assert capsys.readouterr().err.strip() == "已中断"
    # the next command, without --lang, is interrupted too: in the locale's language again
    monkeypatch.setattr(sys, "argv", ["lifecircle", "map", str(tmp_path)])
    monkeypatch.setattr(importlib.import_module("lifecircle.cli.maps"), "load_folder", interrupted)
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_ctrl_c_waits_for_the_combined_outputs_and_the_close():
    """A Ctrl-C while the combined files are written (or the cluster closed) is raised once
    the block ends, so the files are all from this run; a second one stops at once (tester)."""
    import os
    import signal

    batch_run = importlib.import_module("lifecircle.batch.run")
    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with batch_run._interrupt_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("first file")
            done.append("second file")
    assert done == ["first file", "second file"]
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with batch_run._interrupt_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            done.append("never")
    assert "never" not in done
    with batch_run._interrupt_deferred():      # no Ctrl-C: nothing raised
        done.append("quiet")
    assert done[-1] == "quiet"


def _locale(monkeypatch, lang: str) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8" if lang == "zh" else "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)


@pytest.mark.parametrize(("line", "locale", "word"), [
    (["--lang", "zh"], "en", "错误：missing.toml：找不到文件"),
    (["--lang", "en"], "zh", "error: missing.toml: file not found"),
    (["--lang", "en", "--lang", "zh"], "en", "错误：missing.toml：找不到文件"),   # the last one wins
    ([], "zh", "错误：missing.toml：找不到文件"),                                 # no --lang: the locale's
])
def test_a_batch_refused_before_its_config_is_read_speaks_the_lines_lang(tmp_path, monkeypatch, capsys,
                                                                         line, locale, word):
    """``lifecircle --lang zh batch missing.toml`` was refused in the locale's language: batch
    has no --lang of its own, and the top-level one was not read until the config's was known."""
    monkeypatch.setattr(common, "_remembered_lang", None)
    monkeypatch.chdir(tmp_path)
    _locale(monkeypatch, locale)
    monkeypatch.setattr(sys, "argv", ["lifecircle", *line, "batch", "missing.toml"])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == word


@pytest.mark.parametrize(("config_lang", "line", "word"), [("zh", "en", "已中断"), ("en", "zh", "interrupted")])
def test_ctrl_c_once_the_config_is_read_speaks_its_lang_over_the_lines(tmp_path, monkeypatch, capsys,
                                                                       config_lang, line, word):
    """The batch speaks its config's language whatever the line's --lang: so does its Ctrl-C
    (the line's --lang said "interrupted" in the other language); before the config is read,
    the line's."""
    batch_run = importlib.import_module("lifecircle.batch.run")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_run, "run", interrupted)
    monkeypatch.setattr(common, "_remembered_lang", None)
    _locale(monkeypatch, config_lang)
    config = tmp_path / "batch.toml"
    config.write_text(CONFIG.format(lang=config_lang), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["lifecircle", "--lang", line, "batch", str(config)])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 130 and capsys.readouterr().err.strip() == word
    # interrupted while the config is read: the line's language
    monkeypatch.setattr(batch_run, "load_config", interrupted)
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 130
    assert capsys.readouterr().err.strip() == ("已中断" if line == "zh" else "interrupted")
