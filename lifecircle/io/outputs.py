"""The analysis folder: what ``analyze`` writes and every later command reads.

A folder is self-contained — later commands (``map``, ``isochrones``, ``resources``,
``recommend``, ``check``) never re-read the OSM source or the profile file:

- ``lifecircle.gpkg``: layers ``homes``, ``facilities`` (points), ``facility_areas`` (polygons),
  ``streets``, ``communities`` (with a boundary) and ``about`` (attribution, source, data date),
  all WGS-84 (EPSG:4326) like every lifecircle GeoPackage, one geometry kind per layer; field
  aliases in the analysis language in ``gpkg_data_columns`` (QGIS shows them);
- ``osm_features.parquet``: the OSM features of the study area with their tags (JSON) as
  GeoParquet (columnar: a tenth of the time and a third of the size of the GeoPackage that format
  2 wrote as ``osm_features.gpkg``, which is still read);
- ``profile.yaml``: the profile the analysis ran with, as it was then;
- ``summary.csv``, ``meta.json`` (``format`` version, source, data date, CRS, settings, notes,
  timings), ``network.npz`` (the network and the snaps).

Folders are written atomically (:func:`atomic_dir`): into a temporary folder beside the target,
then renamed into place. :func:`write_outputs` writes the GeoPackage in a forked child process
(GDAL holds the GIL while it writes) while the calling process, for ``Result.save``, draws the map
(and, on a city, then prepares the GeoPackage's later layers for the child); the OSM features and
the small files go to whichever of the two is free first; where fork is not safe it writes them in
turn.

Output folders and files are safe to point anywhere — lifecircle never removes or hides what it
did not write:

lifecircle never removes or hides what it did not write:

* every folder it makes carries a marker file (:data:`MARKER`) listing the files it wrote;
  folders of older versions are recognised by their files (``meta.json`` + ``lifecircle.gpkg``,
  ``resources.json`` + ``resources.csv``, ``compliance.csv`` + ``compliance.xlsx``, a batch run);
* a folder is *replaced* (the whole folder, atomically) only when it is empty or holds nothing but
  lifecircle's own files; a folder holding anything else is refused, and with ``force=True``
  lifecircle's files are written *into* it (each file replaced atomically, nothing else touched);
* an existing file at a folder target, and a target that is (or holds) an input, are refused;
* a single-file output (a map, a GeoPackage) overwrites only a file lifecircle wrote (HTML
  carries :data:`HTML_MARKER`, a GeoPackage lifecircle's ``about`` table), else needs ``force``.

The replace renames the old folder aside and the new one into place under a lock on the parent
folder; a crash between the two renames is repaired by the next run (the old folder is renamed
back), and temporary folders of runs that were killed are removed (they are locked while in use).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import hashlib
import json
import logging
import mmap
import os
import pickle
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyproj
import shapely

from lifecircle import __version__
from lifecircle import columns as col
from lifecircle.core.network import WalkNetwork
from lifecircle.core.profiles import load_profile
from lifecircle.core.snapping import Snap
from lifecircle.errors import OutputError
from lifecircle.i18n import attribution_text, headline_text, label, status_label
from lifecircle.io.osmread import gc_paused, release_freed_memory
from lifecircle.io.sources import WGS84, write_about_layer
from lifecircle.settings import Settings
from lifecircle.untrusted import csv_safe, readable_path, restore_formula, xlsx_frame, xlsx_safe

try:  # POSIX advisory locks; without them (Windows) stale folders are recognised by age
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

GPKG = "lifecircle.gpkg"
FEATURES_FILE = "osm_features.parquet"
#: where format 2 kept the features (still read)
FEATURES_GPKG = "osm_features.gpkg"
PROFILE = "profile.yaml"
SUMMARY = "summary.csv"
#: the human twin of summary.csv: headers and names in the analysis language, percentages
SUMMARY_XLSX = "summary.xlsx"
META = "meta.json"
#: meta.json's lossless record of a source path that ``source`` (text for people) shows with
#: escapes (a file name that is not UTF-8, see :func:`source_fields`)
SOURCE_BYTES = "source_path_b64"
NETWORK = "network.npz"
MAP_HTML = "map.html"
#: Version of the folder layout; 2 added the stored profile and OSM features, 3 keeps the
#: features as GeoParquet.
FORMAT = 3
_FEATURE_LAYERS = {"points": (0, 4), "lines": (1, 2, 5), "polygons": (3, 6)}   # shapely type ids
#: facility layers of lifecircle.gpkg by geometry kind (``facilities`` always exists)
FACILITY_LAYERS = {"facilities": (0, 4), "facility_areas": (3, 6), "facility_lines": (1, 2, 5)}
#: the column that keeps the facilities' order across their layers (the snaps follow it)
FAC_INDEX = "fac_index"


MARKER = ".lifecircle"
HTML_MARKER = "<!-- written by lifecircle -->"
_TMP_TAG = ".lifecircle-tmp-"
_OLD_TAG = ".lifecircle-old"
#: the longest file name (bytes) of the file systems lifecircle writes to (ext4, APFS, NTFS…)
NAME_MAX = 255


def sibling_name(name: str, tag: str, room: int = 0) -> str:
    """The name ``.{name}{tag}`` of a temporary (or set-aside) sibling of ``name``, with
    ``room`` bytes left for a random suffix (``tempfile.mkdtemp``'s 8), within
    :data:`NAME_MAX` bytes: a legal name of 232–255 bytes gave a temporary name too long for
    the file system. Where it does not fit, ``name`` is cut (by bytes, at a character) and a
    hash of the whole name follows, so two long names that begin alike get different
    siblings; the same ``name`` always gets the same one (the recovery finds it again).

    >>> sibling_name("out", ".lifecircle-old")
    '.out.lifecircle-old'
    >>> n = sibling_name("新" * 85, ".lifecircle-tmp-", room=8)
    >>> len(n.encode()) + 8 <= 255 and n.endswith(".lifecircle-tmp-")
    True
    """
    full = f".{name}{tag}"
    if len(os.fsencode(full)) + room <= NAME_MAX:
        return full
    raw = os.fsencode(name)
    digest = hashlib.sha1(raw).hexdigest()[:8]
    budget = max(0, NAME_MAX - room - len(os.fsencode(tag)) - len(digest) - 2)    # "." and "~"
    cut = raw[:budget].decode("utf-8", errors="ignore")      # a character cut in two is dropped
    return f".{cut}~{digest}{tag}"

#: every name lifecircle writes into one of its folders (any command, any version)
OWN_NAMES = frozenset({
    MARKER, "lifecircle.gpkg", "summary.csv", "meta.json", "network.npz", "map.html",
    "osm_features.gpkg", "osm_features.parquet", "profile.yaml",
    "isochrones.gpkg", "resources.csv", "resources.xlsx", "resources.gpkg", "resources.json",
    "recommendations.csv", "recommendations.xlsx", "compliance.csv", "compliance.xlsx",
    "compliance_map.html", "batch.json", "districts.csv", "districts.xlsx", "districts.gpkg",
    "failures.csv", "index.html", "batch_run.json",
    "links.csv", "links_greedy.csv", "links.xlsx", "links.gpkg", "links_map.html",
    "resources_map.html", "summary.xlsx",
})
#: single-file outputs nothing reads back: a command may (re)write them inside an input folder
_FREE_OUTPUTS = frozenset({MAP_HTML, "isochrones.gpkg", "resources_map.html", "compliance_map.html",
                           "links_map.html"})
#: file sets by which folders of older lifecircle versions (no marker yet) are recognised
SIGNATURES = (
    ("meta.json", "lifecircle.gpkg"), ("resources.json", "resources.csv"),
    ("compliance.csv", "compliance.xlsx"), ("batch_run.json", "districts.csv"),
    ("links.csv", "links.gpkg"),
)
_SIDE_FILE = re.compile(r"^\..+\.(\d+\.tmp(\..*)?|tmp)$")   # .name.<pid>.tmp.ext of _atomic_write


# --------------------------------------------------------------------------------------------
# recognising lifecircle's folders


def read_marker(folder: Path) -> dict | None:
    """The marker of a folder lifecircle made, or None."""
    p = Path(folder) / MARKER
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_marker(folder: Path, kind: str, files=None) -> None:
    folder = Path(folder)
    names = sorted(files if files is not None else (p.name for p in folder.iterdir() if p.name != MARKER))
    old = read_marker(folder) or {}
    names = sorted(set(names) | set(old.get("files") or []))
    (folder / MARKER).write_text(json.dumps(
        {"written_by": "lifecircle", "version": __version__, "kind": kind, "files": names},
        ensure_ascii=False, indent=1), encoding="utf-8")


def is_lifecircle_folder(folder: Path) -> bool:
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    return any(all((folder / n).is_file() for n in sig) for sig in SIGNATURES)


def _own_names(folder: Path) -> set:
    marker = read_marker(folder) or {}
    names = set(OWN_NAMES) | set(marker.get("files") or [])
    return names


def foreign_entries(folder: Path, nested: bool = True) -> list[str]:
    """Entries of a lifecircle folder that lifecircle did not write (a batch folder's district
    sub-folders count as its own when they are lifecircle folders themselves)."""
    folder = Path(folder)
    own = _own_names(folder)
    out = []
    for p in sorted(folder.iterdir()):
        if p.name in own or _SIDE_FILE.match(p.name) or p.name.startswith(".") and _TMP_TAG in p.name:
            continue
        if nested and p.is_dir() and not p.is_symlink() and is_lifecircle_folder(p) \
                and not foreign_entries(p, nested=False):
            continue
        out.append(p.name)
    return out


def _is_empty_dir(p: Path) -> bool:
    try:
        return p.is_dir() and not any(p.iterdir())
    except OSError:
        return False


def _describe(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# --------------------------------------------------------------------------------------------
# checks before anything is computed


def _resolved(p) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()


def _os_errors_named(func):
    """An :class:`OSError` while checking or making an output target (a name too long for the
    file system, no permission, a read-only disk) as one :class:`OutputError` naming it."""
    @functools.wraps(func)
    def wrapper(target, *args, **kwargs):
        try:
            return func(target, *args, **kwargs)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise OutputError(f"{target}: cannot be written here ({why})",
                              zh=f"{target}：无法写到这里（{why}）") from None
    return wrapper


def _utf8_path(path: Path) -> None:
    """Refuse an output path whose name is not UTF-8 (a GBK folder name on a UTF-8 system):
    the GeoParquet and GeoPackage writers cannot name such a file, and the run ended in a
    traceback after the whole analysis."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = readable_path(os.fspath(path))
        raise OutputError(f"{shown}: the output's name is not UTF-8 text; choose a name in UTF-8 "
                          "(or rename the folder)",
                          zh=f"{shown}：输出路径的名称不是 UTF-8 文本；请换用 UTF-8 名称（或重命名该文件夹）") from None


@_os_errors_named
def check_out_dir(out, force: bool = False, inputs=()) -> str:
    """Refuse an output folder that lifecircle may not replace. Returns ``"new"``, ``"replace"``
    (missing, empty, or lifecircle's own) or ``"merge"`` (``force`` over a foreign folder).
    Raises :class:`OutputError` naming the folder and the problem."""
    raw = str(out)
    if raw.strip() in ("", "."):
        raise OutputError(f"--out {raw!r}: name an output folder (a new one or one lifecircle wrote), "
                          "not the current folder",
                          zh=f"--out {raw!r}：请指定输出文件夹（新文件夹或 lifecircle 写过的文件夹），不能是当前文件夹")
    out = Path(out)
    target = _resolved(out)
    _utf8_path(target)
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents or target.parent == target:
        raise OutputError(f"{out}: is the current folder or one of its parents; name a folder of its own "
                          "for the output", zh=f"{out}：是当前文件夹或其上级文件夹；请为输出单独指定一个文件夹")
    for src in inputs:
        if src is None:
            continue
        s = _resolved(src)
        if s == target or target in s.parents:
            raise OutputError(f"{out}: would replace the input {src}; write the output to another folder",
                              zh=f"{out}：会覆盖输入 {src}；请把输出写到别的文件夹")
    if out.is_symlink() and not out.exists():
        raise OutputError(f"{out}: is a broken symbolic link; remove it or choose another --out",
                          zh=f"{out}：是失效的符号链接；请删除它或换一个 --out")
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise OutputError(f"{out}: is an existing file, not a folder; lifecircle will not replace it "
                          "(remove it or choose another --out)",
                          zh=f"{out}：是已有的文件，不是文件夹；lifecircle 不会替换它（请删除它或换一个 --out）")
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; give the real folder or another --out",
                          zh=f"{out}：是符号链接；请给出真实的文件夹或换一个 --out")
    try:
        entries = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise OutputError(f"{out}: cannot read the folder ({exc.strerror or exc})",
                          zh=f"{out}：无法读取该文件夹（{exc.strerror or exc}）") from None
    if not entries:
        return "replace"
    if is_lifecircle_folder(out):
        foreign = foreign_entries(out)
        if not foreign:
            return "replace"
        if force:
            return "merge"
        raise OutputError(f"{out}: holds files lifecircle did not write ({_describe(foreign)}); "
                          "move them away, choose another --out, or pass --force to write lifecircle's "
                          "files into it and keep the others",
                          zh=f"{out}：含有不是 lifecircle 写的文件（{_describe(foreign)}）；请移走它们、换一个 "
                             "--out，或用 --force 写入 lifecircle 的文件并保留其他文件")
    if force:
        return "merge"
    raise OutputError(f"{out}: is a folder lifecircle did not make and is not empty "
                      f"({_describe(sorted(entries))}); choose a new folder, or pass --force to write "
                      "lifecircle's files into it (nothing else in it is touched)",
                      zh=f"{out}：不是 lifecircle 建的文件夹，且不为空（{_describe(sorted(entries))}）；"
                         "请换一个新文件夹，或用 --force 写入 lifecircle 的文件（其中其他内容不会被改动）")


# --------------------------------------------------------------------------------------------
# locks, recovery and clean-up


@contextmanager
def _locked(folder: Path):
    """An exclusive advisory lock on a folder (held while renaming in it)."""
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _in_use(folder: Path) -> bool:
    """True while a running lifecircle holds the folder's lock (its writer)."""
    if fcntl is None:  # pragma: no cover
        try:
            return time.time() - folder.stat().st_mtime < 86400
        except OSError:
            return False
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _only_own_files(folder: Path) -> bool:
    try:
        return all(p.name in OWN_NAMES or (p.is_dir() and _only_own_files(p)) for p in folder.iterdir())
    except OSError:
        return False


def _recover_and_clean(out: Path) -> None:
    """Under the parent's lock: put back a folder a crashed replace left aside, and remove
    temporary and old folders of earlier runs that are no longer in use."""
    parent = out.parent
    name = out.name
    old = parent / sibling_name(name, _OLD_TAG)
    legacy_old = sorted(parent.glob(f".{glob_escape(name)}.old.*"))   # lifecircle <= 0.x
    for candidate in [old, *legacy_old]:
        if not candidate.is_dir() or not is_lifecircle_folder(candidate):
            continue
        if not out.exists() and not out.is_symlink():
            try:
                candidate.rename(out)           # the crash hit between the renames: recover
            except OSError:
                pass
            continue                            # never remove the only copy
        shutil.rmtree(candidate, ignore_errors=True)
    prefix = f".{name}."
    tmp_prefix = sibling_name(name, _TMP_TAG, room=8)
    for p in parent.iterdir() if parent.is_dir() else ():
        n = p.name
        ours = n.startswith(tmp_prefix)
        if not (ours or n.startswith(prefix)) or not p.is_dir() or p.is_symlink():
            continue
        rest = n[len(prefix):]
        legacy = re.fullmatch(r"[a-z0-9_]{8}", rest) is not None and _only_own_files(p)
        if (ours or legacy) and not _in_use(p):
            shutil.rmtree(p, ignore_errors=True)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --------------------------------------------------------------------------------------------
# writing


@contextmanager
def atomic_dir(out, *, force: bool = False, inputs=(), kind: str = "analysis"):
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` (or, with
    ``force`` over a folder lifecircle did not make, its files are moved into ``out``).
    The folder gets a marker listing lifecircle's files. See the module docstring."""
    out = Path(out)
    mode = check_out_dir(out, force=force, inputs=inputs)
    parent = _resolved(out).parent
    target = parent / out.name
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent):
            _recover_and_clean(target)
        mode = check_out_dir(out, force=force, inputs=inputs)   # recovery may have put one back
        tmp = Path(tempfile.mkdtemp(prefix=sibling_name(out.name, _TMP_TAG, room=8), dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; results are shared folders
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})",
                          zh=f"{out}：无法创建输出文件夹（{exc.strerror or exc}）") from None
    lock_fd = None
    if fcntl is not None:
        with contextlib.suppress(OSError):
            lock_fd = os.open(tmp, os.O_RDONLY)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)      # marks it in use for other runs' clean-up
    try:
        try:
            yield tmp
            write_marker(tmp, kind, [p.name for p in tmp.iterdir() if p.name != MARKER])
            with _locked(parent):
                if mode == "merge":
                    _merge_into(tmp, target)
                else:
                    _replace(tmp, target, out, force, inputs)
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the output ({exc.strerror or exc})",
                              zh=f"{out}：无法写出结果（{exc.strerror or exc}）") from None
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace(tmp: Path, target: Path, out: Path, force: bool, inputs) -> None:
    if not target.exists():
        tmp.rename(target)
        return
    mode = check_out_dir(out, force=force, inputs=inputs)     # unchanged since the start?
    if mode == "merge":
        _merge_into(tmp, target)
        return
    if _is_empty_dir(target):
        tmp.rename(target)        # POSIX rename replaces an empty folder atomically
        return
    old = target.parent / sibling_name(target.name, _OLD_TAG)
    target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _merge_into(tmp: Path, target: Path) -> None:
    """``--force`` over a folder lifecircle did not make: replace lifecircle's named files one
    by one (each atomically), leave everything else as it is. A folder standing where a file
    goes is refused before anything is moved (no half-written analysis)."""
    for p in sorted(tmp.iterdir()):
        dest = target / p.name
        if p.name != MARKER and dest.is_dir() and not dest.is_symlink() and not (
                p.is_dir() and is_lifecircle_folder(dest) and not foreign_entries(dest)):
            raise OutputError(f"{dest}: is a folder where lifecircle writes a file; move it away",
                              zh=f"{dest}：lifecircle 要在此写文件，但这里是一个文件夹；请把它移走")
    for p in sorted(tmp.iterdir()):
        dest = target / p.name
        if p.name == MARKER:
            continue
        if dest.is_dir() and not dest.is_symlink():
            if p.is_dir() and is_lifecircle_folder(dest) and not foreign_entries(dest):
                old = target / sibling_name(p.name, _OLD_TAG)
                dest.rename(old)
                p.rename(dest)
                shutil.rmtree(old, ignore_errors=True)
                continue
            raise OutputError(f"{dest}: is a folder where lifecircle writes a file; move it away",
                              zh=f"{dest}：lifecircle 要在此写文件，但这里是一个文件夹；请把它移走")
        os.replace(p, dest)
    marker = read_marker(tmp) or {}
    write_marker(target, marker.get("kind", "analysis"), marker.get("files") or [])


@_os_errors_named
def ensure_out_dir(out, force: bool = False, inputs=(), kind: str = "batch") -> Path:
    """Create (or accept) a folder that lifecircle fills file by file (a batch run): refused
    when it holds anything lifecircle did not write, unless ``force``. Marks it."""
    out = Path(out)
    mode = check_out_dir(out, force=force, inputs=inputs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if mode != "merge" or read_marker(out) is None:
            write_marker(out, kind, [p.name for p in out.iterdir() if p.name != MARKER])
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})",
                          zh=f"{out}：无法创建输出文件夹（{exc.strerror or exc}）") from None
    return out


# --------------------------------------------------------------------------------------------
# single files


def _wrote_file(path: Path) -> bool:
    """Whether an existing file is one lifecircle wrote (its own name in a lifecircle folder,
    an HTML page with :data:`HTML_MARKER`, a GeoPackage with lifecircle's ``about`` table)."""
    # pages and GeoPackages carry lifecircle's mark inside: a file put in their place by hand
    # (even under lifecircle's own name, in a lifecircle folder) is not lifecircle's
    try:
        if path.suffix.lower() in (".html", ".htm"):
            with open(path, "rb") as fh:
                return HTML_MARKER.encode() in fh.read(4096)
        if path.suffix.lower() == ".gpkg":
            import pyogrio

            layers = {str(row[0]) for row in pyogrio.list_layers(path)}
            return "about" in layers
    except Exception:
        return False
    return path.name in OWN_NAMES and is_lifecircle_folder(path.parent)


@_os_errors_named
def check_out_file(path, force: bool = False, inputs=()) -> Path:
    """Refuse a single-file output that would overwrite a file lifecircle did not write (unless
    ``force``), a folder, or an input."""
    raw = str(path)
    path = Path(path)
    if raw.strip() in ("", "."):
        raise OutputError(f"--out {raw!r}: name an output file", zh=f"--out {raw!r}：请指定输出文件名")
    _utf8_path(_resolved(path))
    for src in inputs:
        if src is not None and _resolved(src) == _resolved(path):
            raise OutputError(f"{path}: is an input; write the output to another file",
                              zh=f"{path}：是输入文件；请把输出写到别的文件")
        # a file the input folder's later readers need (its GeoPackage, tables, network …)
        if src is not None and Path(src).is_dir() and _resolved(src) == _resolved(path.parent) \
                and path.name in OWN_NAMES and path.name not in _FREE_OUTPUTS:
            raise OutputError(f"{path}: is part of the input folder {src} (lifecircle reads it again); "
                              "write the output to another file",
                              zh=f"{path}：是输入文件夹 {src} 的一部分（lifecircle 还会读取它）；请把输出写到别的文件")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name (e.g. {path / 'map.html'})",
                          zh=f"{path}：是文件夹；请给出文件名（如 {path / 'map.html'}）")
    if not path.parent.exists():
        raise OutputError(f"{path}: folder {path.parent} does not exist",
                          zh=f"{path}：文件夹 {path.parent} 不存在")
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_file():
            raise OutputError(f"{path}: exists and is not a regular file; choose another name",
                              zh=f"{path}：已存在且不是普通文件；请换一个文件名")
        if not force and not _wrote_file(path):
            raise OutputError(f"{path}: exists and was not written by lifecircle; choose another name "
                              "or pass --force to overwrite it",
                              zh=f"{path}：已存在且不是 lifecircle 写的；请换一个文件名，或用 --force 覆盖")
    return path


def mark_html(text: str) -> str:
    """Put :data:`HTML_MARKER` near the top of an HTML page (after the doctype)."""
    if HTML_MARKER in text[:4096]:
        return text
    m = re.match(r"\s*<!DOCTYPE[^>]*>\s*", text, flags=re.IGNORECASE)
    at = m.end() if m else 0
    return text[:at] + HTML_MARKER + "\n" + text[at:]


def write_text_atomic(path, text: str) -> Path:
    """Write a text file through a temporary file beside it and an atomic rename."""
    return _replaced(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_chunks_atomic(path, chunks) -> Path:
    """:func:`write_text_atomic` of the text the strings ``chunks`` make one after the other,
    written as they come (a city's map page is never copied whole to be written)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk)

    return _replaced(path, write)


def copy_file_atomic(source, path) -> Path:
    """Copy ``source`` to ``path`` through a temporary file beside it and an atomic rename
    (the bytes as they are: a city's map is tens of MB, not decoded and encoded again)."""
    return _replaced(path, lambda tmp: shutil.copyfile(source, tmp))


def _replaced(path, write) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, then renamed onto it; an OSError is an
    OutputError naming ``path``, and the temporary file never stays."""
    path = Path(path)
    tmp = path.with_name(sibling_name(path.name, f".{os.getpid()}.tmp"))
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})",
                          zh=f"{path}：无法写入（{exc.strerror or exc}）") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_outputs(result, folder: Path, beside=None) -> None:
    """Write every file of an analysis folder (but the map) into ``folder``.

    The GeoPackage (most of the time: GDAL writes the home columns row by row, holding the
    GIL) is written by a forked child process where that is safe (:data:`FORK_GPKG`,
    :func:`_fork`) while this process runs ``beside``; the other writes (:func:`_side_writes`:
    the OSM features, the small files) go to whichever of the two is free first
    (:class:`_Claims`): on a small area the child, which is done long before the map, on a
    city this process after the map. On a city this process, done with the map early in the
    child's homes, first prepares the GeoPackage's later layers for the child
    (:class:`_Handover`). Else all in turn here. Either way the folder ends up the same.

    Parameters
    ----------
    result : lifecircle.result.Result
        The analysis.
    folder : pathlib.Path
        An existing (temporary) folder.
    beside : callable, optional
        More work for the same folder, done while the GeoPackage is written (``Result.save``
        makes the map there).
    """
    folder = Path(folder)
    side = _side_writes(result, folder)
    with _unsynced_sqlite(), frozen_heap(), _Claims(list(side)) as claims, \
            _Handover(folder) as handed:
        def child_work():
            _write_gpkg(result, folder, handed)
            claims.run(side)

        child = _fork(child_work, close=handed.parents_fds())
        handed.forked(child is not None)
        mine = []                    # the side writes done here
        try:
            if child is None:
                child_work()
            if beside is not None:
                beside()
                # the map's objects (folium elements point at their parents: cycles) are
                # freed now, not when the collector resumes: the features' transient memory
                # would add to theirs
                gc.collect()
                release_freed_memory()
            handed.prepare(functools.partial(_later_layers, result))
            mine = claims.run(side)
            done = child is None or child.join()
        except BaseException:          # an error here, or Ctrl-C: the child goes too
            if child is not None:
                child.kill()
            raise
        finally:
            handed.clean()
        if not done:
            # the child failed (or was killed): its part again here, where a real error is
            # raised as it would have been without the child
            for p in folder.glob(glob_escape(GPKG) + "*"):
                p.unlink()
            _write_gpkg(result, folder)
            for name, write in side.items():
                if name not in mine:
                    write()


class _Handover:
    """The GeoPackage's later layers (:func:`_later_layers`) prepared by the parent for the
    forked writer: while the child writes ``homes`` (most of the save at a city's scale, GDAL
    converting ~200 columns row by row), the parent, done with the map, makes the Arrow batches
    of the facilities (points, areas, lines) and the streets (the columns, the WKB, the
    projection to WGS-84) into Arrow IPC stream files beside the GeoPackage; the child writes
    them as they come, so it is shorter by the time they take and both processes end nearer
    together (a million walking nodes: the child's 17.5 CPU seconds against the parent's 12
    became 16.3 against 13.4 with the points and streets prepared).

    Who prepares them is claimed like the side writes (:class:`_Claims`, one byte in a pipe):
    the parent after the map while the child is early in the homes (:data:`PREPARE_BEFORE`,
    shared memory says how far it is), or the child when it reaches them first (a small area:
    the map is the longer), which then makes them itself as without a parent. For each layer in
    order the parent then sends one byte on a second pipe: the layer type
    (:data:`_LAYER_TYPES`) + 1 once its file is complete, or 0 when the child is to make that
    layer itself (one geopandas writes; an error here). The child stops waiting when the parent
    closes that pipe. The files are the same batches :func:`_write_layer` would make in the
    child, so the GeoPackage is the same."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.claim = self.ready_r = self.ready_w = None
        self.owner = os.getpid()
        self.paths: list[Path] = []
        self.progress = None

    def homes_written(self, done: int, total: int) -> None:
        """In the child: the share of the homes written so far (read by the parent)."""
        if self.progress is not None and os.getpid() != self.owner:
            struct.pack_into("d", self.progress, 0, done / total if total else 1.0)

    def homes_share(self) -> float:
        """The share of the homes the child has written (0 until it says)."""
        return struct.unpack_from("d", self.progress, 0)[0] if self.progress is not None else 0.0

    def __enter__(self):
        with contextlib.suppress(OSError):
            r, w = os.pipe()
            try:
                os.write(w, b"\0")
            finally:
                os.close(w)
            self.claim = r
            try:
                self.ready_r, self.ready_w = os.pipe()
            except OSError:
                self._close("claim")
        with contextlib.suppress(OSError, ValueError):
            self.progress = mmap.mmap(-1, mmap.PAGESIZE)       # shared with the forked child
        return self

    def __exit__(self, *exc):
        for name in ("claim", "ready_r", "ready_w"):
            self._close(name)
        self.clean()
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        setattr(self, name, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def parents_fds(self) -> tuple:
        """The descriptors the child closes (the parent's end of the ready pipe)."""
        return () if self.ready_w is None else (self.ready_w,)

    def forked(self, child: bool) -> None:
        """After the fork, in the parent: without a child nothing is handed over."""
        if child:
            self._close("ready_r")
        else:
            for name in ("claim", "ready_r", "ready_w"):
                self._close(name)

    def _take(self) -> bool:
        """Claim the preparing (True for the one process that does)."""
        try:
            return self.claim is not None and os.read(self.claim, 1) != b""
        except OSError:
            return False

    def taken_by_other(self) -> bool:
        """In the child: whether the parent claimed the later layers first (else they are
        the child's, made as without a parent)."""
        if os.getpid() == self.owner or self.claim is None or self.ready_r is None:
            return False
        return not self._take()

    def path(self, layer: str) -> Path:
        return self.folder / f".{layer}.{self.owner}.tmp.arrows"

    def wait(self, layer: str) -> int | None:
        """In the child: the shapely type id of ``layer`` once the parent's file of it is
        complete, or None when the child makes it itself."""
        if self.ready_r is None:
            return None
        try:
            b = os.read(self.ready_r, 1)
        except OSError:
            b = b""
        if not b:                      # the parent stopped: the layers left are the child's
            self._close("ready_r")
            return None
        return b[0] - 1 if b[0] else None

    def prepare(self, layers) -> None:
        """In the parent: when the child is still early in the homes (:data:`PREPARE_BEFORE`)
        and the parent claims them first, make the batches of each layer of ``layers()``
        (:func:`_later_layers`) into its file and say so to the child, in order; then close the
        pipe (the child makes what is left, and meets any error itself). Later in the homes
        the child is the shorter side as it is: the layers are left to it, and the side writes
        to whoever is free."""
        if self.ready_w is None or self.homes_share() >= PREPARE_BEFORE or not self._take():
            self._close("ready_w")
            return
        try:
            for layer, geometry, make in layers():
                kind = None
                with contextlib.suppress(Exception):
                    kind = self._prepare(layer, geometry, make)
                os.write(self.ready_w, bytes([0 if kind is None else kind + 1]))
        except Exception:   # noqa: BLE001 - no pipe, no layers: the child makes them
            pass
        finally:
            self._close("ready_w")

    def _prepare(self, layer: str, geometry: str, make) -> int | None:
        frame, cols, geoms, crs, *rest = make()
        name = rest[0] if rest else "geometry"
        at = rest[1] if len(rest) > 1 else None
        if name != geometry:
            return None
        batches = _layer_batches(frame, cols, geoms, crs, name, len(cols) if at is None else at)
        del frame, geoms
        if batches is None:
            return None
        kind, schema, reader = batches
        path = self.path(layer)
        self.paths.append(path)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        return kind

    def clean(self) -> None:
        """In the parent: remove the files (the child removed those it wrote)."""
        if os.getpid() != self.owner:
            return
        for path in self.paths:
            with contextlib.suppress(OSError):
                path.unlink()
        self.paths = []


#: :class:`_Handover`: the parent prepares the later layers only while the child has taken less
#: than this share of the homes' batches. Preparing costs the parent a third more than it saves
#: the child (the IPC files), so it pays only where the child has much left: a city of a million
#: walking nodes, whose map is done early in the homes. At 8 tiles the child has taken the last
#: batch when the map is done and the parent is better off writing the OSM features (measured:
#: preparing there made the save ~0.2 s longer).
PREPARE_BEFORE = 0.9


def _write_prepared(gpkg: Path, layer: str, geometry: str, kind: int, path: Path) -> None:
    """A layer from the Arrow IPC stream file the parent prepared (:class:`_Handover`),
    removed once written."""
    try:
        with pa.OSFile(str(path), "rb") as source:
            _write_arrow_layer(gpkg, layer, geometry, kind, pa.ipc.open_stream(source))
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _side_writes(result, folder: Path) -> dict:
    """The writes of an analysis folder besides the GeoPackage and the map, by name, in the
    order they are handed out (:class:`_Claims`): the OSM features (then Arrow's and glibc's
    freed memory given back: the map's geometry cannot reuse Arrow's pool) and the small
    files."""
    def features():
        _write_features_file(result, folder)
        release_freed_memory()

    return {"features": features, "files": functools.partial(_write_files, result, folder)}


class _Claims:
    """Writes handed out one at a time to whichever process asks first: their numbers are
    bytes in a pipe made before the fork, its writing end then closed, so each byte is read
    by exactly one of the parent and the forked child (a read of one byte from a pipe is
    atomic) and a read finds the end of the pipe once all are taken. Without a pipe (none
    left to open) every write is the process's that made the claims."""

    def __init__(self, names: list):
        self.names = list(names)
        self.fd = None
        self.owner = os.getpid()

    def __enter__(self):
        with contextlib.suppress(OSError):
            r, w = os.pipe()
            try:
                os.write(w, bytes(range(len(self.names))))
            finally:
                os.close(w)
            self.fd = r
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def run(self, writes: dict) -> list:
        """Take writes until none is left and run them; the names of those run here."""
        done = []
        while True:
            if self.fd is None:
                names = [n for n in self.names if n not in done]
                if not names or os.getpid() != self.owner:
                    return done
                name = names[0]
            else:
                b = os.read(self.fd, 1)
                if not b:
                    return done
                name = self.names[b[0]]
            done.append(name)
            writes[name]()


#: Whether :func:`write_outputs` may write the GeoPackage in a forked child process (Linux
#: only: fork is unsafe on macOS, absent on Windows). Tests switch it off to compare.
FORK_GPKG = sys.platform.startswith("linux") and hasattr(os, "fork")


def _fork_safe() -> bool:
    """No other thread could hold a lock the child needs: the calling thread is the only
    Python thread but for rich's progress-bar refresher (the CLI's), which only redraws the
    bar under rich's own lock; the child never uses rich or writes to the console. Native
    threads (numba's, the BLAS's) idle between calls, and the child calls neither."""
    me = threading.current_thread()
    return all(t is me or type(t).__module__ == "rich.live" for t in threading.enumerate())


class _Child:
    """A forked child process running one function (see :func:`_fork`)."""

    def __init__(self, pid: int, fd: int):
        self.pid, self.fd = pid, fd
        self.reaped = False

    def join(self) -> bool:
        """Wait for the child; True when it finished its work (its warnings are re-issued
        here), False when it failed or was killed."""
        fd, self.fd = self.fd, None          # the file object owns (and closes) it now
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        _, status, self.rusage = os.wait4(self.pid, 0)
        self.reaped = True
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            return False
        try:
            caught = pickle.loads(data)
        except Exception:   # noqa: BLE001 - a garbled report: do the work here instead
            return False
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        return True

    def kill(self) -> None:
        """Stop the child (if it is still running) and reap it; nothing once reaped (its
        process id may belong to another process by then)."""
        if self.reaped:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)
        self.reaped = True


def _die_with(parent: int) -> None:
    """The child ends when its parent does (a SIGTERM/SIGKILL to the parent would otherwise
    leave it writing, holding the parent's copied memory, into a folder no one renames)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != parent:       # the parent died before the line above
        os._exit(1)


def fork_call(run, close=()) -> int | None:
    """Fork a child that runs ``run()`` and leaves with ``os._exit`` (0 when it returned, 1 on
    any error; no clean-up of the parent's objects, no flushed buffers); the child's pid, or
    None when the fork failed. The child first closes the file descriptors ``close`` (the
    parent's ends of its pipes), dies with its parent (:func:`_die_with`), stops Python's
    garbage collection (it would touch, and so copy, every object of the parent) and writes
    nothing to the parent's streams (a lock a thread of the parent held at the fork, rich's
    refresher writing the progress bar, would stay held here; log records are dropped).
    The caller checks :func:`_fork_safe` first."""
    parent = os.getpid()
    try:
        with warnings.catch_warnings():    # Python 3.12+ warns of fork with (native) threads:
            warnings.simplefilter("ignore", DeprecationWarning)   # see _fork_safe
            pid = os.fork()
    except OSError:
        return None
    if pid == 0:                                   # the child: never returns
        status = 1
        try:
            _die_with(parent)
            gc.disable()
            for fd in close:
                os.close(fd)
            sys.stdout = sys.stderr = open(os.devnull, "w")   # noqa: SIM115 - until os._exit
            logging.disable(logging.CRITICAL)
            run()
            status = 0
        except BaseException:   # noqa: BLE001 - the parent redoes the work and meets the error
            pass
        finally:
            os._exit(status)
    return pid


def _fork(work, close=()) -> _Child | None:
    """Run ``work()`` in a forked child process (:func:`fork_call`, which closes the
    descriptors ``close`` there); None where that is not safe or possible (the caller then
    does the work itself). The child reports its warnings
    through a pipe; on any error the parent does the work again and meets the error itself."""
    if not FORK_GPKG or not _fork_safe():
        return None
    try:
        r, w = os.pipe()
    except OSError:
        return None

    def run():
        with warnings.catch_warnings(record=True) as caught:
            work()
        report = pickle.dumps([(str(x.message), x.category, x.filename, x.lineno) for x in caught])
        with os.fdopen(w, "wb") as fh:
            fh.write(report)

    pid = fork_call(run, close=(r, *close))
    os.close(w)
    if pid is None:
        os.close(r)
        return None
    return _Child(pid, r)


@contextmanager
def frozen_heap():
    """The objects alive now (an analysis: its tables, hundreds of thousands of OSM tag
    dicts) left out of Python's garbage collection while writing: each full collection walked
    them all again (70 ms on Las Palmas, several a save) though none of them can become
    garbage here. And the cycle collector paused meanwhile, as it is in ``analyze``: the map
    makes ~100,000 objects that live until it is written (its elements, the homes' rows), which
    every collection walked again (~5 % of a save's time); cycles made while writing are
    collected once it is done."""
    with gc_paused():
        if gc.get_freeze_count():        # a caller froze them already: theirs to unfreeze
            yield
            return
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()


@contextmanager
def _unsynced_sqlite():
    """GeoPackages written without SQLite's fsync and rollback journal (wall time of the
    write: 2.2 s -> 1.3-1.8 s on Las Palmas). Safe here: the folder is a temporary one that
    replaces the output only once everything is written (:func:`atomic_dir`).

    Pages of 64 KiB (SQLite's largest; unless ``OGR_SQLITE_PRAGMA`` is set already): a home
    row of ~360 numbers is ~2 KB, so 4 KiB pages held one or two; a sixth less file and half
    the system time of the write. Readers see the same tables.

    GDAL's options are the process's: saves in several threads at once (batch on Dask
    threads) share one setting. The first to enter saves the caller's values and sets them,
    the last to leave puts the caller's back (each restoring its own left them set)."""
    with _SQLITE_LOCK:
        if not _SQLITE_DEPTH[0]:
            options = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "OFF"}
            if not pyogrio.get_gdal_config_option("OGR_SQLITE_PRAGMA"):
                options["OGR_SQLITE_PRAGMA"] = "page_size=65536"
            _SQLITE_SAVED[:] = [{k: pyogrio.get_gdal_config_option(k) for k in options}]
            pyogrio.set_gdal_config_options(options)
        _SQLITE_DEPTH[0] += 1
    try:
        yield
    finally:
        with _SQLITE_LOCK:
            _SQLITE_DEPTH[0] -= 1
            if not _SQLITE_DEPTH[0]:
                pyogrio.set_gdal_config_options(_SQLITE_SAVED.pop())


_SQLITE_LOCK = threading.Lock()
_SQLITE_SAVED: list[dict] = []
_SQLITE_DEPTH = [0]   # saves inside :func:`_unsynced_sqlite` now


#: rows per Arrow batch of a layer written by :func:`_write_layer` (a batch's converted columns
#: and geometry are the write's only transient memory: ~0.7 KB a home row; fewer rows a batch
#: cost no time)
LAYER_CHUNK = 16_384
#: the shapely type ids :func:`_layer_wkb` encodes itself and the layer type GDAL is given
_WKB_KINDS = {0: "Point", 1: "LineString"}
#: the layer types :func:`_layer_batches` gives GDAL, by the shapely type id standing for them:
#: points and linestrings (:data:`_WKB_KINDS`), and polygon layers (:func:`_polygon_wkb`): all
#: polygons, or multipolygons, with or without polygons (pyogrio makes those multipolygons)
_LAYER_TYPES = {**_WKB_KINDS, 3: "Polygon", 6: "MultiPolygon"}


def _to_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """One GeoPackage layer of ``gdf`` (in any CRS), in WGS-84 (:func:`_write_layer`)."""
    _write_layer(path, layer, *_gdf_layer_args(gdf))


def _gdf_layer_args(gdf: gpd.GeoDataFrame) -> tuple:
    """:func:`_write_layer`'s arguments after the path and layer name for ``gdf``."""
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    return (gdf, cols, np.asarray(gdf.geometry.array), gdf.crs, gdf.geometry.name,
            list(gdf.columns).index(gdf.geometry.name))


def _write_layer(path: Path, layer: str, frame: pd.DataFrame, cols: list, geoms: np.ndarray, crs,
                 name: str = "geometry", at: int | None = None, on_rows=None) -> None:
    """A GeoPackage layer: the columns ``cols`` of ``frame`` and the shapely geometries
    ``geoms`` (in ``crs``) projected to WGS-84, as column ``name`` at position ``at``.

    Points and linestrings (the homes, the streets, point facilities) are written in batches
    of :data:`LAYER_CHUNK` rows, their WKB made from coordinate arrays (one pyproj transform,
    the transformer ``to_crs`` uses, and the bytes laid out with numpy): no Python object per
    row. In the forked writer each new small object dirtied, and so copied, a page it shared
    with the parent (a 1M-node city: 1.9 GB private in the child). Polygon layers (facility
    areas) are written in batches too, each projected and made multi as geopandas and pyogrio
    do (:func:`_polygon_wkb`): the transient memory is a batch's, not the whole layer's projected
    copy (at a million walking nodes the child's private memory rose ~260 MB over that layer,
    part of it pages the parent wrote meanwhile), and the parent can prepare them
    (:class:`_Handover`). Any other layer (mixed kinds, empty or missing geometries, Z,
    an empty layer, columns pyogrio would convert) goes through geopandas as before. Either
    way the file holds the same: the same WKB, layer type, CRS and column types.

    ``on_rows(done, total)``, if given, is called as GDAL takes each batch (the fraction of the
    rows written is the forked writer's progress, :class:`_Handover`)."""
    batches = _layer_batches(frame, cols, geoms, crs, name, len(cols) if at is None else at)
    if batches is None:
        gdf = gpd.GeoDataFrame(frame[cols] if list(frame.columns) != cols else frame, copy=False)
        gdf.insert(len(cols) if at is None else at, name, gpd.GeoSeries(geoms, index=frame.index, crs=crs))
        gdf = gpd.GeoDataFrame(gdf, geometry=name, crs=crs)
        _in_wgs84(gdf).to_file(path, layer=layer, driver="GPKG", engine="pyogrio", use_arrow=True)
        return
    kind, schema, reader = batches
    if on_rows is not None:
        reader = _counted(reader, len(frame), on_rows)
    _write_arrow_layer(path, layer, name, kind, pa.RecordBatchReader.from_batches(schema, reader))


def _counted(batches, total: int, on_rows):
    """``batches``, calling ``on_rows(rows so far, total)`` as each is taken."""
    done = 0
    for batch in batches:
        done += batch.num_rows
        on_rows(done, total)
        yield batch


def _write_arrow_layer(path: Path, layer: str, name: str, kind: int, reader) -> None:
    """A layer of WGS-84 geometries of the layer type ``kind`` (:data:`_LAYER_TYPES`) from the
    Arrow batches of ``reader`` (:func:`_layer_batches`; WKB column ``name``)."""
    epsg = pyproj.CRS.from_user_input(WGS84).to_epsg()
    pyogrio.write_arrow(reader, path, layer=layer, driver="GPKG", geometry_name=name,
                        geometry_type=_LAYER_TYPES[kind], crs=f"EPSG:{epsg}")


def _layer_batches(frame, cols, geoms, crs, name, at):
    """(layer type, :data:`_LAYER_TYPES`; Arrow schema; batches) of a layer
    :func:`_write_layer` writes itself, or None where geopandas writes it."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if sys.byteorder != "little" or crs is None or not n or len(set(cols)) != len(cols):
        return None
    kinds = shapely.get_type_id(geoms)
    present = set(np.unique(kinds).tolist())
    if present <= {3, 6}:                    # pyogrio makes the polygons multi beside multis
        kind = 6 if 6 in present else 3
    elif len(present) == 1 and int(kinds[0]) in _WKB_KINDS:
        kind = int(kinds[0])
    else:
        return None
    if np.any(shapely.is_empty(geoms)) or np.any(shapely.has_z(geoms)):
        return None
    for c in cols:                   # what pyogrio would convert to text first: its own path
        dtype = frame[c].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) or \
                pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(frame[c]) != "string":
            return None
    src = pyproj.CRS.from_user_input(crs)
    dst = pyproj.CRS.from_user_input(WGS84)
    # the transformer GeoSeries.to_crs makes (the same doubles), none where it would skip
    tr = None if src.is_exact_same(dst) else pyproj.Transformer.from_crs(src, dst, always_xy=True)

    def attrs(a, b):
        return pa.Table.from_pandas(frame.iloc[a:b], columns=cols, preserve_index=False)

    first = attrs(0, min(n, LAYER_CHUNK)).schema      # converted again below: not kept alive
    if any(pa.types.is_null(f.type) or pa.types.is_dictionary(f.type) for f in first):
        return None
    plain = first.remove_metadata()
    schema = plain.insert(at, pa.field(name, pa.binary()))
    # each column's values taken from the frame once, then converted a batch at a time as
    # ``from_pandas`` does (``pa.array(values, from_pandas=True)``, NaN as null) to the first
    # batch's types: pandas' bookkeeping per column and batch was most of the conversion's
    # time (0.17 s -> 0.03 s for 153,000 homes of 226 columns)
    values = [_column_values(frame[c]) for c in cols]

    def batches():
        for a in range(0, n, LAYER_CHUNK):
            b = min(n, a + LAYER_CHUNK)
            table = pa.Table.from_arrays(
                [pa.array(v[a:b], type=f.type, from_pandas=True) for v, f in zip(values, plain)],
                schema=plain).add_column(
                at, pa.field(name, pa.binary()), pa.chunked_array([
                    _layer_wkb(geoms[a:b], kind, tr) if kind in _WKB_KINDS else
                    _polygon_wkb(geoms[a:b], kind, crs)]))
            yield from table.to_batches()

    return kind, schema, batches()


def _column_values(series: pd.Series):
    """What ``pa.array`` converts of a column, as ``Table.from_pandas`` gives it: the
    extension array of an extension type (Arrow-backed text, nullable numbers), else the
    NumPy values (a view where pandas holds one)."""
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        return series.array
    return series.to_numpy()


def _polygon_wkb(geoms: np.ndarray, kind: int, crs) -> pa.Array:
    """The WKB geopandas and pyogrio write of polygons and multipolygons ``geoms`` (in
    ``crs``) in a layer of type ``kind`` (3: polygons, 6: multipolygons): projected to WGS-84
    by ``GeoSeries.to_crs``, the polygons of a multipolygon layer made multipolygons of one
    part as pyogrio does (``promote_to_multi``), ``shapely.to_wkb``; as an Arrow binary array."""
    wgs = np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(WGS84).array, dtype=object).copy()
    if kind == 6:
        single = shapely.get_type_id(wgs) == 3
        if single.any():
            wgs[single] = shapely.multipolygons(np.atleast_2d(wgs[single]), axis=0)
    return pa.array(shapely.to_wkb(wgs), type=pa.binary())


def _layer_wkb(geoms: np.ndarray, kind: int, transformer) -> pa.Array:
    """``shapely.to_wkb`` of ``geoms`` (non-empty 2D points, ``kind`` 0, or linestrings,
    ``kind`` 1) after ``GeoSeries.to_crs`` with ``transformer`` (None: as they are), as an Arrow
    binary array, built from coordinate arrays: ISO WKB, little-endian; a point is the byte
    order, the type (uint32) and x, y (21 bytes), a linestring the byte order, the type, the
    number of points (uint32) and the points (9 + 16 n bytes)."""
    xy = shapely.get_coordinates(geoms)
    if transformer is not None:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
    coords = np.ascontiguousarray(xy, dtype="<f8").view(np.uint8).reshape(-1, 16)
    n = len(geoms)
    if kind == 0:
        head = np.zeros((n, 5), np.uint8)
        counts = np.ones(n, np.int64)
    else:
        counts = shapely.get_num_coordinates(geoms).astype(np.int64)
        head = np.zeros((n, 9), np.uint8)
        head[:, 5:9] = counts.astype("<u4").view(np.uint8).reshape(n, 4)
    head[:, 0] = 1                                            # little-endian
    head[:, 1:5] = np.frombuffer(np.array(kind + 1, "<u4").tobytes(), np.uint8)
    width = head.shape[1]
    sizes = width + 16 * counts
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if kind == 0:
        data = np.concatenate([head, coords], axis=1).ravel()
    else:
        data = np.empty(int(offsets[-1]), np.uint8)
        is_coord = np.repeat(np.tile(np.array([False, True]), n),
                             np.column_stack([np.full(n, width), 16 * counts]).ravel())
        data[~is_coord] = head.ravel()
        data[is_coord] = coords.ravel()
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                  pa.py_buffer(data)])


def _write_gpkg(result, folder: Path, handed=None) -> None:
    """``lifecircle.gpkg``: homes, facilities, communities, streets, about, field aliases.

    ``handed`` (:class:`_Handover`, the forked writer's): the layers after ``homes``
    (:func:`_later_layers`) whose Arrow batches the parent prepared meanwhile, when it claimed
    them first, are written from its files; the others are made here as without it."""
    gpkg = folder / GPKG
    homes = result.homes
    _write_layer(gpkg, "homes", *_gdf_layer_args(homes),
                 on_rows=None if handed is None else handed.homes_written)
    # facilities keep their own geometry (areas stay polygons), one geometry kind per layer so
    # QGIS opens each without asking which sublayer; fac_index keeps their order
    prepared = handed is not None and handed.taken_by_other()
    for layer, geometry, make in _later_layers(result):
        kind = handed.wait(layer) if prepared else None
        if kind is None:
            _write_layer(gpkg, layer, *make())
        else:
            _write_prepared(gpkg, layer, geometry, kind, handed.path(layer))
    write_about_layer(gpkg, result.attribution, source=result.source, data_date=result.data_date)
    write_field_aliases(gpkg, {"homes": home_aliases(homes.columns, result.profile, result.settings.lang),
                               **{layer: facility_aliases(result.settings.lang)
                                  for layer in FACILITY_LAYERS}})


def _later_layers(result) -> list:
    """The layers of ``lifecircle.gpkg`` after ``homes``, in the order they are written: the
    facilities by geometry kind (:func:`_split_layers`), the communities, the streets; each
    ``(layer, geometry column, make)``, ``make()`` giving :func:`_write_layer`'s arguments
    after the path and the layer name (made only by the process that writes or prepares it)."""
    fac = result.facilities
    out = _split_layers(lambda: fac.drop(columns="tags", errors="ignore"), fac.geometry.to_numpy(),
                        FACILITY_LAYERS)
    out = [(layer, fac.geometry.name, make) for layer, make in out]
    comm = result.communities
    if comm is not None:
        out.append(("communities", comm.geometry.name, lambda: _gdf_layer_args(comm)))
    out.append(("streets", "geometry", lambda: _streets_args(result.network)))
    return out


def _streets_args(net: WalkNetwork) -> tuple:
    """:func:`_write_layer`'s arguments for the ``streets`` layer: the columns of
    ``net.edges_gdf()`` without making that frame (its geometry array would copy a reference
    to, and so a page of, every edge geometry)."""
    frame = pd.DataFrame(net.edge_columns())
    return frame, list(frame.columns), net.edge_geom, net.crs


def _in_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` in WGS-84 without copying its other columns (``to_crs`` copies them all: the
    home table's ~360 columns of a city are gigabytes)."""
    out = gdf.copy(deep=False)
    out[gdf.geometry.name] = gdf.geometry.to_crs(WGS84)
    return out


def _write_features_file(result, folder: Path) -> None:
    if result.features is not None:
        _write_features(result.features, folder / FEATURES_FILE)


def _write_files(result, folder: Path) -> None:
    """The folder's small files: profile, summary (CSV and XLSX), network, meta."""
    profile_file = getattr(result.profile, "source_path", None)
    if profile_file and Path(profile_file).is_file():
        shutil.copyfile(profile_file, folder / PROFILE)
    summary = result.summary.copy()
    summary["attribution"] = result.attribution   # the CSV travels alone: it carries it too
    csv_safe(summary).to_csv(folder / SUMMARY, index=False, encoding="utf-8-sig")
    write_summary_xlsx(result, folder / SUMMARY_XLSX, result.settings.lang)
    net = result.network
    # uncompressed: zlib on these float arrays took ~0.1 s per 20,000 nodes (seconds for a
    # city) to save under half of a file that stays small (Las Palmas 1.6 MB instead of 0.9 MB)
    np.savez(
        folder / NETWORK, node_osmid=net.node_osmid, node_x=net.node_x, node_y=net.node_y,
        edge_u=net.edge_u, edge_v=net.edge_v, edge_len=net.edge_len, edge_oneway=net.edge_oneway,
        home_edge=result.home_snap.edge, home_off=result.home_snap.offset,
        home_leg=result.home_snap.leg, fac_edge=result.facility_snap.edge,
        fac_off=result.facility_snap.offset, fac_leg=result.facility_snap.leg,
        **_extra_entries(result.facility_snap),
        edge_area=net.edge_area if net.edge_area is not None else np.zeros(net.n_edges, bool))
    meta = {
        "format": FORMAT,
        "lifecircle": __version__, **source_fields(result.source), "data_date": result.data_date,
        "place": getattr(result, "place", "") or None,
        "attribution": result.attribution, "crs": result.crs.to_wkt(),
        "profile": result.profile.path if getattr(result.profile, "path", None) else str(result.profile.name),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.settings).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": result.notes,
        "population": getattr(result, "population_info", {}),
        col.DATA_STATUS: result.data_status,
        "network": getattr(result, "network_report", {}),
        "study_area_wkt": shapely.to_wkt(result.study_area) if result.study_area is not None else None,
    }
    (folder / META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def source_fields(source) -> dict:
    r"""meta.json's record of the analysis ``source``: ``source``, the text people read (a name
    that is not UTF-8 with its bytes escaped, ``\xd6\xd0.osm.pbf``: no UTF-8 file can hold
    it as it is) and, only for such a name, :data:`SOURCE_BYTES`, the path's file-system bytes
    (``os.fsencode``) in base64, from which :func:`recorded_source` gives back the path
    itself: ``links --auto`` / ``--close-gates`` and ``resources`` read the file again."""
    shown = readable_path(source)
    out = {"source": shown}
    if isinstance(source, str) and shown != source:
        with contextlib.suppress(UnicodeError):   # a surrogate that is no file-system byte
            out[SOURCE_BYTES] = base64.b64encode(os.fsencode(source)).decode("ascii")
    return out


def recorded_source(meta: dict) -> str:
    """The analysis source a folder's ``meta`` records (:func:`source_fields`): the path itself
    (``os.fsdecode`` of :data:`SOURCE_BYTES`) where the text shows it with escapes, else the
    text; "" when none is recorded."""
    raw = meta.get(SOURCE_BYTES)
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return os.fsdecode(base64.b64decode(raw, validate=True))
    src = meta.get("source")
    return src if isinstance(src, str) else ""


def _write_split(gdf: gpd.GeoDataFrame, path: Path, layers: dict) -> None:
    """``gdf`` as one layer per geometry kind (the first layer always written, maybe empty),
    with :data:`FAC_INDEX` holding each row's position."""
    for layer, make in _split_layers(lambda: gdf, gdf.geometry.to_numpy(), layers):
        _write_layer(path, layer, *make())


def _split_layers(frame, geoms: np.ndarray, layers: dict) -> list:
    """The layers :func:`_write_split` writes, in order, as ``(layer, make)``: ``make()`` gives
    :func:`_write_layer`'s arguments for the rows of that geometry kind of ``frame()`` (made
    once, on the first call) with :data:`FAC_INDEX`."""
    kinds = shapely.get_type_id(geoms)
    whole = []

    def indexed():
        if not whole:
            gdf = frame()
            whole.append(gdf.assign(**{FAC_INDEX: np.arange(len(gdf))}))
        return whole[0]

    out = []
    for i, (layer, ids) in enumerate(layers.items()):
        sel = np.isin(kinds, ids)
        if sel.any() or i == 0:
            out.append((layer, functools.partial(lambda sel: _gdf_layer_args(indexed()[sel]), sel)))
    return out


def _read_split(path: Path, layers: dict) -> gpd.GeoDataFrame:
    """The rows written by :func:`_write_split`, in their original order (a folder of the older
    format has one mixed ``facilities`` layer and no :data:`FAC_INDEX`)."""
    import pyogrio

    present = {name for name, *_ in pyogrio.list_layers(path)}
    parts = [gpd.read_file(path, layer=layer) for layer in layers if layer in present]
    gdf = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if FAC_INDEX in gdf:
        gdf = gdf.sort_values(FAC_INDEX, kind="stable").drop(columns=FAC_INDEX).reset_index(drop=True)
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=parts[0].crs)


_METRIC_ALIAS = {
    "t": ("{name}步行时间(分钟)", "{name}: walking minutes"),
    "k": ("{name}最近几处平均时间(分钟)", "{name}: mean minutes to the k nearest"),
    "g": ("{name}距离衰减加权数", "{name}: decay-weighted count"),
    "a": ("{name}供需比(2SFCA)", "{name}: supply/demand ratio (2SFCA)"),
}
_FIXED_ALIAS = {
    "home_id": ("住宅编号", "home id"), "osm_id": ("OSM编号", "OSM id"), "source": ("来源", "source"),
    "building": ("建筑类型", "building type"), "evidence": ("居住判断依据", "residential evidence"),
    "footprint_m2": ("占地面积(平方米)", "footprint (m²)"), "levels": ("层数", "levels"),
    "levels_from": ("层数来源", "levels from"), "population": ("人口", "residents"),
    "reachable": ("可达", "reachable"), "snap_m": ("距步行网络(米)", "to the street (m)"),
    "score": ("生活圈得分", "life-circle score"), "community": ("社区", "community"),
    "category": ("设施类别", "category"), "dimension": ("维度", "dimension"),
    "name": ("名称", "name"), "osm_type": ("OSM类型", "OSM type"), "capacity": ("容量", "capacity"),
    "area_m2": ("面积(平方米)", "area (m²)"),
}


def home_aliases(columns, profile, lang: str) -> dict[str, str]:
    """Readable names (in ``lang``) of the coded home columns (``t_kindergarten`` → 幼儿园步行时间
    (分钟), ``n15_park`` → 15分钟内公园数量, ``cov_social`` …), unique per layer."""
    zh = lang == "zh"
    out: dict[str, str] = {}
    for c in columns:
        if c == "geometry":
            continue
        if c in _FIXED_ALIAS:
            out[c] = _FIXED_ALIAS[c][0 if zh else 1]
            continue
        if c.endswith("_allcat") and c[:-7] in _FIXED_ALIAS:      # beside a with-data figure
            base = _FIXED_ALIAS[c[:-7]][0 if zh else 1]
            out[c] = (f"{base}（全部类别，无数据按不可达）" if zh
                      else f"{base} (all categories, no data as no access)")
            continue
        if c.startswith("all6_"):
            m = c[5:]
            out[c] = f"六个维度{m}分钟内全覆盖" if zh else f"all six dimensions within {m} min"
            continue
        parsed = col.parse(c)
        if parsed is None:
            continue
        kind, key = parsed
        try:
            name = profile.display_name(key, lang)
        except Exception:
            continue
        if kind in _METRIC_ALIAS:
            out[c] = _METRIC_ALIAS[kind][0 if zh else 1].format(name=name)
        elif kind.startswith("n") and kind[1:].isdigit():
            m = kind[1:]
            out[c] = f"{m}分钟内{name}数量" if zh else f"{name}: count within {m} min"
        elif kind == "cov":
            out[c] = f"{name}维度覆盖" if zh else f"{name}: dimension covered"
        elif kind.startswith("cov"):
            m = kind[3:]
            out[c] = f"{name}维度{m}分钟覆盖" if zh else f"{name}: covered within {m} min"
        elif kind == "s":
            out[c] = f"{name}维度得分" if zh else f"{name}: dimension score"
    seen: dict[str, int] = {}
    for c, a in list(out.items()):          # an alias is unique in its table
        if a in seen:
            out[c] = f"{a} ({c})"
        seen[a] = 1
    return out


def facility_aliases(lang: str) -> dict[str, str]:
    """Readable names of the facility columns in ``lang``."""
    i = 0 if lang == "zh" else 1
    return {c: v[i] for c, v in _FIXED_ALIAS.items()}


def write_field_aliases(gpkg: Path, aliases: dict[str, dict[str, str]]) -> None:
    """Store field aliases in the GeoPackage schema extension table ``gpkg_data_columns``
    (``name`` and ``title``), which GDAL reads as field alternative names and QGIS shows as
    aliases. ``aliases``: layer → column → alias; layers or columns not in the file are skipped."""
    import sqlite3

    con = sqlite3.connect(str(gpkg))
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_columns (
            table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT,
            description TEXT, mime_type TEXT, constraint_name TEXT,
            CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
            CONSTRAINT gdc_tn UNIQUE (table_name, name))""")
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_extensions (
            table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL,
            definition TEXT NOT NULL, scope TEXT NOT NULL,
            CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""")
        con.execute("""INSERT OR IGNORE INTO gpkg_extensions VALUES ('gpkg_data_columns', NULL,
            'gpkg_schema', 'http://www.geopackage.org/spec/#extension_schema', 'read-write')""")
        for table, mapping in aliases.items():
            if table not in tables:
                continue
            present = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
            con.executemany(
                "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title) "
                "VALUES (?, ?, ?, ?)",
                [(table, c, a, a) for c, a in mapping.items() if c in present])
        con.commit()
    finally:
        con.close()


def read_field_aliases(gpkg: Path, table: str) -> dict[str, str]:
    """The aliases :func:`write_field_aliases` stored for ``table`` (column → alias)."""
    import sqlite3

    con = sqlite3.connect(str(gpkg))
    try:
        return dict(con.execute("SELECT column_name, title FROM gpkg_data_columns WHERE table_name = ?",
                                (table,)))
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def summary_sheet(result, lang: str) -> pd.DataFrame:
    """The summary as people read it: headers and names in ``lang``, shares as percentages
    (one decimal), minutes rounded; one row per community × level × item."""
    s = result.summary
    tiers = result.settings.thresholds_min
    name = "name_zh" if lang == "zh" else "name_en"
    pct = lambda c: (100 * pd.to_numeric(s[c], errors="coerce")).round(1)   # noqa: E731
    num = lambda c, d=1: pd.to_numeric(s[c], errors="coerce").round(d) if c in s else np.nan  # noqa: E731
    dims = {d.id: d.name(lang) for d in getattr(result.profile, "dimensions", [])}
    out = {}
    if result.communities is not None:
        out[label("sum.community", lang)] = s["community"].map(
            lambda v: label("std.whole_area", lang) if v == "ALL" else v)
    out[label("sum.level", lang)] = s["level"].map(lambda v: label(f"sum.level_{v}", lang))
    out[label("sum.dimension", lang)] = s["dimension"].map(lambda v: dims.get(v, v)) \
        if "dimension" in s else ""
    out[label("sum.name", lang)] = s[name]
    out[label("sum.minutes", lang)] = num("minutes", 0)
    out[label("sum.facilities", lang)] = num("facilities", 0)          # inside the row's unit
    if result.communities is not None and col.FACILITIES_INCL_MARGIN in s:   # a boundary: its margin's too
        out[label("sum.facilities_margin", lang, m=result.settings.boundary_margin_m)] = \
            num(col.FACILITIES_INCL_MARGIN, 0)
    if "data_status" in s:    # a category without data says so (its shares are empty: unknown)
        out[label("sum.data", lang)] = s["data_status"].map(
            lambda v: status_label(v, lang) if isinstance(v, str) and v else "")
    out[label("sum.covered", lang)] = pct("covered")
    for m in tiers:
        out[label("sum.tier", lang, t=m)] = pct(col.within(m))
    out[label("sum.median", lang)] = num("median_min")
    out[label("sum.score", lang)] = num("score_mean")
    out[label("sum.population", lang)] = num("population", 0)
    out[label("sum.homes", lang)] = num("homes", 0)
    out[label("sum.unreachable", lang)] = num("unreachable_homes", 0)
    out[label("sum.unreachable_pop", lang)] = num("unreachable_population", 0)
    out[label("sum.gini", lang)] = num("score_gini", 3)
    return pd.DataFrame(out)


def write_summary_xlsx(result, path: Path, lang: str) -> None:
    """``summary.xlsx``: :func:`summary_sheet` and an about sheet (attribution, data date)."""
    # the headline with what its share is of (residents whose homes reach the walking network)
    about = pd.DataFrame({label("sum.about", lang): [
        headline_text(result.overall(), lang, snap_m=result.settings.max_snap_m),
        f"{label('sum.attribution', lang)}: {attribution_text(result.attribution, lang)}", label("sum.machine", lang)]})
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        xlsx_frame(summary_sheet(result, lang)).to_excel(xw, sheet_name=label("sum.sheet", lang), index=False)
        xlsx_frame(about).to_excel(xw, sheet_name=label("sum.about", lang), index=False)
        xlsx_safe(xw.book)                  # names from the data are never stored as formulas


def _dict_encoder():
    """``json.dumps(d, ensure_ascii=False)`` for many dicts: one C encoder made once
    (``JSONEncoder.encode`` makes a new one per call: a quarter of the time on OSM tags), or
    the plain encoder where the C accelerator is missing. Same text either way."""
    enc = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return enc.encode
    c = make(None, enc.default, json.encoder.encode_basestring, enc.indent, enc.key_separator,
             enc.item_separator, enc.sort_keys, enc.skipkeys, enc.allow_nan)
    return lambda d: "".join(c(d, 0))


def _tags_json(tags) -> np.ndarray:
    """Each tag dict as JSON text (``{}`` for anything but a dict), each distinct dict object
    encoded once: the reader shares one dict among the features with the same tags (a tiled
    city's 321,000 features hold 23,000), so encoding them row by row repeated the same work
    fourteen times over. The same text as encoding every row."""
    tags = np.asarray(tags, dtype=object).ravel()
    if not len(tags):
        return np.array([], dtype=object)
    encode = _dict_encoder()                                 # one encoder for every dict
    ids = np.fromiter(map(id, tags), dtype=np.uint64, count=len(tags))
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    text = np.array([encode(t if isinstance(t, dict) else {}) for t in tags[first]], dtype=object)
    return text[inv.ravel()]


#: rows of the features file converted at a time (:func:`_write_features`; a row group each)
_FEATURE_BATCH = 65_536
#: rows whose WKB :func:`_write_features` makes at a time
_WKB_SUB_BATCH = 8_192


def _few_texts(series: pd.Series) -> np.ndarray:
    """``series.astype(str).to_numpy()`` for a column of a few distinct texts (the features'
    ``osm_type``) without a new Python string per row: each distinct text made once (a
    million new strings beside the forked GeoPackage writer filled, and so copied, pages of
    the heap it shares). The same values otherwise (a column with missing values, or not of
    text, as it was)."""
    if not len(series) or series.hasnans or not pd.api.types.is_string_dtype(series.dtype):
        return series.astype(str).to_numpy()
    codes, uniques = pd.factorize(series, sort=False)
    texts = np.asarray(pd.Series(uniques, dtype=series.dtype).astype(str).to_numpy(), dtype=object)
    return texts[codes]


def _write_features(features: gpd.GeoDataFrame, path: Path, batch: int = _FEATURE_BATCH) -> None:
    """``osm_features.parquet``: the features' type, id, tags (JSON) and geometry, GeoParquet.

    Written ``batch`` rows at a time: converting a city's features whole (WKB, Arrow columns)
    held ~250 MB more at 8 tiles (~1.8 GB at a million walking nodes) beside the map. The
    table of each batch is made from its rows alone: a table of every row converted the
    tags' JSON text (pandas' inferred string columns) into one Arrow buffer of all of it
    before the first batch (~90 MB at 8 tiles, ~600 MB at a million walking nodes: the
    save's peak). The file's ``geo`` metadata (bbox, geometry types) is geopandas' own,
    computed over all rows, so readers see what ``to_parquet`` wrote (tested); a geopandas
    without that helper, a small table or one without the type and id columns goes through
    ``to_parquet`` itself."""
    # the geometry array as it is, not copied: copying it touches every geometry object, and
    # beside the forked GeoPackage writer each page touched is copied (~200 MB at a million
    # walking nodes); one without a CRS is copied (it gets one here)
    geometry = features.geometry.array if features.crs is not None else features.geometry.array.copy()
    crs = features.crs or WGS84
    whole = "osm_type" not in features or "osm_id" not in features or len(features) <= batch
    try:
        from geopandas.io.arrow import _create_metadata, _encode_metadata
    except ImportError:  # another geopandas layout: the whole table at once
        whole = True
    osm_type = _few_texts(features["osm_type"]) if "osm_type" in features else ""
    osm_id = features["osm_id"].to_numpy() if "osm_id" in features else -1
    tags = _tags_json(features["tags"].to_numpy())

    def table(a=0, b=None):
        return gpd.GeoDataFrame({
            "osm_type": osm_type if whole else osm_type[a:b], "osm_id": osm_id if whole else osm_id[a:b],
            "tags": tags[a:b], "geometry": geometry[a:b],
        }, geometry="geometry", crs=crs, copy=False)

    if whole:
        table().to_parquet(path, index=False)
        return
    import pyarrow.parquet as pq

    # the metadata reads only the geometry column (its types, bbox and CRS)
    geo = _encode_metadata(_create_metadata(
        gpd.GeoDataFrame({"geometry": geometry}, geometry="geometry", crs=crs, copy=False),
        geometry_encoding={"geometry": "WKB"}))
    writer = None
    try:
        for start in range(0, len(features), batch):
            # the WKB (Python bytes objects, the conversion's transient memory) made a
            # sub-batch at a time into one contiguous table: the same table, but the bytes
            # objects of one sub-batch reuse the holes of the last in the heap shared with the
            # forked GeoPackage writer, instead of each filling (and so copying) pages of it
            stop = min(len(features), start + batch)
            part = pa.concat_tables([
                pa.table(table(a, min(stop, a + _WKB_SUB_BATCH)).to_arrow(
                    index=False, geometry_encoding="WKB"))
                for a in range(start, stop, _WKB_SUB_BATCH)]).combine_chunks()
            part = part.replace_schema_metadata({**(part.schema.metadata or {}), b"geo": geo})
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema, compression="snappy")
            writer.write_table(part)
            del part
    finally:
        if writer is not None:
            writer.close()


def _read_features(path: Path) -> gpd.GeoDataFrame | None:
    if not path.exists():
        return None
    if path.suffix == ".parquet":
        gdf = gpd.read_parquet(path)
    else:                                      # format 2: one GeoPackage layer per geometry kind
        import pyogrio

        parts = [gpd.read_file(path, layer=layer) for layer, *_ in pyogrio.list_layers(path)
                 if layer in _FEATURE_LAYERS]
        if not parts:
            return gpd.GeoDataFrame({"osm_type": [], "osm_id": [], "tags": []}, geometry=[], crs=WGS84)
        gdf = pd.concat(parts, ignore_index=True)
    gdf["tags"] = [json.loads(t) if isinstance(t, str) and t else {} for t in gdf["tags"]]
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=gdf.crs or WGS84)


def read_summary(path) -> pd.DataFrame:
    """summary.csv as written by :func:`write_outputs` (text cells restored as they were)."""
    summary = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    for c in summary.columns:
        if summary[c].dtype == object:
            summary[c] = summary[c].map(restore_formula)
    return summary


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}{'…' if len(text) > 160 else ''}"


class _Inconsistent(ValueError):
    """The network archive reads, but its arrays do not fit together."""


#: A node's coordinate in the network's projected CRS (metres) is at most this far from 0.
MAX_COORDINATE_M = 1e8


def _check_network_arrays(z: dict, n_streets: int) -> None:
    """The network archive agrees with itself and with the streets layer: every array of its
    length, every node and edge index in range, every coordinate, length and offset a finite
    number (a damaged archive would otherwise index out of bounds in the engine, end in a
    GEOS error, or give wrong minutes silently)."""
    n_nodes, n_edges = len(z["node_osmid"]), len(z["edge_u"])
    for k in ("node_x", "node_y"):
        if len(z[k]) != n_nodes:
            raise _Inconsistent(f"{k} has {len(z[k])} entries for {n_nodes} nodes")
    for k in ("edge_v", "edge_len", "edge_oneway"):
        if len(z[k]) != n_edges:
            raise _Inconsistent(f"{k} has {len(z[k])} entries for {n_edges} edges")
    if n_edges != n_streets:
        raise _Inconsistent(f"{n_edges} edges for {n_streets} streets in {GPKG}")
    for k in ("node_x", "node_y", "edge_len", "home_off", "fac_off"):     # every float array
        if not np.isfinite(z[k]).all():                 # (the legs: NaN where not snapped)
            raise _Inconsistent(f"{k} holds values that are not finite numbers")
    for k in ("node_x", "node_y"):      # metres of a projected CRS: no place lies 10⁸ m out
        if n_nodes and np.abs(z[k]).max() > MAX_COORDINATE_M:
            raise _Inconsistent(f"{k} holds coordinates beyond {MAX_COORDINATE_M:.0e} m")
    if n_edges and z["edge_len"].min() < 0:
        raise _Inconsistent("edge_len holds negative lengths")
    for k in ("edge_u", "edge_v"):
        if n_edges and (z[k].min() < 0 or z[k].max() >= n_nodes):
            raise _Inconsistent(f"{k} names nodes outside 0..{n_nodes - 1}")
    for who in ("home", "fac"):
        e, off, leg = z[f"{who}_edge"], z[f"{who}_off"], z[f"{who}_leg"]
        if len(off) != len(e) or len(leg) != len(e):
            raise _Inconsistent(f"{who} snaps of unequal lengths")
        if len(e) and (e.min() < -1 or e.max() >= n_edges):
            raise _Inconsistent(f"{who}_edge names edges outside 0..{n_edges - 1}")
        on = e >= 0
        if np.any(~np.isfinite(off[on])) or np.any(off[on] < -1e-6) or \
                np.any(off[on] > z["edge_len"][e[on]] + 1e-6) or np.any(~np.isfinite(leg[on])):
            raise _Inconsistent(f"{who} snap offsets outside their edges")
    x = [z.get(k) for k in ("fac_xedge", "fac_xoff", "fac_xleg", "fac_xown")]
    if any(a is not None for a in x):
        if any(a is None for a in x) or len({len(a) for a in x}) != 1:
            raise _Inconsistent("fac_x* entries missing or of unequal lengths")
        e, off, leg, own = x
        n_fac = len(z["fac_edge"])
        if len(e) and (e.min() < 0 or e.max() >= n_edges or own.min() < 0 or own.max() >= n_fac
                       or not np.isfinite(off).all() or not np.isfinite(leg).all()
                       or np.any(off < -1e-6) or np.any(off > z["edge_len"][e] + 1e-6)):
            raise _Inconsistent("fac_x* entries outside their edges or facilities")


def _extra_entries(snap) -> dict:
    """The arrays that save a facility Snap's extra entries (an area's further entries)."""
    if not snap.n_extra:
        return {}
    return dict(fac_xedge=snap.xedge, fac_xoff=snap.xoff, fac_xleg=snap.xleg, fac_xown=snap.xown)


def read_outputs(out_dir) -> dict:
    """The fields of a :class:`~lifecircle.result.Result` read from an analysis folder.

    Parameters
    ----------
    out_dir : str or os.PathLike
        A folder written by ``analyze`` / ``Result.save``.

    Returns
    -------
    dict
        Keyword arguments of ``Result``. Folders of an older format load too; their ``features``
        are None (commands that need them say so).

    Raises
    ------
    OutputError
        The folder is missing or not an analysis folder, or one of its files is damaged (the
        message names the file).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise OutputError(f"{out}: {'is a file, not' if out.exists() else 'not found: not'} a lifecircle "
                          "analysis folder; run 'lifecircle analyze SOURCE --out DIR' first",
                          zh=f"{out}：{'是文件' if out.exists() else '找不到'}，不是 lifecircle 分析结果文件夹；"
                             "请先运行 'lifecircle analyze SOURCE --out DIR'")
    for name in (GPKG, META, NETWORK, SUMMARY):
        if not (out / name).exists():
            raise OutputError(f"{out}: not a lifecircle analysis folder (missing {name}); "
                              "run 'lifecircle analyze SOURCE --out DIR' first",
                              zh=f"{out}：不是 lifecircle 分析结果文件夹（缺少 {name}）；"
                                 "请先运行 'lifecircle analyze SOURCE --out DIR'")
    reading = out / META
    try:
        fmt = json.loads((out / META).read_text(encoding="utf-8")).get("format")
    except Exception:     # noqa: BLE001 - a damaged meta.json is named below
        fmt = None
    if isinstance(fmt, int) and fmt > FORMAT:
        raise OutputError(f"{out}: written by a newer lifecircle (folder format {fmt}; this version reads up to "
                          f"{FORMAT}); upgrade lifecircle or re-run 'lifecircle analyze' into {out}",
                          zh=f"{out}：由更新版本的 lifecircle 写出（文件夹格式 {fmt}；本版本最高读取 {FORMAT}）；"
                             f"请升级 lifecircle，或重新运行 'lifecircle analyze' 写入 {out}")

    def damaged(exc: Exception) -> OutputError:
        why = "not a NumPy archive of the network" if reading.name == NETWORK and \
            not isinstance(exc, (KeyError, _Inconsistent)) else _short(exc)
        if isinstance(exc, _Inconsistent):
            why = str(exc)
        return OutputError(f"{reading}: damaged or not written by lifecircle ({why}); "
                           f"re-run 'lifecircle analyze' into {out}",
                           zh=f"{reading}：已损坏或不是 lifecircle 写的（{why}）；"
                              f"请重新运行 'lifecircle analyze' 写入 {out}")

    try:
        meta = json.loads((out / META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        crs = pyproj.CRS.from_wkt(meta["crs"])
        st = dict(meta["settings"])
        st["thresholds_min"] = tuple(st["thresholds_min"])
        settings = Settings(**st)
        profile_ref = out / PROFILE if (out / PROFILE).exists() else meta["profile"]
        reading = out / NETWORK
        with np.load(out / NETWORK, allow_pickle=False) as npz:
            z = {k: npz[k] for k in ("node_osmid", "node_x", "node_y", "edge_u", "edge_v", "edge_len",
                                     "edge_oneway", "home_edge", "home_off", "home_leg", "fac_edge",
                                     "fac_off", "fac_leg")}
            # an area's further entries (see snapping.area_entries); older folders have none
            for k in ("fac_xedge", "fac_xoff", "fac_xleg", "fac_xown"):
                z[k] = npz[k] if k in npz.files else None
            # pedestrian-area edges (take no points); older folders have none
            z["edge_area"] = npz["edge_area"].astype(bool) if "edge_area" in npz.files else None
        reading = out / GPKG
        edges = gpd.read_file(out / GPKG, layer="streets").to_crs(crs)
        homes = gpd.read_file(out / GPKG, layer="homes").to_crs(crs)
        fac = _read_split(out / GPKG, FACILITY_LAYERS).to_crs(crs)
        try:
            comm = gpd.read_file(out / GPKG, layer="communities").to_crs(crs)
        except Exception:
            comm = None
        reading = out / SUMMARY
        summary = read_summary(out / SUMMARY)
        for c in ("level", "community", "id"):
            if c not in summary:
                raise ValueError(f"no column '{c}'")
        reading = out / NETWORK
        _check_network_arrays(z, len(edges))           # before the arrays are used
        net = WalkNetwork(crs, z["node_osmid"], z["node_x"], z["node_y"], z["edge_u"], z["edge_v"],
                          z["edge_len"], z["edge_oneway"], edges.geometry.to_numpy(),
                          settings.walk_speed_mps,
                          edges["highway"].to_numpy() if "highway" in edges else None,
                          edge_area=z["edge_area"])
        hs = Snap(z["home_edge"], z["home_off"], z["home_leg"], np.zeros(len(z["home_edge"]), bool))
        fs = Snap(z["fac_edge"], z["fac_off"], z["fac_leg"], np.zeros(len(z["fac_edge"]), bool))
        if z["fac_xown"] is not None and len(z["fac_xown"]):
            fs = fs.with_extra(z["fac_xedge"], z["fac_xoff"], z["fac_xleg"], z["fac_xown"])
        if len(hs.edge) != len(homes) or len(fs.edge) != len(fac):
            raise ValueError(f"{len(hs.edge)} home and {len(fs.edge)} facility snaps for {len(homes)} "
                             f"homes and {len(fac)} facilities in {GPKG}")
        reading = out / META
        area = shapely.from_wkt(meta["study_area_wkt"]) if meta.get("study_area_wkt") else None
        reading = out / FEATURES_FILE if (out / FEATURES_FILE).exists() else out / FEATURES_GPKG
        features = _read_features(reading)
    except Exception as exc:     # any failure reading lifecircle's own files: name the file
        raise damaged(exc) from None
    profile = load_profile(profile_ref)
    return dict(homes=homes, facilities=fac, summary=summary, profile=profile, settings=settings,
                network=net, home_snap=hs, facility_snap=fs, communities=comm, study_area=area,
                source=recorded_source(meta), data_date=meta.get("data_date"),
                place=str(meta.get("place") or ""),
                timings=meta.get("timings_s", {}), notes=meta.get("notes", []),
                population_info=meta.get("population") or {},
                network_report=meta.get("network") or {},
                features=features)
