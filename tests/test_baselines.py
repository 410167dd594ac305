"""Calibration, anchor-pair and FDA baselines."""

import functools

import jax

import numpy as np
import pytest

from rawjax import baselines, isp
from rawjax.data import synthetic

RNG = np.random.default_rng(1)


def _fda_reference(source, target, beta):
  """Yang & Soatto's numpy FDA (low_freq_mutate_np), channels first."""
  fft_s = np.fft.fft2(source, axes=(-2, -1))
  fft_t = np.fft.fft2(target, axes=(-2, -1))
  amp_s = np.fft.fftshift(np.abs(fft_s), axes=(-2, -1))
  amp_t = np.fft.fftshift(np.abs(fft_t), axes=(-2, -1))
  _, h, w = amp_s.shape
  b = int(np.floor(min(h, w) * beta))
  ch, cw = h // 2, w // 2
  amp_s[:, ch - b:ch + b + 1, cw - b:cw + b + 1] = amp_t[
      :, ch - b:ch + b + 1, cw - b:cw + b + 1]
  amp_s = np.fft.ifftshift(amp_s, axes=(-2, -1))
  return np.real(np.fft.ifft2(amp_s * np.exp(1j * np.angle(fft_s)),
                              axes=(-2, -1)))


@pytest.mark.parametrize('shape,beta', [((32, 40, 4), 0.05), ((33, 31, 3),
                                                              0.1)])
def test_fda_matches_the_authors_numpy_code(variant, shape, beta):
  source = RNG.uniform(0, 1, shape).astype(np.float32)
  target = RNG.uniform(0, 1, shape).astype(np.float32)
  ours = variant(functools.partial(baselines.fda, beta=beta))(source, target)
  expected = _fda_reference(source.transpose(2, 0, 1).astype(np.float64),
                            target.transpose(2, 0, 1).astype(np.float64),
                            beta).transpose(1, 2, 0)
  np.testing.assert_allclose(ours, expected, atol=2e-5)
  # beta = 0 swaps only the mean (DC): the source shifted to target's mean.
  dc = baselines.fda(source, target, beta=0.0)
  np.testing.assert_allclose(dc - source, np.broadcast_to(
      target.mean((0, 1)) - source.mean((0, 1)), shape), atol=2e-5)


def test_chart_patch_means_match_slicing():
  packed = RNG.uniform(0, 1, (2, 16, 20, 4)).astype(np.float32)
  boxes = np.array([[[0, 0, 4, 6], [10, 8, 30, 40]],
                    [[2, 2, 8, 8], [20, 20, 32, 26]]])
  means = np.asarray(baselines.chart_patch_means(packed, boxes))
  for i in range(2):
    for p, (top, left, bottom, right) in enumerate(boxes[i] // 2):
      np.testing.assert_allclose(
          means[i, p], packed[i, top:bottom, left:right].mean((0, 1)),
          rtol=1e-5)


def test_anchor_pair_recovers_a_known_polynomial():
  # A chart of 24 flat patches of distinct random colours: the 16-term fit
  # on their means is exact up to float32 rounding (a well-conditioned 24x16
  # system), so the mapped image equals the true polynomial everywhere.
  rng = np.random.default_rng(58)
  matrix = np.eye(16, 4) * 0.8
  matrix[4:8] = 0.1 * np.eye(4)  # squares
  matrix[15] = 0.02  # constant term
  colours = rng.uniform(0.05, 0.9, (24, 4)).astype(np.float32)
  source = np.repeat(np.repeat(colours.reshape(4, 6, 4), 8, axis=0), 8,
                     axis=1)  # (32, 48, 4), patch i at rows/cols of cell i
  target = isp.apply_polynomial(source, matrix, kernel='raw2raw16')
  boxes = 2 * np.array([[y, x, y + 8, x + 8] for y in range(0, 32, 8)
                        for x in range(0, 48, 8)])  # in mosaic pixels
  source_patches = baselines.chart_patch_means(source, boxes)
  np.testing.assert_allclose(source_patches, colours, atol=1e-6)
  target_patches = isp.apply_polynomial(source_patches, matrix,
                                        kernel='raw2raw16')
  mapped, fitted = baselines.anchor_pair(source, source_patches,
                                         target_patches, ridge=0.0)
  assert fitted.shape == (16, 4)
  np.testing.assert_allclose(mapped, np.clip(target, 0, 1), atol=1e-4)


def test_three_channel_mappings_write_both_greens(variant):
  source = RNG.uniform(0, 1, (2, 8, 8, 4)).astype(np.float32)
  target = source[..., ::-1] * 0.7
  fit = variant(functools.partial(baselines.fit_image_mapping,
                                  kernel='linear', channels=3))
  matrix = fit(source, target)
  assert matrix.shape == (2, 3, 3)
  out = np.asarray(baselines.apply_mapping(source, matrix, kernel='linear'))
  np.testing.assert_array_equal(out[..., 1], out[..., 2])
  rgb = isp.packed_to_rgb(source)
  np.testing.assert_allclose(
      out[..., (0, 1, 3)],
      np.clip(np.einsum('bhwc,bco->bhwo', rgb, matrix), 0, 1), atol=1e-5)


def test_global_fit_pools_images():
  source = RNG.uniform(0, 1, (3, 6, 6, 4)).astype(np.float32)
  target = np.sqrt(source)
  pooled = baselines.fit_global_mapping(source, target, kernel='raw2raw16')
  direct = isp.fit_polynomial(source.reshape(-1, 4), target.reshape(-1, 4),
                              kernel='raw2raw16')
  np.testing.assert_allclose(pooled, direct, rtol=1e-6)


def test_evaluate_perfect_and_imperfect_predictions():
  target = RNG.uniform(0.1, 0.9, (2, 16, 16, 4)).astype(np.float32)
  gains = np.array([[2.0, 1.0, 1.5]] * 2, np.float32)
  matrix = np.broadcast_to(np.eye(3, dtype=np.float32), (2, 3, 3))
  same = baselines.evaluate(target, target, gains, matrix)
  assert np.all(np.isinf(same['psnr']))
  np.testing.assert_allclose(same['ssim'], 1.0, atol=1e-6)
  np.testing.assert_allclose(same['mae'], 0.0)
  np.testing.assert_allclose(same['delta_e2000'], 0.0, atol=1e-4)
  worse = baselines.evaluate(target * 0.9, target, gains, matrix)
  np.testing.assert_allclose(worse['mae'], 0.1 * target.mean((1, 2, 3)),
                             rtol=1e-5)
  assert np.all(worse['delta_e2000'] > 0.5)


def test_baseline_table_on_a_small_dataset(tmp_path):
  config = synthetic.PRESETS['raw2raw'].replace(height=64, width=64,
                                                natural_fraction=0.0)
  synthetic.write_dataset(tmp_path, num=16, config=config, progress=False,
                          anchor_fraction=0.25, test_fraction=0.25)
  rows = baselines.baseline_table(tmp_path)
  methods = {r['method'] for r in rows}
  assert {'identity (no mapping)', 'global 3x3 (anchor pixels)',
          'per-image 16-term kernelP (oracle pixels)'} <= methods
  assert all(np.isfinite(r['psnr']) and r['n'] > 0 for r in rows)
  by = {(r['method'], r['direction'], r['illumination']): r for r in rows}
  for (method, direction, group), row in by.items():
    if method == 'per-image 16-term kernelP (oracle pixels)':
      # The per-image fit sees the target: it must beat doing nothing.
      assert row['psnr'] > by[('identity (no mapping)', direction,
                               group)]['psnr']
  assert '| method |' in baselines.format_table(rows)


def test_missing_dataset_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='dataset.json'):
    baselines.baseline_table(tmp_path)


def test_patch_oracle_fits_each_square_on_its_own():
  rng = np.random.default_rng(0)
  source = rng.uniform(0.05, 0.6, (20, 24, 4)).astype(np.float32)
  # A different 3x3 per 8x8 square (greens kept equal), so only a per-square
  # fit recovers the target exactly; the right/bottom squares are partial.
  target = np.empty_like(source)
  for top in range(0, 20, 8):
    for left in range(0, 24, 8):
      m = 0.8 * np.eye(3) + rng.uniform(0.0, 0.15, (3, 3))
      block = source[top:top + 8, left:left + 8]
      rgb = np.stack([block[..., 0], block[..., 1:3].mean(-1), block[..., 3]],
                     -1) @ m
      target[top:top + 8, left:left + 8] = rgb[..., (0, 1, 1, 2)]
  assert 0 < target.min() and target.max() < 1   # no clipping to fit
  for fn in (baselines.patch_oracle,
             jax.jit(functools.partial(baselines.patch_oracle, patch=8))):
    out = np.asarray(fn(source, target, patch=8) if fn is
                     baselines.patch_oracle else fn(source, target))
    assert out.shape == source.shape
    # Exact up to float32 least squares.
    np.testing.assert_allclose(out, target, atol=2e-4)
  # One square covering everything is the per-image fit.
  whole = baselines.apply_mapping(source, baselines.fit_image_mapping(
      source, target, kernel='linear', channels=3), kernel='linear')
  np.testing.assert_allclose(baselines.patch_oracle(source, target, patch=32),
                             whole, atol=1e-5)
  with pytest.raises(ValueError, match='one \\(h, w, 4\\) image'):
    baselines.patch_oracle(source[None], target[None])
