import dataclasses

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.linalg import expm

import odeflow
from odeflow.flow import STATUSES
from odeflow.flow._flow import default_minimum_solver
from odeflow.solvers import get_solver

A = np.array([[3.0, 1.0], [1.0, 2.0]])
loss = lambda p: 0.5 * p["w"] @ jnp.asarray(A) @ p["w"]
P0 = {"w": jnp.array([1.0, -2.0])}


@pytest.mark.parametrize("solver", ["tsit5", "kvaerno5"])
def test_quadratic_matches_closed_form(solver):
    res = odeflow.gradient_flow(loss, P0, solver=solver, rtol=1e-9, atol=1e-11, t1=2.0)
    np.testing.assert_allclose(res.params["w"], expm(-A * 2.0) @ np.asarray(P0["w"]), rtol=1e-6)
    assert res.status_name == "horizon_reached"
    assert float(res.t) == pytest.approx(2.0)


def test_stops_at_target_event():
    res = odeflow.gradient_flow(loss, P0, solver="kvaerno3", rtol=1e-6, atol=1e-8, t1=100.0,
                                target_loss=1e-4)
    assert res.status_name == "target_reached"
    assert float(res.loss) < 1e-4
    hist = np.asarray(res.loss_history)
    hist = hist[~np.isnan(hist)]
    # the step before the last was still above the target: it stopped at the first one
    assert hist[-1] < 1e-4 <= hist[-2]
    w_exact = expm(-A * float(res.t)) @ np.asarray(P0["w"])
    np.testing.assert_allclose(res.params["w"], w_exact, rtol=1e-3)


@pytest.mark.parametrize("solver", ["tsit5", "ptc-lbfgs", "auto"])
def test_target_and_history_equal_an_event_and_saves_in_a_plain_solve(solver):
    """The loss the flow follows in its controller (target test, history) is what a
    diffrax.Event and SaveAt(steps=True, fn=loss) at the accepted states give: the
    same steps, the same stopping step, the same history."""
    task = odeflow.problems.get_task("xor")
    p0 = task.init(jax.random.key(2))
    kw = dict(rtol=1e-4, atol=1e-6, t1=1e4) if solver == "tsit5" else {}
    res = odeflow.gradient_flow(task.loss, p0, solver=solver, target_loss=1e-3, **kw)
    assert res.status_name == "target_reached"
    tol = float(np.sqrt(np.finfo(np.float64).eps))
    if solver == "tsit5":
        solver_obj = solver
        controller = odeflow.flow.FlowErrorController(dfx.PIDController(rtol=1e-4, atol=1e-6),
                                                      loss=task.loss, descent=True)
    else:  # pseudo-transient continuation at gradient_flow's tolerances (√ε)
        solver_obj = default_minimum_solver(9) if solver == "auto" else get_solver(solver)
        controller = dataclasses.replace(solver_obj.default_controller(tol, tol, None), loss=task.loss)
    field = lambda t, p, args: jax.tree.map(jnp.negative, jax.grad(task.loss)(p))
    tolerances = dict(rtol=1e-4, atol=1e-6) if solver == "tsit5" else dict(rtol=tol, atol=tol)
    plain = odeflow.solve(field, p0, t0=0.0, t1=1e4 if solver == "tsit5" else 1e30, solver=solver_obj,
                          controller=controller, max_steps=10_000, **tolerances,
                          event=dfx.Event(lambda t, y, args, **kw: task.loss(y) < 1e-3),
                          saveat=dfx.SaveAt(t0=True, steps=True, fn=lambda t, y, args: task.loss(y)))
    assert int(plain.stats.num_steps) == int(res.stats.num_steps)
    saved = np.asarray(plain.ys)[np.isfinite(np.asarray(plain.ts))]
    history = np.asarray(res.loss_history)[~np.isnan(np.asarray(res.loss_history))]
    np.testing.assert_allclose(history, saved, rtol=1e-12)
    assert history[-1] < 1e-3 <= history[-2]
    assert float(res.loss) == history[-1]
    np.testing.assert_allclose(float(task.loss(res.params)), history[-1], rtol=1e-12)


def test_a_start_below_the_target_takes_no_step():
    res = odeflow.gradient_flow(loss, P0, target_loss=1e3)
    assert res.status_name == "target_reached" and int(res.stats.num_steps) == 0
    assert float(res.t) == 0.0 and float(res.loss) == float(loss(P0))
    np.testing.assert_array_equal(res.params["w"], P0["w"])


def test_euler_flow_is_gradient_descent():
    flow = odeflow.gradient_flow(loss, P0, solver="euler", dt0=0.1, t1=1.0)
    gd = odeflow.optimize(loss, P0, optax.sgd(0.1), max_iters=10)
    np.testing.assert_allclose(flow.params["w"], gd.params["w"], rtol=1e-12)
    assert int(flow.stats.nfe) == 10


def test_vmap_over_seeds_equals_loop():
    task = odeflow.problems.get_task("xor")
    batch = task.init_batch([0, 1, 2])
    run = lambda p: odeflow.gradient_flow(task.loss, p, solver="kvaerno3", rtol=1e-3, atol=1e-3,
                                          t1=1e6, target_loss=1e-2, max_steps=2000, throw=False)
    batched = jax.vmap(run)(batch)
    for i in range(3):
        single = run(jax.tree.map(lambda x: x[i], batch))
        assert int(batched.stats.nfe[i]) == int(single.stats.nfe)
        assert int(batched.status[i]) == int(single.status)
        np.testing.assert_allclose(batched.loss[i], single.loss, rtol=1e-10)


def test_second_call_does_not_recompile():
    from odeflow.flow._flow import _gradient_flow

    kwargs = dict(solver="tsit5", t1=1.0)
    odeflow.gradient_flow(loss, P0, rtol=1e-3, atol=1e-6, **kwargs)
    before = _gradient_flow._cached._cache_size()
    odeflow.gradient_flow(loss, {"w": jnp.array([0.3, 0.1])}, rtol=1e-5, atol=1e-8, **kwargs)
    assert _gradient_flow._cached._cache_size() == before


def test_float32_and_equinox_model():
    import equinox as eqx

    model = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0))
    model = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, model)
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], jnp.float32)
    y = jnp.array([[0.0], [1.0], [1.0], [0.0]], jnp.float32)
    mse = lambda m: jnp.mean((jax.vmap(m)(x) - y) ** 2)
    res = odeflow.gradient_flow(mse, model, solver="tsit5", rtol=1e-3, atol=1e-3, t1=50.0)
    assert res.loss.dtype == jnp.float32
    assert float(res.loss) < float(mse(model))
    assert isinstance(res.params, eqx.nn.MLP)


def test_max_steps_status_and_errors():
    res = odeflow.gradient_flow(loss, P0, solver="tsit5", t1=1e3, max_steps=5, throw=False)
    assert res.status_name == "max_steps_reached" and int(res.stats.num_steps) == 5
    with pytest.raises(ValueError, match="NaN"):
        odeflow.gradient_flow(loss, {"w": jnp.array([jnp.nan, 1.0])})
    with pytest.raises(ValueError, match="t1"):
        odeflow.gradient_flow(loss, P0, t1=-1.0)
    with pytest.raises(ValueError, match="kvaerno5"):
        odeflow.gradient_flow(loss, P0, solver="bdf9")
    assert STATUSES[0] == "target_reached"


@pytest.mark.parametrize("solver, history, target", [
    ("tsit5", True, 1e-4), ("tsit5", False, 1e-4), ("tsit5", True, None), ("tsit5", False, None),
    ("auto", True, 1e-10),  # pseudo-transient continuation: descent check, first step, jump to the end
])
def test_presentations_and_loss_evals_are_exact(solver, history, target):
    """Every forward pass of the loss (inside a gradient or alone) is one of the
    counted evaluations."""
    calls = [0]

    def bump():
        calls[0] += 1

    def counted_loss(p):
        jax.debug.callback(bump)
        return loss(p)

    kwargs = dict(rtol=1e-6, atol=1e-8, t1=100.0) if solver == "tsit5" else {}
    res = odeflow.gradient_flow(counted_loss, P0, solver=solver, target_loss=target, history=history,
                                **kwargs)
    jax.effects_barrier()
    assert calls[0] == int(res.stats.nfe) + int(res.stats.num_loss_evals)


def test_inside_jit_equals_eager():
    run = lambda p: odeflow.gradient_flow(loss, p, solver="kvaerno3", rtol=1e-5, atol=1e-7,
                                          t1=5.0)
    eager, jitted = run(P0), jax.jit(run)(P0)
    np.testing.assert_allclose(jitted.params["w"], eager.params["w"], rtol=1e-12)
    assert int(jitted.stats.nfe) == int(eager.stats.nfe)
