"""Peers 2: one neural-ODE forward solve and its gradient, odeflow vs torchdiffeq.

Vector field MLP 4-32-4 (tanh), batch 64 as one state, t in [0, 100], dopri5 at
rtol = atol = 1e-6, float32, the same weights and initial states on both sides
(numpy). Saved at t1 only ("one save point") and at 101 times ("many"). The
gradient is of the mean square of the saved states with respect to the weights:
odeflow with checkpointed backpropagation and the backsolve adjoint, torchdiffeq
with autograd through the solver (`odeint`) and its adjoint (`odeint_adjoint`).
Cases interleaved, median [min, max] of the repetitions, JAX compile apart.

    python benchmarks/peers/neural_ode_solve.py [--quick]
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import numpy as np

FULL = dict(repeats=7, batch=64, width=32, t1=100.0, saves=101, rtol=1e-6)
QUICK = dict(repeats=2, batch=8, width=8, t1=5.0, saves=6, rtol=1e-4)


def weights(cfg, seed=0):
    rng = np.random.default_rng(seed)
    w = cfg["width"]
    return dict(w1=(rng.standard_normal((w, 4)) / 2).astype(np.float32), b1=np.zeros(w, np.float32),
                w2=(rng.standard_normal((4, w)) / np.sqrt(w)).astype(np.float32), b2=np.zeros(4, np.float32),
                y0=rng.standard_normal((cfg["batch"], 4)).astype(np.float32))


def odeflow_cases(cfg, p):
    import jax.numpy as jnp

    from odeflow import nn

    net = eqx.nn.MLP(4, 4, cfg["width"], 1, activation=jnp.tanh, key=jax.random.key(0))
    net = eqx.tree_at(lambda n: (n.layers[0].weight, n.layers[0].bias, n.layers[1].weight, n.layers[1].bias),
                      net, tuple(jnp.asarray(p[k]) for k in ("w1", "b1", "w2", "b2")))
    y0, ts = jnp.asarray(p["y0"]), jnp.linspace(0.0, cfg["t1"], cfg["saves"])
    cases = {}
    for gradient in ("checkpoint", "backsolve"):
        block = nn.ODEBlock(Field(net), t1=cfg["t1"], solver="dopri5", rtol=cfg["rtol"],
                            atol=cfg["rtol"], gradient=gradient, max_steps=100_000)
        for saves in ("one", "many"):
            out = (lambda b, h: b.solve(h)) if saves == "one" else (lambda b, h: b.trajectory(h, ts))
            fwd = eqx.filter_jit(lambda b, h, out=out: out(b, h))
            grad = eqx.filter_jit(eqx.filter_grad(lambda b, h, out=out: jnp.mean(out(b, h)[0] ** 2)))
            if gradient == "checkpoint":
                cases[("odeflow", "forward", saves)] = (lambda f=fwd, b=block: f(b, y0)[0],
                                                        lambda f=fwd, b=block: int(f(b, y0)[1].nfe))
            cases[(f"odeflow {gradient}", "gradient", saves)] = (lambda g=grad, b=block: g(b, y0), None)
    return cases


class Field(eqx.Module):
    """f(t, y) = MLP applied to each row of the batch."""

    net: eqx.nn.MLP

    def __call__(self, t, y, args):
        return jax.vmap(self.net)(y)


def torch_cases(cfg, p):
    import torch
    from torch import nn as tnn
    from torchdiffeq import odeint, odeint_adjoint

    class Func(tnn.Module):
        def __init__(self):
            super().__init__()
            self.net = tnn.Sequential(tnn.Linear(4, cfg["width"]), tnn.Tanh(), tnn.Linear(cfg["width"], 4))
            with torch.no_grad():
                for layer, (w, b) in zip((self.net[0], self.net[2]), (("w1", "b1"), ("w2", "b2"))):
                    layer.weight.copy_(torch.from_numpy(p[w]))
                    layer.bias.copy_(torch.from_numpy(p[b]))
            self.nfe = 0

        def forward(self, t, y):
            self.nfe += 1
            return self.net(y)

    func = Func()
    y0 = torch.from_numpy(p["y0"])
    times = {"one": torch.tensor([0.0, cfg["t1"]]), "many": torch.linspace(0.0, cfg["t1"], cfg["saves"])}
    opts = dict(rtol=cfg["rtol"], atol=cfg["rtol"], method="dopri5")
    cases = {}
    for saves, t in times.items():
        def forward(t=t):
            func.nfe = 0
            with torch.no_grad():
                return odeint(func, y0, t, **opts)[-1]

        def count(t=t):
            forward(t)
            return func.nfe

        def gradient(integrator, t=t):
            func.zero_grad()
            loss = torch.mean(integrator(func, y0, t, **opts)[1:] ** 2)
            loss.backward()
            return func.net[0].weight.grad

        cases[("torchdiffeq", "forward", saves)] = (forward, count)
        cases[("torchdiffeq autograd", "gradient", saves)] = (lambda g=gradient, t=t: g(odeint, t), None)
        cases[("torchdiffeq adjoint", "gradient", saves)] = (lambda g=gradient, t=t: g(odeint_adjoint, t), None)
    return cases


def main(argv=None):
    from _common import NOT_INSTALLED, settings, table, torch_versions, write

    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    p = weights(cfg)
    cases = odeflow_cases(cfg, p)
    versions = torch_versions()
    if versions is not None:
        cases.update(torch_cases(cfg, p))
    compile_s, nfe = {}, {}
    for name, (fn, count) in cases.items():  # warm-up; JAX compiles here
        start = time.perf_counter()
        jax.block_until_ready(fn())
        compile_s[name] = time.perf_counter() - start
        if count is not None:
            nfe[name] = count()
    times = {name: [] for name in cases}
    for _ in range(cfg["repeats"]):
        for name, (fn, _count) in cases.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    rows = []
    for (side, what, saves), ts in times.items():
        t = 1e3 * np.asarray(ts)
        rows.append(dict(side=side, what=what, saves=saves, median_ms=float(np.median(t)), min_ms=float(t.min()),
                         max_ms=float(t.max()), first_call_s=compile_s[(side, what, saves)],
                         forward_nfe=nfe.get((side, what, saves))))
    ref = {(r["what"], r["saves"]): r["median_ms"] for r in rows
           if r["side"] in ("torchdiffeq", "torchdiffeq autograd")}
    for r in rows:
        base = ref.get((r["what"], r["saves"]))
        r["torchdiffeq_over_this"] = base / r["median_ms"] if base else None
    md = table(["side", "what", "save points", "ms median [min, max]", "first call s", "forward NFE",
                "speed-up vs torchdiffeq"],
               [[r["side"], r["what"], r["saves"], f"{r['median_ms']:.1f} [{r['min_ms']:.1f}, {r['max_ms']:.1f}]",
                 f"{r['first_call_s']:.2f}", r["forward_nfe"] if r["forward_nfe"] is not None else "",
                 f"{r['torchdiffeq_over_this']:.1f}x" if r["torchdiffeq_over_this"] else ""]
                for r in sorted(rows, key=lambda r: (r["what"], r["saves"], r["side"]))])
    title = (f"Neural ODE solve, MLP 4-{cfg['width']}-4, batch {cfg['batch']}, t1 = {cfg['t1']:g}, dopri5 at "
             f"{cfg['rtol']:g}, float32 (gradient speed-ups against torchdiffeq's autograd)\n\n")
    write(out, "neural_ode_solve", quick, dict(cfg, versions=versions or NOT_INSTALLED), rows, title + md)


if __name__ == "__main__":
    main()
