"""Tables 1, 2 and 4 of the paper: both directions on the paired test split.

Table 1: PSNR, SSIM, MAE of the whole image; Table 2: MAE also on the colour
charts and the histogram KL of eq. 14 (`rawjax.metrics.histogram_kl`);
DeltaE 2000 besides (issue 16); beside the identity, the global 3x3
calibration baselines and the per-test-pair 3x3 oracle
(`rawjax.eval.raw2raw`). Table 4 (the downsampling factor M) re-scores the
same generators at other M (`evaluate_directions(downsample=M)`, driven by
benchmarks/cstpp_downsample.py).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.eval import results as eval_results
from rawjax.eval import scoring
from rawjax.isp import color
from rawjax.methods.cstpp import config as config_lib
from rawjax.methods.cstpp.inference import (
    direction_variables, model_view, quantize, translate)

__all__ = [
    'LABELS', 'METRICS', 'RESNET_LABEL', 'evaluate', 'evaluate_directions',
    'load_test_pairs', 'markdown', 'score_pairs', 'viewed',
]

METRICS = ('psnr', 'ssim', 'mae', 'delta_e2000', 'kl', 'chart_mae')
LABELS = {'identity': 'Identity (no mapping)',
          'global_3x3': 'Global calibration (3x3, per anchor chart)',
          'global_3x3_pooled': 'Global calibration (3x3, all anchor pixels)',
          'oracle_3x3': 'Oracle 3x3 (fitted on each test pair)',
          'ours': 'CSTPP (ours)'}
# The 'ours' row of results.md when model.generator is CycleGAN's ResNet.
RESNET_LABEL = 'CycleGAN (ResNet generator)'
_DIGITS = {'psnr': 2, 'ssim': 4, 'mae': 4, 'delta_e2000': 3, 'kl': 4,
           'chart_mae': 4}


def score_pairs(predictions: Sequence[Any], pairs: Sequence[dict[str, Any]],
                target_index: int) -> dict[str, np.ndarray]:
  """Per-image `METRICS`; 'chart_mae' is NaN where the image has no chart.

  DeltaE 2000 reads the images as sRGB, packed ones with their greens
  averaged (`rawjax.isp.packed_to_rgb`): Afifi's convention of
  `rawjax.eval.raw2raw` ('srgb').

  Args:
    predictions: (h, w, C) outputs aligned with `pairs`.
    pairs: `rawjax.eval.raw2raw.load_pairs` output (in the model's view).
    target_index: the target camera (0 = A, 1 = B).

  Returns:
    {metric: (N,) float64}.
  """
  targets = [p['images'][target_index] for p in pairs]
  packed = bool(targets) and np.shape(targets[0])[-1] == 4
  out = scoring.score_images(predictions, targets, names=METRICS[:5],
                             view=color.packed_to_rgb if packed else None)
  out['chart_mae'] = np.asarray([
      raw2raw_eval.chart_mae(x, y, p['meta'][target_index])
      for x, y, p in zip(predictions, targets, pairs)], np.float64)
  return out


def _summary(repeats: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
  return scoring.summarize(repeats, METRICS)


def viewed(config, pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Pairs with images in the generator's channel view (see model_view)."""
  if config.model.in_channels == 4:
    return list(pairs)
  return [dict(p, images=tuple(np.asarray(model_view(config, x))
                               for x in p['images'])) for p in pairs]


def load_test_pairs(config) -> tuple[pathlib.Path, tuple[str, str], list,
                                     list]:
  """(root, cameras, test pairs, anchor pairs), with their metadata."""
  root = dataset_root(config.data)
  cameras = raw2raw_eval.camera_names(config.data.cameras, root)
  tests = raw2raw_eval.load_pairs(root, cameras, config.eval.split,
                                  limit=config.eval.max_test_images)
  anchors = raw2raw_eval.load_pairs(root, cameras, 'anchor')
  return root, cameras, tests, anchors


def _outputs(config, state, pairs, *, direction, source, downsample=None):
  model = config_lib.generator_model(config, downsample=downsample)
  params, stats = direction_variables(state, direction)
  return [translate(model, params, stats,
                    quantize(jnp.asarray(p['images'][source]),
                             config.data.quantize_8bit))
          for p in pairs]


def evaluate_directions(config, state, pairs, *, downsample: int | None = None
                        ) -> dict[str, dict[str, Any]]:
  """CSTPP's scores on paired data for both directions: {tag: summary}.

  Args:
    config, state: the method's config and (host) state.
    pairs: test pairs in the model's view (`viewed`).
    downsample: M, overriding config.model.downsample (Table 4).
  """
  return {tag: _summary([score_pairs(
      _outputs(config, state, pairs, direction=tag, source=s,
               downsample=downsample), pairs, t)])
          for tag, s, t in raw2raw_eval.DIRECTIONS}


def markdown(results: Mapping[str, Any]) -> str:
  """results.md: Tables 1 and 2 of every row, both directions."""
  lines = [f'# Unsupervised raw-to-raw (CSTPP): {results["dataset"]}', '',
           f'Step {results["step"]}; {results["num_test_pairs"]} test pairs; '
           f'M = {results["downsample"]}; baselines fitted on '
           f'{results["calibration"]} of {results["num_anchors"]} anchor '
           'pairs.', '']
  labels = dict(LABELS)
  if results.get('generator') == 'resnet':
    labels['ours'] = RESNET_LABEL
  lines += raw2raw_eval.direction_table(
      results['directions'], metrics=METRICS,
      headers=('PSNR', 'SSIM', 'MAE', 'DeltaE00', 'KL', 'chart MAE'),
      digits=_DIGITS,
      labels=labels)
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Tables 1 and 2 on the paired test split, both directions.

  Rows: identity, the global 3x3 calibration fitted on one anchor chart at
  a time (mean +- std over anchors, the paper's baseline) and on all anchor
  pixels, the oracle 3x3 fitted on each test pair itself (a reference that
  sees the target), and the trained generators ('ours': CSTPP, or
  CycleGAN's ResNet generator with model.generator='resnet'; G_AB for
  A -> B, G_BA for B -> A, eval-mode BatchNorm, output clipped to [0, 1]).
  Columns `METRICS`: PSNR, SSIM, MAE (whole image), DeltaE 2000
  (`score_pairs`), KL (eq. 14), chart MAE (mean absolute difference of the
  colour-chart patch means, Table 2's MAE; NaN-skipped where a test image
  has no chart). Writes results.json, results.md and grid_<dir>.png
  (4-channel models; `rawjax.eval.raw2raw.write_direction_grid`).

  Returns:
    Flat scalars '<a_to_b|b_to_a>/<method>/<metric>'.
  """
  config_lib.check_config(config)
  workdir = pathlib.Path(workdir)
  root, cameras, tests, anchors = load_test_pairs(config)
  view = viewed(config, tests)
  results = {'dataset': str(root), 'cameras': list(cameras),
             'step': int(np.asarray(state['step'])),
             'num_test_pairs': len(tests), 'num_anchors': len(anchors),
             'downsample': config.model.downsample,
             'generator': config.model.generator, 'directions': {}}
  in_view = lambda xs: [model_view(config, x) for x in xs]  # noqa: E731
  for tag, s, t in raw2raw_eval.DIRECTIONS:
    inputs = [p['images'][s] for p in tests]
    rows = {'identity': _summary([score_pairs(in_view(inputs), view, t)])}
    fits, used = raw2raw_eval.calibration_fits(
        anchors, s, t, mode='chart', kernel='linear', channels=3,
        ridge=1e-6)
    results['calibration'] = 'charts' if used == 'chart' else 'pixels'
    rows['global_3x3'] = _summary([
        score_pairs(in_view(r), view, t)
        for r in raw2raw_eval.calibrated(inputs, fits, kernel='linear')])
    pooled = raw2raw_eval.calibrated(
        inputs, [raw2raw_eval.pooled_fit(anchors, s, t)], kernel='linear')[0]
    rows['global_3x3_pooled'] = _summary([score_pairs(in_view(pooled), view,
                                                      t)])
    # The paired upper reference of a global linear map: each test pair's
    # own least-squares 3x3 (it sees the target).
    oracle = [raw2raw_eval.apply_mapping(
        x, raw2raw_eval.fit_global(x[None], p['images'][t][None],
                                   kernel='linear', channels=3, ridge=1e-6),
        kernel='linear') for x, p in zip(inputs, tests)]
    rows['oracle_3x3'] = _summary([score_pairs(in_view(oracle), view, t)])
    ours = _outputs(config, state, view, direction=tag, source=s)
    rows['ours'] = _summary([score_pairs(ours, view, t)])
    results['directions'][tag] = {'title': f'{cameras[s]} -> {cameras[t]}',
                                  'rows': rows}
    if config.model.in_channels == 4:
      raw2raw_eval.write_direction_grid(
          workdir / f'grid_{tag}.png', tests, source=s, target=t,
          outputs=ours, baseline=pooled, gain=config.eval.error_gain,
          count=config.eval.num_grid_images)
  eval_results.write_results(workdir, results, markdown(results))
  return raw2raw_eval.flat_scores(results['directions'], METRICS)
