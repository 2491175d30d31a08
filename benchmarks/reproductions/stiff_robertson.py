"""Reproduction 6: a stiff neural ODE (Kim, Ji, Deng, Ma & Rackauckas 2021, "Stiff
neural ordinary differential equations"): learn Robertson's chemical kinetics
with an implicit solver and output scaling.

Data: Robertson's system from (1, 0, 0), 41 times (0 and 40 log-spaced in
[1e-5, 1e2]), reference by scipy Radau at rtol 1e-10. Model: dy/dt = s * MLP(y / s)
(MLP 3-32-32-3, GELU) with s the largest value of each species (y2 peaks at
3.6e-5, so unscaled it would vanish from the loss and the network's inputs).
Loss: mean squared error of y / s at the data times. Trained with Adam through the
linearly implicit ROS2 (dense Jacobian, backpropagated with checkpointing), float64.
Then the learned and the true system are integrated by the stiff solver and by
explicit Tsit5 at the same tolerance: steps and NFE. An ablation trains the same
model without scaling.

    python benchmarks/reproductions/stiff_robertson.py [--quick]
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from _common import settings, table, write  # noqa: E402
from odeflow import nn, solve  # noqa: E402

FULL = dict(steps=3000, lr=1e-2, points=40, t_max=100.0, rtol=1e-4, atol=1e-8, hidden=32,
            compare_solvers=["ros2", "kvaerno5", "tsit5"], ablation=True)
QUICK = dict(steps=3, lr=1e-2, points=8, t_max=1.0, rtol=1e-3, atol=1e-8, hidden=8,
             compare_solvers=["ros2", "tsit5"], ablation=False)


def robertson(t, y):
    y1, y2, y3 = y
    return [-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2, 3e7 * y2**2]


def robertson_jax(t, y, args):
    return jnp.stack(robertson(t, y))


class ScaledField(eqx.Module):
    """`s * MLP(y / s)`; `scale` is data, not trained (its gradient is dropped)."""

    mlp: eqx.nn.MLP
    scale: jax.Array

    def __call__(self, t, y, args):
        s = jax.lax.stop_gradient(self.scale)
        return s * self.mlp(y / s)


def make_block(cfg, scale, solver, key):
    mlp = eqx.nn.MLP(3, 3, cfg["hidden"], 2, activation=jax.nn.gelu, key=key)
    mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, replace_fn=lambda w: 0.01 * w)
    return nn.ODEBlock(ScaledField(mlp, scale), t1=cfg["t_max"], solver=solver, rtol=cfg["rtol"],
                       atol=cfg["atol"], max_steps=50_000)


def fit(cfg, ts, ref, scaled: bool):
    scale = jnp.asarray(ref.max(axis=0)) if scaled else jnp.ones(3)
    block = make_block(cfg, scale, "ros2", jax.random.key(0))
    target, times = jnp.asarray(ref), jnp.asarray(ts)

    def loss(b):
        ys, stats = b.trajectory(target[0], times)
        return jnp.mean(((ys - target) / scale) ** 2), stats

    optimizer = optax.adam(cfg["lr"])
    opt_state = optimizer.init(eqx.filter(block, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(b, opt_state):
        (value, stats), grads = eqx.filter_value_and_grad(loss, has_aux=True)(b)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(b, eqx.is_inexact_array))
        return eqx.apply_updates(b, updates), opt_state, value, stats

    history, start = [], time.perf_counter()
    for i in range(cfg["steps"]):
        block, opt_state, value, stats = step(block, opt_state)
        history.append((float(value), int(stats.num_steps), int(stats.nfe)))
        if i % 500 == 0:
            print(f"{'scaled' if scaled else 'unscaled'} step {i}: loss {history[-1][0]:.3g}, "
                  f"{history[-1][1]} ROS2 steps", flush=True)
    return block, history, time.perf_counter() - start


def species_errors(block, ts, ref):
    ys, _ = block.trajectory(jnp.asarray(ref[0]), jnp.asarray(ts))
    ys = np.asarray(ys)
    return [float(np.max(np.abs(ys[:, i] - ref[:, i])) / ref[:, i].max()) for i in range(3)], ys


def step_counts(field, y0, t_max, solvers, cfg):
    out = {}
    for solver in solvers:
        run = eqx.filter_jit(lambda f: solve(f, y0, t0=0.0, t1=t_max, solver=solver, rtol=cfg["rtol"],
                                             atol=cfg["atol"], max_steps=2_000_000).stats)
        start = time.perf_counter()
        stats = run(field)
        out[solver] = dict(steps=int(stats.num_steps), rejected=int(stats.num_rejected), nfe=int(stats.nfe),
                           jacobians=int(stats.num_jacobians), seconds=time.perf_counter() - start)
    return out


def plot(path, ts, ref, fits):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for i, ax in enumerate(axes):
        ax.semilogx(ts[1:], ref[1:, i], "k.", label="data (Radau)")
        for label, ys in fits.items():
            ax.semilogx(ts[1:], ys[1:, i], "-", label=label)
        ax.set(title=f"y{i + 1}", xlabel="t")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    ts = np.concatenate([[0.0], np.logspace(-5, np.log10(cfg["t_max"]), cfg["points"])])
    ref = solve_ivp(robertson, (0, ts[-1]), [1.0, 0.0, 0.0], method="Radau", rtol=1e-10, atol=1e-14,
                    t_eval=ts).y.T
    results, fits = {}, {}
    for scaled in ([True, False] if cfg["ablation"] else [True]):
        name = "scaled" if scaled else "unscaled"
        block, history, wall = fit(cfg, ts, ref, scaled)
        errors, ys = species_errors(block, ts, ref)
        fits[f"learned ({name})"] = ys
        results[name] = dict(final_loss=history[-1][0], train_s=wall, max_rel_error=errors,
                             ros2_steps_first_last=[history[0][1], history[-1][1]])
        if scaled:
            results["learned_solvers"] = step_counts(block.vector_field, jnp.asarray(ref[0]), cfg["t_max"],
                                                     cfg["compare_solvers"], cfg)
    results["true_solvers"] = step_counts(robertson_jax, jnp.asarray(ref[0]), cfg["t_max"],
                                          cfg["compare_solvers"], cfg)
    plot(out / ("stiff_robertson" + ("_quick" if quick else "") + ".png"), ts, ref, fits)
    fit_rows = [[name, f"{r['final_loss']:.2e}", " / ".join(f"{e:.3f}" for e in r["max_rel_error"]),
                 f"{r['train_s']:.0f}"] for name, r in results.items() if "final_loss" in r]
    solver_rows = [[system, solver, c["steps"], c["rejected"], c["nfe"], f"{c['seconds']:.2f}"]
                   for system in ("learned_solvers", "true_solvers") for solver, c in results[system].items()]
    md = (f"Stiff neural ODE: Robertson on [0, {cfg['t_max']:g}], {cfg['steps']} Adam steps through ROS2\n\n"
          + table(["model", "final loss", "max error / max value (y1 / y2 / y3)", "train s"], fit_rows)
          + f"\n\nIntegrating to t = {cfg['t_max']:g} at rtol {cfg['rtol']:g}, atol {cfg['atol']:g}:\n\n"
          + table(["system", "solver", "steps", "rejected", "NFE", "seconds (incl. compile)"], solver_rows))
    write(out, "stiff_robertson", quick, cfg, results, md)


if __name__ == "__main__":
    main()
