"""Evaluates a trained checkpoint into DIR/eval/ (results.json, results.md).

    python -m launch.evaluate --config=configs/<name>.py[:variant] \
        --workdir=DIR [--step=K] [--config.key=value ...]

Restores the newest checkpoint of DIR (or step K), runs the method's
evaluation, and prints the results. Same multi-process and compilation
cache flags as launch.train.
"""

import json

from absl import app
from absl import flags
import jax

from launch import _cli
from rawjax import train

_CONFIG, _WORKDIR, _INITIALIZE = _cli.define_flags(
    workdir_help="The training run's output directory.")
_STEP = flags.DEFINE_integer('step', None,
                             'Checkpoint step to evaluate (default: newest).')


def main(argv):
  with _cli.start(argv, _INITIALIZE):
    results = train.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value,
                                        step=_STEP.value)
  if jax.process_index() == 0:
    print(json.dumps(results, indent=2, default=str))


if __name__ == '__main__':
  app.run(main)
