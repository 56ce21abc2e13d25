"""Exceptions raised by lifecircle.

Every error a user can cause derives from :class:`LifecircleError`. Messages name the file (or
field, or row) and the problem, and say what to do where that is not obvious. The CLI prints
the message and exits non-zero; it never shows a traceback for these.

Every error carries its message twice: ``str(exc)`` is English (the Python API's language), and
``exc.message("zh")`` is Chinese when the raise site gave one (``zh=`` beside the English, with the
same file names, option names, ids and units in Latin script). The CLI prints the message in the
command's language (:func:`lifecircle.cli.common.fail`).
"""

from __future__ import annotations

from pathlib import Path


class LifecircleError(Exception):
    """Base class of all errors lifecircle raises on purpose.

    Parameters
    ----------
    message : str
        The English message (``str(exc)``).
    zh : str, optional
        The same message in Chinese; for the classes that prefix a file, option or field
        (:class:`InputFileError`, :class:`OptionError` …) only the problem part, as in English.
    """

    exit_code = 2

    def __init__(self, message: str = "", *, zh: str | None = None):
        super().__init__(message)
        self.zh = zh

    def message(self, lang: str = "en") -> str:
        """The message in ``lang`` ("zh" or "en"); English where no Chinese was given."""
        return self.zh if lang == "zh" and self.zh else str(self)


class InputFileError(LifecircleError):
    """A file is missing, unreadable, corrupt or of an unknown kind."""

    def __init__(self, path: str | Path, problem: str, *, zh: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.zh_problem = zh
        super().__init__(f"{self.path}: {problem}", zh=f"{self.path}：{zh}" if zh else None)


class NoWalkableStreetsError(InputFileError):
    """The data holds no way that a pedestrian can use."""


class BoundaryError(InputFileError):
    """A boundary file is unusable or does not overlap the data."""


class OptionError(LifecircleError):
    """An option or setting has a value lifecircle cannot use; the message names the option."""

    def __init__(self, option: str, problem: str, *, zh: str | None = None):
        self.option = option
        self.problem = problem
        self.zh_problem = zh
        super().__init__(f"{option}: {problem}", zh=f"{option}：{zh}" if zh else None)


class ProfileError(LifecircleError):
    """A profile name is unknown or a profile file is malformed."""

    def __init__(self, source: str | Path, problem: str, *, zh: str | None = None):
        self.source = str(source)
        self.problem = problem
        self.zh_problem = zh
        super().__init__(f"{self.source}: {problem}", zh=f"{self.source}：{zh}" if zh else None)


class RegexTimeout(ProfileError):
    """A profile's regex ran over its time on a tag value (it backtracks without end); names
    the ``condition``, the ``pattern`` and the ``value``."""

    def __init__(self, source: str | Path, problem: str, *, zh: str | None = None, condition: str = "",
                 pattern: str = "", value: str = "", source_zh: str | None = None):
        super().__init__(source, problem, zh=zh)
        self.condition, self.pattern, self.value = condition, pattern, value
        if source_zh and zh:        # where it happened, in Chinese too ("类别 …，条件 …")
            self.zh = f"{source_zh}：{zh}"


class NetworkError(LifecircleError):
    """The arrays handed to the engine are invalid (negative or NaN lengths, bad indices)."""


class TableError(InputFileError):
    """A user table (facilities, sites, population) has bad columns or rows."""

    def __init__(self, path: str | Path, problem: str, rows: list | None = None, *, zh: str | None = None):
        self.rows = list(rows or [])
        super().__init__(path, problem, zh=zh)


class ConfigError(LifecircleError):
    """A batch configuration file is invalid; the message names the field and line."""

    def __init__(self, path: str | Path, problem: str, field: str | None = None, line: int | None = None,
                 *, zh: str | None = None):
        self.path = str(path)
        self.field = field
        self.line = line
        self.problem = problem
        self.zh_problem = zh
        where = where_zh = self.path
        if line is not None:
            where += f", line {line}"
            where_zh += f"，第 {line} 行"
        if field:
            where += f", field '{field}'"
            where_zh += f"，字段 '{field}'"
        super().__init__(f"{where}: {problem}", zh=f"{where_zh}：{zh}" if zh else None)


class OutputError(LifecircleError):
    """An output folder or file cannot be written, or an analysis folder is incomplete."""


class OverpassError(LifecircleError):
    """Downloading from Overpass failed (offline, or the place was not found)."""


class IsochroneError(LifecircleError):
    """Origins or thresholds that cannot give isochrones."""


class MapError(LifecircleError):
    """A basemap cannot be used (unknown name, missing key) or a map cannot be written."""


class RecommendError(LifecircleError):
    """A recommendation request names an unknown category or site."""


class SettingsError(LifecircleError):
    """A setting is out of range or of the wrong kind (walking speed, snap distance, tiers,
    language …); raised by :class:`~lifecircle.settings.Settings` before any data is read."""


class PopulationError(InputFileError):
    """A population raster or community-totals file is unusable or matches no home."""


class LinkError(LifecircleError):
    """Candidate links that cannot be used at all (none given, none proposed)."""
