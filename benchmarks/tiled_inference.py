"""Tiled full-frame LiteISPNet inference: overhead over its tiles, memory.

`rawjax.methods.liteisp.process_full_frame` on a packed raw of `--frame`
(H, W) packed pixels (2016 x 1512 is a 12 MP, 4032 x 3024 Bayer frame),
tiles of `--tile` with `--overlap` packed pixels. Beside it, the jitted
network on one tile batch of the same shape (the work each tile costs
alone). The figure of merit:

  overhead = tiled seconds / (number of tiles x one-tile seconds)

i.e. what the cutting, host transfers and overlap blending add (1.0 = none;
the overlap's extra pixels are in the tile count, not in the overhead).
Peak memory is the process's resident maximum (`ru_maxrss`) before and after
the tiled run, beside the output accumulator's analytic size. Compilation is
timed apart (the first one-tile call); every timing blocks on its result.

    python benchmarks/tiled_inference.py [--frame 480 704] [--tile 256]
        [--overlap 32] [--repeats 3] [--json PATH]

Prints a table and writes JSON (default benchmarks/results/tiled_inference.json).
"""

from __future__ import annotations

import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import _timing  # benchmarks/_timing.py
from rawjax import models
from rawjax.data.datasets import zrr
from rawjax.methods import liteisp
from rawjax.models import tiling


def _rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _random_params(model: models.LiteISPNet):
  """U(+-0.05) parameters without compiling `init` (values do not matter)."""
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 4)),
      jnp.zeros((1, 16, 16, 2))))['params']
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: jnp.asarray(
      rng.uniform(-0.05, 0.05, s.shape).astype(np.float32)), shapes)


def measure(height: int, width: int, *, tile: int, overlap: int,
            repeats: int) -> dict:
  """The tiled run and its one-tile reference, in seconds and MiB."""
  model = models.LiteISPNet()
  params = _random_params(model)
  raw = np.random.default_rng(0).uniform(0, 1, (height, width, 4)).astype(
      np.float32)
  apply = liteisp.inference.apply_fn(model)
  one_raw = jnp.asarray(raw[None, :tile, :tile])
  one_coord = jnp.asarray(zrr.coordinate_map(tile, tile)[None])
  compile_first, one_tile_s = _timing.time_call(
      lambda: apply(params, one_raw, one_coord), repeats)
  count = (len(tiling.tile_starts(height, tile, overlap, multiple=8)) *
           len(tiling.tile_starts(width, tile, overlap, multiple=8)))
  rss_before = _rss_mib()
  start = time.perf_counter()
  out = liteisp.process_full_frame(model, params, raw, tile=tile,
                                   overlap=overlap, progress=True)
  tiled_s = time.perf_counter() - start
  return {
      'frame_packed': [height, width], 'tile': tile, 'overlap': overlap,
      'megapixels': out.shape[0] * out.shape[1] / 1e6,
      'output_shape': list(out.shape), 'finite': bool(np.isfinite(out).all()),
      'tiles': count, 'one_tile_s': one_tile_s,
      'compile_s': max(compile_first - one_tile_s, 0.0),
      'tiled_s': tiled_s, 'overhead': tiled_s / (count * one_tile_s),
      'rss_before_mib': rss_before, 'peak_rss_mib': _rss_mib(),
      'accumulator_mib': out.shape[0] * out.shape[1] * 4 * 4 / 2**20,
  }


def main(argv=None) -> dict:
  parser = _timing.argument_parser(__doc__, 'tiled_inference', repeats=3)
  parser.add_argument('--frame', type=int, nargs=2, default=(480, 704),
                      metavar=('H', 'W'), help='packed frame size')
  parser.add_argument('--tile', type=int, default=256)
  parser.add_argument('--overlap', type=int, default=32)
  args = parser.parse_args(argv)
  row = measure(*args.frame, tile=args.tile, overlap=args.overlap,
                repeats=args.repeats)
  # The driver's ratio convention (reference / rawjax, 1 = no overhead).
  row.update(name=f'LiteISPNet tiled, {row["megapixels"]:.1f} MP, '
                  f'{row["tiles"]} tiles of {args.tile}, overhead '
                  f'{row["overhead"]:.2f}x, peak RSS '
                  f'{row["peak_rss_mib"]:.0f} MiB',
             run_s=row['tiled_s'], reference='tiles x one tile',
             reference_run_s=row['tiles'] * row['one_tile_s'],
             ratio=1.0 / row['overhead'])
  print(_timing.markdown_table(
      [('frame (packed)', '{frame_packed}'), ('tiles', '{tiles}'),
       ('one tile s', '{one_tile_s:.3f}'), ('compile s', '{compile_s:.1f}'),
       ('tiled s', '{tiled_s:.2f}'), ('overhead', '{overhead:.3f}'),
       ('peak RSS MiB', '{peak_rss_mib:.0f}'),
       ('accumulator MiB', '{accumulator_mib:.0f}')], [row]))
  payload = {'benchmark': 'tiled_inference', 'machine': _timing.machine(),
             'rows': [row]}
  _timing.write_json(payload, args.json)
  return payload


if __name__ == '__main__':
  main()
