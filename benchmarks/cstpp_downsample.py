"""Table 4 of CSTPP: the trained generators evaluated at M = 1, 2, 4, 8, 16.

The generator's parameters do not depend on the input downsampling M (the
backbone sees the image downsampled by M; the per-token transforms are
upsampled by 16 M and applied at full resolution), so one trained model is
evaluated at every M, as the paper does "during the testing phase". For each
M and direction: PSNR, SSIM, MAE and histogram KL (eq. 14) on the paired
test split, plus the generator's time per image (jitted, compile excluded).

    python benchmarks/cstpp_downsample.py --config=configs/raw2raw_cstpp.py:quick \
        --workdir=/tmp/cstpp_quick [--factors 1 2 4 8 16] [--repeats 3]
        [--json PATH]

Restores the newest checkpoint of `workdir/checkpoints`; prints a markdown
table and writes JSON (default benchmarks/results/cstpp_downsample.json).
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
import tqdm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from rawjax.eval.results import markdown_table  # noqa: E402  pylint: disable=wrong-import-position
from rawjax.methods import cstpp  # noqa: E402  pylint: disable=wrong-import-position
from rawjax.train.config import load_config_module  # noqa: E402  pylint: disable=wrong-import-position


def load_config(spec: str):
  """`path[:variant]` -> the config (as --config of launch.train)."""
  path, _, variant = spec.partition(':')
  return load_config_module(path).get_config(variant)


def _seconds_per_image(config, state, image, factor, repeats=3):
  model = cstpp.generator_model(config, downsample=factor)
  params, stats = cstpp.direction_variables(state, 'a_to_b')
  x = np.asarray(image)[None]
  cstpp.translate(model, params, stats, x)
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    cstpp.translate(model, params, stats, x)
    runs.append(time.perf_counter() - start)
  return float(np.median(runs))


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'cstpp_downsample', repeats=3)
  parser.add_argument('--config', required=True)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--factors', nargs='+', type=int,
                      default=[16, 8, 4, 2, 1])
  args = parser.parse_args(argv)
  config = load_config(args.config)
  state = cstpp.restore_state(config, args.workdir)
  _, cameras, tests, _ = cstpp.load_test_pairs(config)
  tests = cstpp.viewed(config, tests)
  rows = []
  for factor in tqdm.tqdm(args.factors, desc='downsample factors'):
    scores = cstpp.evaluate_directions(config, state, tests,
                                           downsample=factor)
    rows.append(dict(downsample=factor, **{
        f'{tag}/{k}': v[k] for tag, v in scores.items()
        for k in ('psnr', 'ssim', 'mae', 'kl')},
                     seconds_per_image=_seconds_per_image(
                         config, state, tests[0]['images'][0], factor,
                         repeats=args.repeats)))
  titles = {'a_to_b': f'{cameras[0]}->{cameras[1]}',
            'b_to_a': f'{cameras[1]}->{cameras[0]}'}
  head = ['Downsample'] + [f'{titles[t]} {m}' for t in titles
                           for m in ('PSNR', 'SSIM', 'MAE', 'KL')] + [
                               's / image']
  cells = []
  for r in rows:
    cells.append([f'{r["downsample"]}x'])
    for t in titles:
      cells[-1] += [f'{r[f"{t}/psnr"]:.2f}', f'{r[f"{t}/ssim"]:.4f}',
                    f'{r[f"{t}/mae"]:.4f}', f'{r[f"{t}/kl"]:.4f}']
    cells[-1].append(f'{r["seconds_per_image"]:.4f}')
  lines = markdown_table(head, cells)
  print(f'step {int(state["step"])}, {len(tests)} test pairs, image '
        f'{tests[0]["images"][0].shape}')
  print('\n'.join(lines))
  payload = dict(config=args.config, workdir=args.workdir,
                 step=int(state['step']), num_test_pairs=len(tests),
                 image_shape=list(tests[0]['images'][0].shape), rows=rows)
  _timing.write_json(payload, args.json)
  return payload


if __name__ == '__main__':
  sys.exit(0 if main() else 1)
