"""LiteISPNet's Table 1: PSNR / SSIM (/ LPIPS) against differently aligned GT.

The paper's point is that the score depends on which ground truth it is
measured against: the original (misaligned) DSLR image, the DSLR image
aligned with the raw, or aligned with the result; on simulated data the
true aligned target is known too. `evaluate` scores every setting on the
8-bit outputs as the reference's metrics.py does.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import eval as eval_lib
from rawjax import models
from rawjax.data.datasets import zrr
from rawjax.methods.liteisp import config as config_lib
from rawjax.methods.liteisp import data as data_lib
from rawjax.methods.liteisp.alignment import align_target, demosaic_raw

__all__ = ['SETTINGS', 'evaluate', 'load_lpips', 'sample_images']

SETTINGS = {
    'original': 'Original GT',
    'align_raw': 'Align GT with raw',
    'align_result': 'Align GT with result',
    'true_aligned': 'True aligned GT (simulated)',
    'true_aligned_interior': 'True aligned GT, interior (simulated)',
}
_GRID_COLUMNS = ('raw (demosaiced)', 'GCM output', 'LiteISPNet',
                 'GT (misaligned)', 'true aligned GT')


def _eval_functions(config):
  """Jitted (forward, align) for evaluation, cached per config values."""
  freeze = lambda d: tuple(sorted(  # noqa: E731
      (k, tuple(v) if isinstance(v, (list, tuple)) else v)
      for k, v in dict(d).items()))
  return _cached_eval_functions(freeze(config.model), freeze(config.gcm),
                                config_lib.eval_aligner(config),
                                freeze(config.align.options),
                                float(config.align.mask_eps))


@functools.lru_cache(maxsize=4)
def _cached_eval_functions(model_items, gcm_items, method, option_items, eps):
  isp = models.model_from_config(dict(model_items))
  gcm = models.model_from_config(dict(gcm_items))
  options = dict(option_items)

  @jax.jit
  def forward(params, raw, rgb, coord):
    out = isp.apply({'params': params['isp']}, raw)
    gcm_out = gcm.apply({'params': params['gcm']}, demosaic_raw(raw), rgb,
                        coord)
    return out, gcm_out

  @jax.jit
  def align(source, target, pwc):
    return align_target(source, target, method=method, pwc_params=pwc,
                        options=options, eps=eps)

  return forward, align


def _scores(prediction, target):
  """The reference's metrics.py on 8-bit images: PSNR, skimage SSIM, (1,)."""
  return eval_lib.image_scores(prediction, target, names=('psnr', 'ssim'),
                               data_range=255.0, sample_covariance=True)


@jax.jit
def _lpips_scores(lpips_params, prediction, target):
  """LPIPS-alex v0.1 of 8-bit images (as [0, 1], normalize=True), (N,).

  Module-level jit with the weights as an argument: compiled once per image
  size, whatever the config or the weights file.
  """
  return models.lpips.lpips_distance(lpips_params, prediction / 255.0,
                                     target / 255.0, normalize=True)


def load_lpips(path: str) -> Any:
  """LPIPS params from `rawjax.convert lpips`' .npz, checked by shape."""
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  params = convert.load_params(path)
  template = jax.eval_shape(lambda: models.LPIPS().init(
      jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)),
      jnp.zeros((1, 64, 64, 3))))['params']
  flat = lambda tree: {  # noqa: E731
      '/'.join(str(getattr(k, 'key', k)) for k in kp): tuple(np.shape(v))
      for kp, v in jax.tree_util.tree_leaves_with_path(tree)}
  want, got = flat(template), flat(params)
  if want != got:
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    raise ValueError(
        f'config.eval.lpips_weights={path!r} is not LPIPS-alex parameters '
        f'(missing, misshapen or unexpected: {", ".join(bad)}); write it with '
        f'`{config_lib.CONVERT_LPIPS}`.')
  return jax.tree.map(jnp.asarray, params)


def _to8(x):
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0)


def _markdown(results, *, root: pathlib.Path, with_lpips: bool) -> str:
  if with_lpips:
    note = 'LPIPS: AlexNet v0.1 (lower is better).'
    header = ('GT', 'PSNR', 'SSIM', 'LPIPS')
  else:
    note = ('LPIPS not computed: convert the weights with '
            f'`{config_lib.CONVERT_LPIPS}` and set '
            '`config.eval.lpips_weights`.')
    header = ('GT', 'PSNR', 'SSIM')
  rows = []
  for setting, row in results['settings'].items():
    cells = [SETTINGS[setting], *eval_lib.metric_cells(
        row, ('psnr', 'ssim'), {'psnr': 2, 'ssim': 4})]
    if with_lpips:
      cells.append(f'{row["lpips"]:.4f}' if 'lpips' in row else
                   f'– (< {models.lpips.MIN_SIZE} px)')
    rows.append(cells)
  lines = [f'# LiteISPNet on {root.name} ({results["split"]}, '
           f'{results["num_images"]} images, step {results["step"]})', '',
           f'Trained with aligner `{results["train_aligner"]}`; evaluation '
           f'aligner `{results["eval_aligner"]}`. 8-bit outputs. {note}', '',
           *eval_lib.markdown_table(header, rows)]
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Table 1's columns on the test split: PSNR, SSIM (and LPIPS).

  For each test pair: y_hat = LiteISPNet(x) saved as 8 bits, and
    * 'original': y_hat vs the unaligned GT;
    * 'align_raw': m y_hat vs y_w, the GT warped onto the GCM output
      (the paper's "Align GT with raw", the warp the reference computes in
      `forward()`; not in its metrics.py);
    * 'align_result': m y_hat vs y_w, the GT warped onto y_hat (the
      reference's metrics.py);
    * 'true_aligned' (simulated data only): y_hat vs the GT before the
      simulated misalignment; 'true_aligned_interior' the same without a
      border of `eval.crop_border` pixels (where training with a validity
      mask never supervised the output).
  Masked-out pixels are zero in both images and count in the means, as the
  reference. PSNR and SSIM on 0-255 values (skimage's SSIM with sample
  covariance, the reference's metrics.py). With `config.eval.lpips_weights`
  (converted LPIPS-alex v0.1 weights) every setting also gets 'lpips', on
  the same 8-bit images (as [0, 1], normalize=True; not for images smaller
  than AlexNet's 31 px, e.g. a small interior crop); without it LPIPS is
  omitted. The aligner is `config.eval.aligner` ('' = the training one, or
  'pyramid' for the 'none' ablation). Writes results.json, results.md and
  grid.png (a row per test image, titled columns: input demosaic, GCM
  output, y_hat, GT, true GT if any). Returns flat scalars
  '<setting>/<metric>'.
  """
  config_lib.check_config(config)
  workdir = pathlib.Path(workdir)
  root = data_lib.dataset_root(config)
  dataset = zrr.ZRRDataset(root, split=config.eval.split, coords=True)
  keys = list(dataset.keys)
  if config.eval.max_images:
    keys = keys[:config.eval.max_images]
  forward, align = _eval_functions(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  pwc = state.get('frozen', {}).get('pwc')
  lpips_path = config_lib.lpips_weights(config)
  lpips_params = load_lpips(lpips_path) if lpips_path else None
  folder = 'test' if config.eval.split in ('test', 'val') else 'train'
  scores: dict[str, dict[str, list[float]]] = {}
  grid, grid_keys = [], []
  for key in keys:
    sample = dataset.load(key)
    raw = jnp.asarray(sample['raw'])[None]
    rgb = jnp.asarray(sample['rgb'])[None]
    coord = jnp.asarray(sample['coord'])[None]
    out, gcm_out = forward(params, raw, rgb, coord)
    out8, gt8 = _to8(out), _to8(rgb)
    pairs = {'original': (out8, gt8)}
    warped, mask = align(gcm_out, rgb, pwc)
    pairs['align_raw'] = (out8 * mask, _to8(warped) * mask)
    warped_r, mask_r = align(jnp.clip(out, 0, 1), rgb, pwc)
    pairs['align_result'] = (out8 * mask_r, _to8(warped_r) * mask_r)
    true_path = root / folder / 'canon_aligned' / f'{key}.png'
    true = None
    if true_path.is_file():
      from rawjax.io import read_image  # pylint: disable=g-import-not-at-top
      true = jnp.asarray(read_image(true_path), jnp.float32)[None]
      pairs['true_aligned'] = (out8, _to8(true))
      b = config.eval.crop_border
      if b:
        pairs['true_aligned_interior'] = (out8[:, b:-b, b:-b],
                                          _to8(true)[:, b:-b, b:-b])
    for setting, (a, b) in pairs.items():
      values = dict(_scores(a, b))
      if (lpips_params is not None and
          min(a.shape[1:3]) >= models.lpips.MIN_SIZE):
        values['lpips'] = _lpips_scores(lpips_params, a, b)
      for metric, value in values.items():
        scores.setdefault(setting, {}).setdefault(metric, []).append(
            float(value[0]))
    if len(grid) < config.eval.num_grid_images:
      row = [demosaic_raw(raw)[0] ** (1 / 2.2), gcm_out[0], out[0], rgb[0]]
      if true is not None:
        row.append(true[0])
      grid.append([np.clip(np.asarray(x), 0, 1) for x in row])
      grid_keys.append(f'{config.eval.split} {key}')
  results = {'dataset': str(root), 'split': config.eval.split,
             'step': int(np.asarray(state['step'])), 'num_images': len(keys),
             'train_aligner': config.align.method,
             'eval_aligner': config_lib.eval_aligner(config),
             'lpips_weights': lpips_path or None, 'settings': {}}
  flat = {}
  for setting, values in scores.items():
    row = {m: float(np.mean(v)) for m, v in values.items()}
    results['settings'][setting] = row
    for m, v in row.items():
      flat[f'{setting}/{m}'] = v
  eval_lib.write_results(workdir, results, _markdown(
      results, root=root, with_lpips=lpips_params is not None))
  if grid and jax.process_index() == 0:
    columns = max(len(row) for row in grid)
    eval_lib.write_image_rows(workdir / 'grid.png', grid,
                              column_titles=_GRID_COLUMNS[:columns],
                              row_labels=grid_keys)
  return flat


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """{'demosaic', 'gcm', 'output', 'target'}: (N <= 4, H, W, 3) in [0, 1]."""
  forward, _ = _eval_functions(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  take = lambda k: jnp.asarray(np.asarray(batch[k]).reshape(  # noqa: E731
      -1, *np.shape(batch[k])[-3:])[:4])
  raw, rgb, coord = take('raw'), take('rgb'), take('coord')
  out, gcm_out = forward(params, raw, rgb, coord)
  show = lambda x: np.clip(np.asarray(x), 0.0, 1.0)  # noqa: E731
  return {'demosaic': show(demosaic_raw(raw) ** (1 / 2.2)),
          'gcm': show(gcm_out), 'output': show(out), 'target': show(rgb)}
