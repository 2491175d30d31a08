"""Generative models of irregularly sampled time series (Chen et al. 2018, section 5):
the `LatentODE` (a recurrent encoder run backwards over the observations gives a
Gaussian posterior over the latent initial state; an ODE in latent space, decoded
pointwise, generates the series at any times) and an `RNNBaseline` fed the time
gaps. Both take one series as `times` `(T,)`, `values` `(T, d)` and a boolean
`mask` `(T,)` of the points that were observed; batches have a leading axis on
`values` and `mask`, and either share `times` `(T,)` or give each series its own
`(batch, T)` (each row increasing; pad shorter series with later times and mask
them out).
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._checks import check_positive_int
from ..solvers import SolverStats
from ._block import ODEBlock


def _check_series(times, values, mask, obs_dim):
    if times.ndim not in (1, 2) or values.ndim != 3 or mask.shape != values.shape[:2] \
            or times.shape[-1] != values.shape[1] or values.shape[2] != obs_dim \
            or (times.ndim == 2 and times.shape[0] != values.shape[0]):
        raise ValueError(f"expected times (T,) shared by the batch or (batch, T) per series, values "
                         f"(batch, T, {obs_dim}) and mask (batch, T); got {times.shape}, "
                         f"{values.shape}, {mask.shape}")


def _time_axis(times):
    """vmap's `in_axes` entry for `times`: shared (None) or one row per series (0)."""
    return 0 if times.ndim == 2 else None


def gaussian_nll(x, mean, std):
    """Negative log-density of `x` under N(mean, std²), elementwise."""
    return 0.5 * ((x - mean) / std) ** 2 + math.log(std) + 0.5 * math.log(2 * math.pi)


class _LatentField(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, z, args):
        return jax.vmap(self.mlp)(z)


class LatentODE(eqx.Module):
    """Latent ODE: GRU encoder (backwards in time, inputs the value and the gap to
    the next observation) -> `(mean, log-variance)` of the latent state `z(times[0])`
    -> latent dynamics `dz/dt = MLP(z)` (an `ODEBlock`; `block_options` choose its
    solver, tolerances and gradient method) -> decoder MLP. Trained by the ELBO
    with Gaussian observation noise `obs_noise`."""

    encoder: eqx.nn.GRUCell
    to_posterior: eqx.nn.Linear
    block: ODEBlock
    decoder: eqx.nn.MLP
    obs_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)
    obs_noise: float = eqx.field(static=True)

    def __init__(self, obs_dim: int = 2, latent_dim: int = 4, hidden: int = 20, rnn_hidden: int = 25,
                 *, key: PRNGKeyArray, obs_noise: float = 0.3, **block_options):
        for name, v in (("obs_dim", obs_dim), ("latent_dim", latent_dim), ("hidden", hidden),
                        ("rnn_hidden", rnn_hidden)):
            check_positive_int(v, name)
        if not obs_noise > 0:
            raise ValueError(f"obs_noise must be a positive standard deviation, got {obs_noise}")
        k = jax.random.split(key, 4)
        self.encoder = eqx.nn.GRUCell(obs_dim + 1, rnn_hidden, key=k[0])
        self.to_posterior = eqx.nn.Linear(rnn_hidden, 2 * latent_dim, key=k[1])
        field = eqx.nn.MLP(latent_dim, latent_dim, hidden, 2, activation=jax.nn.elu, key=k[2])
        self.block = ODEBlock(_LatentField(field), **block_options)
        self.decoder = eqx.nn.MLP(latent_dim, obs_dim, hidden, 1, activation=jax.nn.relu, key=k[3])
        self.obs_dim, self.latent_dim, self.obs_noise = obs_dim, latent_dim, float(obs_noise)

    def encode(self, times: Float[Array, " T"], values: Float[Array, "T d"],
               mask: Bool[Array, " T"]) -> tuple[Array, Array]:
        """Posterior `(mean, log_variance)` of `z(times[0])` for one series."""
        dtype = self.encoder.weight_hh.dtype
        times, values = times.astype(dtype), values.astype(dtype)
        h0 = jnp.zeros(self.encoder.hidden_size, dtype)

        def step(carry, inputs):
            h, t_next = carry
            t, x, seen = inputs
            gap = jnp.where(jnp.isfinite(t_next), t_next - t, 0.0)
            h_new = self.encoder(jnp.concatenate([x, gap[None]]), h)
            return (jnp.where(seen, h_new, h), jnp.where(seen, t, t_next)), None

        start = (h0, jnp.asarray(jnp.inf, values.dtype))
        (h, _), _ = jax.lax.scan(step, start, (times, values, mask), reverse=True)
        mean, log_var = jnp.split(self.to_posterior(h), 2)
        return mean, log_var

    def decode(self, z0: Float[Array, "batch latent"], ts: Float[Array, " T"] | Float[Array, "batch T"]
               ) -> tuple[Array, SolverStats]:
        """`(values (batch, T, d), stats)`: the latent trajectories from `z0` at
        `ts[0]` (or, with per-series times `(batch, T)`, each from its own first
        time, solved with its own steps; `stats` per series), decoded at every time
        in `ts`."""
        if ts.ndim == 2:
            one = lambda z, t: self.block.trajectory(z[None], t)
            zs, stats = jax.vmap(one)(z0, ts)  # (batch, T, 1, latent)
            return jax.vmap(jax.vmap(self.decoder))(zs[:, :, 0]), stats
        zs, stats = self.block.trajectory(z0, ts)  # (T, batch, latent)
        return jax.vmap(jax.vmap(self.decoder))(jnp.swapaxes(zs, 0, 1)), stats

    def loss(self, times, values, mask, *, key: PRNGKeyArray) -> tuple[Array, dict]:
        """Negative ELBO per series (batch mean): Gaussian negative log-likelihood of
        the observed points plus KL(q(z0) || N(0, I)). Metrics: `nll`, `kl`,
        `mse` (observed points), `nfe`."""
        _check_series(times, values, mask, self.obs_dim)
        mean, log_var = jax.vmap(self.encode, in_axes=(_time_axis(times), 0, 0))(times, values, mask)
        z0 = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)
        pred, stats = self.decode(z0, times)
        weights = mask[..., None].astype(values.dtype)
        nll = jnp.sum(weights * gaussian_nll(values, pred, self.obs_noise), axis=(1, 2))
        kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
        mse = jnp.sum(weights * (values - pred) ** 2) / (jnp.sum(weights) * self.obs_dim)
        return jnp.mean(nll + kl), {"nll": jnp.mean(nll), "kl": jnp.mean(kl), "mse": mse,
                                    "nfe": jnp.max(stats.nfe)}  # per series: what the batch waits for

    def extrapolate(self, times, values, mask, future_times) -> Array:
        """Predictions `(batch, T_future, d)` at `future_times` (after `times`; shared
        `(T_future,)` or per series `(batch, T_future)`) from the posterior mean of
        each series."""
        _check_series(times, values, mask, self.obs_dim)
        mean, _ = jax.vmap(self.encode, in_axes=(_time_axis(times), 0, 0))(times, values, mask)
        if times.ndim == 2 or future_times.ndim == 2:
            batch = values.shape[0]
            first = jnp.broadcast_to(times[..., :1], (batch, 1))
            future = jnp.broadcast_to(future_times, (batch, future_times.shape[-1]))
            pred, _ = self.decode(mean, jnp.concatenate([first, future.astype(first.dtype)], axis=1))
        else:
            pred, _ = self.decode(mean, jnp.concatenate([times[:1], future_times]))
        return pred[:, 1:]


class RNNBaseline(eqx.Module):
    """A GRU over the observations, each input the value and the gap since the
    previous observation; the prediction at a later time `t` is a readout of the
    hidden state and the gap `t - t_last`. Trained one step ahead (Gaussian
    negative log-likelihood, `obs_noise`); extrapolates autoregressively, feeding
    its predictions back."""

    cell: eqx.nn.GRUCell
    readout: eqx.nn.MLP
    obs_dim: int = eqx.field(static=True)
    obs_noise: float = eqx.field(static=True)

    def __init__(self, obs_dim: int = 2, hidden: int = 25, *, key: PRNGKeyArray, obs_noise: float = 0.3):
        check_positive_int(obs_dim, "obs_dim")
        check_positive_int(hidden, "hidden")
        k1, k2 = jax.random.split(key)
        self.cell = eqx.nn.GRUCell(obs_dim + 1, hidden, key=k1)
        self.readout = eqx.nn.MLP(hidden + 1, obs_dim, hidden, 1, activation=jax.nn.relu, key=k2)
        self.obs_dim, self.obs_noise = obs_dim, float(obs_noise)

    def _predict(self, h, gap):
        return self.readout(jnp.concatenate([h, gap[None]]))

    def _scan(self, times, values, mask):
        """Per time: the one-step-ahead prediction (valid after a first observation)
        and the final `(hidden, t_last)`."""
        dtype = self.cell.weight_hh.dtype
        times, values = times.astype(dtype), values.astype(dtype)
        h0 = jnp.zeros(self.cell.hidden_size, dtype)

        def step(carry, inputs):
            h, t_last, started = carry
            t, x, seen = inputs
            gap = jnp.where(started, t - t_last, 0.0)
            pred = self._predict(h, gap)
            h_new = self.cell(jnp.concatenate([x, gap[None]]), h)
            carry = (jnp.where(seen, h_new, h), jnp.where(seen, t, t_last), started | seen)
            return carry, (pred, started & seen)

        start = (h0, jnp.zeros((), values.dtype), jnp.asarray(False))
        (h, t_last, _), (preds, scored) = jax.lax.scan(step, start, (times, values, mask))
        return preds, scored, h, t_last

    def loss(self, times, values, mask, *, key: PRNGKeyArray | None = None) -> tuple[Array, dict]:
        """One-step-ahead Gaussian negative log-likelihood per series (batch mean).
        Metrics: `nll`, `mse` (scored points), `nfe` (0: no ODE)."""
        _check_series(times, values, mask, self.obs_dim)
        preds, scored, _, _ = jax.vmap(self._scan, in_axes=(_time_axis(times), 0, 0))(times, values, mask)
        w = scored[..., None].astype(values.dtype)
        nll = jnp.sum(w * gaussian_nll(values, preds, self.obs_noise), axis=(1, 2))
        mse = jnp.sum(w * (values - preds) ** 2) / (jnp.sum(w) * self.obs_dim)
        return jnp.mean(nll), {"nll": jnp.mean(nll), "mse": mse, "nfe": jnp.zeros((), jnp.int32)}

    def extrapolate(self, times, values, mask, future_times) -> Array:
        """Autoregressive predictions `(batch, T_future, d)` at `future_times` (shared
        `(T_future,)` or per series `(batch, T_future)`)."""
        _check_series(times, values, mask, self.obs_dim)

        future_times = future_times.astype(self.cell.weight_hh.dtype)

        def one(times, v, m, future_times):
            _, _, h, t_last = self._scan(times, v, m)

            def step(carry, t):
                h, t_last = carry
                gap = t - t_last
                pred = self._predict(h, gap)
                return (self.cell(jnp.concatenate([pred, gap[None]]), h), t), pred

            return jax.lax.scan(step, (h, t_last), future_times)[1]

        return jax.vmap(one, in_axes=(_time_axis(times), 0, 0, _time_axis(future_times)))(
            times, values, mask, future_times)


def extrapolation_rmse(model: Any, times, values, mask, future_times, future) -> Array:
    """Root mean squared error of `model.extrapolate` against the true `future`."""
    pred = model.extrapolate(times, values, mask, future_times)
    return jnp.sqrt(jnp.mean((pred - future) ** 2))
