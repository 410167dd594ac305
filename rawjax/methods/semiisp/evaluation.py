"""SemiISP's evaluation: PSNR / SSIM of the trained model on the test pairs.

The model is the target (phases 2 and 3) or f_ISP's global variant (phase
1); `evaluate` writes results.json, results.md and a titled grid.png.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data.datasets.arrays import SCALE, load_split
from rawjax.eval import (
    image_scores, markdown_table, metric_cells, write_image_rows,
    write_results)
from rawjax.methods.semiisp.config import check_config
from rawjax.methods.semiisp.data import dataset_root
from rawjax.methods.semiisp.networks import isp_model, target_model

__all__ = ['evaluate', 'predict', 'sample_images']

_SCORES = ('psnr', 'ssim')
_COLUMNS = ('input', 'output', 'target')


@functools.partial(jax.jit, static_argnames=('model',))
def _apply(model, params, images):
  return jnp.clip(model.apply({'params': params}, images), 0.0, 1.0)


def _evaluated_model(config):
  if config.phase == 'isp':
    return isp_model(config, 'global')
  return target_model(config)


def _evaluated_params(config, state):
  params = jax.tree.map(jnp.asarray, state['params'])
  return params['global'] if config.phase == 'isp' else params


def predict(config, state, images: np.ndarray, *,
            batch_size: int = 4) -> np.ndarray:
  """The trained model's (N, H, W, 3) outputs in [0, 1] of (N, H, W, 3) inputs.

  Images are reflect-padded to a multiple of 2**model.levels (U-Nets) and
  cropped back.
  """
  model = _evaluated_model(config)
  params = _evaluated_params(config, state)
  multiple = 2**int(getattr(model, 'levels', 0))
  images = np.asarray(images, np.float32)
  h, w = images.shape[1:3]
  pad = ((0, 0), (0, (-h) % multiple), (0, (-w) % multiple), (0, 0))
  outputs = []
  for start in range(0, len(images), batch_size):
    chunk = np.pad(images[start:start + batch_size], pad, mode='reflect')
    outputs.append(np.asarray(_apply(model, params, jnp.asarray(chunk)))[
        :, :h, :w])
  return np.concatenate(outputs)


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """PSNR / SSIM on the held-out test pairs (`eval.max_test_images`).

  Writes workdir/results.json (per-image and mean scores), results.md, and
  grid.png (columns input, output, target; a row per test image) for
  `eval.num_grid_images`.

  Returns:
    {'psnr': dB, 'ssim'}: means over the test pairs.
  """
  check_config(config)
  root = dataset_root(config)
  test = load_split(root, 'test', limit=config.eval.max_test_images)
  raw = np.asarray(test['raw'], np.float32) / SCALE
  target = np.asarray(test['srgb'], np.float32) / SCALE
  output = predict(config, state, raw)
  scores = {k: np.asarray(v) for k, v in
            image_scores(output, target, names=_SCORES).items()}
  summary = {k: float(v.mean()) for k, v in scores.items()}
  model_name = ('pqdynamic_net (f_ISP, phase 1)' if config.phase == 'isp'
                else config.model.name)
  results = {'phase': config.phase, 'model': model_name,
             'generator': config.pseudo.generator,
             'step': int(np.asarray(state['step'])), 'dataset': str(root),
             'num_test': int(len(raw)), **summary,
             'per_image': {k: v.tolist() for k, v in scores.items()}}
  table = markdown_table(('PSNR (dB)', 'SSIM'), [
      metric_cells(summary, _SCORES, {'psnr': 2, 'ssim': 4})])
  markdown = '\n'.join([
      f'# SemiISP, phase {config.phase}: {model_name}', '',
      f'Step {results["step"]}; {len(raw)} test pairs of {root}.', '',
      *table]) + '\n'
  workdir = pathlib.Path(workdir)
  write_results(workdir, results, markdown)
  count = min(config.eval.num_grid_images, len(raw))
  if count and jax.process_index() == 0:
    write_image_rows(
        workdir / 'grid.png',
        [(np.clip(raw[i], 0, 1), output[i], target[i]) for i in range(count)],
        column_titles=_COLUMNS,
        row_labels=[f'test {i}' for i in range(count)])
  return summary


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Real training inputs, the model's outputs and their targets (N <= 4)."""
  raw = np.asarray(batch['raw']).reshape(-1, *np.shape(batch['raw'])[-3:])[:4]
  srgb = np.asarray(batch['srgb']).reshape(-1,
                                           *np.shape(batch['srgb'])[-3:])[:4]
  return {'input': np.clip(raw, 0, 1), 'output': predict(config, state, raw),
          'target': srgb}
