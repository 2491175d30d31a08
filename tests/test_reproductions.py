"""The neural-ODE reproduction scripts run end to end in their --quick settings and
write their JSON, Markdown and plots (the full settings run in benchmarks/)."""

import pytest

from bench_smoke import BENCH, run_quick

PLOTS = {"spiral_demo", "cnf_densities", "cnf_digits", "stiff_robertson"}


@pytest.mark.parametrize("name", ["spiral_demo", "classifiers", "latent_spirals", "adjoint_memory",
                                  "cnf_densities", "cnf_digits", "mnist1d_odenet",
                                  "stiff_robertson"])
def test_reproduction_runs(name, tmp_path):
    run_quick(BENCH / "reproductions" / f"{name}.py", name, tmp_path, plot=name in PLOTS)
