"""The alignment pipeline on synthetic pairs made from a real image."""

import dataclasses
import json
import pathlib

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
def capture(shared_data):
  """(phone, camera, phone mosaic, its metadata)."""
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
  return phone, camera, mosaic[BORDER:BORDER + N, BORDER:BORDER + N], (
      raw.metadata())


@pytest.fixture(scope='module')
def pair(capture):
  return capture[:2]


@pytest.fixture(scope='module')
def result(pair):
  # The mural's flat colour patches give most 128 px patches <= 40 SIFT
  # keypoints, which the official keypoint filter would drop; the test
  # switches that filter off to check the others.
  return align.align_pair(*pair, config=align.AlignConfig(min_keypoints=0),
                          cell=2)


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
  # (cell snapping may move a patch's crops up/left by 1 px)
  shifted = [r for r in rows
             if round((r[0] - 8) / P) == 2 and round((r[1] - 8) / P) == 0]
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


def test_pairs_and_manifest_written(capture, result, tmp_path):
  from rawjax.data.datasets import PairFolder  # pylint: disable=g-import-not-at-top
  from rawjax.isp import cfa  # pylint: disable=g-import-not-at-top
  _, _, mosaic, metadata = capture
  manifest = align.write_pairs(result, tmp_path, mosaic=mosaic,
                               metadata=metadata, split='train', name='mural')
  data = json.loads(manifest.read_text())
  assert data['threshold'] == 1.2 and data['config']['flow_method'] == 'pyramid'
  assert (tmp_path / 'train' / 'mural.misalignment.png').stat().st_size > 1000
  folder = PairFolder(tmp_path, split='train')
  kept = [e for e in data['patches'] if e['kept']]
  assert sorted(folder.keys) == sorted(e['file'] for e in kept)
  assert len(folder.rejected) == len(result.evaluated) - len(result.kept) > 0
  white = float(metadata.white_level)
  black = np.asarray(metadata.black_level, np.float64)
  for e in kept:
    sample = folder.load(e['file'])
    y, x = e['phone_origin']
    # Hand computation: the RGGB mosaic crop, packed, levels removed.
    crop = mosaic[y:y + P, x:x + P].astype(np.float64)
    want = np.stack([crop[0::2, 0::2], crop[0::2, 1::2], crop[1::2, 0::2],
                     crop[1::2, 1::2]], -1)
    want = np.clip((want - black) / (white - black), 0, 1)
    np.testing.assert_allclose(sample['raw'], want, atol=1e-6)
    assert sample['srgb'].shape == (P, P, 3)
    assert folder.misalignment(e['file']) == e['flow_score'] <= 1.2
  assert metadata.pattern == 'RGGB' and folder.metadata(
      kept[0]['file']).pattern == cfa.validate_pattern('RGGB')
  with pytest.raises(ValueError, match='cell=2'):
    first = result.records[result.evaluated[0]]
    odd = align.AlignResult(result.homography, [dataclasses.replace(
        first, shift=(first.shift[0] + 1, first.shift[1]))],
                            result.input_patches[:1], result.target_patches[:1],
                            [0], result.config)
    align.write_pairs(odd, tmp_path, mosaic=mosaic, metadata=metadata,
                      split='x')


def test_config_errors_are_clear(pair, tmp_path):
  with pytest.raises(ValueError, match='needs pwcnet_weights'):
    align.align_pair(*pair, config=align.AlignConfig(flow_method='pwcnet'))
  with pytest.raises(ValueError, match="flow_method='bogus'"):
    align.align_pair(*pair, config=align.AlignConfig(flow_method='bogus'))
  with pytest.raises(FileNotFoundError, match='pwcnet_weights: no file'):
    align.load_pwcnet_params(tmp_path / 'missing.npz')
  with pytest.raises(SystemExit):
    align.main(['--input', 'phone.png', '--target', 'c.png', '--out',
                str(tmp_path)])


def test_pwcnet_filter_with_converted_random_weights(pair, tmp_path):
  """flow_method='pwcnet' with converted torch weights: its scores are the
  torch reference's, its decisions follow them; the stages before the flow
  filter are the weight-free run's.

  Random weights estimate no real flow, so their decisions are not compared
  with the weight-free filter's (that needs the published checkpoint; see
  docs/flow_and_alignment.md). The top-left 256 x 256 of the pair, 64 x 64
  patches (PWC-Net's smallest input, no resize; 9 patches, 2 batches).
  """
  torch = pytest.importorskip('torch')
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  from models.test_pwcnet_torch import _nchw, _random_network  # pylint: disable=g-import-not-at-top
  from torch_reference import pwcnet_torch  # pylint: disable=g-import-not-at-top
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  p = 64
  pair = tuple(x[:4 * p, :4 * p] for x in pair)
  base = align.AlignConfig(patch_size=p, min_keypoints=0, realign=False)
  weight_free = align.align_pair(*pair, config=base, cell=2)
  k = weight_free.evaluated
  phone = weight_free.input_patches
  camera = np.stack([align._crop(  # pylint: disable=protected-access
      _warped(pair, weight_free), weight_free.records[i].row,
      weight_free.records[i].col, p) for i in k])
  net = _random_network(_nchw(phone), _nchw(camera))
  with torch.no_grad():
    flows = pwcnet_torch.estimate(net, _nchw(phone), _nchw(camera)).numpy()
  want = np.mean(np.hypot(flows[:, 0], flows[:, 1]), axis=(1, 2))
  threshold = float(np.median(want))  # both decisions occur
  torch.save(net.state_dict(), tmp_path / 'pwc.pth')
  converted = convert.save_params(tmp_path / 'pwc.npz', convert.convert_pwcnet(
      {k2: v.numpy() for k2, v in net.state_dict().items()}))
  for weights in (tmp_path / 'pwc.pth', converted):
    np.testing.assert_array_equal(
        convert.load_params(converted)['netRefiner']['netMain_0']['kernel'],
        align.load_pwcnet_params(weights)['netRefiner']['netMain_0']['kernel'])
  config = dataclasses.replace(base, flow_method='pwcnet', max_flow=threshold,
                               pwcnet_weights=str(converted))
  learned = align.align_pair(*pair, config=config, cell=2)
  assert learned.evaluated == weight_free.evaluated
  for a, b in zip(learned.records, weight_free.records):
    assert (a.row, a.col, a.shift) == (b.row, b.col, b.shift)
  got = np.array([learned.records[i].flow_score for i in k])
  print('\nPWC-Net (random) scores', np.round(got, 3), 'weight-free',
        np.round([weight_free.records[i].flow_score for i in k], 3))
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
  for i in learned.evaluated:
    rec = learned.records[i]
    assert (rec.status == 'flow') == (rec.flow_score > threshold)
  assert {learned.records[i].status for i in k} == {'flow', 'kept'}


def _warped(pair, result):
  """The camera image on the phone grid by the result's homography."""
  from rawjax.isp.warp import warp_homography  # pylint: disable=g-import-not-at-top
  phone, camera = pair
  return np.asarray(warp_homography(
      camera, np.linalg.inv(result.homography).astype(np.float32),
      shape=phone.shape[:2])[0])


def test_ncc_search_finds_a_shift():
  rng = np.random.default_rng(0)
  window = rng.random((1, 40, 40, 3)).astype(np.float32)
  template = window[:, 8 + 3:8 + 3 + 24, 8 - 5:8 - 5 + 24] * 0.5 + 0.2
  scores = np.asarray(align.ncc_search(template, window))
  assert scores.shape == (1, 17, 17)
  assert np.unravel_index(scores[0].argmax(), (17, 17)) == (8 + 3, 8 - 5)
  np.testing.assert_allclose(scores[0].max(), 1.0, atol=1e-4)

