"""The benchmark scripts (peers, sensitivity, work-precision) run end to end in
their --quick settings and write their JSON, Markdown and plots; the report step
refills README blocks from result files. The full settings run in benchmarks/."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script, name, plot", [
    ("peers/spiral_demo.py", "spiral_demo", False),
    ("peers/neural_ode_solve.py", "neural_ode_solve", False),
    ("peers/odenet_throughput.py", "odenet_throughput", False),
    ("sensitivity/sensitivity.py", "sensitivity", True),
    ("work_precision/work_precision.py", "work_precision", True),
])
def test_benchmark_runs(script, name, plot, tmp_path):
    path = BENCH / script
    subprocess.run([sys.executable, str(path), "--quick", "--out", str(tmp_path)], check=True, cwd=path.parent,
                   capture_output=True, timeout=600)
    payload = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert payload["results"] and payload["machine"]["cores"] >= 1 and payload["command"]
    assert (tmp_path / f"{name}_quick.md").read_text().count("|") > 10
    if plot:
        assert (tmp_path / f"{name}_quick.png").stat().st_size > 1000


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_refills_readme_blocks(tmp_path):
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "spiral_demo.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    readme = ("intro\n<!-- results: peers/spiral_demo -->\nold table\n<!-- /results -->\nmiddle\n"
              "<!-- results: peers/missing -->\nkept\n<!-- /results -->\n")
    text, done = _run_all().update_readme(readme, tmp_path)
    assert done == ["peers/spiral_demo"]
    assert "old table" not in text and "| 1 | 2 |" in text and "kept" in text
    assert text.startswith("intro\n") and "middle\n" in text


def test_every_result_block_in_readme_has_a_result():
    run_all = _run_all()
    readme = (BENCH.parent / "README.md").read_text()
    names = [m["name"] for m in run_all.BLOCK.finditer(readme)]
    missing = [n for n in names if not (run_all.RESULTS / f"{n}.md").exists()]
    assert not missing, missing
