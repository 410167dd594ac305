"""Evaluates a trained checkpoint into DIR/eval/ (results.json, results.md).

    python -m launch.evaluate --config=configs/<name>.py[:variant] \
        --workdir=DIR [--step=K] [--config.key=value ...]

Restores the newest checkpoint of DIR (or step K), runs the method's
evaluation, and prints the results. Same multi-process flags as
launch.train.
"""

import json

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from rawjax import train
from rawjax.train import parallel

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config: configs/<name>.py[:variant].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'The training run\'s output directory.')
_STEP = flags.DEFINE_integer('step', None,
                             'Checkpoint step to evaluate (default: newest).')
flags.mark_flags_as_required(['config', 'workdir'])
_INITIALIZE = parallel.define_distributed_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  _INITIALIZE()
  train.configure_logging()
  results = train.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value,
                                      step=_STEP.value)
  if jax.process_index() == 0:
    print(json.dumps(results, indent=2, default=str))


if __name__ == '__main__':
  app.run(main)
