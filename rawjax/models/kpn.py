"""Kernel-prediction ISP: content-aware conditional convolution from packed raw.

Xing, Li, Zhang, Chen, "A Well-aligned Dataset for Learning Image Signal
Processing on Smartphones from a High-end Camera" (SIGGRAPH 2022 poster)
render raw to sRGB with a fully convolutional network that predicts one
convolution kernel per pixel and convolves the input with it (eq. 1-2):

    Y_i = sum_{j in delta_i} W^i[i - j] X_j + b,    W^i = f(X, delta_i)

after the kernel-predicting networks of Bako et al. 2017 (KPCN). The poster
gives nothing more (no layers, kernel size, normalisation or loss; the
model was never released, reference spec section 3, gap 10), so the model
below is our reading; docs/kpn.md lists every choice.

Design: per-output-phase kernels on the packed grid, then pixel shuffle.

  * X is the packed raw (h, w, 4), canonical (R, Gr, Gb, B) in [0, 1].
    The output sRGB (2h, 2w, 3) has four sub-pixel phases (dy, dx) per
    Bayer cell; for each phase p the network predicts, at every cell i,
      - a size x size spatial kernel k^i_p (normalised, e.g. softmax), and
      - a 3 x 4 colour matrix M^i_p and a bias b^i_p,
    so eq. 1's (3 x 4)-matrix-valued kernel is factorised as
    W^i_p[o] = k^i_p[o] M^i_p (a spatial filter shared by the four raw
    channels, as KPCN shares one kernel over R, G, B, followed by a
    per-pixel colour transform):
      y^i_p = M^i_p sum_o k^i_p[o] X_{i+o} + b^i_p      (linear sRGB)
  * the four phases are interleaved by depth_to_space (pixel shuffle) into
    (2h, 2w, 3), and the sRGB OETF gives display values (`output='srgb'`;
    'linear' skips it).

Why this form: every per-pixel operation runs on the packed grid (a quarter
of the output pixels); each phase has its own kernel, so the network learns
the demosaicking (sub-pixel interpolation) together with denoising instead
of inheriting a fixed demosaic's zippers and noise; normalised spatial kernels
keep the filter from amplifying noise (the KPCN argument), while the
per-pixel colour matrix supplies white balance, colour correction and local
tone (a per-pixel gain), which a normalised kernel alone cannot.

The kernel predictor is the U-Net of `rawjax.models.unet` (4 packed channels
in, 4 (size^2 + 15) channels out), with an optional global-context branch: the
bottleneck's spatial mean, through a 1x1 convolution and ReLU, is added back
to every bottleneck position, so image-wide statistics (the illuminant,
exposure) reach every kernel. Initialisation is PyTorch's default
(`rawjax.models.layers`); the colour matrices are a learned global 3 x 4
matrix (initialised to R, mean of the greens, B) plus the predicted
per-pixel correction.
"""

from __future__ import annotations

from typing import Literal

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import color
from rawjax.models import layers
from rawjax.models.unet import UNet

__all__ = [
    'KPN', 'NORMALIZATIONS', 'PADDINGS', 'PHASES', 'apply_kernels',
    'normalize_kernels',
]

Normalization = Literal['softmax', 'sum_to_one', 'none']
Padding = Literal['reflect', 'edge', 'zero']
NORMALIZATIONS = ('softmax', 'sum_to_one', 'none')
PADDINGS = ('reflect', 'edge', 'zero')
_PAD_MODES = {'reflect': 'reflect', 'edge': 'edge', 'zero': 'constant'}
# Output sub-pixel phases (dy, dx) of a Bayer cell, in depth_to_space order.
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
_COLOUR = 3  # output channels
_RAW = 4     # packed raw channels


def normalize_kernels(kernels: ArrayLike, *,
                      normalization: Normalization = 'softmax') -> jax.Array:
  """Normalises kernel weights over their last axis (the taps).

  Args:
    kernels: (..., T) raw network outputs, T taps.
    normalization: 'softmax' (KPCN: positive weights summing to 1, the
      output stays in the convex hull of the neighbourhood), 'sum_to_one'
      (w + (1 - sum w) / T: the orthogonal projection onto sum w = 1, so
      weights may be negative, i.e. sharpening, while a flat input stays
      flat; defined and differentiable everywhere, unlike w / sum w), or
      'none' (as predicted).

  Returns:
    (..., T) float weights.
  """
  kernels = _checks.as_float(kernels, name='kernels', fn='normalize_kernels')
  if normalization == 'softmax':
    return jax.nn.softmax(kernels, axis=-1)
  if normalization == 'sum_to_one':
    taps = kernels.shape[-1]
    return kernels + (1.0 - jnp.sum(kernels, axis=-1, keepdims=True)) / taps
  if normalization == 'none':
    return kernels
  raise ValueError(f'normalize_kernels: normalization must be one of '
                   f'{NORMALIZATIONS}, got {normalization!r}.')


def _check_kernel_args(x, kernels, size, padding, method, fn):
  if isinstance(size, bool) or not isinstance(size, int) or size < 1 or (
      size % 2 == 0):
    raise ValueError(f'{fn}: size must be a positive odd int (the kernel is '
                     f'centred on its pixel), got {size!r}.')
  if padding not in PADDINGS:
    raise ValueError(f'{fn}: padding must be one of {PADDINGS}, got '
                     f'{padding!r}.')
  if method not in ('shift', 'patches'):
    raise ValueError(f"{fn}: method must be 'shift' or 'patches', got "
                     f'{method!r}.')
  _checks.check_min_rank(x, 3, name='x', fn=fn, layout='(..., H, W, C)')
  taps = size * size
  if kernels.shape[-1] != taps:
    raise ValueError(f'{fn}: kernels must have size^2 = {taps} taps on the '
                     f'last axis, got shape {tuple(kernels.shape)}.')
  lead, hw = x.shape[:-3], x.shape[-3:-1]
  if kernels.ndim == x.ndim:
    k_lead, k_hw = kernels.shape[:-3], kernels.shape[-3:-1]
  elif kernels.ndim == x.ndim + 1:
    k_lead, k_hw = kernels.shape[:-4], kernels.shape[-4:-2]
  else:
    raise ValueError(f'{fn}: kernels must be (..., H, W, size^2) or '
                     f'(..., H, W, K, size^2) for x of shape '
                     f'{tuple(x.shape)}, got shape {tuple(kernels.shape)}.')
  if k_lead != lead or k_hw != hw:
    raise ValueError(f'{fn}: kernels {tuple(kernels.shape)} do not match x '
                     f'{tuple(x.shape)} in their leading and H, W axes.')
  radius = size // 2
  if padding == 'reflect' and radius >= min(hw):
    raise ValueError(f"{fn}: padding='reflect' needs H and W > size // 2 = "
                     f'{radius}, got {hw[0]}x{hw[1]}.')


def _tap(padded: jnp.ndarray, t: int, size: int, height: int,
         width: int) -> jnp.ndarray:
  """The (..., H, W, C) window of `padded` that tap t reads.

  Tap t is the offset (t // size, t % size) from the top-left neighbour.
  """
  oy, ox = divmod(t, size)
  return padded[..., oy:oy + height, ox:ox + width, :]


def _shifted_sum_value(padded, weights, size):
  height = padded.shape[-3] - size + 1
  width = padded.shape[-2] - size + 1
  out = None
  for t in range(size * size):
    term = weights[..., t, None] * _tap(padded, t, size, height,
                                         width)[..., None, :]
    out = term if out is None else out + term
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _shifted_sum(padded, weights, size):
  """sum_t weights[..., k, t] * window_t(padded): (..., H, W, K, C)."""
  return _shifted_sum_value(padded, weights, size)


def _shifted_sum_fwd(padded, weights, size):
  return _shifted_sum_value(padded.value, weights.value, size), (
      padded.value, weights.value, padded.perturbed, weights.perturbed)


def _shifted_sum_bwd(size, residuals, g):
  # XLA's own transpose turns every `weights[..., t]` slice into a pad of the
  # whole (..., K, T) array (the kernel gradient was 30x slower than the
  # forward pass at size 5). As one contraction with the stacked windows it
  # is a batched matrix product.
  padded, weights, padded_needed, weights_needed = residuals
  height, width = g.shape[-4], g.shape[-3]
  taps = range(size * size)
  grad_weights = grad_padded = None
  if weights_needed:
    windows = jnp.stack([_tap(padded, t, size, height, width) for t in taps],
                        axis=-2)
    grad_weights = jnp.einsum('...kc,...tc->...kt', g, windows,
                              precision=jax.lax.Precision.HIGHEST
                              ).astype(weights.dtype)
  if padded_needed:
    grad_padded = jnp.zeros_like(padded)
    for t in taps:
      oy, ox = divmod(t, size)
      grad_padded = grad_padded.at[..., oy:oy + height, ox:ox + width, :].add(
          jnp.sum(weights[..., t, None] * g, axis=-2))
  return grad_padded, grad_weights


_shifted_sum.defvjp(_shifted_sum_fwd, _shifted_sum_bwd, symbolic_zeros=True)


def apply_kernels(x: ArrayLike, kernels: ArrayLike, *, size: int,
                  normalization: Normalization = 'softmax',
                  padding: Padding = 'reflect',
                  method: Literal['shift', 'patches'] = 'patches') -> jax.Array:
  """Per-pixel (spatially varying) filtering, eq. 1 with scalar kernels.

    out[..., y, x, k, c] = sum_{oy, ox} w[..., y, x, k, t] in[..., y + oy, x + ox, c]
    t = (oy + r) * size + (ox + r),   oy, ox in [-r, r],  r = size // 2

  (a correlation: tap t = 0 is the top-left neighbour; eq. 1's W^i[i - j]
  is the same weight indexed by i - j = -(oy, ox)), with w the kernels after
  `normalize_kernels`. One kernel per pixel is shared by all C channels
  (KPCN); with a K axis, K kernels per pixel give K filtered copies.

  Args:
    x: (..., H, W, C) input.
    kernels: (..., H, W, size^2) or (..., H, W, K, size^2) unnormalised
      weights, leading and H, W axes as x.
    size: odd kernel side.
    normalization: see `normalize_kernels` ('softmax', 'sum_to_one',
      'none').
    padding: values outside the image: 'reflect' (mirror without repeating
      the edge, numpy's 'reflect'; KPCN), 'edge' (repeat the edge) or
      'zero'.
    method: 'patches' (stack the size^2 shifted windows, (..., H, W,
      size^2, C), and contract with einsum: a batched matrix product whose
      gradient is another one; fastest forward + gradient on CPU, so the
      default) or 'shift' (size^2 shifted multiply-adds, no size^2-times
      intermediate; about 3x faster forward-only, 1.1-2x slower
      gradient; benchmarks/train_step_kpn.py). Equal up to rounding.

  Returns:
    (..., H, W, C) or (..., H, W, K, C), x's float dtype.
  """
  fn = 'apply_kernels'
  x = _checks.as_float(x, name='x', fn=fn)
  kernels = _checks.as_float(kernels, name='kernels', fn=fn)
  _check_kernel_args(x, kernels, size, padding, method, fn)
  single = kernels.ndim == x.ndim
  weights = normalize_kernels(kernels, normalization=normalization)
  if single:
    weights = weights[..., None, :]
  weights = weights.astype(x.dtype)
  radius = size // 2
  height, width = x.shape[-3:-1]
  pad = [(0, 0)] * (x.ndim - 3) + [(radius, radius)] * 2 + [(0, 0)]
  padded = jnp.pad(x, pad, mode=_PAD_MODES[padding])

  if method == 'patches':
    patches = jnp.stack([_tap(padded, t, size, height, width)
                         for t in range(size * size)], axis=-2)
    out = jnp.einsum('...kt,...tc->...kc', weights, patches,
                     precision=jax.lax.Precision.HIGHEST)
  else:
    out = _shifted_sum(padded, weights, size)
  return out[..., 0, :] if single else out


class KPN(nn.Module):
  """Kernel-prediction ISP: packed raw (h, w, 4) -> sRGB (2h, 2w, 3).

  Attributes:
    features: first U-Net block width (block k has features * 2**k).
    levels: U-Net poolings; inputs must have h, w multiples of 2**levels.
    kernel_size: odd side of the per-pixel kernels, in packed pixels (5
      spans 10 output pixels).
    normalization: kernel normalisation ('softmax', 'sum_to_one', 'none').
    padding: `apply_kernels` border ('reflect', 'edge', 'zero').
    global_context: add the bottleneck's global mean back to it (see the
      module docstring).
    output: 'srgb' (sRGB OETF of the conditional convolution's linear
      output; negatives follow the linear segment) or 'linear'.
    kernel_method: `apply_kernels` method ('patches' or 'shift').

  `__call__(x)`: (..., h, w, 4) in [0, 1] -> (..., 2h, 2w, 3), about [0, 1]
  (not clipped, so the loss sees overshoots; clip for display).
  `predict(x)`: the conditional convolution's parameters, a dict with
  'kernels' (..., h, w, 4, size^2) normalised, 'matrices' (..., h, w, 4, 3,
  4), 'bias' (..., h, w, 4, 3), and 'raw_kernels' (the kernels before
  normalisation); the phase axis follows `PHASES`.
  """
  features: int = 32
  levels: int = 3
  kernel_size: int = 5
  normalization: str = 'softmax'
  padding: str = 'reflect'
  global_context: bool = True
  output: str = 'srgb'
  kernel_method: str = 'patches'

  def _validate(self) -> None:
    if self.normalization not in NORMALIZATIONS:
      raise ValueError(f'KPN: normalization must be one of {NORMALIZATIONS}, '
                       f'got {self.normalization!r}.')
    if self.output not in ('srgb', 'linear'):
      raise ValueError(f"KPN: output must be 'srgb' or 'linear', got "
                       f'{self.output!r}.')
    if self.kernel_size < 1 or self.kernel_size % 2 == 0:
      raise ValueError(f'KPN: kernel_size must be a positive odd int, got '
                       f'{self.kernel_size!r}.')

  @property
  def head_channels(self) -> int:
    phases = len(PHASES)
    return phases * (self.kernel_size**2 + _COLOUR * _RAW + _COLOUR)

  def setup(self):
    self._validate()
    self.backbone = UNet(features=self.features, levels=self.levels,
                         in_channels=_RAW, out_channels=self.head_channels)
    if self.global_context:
      width = self.features * 2**self.levels
      self.context = layers.Conv(width, 1, name='context')
    # R, mean of the greens, B: the neutral start of the colour matrices.
    base = np.zeros((_COLOUR, _RAW), np.float32)
    base[0, 0] = base[2, 3] = 1.0
    base[1, 1] = base[1, 2] = 0.5
    self.base_matrix = self.param('base_matrix',
                                  lambda key: jnp.asarray(base))

  def predict(self, x: jax.Array) -> dict[str, jax.Array]:
    x = _checks.as_float(x, name='x', fn='KPN')
    _checks.check_min_rank(x, 3, name='x', fn='KPN', layout='(..., h, w, 4)')
    _checks.check_channels(x, _RAW, name='packed raw x', fn='KPN')
    encoded = self.backbone.encode(x)
    if self.global_context:
      bottleneck = encoded[-1]
      pooled = jnp.mean(bottleneck, axis=(-3, -2), keepdims=True)
      encoded = [*encoded[:-1], bottleneck + nn.relu(self.context(pooled))]
    head = self.backbone.decode(encoded)
    phases, taps = len(PHASES), self.kernel_size**2
    lead = head.shape[:-1]
    kernels = head[..., :phases * taps].reshape(*lead, phases, taps)
    rest = head[..., phases * taps:]
    matrices = rest[..., :phases * _COLOUR * _RAW].reshape(
        *lead, phases, _COLOUR, _RAW) + self.base_matrix
    bias = rest[..., phases * _COLOUR * _RAW:].reshape(*lead, phases, _COLOUR)
    return {'kernels': normalize_kernels(kernels,
                                         normalization=self.normalization),
            'matrices': matrices, 'bias': bias, 'raw_kernels': kernels}

  def __call__(self, x: jax.Array) -> jax.Array:
    parts = self.predict(x)
    x = jnp.asarray(x, jnp.float32)
    # Normalisation happens inside apply_kernels; hand it the raw outputs.
    filtered = apply_kernels(x, parts['raw_kernels'], size=self.kernel_size,
                             normalization=self.normalization,
                             padding=self.padding,
                             method=self.kernel_method)  # (..., h, w, 4, 4)
    linear = jnp.einsum('...poc,...pc->...po', parts['matrices'], filtered,
                        precision=jax.lax.Precision.HIGHEST) + parts['bias']
    *lead, h, w, phases, channels = linear.shape
    image = layers.depth_to_space(
        linear.reshape(*lead, h, w, phases * channels), block=2)
    return color.srgb_encode(image) if self.output == 'srgb' else image
