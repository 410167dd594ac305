"""The alignment pipeline on synthetic pairs made from a real image."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import io as rawio
from rawjax import isp
from rawjax.isp.warp import sample_bilinear

cv2 = pytest.importorskip('cv2')
from rawjax import align  # pylint: disable=g-import-not-at-top,wrong-import-position

N, BORDER, P = 512, 64, 128
ROTATED = {(1, 1), (0, 2)}  # patch grid cells with a local rotation
SHIFTED = {(2, 0)}          # a local translation NCC must find


def _taper(t, lo, hi, ramp=24.0):
  return np.clip((t - lo + ramp) / ramp, 0, 1) * np.clip((hi + ramp - t) / ramp,
                                                         0, 1)


def _local_flow(x, y):
  """f(x, y) in phone pixels: background + per-patch bumps."""
  fx = 0.25 * np.sin(2 * np.pi * x / 400.0) + 0.15 * np.cos(2 * np.pi * y / 300.0)
  fy = 0.2 * np.cos(2 * np.pi * (x + y) / 500.0)
  for (i, j) in ROTATED | SHIFTED:
    top, left = 8 + i * P, 8 + j * P
    w = _taper(y, top, top + P) * _taper(x, left, left + P)
    if (i, j) in ROTATED:
      cy, cx = top + P / 2, left + P / 2
      t = 0.05
      fx = fx + w * ((np.cos(t) - 1) * (x - cx) - np.sin(t) * (y - cy))
      fy = fy + w * (np.sin(t) * (x - cx) + (np.cos(t) - 1) * (y - cy))
    else:
      fx, fy = fx + 3.0 * w, fy - 2.0 * w
  return fx, fy


H_TRUE = np.array([[1.02 * np.cos(0.02), -np.sin(0.02), 6.0],
                   [np.sin(0.02), 1.02 * np.cos(0.02), -4.0],
                   [1e-5, -1e-5, 1.0]])  # camera -> phone


def _apply(m, x, y):
  d = m[2, 0] * x + m[2, 1] * y + m[2, 2]
  return ((m[0, 0] * x + m[0, 1] * y + m[0, 2]) / d,
          (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / d)


def _psi(x, y):
  fx, fy = _local_flow(x, y)
  return x + fx, y + fy


@pytest.fixture(scope='module')
def pair(shared_data):
  raw = rawio.read_raw(shared_data / 'raw' / 'gopro_hero6_black_crop1536x1152.dng')
  mosaic = np.asarray(raw.mosaic)[300:300 + N + 2 * BORDER,
                                  560:560 + N + 2 * BORDER]
  big = np.asarray(jax.jit(isp.process)(mosaic, raw.metadata()))
  phone = big[BORDER:BORDER + N, BORDER:BORDER + N]
  ys, xs = np.meshgrid(np.arange(N, dtype=np.float64),
                       np.arange(N, dtype=np.float64), indexing='ij')
  px, py = _psi(*_apply(H_TRUE, xs, ys))
  camera = np.asarray(sample_bilinear(jnp.asarray(big),
                                      jnp.asarray(px + BORDER, jnp.float32),
                                      jnp.asarray(py + BORDER, jnp.float32)))
  camera = np.clip(0.9 * camera + 0.03, 0, 1)  # another camera's tone
  return phone, camera


@pytest.fixture(scope='module')
def result(pair):
  # The mural's flat colour patches give most 128 px patches <= 40 SIFT
  # keypoints, which the official keypoint filter would drop; the test
  # switches that filter off to check the others.
  return align.align_pair(*pair, config=align.AlignConfig(min_keypoints=0))


def _true_misalignment(result, rec):
  """Mean true displacement between the NCC-matched patches (what the flow
  filter should measure): camera content at phone pixel y is the phone
  point psi(h(K^-1 y))."""
  ys, xs = np.meshgrid(np.arange(P) + rec.row, np.arange(P) + rec.col,
                       indexing='ij')
  cx, cy = _apply(np.linalg.inv(result.homography), xs, ys)
  sx, sy = _psi(*_apply(H_TRUE, cx, cy))
  return float(np.mean(np.hypot(sx - xs - rec.shift[1], sy - ys - rec.shift[0])))


def _residual(result, index):
  rec = result.records[index]
  z = np.arange(0, P, 4, dtype=np.float64)
  zy, zx = np.meshgrid(z, z, indexing='ij')
  local = (np.eye(3) if rec.local_homography is None
           else rec.local_homography)
  # gt_final(z) = template(L^-1 z); template(q) = G_w(p0 + q);
  # G_w(y) = G(K^-1 y) shows phone point psi(h(K^-1 y)).
  qx, qy = _apply(np.linalg.inv(local), zx, zy)
  cx, cy = _apply(np.linalg.inv(result.homography), qx + rec.col,
                  qy + rec.row)
  sx, sy = _psi(*_apply(H_TRUE, cx, cy))
  return float(np.mean(np.hypot(sx - (rec.col + rec.shift[1] + zx),
                                sy - (rec.row + rec.shift[0] + zy))))


def test_alignment_recovers_and_filters(result):
  est = result.homography / result.homography[2, 2]
  ys, xs = np.meshgrid(np.arange(0, N, 32.0), np.arange(0, N, 32.0),
                       indexing='ij')
  gx, gy = _apply(est, xs, ys)
  tx, ty = _apply(H_TRUE, xs, ys)
  global_error = float(np.mean(np.hypot(gx - tx, gy - ty)))
  rows = []
  for i, rec in enumerate(result.records):
    if rec.status == 'outside':
      continue
    rows.append((rec.row, rec.col, rec.shift, _true_misalignment(result, rec),
                 rec.flow_score, rec.status))
  residuals = [_residual(result, i) for i in result.kept]
  print(f'\nglobal homography error {global_error:.3f} px')
  for r in rows:
    print('patch (%d,%d) shift %s true %.2f px flow score %.2f px -> %s' % r)
  print(f'kept {len(result.kept)}, mean residual {np.mean(residuals):.3f} px '
        f'(max {np.max(residuals):.3f})')
  assert global_error < 3.0
  # the injected local translation was found by NCC
  shifted = [r for r in rows if (r[0] - 8) // P == 2 and (r[1] - 8) // P == 0]
  assert shifted and shifted[0][2] != (0, 0) and shifted[0][3] < 1.0
  unshifted = dataclasses.replace(
      result.records[[i for i, r in enumerate(result.records)
                      if (r.row, r.col) == shifted[0][:2]][0]], shift=(0, 0))
  assert _true_misalignment(result, unshifted) > shifted[0][3] + 1.0
  bad = [r for r in rows if r[3] > 1.5]
  good = [r for r in rows if r[3] < 0.9]
  assert len(bad) >= 2 and len(good) >= 3
  assert all(r[5] == 'flow' for r in bad)
  assert all(r[5] != 'flow' for r in good)
  assert residuals and np.mean(residuals) <= 0.5


def test_outputs_written(result, tmp_path):
  hist = align.write_result(result, tmp_path)
  assert hist.is_file() and hist.stat().st_size > 1000
  assert len(list(tmp_path.glob('*_gt.png'))) == len(result.kept)
  assert (tmp_path / 'records.json').is_file()


def test_ncc_search_finds_a_shift():
  rng = np.random.default_rng(0)
  window = rng.random((1, 40, 40, 3)).astype(np.float32)
  template = window[:, 8 + 3:8 + 3 + 24, 8 - 5:8 - 5 + 24] * 0.5 + 0.2
  scores = np.asarray(align.ncc_search(template, window))
  assert scores.shape == (1, 17, 17)
  assert np.unravel_index(scores[0].argmax(), (17, 17)) == (8 + 3, 8 - 5)
  np.testing.assert_allclose(scores[0].max(), 1.0, atol=1e-4)

