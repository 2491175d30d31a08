"""Standard stiff test problems (Hairer & Wanner, "Solving ODEs II", 1996), with the
scipy Radau reference that odeflow's solvers are checked against (tests) and timed
against (benchmarks/work_precision).

Each `StiffProblem` carries its vector field `f(t, y, args)`, initial state, interval and
the scales its errors are measured on: `atol = rtol * atol_scale`, and the error of
a solution is the largest component error relative to `max(|reference|, floor)`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def robertson(t, y, args):
    """Robertson's chemical kinetics: rate constants 0.04, 1e4, 3e7."""
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack([-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2, 3e7 * y2**2])


def van_der_pol(t, y, args, mu=1000.0):
    """Van der Pol's oscillator, y1'' = mu (1 - y1^2) y1' - y1, as a first-order system."""
    return jnp.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def hires(t, y, args):
    """HIRES: the 8-species 'high irradiance response' of plant morphogenesis."""
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    return jnp.stack([
        -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
        1.71 * y1 - 8.75 * y2,
        -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
        8.32 * y2 + 1.71 * y3 - 1.12 * y4,
        -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
        -280.0 * y6 * y8 + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
        280.0 * y6 * y8 - 1.81 * y7,
        -280.0 * y6 * y8 + 1.81 * y7,
    ])


@dataclasses.dataclass(frozen=True)
class StiffProblem:
    name: str
    vector_field: Callable
    y0: tuple
    t1: float
    atol_scale: float
    floor: float

    def initial_state(self, dtype=jnp.float64):
        return jnp.asarray(self.y0, dtype)

    def error(self, y, reference) -> float:
        """Largest component error relative to `max(|reference|, floor)`."""
        y, reference = np.asarray(y), np.asarray(reference)
        return float(np.max(np.abs(y - reference) / np.maximum(np.abs(reference), self.floor)))


STIFF_PROBLEMS = {
    "robertson": StiffProblem("robertson", robertson, (1.0, 0.0, 0.0), 1e5, 1e-6, 1e-12),
    "van_der_pol": StiffProblem("van_der_pol", van_der_pol, (2.0, 0.0), 3000.0, 1.0, 1e-6),
    "hires": StiffProblem("hires", hires, (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057), 321.8122, 1e-4, 1e-8),
}
"""Robertson on [0, 1e5], Van der Pol with mu = 1000 on [0, 3000], HIRES on [0, 321.8122]."""


def numpy_field(vector_field):
    """`(f, jac)` as numpy functions of `(t, y)` for scipy: the field and its exact
    Jacobian (forward-mode AD), both jitted."""
    f = jax.jit(lambda t, y: vector_field(t, y, None))
    j = jax.jit(jax.jacfwd(lambda t, y: vector_field(t, y, None), argnums=1))
    return (lambda t, y: np.asarray(f(t, y))), (lambda t, y: np.asarray(j(t, y)))


def reference_solution(problem: StiffProblem | str, rtol: float = 1e-10, ts=None) -> np.ndarray:
    """y(t1), or y at the increasing times `ts` (one row each), by scipy's Radau IIA
    (order 5) at `rtol` (float64, exact Jacobian). Each time in `ts` is a step end
    (one solve per interval between them), not an interpolated value."""
    from scipy.integrate import solve_ivp

    problem = STIFF_PROBLEMS[problem] if isinstance(problem, str) else problem
    f, jac = numpy_field(problem.vector_field)
    y, t, rows = np.asarray(problem.y0, np.float64), 0.0, []
    for t_next in ([problem.t1] if ts is None else np.asarray(ts, np.float64)):
        if t_next > t:
            sol = solve_ivp(f, (t, t_next), y, method="Radau", jac=jac, rtol=rtol,
                            atol=rtol * problem.atol_scale * 1e-4)
            if not sol.success:
                raise RuntimeError(f"scipy Radau failed on {problem.name}: {sol.message}")
            y, t = sol.y[:, -1], t_next
        rows.append(y)
    return rows[-1] if ts is None else np.stack(rows)
