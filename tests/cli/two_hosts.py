"""Run by test_distributed.py: one process of a two-process run on this machine
(`python two_hosts.py ROLE PORT OUT`, ROLE 0 or 1; 2 simulated CPU devices each,
jax.distributed over localhost with gloo collectives), or the single-process
reference (ROLE `single`, 1 device); the test sets the device count
(`processes.simulated_devices`). Each runs `odeflow compare` through the CLI and a
3-seed `fitting.sweep` (padded to the 4 devices), and prints the sweep's results
as JSON (the last line of its output, after the CLI's table)."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from odeflow import nn
from odeflow import fitting as T
from odeflow.cli import main

COMPARE = ["compare", "--task", "xor", "--methods", "adam,scipy-lsoda", "--seeds", "3",
           "--target", "0.05", "--max-steps", "2000", "--repeats", "2", "--scipy-time-cap", "60"]


def make_model(key):
    return nn.ODENet((1, 6), 3, key=key, width=6, hidden=8, rtol=1e-4, atol=1e-6)


if __name__ == "__main__":
    role, port, out = sys.argv[1:4]
    hosts = [] if role == "single" else ["--coordinator-address", f"localhost:{port}",
                                         "--num-processes", "2", "--process-id", role]
    devices = "1" if role == "single" else "2"
    assert main(COMPARE + ["--devices", devices, "--out", out] + hosts) == 0
    assert jax.process_count() == (1 if role == "single" else 2)
    from odeflow._distributed import split_over_processes
    from odeflow.comparison._journal import Journal

    # process 0 reads the journal and shares it (here process 1's path does not
    # exist, as on a host without process 0's disk); its refusal is every process's
    saved = os.path.join(out, "journal-test.json")
    path = saved if jax.process_index() == 0 else os.path.join(out, "absent.json")
    Journal({"a": 1}, path)["tune/adam"] = {"chosen": 0.1}  # process 0 writes it
    shared = Journal({"a": 1}, path, resume=True).units
    try:
        Journal({"a": 1}, path)
        refused = ""
    except ValueError as err:
        refused = str(err).split(" holds ")[-1]
    if jax.process_index() == 0:
        os.remove(saved)
    owners = split_over_processes(range(5), lambda i: [i, jax.process_index()])
    try:  # an item that raises on one process raises on every process
        split_over_processes(range(3), lambda i: 1 // (i - 1))
        raised = ""
    except (RuntimeError, ZeroDivisionError) as err:
        raised = f"{type(err).__name__}: {err}"
    x = jax.random.normal(jax.random.key(0), (48, 1, 6))
    y = (x[:, 0, 0] > 0).astype(jnp.int32) + (x[:, 0, 1] > 0).astype(jnp.int32)
    r = T.sweep(make_model, T.classification_loss(), {"x": x, "y": y}, optimizer=optax.adam(1e-2),
                steps=4, batch_size=16, seeds=[0, 1, 2], devices=int(devices))
    params = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(r.models)])
    print()
    json.dump({"loss": r.losses.tolist(), "params": params.tolist(),
               "mesh": r.devices * jax.process_count(), "owners": owners, "raised": raised,
               "journal": shared, "refused": refused}, sys.stdout)
    print()
