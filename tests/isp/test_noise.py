"""Shot/read noise: UPI's level distribution, SemiISP eq. 15, the sampler."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rawjax import isp

N_SAMPLES = 20000
P_MIN = 1e-3  # KS p-values are deterministic (fixed keys)
# One image shape throughout: eager mode compiles each primitive per shape.
SHAPE = (4, 64, 64, 4)


def test_upi_noise_levels_follow_the_log_linear_relation(variant):
  levels = variant(functools.partial(isp.random_noise_levels,
                                     shape=(N_SAMPLES,)))(
                                         jax.random.PRNGKey(0))
  shot = np.asarray(levels.shot, np.float64)
  read = np.asarray(levels.read, np.float64)
  assert shot.shape == read.shape == (N_SAMPLES,)
  assert shot.min() >= 1e-4 * (1 - 1e-6) and shot.max() <= 0.012 * (1 + 1e-6)
  assert shot.min() < 1.05e-4 and shot.max() > 0.0119  # fills its range
  # log shot ~ U(log 1e-4, log 0.012): log-uniform shot.
  log_shot, log_read = np.log(shot), np.log(read)
  low, high = np.log(1e-4), np.log(0.012)
  assert stats.kstest(log_shot, 'uniform',
                      args=(low, high - low)).pvalue > P_MIN
  # log read = 2.18 log shot + 1.20 + N(0, 0.26^2). Standard errors here:
  # slope 1.3e-3, intercept 9e-3, residual std 1.3e-3.
  fit = stats.linregress(log_shot, log_read)
  assert abs(fit.slope - 2.18) < 0.01
  assert abs(fit.intercept - 1.20) < 0.05
  residual = log_read - (2.18 * log_shot + 1.20)
  assert abs(residual.std() - 0.26) < 0.008
  assert abs(residual.mean()) < 0.01
  assert stats.kstest(residual, 'norm', args=(0, 0.26)).pvalue > P_MIN
  # So read noise spans about 1e-9 .. 3e-4 (a variance, not a std).
  assert 1e-10 < np.median(read) < 1e-4


def test_upi_noise_level_options():
  levels = isp.random_noise_levels(jax.random.PRNGKey(1), shape=(N_SAMPLES,),
                                   shot_range=(1e-3, 1e-2), slope=1.0,
                                   intercept=0.0, read_log_std=0.0)
  shot = np.asarray(levels.shot)
  assert shot.min() >= 1e-3 * (1 - 1e-6) and shot.max() <= 1e-2 * (1 + 1e-6)
  np.testing.assert_allclose(np.asarray(levels.read), shot, rtol=1e-6)
  with pytest.raises(ValueError, match='shot_range'):
    isp.random_noise_levels(jax.random.PRNGKey(0), shot_range=(0.0, 0.1))


def test_semiisp_noise_levels_eq15(variant):
  levels = variant(functools.partial(isp.random_semiisp_noise_levels,
                                     shape=(N_SAMPLES,)))(
                                         jax.random.PRNGKey(2))
  shot, read = np.asarray(levels.shot), np.asarray(levels.read)
  assert shot.min() >= 0 and shot.max() <= 0.01
  assert read.min() >= 0 and read.max() <= 0.0002
  assert stats.kstest(shot, 'uniform', args=(0, 0.01)).pvalue > P_MIN
  assert stats.kstest(read, 'uniform', args=(0, 0.0002)).pvalue > P_MIN
  assert abs(np.corrcoef(shot, read)[0, 1]) < 0.03  # independent


def test_add_noise_is_heteroscedastic_gaussian(variant):
  """Var(noisy - x) = shot * x + read, per level, with Gaussian residuals."""
  signal = np.array([0.0, 0.1, 0.4, 0.8], np.float32)
  x = np.broadcast_to(signal, SHAPE)  # packed raws, one level per channel
  shot, read = 0.01, 2e-4
  noisy = np.asarray(variant(isp.add_noise)(jax.random.PRNGKey(3), x, shot,
                                            read), np.float64)
  residual = (noisy - x).reshape(-1, 4)
  n = residual.shape[0]
  expected = shot * signal + read
  # Sample variance: relative standard error sqrt(2 / n) = 1.1%.
  np.testing.assert_allclose(residual.var(0), expected, rtol=0.05)
  assert np.all(np.abs(residual.mean(0)) < 4 * np.sqrt(expected / n))
  fit = stats.linregress(np.repeat(signal[None], n, 0).ravel(),
                         (residual**2).ravel())
  assert abs(fit.slope - shot) < 0.0006 and abs(fit.intercept - read) < 1e-4
  for c in range(4):
    standardized = residual[:, c] / np.sqrt(expected[c])
    assert stats.kstest(standardized, 'norm').pvalue > P_MIN
  np.testing.assert_allclose(
      np.asarray(variant(isp.noise_variance)(x, shot, read))[0, 0, 0],
      expected, rtol=1e-6)


def test_per_image_levels_broadcast_over_the_batch(variant):
  x = np.full(SHAPE, 0.5, np.float32)
  levels = isp.NoiseLevels(shot=jnp.array([0.0, 0.004, 0.012, 0.0]),
                           read=jnp.array([0.0, 1e-4, 0.0, 0.0]))
  noisy = np.asarray(variant(isp.add_noise)(jax.random.PRNGKey(4), x,
                                            levels.shot, levels.read))
  variances = (noisy - x).reshape(4, -1).var(1)
  np.testing.assert_array_equal(noisy[0], x[0])  # zero variance: no noise
  np.testing.assert_allclose(variances[1:3], [0.5 * 0.004 + 1e-4, 0.006],
                             rtol=0.06)
  # Per-channel levels (as many dims as x) broadcast as they are.
  per_channel = isp.add_noise(jax.random.PRNGKey(4), x, 0.0,
                              jnp.array([[[[0.0, 0.0, 1e-3, 0.0]]]]))
  assert np.all(np.asarray(per_channel)[..., (0, 1, 3)] == 0.5)
  assert np.asarray(per_channel)[..., 2].std() > 0.02
  with pytest.raises(ValueError, match='leading'):
    isp.add_noise(jax.random.PRNGKey(0), x, jnp.zeros(3), 0.0)


def test_add_random_noise_draws_one_level_pair_per_image(variant):
  x = np.full(SHAPE, 0.3, np.float32)
  key = jax.random.PRNGKey(5)
  level_key, noise_key = jax.random.split(key)
  for model, sample in (('upi', isp.random_noise_levels),
                        ('semiisp', isp.random_semiisp_noise_levels)):
    fn = functools.partial(isp.add_random_noise, model=model)
    noisy, levels = (variant(fn) if model == 'upi' else fn)(key, x)
    assert noisy.shape == x.shape and levels.shot.shape == (4,)
    expected = sample(level_key, shape=(4,))
    np.testing.assert_allclose(np.asarray(levels.shot),
                               np.asarray(expected.shot), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(noisy),
        np.asarray(isp.add_noise(noise_key, x, expected.shot, expected.read)),
        atol=1e-6)
  # Mosaics: two image axes, so (4, 64) images of 64 x 4 here.
  _, mosaic_levels = isp.add_random_noise(key, x, image_ndim=2)
  assert mosaic_levels.read.shape == (4, 64)


def test_noise_gradients_are_reparameterised():
  """d noisy / d x = 1 + z * shot / (2 sigma), finite where sigma = 0."""
  key = jax.random.PRNGKey(6)
  x = jnp.array([[0.0, 1e-6, 0.3, 1.0]], jnp.float32)
  shot, read = 0.01, 1e-4

  def total(x, shot, read):
    return jnp.sum(isp.add_noise(key, x, shot, read))

  grads = jax.jit(jax.grad(total, argnums=(0, 1, 2)))
  grad_x, grad_shot, grad_read = grads(x, shot, read)
  z = np.asarray(jax.random.normal(key, x.shape))
  sigma = np.sqrt(shot * np.asarray(x) + read)
  np.testing.assert_allclose(np.asarray(grad_x), 1 + z * shot / (2 * sigma),
                             rtol=1e-5)
  np.testing.assert_allclose(float(grad_shot),
                             np.sum(z * np.asarray(x) / (2 * sigma)),
                             rtol=1e-4)
  np.testing.assert_allclose(float(grad_read), np.sum(z / (2 * sigma)),
                             rtol=1e-4)
  # No read noise and a black pixel: zero variance, finite gradients.
  zero = grads(x, 0.01, 0.0)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in zero)
  negative = grads(jnp.array([[-0.1, 0.2, 0.0, 0.5]]), 0.01, 0.0)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in negative)


def test_add_random_noise_rejects_bad_options():
  with pytest.raises(ValueError, match='model'):
    isp.add_random_noise(jax.random.PRNGKey(0), np.zeros((2, 2, 4)),
                         model='poisson')
  with pytest.raises(ValueError, match='image_ndim'):
    isp.add_random_noise(jax.random.PRNGKey(0), np.zeros((2, 2)),
                         image_ndim=3)
  with pytest.raises(ValueError, match='read_max'):
    isp.random_semiisp_noise_levels(jax.random.PRNGKey(0), read_max=-1.0)
