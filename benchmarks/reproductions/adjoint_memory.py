"""Reproduction 4: memory of the gradient methods as the integration grows tenfold
(Chen et al. 2018: the adjoint's O(1) memory in depth).

An ODE block with an oscillating field, dh/dt = h S + tanh(h W1) W2 (S skew,
so the number of steps grows with the length), on a state of 4,096 x 64 (float32),
Tsit5 at rtol 1e-5, max_steps 4,096. For t1 = T and 10 T, each gradient method runs
in a fresh subprocess: one jitted gradient, and the process's peak resident memory
(max RSS) is read afterwards; the baseline is a process that ran the forward
solve only. Checkpointed backpropagation (`odeflow.solvers.StepCheckpointAdjoint`)
stores the starts of the first 16 steps and then of one step in about every
sqrt(max_steps), allocated for max_steps whatever the length, so at a fixed
max_steps it should not grow either, and direct backpropagation preallocates for
max_steps; the "sized" rows set
max_steps to twice the steps the solve takes, as a user fitting it to the run would.

    python benchmarks/reproductions/adjoint_memory.py [--quick]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from _common import settings, table, write

# "sized": max_steps = 2x the steps the solve needs (34 and 326 here) instead of 4,096
FULL = dict(rows=4096, width=64, t1=[2.0, 20.0], max_steps=4096, sized={2.0: 68, 20.0: 652},
            methods=["forward-only", "backsolve", "checkpoint", "direct", "backsolve sized",
                     "checkpoint sized", "direct sized"])
QUICK = dict(rows=64, width=8, t1=[0.5, 5.0], methods=["forward-only", "checkpoint sized"],
             max_steps=512, sized={0.5: 64, 5.0: 512})


def child(method, t1, rows, width, max_steps):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from odeflow import nn

    k = jax.random.split(jax.random.key(0), 4)
    a = jax.random.normal(k[0], (width, width)) / width**0.5
    skew = 3.0 * (a - a.T)

    class Field(eqx.Module):
        w1: jax.Array
        w2: jax.Array

        def __call__(self, t, h, args):
            return h @ skew + jnp.tanh(h @ self.w1) @ self.w2

    field = Field(jax.random.normal(k[1], (width, width)) / width, jax.random.normal(k[2], (width, width)) / width)
    gradient = "checkpoint" if method == "forward-only" else method
    block = nn.ODEBlock(field, t1=t1, rtol=1e-5, atol=1e-6, gradient=gradient, max_steps=max_steps)
    h0 = jax.random.normal(k[3], (rows, width))
    if method == "forward-only":
        out, stats = eqx.filter_jit(lambda b: b.solve(h0))(block)
        value = float(jnp.sum(out))
    else:
        loss = lambda b: (lambda o: (jnp.sum(o[0] ** 2), o[1]))(b.solve(h0))
        grads, stats = eqx.filter_jit(eqx.filter_grad(loss, has_aux=True))(block)
        value = float(jnp.sum(grads.vector_field.w1))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(method=method, t1=t1, peak_rss_mb=rss_mb, nfe=int(stats.nfe),
                          steps=int(stats.num_steps), check=value)))


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    rows = []
    for method in cfg["methods"]:
        for t1 in cfg["t1"]:
            gradient, _, sized = method.partition(" ")
            max_steps = cfg["sized"][t1] if sized else cfg["max_steps"]
            args = [sys.executable, __file__, "--child", gradient, str(t1), str(cfg["rows"]),
                    str(cfg["width"]), str(max_steps)]
            res = subprocess.run(args, capture_output=True, text=True, check=True)
            rows.append(dict(json.loads(res.stdout.strip().splitlines()[-1]), method=method, max_steps=max_steps))
            print(rows[-1], flush=True)
    lines = []
    base = {r["t1"]: r["peak_rss_mb"] for r in rows if r["method"] == "forward-only"}
    for method in cfg["methods"]:
        rs = [r for r in rows if r["method"] == method]
        short, long = rs[0], rs[-1]
        extra = lambda r: r["peak_rss_mb"] - base[r["t1"]]
        lines.append([method, f"{short['max_steps']} -> {long['max_steps']}", f"{short['nfe']} -> {long['nfe']}",
                      f"{short['peak_rss_mb']:.0f} -> {long['peak_rss_mb']:.0f}",
                      f"{long['peak_rss_mb'] / short['peak_rss_mb']:.2f}x",
                      "-" if method == "forward-only" else f"{extra(short):.0f} -> {extra(long):.0f}"])
    md = (f"Peak memory of one gradient, state {cfg['rows']} x {cfg['width']} float32, t1 "
          f"{cfg['t1'][0]} -> {cfg['t1'][-1]}, fresh process each (sized: max_steps twice the steps "
          "taken)\n\n" + table(["method", "max_steps", "NFE (forward)", "peak RSS MB", "growth", "above forward-only MB"], lines))
    write(out, "adjoint_memory", quick, cfg, rows, md)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
