"""Throughput of the semi-supervised raw-to-raw U-Net: train step, inference.

  * train: one `rawjax.methods.raw2raw_semi` step (two U-Nets; reconstruction,
    anchor and mapping losses; Adam) on the paper's batch of 16 images (4 + 4
    unpaired patches, 4 anchor pairs) at three patch sizes, pmapped over 1,
    2 and 4 host devices (the global batch split between them);
  * inference: the decoder swap D_B(E_A(x)) on 4 packed images at three
    sizes, pmapped the same way;
  * translate: one full-resolution 2016x1512 packed image (an iPhone X raw)
    through `translate` with the post-fit (network at 656 px), one device.

Compile time is reported apart from run time ("compile s" = first call -
median later call). The host devices are simulated CPU devices
(`--xla_force_host_platform_device_count`): on a 2-core machine more of them
share the same cores, so the device columns show the overhead of the
parallel step rather than a speed-up.

    python benchmarks/train_step.py [--sizes 64 128 256] [--devices 1 2 4]
        [--repeats 3] [--features 24] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/train_step.json).
"""

from __future__ import annotations

import _timing  # benchmarks/_timing.py

_timing.simulate_host_devices(4)

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import ml_collections
import numpy as np
import tqdm

from rawjax.methods import raw2raw_semi
from rawjax.train.config import load_config_module

ROOT = _timing.ROOT
UNPAIRED, ANCHORS = 4, 4  # per camera / pairs: 16 images a step


def _config(features: int, patch: int) -> ml_collections.ConfigDict:
  config = load_config_module(
      ROOT / 'configs' / 'raw2raw_semi.py').get_config()
  config.model.features = features
  config.data.patch_size = patch
  config.data.unpaired_batch = UNPAIRED
  config.data.anchor_batch = ANCHORS
  return config


def bench_train(config, devices, repeats):
  rng = np.random.default_rng(0)
  p = config.data.patch_size
  n = len(devices)
  batch = {k: rng.uniform(0, 1, (n, count // n, p, p, 4)).astype(np.float32)
           for k, count in (('unpaired_a', UNPAIRED), ('unpaired_b', UNPAIRED),
                            ('anchor_a', ANCHORS), ('anchor_b', ANCHORS))}
  first, median = _timing.time_pmapped_step(
      raw2raw_semi.make_steps(config)[0],
      raw2raw_semi.init(config, jax.random.PRNGKey(0)), batch, devices,
      repeats)
  return first, median, 2 * (UNPAIRED + ANCHORS)


def bench_inference(config, size, devices, repeats, images=4):
  model = raw2raw_semi.model(config)
  params = raw2raw_semi.init(config, jax.random.PRNGKey(0))['params']
  n = len(devices)
  x = np.random.default_rng(0).uniform(
      0, 1, (n, images // n, size, size, 4)).astype(np.float32)

  fn = jax.pmap(lambda pa, pb, batch: raw2raw_semi.swap(model, pa, pb, batch),
                in_axes=(None, None, 0), devices=devices)
  first, median = _timing.time_call(
      lambda: fn(params['camera_a'], params['camera_b'], x), repeats)
  return first, median, images


def bench_translate(config, repeats):
  model = raw2raw_semi.model(config)
  params = raw2raw_semi.init(config, jax.random.PRNGKey(0))['params']
  image = np.random.default_rng(0).uniform(0, 1, (1512, 2016, 4)).astype(
      np.float32)
  fn = lambda x: raw2raw_semi.translate(  # noqa: E731
      model, params['camera_a'], params['camera_b'], x,
      postfit_size=config.inference.postfit_size)
  first, median = _timing.time_call(lambda: fn(image), repeats)
  return first, median, 1


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'train_step', repeats=3)
  parser.add_argument('--sizes', type=int, nargs='+', default=[64, 128, 256],
                      help='train patch sizes (packed); inference sizes are '
                      'twice these')
  parser.add_argument('--devices', type=int, nargs='+', default=[1, 2, 4])
  parser.add_argument('--features', type=int, default=24)
  args = parser.parse_args(argv)
  available = jax.local_devices()
  rows = []
  jobs = [('train', s, d) for s in args.sizes for d in args.devices]
  jobs += [('inference', 2 * s, d) for s in args.sizes for d in args.devices]
  jobs += [('translate 2016x1512 (post-fit)', 2016, 1)]
  for kind, size, count in tqdm.tqdm(jobs, desc='benchmarks', unit='case'):
    if count > len(available):
      continue
    devices = available[:count]
    config = _config(args.features, size if kind == 'train' else 64)
    if kind == 'train':
      first, median, images = bench_train(config, devices, args.repeats)
    elif kind == 'inference':
      first, median, images = bench_inference(config, size, devices,
                                               args.repeats)
    else:
      first, median, images = bench_translate(config, args.repeats)
    rows.append({'kind': kind, 'size': size, 'devices': count,
                 'images_per_call': images,
                 'compile_s': max(first - median, 0.0), 'run_s': median,
                 'calls_per_s': 1.0 / median, 'images_per_s': images / median})
  print(_timing.markdown_table(
      [('what', '{kind}'), ('size (packed)', '{size}'),
       ('devices', '{devices}'), ('images/call', '{images_per_call}'),
       ('compile s', '{compile_s:.1f}'), ('run s', '{run_s:.3f}'),
       ('steps/s', '{calls_per_s:.2f}'), ('images/s', '{images_per_s:.1f}')],
      rows))
  _timing.write_json({'benchmark': 'train_step', 'features': args.features,
                      'machine': _timing.machine(), 'rows': rows}, args.json)


if __name__ == '__main__':
  main()
