"""Flow and alignment timings: estimate_flow, PWC-Net forward, NCC search.

    /tmp/venv/bin/python benchmarks/flow.py [--repeats 3] [--skip-pwc]

Prints a markdown table and JSON (also benchmarks/results/flow.json). The
first call (compile + run) is reported apart from the median later run.
"""

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _timing import time_call  # pylint: disable=wrong-import-position

from rawjax import align  # pylint: disable=wrong-import-position
from rawjax.models import flow, pwcnet  # pylint: disable=wrong-import-position


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--skip-pwc', action='store_true')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  rows = []

  def add(name, shape, fn):
    first, run = time_call(fn, args.repeats)
    rows.append({'component': name, 'shape': shape,
                 'compile_plus_first_s': round(first - run, 3),
                 'run_ms': round(run * 1e3, 1)})
    print(rows[-1], flush=True)

  for size in (256, 512):
    a = jnp.asarray(rng.random((1, size, size, 3)), jnp.float32)
    b = jnp.roll(a, 3, axis=2)
    fn = jax.jit(flow.estimate_flow)
    add('estimate_flow pyramid', f'1x{size}x{size}x3', lambda: fn(a, b))
  if not args.skip_pwc:
    x = jnp.asarray(rng.random((1, 256, 256, 3)), jnp.float32)
    shapes = jax.eval_shape(pwcnet.PWCNet().init, jax.random.key(0),
                            x[:, :64, :64], x[:, :64, :64])
    params = jax.tree.map(  # random weights; init's compile is not timed
        lambda s: jnp.asarray(rng.uniform(-0.05, 0.05, s.shape), jnp.float32),
        shapes)
    fwd = jax.jit(pwcnet.estimate)
    add('PWC-Net estimate (random weights)', '1x256x256x3',
        lambda: fwd(params, x, x))
  templates = jnp.asarray(rng.random((16, 128, 128, 3)), jnp.float32)
  windows = jnp.asarray(rng.random((16, 144, 144, 3)), jnp.float32)
  add('NCC search +-8 px', '16 patches 128x128x3',
      lambda: align.ncc_search(templates, windows))
  print('\n| component | input | compile (s) | run (ms) |\n|---|---|---|---|')
  for r in rows:
    print(f"| {r['component']} | {r['shape']} | {r['compile_plus_first_s']} "
          f"| {r['run_ms']} |")
  out = pathlib.Path(__file__).resolve().parent / 'results' / 'flow.json'
  out.parent.mkdir(exist_ok=True)
  out.write_text(json.dumps({'backend': jax.default_backend(), 'rows': rows},
                            indent=1))
  print(json.dumps(rows))


if __name__ == '__main__':
  main()
