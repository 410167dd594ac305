"""The kernel-prediction ISP's config checks and network (configs/kpn_isp.py).

`check_config` runs at every entry point, so a bad setting fails before
anything is compiled, naming the key.
"""

from __future__ import annotations

from rawjax import models

__all__ = ['check_config', 'kpn_model']

_SECTIONS = ('model', 'data', 'optim', 'loss', 'eval')


def check_config(config, *, process_count: int = 1) -> None:
  """Raises ValueError naming the first bad key of a kpn_isp config.

  Checks the sections, the patch size (a multiple of the U-Net's
  2**levels, and SSIM's 11-pixel window when weighted), the batch (an int
  that splits over `process_count` processes) and the loss weights (>= 0,
  not both 0).
  """
  for section in _SECTIONS:
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/kpn_isp.py.')
  data = config.data
  # The U-Net predictor halves the packed patch `levels` times.
  multiple = 2**int(config.model.get('levels', 3))
  if data.patch_size % multiple or data.patch_size <= 0:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'positive multiple of 2**config.model.levels = '
                     f'{multiple} (packed pixels).')
  if (isinstance(data.batch_size, bool) or not isinstance(data.batch_size, int)
      or data.batch_size < 1):
    raise ValueError(f'config.data.batch_size must be an int >= 1, got '
                     f'{data.batch_size!r}.')
  if data.batch_size % process_count:
    raise ValueError(f'config.data.batch_size={data.batch_size} does not '
                     f'split over {process_count} processes.')
  for key in ('l1', 'ssim'):
    if config.loss[key] < 0:
      raise ValueError(f'config.loss.{key} must be >= 0, got '
                       f'{config.loss[key]!r}.')
  if not (config.loss.l1 or config.loss.ssim):
    raise ValueError('config.loss.l1 and config.loss.ssim are both 0: '
                     'nothing to train.')
  if config.loss.ssim and 2 * data.patch_size < 11:
    raise ValueError(f'config.loss.ssim needs sRGB patches of at least 11 '
                     f'pixels (the SSIM window); config.data.patch_size='
                     f'{data.patch_size} gives {2 * data.patch_size}.')


def kpn_model(config) -> models.KPN:
  """The KPN (eqs. 1-2) of `config.model`; another model is an error."""
  model = models.model_from_config(config.model)
  if not isinstance(model, models.KPN):
    raise ValueError(f'config.model.name={config.model.name!r}: kpn_isp '
                     "trains the kernel-prediction ISP ('kpn').")
  return model
