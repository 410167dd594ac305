"""Flow and alignment timings: estimate_flow, PWC-Net forward, NCC search.

    python benchmarks/flow.py [--repeats 3] [--sizes 256 512] [--skip-pwc]
        [--json PATH]

Prints a markdown table and JSON (default benchmarks/results/flow.json).
Compile time (first call - median later call) is reported apart from the
median run time.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # pylint: disable=wrong-import-position

from rawjax import align  # pylint: disable=wrong-import-position
from rawjax.models import flow, pwcnet  # pylint: disable=wrong-import-position


def main():
  parser = _timing.argument_parser(__doc__, 'flow', repeats=3)
  parser.add_argument('--sizes', type=int, nargs='+', default=[256, 512])
  parser.add_argument('--skip-pwc', action='store_true')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  rows = []

  def add(name, shape, fn):
    first, run = _timing.time_call(fn, args.repeats)
    rows.append({'component': name, 'shape': shape,
                 'compile_s': round(first - run, 3),
                 'run_s': round(run, 4)})
    print(rows[-1], flush=True)

  for size in args.sizes:
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
  print(_timing.markdown_table(
      [('component', '{component}'), ('input', '{shape}'),
       ('compile s', '{compile_s:.1f}'), ('run s', '{run_s:.3f}')], rows))
  _timing.write_json({'benchmark': 'flow', 'backend': jax.default_backend(),
                      'machine': _timing.machine(), 'rows': rows}, args.json)


if __name__ == '__main__':
  main()
