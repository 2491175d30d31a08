"""Minibatch training as an ODE solver sees it: the Runge-Kutta optax transformations
(`odeflow.flow.runge_kutta`: Euler, which is plain SGD, Heun and RK4, all stages on the
same minibatch) against SGD with momentum 0.9 and Adam, on MLPs for MNIST-1D and
scikit-learn's digits, at several batch sizes.

    python benchmarks/minibatch.py            # the full run (about 5 minutes, 2 cores)
    python benchmarks/minibatch.py --quick    # a smoke run, tiny settings

Protocol, the same for every method: float32, cross-entropy, a fixed number of
epochs (each a fresh shuffle, the last partial batch dropped). The learning rate is
chosen on a validation split (the last 20% of the training set, seed 0): the grid
value with the best validation accuracy. Then every seed trains on the whole
training set at that rate and is scored once on the held-out test set (MNIST-1D:
the 4,000 / 1,000 split of 5,000 generated samples; digits: 1,437 / 360). Runs of
one (method, batch size) are `jax.vmap`ped over the grid or the seeds, so the time
per run is the vmapped program's time over the number of runs, compile time apart.

Dherin et al. (2025, arXiv:2505.13397) report plain RK4 ahead of Adam in test
accuracy on MNIST MLPs at small batch sizes and behind it at large ones; this is
that comparison on two other datasets.

Writes benchmarks/results/minibatch.{json,md,png}.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _shared import settings, write  # noqa: E402
from odeflow import data
from odeflow.flow import runge_kutta

SGD_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
ADAM_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
METHODS = {  # name: (optimizer from a learning rate, gradients per update, grid)
    "euler": (lambda lr: runge_kutta(lr, "euler"), 1, SGD_GRID),
    "heun": (lambda lr: runge_kutta(lr, "heun"), 2, SGD_GRID),
    "rk4": (lambda lr: runge_kutta(lr, "rk4"), 4, SGD_GRID),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9), 1, SGD_GRID),
    "adam": (lambda lr: optax.adam(lr), 1, ADAM_GRID),
}
FULL = {  # dataset: (hidden sizes, epochs, batch sizes, seeds)
    "mnist1d": ((128, 128), 20, (16, 128, 1024), 3),
    "digits": ((128,), 20, (16, 128, 1024), 3),
}
QUICK = {"digits": ((16,), 1, (64,), 2)}
QUICK_METHODS = ("euler", "rk4")


def load(name: str) -> dict[str, np.ndarray]:
    d = data.mnist1d(5000) if name == "mnist1d" else data.digits()
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32)
    return {"x": flat(d["x"]), "y": d["y"], "x_test": flat(d["x_test"]), "y_test": d["y_test"]}


def init_mlp(key, sizes):
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (a, b), jnp.float32) * np.sqrt(2.0 / (a + b)),
                       jnp.zeros(b, jnp.float32)))
    return params


def logits(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def cross_entropy(params, x, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, x)), y[:, None], 1))


def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(logits(params, x), -1) == y)


def trainer(method: str, sizes, x, y, x_eval, y_eval, batch: int, epochs: int):
    """`run(lr, key) -> (accuracy on the evaluation set, final training loss)`."""
    make, _, _ = METHODS[method]
    x, y, x_eval, y_eval = map(jnp.asarray, (x, y, x_eval, y_eval))
    n = x.shape[0]
    steps = n // batch

    def run(lr, key):
        init_key, shuffle_key = jax.random.split(key)
        params = init_mlp(init_key, sizes)
        opt = optax.with_extra_args_support(make(lr))
        state = opt.init(params)

        def epoch(carry, k):
            order = jax.random.permutation(k, n)[: steps * batch].reshape(steps, batch)

            def step(carry, idx):
                params, state = carry
                xb, yb = x[idx], y[idx]
                grad_fn = lambda p: jax.grad(cross_entropy)(p, xb, yb)
                updates, state = opt.update(grad_fn(params), state, params, grad_fn=grad_fn)
                return (optax.apply_updates(params, updates), state), None

            return jax.lax.scan(step, carry, order)[0], None

        (params, _), _ = jax.lax.scan(epoch, (params, state), jax.random.split(shuffle_key, epochs))
        return accuracy(params, x_eval, y_eval), cross_entropy(params, x, y)

    return jax.jit(jax.vmap(run))


def timed(fn, *args):
    """(result, compile seconds, run seconds): the first call's excess is compile."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    second = time.perf_counter() - start
    return out, max(first - second, 0.0), second


def study(name: str, hidden, epochs: int, batches, seeds: int, methods, say) -> list[dict]:
    d = load(name)
    sizes = (d["x"].shape[1], *hidden, 10)
    cut = int(0.8 * len(d["x"]))
    rows = []
    for batch in batches:
        for method in methods:
            _, stages, grid = METHODS[method]
            tune = trainer(method, sizes, d["x"][:cut], d["y"][:cut], d["x"][cut:], d["y"][cut:],
                           batch, epochs)
            lrs = jnp.asarray(grid, jnp.float32)
            (val, _), _, _ = timed(tune, lrs, jnp.broadcast_to(jax.random.key(0), (len(grid),)))
            val = np.nan_to_num(np.asarray(val), nan=0.0)
            best = float(grid[int(np.argmax(val))])
            final = trainer(method, sizes, d["x"], d["y"], d["x_test"], d["y_test"], batch, epochs)
            keys = jax.random.split(jax.random.key(1), seeds)
            (test, loss), compile_s, run_s = timed(final, jnp.full((seeds,), best, jnp.float32), keys)
            test = np.asarray(test)
            row = {
                "dataset": name, "params": sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])),
                "batch": batch, "method": method, "lr": best,
                "validation_by_lr": dict(zip(map(float, grid), map(float, val))),
                "test_accuracy": test.tolist(), "test_mean": float(test.mean()),
                "test_std": float(test.std()), "train_loss": np.asarray(loss).tolist(),
                "epochs": epochs, "updates": epochs * (len(d["x"]) // batch),
                "gradients": epochs * (len(d["x"]) // batch) * stages,
                "time_per_run_s": run_s / seeds, "compile_s": compile_s,
            }
            rows.append(row)
            say(f"[{name}] batch {batch:5d} {method:8s} lr={best:g} test "
                f"{100 * row['test_mean']:.1f} ± {100 * row['test_std']:.1f} % "
                f"({row['time_per_run_s']:.2f} s per run)")
    return rows


def markdown(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        "Test accuracy (%), mean ± standard deviation over seeds, learning rate chosen on "
        "a validation split; time per run in brackets, compile time apart.", "",
        "| dataset (parameters) | batch | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for (name, batch) in dict.fromkeys((r["dataset"], r["batch"]) for r in rows):
        cells = {r["method"]: r for r in rows if r["dataset"] == name and r["batch"] == batch}
        params = next(iter(cells.values()))["params"]
        lines.append(f"| {name} ({params:,}) | {batch} | " + " | ".join(
            f"{100 * cells[m]['test_mean']:.1f} ± {100 * cells[m]['test_std']:.1f} "
            f"(lr {cells[m]['lr']:g}; {cells[m]['time_per_run_s']:.2g} s)" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["dataset"] == name and r["method"] == method]
            ax.errorbar([r["batch"] for r in mine], [100 * r["test_mean"] for r in mine],
                        yerr=[100 * r["test_std"] for r in mine], marker="o", capsize=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name}: mean ± std over seeds")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    chosen, out, quick = settings(__doc__, FULL, QUICK, argv)
    rows = []
    methods = QUICK_METHODS if quick else tuple(METHODS)
    for name, (hidden, epochs, batches, seeds) in chosen.items():
        rows += study(name, hidden, epochs, batches, seeds, methods, lambda line: print(line, flush=True))
    config = {"methods": list(methods), "grids": {m: list(METHODS[m][2]) for m in methods},
              "datasets": {name: {"hidden": list(h), "epochs": e, "batches": list(b), "seeds": s}
                           for name, (h, e, b, s) in chosen.items()}}
    write(out, "minibatch", quick, config, rows, markdown(rows))
    plot(rows, out / ("minibatch_quick.png" if quick else "minibatch.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
