"""Throughput of the kernel-prediction ISP: apply_kernels, forward, train step.

  * apply_kernels: `rawjax.models.kpn.apply_kernels` with 4 per-phase
    kernels per pixel (the KPN's use) on a batch of packed raw, for each
    kernel size and method ('patches', 'shift'), forward alone and forward +
    gradient with respect to the kernels (the training case);
  * forward: the whole KPN (U-Net predictor + kernel application) on packed
    images, the quick and paper widths;
  * train: one `rawjax.methods.kpn` step (L1, Adam) on a batch of 16
    packed 64 x 64 patches (the paper config's batch), pmapped over 1 and 4
    host devices.

Compile time is reported apart from run time ("compile s" = first call -
median later call). The host devices are simulated CPU devices on this
2-core machine, so more of them show the parallel step's overhead, not a
speed-up.

    python benchmarks/train_step_kpn.py [--sizes 3 5 7 9] [--repeats 5]
        [--devices 1 4] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/train_step_kpn.json).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

_timing.simulate_host_devices(4)

# pylint: disable=g-import-not-at-top,wrong-import-position
import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402

from _timing import time_call  # noqa: E402
from rawjax.models import kpn  # noqa: E402
from rawjax.methods import kpn as kpn_isp  # noqa: E402
from rawjax.train.config import load_config_module  # noqa: E402

ROOT = _timing.ROOT
BATCH, PATCH = 16, 64


def _config(variant: str):
  return load_config_module(ROOT / 'configs' / 'kpn_isp.py').get_config(
      variant)


def bench_apply(size, method, gradient, repeats):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(0, 1, (BATCH, PATCH, PATCH, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(BATCH, PATCH, PATCH, 4, size * size)),
                  jnp.float32)
  apply = functools.partial(kpn.apply_kernels, size=size, method=method)
  if gradient:
    fn = jax.jit(jax.grad(lambda k, x: jnp.sum(apply(x, k)**2)))
  else:
    fn = jax.jit(lambda k, x: apply(x, k))
  # Arguments, not closed-over constants: XLA would constant-fold them.
  return time_call(lambda: fn(k, x), repeats)


def bench_forward(variant, size, repeats):
  config = _config(variant)
  model = kpn_isp.kpn_model(config)
  params = kpn_isp.init(config, jax.random.PRNGKey(0))['params']
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (4, size, size, 4)),
                  jnp.float32)
  fn = jax.jit(model.apply)
  return time_call(lambda: fn({'params': params}, x), repeats)


def bench_train(variant, devices, repeats):
  config = _config(variant)
  config.data.patch_size = PATCH
  n = len(devices)
  rng = np.random.default_rng(0)
  batch = {'raw': rng.uniform(0, 1, (n, BATCH // n, PATCH, PATCH, 4)),
           'srgb': rng.uniform(0, 1, (n, BATCH // n, 2 * PATCH, 2 * PATCH,
                                      3))}
  batch = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), batch)
  return _timing.time_pmapped_step(
      kpn_isp.make_steps(config)[0],
      kpn_isp.init(config, jax.random.PRNGKey(0)), batch, devices, repeats)


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'train_step_kpn', repeats=5)
  parser.add_argument('--sizes', type=int, nargs='+', default=[3, 5, 7, 9])
  parser.add_argument('--devices', type=int, nargs='+', default=[1, 4])
  args = parser.parse_args(argv)
  available = jax.local_devices()
  jobs = [('apply_kernels', s, m, g) for s in args.sizes
          for m in ('patches', 'shift') for g in (False, True)]
  jobs += [('forward', v, 128, None) for v in ('quick', '')]
  jobs += [('train', v, d, None) for v in ('quick', '') for d in args.devices
           if d <= len(available)]
  rows = []
  for kind, a, b, c in tqdm.tqdm(jobs, desc='benchmarks', unit='case'):
    if kind == 'apply_kernels':
      first, run = bench_apply(a, b, c, args.repeats)
      what = f'apply_kernels {b} {"fwd+grad" if c else "fwd"}'
      row = {'kind': what, 'kernel_size': a, 'devices': 1,
             'images_per_call': BATCH, 'size': PATCH}
    elif kind == 'forward':
      first, run = bench_forward(a, b, args.repeats)
      row = {'kind': f'KPN forward ({a or "paper"})',
             'kernel_size': _config(a).model.kernel_size, 'devices': 1,
             'images_per_call': 4, 'size': b}
    else:
      first, run = bench_train(a, available[:b], args.repeats)
      row = {'kind': f'train step ({a or "paper"})',
             'kernel_size': _config(a).model.kernel_size, 'devices': b,
             'images_per_call': BATCH, 'size': PATCH}
    row.update(compile_s=max(first - run, 0.0), run_s=run,
               calls_per_s=1.0 / run,
               images_per_s=row['images_per_call'] / run)
    rows.append(row)
  print(_timing.markdown_table(
      [('what', '{kind}'), ('kernel', '{kernel_size}'),
       ('size (packed)', '{size}'), ('devices', '{devices}'),
       ('images/call', '{images_per_call}'), ('compile s', '{compile_s:.1f}'),
       ('run s', '{run_s:.4f}'), ('calls/s', '{calls_per_s:.2f}'),
       ('images/s', '{images_per_s:.1f}')], rows))
  _timing.write_json({'benchmark': 'train_step_kpn',
                      'machine': _timing.machine(), 'rows': rows}, args.json)


if __name__ == '__main__':
  main()
