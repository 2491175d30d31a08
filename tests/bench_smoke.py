"""Shared by the benchmark smoke tests (imported, not collected): run a benchmark
script in its --quick settings into a folder and check what it wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: Path, name: str, out: Path, plot: bool, env: dict | None = None) -> dict:
    """Run `script --quick --out out`; its `<name>_quick.json` names the machine and
    the command and holds results, its Markdown a table, and (`plot`) its PNG is
    not empty. `env` is added to the environment. Returns the JSON payload."""
    subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], check=True, cwd=script.parent,
                   capture_output=True, timeout=600, env=os.environ | (env or {}))
    payload = json.loads((out / f"{name}_quick.json").read_text())
    assert payload["results"] and payload["machine"]["cores"] >= 1 and payload["command"]
    assert (out / f"{name}_quick.md").read_text().count("|") > 10
    if plot:
        assert (out / f"{name}_quick.png").stat().st_size > 1000
    return payload
