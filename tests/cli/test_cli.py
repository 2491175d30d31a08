import json
import os
import subprocess
import sys

from odeflow.cli import main


def test_tasks_and_methods(capsys):
    assert main(["tasks"]) == 0
    assert "parity4" in capsys.readouterr().out
    assert main(["methods"]) == 0
    assert "kvaerno5" in capsys.readouterr().out


def test_compare_smoke_run(tmp_path):
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "odeflow", "compare", "--task", "xor", "--methods", "gd,tsit5",
           "--seeds", "2", "--target", "0.05", "--max-steps", "2000", "--repeats", "1",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "xor.json").read_text())
    assert {r["method"] for r in data["records"]} == {"gd", "tsit5"}
    assert (out / "xor.png").exists() and (out / "xor.md").exists()
