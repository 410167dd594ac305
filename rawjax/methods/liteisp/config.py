"""LiteISPNet's config checks and networks (configs/liteisp_zrr.py's keys).

`check_config` runs at every entry point (init, steps, data, evaluation),
so a bad setting fails before anything is compiled, naming the key and
what to set instead; `check_start` (registered with `rawjax.train.config`)
adds the loop's devices, the weight files and `data.root`'s layout, before
any data is simulated or read.
"""

from __future__ import annotations

import pathlib

from rawjax import models
from rawjax.train import config as config_lib
from rawjax.train.steps import AXIS_NAME

__all__ = [
    'ALIGNERS', 'CONVERT_LPIPS', 'CONVERT_VGG', 'check_config',
    'check_start', 'discriminator', 'eval_aligner', 'gcm_model', 'isp_model',
    'lpips_weights',
]

ALIGNERS = ('pyramid', 'pwcnet', 'none')
CONVERT_VGG = ('python -m rawjax.convert vgg19 vgg19-dcbb9e9d.pth '
               'vgg19.npz  (torchvision\'s vgg19 state dict)')
CONVERT_LPIPS = ('python -m rawjax.convert lpips alexnet-owt-7be5be79.pth '
                 'lpips.npz --lpips-lin=alex.pth')
_SECTIONS = ('model', 'gcm', 'gan', 'align', 'loss', 'optim', 'data', 'eval',
             'inference')


def check_config(config, *, process_count: int = 1,
                 num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Raises ConfigError naming the first bad key of a liteisp config.

  Besides the values (model names, aligner names, the patch against
  LiteISPNet's factor 8, the batch splitting over `num_devices` x
  `num_processes` when given, else over `process_count` processes,
  learning rate and schedule, loss weights >= 0), the weight files the
  settings need: PWC-Net for a 'pwcnet' aligner, VGG-19 for the VGG term,
  an existing LPIPS file when one is named.
  """
  config_lib.check_sections(config, _SECTIONS,
                            start_from='configs/liteisp_zrr.py')
  network = config_lib.check_model(config, 'model')
  if not isinstance(network, models.LiteISPNet):
    raise config_lib.ConfigError('model.name', config.model.name,
                                 "'liteisp' (the method trains LiteISPNet)")
  config_lib.check_model(config, 'gcm')
  config_lib.check_choice(config, 'align.padding', ('zeros', 'border'))
  config_lib.check_choice(config, 'align.method', ALIGNERS)
  config_lib.check_choice(config, 'eval.aligner', ('', 'pyramid', 'pwcnet'))
  if 'pwcnet' in (config.align.method, eval_aligner(config)) and not (
      config.align.weights):
    raise config_lib.ConfigError(
        'align.weights', message="the 'pwcnet' aligner needs converted "
        'PWC-Net weights: set config.align.weights=PATH (an .npz written by '
        'rawjax.convert, or the reference ckpt/pwc-net.pth), or '
        "use config.align.method='pyramid'.")
  factor, why = config_lib.model_multiple(network)
  config_lib.check_multiple(
      config, 'data.patch_size', of=factor, allow_zero=True,
      zero_means='whole samples',
      why=f'{why}; packed pixels, so whole 2x2 CFA cells')
  if not config.data.root:  # the simulation's mosaics
    config_lib.check_int(config, 'data.synthetic.num_train', minimum=1)
    config_lib.check_int(config, 'data.synthetic.num_test', minimum=1)
    if config.data.patch_size:
      config_lib.check_even(config, 'data.synthetic.size')
    else:  # whole samples: the mosaic is 2x the packed input
      config_lib.check_multiple(
          config, 'data.synthetic.size', of=2 * factor,
          why=f'mosaic pixels: 2 x {factor}, {why}, as '
          'config.data.patch_size=0 trains on whole samples')
  if num_devices is None:
    num_devices, num_processes = 1, process_count
  config_lib.check_batch_divisible(config, 'data.batch_size',
                                   devices=num_devices,
                                   processes=num_processes)
  config_lib.check_int(config, 'data.steps_per_epoch', minimum=0)
  config_lib.check_positive(config, 'optim.learning_rate')
  config_lib.check_positive(config, 'optim.decay_factor')
  config_lib.check_int(config, 'optim.decay_epochs', minimum=1)
  config_lib.check_int(config, 'optim.epochs', minimum=1)
  for key in ('gcm', 'l1', 'vgg', 'ssim'):
    config_lib.check_non_negative(config, f'loss.{key}')
  config_lib.check_non_negative(config, 'gan.weight')
  if config.loss.vgg > 0 and not config.loss.vgg_weights:
    raise config_lib.ConfigError(
        'loss.vgg_weights', message=f'config.loss.vgg={config.loss.vgg} '
        'needs VGG-19 weights: set config.loss.vgg_weights=PATH to the Flax '
        f'parameters written by `{CONVERT_VGG}`, or switch the term off '
        'with config.loss.vgg=0.')
  path = lpips_weights(config)
  if path and not pathlib.Path(path).expanduser().is_file():
    raise config_lib.ConfigError(
        'eval.lpips_weights', message=f"config.eval.lpips_weights='{path}' "
        f'does not exist: give the .npz written by `{CONVERT_LPIPS}` '
        "(torchvision's alexnet and the lpips package's "
        "weights/v0.1/alex.pth), or '' to skip LPIPS.")


@config_lib.register_start_check('liteisp')
def check_start(config, *, num_devices: int | None,
                num_processes: int | None) -> None:
  """`check_config` with the loop's devices, the weight files and
  `data.root`'s ZRR layout (train and evaluation splits)."""
  from rawjax.data.datasets import zrr  # pylint: disable=g-import-not-at-top
  check_config(config, num_devices=num_devices, num_processes=num_processes)
  if 'pwcnet' in (config.align.method, eval_aligner(config)):
    config_lib.check_existing_path(config, 'align.weights', kind='file',
                                   what='PWC-Net weights')
  if config.loss.vgg > 0:
    config_lib.check_existing_path(config, 'loss.vgg_weights', kind='file',
                                   what='VGG-19 weights')

  def layout(root):
    for split in dict.fromkeys(('train', config.eval.split)):
      zrr.ZRRDataset(root, split=split)

  config_lib.check_existing_path(config, 'data.root', layout=layout,
                                 what='the ZRR dataset')


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
