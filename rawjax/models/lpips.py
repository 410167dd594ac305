"""LPIPS v0.1, AlexNet variant (Zhang et al., CVPR 2018; the `lpips` package).

    params = rawjax.convert.load_params('lpips.npz')
    d = lpips_distance(params, x, y, normalize=True)   # (N,), x, y in [0, 1]

The network is the `lpips` package's `LPIPS(net='alex', version='0.1')` at
eval (dropout is the identity):

  1. ScalingLayer: (x - shift) / scale per RGB channel, shift (-0.030,
     -0.088, -0.188), scale (0.458, 0.448, 0.450), on inputs in [-1, 1]
     (`normalize=True` maps [0, 1] inputs to [-1, 1] first);
  2. torchvision's `alexnet().features` (`AlexNetFeatures`), tapped at the
     five ReLUs relu1..relu5 (after feature indices 1, 4, 7, 9, 11);
  3. per tap k: features unit-normalised over channels
     (f / (sqrt(sum_c f^2) + 1e-10)), the squared difference of the two
     images, a bias-free 1x1 convolution to one channel (`lin{k}.model.1`,
     (1, C, 1, 1), C = 64, 192, 384, 256, 256) and the spatial mean;
  4. the sum over the five taps.

The 1x1 convolution and the spatial mean are both linear, so they are applied
in the other order (mean first, then the 1x1 weights): the same value, less
work. The norm uses a square root whose gradient at 0 is 0 (a pixel where
every ReLU is off), so the gradient stays finite where PyTorch's is NaN.

Parameter names follow the two published files, so `rawjax.convert.
convert_lpips` maps them one to one: 'alexnet' / 'features_<i>' / 'kernel'
= torchvision's `features.<i>.weight` (alexnet-owt-7be5be79.pth), and
'lin<k>' / 'model_1' / 'kernel' = `lin<k>.model.1.weight` (the lpips
package's weights/v0.1/alex.pth). Inputs are NHWC; convolutions and the
3x3 stride-2 max pools use PyTorch's padding semantics (explicit zero
padding, pools without padding in floor mode).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import layers

__all__ = ['ALEXNET_CONFIG', 'AlexNetFeatures', 'LPIPS', 'LPIPS_CHANNELS',
           'LPIPS_SCALE', 'LPIPS_SHIFT', 'MIN_SIZE', 'lpips_distance']

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# torchvision's alexnet().features: (index, features, kernel, stride, padding)
# for the convolutions, 'M' = MaxPool2d(3, 2); every conv is followed by a
# ReLU (index + 1), the LPIPS taps.
ALEXNET_CONFIG = ((0, 64, 11, 4, 2), 'M', (3, 192, 5, 1, 2), 'M',
                  (6, 384, 3, 1, 1), (8, 256, 3, 1, 1), (10, 256, 3, 1, 1))
LPIPS_CHANNELS = tuple(v[1] for v in ALEXNET_CONFIG if v != 'M')
# The smallest H, W for which both max pools keep a pixel (conv1: 7 x 7).
MIN_SIZE = 31
_EPS = 1e-10


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """PyTorch's `nn.MaxPool2d(3, 2)`: no padding, floor mode, NHWC."""
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1),
                               (1, 2, 2, 1), 'VALID')


class AlexNetFeatures(nn.Module):
  """torchvision's `alexnet().features`: (N, H, W, 3) -> relu1..relu5.

  Returns the five ReLU outputs (after feature indices 1, 4, 7, 9, 11;
  channels 64, 192, 384, 256, 256). The final max pool (index 12) is not
  applied (LPIPS does not use it). Inputs need H, W >= `MIN_SIZE` (31) so
  that both max pools keep a pixel (a ValueError otherwise).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'AlexNetFeatures: expected (N, H, W, 3) RGB, got '
                       f'{x.shape}.')
    if min(x.shape[1:3]) < MIN_SIZE:
      raise ValueError(f'AlexNetFeatures: images must be at least '
                       f'{MIN_SIZE} x {MIN_SIZE} pixels, got {x.shape}.')
    taps = []
    for v in ALEXNET_CONFIG:
      if v == 'M':
        x = _max_pool_3x3_s2(x)
        continue
      index, features, kernel, stride, padding = v
      x = layers.Conv(features, kernel_size=kernel, strides=stride,
                      padding=padding, name=f'features_{index}')(x)
      x = nn.relu(x)
      taps.append(x)
    return tuple(taps)


class _Lin(nn.Module):
  """The lpips `NetLinLayer`: [Dropout, Conv2d(C, 1, 1, bias=False)] at eval.

  Applied to the spatial mean (N, C) of the squared difference -> (N,).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.Conv(1, kernel_size=1, use_bias=False,
                    name='model_1')(x[:, None, None, :])
    return y[:, 0, 0, 0]


def _unit_normalize(f: jax.Array) -> jax.Array:
  """f / (||f||_channels + 1e-10), the norm's gradient 0 where f = 0."""
  s = jnp.sum(f * f, axis=-1, keepdims=True)
  pos = s > 0
  norm = jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1.0)), 0.0)
  return f / (norm + _EPS)


class LPIPS(nn.Module):
  """LPIPS v0.1 (AlexNet): (x, y) (N, H, W, 3) -> distances (N,).

  Attributes:
    normalize: inputs are in [0, 1] (mapped to [-1, 1]); False: already in
      [-1, 1], as the `lpips` package expects by default.
  """
  normalize: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.shape != y.shape:
      raise ValueError(f'LPIPS: shapes differ, {x.shape} and {y.shape}.')
    n = x.shape[0]
    z = jnp.concatenate([x, y])
    if self.normalize:
      z = 2.0 * z - 1.0
    z = (z - jnp.asarray(LPIPS_SHIFT, z.dtype)) / jnp.asarray(LPIPS_SCALE,
                                                              z.dtype)
    taps = AlexNetFeatures(name='alexnet')(z)
    total = jnp.zeros((n,), jnp.float32)
    for k, f in enumerate(taps):
      f = _unit_normalize(f)
      d = jnp.mean((f[:n] - f[n:]) ** 2, axis=(1, 2))  # (N, C)
      total = total + _Lin(name=f'lin{k}')(d)
    return total


def lpips_distance(params: Any, x: jax.Array, y: jax.Array, *,
                   normalize: bool = False) -> jax.Array:
  """LPIPS(x, y) per image, (N,): `LPIPS(normalize).apply` with `params`.

  Args:
    params: the LPIPS params tree ({'alexnet': ..., 'lin0'..'lin4': ...},
      from `rawjax.convert.convert_lpips` / `load_params('lpips.npz')`).
    x, y: (N, H, W, 3) RGB, in [-1, 1], or in [0, 1] with normalize=True.
    normalize: map [0, 1] inputs to [-1, 1].

  Pure and jit-able (`jax.jit(lpips_distance, static_argnames='normalize')`).
  """
  return LPIPS(normalize=normalize).apply({'params': params}, x, y)
