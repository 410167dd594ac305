"""LiteISPNet's config checks and networks (configs/liteisp_zrr.py's keys).

`check_config` runs at every entry point (init, steps, data, evaluation),
so a bad setting fails before anything is compiled, naming the key and
what to set instead.
"""

from __future__ import annotations

import pathlib

from rawjax import models
from rawjax.train.config import check_choice
from rawjax.train.steps import AXIS_NAME

__all__ = [
    'ALIGNERS', 'CONVERT_LPIPS', 'CONVERT_VGG', 'check_config',
    'discriminator', 'eval_aligner', 'gcm_model', 'isp_model',
    'lpips_weights',
]

ALIGNERS = ('pyramid', 'pwcnet', 'none')
CONVERT_VGG = ('python -m rawjax.convert vgg19 vgg19-dcbb9e9d.pth '
               'vgg19.npz  (torchvision\'s vgg19 state dict)')
CONVERT_LPIPS = ('python -m rawjax.convert lpips alexnet-owt-7be5be79.pth '
                 'lpips.npz --lpips-lin=alex.pth')
_SECTIONS = ('model', 'gcm', 'gan', 'align', 'loss', 'optim', 'data', 'eval',
             'inference')


def check_config(config, *, process_count: int = 1) -> None:
  """Raises ValueError naming the first bad key of a liteisp config.

  Besides the values (aligner names, the batch splitting over
  `process_count` processes, loss weights >= 0), the weight files the
  settings need: PWC-Net for a 'pwcnet' aligner, VGG-19 for the VGG term,
  an existing LPIPS file when one is named.
  """
  for section in _SECTIONS:
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/liteisp_zrr.py.')
  check_choice(config.align.padding, ('zeros', 'border'), 'align.padding')
  check_choice(config.align.method, ALIGNERS, 'align.method')
  check_choice(config.eval.aligner, ('', 'pyramid', 'pwcnet'), 'eval.aligner')
  if 'pwcnet' in (config.align.method, eval_aligner(config)) and not (
      config.align.weights):
    raise ValueError("the 'pwcnet' aligner needs converted PWC-Net weights: "
                     'set config.align.weights=PATH (an .npz written by '
                     'rawjax.convert, or the reference ckpt/pwc-net.pth), or '
                     "use config.align.method='pyramid'.")
  batch = config.data.batch_size
  if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
    raise ValueError(f'config.data.batch_size must be an int >= 1, got '
                     f'{batch!r}.')
  if batch % process_count:
    raise ValueError(f'config.data.batch_size={batch} does not split over '
                     f'{process_count} processes.')
  for key in ('gcm', 'l1', 'vgg', 'ssim'):
    if config.loss[key] < 0:
      raise ValueError(f'config.loss.{key} must be >= 0, got '
                       f'{config.loss[key]}.')
  if config.loss.vgg > 0 and not config.loss.vgg_weights:
    raise ValueError(
        f'config.loss.vgg={config.loss.vgg} needs VGG-19 weights: set '
        'config.loss.vgg_weights=PATH to the Flax parameters written by '
        f'`{CONVERT_VGG}`, or switch the term off with config.loss.vgg=0.')
  path = lpips_weights(config)
  if path and not pathlib.Path(path).expanduser().is_file():
    raise ValueError(
        f'config.eval.lpips_weights={path!r} does not exist: give the .npz '
        f'written by `{CONVERT_LPIPS}` (torchvision\'s alexnet and the lpips '
        "package's weights/v0.1/alex.pth), or '' to skip LPIPS.")


def lpips_weights(config) -> str:
  """`config.eval.lpips_weights` ('' when unset or in an older config)."""
  return str(config.eval.get('lpips_weights', '') or '')


def eval_aligner(config) -> str:
  """The evaluation's aligner: `eval.aligner`, else the training one.

  The no-alignment ablation ('none') is still evaluated against aligned
  targets, with the weight-free 'pyramid' flow.
  """
  name = config.eval.aligner
  if name:
    return name
  return 'pyramid' if config.align.method == 'none' else config.align.method


def isp_model(config) -> models.LiteISPNet:
  """LiteISPNet (eq. 1) from `config.model`."""
  return models.model_from_config(config.model)


def gcm_model(config) -> models.GCM:
  """The global colour mapping module (eq. 2) from `config.gcm`."""
  return models.model_from_config(config.gcm)


def discriminator(config, *, axis_name: str | None = AXIS_NAME):
  """LiteISPGAN's PatchGAN discriminator from `config.gan`.

  Its BatchNorm statistics are averaged over `axis_name` (None outside a
  mapped step, e.g. at init).
  """
  return models.liteisp.PatchDiscriminator(
      features=config.gan.features, num_layers=config.gan.num_layers,
      axis_name=axis_name)
