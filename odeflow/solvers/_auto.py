"""Automatic stiff/non-stiff switching in the spirit of LSODA (Petzold 1983).

Start with an explicit method; when its step size is bounded by stability rather
than accuracy, switch to an implicit one, and back when the problem relaxes.

- Explicit → implicit: the Shampine-Hairer test. Tsit5's last two stages are both
  at c = 1, so ρ = ‖f(y1) - f(Y6)‖ / ‖y1 - Y6‖ estimates the dominant eigenvalue
  magnitude at no extra cost (Hairer & Wanner, "Solving ODEs II", section IV.2,
  as in DOPRI5). If hρ exceeds 90% of the method's real stability limit (3.5 for
  Tsit5) on `switch_after` accepted steps, with no run of 6 steps below it in
  between (DOPRI5's rule), the step is stability-bound.
- Implicit → explicit: one power-iteration step per implicit step, on
  Jacobian-vector products with the vector carried between steps, estimates ρ
  (one product per step). If hρ is below half the explicit stability limit on
  `relax_after` accepted steps (same counting), the explicit method could take
  the same steps, so it takes over.

The explicit steps are odeflow's Tsit5 (`"tsit5"`), bit for bit. The implicit method is Kvaerno
3(2) with a dense Jacobian for small states and Newton-Krylov (GMRES) above 100
unknowns by default. The step-size controller sees one error order, Tsit5's (diffrax
passes a solver's error order once per solve, and a per-step order would make
counting change the steps); on the implicit steps that makes step-size changes
more cautious, not less accurate.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._esdirk import ESDIRK
from ._erk import ERK
from ._interpolation import PolynomialInterpolation
from ._linear import AutoLinearSolver
from ._linearize import field, step_control
from ._newton import Newton
from ._protocol import AbstractCountedSolver, Attempt, Work
from ._rosenbrock import ROS2

EXPLICIT, IMPLICIT = 0, 1
TSIT5_STABILITY = 3.5  # |R(z)| <= 1 on [-3.5, 0]
RESET_AFTER = 6  # consecutive verdicts against that clear the votes (DOPRI5)
_TSIT5 = ERK.of(dfx.Tsit5)
_Y6 = np.asarray(dfx.Tsit5.tableau.a_lower[4])  # the sixth stage from the first five


class _State(eqx.Module):
    mode: jax.Array  # EXPLICIT or IMPLICIT for the next step
    explicit: object  # Tsit5's state
    implicit: object  # the implicit method's state
    votes: jax.Array  # accepted steps with a verdict for the other method
    against: jax.Array  # consecutive accepted steps with a verdict against it
    vector: jax.Array  # power-iteration vector (flat, unit norm)
    switches: jax.Array


class _SwitchInterpolation(dfx.AbstractLocalInterpolation):
    """Tsit5's interpolant after an explicit step, the implicit method's polynomial
    after an implicit one."""

    t0: jax.Array
    t1: jax.Array
    explicit: dfx.AbstractLocalInterpolation
    implicit: PolynomialInterpolation
    was_explicit: jax.Array

    def __init__(self, *, t0, t1, y0, y1, k, coeffs, was_explicit):
        self.t0, self.t1 = t0, t1
        self.explicit = dfx.Tsit5.interpolation_cls(t0=t0, t1=t1, y0=y0, y1=y1, k=k)
        self.implicit = PolynomialInterpolation(t0=t0, t1=t1, y0=y0, coeffs=coeffs)
        self.was_explicit = was_explicit

    def evaluate(self, t0, t1=None, left: bool = True):
        a, b = self.explicit.evaluate(t0, t1, left), self.implicit.evaluate(t0, t1, left)
        return jax.tree.map(lambda x, y: jnp.where(self.was_explicit, x, y), a, b)


class AutoSwitch(AbstractCountedSolver, dfx.AbstractImplicitSolver):
    """Tsit5 while the problem is non-stiff, an implicit method while it is stiff,
    switching automatically both ways. Registered as `"auto"`, the default solver
    of `odeflow.solve`, `odeflow.gradient_flow` and `odeflow compare`.

    **Arguments:**

    - `switch_after`: stability-bound explicit steps before switching.
    - `relax_after`: non-stiff implicit steps before switching back.
    - `implicit`: the stiff method, an `ESDIRK` (default: Kvaerno 3(2) with
      `AutoLinearSolver()`: dense up to 100 unknowns, GMRES above; accurate, for
      general ODEs) or a `ROS2` (two linear solves per step and no Newton
      iteration: gradient flows at loose tolerances).
    - `report`: set by `odeflow.solve`.

    `SolverStats.num_stiff_steps` counts steps attempted implicitly and
    `num_switches` the switches made (read from the final solver state).
    """

    switch_after: int = 5
    relax_after: int = 10
    implicit: ESDIRK | ROS2 = ESDIRK.kvaerno3(linear_solver=AutoLinearSolver())
    report: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = _SwitchInterpolation

    def __check_init__(self):
        if not isinstance(self.implicit, (ESDIRK, ROS2)):
            raise TypeError(
                f"implicit must be an odeflow ESDIRK or ROS2 solver, got "
                f"{type(self.implicit).__name__}; e.g. ESDIRK.kvaerno3() or ROS2()"
            )

    @property
    def root_finder(self) -> Newton:
        """The implicit method's Newton settings (diffrax hands them the controller's
        tolerances); a Rosenbrock method has none."""
        return getattr(self.implicit, "root_finder", Newton())

    @property
    def root_find_max_steps(self) -> int:
        return self.root_finder.max_iters

    def order(self, terms):
        return 5  # of the method it starts with

    def error_order(self, terms):
        return 5

    def init(self, terms, t0, t1, y0, args):
        flat, _ = ravel_pytree(y0)
        vector = jnp.sin(jnp.arange(1, flat.size + 1, dtype=flat.dtype))  # generic start
        zero = jnp.zeros((), jnp.int32)
        return _State(zero, _TSIT5.init(terms, t0, t1, y0, args),
                      self.implicit.init(terms, t0, t1, y0, args), zero, zero,
                      vector / jnp.linalg.norm(vector), zero)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def final_stats(self, solver_state) -> dict:
        return {"num_switches": solver_state.switches}

    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump):
        state, degree = solver_state, self.implicit.dense_degree
        return jax.lax.cond(
            state.mode == EXPLICIT,
            lambda: self._explicit_step(terms, t0, t1, y0, args, state, made_jump, degree),
            lambda: self._implicit_step(terms, t0, t1, y0, args, state, degree),
        )

    def _verdict(self, state, for_other, mode_if_switch, needed):
        """Count verdicts for the other method as DOPRI5 does: the votes are cleared
        only by `RESET_AFTER` consecutive verdicts against (so a step size that
        hovers at the stability limit, some steps just below it, still adds up);
        switch after `needed` votes. Returns `(mode, votes, against, switches)`."""
        votes = jnp.where(for_other, state.votes + 1, state.votes)
        against = jnp.where(for_other, 0, state.against + 1)
        votes = jnp.where(against >= RESET_AFTER, 0, votes)
        switch = votes >= needed
        mode = jnp.where(switch, mode_if_switch, state.mode)
        zero = jnp.zeros_like(votes)
        return (mode, jnp.where(switch, zero, votes), jnp.where(switch, zero, against),
                state.switches + switch)

    def _explicit_step(self, terms, t0, t1, y0, args, state, made_jump, degree):
        out = _TSIT5.attempt(terms, t0, t1, y0, args, state.explicit, made_jump)
        k = out.dense_info["k"]  # stage increments h f_i
        flat = jax.vmap(lambda x: ravel_pytree(x)[0])(k)
        y1_flat, unravel = ravel_pytree(out.y1)
        y6 = ravel_pytree(y0)[0] + jnp.tensordot(jnp.asarray(_Y6, flat.dtype), flat[:5], axes=1)
        dy = jnp.linalg.norm(y1_flat - y6)
        h_rho = jnp.linalg.norm(flat[6] - flat[5]) / jnp.where(dy > 0, dy, jnp.inf)
        stiff = jax.lax.stop_gradient(h_rho) > 0.9 * TSIT5_STABILITY
        mode, votes, against, switches = self._verdict(state, stiff, IMPLICIT, self.switch_after)
        new_state = _State(mode, out.solver_state, state.implicit, votes,
                           against, state.vector, switches)
        coeffs = jax.vmap(unravel)(jnp.zeros((degree, y1_flat.size), y1_flat.dtype))
        dense_info = dict(y0=y0, y1=out.y1, k=k, coeffs=coeffs, was_explicit=jnp.array(True))
        return Attempt(out.y1, out.error, dense_info, new_state, out.result, out.work)

    def _implicit_step(self, terms, t0, t1, y0, args, state, degree):
        out = self.implicit.attempt(terms, t0, t1, y0, args, state.implicit, False)
        flat0, unravel = ravel_pytree(y0)
        h = jnp.asarray(step_control(terms, t0, t1), flat0.dtype)
        f = field(terms, args, unravel, flat0.dtype)
        _, jv = jax.jvp(lambda y: f(t0, y), (flat0,), (state.vector,))  # power iteration
        jv = jax.lax.stop_gradient(jv)
        rho = jnp.linalg.norm(jv)
        vector = jnp.where(rho > 0, jv / jnp.where(rho > 0, rho, 1.0), state.vector)
        relaxed = jnp.abs(h) * rho < 0.5 * TSIT5_STABILITY
        mode, votes, against, switches = self._verdict(state, relaxed, EXPLICIT, self.relax_after)
        stale = (state.explicit[0], jnp.array(False))  # Tsit5's f(t0, y0) is out of date
        new_state = _State(mode, stale, out.solver_state, votes, against, vector, switches)
        k = jax.vmap(unravel)(jnp.zeros((7, flat0.size), flat0.dtype))
        dense_info = dict(y0=y0, y1=out.y1, k=k, coeffs=out.dense_info["coeffs"],
                          was_explicit=jnp.array(False))
        work = out.work + Work.of(nfe=1, num_jvps=1, num_stiff_steps=1)
        return Attempt(out.y1, out.error, dense_info, new_state, out.result, work)
