"""Trains a method from a config file, resuming from the workdir's checkpoints.

    python -m launch.train --config=configs/<name>.py[:variant] --workdir=DIR \
        [--config.train.num_steps=1000 ...]

Overrides of keys the config does not have are rejected (the config is
locked), naming the key. Multi-process runs (srun, mpirun, TPU slices, or
--distributed / --coordinator_address) call jax.distributed.initialize()
first; only process 0 logs and writes summaries. SIGTERM saves a checkpoint
and exits; running the same command again resumes. See docs/training.md.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from rawjax import train
from rawjax.train import parallel

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config: configs/<name>.py[:variant].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Output directory (checkpoints, logs, samples, eval); '
    'rerun with the same one to resume.')
flags.mark_flags_as_required(['config', 'workdir'])
_INITIALIZE = parallel.define_distributed_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  _INITIALIZE()
  train.configure_logging()
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
