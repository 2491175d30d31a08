"""Comparisons that lose nothing: killed and resumed, failing methods recorded."""

import json
import sys

import jax
import jax.numpy as jnp
import pytest

from odeflow.cli import main
from odeflow.comparison import compare
from odeflow.problems import Task
from processes import kill_when, untimed, untimed_tuning

OPTIONS = dict(task="xor", methods="gd,tsit5", seeds=2, target=0.05, max_steps=2000, repeats=2)


def _argv(out, **extra):
    o = OPTIONS | extra
    return ["compare", "--task", o["task"], "--methods", o["methods"], "--seeds", str(o["seeds"]),
            "--target", str(o["target"]), "--max-steps", str(o["max_steps"]),
            "--repeats", str(o["repeats"]), "--out", str(out)]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    out = tmp_path / "killed"
    journal = out / "xor.progress.json"
    # killed once the first method is tuned
    kill_when([sys.executable, "-m", "odeflow", *_argv(out)],
              lambda: journal.exists() and any(k.startswith("tune/") for k in
                                               json.loads(journal.read_text())["units"]))
    assert not (out / "xor.json").exists()
    units = json.loads(journal.read_text())["units"]
    assert not any(k.startswith("run/") for k in units)  # killed part-way
    # without --resume the journal is not overwritten
    assert main(_argv(out)) == 2
    assert json.loads(journal.read_text())["units"] == units
    # other settings cannot resume it
    assert main(_argv(out, seeds=3) + ["--resume"]) == 2
    assert main(_argv(out) + ["--resume"]) == 0
    assert not journal.exists()
    resumed = json.loads((out / "xor.json").read_text())
    whole = compare(OPTIONS["task"], OPTIONS["methods"].split(","), seeds=OPTIONS["seeds"],
                    target=OPTIONS["target"], max_steps=OPTIONS["max_steps"],
                    repeats=OPTIONS["repeats"])
    assert untimed(resumed["records"]) == untimed(json.loads(json.dumps(whole.records)))
    assert untimed_tuning(resumed["tuning"]) == untimed_tuning(json.loads(json.dumps(whole.tuning)))


def _quartic_task():
    """Loss mean(w^4): gradient descent with a large step overflows to inf/NaN."""
    x = jnp.ones((4, 1))
    return Task(
        name="quartic", description="w^4", data={"x": x, "y": x},
        init_fn=lambda key: {"w": 1.0 + 0.1 * jax.random.uniform(key, (1,), jnp.float64)},
        apply_fn=lambda p, x: x * p["w"], loss_fn=lambda out, y: jnp.mean(out**4),
        accuracy_fn=lambda out, y: jnp.mean(jnp.abs(out) < 1.0))


def test_divergent_and_raising_methods_are_recorded_and_the_rest_go_on():
    task = _quartic_task()
    # gd at step 10 diverges; euler with a negative step raises while tuning
    result = compare(task, ["gd", "euler", "tsit5"], seeds=2, target=1e-2, max_steps=500,
                     repeats=1, grids={"gd": [10.0], "euler": [-0.1]})
    by = {(r["method"], r["seed"]): r for r in result.records}
    for seed in (0, 1):
        gd, euler, tsit5 = by["gd", seed], by["euler", seed], by["tsit5", seed]
        assert gd["status"] == "failed" and "NaN" in gd["reason"], gd
        assert euler["status"] == "failed" and "t1" in euler["reason"], euler
        assert tsit5["reached"] and tsit5["reason"] == ""


def test_journal_in_python(tmp_path):
    path = tmp_path / "j.json"
    first = compare("xor", ["gd"], seeds=1, target=0.05, max_steps=2000, repeats=1, journal=path)
    with pytest.raises(ValueError, match="resume"):
        compare("xor", ["gd"], seeds=1, target=0.05, max_steps=2000, repeats=1, journal=path)
    again = compare("xor", ["gd"], seeds=1, target=0.05, max_steps=2000, repeats=1, journal=path,
                    resume=True)
    assert again.records == first.records  # everything was in the journal, times included
    path.write_text("{truncated")
    with pytest.raises(ValueError, match="delete it"):
        compare("xor", ["gd"], seeds=1, target=0.05, max_steps=2000, repeats=1, journal=path,
                resume=True)
