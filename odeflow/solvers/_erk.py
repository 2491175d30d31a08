"""Explicit Runge-Kutta solvers that count their own work.

The same Butcher tableaus, error estimates and dense output as diffrax's explicit
solvers (`Tsit5`, `Dopri5`, ...), with the stages unrolled so that every vector-field
evaluation is one call (the counts follow from the tableau). With FSAL tableaus the
last stage of an accepted step is the first stage of the next and is kept across
rejected steps; the first step, and a step after a jump, evaluate it afresh.

odeflow steps these tableaus itself rather than calling diffrax's solvers for two
reasons, both measured: diffrax runs the stages in a checkpointed loop, 1.2-3.3x
slower per step on small systems and up to 1.5x on a neural ODE's gradient; and
under `vmap` it re-evaluates the first stage for every sample as soon as one sample
needs it, so a sample's result then depends on the batch it is in. Here each sample
selects its own, so a seed sweep gives the same numbers however it is batched.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._protocol import AbstractCountedSolver, Attempt, Work
from ._tableau import lower_rows
from ._tableau import to_tuple as _to_tuple


class ExplicitTableau(eqx.Module):
    """Dense explicit Butcher tableau: `a` strictly lower triangular, `b_error=None`
    for methods without an embedded error estimate."""

    a: tuple = eqx.field(static=True, converter=_to_tuple)
    b: tuple = eqx.field(static=True, converter=_to_tuple)
    b_error: tuple | None = eqx.field(static=True, converter=_to_tuple)
    c: tuple = eqx.field(static=True, converter=_to_tuple)
    fsal: bool = eqx.field(static=True)

    @property
    def stages(self) -> int:
        return len(self.b)

    @classmethod
    def from_diffrax(cls, tab: dfx.ButcherTableau) -> "ExplicitTableau":
        return cls(
            a=lower_rows(tab.a_lower, len(tab.b_sol)),
            b=np.asarray(tab.b_sol),
            b_error=np.asarray(tab.b_error),
            c=np.concatenate([[0.0], tab.c]),
            fsal=bool(tab.fsal),
        )


def _tree_sum(coeffs, ks, y_like):
    terms = [jax.tree.map(lambda k: c * k, k) for c, k in zip(coeffs, ks) if c != 0]
    if not terms:
        return jax.tree.map(jnp.zeros_like, y_like)
    return jax.tree.map(lambda *xs: sum(xs), *terms)


class ERK(AbstractCountedSolver):
    """Explicit Runge-Kutta solver with exact evaluation counts.

    Build one from a diffrax solver class with `ERK.of(diffrax.Tsit5)` or use the
    registered names (`"tsit5"`, `"dopri5"`, ...). `ERK.euler()` is explicit Euler
    (no error estimate: use it with a fixed step `dt0`).

    **Arguments:**

    - `tableau`: an `ExplicitTableau`.
    - `orders`: `(order, error_order)` of the method.
    - `interpolation_cls`: the dense-output class, as in diffrax.
    - `report`: set by `odeflow.solve` (see `odeflow.solvers.count_work`).
    """

    tableau: ExplicitTableau
    orders: tuple[int, int] = eqx.field(static=True)
    interpolation_cls: Callable[..., Any] = eqx.field(static=True)
    report: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    linearizes: ClassVar[bool] = False

    @classmethod
    def of(cls, solver_cls: type) -> "ERK":
        """The same method as a diffrax explicit Runge-Kutta class."""
        inner = solver_cls()
        return cls(
            ExplicitTableau.from_diffrax(solver_cls.tableau),
            (inner.order(None), inner.error_order(None)),
            solver_cls.interpolation_cls,
        )

    @classmethod
    def euler(cls) -> "ERK":
        tab = ExplicitTableau(
            a=np.zeros((1, 1)), b=np.ones(1), b_error=None, c=np.zeros(1), fsal=False
        )
        return cls(tab, (1, 1), dfx.LocalLinearInterpolation)

    @classmethod
    def rk4(cls) -> "ERK":
        """The classical fourth-order Runge-Kutta method (no error estimate)."""
        a = np.zeros((4, 4))
        a[1, 0], a[2, 1], a[3, 2] = 0.5, 0.5, 1.0
        tab = ExplicitTableau(
            a=a, b=np.array([1, 2, 2, 1]) / 6, b_error=None, c=np.array([0, 0.5, 0.5, 1.0]),
            fsal=False,
        )
        return cls(tab, (4, 4), dfx.LocalLinearInterpolation)

    @property
    def adaptive(self) -> bool:
        return self.tableau.b_error is not None

    def order(self, terms):
        return self.orders[0]

    def error_order(self, terms):
        return self.orders[1]

    def init(self, terms, t0, t1, y0, args):
        """FSAL: `(f(t0, y0), whether it is valid)`, invalid until the first step."""
        if not self.tableau.fsal:
            return None
        return jax.tree.map(jnp.zeros_like, y0), jnp.array(False)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def stages(self, terms, t0, t1, y0, args, f0):
        """Stages of one step from `f0 = f(t0, y0)`: `(fs, ks, ys)` with vector-field
        values `fs[i]` at `(t0 + c_i (t1 - t0), ys[i])`, their increments
        `ks[i] = terms.prod(fs[i], terms.contr(t0, t1))` (h f for an ODE, also right
        for time-reversed and adjoint terms), and `ys[0] = y0`."""
        tab = self.tableau
        h = t1 - t0
        control = terms.contr(t0, t1)
        fs, ks, ys = [f0], [terms.prod(f0, control)], [y0]
        for i in range(1, tab.stages):
            incr = _tree_sum(tab.a[i][:i], ks, y0)
            ys.append(jax.tree.map(lambda y, d: y + d, y0, incr))
            fs.append(terms.vf(t0 + tab.c[i] * h, ys[-1], args))
            ks.append(terms.prod(fs[-1], control))
        return fs, ks, ys

    def combine(self, y0, ks):
        """`(y1, error estimate or None)` from the stage increments."""
        tab = self.tableau
        y1 = jax.tree.map(lambda y, d: y + d, y0, _tree_sum(tab.b, ks, y0))
        if not self.adaptive:
            return y1, None
        return y1, _tree_sum(tab.b_error, ks, y0)

    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tab = self.tableau
        if tab.fsal:
            stored, valid = solver_state
            fresh = jnp.asarray(made_jump) | ~valid
            f0 = jax.lax.cond(fresh, lambda: terms.vf(t0, y0, args), lambda: stored)
            nfe = tab.stages - 1 + fresh.astype(jnp.int32)
        else:
            f0 = terms.vf(t0, y0, args)
            nfe = tab.stages
        fs, ks, _ = self.stages(terms, t0, t1, y0, args, f0)
        y1, y_error = self.combine(y0, ks)
        if self.interpolation_cls is dfx.LocalLinearInterpolation:
            dense_info = dict(y0=y0, y1=y1)
        else:
            dense_info = dict(y0=y0, y1=y1, k=jax.tree.map(lambda *k: jnp.stack(k), *ks))
        new_state = (fs[-1], jnp.array(True)) if tab.fsal else None
        return Attempt(y1, y_error, dense_info, new_state, dfx.RESULTS.successful, Work.of(nfe=nfe))
