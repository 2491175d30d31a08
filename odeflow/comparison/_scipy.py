"""The plain-scipy approach, as a reference: scipy.integrate's VODE (BDF)
or LSODA on the gradient flow, with the Jacobian (the loss Hessian) left to the
integrator's finite differences, stepping one internal step at a time so it stops at
the same rule as every other method and at a wall-time cap."""

from __future__ import annotations

import time
import warnings

import jax
import numpy as np
from jax.flatten_util import ravel_pytree


def scipy_flow(loss_fn, params, *, integrator: str, target: float, rtol: float, atol: float,
               time_cap: float, t1: float = 1e8, max_steps: int = 1_000_000) -> dict:
    """Integrate dθ/dt = -∇L(θ) with scipy; returns a record of the run.

    `integrator` is `"vode-bdf"` or `"lsoda"`. The gradient is a jitted JAX function
    (compiled before the clock starts); the Jacobian is formed by the integrator's
    own finite differences, as a plain scipy user would leave it. Right-hand-side calls (gradient
    evaluations, including those of the finite-difference Jacobians) are counted
    here; steps are internal steps; Jacobians come from the integrator (VODE's NJE,
    LSODA's `njev`)."""
    flat0, unravel = ravel_pytree(params)
    grad = jax.jit(lambda f: ravel_pytree(jax.grad(loss_fn)(unravel(f)))[0])
    loss = jax.jit(lambda f: loss_fn(unravel(f)))
    grad(flat0).block_until_ready()
    loss(flat0).block_until_ready()
    calls = [0]

    def rhs(t, y):
        calls[0] += 1
        return -np.asarray(grad(y))

    stepper = _vode_stepper(rhs, flat0, rtol, atol) if integrator == "vode-bdf" else (
        _lsoda_stepper(rhs, flat0, rtol, atol, t1) if integrator == "lsoda" else None)
    if stepper is None:
        raise ValueError(f"unknown scipy integrator {integrator!r}; use 'vode-bdf' or 'lsoda'")
    value = float(loss(flat0))
    history_t, history = [0.0], [value]
    status, start, steps = "horizon_reached", time.perf_counter(), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while True:
            if value < target:
                status = "target_reached"
                break
            if time.perf_counter() - start > time_cap:
                status = "time_cap"
                break
            if steps == max_steps:
                status = "max_steps_reached"
                break
            t, y, ok = stepper(t1)
            steps += 1
            if not ok:
                status = "failed"
                break
            value = float(loss(y))
            history_t.append(t)
            history.append(value)
            if t >= t1:
                break
    elapsed = time.perf_counter() - start
    t, y, num_jacobians = stepper(None)
    return {
        "status": status,
        "time_s": elapsed,
        "loss": value,
        "params": unravel(y),
        "t": float(t),
        "nfe": calls[0],
        "num_steps": steps,
        "num_jacobians": num_jacobians,
        "loss_history": np.asarray(history),
        "history_t": np.asarray(history_t),
    }


def _vode_stepper(rhs, y0, rtol, atol):
    """VODE with BDF and a chord iteration on its finite-difference Jacobian, one
    internal step per call (`itask=2`). Called with `None`: (t, y, Jacobians)."""
    from scipy.integrate import ode  # imported here: scipy.integrate costs 0.3 s at import

    solver = ode(rhs)
    solver.set_integrator("vode", method="bdf", with_jacobian=True, rtol=rtol, atol=atol)
    solver.set_initial_value(np.asarray(y0), 0.0)

    def step(t1):
        if t1 is None:
            return solver.t, solver.y, int(solver._integrator.iwork[12])  # NJE
        solver.integrate(t1, step=True)
        return solver.t, solver.y, solver.successful()

    return step


def _lsoda_stepper(rhs, y0, rtol, atol, t1):
    """LSODA (automatic stiff/non-stiff switching, finite-difference Jacobian when
    stiff) through `scipy.integrate.LSODA`, one internal step per call."""
    from scipy.integrate import LSODA

    solver = LSODA(rhs, 0.0, np.asarray(y0), t1, rtol=rtol, atol=atol)

    def step(t_end):
        if t_end is None:
            return solver.t, solver.y, int(solver.njev)
        solver.step()
        return solver.t, solver.y, solver.status != "failed"

    return step
