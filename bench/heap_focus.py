"""``python -m focus`` with a heap probe, for bench/flood only.

``python -m bench.heap_focus REPORT serve ...`` runs the focus exactly as
``python -m focus serve ...`` would; on SIGUSR1 it collects garbage and writes one JSON
line to REPORT: the live objects the collector tracks (by the ten most numerous types),
the blocks pymalloc holds (``sys.getallocatedblocks``) and, on glibc, what ``mallinfo2``
says malloc has handed out (in use) and holds (arena + mmap). Those are the Python-heap
figures RSS cannot give: CPython keeps freed arenas and glibc keeps freed pages, so RSS
after a peak stays near the peak even when the heap is back. With ``trim`` in the
``XCON_BENCH_TRIM`` environment variable the probe then calls ``malloc_trim(0)`` and
reports again, to show how much of the RSS was pages malloc kept (no tracemalloc: its
overhead would distort the CPU figures).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from focus.__main__ import main as focus_main


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None  # not glibc >= 2.33: the malloc figures are left out
    libc.mallinfo2.restype = _MallInfo2
    return libc


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def heap_figures(libc: ctypes.CDLL | None) -> dict[str, object]:
    gc.collect()
    objects = gc.get_objects()
    kinds = collections.Counter(type(o).__qualname__ for o in objects)
    figures: dict[str, object] = {
        "gc_objects": len(objects),
        "top_types": dict(kinds.most_common(10)),
        "pymalloc_blocks": sys.getallocatedblocks(),
        "rss": rss(),
    }
    del objects
    if libc is not None:
        info = libc.mallinfo2()
        figures["malloc_in_use"] = info.uordblks + info.hblkhd
        figures["malloc_held"] = info.arena + info.hblkhd
    return figures


def install(report: Path) -> None:
    libc = _libc()
    trim = "trim" in os.environ.get("XCON_BENCH_TRIM", "")

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        figures = heap_figures(libc)
        if trim and libc is not None:
            libc.malloc_trim(0)
            figures["rss_after_trim"] = rss()
        figures["at"] = time.time()
        with report.open("a") as out:
            out.write(json.dumps(figures) + "\n")

    signal.signal(signal.SIGUSR1, on_signal)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m bench.heap_focus REPORT serve ...", file=sys.stderr)
        return 2
    install(Path(argv[0]))
    return focus_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
