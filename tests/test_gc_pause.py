"""analyze holds Python's cycle collector off while it runs, and gives it back as it found it."""

import gc

import pytest

from lifecircle.errors import LifecircleError
from lifecircle.pipeline import analyze


def test_collector_off_during_stages_and_restored():
    seen = []
    r = analyze(progress=lambda name: seen.append(gc.isenabled()))
    assert seen and not any(seen)          # every stage ran with the collector off
    assert gc.isenabled() and len(r.homes) > 0


def test_collector_restored_after_a_refusal(tmp_path):
    bad = tmp_path / "x.osm.pbf"
    bad.write_bytes(b"not a pbf")
    with pytest.raises(LifecircleError):
        analyze(str(bad))
    assert gc.isenabled()


def test_collector_left_off_when_the_caller_had_it_off():
    gc.disable()
    try:
        analyze()
        assert not gc.isenabled()
    finally:
        gc.enable()
