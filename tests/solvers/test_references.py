"""Every registered solver against scipy's Radau at rtol 1e-10: the stiff solvers on
Robertson (to t = 1e5), Van der Pol (mu = 1000) and HIRES; the explicit ones on a
non-stiff Van der Pol (mu = 1). The work-precision table over many tolerances is
benchmarks/work_precision."""

import functools

import pytest

import odeflow
from odeflow.problems import STIFF_PROBLEMS, StiffProblem, reference_solution, van_der_pol
from odeflow.solvers import solver_names


@pytest.fixture(scope="module")
def references():
    return {name: reference_solution(p) for name, p in STIFF_PROBLEMS.items()}


# solver: (rtol, allowed error / rtol). Global errors exceed the local tolerance by
# the problem's error amplification (largest on Van der Pol's fast transitions);
# first-order implicit Euler's error estimate is itself first order.
STIFF = {
    "kvaerno5": (1e-6, 100), "kvaerno3": (1e-6, 100), "kvaerno5-gmres": (1e-6, 100),
    "kvaerno3-gmres": (1e-6, 300), "auto": (1e-6, 100), "ros2": (1e-5, 100),
    "ros2-gmres": (1e-5, 100), "implicit-euler": (1e-4, 3000), "implicit-euler-gmres": (1e-4, 3000),
}
# not time-accurate integrators: pseudo-transient continuation heads for the steady
# state (tested against it, tests/solvers/test_pseudo_transient.py); the CG variants
# need a symmetric Jacobian (gradient flows); Euler/RK4 are fixed-step. Explicit
# adaptive methods are checked on the non-stiff problem below.
NOT_STIFF_INTEGRATORS = {"ptc", "ptc-gmres", "ptc-dense", "ptc-lbfgs", "ros2-cg", "kvaerno3-cg", "euler",
                         "rk4"}
EXPLICIT = ["heun", "midpoint", "bosh3", "tsit5", "dopri5", "dopri8"]


def test_every_solver_is_checked_against_a_reference():
    assert set(solver_names()) == set(STIFF) | NOT_STIFF_INTEGRATORS | set(EXPLICIT)


def _error(problem, solver, rtol):
    sol = odeflow.solve(problem.vector_field, problem.initial_state(), t0=0.0, t1=problem.t1,
                        solver=solver, rtol=rtol, atol=rtol * problem.atol_scale, max_steps=200_000)
    assert bool(sol.success)
    return sol.ys[-1]


@pytest.mark.parametrize("problem", list(STIFF_PROBLEMS))
@pytest.mark.parametrize("solver", list(STIFF))
def test_stiff_solver_agrees_with_radau(solver, problem, references):
    rtol, factor = STIFF[solver]
    p = STIFF_PROBLEMS[problem]
    error = p.error(_error(p, solver, rtol), references[problem])
    assert error < factor * rtol, error


@pytest.mark.parametrize("solver", list(STIFF))
def test_error_falls_with_the_tolerance_on_hires(solver, references):
    """Tolerance proportionality: 100x tighter, at least 10x more accurate."""
    rtol, _ = STIFF[solver]
    p = STIFF_PROBLEMS["hires"]
    loose = p.error(_error(p, solver, rtol), references["hires"])
    tight = p.error(_error(p, solver, rtol / 100), references["hires"])
    assert tight < loose / 10, (loose, tight)


# errors relative to max(|y|, 1): both components cross zero on the limit cycle
NONSTIFF = StiffProblem("van_der_pol_mu1", functools.partial(van_der_pol, mu=1.0), (2.0, 0.0), 10.0,
                   1.0, 1.0)


@pytest.mark.parametrize("solver", EXPLICIT)
def test_explicit_solver_agrees_with_radau(solver):
    reference = reference_solution(NONSTIFF)
    rtol = 1e-6 if solver in ("heun", "midpoint") else 1e-8
    error = NONSTIFF.error(_error(NONSTIFF, solver, rtol), reference)
    assert error < 100 * rtol, error
