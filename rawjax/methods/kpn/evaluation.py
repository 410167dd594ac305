"""The kernel-prediction ISP against the classic pipeline on the test split."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import eval as eval_lib
from rawjax.data.datasets.kpn_pairs import PairFolder
from rawjax.methods.kpn import config as config_lib
from rawjax.methods.kpn import data as data_lib
from rawjax.methods.kpn.render import (
    apply_clipped, classic_render, render, show_raw)

__all__ = ['METRICS', 'evaluate', 'sample_images']

METRICS = ('psnr', 'ssim', 'delta_e2000')
_DIGITS = {'psnr': 2, 'ssim': 4, 'delta_e2000': 2}
_PROCESS = 'rawjax.isp.process (as-shot WB + camera matrix)'
_GRID_COLUMNS = ('raw', 'process', 'KPN', 'target', '|KPN - target|',
                 '|process - target|')


def _row(per_image: list[Mapping[str, float]]) -> dict[str, Any]:
  """Mean, std over images and count of the scores of `per_image`."""
  row = eval_lib.summarize(
      [{k: np.array([s[k] for s in per_image]) for k in METRICS}], METRICS,
      spread='images')
  row.pop('repeats')
  return dict(row, count=len(per_image))


def _markdown(results: Mapping[str, Any]) -> str:
  kpn = ('KPN (ours; input white-balanced with the as-shot gains)'
         if results['white_balance'] else 'KPN (ours; raw only)')
  labels = {'kpn': kpn, 'process': _PROCESS}
  rows = [[labels[name], *eval_lib.metric_cells(row, METRICS, _DIGITS)]
          for name, row in results['rows'].items()]
  lines = [f'# Kernel-prediction ISP: {results["dataset"]}', '',
           f'Step {results["step"]}; {results["num_test_images"]} test '
           f'images ({results["num_with_metadata"]} with metadata for '
           '`process`). Mean +- std over images.', '',
           *eval_lib.markdown_table(
               ('method', 'PSNR (dB)', 'SSIM', 'DeltaE2000'), rows)]
  if 'kpn_on_metadata_images' in results:
    row = results['kpn_on_metadata_images']
    lines += ['', 'KPN on the same images as `process`: ' + ', '.join(
        f'{k} {row[k]:.{_DIGITS[k]}f}' for k in METRICS) + '.']
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """KPN vs `process()` on the test split (PSNR, SSIM, DeltaE2000).

  The KPN output is clipped to [0, 1]; `process` is given each image's
  metadata (bilinear demosaic, as-shot white balance, camera matrix, sRGB
  OETF). Writes `workdir/results.json` (summary rows, mean and std over
  images, and per-image scores), `workdir/results.md` and
  `workdir/grid.png` (a row per test image of the first
  `eval.num_grid_images`, titled columns: raw visualisation, `process`,
  KPN, target, |KPN - target| and |process - target| times
  `eval.error_gain`). Returns flat scalars 'kpn/<metric>' and
  'process/<metric>' (the latter only when test images carry metadata).
  """
  config_lib.check_config(config)
  ev = config.eval
  workdir = pathlib.Path(workdir)
  root = data_lib.dataset_root(config)
  dataset = PairFolder(root, split=ev.split)
  network_inputs = PairFolder(root, split=ev.split,
                              white_balance=config.data.white_balance)
  model = config_lib.kpn_model(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  keys = list(dataset.keys)[:ev.max_test_images or None]
  per_image, grid = [], []
  for index, key in enumerate(keys):
    sample = dataset.load(key)
    meta = dataset.metadata(key)
    outputs = {'kpn': render(model, params,
                             network_inputs.load(key)['raw'])}
    if meta is not None:
      outputs['process'] = classic_render(sample['raw'], meta)
    scores = {'name': key}
    for name, image in outputs.items():
      values = eval_lib.image_scores(image, sample['srgb'], names=METRICS,
                                     clip=True)
      scores[name] = {k: float(values[k]) for k in METRICS}
    per_image.append(scores)
    if index < ev.num_grid_images:
      target = sample['srgb']
      classic = outputs.get('process', np.zeros_like(target))
      grid.append([
          show_raw(sample['raw']), classic, outputs['kpn'], target,
          eval_lib.error_map(outputs['kpn'], target, gain=ev.error_gain),
          eval_lib.error_map(classic, target, gain=ev.error_gain)])
  rows = {'kpn': _row([s['kpn'] for s in per_image])}
  with_meta = [s for s in per_image if 'process' in s]
  results = {'dataset': str(root), 'split': ev.split,
             'step': int(np.asarray(state['step'])),
             'num_test_images': len(per_image),
             'num_with_metadata': len(with_meta),
             'white_balance': bool(config.data.white_balance), 'rows': rows,
             'per_image': per_image}
  if with_meta:
    rows['process'] = _row([s['process'] for s in with_meta])
    results['kpn_on_metadata_images'] = _row([s['kpn'] for s in with_meta])
  flat = {f'{name}/{k}': row[k] for name, row in rows.items()
          for k in METRICS}
  eval_lib.write_results(workdir, results, _markdown(results))
  if grid and jax.process_index() == 0:
    eval_lib.write_image_rows(workdir / 'grid.png', grid,
                              column_titles=_GRID_COLUMNS,
                              row_labels=keys[:len(grid)])
  return flat


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Training patches: {'raw' (nearest x2 of the raw visualisation), 'kpn',
  'target'}, each (N, 2p, 2p, 3) in [0, 1], N <= 4."""
  model = config_lib.kpn_model(config)
  raw = np.asarray(batch['raw'])
  target = np.asarray(batch['srgb'])
  raw = raw.reshape(-1, *raw.shape[-3:])[:4]
  target = target.reshape(-1, *target.shape[-3:])[:4]
  params = jax.tree.map(jnp.asarray, state['params'])
  output = np.asarray(apply_clipped(model, params, jnp.asarray(raw)))
  return {'raw': show_raw(raw), 'kpn': output, 'target': target}
