"""Trains a method from a config file, resuming from the workdir's checkpoints.

    python -m launch.train --config=configs/<name>.py[:variant] --workdir=DIR \
        [--config.train.num_steps=1000 ...]

Overrides of keys the config does not have are rejected (the config is
locked), naming the key. Multi-process runs (srun, mpirun, TPU slices, or
--distributed / --coordinator_address) call jax.distributed.initialize()
first; only process 0 logs and writes summaries. SIGTERM saves a checkpoint
and exits; running the same command again resumes. JAX's persistent
compilation cache is on (--compilation_cache_dir, default
$RAWJAX_COMPILATION_CACHE or ~/.cache/rawjax/jax; --nocompilation_cache),
so a resumed or repeated run loads its compiled steps. See
docs/training.md.
"""

from absl import app

from launch import _cli
from rawjax import train

_CONFIG, _WORKDIR, _INITIALIZE = _cli.define_flags(
    workdir_help='Output directory (checkpoints, logs, samples, eval); '
    'rerun with the same one to resume.')


def main(argv):
  with _cli.start(argv, _INITIALIZE):
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
