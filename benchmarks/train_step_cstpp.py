"""Throughput of the CSTPP CycleGAN: generator forward and the G+D step.

  * forward: one CSTPP generator (eval mode) on a batch of packed images,
    jitted, at the given sizes and downsampling factors M;
  * train: one loop iteration (`generator_step` then `discriminator_step`
    of `rawjax.methods.cstpp`, both generators and discriminators, Adam,
    history pools) on the paper's batch of 4 patches, pmapped over one
    device (the loop's own compiled iteration, `make_iteration`).

Compile time is reported apart from run time ("compile s" = first call -
median later call). Variants: 'paper' (the official 5.67 M-parameter
generator) and 'quick' (the quick config's small backbone).

    python benchmarks/train_step_cstpp.py [--variants paper quick]
        [--sizes 128 256] [--downsample 1 4] [--repeats 3] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/train_step_cstpp.json).
"""

from __future__ import annotations

import pathlib
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'benchmarks'))
import _timing  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from _timing import time_call  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

from rawjax.methods import cstpp  # noqa: E402  pylint: disable=wrong-import-position
from rawjax.train import loop  # noqa: E402  pylint: disable=wrong-import-position
from rawjax.train.config import load_config_module  # noqa: E402  pylint: disable=wrong-import-position


def _config(variant: str, patch: int):
  config = load_config_module(ROOT / 'configs' / 'raw2raw_cstpp.py').get_config(
      '' if variant == 'paper' else variant)
  config.data.patch_size = patch
  return config


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'train_step_cstpp', repeats=3)
  parser.add_argument('--variants', nargs='+', default=['paper', 'quick'])
  parser.add_argument('--sizes', nargs='+', type=int, default=[128, 256])
  parser.add_argument('--downsample', nargs='+', type=int, default=[1, 4])
  parser.add_argument('--skip_train', action='store_true')
  args = parser.parse_args(argv)
  rows = []
  jobs = [(v, s) for v in args.variants for s in args.sizes]
  for variant, size in tqdm.tqdm(jobs, desc='cstpp benchmark'):
    config = _config(variant, size)
    state = cstpp.init(config, jax.random.PRNGKey(0))
    generator_params = _count(cstpp.direction_variables(
        state, 'a_to_b')[0])
    images = jnp.asarray(np.random.default_rng(0).uniform(
        size=(4, size, size, 4)).astype(np.float32))
    params, stats = cstpp.direction_variables(state, 'a_to_b')
    for m in args.downsample:
      if size % (32 * m):
        continue
      model = cstpp.generator_model(config, downsample=m)
      fn = jax.jit(lambda p, s, x, model=model: model.apply(
          {'params': p, 'batch_stats': s}, x))
      first, run = time_call(lambda: fn(params, stats, images), args.repeats)
      rows.append(dict(variant=variant, kind='forward', size=size,
                       downsample=m, batch=4, params=generator_params,
                       compile_s=first - run, run_s=run,
                       mpix_per_s=4 * size * size / run / 1e6))
    if args.skip_train:
      continue
    iteration = jax.pmap(loop.make_iteration(cstpp.make_steps(config)),
                         axis_name='batch', devices=jax.local_devices()[:1])
    device_state = jax.tree.map(lambda x: jnp.asarray(x)[None], state)
    batch = {k: np.asarray(images)[None] for k in ('a', 'b')}
    holder = {'state': device_state}

    def step():
      holder['state'], metrics, _ = iteration(holder['state'], batch)
      return metrics
    first, run = time_call(step, args.repeats)
    rows.append(dict(variant=variant, kind='train G+D', size=size,
                     downsample=config.model.downsample, batch=4,
                     params=generator_params, compile_s=first - run,
                     run_s=run, mpix_per_s=4 * size * size / run / 1e6))
  print(_timing.markdown_table(
      [('variant', '{variant}'), ('what', '{kind}'), ('patch', '{size}'),
       ('M', '{downsample}'), ('batch', '{batch}'),
       ('generator params', '{params:,}'), ('compile s', '{compile_s:.1f}'),
       ('run s', '{run_s:.3f}'), ('Mpix/s', '{mpix_per_s:.3f}')], rows))
  payload = dict(rows=rows, backend=jax.default_backend(),
                 devices=jax.device_count(), machine=platform.machine(),
                 processor=platform.processor(), jax=jax.__version__)
  _timing.write_json(payload, args.json)
  return payload


if __name__ == '__main__':
  main()
