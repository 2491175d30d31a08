import json
import os
import subprocess
import sys

import pytest

from odeflow.cli import main


def test_tasks_and_methods(capsys):
    assert main(["tasks"]) == 0
    assert "parity4" in capsys.readouterr().out
    assert main(["methods"]) == 0
    assert "kvaerno5" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["compare", "--task", "nope"], "unknown task"),
    (["compare", "--methods", "adam,nope"], "unknown method"),
])
def test_bad_names_exit_nonzero(argv, match, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err


def test_bad_number_and_unwritable_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["compare", "--target", "-1"])
    assert err.value.code == 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["compare", "--out", str(blocked / "sub")]) == 2
    assert "cannot write" in capsys.readouterr().err


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
