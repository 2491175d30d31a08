"""Error control in output and loss space, and tolerance schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import odeflow
from odeflow.problems import get_task
from odeflow.flow import CompositeLoss

A = np.array([[3.0, 1.0], [1.0, 2.0]])
P0 = jnp.array([1.0, -2.0])
KW = dict(solver="kvaerno3", rtol=1e-5, atol=1e-7, t1=5.0)


def test_identity_outputs_equal_parameter_control():
    """With outputs = parameters, output-space control is parameter-space control."""
    loss = CompositeLoss(lambda w: w, lambda o: 0.5 * o @ jnp.asarray(A) @ o)
    plain = odeflow.gradient_flow(loss, P0, **KW)
    mapped = odeflow.gradient_flow(loss, P0, error_space="outputs", **KW)
    assert int(mapped.stats.num_steps) == int(plain.stats.num_steps)
    np.testing.assert_allclose(np.asarray(mapped.params), np.asarray(plain.params), rtol=1e-12)


def test_output_space_ignores_parameters_the_outputs_barely_see():
    """w1 relaxes fast (rate 1) but enters the outputs scaled by 1e-6: controlled on
    the parameters its transient limits the steps, on the outputs it does not."""
    loss = CompositeLoss(
        lambda w: jnp.stack([w[0], 1e-6 * w[1]]),
        lambda o: 0.005 * (o[0] - 1.0) ** 2 + 0.5e12 * o[1] ** 2,
    )
    kw = dict(solver="tsit5", rtol=1e-6, atol=1e-6, t1=5.0)
    w0 = jnp.array([0.0, -2.0])
    on_params = odeflow.gradient_flow(loss, w0, **kw)
    on_outputs = odeflow.gradient_flow(loss, w0, error_space="outputs", **kw)
    assert 2 * int(on_outputs.stats.num_steps) < int(on_params.stats.num_steps)
    # the output that matters is still accurate: w0(t) = 1 - exp(-0.01 t)
    np.testing.assert_allclose(float(on_outputs.params[0]), 1.0 - np.exp(-0.05), rtol=1e-5)


def test_schedule_equal_tolerances_is_no_schedule_and_tighter_costs_steps():
    loss = lambda w: 0.5 * w @ jnp.asarray(A) @ w
    kw = dict(solver="tsit5", rtol=1e-3, atol=1e-6, t1=100.0, target_loss=1e-10)
    base = odeflow.gradient_flow(loss, P0, **kw)
    same = odeflow.gradient_flow(loss, P0, rtol_final=1e-3, **kw)
    assert int(same.stats.num_steps) == int(base.stats.num_steps)
    tighter = odeflow.gradient_flow(loss, P0, rtol_final=1e-7, **kw)
    tight = odeflow.gradient_flow(loss, P0, **dict(kw, rtol=1e-7, atol=1e-10))
    steps = lambda r: int(r.stats.num_steps)
    assert steps(base) < steps(tighter) < steps(tight)
    assert tighter.status_name == "target_reached"


@pytest.mark.parametrize("space, descent, per_step", [("outputs", True, 3), ("loss", False, 2),
                                                     ("params", True, 1), ("params", False, 0)])
def test_forward_evaluations_are_counted(space, descent, per_step):
    """space(y0) and a JVP at y1 for output or loss space; L(y1) for the descent
    check, which carries the accepted loss (one L(y0) before the first step)."""
    task = get_task("xor")
    res = odeflow.gradient_flow(task.composite_loss, task.init(jax.random.key(1)), solver="tsit5",
                                rtol=1e-3, atol=1e-3, t1=1e6, target_loss=1e-2, error_space=space,
                                descent_check=descent)
    steps = int(res.stats.num_steps)
    # the initial check; the loss the flow follows (target, history) at t0 and per
    # attempt; the controller's
    assert int(res.stats.num_loss_evals) == 2 + steps + per_step * steps + descent


def test_descent_check_keeps_loose_tolerances_downhill():
    """Tsit5 at rtol 1e-2 on digits wanders uphill with every step accepted; with the
    descent check every accepted step lowers the loss."""
    task = get_task("digits")
    params = task.init(jax.random.key(0))
    kw = dict(solver="tsit5", rtol=1e-2, atol=1e-2, t1=1e8, max_steps=60, throw=False)
    free = odeflow.gradient_flow(task.loss, params, descent_check=False, **kw)
    checked = odeflow.gradient_flow(task.loss, params, **kw)
    history = lambda r: np.asarray(r.loss_history)[~np.isnan(np.asarray(r.loss_history))]
    assert np.any(np.diff(history(free)) > 0)
    assert np.all(np.diff(history(checked)) <= 0)
    assert int(checked.stats.num_rejected) > 0


def test_bad_error_control_arguments():
    loss = lambda w: jnp.sum(w**2)
    with pytest.raises(ValueError, match="error_space"):
        odeflow.gradient_flow(loss, P0, error_space="gradients")
    with pytest.raises(TypeError, match="CompositeLoss"):
        odeflow.gradient_flow(loss, P0, error_space="outputs")
    with pytest.raises(ValueError, match="target_loss"):
        odeflow.gradient_flow(loss, P0, rtol_final=1e-6)
