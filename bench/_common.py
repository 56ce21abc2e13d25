"""Shared helpers for the benchmarks in ``bench/``: timing, memory, tables, JSON.

Benchmarks are not tests. Each ``bench/<name>.py`` takes ``--quick``, prints a table of
medians and ratios and writes ``bench/results/<name>.json``. The machine is small and noisy
(2 cores), so every number is a median of repeats and the repeats are stored too.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def timed(fn, repeats: int = 3, warmup: int = 0):
    """Run ``fn()`` ``warmup`` times untimed, then ``repeats`` times.

    Returns ``(median_seconds, all_seconds, last_return_value)``.
    """
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def repeats_for(seconds: float, quick: bool, slow_s: float = 1.0) -> int:
    """≥5 repeats for sub-second work, ≥3 otherwise; 1 in quick mode for slow work."""
    if quick:
        return 3 if seconds < slow_s else 1
    return 5 if seconds < slow_s else 3


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB).

    Reads ``VmHWM`` from /proc (reset at exec); ``ru_maxrss`` is not used where /proc exists
    because Linux carries the parent's peak across fork+exec into a child's ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:  # pragma: no cover
        return False


def tree_pss_mb(pid: int) -> float | None:
    """Proportional set size (MB) of process ``pid`` and all its descendants, summed: the memory
    the process tree really holds (a page shared by a parent and its forked child counts once,
    split between them; RSS would count it in both). ``None`` where /proc has no smaps_rollup."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    total = 0.0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024.0
                    break
        except (OSError, ValueError):
            continue
    return total


def rss_mb() -> float:
    """Current resident set size (MB), via psutil when present."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return peak_rss_mb()


def run_worker(argv: list[str], timeout: float | None = None) -> dict:
    """Run ``python <argv>`` in a fresh process (so its peak memory is its own) and parse
    the JSON object it prints on its last stdout line."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"worker {' '.join(argv)} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def versions(*names: str) -> dict:
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def machine_info(*packages: str) -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": mem_gb,
            "platform": platform.platform(), "versions": versions(*packages)}


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if x != x:  # NaN
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain text table; ``columns`` are ``(key, header)`` pairs."""
    cells = [[h for _, h in columns]] + [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for j, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_json(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)
    return path


def _jsonable(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
