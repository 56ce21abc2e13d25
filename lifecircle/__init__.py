"""lifecircle: the 15-minute community life circle (十五分钟社区生活圈) in Python.

>>> import lifecircle
>>> result = lifecircle.analyze()        # the embedded Helsinki sample   # doctest: +SKIP
>>> result.save("out")                                                   # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from lifecircle.errors import LifecircleError  # noqa: E402
from lifecircle.settings import DEFAULTS, Settings  # noqa: E402


def analyze(*args, **kwargs):
    """See :func:`lifecircle.pipeline.analyze`."""
    from lifecircle.pipeline import analyze as _analyze

    return _analyze(*args, **kwargs)


def load(out_dir):
    """Read an ``analyze`` output folder back into a result."""
    from lifecircle.pipeline import load_result

    return load_result(out_dir)


__all__ = ["analyze", "load", "Settings", "DEFAULTS", "LifecircleError", "__version__"]
