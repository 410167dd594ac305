"""Throughput of the data side: the simulator (scenes/s) and the batching
pipeline (batches/s).

    python benchmarks/data.py [--scenes 64] [--size 256]

Every module-level function named `bench_*` is run by `main()` and returns a
list of rows {'name', 'compile_s', 'run_s', 'throughput', 'unit', ...}; the
rows are printed as one markdown table, then as JSON (also written to
benchmarks/results/data.json). The generator's part is `bench_generator`;
the batching pipeline's part lives in its own `bench_*` function below.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import shutil
import sys
import tempfile
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -------------------------------------------------------------- generator --

def bench_generator(args) -> list[dict]:
  """Scenes/s of `generate_scene` (in memory) and of the dataset command."""
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  config = synthetic.PRESETS['raw2raw'].replace(height=args.size,
                                                width=args.size)
  rows = []
  # First scenes: compiling the renderer and the per-camera capture, and the
  # one-time Delaunay decomposition of the photographs (natural scenes).
  start = time.perf_counter()
  warm = 0
  for index in range(2 * args.scenes, 2 * args.scenes + 8):
    synthetic.generate_scene(1, index, config=config)
    warm += 1
  first = time.perf_counter() - start

  for cameras, label in ((synthetic.DEFAULT_CAMERAS, 'both cameras'),
                         (synthetic.DEFAULT_CAMERAS[:1], 'one camera')):
    start = time.perf_counter()
    for index in range(args.scenes):
      jax.block_until_ready(synthetic.generate_scene(
          0, index, config=config, cameras=cameras).captures)
    run = time.perf_counter() - start
    rows.append(dict(name=f'generate_scene {args.size}x{args.size}, {label}',
                     compile_s=first - warm * run / args.scenes
                     if label == 'both cameras' else 0.0,
                     run_s=run / args.scenes,
                     throughput=args.scenes / run, unit='scenes/s'))

  out = pathlib.Path(tempfile.mkdtemp(prefix='rawjax-bench-'))
  try:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    start = time.perf_counter()
    summary = synthetic.write_dataset(out, preset='raw2raw',
                                      num=args.dataset_scenes, config=config,
                                      seed=5, progress=False)
    run = time.perf_counter() - start
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - before
    size = sum(f.stat().st_size for f in out.rglob('*') if f.is_file())
  finally:
    shutil.rmtree(out, ignore_errors=True)
  rows.append(dict(
      name=f'write_dataset raw2raw, {args.dataset_scenes} scenes '
      f'{args.size}x{args.size} (warm process)',
      compile_s=0.0, run_s=run, throughput=args.dataset_scenes / run,
      unit='scenes/s', cpu_user_s=cpu, megabytes=size / 1e6,
      splits={k: len(v) if isinstance(v, list) else
              {c: len(f) for c, f in v.items()}
              for k, v in summary['splits'].items()}))
  return rows


# --------------------------------------------------------- batching pipeline --

def bench_pipeline(args) -> list[dict]:
  """Batches/s of rawjax.data.pipeline (the workloads of data_pipeline.py).

  The 'compile (s)' column holds each workload's first batch (grain start,
  worker processes included): the pipeline compiles nothing.
  """
  del args
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  import data_pipeline  # pylint: disable=g-import-not-at-top
  report = data_pipeline.bench_pipeline()
  return [dict(name=f'pipeline {name}, batch {report["batch_size"]}',
               compile_s=r['first_batch_s'], run_s=1.0 / r['batches_per_s'],
               throughput=r['batches_per_s'], unit='batches/s')
          for name, r in report['workloads'].items()]


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--scenes', type=int, default=64,
                      help='scenes per in-memory timing')
  parser.add_argument('--dataset-scenes', type=int, default=300,
                      help='scenes written by the dataset timing')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--json', type=pathlib.Path,
                      default=ROOT / 'benchmarks/results/data.json')
  args = parser.parse_args(argv)

  module = sys.modules[__name__]
  rows = []
  for name in sorted(n for n in dir(module) if n.startswith('bench_')):
    for row in getattr(module, name)(args):
      rows.append({'benchmark': name, **row})

  report = dict(benchmark='data', jax=jax.__version__,
                machine=platform.machine(), cpu_count=os.cpu_count(),
                load_average=os.getloadavg(), rows=rows)
  args.json.parent.mkdir(parents=True, exist_ok=True)
  args.json.write_text(json.dumps(report, indent=2))
  print(f'# data benchmarks ({os.cpu_count()} CPUs, load average '
        f'{report["load_average"][0]:.1f})\n')
  print('| benchmark | what | compile (s) | run (s) | throughput |')
  print('|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['benchmark']} | {r['name']} | {r['compile_s']:.2f} | "
          f"{r['run_s']:.3f} | {r['throughput']:.1f} {r['unit']} |")
  print(f'\nJSON: {args.json}')
  print(json.dumps(report))
  return report


if __name__ == '__main__':
  main()
