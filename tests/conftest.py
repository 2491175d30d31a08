import atexit
import os
import shutil
import tempfile

# Set before JAX starts, inherited by every process the tests start (scripts,
# notebook kernels). The suite compiles thousands of small programs and runs each a
# few times, so compile time is most of its time: XLA's older CPU fusion code
# generator compiles them faster than its default one (10-25% of the suite's time
# on 2 cores). Simulated devices (four on two cores, beside a second test worker)
# may reach a collective far apart, past XLA's 40-second limit: allow ten minutes.
# (Unoptimised compilation, JAX_DISABLE_MOST_OPTIMIZATIONS, would save more, but with
# the older generator it miscompiled a GMRES loop in jaxlib 0.10.2.)
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_cpu_use_fusion_emitters=false",
     "--xla_cpu_collective_call_terminate_timeout_seconds=600"]).strip()

# The CLI runs the tests start keep their compiled programs in a folder of this test
# run (shared by its worker processes, removed at the end), never in the user's
# cache: no run depends on what an earlier one left.
if "ODEFLOW_TEST_CACHE_DIR" not in os.environ:  # the first process; workers inherit it
    os.environ["ODEFLOW_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="odeflow-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ODEFLOW_TEST_CACHE_DIR"], ignore_errors=True)
os.environ["ODEFLOW_CACHE_DIR"] = os.environ["ODEFLOW_TEST_CACHE_DIR"]

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop the compiled executables after each test module. The suite compiles
    thousands of programs; kept alive in one process, their code mappings approach
    the kernel's limit on memory maps (vm.max_map_count, 65,530 here) and XLA's
    compiler then crashes with a segmentation fault."""
    yield
    jax.clear_caches()
