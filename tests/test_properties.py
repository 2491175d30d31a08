"""Property-based tests (hypothesis) of `solve`, `gradient_flow` and `ODEBlock` over
shapes, dtypes, tolerances and pytree structures, on linear problems whose solution
is known in closed form. Derandomised: the same examples on every run."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import odeflow
from odeflow.nn import ODEBlock

SETTINGS = settings(max_examples=7, deadline=None, derandomize=True)

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
dtypes = st.sampled_from([jnp.float32, jnp.float64])
structures = st.sampled_from(["array", "dict", "tuple"])


@st.composite
def states(draw):
    """A pytree of float arrays (one dtype), values in [0.5, 2] and decay rates in
    [0.1, 3] of the same structure."""
    structure, dtype = draw(structures), draw(dtypes)
    count = {"array": 1, "dict": 2, "tuple": 3}[structure]
    leaves = []
    for _ in range(count):
        shape = draw(shapes)
        size = int(np.prod(shape))
        value = draw(st.lists(st.floats(0.5, 2.0), min_size=size, max_size=size))
        rate = draw(st.lists(st.floats(0.1, 3.0), min_size=size, max_size=size))
        leaves.append((np.reshape(value, shape).astype(dtype), np.reshape(rate, shape).astype(dtype)))
    pack = {"array": lambda xs: xs[0], "dict": lambda xs: {"a": xs[0], "b": xs[1]},
            "tuple": lambda xs: tuple(xs)}[structure]
    return pack([jnp.asarray(v) for v, _ in leaves]), pack([jnp.asarray(r) for _, r in leaves])


def _same_layout(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)


def _close(a, b, rtol, dtype):
    # global error of an adaptive solve: a modest multiple of the tolerance, and
    # never below the working precision
    bound = max(50 * rtol, 50 * float(jnp.finfo(dtype).eps))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=bound,
                                   atol=bound)


@SETTINGS
@given(state=states(), solver=st.sampled_from(["tsit5", "kvaerno5", "ros2", "auto"]),
       log_rtol=st.floats(-8, -3), t1=st.floats(0.1, 3.0))
def test_solve_linear_decay(state, solver, log_rtol, t1):
    y0, rate = state
    dtype = jax.tree.leaves(y0)[0].dtype
    rtol = max(10.0 ** log_rtol, 1e-5 if dtype == jnp.float32 else 0.0)
    if solver == "ros2":  # second order: tight tolerances cost 10^4+ steps
        rtol = max(rtol, 1e-5)
    sol = odeflow.solve(lambda t, y, k: jax.tree.map(lambda a, b: -a * b, k, y), y0, t0=0.0, t1=t1,
                        solver=solver, rtol=rtol, atol=rtol * 1e-2, args=rate)
    out = jax.tree.map(lambda y: y[-1], sol.ys)
    _same_layout(out, y0)
    _close(out, jax.tree.map(lambda y, k: y * jnp.exp(-k * t1), y0, rate), rtol, dtype)
    s = sol.stats
    assert bool(sol.success) and int(s.nfe) > 0
    assert int(s.num_steps) == int(s.num_accepted) + int(s.num_rejected) >= 1


@SETTINGS
@given(state=states(), solver=st.sampled_from(["tsit5", "auto", "ros2", "kvaerno3"]),
       log_rtol=st.floats(-7, -4))
def test_gradient_flow_descends_a_quadratic(state, solver, log_rtol):
    centre, curvature = state
    dtype = jax.tree.leaves(centre)[0].dtype
    rtol = max(10.0 ** log_rtol, 1e-5 if dtype == jnp.float32 else 0.0)
    loss = lambda p: sum(jnp.sum(0.5 * k * (x - c) ** 2) for x, c, k in
                         zip(jax.tree.leaves(p), jax.tree.leaves(centre), jax.tree.leaves(curvature)))
    p0 = jax.tree.map(jnp.zeros_like, centre)
    res = odeflow.gradient_flow(loss, p0, solver=solver, rtol=rtol, atol=rtol, t1=2.0)
    _same_layout(res.params, p0)
    # the flow of a quadratic: p(t) = c + (p0 - c) exp(-k t)
    _close(res.params, jax.tree.map(lambda c, k: c * (1 - jnp.exp(-2.0 * k)), centre, curvature),
           rtol, dtype)
    history = np.asarray(res.loss_history)
    history = history[np.isfinite(history)]
    assert len(history) >= 2 and np.all(np.diff(history) <= 1e-6 * history[0])  # downhill
    assert res.status_name == "horizon_reached"


@settings(max_examples=6, deadline=None, derandomize=True)  # each example: 2 compiles
@given(state=states(), gradient=st.sampled_from(["checkpoint", "backsolve", "direct", "forward"]),
       t1=st.floats(0.2, 2.0))
def test_ode_block_output_and_gradient(state, gradient, t1):
    h0, rate = state
    dtype = jax.tree.leaves(h0)[0].dtype
    rtol = 1e-5 if dtype == jnp.float32 else 1e-9
    block = ODEBlock(lambda t, h, k: jax.tree.map(lambda a, b: -a * b, k, h), t1=t1, rtol=rtol,
                     atol=rtol * 1e-2, gradient=gradient)
    out = block(h0, rate)
    _same_layout(out, h0)
    _close(out, jax.tree.map(lambda h, k: h * jnp.exp(-k * t1), h0, rate), rtol, dtype)
    # d/dk of sum(h0 exp(-k t1)) = -t1 h0 exp(-k t1)
    grad = jax.grad(lambda k: sum(jnp.sum(x) for x in jax.tree.leaves(block(h0, k))))(rate)
    _same_layout(grad, rate)
    _close(grad, jax.tree.map(lambda h, k: -t1 * h * jnp.exp(-k * t1), h0, rate), 10 * rtol, dtype)
