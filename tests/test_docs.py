"""The documentation site builds with `mkdocs build --strict` (every page, link,
API reference entry and notebook), and the README's quickstart matches the code."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def test_the_documentation_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    for page in ["index.html", "gradient_flow/index.html", "neural_odes/index.html", "solvers/index.html",
                 "comparisons/index.html", "scaling/index.html", "benchmarks/index.html",
                 "notebooks/01_spiral_neural_ode/index.html"]:
        assert (site / page).stat().st_size > 5000, page
    api = (site / "api" / "index.html").read_text()
    for name in ("odeflow.solve", "odeflow.gradient_flow", "odeflow.optimize", "odeflow.fit", "odeflow.compare"):
        assert f'id="{name}"' in api, name
    assert 'id="odeflow.nn.ODEBlock"' in (site / "api" / "nn" / "index.html").read_text()


def test_the_readme_is_a_short_guide_whose_quickstart_is_in_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 300
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    assert "odeflow.solve(" in blocks[0] and "odeflow.gradient_flow(" in blocks[1] and "odeflow.fit(" in blocks[2]
    index = (ROOT / "docs" / "index.md").read_text()
    assert all(block in index for block in blocks[:3])
    assert "pip install -e . && odeflow compare" in readme and 'pip install -e ".[test]" && pytest' in readme


def test_the_readme_quickstart_runs_as_written(tmp_path):
    """The three quickstart blocks, run in one fresh process from a scratch folder,
    print what the README says they print."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[:3]
    script = "\n".join(f"print('== block {i}')\n{block}" for i, block in enumerate(blocks))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    y = [float(v) for v in re.search(r"== block 0\n\[([^\]]+)\]", out).group(1).split()]
    assert np.allclose(y, [1.78659686e-02, 7.27477117e-08, 9.82133959e-01], rtol=1e-4), y  # Robertson
    assert "SolverStats(" in out
    flow, adam = re.findall(r"^(gradient flow|adam) +(\w+): loss ([\d.e+-]+) after (\d+) gradients$", out, re.M)
    assert flow[1] == adam[1] == "target_reached"
    accuracy = float(re.search(r"'test_accuracy': ([\d.]+)", out).group(1))
    assert accuracy > 0.9, out
    assert "step 300/300" in proc.stderr  # the progress lines
