"""Reproduction 2b: a convolutional ODE-Net against the MNIST-1D reference CNN and a
ResNet (Chen et al. 2018, table 1's claim, on MNIST-1D; Greydanus 2020), and the same
three on scikit-learn's digits.

MNIST-1D's standard split (the generator's 4,000 training and 1,000 test signals).
Three networks with the same stem and the same end, `odeflow.nn`'s classifiers of kind
"strided":

- **CNN** (`nn.CNN`), the MNIST-1D reference size (the MNIST-1D repository's `ConvBase`): three convolutions
  of 25 channels (width 5 stride 2, width 3 stride 2, width 3 stride 2; ReLU) and a
  linear map of the flattened 25 x 5 features to the logits: 5,210 parameters.
- **ODE-Net** (`nn.ODENet`): the CNN at 18 channels with one ODE block after its first convolution,
  dh/dt = f(t, h) with f two 3-wide convolutions with the time as an extra channel
  (`odeflow.nn.ConvField`), Tsit5 at rtol 1e-3, atol 1e-4, gradients by checkpointed
  backpropagation: 5,086 parameters, no more than the CNN.
- **ResNet** (`nn.ResNet`): the ODE-Net with the ODE block replaced by six residual blocks
  h + f_k(0, h) of the same form, each with its own weights: 15,526 parameters
  (the ODE-Net has a third of them).

On digits (8x8, `odeflow.data.digits()`'s 80 / 20 split) the same three in 2-D: 3x3
convolutions of stride 2 (8x8 -> 4x4, the ODE block's features, -> 2x2 -> 1x1), 25
channels for the CNN (11,810 parameters), 16 for the ODE-Net (9,898) and the ResNet
(34,538).

Each is trained with Adam (learning rate 1e-2 decayed by a cosine to 0), minibatches
of 100, for the same number of steps, several seeds; test accuracy, parameters, NFE
forward and backward, time per step.

    python benchmarks/reproductions/mnist1d_odenet.py [--quick]
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import odeflow
from _common import backward_nfe, settings, table, write
from odeflow import data, fitting, nn


FULL = dict(datasets=["mnist1d", "digits"], seeds=[0, 1, 2], steps={"mnist1d": 4000, "digits": 2000},
            batch=100, lr=1e-2, cnn_width={"mnist1d": 25, "digits": 25}, width={"mnist1d": 18, "digits": 16},
            depth=6, rtol=1e-3, atol=1e-4, samples=5000)
QUICK = dict(datasets=["mnist1d", "digits"], seeds=[0], steps={"mnist1d": 3, "digits": 2}, batch=32, lr=1e-2,
             cnn_width={"mnist1d": 4, "digits": 4}, width={"mnist1d": 4, "digits": 4}, depth=2, rtol=1e-2,
             atol=1e-3, samples=500, limit=200)


SHAPES = {"mnist1d": (1, 40), "digits": (1, 8, 8)}  # one channel per signal or image


def models(cfg, dataset):
    """The three networks, each a function of a key: `odeflow.nn`'s classifiers of
    kind "strided" (the MNIST-1D reference CNN's layers around the body)."""
    shape = SHAPES[dataset]
    width, depth = cfg["width"][dataset], cfg["depth"]
    cnn = "CNN (reference)" if dataset == "mnist1d" else "CNN"
    return {cnn: lambda key: nn.CNN(shape, 10, width=cfg["cnn_width"][dataset], key=key),
            "ODE-Net": lambda key: nn.ODENet(shape, 10, kind="strided", width=width, solver="tsit5",
                                             rtol=cfg["rtol"], atol=cfg["atol"], key=key),
            f"ResNet ({depth} blocks)": lambda key: nn.ResNet(shape, 10, kind="strided", width=width,
                                                               depth=depth, key=key)}


@eqx.filter_jit
def accuracy(model, x, y):
    logits, stats = model.solve(x)
    return jnp.mean(jnp.argmax(logits, -1) == y), stats.nfe


def run(dataset, name, make, seed, d, cfg):
    loss_fn = fitting.classification_loss()
    model = make(jax.random.key(seed))
    steps = cfg["steps"][dataset]
    schedule = optax.cosine_decay_schedule(cfg["lr"], steps)
    start = time.perf_counter()
    r = odeflow.fit(model, loss_fn, {"x": d["x"], "y": d["y"]}, optimizer=optax.adam(schedule),
                    steps=steps, batch_size=cfg["batch"], key=jax.random.key(1000 + seed), log_every=500,
                    progress=lambda line: print(f"  {dataset} {name} seed {seed}: {line}", flush=True))
    wall = time.perf_counter() - start
    test, test_nfe = accuracy(r.model, jnp.asarray(d["x_test"]), jnp.asarray(d["y_test"]))
    batch = {"x": jnp.asarray(d["x"][: cfg["batch"]]), "y": jnp.asarray(d["y"][: cfg["batch"]])}
    return dict(dataset=dataset, model=name, seed=seed, params=nn.parameter_count(model),
                test_accuracy=float(test),
                test_nfe=int(test_nfe), nfe_forward_last=r.history["nfe_forward"][-1],
                nfe_backward=(backward_nfe(r.model, loss_fn, batch)
                              if isinstance(r.model, nn.ODENet) else None), train_s=wall,
                ms_per_step=1e3 * float(np.median(np.diff(r.history["time"]))))


def summary(rows):
    out = []
    for dataset, name in dict.fromkeys((r["dataset"], r["model"]) for r in rows):
        mine = [r for r in rows if r["model"] == name and r["dataset"] == dataset]
        acc = 100 * np.array([r["test_accuracy"] for r in mine])
        bwd = mine[0]["nfe_backward"]
        out.append([dataset, name, f"{mine[0]['params']:,}", f"{acc.mean():.2f} ± {acc.std():.2f}",
                    f"{min(acc):.1f} / {max(acc):.1f}", mine[0]["test_nfe"] if mine[0]["test_nfe"] else "–",
                    "n/a" if bwd is None else bwd,
                    f"{np.median([r['ms_per_step'] for r in mine]):.1f}"])
    return out


def load(dataset, cfg):
    d = data.mnist1d(cfg["samples"], split="standard") if dataset == "mnist1d" else data.digits()
    limit = cfg.get("limit")  # quick runs: a slice of each split
    return {k: v[:limit] for k, v in d.items()} if limit else d


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    rows = []
    for dataset in cfg["datasets"]:
        d = load(dataset, cfg)
        for name, make in models(cfg, dataset).items():
            for seed in cfg["seeds"]:
                rows.append(run(dataset, name, make, seed, d, cfg))
                print(rows[-1], flush=True)
    steps = ", ".join(f"{d} {n}" for d, n in cfg["steps"].items())
    md = (f"MNIST-1D (standard split, 4,000 / 1,000) and digits (80 / 20 split), Adam steps of "
          f"{cfg['batch']} ({steps}), {len(cfg['seeds'])} seed{'s' * (len(cfg['seeds']) != 1)}\n\n" + table(
              ["data", "model", "parameters", "test accuracy % (mean ± sd)", "min / max", "test NFE",
               "backward NFE", "ms / step"], summary(rows)))
    write(out, "mnist1d_odenet", quick, cfg, rows, md)


if __name__ == "__main__":
    main()
