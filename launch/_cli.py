"""What the launch scripts share: the config/workdir flags and a clean exit.

A run that stops for a reason the user must act on (a checkpoint that cannot
be written, no checkpoint that verifies) ends with one error line and exit
status 1, not a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rawjax import train
from rawjax.train import checkpoint as checkpoint_lib
from rawjax.train import parallel


def define_flags(*, workdir_help: str):
  """--config (locked: unknown overrides are rejected by key), --workdir and
  the multi-process flags. Returns (config holder, workdir holder,
  initialize function)."""
  config = config_flags.DEFINE_config_file(
      'config', None, 'Experiment config: configs/<name>.py[:variant].',
      lock_config=True)
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flags_as_required(['config', 'workdir'])
  return config, workdir, parallel.define_distributed_flags()


@contextlib.contextmanager
def _clean_exit() -> Iterator[None]:
  try:
    yield
  except (checkpoint_lib.CheckpointSaveError,
          checkpoint_lib.CheckpointCorruptError) as e:
    logging.error('%s', e)
    sys.exit(1)


def start(argv, initialize: Callable[[], None]) -> contextlib.AbstractContextManager:
  """Checks argv, initialises distributed JAX and logging; returns the
  context that turns checkpoint failures into one error line and exit 1."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  initialize()
  train.configure_logging()
  return _clean_exit()
