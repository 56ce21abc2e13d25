"""Exceptions raised by lifecircle.

Every error a user can cause derives from :class:`LifecircleError`. Messages name the file (or
field, or row) and the problem, and say what to do where that is not obvious. The CLI prints
the message and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from pathlib import Path


class LifecircleError(Exception):
    """Base class of all errors lifecircle raises on purpose."""

    exit_code = 2


class InputFileError(LifecircleError):
    """A file is missing, unreadable, corrupt or of an unknown kind."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NoWalkableStreetsError(InputFileError):
    """The data holds no way that a pedestrian can use."""


class BoundaryError(InputFileError):
    """A boundary file is unusable or does not overlap the data."""


class OptionError(LifecircleError):
    """An option or setting has a value lifecircle cannot use; the message names the option."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")


class ProfileError(LifecircleError):
    """A profile name is unknown or a profile file is malformed."""

    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class NetworkError(LifecircleError):
    """The arrays handed to the engine are invalid (negative or NaN lengths, bad indices)."""


class TableError(InputFileError):
    """A user table (facilities, sites, population) has bad columns or rows."""

    def __init__(self, path: str | Path, problem: str, rows: list | None = None):
        self.rows = list(rows or [])
        super().__init__(path, problem)


class ConfigError(LifecircleError):
    """A batch configuration file is invalid; the message names the field and line."""

    def __init__(self, path: str | Path, problem: str, field: str | None = None, line: int | None = None):
        self.path = str(path)
        self.field = field
        self.line = line
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


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
