"""Results that read: statistics print their counts (a batch its spread) and sum over
a batch; the outcome prints in words."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import pytest

import odeflow
from odeflow.solvers import NOT_COUNTED, Result, SolverStats, Work


def _solve(rate, **kwargs):
    return odeflow.solve(lambda t, y, k: -k * y, jnp.ones(2), t0=0.0, t1=1.0, args=rate,
                         solver="kvaerno3", **kwargs)


def test_stats_print_their_counts():
    stats = _solve(10.0).stats
    text = str(stats)
    assert text.startswith("SolverStats(nfe=") and f"num_steps={int(stats.num_steps)}" in text
    assert repr(stats) == text and "i32[]" not in text


def test_batched_stats_print_their_spread_and_sum():
    rates = jnp.array([1.0, 10.0, 100.0])
    batch = jax.vmap(lambda k: _solve(k).stats)(rates)
    text = str(batch)
    assert "batch of shape (3,)" in text and "min / median / max" in text
    steps = [int(_solve(k).stats.num_steps) for k in rates]
    line = next(row for row in text.splitlines() if row.strip().startswith("num_steps "))
    assert line.split()[-5:] == [str(min(steps)), "/", str(sorted(steps)[1]), "/", str(max(steps))]
    total = batch.sum()
    assert int(total.num_steps) == sum(steps) and total.num_steps.shape == ()
    unknown = SolverStats.make(nfe=jnp.array([3, NOT_COUNTED]))
    assert int(unknown.sum().nfe) == NOT_COUNTED  # a count not known stays unknown
    # totals over one axis only: two stacked batches of two samples, added per sample
    rows = [jax.vmap(lambda n: SolverStats.make(nfe=n, num_steps=1))(jnp.array(r)) for r in ([3, 4], [5, NOT_COUNTED])]
    by_sample = jax.tree.map(lambda *counts: jnp.stack(counts), *rows).sum(axis=0)
    assert by_sample.nfe.tolist() == [8, NOT_COUNTED] and by_sample.num_steps.tolist() == [2, 2]


def test_work_reads_by_name_adds_and_prints():
    work = Work.of(nfe=3, num_jvps=jnp.array(True)) + Work.of(nfe=2, num_newton_failures=1)
    assert (int(work.nfe), int(work.num_jvps), int(work.num_newton_failures), int(work.num_jacobians)) == (5, 1, 1, 0)
    assert str(work).startswith("Work(nfe=5, num_jacobians=0, num_jvps=1,")
    batch = jax.vmap(lambda n: Work.of(nfe=n, num_stiff_steps=2))(jnp.arange(3))
    assert batch.nfe.tolist() == [0, 1, 2] and batch.as_dict()["num_stiff_steps"].tolist() == [2, 2, 2]
    assert "nfe=[0, 1, 2]" in str(batch)
    with pytest.raises(TypeError, match="unknown work fields"):
        Work.of(evaluations=1)


def test_outcome_prints_in_words():
    ok = _solve(1.0)
    assert str(ok.result) == "successful" and ok.status == "successful"
    assert ok.result == dfx.RESULTS.successful and bool(ok.success)
    short = _solve(1.0, max_steps=2, throw=False)
    assert str(short.result).startswith("max_steps_reached: The maximum number of solver steps")
    assert isinstance(short.result, dfx.RESULTS)  # still diffrax's code wherever it is used
    batch = jax.vmap(lambda n: Result.of(dfx.RESULTS.where(n > 0, dfx.RESULTS.successful,
                                                           dfx.RESULTS.max_steps_reached)))
    assert "successful" in str(batch(jnp.array([1, 0]))) and "max_steps_reached" in str(
        batch(jnp.array([1, 0])))


@pytest.mark.parametrize("solver", ["tsit5", dfx.Tsit5()])
def test_the_controller_state_comes_back_on_request(solver):
    """`SaveAt(controller_state=True)`: the final state of the controller given to
    `solve` (a PID controller's: the last two error ratios), without odeflow's
    counting wrapped around it; `None` otherwise."""
    field = lambda t, y, k: -k * y
    kw = dict(t0=0.0, t1=1.0, dt0=1e-3, args=10.0, solver=solver,
              controller=dfx.PIDController(rtol=1e-6, atol=1e-8))
    saved = odeflow.solve(field, jnp.ones(2), saveat=dfx.SaveAt(t1=True, controller_state=True), **kw)
    plain = dfx.diffeqsolve(dfx.ODETerm(field), dfx.Tsit5(), 0.0, 1.0, 1e-3, jnp.ones(2), args=10.0,
                            stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8),
                            saveat=dfx.SaveAt(t1=True, controller_state=True))
    ours, theirs = jax.tree.leaves(saved.controller_state), jax.tree.leaves(plain.controller_state)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):  # odeflow's Tsit5 rounds its error estimate its own way
        assert float(a) == pytest.approx(float(b), rel=1e-6)
    assert odeflow.solve(field, jnp.ones(2), **kw).controller_state is None
