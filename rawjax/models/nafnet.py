"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

A port of the official `megvii-research/NAFNet`
(`basicsr/models/archs/NAFNet_arch.py`) to NHWC Flax, layer for layer:

    intro   conv3x3 (img_channel -> width, bias)
    encoder per level i: enc_blk_nums[i] x NAFBlock(chan), then
            down_i = conv2x2 stride 2 (chan -> 2 chan, bias); chan *= 2
    middle  middle_blk_num x NAFBlock(chan)
    decoder per level i: up_i = conv1x1 (chan -> 2 chan, no bias) +
            PixelShuffle(2) (PyTorch's channel order: chan -> chan / 2),
            + the skip of the matching encoder level (deepest first), then
            dec_blk_nums[i] x NAFBlock(chan)
    ending  conv3x3 (width -> img_channel, bias), + the (padded) input

The input is zero-padded at the bottom / right to a multiple of
2**len(enc_blk_nums) (official `check_image_size`, `F.pad` with zeros) and
the output is cropped back, so any H, W work.

NAFBlock(c) (DW_Expand = FFN_Expand = 2, dropout 0):

    x = conv1x1 (c -> 2c) (LayerNorm2d(inp))      # norm1, conv1
    x = depthwise conv3x3 (2c, padding 1) (x)     # conv2
    x = SimpleGate(x)                             # x1 * x2, channel halves
    x = x * conv1x1 (c -> c) (mean_hw(x))         # channel attention, sca.1
    y = inp + conv1x1 (c -> c) (x) * beta         # conv3
    x = SimpleGate(conv1x1 (c -> 2c) (LayerNorm2d(y)))   # norm2, conv4
    out = y + conv1x1 (c -> c) (x) * gamma        # conv5

LayerNorm2d normalises over the channels of every pixel (biased variance,
eps 1e-6, learnable weight 1 and bias 0 at initialisation); beta and gamma
are per-channel scales initialised to **zero**, so every block starts as the
identity (the untrained network is intro -> ending plus the input).
Convolutions use
PyTorch's default initialisation (`layers.Conv`), the depthwise one is
`layers.DepthwiseConv` (shifted multiply-adds, fast on XLA CPU).

Parameter names spell the PyTorch state-dict keys (`convert.flax_to_torch_key`:
'encoders_0_1' / 'conv2' / 'kernel' = `encoders.0.1.conv2.weight`,
'middle_blks_3', 'downs_0', 'ups_0_0', 'decoders_1_0', 'sca_1', 'norm1' with
'weight' / 'bias'); beta and gamma are stored as (c,) (PyTorch (1, c, 1, 1)).
`rawjax.convert.convert_nafnet` converts the official checkpoints.

With NAFNet-SIDD-width32 (`OFFICIAL_CONFIGS['sidd-width32']`: width 32,
middle_blk_num 12, enc_blk_nums (2, 2, 4, 8), dec_blk_nums (2, 2, 2, 2),
img_channel 3) the network has 29,159,715 trainable parameters, the count
of the PyTorch module.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import layers
from rawjax.models.liteisp import pixel_shuffle

__all__ = ['LayerNorm2d', 'NAFBlock', 'NAFNet', 'OFFICIAL_CONFIGS',
           'simple_gate']

# The released NAFNet models (options/test/*/NAFNet-width*.yml; all
# img_channel 3). GoPro / REDS are tested as NAFNetLocal (test-time local
# pooling in the channel attention, TLC); the weights are the same, but this
# port pools globally as the network was trained.
OFFICIAL_CONFIGS = {
    'sidd-width32': dict(width=32, middle_blk_num=12,
                         enc_blk_nums=(2, 2, 4, 8), dec_blk_nums=(2, 2, 2, 2)),
    'sidd-width64': dict(width=64, middle_blk_num=12,
                         enc_blk_nums=(2, 2, 4, 8), dec_blk_nums=(2, 2, 2, 2)),
    'gopro-width32': dict(width=32, middle_blk_num=1,
                          enc_blk_nums=(1, 1, 1, 28),
                          dec_blk_nums=(1, 1, 1, 1)),
    'gopro-width64': dict(width=64, middle_blk_num=1,
                          enc_blk_nums=(1, 1, 1, 28),
                          dec_blk_nums=(1, 1, 1, 1)),
    'reds-width64': dict(width=64, middle_blk_num=1,
                         enc_blk_nums=(1, 1, 1, 28),
                         dec_blk_nums=(1, 1, 1, 1)),
}


def simple_gate(x: jax.Array) -> jax.Array:
  """SimpleGate: (..., 2C) -> (..., C), first channel half x second half."""
  x1, x2 = jnp.split(x, 2, axis=-1)
  return x1 * x2


class LayerNorm2d(nn.Module):
  """NAFNet's LayerNorm2d in NHWC: per-pixel normalisation over channels.

  y = (x - mean_c x) / sqrt(var_c x + eps) * weight + bias, biased variance.
  Parameters 'weight' (C,) (ones) and 'bias' (C,) (zeros), as PyTorch's.
  """
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    weight = self.param('weight', nn.initializers.ones, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    mu = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mu
    var = jnp.mean(centred * centred, axis=-1, keepdims=True)
    y = centred * jax.lax.rsqrt(var + self.epsilon)
    return y * weight.astype(x.dtype) + bias.astype(x.dtype)


def _conv1(features: int, name: str, use_bias: bool = True) -> layers.Conv:
  return layers.Conv(features, kernel_size=1, use_bias=use_bias, name=name)


class NAFBlock(nn.Module):
  """The NAFNet block: (..., H, W, C) -> (..., H, W, C) (see the module doc).

  Attributes:
    dw_expand: width of the depthwise branch, dw_expand * C (official 2).
    ffn_expand: width of the feed-forward branch, ffn_expand * C (2).
  """
  dw_expand: int = 2
  ffn_expand: int = 2

  @nn.compact
  def __call__(self, inp: jax.Array) -> jax.Array:
    c = inp.shape[-1]
    dw, ffn = c * self.dw_expand, c * self.ffn_expand
    if dw % 2 or ffn % 2:
      raise ValueError(f'NAFBlock: the expanded widths ({dw}, {ffn}) must be '
                       'even (SimpleGate halves them).')
    beta = self.param('beta', nn.initializers.zeros, (c,), jnp.float32)
    gamma = self.param('gamma', nn.initializers.zeros, (c,), jnp.float32)
    x = LayerNorm2d(name='norm1')(inp)
    x = _conv1(dw, 'conv1')(x)
    x = layers.DepthwiseConv(3, name='conv2')(x)
    x = simple_gate(x)
    x = x * _conv1(dw // 2, 'sca_1')(jnp.mean(x, axis=(-3, -2),
                                              keepdims=True))
    x = _conv1(c, 'conv3')(x)
    y = inp + x * beta.astype(x.dtype)
    x = _conv1(ffn, 'conv4')(LayerNorm2d(name='norm2')(y))
    x = simple_gate(x)
    x = _conv1(c, 'conv5')(x)
    return y + x * gamma.astype(x.dtype)


def _ints(values: Sequence[int], field: str) -> tuple[int, ...]:
  try:
    out = tuple(int(v) for v in values)
  except TypeError as e:
    raise ValueError(f'NAFNet: {field} must be a sequence of ints, got '
                     f'{values!r}.') from e
  if any(v < 0 for v in out):
    raise ValueError(f'NAFNet: {field} must be non-negative, got {out}.')
  return out


class NAFNet(nn.Module):
  """NAFNet: image (..., H, W, img_channel) -> same shape (restored).

  Attributes (the official constructor's, same defaults):
    img_channel: image channels in and out (3).
    width: channels of the first level (16; released models 32 or 64);
      level k has width * 2**k.
    middle_blk_num: NAFBlocks at the lowest resolution (1).
    enc_blk_nums: NAFBlocks per encoder level (() = no down-sampling); a
      list (e.g. from a config) is stored as a tuple.
    dec_blk_nums: NAFBlocks per decoder level, deepest first; as many
      levels as enc_blk_nums.

  Call: `apply(variables, x)`, x (..., H, W, img_channel) float of any H, W
  (values in any range; the network is trained on [0, 1] images). Returns
  the same shape, unbounded (not clamped): the input plus the predicted
  residual, so the initialised network (beta = gamma = 0) is close to but
  not exactly the identity (the intro / ending convolutions still act).
  """
  img_channel: int = 3
  width: int = 16
  middle_blk_num: int = 1
  enc_blk_nums: Sequence[int] = ()
  dec_blk_nums: Sequence[int] = ()

  def __post_init__(self):
    # Tuples keep the module hashable (jit static arguments) when a config
    # gives lists.
    object.__setattr__(self, 'enc_blk_nums',
                       _ints(self.enc_blk_nums, 'enc_blk_nums'))
    object.__setattr__(self, 'dec_blk_nums',
                       _ints(self.dec_blk_nums, 'dec_blk_nums'))
    super().__post_init__()

  @nn.compact
  def __call__(self, inp: jax.Array) -> jax.Array:
    if inp.ndim < 3 or inp.shape[-1] != self.img_channel:
      raise ValueError(f'NAFNet: expected (..., H, W, {self.img_channel}) '
                       f'input, got shape {inp.shape}.')
    if len(self.enc_blk_nums) != len(self.dec_blk_nums):
      raise ValueError(f'NAFNet: enc_blk_nums {self.enc_blk_nums} and '
                       f'dec_blk_nums {self.dec_blk_nums} must have the same '
                       'length (one decoder level per encoder level).')
    *lead, h, w, _ = inp.shape
    multiple = 2**len(self.enc_blk_nums)
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
      inp = jnp.pad(inp, [(0, 0)] * len(lead) + [(0, pad_h), (0, pad_w),
                                                 (0, 0)])
    x = layers.Conv(self.width, 3, padding=1, name='intro')(inp)
    chan = self.width
    skips = []
    for i, num in enumerate(self.enc_blk_nums):
      for j in range(num):
        x = NAFBlock(name=f'encoders_{i}_{j}')(x)
      skips.append(x)
      x = layers.Conv(2 * chan, 2, strides=2, name=f'downs_{i}')(x)
      chan *= 2
    for j in range(self.middle_blk_num):
      x = NAFBlock(name=f'middle_blks_{j}')(x)
    for i, (num, skip) in enumerate(zip(self.dec_blk_nums, skips[::-1])):
      x = pixel_shuffle(_conv1(2 * chan, f'ups_{i}_0', use_bias=False)(x))
      chan //= 2
      x = x + skip
      for j in range(num):
        x = NAFBlock(name=f'decoders_{i}_{j}')(x)
    x = layers.Conv(self.img_channel, 3, padding=1, name='ending')(x)
    x = x + inp
    return x[..., :h, :w, :]
