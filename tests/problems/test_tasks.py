import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import odeflow
from odeflow.problems import get_task, task_names

SIZES = {"xor": 9, "encoder": 59, "parity4": 25, "digits": 2410, "moons": 337}


@pytest.mark.parametrize("name", task_names())
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_task_shapes_dtypes_and_training(name, dtype):
    task = get_task(name, dtype=dtype)
    params = task.init(jax.random.key(0))
    assert all(p.dtype == dtype for p in jax.tree.leaves(params))
    if name in SIZES:
        assert task.num_params == SIZES[name]
    metrics = task.metrics(params)
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0
    res = odeflow.optimize(task.loss, params, optax.adam(0.01), max_iters=20)
    assert float(res.loss) < float(task.loss(params))
    assert res.loss.dtype == dtype


def test_seeds_give_different_identical_inits():
    task = get_task("parity4")
    a, b = task.init_batch([0, 1]), task.init_batch([0, 1])
    np.testing.assert_array_equal(a["W0"], b["W0"])
    assert not np.allclose(a["W0"][0], a["W0"][1])


def test_unknown_task_and_bad_dtype():
    with pytest.raises(ValueError, match="parity4"):
        get_task("parity5")
    with pytest.raises(TypeError):
        get_task("xor", dtype=jnp.int32)
