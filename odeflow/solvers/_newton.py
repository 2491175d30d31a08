"""The simplified Newton iteration of implicit stages, differentiated by the implicit
function theorem.

Each implicit stage of an ESDIRK step solves k = f(ψ + c k) for the stage
derivative k, with one matrix I - c A (A the Jacobian at the start of the step)
for every iteration of every stage: Hairer & Wanner, "Solving Ordinary Differential
Equations II", section IV.8, with their stopping test (the update, extrapolated by
the observed contraction rate, below `kappa` in the scaled norm of the stage value).

The iteration runs behind `jax.lax.custom_root`, so derivatives of the stage (in
forward or reverse mode) come from the implicit function theorem at the root, with
the exact Jacobian there, rather than from differentiating the loop. The linear
solver of the step also solves those linearised systems (`tangent_solve`).
"""

from __future__ import annotations

from typing import Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from ._protocol import Work


class Newton(eqx.Module):
    """Settings of the simplified Newton iteration of implicit stages.

    - `rtol`, `atol`, `norm`: the scale of the stopping test (`atol + rtol |Y|` for
      the stage value Y) and the norm it is measured in. `Newton.from_controller()`
      (the solvers' default) leaves them to the step-size controller: diffrax hands
      over an adaptive controller's tolerances and norm, as for its own implicit
      solvers, and `odeflow.solve` its `rtol`, `atol` and `norm` with constant steps.
    - `kappa`: the iteration stops when the (extrapolated) scaled update is below it.
    - `max_iters`: iterations before the stage counts as a Newton failure; the step
      is then rejected and the controller shrinks it.
    - `divergence`: a contraction rate above this is a failure at once.
    """

    rtol: float = 1e-6
    atol: float = 1e-9
    norm: Callable = optx.rms_norm
    kappa: float = 1e-2
    max_iters: int = eqx.field(static=True, default=10)
    divergence: float = 2.0

    @classmethod
    def from_controller(cls, **kwargs) -> "Newton":
        """Newton settings whose `rtol`, `atol` and `norm` come from the step-size
        controller (diffrax's `with_stepsize_controller_tols`)."""
        return dfx.with_stepsize_controller_tols(cls)(**kwargs)


FROM_CONTROLLER = Newton.from_controller().rtol
"""diffrax's marker of a tolerance to be taken from the step-size controller."""


def newton_stage(f, prepared, psi, guess, c, newton: Newton, linear_solver):
    """Solve k = f(psi + c k) by simplified Newton with the prepared matrix I - c A.

    Returns `(k, converged, work, carried)`: the stage derivative, whether the
    iteration converged, its work (one evaluation and one linear solve per
    iteration) and the linear solver's carried state after its solves."""
    carried0 = prepared.carried
    scale = lambda k: newton.atol + newton.rtol * jnp.abs(psi + c * k)

    def iterate(residual, k0):
        def cond(carry):
            _, it, _, done, failed, _, _ = carry
            return (it < newton.max_iters) & ~done & ~failed

        def body(carry):
            k, it, previous, _, _, work, carried = carry
            dk, solve_work, carried = prepared.solve(-residual(k), carried)
            k = k + dk
            size = newton.norm(c * dk / scale(k))
            rate = size / jnp.where(previous > 0, previous, jnp.inf)
            contracted = (it >= 1) & (rate < 1) & (rate / (1 - rate) * size <= newton.kappa)
            done = (size <= newton.kappa) | contracted
            failed = ~jnp.isfinite(size) | ((it >= 1) & (rate > newton.divergence))
            work = work + solve_work + Work.of(nfe=1, num_newton_iters=1)
            return k, it + 1, size, done, failed, work, carried

        zero = jnp.zeros((), psi.dtype)
        count = jnp.zeros((), jnp.int32)
        init = (k0, count, zero, jnp.array(False), jnp.array(False), Work.of(), carried0)
        k, _, _, done, _, work, carried = jax.lax.while_loop(cond, body, init)
        return k, _as_floats((done, work, carried), psi.dtype)

    residual = lambda k: k - f(psi + c * k)
    k, aux = jax.lax.custom_root(residual, guess, iterate, linear_solver.tangent_solve, has_aux=True)
    converged, work, carried = _restore(aux, (jnp.array(True), Work.of(), carried0))
    work = work + Work.of(num_newton_failures=~converged)
    return k, converged, work, carried


def _as_floats(tree, dtype):
    """Every leaf as `dtype`: `jax.lax.custom_root` mishandles integer and boolean
    auxiliary outputs under differentiation (their tangents must be float0)."""
    return jax.lax.stop_gradient(jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree))


def _restore(tree, like):
    """Undo `_as_floats`, taking each leaf's dtype from `like`."""
    return jax.tree.map(lambda x, y: x.astype(jnp.asarray(y).dtype), tree, like)
