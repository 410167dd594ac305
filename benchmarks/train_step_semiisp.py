"""Throughput of SemiISP's steps and pseudo-pair generation (quick config).

  * step/<phase>: one `rawjax.methods.semiisp` step on one device with the
    quick settings (phase 1 f_ISP with both variants; phase 2 with
    one-to-many (USQ off, as quick) + eq. 15 noise, and with UPI
    pseudo-data; supervised), target U-Net (features 12, levels 3), 32 x 32 crops;
  * pseudo/<generator>: `generate_pseudo_pairs` alone on 10 images of
    64 x 64.
Phase 2 needs phase 1's memory: a phase-1 state with random memorised
sets is checkpointed into a temporary directory first.

    python benchmarks/train_step_semiisp.py [--repeats 5] [--json PATH]

Prints a markdown table (compile time apart: first call - median later
call) and writes JSON (default benchmarks/results/train_step_semiisp.json).
"""

from __future__ import annotations

# pylint: disable=g-import-not-at-top,wrong-import-position
import pathlib
import platform
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.methods import semiisp
from rawjax.train import loop, parallel as parallel_lib
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer
from rawjax.train.config import load_config_module
import _timing  # benchmarks/_timing.py
from _timing import time_call

_ROOT = _timing.ROOT


def _config(variant: str):
  config = load_config_module(
      _ROOT / 'configs' / 'semiisp_fivek.py').get_config(variant)
  with config.unlocked():
    config.parallel.num_devices = 1
  return config


def _phase1_checkpoint(directory: pathlib.Path) -> None:
  config = _config('quick,isp')
  state = state_lib.to_host(semiisp.init(config, jax.random.PRNGKey(0)))
  rng = np.random.default_rng(0)
  for variant in ('global', 'local'):
    shape = state['memory'][variant].shape
    state['memory'][variant] = rng.normal(0, 0.5, shape).astype(np.float32)
  state['memory']['count'] = np.asarray(shape[0], np.int32)
  with Checkpointer(directory / 'checkpoints', async_save=False) as ckpt:
    ckpt.save(1, state)


def _step_timing(config, repeats: int) -> tuple[float, float]:
  par = parallel_lib.Parallel('pmap', devices=jax.local_devices()[:1])
  state = par.replicate(state_lib.to_host(semiisp.init(
      config, jax.random.PRNGKey(1))))
  batch = par.shard_batch(semiisp.make_data(config).batch(0))
  iteration = par.compile(loop.make_iteration(semiisp.make_steps(config)),
                          donate_state=False)
  return time_call(lambda: iteration(state, batch)[1]['loss'], repeats)


def main() -> dict:
  args = _timing.argument_parser(__doc__, 'train_step_semiisp',
                                 repeats=5).parse_args()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    isp_dir = pathlib.Path(tmp)
    _phase1_checkpoint(isp_dir)
    runs = {
        'step/isp': _config('quick,isp'),
        'step/semi one_to_many': _config('quick,semi'),
        'step/semi upi': _config('quick,upi,semi'),
        'step/supervised': _config('quick,supervised'),
    }
    for name, config in runs.items():
      with config.unlocked():
        config.pseudo.isp_workdir = str(isp_dir)
      first, median = _step_timing(config, args.repeats)
      rows.append(dict(name=name, compile_s=first - median, run_s=median))
      print(rows[-1])
    config = _config('quick,semi')
    with config.unlocked():
      config.pseudo.isp_workdir = str(isp_dir)
    isp = semiisp.restore_phase(config, 'isp', isp_dir)
    isp = {'params': isp['params'], 'memory': isp['memory']}
    srgb = jnp.asarray(np.random.default_rng(1).uniform(
        size=(10, 64, 64, 3)), jnp.float32)
    for generator in ('one_to_many', 'upi'):
      with config.unlocked():
        config.pseudo.generator = generator
      luts = semiisp.inverse_luts(config) if generator != 'upi' else None
      generate = jax.jit(lambda x, k, c=config, l=luts: (
          semiisp.generate_pseudo_pairs(c, isp, x, k, luts=l)))
      first, median = time_call(
          lambda g=generate: g(srgb, jax.random.PRNGKey(0)), args.repeats)
      rows.append(dict(name=f'pseudo/{generator}', compile_s=first - median,
                       run_s=median))
      print(rows[-1])
  print('\n' + _timing.markdown_table(
      [('what', '{name}'), ('compile s', '{compile_s:.2f}'),
       ('run s', '{run_s:.4f}')], rows))
  result = {'platform': platform.platform(), 'jax': jax.__version__,
            'devices': 1, 'rows': rows}
  _timing.write_json(result, args.json)
  return result


if __name__ == '__main__':
  main()
