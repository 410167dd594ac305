r"""CSTPP against its baselines: every variant on the same data and budget.

  python -m launch.cstpp_compare --config=configs/raw2raw_cstpp.py:quick \
      --workdir=DIR --config.data.synthetic.preset=multi_illum_v2 \
      --config.train.num_steps=3000 --config.train.eval_every_steps=500

trains the patch-wise CSTPP, the uniform transform and CycleGAN's ResNet
generator (`--variants`) into DIR/<variant>, then writes DIR/results.md
(the paired references and the per-patch oracle beside them, and whether
each run converged) and DIR/curves.png. Finished runs are only re-read.
"""

import pathlib

from absl import app, flags
from ml_collections import config_flags

from rawjax import train
from rawjax.methods.cstpp import comparison

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'A cycle_gan config: configs/raw2raw_cstpp.py[:variant].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_VARIANTS = flags.DEFINE_list('variants', list(comparison.VARIANTS),
                              f'Generator variants: {list(comparison.VARIANTS)}.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  train.configure_logging()
  comparison.compare(_CONFIG.value, _WORKDIR.value, variants=_VARIANTS.value)
  print((pathlib.Path(_WORKDIR.value) / 'results.md').read_text())


if __name__ == '__main__':
  app.run(main)
