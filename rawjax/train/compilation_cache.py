"""JAX's persistent compilation cache, as the launch scripts enable it.

A compiled XLA executable is written to a cache folder keyed by the lowered
program, the jax/jaxlib version, the backend and the compile options; a
later process that compiles the same program (a resumed run, a second run
of the same config, an evaluation of a trained run) loads it instead of
compiling. On the shared 2-core CPU the quick CSTPP G+D iteration
compiled in 427 s and loaded from the cache in 29 s (load average about
18; benchmarks/results/compile_time.json). Tracing and lowering the
program are not cached: they run again in every process.

Where the cache lives (the first that is set):

  1. the `--compilation_cache_dir` flag of the launchers;
  2. the environment variable `RAWJAX_COMPILATION_CACHE`;
  3. `$XDG_CACHE_HOME/rawjax/jax`, else `~/.cache/rawjax/jax`.

A per-user folder rather than one under the workdir, so that two runs of
one config in different workdirs share their executables.
`--nocompilation_cache` (or `RAWJAX_COMPILATION_CACHE=off`) disables it.

Only programs that took at least `min_compile_secs` (default 0.2 s) to
compile are written: jax's own default (1 s) would skip most evaluation
and sampling functions on a fast machine, 0 would write one file per
eager op. jax caps the folder at `max_size_bytes` (default 4 GiB), evicting
the least recently used entries.
"""

from __future__ import annotations

import os
import pathlib

import jax

__all__ = [
    'DEFAULT_MAX_SIZE_BYTES', 'DEFAULT_MIN_COMPILE_SECS', 'ENV_VAR',
    'OFF_VALUES', 'default_cache_dir', 'enable_compilation_cache',
    'resolve_cache_dir',
]

ENV_VAR = 'RAWJAX_COMPILATION_CACHE'
OFF_VALUES = ('', '0', 'off', 'none', 'false', 'no')
DEFAULT_MIN_COMPILE_SECS = 0.2
DEFAULT_MAX_SIZE_BYTES = 4 * 2**30


def default_cache_dir() -> pathlib.Path:
  """`$XDG_CACHE_HOME/rawjax/jax`, else `~/.cache/rawjax/jax`."""
  base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(base) / 'rawjax' / 'jax'


def resolve_cache_dir(flag_value: str | None = None, *,
                      enabled: bool = True) -> pathlib.Path | None:
  """The cache folder to use, or None when the cache is off.

  Args:
    flag_value: `--compilation_cache_dir` (None or '' = not given).
    enabled: False for `--nocompilation_cache`.

  Returns:
    The flag's folder, else `$RAWJAX_COMPILATION_CACHE` (None if that is
    one of `OFF_VALUES`, e.g. 'off'), else `default_cache_dir()`; None when
    not `enabled`. `~` is expanded.
  """
  if not enabled:
    return None
  if flag_value:
    return pathlib.Path(flag_value).expanduser()
  env = os.environ.get(ENV_VAR)
  if env is not None:
    if env.strip().lower() in OFF_VALUES:
      return None
    return pathlib.Path(env).expanduser()
  return default_cache_dir()


def enable_compilation_cache(
    directory: str | os.PathLike[str] | None, *,
    min_compile_secs: float = DEFAULT_MIN_COMPILE_SECS,
    max_size_bytes: int = DEFAULT_MAX_SIZE_BYTES) -> pathlib.Path | None:
  """Points jax's persistent compilation cache at `directory`.

  Call before the first compilation that should be cached (jax reads the
  settings when it first initialises the cache).

  Args:
    directory: the cache folder (created); None leaves the cache off.
    min_compile_secs: only programs that compiled at least this long are
      written (>= 0).
    max_size_bytes: the folder's size limit, least recently used entries
      evicted first (-1: no limit).

  Returns:
    The folder, or None when `directory` is None.

  Raises:
    ValueError: a negative `min_compile_secs`, or a folder that cannot be
      created or written (the message names it).
  """
  if directory is None:
    return None
  if min_compile_secs < 0:
    raise ValueError(f'compilation cache: min_compile_secs must be >= 0, got '
                     f'{min_compile_secs!r}.')
  path = pathlib.Path(directory).expanduser().resolve()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(f'compilation cache: cannot create {path} ({e}); set '
                     f'--compilation_cache_dir or ${ENV_VAR} to a writable '
                     'folder, or pass --nocompilation_cache.') from e
  if not os.access(path, os.W_OK):
    raise ValueError(f'compilation cache: {path} is not writable; set '
                     f'--compilation_cache_dir or ${ENV_VAR} to a writable '
                     'folder, or pass --nocompilation_cache.')
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    float(min_compile_secs))
  # Entries of any size: CPU executables are small, and a size floor would
  # drop the evaluation functions.
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  jax.config.update('jax_compilation_cache_max_size', int(max_size_bytes))
  return path
