"""Peers 1: the spiral demo, odeflow vs a hand-written diffrax loop vs torchdiffeq.

torchdiffeq's examples/ode_demo.py configuration: true dynamics dy/dt = (y^3) A,
A = [[-0.1, 2], [-2, -0.1]], y0 = (2, 0), 1,000 points on [0, 25]; model
Linear(2, 50)-tanh-Linear(50, 2) on y^3; batches of 20 start points, 10 time
points each; dopri5 at rtol 1e-7, atol 1e-9; RMSprop lr 1e-3 (decay 0.99, eps
1e-8 outside the square root, as torch); L1 loss; float32.

Every side starts from the same weights (drawn once with numpy, N(0, 0.1), zero
biases, as the demo) and the same true trajectory (scipy DOP853 at rtol 1e-12).
Minibatches: each side draws them its own way (torchdiffeq's demo and the diffrax
loop: numpy `choice` without replacement per iteration; odeflow.fitting: epoch
permutations), from the same seed. Each (side, seed) runs in a fresh process,
interleaved, so the whole-process time includes imports and compilation.

    python benchmarks/peers/spiral_demo.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL = dict(iterations=2000, seeds=[0, 1, 2, 3, 4], points=1000, t1=25.0, batch=20, window=10)
QUICK = dict(iterations=20, seeds=[0], points=200, t1=5.0, batch=8, window=5, sides=["odeflow-scan", "torchdiffeq"])
A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
SIDES = ("odeflow", "odeflow-scan", "diffrax", "torchdiffeq")
SCAN = 50  # odeflow-scan: odeflow.fitting(..., steps_per_call=50)


def prepare(cfg: dict, seed: int, folder: Path) -> Path:
    """The true trajectory and the initial weights, shared by every side."""
    from scipy.integrate import solve_ivp

    ts = np.linspace(0.0, cfg["t1"], cfg["points"])
    sol = solve_ivp(lambda t, y: (y**3) @ A, (0.0, cfg["t1"]), [2.0, 0.0], method="DOP853",
                    t_eval=ts, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(seed)
    path = folder / f"setup_{seed}.npz"
    np.savez(path, ts=ts.astype(np.float32), ys=sol.y.T.astype(np.float32),
             w1=(0.1 * rng.standard_normal((50, 2))).astype(np.float32),
             w2=(0.1 * rng.standard_normal((2, 50))).astype(np.float32))
    return path


# ---------------------------------------------------------------- workers


def _initial_mlp(setup):
    """Linear(2, 50)-tanh-Linear(50, 2) as an equinox MLP with the shared weights."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    net = eqx.nn.MLP(2, 2, 50, 1, activation=jnp.tanh, key=jax.random.key(0))
    return eqx.tree_at(lambda n: (n.layers[0].weight, n.layers[1].weight, n.layers[0].bias, n.layers[1].bias),
                       net, (jnp.asarray(setup["w1"]), jnp.asarray(setup["w2"]), jnp.zeros(50), jnp.zeros(2)))


def worker_odeflow_scan(setup, cfg, seed):
    return worker_odeflow(setup, cfg, seed, steps_per_call=min(SCAN, cfg["iterations"] // 4))


def worker_odeflow(setup, cfg, seed, steps_per_call=1):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from odeflow import nn
    from odeflow import fitting as T

    ts, ys = jnp.asarray(setup["ts"]), jnp.asarray(setup["ys"])

    class Cubic(eqx.Module):
        net: eqx.nn.MLP

        def __call__(self, t, y, args):
            return jax.vmap(self.net)(y**3)

    net = _initial_mlp(setup)
    block = nn.ODEBlock(Cubic(net), solver="dopri5", rtol=1e-7, atol=1e-9, max_steps=100_000)
    w = cfg["window"]
    starts = np.arange(cfg["points"] - w)
    data = {"y0": ys[starts], "ys": jnp.stack([ys[starts + i] for i in range(w)], axis=1)}
    batch_t = ts[:w]

    def loss_fn(b, batch, key):
        pred, stats = b.trajectory(batch["y0"], batch_t)
        return jnp.mean(jnp.abs(jnp.swapaxes(pred, 0, 1) - batch["ys"])), {"nfe": stats.nfe,
                                                                           "steps": stats.num_steps}

    result = T.fit(block, loss_fn, data, optimizer=optax.rmsprop(1e-3, decay=0.99, eps=1e-8, eps_in_sqrt=False),
                     steps=cfg["iterations"], batch_size=cfg["batch"], key=jax.random.key(seed),
                     count_nfe=False, progress=False, steps_per_call=steps_per_call)
    # per call: one step, or a chunk of `steps_per_call` steps (its time spread evenly)
    ends = result.history["time"][steps_per_call - 1::steps_per_call]
    times = (np.diff([0.0] + ends) / steps_per_call).tolist()
    whole, _ = eqx.filter_jit(lambda b: b.trajectory(ys[0][None], ts))(result.model)
    return dict(times=times, per_call=steps_per_call, nfe=result.history["nfe_forward"],
                steps=[m["steps"] for m in result.history["metrics"]],
                error=float(jnp.mean(jnp.abs(whole[:, 0] - ys))))


def worker_diffrax(setup, cfg, seed):
    """What a researcher writes by hand: eqx.filter_jit step, diffeqsolve, optax."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    ts, ys = jnp.asarray(setup["ts"]), jnp.asarray(setup["ys"])
    net = _initial_mlp(setup)
    term = diffrax.ODETerm(lambda t, y, net: jax.vmap(net)(y**3))

    def integrate(net, y0, t):
        return diffrax.diffeqsolve(term, diffrax.Dopri5(), t[0], t[-1], None, y0, args=net,
                                   stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-9),
                                   saveat=diffrax.SaveAt(ts=t), max_steps=100_000)

    opt = optax.rmsprop(1e-3, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    opt_state = opt.init(eqx.filter(net, eqx.is_array))

    @eqx.filter_jit
    def step(net, opt_state, y0, target, t):
        def loss(net):
            sol = integrate(net, y0, t)
            return jnp.mean(jnp.abs(jnp.swapaxes(sol.ys, 0, 1) - target)), sol.stats["num_steps"]

        (value, steps), grads = eqx.filter_value_and_grad(loss, has_aux=True)(net)
        updates, opt_state = opt.update(grads, opt_state)
        return eqx.apply_updates(net, updates), opt_state, value, steps

    rng = np.random.default_rng(seed)
    w, ys_np = cfg["window"], np.asarray(setup["ys"])
    times, steps = [], []
    for _ in range(cfg["iterations"]):
        start = time.perf_counter()
        s = rng.choice(np.arange(cfg["points"] - w), cfg["batch"], replace=False)
        target = np.stack([ys_np[s + i] for i in range(w)], axis=1)
        net, opt_state, value, n = step(net, opt_state, ys_np[s], target, ts[:w])
        value.block_until_ready()
        times.append(time.perf_counter() - start)
        steps.append(int(n))
    whole = eqx.filter_jit(integrate)(net, ys[0][None], ts).ys
    return dict(times=times, per_call=1, nfe=[1 + 6 * n for n in steps], steps=steps,
                error=float(jnp.mean(jnp.abs(whole[:, 0] - ys))))


def worker_torchdiffeq(setup, cfg, seed):
    """examples/ode_demo.py's training loop (without its plotting)."""
    import torch
    from torch import nn as tnn
    from torchdiffeq import odeint

    torch.manual_seed(seed)

    class ODEFunc(tnn.Module):
        def __init__(self):
            super().__init__()
            self.net = tnn.Sequential(tnn.Linear(2, 50), tnn.Tanh(), tnn.Linear(50, 2))
            with torch.no_grad():
                self.net[0].weight.copy_(torch.from_numpy(setup["w1"]))
                self.net[2].weight.copy_(torch.from_numpy(setup["w2"]))
                self.net[0].bias.zero_()
                self.net[2].bias.zero_()
            self.nfe = self.accepted = self.rejected = 0

        def forward(self, t, y):
            self.nfe += 1
            return self.net(y**3)

        def callback_accept_step(self, t0, y0, dt):
            self.accepted += 1

        def callback_reject_step(self, t0, y0, dt):
            self.rejected += 1

    ts, ys = torch.from_numpy(setup["ts"]), torch.from_numpy(setup["ys"])
    func = ODEFunc()
    optimizer = torch.optim.RMSprop(func.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    w = cfg["window"]
    times, nfe, steps = [], [], []
    for _ in range(cfg["iterations"]):
        start = time.perf_counter()
        s = torch.from_numpy(rng.choice(np.arange(cfg["points"] - w), cfg["batch"], replace=False))
        batch_y0, batch_t = ys[s], ts[:w]
        batch_y = torch.stack([ys[s + i] for i in range(w)], dim=0)
        func.nfe = func.accepted = func.rejected = 0
        optimizer.zero_grad()
        pred = odeint(func, batch_y0, batch_t)
        forward_nfe, forward_steps = func.nfe, func.accepted + func.rejected
        loss = torch.mean(torch.abs(pred - batch_y))
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        nfe.append(forward_nfe)
        steps.append(forward_steps)
    with torch.no_grad():
        whole = odeint(func, ys[0][None], ts)
    return dict(times=times, per_call=1, nfe=nfe, steps=steps,
                error=float(torch.mean(torch.abs(whole[:, 0] - ys))))


def _worker_main(argv):
    side, setup_path, cfg_json, seed = argv
    setup = dict(np.load(setup_path))
    result = globals()[f"worker_{side.replace('-', '_')}"](setup, json.loads(cfg_json), int(seed))
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- driver


def run_side(side, setup, cfg, seed):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", side, str(setup), json.dumps(cfg), str(seed)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        return dict(side=side, seed=seed, failed=proc.stderr[-2000:])
    r = json.loads(lines[-1][7:])
    # times: per iteration, each call's time divided by its iterations; the first
    # call's extra over the median call is the compilation
    times, k = np.asarray(r["times"]), r["per_call"]
    return dict(side=side, seed=seed, process_s=wall, first_iteration_s=k * float(times[0] - np.median(times[1:])),
                median_iteration_ms=1e3 * float(np.median(times[1:])),
                min_iteration_ms=1e3 * float(np.min(times[1:])), max_iteration_ms=1e3 * float(np.max(times[1:])),
                loop_s=float(k * times.sum()), nfe_per_iteration=float(np.mean(r["nfe"])),
                steps_per_iteration=float(np.mean(r["steps"])), final_error=r["error"])


def summarise(rows, sides):
    out = {}
    for side in sides:
        ok = [r for r in rows if r["side"] == side and "failed" not in r]
        if not ok:
            continue
        med = lambda k: float(np.median([r[k] for r in ok]))
        out[side] = {k: med(k) for k in ("median_iteration_ms", "first_iteration_s", "process_s",
                                          "nfe_per_iteration", "steps_per_iteration", "final_error")}
        out[side]["errors"] = [r["final_error"] for r in ok]
    if "torchdiffeq" in out:
        for side in out:
            # per seed ratios, then the median
            per = [(t["median_iteration_ms"] / o["median_iteration_ms"], t["process_s"] / o["process_s"])
                   for t in rows if t["side"] == "torchdiffeq" and "failed" not in t
                   for o in rows if o["side"] == side and o["seed"] == t["seed"] and "failed" not in o]
            out[side]["speedup_per_iteration"] = float(np.median([p[0] for p in per]))
            out[side]["speedup_process"] = float(np.median([p[1] for p in per]))
    return out


def render(rows, summary):
    from _common import table

    body = [[r["side"], r["seed"], f"{r['median_iteration_ms']:.2f} [{r['min_iteration_ms']:.2f}, "
             f"{r['max_iteration_ms']:.2f}]", f"{r['first_iteration_s']:.2f}", f"{r['process_s']:.1f}",
             f"{r['nfe_per_iteration']:.0f}", f"{r['steps_per_iteration']:.1f}", f"{r['final_error']:.4f}"]
            if "failed" not in r else [r["side"], r["seed"], "failed", "", "", "", "", ""] for r in rows]
    md = table(["side", "seed", "iteration ms median [min, max]", "compile s", "whole process s",
                "forward NFE / it", "forward steps / it", "final trajectory error"], body)
    md += "\n\nMedians over seeds (speed-ups: torchdiffeq time / side time, per seed, median):\n\n"
    md += table(["side", "iteration ms", "compile s", "whole process s",
                 "speed-up per iteration", "speed-up whole process", "final error"],
                [[s, f"{v['median_iteration_ms']:.2f}", f"{v['first_iteration_s']:.2f}", f"{v['process_s']:.1f}",
                  f"{v.get('speedup_per_iteration', float('nan')):.1f}x",
                  f"{v.get('speedup_process', float('nan')):.1f}x", f"{v['final_error']:.4f}"]
                 for s, v in summary.items()])
    return md


def main(argv=None):
    from _common import NOT_INSTALLED, settings, torch_versions, write

    cfg, out, quick = settings(__doc__, FULL, QUICK, argv)
    versions = torch_versions()
    sides = [s for s in cfg.get("sides", SIDES) if s != "torchdiffeq" or versions is not None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = {k: v for k, v in cfg.items() if k not in ("seeds", "sides")}
        for seed in cfg["seeds"]:
            setup = prepare(cfg, seed, Path(tmp))
            order = sides if seed % 2 == 0 else sides[::-1]  # interleave A B C, C B A, ...
            for side in order:
                row = run_side(side, setup, run_cfg, seed)
                print(row, flush=True)
                rows.append(row)
    summary = summarise(rows, sides)
    config = dict(cfg, sides=sides, missing=[s for s in cfg.get("sides", SIDES) if s not in sides],
                  versions=versions or NOT_INSTALLED)
    write(out, "spiral_demo", quick, config, dict(runs=rows, summary=summary),
          "Spiral demo (torchdiffeq ode_demo configuration), float32, CPU\n\n" + render(rows, summary))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
    else:
        main()
