import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from odeflow import data, nn


@pytest.fixture(scope="module")
def series():
    s = data.spirals(jax.random.key(0), n_spirals=6, n_points=20, n_total=60)
    mask = data.subsample(jax.random.key(1), 6, 20, 8)
    return s, mask


@pytest.mark.parametrize("cls", [nn.LatentODE, nn.RNNBaseline])
def test_sequence_models(cls, series):
    s, mask = series
    model = cls(key=jax.random.key(2))
    loss, metrics = eqx.filter_jit(lambda m: m.loss(s.times, s.observed, mask, key=jax.random.key(3)))(model)
    assert np.isfinite(float(loss)) and float(metrics["mse"]) > 0
    pred = model.extrapolate(s.times, s.observed, mask, s.future_times)
    assert pred.shape == s.future.shape
    grads = eqx.filter_grad(lambda m: m.loss(s.times, s.observed, mask, key=jax.random.key(3))[0])(model)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    with pytest.raises(ValueError, match="values"):
        model.loss(s.times, s.observed[:, :5], mask, key=jax.random.key(3))


def test_encoders_ignore_unobserved_points(series):
    s, mask = series
    noisy = jnp.where(mask[..., None], s.observed, 1e3)
    ode = nn.LatentODE(key=jax.random.key(2))
    enc = jax.vmap(ode.encode, in_axes=(None, 0, 0))
    np.testing.assert_allclose(enc(s.times, s.observed, mask)[0], enc(s.times, noisy, mask)[0], rtol=1e-5)
    rnn = nn.RNNBaseline(key=jax.random.key(2))
    np.testing.assert_allclose(rnn.extrapolate(s.times, s.observed, mask, s.future_times),
                               rnn.extrapolate(s.times, noisy, mask, s.future_times), rtol=1e-5)
    # the latent ODE's likelihood counts observed points only
    l1 = ode.loss(s.times, s.observed, mask, key=jax.random.key(3))[1]["nll"]
    l2 = ode.loss(s.times, noisy, mask, key=jax.random.key(3))[1]["nll"]
    np.testing.assert_allclose(l1, l2, rtol=1e-5)


def test_each_series_may_have_its_own_times(series):
    """Times (batch, T): each series is encoded, solved (its own steps) and decoded
    on its own grid, as that series alone with shared times; tiled shared times
    give the shared-times results (the RNN exactly, the latent ODE to its solver's
    tolerance, its joint solve taking other steps)."""
    s, mask = series
    scale = 1.0 + 0.25 * jnp.arange(6, dtype=s.times.dtype)[:, None]
    times, future = s.times[None] * scale, s.future_times[None] * scale
    for model in (nn.LatentODE(key=jax.random.key(2)), nn.RNNBaseline(key=jax.random.key(2))):
        pred = model.extrapolate(times, s.observed, mask, future)
        assert pred.shape == s.future.shape
        for i in range(6):
            alone = model.extrapolate(times[i], s.observed[i:i + 1], mask[i:i + 1], future[i])
            np.testing.assert_allclose(pred[i], alone[0], rtol=1e-4, atol=1e-5)
        grads = eqx.filter_grad(lambda m: m.loss(times, s.observed, mask, key=jax.random.key(3))[0])(model)
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
        tiled = jnp.broadcast_to(s.times, (6, s.times.shape[0]))
        shared = model.loss(s.times, s.observed, mask, key=jax.random.key(3))[0]
        rtol = 1e-6 if isinstance(model, nn.RNNBaseline) else 1e-3
        np.testing.assert_allclose(model.loss(tiled, s.observed, mask, key=jax.random.key(3))[0], shared,
                                   rtol=rtol)
    with pytest.raises(ValueError, match="per series"):
        model.loss(times[:3], s.observed, mask)


def test_latent_ode_elbo_terms(series):
    """The KL term of a posterior equal to the prior is zero, and the Gaussian
    log-density is the textbook one."""
    np.testing.assert_allclose(nn.gaussian_nll(jnp.array(1.0), 0.0, 0.5),
                               -np.log(np.exp(-0.5 * 4.0) / (0.5 * np.sqrt(2 * np.pi))), rtol=1e-6)
    s, mask = series
    ode = nn.LatentODE(key=jax.random.key(2))
    zero = eqx.tree_at(lambda m: (m.to_posterior.weight, m.to_posterior.bias), ode,
                       replace_fn=jnp.zeros_like)
    assert float(zero.loss(s.times, s.observed, mask, key=jax.random.key(3))[1]["kl"]) == 0.0


@pytest.mark.parametrize("blocks, interval", [(1, {}), (2, {"t0": 1.0, "t1": 0.0})])
def test_cnf_is_a_normalised_invertible_density(blocks, interval):
    """One block forwards in time, and two stacked blocks backwards (FFJORD's
    convention): a density that integrates to one, and sampling inverts it."""
    with jax.enable_x64(True):
        cnf = nn.CNF(2, 16, 2, key=jax.random.key(4), rtol=1e-8, atol=1e-10, blocks=blocks, **interval)
        cnf = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, cnf)
        g = np.linspace(-7, 7, 141)
        grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
        logp, _ = cnf.log_prob(grid)
        mass = float(jnp.sum(jnp.exp(logp))) * (g[1] - g[0]) ** 2
        assert mass == pytest.approx(1.0, abs=1e-3)
        x, _ = cnf.sample(jax.random.key(5), 8)
        # flowing the samples forward returns the base draws
        (z1, _), _ = cnf._flow(x, None)
        z = jax.random.normal(jax.random.key(5), (8, 2), jnp.float64)
        np.testing.assert_allclose(z1, z, atol=1e-6)


def test_stacked_cnf_blocks_compose():
    """Two blocks: the log-density is the base density at the end of both flows plus
    both trace integrals, and the stats are the two blocks' totals."""
    x = data.toy_density("eight_gaussians", jax.random.key(0), 5)
    cnf = nn.CNF(2, 16, 2, key=jax.random.key(4), blocks=2)
    assert len(cnf.blocks) == 2
    logp, stats = cnf.log_prob(x)
    z, total, nfe, steps = x, 0.0, 0, 0
    for block in cnf.blocks:
        (z, trace), block_stats = block.solve((z, jnp.zeros(5, z.dtype)), None)
        total, nfe, steps = total + trace, nfe + int(block_stats.nfe), steps + int(block_stats.num_steps)
    expected = -0.5 * jnp.sum(z**2, axis=-1) - np.log(2 * np.pi) + total
    np.testing.assert_allclose(logp, expected, rtol=1e-5)
    assert int(stats.nfe) == nfe and int(stats.num_steps) == steps
    with pytest.raises(ValueError, match="blocks must be a positive integer"):
        nn.CNF(2, key=jax.random.key(0), blocks=0)


def test_cnf_hutchinson_is_unbiased_and_differentiable():
    x = data.toy_density("eight_gaussians", jax.random.key(0), 4)
    exact = nn.CNF(2, 16, 2, key=jax.random.key(4))
    hutch = nn.CNF(2, 16, 2, key=jax.random.key(4), trace="hutchinson")
    ref = exact.log_prob(x)[0]
    est = jax.vmap(lambda k: hutch.log_prob(x, key=k)[0])(jax.random.split(jax.random.key(1), 256))
    err = jnp.abs(est.mean(0) - ref)
    assert float(jnp.max(err / (est.std(0) / 16 + 1e-6))) < 4  # within 4 standard errors
    with pytest.raises(ValueError, match="needs a key"):
        hutch.log_prob(x)
    for model, key in ((exact, None), (hutch, jax.random.key(2))):
        grads = eqx.filter_grad(lambda m: m.loss(x, key=key)[0])(model)
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        exact.log_prob(jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="unknown trace"):
        nn.CNF(2, key=jax.random.key(0), trace="skilling")


@pytest.mark.parametrize("name", list(data.TOY_DENSITIES))
def test_toy_densities(name):
    x = data.toy_density(name, jax.random.key(0), 2000)
    assert x.shape == (2000, 2) and float(jnp.abs(x).max()) < 4
    # centred and spread out (none collapses to a point or a line)
    assert float(jnp.abs(jnp.mean(x, axis=0)).max()) < 0.2
    assert float(jnp.std(x, axis=0).min()) > 0.5
    with pytest.raises(ValueError, match="unknown toy density"):
        data.toy_density("swissroll", jax.random.key(0), 3)


def test_observed_points_give_each_series_its_own_grid(series):
    """Masked shared times -> per-series grids of the observed points: the same
    points in time order, and the same RNN loss and extrapolation either way."""
    s, mask = series
    times, values, ones = data.observed_points(s.times, s.observed, mask)
    assert times.shape == (6, 8) and values.shape == (6, 8, 2) and bool(jnp.all(ones))
    for i in range(6):
        np.testing.assert_array_equal(times[i], s.times[mask[i]])
        np.testing.assert_array_equal(values[i], s.observed[i][mask[i]])
    rnn = nn.RNNBaseline(key=jax.random.key(2))
    np.testing.assert_allclose(rnn.extrapolate(times, values, ones, s.future_times),
                               rnn.extrapolate(s.times, s.observed, mask, s.future_times), rtol=1e-5)
    np.testing.assert_allclose(rnn.loss(times, values, ones)[0], rnn.loss(s.times, s.observed, mask)[0],
                               rtol=1e-5)
    uneven = mask.at[0, :].set(True)
    with pytest.raises(ValueError, match="same number of observed points"):
        data.observed_points(s.times, s.observed, uneven)
