"""The latent-ODE spirals of Chen et al. (2018, section 5.1): two-dimensional
spirals, half clockwise and half counter-clockwise, each observed over a window of
a longer trajectory, with Gaussian noise; models see an irregular subsample of the
window and are scored on how they extrapolate past it."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_positive_int


@dataclasses.dataclass(frozen=True)
class Spirals:
    """A spiral data set. Times are shared by all spirals.

    - `times` `(n_points,)`: the observation window's times, starting at 0.
    - `observed` `(n_spirals, n_points, 2)`: noisy observations over the window.
    - `clean` `(n_spirals, n_points, 2)`: the same points without noise.
    - `future_times`, `future` `(n_spirals, n_points, 2)`: the next `n_points`
      points of each trajectory (no noise), for extrapolation.
    - `clockwise` `(n_spirals,)`: the direction of each spiral.
    """

    times: Array
    observed: Array
    clean: Array
    future_times: Array
    future: Array
    clockwise: Array

    def __len__(self) -> int:
        return self.observed.shape[0]

    def take(self, index) -> "Spirals":
        """The spirals at `index` (an index array or slice)."""
        return dataclasses.replace(
            self, observed=self.observed[index], clean=self.clean[index],
            future=self.future[index], clockwise=self.clockwise[index])


def _trajectories(n_total, stop, a, b):
    """The clockwise and counter-clockwise reference trajectories: radius `a + b z`
    in polar angle `z` (counter-clockwise, centred at (5, 0)) and radius
    `a + 50 b / z` (clockwise, centred at (-5, 0)), over `n_total` times on [0, stop]."""
    t = np.linspace(0.0, stop, n_total)
    z_cw = stop + 1.0 - t
    r_cw = a + b * 50.0 / z_cw
    cw = np.stack([r_cw * np.cos(z_cw) - 5.0, r_cw * np.sin(z_cw)], axis=-1)
    r_cc = a + b * t
    cc = np.stack([r_cc * np.cos(t) + 5.0, r_cc * np.sin(t)], axis=-1)
    return t, cw, cc


def spirals(key: PRNGKeyArray, *, n_spirals: int = 1000, n_points: int = 100,
            n_total: int = 1000, stop: float = 6 * np.pi, noise: float = 0.3,
            a: float = 0.0, b: float = 0.3, dtype=jnp.float32) -> Spirals:
    """Generate `n_spirals` noisy spiral windows of `n_points` equally spaced points
    (the paper's set-up: 1,000 spirals, 100 points, noise 0.3, trajectories of
    1,000 points on [0, 6 pi] as in torchdiffeq's latent-ODE example). Each window
    starts at a random point of its trajectory, early enough that the following
    `n_points` points (the extrapolation target, `future`) also exist."""
    for name, value in (("n_spirals", n_spirals), ("n_points", n_points), ("n_total", n_total)):
        check_positive_int(value, name)
    if 2 * n_points > n_total:
        raise ValueError(f"n_total ({n_total}) must be at least 2 * n_points ({2 * n_points})")
    if not noise >= 0:
        raise ValueError(f"noise must be a non-negative standard deviation, got {noise}")
    t, cw, cc = _trajectories(n_total, stop, a, b)
    k_start, k_dir, k_noise = jax.random.split(key, 3)
    start = np.asarray(jax.random.randint(k_start, (n_spirals,), 0, n_total - 2 * n_points + 1))
    clockwise = np.asarray(jax.random.bernoulli(k_dir, 0.5, (n_spirals,)))
    whole = np.where(clockwise[:, None, None], cw[None], cc[None])
    window = start[:, None] + np.arange(2 * n_points)[None]
    points = np.take_along_axis(whole, window[..., None], axis=1)
    clean, future = points[:, :n_points], points[:, n_points:]
    eps = np.asarray(jax.random.normal(k_noise, clean.shape))
    dt = t[1] - t[0]
    as_array = lambda x: jnp.asarray(x, dtype)
    return Spirals(
        times=as_array(np.arange(n_points) * dt),
        observed=as_array(clean + noise * eps),
        clean=as_array(clean),
        future_times=as_array(np.arange(n_points, 2 * n_points) * dt),
        future=as_array(future),
        clockwise=jnp.asarray(clockwise),
    )


def subsample(key: PRNGKeyArray, n_spirals: int, n_points: int, n_observed: int) -> Array:
    """Irregular observation masks `(n_spirals, n_points)` of booleans: for each
    spiral `n_observed` of the `n_points` window times, chosen at random without
    replacement (the paper's 30, 50 or 100 of 100)."""
    check_positive_int(n_observed, "n_observed")
    if n_observed > n_points:
        raise ValueError(f"n_observed ({n_observed}) cannot exceed n_points ({n_points})")
    scores = jax.random.uniform(key, (n_spirals, n_points))
    rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
    return rank < n_observed


def observed_points(times: Array, values: Array, mask: Array) -> tuple[Array, Array, Array]:
    """Each series' observed points on its own time grid: from shared `times`
    `(T,)`, `values` `(batch, T, d)` and a `mask` `(batch, T)` with the same number
    k of points observed in every series (as `subsample` draws them), returns
    `(times (batch, k), values (batch, k, d), mask (batch, k))`, the observed
    points in time order and a mask of ones. `LatentODE` and `RNNBaseline` take
    either form."""
    times, values, mask = jnp.asarray(times), jnp.asarray(values), np.asarray(mask, bool)
    if times.ndim != 1 or values.ndim != 3 or mask.shape != values.shape[:2] \
            or values.shape[1] != times.shape[0]:
        raise ValueError(f"expected times (T,), values (batch, T, d) and mask (batch, T); got "
                         f"{times.shape}, {values.shape}, {mask.shape}")
    counts = mask.sum(axis=1)
    if counts.size and (counts.min() != counts.max() or counts.min() == 0):
        raise ValueError("every series must have the same number of observed points (at least one), "
                         f"got {counts.min()} to {counts.max()}; draw the mask with subsample")
    picked = np.argsort(~mask, axis=1, kind="stable")[:, :int(counts.max(initial=0))]
    return (times[picked], jnp.take_along_axis(values, picked[..., None], axis=1),
            jnp.ones(picked.shape, bool))
