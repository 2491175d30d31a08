"""Joint against per-sample batching of neural-ODE solves (`ODEBlock(batching=...)`).

A batch solved as one state takes one step sequence, set by the error of the whole
batch; per sample (`vmap` of solves), each sample takes its own steps, but the
vectorised loop runs until the slowest sample is done. Measured on the digits
ODE-Net (MLP field, untrained, Tsit5, rtol 1e-3) and on a field whose stiffness
varies by sample (decay rates 0.1 to 1,000 across the batch): steps jointly, steps
per sample (mean, max), and wall time of the forward pass and of its gradient
(median of 5, compiled first).

    python benchmarks/scaling/per_sample.py [--quick]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from odeflow import data, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _shared import RESULTS, settings, table, write  # noqa: E402

FULL = dict(batch=256, repeats=5)
QUICK = dict(batch=16, repeats=1)


def _timed(fn, repeats):
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cases(batch):
    d = data.digits()
    x = jnp.asarray(d["x"][:batch], jnp.float64)
    model = nn.ODENet((1, 8, 8), 10, key=jax.random.key(0), width=32, hidden=64, rtol=1e-3, atol=1e-5)
    h0 = jax.vmap(model.stem)(x)
    rates = jnp.geomspace(0.1, 1000.0, batch)
    stiff = jnp.concatenate([rates[:, None], jnp.ones((batch, 4))], axis=1)
    decay = lambda t, h, a: -h[:, :1] * h * jnp.array([0.0, 1.0, 1.0, 1.0, 1.0])
    return {"digits ODE-Net": (model.block, h0),
            "rates 0.1-1000": (nn.ODEBlock(decay, rtol=1e-6, atol=1e-8, max_steps=100_000), stiff)}


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv, RESULTS / "scaling")
    rows = []
    for name, (block, h0) in cases(cfg["batch"]).items():
        for batching in ("joint", "per-sample"):
            b = dataclasses.replace(block, batching=batching)
            forward = eqx.filter_jit(lambda b, h: b.solve(h))
            # with respect to the block's parameters and the initial state
            grad = eqx.filter_jit(eqx.filter_grad(lambda bh: jnp.sum(bh[0](bh[1]) ** 2)))
            _, stats = forward(b, h0)
            steps = np.atleast_1d(np.asarray(stats.num_steps))
            nfe = np.atleast_1d(np.asarray(stats.nfe))
            rows.append(dict(case=name, batching=batching, batch=cfg["batch"],
                             steps_mean=float(steps.mean()), steps_max=int(steps.max()),
                             nfe_mean=float(nfe.mean()), nfe_max=int(nfe.max()),
                             forward_ms=1e3 * _timed(lambda: forward(b, h0), cfg["repeats"]),
                             gradient_ms=1e3 * _timed(lambda: grad((b, h0)), cfg["repeats"])))
            print(rows[-1], flush=True)
    md = table(["case", "batching", "steps (mean / max)", "NFE (mean / max)", "forward ms", "gradient ms"],
               [[r["case"], r["batching"], f"{r['steps_mean']:.1f} / {r['steps_max']}",
                 f"{r['nfe_mean']:.0f} / {r['nfe_max']}", f"{r['forward_ms']:.1f}", f"{r['gradient_ms']:.1f}"]
                for r in rows])
    write(out, "per_sample", quick, cfg, rows,
          f"Joint against per-sample batching, batch {cfg['batch']}, float64, CPU\n\n" + md)


if __name__ == "__main__":
    main()
