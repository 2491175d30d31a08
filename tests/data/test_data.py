import gzip

import jax
import numpy as np
import pytest

from odeflow import data


def test_spirals_follow_their_trajectories():
    s = data.spirals(jax.random.key(0), n_spirals=200, n_points=50, n_total=400, noise=0.3)
    assert s.observed.shape == s.clean.shape == s.future.shape == (200, 50, 2)
    assert s.times.shape == s.future_times.shape == (50,)
    dt = float(s.times[1] - s.times[0])
    np.testing.assert_allclose(float(s.future_times[0] - s.times[-1]), dt, rtol=1e-5)
    # the future continues the clean window: the step across the seam is like the steps inside it
    inside = np.linalg.norm(np.diff(np.asarray(s.clean), axis=1), axis=-1).max()
    seam = np.linalg.norm(np.asarray(s.future[:, 0] - s.clean[:, -1]), axis=-1).max()
    assert seam <= 1.01 * inside
    noise = np.asarray(s.observed - s.clean)
    assert abs(noise.std() - 0.3) < 0.01
    assert 0.35 < float(s.clockwise.mean()) < 0.65
    # counter-clockwise spirals are centred at (5, 0), clockwise ones at (-5, 0)
    centre_x = np.asarray(s.clean[..., 0].mean(axis=1))
    cw = np.asarray(s.clockwise)
    assert centre_x[cw].mean() < 0 < centre_x[~cw].mean()
    sub = s.take(np.arange(10))
    assert len(sub) == 10 and sub.times.shape == (50,)


def test_subsample_masks():
    mask = data.subsample(jax.random.key(3), 20, 100, 30)
    assert mask.shape == (20, 100)
    np.testing.assert_array_equal(np.asarray(mask.sum(axis=1)), 30)
    assert not np.all(mask[0] == mask[1])
    with pytest.raises(ValueError, match="cannot exceed"):
        data.subsample(jax.random.key(3), 2, 10, 11)
    with pytest.raises(ValueError, match="n_total"):
        data.spirals(jax.random.key(0), n_points=60, n_total=100)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    a = (np.arange(60).reshape(3, 4, 5) * 3).astype(dtype)
    path = tmp_path / ("a.idx" + suffix)
    data.write_idx(path, a)
    b = data.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_lecuns(tmp_path):
    data.write_idx(tmp_path / "l", np.array([7, 2, 1], np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def test_idx_refuses_types_it_cannot_store(tmp_path):
    # reading bad files: tests/test_bad_input.py
    with pytest.raises(TypeError, match="IDX cannot store"):
        data.write_idx(tmp_path / "bool", np.zeros(3, bool))


def _write_mnist(folder, n=5, n_test=3, compress=False):
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "y": rng.integers(0, 10, n, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, stem in data.MNIST_FILES.items():
        data.write_idx(folder / (stem + (".gz" if compress else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_loader_reads_written_files(tmp_path, compress):
    arrays = _write_mnist(tmp_path, compress=compress)
    d = data.mnist(tmp_path)
    assert d["x"].shape == (5, 1, 28, 28) and d["x_test"].shape == (3, 1, 28, 28)
    assert d["x"].dtype == np.float32 and d["y"].dtype == np.int32
    np.testing.assert_allclose(d["x"][:, 0], arrays["x"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d["y_test"], arrays["y_test"])


def test_mnist_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.mnist(tmp_path / "nowhere")
    _write_mnist(tmp_path)
    (tmp_path / data.MNIST_FILES["y_test"]).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        data.mnist(tmp_path)
    data.write_idx(tmp_path / data.MNIST_FILES["y_test"], np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="labels"):
        data.mnist(tmp_path)
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01")
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "x.gz")


def test_packaged_data_shapes():
    d = data.digits()
    assert d["x"].shape[1:] == (1, 8, 8) and len(d["x"]) + len(d["x_test"]) == 1797
    assert 0.0 <= d["x"].min() and d["x"].max() <= 1.0
    m = data.mnist1d(num_samples=500)
    assert m["x"].shape[1:] == (1, 40) and len(m["x"]) + len(m["x_test"]) == 500
    assert set(np.unique(m["y"])) <= set(range(10))


def test_mnist1d_standard_split_is_the_generators_own():
    """split="standard" keeps the generator's train and test sets, in its order."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 500
    raw = make_dataset(args)
    m = data.mnist1d(num_samples=500, split="standard")
    assert len(m["x"]) == len(raw["x"]) == 400 and len(m["x_test"]) == len(raw["x_test"]) == 100
    np.testing.assert_array_equal(m["y_test"], raw["y_test"])
    # the same signals, standardised over both sets together
    both = np.concatenate([raw["x"], raw["x_test"]])
    standard = lambda a: (a - both.mean()) / both.std()
    np.testing.assert_allclose(m["x"][:, 0], standard(raw["x"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m["x_test"][:, 0], standard(raw["x_test"]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="split"):
        data.mnist1d(num_samples=500, split="paper")
