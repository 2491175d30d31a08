"""The counted-solver protocol, for every registered solver: counting changes no step
(odeflow.solve and a plain diffrax.diffeqsolve give the same steps and states, bit
for bit), gradients in reverse mode agree with forward mode and central
differences, and time runs backwards."""

import dataclasses
from pathlib import Path

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import odeflow
from odeflow.solvers import count_work, get_solver, solver_names, work_totals

try:
    from processes import run_json
except ImportError:  # imported by identical_steps.py, run from this folder
    run_json = None


def van_der_pol(t, y, mu):
    return jnp.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def loss_flow(t, y, p):
    """A gradient flow (symmetric Jacobian, autonomous, a stable minimum), for the
    CG and steady-state solvers."""
    loss = lambda z: (0.5 * p[0] * (z[0] - 1.0) ** 2 + 0.25 * p[1] * z[1] ** 4
                      + 0.5 * p[2] * (z[1] - z[0]) ** 2 + 0.5 * z[1] ** 2)
    return -jax.grad(loss)(y)


FIXED = {"euler": 1e-2, "rk4": 5e-2}
STEADY = {"ptc", "ptc-gmres", "ptc-dense", "ptc-lbfgs"}
SYMMETRIC = {"kvaerno3-cg", "ros2-cg"} | STEADY  # CG needs a symmetric Jacobian
LOW_ORDER = {"heun", "midpoint", "implicit-euler", "implicit-euler-gmres", "ros2", "ros2-gmres",
             "ros2-cg"}


def test_every_registered_solver_is_tested_here():
    """The tests below take every name from the registry; the settings they pick by
    name cover only names that exist."""
    assert FIXED.keys() | STEADY | SYMMETRIC | LOW_ORDER <= set(solver_names())


def problem(name):
    """`(field, args, y0, t1, controller, dt0)` for solver `name`."""
    if name in SYMMETRIC:
        t1 = 1e4 if name in STEADY else 2.0
        return loss_flow, jnp.array([3.0, 0.5, 2.0]), jnp.array([2.0, -1.0]), t1
    return van_der_pol, jnp.asarray(10.0), jnp.array([2.0, 0.0]), 3.0


def test_counting_changes_no_step():
    """Bit for bit, in a fresh process compiled without XLA's optimisations and with
    its default CPU code generator (the suite's faster-compiling older one is left
    out): the optimiser, or the older generator, may round a multiply-add fused or
    not differently in two different programs (here, one that also saves the work
    counts), which is XLA's doing, not the solvers'; unoptimised, what remains is the
    solvers' own arithmetic."""
    results = run_json(Path(__file__).parent / "identical_steps.py",
                       env={"XLA_FLAGS": "--xla_backend_optimization_level=0"})
    assert set(results) == set(solver_names())
    for name, r in results.items():
        assert r["identical"] and r["steps"][0] == r["steps"][1], (name, r)


@pytest.mark.parametrize("name", ["tsit5", "kvaerno5", "ros2-cg", "ptc", "auto"])
def test_counting_in_a_plain_diffeqsolve(name):
    """`solver.reporting()` with `count_work(controller)` in diffrax.diffeqsolve counts
    what odeflow.solve counts."""
    field, args, y0, t1 = problem(name)
    solver = get_solver(name)
    controller = solver.default_controller(1e-6, 1e-8, None)
    ours = odeflow.solve(field, y0, t0=0.0, t1=t1, solver=name, dt0=1e-3, controller=controller,
                         args=args)
    counted = dfx.diffeqsolve(dfx.ODETerm(field), solver.reporting(), 0.0, t1, 1e-3, y0, args=args,
                              stepsize_controller=count_work(controller), max_steps=65536,
                              saveat=dfx.SaveAt(t1=True, controller_state=True))
    totals = work_totals(counted.controller_state)
    for field_name in ("nfe", "num_jvps", "num_linear_solves", "num_newton_iters"):
        assert int(getattr(totals, field_name)) == int(getattr(ours.stats, field_name)), field_name
    assert int(totals.nfe) > 0
    np.testing.assert_allclose(np.asarray(counted.ys[-1]), np.asarray(ours.ys[-1]), rtol=1e-12)


def _tight(name):
    """The registered solver with tight Krylov solves (gradients are those of exact
    linear algebra, which a loose Krylov solve only approximates)."""
    solver = get_solver(name)
    linear = getattr(solver, "linear_solver", None)
    if hasattr(linear, "rtol"):
        solver = dataclasses.replace(solver, linear_solver=dataclasses.replace(linear, rtol=1e-12))
    return solver


@pytest.mark.parametrize("name", solver_names())
def test_gradients_reverse_forward_and_finite_differences(name):
    field, args, y0, t1 = problem(name)
    tol = 1e-7 if name in LOW_ORDER else 1e-10
    options = dict(t0=0.0, t1=min(t1, 1.0) if name not in STEADY else t1, solver=_tight(name),
                   rtol=tol, atol=tol * 1e-2, max_steps=100_000)
    if name in FIXED:
        options["dt0"] = FIXED[name] / 10
    if name in STEADY:
        options["dt0"] = 1e-2

    def loss(params, state, adjoint=None):
        return jnp.sum(odeflow.solve(field, state, args=params, adjoint=adjoint, **options).ys[-1] ** 2)

    inputs = (args, y0)
    reverse = jax.grad(loss, argnums=(0, 1))(*inputs)
    forward = jax.jacfwd(lambda a, y: loss(a, y, dfx.ForwardMode()), argnums=(0, 1))(*inputs)
    flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
    scale = np.max(np.abs(flat(forward)))
    assert np.max(np.abs(flat(reverse) - flat(forward))) < 1e-9 * scale
    direction = np.random.default_rng(0).normal(size=flat(reverse).size)
    direction /= np.linalg.norm(direction)
    split = np.cumsum([np.size(x) for x in jax.tree.leaves(inputs)])[:-1]
    shifted = lambda s: [jnp.asarray(x + s * d).reshape(jnp.shape(x)) for x, d in
                         zip(jax.tree.leaves(inputs), np.split(direction, split))]
    eps = 1e-6
    difference = (loss(*shifted(eps)) - loss(*shifted(-eps))) / (2 * eps)
    # adaptive steps move with the inputs, which central differences see at the
    # solve's tolerance; the derivative is that of the steps taken
    assert abs(float(difference) - flat(reverse) @ direction) < max(50 * tol / eps, 1e-6) * scale


def _ascent(t, y, p):
    return -loss_flow(t, y, p)


@pytest.mark.parametrize("name", solver_names())
def test_time_runs_backwards(name):
    """y' = f(t, y) from t = T back to 0 equals the forward solve of s -> -f(T - s, y).
    Backwards in time a decaying problem grows, so each solver gets one that decays
    backwards: van der Pol at mu = 1 (its limit cycle attracts both ways), and for the
    solvers that need a symmetric Jacobian (positive definite in the step's matrix)
    the gradient ascent of a convex loss."""
    field, args, y0, t1 = problem(name)
    if name in SYMMETRIC:
        field = _ascent
    else:
        args = jnp.asarray(1.0)
    span = 0.5 if name not in STEADY else t1
    tol = 1e-6 if name in LOW_ORDER else 1e-8
    options = dict(args=args, rtol=tol, atol=tol * 1e-2, max_steps=100_000, solver=name)
    dt0 = FIXED.get(name, 1e-3 if name in STEADY else None)
    back = odeflow.solve(field, y0, t0=span, t1=0.0, dt0=None if dt0 is None else -dt0, **options)
    flipped = lambda s, y, a: jax.tree.map(jnp.negative, field(span - s, y, a))
    forward = odeflow.solve(flipped, y0, t0=0.0, t1=span, dt0=dt0, **options)
    np.testing.assert_allclose(np.asarray(back.ys[-1]), np.asarray(forward.ys[-1]), rtol=100 * tol,
                               atol=tol)
    assert abs(int(back.stats.num_steps) - int(forward.stats.num_steps)) <= 2
    assert np.asarray(back.ts)[-1] == 0.0


def test_jacfwd_through_the_default_adjoint_names_the_fix():
    loss = lambda a: jnp.sum(odeflow.solve(lambda t, y, k: -k * y, jnp.ones(2), t0=0.0, t1=1.0,
                                           args=a).ys)
    with pytest.raises(TypeError, match="adjoint=diffrax.ForwardMode"):
        jax.jacfwd(loss)(1.0)
