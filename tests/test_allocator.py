"""`import odeflow` keeps freed memory with glibc's malloc (odeflow/_allocator.py):
a large block freed and allocated again is not faulted in again, unless the user
opts out with ODEFLOW_KEEP_FREED_MEMORY=0."""

import os
import resource
import subprocess
import sys

import pytest

from odeflow._allocator import keep_freed_memory

# True where the setting applies: glibc's malloc, a glibc that accepts the thresholds,
# and no opt-out in this environment (calling it again sets the same values)
KEEPS = keep_freed_memory()

# 40 MiB: above the largest threshold glibc adapts to on its own (32 MiB)
FAULTS = """
import ctypes, resource
import odeflow
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
size = 40 * 2**20
def cycle():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(ctypes.c_void_p(p))
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _faults_per_cycle(keep: str) -> float:
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True,
                         env=os.environ | {"ODEFLOW_KEEP_FREED_MEMORY": keep})
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not KEEPS, reason="the setting applies to glibc's malloc only")
def test_freed_blocks_are_reused_without_page_faults():
    pages = 40 * 2**20 // resource.getpagesize()
    assert _faults_per_cycle("1") < 0.05 * pages
    assert _faults_per_cycle("0") > 0.5 * pages  # malloc as it was: mapped afresh each time


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_opting_out_leaves_malloc_alone(monkeypatch, value):
    monkeypatch.setenv("ODEFLOW_KEEP_FREED_MEMORY", value)
    assert keep_freed_memory() is False
