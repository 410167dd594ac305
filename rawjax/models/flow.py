"""Dense optical flow: a weight-free pyramidal estimator and PWC-Net.

    flow = estimate_flow(source, target)          # (N, H, W, 2) pixels
    aligned, mask = backward_warp(target, flow)   # aligned ~= source

`method='pyramid'` (default, no weights) is coarse-to-fine dense Lucas-Kanade
with warping (Lucas & Kanade 1981; Bouguet's pyramidal scheme; the iterated
warp of Brox et al. 2004): at each pyramid level, starting from the coarsest,
the target is warped by the current flow and the flow increment solves, per
pixel, the Gaussian-windowed normal equations of the linearised brightness
constancy

    [sum w Ix^2   sum w IxIy] [du]     [sum w Ix It]
    [sum w IxIy   sum w Iy^2] [dv] = - [sum w Iy It] ,   It = warp(T) - S,

with the gradients of the mean of source and warped target, summed over the
colour channels, and a small Tikhonov term (`regularization`) so flat areas
keep the flow propagated from the coarser level (the aperture problem). Each
image is first standardised per channel (zero mean, unit variance) so a
global gain/offset difference between two cameras does not bias the flow.
Everything is jnp: the iterations run in `lax.fori_loop`, the levels are a
short static Python loop, jit/vmap/grad work.

`method='pwcnet'` runs `rawjax.models.pwcnet.estimate` (the LiteISPNet
reference's PWC-Net preprocessing: multiple-of-64 resize, x20, rescale) and
needs the converted parameters: `params=convert_pwcnet(state_dict)`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp.warp import backward_warp, resize_flow

__all__ = ['estimate_flow', 'pyramid_flow', 'gaussian_blur', 'end_point_error']

Method = Literal['pyramid', 'pwcnet']


def _gaussian_taps(sigma: float) -> np.ndarray:
  radius = max(1, int(math.ceil(3.0 * sigma)))
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * (t / sigma) ** 2)
  return (taps / taps.sum()).astype(np.float32)


def gaussian_blur(x: jax.Array, *, sigma: float) -> jax.Array:
  """Separable Gaussian blur of (N, H, W, C), edge-replicated borders.

  Shifted multiply-adds rather than a depthwise convolution (much faster on
  XLA CPU, see the style notes).
  """
  taps = jnp.asarray(_gaussian_taps(sigma))
  radius = taps.shape[0] // 2
  n, h, w, c = x.shape
  # Channels become batch entries of a single-channel convolution: one op
  # per pass compiles fast, and avoids depthwise (feature-grouped) kernels.
  planes = jnp.moveaxis(x, -1, 1).reshape(n * c, h, w, 1)
  planes = jnp.pad(planes, ((0, 0), (radius, radius), (radius, radius), (0, 0)),
                   mode='edge')
  for kernel in (taps.reshape(-1, 1, 1, 1), taps.reshape(1, -1, 1, 1)):
    planes = jax.lax.conv_general_dilated(
        planes, kernel.astype(planes.dtype), (1, 1), 'VALID',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jnp.moveaxis(planes.reshape(n, c, h, w), 1, -1)


def _gradients(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Central differences (one-sided at the border) along W and H."""
  px = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), mode='edge')
  py = jnp.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)), mode='edge')
  return 0.5 * (px[:, :, 2:] - px[:, :, :-2]), 0.5 * (py[:, 2:] - py[:, :-2])


def _standardize(x: jax.Array) -> jax.Array:
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.var(x, axis=(1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + 1e-6)


def _downsample(x: jax.Array) -> jax.Array:
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, max(1, h // 2), max(1, w // 2), c),
                          method='linear', antialias=True)


def _default_levels(h: int, w: int) -> int:
  # Coarsest level at least 16 px, so the window still sees structure.
  return max(1, min(6, int(math.floor(math.log2(min(h, w) / 16.0))) + 1))


def _refine_level(source, target, flow, *, iterations, window_sigma,
                  regularization, max_step, smooth_sigma):
  """Warping iterations of windowed Lucas-Kanade at one pyramid level."""

  def body(_, flow):
    warped, _ = backward_warp(target, flow, padding='border', apply_mask=False)
    ix, iy = _gradients(0.5 * (warped + source))
    it = warped - source
    terms = jnp.stack([jnp.sum(ix * ix, -1), jnp.sum(ix * iy, -1),
                       jnp.sum(iy * iy, -1), jnp.sum(ix * it, -1),
                       jnp.sum(iy * it, -1)], axis=-1)
    terms = gaussian_blur(terms, sigma=window_sigma)
    axx = terms[..., 0] + regularization
    axy = terms[..., 1]
    ayy = terms[..., 2] + regularization
    bx, by = terms[..., 3], terms[..., 4]
    det = axx * ayy - axy * axy  # > 0: positive semi-definite + reg * I
    du = -(ayy * bx - axy * by) / det
    dv = -(axx * by - axy * bx) / det
    step = jnp.stack([du, dv], axis=-1)
    flow = flow + jnp.clip(step, -max_step, max_step)
    if smooth_sigma > 0:
      # Normalised convolution weighted by the structure tensor's smaller
      # eigenvalue: well-textured pixels fill the flat ones (aperture).
      a, b, c = terms[..., 0], terms[..., 1], terms[..., 2]
      confidence = 0.5 * (a + c) - jnp.sqrt(0.25 * jnp.square(a - c) +
                                            jnp.square(b) + 1e-12)
      confidence = jnp.maximum(confidence, 0.0)[..., None] + 1e-6
      weighted = gaussian_blur(jnp.concatenate(
          [flow * confidence, confidence], axis=-1), sigma=smooth_sigma)
      flow = weighted[..., :2] / weighted[..., 2:]
    return flow

  return jax.lax.fori_loop(0, iterations, body, flow)


def pyramid_flow(source: ArrayLike, target: ArrayLike, *,
                 levels: int | None = None, iterations: int = 6,
                 window_sigma: float = 2.0, regularization: float = 1e-3,
                 presmooth_sigma: float = 1.0, max_step: float = 1.0,
                 smooth_sigma: float = 2.0,
                 standardize: bool = True,
                 initial_flow: ArrayLike | None = None) -> jax.Array:
  """Coarse-to-fine windowed Lucas-Kanade flow, source -> target.

  Args:
    source, target: (N, H, W, C) float images (any range; standardised per
      channel when `standardize`).
    levels: pyramid levels (each halves the size); None = as many as keep the
      coarsest side >= 16 px (at most 6). A displacement of d px needs about
      log2(d) + 1 levels.
    iterations: warping iterations per level.
    window_sigma: Gaussian integration window (pixels of each level).
    regularization: Tikhonov weight added to the structure tensor (in units
      of the squared gradient of standardised images); larger = smoother in
      flat areas.
    presmooth_sigma: Gaussian blur of each level before differentiation.
    max_step: clamp of the per-iteration update (pixels of the level).
    standardize: per-image, per-channel zero mean / unit variance first.
    initial_flow: optional (N, H, W, 2) starting flow at full resolution.

  Returns:
    (N, H, W, 2) float32 flow in pixels with backward_warp(target, flow) ~=
    source.
  """
  fn = 'pyramid_flow'
  source = _checks.as_float(source, name='source', fn=fn)
  target = _checks.as_float(target, name='target', fn=fn)
  _checks.check_same_shape(source, target, names='source and target', fn=fn)
  if source.ndim != 4:
    raise ValueError(f'{fn}: expected (N, H, W, C) images, got shape '
                     f'{tuple(source.shape)}.')
  n, h, w, _ = source.shape
  levels = _default_levels(h, w) if levels is None else int(levels)
  if levels < 1 or min(h, w) >> (levels - 1) < 2:
    raise ValueError(f'{fn}: {levels} levels do not fit an image of {h}x{w} '
                     '(each level halves the size).')
  if iterations < 1:
    raise ValueError(f'{fn}: iterations must be >= 1, got {iterations}.')
  if standardize:
    source, target = _standardize(source), _standardize(target)
  pyramid = [(source, target)]
  for _ in range(levels - 1):
    s, t = pyramid[-1]
    pyramid.append((_downsample(s), _downsample(t)))
  if initial_flow is None:
    cs = pyramid[-1][0]
    flow = jnp.zeros(cs.shape[:3] + (2,), source.dtype)
  else:
    initial_flow = _checks.as_float(initial_flow, name='initial_flow', fn=fn)
    if initial_flow.shape != (n, h, w, 2):
      raise ValueError(f'{fn}: initial_flow must be {(n, h, w, 2)}, got '
                       f'{tuple(initial_flow.shape)}.')
    flow = resize_flow(initial_flow, pyramid[-1][0].shape[1:3])
  for level in reversed(range(levels)):
    s, t = pyramid[level]
    flow = resize_flow(flow, s.shape[1:3])
    if presmooth_sigma > 0:
      s = gaussian_blur(s, sigma=presmooth_sigma)
      t = gaussian_blur(t, sigma=presmooth_sigma)
    flow = _refine_level(s, t, flow, iterations=iterations,
                         window_sigma=window_sigma,
                         regularization=regularization, max_step=max_step,
                         smooth_sigma=smooth_sigma)
  return flow


def estimate_flow(source: ArrayLike, target: ArrayLike, *,
                  method: Method = 'pyramid', params: Any = None,
                  **options: Any) -> jax.Array:
  """Optical flow such that backward_warp(target, flow) ~= source.

  Args:
    source: (N, H, W, C) images (the reference grid; LiteISPNet's "first",
      the GCM output).
    target: (N, H, W, C) images to be warped onto source (the DSLR image).
    method: 'pyramid' (weight-free, `pyramid_flow`; options: levels,
      iterations, window_sigma, regularization, presmooth_sigma, max_step,
      standardize, initial_flow) or 'pwcnet' (`rawjax.models.pwcnet.estimate`
      with `params`; 3-channel RGB inputs in [0, 1]).
    params: PWC-Net parameters ({'params': ...} or the bare tree), e.g.
      `rawjax.convert.convert_pwcnet(torch.load('pwc-net.pth'))`.

  Returns:
    (N, H, W, 2) float32 flow in pixels, channel 0 = x, channel 1 = y.
  """
  if method == 'pyramid':
    if params is not None:
      raise ValueError("estimate_flow: method='pyramid' is weight-free; "
                       "params are only used by method='pwcnet'.")
    return pyramid_flow(source, target, **options)
  if method == 'pwcnet':
    if params is None:
      raise ValueError(
          "estimate_flow: method='pwcnet' needs params=<PWC-Net parameters>, "
          'e.g. params=rawjax.convert.convert_pwcnet(state_dict) from '
          "sniklaus' network-default.pytorch (LiteISPNet's ckpt/pwc-net.pth), "
          "or PWCNet().init(key, first, second); use method='pyramid' for the "
          'weight-free estimator.')
    from rawjax.models import pwcnet  # pylint: disable=g-import-not-at-top
    return pwcnet.estimate(params, source, target, **options)
  raise ValueError(f"estimate_flow: method must be 'pyramid' or 'pwcnet', got "
                   f'{method!r}.')


def end_point_error(flow: ArrayLike, reference: ArrayLike,
                    mask: ArrayLike | None = None) -> jax.Array:
  """Mean end-point error |flow - reference| over the (masked) pixels.

  Args:
    flow, reference: (..., H, W, 2).
    mask: optional (..., H, W) or (..., H, W, 1) weights.
  """
  flow = _checks.as_float(flow, name='flow', fn='end_point_error')
  reference = _checks.as_float(reference, name='reference',
                               fn='end_point_error')
  err = jnp.sqrt(jnp.sum(jnp.square(flow - reference), axis=-1))
  if mask is None:
    return jnp.mean(err)
  mask = jnp.asarray(mask, err.dtype)
  if mask.ndim == err.ndim + 1:
    mask = mask[..., 0]
  return jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1.0)
