"""Throughput of the batching pipeline (`rawjax.data.pipeline.Pipeline`).

Three workloads, each at the papers' batch size of 16 on one host:
  * zrr-memory: ZRR-shaped samples held in memory (224x224x4 packed raw,
    448x448x3 sRGB, 448x448x2 coordinate map), whole samples, ZRR's
    augmentations: the pipeline's own cost (augment, stack, shard);
  * raw2raw-memory: 512x384 packed raws in memory, random 256x256 patches
    of both cameras' raws, CSTPP's augmentations;
  * zrr-files: the same as zrr-memory but decoded from a ZRR folder written
    to a temporary directory (16-bit PNG mosaics + JPEGs), so decoding
    dominates.
The one-off jit compile of the 8 augmentation variants is timed apart
("compile s"; zrr-files reuses zrr-memory's variants, which have the same
shapes); "first batch s" is the cold start of a fresh stream;
throughput is measured over later batches pulled from the prefetching
iterator (`iterate()`), and for comparison from synchronous `batch()`.

    python benchmarks/data_pipeline.py [--batches 20] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/data_pipeline.json).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import tempfile
import time

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


def _compile_time(dataset, patch) -> float:
  """Seconds to compile the 8 augmentation variants for these shapes."""
  sample = dataset[0]
  if patch is not None:
    sample = pipeline.crop(sample, dataset.fields, top=0, left=0, size=patch)
  start = time.perf_counter()
  for bits in np.ndindex(2, 2, 2):
    pipeline.apply_dihedral(sample, dataset.fields, transpose=bool(bits[0]),
                            vflip=bool(bits[1]), hflip=bool(bits[2]))
  return time.perf_counter() - start


def _measure(make_pipeline, batches: int) -> dict:
  pipe = make_pipeline()
  start = time.perf_counter()
  with pipe.iterate() as stream:
    first = next(stream)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(stream)
    jax.block_until_ready(batch)  # host numpy: a no-op, kept for symmetry
    prefetched = batches / (time.perf_counter() - start)
  pipe = make_pipeline()
  pipe.batch(0)
  start = time.perf_counter()
  for step in range(1, batches // 2 + 1):
    pipe.batch(step)
  synchronous = (batches // 2) / (time.perf_counter() - start)
  shapes = {k: list(v.shape) for k, v in first.items()}
  return {'first_batch_s': first_s, 'batches_per_s': prefetched,
          'samples_per_s': prefetched * BATCH,
          'sync_batches_per_s': synchronous, 'batch_shapes': shapes}


def bench_pipeline(batches: int = 20, workers: int = 2) -> dict:
  """Runs the three workloads; returns their figures (see the docstring)."""
  results = {}
  common = dict(per_device_batch=BATCH, local_device_count=1,
                process_count=1, process_index=0, num_workers=workers,
                prefetch=4, seed=0)
  zrr_data = _zrr_memory(64)
  compile_s = _compile_time(zrr_data, None)
  results['zrr-memory'] = dict(
      compile_s=compile_s, **_measure(lambda: pipeline.Pipeline(
          zrr_data, augment=('hflip', 'vflip', 'transpose'), **common),
                                      batches))
  r2r_data = _raw2raw_memory(64)
  compile_s = _compile_time(r2r_data, 256)
  results['raw2raw-memory'] = dict(
      compile_s=compile_s, **_measure(lambda: pipeline.Pipeline(
          r2r_data, patch_size=256, augment=('vflip', 'hflip', 'rot90'),
          **common), batches))
  with tempfile.TemporaryDirectory() as tmp:
    _write_zrr(pathlib.Path(tmp), 64)
    files = zrr.ZRRDataset(tmp, split='train', coords=True)
    compile_s = _compile_time(files, None)
    results['zrr-files'] = dict(
        compile_s=compile_s, **_measure(lambda: pipeline.Pipeline(
            files, augment=('hflip', 'vflip', 'transpose'), **common),
                                        max(4, batches // 2)))
  return {'batch_size': BATCH, 'workers': workers,
          'machine': {'platform': platform.platform(),
                      'processor': platform.processor() or 'unknown',
                      'jax': jax.__version__,
                      'backend': jax.default_backend()},
          'workloads': results}


def _table(report: dict) -> str:
  lines = ['| workload | compile s | first batch s | batches/s (prefetch) | '
           'samples/s | batches/s (sync) |', '|---|---|---|---|---|---|']
  for name, r in report['workloads'].items():
    lines.append(f'| {name} | {r["compile_s"]:.2f} | '
                 f'{r["first_batch_s"]:.2f} | {r["batches_per_s"]:.2f} | '
                 f'{r["samples_per_s"]:.1f} | {r["sync_batches_per_s"]:.2f} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batches', type=int, default=20)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--json', type=pathlib.Path,
                      default=ROOT / 'benchmarks/results/data_pipeline.json')
  args = parser.parse_args()
  report = bench_pipeline(batches=args.batches, workers=args.workers)
  print(f'batch {report["batch_size"]}, {report["workers"]} decode workers, '
        f'{report["machine"]["backend"]}')
  print(_table(report))
  text = json.dumps(report, indent=2)
  print(text)
  args.json.parent.mkdir(parents=True, exist_ok=True)
  args.json.write_text(text + '\n')


if __name__ == '__main__':
  main()
