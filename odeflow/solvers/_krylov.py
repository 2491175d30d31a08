"""Conjugate gradients that report their work: matrix-free linear solves on
Jacobian- (Hessian-) vector products."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cg(matvec, b, *, rtol: float, max_iters: int):
    """Solve A x = b for symmetric A by conjugate gradients from x = 0.

    Stops when ||r|| <= rtol ||b||, after `max_iters` products, or on a direction of
    non-positive curvature (pᵀAp <= 0), returning the iterate reached so far or, if
    that happens at once, `b` itself (truncated CG as in Hessian-free optimisation;
    Steihaug 1983, Martens 2010). Returns `(x, matvecs, converged)`.
    """
    tol2 = (rtol * jnp.linalg.norm(b)) ** 2

    def cond(carry):
        _, r, _, rr, it, stop = carry
        return (rr > tol2) & (it < max_iters) & ~stop

    def body(carry):
        x, r, p, rr, it, _ = carry
        ap = matvec(p)
        curvature = p @ ap
        bad = ~(curvature > 0)
        alpha = rr / jnp.where(bad, 1.0, curvature)
        x_new = x + alpha * p
        r_new = r - alpha * ap
        rr_new = r_new @ r_new
        p_new = r_new + (rr_new / rr) * p
        keep = lambda new, old: jnp.where(bad, old, new)
        x_out = jnp.where(bad & (it == 0), b, keep(x_new, x))
        return x_out, keep(r_new, r), keep(p_new, p), keep(rr_new, rr), it + 1, bad

    zero = jnp.zeros_like(b)
    init = (zero, b, b, b @ b, jnp.zeros((), jnp.int32), jnp.array(False))
    x, _, _, rr, iters, stop = jax.lax.while_loop(cond, body, init)
    return x, iters, (rr <= tol2) & ~stop
