"""Reproduction 2: ODE-Net vs ResNet vs RK-Net (Chen et al. 2018, table 1) on
scikit-learn's digits and MNIST-1D.

Same convolutional stem and head for all three; the body is one adaptive ODE block
(Tsit5, rtol 1e-3), six residual blocks, or the ODE block discretised by four RK4
steps. Adam, minibatches of 64, test accuracy, parameters, NFE forward and backward
per step (counted), training time; several seeds.

    python benchmarks/reproductions/classifiers.py [--quick]
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from _common import backward_nfe, settings, table, write
from odeflow import data, nn
from odeflow import fitting as T

FULL = dict(datasets={"digits": 15, "mnist1d": 8}, seeds=[0, 1], width=32, batch=64, lr=3e-3,
            mnist1d_samples=5000)
QUICK = dict(datasets={"digits": 1}, seeds=[0], width=8, batch=64, lr=3e-3, mnist1d_samples=500,
             models=["ODE-Net", "ResNet"], limit=256)
MODELS = {
    "ODE-Net": lambda shape, w, key: nn.ODENet(shape, 10, key=key, kind="conv", width=w, rtol=1e-3, atol=1e-4),
    "ResNet": lambda shape, w, key: nn.ResNet(shape, 10, key=key, kind="conv", width=w, depth=6),
    "RK-Net": lambda shape, w, key: nn.RKNet(shape, 10, key=key, kind="conv", width=w, steps=4),
}


def load(name, cfg):
    d = data.digits() if name == "digits" else data.mnist1d(cfg["mnist1d_samples"])
    limit = cfg.get("limit")  # quick runs: a slice of each split
    return {k: v[:limit] for k, v in d.items()} if limit else d


def run(name, model_name, seed, cfg):
    d = load(name, cfg)
    epochs = cfg["datasets"][name]
    steps = epochs * (len(d["x"]) // cfg["batch"])
    model = MODELS[model_name](d["x"].shape[1:], cfg["width"], jax.random.key(seed))
    start = time.perf_counter()
    # backward NFE is counted host-side on one step after training, not on every step:
    # the per-evaluation callbacks would slow the timed training by about 40%
    r = T.fit(model, T.classification_loss(), {"x": d["x"], "y": d["y"]},
                optimizer=optax.adam(cfg["lr"]), steps=steps, batch_size=cfg["batch"],
                key=jax.random.key(1000 + seed), progress=False, count_nfe=False)
    wall = time.perf_counter() - start
    test = T.evaluate_classifier(r.model, d["x_test"], d["y_test"])
    last = slice(-(len(d["x"]) // cfg["batch"]), None)  # the last epoch
    return dict(dataset=name, model=model_name, seed=seed, params=nn.parameter_count(model),
                test_accuracy=test["test_accuracy"], test_nfe=test["test_nfe"],
                nfe_forward=float(np.mean(r.history["nfe_forward"][last])),
                nfe_backward=backward_nfe(r.model, T.classification_loss(),
                                          {"x": d["x"][:cfg["batch"]], "y": d["y"][:cfg["batch"]]}),
                train_s=wall, ms_per_step=1e3 * float(np.median(np.diff(r.history["time"]))),
                steps=steps, first_nfe=r.history["nfe_forward"][0])


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    rows = []
    models = cfg.get("models", list(MODELS))
    for name in cfg["datasets"]:
        for model_name in models:
            for seed in cfg["seeds"]:
                rows.append(run(name, model_name, seed, cfg))
                print(rows[-1], flush=True)
    summary = []
    for name in cfg["datasets"]:
        for model_name in models:
            rs = [r for r in rows if r["dataset"] == name and r["model"] == model_name]
            acc = 100 * np.array([r["test_accuracy"] for r in rs])
            summary.append([name, model_name, f"{rs[0]['params']:,}", f"{acc.mean():.2f} ± {acc.std():.2f}",
                            f"{np.mean([r['first_nfe'] for r in rs]):.0f} -> {np.mean([r['nfe_forward'] for r in rs]):.0f}",
                            "n/a (6 blocks)" if model_name == "ResNet" else
                            f"{np.mean([r['nfe_backward'] for r in rs]):.0f}",
                            f"{np.mean([r['ms_per_step'] for r in rs]):.1f}",
                            f"{np.mean([r['train_s'] for r in rs]):.0f}"])
    md = (f"ODE-Net vs ResNet vs RK-Net, conv width {cfg['width']}, {len(cfg['seeds'])} seeds, "
          "float32\n\n" + table(["data", "model", "params", "test accuracy %", "NFE fwd (first -> last epoch)",
                                  "NFE bwd", "ms / step", "train s"], summary))
    write(out, "classifiers", quick, cfg, rows, md)


if __name__ == "__main__":
    main()
