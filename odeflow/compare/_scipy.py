"""The approach of the original article, as a reference: scipy.integrate's VODE (BDF)
or LSODA on the gradient flow, with the Jacobian (the loss Hessian) left to the
integrator's finite differences, stepping one internal step at a time so it stops at
the same rule as every other method and at a wall-time cap."""

from __future__ import annotations

import time
import warnings

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.integrate import ode


def scipy_flow(loss_fn, params, *, integrator: str, target: float, rtol: float, atol: float,
               time_cap: float, t1: float = 1e8, max_steps: int = 1_000_000) -> dict:
    """Integrate dθ/dt = -∇L(θ) with scipy; returns a record of the run.

    `integrator` is `"vode-bdf"` or `"lsoda"`. The gradient is a jitted JAX function
    (compiled before the clock starts); the Jacobian is formed by the integrator's
    own finite differences, as in the article. Counts come from the integrator's
    IWORK array (NST, NFE, NJE) and from counting calls of the right-hand side."""
    flat0, unravel = ravel_pytree(params)
    grad = jax.jit(lambda f: ravel_pytree(jax.grad(loss_fn)(unravel(f)))[0])
    loss = jax.jit(lambda f: loss_fn(unravel(f)))
    grad(flat0).block_until_ready()
    loss(flat0).block_until_ready()
    calls = [0]

    def rhs(t, y):
        calls[0] += 1
        return -np.asarray(grad(y))

    solver = ode(rhs)
    if integrator == "vode-bdf":
        solver.set_integrator("vode", method="bdf", with_jacobian=True, rtol=rtol, atol=atol)
    elif integrator == "lsoda":
        solver.set_integrator("lsoda", rtol=rtol, atol=atol)
    else:
        raise ValueError(f"unknown scipy integrator {integrator!r}; use 'vode-bdf' or 'lsoda'")
    solver.set_initial_value(np.asarray(flat0), 0.0)
    value = float(loss(flat0))
    history_t, history = [0.0], [value]
    status, start = "horizon_reached", time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(max_steps):
            if value < target:
                status = "target_reached"
                break
            if time.perf_counter() - start > time_cap:
                status = "time_cap"
                break
            if solver.t >= t1:
                break
            solver.integrate(t1, step=True)
            if not solver.successful() and solver.get_return_code() not in (1, 2):
                status = "failed"
                break
            value = float(loss(solver.y))
            history_t.append(solver.t)
            history.append(value)
        else:
            status = "max_steps_reached"
    elapsed = time.perf_counter() - start
    iwork = solver._integrator.iwork
    return {
        "status": status,
        "time_s": elapsed,
        "loss": value,
        "params": unravel(solver.y),
        "t": float(solver.t),
        "nfe": calls[0],
        "num_steps": int(iwork[10]),
        "num_jacobians": int(iwork[12]),
        "loss_history": np.asarray(history),
        "history_t": np.asarray(history_t),
    }
