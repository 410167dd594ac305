"""Throughput of the batching pipeline on grain (`rawjax.data.pipeline`).

Four workloads, each at the papers' batch size of 16 on one host:
  * zrr-memory: ZRR-shaped samples held in memory (224x224x4 packed raw,
    448x448x3 sRGB, 448x448x2 coordinate map), whole samples, ZRR's
    augmentations: the pipeline's own cost (augment, stack, shard), read in
    this process by grain's threads;
  * raw2raw-memory: 512x384 packed raws in memory, random 256x256 patches
    of both cameras' raws, CSTPP's augmentations, in this process;
  * zrr-files-w0 / zrr-files-w2: the same as zrr-memory but decoded from a
    ZRR folder written to a temporary directory (16-bit PNG mosaics +
    JPEGs), so decoding dominates; read in this process (worker_count 0)
    and by 2 grain worker processes (worker_count 2).
"first batch s" is the cold start of a fresh stream (with workers: their
start, which imports jax); throughput is measured over later batches
pulled from the iterator (`iterate()`), and for comparison from
synchronous `batch()` (always in this process). With `--before PATH` (by
default benchmarks/results/data_pipeline_before.json, the hand-written
thread pipeline's figures on this machine) the table adds the ratio of
each workload's batches/s to the same workload there (zrr-files-w* to
zrr-files, which used 2 decode threads).

    python benchmarks/data_pipeline.py [--batches 20] [--threads 2]
        [--before PATH] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/data_pipeline.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

import grain
import jax
import numpy as np
import png
import tqdm
from PIL import Image

from rawjax.data import pipeline
from rawjax.data.datasets import zrr
from rawjax.data.pipeline import Field

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH = 16


class _MemoryDataset:
  """Random samples of fixed shapes, generated once and served from RAM."""

  def __init__(self, fields, shapes, size, seed=0):
    rng = np.random.default_rng(seed)
    self.fields = fields
    self.samples = [{k: rng.random(shapes[k], np.float32) for k in fields}
                    for _ in range(size)]

  def __len__(self):
    return len(self.samples)

  def __getitem__(self, index):
    return dict(self.samples[index])


def _zrr_memory(size):
  fields = {'raw': Field('packed', 1), 'rgb': Field('image', 2),
            'coord': Field('image', 2)}
  shapes = {'raw': (224, 224, 4), 'rgb': (448, 448, 3),
            'coord': (448, 448, 2)}
  return _MemoryDataset(fields, shapes, size)


def _raw2raw_memory(size):
  fields = {'raw_a': Field('packed'), 'raw_b': Field('packed')}
  shapes = {'raw_a': (384, 512, 4), 'raw_b': (384, 512, 4)}
  return _MemoryDataset(fields, shapes, size)


def _write_zrr(root: pathlib.Path, size: int) -> None:
  rng = np.random.default_rng(0)
  (root / 'train' / 'huawei_raw').mkdir(parents=True)
  (root / 'train' / 'canon').mkdir(parents=True)
  for i in tqdm.tqdm(range(size), desc='writing ZRR files', leave=False):
    mosaic = rng.integers(0, 1024, (448, 448)).astype(np.uint16)
    with open(root / 'train' / 'huawei_raw' / f'{i}.png', 'wb') as f:
      png.Writer(448, 448, greyscale=True, bitdepth=16).write(f, mosaic)
    rgb = rng.integers(0, 256, (448, 448, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(root / 'train' / 'canon' / f'{i}.jpg',
                              quality=95)


def _measure(make_pipeline, batches: int) -> dict:
  pipe = make_pipeline()
  start = time.perf_counter()
  with pipe.iterate() as stream:
    first = next(stream)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
      next(stream)
    prefetched = batches / (time.perf_counter() - start)
  pipe.batch(0)
  start = time.perf_counter()
  for step in range(1, batches // 2 + 1):
    pipe.batch(step)
  synchronous = (batches // 2) / (time.perf_counter() - start)
  shapes = {k: list(v.shape) for k, v in first.items()}
  return {'first_batch_s': first_s, 'batches_per_s': prefetched,
          'samples_per_s': prefetched * BATCH,
          'sync_batches_per_s': synchronous, 'batch_shapes': shapes}


def bench_pipeline(batches: int = 20, threads: int = 2) -> dict:
  """Runs the workloads; returns their figures (see the docstring)."""
  results = {}
  common = dict(per_device_batch=BATCH, local_device_count=1,
                process_count=1, process_index=0, num_workers=threads,
                prefetch=4, seed=0)
  zrr_data = _zrr_memory(64)
  results['zrr-memory'] = dict(worker_count=0, **_measure(
      lambda: pipeline.Pipeline(
          zrr_data, augment=('hflip', 'vflip', 'transpose'), **common),
      batches))
  r2r_data = _raw2raw_memory(64)
  results['raw2raw-memory'] = dict(worker_count=0, **_measure(
      lambda: pipeline.Pipeline(
          r2r_data, patch_size=256, augment=('vflip', 'hflip', 'rot90'),
          **common), batches))
  with tempfile.TemporaryDirectory() as tmp:
    _write_zrr(pathlib.Path(tmp), 64)
    files = zrr.ZRRDataset(tmp, split='train', coords=True)
    for workers in (0, 2):
      results[f'zrr-files-w{workers}'] = dict(worker_count=workers, **_measure(
          lambda: pipeline.Pipeline(
              files, augment=('hflip', 'vflip', 'transpose'),
              worker_count=workers, **common), max(4, batches // 2)))
  return {'batch_size': BATCH, 'threads': threads,
          'machine': {'platform': platform.platform(),
                      'processor': platform.processor() or 'unknown',
                      'cpu_count': os.cpu_count(),
                      'load_average': os.getloadavg(),
                      'jax': jax.__version__, 'grain': grain.__version__,
                      'backend': jax.default_backend()},
          'workloads': results}


def _before_rate(before: dict | None, name: str) -> float | None:
  if not before:
    return None
  old = before['workloads'].get(name) or before['workloads'].get(
      name.rsplit('-w', 1)[0])
  return None if old is None else old['batches_per_s']


def _table(report: dict, before: dict | None) -> str:
  lines = ['| workload | workers | first batch s | batches/s | samples/s | '
           'batches/s (sync) | before batches/s | after / before |',
           '|---|---|---|---|---|---|---|---|']
  for name, r in report['workloads'].items():
    old = _before_rate(before, name)
    ratio = '-' if old is None else f'{r["batches_per_s"] / old:.2f}x'
    lines.append(f'| {name} | {r["worker_count"]} | '
                 f'{r["first_batch_s"]:.2f} | {r["batches_per_s"]:.2f} | '
                 f'{r["samples_per_s"]:.1f} | {r["sync_batches_per_s"]:.2f} | '
                 f'{"-" if old is None else f"{old:.2f}"} | {ratio} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batches', type=int, default=20)
  parser.add_argument('--threads', type=int, default=2,
                      help='grain reading threads (Pipeline num_workers)')
  parser.add_argument('--before', type=pathlib.Path,
                      default=ROOT / 'benchmarks/results/'
                      'data_pipeline_before.json')
  parser.add_argument('--json', type=pathlib.Path,
                      default=ROOT / 'benchmarks/results/data_pipeline.json')
  args = parser.parse_args()
  report = bench_pipeline(batches=args.batches, threads=args.threads)
  before = (json.loads(args.before.read_text()) if args.before.is_file()
            else None)
  if before:
    report['before'] = {
        'file': str(args.before), 'batches_per_s': {
            name: _before_rate(before, name) for name in report['workloads']}}
  print(f'batch {report["batch_size"]}, {report["threads"]} grain threads, '
        f'{report["machine"]["backend"]}, load average '
        f'{report["machine"]["load_average"][0]:.1f}')
  print(_table(report, before))
  text = json.dumps(report, indent=2)
  print(text)
  args.json.parent.mkdir(parents=True, exist_ok=True)
  args.json.write_text(text + '\n')


if __name__ == '__main__':
  main()
