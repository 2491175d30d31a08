"""The sensitivity study: gradient time and peak memory of the four gradient
methods against the number of parameters and the state size (after Rackauckas et
al. 2018, who found forward mode best below roughly 100 parameters-plus-states).

Model: dy/dt = W2 tanh(W1 y + b1) + b2 with state size n and width w, so
P = 2 n w + w + n parameters; the gradient of sum(y(1)^2) with respect to the
parameters and y(0) (P + n inputs) through an `odeflow.nn.ODEBlock` (dopri5,
rtol = atol = 1e-6, float32) with `gradient` = forward, checkpoint, backsolve and
direct. Sweep 1: n = 4, P from about 13 to 100,000. Sweep 2: w = 16, n from 2 to
512. Each (method, configuration) runs in a fresh process: compile, then the median
of the timed gradients, then the process's peak resident memory (max RSS). Forward
mode (one tangent per input, vectorised) is skipped above `forward_max_inputs`
and a run over `timeout` seconds is recorded as such.

    python benchmarks/sensitivity/sensitivity.py [--quick]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _shared import RESULTS, settings, table, write  # noqa: E402

METHODS = ["forward", "checkpoint", "backsolve", "direct"]
FULL = dict(params_sweep=dict(n=4, widths=[1, 3, 11, 33, 111, 333, 1111, 3333, 11111]),
            state_sweep=dict(w=16, states=[2, 8, 32, 128, 512]), repeats=5, timeout=300,
            forward_max_inputs=40_000, methods=METHODS)
QUICK = dict(params_sweep=dict(n=2, widths=[2]), state_sweep=dict(w=2, states=[]), repeats=1, timeout=300,
             forward_max_inputs=1000, methods=["forward", "backsolve"])


def child(method, n, w, repeats):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from odeflow import nn

    k = jax.random.split(jax.random.key(0), 3)

    class Field(eqx.Module):
        w1: jax.Array
        b1: jax.Array
        w2: jax.Array
        b2: jax.Array

        def __call__(self, t, y, args):
            return self.w2 @ jnp.tanh(self.w1 @ y + self.b1) + self.b2

    field = Field(jax.random.normal(k[0], (w, n)) / np.sqrt(n), jnp.zeros(w),
                  jax.random.normal(k[1], (n, w)) / np.sqrt(w), jnp.zeros(n))
    block = nn.ODEBlock(field, solver="dopri5", rtol=1e-6, atol=1e-6, gradient=method, max_steps=10_000)
    y0 = jax.random.normal(k[2], (n,))

    @eqx.filter_jit
    def grad(block, y0):
        return eqx.filter_grad(lambda b, y: jnp.sum(b(y) ** 2))(block, y0)

    start = time.perf_counter()
    jax.block_until_ready(grad(block, y0))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(grad(block, y0))
        times.append(time.perf_counter() - start)
    _, stats = eqx.filter_jit(lambda b, y: b.solve(y))(block, y0)
    print(json.dumps(dict(median_s=float(np.median(times)), min_s=float(np.min(times)), max_s=float(np.max(times)),
                          first_call_s=compile_s, nfe=int(stats.nfe),
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def run(method, n, w, cfg):
    params = 2 * n * w + w + n
    row = dict(method=method, n=n, w=w, params=params, inputs=params + n)
    if method == "forward" and params + n > cfg["forward_max_inputs"]:
        return dict(row, skipped=f"more than {cfg['forward_max_inputs']} inputs")
    try:
        res = subprocess.run([sys.executable, __file__, "--child", method, str(n), str(w), str(cfg["repeats"])],
                             capture_output=True, text=True, timeout=cfg["timeout"])
    except subprocess.TimeoutExpired:
        return dict(row, skipped=f"over {cfg['timeout']} s")
    if res.returncode:
        return dict(row, skipped="failed: " + res.stderr.strip().splitlines()[-1][:300])
    return dict(row, **json.loads(res.stdout.strip().splitlines()[-1]))


def crossovers(rows, axis):
    """Where forward mode stops being the fastest (first configuration along `axis`
    at which some reverse method beats it)."""
    out = {}
    for method in METHODS[1:]:
        pairs = sorted((r[axis], r["median_s"], f["median_s"]) for r in rows if r["method"] == method
                       for f in rows if f["method"] == "forward" and f[axis] == r[axis] and "median_s" in f
                       and "median_s" in r)
        faster = [(x, rev < fwd) for x, rev, fwd in pairs]
        first = next((x for x, beats in faster if beats), None)
        out[method] = dict(first_faster_at=first, last_slower_at=max((x for x, b in faster if not b), default=None))
    return out


def plot(path, sweeps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, (name, rows, axis, label) in enumerate(sweeps):
        for method in METHODS:
            pts = sorted((r[axis], r["median_s"], r["peak_rss_mb"]) for r in rows
                         if r["method"] == method and "median_s" in r)
            if pts:
                x, t, m = zip(*pts)
                axes[0][col].loglog(x, t, "-o", ms=3, label=method)
                axes[1][col].semilogx(x, m, "-o", ms=3, label=method)
        axes[0][col].set(title=name, ylabel="gradient time s (median)")
        axes[1][col].set(xlabel=label, ylabel="peak RSS MB")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv, RESULTS / "sensitivity")
    p_rows, s_rows = [], []
    ps, ss = cfg["params_sweep"], cfg["state_sweep"]
    for w in ps["widths"]:
        for method in cfg["methods"]:
            p_rows.append(run(method, ps["n"], w, cfg))
            print(p_rows[-1], flush=True)
    for n in ss["states"]:
        for method in cfg["methods"]:
            s_rows.append(run(method, n, ss["w"], cfg))
            print(s_rows[-1], flush=True)
    cross = dict(params=crossovers(p_rows, "inputs"), states=crossovers(s_rows, "inputs"))

    def render(rows):
        return table(["method", "state n", "width", "parameters", "inputs P + n", "gradient ms median [min, max]",
                      "first call s", "forward NFE", "peak RSS MB"],
                     [[r["method"], r["n"], r["w"], r["params"], r["inputs"]]
                      + ([f"{1e3 * r['median_s']:.2f} [{1e3 * r['min_s']:.2f}, {1e3 * r['max_s']:.2f}]",
                          f"{r['first_call_s']:.1f}", r["nfe"], f"{r['peak_rss_mb']:.0f}"]
                         if "median_s" in r else [r["skipped"], "", "", ""]) for r in rows])

    md = (f"Gradient time and peak memory against size (dopri5, rtol 1e-6, float32, fresh process per row)\n\n"
          f"Sweep 1: parameters (state n = {ps['n']})\n\n{render(p_rows)}\n\n"
          f"Sweep 2: state size (width {ss['w']})\n\n{render(s_rows)}\n\n"
          "Crossovers (inputs = parameters + states at which each reverse method first beats forward mode; "
          "the last size at which it is still slower):\n\n"
          + table(["sweep", "method", "first faster at", "last slower at"],
                  [[sweep, m, c["first_faster_at"], c["last_slower_at"]] for sweep, cs in cross.items()
                   for m, c in cs.items()]))
    plot(out / ("sensitivity" + ("_quick" if quick else "") + ".png"),
         [("parameters (state 4)", p_rows, "params", "parameters"),
          (f"state size (width {ss['w']})", s_rows, "n", "state size n")])
    write(out, "sensitivity", quick, cfg, dict(params_sweep=p_rows, state_sweep=s_rows, crossovers=cross), md)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
