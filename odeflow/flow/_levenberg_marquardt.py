"""Levenberg-Marquardt on the generalised Gauss-Newton matrix: the baseline that
pseudo-transient continuation with Gauss-Newton curvature (`solver="ptc"`,
`curvature="gauss-newton"`) is one step-size rule away from."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import PyTree

from .._checks import check_float_tree, check_positive_int
from ..solvers import SolverStats
from ..solvers import CG, AbstractLinearSolver
from ..solvers._linear import as_linear_solver
from ._curvature import CompositeLoss, check_curvature, gauss_newton_products
from ._flow import split_params
from ._result import FAILED, HORIZON_REACHED, TARGET_REACHED, FlowResult, finite_initial_loss


class _State(eqx.Module):
    flat: jax.Array
    value: jax.Array
    gradient: jax.Array
    damping: jax.Array
    nu: jax.Array
    iters: jax.Array
    counts: dict
    history: jax.Array


def levenberg_marquardt(
    loss_fn: CompositeLoss,
    params: PyTree,
    *,
    damping: float = 1e-2,
    target_loss: float | None = None,
    max_iters: int = 1000,
    linear_solver: AbstractLinearSolver | str = CG(rtol=1e-2, max_iters=50),
    throw: bool = True,
) -> FlowResult:
    """Minimise `loss_fn = output_loss(predict(params))` by Levenberg-Marquardt steps
    (G + λI) δ = -∇L on the generalised Gauss-Newton matrix G, with the damping λ
    updated by the gain ratio ρ of actual to predicted decrease (Nielsen 1999:
    accept if ρ > 0 and λ ← λ max(1/3, 1 - (2ρ - 1)³), else λ ← λν, ν ← 2ν). For a
    sum of squares this is the classic method (Levenberg 1944, Marquardt 1963); for
    cross-entropy it is the damped Gauss-Newton step of Hessian-free optimisation.

    **Arguments:**

    - `loss_fn`: a `CompositeLoss` (tasks provide `task.composite_loss`).
    - `params`: initial parameters (any pytree; float arrays are trained).
    - `damping`: initial λ.
    - `target_loss`, `max_iters`: stop at the first iterate below the target, or
      after this many iterations (accepted or not). A run also stops, with status
      `horizon_reached`, when λ exceeds 1e15: no step decreases the loss any more
      (a local minimum, or a point where the model is too flat).
    - `linear_solver`: `odeflow.solvers.CG(...)` (matrix-free on Gauss-Newton
      products; the default stops at relative residual 1e-2 or 50 products),
      `Dense()` (G formed, LU) or `GMRES(...)`; the names `"cg"`, `"dense"`,
      `"gmres"` take their defaults.
    - `throw`: raise if the loss at the initial parameters is NaN or inf; `False`
      returns a failed result instead.

    **Returns:** a `FlowResult` (`t` = iterations; `stats.nfe` gradient evaluations,
    `num_loss_evals` trial losses, `num_jvps` Gauss-Newton products,
    `num_rejected` steps whose trial point was refused).
    """
    check_curvature("gauss-newton", loss_fn)
    linear_solver = as_linear_solver(linear_solver)
    check_positive_int(max_iters, "max_iters")
    check_float_tree(params, "params")
    if not damping > 0:
        raise ValueError(f"damping must be positive, got {damping}; e.g. damping=1e-2")
    trainable, _ = split_params(params)
    dtype = jnp.result_type(*jax.tree.leaves(trainable))
    target = -jnp.inf if target_loss is None else jnp.asarray(target_loss, dtype)
    return _levenberg_marquardt(loss_fn, params, jnp.asarray(damping, dtype), target, linear_solver,
                                max_iters, throw)


MAX_DAMPING = 1e15
_COUNTS = ("nfe", "num_loss_evals", "num_jvps", "num_linear_solves", "num_jacobians",
           "num_factorizations", "num_rejected")


@eqx.filter_jit
def _levenberg_marquardt(loss_fn, params, damping, target, linear_solver, max_iters, throw):
    trainable, static = split_params(params)
    flat0, unravel = ravel_pytree(trainable)
    predict = lambda f: loss_fn.predict(eqx.combine(unravel(f), static))
    loss = CompositeLoss(predict, loss_fn.output_loss)

    def cond(s):
        stalled = ~(s.damping < MAX_DAMPING)  # no step of any length decreases the loss
        return (s.iters < max_iters) & ~(s.value < target) & jnp.isfinite(s.value) & ~stalled

    def body(s):
        _, ggn_vp = gauss_newton_products(loss, s.flat)
        # (G + λI) δ = -g  <=>  (I + G/λ) x = -g with δ = x/λ
        prepared = linear_solver.prepare(lambda v: -ggn_vp(v), s.flat.size, 1.0 / s.damping,
                                         s.flat.dtype, None)
        x, solve_work, _ = prepared.solve(-s.gradient, None)
        work = prepared.work + solve_work
        delta = x / s.damping
        predicted = -(s.gradient @ delta + 0.5 * delta @ ggn_vp(delta))
        trial = loss(s.flat + delta)
        rho = (s.value - trial) / predicted
        accept = (rho > 0) & jnp.isfinite(trial)
        flat = jnp.where(accept, s.flat + delta, s.flat)
        value, gradient = jax.lax.cond(
            accept, lambda: jax.value_and_grad(loss)(flat), lambda: (s.value, s.gradient)
        )
        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        damping = jnp.where(accept, s.damping * shrink, s.damping * s.nu)
        nu = jnp.where(accept, 2.0, 2.0 * s.nu)
        step = dict(nfe=accept, num_loss_evals=1, num_rejected=~accept,
                    **{k: getattr(work, k) for k in ("num_jacobians", "num_factorizations",
                                                     "num_linear_solves")},
                    num_jvps=work.num_jvps + 1)  # + the product of the predicted decrease
        counts = {k: s.counts[k] + jnp.asarray(step.get(k, 0), jnp.int32) for k in _COUNTS}
        history = s.history.at[s.iters + 1].set(jnp.where(accept, value, jnp.nan))
        return _State(flat, value, gradient, damping, nu, s.iters + 1, counts, history)

    value0, grad0 = jax.value_and_grad(loss)(flat0)
    value0 = finite_initial_loss(value0, value0, throw)
    counts = {k: jnp.zeros((), jnp.int32) for k in _COUNTS} | {"nfe": jnp.ones((), jnp.int32)}
    history = jnp.full((max_iters + 1,), jnp.nan, value0.dtype).at[0].set(value0)
    init = _State(flat0, value0, grad0, damping, jnp.asarray(2.0, damping.dtype),
                  jnp.zeros((), jnp.int32), counts, history)
    s = jax.lax.while_loop(cond, body, init)
    status = jnp.where(s.value < target, TARGET_REACHED, HORIZON_REACHED)
    status = jnp.where(jnp.isfinite(s.value), status, FAILED).astype(jnp.int32)
    stats = SolverStats.make(
        num_steps=s.iters, num_accepted=s.iters - s.counts["num_rejected"], **s.counts
    )
    steps = jnp.arange(max_iters + 1, dtype=history.dtype)
    return FlowResult(
        params=eqx.combine(unravel(s.flat), static),
        loss=s.value,
        t=s.iters.astype(history.dtype),
        stats=stats,
        status=status,
        loss_history=s.history,
        history_t=jnp.where(jnp.isnan(s.history), jnp.nan, steps),
    )
