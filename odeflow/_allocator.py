"""Keep freed memory in the process (glibc only), so that XLA's large temporary
buffers do not cost page faults on every call.

XLA on CPU takes each call's temporary buffers from `malloc`. glibc serves a block
above its mmap threshold (adaptive, at most 32 MiB) with a fresh memory mapping and
returns it to the kernel on `free`, and shrinks its heap once more than the trim
threshold is free at its top. The next call then maps the same amount again, and
the kernel zero-fills each page on first touch. On a convolutional ODE-Net's
gradient (batch 64, 2 steps) that was 7,000 to 15,000 page faults, 30 to 60 MB,
about 10 to 25 ms of a 60 to 90 ms call (`benchmarks/README.md`).

`import odeflow` raises both thresholds to `KEEP_BYTES`, so that freed blocks stay
with `malloc` for the next call. The price: memory freed by the process (by JAX,
numpy or anything else) is returned to the system later or not at all, and the
setting holds for the whole process. Set the environment variable
`ODEFLOW_KEEP_FREED_MEMORY=0` before importing odeflow to leave `malloc` as it is.
Other C libraries (macOS, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

KEEP_BYTES = 2**30
"""Blocks below this size come from malloc's heap; this much may stay free at its top."""

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

ENV = "ODEFLOW_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to `KEEP_BYTES`; True when both were set
    (False on other C libraries or when `ODEFLOW_KEEP_FREED_MEMORY=0`)."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded, libc among them
        libc.gnu_get_libc_version  # glibc only: mallopt's parameters differ elsewhere
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) & bool(libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))
