"""What the CSTPP method reads from its config (configs/raw2raw_cstpp.py).

The generator and discriminator of `config.model` and the Adam of
`config.optim` (the official code: betas 0.5 / 0.999, lr G 1e-5, D 2e-5).
`model.generator` picks the generator: 'cstpp' (the paper's) or 'resnet',
CycleGAN's ResNet generator (`rawjax.models.ResnetGenerator`, the plain
CycleGAN baseline of the comparison, issue 16); the data protocol keys of
`config.data` are read by `rawjax.methods.cstpp.data`.
"""

from __future__ import annotations

import json

import optax

from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.models import cstpp
from rawjax.models.resnet_generator import ResnetGenerator
from rawjax.train import config as config_lib

__all__ = ['GENERATORS', 'PATCH_GRIDS', 'PROTOCOLS', 'RESIZE_METHODS', 'adam',
           'check_adapt_start', 'check_config', 'check_start',
           'discriminator_model', 'generator_model']

_SECTIONS = ('model', 'data', 'optim', 'loss', 'eval')

# model.generator: the paper's CSTPP generator or CycleGAN's ResNet one.
GENERATORS = ('cstpp', 'resnet')
# data.protocol: 'resize_patches' (the official preprocessing: every image
# resized to data.resize_to, then a fixed grid of data.patch_size patches,
# each an item of the epoch) or 'random_crops' (one random crop per image
# and step of the full-resolution image); rawjax.methods.cstpp.data.
PROTOCOLS = ('resize_patches', 'random_crops')
RESIZE_METHODS = ('area', 'bilinear')
PATCH_GRIDS = ('cover', 'disjoint')


def check_config(config, *, num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Values this method relies on, checked with the key named.

  Cheap (no file is touched), so every entry point runs it. With
  `num_devices` and `num_processes` (the loop's), `data.batch_size` must
  split over them.

  Raises:
    ConfigError: a section is missing or a value is out of range.
  """
  config_lib.check_sections(config, _SECTIONS,
                            start_from='configs/raw2raw_cstpp.py')
  config_lib.check_choice(config, 'model.sharing', cstpp.SHARING_MODES)
  config_lib.check_choice(config, 'model.discriminator',
                          ('official', 'patchgan'))
  config_lib.check_choice(config, 'model.transform', cstpp.TRANSFORMS)
  config_lib.check_choice(config, 'optim.clip', ('per_network', 'union'))
  config_lib.check_choice(config, 'optim.flatten', (True, False))
  downsample = config_lib.check_int(config, 'model.downsample', minimum=1)
  patch = config_lib.check_multiple(
      config, 'data.patch_size', of=32 * downsample, minimum=32,
      why=f'32 * config.model.downsample, the generator\'s downsampling, '
      'and >= 32 for the discriminator; packed pixels, so whole 2x2 CFA '
      'cells')
  _check_generator(config)
  _check_protocol(config, patch)
  config_lib.check_batch_divisible(config, 'data.batch_size',
                                   devices=num_devices,
                                   processes=num_processes)
  config_lib.check_int(config, 'data.pool_size', minimum=0)
  raw2raw_eval.check_cameras(config)
  config_lib.check_simulation(config)
  for key in ('optim.generator_lr', 'optim.discriminator_lr',
              'optim.clip_norm'):
    config_lib.check_positive(config, key)
  for key in ('cycle', 'identity', 'gan'):
    config_lib.check_non_negative(config, f'loss.{key}')


def _check_generator(config) -> None:
  """model.generator and, for 'resnet', its width, blocks and sharing."""
  if config_lib.check_choice(config, 'model.generator',
                             GENERATORS) != 'resnet':
    return
  config_lib.check_int(config, 'model.resnet_features', minimum=1)
  config_lib.check_int(config, 'model.resnet_blocks', minimum=1)
  sharing = config.model.sharing
  if sharing != 'none':
    # The sharing modes name the Conformer's BatchNorm / LayerNorm / head;
    # CycleGAN's two generators are independent networks.
    raise config_lib.ConfigError(
        'model.sharing', sharing, "'none' with config.model.generator="
        "'resnet'", hint="CycleGAN's two ResNet generators share nothing: "
        'add --config.model.sharing=none.')


def _check_protocol(config, patch: int) -> None:
  """data.protocol and, for 'resize_patches', the size, method and grid."""
  if config_lib.check_choice(config, 'data.protocol',
                             PROTOCOLS) != 'resize_patches':
    return
  config_lib.check_choice(config, 'data.resize_method', RESIZE_METHODS)
  config_lib.check_choice(config, 'data.patch_grid', PATCH_GRIDS)
  size = config_lib.get_value(config, 'data.resize_to')
  size = tuple(size) if isinstance(size, (tuple, list)) else size
  if size == ():
    return  # no resize: the grid of the full-resolution image
  if (not isinstance(size, tuple) or len(size) != 2 or
      not all(isinstance(n, int) and not isinstance(n, bool) and n >= patch
              for n in size)):
    raise config_lib.ConfigError(
        'data.resize_to', size, f'(height, width) in packed pixels, each '
        f'>= config.data.patch_size={patch}, or () for no resize',
        hint="The official size is (384, 512): cv2's (512, 384) is "
        '(width, height).')


@config_lib.register_start_check('cycle_gan')
def check_start(config, *, num_devices: int | None,
                num_processes: int | None) -> None:
  """`check_config` with the loop's devices, and `data.root`'s layout."""
  check_config(config, num_devices=num_devices, num_processes=num_processes)
  raw2raw_eval.check_dataset_root(config, paired_splits=('test',))


@config_lib.register_start_check('cstpp_adapt')
def check_adapt_start(config, *, num_devices: int | None,
                      num_processes: int | None) -> None:
  """The cross-camera ISP experiment (configs/cstpp_adapt.py) at start.

  The CSTPP sections as `check_config` (they must match the CSTPP run; its
  batch is not this run's), the `adapt` section (the ISP model and its
  patch, batch, rate) and the two paths: the CSTPP workdir (with
  checkpoints) and `data.root`.
  """
  check_config(config)
  config_lib.check_sections(config, ('adapt',),
                            start_from='configs/cstpp_adapt.py')
  options = config.adapt.isp_options
  try:
    options = json.loads(options) if isinstance(options, str) else None
  except ValueError:
    options = None
  if not isinstance(options, dict):
    raise config_lib.ConfigError(
        'adapt.isp_options', config.adapt.isp_options,
        'a JSON object of the ISP model\'s options, e.g. '
        '\'{"features": 8, "levels": 2, "out_channels": 3}\'')
  network = config_lib.check_model(
      {'adapt': {'isp_options': options}}, 'adapt.isp_options',
      name=config_lib.check_choice(
          config, 'adapt.isp_model',
          _registered_models()))
  factor, why = config_lib.model_multiple(network)
  config_lib.check_multiple(
      config, 'adapt.patch_size', of=factor,
      why=f'{why}; packed pixels, so whole 2x2 CFA cells')
  config_lib.check_batch_divisible(config, 'adapt.batch_size',
                                   devices=num_devices,
                                   processes=num_processes)
  config_lib.check_positive(config, 'adapt.learning_rate')
  config_lib.check_existing_path(
      config, 'adapt.cstpp_workdir', required=True,
      what='the workdir of a CSTPP training run',
      layout=config_lib.checkpoints_layout)
  raw2raw_eval.check_dataset_root(config, paired_splits=())


def _registered_models() -> tuple[str, ...]:
  from rawjax import models  # pylint: disable=g-import-not-at-top
  return models.model_names()


def generator_model(config, *, train_axis: str | None = None,
                    downsample: int | None = None
                    ) -> cstpp.CSTPPGenerator | ResnetGenerator:
  """The generator of `config.model` (both directions use the same module).

  'cstpp': the CSTPP generator; 'resnet': CycleGAN's ResNet generator
  (`model.resnet_features` = ngf, `model.resnet_blocks`; in = out =
  `model.in_channels`, values in [0, 1], any input size by reflection
  padding). It has no BatchNorm, so `train_axis` does not apply and its
  `batch_stats` are empty.

  Args:
    config: the method's config.
    train_axis: the device axis of synchronous BatchNorm in training (None:
      per-device statistics, and at inference).
    downsample: M, overriding `config.model.downsample` (Table 4; CSTPP
      only).

  Raises:
    ValueError: `downsample` with the ResNet generator.
  """
  m = config.model
  if m.generator == 'resnet':
    if downsample not in (None, 1):
      raise ValueError(f'downsample={downsample}: the downsampling factor M '
                       "is CSTPP's; config.model.generator='resnet' has "
                       'none.')
    return ResnetGenerator(in_channels=m.in_channels,
                           out_channels=m.in_channels,
                           features=m.resnet_features,
                           num_blocks=m.resnet_blocks, value_range='unit',
                           pad_input=True)
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
  """Adam with `config.optim`'s betas and eps at a constant rate.

  With `optim.flatten` (default) its state and update are one vector per
  network (`optax.flatten`): elementwise the same arithmetic, but one set
  of ops instead of one per tensor, which is most of the G + D step's
  graph (52,602 -> 42,449 StableHLO ops, compile 108 -> 84 s under load).
  """
  o = config.optim
  tx = optax.adam(learning_rate, b1=o.b1, b2=o.b2, eps=o.eps)
  return optax.flatten(tx) if o.get('flatten', True) else tx
