"""Data-parallel training and seed sweeps on 4 simulated CPU devices equal one
device within float round-off. Fresh process:
the device count is fixed when JAX starts."""

from pathlib import Path

import numpy as np
import pytest

import killable_run
from processes import run_json, simulated_devices

SCRIPT = Path(__file__).with_name("sharded_train.py")


def test_four_devices_equal_one():
    out = run_json(SCRIPT, env=simulated_devices(4))
    for per_call in (1, 4):
        four, one = out[f"4/{per_call}"], out[f"1/{per_call}"]
        np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-12)
        np.testing.assert_allclose(four["params"], one["params"], rtol=1e-10, atol=1e-12)
    assert out["1/1"]["loss"][-1] < out["1/1"]["loss"][0]  # it trained
    # the seed sweep: split over 4 devices (6 seeds padded to 8)
    np.testing.assert_allclose(out["sweep/4"]["loss"], out["sweep/1"]["loss"], rtol=1e-12)
    np.testing.assert_allclose(out["sweep/4"]["params"], out["sweep/1"]["params"], rtol=1e-10, atol=1e-12)


def test_more_devices_than_there_are_names_the_fix():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        killable_run.run(steps=1, devices=64)
