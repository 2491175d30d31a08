"""Run the whole benchmark suite and regenerate the result tables of the reports.

    python benchmarks/run_all.py                  # every benchmark, full settings (hours on 2 cores)
    python benchmarks/run_all.py --only peers     # one group (comma-separated; names below)
    python benchmarks/run_all.py --quick          # every script in its smoke settings, into a temp folder
    python benchmarks/run_all.py --report-only    # only the reports, from the results already there

Each benchmark writes benchmarks/results/<group>/<name>.{json,md[,png]}; the reports
(benchmarks/README.md, and README.md where it quotes a result) hold blocks

    <!-- results: peers/spiral_demo -->
    ...
    <!-- /results -->

whose contents are replaced by the table of that result (its .md, rendered from
the same run as its JSON). A block whose result is missing is left as it is.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# group: scripts, each run with no arguments (full settings) or --quick
GROUPS = {
    "reproductions": [f"reproductions/{n}.py" for n in
                      ("spiral_demo", "classifiers", "mnist1d_odenet", "latent_spirals", "adjoint_memory",
                       "cnf_densities", "cnf_digits", "stiff_robertson")],
    "peers": [f"peers/{n}.py" for n in ("spiral_demo", "neural_ode_solve", "odenet_throughput")],
    "sensitivity": ["sensitivity/sensitivity.py"],
    "work_precision": ["work_precision/work_precision.py"],
    "scaling": ["scaling/devices.py", "scaling/per_sample.py", "scaling/multiple_shooting.py"],
    "compile": ["compile/compile_times.py"],
    # gradient-flow training against scipy and optax (about an hour each)
    "gradient_flow": ["gradient_flow_compare.py", "stiff_scaling.py", "untuned.py", "krylov_reuse.py",
                      "jacobi_preconditioner.py", "minibatch.py"],
}
# scripts that take --out (the others write to benchmarks/results only)
TAKES_OUT = ("reproductions/", "peers/", "sensitivity/", "work_precision/", "scaling/", "compile/")

# the full reports, the front page, and documentation pages that quote results
REPORTS = (HERE / "README.md", ROOT / "README.md", ROOT / "docs" / "compile_times.md")
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w/.-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def update_readme(text: str, results: Path) -> tuple[str, list[str]]:
    """`text` with every results block refilled from `results/<name>.md`; also the
    names that were refilled."""
    done = []

    def fill(m):
        path = results / f"{m['name']}.md"
        if not path.exists():
            return m.group(0)
        done.append(m["name"])
        return m.group(1) + path.read_text().strip() + "\n" + m.group(4)

    return BLOCK.sub(fill, text), done


def run(groups, quick):
    out_root = Path(tempfile.mkdtemp(prefix="odeflow-bench-")) if quick else RESULTS
    failed = []
    for group in groups:
        for script in GROUPS[group]:
            if quick and not script.startswith(TAKES_OUT):
                continue  # the long gradient-flow studies have their own --quick; not part of this smoke run
            args = [sys.executable, str(HERE / script)] + (["--quick"] if quick else [])
            if script.startswith(TAKES_OUT):
                args += ["--out", str(out_root / script.split("/")[0])]
            start = time.perf_counter()
            print(f"== {script} {' '.join(args[2:])}", flush=True)
            proc = subprocess.run(args, cwd=HERE / Path(script).parent)
            print(f"== {script}: exit {proc.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
            if proc.returncode:
                failed.append(script)
    return out_root, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(GROUPS), help=f"groups: {', '.join(GROUPS)}")
    parser.add_argument("--quick", action="store_true", help="smoke settings, results to a temporary folder")
    parser.add_argument("--report-only", action="store_true",
                        help="only refill the result tables of the reports")
    parser.add_argument("--readme", action="append", default=None,
                        help="a Markdown file whose result blocks to refill (repeatable; default: "
                        + ", ".join(str(p.relative_to(ROOT)) for p in REPORTS) + ")")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    failed = []
    if not args.report_only:
        out_root, failed = run(groups, args.quick)
        if args.quick:
            print(f"smoke results in {out_root}; the reports left alone")
            return 1 if failed else 0
    for readme in map(Path, args.readme or REPORTS):
        text, done = update_readme(readme.read_text(), RESULTS)
        readme.write_text(text)
        print(f"{readme}: refilled {len(done)} result blocks ({', '.join(done)})")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
