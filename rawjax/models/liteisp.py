"""LiteISPNet (Zhang et al., ICCV 2021), its Haar wavelet layers, the PatchGAN.

LiteISPNet maps a packed Bayer raw (h, w, 4) to sRGB (2h, 2w, 3) (paper
eq. 1, y_hat = I(x); Table B of the supplement). It follows the released code
(`cszhilu1998/RAW-to-sRGB`, `models/zrrjoint_model.py` and
`models/networks.py`), not the paper's table where they differ:

  * a gamma x ** (1/2.2) is applied to the raw *inside* the network
    (`input_gamma`: exactly 0 at 0 as the reference's `torch.pow`, with a
    finite gradient there);
  * a 2-channel coordinate map (pixel centres in [-1, 1] over the patch, at
    packed resolution, x then y) is concatenated after the head conv, so the
    first down stage works on 64 + 2 = 66 channels (`coord=True`; the
    paper's Table B has 64);
  * the Haar DWT/IWT lay out sub-bands channel-major interleaved:
    out[4c + k] = f_k * in[c] (`haar_dwt`), an orthonormal transform, so
    `haar_iwt(haar_dwt(x)) == x` exactly up to rounding;
  * residual groups (RG) are [nb x RCAB] -> conv3x3, plus the input; an RCAB
    is conv3x3 -> ReLU -> conv3x3 -> channel attention (reduction 16), plus
    its input; every conv has a bias and no normalisation layer is used;
  * the U-Net skips are additive (m + d3, u3 + d2, u2 + d1, u1 + h);
  * the tail is conv3x3 (64 -> 256) -> PixelShuffle(2) in PyTorch's channel
    order (`pixel_shuffle`) -> conv3x3 (64 -> 3); the output is linear and not
    clamped.

With the defaults (`channels=(64, 128, 128)`, `num_blocks=4`) the network
has 9,039,623 trainable parameters (the DWT/IWT filters are fixed and are not
parameters; PyTorch's state dict holds 8,192 of them). The packed input's
sides must be multiples of 8 (three DWTs), i.e. Bayer sides of 16.

Input channel order. The Flax model takes the canonical (R, Gr, Gb, B)
packing of rawjax. The reference trained on PyNET's order (B, Gb, R, Gr);
`rawjax.convert.convert_liteisp` permutes the head conv's input channels so
a converted checkpoint gives the reference's output on canonical input.

`PatchDiscriminator` is the LiteISPGAN discriminator (`zrrganjoint_model.py`,
pix2pix's NLayerDiscriminator, ndf 64, 3 layers, BatchNorm, LeakyReLU 0.2,
4x4 kernels with padding 1): 2,765,633 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data.datasets.zrr import coordinate_map
from rawjax.models import layers

__all__ = [
    'CALayer', 'LiteISPNet', 'PatchDiscriminator', 'RCAB', 'RCAGroup',
    'haar_dwt', 'haar_iwt', 'input_gamma', 'pixel_shuffle', 'pixel_unshuffle',
]

GAMMA = 1.0 / 2.2


def input_gamma(x: jax.Array, gamma: float = GAMMA) -> jax.Array:
  """x ** gamma as the reference's `torch.pow(raw, 1/2.2)`, gradient-safe.

  Args:
    x: any shape, raw values >= 0 (negative inputs give 0, where the
      reference's pow would give NaN).
    gamma: the exponent, 0 < gamma (1/2.2 in the reference).

  Returns:
    Same shape: x ** gamma where x > 0 (float32 precision), exactly 0 where
    x <= 0. Black-level clipping of ZRR raw produces exact zeros, and the
    earlier guard `max(x, 1e-8) ** gamma` gave 1e-8 ** (1/2.2) = 2.3e-4
    there. The gradient is gamma x ** (gamma - 1) where x > 0 (finite for
    every float32 x > 0, the smallest subnormal included) and 0 at x <= 0
    (the reference's is inf at 0): the base of the log is replaced before
    the log, so neither `where` branch produces an inf or NaN cotangent.
  """
  positive = x > 0
  # exp(gamma log x): XLA's general pow is about 4x slower on CPU.
  power = jnp.exp(gamma * jnp.log(jnp.where(positive, x, 1.0)))
  return jnp.where(positive, power, jnp.zeros_like(power))


def haar_dwt(x: jax.Array) -> jax.Array:
  """One level of the reference's Haar DWT: (..., H, W, C) -> (..., H/2, W/2, 4C).

  The fixed grouped conv (k 2, stride 2) of `networks.DWTForward`, with the
  filters f0 = 1/2 [[1, 1], [1, 1]], f1 = 1/2 [[1, 1], [-1, -1]],
  f2 = 1/2 [[1, -1], [1, -1]], f3 = 1/2 [[1, -1], [-1, 1]] and the
  channel-major interleaved layout out[..., 4c + k] = f_k (x) in[..., c].
  The 4x4 transform is orthonormal (and its own inverse). H and W must be
  even.
  """
  *lead, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'haar_dwt: height and width must be even, got {h}x{w}.')
  x = x.reshape(*lead, h // 2, 2, w // 2, 2, c)
  x00, x01 = x[..., :, 0, :, 0, :], x[..., :, 0, :, 1, :]
  x10, x11 = x[..., :, 1, :, 0, :], x[..., :, 1, :, 1, :]
  bands = (0.5 * (x00 + x01 + x10 + x11), 0.5 * (x00 + x01 - x10 - x11),
           0.5 * (x00 - x01 + x10 - x11), 0.5 * (x00 - x01 - x10 + x11))
  return jnp.stack(bands, axis=-1).reshape(*lead, h // 2, w // 2, 4 * c)


def haar_iwt(x: jax.Array) -> jax.Array:
  """The inverse of `haar_dwt`: (..., h, w, 4C) -> (..., 2h, 2w, C).

  The reference's `DWTInverse`, a fixed grouped ConvTranspose2d (k 2,
  stride 2) with the same four filters: out[c][2i + a, 2j + b] =
  sum_k f_k[a, b] in[4c + k][i, j].
  """
  *lead, h, w, c4 = x.shape
  if c4 % 4:
    raise ValueError(f'haar_iwt: channels must be a multiple of 4, got {c4}.')
  c = c4 // 4
  x = x.reshape(*lead, h, w, c, 4)
  b0, b1, b2, b3 = (x[..., k] for k in range(4))
  x00 = 0.5 * (b0 + b1 + b2 + b3)
  x01 = 0.5 * (b0 + b1 - b2 - b3)
  x10 = 0.5 * (b0 - b1 + b2 - b3)
  x11 = 0.5 * (b0 - b1 - b2 + b3)
  rows = jnp.stack([jnp.stack([x00, x01], axis=-2),
                    jnp.stack([x10, x11], axis=-2)], axis=-4)
  # rows: (..., h, 2 (a), w, 2 (b), c)
  return rows.reshape(*lead, 2 * h, 2 * w, c)


def haar_filters(channels: int) -> np.ndarray:
  """The reference's fixed DWT/IWT weight, (4 * channels, 1, 2, 2) float32.

  The PyTorch tensor `DWTForward(channels).weight` (and, with the same
  values, `DWTInverse(4 * channels).weight`); used to check converted state
  dicts.
  """
  f = 0.5 * np.array([[[1, 1], [1, 1]], [[1, 1], [-1, -1]],
                      [[1, -1], [1, -1]], [[1, -1], [-1, 1]]], np.float32)
  return np.tile(f[:, None], (channels, 1, 1, 1))


def pixel_shuffle(x: jax.Array, *, factor: int = 2) -> jax.Array:
  """PyTorch's `nn.PixelShuffle` in NHWC: (..., H, W, r*r*C) -> (..., rH, rW, C).

  out[r*h + i, r*w + j, c] = in[h, w, c*r*r + i*r + j] (channel-major, unlike
  `layers.depth_to_space`, whose channel index is (i*r + j)*C + c).
  """
  *lead, h, w, c = x.shape
  r = factor
  if c % (r * r):
    raise ValueError(f'pixel_shuffle: {c} channels are not a multiple of '
                     f'{r * r}.')
  out = c // (r * r)
  x = x.reshape(*lead, h, w, out, r, r)
  x = jnp.moveaxis(x, -3, -1)           # (..., h, w, r_i, r_j, out)
  x = jnp.moveaxis(x, -3, -4)           # (..., h, r_i, w, r_j, out)
  return x.reshape(*lead, h * r, w * r, out)


def pixel_unshuffle(x: jax.Array, *, factor: int = 2) -> jax.Array:
  """The inverse of `pixel_shuffle` (PyTorch's `nn.PixelUnshuffle`)."""
  *lead, hh, ww, out = x.shape
  r = factor
  if hh % r or ww % r:
    raise ValueError(f'pixel_unshuffle: sides must be multiples of {r}, got '
                     f'{hh}x{ww}.')
  x = x.reshape(*lead, hh // r, r, ww // r, r, out)
  x = jnp.moveaxis(x, -4, -3)           # (..., h, w, r_i, r_j, out)
  x = jnp.moveaxis(x, -1, -3)           # (..., h, w, out, r_i, r_j)
  return x.reshape(*lead, hh // r, ww // r, out * r * r)


def _conv3(features: int, name: str) -> layers.Conv:
  return layers.Conv(features, kernel_size=3, padding=1, name=name)


class CALayer(nn.Module):
  """Channel attention: x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2).

  W1: C -> C // reduction, W2: back to C, both 1x1 convs with bias
  (`networks.CALayer`; names conv_du_0 / conv_du_2 as its `conv_du.0/.2`).
  """
  reduction: int = 16

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    hidden = c // self.reduction
    if hidden < 1:
      raise ValueError(f'CALayer: {c} channels // reduction {self.reduction} '
                       'leaves no hidden channel.')
    y = jnp.mean(x, axis=(-3, -2), keepdims=True)
    y = nn.relu(layers.Conv(hidden, kernel_size=1, name='conv_du_0')(y))
    y = nn.sigmoid(layers.Conv(c, kernel_size=1, name='conv_du_2')(y))
    return x * y


class RCAB(nn.Module):
  """Residual channel-attention block: x + CA(conv3(relu(conv3(x))))."""
  reduction: int = 16

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    res = _conv3(c, 'res_0')(x)
    res = _conv3(c, 'res_2')(nn.relu(res))
    return x + CALayer(self.reduction, name='ca')(res)


class RCAGroup(nn.Module):
  """Residual group: x + conv3(RCAB^nb(x)) (`networks.RCAGroup`, names rg_k)."""
  num_blocks: int = 4
  reduction: int = 16

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    for k in range(self.num_blocks):
      y = RCAB(self.reduction, name=f'rg_{k}')(y)
    return x + _conv3(x.shape[-1], f'rg_{self.num_blocks}')(y)


class LiteISPNet(nn.Module):
  """LiteISPNet: packed raw (N, h, w, 4) in [0, 1] -> sRGB (N, 2h, 2w, 3).

  Attributes:
    channels: (ch_1, ch_2, ch_3) widths (reference (64, 128, 128)).
    num_blocks: RCABs per residual group (reference 4; Table 5 ablates 2-20).
    reduction: channel-attention reduction (16).
    coord: concatenate the coordinate map after the head (the released
      model; False drops the 2 channels, changing down1's width).
    gamma: exponent applied to the raw inside the net (1/2.2; 1.0 = none).

  Call: `model.apply(variables, raw, coord=None)`; raw (N, h, w, 4) with h, w
  multiples of 8 (canonical (R, Gr, Gb, B) order); coord (N, h, w, 2) or
  (h, w, 2), default the [-1, 1] pixel-centre grid of the patch
  (`rawjax.data.datasets.zrr.coordinate_map`). For tiles of a larger frame,
  pass the tile's part of the frame's grid (`tiling.tiled_apply` does).
  Returns (N, 2h, 2w, 3), linear (not clamped).
  """
  channels: Sequence[int] = (64, 128, 128)
  num_blocks: int = 4
  reduction: int = 16
  coord: bool = True
  gamma: float = GAMMA

  @nn.compact
  def __call__(self, raw: jax.Array, coord: jax.Array | None = None
               ) -> jax.Array:
    if raw.ndim != 4 or raw.shape[-1] != 4:
      raise ValueError(f'LiteISPNet: expected packed raw (N, h, w, 4), got '
                       f'shape {raw.shape}.')
    n, h, w, _ = raw.shape
    if h % 8 or w % 8 or h == 0 or w == 0:
      raise ValueError(f'LiteISPNet: packed height and width must be positive '
                       f'multiples of 8 (three DWTs), got {h}x{w}; pad the '
                       'raw (Bayer sides multiples of 16).')
    ch1, ch2, ch3 = self.channels
    rg = lambda name: RCAGroup(self.num_blocks, self.reduction, name=name)  # noqa: E731
    x = raw if self.gamma == 1.0 else input_gamma(raw, self.gamma)
    head = _conv3(ch1, 'head')(x)
    h_in = head
    if self.coord:
      if coord is None:
        coord = jnp.asarray(coordinate_map(h, w))
      coord = jnp.asarray(coord, head.dtype)
      if coord.shape[-3:] != (h, w, 2):
        raise ValueError(f'LiteISPNet: coord must be (N, {h}, {w}, 2) or '
                         f'({h}, {w}, 2), got {coord.shape}.')
      coord = jnp.broadcast_to(coord, (n, h, w, 2))
      h_in = jnp.concatenate([head, coord], axis=-1)
    c_in = h_in.shape[-1]
    y = _conv3(c_in, 'down1_0')(h_in)
    y = rg('down1_1')(y)
    d1 = haar_dwt(_conv3(ch1, 'down1_2')(y))
    d2 = haar_dwt(rg('down2_1')(_conv3(ch1, 'down2_0')(d1)))
    d3 = haar_dwt(rg('down3_1')(_conv3(ch2, 'down3_0')(d2)))
    y = rg('middle_2')(rg('middle_1')(_conv3(ch3, 'middle_0')(d3)))
    m = _conv3(4 * ch2, 'middle_3')(y) + d3
    u3 = _conv3(4 * ch1, 'up3_2')(rg('up3_1')(haar_iwt(m))) + d2
    u2 = _conv3(4 * ch1, 'up2_2')(rg('up2_1')(haar_iwt(u3))) + d1
    u1 = _conv3(ch1, 'up1_2')(rg('up1_1')(haar_iwt(u2))) + head
    y = pixel_shuffle(_conv3(4 * ch1, 'tail_0')(u1))
    return _conv3(3, 'tail_2')(y)


class PatchDiscriminator(nn.Module):
  """LiteISPGAN's 70x70-style PatchGAN (supplement Table C): (N, H, W, 3) -> logits.

  conv4x4 s2 (3 -> 64, bias) -> LReLU(0.2) -> [conv4x4 s2 (no bias) -> BN ->
  LReLU] x2 (128, 256) -> conv4x4 s1 (512, no bias) -> BN -> LReLU ->
  conv4x4 s1 (1, bias); padding 1 everywhere. A 448x448 image gives 54x54
  logits. BatchNorm as PyTorch's (momentum 0.1 = Flax 0.9, eps 1e-5); with
  `axis_name` set, batch statistics are averaged over that pmap axis
  (synchronised BN, i.e. the statistics of the whole batch, as the reference
  on one GPU).

  Call: `apply(variables, x, train=True, mutable=['batch_stats'])` in
  training; `train=False` uses the running averages.
  """
  features: int = 64
  num_layers: int = 3
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
    conv = lambda f, s, bias, name: layers.Conv(  # noqa: E731
        f, kernel_size=4, strides=s, padding=1, use_bias=bias, name=name)
    norm = lambda name: nn.BatchNorm(  # noqa: E731
        use_running_average=not train, momentum=0.9, epsilon=1e-5,
        axis_name=self.axis_name if train else None, name=name)
    x = nn.leaky_relu(conv(self.features, 2, True, 'model_0')(x), 0.2)
    index = 2
    for k in range(1, self.num_layers + 1):
      stride = 2 if k < self.num_layers else 1
      width = self.features * min(2**k, 8)
      x = conv(width, stride, False, f'model_{index}')(x)
      x = nn.leaky_relu(norm(f'model_{index + 1}')(x), 0.2)
      index += 3
    return conv(1, 1, True, f'model_{index}')(x)
