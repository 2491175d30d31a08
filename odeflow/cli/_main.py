"""The `odeflow` command line: `odeflow compare`, `odeflow tasks`, `odeflow methods`."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys


def _positive(kind: type, example: str):
    """An argparse type for a positive `kind` (float or int); its errors show `example`."""
    a_noun = {float: "a number", int: "an integer"}[kind]
    noun = a_noun.split()[1]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {a_noun}; e.g. {example}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text!r} must be a positive {noun}; e.g. {example}")
        return value

    return parse


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("odeflow")
    except PackageNotFoundError:  # run from a source tree without installing
        from .. import __version__

        return __version__


def _default_cache_dir() -> str:
    """`$ODEFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/odeflow/jax`, else `~/.cache/odeflow/jax`."""
    if os.environ.get("ODEFLOW_CACHE_DIR"):
        return os.environ["ODEFLOW_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "odeflow", "jax")


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="odeflow",
        description="Train networks by solving their gradient-flow ODE, side by side "
        "with tuned optax optimizers.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"odeflow {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="compare training methods on one task",
                         description="Tune every method on a grid (or take its defaults, --tuning "
                         "none), then time it per seed to a target loss; writes OUT/TASK.json, "
                         ".md and .png.", formatter_class=formatter)
    cmp.add_argument("--task", default="parity4", help="task name, any case (see `odeflow tasks`)")
    cmp.add_argument("--methods", default="adam,lbfgs,gd,tsit5,auto",
                     help="comma-separated method names, any case (see `odeflow methods`)")
    cmp.add_argument("--seeds", type=_positive(int, "8"), default=8, help="number of seeds")
    cmp.add_argument("--target", type=_positive(float, "1e-3"), default=1e-3, help="target full-batch loss")
    cmp.add_argument("--max-steps", type=_positive(int, "20000"), default=20_000,
                     help="iterations or solver steps per run")
    cmp.add_argument("--tuning", type=str.lower, choices=("grid", "none"), default="grid",
                     help="grid: each method's setting chosen on a grid over the seeds (its wall "
                          "time reported as the tuning cost); none: every method at its defaults")
    cmp.add_argument("--repeats", type=_positive(int, "3"), default=3, help="timed repetitions per seed")
    cmp.add_argument("--scipy-time-cap", type=_positive(float, "30"), default=30.0,
                     help="wall-time cap in seconds per scipy run")
    cmp.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                     help="floating-point type of data and parameters")
    cmp.add_argument("--out", default="results", help="output folder for JSON, Markdown, PNG")
    cmp.add_argument("--resume", action="store_true",
                     help="continue an interrupted run from OUT/TASK.progress.json (same options)")
    cmp.add_argument("--devices", type=_positive(int, "2"), default=None,
                     help="local devices to split the vmapped seeds over (None: all); in a "
                     "run of several processes, this many of every process's")
    cmp.add_argument("--cache-dir", default=_default_cache_dir(),
                     help="folder of JAX's persistent compilation cache: a second run compiles "
                     "little (also $ODEFLOW_CACHE_DIR)")
    cmp.add_argument("--no-cache", action="store_true",
                     help="do not read or write the compilation cache")
    multi = cmp.add_argument_group(
        "several hosts", "jax.distributed.initialize settings; or the environment variables "
        "ODEFLOW_COORDINATOR_ADDRESS, ODEFLOW_NUM_PROCESSES, ODEFLOW_PROCESS_ID")
    multi.add_argument("--coordinator-address", help="host:port of process 0")
    multi.add_argument("--num-processes", type=_positive(int, "2"), help="processes in the run")
    multi.add_argument("--process-id", type=int, help="this process's index, from 0")
    sub.add_parser("tasks", help="list the tasks", formatter_class=formatter)
    sub.add_parser("methods", help="list the methods", formatter_class=formatter)
    return parser


def _compare(args) -> int:
    from .._distributed import initialize

    distributed = initialize(args.coordinator_address, args.num_processes, args.process_id)
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if not args.no_cache:
        _use_compilation_cache(jax, args.cache_dir)
    from rich.console import Console

    from ..comparison import compare, print_table, write_report
    from ..comparison._report import ensure_writable

    from .._progress import log_line
    from ..comparison import get_method
    from ..problems._registry import registered_name

    # names first (nothing created for a typo), then the output folder, before the
    # run rather than after it
    methods = [get_method(m.strip()).name for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError(f"--methods {args.methods!r} names no method; e.g. --methods adam,auto "
                         "(see `odeflow methods`)")
    task = registered_name(args.task)
    out = ensure_writable(args.out)
    # every finished unit of work is saved here as the run goes; removed once the
    # report is written
    journal = out / f"{task}.progress.json"
    console = Console(stderr=True, log_path=False)  # no source paths in progress lines
    if args.resume and not journal.exists():
        console.print(f"odeflow: no progress journal at {journal}: nothing to resume, starting afresh")
    with contextlib.ExitStack() as stack:
        if console.is_terminal:  # a spinner with the latest line, and the lines above it
            status = stack.enter_context(console.status("starting"))
            progress = lambda line: (status.update(line), console.log(line, highlight=False))
        else:  # a log file: one plain line per report, neither wrapped nor padded
            progress = log_line
        result = compare(
            task, methods, seeds=args.seeds, target=args.target, max_steps=args.max_steps,
            repeats=args.repeats, scipy_time_cap=args.scipy_time_cap, dtype=args.dtype,
            progress=progress, journal=journal, resume=args.resume, devices=args.devices,
            tuning=args.tuning,
        )
    if distributed and jax.process_index() != 0:
        return 0  # every process computes the same records; process 0 writes them
    print_table(result)
    command = "odeflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_report(result, out, command=command)
    journal.unlink(missing_ok=True)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _use_compilation_cache(jax, folder: str) -> None:
    """JAX's persistent compilation cache in `folder`: compiled programs are kept
    between runs, so a second `odeflow compare` compiles little."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the compilation cache folder {folder!r} ({err.strerror}); "
                         "pass --cache-dir with a writable folder, or --no-cache") from None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tasks":
            from ..problems import get_task, task_names

            for name in task_names():
                print(f"{name:10s} {get_task(name, dtype='float32').description}")
            return 0
        if args.command == "methods":
            from ..comparison import get_method, method_names

            for name in method_names():
                print(f"{name:16s} {get_method(name).description}")
            return 0
        return _compare(args)
    except ValueError as err:
        print(f"odeflow: error: {err}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())
