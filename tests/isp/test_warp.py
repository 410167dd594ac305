"""backward_warp against scipy.ndimage.map_coordinates, borders and mask."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from rawjax.isp import warp


def _reference(image, flow, eps=1e-3, scale=(1.0, 1.0)):
  n, h, w, c = image.shape
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
  out, masks = [], []
  for i in range(n):
    coords = [ys + flow[i, ..., 1] * scale[1], xs + flow[i, ..., 0] * scale[0]]
    sampled = np.stack([ndimage.map_coordinates(
        image[i, ..., k].astype(np.float64), coords, order=1,
        mode='grid-constant', cval=0.0) for k in range(c)], -1)
    ones = ndimage.map_coordinates(np.ones((h, w)), coords, order=1,
                                   mode='grid-constant', cval=0.0)
    mask = (ones > 1 - eps).astype(np.float64)[..., None]
    out.append(sampled * mask)
    masks.append(mask)
  return np.stack(out), np.stack(masks)


def _data(seed=0, shape=(2, 9, 11, 3), amplitude=3.0):
  rng = np.random.default_rng(seed)
  image = rng.random(shape).astype(np.float32)
  flow = (rng.normal(size=shape[:3] + (2,)) * amplitude).astype(np.float32)
  # exact integer and border-touching displacements (edge cases of the mask)
  flow[0, 0, :, 0] = -np.arange(shape[2])  # samples column 0 exactly
  flow[0, 1, :, 0] = shape[2] - 1 - np.arange(shape[2])  # last column exactly
  flow[0, 2, :, 0] = -np.arange(shape[2]) - 0.3  # 0.3 px outside on the left
  flow[0, :3, :, 1] = 0.0
  return image, flow


def test_backward_warp_matches_scipy(variant):
  image, flow = _data()
  warped, mask = variant(warp.backward_warp)(image, flow)
  ref, ref_mask = _reference(image, flow)
  np.testing.assert_array_equal(np.asarray(mask), ref_mask)
  np.testing.assert_allclose(np.asarray(warped), ref, atol=2e-6)
  assert 0.2 < ref_mask.mean() < 0.9  # both valid and invalid pixels tested
  # exactly on the first/last column: valid; 0.3 px outside: invalid
  assert np.all(ref_mask[0, 0]) and np.all(ref_mask[0, 1])
  assert not np.any(ref_mask[0, 2])


def test_reference_scaling_and_unmasked(variant):
  image, flow = _data(1)
  h, w = image.shape[1:3]
  warped, _ = variant(functools.partial(
      warp.backward_warp, reference_scaling=True, apply_mask=False))(image,
                                                                    flow)
  ref, _ = _reference(image, flow, scale=(w / (w - 1), h / (h - 1)))
  # apply_mask=False keeps the partially covered border pixels
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
  full = np.stack([np.stack([ndimage.map_coordinates(
      image[i, ..., k].astype(np.float64),
      [ys + flow[i, ..., 1] * h / (h - 1), xs + flow[i, ..., 0] * w / (w - 1)],
      order=1, mode='grid-constant') for k in range(3)], -1)
                   for i in range(2)])
  np.testing.assert_allclose(np.asarray(warped), full, atol=2e-6)
  assert np.abs(full - ref).max() > 0.01  # the mask did matter


def test_gradients_finite_and_adjoint():
  image, flow = _data(2, shape=(1, 6, 7, 2), amplitude=1.0)

  def loss(f):
    return jnp.sum(warp.backward_warp(image, f, padding='border')[0] ** 2)

  g = np.asarray(jax.grad(loss)(jnp.asarray(flow)))
  assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
  # d/dimage is the adjoint of the (linear in image) warp: <W x, y> = <x, W^T y>
  y = np.random.default_rng(3).normal(size=image.shape).astype(np.float32)
  fwd = lambda x: warp.backward_warp(x, flow)[0]
  _, vjp = jax.vjp(fwd, jnp.asarray(image))
  np.testing.assert_allclose(float(jnp.sum(fwd(image) * y)),
                             float(jnp.sum(vjp(jnp.asarray(y))[0] * image)),
                             rtol=1e-4)


def test_homography_warp_and_resize_flow():
  rng = np.random.default_rng(4)
  image = rng.random((10, 12, 1)).astype(np.float32)
  matrix = np.array([[1.0, 0.02, 0.7], [-0.01, 0.98, -0.4], [0.0, 0.0, 1.0]],
                    np.float32)
  warped, mask = jax.jit(warp.warp_homography)(image, matrix)
  ys, xs = np.meshgrid(np.arange(10), np.arange(12), indexing='ij')
  sx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
  sy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
  ref = ndimage.map_coordinates(image[..., 0].astype(np.float64), [sy, sx],
                                order=1, mode='grid-constant')
  ones = ndimage.map_coordinates(np.ones((10, 12)), [sy, sx], order=1,
                                 mode='grid-constant')
  np.testing.assert_allclose(np.asarray(warped)[..., 0], ref * (ones > 0.999),
                             atol=2e-6)
  flow = np.ones((1, 4, 6, 2), np.float32) * np.array([1.0, -2.0], np.float32)
  np.testing.assert_allclose(np.asarray(warp.resize_flow(flow, (8, 18))),
                             np.broadcast_to([3.0, -4.0], (1, 8, 18, 2)),
                             atol=1e-6)


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='flow'):
    warp.backward_warp(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match='agree'):
    warp.backward_warp(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 5, 2)))
  with pytest.raises(ValueError, match='padding'):
    warp.backward_warp(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 2)),
                       padding='reflect')
