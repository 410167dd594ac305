"""What the method reads from its config (configs/raw2raw_semi.py), checked.

The U-Net pair of `config.model`, the Adam optimiser of `config.optim`
(the paper: lr 1e-4, betas 0.9 / 0.999, constant rate) and the loss weights
of `config.loss` (eqs. 3-5; 0 switches a term off).
"""

from __future__ import annotations

import optax

from rawjax import models
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.methods.raw2raw_semi import objective
from rawjax.train import config as config_lib
from rawjax.train.steps import warmup_cosine_schedule

__all__ = ['LOSS_TERMS', 'check_config', 'check_start', 'loss_weights',
           'model', 'optimizer']

# The config.loss weights, in the order of eq. 6.
LOSS_TERMS = ('reconstruction', 'anchor', 'mapping')
_START_FROM = 'configs/raw2raw_semi.py'
_SECTIONS = ('model', 'data', 'optim', 'loss', 'inference', 'eval')


def check_config(config, *, num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Values this method relies on, checked with the key named.

  Cheap (no file is touched), so every entry point runs it. With
  `num_devices` and `num_processes` (the loop's), the global batches must
  split over them.

  Raises:
    ConfigError: a section is missing or a value is out of range.
  """
  config_lib.check_sections(config, _SECTIONS, start_from=_START_FROM)
  network = config_lib.check_model(config, 'model')
  factor, why = config_lib.model_multiple(network)
  config_lib.check_multiple(
      config, 'data.patch_size', of=factor,
      why=f'{why}; packed pixels, so whole 2x2 CFA cells')
  for key in ('data.unpaired_batch', 'data.anchor_batch'):
    config_lib.check_batch_divisible(config, key, devices=num_devices,
                                     processes=num_processes)
  config_lib.check_int(config, 'data.num_anchors', minimum=0)
  raw2raw_eval.check_cameras(config)
  config_lib.check_simulation(config)
  config_lib.check_warmup_cosine(config)
  config_lib.check_choice(config, 'loss.reduction', objective.REDUCTIONS)
  for key in LOSS_TERMS:
    config_lib.check_non_negative(config, f'loss.{key}')
  weights = [config.loss[k] for k in LOSS_TERMS]
  if not any(weights):
    raise config_lib.ConfigError(
        'loss', message='config.loss.{reconstruction,anchor,mapping} must '
        f'be >= 0 and not all 0, got {weights}.')
  config_lib.check_choice(config, 'model_init', ('independent', 'shared'))
  config_lib.check_choice(config, 'eval.calibration', ('chart', 'pixels'))
  raw2raw_eval.check_delta_e(config)


@config_lib.register_start_check('raw2raw_semi')
def check_start(config, *, num_devices: int | None,
                num_processes: int | None) -> None:
  """`check_config` with the loop's devices, and `data.root`'s layout."""
  check_config(config, num_devices=num_devices, num_processes=num_processes)
  raw2raw_eval.check_dataset_root(config)


def loss_weights(config) -> dict[str, float]:
  """{'reconstruction', 'anchor', 'mapping'}: the weights of eq. 6."""
  return {k: float(config.loss[k]) for k in LOSS_TERMS}


def model(config) -> models.UNet:
  """The encoder-decoder both cameras use (`config.model`, e.g. 'unet')."""
  network = models.model_from_config(config.model)
  if not (hasattr(network, 'encode') and hasattr(network, 'decode')):
    raise ValueError(f'config.model.name={config.model.name!r}: the raw2raw '
                     'method needs an encoder-decoder with encode/decode '
                     "methods (e.g. 'unet').")
  return network


def optimizer(config) -> optax.GradientTransformation:
  """Adam over both networks, at `config.optim`'s rate schedule.

  `optim.schedule`: 'constant' (the paper) or 'cosine' (linear warm-up over
  `optim.warmup_steps`, cosine decay to `learning_rate *
  optim.final_fraction` at `train.num_steps`; the quick variant).
  """
  o = config.optim
  schedule = warmup_cosine_schedule(
      learning_rate=o.learning_rate, schedule=o.schedule,
      num_steps=config.train.num_steps, warmup_steps=o.warmup_steps,
      final_fraction=o.final_fraction)
  return optax.adam(learning_rate=schedule, b1=o.b1, b2=o.b2, eps=o.eps)
