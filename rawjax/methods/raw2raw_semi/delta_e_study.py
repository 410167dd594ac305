"""Why DeltaE 2000 is high at high PSNR (the tables of docs/raw2raw_semi.md).

    python -m rawjax.methods.raw2raw_semi.delta_e_study \
        --config=configs/raw2raw_semi.py:quick [--json=PATH]

On the test split of the config's dataset (simulated on first use), for
both directions, rows that need no training:

  * identity (no mapping), the pooled global 3x3 (all anchor pixels; the
    quick run's network is within 0.2 dB of it A -> B);
  * the per-image 3x3 fitted on the test pair itself (the best any global
    3x3 does on that image);
  * the target plus a second draw of its own sensor noise
    (N(0, shot x + read) with the capture's levels): what a perfect,
    noise-free mapping scores, since the target's noise cannot be predicted
    from the other camera's capture.

Columns: PSNR; DeltaE 2000 in the evaluation's 'target_metadata' protocol
(`rawjax.baselines.evaluate`); the same over pixels with target L* >= 20
only; on both images box-filtered 5 x 5 (noise variance / 25); without
the two clips of that path; with an identity camera matrix (white balance
only); in the paper's protocol (`rawjax.eval.raw2raw.paper_delta_e2000`).
And per camera the noise gain of its camera -> sRGB matrix (row norms,
condition number).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import baselines, metrics
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.eval import results as eval_results
from rawjax.isp import color
from rawjax.train.config import load_config_module

__all__ = ['COLUMNS', 'ROWS', 'main', 'markdown', 'matrix_gains', 'study']

ROWS = ('identity', 'global_3x3_pooled', 'oracle_3x3', 'target_noise')
COLUMNS = ('psnr', 'de_metadata', 'de_bright', 'de_box5', 'de_unclipped',
           'de_no_matrix', 'de_paper', 'de_paper_known_light')
_HEADERS = ('PSNR', 'DeltaE (evaluation)', 'DeltaE, L* >= 20',
            'DeltaE, 5x5 box', 'DeltaE, no clip', 'DeltaE, no matrix',
            'DeltaE, paper protocol', "DeltaE, paper, target's light")
_LABELS = {'identity': 'Identity', 'global_3x3_pooled':
           'Global 3x3 (all anchor pixels)', 'oracle_3x3':
           '3x3 fitted on the test pair itself', 'target_noise':
           'Target + its own noise (perfect mapping)'}
_BRIGHT = 20.0  # L* floor of the 'de_bright' column
_BOX = 5


def _unclipped_lab(packed, wb_gains, cam_to_srgb):
  """`rawjax.baselines.raw_to_lab` without its two clips."""
  gains = wb_gains / jnp.min(wb_gains)
  rgb = color.white_balance(color.packed_to_rgb(packed), gains)
  return color.xyz_to_lab(color.linear_srgb_to_xyz(
      color.apply_ccm(rgb, cam_to_srgb)))


def _box(x):
  pad = _BOX // 2
  x = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode='edge')
  return jax.lax.reduce_window(x, 0.0, jax.lax.add, (_BOX, _BOX, 1),
                               (1, 1, 1), 'VALID') / _BOX ** 2


@functools.partial(jax.jit, static_argnames=('p',))
def _columns(prediction, target, wb_gains, cam_to_srgb, light, *, p):
  lab = functools.partial(baselines.raw_to_lab, wb_gains=wb_gains,
                          cam_to_srgb=cam_to_srgb)
  lab_t = lab(target)
  d = metrics.delta_e2000(lab(prediction), lab_t)
  bright = lab_t[..., 0] >= _BRIGHT
  eye = jnp.eye(3, dtype=jnp.float32)
  return {
      'psnr': metrics.psnr(prediction, target),
      'de_metadata': jnp.mean(d),
      'de_bright': jnp.sum(jnp.where(bright, d, 0.0)) /
                   jnp.maximum(jnp.sum(bright), 1),
      'de_box5': metrics.mean_delta_e2000(lab(_box(prediction)),
                                          lab(_box(target))),
      'de_unclipped': metrics.mean_delta_e2000(
          _unclipped_lab(prediction, wb_gains, cam_to_srgb),
          _unclipped_lab(target, wb_gains, cam_to_srgb)),
      'de_no_matrix': metrics.mean_delta_e2000(
          baselines.raw_to_lab(prediction, wb_gains=wb_gains,
                               cam_to_srgb=eye),
          baselines.raw_to_lab(target, wb_gains=wb_gains, cam_to_srgb=eye)),
      'de_paper': raw2raw_eval.paper_delta_e2000(prediction, target, light,
                                                 cam_to_srgb, p=p),
      'de_paper_known_light': metrics.mean_delta_e2000(*[
          raw2raw_eval.paper_raw_to_lab(x, illuminant=light,
                                        cam_to_srgb=cam_to_srgb)
          for x in (prediction, target)]),
  }


def matrix_gains(cam_to_srgb: Any) -> dict[str, Any]:
  """Row norms (how much each sRGB channel amplifies i.i.d. camera noise)
  and the condition number of a camera -> sRGB matrix."""
  m = np.asarray(cam_to_srgb, np.float64)
  return {'row_norms': np.linalg.norm(m, axis=1).round(2).tolist(),
          'condition': round(float(np.linalg.cond(m)), 2)}


def _noise_levels(root: pathlib.Path, camera: str, name: str
                  ) -> tuple[float, float]:
  with np.load(root / 'paired' / camera / 'meta' / f'{name}.npz') as f:
    return float(f['shot_noise']), float(f['read_noise'])


def study(config, *, seed: int = 0) -> dict[str, Any]:
  """The measurements: {'dataset', 'cameras', 'matrices', 'directions'}.

  'directions': {tag: {'title', 'rows': {row: {column: mean over the test
  pairs}}}}; 'matrices': {camera: `matrix_gains`}.
  """
  ev = config.eval
  root = dataset_root(config.data)
  cameras = raw2raw_eval.camera_names(config.data.cameras, root)
  tests = raw2raw_eval.load_pairs(root, cameras, ev.split,
                                  limit=ev.max_test_images)
  anchors = raw2raw_eval.load_pairs(root, cameras, 'anchor')
  if not all(m is not None and 'cam_to_srgb' in m for t in tests
             for m in t['meta']):
    raise ValueError(f'{root}: the study needs meta/<name>.npz beside every '
                     'test image (the simulated datasets have them).')
  rng = np.random.default_rng(seed)
  out = {'dataset': str(root), 'cameras': list(cameras), 'directions': {},
         'matrices': {c: matrix_gains(tests[0]['meta'][i]['cam_to_srgb'])
                      for i, c in enumerate(cameras)}}
  p = float(ev.deltae_estimator_p)
  for tag, s, t in raw2raw_eval.DIRECTIONS:
    pooled = raw2raw_eval.pooled_fit(anchors, s, t)
    sums = {r: {c: [] for c in COLUMNS} for r in ROWS}
    for pair in tests:
      x, y = pair['images'][s], pair['images'][t]
      meta = pair['meta'][t]
      shot, read = _noise_levels(root, cameras[t], pair['name'])
      own = raw2raw_eval.fit_global(x[None], y[None], kernel='linear',
                                    channels=3, ridge=1e-6)
      noise = rng.normal(size=y.shape) * np.sqrt(shot * y + read)
      predictions = {
          'identity': x,
          'global_3x3_pooled': raw2raw_eval.apply_mapping(x, pooled,
                                                          kernel='linear'),
          'oracle_3x3': raw2raw_eval.apply_mapping(x, own, kernel='linear'),
          'target_noise': np.clip(y + noise, 0.0, 1.0).astype(np.float32),
      }
      light = raw2raw_eval.target_illuminant(y, meta)
      for row, prediction in predictions.items():
        values = _columns(jnp.asarray(prediction), jnp.asarray(y),
                          meta['wb_gains'].astype(np.float32),
                          meta['cam_to_srgb'].astype(np.float32), light, p=p)
        for c in COLUMNS:
          sums[row][c].append(float(values[c]))
    out['directions'][tag] = {
        'title': f'{cameras[s]} -> {cameras[t]}',
        'rows': {r: {c: float(np.mean(v)) for c, v in cols.items()}
                 for r, cols in sums.items()}}
  return out


def markdown(result: dict[str, Any]) -> str:
  """The study as Markdown: a table per direction and the matrix gains."""
  lines = [f'Dataset: {result["dataset"]}', '']
  for direction in result['directions'].values():
    lines += [f'**{direction["title"]}**', '']
    rows = [[_LABELS[r]] + [f'{v[c]:.2f}' for c in COLUMNS]
            for r, v in direction['rows'].items()]
    lines += eval_results.markdown_table(('Prediction',) + _HEADERS, rows)
    lines.append('')
  rows = [[c, ' / '.join(f'{n:.2f}' for n in g['row_norms']),
           f'{g["condition"]:.2f}'] for c, g in result['matrices'].items()]
  lines += eval_results.markdown_table(
      ('camera', 'camera -> sRGB row norms (R / G / B)', 'condition'), rows)
  return '\n'.join(lines) + '\n'


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(
      prog='python -m rawjax.methods.raw2raw_semi.delta_e_study',
      description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/raw2raw_semi.py:quick',
                      help='config file[:variant]')
  parser.add_argument('--json', default='', help='also write the results')
  parser.add_argument('--seed', type=int, default=0,
                      help="the 'target + noise' draw")
  args = parser.parse_args(argv)
  path, _, variant = args.config.partition(':')
  config = load_config_module(path).get_config(variant)
  result = study(config, seed=args.seed)
  print(markdown(result), end='')
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
  return result


if __name__ == '__main__':
  main()
