"""SemiIE on LoL: semi-supervised low-light enhancement with SemiISP.

    python -m launch.train --config=configs/semiie_lol.py:quick,isp \
        --workdir=/tmp/e/isp
    python -m launch.train --config=configs/semiie_lol.py:quick,semi \
        --config.pseudo.isp_workdir=/tmp/e/isp --workdir=/tmp/e/semi
    python -m launch.semiisp_compare --config=configs/semiie_lol.py:quick \
        --workdir=/tmp/e --generators=one_to_many,deterministic

The same method as configs/semiisp_fivek.py with the enhancement task:
f_ISP gets the inverse tone map f_IT prepended (45 parameters), inputs are
low-light sRGB images, pseudo-pairs are (f_ISP^-1(normal-light sRGB),
sRGB). UPI has no meaning here (it makes raw images). Settings: the
"< 1000 images" rows of Tables 5 and 6 (LOL v1 has 485 training pairs).

Variant tokens (comma-separated): a phase ('isp', 'semi', 'supervised',
'finetune' = 'supervised' with the fine-tuning budget),
'deterministic' (w/o one-to-many), 'quick' (a simulated stand-in: the
'raw2srgb' scenes' sRGB renderings darkened by a random exposure in
[0.05, 0.25]; no noise). The full variant expects a prepared LoL folder in
`data.root` (`rawjax.data.datasets.lol.prepare_lol`).
"""

import pathlib

import ml_collections

from rawjax.train.config import load_config_module

_PHASES = ('isp', 'semi', 'supervised')


def _fivek_config_module():
  """configs/semiisp_fivek.py, loaded by path (configs is not a package)."""
  return load_config_module(pathlib.Path(__file__).with_name(
      'semiisp_fivek.py'))


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  tokens = {t.strip() for t in variant.split(',') if t.strip()}
  known = {'quick', 'deterministic', 'finetune', *_PHASES}
  if tokens - known:
    raise ValueError(f'unknown variant token(s) {sorted(tokens - known)} of '
                     f'configs/semiie_lol.py; use any of {sorted(known)}.')
  if len(tokens & {*_PHASES, 'finetune'}) > 1:
    raise ValueError(f'variant {variant!r} names more than one phase.')
  fivek = _fivek_config_module()
  config = fivek.base('enhance')
  config.isp.update(dict(learning_rate=2e-5, batch=4, num_steps=15_000))
  config.semi.update(dict(real_batch=4, pseudo_batch=16, beta=1.2))
  config.data.augment = ('hflip', 'vflip')   # 400 x 600 images, no transpose
  if 'quick' in tokens:
    fivek.apply_quick(config)
    config.pseudo.noise = False     # the stand-in data have no noise
    config.isp.loss = 'mse'
  if 'deterministic' in tokens:
    config.pseudo.generator = 'deterministic'
  fivek.select_phase(config, tokens)
  return config
