"""What the method reads from its config (configs/raw2raw_semi.py), checked.

The U-Net pair of `config.model`, the Adam optimiser of `config.optim`
(the paper: lr 1e-4, betas 0.9 / 0.999, constant rate) and the loss weights
of `config.loss` (eqs. 3-5; 0 switches a term off).
"""

from __future__ import annotations

import optax

from rawjax import models
from rawjax.methods.raw2raw_semi import objective
from rawjax.train.config import check_choice
from rawjax.train.steps import warmup_cosine_schedule

__all__ = ['LOSS_TERMS', 'check_config', 'loss_weights', 'model', 'optimizer']

# The config.loss weights, in the order of eq. 6.
LOSS_TERMS = ('reconstruction', 'anchor', 'mapping')


def check_config(config) -> None:
  """Values this method relies on, checked with the key named.

  Raises:
    ValueError: a section is missing or a value is out of range.
  """
  for section in ('model', 'data', 'optim', 'loss', 'inference', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/raw2raw_semi.py.')
  data = config.data
  levels = int(config.model.get('levels', 4))
  multiple = 2**levels
  if data.patch_size % multiple or data.patch_size <= 0:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'positive multiple of 2**config.model.levels = '
                     f'{multiple}.')
  for key in ('unpaired_batch', 'anchor_batch'):
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'config.data.{key} must be an int >= 1, got '
                       f'{value!r}.')
  check_choice(config.loss.reduction, objective.REDUCTIONS, 'loss.reduction')
  weights = [config.loss[k] for k in LOSS_TERMS]
  if any(w < 0 for w in weights) or not any(weights):
    raise ValueError('config.loss.{reconstruction,anchor,mapping} must be '
                     f'>= 0 and not all 0, got {weights}.')
  check_choice(config.model_init, ('independent', 'shared'), 'model_init')
  check_choice(config.eval.calibration, ('chart', 'pixels'), 'eval.calibration')
  check_choice(config.eval.delta_e, ('auto', 'metadata', 'srgb'),
               'eval.delta_e')


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
