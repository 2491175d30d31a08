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
dropped from the result.

In a run of several processes (`jax.distributed.initialize`), `across_hosts=True`
spreads the mesh over the first `devices` devices of every process: each process
holds the same whole batch, builds its shards of a global array from it
(`jax.make_array_from_callback`), and every process receives the whole result
(`multihost_utils.process_allgather`). That needs concrete inputs, so runs that
are traced by the user's own `jit` (multiple shooting, data-parallel training)
keep to the process's own devices."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
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


def batch_sharding(devices: int, across_hosts: bool = False) -> NamedSharding:
    """A leading ("batch") axis split over the first `devices` local devices, or over
    the first `devices` of every process's devices (`across_hosts`)."""
    if across_hosts and jax.process_count() > 1:
        per_process = [sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)
                       for p in range(jax.process_count())]
        short = [p for p, ds in enumerate(per_process) if len(ds) < devices]
        if short:
            raise ValueError(f"process(es) {short} have fewer than the {devices} devices asked "
                             "for; pass devices= at most the smallest local device count")
        chosen = [d for ds in per_process for d in ds[:devices]]
    else:
        chosen = jax.local_devices()[:devices]
    return NamedSharding(Mesh(np.array(chosen), ("batch",)), PartitionSpec("batch"))


MODES = ("independent", "spmd")


def sharded_map(fn: Callable, devices: int | None = None, mode: str = "independent",
                across_hosts: bool = False) -> Callable:
    """`batch -> vmap(fn)(batch)` with the leading axis split over `devices` local
    devices (see the module's note on `mode`), and over every process's with
    `across_hosts` in a multi-process run, compiled once per input shape: keep the
    returned function to call it again."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    n = device_count(devices)
    hosts = across_hosts and jax.process_count() > 1
    if n == 1 and not hosts:
        return jax.vmap(fn)
    split = batch_sharding(n, hosts)
    if mode == "independent":
        # check_vma=False: the runs' while loops carry per-device and replicated
        # values together; every output is per-device
        sharded = jax.jit(jax.shard_map(jax.vmap(fn), mesh=split.mesh, in_specs=split.spec,
                                        out_specs=split.spec, check_vma=False))
    else:
        sharded = jax.jit(lambda b: jax.vmap(fn)(jax.lax.with_sharding_constraint(b, split)))
    total = split.mesh.size

    def run(batch):
        size = len(jax.tree.leaves(batch)[0])
        pad = (-size) % total
        xp = np if hosts else jnp  # across hosts: concrete arrays each process holds whole
        padded = jax.tree.map(lambda x: xp.concatenate([x, xp.repeat(x[-1:], pad, axis=0)]),
                              jax.tree.map(xp.asarray, batch))
        if not hosts:
            return jax.tree.map(lambda x: x[:size], sharded(padded))
        # each process builds its own devices' shards of the global array
        glob = jax.tree.map(
            lambda x: jax.make_array_from_callback(x.shape, split, lambda index: x[index]), padded)
        out = multihost_utils.process_allgather(sharded(glob), tiled=True)
        return jax.tree.map(lambda x: jnp.asarray(x[:size]), out)

    return run


def map_over_devices(fn: Callable, batch, devices: int | None = None, mode: str = "independent",
                     across_hosts: bool = False):
    """`vmap(fn)(batch)` with the leading axis of `batch` split over `devices` (for
    one call; `sharded_map` keeps the compiled function)."""
    return sharded_map(fn, devices, mode, across_hosts)(batch)
