"""A minibatch training loop for models with ODE blocks: optax updates, per-step
history with the NFE of the forward and the backward pass, tolerance schedules,
evaluation, progress lines, and checkpoints that let an interrupted run resume to
the same result."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray, PyTree

from .._cache import CompileCache
from .._checks import check_float_tree, check_positive_int, check_tolerances
from .._io import ensure_writable
from .._progress import duration, log_line
from .._sharding import batch_sharding, device_count
from ..nn import EvaluationCounter, ODEBlock, counted
from ._checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from ._history import new_history

LossFn = Callable[[PyTree, dict, PRNGKeyArray], tuple[jax.Array, dict]]


@dataclasses.dataclass
class FitResult:
    """`model` and `opt_state` after the last completed step, `step` (steps done),
    `history` (see `odeflow.fitting.new_history`) and `status`: `"finished"`,
    `"interrupted"` (KeyboardInterrupt; saved if checkpointing) or
    `"non-finite loss at step s"` (the update of step s was discarded)."""

    model: PyTree
    opt_state: PyTree
    step: int
    history: dict
    status: str


def map_blocks(model: PyTree, fn: Callable[[ODEBlock], Any]) -> PyTree:
    """`model` with every `ODEBlock` in it replaced by `fn(block)`."""
    is_block = lambda x: isinstance(x, ODEBlock)
    return jax.tree.map(lambda x: fn(x) if is_block(x) else x, model, is_leaf=is_block)


def training_arrays(data: dict) -> dict:
    """The arrays minibatches are drawn from: all but held-out ones, whose names end
    in `_test` (so the dicts of `odeflow.data`, with `x_test` and `y_test`, can be
    passed as they are)."""
    if not isinstance(data, dict) or not data:
        raise TypeError("data must be a non-empty dict of arrays with a common leading axis, "
                        "e.g. {'x': images, 'y': labels}")
    return {k: v for k, v in data.items() if not str(k).endswith("_test")}


def _check_data(data: dict, batch_size: int) -> int:
    if not data:
        raise TypeError("data has only held-out arrays (names ending in _test); add the training "
                        "arrays, e.g. {'x': images, 'y': labels}")
    sizes = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in data.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(f"every data array needs the same leading (sample) axis; got sizes {sizes}")
    for k, v in data.items():
        if jnp.issubdtype(jnp.result_type(v), jnp.floating) and not np.all(np.isfinite(np.asarray(v))):
            raise ValueError(f"data[{k!r}] contains NaN or inf; clean or impute it before training")
    n = next(iter(sizes.values()))
    check_positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(f"batch_size ({batch_size}) exceeds the number of samples ({n})")
    return n


def _check_tolerances(tolerances) -> dict[int, tuple[float, float]]:
    if tolerances is None:
        return {}
    out = {}
    for step, pair in dict(tolerances).items():
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"tolerance schedule keys are steps (integers >= 0), got {step!r}")
        rtol, atol = pair
        check_tolerances(rtol, atol)
        out[int(step)] = (float(rtol), float(atol))
    return dict(sorted(out.items()))


def _tolerance_at(schedule, step):
    active = [pair for s, pair in schedule.items() if s <= step]
    return active[-1] if active else None


class _Batches:
    """Minibatch `i` of epoch `e` is a slice of the permutation drawn from
    `fold_in(key, e)`: any step's batch is known without replaying earlier ones."""

    def __init__(self, data, n, batch_size, key):
        self.data = {k: jnp.asarray(v) for k, v in data.items()}  # on the device once
        self.batch_size, self.key = batch_size, key
        self.n, self.per_epoch = n, n // batch_size
        self._epoch, self._order = None, None

    def indices(self, step):
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._order = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n))
            self._epoch = epoch
        return self._order[i * self.batch_size:(i + 1) * self.batch_size]

    def __call__(self, step):
        idx = self.indices(step)
        return {k: v[idx] for k, v in self.data.items()}


def _make_update(loss_fn, optimizer, counter, batch_sharding=None):
    def update(model, opt_state, batch, key):
        if batch_sharding is not None:  # data parallel: XLA reduces the gradients
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)

        def objective(m):
            if counter is not None:
                m = map_blocks(m, lambda b: counted(b, counter))
            return loss_fn(m, batch, key)

        (loss, metrics), grads = eqx.filter_value_and_grad(objective, has_aux=True)(model)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        updates, opt_state = optimizer.update(jax.tree.leaves(grads), opt_state, leaves)
        params = jax.tree.unflatten(treedef, optax.apply_updates(leaves, updates))
        return eqx.combine(params, static), opt_state, loss, metrics

    return update


def _make_step(update):
    """One step per call."""
    return eqx.filter_jit(update)


def _chunk_inputs(batches: _Batches, step_key, start: int, end: int):
    """Minibatch indices and keys of steps `start` to `end - 1` for `_make_chunk`:
    step `s` takes `batches.indices(s)` and `fold_in(step_key, s)`."""
    indices = np.stack([batches.indices(i) for i in range(start, end)])
    return indices, jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(start, end))


def _make_chunk(update):
    """Several steps per call (`lax.scan`, minibatches gathered on the device): the
    per-step dispatch and host round trip are paid once per chunk. A non-finite
    loss freezes the model and optimizer state from that step on, so the chunk
    returns the last good state."""

    @eqx.filter_jit
    def chunk(model, opt_state, data, indices, keys):
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def body(carry, xs):
            params, opt_state, ok = carry
            idx, key = xs
            batch = {k: v[idx] for k, v in data.items()}
            new_model, new_opt_state, loss, metrics = update(eqx.combine(params, static), opt_state, batch, key)
            ok = ok & jnp.isfinite(loss)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
            new_params = eqx.filter(new_model, eqx.is_inexact_array)
            return (keep(new_params, params), keep(new_opt_state, opt_state), ok), (loss, metrics)

        (params, opt_state, _), (losses, metrics) = jax.lax.scan(
            body, (params, opt_state, jnp.array(True)), (indices, keys))
        return eqx.combine(params, static), opt_state, losses, metrics

    return chunk


def _reporter(progress):
    if callable(progress):
        return progress
    return log_line if progress else None


_STEPS = CompileCache()


def _step_function(loss_fn, optimizer, *, count_nfe=False, devices=1, chunked=False):
    """The jitted step (or chunk) of one setting, and its evaluation counter. A
    second `fit` with an equal loss function and optimizer (the same objects, or
    closures built again from the same code and values) reuses the compiled code;
    the counter is read as differences, so sharing it between calls is safe."""

    def build():
        counter = EvaluationCounter() if count_nfe else None
        update = _make_update(loss_fn, optimizer, counter, batch_sharding(devices) if devices > 1 else None)
        return counter, (_make_chunk(update) if chunked else _make_step(update))

    return _STEPS.get((loss_fn, optimizer, count_nfe, devices, chunked), build)


def fit(model: PyTree, loss_fn: LossFn, data: dict, *, optimizer: optax.GradientTransformation,
        steps: int, batch_size: int, key: PRNGKeyArray, eval_fn: Callable | None = None,
        eval_every: int = 0, tolerances: dict | None = None, checkpoint: str | None = None,
        checkpoint_every: int = 100, resume: bool = True, count_nfe: bool = False,
        progress: bool | Callable[[str], None] = True, log_every: int = 50,
        steps_per_call: int = 1, devices: int = 1) -> FitResult:
    """Train `model` for `steps` optax steps on minibatches of `data`.

    **Arguments:**

    - `data`: a dict of arrays with a common leading (sample) axis, e.g.
      `{"x": images, "y": labels}`; arrays named `..._test` are held out (not
      batched), so `odeflow.data.digits()` can be passed as it is.
    - `loss_fn(model, batch, key) -> (loss, metrics)`: `batch` holds `batch_size`
      rows of each training array in `data`; `metrics` a dict of scalars, whose `"nfe"`
      entry (if any) is recorded as the forward NFE (see
      `odeflow.fitting.classification_loss`).
    - `optimizer`: an optax transformation; `key`: fixes the minibatch order and the
      keys handed to `loss_fn` (step `s` gets `fold_in(key, s)`).
    - `eval_fn(model) -> dict`: run every `eval_every` steps and at the end.
    - `tolerances`: `{step: (rtol, atol)}`, applied to every `ODEBlock` in the model
      from that step on (each new pair compiles the step once more).
    - `checkpoint`: a folder; the state is saved every `checkpoint_every` steps, at
      the end, on interruption and before an error propagates. With `resume` a run
      finds its checkpoint there and continues; the result equals an uninterrupted
      run's (same data order and keys).
    - `count_nfe`: also count the backward pass's vector-field products, on the host
      (`odeflow.nn.counted`; one callback per evaluation, which slows small models'
      steps, so it is off by default). The forward NFE is recorded either way
      when the loss reports it.
    - `progress`: `True` logs a line every `log_every` steps, a callable receives
      the lines, `False` is silent.
    - `steps_per_call`: steps run on the device per call (`lax.scan`, minibatches
      gathered there), which saves the per-step dispatch and host round trip of
      small models. Evaluation, logging and checkpoints then happen at the end of
      the chunk their step falls in; the history still has every step (times
      spread evenly over the chunk). Needs `count_nfe=False`.

    A second call with the same `loss_fn` and `optimizer` objects and a model of the
    same structure reuses the compiled step: build them once and pass them again.
    - `devices`: data parallel over this many local devices: each minibatch is
      split over them (`jax.sharding`), the model and optimizer state replicated,
      the gradients reduced by XLA; equal to one device within float round-off.
      `batch_size` must be a multiple; needs `count_nfe=False`.
    """
    check_positive_int(steps, "steps")
    check_positive_int(steps_per_call, "steps_per_call")
    if steps_per_call > 1 and count_nfe:
        raise ValueError("count_nfe=True counts each step's backward pass on the host and needs "
                         "steps_per_call=1; pass count_nfe=False to run several steps per call")
    devices = device_count(devices)
    if devices > 1 and (count_nfe or batch_size % devices):
        raise ValueError(f"data-parallel training over {devices} devices needs count_nfe=False and a "
                         f"batch_size that is a multiple of {devices}, got count_nfe={count_nfe}, "
                         f"batch_size={batch_size}")
    check_positive_int(checkpoint_every, "checkpoint_every")
    check_positive_int(log_every, "log_every")
    data = training_arrays(data)
    n = _check_data(data, batch_size)
    check_float_tree(eqx.filter(model, eqx.is_inexact_array), "the model's parameters")
    if checkpoint is not None:  # before any work, not at the first save
        ensure_writable(checkpoint, "choose a writable checkpoint folder")
    schedule = _check_tolerances(tolerances)
    data_key, step_key = jax.random.split(key)
    fingerprint = {"samples": n, "batch_size": batch_size,
                   "key": np.asarray(jax.random.key_data(key)).ravel().tolist()}
    # the optimizer sees the parameters as a flat list, so that changing a block's
    # static settings (tolerances) leaves its state valid
    opt_state = optimizer.init(jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    start, history, elapsed = 0, new_history(), 0.0
    if resume and has_checkpoint(checkpoint):
        (model, opt_state), (start, history, elapsed) = _resume(checkpoint, (model, opt_state), fingerprint)

    counter, run_chunk = _step_function(loss_fn, optimizer, count_nfe=count_nfe, devices=devices,
                                        chunked=steps_per_call > 1)
    batches = _Batches(data, n, batch_size, data_key)
    report = _reporter(progress)
    status, done = "finished", start  # done: steps completed and recorded
    t_start = time.perf_counter() - elapsed

    def save(step):
        if checkpoint is not None:
            meta = {"step": step, "history": history, "elapsed": time.perf_counter() - t_start,
                    "fingerprint": fingerprint}
            save_checkpoint(checkpoint, (model, opt_state), meta)

    crossed = lambda every, s, end: bool(every) and (end // every) > (s // every)
    try:
        s = start
        while s < steps:
            if s == start or s in schedule:
                model = _with_tolerances(model, _tolerance_at(schedule, s))
            end = min([s + steps_per_call, steps] + [c for c in schedule if c > s])
            before = (counter.vjp + counter.jvp) if counter else 0
            t0 = time.perf_counter() - t_start
            if steps_per_call == 1:
                new_model, new_opt_state, loss, metrics = run_chunk(
                    model, opt_state, batches(s), jax.random.fold_in(step_key, s))
                losses, metrics = np.asarray([loss]), {k: [v] for k, v in metrics.items()}
            else:
                indices, keys = _chunk_inputs(batches, step_key, s, end)
                new_model, new_opt_state, losses, metrics = run_chunk(
                    model, opt_state, batches.data, indices, keys)
                losses, metrics = np.asarray(losses), {k: np.asarray(v) for k, v in metrics.items()}
            good = int(np.argmin(np.isfinite(losses))) if not np.all(np.isfinite(losses)) else end - s
            if good or steps_per_call > 1:  # a failed single step is discarded; a chunk keeps its last good state
                model, opt_state = new_model, new_opt_state
            if counter is not None:
                jax.effects_barrier()
            t1 = time.perf_counter() - t_start
            for j in range(good):
                _record(history, s + j, float(losses[j]), {k: v[j] for k, v in metrics.items()}, counter,
                        before, t0 + (j + 1) * (t1 - t0) / (end - s))
            done = s + good
            if good < end - s:
                status = f"non-finite loss at step {done}"
                break
            last = end == steps
            if eval_fn is not None and (crossed(eval_every, s, end) or last):
                history["eval"].append({"step": end, **{k: float(v) for k, v in eval_fn(model).items()}})
            if report and (crossed(log_every, s, end) or last):
                report(_line(history, steps))
            if crossed(checkpoint_every, s, end) and not last:
                save(done)
            s = end
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException as e:
        save(done)
        if checkpoint is not None:
            e.add_note(f"odeflow.fit saved the state after {done} steps in {checkpoint}")
        raise
    save(done)
    return FitResult(model, opt_state, done, history, status)


def _resume(checkpoint, like, fingerprint):
    state, meta = load_checkpoint(checkpoint, like)
    if meta.get("fingerprint") != fingerprint:
        raise ValueError(f"the checkpoint in {checkpoint} comes from a run with other data, "
                         f"batch size or key ({meta.get('fingerprint')} vs {fingerprint}); "
                         "use another folder or resume=False")
    return state, (meta["step"], meta["history"], meta["elapsed"])


def _with_tolerances(model, pair):
    if pair is None:
        return model
    return map_blocks(model, lambda b: dataclasses.replace(b, rtol=pair[0], atol=pair[1]))


def _record(history, s, loss, metrics, counter, before, elapsed):
    metrics = {k: float(v) for k, v in metrics.items()}
    history["step"].append(s + 1)
    history["loss"].append(loss)
    history["nfe_forward"].append(int(metrics.pop("nfe", -1)))
    history["nfe_backward"].append(counter.vjp + counter.jvp - before if counter else -1)
    history["time"].append(elapsed)
    history["metrics"].append(metrics)


def _count(value: int) -> str:
    return "n/a" if value < 0 else str(value)


def _line(history, steps):
    """`step 500/2000 | loss 0.02587 | accuracy 0.91 | NFE fwd 45 bwd n/a | 5.9 s, ~18 s left`."""
    s, elapsed = history["step"][-1], history["time"][-1]
    parts = [f"step {s}/{steps}", f"loss {history['loss'][-1]:.4g}"]
    parts += [f"{k} {v:.4g}" for k, v in history["metrics"][-1].items()]
    parts.append(f"NFE fwd {_count(history['nfe_forward'][-1])} bwd {_count(history['nfe_backward'][-1])}")
    if history["eval"] and history["eval"][-1]["step"] == s:
        parts += [f"{k} {v:.4g}" for k, v in history["eval"][-1].items() if k != "step"]
    left = elapsed / s * (steps - s)  # compile time included: an overestimate early on
    parts.append(f"{elapsed:.1f} s" + (f", ~{duration(left)} left" if s < steps else ""))
    return " | ".join(parts)
