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
    """Names in any case; --resume without a journal says so; progress lines count
    runs without source paths; the compilation cache folder fills; files 0644."""
    out, cache = tmp_path / "res", tmp_path / "cache"
    cmd = [sys.executable, "-m", "odeflow", "compare", "--task", "XOR", "--methods", "GD,tsit5",
           "--seeds", "2", "--target", "0.05", "--max-steps", "2000", "--repeats", "1",
           "--out", str(out), "--cache-dir", str(cache), "--resume"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "xor.json").read_text())
    assert {r["method"] for r in data["records"]} == {"gd", "tsit5"}
    assert (out / "xor.png").exists() and (out / "xor.md").exists()
    assert "nothing to resume" in proc.stderr
    assert "runs, " in proc.stderr and "tuning tsit5 (method 2 of 2)" in proc.stderr
    assert ".py:" not in proc.stderr  # no source locations in progress lines
    assert any(cache.iterdir())
    assert all((p.stat().st_mode & 0o777) == 0o666 & ~_umask() for p in out.iterdir())
    table = (out / "xor.md").read_text()
    assert "| gd | lr=" in table and "| tsit5 | rtol=" in table and "GN products" in table


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_version_and_defaults_in_help(capsys):
    import odeflow

    for argv in (["--version"], ["compare", "--help"]):
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code == 0
    text = " ".join(capsys.readouterr().out.split())  # help wraps at the terminal's width
    assert f"odeflow {odeflow.__version__}" in text
    assert "(default: parity4)" in text and "(default: 20000)" in text
    assert "(default: grid)" in text


def test_tuning_option_reaches_compare(monkeypatch, tmp_path, capsys):
    seen = {}

    def stop(task, methods, **kwargs):
        seen.update(kwargs)
        raise ValueError("stopped before any work")

    monkeypatch.setattr("odeflow.comparison.compare", stop)
    assert main(["compare", "--tuning", "None", "--no-cache", "--out", str(tmp_path)]) == 2
    assert seen["tuning"] == "none"
    assert "stopped before any work" in capsys.readouterr().err
