"""Bad input, entry point by entry point: each case raises an error that names the
fix, before any work and with nothing half-written on disk (the files under the
test's folder are byte for byte what they were before the call).

`CASES` is the catalogue the README counts; the partial-result cases (max_steps
exhausted with `throw=False`) follow it."""

import contextlib
import io
import shutil

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import odeflow
from odeflow import data, nn
from odeflow import fitting as T
from odeflow.cli import main
from odeflow.comparison import compare

CASES = {}


def case(name, exc, match, checkpoint=False):
    """Register `setup(folder) -> call` (with `checkpoint`: `setup(folder, saved)`,
    `saved` a valid checkpoint folder): `call()` must raise `exc` matching `match`."""
    def register(setup):
        CASES[name] = (setup, exc, match, checkpoint)
        return setup
    return register


decay = lambda t, y, args: -y
quadratic = lambda p: jnp.sum((p - 1.0) ** 2)


def _solve(**kwargs):
    options = dict(t0=0.0, t1=1.0, solver="tsit5") | kwargs
    y0 = options.pop("y0", jnp.ones(2))
    field = options.pop("field", decay)
    return lambda folder: lambda: odeflow.solve(field, y0, **options)


for name, kwargs, exc, match in [
    ("solve: NaN in y0", dict(y0=jnp.array([1.0, jnp.nan])), ValueError, "NaN or inf"),
    ("solve: inf in y0", dict(y0=jnp.array([jnp.inf, 1.0])), ValueError, "NaN or inf"),
    ("solve: integer y0", dict(y0=jnp.array([1, 2])), TypeError, "floating-point.*astype"),
    ("solve: empty y0 pytree", dict(y0={}), ValueError, "no array leaves"),
    ("solve: field output shape", dict(field=lambda t, y, a: jnp.ones(3)), ValueError,
     r"returns shapes \(3,\) for a state of shapes \(2,\)"),
    ("solve: field output structure", dict(field=lambda t, y, a: {"y": y}), ValueError,
     "structure and shapes of y0"),
    ("solve: field rejects the state", dict(field=lambda t, y, a: jnp.ones((3, 3)) @ y), TypeError,
     "must accept the state's shapes"),
    ("solve: negative rtol", dict(rtol=-1e-6), ValueError, "rtol must be a positive"),
    ("solve: zero atol", dict(atol=0.0), ValueError, "atol must be a positive"),
    ("solve: infinite rtol", dict(rtol=float("inf")), ValueError, "rtol must be a positive finite"),
    ("solve: t1 == t0", dict(t0=1.0, t1=1.0), ValueError, "t0 and t1 must differ"),
    ("solve: dt0 away from t1", dict(t0=1.0, t1=0.0, dt0=0.1), ValueError,
     r"dt0 must be a finite negative \(t1 < t0\) step.*dt0=-0.01"),
    ("solve: non-finite t1", dict(t1=float("nan")), ValueError, "must be finite"),
    ("solve: unknown solver", dict(solver="rk45"), ValueError, "unknown solver 'rk45'.*tsit5"),
    ("solve: solver of the wrong type", dict(solver=45), TypeError, "registered name"),
    ("solve: fixed step without dt0", dict(solver="euler"), ValueError, "pass dt0"),
    ("solve: negative dt0", dict(dt0=-0.1), ValueError, r"dt0 must be a finite positive \(t1 > t0\)"),
    ("solve: max_steps 0", dict(max_steps=0), ValueError, "max_steps must be a positive integer"),
    ("solve: max_steps exhausted, throw=True", dict(t1=100.0, max_steps=3, rtol=1e-10, atol=1e-12),
     Exception, "maximum number of solver steps.*max_steps"),
]:
    case(name, exc, match)(_solve(**kwargs))


def _flow(params=jnp.zeros(2), loss=quadratic, **kwargs):
    return lambda folder: lambda: odeflow.gradient_flow(loss, params, **kwargs)


nan_data = jnp.array([1.0, jnp.nan])
for name, setup, exc, match in [
    ("gradient_flow: NaN in parameters", _flow({"w": jnp.array([jnp.nan, 1.0])}), ValueError, "NaN"),
    ("gradient_flow: integer parameters", _flow(jnp.array([1, 2])), TypeError, "floating-point"),
    ("gradient_flow: NaN in the data", _flow(loss=lambda p: jnp.sum((p - nan_data) ** 2), t1=1.0),
     Exception, "loss at the initial parameters is NaN or inf; check the data"),
    ("gradient_flow: t1 <= 0", _flow(t1=-1.0), ValueError, "t1 must be greater than t0"),
    ("gradient_flow: unknown solver", _flow(solver="bdf9"), ValueError, "unknown solver 'bdf9'"),
    ("gradient_flow: unknown curvature", _flow(solver="ros2", curvature="fisher"), ValueError,
     "unknown curvature 'fisher'.*gauss-newton"),
    ("gradient_flow: negative atol", _flow(atol=-1.0), ValueError, "atol must be a positive"),
    ("optimize: NaN in the data",
     lambda folder: lambda: odeflow.optimize(lambda p: jnp.sum((p - nan_data) ** 2), jnp.zeros(2),
                                             optax.sgd(0.1)),
     Exception, "loss at the initial parameters is NaN or inf"),
]:
    case(name, exc, match)(setup)


mlp = eqx.nn.MLP(4, 4, 8, 1, key=jax.random.key(0))
mlp_field = lambda t, h, args: mlp(h)
for name, setup, exc, match in [
    ("ODEBlock: unknown gradient method", lambda f: lambda: nn.ODEBlock(decay, gradient="adjoint"),
     ValueError, "unknown gradient 'adjoint'"),
    ("ODEBlock: t1 == t0", lambda f: lambda: nn.ODEBlock(decay, t0=1.0, t1=1.0), ValueError,
     "t0 and t1 must differ"),
    ("ODEBlock: unknown solver", lambda f: lambda: nn.ODEBlock(decay, solver="rk45"), ValueError,
     "unknown solver"),
    ("ODEBlock: zero rtol", lambda f: lambda: nn.ODEBlock(decay, rtol=0.0), ValueError, "rtol"),
    ("ODEBlock: unknown batching", lambda f: lambda: nn.ODEBlock(decay, batching="each"), ValueError,
     "unknown batching 'each'.*per-sample.*vmap"),
    ("ODEBlock: constant steps without dt0", lambda f: lambda: nn.ODEBlock(decay, adaptive=False),
     ValueError, "adaptive=False.*dt0=0.05"),
    ("ODEBlock: t1 an array of several times", lambda f: lambda: nn.ODEBlock(decay, t1=jnp.ones(2)),
     TypeError, "t1 must be a number"),
    ("ODEBlock: traced end time",
     lambda f: lambda: jax.jit(lambda t1: nn.ODEBlock(decay, t1=t1)(jnp.ones(2)))(2.0),
     TypeError, "t1 is a fixed setting.*traced"),
    ("ODEBlock: integer state", lambda f: lambda: nn.ODEBlock(decay)(jnp.arange(3)), TypeError,
     "floating-point"),
    ("ODEBlock: NaN state", lambda f: lambda: nn.ODEBlock(decay)(jnp.array([jnp.nan])), ValueError,
     "NaN"),
    ("ODEBlock: state shape does not fit the field",
     lambda f: lambda: nn.ODEBlock(mlp_field)(jnp.ones(3)), TypeError, "must accept the state"),
    ("ODEBlock: times not monotonic",
     lambda f: lambda: nn.ODEBlock(decay).trajectory(jnp.ones(2), jnp.array([0.0, 1.0, 0.5])),
     Exception, "ts must be strictly increasing or strictly decreasing"),
    ("ODEBlock: max_steps exhausted",
     lambda f: lambda: nn.ODEBlock(lambda t, h, a: -1e4 * h, max_steps=3)(jnp.ones(2)),
     Exception, "max_steps"),
]:
    case(name, exc, match)(setup)


def _train_setup(n=24):
    x = jax.random.normal(jax.random.key(0), (n, 1, 6))
    y = (x[:, 0, 0] > 0).astype(jnp.int32)
    model = nn.ODENet((1, 6), 2, key=jax.random.key(1), width=4, hidden=4, rtol=1e-3, atol=1e-5)
    return model, {"x": x, "y": y}


def _train(folder=None, model=None, d=None, **kwargs):
    m, dd = _train_setup()
    options = dict(optimizer=optax.sgd(1e-2), steps=2, batch_size=8, key=jax.random.key(2),
                   progress=False, count_nfe=False, checkpoint=folder)
    return T.fit(m if model is None else model, T.classification_loss(), dd if d is None else d,
                   **(options | kwargs))


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    _train(folder)
    return folder


def _with_checkpoint(change=None):
    """Setup: a copy of a valid checkpoint in `folder/ckpt`, optionally damaged."""
    def setup(folder, source):
        shutil.copytree(source, folder / "ckpt")
        if change:
            change(folder / "ckpt")
        return folder / "ckpt"
    return setup


other_model = nn.ODENet((1, 6), 2, key=jax.random.key(1), width=5, hidden=4)
TRAIN = [
    ("fit: NaN in the data", lambda f: lambda: _train(d=dict(_train_setup()[1], x=jnp.full((24, 1, 6), jnp.nan))),
     ValueError, r"data\['x'\] contains NaN or inf"),
    ("fit: inf in the data",
     lambda f: lambda: _train(d=dict(_train_setup()[1], x=jnp.zeros((24, 1, 6)).at[0, 0, 0].set(jnp.inf))),
     ValueError, "contains NaN or inf"),
    ("fit: NaN in the parameters",
     lambda f: lambda: _train(model=jax.tree.map(lambda x: x * jnp.nan, _train_setup()[0])),
     ValueError, "parameters contains NaN"),
    ("fit: data arrays of different lengths",
     lambda f: lambda: _train(d=dict(_train_setup()[1], y=jnp.zeros(23, jnp.int32))),
     ValueError, "same leading"),
    ("fit: batch larger than the data", lambda f: lambda: _train(batch_size=25), ValueError,
     "batch_size .* exceeds"),
    ("fit: zero steps", lambda f: lambda: _train(steps=0), ValueError, "steps must be a positive"),
    ("fit: checkpoint_every 0", lambda f: lambda: _train(checkpoint_every=0), ValueError,
     "checkpoint_every must be a positive"),
    ("fit: negative tolerance in the schedule",
     lambda f: lambda: _train(tolerances={1: (-1e-3, 1e-6)}), ValueError, "rtol"),
]
for name, setup, exc, match in TRAIN:
    case(name, exc, match)(setup)


@case("fit: checkpoint folder cannot be written", ValueError,
      "cannot write to the folder .*writable checkpoint folder")
def _(folder):
    (folder / "file").write_text("a file where the folder should be")
    return lambda: _train(folder / "file" / "ckpt")

CHECKPOINTS = [
    ("fit: corrupt checkpoint", lambda c: (c / "meta.json").write_text("{trunc"), {}, "unreadable"),
    ("fit: checkpoint without its state file",
     lambda c: [p.unlink() for p in c.glob("state-*.eqx")], {}, "does not match|unreadable"),
    ("fit: checkpoint of another model", None, dict(model=other_model), "does not match this model"),
    ("fit: checkpoint of other data or key", None, dict(key=jax.random.key(7)),
     "other data, batch size or key"),
]
for name, change, kwargs, match in CHECKPOINTS:
    def _setup(folder, source, change=change, kwargs=kwargs):
        ckpt = _with_checkpoint(change)(folder, source)
        return lambda: _train(ckpt, steps=4, **kwargs)
    case(name, ValueError, match, checkpoint=True)(_setup)


def _compare(task="xor", methods=("adam",), **kwargs):
    return lambda f: lambda: compare(task, list(methods), **(dict(seeds=1) | kwargs))


for name, setup, exc, match in [
    ("compare: unknown task", _compare(task="xorr"), ValueError, "unknown task 'xorr'.*parity4"),
    ("compare: unknown method", _compare(methods=["adamw"]), ValueError, "unknown method.*adam"),
    ("compare: no methods", _compare(methods=[]), ValueError, "methods is empty"),
    ("compare: a list of tasks", _compare(task=["xor", "parity4"]), TypeError, "one task per call"),
    ("compare: negative target", _compare(target=-1.0), ValueError, "target must be a positive"),
    ("compare: zero seeds", _compare(seeds=0), ValueError, "seeds must be a positive"),
    ("compare: grid for a method not compared", _compare(grids={"gd": [0.1]}), ValueError,
     "not among the methods"),
    ("compare: empty grid", _compare(grids={"adam": []}), ValueError, "grid for 'adam' is empty"),
    ("compare: more devices than there are", _compare(devices=64), ValueError,
     "xla_force_host_platform_device_count"),
    ("tasks: unknown task", lambda f: lambda: odeflow.problems.get_task("parity5"), ValueError,
     "unknown task 'parity5'"),
]:
    case(name, exc, match)(setup)


class ExitCode2(Exception):
    pass


def _cli(*argv):
    def call(folder):
        def run():
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(list(argv) + ["--out", str(folder / "out")])
            if code == 2:
                raise ExitCode2(err.getvalue())
        return run
    return call


for name, setup, match in [
    ("CLI: unknown task", _cli("compare", "--task", "nope"), "unknown task"),
    ("CLI: unknown method", _cli("compare", "--methods", "adam,nope"), "unknown method"),
    ("CLI: no method", _cli("compare", "--methods", " , "), "names no method; e.g. --methods adam,auto"),
]:
    case(name, ExitCode2, match)(setup)


@case("CLI: output folder cannot be written", ExitCode2, "cannot write to the folder.*--out")
def _(folder):
    (folder / "out").write_text("a file where the folder should be")
    return _cli("compare", "--task", "xor")(folder)


@case("CLI: negative target", SystemExit, "2")
def _(folder):
    return _cli("compare", "--target", "-1")(folder)


def _idx(name, content, exc, match):
    def setup(folder):
        if content is not None:
            (folder / "f.idx").write_bytes(content)
        return lambda: data.read_idx(folder / "f.idx")
    case(name, exc, match)(setup)


_idx("IDX: missing file", None, FileNotFoundError, "no IDX file")
_idx("IDX: wrong magic number", bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), ValueError, "magic number")
_idx("IDX: unknown type code", bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), ValueError, "type code")
_idx("IDX: truncated data", bytes([0, 0, 8, 2, 0, 0, 0, 4, 0, 0, 0, 3]) + bytes(10), ValueError,
     "truncated")
_idx("IDX: truncated header", bytes([0, 0, 8, 2, 0, 0]), ValueError, "truncated")


@case("MNIST: labels and images disagree", ValueError, "labels")
def _(folder):
    rng = np.random.default_rng(0)
    sizes = {"x": (5, 28, 28), "y": (4,), "x_test": (3, 28, 28), "y_test": (3,)}
    for key, stem in data.MNIST_FILES.items():
        data.write_idx(folder / stem, rng.integers(0, 10, sizes[key], dtype=np.uint8))
    return lambda: data.mnist(folder)


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_names_the_fix(name, tmp_path, request):
    setup, exc, match, checkpoint = CASES[name]
    if checkpoint:
        call = setup(tmp_path, request.getfixturevalue("saved_checkpoint"))
    else:
        call = setup(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(exc, match=match):
        call()
    assert _files(tmp_path) == before, "a failed call changed files on disk"


# max_steps exhausted with throw=False: the partial result, its stats and a status

def test_solve_returns_the_partial_solution():
    sol = odeflow.solve(decay, jnp.ones(2), t0=0.0, t1=100.0, solver="tsit5", max_steps=3,
                        throw=False, rtol=1e-10, atol=1e-12, saveat=dfx.SaveAt(t1=True, steps=True))
    assert not bool(sol.success) and "max_steps" in sol.status
    assert int(sol.stats.num_steps) == 3 and int(sol.stats.nfe) == 1 + 2 + 6 * 3
    reached = np.asarray(sol.ts)[np.isfinite(np.asarray(sol.ts))]
    assert 0.0 < reached.max() < 100.0  # the states of the steps taken are there


def test_gradient_flow_returns_the_partial_run():
    res = odeflow.gradient_flow(quadratic, jnp.zeros(2), solver="tsit5", t1=1e3, max_steps=5,
                                throw=False)
    assert res.status_name == "max_steps_reached" and "raise max_steps" in res.reason
    assert int(res.stats.num_steps) == 5 and float(res.loss) < float(quadratic(jnp.zeros(2)))
