"""Shared by tests that run work in a fresh process (imported, not collected): a
script whose JSON output is read back, and a run killed with SIGKILL part-way."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def run_json(script: Path, timeout: float = 900):
    """Run `script` with this Python in its own folder; its stdout parsed as JSON."""
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, cwd=script.parent)
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
