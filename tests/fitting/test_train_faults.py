"""Training runs that lose nothing: killed outright, resumed, bit for bit."""

import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

import killable_run
from processes import kill_when
from odeflow.fitting._checkpoint import save_checkpoint

SCRIPT = Path(killable_run.__file__)


def _leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]


def _assert_same_run(a, b):
    assert a.step == b.step and a.status == b.status
    assert a.history["loss"] == b.history["loss"]
    for x, y in zip(_leaves(a.model), _leaves(b.model), strict=True):
        np.testing.assert_array_equal(x, y)  # bitwise


def test_same_seed_is_bitwise_identical():
    _assert_same_run(killable_run.run(steps=6), killable_run.run(steps=6))


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    meta = tmp_path / "meta.json"
    kill_when([sys.executable, str(SCRIPT), str(tmp_path)],
              lambda: meta.exists() and json.loads(meta.read_text())["step"] >= 6)
    killed_at = json.loads(meta.read_text())["step"]
    assert 6 <= killed_at < killable_run.STEPS
    resumed = killable_run.run(tmp_path)
    _assert_same_run(resumed, killable_run.run())


def test_a_state_written_without_its_commit_is_ignored(tmp_path):
    """A kill between writing a new state file and committing `meta.json` leaves
    the state of a later step behind; resuming uses the committed checkpoint."""
    first = killable_run.run(tmp_path, steps=4)
    params, static = eqx.partition(first.model, eqx.is_inexact_array)
    stray = eqx.combine(jax.tree.map(lambda x: x + 1.0, params), static)
    # what save_checkpoint writes before its commit point, for a later step
    save_checkpoint(tmp_path / "elsewhere", (stray, first.opt_state), {"step": 6})
    (tmp_path / "elsewhere" / "state-000000006.eqx").rename(tmp_path / "state-000000006.eqx")
    resumed = killable_run.run(tmp_path, steps=8)
    _assert_same_run(resumed, killable_run.run(steps=8))
