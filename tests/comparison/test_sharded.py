"""Seed sweeps split over devices (`jax.shard_map`) equal the single-device sweep.
Runs in a fresh process: the simulated device count must be set before JAX starts."""

from pathlib import Path

import pytest
from processes import run_json, simulated_devices, untimed, untimed_tuning

from odeflow._sharding import device_count

SCRIPT = Path(__file__).with_name("sharded_run.py")


def test_compare_on_four_devices_equals_one():
    out = run_json(SCRIPT, env=simulated_devices(4))
    four, one = out["4"], out["1"]
    assert four["config"]["devices"] == 4 and one["config"]["devices"] == 1
    assert untimed_tuning(four["tuning"]) == untimed_tuning(one["tuning"])
    assert untimed(four["records"]) == untimed(one["records"])  # bit for bit, NaN-free JSON floats
    assert sum(r["reached"] for r in four["records"]) >= 8


def test_device_count_names_the_fix():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        device_count(64)
    assert device_count(None) >= 1
