"""The U-Net encoder-decoder of the semi-supervised raw-to-raw paper.

Afifi & Abuolaim (BMVC 2021) use "a U-Net-like design with skip connections
from different encoder blocks to the corresponding decoder blocks", with "the
same number of channels" as Afifi's earlier work; their network code was never
released. We follow Afifi's Deep White-Balance Editing U-Net (CVPR 2020,
`deep_wb_blocks.py`), the template named in the reference spec, with packed
raw (4 channels) in and out:

    encoder                                   decoder
    block_0: conv3x3-ReLU x2          24 ---> output: [skip, x] conv3x3-ReLU x2,
    block_1: pool, conv3x3-ReLU x2    48 -.           conv1x1 -> C_out
    block_2: pool, conv3x3-ReLU x2    96 -.-> up_k: [skip, x] conv3x3-ReLU x2,
    block_3: pool, conv3x3-ReLU x2   192 -'         convT2x2 s2, ReLU
    block_4: pool, conv3x3-ReLU      384 ---> bridge: conv3x3-ReLU, convT2x2 s2

(widths for `features=24, levels=4`: `features * 2**k`). No normalisation
layers, biases everywhere, no output activation (the raw output is not
clipped in training), PyTorch default initialisation (`rawjax.models.layers`),
3x3 convolutions with padding 1. Skips are concatenated skip-first
(`torch.cat([skip, x])` as Deep-WB).

What the raw-to-raw method needs from it:
  * `encode(x)` returns the output of **every** encoder block (the anchor
    loss, eq. 4, compares all of them between the two cameras);
  * `decode(features)` takes such a list, possibly from the *other*
    camera's encoder: the decoder swap D_B(E_A(x_A)) that maps A to B.

Inputs are (..., H, W, C) with H and W multiples of 2**levels (16 by
default); other sizes raise a ValueError (pad or resize first: the method's
inference resizes, see `rawjax.methods.raw2raw_semi.inference`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax

from rawjax.models import layers

__all__ = ['UNet', 'UNetDecoder', 'UNetEncoder']


def _check_input(x: jax.Array, *, levels: int, in_channels: int | None,
                 fn: str) -> None:
  if x.ndim < 3:
    raise ValueError(f'{fn}: expected (..., H, W, C) input, got shape '
                     f'{x.shape}.')
  h, w = x.shape[-3:-1]
  multiple = 2**levels
  if h % multiple or w % multiple or h == 0 or w == 0:
    raise ValueError(f'{fn}: height and width must be positive multiples of '
                     f'2**levels = {multiple}, got {h}x{w}; pad or resize '
                     'the input.')
  if in_channels is not None and x.shape[-1] != in_channels:
    raise ValueError(f'{fn}: expected {in_channels} input channels, got '
                     f'shape {x.shape}.')


class _DoubleConv(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    for i in range(2):
      x = nn.relu(layers.Conv(self.features, 3, padding=1,
                              name=f'conv_{i}')(x))
    return x


class UNetEncoder(nn.Module):
  """Encoder: `levels` double-conv blocks and a bridge block.

  Attributes:
    features: width of the first block; block k has features * 2**k.
    levels: number of poolings (blocks = levels + 1).

  Returns from `__call__`: a list of levels + 1 arrays, block k of shape
  (..., H / 2**k, W / 2**k, features * 2**k).
  """
  features: int = 24
  levels: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    _check_input(x, levels=self.levels, in_channels=None, fn='UNetEncoder')
    outputs = []
    for k in range(self.levels):
      if k:
        x = layers.max_pool_2x2(x)
      x = _DoubleConv(self.features * 2**k, name=f'block_{k}')(x)
      outputs.append(x)
    x = layers.max_pool_2x2(x)
    bridge = layers.Conv(self.features * 2**self.levels, 3, padding=1,
                         name=f'block_{self.levels}')
    outputs.append(nn.relu(bridge(x)))
    return outputs


class UNetDecoder(nn.Module):
  """Decoder: bridge up-sampling, up blocks with skips, output head.

  Attributes:
    features, levels: as the encoder whose outputs it reads.
    out_channels: channels of the output.

  `__call__(features)` takes the encoder's list (levels + 1 arrays) and
  returns (..., H, W, out_channels), unbounded.
  """
  features: int = 24
  levels: int = 4
  out_channels: int = 4

  @nn.compact
  def __call__(self, encoded: Sequence[jax.Array]) -> jax.Array:
    if len(encoded) != self.levels + 1:
      raise ValueError(f'UNetDecoder: expected {self.levels + 1} encoder '
                       f'outputs, got {len(encoded)}.')
    for k, f in enumerate(encoded):
      want = self.features * 2**k
      if f.shape[-1] != want:
        raise ValueError(f'UNetDecoder: encoder output {k} must have {want} '
                         f'channels, got shape {f.shape}.')
    top = self.features * 2**self.levels
    x = nn.relu(layers.Conv(top, 3, padding=1, name='bridge_conv')(
        encoded[-1]))
    x = layers.ConvTranspose2x2(top // 2, name='bridge_up')(x)
    for k in range(self.levels - 1, 0, -1):
      x = jax.numpy.concatenate([encoded[k], x], axis=-1)
      x = _DoubleConv(self.features * 2**k, name=f'up_{k}')(x)
      x = nn.relu(layers.ConvTranspose2x2(self.features * 2**(k - 1),
                                          name=f'up_{k}_up')(x))
    x = jax.numpy.concatenate([encoded[0], x], axis=-1)
    x = _DoubleConv(self.features, name='output')(x)
    return layers.Conv(self.out_channels, 1, name='head')(x)


class UNet(nn.Module):
  """Encoder + decoder, with `encode` and `decode` exposed for the swap.

  Attributes:
    features: first-block width (Deep-WB: 24).
    levels: poolings (Deep-WB: 4).
    in_channels: input channels (4 for packed raw, 3 for RGB).
    out_channels: output channels.

  `__call__(x)`: (..., H, W, in_channels) -> (..., H, W, out_channels).
  `encode(x)`: the list of levels + 1 block outputs.
  `decode(features)`: a list from any encoder of the same shape -> output.
  """
  features: int = 24
  levels: int = 4
  in_channels: int = 4
  out_channels: int = 4

  def setup(self):
    self.encoder = UNetEncoder(self.features, self.levels)
    self.decoder = UNetDecoder(self.features, self.levels, self.out_channels)

  def encode(self, x: jax.Array) -> list[jax.Array]:
    _check_input(x, levels=self.levels, in_channels=self.in_channels,
                 fn='UNet.encode')
    return self.encoder(x)

  def decode(self, encoded: Sequence[jax.Array]) -> jax.Array:
    return self.decoder(encoded)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decode(self.encode(x))

  @classmethod
  def from_params(cls, params: Mapping[str, Any]) -> 'UNet':
    """The module whose `init` made `params` (its widths read off shapes).

    Lets a step function that only holds a parameter tree (the generic
    training loop passes no config to steps) rebuild the module.
    """
    try:
      encoder, decoder = params['encoder'], params['decoder']
      first = encoder['block_0']['conv_0']['kernel']
      levels = sum(1 for k in encoder if k.startswith('block_')) - 1
      out_channels = decoder['head']['kernel'].shape[-1]
    except (KeyError, TypeError) as e:
      raise ValueError(f'UNet.from_params: not a UNet parameter tree '
                       f'(missing {e}).') from e
    return cls(features=int(first.shape[3]), levels=int(levels),
               in_channels=int(first.shape[2]),
               out_channels=int(out_channels))
