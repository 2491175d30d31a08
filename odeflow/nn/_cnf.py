"""Continuous normalising flows (Chen et al. 2018, section 4; FFJORD, Grathwohl et al.
2019). Data `x` at t0 flows by dz/dt = f(t, z) to `z(t1)`; with a standard normal
base density there,

    log p(x) = log N(z(t1); 0, I) + ∫_t0^t1 tr(∂f/∂z) dt,

integrated beside the state. The trace is exact (one Jacobian per sample and
evaluation, for small dimensions) or Hutchinson's estimate ε^T (∂f/∂z) ε with
Rademacher ε fixed over the solve (one Jacobian-vector product: FFJORD). Several
blocks, each with its own field, compose as FFJORD stacks them: the log-densities'
trace integrals add. Sampling integrates the flow backwards from base samples."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_positive_int
from ..solvers import SolverStats
from ._block import ODEBlock

TRACES = ("exact", "hutchinson")


class _TimeMLP(eqx.Module):
    """`f(t, z)`: an MLP on `[z, t]` with tanh activations (one sample)."""

    mlp: eqx.nn.MLP

    def __call__(self, t, z):
        return self.mlp(jnp.concatenate([z, jnp.full((1,), t, z.dtype)]))


class _FlowField(eqx.Module):
    """The augmented field on `(z (batch, dim), ∫ trace (batch,))`. `args` is the
    fixed Hutchinson probes, or `None` for the exact trace."""

    net: _TimeMLP

    def __call__(self, t, state, noise):
        z, _ = state
        f = lambda zi: self.net(t, zi)
        if noise is None:
            dz = jax.vmap(f)(z)
            trace = jax.vmap(lambda zi: jnp.trace(jax.jacfwd(f)(zi)))(z)
        else:
            dz, jv = jax.vmap(lambda zi, e: jax.jvp(f, (zi,), (e,)))(z, noise)
            trace = jnp.sum(jv * noise, axis=-1)
        return dz, trace


class CNF(eqx.Module):
    """A continuous normalising flow on `dim`-dimensional data.

    **Arguments:** `dim`; `hidden`, `depth`: the MLP of `f(t, z)`; `key`; `trace`:
    `"exact"` or `"hutchinson"`; `blocks`: how many flow blocks, each with its own
    MLP, are stacked (FFJORD uses several; default 1); `block_options`: interval,
    solver, tolerances and gradient method of the `ODEBlock`s that integrate the
    flow: data at `t0` (default 0), the base density at `t1` (default 1; `t1 < t0`
    flows backwards in time, as FFJORD writes it).

    `log_prob(x, key=...)` returns `(log p(x) (batch,), stats)`; `sample(key, n)`
    returns `(samples (n, dim), stats)`; with several blocks the stats are the
    totals over the blocks.
    """

    blocks: tuple[ODEBlock, ...]
    dim: int = eqx.field(static=True)
    trace: str = eqx.field(static=True)

    def __init__(self, dim: int, hidden: int = 64, depth: int = 3, *, key: PRNGKeyArray,
                 trace: str = "exact", blocks: int = 1, **block_options):
        check_positive_int(dim, "dim")
        check_positive_int(blocks, "blocks")
        if trace not in TRACES:
            raise ValueError(f"unknown trace {trace!r}; use one of {', '.join(TRACES)}")
        keys = [key] if blocks == 1 else list(jax.random.split(key, blocks))
        nets = [_TimeMLP(eqx.nn.MLP(dim + 1, dim, hidden, depth, activation=jnp.tanh, key=k))
                for k in keys]
        self.blocks = tuple(ODEBlock(_FlowField(net), **block_options) for net in nets)
        self.dim, self.trace = dim, trace

    def _flow(self, z, noise, to_data: bool = False):
        """Integrate `(z, ∫ trace)` through the blocks from the data to the base
        density, or back (the blocks in reverse order, each backwards in time)."""
        total, stats = None, []
        for block in (reversed(self.blocks) if to_data else self.blocks):
            if to_data:
                block = dataclasses.replace(block, t0=block.t1, t1=block.t0)
            (z, trace), block_stats = block.solve((z, jnp.zeros(z.shape[:1], z.dtype)), noise)
            total = trace if total is None else total + trace
            stats.append(block_stats)
        return (z, total), _totals(stats)

    def _dtype(self):
        return jax.tree.leaves(eqx.filter(self.blocks, eqx.is_inexact_array))[0].dtype

    def _check(self, x):
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"CNF expects a batch of shape (batch, {self.dim}), got {x.shape}")
        return x.astype(self._dtype())

    def log_prob(self, x: Float[Array, "batch dim"], *, key: PRNGKeyArray | None = None,
                 trace: str | None = None) -> tuple[Array, SolverStats]:
        """Log-density of each row of `x`; `key` draws the Hutchinson probes (needed
        for `trace="hutchinson"`); `trace` overrides the model's (e.g. evaluate a
        model trained with Hutchinson's estimator exactly)."""
        x = self._check(x)
        trace = self.trace if trace is None else trace
        if trace not in TRACES:
            raise ValueError(f"unknown trace {trace!r}; use one of {', '.join(TRACES)}")
        noise = None
        if trace == "hutchinson":
            if key is None:
                raise ValueError("trace='hutchinson' needs a key for its probe vectors: log_prob(x, key=...)")
            noise = jax.random.rademacher(key, x.shape, x.dtype)
        (z1, trace), stats = self._flow(x, noise)
        base = -0.5 * jnp.sum(z1**2, axis=-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return base + trace, stats

    def sample(self, key: PRNGKeyArray, n: int, dtype=None) -> tuple[Array, SolverStats]:
        """`n` samples: base normal draws flowed from the block's `t1` back to its `t0`."""
        check_positive_int(n, "n")
        dtype = dtype or self._dtype()
        z = jax.random.normal(key, (n, self.dim), dtype)
        (x, _), stats = self._flow(z, jnp.zeros_like(z), to_data=True)
        return x, stats

    def loss(self, x, *, key: PRNGKeyArray | None = None) -> tuple[Array, dict[str, Any]]:
        """Mean negative log-likelihood; metrics `nll`, `nfe`."""
        logp, stats = self.log_prob(x, key=key)
        nll = -jnp.mean(logp)
        return nll, {"nll": nll, "nfe": stats.nfe}



def _totals(stats: list[SolverStats]) -> SolverStats:
    """Counts added over the blocks (a count not taken in any block stays -1)."""
    if len(stats) == 1:
        return stats[0]
    return jax.tree.map(lambda *counts: jnp.stack(counts), *stats).sum(axis=0)
