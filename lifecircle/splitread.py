"""Reading on two cores: the streets and the walking network in a forked child process.

It pays only with a core to spare (``bench/split_read.py``, 2 cores, warm, medians): with the
machine otherwise quiet Las Palmas ``analyze`` 2.27 -> 2.02 s wall (read+network 1.36 -> 1.06 s),
the 8-tile city 17.5 -> 14.2 s (read+network 10.3 -> 7.2 s), for ~8-20 % more CPU (the file's
second decode, the transfer); with both cores busy (load 4-6) no gain in wall, only the CPU.
So it is used when the tasks runnable now leave a core idle (:func:`_busy`), never with
``LIFECIRCLE_SPLIT_READ=0``, and always (where fork is safe and the process may run on two
cores: not under ``taskset`` to one, nor with ``LIFECIRCLE_THREADS=1``) with
``LIFECIRCLE_SPLIT_READ=1``.

:func:`lifecircle.pipeline.analyze` reads an OSM file in one pass and then builds the walking
network, one after the other on one core. Where fork is safe (Linux, no other Python thread:
see :func:`lifecircle.io.outputs._fork_safe`), :func:`start` forks a child that reads the
streets of the same file (libosmium drops every non-``highway`` element in C++), while this
process reads the features. The streets are read in less than half the time of the features,
so the child does at once all that does not need the features:

0. child → parent, first: the feature relations, read by the child in a pass of their own
   (:func:`lifecircle.io.sources.read_relations`: libosmium decodes only the relations) while
   the parent's features pass decodes the file's nodes in C++; the parent needs them only
   once its pass reaches the ways (the member ways of the relations are read as such), and
   waits for them there (``read_osm(..., nodes=split.nodes)``, ``split.nodes.relations``).
   A features read alone reads them first, with the nodes whose first group is natural, the
   whole file decoded once more before its pass can start (at the 1M-node city ~6 s of the
   parent's read);
1. child → parent: the feature nodes (points of interest, land use), read in the child's pass
   (libosmium lets them through with the streets), so that the parent's features pass, the
   read's long pole, lets no node reach Python (``read_osm(..., nodes=split.nodes)``);
2. child → parent: the streets' bounds and date (the study area and its CRS need them);
3. the child finds the CRS and the clip polygon itself: they depend only on the streets'
   bounds and the boundary (read by the parent before the fork, inherited by the child),
   computed by the same function (``steps[3]``) the parent then calls on the same values;
4. child → parent: the clipped, projected residential streets (the homes' street evidence),
   sent by a writer thread while the child builds the network as far as the streets alone
   decide it (coordinates, lengths, node ids: :func:`~lifecircle.core.network.build_network`
   with ``areas`` a function, called only then);
5. parent → child, as soon as the features are read: the ``highway=pedestrian`` features,
   read by a reader thread in the child, which clips them as the parent clips all features;
   the plazas' segments are joined in and the rest of the network built;
6. child → parent: the :class:`~lifecircle.core.network.WalkNetwork`.

The parent classifies the facilities and finds the homes while the child finishes the network.
Both run the same functions on the same data as the one-process path (:func:`_streets_side`
is that path's streets half, step by step), so the results are identical: the streets of a
streets-only read are those of the full read, the features of a features-only read those of the
full read, and :func:`pedestrian_areas` of the clipped pedestrian features is that of all
clipped features. Geometry crosses the pipe as coordinate arrays (exact float64, rebuilt into
the same LineStrings), the rest as pickled numpy arrays.

Whatever goes wrong in the child (an error, a crash, a kill), the parent does the missing steps
itself, from the start of the streets half (re-reading the streets), and meets any real error
(a file without walkable streets) as the one-process path does. An error or Ctrl-C in the
parent kills and reaps the child (:func:`reaped`). The child writes nothing to the parent's
streams and leaves with ``os._exit``.

numba in the child: the network's chain walk (:func:`lifecircle.core.network.contract_chains`)
is a plain ``njit`` kernel (no ``parallel=True``, no threading layer); compiling or loading it
takes numba's compiler lock, a Python lock no other thread can hold at the fork (there is none),
and calling it starts no thread. numba's parallel kernels (the engine's) are never called here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import struct
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from lifecircle.core.network import WalkNetwork
from lifecircle.io import outputs
from lifecircle.io.osmread import gc_paused, release_freed_memory
from lifecircle.io.sources import OSMData, read_relations
from lifecircle.settings import cores as _cores

#: Whether the fork is possible here (Linux only, as :data:`lifecircle.io.outputs.FORK_GPKG`).
CAN_FORK = sys.platform.startswith("linux") and hasattr(os, "fork")
_SWITCH = os.environ.get("LIFECIRCLE_SPLIT_READ", "").strip()
#: Whether :func:`start` may fork (off with ``LIFECIRCLE_SPLIT_READ=0``; tests switch it).
FORK_READ = CAN_FORK and _SWITCH != "0"
#: Fork even when the machine looks busy (``LIFECIRCLE_SPLIT_READ=1``).
FORCE = _SWITCH == "1"

_HEADER = struct.Struct("<q")
_children: ContextVar[list | None] = ContextVar("lifecircle_split_children", default=None)


# --------------------------------------------------------------------------------------------
# the streets half: the same steps in the child and, when it fails, in the parent


def _streets_side(source, settings, receive, steps):
    """The streets half of ``analyze``'s read and network stages, one message per step:
    ``("nodes", the feature nodes)`` (:func:`lifecircle.io.osmread.take_nodes`, or None when
    the reader did not read them), ``("streets", bounds, data_date, meta)``, ``("homes", residential streets)`` and
    ``("network", net)``. ``steps``: the functions the caller's own path calls (read_osm,
    residential_streets, build_network, and the study area: the streets' bounds → (CRS, clip
    polygon or None)), so that both paths run the same ones. The CRS and the clip need only
    the bounds (and the boundary the caller holds), so the streets are clipped, projected,
    their residential streets found and the network built as far as the streets alone decide
    it at once; ``receive()`` → the ``highway=pedestrian`` features (the plazas, whose
    segments join the network's) is called only then, and they are clipped here as
    :meth:`OSMData.clip` clips all features."""
    read_osm, residential_streets, build_network, study_area = steps
    data = read_osm(source, layers=("streets", "nodes"))
    # the feature nodes, read in the same pass (the features pass then reads ways only)
    yield "nodes", data.meta.pop("nodes", None)
    bounds = data.streets.total_bounds
    yield "streets", bounds, data.data_date, data.meta
    crs, keep = study_area(bounds)
    if keep is not None:
        data = data.clip(keep)
    source, held = data.source, [data.streets]
    del data                 # the WGS-84 segments go as soon as they are projected
    # projected once: for the network and for the homes' residential-street evidence
    streets = project_streets(held, crs)
    yield "homes", residential_streets(streets)
    held = [streets]
    del streets              # the projected segments go as soon as their coordinates are read

    def areas():
        features = receive()
        return features if keep is None else features[features.intersects(keep)].reset_index(drop=True)

    net = build_network(held, crs, settings, source=source, areas=areas, release=release_freed_memory)
    yield "network", net


def project_streets(held: list, crs) -> gpd.GeoDataFrame:
    """The streets frame ``held[0]`` (taken out of the list) in ``crs``: what ``to_crs`` makes
    (the same coordinates, pyproj's transform of them, the same columns), with one set of
    segment geometries alive at a time instead of two. A city's streets are millions of
    two-point LineStrings (~265 bytes each: ~1.3 GB for a million-node city); their
    coordinates are read, the caller's last reference (the list's) and so the WGS-84
    geometries dropped, and the projected lines made from the projected coordinates. Frames
    that are not all 2D LineStrings (or that someone else still holds) are projected by
    ``to_crs`` (the same result, the two sets at once)."""
    streets = held.pop()
    if not len(streets):
        return streets
    name = streets.geometry.name
    geoms = streets.geometry.to_numpy()
    if not ((shapely.get_type_id(geoms) == 1).all() and not shapely.has_z(geoms).any()
            and not shapely.is_empty(geoms).any()):
        return streets.to_crs(crs)
    transformer = pyproj.Transformer.from_crs(streets.crs, crs, always_xy=True)   # as to_crs
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    order, columns = streets.index, list(streets.columns)
    table = pd.DataFrame(streets.drop(columns=name))   # the other columns, their own dtypes
    del streets, geoms                      # the WGS-84 geometries are freed here
    x, y = transformer.transform(coords[:, 0], coords[:, 1])
    del coords
    lines = shapely.linestrings(np.column_stack([x, y]), indices=index)
    del x, y, index
    table[name] = gpd.GeoSeries(lines, index=order, crs=crs)
    return gpd.GeoDataFrame(table, geometry=name, crs=crs)[columns]


def pedestrian_features(features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The ``highway=pedestrian`` rows of ``features``: all that
    :func:`~lifecircle.core.network.pedestrian_areas` (and so the network) reads of them."""
    rows = [i for i, t in enumerate(features["tags"].tolist()) if isinstance(t, dict) and t.get("highway") == "pedestrian"] \
        if len(features) and "tags" in features else []
    return features.iloc[rows]


# --------------------------------------------------------------------------------------------
# what crosses the pipe


def _pack_geoms(geoms):
    """Geometries as exact coordinate arrays (2D LineStrings: the streets and edges) or WKB."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and (shapely.get_type_id(geoms) == 1).all() and not shapely.has_z(geoms).any():
        coords, index = shapely.get_coordinates(geoms, return_index=True)
        return "lines", coords, np.bincount(index, minlength=len(geoms))
    return "wkb", shapely.to_wkb(geoms), None


def _unpack_geoms(packed):
    kind, a, counts = packed
    if kind == "lines":
        return shapely.linestrings(a, indices=np.repeat(np.arange(len(counts)), counts))
    return shapely.from_wkb(a)


def _pack_frame(frame: gpd.GeoDataFrame):
    name = frame.geometry.name
    return list(frame.columns), name, frame.drop(columns=name), _pack_geoms(frame.geometry.to_numpy())


def _unpack_frame(packed, crs) -> gpd.GeoDataFrame:
    columns, name, table, geoms = packed
    out = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(_unpack_geoms(geoms), index=table.index, crs=crs),
                           crs=crs)
    return out.rename_geometry(name)[columns] if name != "geometry" else out[columns]


def _pack_network(net: WalkNetwork):
    out = {}
    for f in fields(net):
        value = getattr(net, f.name)
        if isinstance(value, shapely.STRtree) or f.name == "crs":
            continue          # an index made on first use; the parent has the CRS
        if isinstance(value, np.ndarray) and value.dtype == object and len(value) and \
                isinstance(value[0], shapely.Geometry):
            value = ("geoms", _pack_geoms(value))
        out[f.name] = value
    return out


def _unpack_network(packed: dict, crs) -> WalkNetwork:
    values = {k: _unpack_geoms(v[1]) if isinstance(v, tuple) and len(v) == 2 and v[0] == "geoms" else v
              for k, v in packed.items()}
    return WalkNetwork(crs=crs, **values)


def _pack(message):
    kind = message[0]
    if kind == "homes":
        return kind, _pack_frame(message[1])
    if kind == "network":
        return kind, _pack_network(message[1])
    return message


# --------------------------------------------------------------------------------------------
# the child process


class _Failed(Exception):
    """The child stopped before sending what was asked (an error, a crash, a kill)."""


def _send(fd: int, obj) -> None:
    _send_bytes(fd, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _send_bytes(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data) if len(data) < 1 << 16 else None
    if view is None:
        _write_all(fd, memoryview(_HEADER.pack(len(data))))
        view = memoryview(data)
    _write_all(fd, view)


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view):]


def _recv(fd: int):
    return pickle.loads(_recv_bytes(fd))


def _recv_bytes(fd: int) -> bytearray:
    head = _read_exact(fd, _HEADER.size)
    return _read_exact(fd, _HEADER.unpack(head)[0])


def _read_exact(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise _Failed("the child's pipe closed")
        got += k
    return buf


def _grow_pipe(fd: int) -> None:
    """A pipe of 1 MiB (Linux's default limit for users) where allowed: fewer wake-ups."""
    with contextlib.suppress(Exception):
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)


def _child_main(source, settings, steps, to_parent: int, from_parent: int) -> None:
    """The child's work: :func:`_streets_side`, each message sent as soon as it is made (with
    the warnings raised since, re-issued by the parent); the big ones by a writer thread, so
    that building the network goes on while the parent has not read them yet. The parent's
    one message (the pedestrian features) is read by a reader thread as soon as it comes: the
    parent never waits on a full pipe while this process is busy; its bytes only: they are
    unpickled by the main thread when needed (objects made in a thread would sit in a malloc
    arena of their own)."""
    got: list = []

    def read():
        try:
            got.append(_recv_bytes(from_parent))
        except BaseException as exc:   # noqa: BLE001 - handed to the main thread
            got.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def receive():
        reader.join()
        data = got.pop()
        if isinstance(data, BaseException):
            raise _Failed("the parent's message did not arrive") from data
        return pickle.loads(data)

    pending: list[threading.Thread] = []
    with warnings.catch_warnings(record=True) as caught:
        for message in itertools.chain(_relations_side(source), _streets_side(source, settings, receive, steps)):
            news = [(str(w.message), w.category, w.filename, w.lineno) for w in caught]
            caught.clear()
            # pickled here: the residential streets and their packed copy go at once, the
            # bytes alone wait (from before the network is built until the parent's homes
            # stage reads them: 22 MB at the 8-tile city)
            data = pickle.dumps((_pack(message), news), protocol=pickle.HIGHEST_PROTOCOL)
            del message
            # messages in order: each writer first waits for the one before, this thread for
            # none (the feature nodes wait in the pipe until the parent's features pass is
            # over, and the streets behind them: the work goes on meanwhile)
            t = threading.Thread(target=_send_after, args=(pending[-1] if pending else None,
                                                           to_parent, data), daemon=True)
            t.start()
            pending.append(t)
            del data                 # the thread holds it until sent
    for t in pending:
        t.join()


def _relations_side(source):
    """The child's first message: ``("relations", the feature relations)``
    (:func:`~lifecircle.io.sources.read_relations`), or None when they could not be read here
    (the parent then reads them itself, and meets the error, if any, as one process would)."""
    try:
        got = read_relations(source)
    except Exception:   # noqa: BLE001 - the parent reads them and meets the error itself
        got = None
    yield "relations", got


def _send_after(before: threading.Thread | None, fd: int, data: bytes) -> None:
    """:func:`_send_bytes` once the writer ``before`` (the previous message's) is done."""
    if before is not None:
        before.join()
    _send_bytes(fd, data)


#: What a broken or dead child's message raises here (cut pipe, half a pickle, a wrong message).
_BROKEN = (_Failed, OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
           KeyError, IndexError)


class _FromChild:
    """What the parent's features read takes from the child (see :attr:`SplitRead.nodes`)."""

    __slots__ = ("split",)

    def __init__(self, split: SplitRead):
        self.split = split

    def __call__(self):
        return self.split._next("nodes")[1]

    def relations(self):
        return self.split.relations()


class SplitRead:
    """A forked child reading the streets and building the network (see the module)."""

    def __init__(self, source, settings, steps, pid: int, rfd: int, wfd: int):
        self.source, self.settings, self.steps = source, settings, steps
        self.pid, self.rfd, self.wfd = pid, rfd, wfd
        self.reaped = False
        self.failed = False
        self.local = None          # the streets half run here, once the child failed
        self.asked = None          # what the parent sent (the pedestrian features)
        self.crs = None            # the analysis CRS (the caller's, set before the homes)
        self.step = 0              # messages received so far (after the relations)
        self.took_relations = False   # the first message (the relations) received or skipped

    # -- parent side
    def _receive(self):
        """The child's next message and the warnings it raised, re-issued here."""
        message, news = _recv(self.rfd)
        for text, category, filename, lineno in news:
            warnings.warn_explicit(text, category, filename, lineno)
        return message

    def relations(self):
        """The feature relations the child read (:func:`lifecircle.io.sources.read_relations`);
        None (read them yourself) when it could not, or failed, or they were asked before."""
        if self.took_relations:
            return None
        self.took_relations = True
        if self.failed:
            return None
        try:
            message = self._receive()
            if message[0] != "relations":
                raise _Failed(f"expected relations, got {message[0]}")
            return message[1]
        except _BROKEN:
            self.failed = True
            self.kill()
            return None

    def _next(self, kind: str):
        """The next message (``kind``), from the child or, once it failed, computed here."""
        if not self.took_relations:   # never asked for (the features read read them itself)
            self.relations()
        if not self.failed:
            try:
                message = self._receive()
                if message[0] != kind:
                    raise _Failed(f"expected {kind}, got {message[0]}")
                self.step += 1
                with gc_paused():   # ~10^5 new geometries: no collection walking the features
                    if kind == "homes":
                        return _unpack_frame(message[1], self.crs)
                    if kind == "network":
                        return _unpack_network(message[1], self.crs)
                return message
            except _BROKEN:
                self.failed = True
                self.kill()
        if self.local is None:     # the streets half here, from the start
            self.local = _streets_side(self.source, self.settings, lambda: self.asked, self.steps)
            for _ in range(self.step):
                next(self.local)
        message = next(self.local)
        self.step += 1
        return message[1] if kind in ("homes", "network") else message

    @property
    def nodes(self) -> _FromChild:
        """For the parent's features read (``read_osm(nodes=split.nodes)``): called, the feature
        nodes the streets read read (:func:`lifecircle.io.osmread.take_nodes`; None: read them
        yourself); its ``relations()``, the feature relations (:meth:`relations`)."""
        return _FromChild(self)

    def streets(self) -> tuple:
        """The streets' (bounds, data date, reader meta)."""
        _, bounds, date, meta = self._next("streets")
        return bounds, date, meta

    def ask(self, features: gpd.GeoDataFrame) -> None:
        """Send what the network reads of the features (:func:`pedestrian_features`; the child
        clips them to the study area itself), as soon as they are read."""
        self.asked = pedestrian_features(features)
        if not self.failed:
            try:
                _send(self.wfd, self.asked)
            except OSError:
                self.failed = True
                self.kill()

    def home_streets(self) -> gpd.GeoDataFrame:
        """The projected residential streets (:func:`residential_streets`)."""
        return self._next("homes")

    def network(self) -> WalkNetwork:
        """The walking network; the child is reaped."""
        net = self._next("network")
        self.kill()
        return net

    def kill(self) -> None:
        """Stop the child (if still running), reap it and close the pipes; once only."""
        if self.reaped:
            return
        self.reaped = True
        with contextlib.suppress(OSError):
            os.kill(self.pid, 9)
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)


def _busy() -> bool:
    """No core to spare: other tasks runnable right now fill the cores this process may use.

    Read from the kernel's count of runnable tasks (``/proc/loadavg``'s ``running/total``,
    this process included), a few samples 2 ms apart, the smallest: a moment's spike is not
    a busy machine. Not the 1-minute load average: it still counts the analysis that just
    ended (a batch script's previous district used both cores and left the load at ~2, so the
    next one read on one core of an idle machine). Where ``/proc`` is missing, the load
    average. The child would only compete with this process on a busy machine (same wall
    time, ~10 % more CPU)."""
    others = _runnable_others()
    if others is None:
        try:
            return os.getloadavg()[0] >= _cores()
        except (AttributeError, OSError):
            return False
    return others >= _cores()


_LOADAVG = "/proc/loadavg"


def _runnable_others(samples: int = 5) -> int | None:
    """The fewest other runnable tasks over ``samples`` looks (None without ``/proc/loadavg``)."""
    seen = []
    for i in range(samples):
        if i:
            time.sleep(0.002)
        try:
            with open(_LOADAVG, encoding="ascii") as f:
                running = f.read().split()[3].split("/")[0]
            seen.append(max(int(running) - 1, 0))
        except (OSError, IndexError, ValueError):
            return None
    return min(seen)


def start(source, settings, steps) -> SplitRead | None:
    """Fork the streets child for an OSM file ``source``; None where that is not safe or
    possible, or not a file (the caller reads in one process). ``steps``: the caller's
    (read_osm, residential_streets, build_network, study area) (see :func:`_streets_side`)."""
    steps = tuple(steps)
    if not FORK_READ or not outputs._fork_safe() or isinstance(source, OSMData) or _cores() < 2 \
            or (not FORCE and _busy()):
        return None
    if not isinstance(source, (str, os.PathLike)):
        return None
    name = os.fspath(source)
    if not isinstance(name, str) or name[:6].lower() == "place:" or not os.path.isfile(name):
        return None
    try:
        up_r, up_w = os.pipe()
    except OSError:
        return None
    try:
        down_r, down_w = os.pipe()
    except OSError:
        os.close(up_r)
        os.close(up_w)
        return None
    _grow_pipe(up_w)
    _grow_pipe(down_w)
    # the child dies with this process (a SIGTERM'd parent takes it along: no orphan reading on)
    pid = outputs.fork_call(lambda: _child_main(source, settings, steps, up_w, down_r),
                            close=(up_r, down_w))
    if pid is None:
        for fd in (up_r, up_w, down_r, down_w):
            os.close(fd)
        return None
    os.close(up_w)
    os.close(down_r)
    split = SplitRead(source, settings, steps, pid, up_r, down_w)
    held = _children.get()
    if held is not None:
        held.append(split)
    return split


@contextmanager
def reaped():
    """Children :func:`start` forks inside the block are killed and reaped when it ends
    (on an error or Ctrl-C in the parent, or if the block never asked for the network)."""
    token = _children.set([])
    try:
        yield
    finally:
        for split in _children.get():
            split.kill()
        _children.reset(token)
