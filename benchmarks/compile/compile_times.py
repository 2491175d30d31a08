"""Compile time of odeflow's entry points: the first call, a second call built again
from the same code in the same process, and the first call of a second process
with JAX's persistent compilation cache.

For each case, three fresh processes run one after the other: "cold" (an empty
cache folder), "warm" (the folder the cold process filled) and "no cache". Each
process times the first call (compile and run), a second call whose functions,
optimizer and task are built again from the same code (what a notebook cell run
twice does), and a third call (the run alone). The command line is timed end to
end the same way (`odeflow compare` twice with its cache, once with `--no-cache`).

    python benchmarks/compile/compile_times.py [--quick] [--out DIR]

JAX does not keep programs that contain host callbacks in its persistent cache.
Run-time errors (`throw=True`, the default of `solve` and `gradient_flow`) are
host callbacks, so those programs are compiled again in a second process; with
`throw=False` (as `odeflow compare` runs every method) they are kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = ["solve-kvaerno5", "solve-auto", "gradient_flow", "optimize-adam", "optimize-lbfgs", "fit"]


def _case(name: str):
    """A function that builds everything afresh and runs the case once."""
    import jax
    import jax.numpy as jnp
    import optax

    import odeflow

    if name.startswith("solve"):
        def run():
            def robertson(t, y, args):
                return jnp.stack([-0.04 * y[0] + 1e4 * y[1] * y[2],
                                  0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2, 3e7 * y[1] ** 2])
            return odeflow.solve(robertson, jnp.array([1.0, 0.0, 0.0]), t0=0.0, t1=1e5,
                                 solver=name.split("-")[1], rtol=1e-6, atol=1e-10).ys
        return run
    if name == "gradient_flow":
        def run():
            task = odeflow.problems.get_task("parity4")
            return odeflow.gradient_flow(task.loss, task.init(jax.random.key(0)), target_loss=1e-3).loss
        return run
    if name.startswith("optimize"):
        def run():
            task = odeflow.problems.get_task("parity4")
            opt = optax.adam(0.1) if name.endswith("adam") else optax.lbfgs()
            return odeflow.optimize(task.loss, task.init(jax.random.key(0)), opt, target_loss=1e-3,
                                    max_iters=5_000).loss
        return run
    if name == "fit":
        d = odeflow.data.digits()

        def run():
            model = odeflow.nn.ODENet((1, 8, 8), 10, key=jax.random.key(0), width=16, hidden=32)
            r = odeflow.fit(model, odeflow.fitting.classification_loss(), d, optimizer=optax.adam(3e-3),
                            steps=20, batch_size=64, key=jax.random.key(1), progress=False)
            return r.history["loss"][-1]
        return run
    raise ValueError(name)


def _worker(name: str) -> None:
    """In a fresh process: time three calls, print JSON."""
    start = time.perf_counter()
    import jax

    jax.config.update("jax_enable_x64", name != "fit")
    import odeflow  # noqa: F401

    imported = time.perf_counter() - start
    times = []
    for _ in range(3):
        run = _case(name)
        t = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - t)
    print("RESULT " + json.dumps({"import_s": imported, "first_s": times[0], "rebuilt_s": times[1],
                                  "run_s": times[2]}), flush=True)


def _process(args: list[str], cache: str | None) -> tuple[float, str]:
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.1",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=HERE)
    if proc.returncode:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def _python_case(name: str, cache: str | None) -> dict:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import compile_times; compile_times._worker({name!r})"
    wall, out = _process([sys.executable, "-c", code], cache)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return {"process_s": wall, **json.loads(line[len("RESULT "):])}


def main(argv=None):
    sys.path.insert(0, str(HERE.parent))
    from _shared import RESULTS, settings, table, write

    config, out, quick = settings(__doc__, {"cases": CASES, "compare_seeds": 4},
                                  {"cases": ["solve-kvaerno5", "optimize-adam"], "compare_seeds": 1}, argv,
                                  results=RESULTS / "compile")
    results, rows = {}, []
    for name in config["cases"]:
        with tempfile.TemporaryDirectory() as cache:
            cold = _python_case(name, cache)
            warm = _python_case(name, cache)
        plain = _python_case(name, None)
        results[name] = {"cold": cold, "warm": warm, "no_cache": plain}
        rows.append([name, f"{plain['first_s']:.2f}", f"{cold['first_s']:.2f}", f"{warm['first_s']:.2f}",
                     f"{cold['rebuilt_s']:.3f}", f"{cold['run_s']:.3f}", f"{plain['import_s']:.1f}"])
        print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as folder:
        cli = [sys.executable, "-m", "odeflow", "compare", "--seeds", str(config["compare_seeds"]),
               "--repeats", "1", "--methods", "adam,auto", "--out", folder]
        first, _ = _process(cli + ["--cache-dir", cache], None)
        second, _ = _process(cli + ["--cache-dir", cache], None)
        none, _ = _process(cli + ["--no-cache"], None)
    results["odeflow compare"] = {"no_cache_s": none, "first_s": first, "second_s": second}
    markdown = (
        "First call (compile and run) of each entry point in a fresh process: without the persistent "
        "compilation cache, with an empty one (cold) and with the one the cold process filled (warm); "
        "then, in the cold process, a second call with everything built again from the same code "
        "(reused compilation) and a third call (the run alone). Seconds; import time apart.\n\n"
        + table(["case", "first call, no cache", "first call, cold cache", "first call, warm cache",
                 "second call, rebuilt", "run alone", "import"], rows)
        + f"\n\n`odeflow compare --seeds {config['compare_seeds']} --repeats 1 --methods adam,auto`, whole "
        f"process: {none:.1f} s without the cache, {first:.1f} s with an empty cache, {second:.1f} s "
        "the second time.\n")
    write(out, "compile_times", quick, config, results, markdown)


if __name__ == "__main__":
    main()
