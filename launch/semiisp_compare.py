"""SemiISP comparison: supervised-only vs semi-supervised (+fine-tuning) vs UPI.

    python -m launch.semiisp_compare --config=configs/semiisp_fivek.py:quick \
        --workdir=/tmp/semiisp_compare [--targets=unet,pqdynamic_net] \
        [--generators=one_to_many,upi,deterministic]

Runs phase 1 (f_ISP) once, then for every target model the supervised-only
baseline and, per pseudo-data generator, phase 2 + fine-tuning with the
same total iteration budget; writes WORKDIR/results.json and results.md
(PSNR / SSIM on the held-out pairs). Rerunning resumes finished runs.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from rawjax import train
from rawjax.methods import semiisp

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'A SemiISP config: configs/semiisp_*.py[:variant].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_TARGETS = flags.DEFINE_list('targets', ['unet', 'pqdynamic_net'],
                             'Target models (config.target_models keys).')
_GENERATORS = flags.DEFINE_list(
    'generators', ['one_to_many', 'upi'],
    "Pseudo-data generators: 'one_to_many', 'deterministic', 'upi'.")
_CEILING = flags.DEFINE_bool(
    'ceiling', False, "Add the real-pairs ceiling row per target (labelled "
    "pairs + the unlabelled scenes' true raws; simulated data only).")
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  train.configure_logging()
  semiisp.compare(_CONFIG.value, _WORKDIR.value, targets=_TARGETS.value,
                  generators=_GENERATORS.value, ceiling=_CEILING.value)
  print((pathlib.Path(_WORKDIR.value) / 'results.md').read_text())


if __name__ == '__main__':
  app.run(main)
