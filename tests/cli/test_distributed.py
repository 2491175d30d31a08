"""`jax.distributed` settings from options or the environment; the single-process
path runs end to end; two processes on this machine split a run and equal one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from odeflow._distributed import distributed_settings
from processes import free_port, simulated_devices, untimed, untimed_tuning


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
    port = free_port()
    cmd = [sys.executable, "-m", "odeflow", "compare", "--task", "xor", "--methods", "gd",
           "--seeds", "2", "--target", "0.05", "--max-steps", "2000", "--repeats", "1",
           "--out", str(tmp_path), "--coordinator-address", f"localhost:{port}",
           "--num-processes", "1", "--process-id", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "xor.json").read_text())
    assert len(data["records"]) == 2 and all(r["reached"] for r in data["records"])


def test_two_processes_split_the_work_and_equal_one(tmp_path):
    """Two processes on this machine (2 simulated devices each, jax.distributed over
    localhost): the compare report and a fitting.sweep equal a single-process run on
    one device, each process ran seed-by-seed work for its own seeds only, and
    process 0 alone wrote files."""
    script = Path(__file__).with_name("two_hosts.py")
    port = str(free_port())
    env = dict(os.environ, COLUMNS="200", **simulated_devices(2))
    runs = {role: subprocess.Popen([sys.executable, str(script), role, port,
                                    str(tmp_path / ("single" if role == "single" else "multi"))],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for role in ("0", "1", "single")}
    out = {}
    for role, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        out[role] = (json.loads(stdout.strip().splitlines()[-1]), stderr)
    for role, seeds in (("0", "[0, 2]"), ("1", "[1]")):
        log = out[role][1]
        assert f"process {role} of 2: vmapped seeds over 2 device(s)" in log
        assert f"seed-by-seed runs here for seeds {seeds}" in log
        ran = {int(line.split("scipy-lsoda: seed ")[1].split()[0]) for line in log.splitlines()
               if "scipy-lsoda: seed " in line}
        assert ran == set(json.loads(seeds))
    multi, single = (json.loads((tmp_path / d / "xor.json").read_text()) for d in ("multi", "single"))
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == ["xor.json", "xor.md", "xor.png"]
    assert len(multi["records"]) == 6 and untimed(multi["records"]) == untimed(single["records"])
    assert untimed_tuning(multi["tuning"]) == untimed_tuning(single["tuning"])
    assert (multi["config"]["processes"], single["config"]["processes"]) == (2, 1)
    sweeps = {role: out[role][0] for role in out}
    assert sweeps["single"]["owners"] == [[i, 0] for i in range(5)]
    assert sweeps["0"]["owners"] == [[0, 0], [1, 1], [2, 0], [3, 1], [4, 0]]
    assert sweeps["single"]["raised"].startswith("ZeroDivisionError")
    for role in ("0", "1", "single"):
        assert sweeps[role]["journal"] == {"tune/adam": {"chosen": 0.1}}
        assert sweeps[role]["refused"].startswith("the progress of an earlier run")
    for role in ("0", "1"):  # item 1 failed on process 1; process 0 raises too
        assert sweeps[role]["raised"] == ("RuntimeError: ZeroDivisionError: integer division or modulo "
                                          "by zero (item 1, process 1)")
    assert (sweeps["0"]["mesh"], sweeps["single"]["mesh"]) == (4, 1)
    assert sweeps["0"] == sweeps["1"]  # every process receives every seed's result
    for key in ("loss", "params"):
        np.testing.assert_allclose(sweeps["0"][key], sweeps["single"][key], rtol=1e-10, atol=1e-12)
