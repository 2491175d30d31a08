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

The implicit method is Kvaerno 3(2) with a dense Jacobian for small states and
Newton-Krylov (GMRES) above `dense_limit` unknowns. The step-size controller gets
each method's own error order, so a switch does not distort step adaptation.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._erk import ERK
from ._esdirk import ESDIRK
from ._linearize import ode_term
from ._rosenbrock import ROS2
from ._stats import work_vector

EXPLICIT, IMPLICIT = 0, 1
TSIT5_STABILITY = 3.5  # |R(z)| <= 1 on [-3.5, 0]
RESET_AFTER = 6  # consecutive verdicts against that clear the votes (DOPRI5)


class _State(eqx.Module):
    mode: jax.Array  # EXPLICIT or IMPLICIT for the next step
    f0: jax.Array  # f(t0, y0) (flat), valid when `fresh`
    fresh: jax.Array
    votes: jax.Array  # accepted steps with a verdict for the other method
    against: jax.Array  # consecutive accepted steps with a verdict against it
    vector: jax.Array  # power-iteration vector (flat, unit norm)
    switches: jax.Array


class AutoSwitch(dfx.AbstractAdaptiveSolver):
    """Tsit5 while the problem is non-stiff, Kvaerno3 while it is stiff, switching
    automatically both ways. Registered as `"auto"`, the default solver of
    `odeflow.solve`, `odeflow.gradient_flow` and `odeflow compare`.

    **Arguments:**

    - `switch_after`: stability-bound explicit steps before switching.
    - `relax_after`: non-stiff implicit steps before switching back.
    - `implicit`: the stiff method, `"kvaerno3"` (ESDIRK 3(2), accurate: general
      ODEs) or `"ros2"` (Rosenbrock-W, two linear solves per step and no Newton
      iteration: gradient flows at loose tolerances).
    - `symmetric`: the Jacobian is symmetric (a gradient flow's Hessian): Krylov
      solves use CG (ROS2 then solves loosely, to 1e-2), else GMRES.
    - `dense_limit`: largest state size for which the implicit method forms a dense
      Jacobian; above it, matrix-free Krylov solves.
    - `newton_rtol`, `newton_atol`: for the implicit method (set by `odeflow.solve`).
    - `report_work`: set by `odeflow.solve`.

    `SolverStats.num_stiff_steps` counts steps attempted implicitly and
    `num_switches` the switches made (read from the final solver state).
    """

    switch_after: int = 5
    relax_after: int = 10
    implicit: str = eqx.field(static=True, default="kvaerno3")
    symmetric: bool = eqx.field(static=True, default=False)
    dense_limit: int = eqx.field(static=True, default=100)
    newton_rtol: float | None = None
    newton_atol: float | None = None
    report_work: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.ThirdOrderHermitePolynomialInterpolation

    def __check_init__(self):
        if self.implicit not in ("kvaerno3", "ros2"):
            raise ValueError(f"unknown implicit method {self.implicit!r}; use 'kvaerno3' or 'ros2'")

    def _explicit(self) -> ERK:
        return ERK.of(dfx.Tsit5)

    def _implicit(self, size: int) -> ESDIRK | ROS2:
        krylov = "cg" if self.symmetric else "gmres"
        kind = "dense" if size <= self.dense_limit else krylov
        if self.implicit == "ros2":
            return ROS2(linear_solver=kind, krylov_rtol=1e-2 if self.symmetric else 1e-6,
                        report_work=True)
        return ESDIRK.kvaerno3(
            linear_solver=kind, newton_rtol=self.newton_rtol, newton_atol=self.newton_atol,
            report_work=True,
        )

    def order(self, terms):
        return 5  # of the method it starts with; each step names its own error order

    def error_order(self, terms):
        return 5

    def init(self, terms, t0, t1, y0, args):
        ode_term(terms)  # a plain ODE (not the adjoint term of a backsolve)
        flat, _ = ravel_pytree(y0)
        f0, _ = ravel_pytree(terms.vf(t0, y0, args))
        vector = jnp.sin(jnp.arange(1, flat.size + 1, dtype=flat.dtype))  # generic start
        zero = jnp.zeros((), jnp.int32)
        return _State(zero, f0, jnp.array(True), zero, zero, vector / jnp.linalg.norm(vector), zero)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        state = solver_state
        explicit = lambda: self._explicit_step(terms, t0, t1, y0, args, state, made_jump)
        implicit = lambda: self._implicit_step(terms, t0, t1, y0, args, state)
        y1, err, dense_info, new_state, work, order = jax.lax.cond(
            state.mode == EXPLICIT, explicit, implicit
        )
        y_error = (err, work, order) if self.report_work else err
        return y1, y_error, dense_info, new_state, dfx.RESULTS.successful

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

    def _explicit_step(self, terms, t0, t1, y0, args, state, made_jump):
        erk = self._explicit()
        flat0, unravel = ravel_pytree(y0)
        h = jnp.asarray(t1 - t0, flat0.dtype)
        recompute = made_jump | ~state.fresh
        f0 = jax.lax.cond(
            recompute, lambda: ravel_pytree(terms.vf(t0, y0, args))[0], lambda: state.f0
        )
        fs, ks, ys = erk.stages(terms, t0, t1, y0, args, unravel(f0))
        y1, err = erk.combine(y0, ks)
        flat = lambda tree: ravel_pytree(tree)[0]
        f1 = flat(fs[-1])
        dy = jnp.linalg.norm(flat(y1) - flat(ys[-2]))
        rho = jnp.linalg.norm(f1 - flat(fs[-2])) / jnp.where(dy > 0, dy, jnp.inf)
        stiff = h * rho > 0.9 * TSIT5_STABILITY
        mode, votes, against, switches = self._verdict(state, stiff, IMPLICIT, self.switch_after)
        new_state = _State(mode, f1, jnp.array(True), votes, against, state.vector, switches)
        dense_info = dict(y0=y0, y1=y1, k0=unravel(h * f0), k1=unravel(h * f1))
        work = work_vector(nfe=erk.tableau.stages - 1 + recompute.astype(jnp.int32))
        return y1, err, dense_info, new_state, work, jnp.asarray(5.0, flat0.dtype)

    def _implicit_step(self, terms, t0, t1, y0, args, state):
        flat0, unravel = ravel_pytree(y0)
        h = jnp.asarray(t1 - t0, flat0.dtype)
        method = self._implicit(flat0.size)
        fresh_state = method.init(terms, t0, t1, y0, args)  # nothing carried between steps
        y1, (err, work), dense_info, _, _ = method.step(terms, t0, t1, y0, args, fresh_state, False)
        if isinstance(method, ROS2):  # linear dense output, as a cubic Hermite
            slope = jax.tree.map(lambda a, b: b - a, y0, y1)
            dense_info = dict(y0=y0, y1=y1, k0=slope, k1=slope)
        f = lambda y: ravel_pytree(terms.vf(t0, unravel(y), args))[0]
        _, jv = jax.jvp(f, (flat0,), (state.vector,))  # one power-iteration step
        rho = jnp.linalg.norm(jv)
        vector = jnp.where(rho > 0, jv / jnp.where(rho > 0, rho, 1.0), state.vector)
        relaxed = h * rho < 0.5 * TSIT5_STABILITY
        mode, votes, against, switches = self._verdict(state, relaxed, EXPLICIT, self.relax_after)
        new_state = _State(mode, state.f0, jnp.array(False), votes, against, vector, switches)
        extra = work_vector(nfe=1, num_jvps=1, num_stiff_steps=1)
        order = jnp.asarray(method.error_order(None), flat0.dtype)
        return y1, err, dense_info, new_state, work + extra, order

