"""Run by test_data_parallel.py in a fresh process with 4 simulated CPU devices
(set by the test: `processes.simulated_devices`): the same training on 4 devices
(data parallel) and on 1, and a 6-seed sweep split over 4 devices and on 1; prints
all as JSON."""

import json
import sys

import equinox as eqx
import jax
import numpy as np

import killable_run  # sets float64

if __name__ == "__main__":
    assert len(jax.devices()) == 4
    out = {}
    for devices in (4, 1):
        for per_call in (1, 4):
            r = killable_run.run(steps=8, devices=devices, steps_per_call=per_call)
            leaves = jax.tree.leaves(eqx.filter(r.model, eqx.is_inexact_array))
            out[f"{devices}/{per_call}"] = {"loss": r.history["loss"],
                                            "params": np.concatenate([np.ravel(x) for x in leaves]).tolist()}
    from test_sweep import _data, make_model

    from odeflow import fitting as T
    import optax

    for devices in (4, 1):
        r = T.sweep(make_model, T.classification_loss(), _data(), optimizer=optax.adam(1e-2), steps=4,
                    batch_size=16, seeds=[0, 1, 2, 3, 4, 5], devices=devices)
        leaves = jax.tree.leaves(r.models)
        out[f"sweep/{devices}"] = {"loss": r.losses.tolist(),
                                   "params": np.concatenate([np.ravel(x) for x in leaves]).tolist()}
    json.dump(out, sys.stdout)
