"""A result analysed in Chinese reads Chinese in a notebook: ``summary_table("zh")``'s level
column (设施类别 / 维度 / 总体, as summary.xlsx says it), and ``_repr_html_`` with the
attribution as the other Chinese outputs word it and the 无数据 advice said once."""

from __future__ import annotations

import pytest
from synthetic_osm import grid_osm

import lifecircle
from lifecircle import i18n


@pytest.fixture(scope="module")
def zh(tmp_path_factory):
    path = tmp_path_factory.mktemp("nbzh") / "grid.osm"
    text = grid_osm({"amenity=cafe": "Café", "shop=supermarket": "Super"})
    path.write_text(text.replace('version="1"', 'version="1" timestamp="2021-06-12T08:00:00Z"'),
                    encoding="utf-8")                       # a data date, as a real extract has
    return lifecircle.analyze(str(path), lang="zh")


def test_summary_table_levels_in_the_language(zh):
    assert set(zh.summary_table("zh")["层级"]) == {"设施类别", "维度", "总体"}
    assert set(zh.summary_table("en")["level"]) == {"category", "dimension", "overall"}


def test_notebook_page_in_chinese(zh):
    page = zh._repr_html_()
    hint = i18n.no_data_hint("zh")
    assert zh.no_data_categories() and page.count(hint) == 1        # advice said once
    assert zh.attribution == "© OpenStreetMap contributors, data 2021-06-12"
    assert "© OpenStreetMap contributors，数据日期 2021-06-12" in page
    for word in ("<td>维度</td>", "<td>总体</td>"):                  # the dimension rows and the overall
        assert word in page
    assert "<td>dimension</td>" not in page and "<td>overall</td>" not in page
