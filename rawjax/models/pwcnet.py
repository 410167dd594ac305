"""PWC-Net (Sun et al., CVPR 2018) as sniklaus' pytorch-pwc `Network`.

This is the network LiteISPNet's reference loads (cszhilu1998/RAW-to-sRGB
`pwc/pwc_net.py`, weights `ckpt/pwc-net.pth` = sniklaus'
`network-default.pytorch`, keys renamed 'module' -> 'net'); convert them with
`rawjax.convert.convert_pwcnet`.

  * feature pyramid: 6 levels of [conv3x3 s2, conv3x3, conv3x3], each followed
    by LeakyReLU(0.1); 16, 32, 64, 96, 128, 196 channels;
  * cost volume (pure jnp): correlation of f1 with f2 over displacements
    |dx|, |dy| <= 4, averaged over channels, f2 zero-padded, channel index
    (dy + 4) * 9 + (dx + 4), then LeakyReLU(0.1);
  * decoders at levels 6..2: the flow and the last features of the coarser
    level are upsampled by ConvTranspose(4, s2, p1) (2 -> 2, feat -> 2); f2
    is backward-warped by the upsampled flow times 20 / 2^l (5, 2.5, 1.25,
    0.625 at levels 2..5) with the reference's masked `backwarp`;
    a DenseNet block of conv3x3 128, 128, 96, 64, 32 (each output
    concatenated in front of its input) and conv3x3 -> 2;
  * context refiner on the level-2 features: dilations 1, 2, 4, 8, 16, 1, 1,
    channels 128, 128, 128, 96, 64, 32, 2, added to the level-2 flow.

The network returns flow / 20 at a quarter of its input size; `estimate`
wraps it with the reference's pre/post-processing. Inputs: RGB in [0, 1] as
the reference feeds them (the original Caffe weights expected BGR; pass
`bgr=True` to flip).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp.warp import backward_warp
from rawjax.models.layers import Conv, torch_uniform_init

__all__ = ['PWCNet', 'cost_volume', 'estimate', 'LEVEL_NAMES']

# sniklaus' attribute names per pyramid level (netOne .. netSix).
LEVEL_NAMES = ('One', 'Two', 'Thr', 'Fou', 'Fiv', 'Six')
EXTRACTOR_CHANNELS = (16, 32, 64, 96, 128, 196)
DENSE_CHANNELS = (128, 128, 96, 64, 32)
REFINER = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1), (2, 1))
BACKWARP_SCALE = {2: 5.0, 3: 2.5, 4: 1.25, 5: 0.625}


def _lrelu(x):
  return nn.leaky_relu(x, negative_slope=0.1)


def cost_volume(first: jax.Array, second: jax.Array, *,
                max_displacement: int = 4) -> jax.Array:
  """(N, H, W, C) x2 -> (N, H, W, (2d+1)^2) channel-mean correlation."""
  d = max_displacement
  h, w = first.shape[1], first.shape[2]
  padded = jnp.pad(second, ((0, 0), (d, d), (d, d), (0, 0)))
  slices = [jnp.mean(first * padded[:, dy:dy + h, dx:dx + w], axis=-1)
            for dy in range(2 * d + 1) for dx in range(2 * d + 1)]
  return jnp.stack(slices, axis=-1)


class ConvTranspose4x4(nn.Module):
  """PyTorch `ConvTranspose2d(in, features, 4, stride=2, padding=1)`.

  'kernel' (4, 4, in, features) holds weight[i, o, ky, kx] at
  kernel[ky, kx, i, o]; computed as a convolution of the 2x-dilated input with
  the spatially flipped kernel, padding k - 1 - p = 2.
  """
  features: int

  @nn.compact
  def __call__(self, x):
    fan_in = self.features * 16  # PyTorch uses weight.shape[1] * k * k
    kernel = self.param('kernel', torch_uniform_init(fan_in),
                        (4, 4, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', torch_uniform_init(fan_in), (self.features,),
                      jnp.float32)
    y = jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1].astype(x.dtype), (1, 1), ((2, 2), (2, 2)),
        lhs_dilation=(2, 2), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(y.dtype)


class Extractor(nn.Module):

  @nn.compact
  def __call__(self, x):
    features = []
    for name, ch in zip(LEVEL_NAMES, EXTRACTOR_CHANNELS):
      for index, stride in ((0, 2), (2, 1), (4, 1)):
        x = _lrelu(Conv(ch, 3, stride, 1, name=f'net{name}_{index}')(x))
      features.append(x)
    return features


class Decoder(nn.Module):
  level: int

  @nn.compact
  def __call__(self, first, second, previous):
    if previous is None:
      feat = _lrelu(cost_volume(first, second))
    else:
      flow = ConvTranspose4x4(2, name='netUpflow')(previous[0])
      upfeat = ConvTranspose4x4(2, name='netUpfeat')(previous[1])
      warped, _ = backward_warp(second, flow * BACKWARP_SCALE[self.level],
                                reference_scaling=True)
      volume = _lrelu(cost_volume(first, warped))
      feat = jnp.concatenate([volume, first, flow, upfeat], axis=-1)
    for name, ch in zip(LEVEL_NAMES[:5], DENSE_CHANNELS):
      feat = jnp.concatenate(
          [_lrelu(Conv(ch, 3, 1, 1, name=f'net{name}_0')(feat)), feat], -1)
    flow = Conv(2, 3, 1, 1, name='netSix_0')(feat)
    return flow, feat


class Refiner(nn.Module):

  @nn.compact
  def __call__(self, x):
    for i, (ch, dilation) in enumerate(REFINER):
      x = _DilatedConv(ch, dilation, name=f'netMain_{2 * i}')(x)
      if i < len(REFINER) - 1:
        x = _lrelu(x)
    return x


class _DilatedConv(nn.Module):
  """3x3 convolution, dilation d, padding d (PyTorch's layer in the refiner)."""
  features: int
  dilation: int

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1] * 9
    kernel = self.param('kernel', torch_uniform_init(fan_in),
                        (3, 3, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', torch_uniform_init(fan_in), (self.features,),
                      jnp.float32)
    d = self.dilation
    y = jax.lax.conv_general_dilated(
        x, kernel.astype(x.dtype), (1, 1), ((d, d), (d, d)),
        rhs_dilation=(d, d), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(y.dtype)


class PWCNet(nn.Module):
  """first, second: (N, H, W, 3), H and W multiples of 64 -> (N, H/4, W/4, 2).

  The output is the network's raw flow (pixels of the quarter-size grid / 20,
  i.e. `estimate` multiplies its bilinear upsampling by 20).
  """

  @nn.compact
  def __call__(self, first: jax.Array, second: jax.Array) -> jax.Array:
    fn = 'PWCNet'
    _checks.check_same_shape(first, second, names='first and second', fn=fn)
    if first.ndim != 4 or first.shape[1] % 64 or first.shape[2] % 64:
      raise ValueError(f'{fn}: inputs must be (N, H, W, 3) with H and W '
                       f'multiples of 64 (use `estimate`), got '
                       f'{tuple(first.shape)}.')
    extractor = Extractor(name='netExtractor')
    f1, f2 = extractor(first), extractor(second)
    previous = None
    for level in (6, 5, 4, 3, 2):
      decoder = Decoder(level, name=f'net{LEVEL_NAMES[level - 1]}')
      previous = decoder(f1[level - 1], f2[level - 1], previous)
    flow, feat = previous
    return flow + Refiner(name='netRefiner')(feat)


def estimate(params: Any, first: ArrayLike, second: ArrayLike, *,
             bgr: bool = False) -> jax.Array:
  """The reference's `estimate(first, second)`: flow first -> second.

  Resizes both (N, H, W, 3) images bilinearly (align_corners=False) to the
  next multiples of 64, runs PWC-Net, resizes the flow to (H, W), multiplies
  by 20 and rescales u by W/W', v by H/H' (`resize_flow`). The result warps
  `second` onto `first`: backward_warp(second, flow) ~= first.

  Args:
    params: {'params': tree} or the bare tree (as `convert_pwcnet` returns).
    first, second: (N, H, W, 3) RGB in [0, 1].
    bgr: reverse the channels first (the Caffe weights' order; the
      LiteISPNet reference does not).

  Returns:
    (N, H, W, 2) float32 pixels.
  """
  fn = 'pwcnet.estimate'
  first = _checks.as_float(first, name='first', fn=fn)
  second = _checks.as_float(second, name='second', fn=fn)
  _checks.check_same_shape(first, second, names='first and second', fn=fn)
  if first.ndim != 4:
    raise ValueError(f'{fn}: expected (N, H, W, 3) images, got '
                     f'{tuple(first.shape)}.')
  _checks.check_channels(first, 3, name='first', fn=fn)
  if bgr:
    first, second = first[..., ::-1], second[..., ::-1]
  n, h, w, _ = first.shape
  h64, w64 = int(math.ceil(h / 64) * 64), int(math.ceil(w / 64) * 64)
  if (h64, w64) != (h, w):
    first = jax.image.resize(first, (n, h64, w64, 3), 'linear', antialias=False)
    second = jax.image.resize(second, (n, h64, w64, 3), 'linear',
                              antialias=False)
  variables = params if 'params' in params else {'params': params}
  raw = PWCNet().apply(variables, first, second)
  upsampled = jax.image.resize(raw, (n, h, w, 2), 'linear', antialias=False)
  return 20.0 * upsampled * jnp.asarray([w / w64, h / h64], upsampled.dtype)
