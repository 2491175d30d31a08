import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop the compiled executables after each test module. The suite compiles
    thousands of programs; kept alive in one process, their code mappings approach
    the kernel's limit on memory maps (vm.max_map_count, 65,530 here) and XLA's
    compiler then crashes with a segmentation fault."""
    yield
    jax.clear_caches()
