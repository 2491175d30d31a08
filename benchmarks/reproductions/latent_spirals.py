"""Reproduction 3: latent ODE vs RNN on the irregularly sampled spirals (Chen et al.
2018, section 5.1, table 2).

1,000 spirals (800 train, 200 test), windows of 100 points with noise 0.3; each
model sees a random irregular subset of 30, 50 or 100 of them. Latent ODE: latent
dimension 4, GRU encoder of 25 units run backwards, decoder MLP 20, Tsit5 at rtol
1e-3; RNN baseline: GRU of 25 units fed the time gaps, trained one step ahead
(about the same number of parameters). Both train with Adam (learning rate 1e-2
decayed by a cosine to 0), minibatches of 100, 3 seeds (each its own spirals,
masks and initial weights). Scored on the test spirals by the RMSE of
  - reconstruction: the model's path at the window's 100 times vs the clean points;
  - extrapolation: the next 100 points after the window vs the clean trajectory
    (the paper does not state its horizon; ours is the window's own length), and
    over its first half.

    python benchmarks/reproductions/latent_spirals.py [--quick]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import backward_nfe, settings, table, write
from odeflow import data, nn
from odeflow import fitting as T

FULL = dict(observed=[30, 50, 100], steps=3000, seeds=[0, 1, 2], spirals=1000, train=800)
QUICK = dict(observed=[30], steps=5, seeds=[0], spirals=60, train=40)
PAPER = {30: (0.1642, 0.3937), 50: (0.1502, 0.3202), 100: (0.1346, 0.1813)}  # latent ODE, RNN


def reconstruction_rmse(model, s, mask):
    if isinstance(model, nn.RNNBaseline):  # one-step-ahead predictions at the window's times
        preds, _, _, _ = jax.vmap(model._scan, in_axes=(None, 0, 0))(s.times, s.observed, mask)
        return float(jnp.sqrt(jnp.mean((preds[:, 1:] - s.clean[:, 1:]) ** 2)))
    pred = model.extrapolate(s.times, s.observed, mask, s.times[1:])
    return float(jnp.sqrt(jnp.mean((pred - s.clean[:, 1:]) ** 2)))


def run(kind, n_obs, seed, cfg):
    s = data.spirals(jax.random.key(seed), n_spirals=cfg["spirals"])
    mask = data.subsample(jax.random.key(seed + 1), cfg["spirals"], 100, n_obs)
    train, test = np.arange(cfg["train"]), np.arange(cfg["train"], cfg["spirals"])
    key = jax.random.key(seed + 2)
    model = nn.LatentODE(key=key) if kind == "latent ODE" else nn.RNNBaseline(key=key)
    start = time.perf_counter()
    loss_fn = T.sequence_loss(s.times)
    schedule = optax.cosine_decay_schedule(1e-2, cfg["steps"])
    r = T.fit(model, loss_fn, {"values": s.observed[train], "mask": mask[train]},
              optimizer=optax.adam(schedule), steps=cfg["steps"], batch_size=min(100, cfg["train"]),
              key=jax.random.key(seed + 3), progress=False)
    wall = time.perf_counter() - start
    st, mt = s.take(test), mask[test]
    pred = r.model.extrapolate(st.times, st.observed, mt, st.future_times)
    rmse = lambda n: float(jnp.sqrt(jnp.mean((pred[:, :n] - st.future[:, :n]) ** 2)))
    half = st.future.shape[1] // 2
    batch = {"values": s.observed[train[:100]], "mask": mask[train[:100]]}
    return dict(model=kind, observed=n_obs, seed=seed, params=nn.parameter_count(model),
                extrapolation_rmse=rmse(None), extrapolation_rmse_first_half=rmse(half),
                reconstruction_rmse=reconstruction_rmse(r.model, st, mt),
                train_s=wall, nfe_forward=float(np.mean(r.history["nfe_forward"][-100:])),
                nfe_backward=backward_nfe(r.model, loss_fn, batch, key=jax.random.key(0))
                if kind == "latent ODE" else 0)


def main(argv=None):
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    rows = []
    for n_obs in cfg["observed"]:
        for kind in ("latent ODE", "RNN"):
            for seed in cfg["seeds"]:
                rows.append(run(kind, n_obs, seed, cfg))
                print(rows[-1], flush=True)
    summary = []
    for n_obs in cfg["observed"]:
        for i, kind in enumerate(("latent ODE", "RNN")):
            rs = [r for r in rows if r["model"] == kind and r["observed"] == n_obs]
            mean = lambda k: np.mean([r[k] for r in rs])
            seeds = " / ".join(f"{r['extrapolation_rmse']:.2f}" for r in rs)
            summary.append([n_obs, kind, f"{rs[0]['params']:,}",
                            f"{mean('extrapolation_rmse'):.3f} ({seeds})",
                            f"{mean('extrapolation_rmse_first_half'):.3f}",
                            f"{mean('reconstruction_rmse'):.3f}", f"{PAPER[n_obs][i]:.3f}",
                            f"{mean('nfe_forward'):.0f} / {mean('nfe_backward'):.0f}",
                            f"{mean('train_s'):.0f}"])
    md = (f"Latent ODE vs RNN on irregular spirals, {cfg['steps']} Adam steps (cosine decay), mean of "
          f"{len(cfg['seeds'])} seeds (per seed in brackets), {cfg['spirals'] - cfg['train']} "
          "test spirals\n\n"
          + table(["observed", "model", "params", "extrapolation RMSE, next 100 points",
                   "next 50 points", "reconstruction RMSE (window)", "paper's RMSE", "NFE fwd / bwd",
                   "train s"], summary))
    write(out, "latent_spirals", quick, cfg, rows, md)


if __name__ == "__main__":
    main()
