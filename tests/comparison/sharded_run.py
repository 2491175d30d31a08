"""Run by test_sharded.py in a fresh process with 4 simulated CPU devices (set by
the test: `processes.simulated_devices`): a compare whose vmapped seeds are split
over 4 devices, and the same on 1 device; prints both results as JSON."""

import json
import sys

import jax

jax.config.update("jax_enable_x64", True)

from odeflow.comparison import compare  # noqa: E402

if __name__ == "__main__":
    assert len(jax.devices()) == 4, jax.devices()
    out = {}
    for devices in (4, 1):
        res = compare("xor", ["adam", "tsit5"], seeds=6, target=5e-2, max_steps=2000,
                      repeats=1, vmap_seeds=True, devices=devices)
        out[devices] = {"tuning": res.tuning, "config": res.config,
                        "records": res.records}
    json.dump(out, sys.stdout)
