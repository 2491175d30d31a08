"""odeflow against an earlier revision of itself: compile and run time of `solve`
per registered solver and of `gradient_flow` per method, to check that a change
does not slow a solver.

The earlier revision is checked out with `git worktree` into a temporary folder.
Each repetition starts one fresh process per side (A B A B ..., `--rounds` rounds);
each process compiles every case once (first call, timed apart), then times
`--repeats` calls per case and reports their median. The table gives, per case, the
median over rounds of each side's per-process median and the ratio now / then
(above 1: slower now), with the min and max of the per-round ratios; step and
work counts of both sides, so a changed step sequence is seen, not mistaken for
speed.

    python benchmarks/revisions.py --against REV [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# (problem, solver, rtol): stiff problems for the stiff solvers, van der Pol with
# mu = 1 for the explicit ones
SOLVE_CASES = [("robertson", s, 1e-6) for s in ("kvaerno5", "kvaerno3", "ros2", "auto", "kvaerno5-gmres",
                                                   "kvaerno3-gmres", "implicit-euler")]
SOLVE_CASES += [("hires", s, 1e-6) for s in ("kvaerno5", "kvaerno3", "auto")]
SOLVE_CASES += [("vdp1", s, 1e-6) for s in ("tsit5", "dopri5", "dopri8", "bosh3")]
# (task, method, rtol or None, dt0 or None), gradient flows to a loss target, as in the
# gradient-flow tables
FLOW_CASES = [("parity4", "auto-flow", 1e-2, None), ("parity4", "kvaerno3-cg", 1e-3, None),
              ("parity4", "ros2-cg", 1e-3, None), ("parity4", "ptc", 1e-4, 1.0),
              ("digits", "auto-flow", 1e-2, None), ("digits", "ptc", 1e-4, 1.0),
              ("digits", "kvaerno3-cg", 1e-3, None)]
QUICK_SOLVE = [("robertson", "kvaerno5", 1e-6), ("vdp1", "tsit5", 1e-6)]
QUICK_FLOW = [("parity4", "ptc", 1e-4, 1.0)]


def _worker(cases_json: str, repeats: int) -> None:
    """Runs in a fresh process with the side's odeflow on sys.path; prints JSON."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import odeflow
    from odeflow.problems import STIFF_PROBLEMS

    if hasattr(odeflow.problems, "get_task"):
        tasks = None
    else:  # revisions before the training tasks joined odeflow.problems
        from odeflow import tasks

    cases = json.loads(cases_json)
    out = []
    for case in cases:
        if case[0] == "flow":
            _, task_name, method, rtol, dt0 = case
            task = odeflow.problems.get_task(task_name) if tasks is None else getattr(tasks, task_name)()
            params = task.init(jax.random.PRNGKey(0))
            target = 1e-3 if task_name == "parity4" else 1e-2
            if method == "auto-flow" and not hasattr(odeflow.flow._flow, "default_minimum_solver"):
                method = "auto"  # revisions before "auto-flow": "auto" followed the flow
            kwargs = dict(solver=method, rtol=rtol, atol=rtol, target_loss=target, throw=False,
                          history=False, max_steps=20_000, **({} if dt0 is None else {"dt0": dt0}))
            go = jax.jit(lambda p: odeflow.gradient_flow(task.loss, p, **kwargs))

            def counts(r):
                s = r.stats
                return dict(steps=int(s.num_steps), nfe=int(s.nfe), loss=float(r.loss))
            arg = params
        else:
            _, problem, solver, rtol = case
            if problem == "vdp1":
                field = lambda t, y, args: jnp.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]])
                y0, t1, atol = jnp.array([2.0, 0.0]), 20.0, rtol
            else:
                p = STIFF_PROBLEMS[problem]
                field, y0, t1, atol = p.vector_field, p.initial_state(), p.t1, rtol * p.atol_scale
            go = jax.jit(lambda y: odeflow.solve(field, y, t0=0.0, t1=t1, solver=solver, rtol=rtol,
                                                 atol=atol, max_steps=1_000_000, throw=False))

            def counts(sol):
                s = sol.stats
                return dict(steps=int(s.num_steps), nfe=int(s.nfe), y1=np.asarray(sol.ys[-1]).tolist())
            arg = y0
        start = time.perf_counter()
        first = jax.block_until_ready(go(arg))
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(go(arg))
            times.append(time.perf_counter() - start)
        out.append(dict(case=case, compile_s=compile_s, run_s=float(np.median(times)), **counts(first)))
    assert Path(odeflow.__file__).resolve().is_relative_to(Path.cwd().resolve()), odeflow.__file__
    print("RESULT " + json.dumps(out), flush=True)


def _run_side(root: Path, cases, repeats: int) -> list[dict]:
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
            f"import revisions; revisions._worker({json.dumps(json.dumps(cases))}, {repeats})")
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker in {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    from _shared import RESULTS, table, write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="git revision to compare with (e.g. a commit)")
    parser.add_argument("--quick", action="store_true", help="two solve cases and one flow, one round")
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process pairs (A B) per case list")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case in each process")
    parser.add_argument("--out", default=str(RESULTS / "revisions"))
    args = parser.parse_args(argv)
    solve_cases = QUICK_SOLVE if args.quick else SOLVE_CASES
    flow_cases = QUICK_FLOW if args.quick else FLOW_CASES
    cases = [["solve", *c] for c in solve_cases] + [["flow", *c] for c in flow_cases]
    rounds = 1 if args.quick else args.rounds
    rev = subprocess.run(["git", "rev-parse", args.against], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        then_root = Path(tmp) / "then"
        subprocess.run(["git", "worktree", "add", "--detach", str(then_root), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            runs = {"now": [], "then": []}
            for r in range(rounds):
                for side, root in (("now", ROOT), ("then", then_root)):
                    runs[side].append(_run_side(root, cases, args.repeats))
                    print(f"round {r + 1}/{rounds} {side} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(then_root)], cwd=ROOT,
                           capture_output=True)
    rows, md_rows = [], []
    for i, case in enumerate(cases):
        per = {side: [run[i] for run in runs[side]] for side in runs}
        med = {side: {k: float(np.median([x[k] for x in per[side]])) for k in ("compile_s", "run_s")}
               for side in per}
        ratios = [a["run_s"] / b["run_s"] for a, b in zip(per["now"], per["then"])]
        row = dict(case=case, now=med["now"], then=med["then"], run_ratio=med["now"]["run_s"] / med["then"]["run_s"],
                   run_ratio_min=min(ratios), run_ratio_max=max(ratios),
                   compile_ratio=med["now"]["compile_s"] / med["then"]["compile_s"],
                   steps=(per["now"][0]["steps"], per["then"][0]["steps"]),
                   nfe=(per["now"][0]["nfe"], per["then"][0]["nfe"]))
        rows.append(row)
        md_rows.append([" ".join(str(c) for c in case[1:] if c is not None),
                        f"{1e3 * med['then']['run_s']:.2f}", f"{1e3 * med['now']['run_s']:.2f}",
                        f"{row['run_ratio']:.2f} [{row['run_ratio_min']:.2f}, {row['run_ratio_max']:.2f}]",
                        f"{med['then']['compile_s']:.2f}", f"{med['now']['compile_s']:.2f}",
                        f"{row['compile_ratio']:.2f}", f"{row['steps'][1]} / {row['steps'][0]}",
                        f"{row['nfe'][1]} / {row['nfe'][0]}"])
    md = table(["case", "then ms", "now ms", "now/then [min, max]", "then compile s", "now compile s",
                "compile now/then", "steps then / now", "NFE then / now"], md_rows)
    md = f"odeflow now against {args.against} ({rev[:10]}), {rounds} rounds of fresh processes\n\n" + md
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write(out, "revisions", args.quick, dict(against=args.against, revision=rev, rounds=rounds,
                                             repeats=args.repeats, cases=cases), rows, md)


if __name__ == "__main__":
    main()
