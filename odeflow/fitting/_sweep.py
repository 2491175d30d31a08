"""`sweep`: one training run per seed, all at once: the runs stacked on a leading
axis, vmapped, and split over devices (`jax.sharding`, SPMD)."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PyTree

from .._checks import check_positive_int
from .._sharding import device_count, sharded_map
from ._loop import LossFn, _Batches, _check_data, _chunk_inputs, _step_function, training_arrays


@dataclasses.dataclass
class SweepResult:
    """`models`: the final model of each seed, stacked on a leading axis (`model(i)`
    takes seed `i`'s); `losses`: `(seeds, steps)` minibatch losses (a run whose loss
    turns non-finite keeps its last good model; its losses show where); `seeds`,
    `devices`."""

    models: PyTree
    losses: np.ndarray
    seeds: list[int]
    devices: int
    _static: PyTree = dataclasses.field(repr=False, default=None)

    def model(self, i: int) -> PyTree:
        return eqx.combine(jax.tree.map(lambda x: x[i], self.models), self._static)


def sweep(make_model: Callable[[jax.Array], PyTree], loss_fn: LossFn, data: dict, *,
          optimizer: optax.GradientTransformation, steps: int, batch_size: int,
          seeds: Sequence[int], devices: int | None = None) -> SweepResult:
    """Train `make_model(jax.random.key(seed))` for every seed, as `fit` would with
    `key=jax.random.key(seed)`, `count_nfe=False` and all `steps` in one call: the
    same minibatch order and keys per seed. The runs are vmapped and the seed axis
    is split over `devices` (default: all local devices), of every process in a run
    of several (`jax.distributed.initialize`), each of which receives all results;
    the results equal the one-device sweep, and each seed's equals its own `fit`
    within round-off."""
    check_positive_int(steps, "steps")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass a list of integer seeds")
    data = training_arrays(data)
    n = _check_data(data, batch_size)
    devices = device_count(devices)
    data = {k: jnp.asarray(v) for k, v in data.items()}  # on the device once
    models, indices, keys = [], [], []
    for seed in seeds:
        key = jax.random.key(seed)
        data_key, step_key = jax.random.split(key)
        params, static = eqx.partition(make_model(key), eqx.is_inexact_array)
        models.append(params)
        seed_indices, seed_keys = _chunk_inputs(_Batches(data, n, batch_size, data_key), step_key, 0, steps)
        indices.append(seed_indices)
        keys.append(jax.random.key_data(seed_keys))
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *models)
    _, chunk = _step_function(loss_fn, optimizer, chunked=True)

    def one(run):
        p, idx, key_data = run
        model = eqx.combine(p, static)
        opt_state = optimizer.init(jax.tree.leaves(p))
        model, _, losses, _ = chunk(model, opt_state, data, idx, jax.random.wrap_key_data(key_data))
        return eqx.filter(model, eqx.is_inexact_array), losses

    final, losses = sharded_map(one, devices, "spmd", across_hosts=True)((params, jnp.asarray(np.stack(indices)), jnp.stack(keys)))
    return SweepResult(final, np.asarray(losses), seeds, devices, static)
