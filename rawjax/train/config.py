"""The base config every experiment extends, and its validation.

An experiment's `configs/<name>.py` starts from `base_config()` and adds its
own sections (model, data, optimiser, loss...):

    def get_config(variant=''):
      config = base_config()
      config.method = 'raw2raw_semi'
      config.train.num_steps = 100_000
      config.model = ml_collections.ConfigDict(dict(features=32))
      ...
      return config

The four base sections (`parallel`, `train`, `checkpoint`, `logging`) are
*locked* ConfigDicts: a misspelt key in a config file
(`config.train.num_step = 5`) raises at once, naming the key and the nearest
existing one. A method that needs one more field in a base section adds it
deliberately with `with config.train.unlocked(): config.train.x = ...`; its
own sections stay open while the file builds them. The launchers load
configs with `config_flags.DEFINE_config_file(..., lock_config=True)`, which
locks everything, so a command-line override of a key that does not exist
(`--config.train.num_stpes=5`) is rejected with the key named too.
`validate_config` then checks the values the loop relies on.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import types
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

__all__ = ['BASE_SECTIONS', 'PARALLEL_MODES', 'base_config', 'check_choice',
           'load_config_module', 'set_run_length', 'unknown_variant',
           'validate_config']

PARALLEL_MODES = ('pmap', 'shard_map')

# Section -> {key: (default, meaning)}; the single place the loop's settings
# are named (docs/training.md repeats the meanings).
_SCHEMA: dict[str, dict[str, tuple[Any, str]]] = {
    'parallel': {
        'mode': ('pmap', "'pmap' (jax.pmap over local devices) or "
                 "'shard_map' (jax.shard_map on a 1-D 'batch' mesh)."),
        'num_devices': (0, 'devices used (0 = all); single-process only.'),
    },
    'train': {
        'num_steps': (1000, 'total optimisation steps (iterations).'),
        'max_bad_steps': (10, 'non-finite updates tolerated (skipped) before '
                          'training stops with an error.'),
        'eval_every_steps': (0, 'evaluate every N steps (0 = never during '
                             'training).'),
        'eval_at_end': (True, 'evaluate once training has finished.'),
    },
    'checkpoint': {
        'every_steps': (1000, 'save every N steps (and always at the end and '
                        'on SIGTERM).'),
        'max_to_keep': (3, 'checkpoints kept (older ones are deleted).'),
        'async_save': (True, 'write checkpoints in a background thread.'),
    },
    'logging': {
        'log_every_steps': (50, 'write averaged train scalars every N steps.'),
        'images_every_steps': (0, 'write sample image grids every N steps '
                               '(0 = never; needs Method.sample_images).'),
        'tensorboard': (True, 'write TensorBoard event files (tensorboardX) '
                        'besides metrics.jsonl.'),
        'progress_bar': (True, 'show a tqdm bar (process 0 only).'),
    },
}

BASE_SECTIONS = tuple(_SCHEMA)


def check_choice(value: Any, options: Sequence[Any], key: str) -> None:
  """Raises ValueError naming `config.<key>` unless `value` is an option."""
  if value not in tuple(options):
    raise ValueError(f'config.{key} must be one of {tuple(options)}, got '
                     f'{value!r}.')


def load_config_module(path: str | os.PathLike[str]) -> types.ModuleType:
  """A config file (`configs/<method>.py`) as a module, outside absl flags.

  For scripts and tests: `load_config_module(path).get_config(variant)` is
  what `--config=path:variant` gives `launch.train`.

  Raises:
    FileNotFoundError: no such file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'config file not found: {path}')
  spec = importlib.util.spec_from_file_location(f'rawjax_config_{path.stem}',
                                                path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def base_config() -> ml_collections.ConfigDict:
  """The settings the generic loop reads, with defaults.

  Top level: `method` (registry name, required), `seed` (int; the only
  source of randomness: init, data order and per-step keys derive from it).
  Sections `parallel`, `train`, `checkpoint`, `logging` (see
  `docs/training.md` for every key) are locked against new keys.
  """
  config = ml_collections.ConfigDict()
  config.method = ''
  config.seed = 0
  for section, keys in _SCHEMA.items():
    config[section] = ml_collections.ConfigDict(
        {key: default for key, (default, _) in keys.items()})
    config[section].lock()
  return config


def set_run_length(config: ml_collections.ConfigDict, *, num_steps: int,
                   checkpoint_every: int, log_every: int, images_every: int,
                   eval_every: int | None = None) -> None:
  """Sets how long a config variant trains and how often the loop reports.

  `train.num_steps`, `checkpoint.every_steps`, `logging.log_every_steps`,
  `logging.images_every_steps` (0 = no sample grids) and, when given,
  `train.eval_every_steps` (0 = evaluate at the end only).
  """
  config.train.num_steps = num_steps
  config.checkpoint.every_steps = checkpoint_every
  config.logging.log_every_steps = log_every
  config.logging.images_every_steps = images_every
  if eval_every is not None:
    config.train.eval_every_steps = eval_every


def unknown_variant(variant: str, path: str, *,
                    choices: str = "'' (paper settings) or 'quick'"
                    ) -> ValueError:
  """The error a config file's get_config raises for a variant it lacks."""
  return ValueError(f'unknown variant {variant!r} of {path}; use {choices}.')


def _require_int(config, path: str, minimum: int) -> None:
  section, key = path.split('.')
  value = config[section][key]
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ValueError(f'config.{path} must be an int >= {minimum}, got '
                     f'{value!r}.')


def validate_config(config: Mapping[str, Any]) -> None:
  """Checks what the loop needs, naming the offending key.

  Raises:
    ValueError: a base section or key is missing (the config was not built
      from `base_config`), `method` is empty, or a value is out of range
      (e.g. `parallel.mode` not in PARALLEL_MODES, `train.num_steps` < 1).
  """
  for top in ('method', 'seed', *BASE_SECTIONS):
    if top not in config:
      raise ValueError(f'config has no {top!r}; build it from '
                       'rawjax.train.config.base_config().')
  for section, keys in _SCHEMA.items():
    missing = [k for k in keys if k not in config[section]]
    if missing:
      raise ValueError(f'config.{section} lacks {missing}; build the config '
                       'from rawjax.train.config.base_config().')
  if not isinstance(config['method'], str) or not config['method']:
    raise ValueError('config.method must name a registered training method '
                     f'(rawjax.train.<name>), got {config["method"]!r}.')
  if isinstance(config['seed'], bool) or not isinstance(config['seed'], int):
    raise ValueError(f'config.seed must be an int, got {config["seed"]!r}.')
  mode = config['parallel']['mode']
  if mode not in PARALLEL_MODES:
    raise ValueError(f'config.parallel.mode must be one of {PARALLEL_MODES}, '
                     f'got {mode!r}.')
  for path, minimum in (('parallel.num_devices', 0), ('train.num_steps', 1),
                        ('train.max_bad_steps', 0),
                        ('train.eval_every_steps', 0),
                        ('checkpoint.every_steps', 1),
                        ('checkpoint.max_to_keep', 1),
                        ('logging.log_every_steps', 1),
                        ('logging.images_every_steps', 0)):
    _require_int(config, path, minimum)
  for path in ('train.eval_at_end', 'checkpoint.async_save',
               'logging.tensorboard', 'logging.progress_bar'):
    section, key = path.split('.')
    if not isinstance(config[section][key], bool):
      raise ValueError(f'config.{path} must be True or False, got '
                       f'{config[section][key]!r}.')
