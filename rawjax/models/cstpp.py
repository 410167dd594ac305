"""CSTPP generator (Xie et al., ACM MM 2024) and its CycleGAN discriminators.

The generator predicts, for every 16 x 16 token of a (downsampled) raw
image, the parameters of a residual polynomial colour transform, and applies
them pixel-wise at full resolution (paper eq. 13, official `generator.py`):

    x_p  = zero-pad x (bottom, right) to multiples of 32 M
    s    = bilinear downsample of x_p by M (align_corners=False, no
           antialias: PyTorch's `interpolate(scale_factor=1/M)`)
    tok  = LayerNorm(1e-5)(ConformerBackbone(s))          (B, h, w, D)
    W    = Dense(D) -> Dense(C T) (no activation between)  (B, h, w, C, T)
    W~   = bilinear upsampling of W by P = 16 M with align_corners=True
    y_c  = x_c + sum_k phi_k(x) W~_ck      (per pixel, on x_p), cropped

phi is a `rawjax.isp.polynomial` kernel. For packed raw (R, Gr, Gb, B):
'cstpp14' (default), the intended 14 terms R^2, Gr^2, Gb^2, B^2, R Gr,
Gr Gb, Gb B, R Gb, Gr B, R B, R, Gr, Gb, B; 'cstpp14_code' reproduces the
official code's bug (Gr B twice, no R B). The head's 56 outputs are laid out
as the official `w[c * 14 + k]`. The 3-channel variant (RGB input) uses
'cheung10' by default: R, G, B, RG, RB, GB, R^2, G^2, B^2, 1 (10 terms,
Cheung 2004 / Chai et al.'s quadratic basis; in the residual form the 1 is a
per-token offset); 'polynomial2' is the 9-term set without the constant (the
exact 3-channel analogue of the 14 terms). No output clamp (as the official
code); evaluation clips.

`upsample_align_corners` is written out (separable interpolation matrices):
`jax.image.resize` uses half-pixel centres, which would move every token's
parameters by half a patch. With align_corners=True token j sits at output
pixel j (n P - 1) / (n - 1), not at its patch centre (spec 1.2.3).

Two generators share the backbone (`split_params` / `merge_params`): the
official code ('code' sharing) shares every Conv and Linear weight except
the head, and keeps BatchNorm, LayerNorm and the head per direction; the
paper's wording ('paper') keeps only BatchNorm per direction; 'none' shares
nothing.

Discriminators (`config.model.discriminator`):
  * 'official' (`GlobalDiscriminator`): the official `discriminator.py`:
    conv4x4 s2 (4->64) LReLU, s2 (->128) IN LReLU, s2 (->256) IN LReLU,
    s1 (->512) IN LReLU, s1 (->1), then the mean over H x W: one score per
    image. Weights N(0, 0.02), biases PyTorch's default.
  * 'patchgan' (`PatchDiscriminator`): CycleGAN's 70 x 70 PatchGAN
    (junyanz `NLayerDiscriminator`, n_layers=3, instance norm): the same
    five convolutions without the pooling, a patch map of scores; biases 0.
Instance norm: affine=False, eps 1e-5, biased variance.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import polynomial
from rawjax.models import conformer, layers

__all__ = [
    'CSTPPGenerator', 'DIRECTIONS', 'GlobalDiscriminator',
    'PatchDiscriminator', 'SHARING_MODES', 'TRANSFORMS',
    'apply_residual_polynomial',
    'bilinear_downsample', 'interpolation_matrix', 'is_per_direction',
    'merge_params', 'pad_to_multiple', 'split_params',
    'upsample_align_corners',
]

HIGHEST = jax.lax.Precision.HIGHEST
DIRECTIONS = ('a_to_b', 'b_to_a')
SHARING_MODES = ('code', 'paper', 'none')


# --- resampling -----------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def interpolation_matrix(n_in: int, n_out: int, *,
                         align_corners: bool) -> np.ndarray:
  """(n_out, n_in) linear interpolation weights along one axis (PyTorch).

  align_corners=True: source = i (n_in - 1) / (n_out - 1) (0 when n_out
  or n_in is 1). False: source = (i + 0.5) n_in / n_out - 0.5, clamped
  at 0 (PyTorch's bilinear without antialias, also when downsampling).
  """
  i = np.arange(n_out, dtype=np.float64)
  if align_corners:
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    src = i * scale
  else:
    src = np.maximum((i + 0.5) * (n_in / n_out) - 0.5, 0.0)
  low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  high = np.minimum(low + 1, n_in - 1)
  frac = src - low
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), low), 1.0 - frac)
  np.add.at(m, (np.arange(n_out), high), frac)
  return m.astype(np.float32)


def _resample(x: jax.Array, out_hw: tuple[int, int], *,
              align_corners: bool) -> jax.Array:
  h, w = x.shape[-3:-1]
  mh = jnp.asarray(interpolation_matrix(h, out_hw[0],
                                        align_corners=align_corners))
  mw = jnp.asarray(interpolation_matrix(w, out_hw[1],
                                        align_corners=align_corners))
  x = jnp.einsum('yh,...hwc->...ywc', mh, x, precision=HIGHEST)
  return jnp.einsum('xw,...ywc->...yxc', mw, x, precision=HIGHEST)


def upsample_align_corners(x: ArrayLike, factor: int) -> jax.Array:
  """Bilinear upsampling by an integer factor, PyTorch align_corners=True.

  Args:
    x: (..., h, w, C) maps (e.g. per-token transform parameters).
    factor: P >= 1; the output is (..., h P, w P, C).

  Returns:
    out[y, x] = bilinear sample of the input at (y (h - 1) / (h P - 1),
    x (w - 1) / (w P - 1)); the corners of input and output coincide, a
    1-pixel axis stays constant. Linear in x (exact gradients).
  """
  fn = 'upsample_align_corners'
  x = _checks.as_float(x, name='x', fn=fn)
  _checks.check_min_rank(x, 3, name='x', fn=fn, layout='(..., h, w, C)')
  if not isinstance(factor, int) or factor < 1:
    raise ValueError(f'{fn}: factor must be an int >= 1, got {factor!r}.')
  h, w = x.shape[-3:-1]
  return _resample(x, (h * factor, w * factor), align_corners=True)


def bilinear_downsample(x: ArrayLike, factor: int) -> jax.Array:
  """PyTorch `interpolate(x, scale_factor=1/M, mode='bilinear')`.

  align_corners=False and no antialiasing: for even M each output pixel is
  the mean of the 2 x 2 central pixels of its M x M block.

  Args:
    x: (..., H, W, C) with H, W multiples of `factor`.
    factor: M >= 1 (1 returns x).

  Returns:
    (..., H / M, W / M, C).
  """
  fn = 'bilinear_downsample'
  x = _checks.as_float(x, name='x', fn=fn)
  _checks.check_min_rank(x, 3, name='x', fn=fn, layout='(..., H, W, C)')
  if not isinstance(factor, int) or factor < 1:
    raise ValueError(f'{fn}: factor must be an int >= 1, got {factor!r}.')
  if factor == 1:
    return x
  h, w = x.shape[-3:-1]
  if h % factor or w % factor:
    raise ValueError(f'{fn}: {h}x{w} is not divisible by {factor}; pad '
                     'first (pad_to_multiple).')
  return _resample(x, (h // factor, w // factor), align_corners=False)


def pad_to_multiple(x: ArrayLike, multiple: int) -> jax.Array:
  """Zero-pads the bottom and right of (..., H, W, C) to multiples."""
  x = jnp.asarray(x)
  h, w = x.shape[-3:-1]
  pad = [(0, 0)] * x.ndim
  pad[-3] = (0, (-h) % multiple)
  pad[-2] = (0, (-w) % multiple)
  return jnp.pad(x, pad)


def apply_residual_polynomial(x: ArrayLike, weights: ArrayLike, *,
                              kernel: str = 'cstpp14') -> jax.Array:
  """The pixel-wise CSTPP transform: y_c = x_c + sum_k phi_k(x) W_ck.

  Args:
    x: (..., H, W, C) image (packed raw (R, Gr, Gb, B) for the 4-channel
      kernels), about [0, 1].
    weights: (..., H, W, C, T) per-pixel coefficients (the upsampled head
      output), T = the kernel's number of terms.
    kernel: a `rawjax.isp.polynomial` kernel name ('cstpp14',
      'cstpp14_code', 'cheung10', 'polynomial2', ...).

  Returns:
    (..., H, W, C), not clipped.
  """
  fn = 'apply_residual_polynomial'
  x = _checks.as_float(x, name='x', fn=fn)
  weights = _checks.as_float(weights, name='weights', fn=fn)
  features = polynomial.polynomial_features(x, kernel=kernel)
  if weights.shape[-2:] != (x.shape[-1], features.shape[-1]):
    raise ValueError(f'{fn}: weights of shape {tuple(weights.shape)} do not '
                     f'end in (C, T) = ({x.shape[-1]}, {features.shape[-1]}) '
                     f'for kernel {kernel!r}.')
  return x + jnp.einsum('...t,...ct->...c', features, weights,
                        precision=HIGHEST)


# --- generator ------------------------------------------------------------------

TRANSFORMS = ('patch', 'global')


class CSTPPGenerator(nn.Module):
  """Conformer + CSTPP head: one direction's raw-to-raw generator.

  Attributes:
    in_channels: 4 (packed raw) or 3 (RGB variant).
    kernel: polynomial kernel name; '' = 'cstpp14' for 4 channels,
      'cheung10' for 3.
    downsample: M, the input downsampling (Table 4); the parameters do not
      depend on it, so a trained model can be cloned with another M.
    patch_size, base_channels, channel_ratio, stem_channels, embed_dim,
    depth, num_heads, mlp_ratio, qkv_bias: the backbone
      (`rawjax.models.conformer.ConformerBackbone`); defaults are CSTPP's.
    bn_axis_name: synchronous BatchNorm axis in training (None: per call).
    transform: 'patch' (CSTPP: one parameter set per token, upsampled) or
      'global' (the token sets averaged into one per image: a spatially
      uniform transform, the Chai et al.-style comparison of Table 2).

  `__call__(x, *, train=False)`: x (B, H, W, C) in [0, 1], any H, W;
  returns (B, H, W, C), unclipped. With train=True, call `apply` with
  mutable=['batch_stats'].
  """
  in_channels: int = 4
  kernel: str = ''
  downsample: int = 1
  patch_size: int = 16
  base_channels: int = 32
  channel_ratio: int = 2
  stem_channels: int = 64
  embed_dim: int = 256
  depth: int = 6
  num_heads: int = 4
  mlp_ratio: float = 4.0
  qkv_bias: bool = False
  bn_axis_name: str | None = None
  transform: str = 'patch'

  @property
  def kernel_name(self) -> str:
    if self.kernel:
      return self.kernel
    return 'cstpp14' if self.in_channels == 4 else 'cheung10'

  @property
  def num_terms(self) -> int:
    return polynomial.polynomial_num_terms(self.kernel_name, self.in_channels)

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    fn = 'CSTPPGenerator'
    if x.ndim != 4 or x.shape[-1] != self.in_channels:
      raise ValueError(f'{fn}: expected (B, H, W, {self.in_channels}) input, '
                       f'got shape {x.shape}.')
    if not isinstance(self.downsample, int) or self.downsample < 1:
      raise ValueError(f'{fn}: downsample must be an int >= 1, got '
                       f'{self.downsample!r}.')
    if self.transform not in TRANSFORMS:
      raise ValueError(f'{fn}: transform must be one of {TRANSFORMS}, got '
                       f'{self.transform!r}.')
    num_terms = self.num_terms
    h, w = x.shape[1:3]
    image = pad_to_multiple(x, 2 * self.patch_size * self.downsample)
    small = bilinear_downsample(image, self.downsample)
    tokens = conformer.ConformerBackbone(
        patch_size=self.patch_size, base_channels=self.base_channels,
        channel_ratio=self.channel_ratio, stem_channels=self.stem_channels,
        embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
        mlp_ratio=self.mlp_ratio, qkv_bias=self.qkv_bias,
        bn_axis_name=self.bn_axis_name, name='backbone')(small, train=train)
    tokens = nn.LayerNorm(epsilon=1e-5, name='trans_norm')(tokens)
    head = _Head(self.embed_dim, self.in_channels * num_terms, name='head')
    params = head(tokens)  # (B, h, w, C * T), official layout c * T + k
    if self.transform == 'global':
      params = jnp.broadcast_to(params.mean(axis=(1, 2), keepdims=True),
                                (*image.shape[:3], params.shape[-1]))
    else:
      params = upsample_align_corners(params,
                                      self.patch_size * self.downsample)
    params = params.reshape(*params.shape[:-1], self.in_channels, num_terms)
    y = apply_residual_polynomial(image, params, kernel=self.kernel_name)
    return y[:, :h, :w]


class _Head(nn.Module):
  """out1: Linear(D, D) -> Linear(D, C T), no activation between."""
  hidden: int
  outputs: int

  @nn.compact
  def __call__(self, x):
    x = conformer.dense(self.hidden, name='fc1')(x)
    return conformer.dense(self.outputs, name='fc2')(x)


# --- sharing between the two directions -------------------------------------------

_BN = re.compile(r'(.*_)?bn\d*')
_LN = re.compile(r'(.*_)?(norm\d*|ln)')


def is_per_direction(path: tuple[str, ...], *, sharing: str = 'code') -> bool:
  """Whether a generator parameter (flattened path) is kept per direction.

  'code' (official): BatchNorm, LayerNorm and the head; 'paper': BatchNorm
  only; 'none': everything.
  """
  if sharing not in SHARING_MODES:
    raise ValueError(f'sharing must be one of {SHARING_MODES}, got '
                     f'{sharing!r}.')
  if sharing == 'none':
    return True
  modules = path[:-1]
  if any(_BN.fullmatch(m) for m in modules):
    return True
  if sharing == 'paper':
    return False
  return path[0] == 'head' or any(_LN.fullmatch(m) for m in modules)


def split_params(params_a_to_b: Mapping[str, Any],
                 params_b_to_a: Mapping[str, Any], *,
                 sharing: str = 'code') -> dict[str, Any]:
  """Two generators' parameters -> {'shared', 'a_to_b', 'b_to_a'}.

  Shared entries are taken from the A -> B generator (the official code
  replaces G_BA's layers by G_AB's), so each shared array exists once.
  """
  flat_ab = traverse_util.flatten_dict(dict(params_a_to_b))
  flat_ba = traverse_util.flatten_dict(dict(params_b_to_a))
  if set(flat_ab) != set(flat_ba):
    raise ValueError('split_params: the two generators have different '
                     'parameter trees.')
  shared, own_ab, own_ba = {}, {}, {}
  for path, value in flat_ab.items():
    if is_per_direction(path, sharing=sharing):
      own_ab[path], own_ba[path] = value, flat_ba[path]
    else:
      shared[path] = value
  unflat = traverse_util.unflatten_dict
  return {'shared': unflat(shared) if shared else {},
          'a_to_b': unflat(own_ab) if own_ab else {},
          'b_to_a': unflat(own_ba) if own_ba else {}}


def merge_params(split: Mapping[str, Any], direction: str) -> dict[str, Any]:
  """The full parameter tree of one direction from `split_params` output."""
  if direction not in DIRECTIONS:
    raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                     f'{direction!r}.')
  flat = traverse_util.flatten_dict(dict(split['shared'] or {}))
  flat.update(traverse_util.flatten_dict(dict(split[direction] or {})))
  return traverse_util.unflatten_dict(flat)


# --- discriminators -------------------------------------------------------------


def _instance_norm(x, eps: float = 1e-5):
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def _d_conv(features, stride, in_features, *, zero_bias, name):
  bias_init = (nn.initializers.zeros if zero_bias else
               layers.torch_bias_init(in_features * 16))
  return nn.Conv(features, (4, 4), strides=(stride, stride),
                 padding=((1, 1), (1, 1)), use_bias=True,
                 kernel_init=nn.initializers.normal(0.02),
                 bias_init=bias_init, name=name)


def _discriminator_features(x, features: int, zero_bias: bool):
  widths = (features, 2 * features, 4 * features, 8 * features)
  strides = (2, 2, 2, 1)
  for i, (width, stride) in enumerate(zip(widths, strides)):
    x = _d_conv(width, stride, x.shape[-1], zero_bias=zero_bias,
                name=f'conv{i + 1}')(x)
    if i:
      x = _instance_norm(x)
    x = nn.leaky_relu(x, 0.2)
  return _d_conv(1, 1, x.shape[-1], zero_bias=zero_bias, name='conv5')(x)


def _check_d_input(x, in_channels, fn):
  if x.ndim != 4 or x.shape[-1] != in_channels:
    raise ValueError(f'{fn}: expected (B, H, W, {in_channels}) input, got '
                     f'shape {x.shape}.')
  if min(x.shape[1:3]) < 32:
    raise ValueError(f'{fn}: H and W must be >= 32 (three stride-2 and two '
                     f'4x4 convolutions), got {x.shape[1:3]}.')


class GlobalDiscriminator(nn.Module):
  """CSTPP's official discriminator: 5 convolutions, global mean; (B,) scores.

  Input (B, H, W, in_channels), H, W >= 32.
  """
  in_channels: int = 4
  features: int = 64

  @nn.compact
  def __call__(self, x):
    _check_d_input(x, self.in_channels, 'GlobalDiscriminator')
    return jnp.mean(_discriminator_features(x, self.features, False),
                    axis=(1, 2, 3))


class PatchDiscriminator(nn.Module):
  """CycleGAN's 70 x 70 PatchGAN: (B, H', W') scores (256 -> 30 x 30).

  Input (B, H, W, in_channels), H, W >= 32.
  """
  in_channels: int = 4
  features: int = 64

  @nn.compact
  def __call__(self, x):
    _check_d_input(x, self.in_channels, 'PatchDiscriminator')
    return _discriminator_features(x, self.features, True)[..., 0]
