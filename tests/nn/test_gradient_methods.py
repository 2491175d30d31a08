"""Every gradient method each solver admits, against forward-mode sensitivities and a
central finite difference, in float64 (`odeflow.nn.gradient_check`); the combinations
a solver refuses raise an error naming the ones that work."""

import dataclasses

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from jax.flatten_util import ravel_pytree

from odeflow.nn import GRADIENTS, ODEBlock, gradient_check


class Field(eqx.Module):
    """A small MLP plus linear decay at the given rates."""

    mlp: eqx.nn.MLP
    rates: jax.Array

    def __call__(self, t, h, args):
        return jnp.tanh(self.mlp(h)) - self.rates * h


def _field(rates):
    return Field(eqx.nn.MLP(2, 2, 6, 1, key=jax.random.key(0)), jnp.asarray(rates))


H0 = jnp.array([0.3, -0.4])
# solver: (block options, methods checked here, methods refused, finite-difference
# tolerance). ROS2's reverse modes are checked below (their counting is refused).
ADMITTED = {
    "tsit5": ({}, GRADIENTS, (), 1e-7),
    "rk4": ({"dt0": 0.02}, GRADIENTS, (), 1e-7),
    "ros2": ({"rtol": 1e-8, "atol": 1e-10}, ("forward",), ("backsolve",), 1e-5),
    "kvaerno5": ({}, ("forward",), ("checkpoint", "direct", "backsolve"), 1e-7),
    "auto": ({}, ("forward",), ("checkpoint", "direct", "backsolve"), 1e-7),
}


@pytest.mark.parametrize("name", list(ADMITTED))
def test_gradient_methods_agree(name):
    options, admitted, refused, fd_tol = ADMITTED[name]
    block_options = dict(solver=name, rtol=1e-10, atol=1e-12, max_steps=100_000) | options
    field = _field([1.0, 5.0])
    for method in refused:
        with pytest.raises(ValueError, match="gradient='forward'"):
            ODEBlock(field, gradient=method, **block_options)
    block = ODEBlock(field, **(block_options | {"gradient": admitted[0]}))
    report = gradient_check(block, H0, gradients=admitted)
    for method, r in report.items():
        # backsolve integrates the state back in time: its error follows the tolerance
        tol = 1e-5 if method == "backsolve" else 1e-9
        assert r["max_rel_error_vs_forward"] < tol, (name, method, r)
        assert r["directional_error_vs_fd"] < fd_tol, (name, method, r)


def test_gradient_check_exposes_backsolve_on_stiff_dynamics():
    """Backsolve recovers the state by integrating backwards, where decay at rate 50
    becomes growth at rate 50 (e^50 over [0, 1]): its gradient is wrong by tens of
    percent at rtol 1e-10, while discretise-then-optimise stays exact."""
    block = ODEBlock(_field([1.0, 50.0]), rtol=1e-10, atol=1e-12, max_steps=100_000)
    report = gradient_check(block, H0, gradients=("checkpoint", "backsolve"))
    assert report["checkpoint"]["max_rel_error_vs_forward"] < 1e-9
    assert report["backsolve"]["max_rel_error_vs_forward"] > 1e-2


def test_jacobian_forming_solvers_in_every_mode():
    """Solvers that form Jacobians of the field, in every mode they admit: ROS2
    (dense, differentiated through), a diffrax implicit solver instance (its Newton
    solves differentiated implicitly). Counting their backward evaluations is
    refused: the counter's custom_vjp blocks the Jacobian they take."""
    check_jacobian_solver(ODEBlock(_field([1.0, 5.0]), solver=dfx.Kvaerno5(), rtol=1e-10,
                                   atol=1e-12, max_steps=100_000), ("checkpoint", "direct", "backsolve"))
    check_jacobian_solver(ODEBlock(_field([1.0, 5.0]), solver="ros2", rtol=1e-8, atol=1e-10,
                                   max_steps=100_000), ("checkpoint", "direct"))


def check_jacobian_solver(block, methods):
    params, static = eqx.partition(block, eqx.is_inexact_array)

    def grad(method):
        loss = lambda p, h: jnp.sum(dataclasses.replace(eqx.combine(p, static), gradient=method)(h) ** 2)
        return ravel_pytree(jax.grad(loss, argnums=(0, 1))(params, H0))[0]

    reference = grad("forward")
    for method in methods:
        error = jnp.max(jnp.abs(grad(method) - reference)) / jnp.max(jnp.abs(reference))
        assert error < (1e-6 if method == "backsolve" else 1e-8), (method, error)
    with pytest.raises(ValueError, match="count_nfe=False"):
        gradient_check(block, H0, gradients=("checkpoint",))
