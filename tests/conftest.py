import atexit
import os
import shutil
import tempfile

from processes import OLDER_CODE_GENERATOR

# Set before JAX starts, inherited by every process the tests start (scripts,
# notebook kernels). The suite compiles thousands of small programs and runs each a
# few times, so compile time is most of its time: XLA's older CPU fusion code
# generator compiles them faster than its default one (10-25% of the suite's time
# on 2 cores). Processes with several simulated devices go back to the default
# (`processes.default_code_generator()`): with the older one, a compare over four
# simulated devices at times never completed an all-gather. (Unoptimised
# compilation, JAX_DISABLE_MOST_OPTIMIZATIONS, would save more, but with the older
# generator a GMRES loop came out wrong in jaxlib 0.10.2.)
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), OLDER_CODE_GENERATOR]).strip()

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
