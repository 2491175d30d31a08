"""Shared by tests that run work in a fresh process (imported, not collected): a
script whose JSON output is read back, a run killed with SIGKILL part-way, a free
port for jax.distributed, compare records and tuning tables without their wall
times (which differ from run to run, whatever else is equal), and the environment of a
process with several simulated devices."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def run_json(script: Path, timeout: float = 900, env: dict | None = None):
    """Run `script` with this Python in its own folder (with `env` added to the
    environment); its stdout parsed as JSON."""
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, cwd=script.parent, env=os.environ | (env or {}))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start `cmd`, poll `ready()` every 20 ms and SIGKILL the process as soon as it
    holds; fails if the process ends first (nothing would have been interrupted)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not ready():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


OLDER_CODE_GENERATOR = "--xla_cpu_use_fusion_emitters=false"
"""The XLA flag tests/conftest.py sets for the suite (faster compilation)."""


def simulated_devices(n: int) -> dict:
    """Environment for a fresh process with `n` simulated CPU devices (the count is
    fixed when JAX starts). It also goes back to XLA's default CPU code generator:
    tests/conftest.py picks the older, faster-compiling one for everything else, and
    with it collectives over simulated devices at times hang."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if f != OLDER_CODE_GENERATOR and not f.startswith("--xla_force_host_platform_device_count")]
    return {"XLA_FLAGS": " ".join(flags + [f"--xla_force_host_platform_device_count={n}"])}


TIMES = ("time_s", "compile_s", "time_repeats_s")


def untimed(records: list[dict]) -> list[dict]:
    """`compare` records without their times."""
    return [{k: v for k, v in r.items() if k not in TIMES} for r in records]


def untimed_tuning(tuning: dict) -> dict:
    """`compare` tuning tables without the grids' wall times."""
    return {method: {k: v for k, v in table.items() if k != "wall_s"} for method, table in tuning.items()}


def free_port() -> int:
    """A localhost port nothing listens on now (for a jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]
