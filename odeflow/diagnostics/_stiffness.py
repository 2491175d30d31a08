"""Stiffness of a gradient flow dθ/dt = -∇L(θ): its Jacobian is -∇²L, so the extreme
Hessian eigenvalues bound the step of an explicit solver (stability) and set the time
scale of the slowest mode. Everything is matrix-free: Hessian-vector products by
forward-over-reverse differentiation, never the dense Hessian."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ..flow import gradient_flow


def hvp(loss_fn, params, vector):
    """Hessian-vector product ∇²L(params)·vector (forward-over-reverse)."""
    return jax.jvp(jax.grad(loss_fn), (params,), (vector,))[1]


class Spectrum(eqx.Module):
    """Lanczos estimate of the Hessian spectrum at one point.

    - `ritz`: Ritz values (ascending); the extremes converge first.
    - `largest`, `smallest`: extreme Ritz values.
    - `stiffness_ratio`: |λ|max / |λ|min over Ritz values with |λ| above
      `1e-8 |λ|max` (near-zero directions are flat, not slow modes).
    - `num_hvps`: Hessian-vector products used.
    """

    ritz: Float[Array, " k"]
    largest: Float[Array, ""]
    smallest: Float[Array, ""]
    stiffness_ratio: Float[Array, ""]
    num_hvps: int = eqx.field(static=True)


@eqx.filter_jit
def hessian_spectrum(loss_fn, params, key, iters: int = 30) -> Spectrum:
    """Extreme Hessian eigenvalues by `iters` Lanczos steps with full
    reorthogonalisation (Golub & Van Loan, section 10.1), from a random start."""
    flat, unravel = ravel_pytree(params)
    n = flat.size
    k = min(iters, n)
    matvec = lambda v: ravel_pytree(hvp(loss_fn, params, unravel(v)))[0]
    v = jax.random.normal(key, (n,), flat.dtype)
    basis = jnp.zeros((k, n), flat.dtype).at[0].set(v / jnp.linalg.norm(v))
    alphas = jnp.zeros(k, flat.dtype)
    betas = jnp.zeros(k, flat.dtype)

    def step(i, carry):
        basis, alphas, betas = carry
        w = matvec(basis[i])
        alpha = basis[i] @ w
        mask = (jnp.arange(k) <= i)[:, None]
        w = w - (basis * mask).T @ ((basis * mask) @ w)  # full reorthogonalisation
        w = w - (basis * mask).T @ ((basis * mask) @ w)
        beta = jnp.linalg.norm(w)
        nxt = jnp.where(beta > 1e-12, w / jnp.where(beta > 0, beta, 1.0), 0.0)
        basis = jnp.where(i + 1 < k, basis.at[jnp.minimum(i + 1, k - 1)].set(nxt), basis)
        return basis, alphas.at[i].set(alpha), betas.at[i].set(beta)

    _, alphas, betas = jax.lax.fori_loop(0, k, step, (basis, alphas, betas))
    tri = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    ritz = jnp.linalg.eigvalsh(tri)
    mags = jnp.abs(ritz)
    big = mags.max()
    small = jnp.min(jnp.where(mags > 1e-8 * big, mags, jnp.inf))
    return Spectrum(ritz, ritz[-1], ritz[0], big / small, k)


def stiffness_profile(loss_fn, params_along, key, iters: int = 30) -> Spectrum:
    """`hessian_spectrum` at each point of a trajectory (params stacked on a leading
    axis, e.g. saved by a solve); returns a batched `Spectrum`."""
    count = jax.tree.leaves(params_along)[0].shape[0]
    keys = jax.random.split(key, count)
    return jax.vmap(lambda p, k: hessian_spectrum(loss_fn, p, k, iters))(params_along, keys)


class StiffnessCheck(eqx.Module):
    """Is the flow stiff at all? The same flow solved by a non-stiff and a stiff
    solver at the same loose tolerance.

    - `explicit_steps`, `implicit_steps`: steps taken (accepted + rejected).
    - `explicit_rejected`: rejected explicit steps (a sign of a stability limit).
    - `step_ratio`: explicit / implicit steps; much above 1 indicates stiffness.
    - `largest_eigenvalue`: largest Hessian eigenvalue at the start, and
      `stability_step`: the step an explicit solver's stability allows there
      (about 3.3 / λmax for Tsit5 on the negative real axis).
    - `stiff`: `step_ratio > threshold`.
    """

    explicit_steps: Array
    implicit_steps: Array
    explicit_rejected: Array
    step_ratio: Array
    largest_eigenvalue: Array
    stability_step: Array
    stiff: Array


def stiffness_check(loss_fn, params, *, t1: float, rtol: float = 1e-2, atol: float = 1e-4,
                    explicit="tsit5", implicit="kvaerno3", max_steps: int = 100_000,
                    threshold: float = 3.0, key=None) -> StiffnessCheck:
    """Solve the gradient flow to `t1` with `explicit` and `implicit` at the same
    loose tolerance and compare step counts (Shampine & Gear's practical test of
    stiffness: the explicit solver is held back by stability, not accuracy)."""
    key = jax.random.key(0) if key is None else key
    run = lambda s: gradient_flow(loss_fn, params, solver=s, rtol=rtol, atol=atol, t1=t1,
                                  max_steps=max_steps, throw=False, history=False)
    ex, im = run(explicit), run(implicit)
    spectrum = hessian_spectrum(loss_fn, params, key)
    ratio = ex.stats.num_steps / jnp.maximum(im.stats.num_steps, 1)
    return StiffnessCheck(
        explicit_steps=ex.stats.num_steps,
        implicit_steps=im.stats.num_steps,
        explicit_rejected=ex.stats.num_rejected,
        step_ratio=ratio,
        largest_eigenvalue=spectrum.largest,
        stability_step=3.3 / jnp.maximum(spectrum.largest, 1e-30),
        stiff=ratio > threshold,
    )
