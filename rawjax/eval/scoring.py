"""The shared scoring of image pairs: per-image PSNR, SSIM, MAE, DeltaE, KL.

Every method scores its outputs against its targets with the same
functions, so a "PSNR" or a "DeltaE 2000" means one thing across the
methods' tables. Options that the papers' protocols differ in (the colour
view DeltaE is computed in, the data range) are arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import metrics
from rawjax.isp import color

__all__ = ['SCORES', 'image_scores', 'score_images', 'summarize']

SCORES = ('psnr', 'ssim', 'mae', 'delta_e2000', 'kl')


def _unit(x: jax.Array, data_range: float) -> jax.Array:
  return x if data_range == 1.0 else x / data_range


def _lab(x: jax.Array, view: Callable[[jax.Array], jax.Array] | None):
  rgb = x if view is None else view(x)
  return color.srgb_to_lab(jnp.clip(rgb, 0.0, 1.0))


@functools.partial(jax.jit, static_argnames=('names', 'view', 'data_range',
                                             'clip', 'sample_covariance'))
def image_scores(prediction: jax.Array, target: jax.Array, *,
                 names: Sequence[str] = ('psnr', 'ssim', 'mae'),
                 view: Callable[[jax.Array], jax.Array] | None = None,
                 data_range: float = 1.0,
                 clip: bool = False,
                 sample_covariance: bool = False) -> dict[str, jax.Array]:
  """Scores of prediction against target, per image.

  Args:
    prediction, target: (..., H, W, C) images in [0, data_range].
    names: which of `SCORES` to compute (a tuple: it is static).
    view: for 'delta_e2000', the map from the images to sRGB-encoded RGB
      in [0, 1] before CIELAB (None: the images are sRGB already; raw-to-raw
      passes `rawjax.isp.packed_to_rgb`, Afifi's convention).
    data_range: the images' range for PSNR and SSIM.
    clip: clip the prediction to [0, data_range] first.
    sample_covariance: SSIM with skimage's sample covariance (its default;
      LiteISPNet's evaluation on 8-bit images), see `rawjax.metrics.ssim`.

  Returns:
    {name: (...) float32}.
  """
  unknown = set(names) - set(SCORES)
  if unknown:
    raise ValueError(f'unknown scores {sorted(unknown)}; known: {SCORES}.')
  if clip:
    prediction = jnp.clip(prediction, 0.0, data_range)
  fns = {
      'psnr': lambda: metrics.psnr(prediction, target, data_range=data_range),
      'ssim': lambda: metrics.ssim(
          prediction, target, data_range=data_range,
          use_sample_covariance=sample_covariance),
      'mae': lambda: metrics.mae(prediction, target),
      'delta_e2000': lambda: metrics.mean_delta_e2000(
          _lab(_unit(prediction, data_range), view),
          _lab(_unit(target, data_range), view)),
      'kl': lambda: metrics.histogram_kl(prediction, target),
  }
  return {name: fns[name]() for name in names}


def score_images(predictions: Sequence[Any], targets: Sequence[Any], *,
                 names: Sequence[str] = ('psnr', 'ssim', 'mae'),
                 **options: Any) -> dict[str, np.ndarray]:
  """`image_scores` over lists of images (sizes may differ between pairs).

  Returns:
    {name: (N,) float64 numpy array}, one value per pair.
  """
  if len(predictions) != len(targets):
    raise ValueError(f'{len(predictions)} predictions for {len(targets)} '
                     'targets.')
  out = {name: [] for name in names}
  for prediction, target in zip(predictions, targets):
    values = image_scores(jnp.asarray(prediction, jnp.float32),
                          jnp.asarray(target, jnp.float32),
                          names=tuple(names), **options)
    for name in names:
      out[name].append(float(values[name]))
  return {name: np.asarray(v, np.float64) for name, v in out.items()}


def summarize(per_repeat: Sequence[Mapping[str, np.ndarray]],
              names: Sequence[str], *, spread: str = 'repeats'
              ) -> dict[str, Any]:
  """One results row from per-image scores of one or more repeats.

  The value of a score is the mean over images of each repeat, averaged
  over repeats (e.g. one calibration per anchor chart, the raw-to-raw
  papers' protocol). Its spread `name_std` is the std over repeats
  (`spread='repeats'`; None for a single repeat) or over the images of a
  single repeat (`spread='images'`). NaN scores (an image without a chart,
  say) are skipped; a score that is NaN for every image stays NaN.

  Returns:
    {name: value, name_std: spread or None, 'repeats': count}.
  """
  if spread not in ('repeats', 'images'):
    raise ValueError(f"spread must be 'repeats' or 'images', got {spread!r}.")
  if spread == 'images' and len(per_repeat) != 1:
    raise ValueError("spread='images' needs exactly one repeat, got "
                     f'{len(per_repeat)}.')
  row: dict[str, Any] = {}
  for name in names:
    means = np.array([_nanmean(r[name]) for r in per_repeat])
    finite = means[np.isfinite(means)]
    row[name] = float(finite.mean()) if finite.size else float('nan')
    if spread == 'images':
      values = _finite(per_repeat[0][name])
      row[f'{name}_std'] = float(values.std()) if values.size else None
    else:
      row[f'{name}_std'] = float(finite.std()) if len(means) > 1 else None
  row['repeats'] = len(per_repeat)
  return row


def _finite(values: Any) -> np.ndarray:
  values = np.asarray(values, np.float64)
  return values[np.isfinite(values)]


def _nanmean(values: Any) -> float:
  finite = _finite(values)
  return float(finite.mean()) if finite.size else float('nan')
