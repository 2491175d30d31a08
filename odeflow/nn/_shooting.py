"""Multiple shooting: fit an `ODEBlock` to a long trajectory by cutting the horizon
into segments whose initial states are free variables, solved all at once (`vmap`,
split over devices) and tied together by a continuity penalty."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .._sharding import sharded_map
from ._block import ODEBlock


def segments(ts: Array, ys: Array, length: int) -> tuple[Array, Array]:
    """`(segment_ts, segment_ys)` of shapes `(K, length)` and `(K, length, ...)`:
    consecutive windows of `length` points, each starting where the last ended
    (shared endpoints), so `len(ts) - 1` must be a multiple of `length - 1`."""
    ts, ys = jnp.asarray(ts), jnp.asarray(ys)
    n = ts.shape[0]
    if ts.ndim != 1 or ys.shape[0] != n:
        raise ValueError(f"ts must be 1-D and ys must have len(ts) = {n} rows, got {ts.shape} and {ys.shape}")
    if not isinstance(length, int) or length < 2 or (n - 1) % (length - 1):
        raise ValueError(f"length must be at least 2 with len(ts) - 1 = {n - 1} a multiple of "
                         f"length - 1, got length={length!r}")
    count = (n - 1) // (length - 1)
    index = jnp.arange(count)[:, None] * (length - 1) + jnp.arange(length)[None, :]
    return ts[index], ys[index]


class MultipleShooting(eqx.Module):
    """An `ODEBlock` and the free initial states of its segments.

    `MultipleShooting(block, segment_ys)` starts each segment at its first
    observation; train it with `shooting_loss` (any optax loop); the learned
    dynamics are `model.block` (`block.trajectory(y0, ts)` for the whole horizon).
    """

    block: ODEBlock
    starts: Array

    def __init__(self, block: ODEBlock, segment_ys: Array):
        self.block = block
        self.starts = jnp.asarray(segment_ys)[:, 0]

    def predict(self, segment_ts: Array, devices: int | None = 1) -> tuple[Array, Array]:
        """Every segment solved from its start at its times, at once: `(states, nfe)`
        of shapes `(K, length, ...)` and `(K,)`; `devices` splits the segments."""
        def one(start, ts):
            ys, stats = self.block.trajectory(start, ts)
            return ys, stats.nfe

        return sharded_map(lambda a: one(*a), devices, "spmd")((self.starts, segment_ts))


def shooting_loss(model: MultipleShooting, segment_ts: Array, segment_ys: Array, *,
                  continuity: float = 1.0, devices: int | None = 1) -> tuple[Array, dict]:
    """Mean squared error of every segment's prediction against its observations,
    plus `continuity` x the mean squared gap between each segment's end and the
    next segment's start. Returns `(loss, metrics)`."""
    predicted, nfe = model.predict(segment_ts, devices)
    fit = jnp.mean((predicted - segment_ys) ** 2)
    gap = jnp.mean((predicted[:-1, -1] - model.starts[1:]) ** 2) if len(segment_ts) > 1 else 0.0
    return fit + continuity * gap, {"fit": fit, "continuity": gap, "nfe": jnp.sum(nfe)}
