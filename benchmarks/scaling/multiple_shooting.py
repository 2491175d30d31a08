"""Multiple against single shooting on torchdiffeq's spiral demo over long horizons.

Data: y' = (y^3) A, A = [[-0.1, 2], [-2, -0.1]], y(0) = (2, 0), 1,001 points on
[0, t1] for t1 = 25 (the demo's) and 50, solved at rtol 1e-10. Model: the demo's
field, an MLP 2-50-2 (tanh) on y^3, Tsit5 at rtol 1e-5. Single shooting fits the
whole trajectory from y(0); multiple shooting (`odeflow.nn.MultipleShooting`) 100
segments of 11 points (the demo's windows are 10 steps) from free initial states
(started at the observations), continuity weight 10, all segments solved at once.
Both: Adam 1e-2, 3,000 full-batch iterations, mean squared error. Reported per
(horizon, method) over seeds (initialisations): median milliseconds per iteration
(compiled), the final error of the learned field integrated from y(0) over the
whole horizon (mean absolute, the demo's measure; 0.52 at t1 = 25 is the error of
a field that lets the state decay to the origin), and how many seeds end below
0.25 (the rest: stuck in a bad local minimum).

    python benchmarks/scaling/multiple_shooting.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from odeflow.nn import MultipleShooting, ODEBlock, segments, shooting_loss  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _shared import RESULTS, settings, table, write  # noqa: E402

FULL = dict(horizons=[25.0, 50.0], seeds=[0, 1, 2], iterations=3000, points=1001, segment=11)
QUICK = dict(horizons=[25.0], seeds=[0], iterations=5, points=101, segment=11)
A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])


class Field(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        return self.mlp(y**3)


def run(t1, seed, method, cfg):
    ts = jnp.linspace(0.0, t1, cfg["points"])
    y0 = jnp.array([2.0, 0.0])
    ys, _ = ODEBlock(lambda t, y, a: (y**3) @ A, rtol=1e-10, atol=1e-12, max_steps=100_000).trajectory(y0, ts)
    field = Field(eqx.nn.MLP(2, 2, 50, 1, activation=jnp.tanh, key=jax.random.key(seed)))
    block = ODEBlock(field, rtol=1e-5, atol=1e-7, max_steps=100_000)
    if method == "single":
        model = block
        loss_fn = lambda m: (jnp.mean((m.trajectory(y0, ts)[0] - ys) ** 2), {})
    else:
        st, sy = segments(ts, ys, cfg["segment"])
        model = MultipleShooting(block, sy)
        loss_fn = lambda m: shooting_loss(m, st, sy, continuity=10.0)
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state):
        (loss, _), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, loss

    model, state, loss = step(model, state)  # compile
    times = []
    for _ in range(cfg["iterations"]):
        start = time.perf_counter()
        model, state, loss = jax.block_until_ready(step(model, state))
        times.append(time.perf_counter() - start)
    learned = model if method == "single" else model.block
    predicted, _ = learned.trajectory(y0, ts)
    return dict(horizon=t1, seed=seed, method=method, ms_per_iteration=1e3 * float(np.median(times)),
                final_loss=float(loss), error=float(jnp.mean(jnp.abs(predicted - ys))))


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv, RESULTS / "scaling")
    rows = []
    for t1 in cfg["horizons"]:
        for seed in cfg["seeds"]:
            for method in ("single", "multiple"):
                rows.append(run(t1, seed, method, cfg))
                print(rows[-1], flush=True)
    summary = []
    for t1 in cfg["horizons"]:
        for method in ("single", "multiple"):
            rs = [r for r in rows if r["horizon"] == t1 and r["method"] == method]
            errors = [r["error"] for r in rs]
            summary.append([f"{t1:g}", method, f"{np.median([r['ms_per_iteration'] for r in rs]):.1f}",
                            f"{np.median(errors):.3f} [{min(errors):.3f}, {max(errors):.3f}]",
                            f"{sum(e < 0.25 for e in errors)}/{len(rs)}"])
    md = table(["t1", "shooting", "ms / iteration", "error from y(0): median [min, max]", "seeds < 0.25"],
               summary)
    write(out, "multiple_shooting", quick, cfg, rows,
          f"Spiral demo, {cfg['points']} points, {cfg['iterations']} Adam iterations, seeds "
          f"{cfg['seeds']}\n\n" + md)


if __name__ == "__main__":
    main()
