"""Stiff gradient-flow training beyond toy sizes: matrix-free implicit,
Rosenbrock-W, pseudo-transient and Levenberg-Marquardt methods against tuned Adam
and L-BFGS, on MLPs for scikit-learn's digits with 2,410 and 24,010 parameters (and
the secant method against L-BFGS on an MNIST-1D MLP with 102,010), to full-batch
losses 1e-2, 1e-4 and 1e-6.

    python benchmarks/stiff_scaling.py            # the full run (over an hour, 2 cores)
    python benchmarks/stiff_scaling.py --quick    # a smoke run, tiny settings
    python benchmarks/stiff_scaling.py --report-only   # summary from the per-run JSON
    python benchmarks/stiff_scaling.py --extra    # only the extra runs (below), then report
    python benchmarks/stiff_scaling.py --secant   # only the secant runs (below), then report

Every (problem, target) is one `odeflow.compare` run: the same initial parameters
per seed for all methods, each method tuned on those seeds over its grid (most seeds
reaching the target, then least gradient-equivalent work), then timed per seed with
repetitions interleaved across methods (medians), compile time apart. Optimizers
get 20,000 iterations, ODE methods 1,000 steps. Adam's grid is narrowed on the wide
network to the rates that won on the narrow one; Kvaerno3's Newton iteration is
not tried at rtol 1e-2, where it fails to converge (grids are reported).

Extra runs on the smaller network complete the method list, each cell against its
own tuned Adam: plain and heavy-ball gradient descent, and at the loosest target the
plain-scipy approach (LSODA and VODE-BDF with a finite-difference
Jacobian, untuned, at rtol 1e-6 / atol 1e-8, capped at 30 s per seed; a cap reached
is reported as not reaching the target). They are written to
<problem>/<target>/extra/ and merged into the summary.

Secant runs put the secant pseudo-transient method (`ptc-lbfgs`, the default of
`gradient_flow` with a target above 100 parameters) beside L-BFGS, both at their
defaults (neither has a grid, so tuned and untuned are the same) and both allowed
20,000 steps of one gradient each, on the two digits MLPs and an MNIST-1D MLP
40-2000-10 (102,010 parameters; full batch of 1,600 examples). They are written to
<problem>/<target>/secant/ and merged likewise (marked ‡: speed-ups against the
secant run's own L-BFGS; on MNIST-1D they are the only run).
Writes benchmarks/results/stiff_scaling/<problem>/<target>/ (compare's JSON,
Markdown and PNG per run) and benchmarks/results/stiff_scaling.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from odeflow.comparison import compare, write_report  # noqa: E402
from odeflow.comparison._report import machine_info  # noqa: E402
from odeflow.problems import get_task  # noqa: E402

OUT = Path(__file__).parent / "results"
TARGETS = (1e-2, 1e-4, 1e-6)
MAX_ITERS, MAX_SOLVER_STEPS = 20_000, 1_000  # optimizer iterations; ODE solver steps
STIFF = ["auto", "auto-flow", "ros2-cg", "ros2-gn", "ptc", "ptc-gn", "lm"]
PROBLEMS = {  # name: (hidden units, methods, grids, seeds, repeats)
    "digits-2410": (
        32, ["adam", "lbfgs", "tsit5", "kvaerno3-cg", *STIFF],
        {"adam": (0.003, 0.01, 0.03, 0.1, 0.3), "kvaerno3-cg": (1e-3, 1e-4)}, 4, 3,
    ),
    "digits-24010": (320, ["adam", "lbfgs", *STIFF], {"adam": (0.01, 0.03, 0.1)}, 3, 2),
}
QUICK = {"digits-2410": (32, ["adam", "auto", "ros2-gn", "ptc-gn", "lm"],
                         {"adam": (0.03, 0.3)}, 2, 1)}
BASELINE = "adam"
EXTRA = {"digits-2410": (32, ["adam", "gd", "momentum"], {"adam": (0.03, 0.1, 0.3)}, 4, 3)}
EXTRA_SCIPY, SCIPY_CAP = ["scipy-lsoda", "scipy-vode-bdf"], 30.0
SECANT_METHODS = ["lbfgs", "ptc-lbfgs"]
SECANT = {  # name: (task, task options, seeds, repeats)
    "digits-2410": ("digits", {"hidden": 32}, 4, 3),
    "digits-24010": ("digits", {"hidden": 320}, 3, 3),
    "mnist1d-102010": ("mnist1d", {"hidden": 2000}, 2, 1),
}


def run(problems, targets, out: Path, max_steps: int, max_solver_steps: int) -> None:
    for problem, (hidden, methods, grids, seeds, repeats) in problems.items():
        task = get_task("digits", hidden=hidden)
        for target in targets:
            print(f"== {problem} ({task.num_params} parameters), target {target:g}", flush=True)
            result = compare(task, methods, seeds=seeds, target=target, max_steps=max_steps,
                             max_solver_steps=max_solver_steps, repeats=repeats, grids=grids,
                             progress=lambda line: print("  " + line, flush=True))
            folder = out / "stiff_scaling" / problem / f"{target:.0e}"
            write_report(result, folder, command=_command())


def run_extra(problems, targets, out: Path, max_steps: int) -> None:
    for problem, (hidden, methods, grids, seeds, repeats) in problems.items():
        task = get_task("digits", hidden=hidden)
        for target in targets:
            print(f"== extra: {problem}, target {target:g}", flush=True)
            scipy = EXTRA_SCIPY if target == max(targets) else []
            result = compare(task, methods + scipy, seeds=seeds, target=target,
                             max_steps=max_steps, repeats=repeats, grids=grids,
                             scipy_time_cap=SCIPY_CAP,
                             progress=lambda line: print("  " + line, flush=True))
            write_report(result, out / "stiff_scaling" / problem / f"{target:.0e}" / "extra",
                         command=_command())


def run_secant(problems, targets, out: Path, max_steps: int) -> None:
    for problem, (name, options, seeds, repeats) in problems.items():
        task = get_task(name, **options)
        for target in targets:
            print(f"== secant: {problem} ({task.num_params} parameters), target {target:g}",
                  flush=True)
            result = compare(task, SECANT_METHODS, seeds=seeds, target=target,
                             max_steps=max_steps, max_solver_steps=max_steps, repeats=repeats,
                             progress=lambda line: print("  " + line, flush=True))
            write_report(result, out / "stiff_scaling" / problem / f"{target:.0e}" / "secant",
                         command=_command())


def saved_summaries(out: Path, problems) -> list[dict]:
    """Summaries rebuilt from the per-run JSON that `compare` wrote, with the methods
    of an extra or secant run (their rows' speed-ups against that run's own Adam and
    L-BFGS) added; a target with only a secant run is summarised from it."""
    summaries = []
    for problem in problems:
        folders = sorted((out / "stiff_scaling" / problem).glob("*/"),
                         key=lambda p: -float(p.name))
        for folder in folders:
            main = sorted(folder.glob("*.json")) or sorted((folder / "secant").glob("*.json"))
            if not main:
                continue
            run = json.loads(main[0].read_text())
            c = run["config"]
            summary = summarize(problem, c["num_params"], c["target"], run["records"],
                                run["tuning"])
            if main[0].parent.name == "secant":
                summary["methods"] = [r | {"secant_run": True} for r in summary["methods"]]
            for kind in ("extra", "secant"):
                path = folder / kind / main[0].name
                if path.parent == main[0].parent or not path.exists():
                    continue
                added = json.loads(path.read_text())
                known = {r["method"] for r in summary["methods"]}
                rows = summarize(problem, c["num_params"], c["target"], added["records"],
                                 added["tuning"])["methods"]
                summary["methods"] += [r | {f"{kind}_run": True} for r in rows
                                       if r["method"] not in known]
            summaries.append(summary)
    return summaries


def _speedups(baseline, seeds):
    """time(baseline) / time(method) per seed where both reached the target."""
    return [float(baseline[s]["time_s"] / r["time_s"]) for s, r in seeds.items()
            if r["reached"] and s in baseline and baseline[s]["reached"]]


def summarize(problem, num_params, target, records, tuning) -> dict:
    """Per method: seeds reached, median time, work, and per-seed speed-ups over
    tuned Adam and over L-BFGS."""
    by = {}
    for r in records:
        by.setdefault(r["method"], {})[r["seed"]] = r
    rows = []
    for method, seeds in by.items():
        hit = [r for r in seeds.values() if r["reached"]]
        med = lambda k: float(np.median([r[k] for r in hit])) if hit else None
        rows.append({
            "method": method, "setting": tuning.get(method, {}).get("chosen"),
            "reached": len(hit),
            "seeds": len(seeds), "time_s": med("time_s"), "presentations": med("presentations"),
            "hvps": med("hvps"), "steps": med("steps"),
            "speedup_vs_adam": _speedups(by.get(BASELINE, {}), seeds),
            "speedup_vs_lbfgs": _speedups(by.get("lbfgs", {}), seeds),
        })
    return {"problem": problem, "num_params": num_params, "target": target, "methods": rows}


def _fmt_speedup(values):
    if not values:
        return "–"
    return f"{np.median(values):.2g} [{min(values):.2g}, {max(values):.2g}]"


def _mark(row) -> str:
    return " †" if row.get("extra_run") else " ‡" if row.get("secant_run") else ""


def markdown(summaries) -> str:
    machine = machine_info()
    lines = [
        "Stiff gradient-flow training of MLPs on scikit-learn digits and MNIST-1D (float64, full batch, "
        f"{machine['cpu']}, {machine['cores']} cores). Time to the target loss, median "
        "over the seeds that reached it; speed-up = time(tuned Adam) / time(method) per "
        "seed, median [min, max] (likewise vs L-BFGS); presentations = gradient "
        "evaluations; HVPs = Hessian- or Gauss-Newton-vector products. † an extra run "
        "(gd, momentum, scipy) with speed-ups against its own tuned Adam; scipy is "
        "untuned and capped at 30 s per seed. ‡ a secant run: `ptc-lbfgs` beside L-BFGS "
        "(both untuned, 20,000 steps each), speed-ups against its own L-BFGS.", "",
    ]
    for s in summaries:
        lines += [f"**{s['problem']}** ({s['num_params']:,} parameters), target {s['target']:g}",
                  "", "| method | setting | reached | time s | speed-up vs Adam | vs L-BFGS "
                  "| presentations | HVPs | steps |", "|---|---|---|---|---|---|---|---|---|"]
        for row in sorted(s["methods"], key=lambda r: r["time_s"] if r["time_s"] else np.inf):
            num = lambda v, f: "–" if v is None else format(v, f)
            setting = "–" if row["setting"] is None else f"{row['setting']:g}"
            lines.append(
                f"| {row['method']}{_mark(row)} | {setting} | {row['reached']}/{row['seeds']} | "
                f"{num(row['time_s'], '.3g')} | {_fmt_speedup(row['speedup_vs_adam'])} | "
                f"{_fmt_speedup(row.get('speedup_vs_lbfgs', []))} | "
                f"{num(row['presentations'], '.0f')} | {num(row['hvps'], '.0f')} | "
                f"{num(row['steps'], '.0f')} |")
        lines.append("")
    return "\n".join(lines)


def plot(summaries, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(s["problem"] for s in summaries))
    every = list(dict.fromkeys(r["method"] for s in summaries for r in s["methods"]))
    colors = dict(zip(every, plt.cm.tab10.colors + plt.cm.Dark2.colors))
    fig, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4.5), squeeze=False)
    for ax, problem in zip(axes[0], problems):
        rows = [s for s in summaries if s["problem"] == problem]
        methods = list(dict.fromkeys(r["method"] for s in rows for r in s["methods"]))
        for method in methods:
            pts = [(s["target"], r["time_s"]) for s in rows for r in s["methods"]
                   if r["method"] == method and r["time_s"] is not None
                   and r["reached"] == r["seeds"]]
            if pts:
                x, y = zip(*sorted(pts, reverse=True))
                style = "--o" if method == BASELINE else "-o"
                ax.loglog(x, y, style, color=colors[method], label=method)
        ax.invert_xaxis()
        ax.set_xlabel("target loss")
        ax.set_ylabel("median time to target [s]")
        ax.set_title(f"{problem} ({rows[0]['num_params']:,} parameters)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    parser.add_argument("--report-only", action="store_true",
                        help="remake the Markdown and plot from the saved JSON")
    parser.add_argument("--extra", action="store_true",
                        help="run only the extra methods (gd, momentum, scipy), then report")
    parser.add_argument("--secant", action="store_true",
                        help="run only the secant method beside L-BFGS, then report")
    parser.add_argument("--out", default=str(OUT), help="results folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    name = "stiff_scaling_quick" if args.quick else "stiff_scaling"
    problems = QUICK if args.quick else PROBLEMS
    targets = (1e-1,) if args.quick else TARGETS
    only = args.report_only or args.extra or args.secant
    if not only:
        run(problems, targets, out, MAX_ITERS, MAX_SOLVER_STEPS)
    if args.extra or not (only or args.quick):
        run_extra(EXTRA, targets, out, MAX_ITERS)
    if args.secant or not (only or args.quick):
        run_secant(SECANT, targets, out, MAX_ITERS)
    summaries = saved_summaries(out, problems if args.quick else {**problems, **SECANT})
    if not summaries:
        raise SystemExit(f"no saved runs under {out / 'stiff_scaling'}; run without "
                         "--report-only first")
    payload = {"machine": machine_info(), "command": _command(), "summaries": summaries}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (out / f"{name}.md").write_text(markdown(summaries))
    plot(summaries, out / f"{name}.png")
    print(markdown(summaries))


if __name__ == "__main__":
    main()
