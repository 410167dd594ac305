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

Start-up checks. Before anything is simulated or read, the loop runs
`check_at_start`: `validate_config`, then the check the method's config
module registered with `register_start_check` (learning rates, batches
against the devices and processes, patch sizes against the CFA and the
model, model names, data paths and their layout, step counts). The checks
are built from the declarative helpers below (`check_positive`,
`check_int`, `check_choice`, `check_even`, `check_multiple`,
`check_batch_divisible`, `check_existing_path`, `check_sections`,
`check_model`); each raises `ConfigError` (a ValueError) whose one-line
message names the key, the value and the rule, e.g.
`config.optim.learning_rate=-0.001 must be > 0.`
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import math
import numbers
import os
import pathlib
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from rawjax.train import method as method_lib

__all__ = [
    'BASE_SECTIONS', 'ConfigError', 'PARALLEL_MODES', 'base_config',
    'check_at_start', 'check_batch_divisible', 'check_choice', 'check_even',
    'check_existing_path', 'check_int', 'check_model', 'check_multiple',
    'check_non_negative', 'check_positive', 'check_sections',
    'check_simulation', 'check_warmup_cosine',
    'checkpoints_layout', 'get_value', 'load_config_module',
    'model_multiple', 'register_start_check', 'set_run_length', 'show_value',
    'unknown_key_message', 'unknown_variant', 'validate_config',
    'with_changes',
]

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


# --- the checker --------------------------------------------------------------


class ConfigError(ValueError):
  """A config value a run cannot use.

  The message is one line of plain text naming the key, the value and the
  rule, `config.<key>=<value> must be <rule>.` (the key and value as they
  are written on the command line), plus a hint on what to set. The
  launchers print it without a traceback.

  Attributes:
    key: the dotted key, e.g. 'optim.learning_rate' (None for a message
      about the config as a whole).
    value: the offending value.
    rule: what the value must be.
  """

  def __init__(self, key: str | None, value: Any = None, rule: str = '', *,
               hint: str = '', message: str | None = None):
    self.key, self.value, self.rule = key, value, rule
    if message is None:
      message = f'config.{key}={show_value(value)} must be {rule}.'
    super().__init__(f'{message} {hint}'.strip())


def show_value(value: Any) -> str:
  """`value` as it reads in a message: strings quoted but never escaped."""
  if isinstance(value, str):
    return f"'{value}'"
  if isinstance(value, (tuple, list)):
    inner = ', '.join(show_value(v) for v in value)
    return f'({inner},)' if isinstance(value, tuple) and len(value) == 1 else (
        f'({inner})' if isinstance(value, tuple) else f'[{inner}]')
  return repr(value)


_MISSING = object()


def get_value(config: Mapping[str, Any], key: str, default: Any = _MISSING
              ) -> Any:
  """`config.<key>` for a dotted key; a missing key is a `ConfigError`
  (unless `default` is given)."""
  node = config
  parts = key.split('.')
  for depth, part in enumerate(parts):
    if not isinstance(node, Mapping) and not hasattr(node, 'keys'):
      node = _MISSING
    elif part in node:
      node = node[part]
      continue
    if default is not _MISSING:
      return default
    parent = '.'.join(['config', *parts[:depth]])
    raise ConfigError(key, message=f'config has no key config.{key} '
                      f'({parent} has no {part!r}).')
  return node


def with_changes(config, changes: Mapping[str, Any]):
  """A deep copy of `config` with dotted keys set, e.g. {'model.transform':
  'global'}; a key missing from `config` is a `ConfigError` naming it."""
  new = copy.deepcopy(config)
  with new.unlocked():
    for key, value in changes.items():
      *path, last = key.split('.')
      node = get_value(new, '.'.join(path)) if path else new
      if last not in node:
        get_value(new, key)  # raises, naming the key
      node[last] = value
  return new


def _is_number(value: Any) -> bool:
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(float(value)))


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive(config: Mapping[str, Any], key: str, *,
                   hint: str = '') -> float:
  """`config.<key>` is a finite number > 0 (a learning rate, a scale)."""
  value = get_value(config, key)
  if not _is_number(value) or value <= 0:
    raise ConfigError(key, value, '> 0' if _is_number(value) else
                      'a number > 0', hint=hint)
  return value


def check_non_negative(config: Mapping[str, Any], key: str, *,
                       hint: str = '') -> float:
  """`config.<key>` is a finite number >= 0 (a loss weight, 0 = off)."""
  value = get_value(config, key)
  if not _is_number(value) or value < 0:
    raise ConfigError(key, value, '>= 0' if _is_number(value) else
                      'a number >= 0', hint=hint)
  return value


def check_int(config: Mapping[str, Any], key: str, *,
              minimum: int | None = None, hint: str = '') -> int:
  """`config.<key>` is an int (not a bool), at least `minimum` if given."""
  value = get_value(config, key)
  if not _is_int(value) or (minimum is not None and value < minimum):
    rule = 'an int' if minimum is None else f'an int >= {minimum}'
    raise ConfigError(key, value, rule, hint=hint)
  return int(value)


def check_choice(config: Mapping[str, Any], key: str, options: Sequence[Any],
                 *, hint: str = '') -> Any:
  """`config.<key>` is one of `options`; the message lists them."""
  value = get_value(config, key)
  options = tuple(options)
  try:
    known = value in options
  except TypeError:  # an unhashable value is never an option
    known = False
  if not known:
    close = difflib.get_close_matches(str(value), [str(o) for o in options],
                                      n=1) if isinstance(value, str) else []
    if close and not hint:
      hint = f"Did you mean '{close[0]}'?"
    raise ConfigError(key, value, f'one of {show_value(options)}', hint=hint)
  return value


def check_even(config: Mapping[str, Any], key: str, *,
               what: str = 'mosaic pixels: whole 2x2 CFA cells') -> int:
  """`config.<key>` is an even int >= 2 (a size counted on the mosaic)."""
  value = get_value(config, key)
  if not _is_int(value) or value < 2 or value % 2:
    raise ConfigError(key, value, f'an even int >= 2 ({what})')
  return int(value)


def check_multiple(config: Mapping[str, Any], key: str, *, of: int,
                   why: str, allow_zero: bool = False,
                   zero_means: str = 'whole images', minimum: int = 1) -> int:
  """`config.<key>` is a positive multiple of `of` (or 0 if `allow_zero`).

  Args:
    config: the config.
    key: a dotted key, e.g. 'data.patch_size'.
    of: the factor (a model's downsampling, a window).
    why: where the factor comes from, e.g. '2**config.model.levels, the
      U-Net's downsampling'.
    allow_zero: 0 is accepted too (meaning `zero_means`).
    zero_means: what 0 means, for the message.
    minimum: the smallest nonzero value accepted.
  """
  value = get_value(config, key)
  if allow_zero and _is_int(value) and value == 0:
    return 0
  if not _is_int(value) or value < max(minimum, 1) or value % of:
    rule = f'a positive multiple of {of} ({why})'
    if minimum > of:
      rule = f'a multiple of {of} >= {minimum} ({why})'
    if allow_zero:
      rule += f' or 0 ({zero_means})'
    raise ConfigError(key, value, rule)
  return int(value)


def check_batch_divisible(config: Mapping[str, Any], key: str, *,
                          devices: int | None, processes: int | None) -> int:
  """`config.<key>`, a global batch, splits evenly over devices x processes.

  `devices` is the device count of one process (the loop passes the
  devices it runs on); None skips the split (a check outside the loop).
  """
  value = check_int(config, key, minimum=1)
  if devices is None or processes is None:
    return value
  total = int(devices) * int(processes)
  if value % total:
    raise ConfigError(
        key, value,
        f'a multiple of {total} ({devices} device(s) x {processes} '
        'process(es)), as the global batch is split evenly over them',
        hint='Change the batch, or set config.parallel.num_devices.')
  return value


def _one_line(error: BaseException) -> str:
  """A (multi-line) error message as one line: its lines joined by '; '."""
  out = ''
  for line in str(error).splitlines():
    line = line.strip(' -')
    if line:
      out += (' ' if out.endswith(':') else '; ' if out else '') + line
  return out


def check_existing_path(config: Mapping[str, Any], key: str, *,
                        kind: str = 'dir', required: bool = False,
                        what: str = '',
                        layout: Callable[[pathlib.Path], Any] | None = None,
                        ) -> pathlib.Path | None:
  """`config.<key>` names an existing folder (or file), in its layout.

  Args:
    config: the config.
    key: a dotted key holding a path, e.g. 'data.root'.
    kind: 'dir' or 'file'.
    required: an empty value is an error (else it returns None: the
      caller's default applies, e.g. the simulated dataset).
    what: what the path holds, for the message (e.g. 'the ZRR dataset').
    layout: `path -> None` raising (e.g. a loader's `DatasetLayoutError`,
      `FileNotFoundError`, ValueError) when the folder does not have the
      expected layout; it must be cheap (list folders, read no samples).

  Returns:
    The expanded path, or None for an empty optional value.
  """
  value = get_value(config, key)
  noun = 'folder' if kind == 'dir' else 'file'
  described = f'{noun} ({what})' if what else noun
  if value in ('', None):
    if required:
      raise ConfigError(key, value, f'the path of an existing {described}')
    return None
  if not isinstance(value, (str, os.PathLike)):
    raise ConfigError(key, value, f'the path of an existing {described}')
  path = pathlib.Path(value).expanduser()
  exists = path.is_dir() if kind == 'dir' else path.is_file()
  if not exists:
    state = ('it does not exist' if not path.exists() else
             f'it is not a {noun}')
    raise ConfigError(key, str(value), f'an existing {described}; {state}')
  if layout is not None:
    try:
      layout(path)
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      # Loaders raise DatasetLayoutError (an Exception), FileNotFoundError or
      # ValueError; whichever it is, it is this path's layout that is wrong.
      raise ConfigError(key, str(value), f'a {noun} in the layout of '
                        f'{what or "the dataset"}',
                        hint=_one_line(e)) from e
  return path


def checkpoints_layout(path: pathlib.Path) -> None:
  """A layout check for a workdir to restore from: it has checkpoints.

  Raises:
    FileNotFoundError: no `checkpoints/<step>` folder under `path`.
  """
  directory = pathlib.Path(path) / 'checkpoints'
  steps = ([p for p in directory.iterdir() if p.name.isdigit()]
           if directory.is_dir() else [])
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {directory} (train that run '
                            'first)')


def check_sections(config: Mapping[str, Any], names: Sequence[str], *,
                   start_from: str) -> None:
  """The config has every section in `names` (else: start from a file)."""
  for name in names:
    if name not in config:
      raise ConfigError(name, message=f'config has no {name!r} section; '
                        f'start from {start_from}.')


def check_model(config: Mapping[str, Any], key: str, *,
                name: str | None = None) -> Any:
  """`config.<key>` is a model section whose `name` is registered.

  Args:
    config: the config.
    key: the model section, e.g. 'model' (its 'name' entry is the registry
      name, the rest the model's options), or a section that holds no name
      when `name` is given.
    name: the registry name, when the section holds options only.

  Returns:
    The model (a flax Module: a dataclass, no parameters are made).
  """
  from rawjax import models  # pylint: disable=g-import-not-at-top
  section = get_value(config, key)
  options = dict(section)
  model_key = f'{key}.name'
  if name is None:
    name = options.pop('name', '')
  else:
    options.pop('name', None)
  registered = models.model_names()
  if name not in registered:
    close = difflib.get_close_matches(str(name), registered, n=1)
    raise ConfigError(model_key, name, f'a registered model, one of '
                      f'{show_value(registered)}',
                      hint=f"Did you mean '{close[0]}'?" if close else '')
  try:
    return models.get_model(name, **options)
  except (TypeError, ValueError) as e:
    raise ConfigError(key, message=f'config.{key} (model {name!r}): '
                      f'{_one_line(e)}') from e


def model_multiple(model: Any) -> tuple[int, str]:
  """(factor, why): what a model's input height and width must divide by.

  U-Nets and the KPN (a U-Net predictor) pool `levels` times; LiteISPNet
  applies three DWTs; NAFNet pads its input itself. A model may also
  declare `input_multiple`.
  """
  from rawjax import models  # pylint: disable=g-import-not-at-top
  declared = getattr(model, 'input_multiple', None)
  if isinstance(declared, int):
    return declared, f'{type(model).__name__}.input_multiple'
  if isinstance(model, (models.UNet, models.KPN)):
    return 2**int(model.levels), (f"2**levels = 2**{model.levels}, the "
                                  f"{type(model).__name__}'s downsampling")
  if isinstance(model, models.LiteISPNet):
    return 8, "LiteISPNet's three DWTs"
  return 1, 'no downsampling constraint'


# A method's start-up check: `check(config, *, num_devices, num_processes)`.
StartCheck = Callable[..., None]
_START_CHECKS: dict[str, StartCheck] = {}


def register_start_check(method: str) -> Callable[[StartCheck], StartCheck]:
  """Decorator: `check(config, *, num_devices, num_processes)` is what the
  loop runs for `config.method == method` before any data work."""
  def wrap(check: StartCheck) -> StartCheck:
    _START_CHECKS[method] = check
    return check
  return wrap


def check_at_start(config: Mapping[str, Any], *, num_devices: int | None,
                   num_processes: int | None) -> None:
  """Every check a run can make before it simulates or reads anything.

  `validate_config`, then the start-up check of `config.method` (its
  package is imported, which registers it). Cheap by contract: it lists
  folders and builds model descriptions, it never reads samples.

  Args:
    config: the run's config.
    num_devices: the devices of one process the batch is split over.
    num_processes: the process count.

  Raises:
    ConfigError: the first bad value, naming the key, the value and the rule.
  """
  validate_config(config)
  method_lib.get_method(config['method'])
  check = _START_CHECKS.get(config['method'])
  if check is not None:
    check(config, num_devices=num_devices, num_processes=num_processes)


def unknown_key_message(config: Mapping[str, Any], path: str, *,
                        prefix: str = 'config') -> str | None:
  """The plain message for an override of a key `config` lacks, or None.

  `path` is the dotted key after `--config.`; the message names the key
  and the nearest existing one, e.g. `unknown config key
  config.train.num_stpes: config.train has no 'num_stpes'; did you mean
  config.train.num_steps?`.
  """
  node, parts = config, path.split('.')
  for depth, part in enumerate(parts):
    if not (isinstance(node, Mapping) or hasattr(node, 'keys')):
      return None
    if part in node:
      node = node[part]
      continue
    parent = '.'.join([prefix, *parts[:depth]])
    keys = [str(k) for k in node.keys()]
    close = difflib.get_close_matches(part, keys, n=1)
    hint = (f'did you mean {parent}.{close[0]}?' if close else
            f'it has {", ".join(sorted(keys)) or "no keys"}.')
    return (f'unknown config key {prefix}.{path}: {parent} has no '
            f'{part!r}; {hint}')
  return None


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


def validate_config(config: Mapping[str, Any]) -> None:
  """Checks what the loop needs, naming the offending key.

  Raises:
    ConfigError: (a ValueError) a base section or key is missing (the
      config was not built from `base_config`), `method` is empty, or a
      value is out of range (e.g. `parallel.mode` not in PARALLEL_MODES,
      `train.num_steps` < 1).
  """
  for top in ('method', 'seed', *BASE_SECTIONS):
    if top not in config:
      raise ConfigError(top, message=f'config has no {top!r}; build it from '
                        'rawjax.train.config.base_config().')
  for section, keys in _SCHEMA.items():
    missing = [k for k in keys if k not in config[section]]
    if missing:
      raise ConfigError(section, message=f'config.{section} lacks {missing}; '
                        'build the config from '
                        'rawjax.train.config.base_config().')
  method = config['method']
  if not isinstance(method, str) or not method:
    raise ConfigError('method', method, 'the name of a registered training '
                      'method (rawjax.train.<name>)',
                      message='config.method must name a registered training '
                      f'method (rawjax.train.<name>), got '
                      f'{show_value(method)}.')
  check_int(config, 'seed')
  check_choice(config, 'parallel.mode', PARALLEL_MODES)
  for path, minimum in (('parallel.num_devices', 0), ('train.num_steps', 1),
                        ('train.max_bad_steps', 0),
                        ('train.eval_every_steps', 0),
                        ('checkpoint.every_steps', 1),
                        ('checkpoint.max_to_keep', 1),
                        ('logging.log_every_steps', 1),
                        ('logging.images_every_steps', 0)):
    check_int(config, path, minimum=minimum)
  for path in ('train.eval_at_end', 'checkpoint.async_save',
               'logging.tensorboard', 'logging.progress_bar'):
    value = get_value(config, path)
    if not isinstance(value, bool):
      raise ConfigError(path, value, 'True or False')


def check_simulation(config: Mapping[str, Any], *,
                     scenes: bool = True) -> None:
  """With an empty `data.root` (the simulated dataset): its mosaic sides
  `data.synthetic.height/width` are even (whole CFA cells) and, with
  `scenes`, `data.synthetic.num_scenes` >= 1."""
  if config.data.root:
    return
  for key in ('data.synthetic.height', 'data.synthetic.width'):
    check_even(config, key)
  if scenes:
    check_int(config, 'data.synthetic.num_scenes', minimum=1)


def check_warmup_cosine(config: Mapping[str, Any]) -> None:
  """`optim` of `rawjax.train.steps.warmup_cosine_schedule`: learning rate
  > 0, schedule 'constant' or 'cosine', warm-up steps >= 0."""
  check_positive(config, 'optim.learning_rate')
  check_choice(config, 'optim.schedule', ('constant', 'cosine'))
  check_int(config, 'optim.warmup_steps', minimum=0)
