"""rawjax.metrics against scikit-image, colour-science, Sharma's CIEDE2000 data
and numpy ports of the reference evaluation code."""

import functools
import math

import colour
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from skimage import metrics as skm

from rawjax import metrics

_RNG = np.random.default_rng(20240607)
# Small images keep XLA compile time down; 16x18 leaves a 6x8 SSIM valid area.
_X = _RNG.random((2, 16, 18, 3))
_Y = np.clip(_X + 0.15 * _RNG.standard_normal(_X.shape), 0.0, 1.0)
_X32, _Y32 = _X.astype(np.float32), _Y.astype(np.float32)


def _finite_grads(fn, *cases):
  """Gradients of sum(fn(*args)) w.r.t. every argument, for each case."""
  grad = jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a)),
                          argnums=tuple(range(len(cases[0])))))
  out = []
  for args in cases:
    grads = grad(*[jnp.asarray(a, jnp.float32) for a in args])
    for g in grads:
      assert np.all(np.isfinite(np.asarray(g))), g
    out.append(grads)
  return out


# ---------------------------------------------------------------- PSNR, MAE --


def test_psnr_matches_skimage(variant):
  got = variant(functools.partial(metrics.psnr, data_range=1.0))(_X32, _Y32)
  want = [skm.peak_signal_noise_ratio(_X[i], _Y[i], data_range=1.0)
          for i in range(2)]
  np.testing.assert_allclose(got, want, atol=1e-4)
  assert got.shape == (2,)


def test_psnr_8bit_scale():
  x, y = np.round(_X * 255), np.round(_Y * 255)
  got = metrics.psnr(x.astype(np.float32), y.astype(np.float32),
                     data_range=255.0)
  mse = np.mean((x - y)**2, axis=(1, 2, 3))
  np.testing.assert_allclose(got, 10 * np.log10(255.0**2 / mse), atol=1e-4)


def test_mae_matches_numpy(variant):
  got = variant(metrics.mae)(_X32, _Y32)
  np.testing.assert_allclose(got, np.abs(_X - _Y).mean(axis=(1, 2, 3)),
                             atol=1e-6)


# ---------------------------------------------------------------------- SSIM --


@pytest.mark.parametrize('sample_cov', [False, True])
def test_ssim_matches_skimage(variant, sample_cov):
  got = variant(functools.partial(metrics.ssim, data_range=1.0,
                                  use_sample_covariance=sample_cov))(_X32, _Y32)
  want = [
      skm.structural_similarity(_X[i], _Y[i], channel_axis=-1, data_range=1.0,
                                gaussian_weights=True,
                                use_sample_covariance=sample_cov)
      for i in range(2)
  ]
  np.testing.assert_allclose(got, want, atol=1e-4)
  assert got.shape == (2,)


def test_ssim_liteispnet_setting():
  """LiteISPNet metrics.py: 8-bit images, data_range 255, skimage defaults."""
  x, y = np.round(_X * 255), np.round(_Y * 255)
  got = metrics.ssim(x.astype(np.float32), y.astype(np.float32),
                     data_range=255.0, use_sample_covariance=True)
  want = [
      skm.structural_similarity(x[i], y[i], win_size=11, data_range=255,
                                channel_axis=-1, gaussian_weights=True)
      for i in range(2)
  ]
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_ssim_identical_is_one_and_too_small_raises():
  np.testing.assert_allclose(metrics.ssim(_X32, _X32), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match='ssim: H and W must be at least'):
    metrics.ssim(_X32[:, :10], _Y32[:, :10])


# ------------------------------------------------------------ angular error --


def _afifi_angular_error(source, target):
  """numpy port of WB_sRGB evaluation/calc_mae.py (colour-chart area 0)."""
  source = source.reshape(-1, source.shape[-1]).astype(np.float64)
  target = target.reshape(-1, target.shape[-1]).astype(np.float64)
  norm = np.linalg.norm(source, axis=1) * np.linalg.norm(target, axis=1)
  inds = norm != 0
  angles = np.sum(source[inds] * target[inds], 1) / norm[inds]
  angles[angles > 1] = 1
  f = np.degrees(np.arccos(angles))
  f[np.isnan(f)] = 0
  return f.sum() / norm.shape[0]


def test_angular_error_matches_afifi(variant):
  x, y = _X.copy(), _Y.copy()
  x[:, 0, 0] = 0.0  # zero vectors count as 0 in the mean
  y[:, 1, 1] = 0.0
  x[:, 2, 2] = y[:, 2, 2] = 0.0
  y[:, 3, 3] = 2.5 * x[:, 3, 3]  # parallel: exactly 0
  got = variant(metrics.angular_error)(x.astype(np.float32),
                                       y.astype(np.float32))
  want = [_afifi_angular_error(x[i], y[i]) for i in range(2)]
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_angular_error_by_hand():
  x = np.array([[[[1, 0, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]]]], np.float32)
  y = np.array([[[[0, 1, 0], [1, 1, 0], [1, 2, 3], [2, 2, 2]]]], np.float32)
  # Angles 90, 45, 0 (zero vector), 0 (parallel) over four pixels.
  np.testing.assert_allclose(metrics.angular_error(x, y), [135.0 / 4],
                             atol=1e-5)


# ---------------------------------------------------------------- CIEDE2000 --


def test_delta_e2000_sharma_table(variant, shared_data):
  path = shared_data / 'ciede2000_sharma.csv'
  if not path.exists():
    pytest.skip(f'{path} not found')
  table = np.loadtxt(path, delimiter=',', comments='#', skiprows=2)
  assert table.shape == (34, 7)
  lab1, lab2 = table[:, :3].astype(np.float32), table[:, 3:6].astype(np.float32)
  fn = variant(metrics.delta_e2000)
  np.testing.assert_allclose(fn(lab1, lab2), table[:, 6], atol=1e-4)
  # The formula is symmetric; pair 14 (index 13, |h1 - h2| = 180) included.
  np.testing.assert_allclose(fn(lab2, lab1), table[:, 6], atol=1e-4)


def _random_lab(n, rng):
  return np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n),
                   rng.uniform(-110, 110, n)], -1).astype(np.float32)


def test_delta_e2000_matches_colour(variant):
  rng = np.random.default_rng(7)
  lab1 = _random_lab(2000, rng)
  lab2 = np.concatenate([_random_lab(1000, rng),  # far apart
                         lab1[1000:] + rng.normal(0, 2, (1000, 3))]).astype(
                             np.float32)  # near each other
  lab2[:10, 1:] = 0.0  # achromatic
  lab1[10:20, 1:] = lab2[10:20, 1:] = 0.0
  want = colour.delta_E(lab1.astype(np.float64), lab2.astype(np.float64),
                        method='CIE 2000')
  got = variant(metrics.delta_e2000)(lab1, lab2)
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-6)


def test_delta_e2000_antipodal_hues_take_the_short_branch():
  """|h1 - h2| = 180 exactly (Sharma's pair 14, generalised).

  Sharma's branch for a tie is the limit from |h1 - h2| < 180, so the
  reference is colour-science on lab2 rotated 1e-5 deg towards lab1's hue:
  colour itself (float64 atan2) rounds about 9% of exact ties the other way,
  and a float32 atan2 per colour about as many, with errors up to 26 dE00.
  """
  rng = np.random.default_rng(11)
  lab1 = _random_lab(500, rng)
  lab2 = np.concatenate(
      [lab1[:, :1] + rng.uniform(-5, 5, (500, 1)), -lab1[:, 1:]],
      -1).astype(np.float32)
  l2 = lab2.astype(np.float64)
  h1 = np.arctan2(lab1[:, 2], lab1[:, 1]) % (2 * np.pi)
  h2 = np.arctan2(l2[:, 2], l2[:, 1]) % (2 * np.pi)
  r = np.radians(np.where(h2 > h1, -1e-5, 1e-5))
  rotated = np.stack([l2[:, 0], l2[:, 1] * np.cos(r) - l2[:, 2] * np.sin(r),
                      l2[:, 1] * np.sin(r) + l2[:, 2] * np.cos(r)], -1)
  want = colour.delta_E(lab1.astype(np.float64), rotated, method='CIE 2000')
  np.testing.assert_allclose(metrics.delta_e2000(lab1, lab2), want,
                             atol=1e-4, rtol=1e-6)


def test_mean_delta_e2000_per_image(variant):
  rng = np.random.default_rng(3)
  lab1 = _random_lab(2 * 4 * 5, rng).reshape(2, 4, 5, 3)
  lab2 = _random_lab(2 * 4 * 5, rng).reshape(2, 4, 5, 3)
  got = variant(metrics.mean_delta_e2000)(lab1, lab2)
  want = colour.delta_E(lab1.astype(np.float64), lab2.astype(np.float64),
                        method='CIE 2000').mean(axis=(1, 2))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-6)


def test_delta_e2000_zero_for_identical():
  lab = _random_lab(50, np.random.default_rng(5))
  np.testing.assert_array_equal(metrics.delta_e2000(lab, lab), 0.0)


# ------------------------------------------------------------- histogram KL --


def _numpy_histogram_kl(x, y, bins=256, eps=1e-7):
  """Eq. 14 with the documented defaults, one image (H, W, C)."""
  kls = []
  for c in range(x.shape[-1]):
    p = np.histogram(np.clip(x[..., c], 0, 1), bins=bins, range=(0, 1))[0]
    q = np.histogram(np.clip(y[..., c], 0, 1), bins=bins, range=(0, 1))[0]
    p, q = p / p.sum(), q / q.sum()
    kls.append(np.sum(p * np.log((p + eps) / (q + eps))) +
               np.sum(q * np.log((q + eps) / (p + eps))))
  return np.mean(kls)


def test_histogram_kl_matches_numpy(variant):
  x = _X * 1.1 - 0.05  # some values outside [0, 1] exercise the clipping
  got = variant(metrics.histogram_kl)(x.astype(np.float32), _Y32)
  want = [_numpy_histogram_kl(x[i], _Y[i]) for i in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert got.shape == (2,)


def test_histogram_kl_by_hand():
  eps = 1e-7
  # Channel 0: x all in bin 0, y half in bin 0 and half in bin 255.
  # Channel 1: identical histograms, distance 0.
  x = np.zeros((2, 2, 2), np.float32)
  y = np.zeros((2, 2, 2), np.float32)
  y[0, :, 0] = 1.0
  x[..., 1] = y[..., 1] = 0.5
  forward = math.log((1 + eps) / (0.5 + eps))
  backward = 0.5 * math.log((0.5 + eps) / (1 + eps)) + 0.5 * math.log(
      (0.5 + eps) / eps)
  got = metrics.histogram_kl(x, y, reduction='none')
  np.testing.assert_allclose(got, [forward + backward, 0.0], rtol=1e-5)
  np.testing.assert_allclose(metrics.histogram_kl(x, y),
                             (forward + backward) / 2, rtol=1e-5)
  np.testing.assert_allclose(metrics.histogram_kl(x, y, reduction='sum'),
                             forward + backward, rtol=1e-5)
  np.testing.assert_allclose(
      metrics.histogram_kl(x, y, symmetric=False, reduction='none'),
      [forward, 0.0], rtol=1e-5)
  # Raw counts (4 pixels): weights 4 and 2, eps added to the counts.
  raw = (4 * math.log((4 + eps) / (2 + eps)) + 2 * math.log(
      (2 + eps) / (4 + eps)) + 2 * math.log((2 + eps) / eps))
  np.testing.assert_allclose(
      metrics.histogram_kl(x, y, normalize=False, reduction='none')[0], raw,
      rtol=1e-5)


def test_histogram_kl_options():
  one = lambda v: np.full((1, 1, 1), v, np.float32)
  # 'uniform' bin floor(256 x) vs 'round' bin round(255 x):
  # 0.0015 -> 0 / 0, 0.0025 -> 0 / 1, 0.9955 -> 254 / 254, 0.997 -> 255 / 254.
  assert float(metrics.histogram_kl(one(0.0015), one(0.0025))) == 0.0
  assert float(metrics.histogram_kl(one(0.0015), one(0.0025),
                                    binning='round')) > 1.0
  assert float(metrics.histogram_kl(one(0.9955), one(0.997))) > 1.0
  assert float(metrics.histogram_kl(one(0.9955), one(0.997),
                                    binning='round')) == 0.0
  # Clipping: -0.2 lands in bin 0 with clip=True and is dropped without.
  a = np.array([[[0.0], [0.0]]], np.float32)
  b = np.array([[[0.0], [-0.2]]], np.float32)
  assert float(metrics.histogram_kl(a, b)) == 0.0
  assert float(metrics.histogram_kl(a, b, clip=False)) == 0.0
  c = np.array([[[0.0], [1.0]]], np.float32)
  d = np.array([[[0.0], [1.7]]], np.float32)
  assert float(metrics.histogram_kl(c, d)) == 0.0
  assert float(metrics.histogram_kl(c, d, clip=False)) > 0.1
  with pytest.raises(ValueError, match='histogram_kl: binning'):
    metrics.histogram_kl(a, b, binning='floor')
  with pytest.raises(ValueError, match='histogram_kl: reduction'):
    metrics.histogram_kl(a, b, reduction='max')


# ------------------------------------------------------- shared properties --

_PAIRWISE = {
    'psnr': metrics.psnr,
    'ssim': metrics.ssim,
    'mae': metrics.mae,
    'angular_error': metrics.angular_error,
    'mean_delta_e2000': metrics.mean_delta_e2000,
    'histogram_kl': metrics.histogram_kl,
}


def _scaled(name, a):
  return a * 100.0 - np.array([0, 50, 50]) if name == 'mean_delta_e2000' else a


@pytest.mark.parametrize('name', sorted(_PAIRWISE))
def test_batched_equals_per_image(name):
  fn = _PAIRWISE[name]
  x = _scaled(name, np.stack([_X, _Y[::-1]])).astype(np.float32)
  y = _scaled(name, np.stack([_Y, _X])).astype(np.float32)  # (2, 2, H, W, 3)
  batched = np.asarray(fn(x, y))
  assert batched.shape == (2, 2)
  for i in range(2):
    for j in range(2):
      np.testing.assert_allclose(batched[i, j], fn(x[i, j], y[i, j]),
                                 rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', sorted(_PAIRWISE) + ['delta_e2000'])
def test_shape_mismatch_raises(name):
  fn = getattr(metrics, name)
  with pytest.raises(ValueError, match=f'{name}: .*same shape'):
    fn(_X32, _Y32[:, :, :-1])


def test_rank_and_channel_errors():
  with pytest.raises(ValueError, match='psnr: x must have layout'):
    metrics.psnr(_X32[0, 0], _Y32[0, 0])
  with pytest.raises(ValueError, match='delta_e2000: lab1 must have 3 chan'):
    metrics.delta_e2000(np.zeros((5, 4)), np.zeros((5, 4)))


# ---------------------------------------------------------------- gradients --


def test_gradients_finite():
  flat = np.full_like(_X32, 0.5)
  cases = [(_X32, _Y32), (_X32, _X32), (flat, flat)]
  _finite_grads(metrics.psnr, cases[0])
  _finite_grads(metrics.ssim, *cases)
  _finite_grads(metrics.mae, *cases)
  x, y = _X32.copy(), _Y32.copy()
  x[:, 0, 0] = 0.0
  y[:, 1, 1] = 0.0
  y[:, 2, 2] = 3.0 * x[:, 2, 2]
  y[:, 3, 3] = -x[:, 3, 3]
  y[:, 4, 4] = x[:, 4, 4]
  _finite_grads(metrics.angular_error, (x, y), (x, x))


def test_ssim_gradient_matches_finite_differences():
  # Checks the custom VJP of the window filter.
  x = jnp.asarray(_X32[0, :13, :12])
  y = jnp.asarray(_Y32[0, :13, :12])
  jax.test_util.check_grads(metrics.ssim, (x, y), order=1, modes=['rev'],
                            eps=1e-2, atol=1e-2, rtol=1e-2)


def test_delta_e2000_gradients_finite():
  lab1 = np.array([[50, 10, 20], [50, 0, 0], [50, 0, 0], [30, 0, 0],
                   [50, -1e-3, 2.49], [60, 0, 5], [50, 2.5, 0]], np.float32)
  lab2 = np.array([[50, 10, 20], [50, 0, 0], [60, 0, 0], [30, 3, -4],
                   [50, 1e-3, -2.49], [60, 0, -5], [50, 0, -2.5]], np.float32)
  (g1, g2), = _finite_grads(metrics.delta_e2000, (lab1, lab2))
  # dE00 is not differentiable at identical colours (like a norm at 0): eager
  # gives the subgradient 0, but XLA's fusion may round the two chromas 1 ulp
  # apart and give a bounded unit-size direction instead. Grey pairs give 0.
  assert np.abs(g1).max() < 5.0 and np.abs(g2).max() < 5.0
  np.testing.assert_array_equal(g1[1], 0.0)


# --- argument validation and NaN propagation (issue 17) ------------------------

@pytest.mark.parametrize('fn', [metrics.psnr, metrics.ssim])
@pytest.mark.parametrize('data_range', [0, -1.0, float('nan'), float('inf')])
def test_data_range_must_be_positive(fn, data_range):
  x = np.random.default_rng(61).uniform(0, 1, (16, 16, 3))
  with pytest.raises(ValueError, match=f'{fn.__name__}: data_range must be '
                     'finite and > 0'):
    fn(x, 0.5 * x, data_range=data_range)


@pytest.mark.parametrize('fn', [metrics.psnr, metrics.ssim])
def test_traced_data_range_not_positive_gives_nan(fn):
  x = np.random.default_rng(62).uniform(0, 1, (16, 16, 3))
  got = jax.jit(lambda d: fn(x, 0.5 * x, data_range=d))(0.0)
  assert np.isnan(np.asarray(got))
  assert np.isfinite(np.asarray(jax.jit(
      lambda d: fn(x, 0.5 * x, data_range=d))(1.0)))


@pytest.mark.parametrize('fn', [metrics.psnr, metrics.ssim])
@pytest.mark.parametrize('dtype, peak', [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_images_infer_the_dtype_range(fn, dtype, peak):
  rng = np.random.default_rng(63)
  x = rng.integers(0, peak, (16, 16, 3)).astype(dtype)
  y = np.clip(x.astype(np.int64) + rng.integers(-5, 6, x.shape), 0,
              peak).astype(dtype)
  got = float(fn(x, y))
  want = float(fn(x / peak, y / peak, data_range=1.0))
  np.testing.assert_allclose(got, want, rtol=1e-4)
  if fn is metrics.psnr:
    np.testing.assert_allclose(got, skm.peak_signal_noise_ratio(x, y),
                               rtol=1e-5)


def test_mixed_integer_and_float_need_a_data_range():
  x = np.zeros((16, 16, 3), np.uint8)
  with pytest.raises(TypeError, match='cannot infer data_range'):
    metrics.psnr(x, x.astype(np.float32))
  assert np.isfinite(metrics.psnr(x, x.astype(np.float32) + 1,
                                  data_range=255))


def test_nan_propagates_through_the_colour_metrics():
  rng = np.random.default_rng(64)
  lab1 = np.stack([rng.uniform(0, 100, (4, 4)), rng.uniform(-50, 50, (4, 4)),
                   rng.uniform(-50, 50, (4, 4))], -1)
  lab2 = lab1 + rng.normal(0, 2, lab1.shape)
  lab2[1, 2, 0] = np.nan
  de = np.asarray(metrics.delta_e2000(lab1, lab2))
  assert np.isnan(de[1, 2]) and np.isfinite(np.delete(de.ravel(), 6)).all()
  assert np.isnan(metrics.mean_delta_e2000(lab1, lab2))
  rgb1 = rng.uniform(0, 1, (4, 4, 3))
  rgb2 = rgb1.copy()
  rgb2[0, 0, 1] = np.nan
  for fn in (metrics.angular_error, metrics.psnr, metrics.mae):
    assert np.isnan(fn(rgb1, rgb2)), fn.__name__
  # Identical colours still score exactly 0.
  assert float(metrics.mean_delta_e2000(lab1, lab1)) == 0.0
  assert float(metrics.angular_error(rgb1, rgb1)) == 0.0


def test_angular_error_needs_colour_vectors():
  x = np.ones((4, 4, 1))
  with pytest.raises(ValueError, match='angular_error: x must have at least '
                     '2 channels'):
    metrics.angular_error(x, x)
