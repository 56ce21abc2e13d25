"""Chinese deliverables of issue 15: the 80-column console summary, summary.xlsx, Chinese
tables and console lines of resources / recommend, category names in Chinese."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, shared_file
from rich.console import Console

from lifecircle.cli.analysis import print_summary
from lifecircle.result import load_result

XJK = "china/nanjing_xinjiekou_2021.osm.pbf"


@pytest.fixture(scope="module")
def xjk_zh(tmp_path_factory):
    """``COLUMNS=80 lifecircle analyze XINJIEKOU --lang zh`` as a user runs it (a subprocess,
    so the console width comes from the environment); its stdout and folder."""
    src = shared_file(XJK)
    work = tmp_path_factory.mktemp("zh")
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(REPO), LANG="C.UTF-8")
    env.pop("LC_ALL", None)
    run = subprocess.run([sys.executable, "-m", "lifecircle.cli", "analyze", str(src),
                          "--out", str(work / "out"), "--lang", "zh"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, work / "out"


def _cells(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


def test_console_summary_fits_80_columns_in_chinese(xjk_zh):
    out, folder = xjk_zh
    lines = out.splitlines()
    assert lines, out
    assert max(_cells(x) for x in lines) <= 80
    assert "…" not in out                       # no cell cut with an ellipsis
    # headline, six dimension rows, notes: Chinese, none of the raw words of the old table
    for word in ("category", "dimension", "homes", "residents", "note:", "mean score", "stages"):
        assert word not in out, word
    assert "十五分钟生活圈覆盖" in out and "平均得分" in out and "基尼系数" in out
    r = load_result(folder)
    dims = r.summary[(r.summary.community == "ALL") & (r.summary.level == "dimension")]
    assert len(dims) == 6
    for _, d in dims.iterrows():                # each dimension row with its real coverage
        row = next(x for x in lines if x.startswith(d["name_zh"]))
        assert f"{100 * d['covered']:.1f}" in row.split()
    # the 45-category table is not printed, but named where it is
    assert "便利店" not in out and "summary.xlsx" in out and "--verbose" in out
    # the notes of the analysis are Chinese
    assert "注：居民 " in out and "来源：建筑估算" in out
    flat = out.replace("\n", "")
    assert "个设施类别在数据中没有设施" in flat and "托儿所" in flat


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_verbose_category_table_fits_80_columns(xjk_zh, lang):
    r = load_result(xjk_zh[1])
    buf = io.StringIO()
    print_summary(r, lang, verbose=True, out=Console(file=buf, width=80))
    text = buf.getvalue()
    assert "…" not in text and max(_cells(x) for x in text.splitlines()) <= 80
    cats = r.summary[(r.summary.community == "ALL") & (r.summary.level == "category")]
    first = cats.iloc[0]
    name = first["name_zh"] if lang == "zh" else first["name_en"]
    row = next(x for x in text.splitlines() if x.startswith(name))
    assert f"{100 * first['covered']:.1f}" in row.split()


def test_summary_xlsx_chinese_headers_and_percentages(xjk_zh):
    folder = xjk_zh[1]
    x = pd.read_excel(folder / "summary.xlsx", sheet_name=None)
    assert set(x) == {"汇总", "说明"}
    sheet = x["汇总"]
    assert {"层级", "名称", "覆盖率(%)", "15分钟内(%)", "设施数"} <= set(sheet.columns)
    csv = pd.read_csv(folder / "summary.csv", encoding="utf-8-sig")
    assert "covered" in csv.columns and "level" in csv.columns   # machine names stay
    assert set(sheet["层级"]) == {"设施类别", "维度", "总体"}
    k = csv[(csv.level == "category") & (csv.id == "kindergarten")].iloc[0]
    row = sheet[sheet["名称"] == k["name_zh"]].iloc[0]
    assert row["覆盖率(%)"] == pytest.approx(round(100 * k["covered"], 1))
    assert row["15分钟内(%)"] == pytest.approx(round(100 * k["within_15"], 1))
    assert "OpenStreetMap" in " ".join(x["说明"].iloc[:, 0].astype(str))
