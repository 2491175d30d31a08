"""The benchmark scripts (peers, sensitivity, work-precision, scaling) run end to end in
their --quick settings and write their JSON, Markdown and plots; the report step
refills README blocks from result files. The full settings run in benchmarks/."""

import importlib.util

import pytest

from bench_smoke import BENCH, run_quick
from processes import simulated_devices


@pytest.mark.parametrize("script, name, plot", [
    ("peers/spiral_demo.py", "spiral_demo", False),
    ("peers/neural_ode_solve.py", "neural_ode_solve", False),
    ("peers/odenet_throughput.py", "odenet_throughput", False),
    ("sensitivity/sensitivity.py", "sensitivity", True),
    ("work_precision/work_precision.py", "work_precision", True),
    ("scaling/devices.py", "devices", False),
    ("scaling/per_sample.py", "per_sample", False),
    ("scaling/multiple_shooting.py", "multiple_shooting", False),
    ("untuned.py", "untuned", False),
    ("minibatch.py", "minibatch", True),
])
def test_benchmark_runs(script, name, plot, tmp_path):
    # the script starts processes with several simulated devices (its own counts, the
    # rest of XLA_FLAGS kept): XLA's default code generator for them, as for the others
    env = simulated_devices(1) if name == "devices" else None
    run_quick(BENCH / script, name, tmp_path, plot, env)


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


def test_every_result_block_in_the_reports_has_a_result():
    run_all = _run_all()
    names = [m["name"] for report in run_all.REPORTS for m in run_all.BLOCK.finditer(report.read_text())]
    assert len(names) >= 8  # the benchmark reports hold the tables
    missing = [n for n in names if not (run_all.RESULTS / f"{n}.md").exists()]
    assert not missing, missing
