"""Reproduction 5: continuous normalising flows on 2-D toy densities (Chen et al. 2018
section 4, FFJORD's figures).

A CNF with an MLP field 3-64-64-64-2 (tanh), trained by maximum likelihood with the
Hutchinson trace (FFJORD) and Adam, evaluated with the exact trace on held-out
samples; density and sample plots for each density.

    python benchmarks/reproductions/cnf_densities.py [--quick]
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import settings, table, write
from odeflow import data, nn
from odeflow import fitting as T

FULL = dict(densities=["moons", "eight_gaussians", "circles", "checkerboard", "two_spirals", "pinwheel"],
            steps=1500, batch=256, train=20000,
            hidden=64, depth=3, grid=100)
QUICK = dict(densities=["moons"], steps=3, batch=32, train=256, hidden=8, depth=2, grid=20)


def run(name, cfg):
    x = data.toy_density(name, jax.random.key(0), cfg["train"])
    x_test = data.toy_density(name, jax.random.key(1), 2000)
    cnf = nn.CNF(2, cfg["hidden"], cfg["depth"], key=jax.random.key(2), trace="hutchinson",
                 rtol=1e-4, atol=1e-5)
    start = time.perf_counter()
    r = T.fit(cnf, lambda m, b, k: m.loss(b["x"], key=k), {"x": x}, optimizer=optax.adam(3e-3),
                steps=cfg["steps"], batch_size=cfg["batch"], key=jax.random.key(3), progress=False)
    wall = time.perf_counter() - start
    logp, stats = eqx.filter_jit(lambda m: m.log_prob(x_test, trace="exact"))(r.model)
    return dict(density=name, test_nll=float(-jnp.mean(logp)), train_s=wall,
                nfe_forward_first=r.history["nfe_forward"][0], nfe_forward_last=r.history["nfe_forward"][-1],
                nfe_backward_last=r.history["nfe_backward"][-1], test_nfe=int(stats.nfe)), r.model, x_test


def plot(path, results, grid):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 3, figsize=(9, 3 * len(results)), squeeze=False)
    g = np.linspace(-3.5, 3.5, grid)
    pts = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), jnp.float32)
    for row, (res, model, x_test) in zip(axes, results):
        logp, _ = model.log_prob(pts, trace="exact")
        samples, _ = model.sample(jax.random.key(9), 2000)
        row[0].hist2d(np.asarray(x_test[:, 0]), np.asarray(x_test[:, 1]), bins=80, range=[[-3.5, 3.5]] * 2)
        row[1].imshow(np.exp(np.asarray(logp)).reshape(grid, grid), origin="lower", extent=[-3.5, 3.5] * 2)
        row[2].hist2d(np.asarray(samples[:, 0]), np.asarray(samples[:, 1]), bins=80, range=[[-3.5, 3.5]] * 2)
        for ax, title in zip(row, ("data", "model density", "model samples")):
            ax.set(title=f"{res['density']}: {title}", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    results = []
    for name in cfg["densities"]:
        results.append(run(name, cfg))
        print(results[-1][0], flush=True)
    plot(out / ("cnf_densities" + ("_quick" if quick else "") + ".png"), results, cfg["grid"])
    rows = [r for r, _, _ in results]
    md = (f"CNF (FFJORD, Hutchinson trace in training, exact in evaluation), {cfg['steps']} Adam steps "
          f"of {cfg['batch']}\n\n" + table(
              ["density", "test NLL (nats)", "NFE fwd first -> last", "NFE bwd last", "train s"],
              [[r["density"], f"{r['test_nll']:.3f}", f"{r['nfe_forward_first']} -> {r['nfe_forward_last']}",
                r["nfe_backward_last"] if r["nfe_backward_last"] >= 0 else "n/a",  # not counted
                f"{r['train_s']:.0f}"] for r in rows]))
    write(out, "cnf_densities", quick, cfg, rows, md)


if __name__ == "__main__":
    main()
