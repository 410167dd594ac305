"""Backward warping by a dense flow, the validity mask, and flow utilities.

Conventions (those of LiteISPNet's reference, cszhilu1998/RAW-to-sRGB
`models/base_model.py` `backwarp` / `get_backwarp`, which are sniklaus'
pytorch-pwc `backwarp`):

  * pixel (row y, column x) has its centre at the integer coordinate (x, y);
  * a flow is (..., H, W, 2) in pixels, channel 0 = u (x, column)
    displacement, channel 1 = v (y, row) displacement;
  * the backward warp samples the image at (x + u, y + v) with bilinear
    interpolation; with `padding='zeros'` a tap outside the image contributes
    0 (PyTorch `grid_sample(mode='bilinear', padding_mode='zeros',
    align_corners=False)`);
  * the validity mask warps an image of ones the same way and keeps a pixel
    where the result exceeds 1 - eps (reference: `m[m > 0.999] = 1;
    m[m < 1] = 0`, eps = 1e-3): a pixel is invalid as soon as one bilinear tap
    with non-zero weight falls outside the image;
  * the reference multiplies the warped image by the mask before using it
    (`apply_mask=True`).

Flow scaling quirks of the reference (`reference_scaling=True` reproduces the
first; the others live in `rawjax.models.pwcnet.estimate`):

  * `backwarp` builds its base grid from pixel centres (linspace(-1 + 1/W,
    1 - 1/W, W)) but normalises the flow by (W - 1) / 2, while
    `grid_sample(align_corners=False)` maps normalised units to pixels with
    W / 2; the effective displacement is therefore u * W / (W - 1) and
    v * H / (H - 1) (0.2 % too large at 448 px). The default here samples at
    exactly (x + u, y + v);
  * PWC-Net predicts flow / 20 at a quarter of the (multiple-of-64 resized)
    input; `estimate` resizes it to (H, W), multiplies by 20 and rescales u by
    W / W' and v by H / H' (`resize_flow`);
  * inside PWC-Net, level l warps the second image's features with the
    upsampled flow times 20 / 2^l (5.0, 2.5, 1.25, 0.625 at levels 2..5).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import _checks

__all__ = [
    'backward_warp', 'flow_magnitude', 'homography_flow', 'resize_flow',
    'sample_bilinear', 'warp_homography',
]

Padding = Literal['zeros', 'border']


def sample_bilinear(image: jax.Array, x: jax.Array, y: jax.Array, *,
                    padding: Padding = 'zeros') -> jax.Array:
  """Bilinear samples of one image at real pixel coordinates.

  Args:
    image: (H, W, C).
    x, y: (...) column and row coordinates, pixel centres at integers.
    padding: 'zeros' (taps outside the image are 0) or 'border' (the
      coordinate is clamped to [0, W - 1] x [0, H - 1] first, PyTorch's
      padding_mode='border').

  Returns:
    (..., C) samples.
  """
  h, w = image.shape[0], image.shape[1]
  if padding == 'border':
    x = jnp.clip(x, 0.0, w - 1.0)
    y = jnp.clip(y, 0.0, h - 1.0)
  elif padding != 'zeros':
    raise ValueError(f"sample_bilinear: padding must be 'zeros' or 'border', "
                     f'got {padding!r}.')
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  wx1 = (x - x0)[..., None]
  wy1 = (y - y0)[..., None]
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  flat = image.reshape(h * w, image.shape[-1])

  def tap(yi, xi):
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    index = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
    return jnp.take(flat, index, axis=0) * inside[..., None].astype(image.dtype)

  top = tap(y0, x0) * (1.0 - wx1) + tap(y0, x0 + 1) * wx1
  bottom = tap(y0 + 1, x0) * (1.0 - wx1) + tap(y0 + 1, x0 + 1) * wx1
  return top * (1.0 - wy1) + bottom * wy1


def _check_image_flow(image, flow, fn):
  image = _checks.as_float(image, name='image', fn=fn)
  flow = _checks.as_float(flow, name='flow', fn=fn)
  _checks.check_min_rank(image, 3, name='image', fn=fn, layout='(..., H, W, C)')
  _checks.check_min_rank(flow, 3, name='flow', fn=fn, layout='(..., H, W, 2)')
  _checks.check_channels(flow, 2, name='flow', fn=fn)
  if image.shape[:-1] != flow.shape[:-1]:
    raise ValueError(
        f'{fn}: image (..., H, W, C) and flow (..., H, W, 2) must agree on '
        f'the leading and spatial dims, got {tuple(image.shape)} and '
        f'{tuple(flow.shape)}.')
  return image, flow


def backward_warp(image: ArrayLike, flow: ArrayLike, *,
                  padding: Padding = 'zeros', eps: float = 1e-3,
                  apply_mask: bool = True, reference_scaling: bool = False
                  ) -> tuple[jax.Array, jax.Array]:
  """Samples `image` at (x + u, y + v): out(x, y) = image(x + u, y + v).

  LiteISPNet's `backwarp` (paper Eq. 4, y^w = W(y, Psi)) with its validity
  mask (Eq. 6): m = 1 where the bilinear warp of a ones image exceeds
  1 - eps, else 0.

  Args:
    image: (..., H, W, C) float.
    flow: (..., H, W, 2) float pixels, channel 0 = x (column) displacement,
      channel 1 = y (row) displacement.
    padding: 'zeros' (the reference's padding; the reference's warp is
      'zeros' with `reference_scaling=True`) or 'border' (clamp the sampling
      position; used by the flow estimator so borders add no false edges).
      The mask always flags the pixels whose taps leave the image.
    eps: mask threshold, the reference's 0.001.
    apply_mask: multiply the warped image by the mask, as the reference does.
    reference_scaling: sample at (x + u W/(W-1), y + v H/(H-1)) as the
      reference's normalisation quirk does (bit-parity with PyTorch; what
      `rawjax.methods.liteisp.align_target` uses). False (the default of
      this general-purpose warp) samples at exactly (x + u, y + v).

  Returns:
    (warped (..., H, W, C), mask (..., H, W, 1) in {0, 1}). Differentiable in
    image and flow (the mask is a constant for the gradient).
  """
  fn = 'backward_warp'
  image, flow = _check_image_flow(image, flow, fn)
  if padding not in ('zeros', 'border'):
    raise ValueError(f"{fn}: padding must be 'zeros' or 'border', got "
                     f'{padding!r}.')
  if not 0.0 < eps < 1.0:
    raise ValueError(f'{fn}: eps must lie in (0, 1), got {eps}.')
  h, w = image.shape[-3], image.shape[-2]
  lead = image.shape[:-3]
  images = image.reshape((-1, h, w, image.shape[-1]))
  flows = flow.reshape((-1, h, w, 2)).astype(images.dtype)
  if reference_scaling:
    scale = jnp.asarray([w / max(w - 1.0, 1.0), h / max(h - 1.0, 1.0)],
                        flows.dtype)
    flows = flows * scale
  xs = jnp.arange(w, dtype=flows.dtype)[None, :] + flows[..., 0]
  ys = jnp.arange(h, dtype=flows.dtype)[:, None] + flows[..., 1]
  ones = jnp.ones((h, w, 1), images.dtype)

  def one(img, x, y):
    warped = sample_bilinear(img, x, y, padding=padding)
    coverage = sample_bilinear(ones, jax.lax.stop_gradient(x),
                               jax.lax.stop_gradient(y), padding='zeros')
    return warped, coverage

  warped, coverage = jax.vmap(one)(images, xs, ys)
  mask = (coverage > 1.0 - eps).astype(images.dtype)
  if apply_mask:
    warped = warped * mask
  return (warped.reshape(lead + warped.shape[1:]),
          mask.reshape(lead + mask.shape[1:]))


def resize_flow(flow: ArrayLike, shape: tuple[int, int]) -> jax.Array:
  """Bilinear resize of a flow to (H', W') with its values rescaled.

  The reference's `F.interpolate(bilinear, align_corners=False)` (half-pixel
  centres, no antialias) followed by u *= W'/W, v *= H'/H.

  Args:
    flow: (..., H, W, 2) pixels.
    shape: (H', W').

  Returns:
    (..., H', W', 2) pixels of the new grid.
  """
  fn = 'resize_flow'
  flow = _checks.as_float(flow, name='flow', fn=fn)
  _checks.check_min_rank(flow, 3, name='flow', fn=fn, layout='(..., H, W, 2)')
  _checks.check_channels(flow, 2, name='flow', fn=fn)
  h, w = flow.shape[-3], flow.shape[-2]
  new_h, new_w = int(shape[0]), int(shape[1])
  if (new_h, new_w) != (h, w):
    flow = jax.image.resize(flow, flow.shape[:-3] + (new_h, new_w, 2),
                            method='linear', antialias=False)
  return flow * jnp.asarray([new_w / w, new_h / h], flow.dtype)


def flow_magnitude(flow: ArrayLike) -> jax.Array:
  """(..., H, W, 2) -> (..., H, W) end-point length sqrt(u^2 + v^2).

  The gradient is finite at zero flow (the square root is guarded).
  """
  flow = _checks.as_float(flow, name='flow', fn='flow_magnitude')
  _checks.check_channels(flow, 2, name='flow', fn='flow_magnitude')
  squared = jnp.sum(jnp.square(flow), axis=-1)
  safe = jnp.where(squared > 0, squared, 1.0)
  return jnp.where(squared > 0, jnp.sqrt(safe), 0.0)


def homography_flow(matrix: ArrayLike, shape: tuple[int, int]) -> jax.Array:
  """Flow of a homography: backward_warp(image, flow) samples image at M(x).

  Args:
    matrix: (..., 3, 3) maps OUTPUT pixel coordinates (x, y, 1) to the input
      image's coordinates (for OpenCV's H mapping src -> dst, pass inv(H) to
      warp src onto dst's grid, as `cv2.warpPerspective(src, H)` does).
    shape: output (H, W).

  Returns:
    (..., H, W, 2) float32 pixels.
  """
  matrix = _checks.as_float(matrix, name='matrix', fn='homography_flow')
  if matrix.shape[-2:] != (3, 3):
    raise ValueError(f'homography_flow: matrix must be (..., 3, 3), got '
                     f'{tuple(matrix.shape)}.')
  h, w = int(shape[0]), int(shape[1])
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=matrix.dtype),
                        jnp.arange(w, dtype=matrix.dtype), indexing='ij')
  points = jnp.stack([xs, ys, jnp.ones_like(xs)], axis=-1)  # (H, W, 3)
  mapped = jnp.einsum('...ij,hwj->...hwi', matrix, points,
                      precision=jax.lax.Precision.HIGHEST)
  z = mapped[..., 2:3]
  # A point mapped to infinity (z -> 0) is pushed far outside the image so it
  # is masked instead of producing a NaN.
  z = jnp.where(jnp.abs(z) < 1e-12, 1e-12, z)
  return mapped[..., :2] / z - points[..., :2]


def warp_homography(image: ArrayLike, matrix: ArrayLike, *,
                    shape: tuple[int, int] | None = None,
                    padding: Padding = 'zeros', eps: float = 1e-3
                    ) -> tuple[jax.Array, jax.Array]:
  """out(x) = image(M x) by bilinear sampling, with the validity mask.

  Args:
    image: (H, W, C) or (N, H, W, C).
    matrix: (3, 3) or (N, 3, 3), output -> input pixel coordinates (see
      `homography_flow`).
    shape: output (H', W'); defaults to the input's. A different size is
      handled by sampling the input on its own grid.
    padding, eps: as `backward_warp`.

  Returns:
    (warped (..., H', W', C) multiplied by the mask, mask (..., H', W', 1)).
  """
  fn = 'warp_homography'
  image = _checks.as_float(image, name='image', fn=fn)
  _checks.check_min_rank(image, 3, name='image', fn=fn, layout='(..., H, W, C)')
  h, w = image.shape[-3], image.shape[-2]
  out_h, out_w = (h, w) if shape is None else (int(shape[0]), int(shape[1]))
  flow = homography_flow(matrix, (out_h, out_w))
  ys, xs = jnp.meshgrid(jnp.arange(out_h, dtype=flow.dtype),
                        jnp.arange(out_w, dtype=flow.dtype), indexing='ij')
  x = xs + flow[..., 0]
  y = ys + flow[..., 1]
  ones = jnp.ones((h, w, 1), image.dtype)

  def one(img, xi, yi):
    return (sample_bilinear(img, xi, yi, padding=padding),
            sample_bilinear(ones, xi, yi, padding='zeros'))

  if image.ndim == 3:
    warped, coverage = one(image, x, y)
  else:
    lead = image.shape[:-3]
    images = image.reshape((-1, h, w, image.shape[-1]))
    x = jnp.broadcast_to(x, lead + (out_h, out_w)).reshape((-1, out_h, out_w))
    y = jnp.broadcast_to(y, lead + (out_h, out_w)).reshape((-1, out_h, out_w))
    warped, coverage = jax.vmap(one)(images, x, y)
    warped = warped.reshape(lead + warped.shape[1:])
    coverage = coverage.reshape(lead + coverage.shape[1:])
  mask = (coverage > 1.0 - eps).astype(image.dtype)
  return warped * mask, mask
