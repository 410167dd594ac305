"""The ResNet generator of CycleGAN (Zhu et al., ICCV 2017), in Flax.

The plain CycleGAN baseline of the CSTPP comparison (issue 16): the
official pytorch-CycleGAN-and-pix2pix `ResnetGenerator` with `--netG
resnet_9blocks --norm instance` (the CycleGAN defaults), after Johnson et
al.'s fast-neural-style network:

    ReflectionPad(3), Conv 7x7 (in -> ngf), IN, ReLU
    Conv 3x3 stride 2 pad 1 (ngf -> 2 ngf), IN, ReLU
    Conv 3x3 stride 2 pad 1 (2 ngf -> 4 ngf), IN, ReLU
    num_blocks x ResnetBlock(4 ngf): x + F(x), F = ReflectionPad(1),
        Conv 3x3, IN, ReLU, ReflectionPad(1), Conv 3x3, IN
    ConvTranspose 3x3 stride 2 pad 1 output_padding 1 (4 ngf -> 2 ngf), IN, ReLU
    ConvTranspose 3x3 stride 2 pad 1 output_padding 1 (2 ngf -> ngf), IN, ReLU
    ReflectionPad(3), Conv 7x7 (ngf -> out), Tanh

IN is `InstanceNorm2d(affine=False)` (no parameters, eps 1e-5, biased
variance); every convolution has a bias (the official `use_bias` is true for
instance norm, although a bias before IN is cancelled by it: kept so the
parameter count matches and an official checkpoint maps one to one).
Weights are initialised as the official `init_weights(init_type='normal',
init_gain=0.02)`: N(0, 0.02) for every convolution weight, zero biases.
3 -> 3 with ngf = 64 and 9 blocks has 11,378,179 parameters.

Two choices of ours:

* `value_range='unit'` (the default) is for images in [0, 1] such as packed
  raw: the input is mapped to [-1, 1] by 2x - 1, as the official data loader
  normalises images (mean 0.5, std 0.5), and the tanh output back to [0, 1]
  by (1 + tanh) / 2 (= sigmoid(2 z)): the official network between the
  official normalisation and its inverse. `value_range='signed'` is the bare
  official network (inputs and outputs in [-1, 1]).
* The transposed convolutions are computed as a 2x2 convolution on the input
  zero-padded by one pixel at the bottom and right, to 4 x features channels,
  then depth_to_space (`ConvTranspose3x3Stride2`): exactly PyTorch's
  `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)`, with a much cheaper
  gradient on XLA CPU than `lax.conv_transpose` (20x at the first
  upsampling; the class docstring).

Speed on this 2-core CPU (jitted, shared with other jobs), 4 -> 4 at
256 x 256, batch 1: forward 2.0 s, value and gradient 3.8 s (about 100
GFLOP per forward, 87 of them in the 18 block convolutions).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rawjax.models.layers import depth_to_space

__all__ = [
    'ConvTranspose3x3Stride2', 'ResnetGenerator', 'VALUE_RANGES',
    'instance_norm', 'reflect_pad',
]

VALUE_RANGES = ('unit', 'signed')

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
_WEIGHT_INIT = nn.initializers.normal(0.02)
_BIAS_INIT = nn.initializers.zeros

# Output phase a (0: even, 1: odd row or column) of the stride-2 transposed
# 3-tap convolution reads input offsets 0 and 1 with these taps of the
# PyTorch kernel (3 = none): out[2m] = x[m] w[1]; out[2m + 1] = x[m] w[2] +
# x[m + 1] w[0] (o = 2 i - p + k with p = 1).
_TAPS = np.array([[1, 3], [2, 0]])


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """PyTorch's `ReflectionPad2d(pad)` on (B, H, W, C) (edge not repeated)."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


def instance_norm(x: jax.Array, *, eps: float = 1e-5) -> jax.Array:
  """PyTorch's `InstanceNorm2d(affine=False)`: per image and channel over H, W.

  x: (B, H, W, C); biased variance, as PyTorch.
  """
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def _conv(features: int, kernel: int, *, stride: int = 1, padding=0,
          name: str) -> nn.Conv:
  pad = ((padding, padding), (padding, padding))
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=pad, use_bias=True, kernel_init=_WEIGHT_INIT,
                 bias_init=_BIAS_INIT, name=name)


class ConvTranspose3x3Stride2(nn.Module):
  """PyTorch's `ConvTranspose2d(in, features, 3, stride=2, padding=1,
  output_padding=1)`: (B, H, W, C) -> (B, 2H, 2W, features).

  Parameters: 'kernel' (3, 3, in, features) with kernel[ky, kx, i, o] =
  PyTorch's weight[i, o, ky, kx] (`weight.transpose(2, 3, 0, 1)`), N(0, 0.02)
  as CycleGAN's init; 'bias' (features,), zeros.

  Computed as the equivalent sub-pixel convolution: output pixel
  (2m + a, 2n + b) reads input pixels (m, n) .. (m + 1, n + 1) with taps
  `_TAPS[a]`, `_TAPS[b]`, so one 2x2 VALID convolution of the input padded
  with a zero row and column (the output_padding side) to 4 * features
  channels, then depth_to_space. On this 2-core CPU (jitted, other jobs
  running), (1, 64, 64, 256) -> (1, 128, 128, 128): forward 48 ms, gradient
  155 ms, against 27 ms and 3.2 s for `lax.conv_transpose` (equal to 3e-6).
  """
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    kernel = self.param('kernel', _WEIGHT_INIT,
                        (3, 3, in_features, self.features), jnp.float32)
    bias = self.param('bias', _BIAS_INIT, (self.features,), jnp.float32)
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
    # (a, dy, b, dx, I, O) -> (dy, dx, I, (a, b, O)): depth_to_space order.
    sub = padded[_TAPS[:, :, None, None], _TAPS[None, None, :, :]]
    sub = jnp.transpose(sub, (1, 3, 4, 0, 2, 5)).reshape(
        2, 2, in_features, 4 * self.features)
    y = jax.lax.conv_general_dilated(
        jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0))), sub.astype(x.dtype),
        window_strides=(1, 1), padding='VALID',
        dimension_numbers=_DIMENSIONS)
    return depth_to_space(y, block=2) + bias.astype(x.dtype)


class _ResnetBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = _conv(self.features, 3, name='conv1')(reflect_pad(x, 1))
    y = nn.relu(instance_norm(y))
    y = _conv(self.features, 3, name='conv2')(reflect_pad(y, 1))
    return x + instance_norm(y)


class ResnetGenerator(nn.Module):
  """CycleGAN's ResNet generator (`resnet_9blocks`, instance norm).

  Attributes:
    in_channels: input channels (4 for packed raw, 3 for RGB).
    out_channels: output channels.
    features: ngf, the first layer's width (64); the blocks have 4 ngf.
    num_blocks: ResNet blocks (9: `resnet_9blocks`; 6: `resnet_6blocks`).
    value_range: 'unit' (inputs and outputs in [0, 1]: 2x - 1 in,
      (1 + tanh) / 2 out) or 'signed' (the bare network, [-1, 1]).
    pad_input: reflect-pad H and W at the bottom and right to multiples of
      4 (and >= 8), then crop the output back, so any size runs (full
      test images of the raw-to-raw comparison). Off: such sizes are an
      error, as in the official network. Padding adds no parameters.

  `__call__(x, *, train=False)`: x (B, H, W, in_channels), H and W multiples
  of 4 (two stride-2 convolutions, then two exact 2x upsamplings back to
  H, W) and >= 8 (the blocks' reflection padding needs >= 2 pixels at a
  quarter of the size), unless `pad_input`; returns (B, H, W, out_channels)
  in the value range.
  `train` is accepted for drop-in use beside the other generators; the
  network has no train-time state (no dropout; instance norm uses the
  current image's statistics in both modes, as the official code with
  `track_running_stats=False`).
  """
  in_channels: int = 3
  out_channels: int = 3
  features: int = 64
  num_blocks: int = 9
  value_range: str = 'unit'
  pad_input: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    del train  # no train-time state; see the class docstring
    fn = 'ResnetGenerator'
    if x.ndim != 4 or x.shape[-1] != self.in_channels:
      raise ValueError(f'{fn}: expected (B, H, W, {self.in_channels}) input, '
                       f'got shape {x.shape}.')
    h, w = x.shape[1:3]
    if self.pad_input:
      x = _reflect_pad_to(x, multiple=4, minimum=8)
    elif h % 4 or w % 4 or min(h, w) < 8:
      raise ValueError(f'{fn}: H and W must be multiples of 4 and >= 8, got '
                       f'{(h, w)}.')
    if self.value_range not in VALUE_RANGES:
      raise ValueError(f'{fn}: value_range must be one of {VALUE_RANGES}, '
                       f'got {self.value_range!r}.')
    if self.value_range == 'unit':
      x = 2.0 * x - 1.0
    ngf = self.features
    y = _conv(ngf, 7, name='stem')(reflect_pad(x, 3))
    y = nn.relu(instance_norm(y))
    for i, width in enumerate((2 * ngf, 4 * ngf)):
      y = _conv(width, 3, stride=2, padding=1, name=f'down{i + 1}')(y)
      y = nn.relu(instance_norm(y))
    for i in range(self.num_blocks):
      y = _ResnetBlock(4 * ngf, name=f'block{i + 1}')(y)
    for i, width in enumerate((2 * ngf, ngf)):
      y = ConvTranspose3x3Stride2(width, name=f'up{i + 1}')(y)
      y = nn.relu(instance_norm(y))
    y = jnp.tanh(_conv(self.out_channels, 7, name='head')(reflect_pad(y, 3)))
    if self.value_range == 'unit':
      y = 0.5 * (y + 1.0)
    return y[:, :h, :w]


def _reflect_pad_to(x: jax.Array, *, multiple: int, minimum: int
                    ) -> jax.Array:
  """(B, H, W, C) reflect-padded at the bottom and right to multiples of
  `multiple`, at least `minimum`; reflection (not zeros) so the instance
  norms' statistics see image-like content (jnp.pad reflects repeatedly
  where the pad exceeds the size)."""
  h, w = x.shape[1:3]
  pad = [-(-max(n, minimum) // multiple) * multiple - n for n in (h, w)]
  return jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)),
                 mode='reflect')
