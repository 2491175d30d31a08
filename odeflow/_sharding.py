"""Independent runs batched with `vmap` and split over devices with `jax.sharding`.

The leading (seed) axis is split over a 1-D device mesh in one of two ways:

- `"independent"` (`jax.shard_map`): each device runs `vmap(fn)` on its share, so
  its loops stop when its own runs are done, with no communication. Used for the
  gradient-flow sweeps of `compare`. It cannot differentiate through a diffrax
  solve (equinox's closure conversion inside the adjoint rejects the argument
  types shard_map gives), so
- `"spmd"` (a sharding constraint on the batch; XLA's SPMD partitioner) serves
  runs that do, such as training sweeps and multiple shooting; there the
  vectorised loops agree across devices on when all runs are done.

Both equal the single-device `vmap` (tested on 4 simulated CPU devices,
`XLA_FLAGS=--xla_force_host_platform_device_count=4`). The axis is padded with
copies of its last entry up to a multiple of the device count; the copies are
dropped from the result."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def device_count(devices: int | None) -> int:
    """The devices to use: all local ones (`None`) or the first `devices`."""
    available = len(jax.local_devices())
    if devices is None:
        return available
    if isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices <= available:
        raise ValueError(f"devices must be an integer from 1 to the {available} local device(s), "
                         f"got {devices!r}; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
                         "(set before JAX starts) simulates N devices")
    return devices


def batch_sharding(devices: int) -> NamedSharding:
    """A leading ("batch") axis split over the first `devices` local devices."""
    mesh = Mesh(np.array(jax.local_devices()[:devices]), ("batch",))
    return NamedSharding(mesh, PartitionSpec("batch"))


MODES = ("independent", "spmd")


def sharded_map(fn: Callable, devices: int | None = None, mode: str = "independent") -> Callable:
    """`batch -> vmap(fn)(batch)` with the leading axis split over `devices` (see
    the module's note on `mode`), compiled once per input shape: keep the returned
    function to call it again."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    n = device_count(devices)
    if n == 1:
        return jax.vmap(fn)
    split = batch_sharding(n)
    if mode == "independent":
        # check_vma=False: the runs' while loops carry per-device and replicated
        # values together; every output is per-device
        sharded = jax.jit(jax.shard_map(jax.vmap(fn), mesh=split.mesh, in_specs=split.spec,
                                        out_specs=split.spec, check_vma=False))
    else:
        sharded = jax.jit(lambda b: jax.vmap(fn)(jax.lax.with_sharding_constraint(b, split)))

    def run(batch):
        size = len(jax.tree.leaves(batch)[0])
        pad = (-size) % n
        padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), batch)
        return jax.tree.map(lambda x: x[:size], sharded(padded))

    return run


def map_over_devices(fn: Callable, batch, devices: int | None = None, mode: str = "independent"):
    """`vmap(fn)(batch)` with the leading axis of `batch` split over `devices` (for
    one call; `sharded_map` keeps the compiled function)."""
    return sharded_map(fn, devices, mode)(batch)
