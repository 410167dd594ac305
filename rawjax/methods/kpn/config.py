"""The kernel-prediction ISP's config checks and network (configs/kpn_isp.py).

`check_config` runs at every entry point, so a bad setting fails before
anything is compiled, naming the key; `check_start` (registered with
`rawjax.train.config`) adds the loop's devices and `data.root`'s layout,
before any data is simulated or read.
"""

from __future__ import annotations

from rawjax import models
from rawjax.train import config as config_lib

__all__ = ['check_config', 'check_start', 'kpn_model']

_SECTIONS = ('model', 'data', 'optim', 'loss', 'eval')


def check_config(config, *, process_count: int = 1,
                 num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Raises ConfigError naming the first bad key of a kpn_isp config.

  Checks the sections, the model (the registered 'kpn'), the patch size (a
  multiple of the U-Net's 2**levels, and SSIM's 11-pixel window when
  weighted), the batch (an int that splits over `num_devices` x
  `num_processes` when given, else over `process_count` processes), the
  learning rate, the schedule and the loss weights (>= 0, not both 0).
  Cheap (no file is touched), so every entry point runs it.
  """
  config_lib.check_sections(config, _SECTIONS, start_from='configs/kpn_isp.py')
  network = config_lib.check_model(config, 'model')
  if not isinstance(network, models.KPN):
    raise config_lib.ConfigError(
        'model.name', message=f'config.model.name={config.model.name!r}: '
        "kpn_isp trains the kernel-prediction ISP ('kpn').")
  factor, why = config_lib.model_multiple(network)
  patch = config_lib.check_multiple(
      config, 'data.patch_size', of=factor,
      why=f'{why}; packed pixels, so whole 2x2 CFA cells')
  if num_devices is None:
    num_devices, num_processes = 1, process_count
  config_lib.check_batch_divisible(config, 'data.batch_size',
                                   devices=num_devices,
                                   processes=num_processes)
  config_lib.check_simulation(config)
  if not config.data.root and config.data.alignment.simulate:
    _check_alignment(config, patch)
  config_lib.check_warmup_cosine(config)
  for key in ('l1', 'ssim'):
    config_lib.check_non_negative(config, f'loss.{key}')
  if not (config.loss.l1 or config.loss.ssim):
    raise config_lib.ConfigError(
        'loss', message='config.loss.l1 and config.loss.ssim are both 0: '
        'nothing to train.')
  if config.loss.ssim and 2 * patch < 11:
    raise config_lib.ConfigError(
        'data.patch_size', patch, 'at least 6 when config.loss.ssim > 0 '
        '(sRGB patches of 2 x patch_size pixels must hold the 11-pixel SSIM '
        'window)')


def _check_alignment(config, patch: int) -> None:
  """`data.alignment` of the simulated alignment (`rawjax.align` keys)."""
  size = config_lib.check_multiple(
      config, 'data.alignment.patch_size', of=2, minimum=16,
      why='sRGB pixels over whole 2x2 CFA cells')
  if 2 * patch > size:
    raise config_lib.ConfigError(
        'data.patch_size', patch, f'at most data.alignment.patch_size / 2 = '
        f'{size // 2} (the aligned pairs are {size} x {size} sRGB pixels)')
  config_lib.check_positive(config, 'data.alignment.max_flow')
  config_lib.check_positive(config, 'data.alignment.flow_regularization')
  method = config_lib.check_choice(config, 'data.alignment.flow_method',
                                   ('pyramid', 'pwcnet'))
  config_lib.check_int(config, 'data.alignment.min_keypoints', minimum=0)
  config_lib.check_int(config, 'data.alignment.num_rotations', minimum=0)
  config_lib.check_non_negative(config, 'data.alignment.rotation_shift')
  if method == 'pwcnet':
    config_lib.check_existing_path(
        config, 'data.alignment.pwcnet_weights', kind='file', required=True,
        what="PWC-Net weights for flow_method='pwcnet' (python -m "
        'rawjax.convert pwcnet network-default.pytorch pwcnet.npz)')
  elif config.data.alignment.pwcnet_weights:
    raise config_lib.ConfigError(
        'data.alignment.pwcnet_weights', config.data.alignment.pwcnet_weights,
        "empty with flow_method='pyramid' (weights are read by 'pwcnet' "
        'only)')


@config_lib.register_start_check('kpn_isp')
def check_start(config, *, num_devices: int | None,
                num_processes: int | None) -> None:
  """`check_config` with the loop's devices, and `data.root`'s layout."""
  from rawjax.data.datasets.kpn_pairs import PairFolder  # pylint: disable=g-import-not-at-top
  check_config(config, num_devices=num_devices, num_processes=num_processes)

  def layout(root):
    for split in dict.fromkeys(('train', config.eval.split)):
      PairFolder(root, split=split)

  config_lib.check_existing_path(
      config, 'data.root', layout=layout,
      what='aligned pairs: train/ and test/ folders of .npz')


def kpn_model(config) -> models.KPN:
  """The KPN (eqs. 1-2) of `config.model`; another model is an error."""
  model = models.model_from_config(config.model)
  if not isinstance(model, models.KPN):
    raise ValueError(f'config.model.name={config.model.name!r}: kpn_isp '
                     "trains the kernel-prediction ISP ('kpn').")
  return model
