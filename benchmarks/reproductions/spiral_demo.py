"""Reproduction 1: the spiral demo (torchdiffeq's examples/ode_demo.py set-up).

Learn dy/dt = (y^3) A, A = [[-0.1, 2], [-2, -0.1]], y(0) = (2, 0), from one
trajectory of 1,000 points on [0, 25]: minibatches of 20 windows of 10 points,
model Linear(2, 50)-tanh-Linear(50, 2) on y^3, dopri5 at rtol 1e-7 / atol 1e-9,
RMSprop (lr 1e-3, decay 0.99, eps outside the square root, as torch), L1 loss,
float32, through `odeflow.fitting`. Reports the final whole-trajectory error, time
per iteration (compile apart), NFE per iteration, over seeds; plots the fit.

    python benchmarks/reproductions/spiral_demo.py [--quick]
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import settings, table, write
from odeflow import nn, solve
from odeflow import fitting as T

FULL = dict(iterations=2000, seeds=[0, 1, 2], points=1000, t1=25.0, batch=20, window=10)
QUICK = dict(iterations=20, seeds=[0], points=200, t1=5.0, batch=8, window=5)
A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])


def truth(points, t1):
    ts = jnp.linspace(0.0, t1, points)
    sol = solve(lambda t, y, a: (y**3) @ A, jnp.array([2.0, 0.0]), t0=0.0, t1=t1, solver="dopri5",
                rtol=1e-10, atol=1e-10, saveat=__import__("diffrax").SaveAt(ts=ts), max_steps=100_000)
    return ts, sol.ys


class Cubic(eqx.Module):
    net: eqx.nn.MLP

    def __call__(self, t, y, args):
        return jax.vmap(self.net)(y**3)


def model(key):
    net = eqx.nn.MLP(2, 2, 50, 1, activation=jnp.tanh, key=key)
    # torchdiffeq's demo: weights N(0, 0.1), biases 0
    keys = jax.random.split(key, 2)
    net = eqx.tree_at(lambda n: (n.layers[0].weight, n.layers[1].weight), net,
                      (0.1 * jax.random.normal(keys[0], (50, 2)), 0.1 * jax.random.normal(keys[1], (2, 50))))
    net = eqx.tree_at(lambda n: (n.layers[0].bias, n.layers[1].bias), net, replace_fn=jnp.zeros_like)
    return nn.ODEBlock(Cubic(net), solver="dopri5", rtol=1e-7, atol=1e-9, max_steps=100_000)


def run(seed, cfg, ts, ys):
    window = cfg["window"]
    starts = np.arange(cfg["points"] - window)
    data = {"y0": ys[starts], "ys": jnp.stack([ys[starts + i] for i in range(window)], axis=1)}
    batch_t = ts[:window]

    def loss_fn(block, batch, key):
        pred, stats = block.trajectory(batch["y0"], batch_t)  # (window, batch, 2)
        return jnp.mean(jnp.abs(jnp.swapaxes(pred, 0, 1) - batch["ys"])), {"nfe": stats.nfe}

    optimizer = optax.rmsprop(1e-3, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    start = time.perf_counter()
    result = T.fit(model(jax.random.key(seed)), loss_fn, data, optimizer=optimizer,
                     steps=cfg["iterations"], batch_size=cfg["batch"], key=jax.random.key(100 + seed),
                     count_nfe=False, progress=False)
    wall = time.perf_counter() - start
    times = np.diff([0.0] + result.history["time"])
    whole, _ = eqx.filter_jit(lambda b: b.trajectory(ys[0][None], ts))(result.model)
    error = float(jnp.mean(jnp.abs(whole[:, 0] - ys)))
    return dict(seed=seed, final_error=error, first_iteration_s=float(times[0]),
                median_iteration_ms=1e3 * float(np.median(times[1:])), train_wall_s=wall,
                nfe_per_iteration=float(np.mean(result.history["nfe_forward"])),
                final_loss=result.history["loss"][-1]), result.model, result.history


def plot(path, ts, ys, block, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred, _ = block.trajectory(ys[0][None], ts)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    a.plot(ys[:, 0], ys[:, 1], "g-", label="true")
    a.plot(pred[:, 0, 0], pred[:, 0, 1], "b--", label="learned")
    a.set(title="phase portrait", xlabel="y1", ylabel="y2")
    a.legend()
    b.semilogy(history["step"], history["loss"], lw=0.8)
    b.set(title="minibatch L1 loss", xlabel="iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    ts, ys = truth(cfg["points"], cfg["t1"])
    rows = []
    for seed in cfg["seeds"]:
        row, block, history = run(seed, cfg, ts, ys)
        rows.append(row)
        print(row, flush=True)
        if seed == cfg["seeds"][0]:
            plot(out / ("spiral_demo" + ("_quick" if quick else "") + ".png"), ts, ys, block, history)
    med = lambda k: float(np.median([r[k] for r in rows]))
    md = "Spiral demo (torchdiffeq ode_demo set-up), odeflow.fitting, float32\n\n" + table(
        ["seed", "final trajectory error (mean abs)", "first iteration (compile) s",
         "median iteration ms", "NFE / iteration", "train wall s"],
        [[r["seed"], f"{r['final_error']:.4f}", f"{r['first_iteration_s']:.2f}",
          f"{r['median_iteration_ms']:.2f}", f"{r['nfe_per_iteration']:.0f}", f"{r['train_wall_s']:.1f}"]
         for r in rows])
    md += f"\n\nMedian over seeds: error {med('final_error'):.4f}, {med('median_iteration_ms'):.2f} ms per iteration."
    write(out, "spiral_demo", quick, cfg, rows, md)


if __name__ == "__main__":
    main()
