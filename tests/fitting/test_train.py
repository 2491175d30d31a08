import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from odeflow import nn
from odeflow import fitting as T


def _setup(n=48):
    x = jax.random.normal(jax.random.key(0), (n, 1, 6))
    y = (x[:, 0, 0] > 0).astype(jnp.int32) + (x[:, 0, 1] > 0).astype(jnp.int32)
    model = nn.ODENet((1, 6), 3, key=jax.random.key(1), width=6, hidden=8, rtol=1e-4, atol=1e-6)
    return model, {"x": x, "y": y}


def _run(model, d, loss=None, **kw):
    options = dict(optimizer=optax.adam(1e-2), steps=12, batch_size=16, key=jax.random.key(2),
                   progress=False)
    options.update(kw)
    return T.fit(model, loss or T.classification_loss(), d, **options)


def _leaves(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


def test_loss_falls_and_history_is_complete(tmp_path):
    model, d = _setup()
    r = _run(model, d, steps=30, eval_fn=lambda m: T.evaluate_classifier(m, d["x"], d["y"]),
             eval_every=10, count_nfe=True)
    h = r.history
    assert r.status == "finished" and r.step == 30
    assert h["step"] == list(range(1, 31))
    assert np.mean(h["loss"][-5:]) < np.mean(h["loss"][:5])
    assert all(n > 0 for n in h["nfe_forward"]) and all(n > 0 for n in h["nfe_backward"])
    assert [e["step"] for e in h["eval"]] == [10, 20, 30]
    assert {"accuracy", "cross_entropy"} <= set(h["metrics"][0])
    json.dumps(h)
    T.plot_history(h, tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_backward_nfe_is_exact_for_checkpointing():
    """Backpropagation through the solver takes one vector-Jacobian product per
    forward evaluation of the accepted and rejected steps; the two evaluations of
    the initial step-size selection are not differentiated."""
    model, d = _setup()
    model = eqx.tree_at(lambda m: m.block, model, nn.ODEBlock(model.block.vector_field, dt0=0.1))
    r = _run(model, d, steps=3, count_nfe=True)
    # dt0 given: no selection; Tsit5 FSAL: 1 + 6 per step, all differentiated
    assert r.history["nfe_backward"] == r.history["nfe_forward"]


TRACES = []


def test_a_second_fit_reuses_the_compiled_step_and_logs_read():
    """Loss and optimizer built again from the same code and values: no new trace.
    The log line names the loss function's metrics and says n/a for what is not
    counted; a different learning rate compiles again."""
    model, d = _setup()

    def make_loss():
        inner = T.classification_loss()

        def loss(m, batch, key):
            TRACES.append(1)
            return inner(m, batch, key)
        return loss

    lines = []
    first = _run(model, d, steps=4, loss=make_loss(), progress=lines.append, log_every=2)
    traced = len(TRACES)
    again = _run(model, d, steps=4, loss=make_loss(), progress=lines.append, log_every=2)
    assert len(TRACES) == traced and again.history["loss"] == first.history["loss"]
    _run(model, d, steps=4, loss=make_loss(), optimizer=optax.adam(2e-2))
    assert len(TRACES) > traced
    assert lines[0].startswith("step 2/4 | loss ") and "accuracy" in lines[0]
    assert "bwd n/a" in lines[0] and "left" in lines[0] and "left" not in lines[1]


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    model, d = _setup()
    whole = _run(model, d)

    def interrupt_at_7(line):
        if line.startswith("step 7/"):
            raise KeyboardInterrupt

    part = _run(model, d, checkpoint=tmp_path, checkpoint_every=5, progress=interrupt_at_7,
                log_every=1)
    assert part.status == "interrupted" and part.step == 7
    resumed = _run(model, d, checkpoint=tmp_path)
    assert resumed.status == "finished" and resumed.step == 12
    for a, b in zip(_leaves(whole.model), _leaves(resumed.model)):
        np.testing.assert_array_equal(a, b)
    assert resumed.history["loss"] == whole.history["loss"]
    assert resumed.history["nfe_forward"] == whole.history["nfe_forward"]
    # a finished run resumes to itself without training
    again = _run(model, d, checkpoint=tmp_path)
    assert again.step == 12 and again.history["loss"] == whole.history["loss"]


def test_tolerance_schedule_changes_the_work():
    model, d = _setup()
    r = _run(model, d, steps=6, tolerances={0: (1e-2, 1e-4), 3: (1e-7, 1e-9)})
    nfe = r.history["nfe_forward"]
    assert max(nfe[:3]) < min(nfe[3:])
    block = r.model.block
    assert (block.rtol, block.atol) == (1e-7, 1e-9)


def test_non_finite_loss_stops_and_keeps_the_last_good_model(tmp_path):
    model, d = _setup()
    def exploding(m, batch, key):
        loss, metrics = T.classification_loss()(m, batch, key)
        step_is_late = jnp.sum(batch["x"]) > -1e9  # always true, traced
        return jnp.where(step_is_late, jnp.inf, loss), metrics

    r = T.fit(model, exploding, d, optimizer=optax.sgd(0.1), steps=5, batch_size=16,
                key=jax.random.key(0), progress=False, checkpoint=tmp_path)
    assert r.status == "non-finite loss at step 0" and r.step == 0
    assert T.has_checkpoint(tmp_path) and r.history["loss"] == []
    for a, b in zip(_leaves(model), _leaves(r.model)):
        np.testing.assert_array_equal(a, b)


def test_penalties_through_training():
    model, d = _setup()
    r = T.fit(model, T.classification_loss(kinetic=0.1, jacobian=0.1), d, optimizer=optax.adam(1e-2),
                steps=3, batch_size=16, key=jax.random.key(2), progress=False)
    assert r.status == "finished"
    assert all(m["kinetic"] > 0 and m["jacobian"] > 0 for m in r.history["metrics"])
    with pytest.raises(ValueError, match="kinetic"):
        T.classification_loss(kinetic=-1.0)
    res = nn.ResNet((1, 6), 3, key=jax.random.key(1), width=6, hidden=8)
    with pytest.raises(TypeError, match="solve_penalised"):
        T.fit(res, T.classification_loss(kinetic=1.0), d, optimizer=optax.adam(1e-2), steps=1,
                batch_size=16, key=jax.random.key(2), progress=False)


def test_steps_per_call_matches_one_step_per_call():
    """Scanning several steps per call on the device trains the same model from the
    same batches and keys (float round-off apart); the history has every step."""
    model, d = _setup()
    one = _run(model, d, steps=10, count_nfe=False)
    scanned = _run(model, d, steps=10, count_nfe=False, steps_per_call=4,
                   eval_fn=lambda m: T.evaluate_classifier(m, d["x"], d["y"]), eval_every=5)
    assert scanned.status == "finished" and scanned.step == 10
    assert scanned.history["step"] == list(range(1, 11))
    np.testing.assert_allclose(scanned.history["loss"], one.history["loss"], rtol=1e-4)
    assert scanned.history["nfe_forward"] == one.history["nfe_forward"]
    for a, b in zip(_leaves(one.model), _leaves(scanned.model)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # evaluation at the end of the chunk its step falls in: steps 5 -> 8, 10 -> 10
    assert [e["step"] for e in scanned.history["eval"]] == [8, 10]
    assert np.all(np.diff(scanned.history["time"]) >= 0)
    with pytest.raises(ValueError, match="count_nfe=False"):
        _run(model, d, steps_per_call=4, count_nfe=True)


def test_steps_per_call_keeps_the_last_good_state_on_a_non_finite_loss():
    """A loss that turns NaN below a threshold first reached at step j: with one
    step per call and with a six-step chunk the run stops at j with the model of
    j clean steps."""
    model, d = _setup()
    clean = _run(model, d, steps=6, count_nfe=False)
    losses = clean.history["loss"]
    j = next(i for i in range(2, 6) if losses[i] < min(losses[:i]))
    threshold = (losses[j] + min(losses[:j])) / 2

    def poisoned(m, batch, key):
        loss, metrics = T.classification_loss()(m, batch, key)
        return jnp.where(loss < threshold, jnp.nan, loss), metrics

    clean_j = _run(model, d, steps=j, count_nfe=False)
    for k in (1, 6):
        r = T.fit(model, poisoned, d, optimizer=optax.adam(1e-2), steps=6, batch_size=16,
                    key=jax.random.key(2), progress=False, count_nfe=False, steps_per_call=k)
        assert r.status == f"non-finite loss at step {j}" and r.step == j
        np.testing.assert_allclose(r.history["loss"], losses[:j], rtol=1e-4)
        for a, b in zip(_leaves(clean_j.model), _leaves(r.model)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
