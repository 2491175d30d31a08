"""`jax.distributed` settings from options or the environment; the single-process
path runs end to end."""

import json
import os
import socket
import subprocess
import sys

import pytest

from odeflow._distributed import distributed_settings


def test_settings_from_arguments_and_environment(monkeypatch):
    for name in ("ODEFLOW_COORDINATOR_ADDRESS", "ODEFLOW_NUM_PROCESSES", "ODEFLOW_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_settings() is None  # one process: nothing to initialise
    monkeypatch.setenv("ODEFLOW_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    with pytest.raises(ValueError, match="--num-processes .*ODEFLOW_NUM_PROCESSES"):
        distributed_settings()
    monkeypatch.setenv("ODEFLOW_NUM_PROCESSES", "4")
    monkeypatch.setenv("ODEFLOW_PROCESS_ID", "3")
    assert distributed_settings() == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4,
                                      "process_id": 3}
    assert distributed_settings(process_id=1)["process_id"] == 1  # arguments win
    with pytest.raises(ValueError, match="process_id < num_processes"):
        distributed_settings(process_id=4)


def test_single_process_run_through_jax_distributed(tmp_path):
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "odeflow", "compare", "--task", "xor", "--methods", "gd",
           "--seeds", "2", "--target", "0.05", "--max-steps", "2000", "--repeats", "1",
           "--out", str(tmp_path), "--coordinator-address", f"localhost:{port}",
           "--num-processes", "1", "--process-id", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "xor.json").read_text())
    assert len(data["records"]) == 2 and all(r["reached"] for r in data["records"])
