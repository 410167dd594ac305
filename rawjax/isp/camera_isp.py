"""A camera-like, content-adaptive ISP rendering of scene-linear RGB to sRGB.

Real camera ISPs and expert retouchers apply *content-dependent, local* edits:
exposure from the image's own statistics, a tone curve adapted to its
histogram, local tone mapping that compresses the large-scale luminance while
keeping (or boosting) detail, selective saturation and sharpening. A global
per-channel curve family such as PQDynamicISP (`rawjax.isp.pqdynamic`) cannot
represent these: the same input value maps to different outputs in different
image regions. This module provides such a chain as pure, jit- and
vmap-able JAX functions, to render the sRGB targets of simulated data.

The chain of `render` (each stage is public and documented below):

  1. white-balance shift (`CameraStyle.warmth`, `tint`): a diagonal gain,
  2. `auto_exposure`: per-image gain from the log-average luminance
     (Reinhard et al. 2002's key) or a luminance percentile,
  3. `local_tone_map`: base/detail split of log luminance with a guided
     filter (He et al. 2010), base compressed, detail boosted (Durand &
     Dorsey 2002),
  4. `histogram_tone_curve` + `apply_tone_curve`: a per-image global curve,
     a filmic base (Reinhard's extended operator with the image's white)
     blended with a clip-limited histogram equalisation (CLAHE's clipping,
     Zuiderveld 1994, applied globally), applied to luminance,
  5. `adjust_saturation_hue`: chroma gain, optionally chroma-dependent
     (vibrance) and luminance-dependent, and a hue rotation,
  6. sRGB encoding (IEC 61966-2-1), then `sharpen`: an unsharp mask on luma.

Conventions: images are (..., H, W, 3) float32 in sRGB primaries; `linear`
is scene-referred (white-balanced, colour-corrected, >= 0, may exceed 1),
`display` is display-referred linear in [0, 1], `srgb` is sRGB-encoded in
[0, 1]. Per-image statistics are taken over the (H, W) axes, so leading batch
axes are independent images. Divisions, logarithms and fractional powers are
guarded so gradients with respect to the image are finite everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax.isp import _math
from rawjax.isp import color as color_lib
from rawjax.isp import lut as lut_lib

# Relative luminance of linear sRGB (the Y row of the IEC sRGB -> XYZ matrix).
LUMINANCE_WEIGHTS = tuple(float(w) for w in color_lib.SRGB_TO_XYZ[1])
# Luma of encoded sRGB (ITU-R BT.709 weights on the encoded values).
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)

# Floor of a luminance before its logarithm: about 2^-20, far below the
# darkest value an 8-to-16-bit target can show, so it only guards log(0).
_LOG_FLOOR = 1e-6
_EPS = 1e-6


def _as_image(x: ArrayLike, *, name: str, fn: str) -> jnp.ndarray:
  """Checks a (..., H, W, 3) floating image and returns it as an array."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f'{fn}: {name} must be a floating-point image (float32 values, not '
        f'integer codes such as uint8), got dtype {x.dtype}.')
  if x.ndim < 3:
    raise ValueError(f'{fn}: {name} must have layout (..., H, W, 3) (at '
                     f'least 3 dims), got shape {tuple(x.shape)}.')
  if x.shape[-1] != 3:
    raise ValueError(f'{fn}: {name} must have 3 channels on the last axis, '
                     f'got shape {tuple(x.shape)}.')
  return x


def _as_plane(x: ArrayLike, *, name: str, fn: str) -> jnp.ndarray:
  """Checks a (..., H, W) floating plane and returns it as an array."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f'{fn}: {name} must be floating point, got dtype '
                    f'{x.dtype}.')
  if x.ndim < 2:
    raise ValueError(f'{fn}: {name} must have layout (..., H, W) (at least 2 '
                     f'dims), got shape {tuple(x.shape)}.')
  return x


def _weighted_sum(rgb: jnp.ndarray, weights) -> jnp.ndarray:
  return (weights[0] * rgb[..., 0] + weights[1] * rgb[..., 1] +
          weights[2] * rgb[..., 2])


def _luminance(rgb: jnp.ndarray) -> jnp.ndarray:
  return _weighted_sum(rgb, LUMINANCE_WEIGHTS)


def _scale_by_luminance(rgb: jnp.ndarray, old: jnp.ndarray,
                        new: jnp.ndarray) -> jnp.ndarray:
  """rgb * new / old per pixel: changes luminance, keeps chromaticity."""
  return rgb * _math.safe_divide(new, jnp.maximum(old, 0.0),
                                 eps=_EPS)[..., None]


# --- 1. exposure ------------------------------------------------------------

def exposure_gain(linear: ArrayLike, *, target: float = 0.18,
                  percentile: float | None = None,
                  min_gain: float = 1.0 / 64.0,
                  max_gain: float = 64.0) -> jax.Array:
  """Per-image auto-exposure gain from the image's luminance statistics.

  Models a camera's auto exposure (metering). With `percentile=None` the
  statistic is the log-average luminance exp(mean(log(delta + Y))), the
  scene "key" of Reinhard, Stark, Shirley & Ferwerda 2002 (eq. 1), and the
  gain maps it to `target` (their a = 0.18, middle grey). With a percentile
  p in (0, 100], the gain maps the p-th percentile of Y to `target`
  (highlight-weighted metering, e.g. p = 97, target = 0.8).

  Args:
    linear: (..., H, W, 3) float scene-linear RGB, >= 0.
    target: the luminance the statistic is mapped to, > 0.
    percentile: None for the log-average, else a percentile in (0, 100].
    min_gain: lower bound of the gain (an exposure range limit).
    max_gain: upper bound of the gain.

  Returns:
    (...,) float32 gains, one per image, in [min_gain, max_gain].
  """
  fn = 'exposure_gain'
  x = _as_image(linear, name='linear', fn=fn)
  if not target > 0:
    raise ValueError(f'{fn}: target must be > 0, got {target}.')
  if not 0 < min_gain <= max_gain:
    raise ValueError(f'{fn}: need 0 < min_gain <= max_gain, got {min_gain}, '
                     f'{max_gain}.')
  y = jnp.maximum(_luminance(x), 0.0)
  if percentile is None:
    statistic = jnp.exp(jnp.mean(jnp.log(y + _LOG_FLOOR), axis=(-2, -1)))
  else:
    if not 0 < percentile <= 100:
      raise ValueError(f'{fn}: percentile must be in (0, 100], got '
                       f'{percentile}.')
    statistic = jnp.percentile(y, percentile, axis=(-2, -1))
  gain = target / jnp.maximum(statistic, _LOG_FLOOR)
  return jnp.clip(gain, min_gain, max_gain)


def auto_exposure(linear: ArrayLike, *, target: float = 0.18,
                  percentile: float | None = None,
                  min_gain: float = 1.0 / 64.0,
                  max_gain: float = 64.0) -> jax.Array:
  """`linear` times its `exposure_gain` (same options): the exposed image.

  Args:
    linear: (..., H, W, 3) float scene-linear RGB, >= 0.
    target, percentile, min_gain, max_gain: as `exposure_gain`.

  Returns:
    (..., H, W, 3) float32 exposed scene-linear RGB (>= 0, may exceed 1).
  """
  x = _as_image(linear, name='linear', fn='auto_exposure')
  gain = exposure_gain(x, target=target, percentile=percentile,
                       min_gain=min_gain, max_gain=max_gain)
  return x * gain[..., None, None, None]


# --- 2. guided filter and local tone mapping --------------------------------

def _box_mean(x: jnp.ndarray, radius: int) -> jnp.ndarray:
  """Mean over a (2r+1)^2 window, symmetric (half-sample) edge reflection.

  Separable windowed sums by `lax.reduce_window` on the padded plane: exact
  sums (no cumulative-sum cancellation in float32) and a cheap transpose for
  the gradient.
  """
  size = 2 * radius + 1
  pad = [(0, 0)] * (x.ndim - 2) + [(radius, radius)] * 2
  padded = jnp.pad(x, pad, mode='symmetric')
  lead = (1,) * (x.ndim - 2)
  rows = jax.lax.reduce_window(padded, 0.0, jax.lax.add, lead + (size, 1),
                               (1,) * x.ndim, 'VALID')
  sums = jax.lax.reduce_window(rows, 0.0, jax.lax.add, lead + (1, size),
                               (1,) * x.ndim, 'VALID')
  return sums / float(size * size)


def guided_filter(guide: ArrayLike, src: ArrayLike, *, radius: int,
                  eps: float) -> jax.Array:
  """Grey-guide guided filter (He, Sun & Tang, ECCV 2010, Algorithm 1).

  The edge-aware smoother of the local tone map: within every (2r+1)^2
  window the output is a linear function a I + b of the guide I, fitted to
  `src` by ridge regression with penalty `eps`; the coefficients are then
  averaged over the windows covering each pixel. Where the guide's local
  variance is much larger than `eps` (edges) the output follows the guide;
  where it is much smaller (flat regions, fine texture) it is the local mean.
  Box means use symmetric edge reflection (scipy.ndimage's mode='reflect'),
  so it equals the numpy reference built on `scipy.ndimage.uniform_filter`.

  Args:
    guide: (..., H, W) float guide image I.
    src: (..., H, W) float image p to filter, or (..., H, W, C): each channel
      is filtered with the same grey guide.
    radius: window radius r >= 1 in pixels, r < min(H, W).
    eps: regularisation > 0, in squared units of the guide.

  Returns:
    float32 array shaped like `src`.
  """
  fn = 'guided_filter'
  guide = _as_plane(guide, name='guide', fn=fn)
  src = _as_plane(src, name='src', fn=fn)
  channels = src.ndim == guide.ndim + 1 and src.shape[:-1] == guide.shape
  if not channels and src.shape != guide.shape:
    raise ValueError(
        f'{fn}: src must have the shape of guide (..., H, W) or add one '
        f'channel axis, got guide {tuple(guide.shape)}, src '
        f'{tuple(src.shape)}.')
  height, width = guide.shape[-2:]
  if not (isinstance(radius, int) and 1 <= radius < min(height, width)):
    raise ValueError(f'{fn}: radius must be an int in [1, min(H, W)) = '
                     f'[1, {min(height, width)}), got {radius!r}.')
  if not eps > 0:
    raise ValueError(f'{fn}: eps must be > 0, got {eps}.')
  if channels:
    # Channels as a leading axis, so the box filter sees (..., C, H, W).
    out = _guided_filter(guide[..., None, :, :], jnp.moveaxis(src, -1, -3),
                         radius, eps)
    return jnp.moveaxis(out, -3, -1)
  return _guided_filter(guide, src, radius, eps)


def _guided_filter(guide: jnp.ndarray, src: jnp.ndarray, radius: int,
                   eps: float) -> jnp.ndarray:
  """`guided_filter` on checked planes; guide broadcasts against src."""
  # The filter commutes with adding constants to guide and src, so both are
  # centred on their image means first: the float32 window sums of squares
  # then lose less to cancellation in var = E[I^2] - E[I]^2.
  guide = guide.astype(jnp.float32)
  guide = guide - jnp.mean(guide, axis=(-2, -1), keepdims=True)
  src = src.astype(jnp.float32)
  src_mean = jnp.mean(src, axis=(-2, -1), keepdims=True)
  src = src - src_mean
  guide = jnp.broadcast_to(guide, jnp.broadcast_shapes(guide.shape, src.shape))
  mean_i = _box_mean(guide, radius)
  mean_p = _box_mean(src, radius)
  var_i = _box_mean(guide * guide, radius) - mean_i * mean_i
  cov_ip = _box_mean(guide * src, radius) - mean_i * mean_p
  a = cov_ip / (jnp.maximum(var_i, 0.0) + eps)
  b = mean_p - a * mean_i
  return _box_mean(a, radius) * guide + _box_mean(b, radius) + src_mean


def local_tone_map(linear: ArrayLike, *, radius: int = 16, eps: float = 0.1,
                   compression: float = 0.6,
                   detail: float = 1.3) -> jax.Array:
  """Base/detail local tone mapping of log luminance (Durand & Dorsey 2002).

  Models the local tone mapping ("HDR", "smart tone") of phone and camera
  ISPs. The log2 luminance l is split into a base layer B, the guided filter
  of l guided by itself (He et al. 2010 replaces Durand & Dorsey's bilateral
  filter; it is edge-aware without gradient reversal), and a detail layer
  D = l - B. The output log luminance is
      l' = m + compression (B - m) + detail D,
  with m the per-image mean of B: the large-scale contrast is compressed
  around the image's own log-average (shadows lifted, highlights lowered)
  while local contrast is kept or boosted. Colour follows by scaling RGB by
  2^(l' - l) (chromaticity preserved). Because B depends on the
  neighbourhood, one input value maps to different outputs in different
  regions: no global curve represents this.

  Args:
    linear: (..., H, W, 3) float scene-linear RGB, >= 0 (ideally exposed).
    radius: guided-filter radius in pixels (1 <= radius < min(H, W)).
    eps: guided-filter regularisation in squared stops (log2 units): larger
      values smooth across stronger edges.
    compression: base-layer contrast factor, > 0 (1 = unchanged, < 1
      compresses the dynamic range).
    detail: detail-layer gain, > 0 (1 = unchanged, > 1 boosts local contrast).

  Returns:
    (..., H, W, 3) float32 scene-linear RGB, >= 0.
  """
  fn = 'local_tone_map'
  x = _as_image(linear, name='linear', fn=fn)
  if not (compression > 0 and detail > 0):
    raise ValueError(f'{fn}: compression and detail must be > 0, got '
                     f'{compression}, {detail}.')
  x = jnp.maximum(x, 0.0)
  y = _luminance(x)
  log_y = jnp.log2(y + _LOG_FLOOR)
  base = guided_filter(log_y, log_y, radius=radius, eps=eps)
  anchor = jnp.mean(base, axis=(-2, -1), keepdims=True)
  mapped = anchor + compression * (base - anchor) + detail * (log_y - base)
  return _scale_by_luminance(x, y, jnp.exp2(mapped) - _LOG_FLOOR)


# --- 3. histogram-adaptive global tone curve --------------------------------

class ToneCurve(NamedTuple):
  """A per-image global tone curve (see `histogram_tone_curve`).

  nodes: (..., bins + 1) curve values at the uniform nodes j / bins of the
    sRGB-encoded filmic value, strictly increasing from 0 to 1.
  white: (...,) the scene luminance mapped to 1 (the filmic white point).
  """
  nodes: jax.Array
  white: jax.Array


def _filmic(y: jnp.ndarray, white: jnp.ndarray) -> jnp.ndarray:
  """Reinhard et al. 2002 eq. 4: y (1 + y / w^2) / (1 + y), [0, w] -> [0, 1]."""
  y = jnp.maximum(y, 0.0)
  return jnp.clip(y * (1.0 + y / (white * white)) / (1.0 + y), 0.0, 1.0)


def histogram_tone_curve(linear: ArrayLike, *, bins: int = 32,
                         clip_limit: float = 2.0, strength: float = 0.5,
                         white: float | None = None) -> ToneCurve:
  """A histogram-adaptive, strictly monotone global tone curve per image.

  Models the adaptive global tone curve of a camera or an auto-enhance
  tool: a filmic base curve, Reinhard et al. 2002's extended operator
  y (1 + y / w^2) / (1 + y) with the white point w (the image's maximum
  luminance by default, their L_white), followed in the sRGB-encoded domain
  p by a blend of the identity with histogram equalisation:
      H(p) = (1 - strength) p + strength G(p),
  where G is the cumulative histogram of the image's p values, clip-limited
  as in CLAHE (Zuiderveld 1994: no bin above clip_limit times the uniform
  level, the excess spread evenly) so G's slope, the contrast gain, is at
  most about clip_limit. Mixing in 5% of the uniform histogram keeps every
  bin's slope at least 0.05, so H is strictly increasing (and no tonal range
  is crushed to a step) even for strength = 1. The
  histogram uses linear (triangular) binning, so the nodes, and the curve
  evaluated by piecewise-linear interpolation (`apply_tone_curve`), are
  differentiable in the image values.

  Args:
    linear: (..., H, W, 3) float scene-linear RGB, >= 0.
    bins: number of histogram bins (the curve has bins + 1 nodes), >= 2.
    clip_limit: CLAHE clip limit relative to the uniform level, >= 1.
    strength: weight of the equalisation in [0, 1].
    white: scene luminance mapped to 1; None for each image's maximum.

  Returns:
    `ToneCurve` with nodes (..., bins + 1) and white (...,).
  """
  fn = 'histogram_tone_curve'
  x = _as_image(linear, name='linear', fn=fn)
  if not (isinstance(bins, int) and bins >= 2):
    raise ValueError(f'{fn}: bins must be an int >= 2, got {bins!r}.')
  if not clip_limit >= 1:
    raise ValueError(f'{fn}: clip_limit must be >= 1, got {clip_limit}.')
  if not 0 <= strength <= 1:
    raise ValueError(f'{fn}: strength must be in [0, 1], got {strength}.')
  y = jnp.maximum(_luminance(x), 0.0)
  if white is None:
    white_level = jnp.maximum(jnp.max(y, axis=(-2, -1)), _EPS)
  else:
    if not white > 0:
      raise ValueError(f'{fn}: white must be > 0, got {white}.')
    white_level = jnp.full(y.shape[:-2], white, jnp.float32)
  p = color_lib.srgb_encode(_filmic(y, white_level[..., None, None]))
  # Linear binning onto bin centres (k + 0.5) / bins: each value splits its
  # unit weight between the two nearest centres (a triangular kernel);
  # values beyond the outer centres belong entirely to the outer bins.
  position = jnp.clip(p[..., None] * bins - 0.5, 0.0, bins - 1.0)
  centres = jnp.arange(bins, dtype=jnp.float32)
  weight = jnp.maximum(1.0 - jnp.abs(position - centres), 0.0)
  hist = jnp.sum(weight, axis=(-3, -2))
  hist = hist / jnp.maximum(jnp.sum(hist, axis=-1, keepdims=True), _EPS)
  limit = clip_limit / bins
  excess = jnp.sum(jnp.maximum(hist - limit, 0.0), axis=-1, keepdims=True)
  hist = jnp.minimum(hist, limit) + excess / bins
  floor = 0.05
  hist = (1.0 - floor) * hist + floor / bins
  cdf = jnp.cumsum(hist, axis=-1)
  cdf = jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf], axis=-1)
  cdf = cdf / cdf[..., -1:]
  identity = jnp.linspace(0.0, 1.0, bins + 1, dtype=jnp.float32)
  nodes = (1.0 - strength) * identity + strength * cdf
  return ToneCurve(nodes=nodes, white=white_level)


def apply_tone_curve(curve: ToneCurve, luminance: ArrayLike) -> jax.Array:
  """Evaluates a `ToneCurve` on scene luminance: display-linear output.

  y -> srgb_decode(H(srgb_encode(filmic(y)))), piecewise linear in the
  encoded filmic value between the curve's nodes; strictly increasing on
  [0, white], and constant 1 above the white point.

  Args:
    curve: a `ToneCurve` with nodes (..., K + 1) and white (...,).
    luminance: (..., H, W) float scene luminance >= 0, leading dims those of
      the curve.

  Returns:
    (..., H, W) float32 display-referred linear luminance in [0, 1].
  """
  y = _as_plane(luminance, name='luminance', fn='apply_tone_curve')
  p = color_lib.srgb_encode(_filmic(y, curve.white[..., None, None]))
  q = lut_lib.lut_interpolate_curves(curve.nodes[..., None, None, :], p)
  return jnp.clip(color_lib.srgb_decode(q), 0.0, 1.0)


# --- 4. colour -------------------------------------------------------------

def _opponent_matrices() -> tuple[np.ndarray, np.ndarray]:
  """(Y, a, b) <- RGB and its inverse: luminance and two grey-free axes."""
  forward = np.array([
      LUMINANCE_WEIGHTS,
      [1 / math.sqrt(2), -1 / math.sqrt(2), 0.0],
      [1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)]])
  return forward.astype(np.float32), np.linalg.inv(forward).astype(np.float32)


_TO_OPPONENT, _FROM_OPPONENT = _opponent_matrices()


def adjust_saturation_hue(display: ArrayLike, *, saturation: float = 1.0,
                          vibrance: float = 0.0, luma_slope: float = 0.0,
                          hue_degrees: float = 0.0) -> jax.Array:
  """Chroma gain (optionally chroma- and luminance-dependent) and hue turn.

  Models the saturation, vibrance and hue controls of camera picture styles
  and raw converters (e.g. Lightroom's Vibrance, which boosts muted colours
  more than saturated ones). RGB is split into luminance Y and a chroma
  vector (a, b) = ((R - G) / sqrt 2, (R + G - 2B) / sqrt 6), orthogonal to
  the grey axis; the chroma vector is rotated by `hue_degrees` and scaled by
      g = saturation (1 + vibrance exp(-2 s)) (1 + luma_slope (Y^(1/2.2) - 0.5)),
  s = |(a, b)| / (Y + 0.05) the relative chroma, then RGB is rebuilt with
  the same Y (luminance and greys are preserved exactly). The chroma- and
  luminance-dependent factors make the edit non-linear (no 3x3 matrix).

  Args:
    display: (..., H, W, 3) float display-linear RGB, >= 0 (typically [0, 1]).
    saturation: global chroma gain >= 0 (1 = unchanged, 0 = grey).
    vibrance: extra relative gain of low-chroma colours, >= -1.
    luma_slope: chroma gain slope over perceptual luminance (< 0 desaturates
      highlights and saturates shadows).
    hue_degrees: rotation of the chroma vector (positive turns red towards
      yellow/green).

  Returns:
    (..., H, W, 3) float32 RGB, >= 0 (may exceed 1 slightly; clip to show).
  """
  fn = 'adjust_saturation_hue'
  x = _as_image(display, name='display', fn=fn)
  if not (saturation >= 0 and vibrance >= -1):
    raise ValueError(f'{fn}: need saturation >= 0 and vibrance >= -1, got '
                     f'{saturation}, {vibrance}.')
  opp = color_lib.apply_matrix(x, _TO_OPPONENT)
  y, a, b = opp[..., 0], opp[..., 1], opp[..., 2]
  chroma = _math.safe_sqrt(a * a + b * b)
  relative = chroma / (jnp.maximum(y, 0.0) + 0.05)
  perceptual = _math.safe_power(jnp.maximum(y, 0.0), 1.0 / 2.2)
  gain = saturation * (1.0 + vibrance * jnp.exp(-2.0 * relative))
  gain = gain * jnp.maximum(1.0 + luma_slope * (perceptual - 0.5), 0.0)
  angle = math.radians(hue_degrees)
  cos, sin = math.cos(angle), math.sin(angle)
  a_out = gain * (cos * a - sin * b)
  b_out = gain * (sin * a + cos * b)
  out = color_lib.apply_matrix(jnp.stack([y, a_out, b_out], axis=-1),
                               _FROM_OPPONENT)
  return jnp.maximum(out, 0.0)


def white_balance_shift(linear: ArrayLike, *, warmth: float = 0.0,
                        tint: float = 0.0) -> jax.Array:
  """A creative white-balance shift, as the Temperature/Tint sliders.

  Diagonal gains (e^warmth, e^-tint, e^-warmth) on R, G, B, normalised so a
  grey keeps its luminance: warmth > 0 warms (more red, less blue), tint > 0
  shifts towards magenta (less green).

  Args:
    linear: (..., H, W, 3) float linear RGB.
    warmth: log gain of red over blue (0.1 is a mild warm shift).
    tint: log attenuation of green.

  Returns:
    (..., H, W, 3) float32 linear RGB.
  """
  x = _as_image(linear, name='linear', fn='white_balance_shift')
  gains = np.exp([warmth, -tint, -warmth])
  gains = gains / np.dot(LUMINANCE_WEIGHTS, gains)
  return x * jnp.asarray(gains, jnp.float32)


# --- 5. sharpening ---------------------------------------------------------

def _gaussian_blur(plane: jnp.ndarray, sigma: float) -> jnp.ndarray:
  """Separable Gaussian blur of (..., H, W), symmetric edge reflection.

  Shifted multiply-adds rather than a depthwise convolution (much faster on
  XLA CPU for a handful of taps).
  """
  radius = max(1, int(math.ceil(3.0 * sigma)))
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  taps = (taps / taps.sum()).astype(np.float32)
  height, width = plane.shape[-2:]
  out = plane
  for axis, length in ((-2, height), (-1, width)):
    pad = [(0, 0)] * plane.ndim
    pad[axis] = (radius, radius)
    padded = jnp.pad(out, pad, mode='symmetric')
    out = sum(float(t) * jax.lax.slice_in_dim(padded, i, i + length,
                                              axis=padded.ndim + axis)
              for i, t in enumerate(taps))
  return out


def sharpen(srgb: ArrayLike, *, amount: float = 0.5,
            sigma: float = 1.0) -> jax.Array:
  """Unsharp mask on luma, as camera ISPs sharpen (in the encoded domain).

  luma' = luma + amount (luma - G_sigma * luma), the difference added to all
  three channels (chroma untouched, no colour fringes); then clipped to
  [0, 1]. The classic unsharp mask (e.g. Gonzalez & Woods, Digital Image
  Processing, sec. 3.6), on BT.709 luma as in YCbCr pipelines.

  Args:
    srgb: (..., H, W, 3) float sRGB-encoded image in [0, 1].
    amount: sharpening strength >= 0 (0 = unchanged).
    sigma: Gaussian blur standard deviation in pixels, > 0; the blur kernel
      radius ceil(3 sigma) must be < min(H, W).

  Returns:
    (..., H, W, 3) float32 sRGB-encoded image in [0, 1].
  """
  fn = 'sharpen'
  x = _as_image(srgb, name='srgb', fn=fn)
  if not (amount >= 0 and sigma > 0):
    raise ValueError(f'{fn}: need amount >= 0 and sigma > 0, got {amount}, '
                     f'{sigma}.')
  if math.ceil(3.0 * sigma) >= min(x.shape[-3:-1]):
    raise ValueError(f'{fn}: sigma {sigma} needs a kernel radius '
                     f'{math.ceil(3.0 * sigma)} < min(H, W), got shape '
                     f'{tuple(x.shape)}.')
  luma = _weighted_sum(x, LUMA_WEIGHTS)
  detail = luma - _gaussian_blur(luma, sigma)
  return jnp.clip(x + amount * detail[..., None], 0.0, 1.0)


# --- styles and the full chain ---------------------------------------------

@dataclasses.dataclass(frozen=True)
class CameraStyle:
  """Parameters of one `render` look (see each stage for the ranges).

  Attributes:
    warmth, tint: `white_balance_shift`.
    exposure_target, exposure_percentile: `exposure_gain`'s target and
      percentile (None: log-average metering).
    exposure_bias: extra exposure in stops after metering.
    ltm_radius_fraction: local-tone-map radius as a fraction of min(H, W)
      (so a style looks the same at any resolution); 0 disables the stage.
    ltm_eps, ltm_compression, ltm_detail: `local_tone_map`'s eps,
      compression and detail.
    curve_bins, curve_clip_limit, curve_strength: `histogram_tone_curve`.
    saturation, vibrance, luma_slope, hue_degrees: `adjust_saturation_hue`.
    sharpen_amount, sharpen_sigma: `sharpen` (amount 0 disables it).
  """
  warmth: float = 0.0
  tint: float = 0.0
  exposure_target: float = 0.18
  exposure_percentile: float | None = None
  exposure_bias: float = 0.0
  ltm_radius_fraction: float = 0.06
  ltm_eps: float = 0.1
  ltm_compression: float = 0.6
  ltm_detail: float = 1.3
  curve_bins: int = 32
  curve_clip_limit: float = 2.0
  curve_strength: float = 0.5
  saturation: float = 1.0
  vibrance: float = 0.0
  luma_slope: float = 0.0
  hue_degrees: float = 0.0
  sharpen_amount: float = 0.0
  sharpen_sigma: float = 1.0


STYLES: dict[str, CameraStyle] = {
    # A phone ISP: strong local tone mapping (lifted shadows, held
    # highlights, boosted local contrast), an equalising curve, punchy
    # saturation and visible sharpening.
    'phone': CameraStyle(
        exposure_bias=0.25, ltm_radius_fraction=0.06, ltm_eps=0.05,
        ltm_compression=0.5, ltm_detail=1.5, curve_clip_limit=2.5,
        curve_strength=0.6, saturation=1.25, vibrance=0.35,
        luma_slope=-0.2, sharpen_amount=0.8, sharpen_sigma=1.0),
    # An expert retouch (in the spirit of MIT-Adobe FiveK's expert C): a
    # warmer, brighter image, shadows opened and highlights recovered
    # locally with a "clarity" boost of mid-scale contrast, a soft global
    # curve, selective (vibrance-driven) saturation with calmer highlights,
    # light sharpening.
    'expert': CameraStyle(
        warmth=0.08, exposure_bias=0.45,
        ltm_radius_fraction=0.08, ltm_eps=0.1, ltm_compression=0.5,
        ltm_detail=1.5, curve_clip_limit=1.5, curve_strength=0.3,
        saturation=1.0, vibrance=0.6, luma_slope=-0.35, hue_degrees=3.0,
        sharpen_amount=0.3, sharpen_sigma=1.2),
    # A camera's JPEG engine: highlight-weighted metering, moderate local
    # tone mapping and saturation, a slightly cool rendering.
    'camera': CameraStyle(
        warmth=-0.04, exposure_target=0.85, exposure_percentile=97.0,
        ltm_radius_fraction=0.05, ltm_eps=0.1, ltm_compression=0.6,
        ltm_detail=1.35, curve_clip_limit=2.0, curve_strength=0.45,
        saturation=1.15, vibrance=0.15, sharpen_amount=0.5,
        sharpen_sigma=0.8),
}


def _resolve_style(style: str | CameraStyle) -> CameraStyle:
  if isinstance(style, CameraStyle):
    return style
  if isinstance(style, str) and style in STYLES:
    return STYLES[style]
  raise ValueError(f'render: unknown style {style!r}; pass a CameraStyle or '
                   f'one of {sorted(STYLES)}.')


def render(linear: ArrayLike, *, style: str | CameraStyle = 'phone'
           ) -> jax.Array:
  """The full camera-like chain: scene-linear RGB -> sRGB for one style.

  white_balance_shift -> auto_exposure (+ exposure_bias stops) ->
  local_tone_map -> histogram_tone_curve / apply_tone_curve on luminance
  (RGB scaled by the luminance ratio, clipped to [0, 1]) ->
  adjust_saturation_hue -> clip -> srgb_encode -> sharpen. Every statistic
  is per image, so the result depends on the image content; it is
  deterministic, jit-able (the style is static) and differentiable in
  `linear`.

  Args:
    linear: (..., H, W, 3) float scene-linear RGB in sRGB primaries,
      white-balanced and colour-corrected, >= 0, may exceed 1; H, W >= 8.
    style: a name in `STYLES` ('phone', 'expert', 'camera') or a
      `CameraStyle`.

  Returns:
    (..., H, W, 3) float32 sRGB-encoded image in [0, 1].
  """
  fn = 'render'
  s = _resolve_style(style)
  x = _as_image(linear, name='linear', fn=fn)
  if min(x.shape[-3:-1]) < 8:
    raise ValueError(f'{fn}: linear must be at least 8x8 pixels, got shape '
                     f'{tuple(x.shape)}.')
  x = jnp.maximum(x.astype(jnp.float32), 0.0)
  x = white_balance_shift(x, warmth=s.warmth, tint=s.tint)
  x = auto_exposure(x, target=s.exposure_target * 2.0 ** s.exposure_bias,
                    percentile=s.exposure_percentile)
  size = min(x.shape[-3:-1])
  radius = min(size - 1, max(1, round(s.ltm_radius_fraction * size)))
  if s.ltm_radius_fraction > 0:
    x = local_tone_map(x, radius=radius, eps=s.ltm_eps,
                       compression=s.ltm_compression, detail=s.ltm_detail)
  curve = histogram_tone_curve(x, bins=s.curve_bins,
                               clip_limit=s.curve_clip_limit,
                               strength=s.curve_strength)
  y = _luminance(x)
  x = jnp.clip(_scale_by_luminance(x, y, apply_tone_curve(curve, y)), 0.0, 1.0)
  x = adjust_saturation_hue(x, saturation=s.saturation, vibrance=s.vibrance,
                            luma_slope=s.luma_slope,
                            hue_degrees=s.hue_degrees)
  out = color_lib.srgb_encode(jnp.clip(x, 0.0, 1.0))
  if s.sharpen_amount > 0:
    sigma = min(s.sharpen_sigma, (size - 1) / 3.0 - 1e-3)
    out = sharpen(out, amount=s.sharpen_amount, sigma=sigma)
  return jnp.clip(out, 0.0, 1.0)
