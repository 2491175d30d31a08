"""Peers 3: ODE-Net training throughput (images per second) on scikit-learn's
digits, odeflow.fitting vs the same model in torch + torchdiffeq.

Both sides: the ODE-Net of `odeflow.nn.ODENet` (MLP: Linear(64, 64) + tanh, one
ODE block with f(t, h) = W2 tanh(W1 [h, t] + b1) + b2 of hidden width 64 on [0, 1],
Linear(64, 10); conv: 3x3 conv, ReLU, stride-2 4x4 conv to 32 channels, an ODE
block of two 3x3 convolutions with a time channel, mean pool, Linear(32, 10)),
the same initial weights (copied from the equinox model), dopri5 at rtol 1e-3 /
atol 1e-4, backpropagation through the solver (odeflow: checkpointed; torch:
autograd), Adam lr 3e-3, cross-entropy, minibatches of 64, float32. Rounds
alternate between the sides; each round trains `steps` steps from the start and
the median step time after the first (compilation) is reported.

    python benchmarks/peers/odenet_throughput.py [--quick]
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from _common import NOT_INSTALLED, settings, table, torch_versions, write
from odeflow import data, nn
from odeflow import fitting as T

FULL = dict(kinds=["mlp", "conv"], steps=40, rounds=3, batch=64, width={"mlp": 64, "conv": 32})
QUICK = dict(kinds=["mlp"], steps=3, rounds=1, batch=16, width={"mlp": 8, "conv": 8})


def odeflow_model(kind, width, shape):
    return nn.ODENet(shape, 10, key=jax.random.key(0), kind=kind, width=width, hidden=width,
                     solver="dopri5", rtol=1e-3, atol=1e-4)


def odeflow_round(model, d, cfg):
    r = T.fit(model, T.classification_loss(), {"x": d["x"], "y": d["y"]}, optimizer=optax.adam(3e-3),
                steps=cfg["steps"], batch_size=cfg["batch"], key=jax.random.key(1), progress=False,
                count_nfe=False)
    times = np.diff([0.0] + r.history["time"])
    return times, float(np.mean(r.history["nfe_forward"]))


def torch_model(kind, model):
    import torch
    from torch import nn as tnn
    from torchdiffeq import odeint

    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))

    def linear(eqx_linear):
        layer = tnn.Linear(eqx_linear.in_features, eqx_linear.out_features)
        with torch.no_grad():
            layer.weight.copy_(t(eqx_linear.weight))
            layer.bias.copy_(t(eqx_linear.bias))
        return layer

    def conv(eqx_conv, **kw):
        layer = tnn.Conv2d(eqx_conv.in_channels, eqx_conv.out_channels, eqx_conv.kernel_size, **kw)
        with torch.no_grad():
            layer.weight.copy_(t(eqx_conv.weight))
            layer.bias.copy_(t(eqx_conv.bias).reshape(-1))
        return layer

    field = model.block.vector_field

    class Field(tnn.Module):
        def __init__(self):
            super().__init__()
            if kind == "mlp":
                self.inner, self.outer = linear(field.inner), linear(field.outer)
            else:
                self.conv1, self.conv2 = conv(field.conv1, padding=1), conv(field.conv2, padding=1)
            self.nfe = 0

        def forward(self, s, h):
            self.nfe += 1
            if kind == "mlp":
                return self.outer(torch.tanh(self.inner(torch.cat([h, s.expand(h.shape[0], 1)], 1))))
            tc = lambda x: torch.cat([x, s.expand(x.shape[0], 1, *x.shape[2:])], 1)
            return self.conv2(tc(torch.tanh(self.conv1(tc(h)))))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            if kind == "mlp":
                self.stem = tnn.Sequential(tnn.Flatten(), linear(model.stem.layers[0]), tnn.Tanh())
            else:
                self.stem = tnn.Sequential(conv(model.stem.layers[0], padding=1), tnn.ReLU(),
                                           conv(model.stem.layers[1], stride=2, padding=1))
            self.field, self.head = Field(), linear(model.head.linear)
            self.times = torch.tensor([0.0, 1.0])

        def forward(self, x):
            h = odeint(self.field, self.stem(x), self.times, rtol=1e-3, atol=1e-4, method="dopri5")[-1]
            return self.head(h if kind == "mlp" else h.mean(dim=(2, 3)))

    return Net()


def torch_round(kind, model, d, cfg, seed=1):
    import torch

    net = torch_model(kind, model)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = torch.from_numpy(np.asarray(d["x"])), torch.from_numpy(np.asarray(d["y"])).long()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    times, nfe = [], []
    for s in range(cfg["steps"]):
        start = time.perf_counter()
        idx = order[(s * cfg["batch"]) % (len(x) - cfg["batch"]):][:cfg["batch"]]
        net.field.nfe = 0
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        nfe.append(net.field.nfe)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return np.asarray(times), float(np.mean(nfe))


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    d = data.digits()
    versions = torch_versions()
    sides = ["odeflow"] if versions is None else ["odeflow", "torchdiffeq"]
    rows = []
    for kind in cfg["kinds"]:
        model = odeflow_model(kind, cfg["width"][kind], d["x"].shape[1:])
        per = {s: [] for s in sides}
        nfe = {}
        for r in range(cfg["rounds"]):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                times, nfe[side] = (odeflow_round(model, d, cfg) if side == "odeflow"
                                    else torch_round(kind, model, d, cfg))
                per[side].extend(times[1:].tolist())
                print(kind, side, f"round {r}: median {1e3 * np.median(times[1:]):.1f} ms, first "
                      f"{times[0]:.2f} s, NFE {nfe[side]:.0f}", flush=True)
        for side in sides:
            step = float(np.median(per[side]))
            rows.append(dict(kind=kind, side=side, params=nn.parameter_count(model), median_step_ms=1e3 * step,
                             min_step_ms=1e3 * float(np.min(per[side])), max_step_ms=1e3 * float(np.max(per[side])),
                             images_per_s=cfg["batch"] / step, nfe_forward=nfe[side]))
    for r in rows:
        ref = [q for q in rows if q["kind"] == r["kind"] and q["side"] == "torchdiffeq"]
        r["speedup"] = r["images_per_s"] / ref[0]["images_per_s"] if ref else None
    md = (f"ODE-Net training throughput on digits, batch {cfg['batch']}, dopri5 rtol 1e-3, float32, CPU\n\n"
          + table(["ODE-Net", "side", "parameters", "step ms median [min, max]", "images / s", "forward NFE / step",
                   "speed-up vs torchdiffeq"],
                  [[r["kind"], r["side"], f"{r['params']:,}",
                    f"{r['median_step_ms']:.1f} [{r['min_step_ms']:.1f}, {r['max_step_ms']:.1f}]",
                    f"{r['images_per_s']:.0f}", f"{r['nfe_forward']:.0f}",
                    f"{r['speedup']:.1f}x" if r["speedup"] else ""] for r in rows]))
    write(out, "odenet_throughput", quick, dict(cfg, versions=versions or NOT_INSTALLED), rows, md)


if __name__ == "__main__":
    main()
