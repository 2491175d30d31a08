"""Work reused across steps: the recycled L-BFGS preconditioner of the CG
solves (`CG(memory=m)`) and the stale dense Jacobian of ROS2 (`Dense(jacobian_every=k)`),
each against the same method without reuse.

    python benchmarks/krylov_reuse.py            # the full run (about 20 minutes, 2 cores)
    python benchmarks/krylov_reuse.py --quick    # a smoke run, tiny settings

Part 1, training: the digits MLPs of benchmarks/stiff_scaling.py (2,410 and 24,010
parameters, float64, full batch), pseudo-transient continuation and ROS2 with CG on
Gauss-Newton products, at the settings tuned there (first pseudo-time step 10;
ROS2 rtol 0.1 and 0.01), to losses 1e-4 and 1e-6. Same seeds and initial
parameters for every variant; repetitions interleaved across variants; medians.

On the 2,410-parameter MLP and loss 1e-4, ROS2 also runs with a dense Gauss-Newton
matrix (2,410 products and an LU factorisation per step) evaluated every step or
every 5 accepted steps (`jacobian_every`), on the first 2 seeds (a run takes
10-15 s).

Part 2, stiff ODEs: ROS2 with a dense Jacobian re-evaluated every 1, 2 or 5
accepted steps on Robertson (t = 1e5) and Van der Pol (mu = 1000, t = 3000): time,
steps, Jacobians, and the error against scipy's Radau at rtol 1e-10. A stale
Jacobian pays where a Jacobian costs more than a factorisation; on these 2- and
3-dimensional problems it does not, so the work counts are the result to read.

Writes benchmarks/results/krylov_reuse.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import odeflow  # noqa: E402
from odeflow.comparison._report import machine_info  # noqa: E402
from odeflow.solvers import CG, ROS2, Dense, PseudoTransient  # noqa: E402
from odeflow.problems import get_task  # noqa: E402
from odeflow.flow import gradient_flow  # noqa: E402

OUT = Path(__file__).parent / "results"
MEMORIES = (0, 10, 40)
# problem: (hidden units, seeds, ROS2 rtol tuned in stiff_scaling)
PROBLEMS = {"digits-2410": (32, 4, 0.1), "digits-24010": (320, 3, 0.01)}
TARGETS = (1e-4, 1e-6)
REPEATS = 5
MAX_STEPS = 1_000
QUICK = dict(problems={"digits-2410": (32, 1, 0.1)}, targets=(1e-2,), repeats=1,
             memories=(0, 10), every=(1, 5), t_scale=0.01)


DENSE = ("digits-2410", 1e-4, (1, 5), 2)  # (problem, target, jacobian_every values, seeds)


def training_variants(problem, target, rtol, memories, dense, seed):
    """name -> (method, memory, jacobian_every, solver, gradient_flow options)."""
    out = {}
    ptc_options = dict(dt0=10.0, t1=1e30, rtol=1e-12, atol=1e-12)
    ros2_options = dict(rtol=rtol, atol=rtol, t1=1e8)
    for m in memories:
        ptc = PseudoTransient(linear_solver=CG(rtol=1e-2, max_iters=50, memory=m))
        ros2 = ROS2(linear_solver=CG(rtol=1e-2, max_iters=50, memory=m))
        out[f"ptc-gn m={m}"] = ("ptc-gn", m, 1, ptc, ptc_options)
        out[f"ros2-gn m={m}"] = ("ros2-gn", m, 1, ros2, ros2_options)
    if dense is not None and (problem, target) == dense[:2] and seed < dense[3]:
        for k in dense[2]:
            out[f"ros2-dense-gn k={k}"] = ("ros2-dense-gn", 0, k, ROS2(linear_solver=Dense(jacobian_every=k)),
                                           ros2_options)
    return out


def _timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def run_training(problems, targets, repeats, memories, dense, say) -> list[dict]:
    rows = []
    for problem, (hidden, seeds, rtol) in problems.items():
        task = get_task("digits", hidden=hidden)
        for target in targets:
            say(f"== {problem} ({task.num_params} parameters), target {target:g}")

            def call(spec, params):
                *_, solver, kwargs = spec
                return gradient_flow(task.composite_loss, params, solver=solver,
                                     curvature="gauss-newton", target_loss=target,
                                     max_steps=MAX_STEPS, throw=False, **kwargs)

            for seed in range(seeds):
                variants = training_variants(problem, target, rtol, memories, dense, seed)
                params = task.init(jax.random.key(seed))
                results, compile_s, times = {}, {}, {v: [] for v in variants}
                for v in variants:  # warm-up: compile time apart
                    results[v], first = _timed(lambda: call(variants[v], params))
                    compile_s[v] = first
                for _ in range(repeats):
                    for v in variants:
                        _, t = _timed(lambda: call(variants[v], params))
                        times[v].append(t)
                for v, (method, memory, every, _, _) in variants.items():
                    res, s = results[v], results[v].stats
                    med = float(np.median(times[v]))
                    rows.append(dict(
                        problem=problem, num_params=task.num_params, target=target, seed=seed,
                        method=method, memory=memory, jacobian_every=every,
                        reached=bool(res.reached_target),
                        loss=float(res.loss), time_s=med, time_min_s=float(min(times[v])),
                        time_max_s=float(max(times[v])), compile_s=compile_s[v] - med,
                        gradients=int(s.nfe), products=int(s.num_jvps),
                        steps=int(s.num_steps), rejected=int(s.num_rejected),
                        jacobians=int(s.num_jacobians),
                    ))
                    say(f"  seed {seed} {v:20s} reached={rows[-1]['reached']} "
                        f"time {med:.3f} s products {int(s.num_jvps)} steps {int(s.num_steps)}")
    return rows


def _robertson(t, y, args):
    y1, y2, y3 = y
    return jnp.stack([-0.04 * y1 + 1e4 * y2 * y3,
                      0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2,
                      3e7 * y2**2])


def _van_der_pol(t, y, args):
    mu = 1000.0
    return jnp.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


STIFF = {  # name: (vector field, y0, t1, rtol, atol)
    "robertson": (_robertson, (1.0, 0.0, 0.0), 1e5, 1e-5, 1e-10),
    "van-der-pol-1000": (_van_der_pol, (2.0, 0.0), 3000.0, 1e-5, 1e-8),
}


def run_stiff(every_values, repeats, t_scale, say) -> list[dict]:
    rows = []
    for name, (vf, y0, t1, rtol, atol) in STIFF.items():
        t1 = t1 * t_scale
        y0 = np.asarray(y0)
        ref = solve_ivp(lambda t, y: np.asarray(vf(t, jnp.asarray(y), None)), (0.0, t1), y0,
                        method="Radau", rtol=1e-10, atol=1e-14).y[:, -1]
        say(f"== {name}, t1 = {t1:g}, rtol {rtol:g}")
        call = lambda k: odeflow.solve(vf, jnp.asarray(y0), t0=0.0, t1=t1,
                                       solver=ROS2(linear_solver=Dense(jacobian_every=k)), rtol=rtol, atol=atol,
                                       max_steps=200_000)
        sols, compile_s, times = {}, {}, {k: [] for k in every_values}
        for k in every_values:
            sols[k], compile_s[k] = _timed(lambda: call(k))
        for _ in range(repeats):
            for k in every_values:
                times[k].append(_timed(lambda: call(k))[1])
        for k in every_values:
            s = sols[k].stats
            err = np.abs(np.asarray(sols[k].ys[-1]) - ref) / (np.abs(ref) + atol / rtol)
            med = float(np.median(times[k]))
            rows.append(dict(
                problem=name, t1=t1, rtol=rtol, jacobian_every=k, time_s=med,
                time_min_s=float(min(times[k])), time_max_s=float(max(times[k])),
                compile_s=compile_s[k] - med, steps=int(s.num_steps),
                rejected=int(s.num_rejected), jacobians=int(s.num_jacobians),
                factorizations=int(s.num_factorizations), nfe=int(s.nfe),
                max_rel_error=float(err.max()),
            ))
            say(f"  every {k}: steps {rows[-1]['steps']} rejected {rows[-1]['rejected']} "
                f"jacobians {rows[-1]['jacobians']} error {rows[-1]['max_rel_error']:.1e} "
                f"time {med:.3f} s")
    return rows


def summarize(rows) -> list[dict]:
    """Per (problem, target, method, memory, jacobian_every): seeds reached, median
    time, products and steps over the seeds, and per-seed time ratio to the same
    method without reuse."""
    plain = {(r["problem"], r["target"], r["method"], r["seed"]): r for r in rows
             if r["memory"] == 0 and r["jacobian_every"] == 1}
    groups = {}
    for r in rows:
        groups.setdefault((r["problem"], r["num_params"], r["target"], r["method"],
                           r["memory"], r["jacobian_every"]), []).append(r)
    out = []
    for (problem, num_params, target, method, memory, every), rs in groups.items():
        hit = [r for r in rs if r["reached"]]
        med = lambda k: float(np.median([r[k] for r in hit])) if hit else None
        ratios = [plain[(problem, target, method, r["seed"])]["time_s"] / r["time_s"]
                  for r in hit if plain[(problem, target, method, r["seed"])]["reached"]]
        out.append(dict(problem=problem, num_params=num_params, target=target, method=method,
                        memory=memory, jacobian_every=every, reached=len(hit), seeds=len(rs),
                        time_s=med("time_s"), products=med("products"),
                        gradients=med("gradients"), jacobians=med("jacobians"),
                        steps=med("steps"), speedup=ratios))
    return out


def markdown(summary, stiff, machine) -> str:
    num = lambda v, f: "–" if v is None else format(v, f)
    lines = [
        f"Reuse across steps ({machine['cpu']}, {machine['cores']} cores, float64). "
        "Training: digits MLPs, CG on Gauss-Newton products; m = L-BFGS pairs recycled "
        "from earlier CG solves as the preconditioner (0: none); k = accepted steps "
        "per dense Gauss-Newton matrix. Medians over seeds; speed-up = time without "
        "reuse / time with it, per seed, median [min, max].", "",
        "| problem | target | method | m | k | reached | time s | speed-up | GN products "
        "| dense matrices | gradients | steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        sp = r["speedup"]
        speed = "–" if not sp else f"{np.median(sp):.2f} [{min(sp):.2f}, {max(sp):.2f}]"
        lines.append(
            f"| {r['problem']} | {r['target']:g} | {r['method']} | {r['memory']} | "
            f"{r['jacobian_every']} | {r['reached']}/{r['seeds']} | {num(r['time_s'], '.3g')} | "
            f"{speed} | {num(r['products'], '.0f')} | {num(r['jacobians'], '.0f')} | "
            f"{num(r['gradients'], '.0f')} | "
            f"{num(r['steps'], '.0f')} |")
    lines += ["", "Stiff ODEs: ROS2 with a dense Jacobian evaluated every k accepted steps "
              "(error: max relative error at t1 against Radau at rtol 1e-10).", "",
              "| problem | k | time s | steps | rejected | Jacobians | factorisations "
              "| error |", "|---|---|---|---|---|---|---|---|"]
    for r in stiff:
        lines.append(
            f"| {r['problem']} | {r['jacobian_every']} | {r['time_s']:.3g} | {r['steps']} | "
            f"{r['rejected']} | {r['jacobians']} | {r['factorizations']} | "
            f"{r['max_rel_error']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    parser.add_argument("--out", default=str(OUT), help="results folder")
    args = parser.parse_args(argv)
    say = lambda line: print(line, flush=True)
    if args.quick:
        q = QUICK
        rows = run_training(q["problems"], q["targets"], q["repeats"], q["memories"],
                            None, say)
        stiff = run_stiff(q["every"], q["repeats"], q["t_scale"], say)
    else:
        rows = run_training(PROBLEMS, TARGETS, REPEATS, MEMORIES, DENSE, say)
        stiff = run_stiff((1, 2, 5), REPEATS, 1.0, say)
    machine = machine_info()
    summary = summarize(rows)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    payload = dict(machine=machine, command=command, repeats=REPEATS, summary=summary,
                   runs=rows, stiff=stiff)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "krylov_reuse_quick" if args.quick else "krylov_reuse"
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    text = markdown(summary, stiff, machine)
    (out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
