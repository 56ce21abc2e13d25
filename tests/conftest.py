"""Shared fixtures: the shared OSM extracts (found relative to the repo root) and small graphs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
SHARED_OSM = REPO.parent / "shared" / "data" / "osm"


@pytest.fixture(autouse=True, scope="session")
def _in_a_temporary_folder(tmp_path_factory):
    """The tests (and the fixtures of every scope) run in a temporary folder, not the
    repository's root: an ``analyze`` run from there copies its map into the repository's
    maps/ (as it does for a user), which a test run must not fill (it left xjk.html, zh.html)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


def shared_file(relative: str) -> Path:
    """A file under ../shared/data/osm, or skip the test with the reason."""
    path = SHARED_OSM / relative
    if not path.exists():
        pytest.skip(f"shared extract not found: {path}")
    return path


def pbf_copy(xml_path, pbf_path) -> Path:
    """The same elements, in the same order, as a PBF (written by libosmium)."""
    import osmium

    with osmium.SimpleWriter(str(pbf_path)) as writer:
        for obj in osmium.FileProcessor(str(xml_path)):
            writer.add(obj)
    return Path(pbf_path)


@pytest.fixture(scope="session")
def helsinki():
    """The embedded Helsinki sample, analysed once per test session (read-only: tests that
    change a result work on a copy)."""
    import lifecircle
    from lifecircle.io.sources import embedded_sample

    return lifecircle.analyze(embedded_sample("helsinki"))


@pytest.fixture(scope="session")
def nanjing():
    """Nanjing Xinjiekou (../shared), analysed once per test session; skipped without it."""
    import lifecircle

    return lifecircle.analyze(shared_file("china/nanjing_xinjiekou_2021.osm.pbf"))
