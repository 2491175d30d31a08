"""Every gradient method with every kind of solver, against forward-mode sensitivities
and a central finite difference, in float64: explicit solvers through
`odeflow.nn.gradient_check` (which also counts the backward evaluations), the
solvers that differentiate the field in their steps (implicit, Rosenbrock,
switching) directly."""

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
TIGHT = dict(rtol=1e-10, atol=1e-12, max_steps=100_000)


@pytest.mark.parametrize("name, options", [("tsit5", {}), ("rk4", {"dt0": 0.02})])
def test_gradient_methods_agree_explicit(name, options):
    block = ODEBlock(_field([1.0, 5.0]), solver=name, **(TIGHT | options))
    report = gradient_check(block, H0)
    for method, r in report.items():
        # backsolve integrates the state back in time: its error follows the tolerance
        tol = 1e-5 if method == "backsolve" else 1e-9
        assert r["max_rel_error_vs_forward"] < tol, (name, method, r)
        assert r["directional_error_vs_fd"] < 1e-7, (name, method, r)


# Newton-Krylov and switching solvers differentiate by the same machinery; every
# registered solver's gradient is checked in tests/solvers/test_protocol.py
@pytest.mark.parametrize("solver, options", [
    ("kvaerno5", {}),
    ("ros2", {"rtol": 1e-8, "atol": 1e-10}),
    (dfx.Kvaerno5(), {}),
])
def test_gradient_methods_agree_with_solvers_that_linearize(solver, options):
    """Newton solves differentiated implicitly, Krylov solves as exact solves: every
    gradient method agrees with forward mode and a central difference. Counting their
    backward evaluations is refused (the counter's custom_vjp blocks the Jacobian
    these solvers take of the field)."""
    block = ODEBlock(_field([1.0, 5.0]), solver=solver, **(TIGHT | options))
    params, static = eqx.partition(block, eqx.is_inexact_array)

    def loss(p, h, method):
        return jnp.sum(dataclasses.replace(eqx.combine(p, static), gradient=method)(h) ** 2)

    grad = lambda method: ravel_pytree(jax.grad(loss, argnums=(0, 1))(params, H0, method))[0]
    reference = grad("forward")
    scale = jnp.max(jnp.abs(reference))
    for method in GRADIENTS:
        error = jnp.max(jnp.abs(grad(method) - reference)) / scale
        assert error < (5e-6 if method == "backsolve" else 1e-8), (solver, method, error)
    flat, unravel = ravel_pytree((params, H0))
    direction = jax.random.normal(jax.random.key(1), flat.shape, flat.dtype)
    direction = direction / jnp.linalg.norm(direction)
    eps = 1e-6
    at = lambda s: loss(*unravel(flat + s * direction), "checkpoint")
    difference = (at(eps) - at(-eps)) / (2 * eps)
    assert abs(float(difference - reference @ direction)) < 1e-6 * float(scale)
    with pytest.raises(ValueError, match="count_nfe=False"):
        gradient_check(block, H0, gradients=("checkpoint",))


def test_gradient_check_exposes_backsolve_on_stiff_dynamics():
    """Backsolve recovers the state by integrating backwards, where decay at rate 50
    becomes growth at rate 50 (e^50 over [0, 1]): its gradient is wrong by tens of
    percent at rtol 1e-10, while discretise-then-optimise stays exact."""
    block = ODEBlock(_field([1.0, 50.0]), **TIGHT)
    report = gradient_check(block, H0, gradients=("checkpoint", "backsolve"))
    assert report["checkpoint"]["max_rel_error_vs_forward"] < 1e-9
    assert report["backsolve"]["max_rel_error_vs_forward"] > 1e-2
