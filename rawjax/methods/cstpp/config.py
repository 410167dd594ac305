"""What the CSTPP method reads from its config (configs/raw2raw_cstpp.py).

The generator and discriminator of `config.model` and the Adam of
`config.optim` (the official code: betas 0.5 / 0.999, lr G 1e-5, D 2e-5).
"""

from __future__ import annotations

import optax

from rawjax.models import cstpp
from rawjax.train.config import check_choice

__all__ = ['adam', 'check_config', 'discriminator_model', 'generator_model']


def check_config(config) -> None:
  """Values this method relies on, checked with the key named.

  Raises:
    ValueError: a section is missing or a value is out of range.
  """
  for section in ('model', 'data', 'optim', 'loss', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/raw2raw_cstpp.py.')
  m = config.model
  check_choice(m.sharing, cstpp.SHARING_MODES, 'model.sharing')
  check_choice(m.discriminator, ('official', 'patchgan'), 'model.discriminator')
  check_choice(m.transform, cstpp.TRANSFORMS, 'model.transform')
  check_choice(config.optim.clip, ('per_network', 'union'), 'optim.clip')
  data = config.data
  multiple = 32 * m.downsample
  if data.patch_size % multiple or data.patch_size < 32:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'multiple of 32 * config.model.downsample = {multiple} '
                     '(and >= 32 for the discriminator).')
  if data.batch_size < 1 or data.pool_size < 0:
    raise ValueError('config.data.batch_size must be >= 1 and '
                     'config.data.pool_size >= 0.')


def generator_model(config, *, train_axis: str | None = None,
                    downsample: int | None = None) -> cstpp.CSTPPGenerator:
  """The CSTPP generator of `config.model` (both directions share it).

  Args:
    config: the method's config.
    train_axis: the device axis of synchronous BatchNorm in training (None:
      per-device statistics, and at inference).
    downsample: M, overriding `config.model.downsample` (Table 4).
  """
  m = config.model
  return cstpp.CSTPPGenerator(
      in_channels=m.in_channels, kernel=m.kernel,
      downsample=m.downsample if downsample is None else downsample,
      base_channels=m.base_channels, channel_ratio=m.channel_ratio,
      stem_channels=m.stem_channels, embed_dim=m.embed_dim, depth=m.depth,
      num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, qkv_bias=m.qkv_bias,
      bn_axis_name=train_axis, transform=m.transform)


def discriminator_model(config):
  """D_A / D_B: 'official' (one score per image) or CycleGAN's 'patchgan'."""
  m = config.model
  cls = (cstpp.GlobalDiscriminator if m.discriminator == 'official' else
         cstpp.PatchDiscriminator)
  return cls(in_channels=m.in_channels, features=m.discriminator_features)


def adam(learning_rate: float, config) -> optax.GradientTransformation:
  """Adam with `config.optim`'s betas and eps at a constant rate."""
  o = config.optim
  return optax.adam(learning_rate, b1=o.b1, b2=o.b2, eps=o.eps)
