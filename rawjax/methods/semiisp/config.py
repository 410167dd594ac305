"""SemiISP's config: its checks, and one phase's copy of a config.

A SemiISP config (configs/semiisp_fivek.py, configs/semiie_lol.py) holds
the settings of all three phases; `config.phase` says which one a run
trains, and `phase_config` derives the config of another phase (its step
budget, its overrides), as the comparison driver and the restores do.
"""

from __future__ import annotations

import copy
from typing import Any

from rawjax.data.simulated.semiisp import TASKS
from rawjax.methods.semiisp.objective import ISP_LOSSES, TARGET_LOSSES
from rawjax.models import pqdynamic_net
from rawjax.train.config import check_choice

__all__ = [
    'GENERATORS', 'NOISE_LEVELS', 'PHASES', 'SAMPLINGS', 'TASKS',
    'check_config', 'fine_tuning', 'phase_config', 'phase_steps',
]

PHASES = ('isp', 'semi', 'supervised')
GENERATORS = ('one_to_many', 'deterministic', 'upi')
SAMPLINGS = ('isp_unit', 'function_unit')
NOISE_LEVELS = ('semiisp', 'upi')
_SECTIONS = ('model', 'isp_model', 'data', 'isp', 'pseudo', 'semi',
             'supervised', 'eval')


def check_config(config) -> None:
  """Raises ValueError naming the key of a setting SemiISP cannot run."""
  for section in _SECTIONS:
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/semiisp_fivek.py.')
  check_choice(config.phase, PHASES, 'phase')
  check_choice(config.task, TASKS, 'task')
  check_choice(config.pseudo.generator, GENERATORS, 'pseudo.generator')
  check_choice(config.pseudo.sampling, SAMPLINGS, 'pseudo.sampling')
  check_choice(config.pseudo.noise_levels, NOISE_LEVELS,
               'pseudo.noise_levels')
  check_choice(config.pseudo.inverse_variant, pqdynamic_net.VARIANTS,
               'pseudo.inverse_variant')
  check_choice(config.isp.loss, ISP_LOSSES, 'isp.loss')
  for section in ('semi', 'supervised'):
    check_choice(config[section].loss, TARGET_LOSSES, f'{section}.loss')
  if config.task == 'enhance' and config.pseudo.generator == 'upi':
    raise ValueError("config.pseudo.generator='upi' makes raw images from "
                     "sRGB; it has no meaning for the enhancement task "
                     "(config.task='enhance').")
  batches = {'isp.batch': config.isp.batch,
             'semi.real_batch': config.semi.real_batch,
             'semi.pseudo_batch': config.semi.pseudo_batch,
             'supervised.batch': config.supervised.batch}
  for key, value in batches.items():
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'config.{key} must be an int >= 1, got {value!r}.')
  if config.isp.memory_size < config.isp.batch:
    raise ValueError(f'config.isp.memory_size={config.isp.memory_size} must '
                     f'hold at least one batch (isp.batch='
                     f'{config.isp.batch}).')
  if config.semi.beta <= 0:
    raise ValueError(f'config.semi.beta must be > 0, got {config.semi.beta}.')
  low, high = config.pseudo.shot_range
  if not 0.0 < low < high:
    raise ValueError('config.pseudo.shot_range must satisfy 0 < low < high, '
                     f'got {tuple(config.pseudo.shot_range)}.')
  if config.pseudo.shot_max < 0 or config.pseudo.read_max < 0:
    raise ValueError('config.pseudo.shot_max and read_max must be >= 0, got '
                     f'{config.pseudo.shot_max} and {config.pseudo.read_max}.')


def phase_config(config, phase: str, **changes: Any):
  """A copy of `config` set up for `phase`: its step budget and changes.

  `train.num_steps` becomes `config.<phase>.num_steps` ('isp', 'semi',
  'supervised'; fine-tuning: `supervised.finetune_steps`); keyword
  `changes` are dotted keys, e.g. `**{'supervised.init_from': path}`.
  """
  check_choice(phase, PHASES, 'phase')
  new = copy.deepcopy(config)
  with new.unlocked():
    new.phase = phase
    for key, value in changes.items():
      *path, last = key.split('.')
      node = new
      for part in path:
        node = node[part]
      node[last] = value
    new.train.num_steps = phase_steps(new)
  return new


def fine_tuning(config) -> bool:
  """Phase 3 started from phase 2's parameters (`supervised.init_from`)."""
  return config.phase == 'supervised' and bool(config.supervised.init_from)


def phase_steps(config) -> int:
  """The phase's budget; fine-tuning has its own (`finetune_steps`)."""
  if fine_tuning(config):
    return int(config.supervised.finetune_steps)
  return int(config[config.phase].num_steps)
