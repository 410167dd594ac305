"""Tables 1 and 2 of the paper: both directions on the paired test split.

The learned mapping is scored (PSNR, SSIM, MAE, DeltaE 2000 in the
protocol of `eval.deltae_protocol`; `rawjax.eval.raw2raw.pair_scorer`)
beside the paper's baselines: global 3x3 and polynomial calibrations
fitted on one anchor pair's colour chart at a time and FDA with one anchor
image at a time as its target (mean +- std over the anchors, as the
paper), plus the pooled 3x3 fit on all anchor pixels and the identity.
Table 2's anchor count x is `data.num_anchors`. The choices where the
paper is silent are in docs/raw2raw_semi.md.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.eval import results as eval_results
from rawjax.eval import scoring
from rawjax.methods.raw2raw_semi import config as config_lib
from rawjax.methods.raw2raw_semi import data as data_lib
from rawjax.methods.raw2raw_semi import inference

__all__ = ['LABELS', 'evaluate', 'markdown']

METRICS = raw2raw_eval.METRICS
LABELS = {
    'identity': 'Identity (no mapping)',
    'global_3x3': 'Global calibration (3x3)',
    'global_poly': 'Global calibration (poly)',
    'global_3x3_pooled': 'Global calibration (3x3, all anchor pixels)',
    'fda': 'FDA',
    'ours_network': 'Ours (network output, no post-fit)',
    'ours': 'Ours',
}
_DIGITS = {'psnr': 2, 'ssim': 4, 'mae': 4, 'delta_e2000': 2}
_CONVENTIONS = {
    'metadata': "metadata (the target capture's white balance and matrix "
                'for both images)',
    'paper': "the paper's protocol (the ground truth's light from its chart, "
             "the prediction's estimated by shades of grey)",
    'srgb': "Afifi's sRGB reading of the raw",
}
# Kernels with a term per packed channel fit all four channels.
_FOUR_CHANNEL_KERNELS = ('raw2raw16', 'cstpp14', 'cstpp14_code')


def markdown(results: Mapping[str, Any]) -> str:
  """results.md: the Table 1/2 columns of every row, both directions."""
  convention = results['delta_e_convention']
  lines = [f'# Semi-supervised raw-to-raw mapping: {results["dataset"]}',
           '', f'Step {results["step"]}; {results["num_test_pairs"]} test '
           f'pairs; anchors: {results["num_anchors"]}; DeltaE convention: '
           f'{_CONVENTIONS.get(convention, convention)}; baselines fitted '
           f'on {results["calibration"]}.', '']
  lines += raw2raw_eval.direction_table(
      results['directions'], metrics=METRICS,
      headers=('PSNR', 'SSIM', 'MAE', 'DeltaE2000'), digits=_DIGITS,
      labels=LABELS)
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Table 1/2 of the paper on the test split, both directions.

  Writes `workdir/results.json` (every row, with std over anchors where the
  paper repeats a baseline), `workdir/results.md` (the table) and
  `workdir/grid_<a_to_b|b_to_a>.png` (`rawjax.eval.raw2raw.
  write_direction_grid`: input, ours, target, |ours - target| and
  |global 3x3 - target| times `eval.error_gain`, a row per test image).

  Returns:
    Flat scalars '<a_to_b|b_to_a>/<method>/<metric>'.
  """
  config_lib.check_config(config)
  ev, inf = config.eval, config.inference
  workdir = pathlib.Path(workdir)
  root = dataset_root(config.data)
  cameras = raw2raw_eval.camera_names(config.data.cameras, root)
  model = config_lib.model(config)
  params = inference.camera_params(state)
  tests = raw2raw_eval.load_pairs(root, cameras, ev.split,
                                  limit=ev.max_test_images)
  anchor_set = raw2raw_data.Raw2RawPaired(root, split='anchor',
                                          cameras=cameras)
  anchors = raw2raw_eval.load_pairs(
      root, cameras, 'anchor', keys=data_lib.anchor_keys(config, anchor_set))
  score, convention = raw2raw_eval.pair_scorer(
      tests, ev.delta_e, protocol=ev.deltae_protocol,
      estimator_p=ev.deltae_estimator_p)
  summary = lambda repeats: scoring.summarize(repeats, METRICS)  # noqa: E731

  results = {'dataset': str(root), 'cameras': list(cameras),
             'step': int(np.asarray(state['step'])),
             'num_test_pairs': len(tests), 'num_anchors': len(anchors),
             'delta_e_convention': convention, 'directions': {}}
  if convention == 'paper':
    results['deltae_estimator_p'] = float(ev.deltae_estimator_p)
  for tag, s, t in raw2raw_eval.DIRECTIONS:
    inputs = [p['images'][s] for p in tests]
    rows = {'identity': summary([score(inputs, t)])}
    for name, kernel, channels in (
        ('global_3x3', 'linear', 3),
        ('global_poly', ev.poly_kernel,
         4 if ev.poly_kernel in _FOUR_CHANNEL_KERNELS else 3)):
      fits, used = raw2raw_eval.calibration_fits(
          anchors, s, t, mode=ev.calibration, kernel=kernel,
          channels=channels,
          ridge=ev.poly_ridge if name == 'global_poly' else 1e-6)
      results['calibration'] = used
      rows[name] = summary([score(r, t) for r in raw2raw_eval.calibrated(
          inputs, fits, kernel=kernel)])
    pooled = raw2raw_eval.calibrated(
        inputs, [raw2raw_eval.pooled_fit(anchors, s, t)], kernel='linear')[0]
    rows['global_3x3_pooled'] = summary([score(pooled, t)])
    rows['fda'] = summary([
        score([raw2raw_eval.fda(x, a['images'][t], beta=ev.fda_beta)
               for x in inputs], t)
        for a in anchors])
    source_params, target_params = params[s], params[t]
    if ev.report_network_output:
      network = [inference.translate(model, source_params, target_params, x,
                                     postfit=False) for x in inputs]
      rows['ours_network'] = summary([score(network, t)])
    ours = [inference.translate(model, source_params, target_params, x,
                                postfit=inf.postfit,
                                postfit_size=inf.postfit_size,
                                kernel=inf.postfit_kernel) for x in inputs]
    rows['ours'] = summary([score(ours, t)])
    results['directions'][tag] = {'title': f'{cameras[s]} -> {cameras[t]}',
                                  'rows': rows}
    raw2raw_eval.write_direction_grid(
        workdir / f'grid_{tag}.png', tests, source=s, target=t, outputs=ours,
        baseline=pooled, gain=ev.error_gain, count=ev.num_grid_images)
  eval_results.write_results(workdir, results, markdown(results))
  return raw2raw_eval.flat_scores(results['directions'], METRICS)
