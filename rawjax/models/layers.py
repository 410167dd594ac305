"""Layers shared by the models: PyTorch-default initialisers, explicit padding.

The papers' networks were trained from PyTorch's default initialisation, so
training them from scratch here starts from the same distributions, and a
converted PyTorch checkpoint maps onto these parameters one to one:

  * `nn.Conv2d` / `nn.Linear` weight: kaiming_uniform(a=sqrt(5)), i.e.
    U(+-1/sqrt(fan_in)) = `variance_scaling(1/3, 'fan_in', 'uniform')`;
  * bias: U(+-1/sqrt(fan_in)), fan_in = in_channels * kh * kw;
  * `nn.ConvTranspose2d(in, out, k)`: PyTorch computes its fan_in from the
    weight's second axis, i.e. out * kh * kw (not in_channels), for the weight
    and the bias alike.

Padding is explicit: PyTorch's `padding=p` pads p pixels on every side, which
is not `'SAME'` for even kernels or strides > 1.

Two CPU-motivated forms (measured on this 2-core CPU, forward + gradient,
batch 16; see docs/raw2raw_semi.md): `ConvTranspose2x2` is computed as a 1x1
convolution to 4 * out channels followed by depth_to_space (exactly
PyTorch's kernel-2 stride-2 transposed convolution, ~3x faster gradient than
`lax.conv_transpose`), and `max_pool_2x2` reshapes and takes the maximum
(~7x faster gradient than `flax.linen.max_pool`). `DepthwiseConv` (PyTorch's
`groups=C` convolution) is k*k shifted multiply-adds on the zero-padded
input, ~5x faster forward + gradient than a `feature_group_count`
convolution (3x3, batch 12, 32 x 32 x 64).

`Conv` and `ConvTranspose2x2` compute through `rawjax.models.conv.conv2d`,
whose weight gradient is computed in bands of rows on CPU, several times
faster than XLA's backward-filter convolution on large images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import conv

__all__ = [
    'Conv', 'ConvTranspose2x2', 'DepthwiseConv', 'depth_to_space',
    'max_pool_2x2',
    'torch_bias_init', 'torch_kernel_init', 'torch_uniform_init',
]


# PyTorch's kaiming_uniform(a=sqrt(5)): gain^2 = 2 / (1 + a^2) = 1/3, so the
# bound sqrt(3 * gain^2 / fan_in) is 1 / sqrt(fan_in).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in',
                                                     'uniform')


def torch_uniform_init(fan_in: int) -> nn.initializers.Initializer:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for an explicitly given fan_in."""
  bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def torch_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch's default bias initialiser, U(+-1/sqrt(fan_in))."""
  return torch_uniform_init(fan_in)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(value, int):
    return value, value
  a, b = value
  return int(a), int(b)


class Conv(nn.Module):
  """2-D convolution with PyTorch's defaults and explicit padding.

  The PyTorch `nn.Conv2d(in, features, kernel_size, stride, padding)`:
  parameters 'kernel' (kh, kw, in, features) (PyTorch's weight transposed
  (2, 3, 1, 0)) and 'bias' (features,).

  Attributes:
    features: output channels.
    kernel_size: int or (kh, kw).
    strides: int or (sh, sw).
    padding: pixels of zero padding, an int (all sides), (ph, pw) (both
      sides of each axis, as PyTorch) or ((top, bottom), (left, right)).
    use_bias: add a bias.

  Input (..., H, W, C) NHWC float; output (..., H', W', features).
  """
  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 1
  padding: int | Sequence[int] | Sequence[Sequence[int]] = 0
  use_bias: bool = True

  def _padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
    p = self.padding
    if isinstance(p, int):
      return (p, p), (p, p)
    first, second = p
    if isinstance(first, int):
      return (first, first), (second, second)
    return tuple(first), tuple(second)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pair(self.kernel_size)
    if x.ndim < 3:
      raise ValueError(f'Conv: expected (..., H, W, C) input, got shape '
                       f'{x.shape}.')
    in_features = x.shape[-1]
    kernel = self.param('kernel', torch_kernel_init,
                        (kh, kw, in_features, self.features), jnp.float32)
    lead = x.shape[:-3]
    y = conv.conv2d(x.reshape((-1,) + x.shape[-3:]), kernel.astype(x.dtype),
                    strides=_pair(self.strides), padding=self._padding())
    if self.use_bias:
      bias = self.param('bias', torch_bias_init(in_features * kh * kw),
                        (self.features,), jnp.float32)
      y = y + bias.astype(y.dtype)
    return y.reshape(lead + y.shape[1:])


class DepthwiseConv(nn.Module):
  """PyTorch's `nn.Conv2d(C, C, k, padding=k // 2, groups=C)` (depthwise).

  out[y, x, c] = b[c] + sum_{i, j} pad(x)[y + i, x + j, c] W[i, j, 0, c],
  computed as k*k shifted multiply-adds on the zero-padded input (not
  `feature_group_count`, much slower on XLA CPU, forward and gradient).

  Parameters: 'kernel' (k, k, 1, C), PyTorch's weight (C, 1, k, k)
  transposed (2, 3, 1, 0) as for `Conv` (the HWIO layout of a grouped
  convolution), and 'bias' (C,); both PyTorch's defaults, fan_in = k*k.

  Attributes:
    kernel_size: odd side k (the output keeps H and W).
    use_bias: add a bias.

  Input (..., H, W, C); output (..., H, W, C).
  """
  kernel_size: int = 3
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = int(self.kernel_size)
    if k < 1 or k % 2 == 0:
      raise ValueError(f'DepthwiseConv: kernel_size must be odd, got {k}.')
    if x.ndim < 3:
      raise ValueError(f'DepthwiseConv: expected (..., H, W, C) input, got '
                       f'shape {x.shape}.')
    *lead, h, w, c = x.shape
    kernel = self.param('kernel', torch_kernel_init, (k, k, 1, c),
                        jnp.float32).astype(x.dtype)
    r = k // 2
    padded = jnp.pad(x, [(0, 0)] * len(lead) + [(r, r), (r, r), (0, 0)])
    y = None
    for i in range(k):
      for j in range(k):
        term = padded[..., i:i + h, j:j + w, :] * kernel[i, j, 0]
        y = term if y is None else y + term
    if self.use_bias:
      bias = self.param('bias', torch_bias_init(k * k), (c,), jnp.float32)
      y = y + bias.astype(y.dtype)
    return y


def depth_to_space(x: jax.Array, *, block: int = 2) -> jax.Array:
  """(..., H, W, b*b*C) -> (..., b*H, b*W, C), channels ordered (dy, dx, c).

  Output pixel (b*y + dy, b*x + dx) channel c is input channel
  (dy * b + dx) * C + c at (y, x) (TensorFlow's `depth_to_space` order).
  """
  *lead, h, w, c = x.shape
  if c % (block * block):
    raise ValueError(f'depth_to_space: {c} channels are not a multiple of '
                     f'block^2 = {block * block}.')
  out = c // (block * block)
  x = x.reshape(*lead, h, w, block, block, out)
  x = jnp.moveaxis(x, -3, -4)  # (..., h, dy, w, dx, c)
  return x.reshape(*lead, h * block, w * block, out)


class ConvTranspose2x2(nn.Module):
  """PyTorch's `nn.ConvTranspose2d(in, features, kernel_size=2, stride=2)`.

  Every input pixel writes its own 2x2 block of the output, so the layer is a
  1x1 convolution to 4 * features channels followed by `depth_to_space`:
  out[2y + dy, 2x + dx, o] = sum_i x[y, x, i] W[i, o, dy, dx] + b[o].
  That form has a much cheaper gradient on CPU than `lax.conv_transpose`.

  Parameters: 'kernel' (2, 2, in, features) with kernel[dy, dx, i, o] =
  PyTorch's weight[i, o, dy, dx] (i.e. weight.transpose(2, 3, 0, 1)), and
  'bias' (features,); both U(+-1/sqrt(4 * features)) as PyTorch initialises
  a transposed convolution.

  Input (..., H, W, C); output (..., 2H, 2W, features).
  """
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    fan_in = 4 * self.features
    kernel = self.param('kernel', torch_uniform_init(fan_in),
                        (2, 2, in_features, self.features), jnp.float32)
    # (2, 2, I, O) -> (1, 1, I, (dy, dx, O)): the depth_to_space order.
    pointwise = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(
        1, 1, in_features, 4 * self.features)
    lead = x.shape[:-3]
    y = conv.conv2d(x.reshape((-1,) + x.shape[-3:]),
                    pointwise.astype(x.dtype))
    y = depth_to_space(y, block=2)
    if self.use_bias:
      bias = self.param('bias', torch_uniform_init(fan_in), (self.features,),
                        jnp.float32)
      y = y + bias.astype(y.dtype)
    return y.reshape(lead + y.shape[1:])


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """PyTorch's `nn.MaxPool2d(2)`: (..., H, W, C) -> (..., H//2, W//2, C).

  An odd last row or column is dropped, as PyTorch's floor mode does.
  """
  *lead, h, w, c = x.shape
  x = x[..., :h - h % 2, :w - w % 2, :]
  x = x.reshape(*lead, h // 2, 2, w // 2, 2, c)
  return jnp.max(x, axis=(-4, -2))
