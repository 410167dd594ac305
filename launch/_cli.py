"""What the launch scripts share: the config/workdir flags and a clean exit.

A run that stops for a reason the user must act on (a bad config value, a
checkpoint that cannot be written, no checkpoint that verifies) ends with
one error line and exit status 1, not a traceback. So does a command-line
override of a key the config does not have (`--config.train.num_stpes=5`):
ml_collections raises it as an AttributeError whose text is an escaped
repr; the config flag here reports it as a flags error in plain text
(`unknown config key config.train.num_stpes: config.train has no
'num_stpes'; did you mean config.train.num_steps?`), which absl prints
without a traceback.

Both launchers enable JAX's persistent compilation cache
(`rawjax.train.compilation_cache`), so a resumed or repeated run loads its
compiled steps instead of compiling them again: `--compilation_cache_dir`
(default `$RAWJAX_COMPILATION_CACHE`, else `~/.cache/rawjax/jax`),
`--nocompilation_cache` to turn it off, `--compilation_cache_min_compile_secs`
for the smallest compile time worth caching.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rawjax import train
from rawjax.train import checkpoint as checkpoint_lib
from rawjax.train import compilation_cache
from rawjax.train import config as config_lib
from rawjax.train import parallel


class UnknownConfigKeyError(flags.IllegalFlagValueError):
  """An override names a key the (locked) config does not have."""


def _innermost_text(error: BaseException) -> str:
  """The message inside ml_collections' AttributeError(KeyError(text))."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  text = error.args[0] if error.args and isinstance(error.args[0], str) else (
      str(error))
  return ' '.join(text.split())


def _overrides(argv: Sequence[str], name: str) -> list[str]:
  pattern = re.compile(rf'^--?(?:no)?{re.escape(name)}\.([^=]+)')
  return [m.group(1) for m in map(pattern.match, argv) if m]


def define_config_flag(name: str = 'config', *,
                       flag_values: flags.FlagValues = flags.FLAGS,
                       sys_argv: Sequence[str] | None = None
                       ) -> flags.FlagHolder:
  """`config_flags.DEFINE_config_file(name, lock_config=True)` whose unknown
  override keys fail with a plain one-line flags error.

  Args:
    name: the flag name.
    flag_values: where to define it (tests pass their own).
    sys_argv: the command line the overrides are read from (default
      sys.argv, as config_flags).

  Returns:
    The flag holder; `.value` is the locked, overridden ConfigDict.
  """
  holder = config_flags.DEFINE_config_file(
      name, None, 'Experiment config: configs/<name>.py[:variant].',
      lock_config=True, flag_values=flag_values,
      sys_argv=None if sys_argv is None else list(sys_argv))
  flag = flag_values[name]
  parse = flag._parse  # pylint: disable=protected-access

  def parse_plain(argument):
    try:
      return parse(argument)
    except (AttributeError, KeyError) as e:
      argv = sys.argv if sys_argv is None else sys_argv
      message = None
      try:
        config = flag.parser.parse(argument)  # the file, without overrides
      except Exception:  # pylint: disable=broad-except
        config = None  # the original error is reported below
      if config is not None:
        for path in _overrides(argv, name):
          message = config_lib.unknown_key_message(config, path,
                                                   prefix=name)
          if message:
            break
      raise UnknownConfigKeyError(
          message or f'--{name}: {_innermost_text(e)}') from None

  # config_flags offers no hook for its override errors; the instance's
  # parse is the one place every override of this flag goes through.
  flag._parse = parse_plain  # pylint: disable=protected-access
  return holder


class CacheFlags:
  """The compilation cache flags of a launcher (`define_flags` defines them)."""

  def __init__(self, flag_values: flags.FlagValues = flags.FLAGS):
    self.enabled = flags.DEFINE_bool(
        'compilation_cache', True,
        "JAX's persistent compilation cache: a resumed or repeated run "
        'loads its compiled steps instead of compiling them '
        '(--nocompilation_cache: off).', flag_values=flag_values)
    self.directory = flags.DEFINE_string(
        'compilation_cache_dir', None,
        f'Compilation cache folder (default: ${compilation_cache.ENV_VAR}, '
        f'else {compilation_cache.default_cache_dir()}).',
        flag_values=flag_values)
    self.min_compile_secs = flags.DEFINE_float(
        'compilation_cache_min_compile_secs',
        compilation_cache.DEFAULT_MIN_COMPILE_SECS,
        'Cache only programs that took at least this long to compile.',
        lower_bound=0.0, flag_values=flag_values)

  def apply(self):
    """Enables the cache as the flags say; returns its folder or None."""
    directory = compilation_cache.resolve_cache_dir(
        self.directory.value, enabled=self.enabled.value)
    try:
      return compilation_cache.enable_compilation_cache(
          directory, min_compile_secs=self.min_compile_secs.value)
    except ValueError as e:
      raise app.UsageError(str(e)) from None


# One launcher a process: `start` applies the flags `define_flags` defined.
_cache_flags: CacheFlags | None = None


def define_flags(*, workdir_help: str):
  """--config (locked: unknown overrides are rejected by key, in plain
  text), --workdir, the compilation cache flags and the multi-process
  flags. Returns (config holder, workdir holder, initialize function)."""
  config = define_config_flag('config')
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flags_as_required(['config', 'workdir'])
  global _cache_flags
  _cache_flags = CacheFlags()
  return config, workdir, parallel.define_distributed_flags()


@contextlib.contextmanager
def _clean_exit() -> Iterator[None]:
  try:
    yield
  except (config_lib.ConfigError,
          checkpoint_lib.CheckpointSaveError,
          checkpoint_lib.CheckpointCorruptError) as e:
    logging.error('%s', e)
    sys.exit(1)


def start(argv, initialize: Callable[[], None]) -> contextlib.AbstractContextManager:
  """Checks argv, enables the compilation cache (`define_flags`' flags),
  initialises distributed JAX and logging; returns the context that turns
  config errors and checkpoint failures into one error line and exit 1."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cache_dir = _cache_flags.apply() if _cache_flags is not None else None
  initialize()
  train.configure_logging()
  if _cache_flags is not None:
    logging.info('compilation cache: %s', cache_dir or 'off')
  return _clean_exit()
