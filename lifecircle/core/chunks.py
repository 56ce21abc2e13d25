"""Vectorised calls on both cores: a call's arrays cut into chunks, run on a few threads.

The calls chunked here release the GIL while they work (shapely 2's GEOS predicates, measures
and constructors, its STRtree queries, PROJ transforms, scipy's k-d queries), so two threads
run them on two cores. Each function is one of items (the answer for an item depends on
that item alone, and a tree query's pairs come grouped by item in item order), so the
answers put back in chunk order are the plain call's, bit for bit, GEOS's own pick among
equidistant candidates included. Chunks also bound a call's temporaries.

Geometries and indexes that outlast the call are made by the calling thread, not by the
others: glibc gives each thread a malloc arena of its own, and what lasts there pins memory
the rest of the analysis cannot reuse (a 60-tile city peaked 7 % higher when the homes'
projected buildings were made on the second thread). The threads make temporaries and flat
answers, which go straight into arrays made here.
"""

from __future__ import annotations

import threading

import numpy as np
import shapely

from lifecircle.settings import cores

#: A fixed thread count for the calls here (tests set it); ``None``, the default, follows
#: :func:`threads` at each call.
THREADS: int | None = None
#: Items per chunk: large enough that a chunk's call costs far more than handing it to a thread.
CHUNK = 1 << 13
#: Fewer items than this are one plain call in the calling thread.
MIN_ITEMS = 1 << 14


def threads() -> int:
    """Threads at most for a call: :data:`THREADS` when set, else the cores lifecircle may use
    (:func:`lifecircle.settings.cores`, capped: the stages' calls scale to two), read at each
    call, so ``LIFECIRCLE_THREADS`` set after ``import lifecircle`` holds here as it does for
    the reader (a system call, microseconds)."""
    return THREADS if THREADS is not None else min(2, cores())


def spans(n: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` of the chunks of ``n`` items (one span when threads would not pay)."""
    k = threads()
    if k < 2 or n < MIN_ITEMS:
        return [(0, n)]
    step = max(1, min(CHUNK, -(-n // k)))
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def run(tasks: list) -> list:
    """The results of the zero-argument callables ``tasks``, in order, run by this thread and
    :func:`threads` - 1 others, each taking the next task left (in this thread alone when
    there is one task or one thread). The threads are started per call: none outlives it, so
    a process forked later (the writer, a batch worker) inherits none. A task that fails
    stops the handing out; its error is raised here once every thread has stopped (of
    several, the first task's, as the plain call would have raised it)."""
    k = threads()
    if k < 2 or len(tasks) < 2:
        return [t() for t in tasks]
    results: list = [None] * len(tasks)
    errors: dict = {}
    left = iter(range(len(tasks)))
    lock = threading.Lock()

    def work():
        while not errors:
            with lock:
                i = next(left, None)
            if i is None:
                return
            try:
                results[i] = tasks[i]()
            except BaseException as exc:    # handed to the caller
                errors[i] = exc
    others = [threading.Thread(target=work, name="lifecircle-chunks", daemon=True)
              for _ in range(min(k, len(tasks)) - 1)]
    for t in others:
        t.start()
    try:
        work()
    finally:    # (an interrupt here too: the others take no further task)
        errors.setdefault(len(tasks), None)
        for t in others:
            t.join()
        errors.pop(len(tasks))
    if errors:
        raise errors[min(errors)]
    return results


def beside(background, foreground):
    """``(background(), foreground())``, the first run on another thread while this one runs
    the second (what this thread makes, as a lasting index, stays with its allocator)."""
    if threads() < 2:
        return background(), foreground()
    out: list = [None, None]

    def bg():
        try:
            out[0] = background()
        except BaseException as exc:    # handed to the caller
            out[1] = exc
    t = threading.Thread(target=bg, name="lifecircle-beside", daemon=True)
    t.start()
    try:
        fg = foreground()
    finally:
        t.join()
    if out[1] is not None:
        raise out[1]
    return out[0], fg


def _cut(value, n: int, lo: int, hi: int):
    """``value[lo:hi]`` for an array aligned with the items, ``value`` itself otherwise
    (a scalar or a geometry every item shares)."""
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
        return value[lo:hi]
    return value


def _join(out: list):
    if isinstance(out[0], tuple):
        return tuple(np.concatenate(x) for x in zip(*out))
    return np.concatenate(out)


def made(func, n: int):
    """``func(0, n)`` for a function of item ranges whose answers for ``lo:hi`` are the rows
    ``lo:hi`` of its answer for all (as ``lambda lo, hi: shapely.distance(a[i[lo:hi]], b)``:
    each chunk also gathers its own inputs), run chunk by chunk and joined in order. A flat
    answer goes straight into one array made here, chunk by chunk: the other thread's
    allocator holds one chunk's answer at a time, not half of them until the join."""
    parts = spans(n)
    if len(parts) == 1:
        return func(0, n)
    probe = func(0, 0)
    if not (isinstance(probe, np.ndarray) and probe.ndim == 1):
        return _join(run([lambda lo=lo, hi=hi: func(lo, hi) for lo, hi in parts]))
    out = np.empty(n, dtype=probe.dtype)

    def part(lo, hi):
        got = func(lo, hi)
        if got.shape != (hi - lo,):
            raise ValueError(f"{func!r} gave {got.shape} answers for {hi - lo} items")
        out[lo:hi] = got
    run([lambda lo=lo, hi=hi: part(lo, hi) for lo, hi in parts])
    return out


def itemwise(func, n: int, *args, **kwargs):
    """``func(*args, **kwargs)`` for a function of ``n`` items whose arrays (the arguments of
    length ``n``) give one answer per item (or rows of items, as ``shapely.get_coordinates``;
    not positions among the items, as its ``return_index``), run chunk by chunk; the answers
    are joined in order (tuples element by element)."""
    return made(lambda lo, hi: func(*(_cut(a, n, lo, hi) for a in args),
                                    **{k: _cut(v, n, lo, hi) for k, v in kwargs.items()}), n)


def warm(tree: shapely.STRtree) -> None:
    """Have GEOS build ``tree`` (it builds an STRtree at its first query): threads then only
    read it."""
    tree.query(shapely.points(0.0, 0.0))


def query(tree: shapely.STRtree, geoms, n: int | None = None, **kwargs) -> np.ndarray:
    """``tree.query(geoms, **kwargs)`` (``distance`` may be an array aligned with ``geoms``)
    run chunk by chunk: the same pairs in the same order. ``geoms`` may be a function of
    ``(lo, hi)`` that makes the query geometries of items ``lo:hi`` (then ``n`` says how
    many items): each chunk's are made in its thread and live only as long as its query."""
    make = geoms if callable(geoms) else (lambda lo, hi: geoms[lo:hi])
    n = len(geoms) if n is None else n
    parts = spans(n)
    if len(parts) == 1:
        return tree.query(make(0, n), **kwargs)
    warm(tree)

    def part(lo, hi):
        pairs = tree.query(make(lo, hi), **{k: _cut(v, n, lo, hi) for k, v in kwargs.items()})
        pairs[0] += lo
        return pairs
    return np.concatenate(run([lambda lo=lo, hi=hi: part(lo, hi) for lo, hi in parts]), axis=1)
