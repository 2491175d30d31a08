"""Two-dimensional toy densities for normalising flows (as in the FFJORD paper's
figures), sampled by generators; nothing is stored."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_positive_int


def _moons(key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    theta = jax.random.uniform(k1, (n,)) * jnp.pi
    upper = jax.random.bernoulli(k2, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(theta), 1.0 - jnp.cos(theta))
    y = jnp.where(upper, jnp.sin(theta), 0.5 - jnp.sin(theta))
    pts = jnp.stack([x - 0.5, y - 0.25], axis=-1) * 2.0
    return pts + 0.1 * jax.random.normal(k3, pts.shape)


def _eight_gaussians(key, n):
    k1, k2 = jax.random.split(key)
    angle = jax.random.randint(k1, (n,), 0, 8) * (jnp.pi / 4)
    centres = 2.0 * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
    return centres + 0.2 * jax.random.normal(k2, (n, 2))


def _circles(key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    radius = jnp.where(jax.random.bernoulli(k1, 0.5, (n,)), 1.0, 2.0)
    angle = jax.random.uniform(k2, (n,)) * 2 * jnp.pi
    pts = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
    return pts + 0.08 * jax.random.normal(k3, pts.shape)


def _checkerboard(key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.uniform(k1, (n,), minval=-2.0, maxval=2.0)
    col = jnp.floor(x + 2.0)
    row = jax.random.randint(k2, (n,), 0, 2) * 2 + (col % 2)
    y = row - 2.0 + jax.random.uniform(k3, (n,))
    return jnp.stack([x, y], axis=-1)


def _two_spirals(key, n):
    # two interleaved arms r = θ, θ up to 3π (denser towards the centre), the second
    # the first turned by π, with noise across the arm
    k1, k2, k3, k4 = jax.random.split(key, 4)
    theta = jnp.sqrt(jax.random.uniform(k1, (n,))) * 3 * jnp.pi
    arm = jnp.where(jax.random.bernoulli(k2, 0.5, (n,)), 1.0, -1.0)
    pts = arm[:, None] * theta[:, None] * jnp.stack([-jnp.cos(theta), jnp.sin(theta)], axis=-1)
    pts = pts + arm[:, None] * 0.5 * jax.random.uniform(k3, (n, 2))
    return pts / 3 + 0.1 * jax.random.normal(k4, (n, 2))


def _pinwheel(key, n, arms=5, radial=0.3, tangential=0.1, rate=0.25):
    # arms Gaussian blobs at radius 1, each bent by an angle growing exponentially
    # with the radius
    k1, k2 = jax.random.split(key)
    arm = jax.random.randint(k1, (n,), 0, arms)
    r, s = (jax.random.normal(k2, (n, 2)) * jnp.array([radial, tangential]) + jnp.array([1.0, 0.0])).T
    angle = arm * (2 * jnp.pi / arms) + rate * jnp.exp(r)
    c, si = jnp.cos(angle), jnp.sin(angle)
    return 1.7 * jnp.stack([c * r - si * s, si * r + c * s], axis=-1)


TOY_DENSITIES = {"moons": _moons, "eight_gaussians": _eight_gaussians, "circles": _circles,
                 "checkerboard": _checkerboard, "two_spirals": _two_spirals, "pinwheel": _pinwheel}


def toy_density(name: str, key: PRNGKeyArray, n: int, dtype=jnp.float32) -> Array:
    """`n` samples `(n, 2)` of the named toy density: `"moons"`, `"eight_gaussians"`,
    `"circles"`, `"checkerboard"`, `"two_spirals"` or `"pinwheel"` (each roughly
    within [-3.5, 3.5]², the last four as in the FFJORD paper's figures)."""
    if name not in TOY_DENSITIES:
        raise ValueError(f"unknown toy density {name!r}; use one of {', '.join(TOY_DENSITIES)}")
    check_positive_int(n, "n")
    return TOY_DENSITIES[name](key, n).astype(dtype)
