"""The neural-ODE reproduction scripts run end to end in their --quick settings and
write their JSON, Markdown and plots (the full settings run in benchmarks/)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "benchmarks" / "reproductions"
PLOTS = {"spiral_demo", "cnf_densities", "stiff_robertson"}


@pytest.mark.parametrize("name", ["spiral_demo", "classifiers", "latent_spirals", "adjoint_memory",
                                  "cnf_densities", "stiff_robertson"])
def test_reproduction_runs(name, tmp_path):
    subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--quick", "--out", str(tmp_path)],
                   check=True, cwd=SCRIPTS, capture_output=True, timeout=600)
    payload = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert payload["results"] and payload["machine"]["cores"] >= 1
    assert (tmp_path / f"{name}_quick.md").read_text().count("|") > 10
    if name in PLOTS:
        assert (tmp_path / f"{name}_quick.png").stat().st_size > 1000
