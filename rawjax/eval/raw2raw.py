"""The raw-to-raw evaluation both raw-to-raw methods use.

The semi-supervised U-Net pair (Afifi & Abuolaim) and the unsupervised
CSTPP CycleGAN are scored on the same paired test split against the same
calibration baselines, fitted on the same anchor pairs:

  * `load_pairs`: paired packed raw images of the two cameras, with each
    camera's metadata (white balance, camera -> sRGB, chart boxes) where
    the layout has it;
  * `calibration_fits` / `pooled_fit`: the global calibrations of the
    papers' baseline rows, one per anchor (its chart or its pixels) and one
    over all anchor pixels;
  * `pair_scorer`: PSNR / SSIM / MAE / DeltaE 2000 of predictions against
    the target camera, in Afifi's sRGB convention or through each capture's
    own metadata;
  * `chart_mae`: Table 2's MAE of the colour-chart patch means.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import baselines
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.eval import scoring
from rawjax.isp import color

__all__ = [
    'DIRECTIONS', 'METRICS', 'anchor_indices', 'apply_mapping',
    'calibration_fits', 'camera_names', 'chart_mae', 'chart_means', 'fda',
    'load_pairs', 'pair_scorer', 'pooled_fit',
]

# (tag, source camera index, target camera index)
DIRECTIONS = (('a_to_b', 0, 1), ('b_to_a', 1, 0))
METRICS = ('psnr', 'ssim', 'mae', 'delta_e2000')
_META_KEYS = ('wb_gains', 'cam_to_srgb', 'chart_boxes')

fit_global = jax.jit(baselines.fit_global_mapping,
                     static_argnames=('kernel', 'channels', 'ridge'))
apply_mapping = jax.jit(baselines.apply_mapping, static_argnames=('kernel',))
chart_means = jax.jit(baselines.chart_patch_means)


def camera_names(cameras: Sequence[str] | None,
                 root: str | os.PathLike[str]) -> tuple[str, str]:
  """The (A, B) camera folders: `cameras`, dataset.json, or Afifi's."""
  cameras = tuple(cameras or ())
  if cameras:
    if len(cameras) != 2:
      raise ValueError(f'config.data.cameras must name two camera folders, '
                       f'got {cameras!r}.')
    return cameras
  info = pathlib.Path(root) / 'dataset.json'
  if info.is_file():
    slugs = [c['slug'] for c in json.loads(info.read_text())['cameras']]
    return slugs[0], slugs[1]
  return raw2raw_data.CAMERAS


def anchor_indices(count: int, num_anchors: int, seed: int) -> list[int]:
  """The anchor subset of size `num_anchors` (Table 2's ablation); 0 = all."""
  if not num_anchors or num_anchors >= count:
    return list(range(count))
  rng = np.random.default_rng([seed, 7])
  return sorted(rng.choice(count, size=num_anchors, replace=False).tolist())


def load_pairs(root: str | os.PathLike[str], cameras: tuple[str, str],
               split: str, *, keys: Sequence[str] | None = None,
               limit: int = 0) -> list[dict[str, Any]]:
  """Paired images with each camera's metadata (when the layout has it).

  Returns:
    [{'name': key, 'images': (raw_a, raw_b) (h, w, 4) float32 in [0, 1],
      'meta': [meta_a, meta_b]}], meta a dict of 'wb_gains', 'cam_to_srgb',
    'chart_boxes' (those present in paired/<camera>/meta/<key>.npz) or None.
  """
  root = pathlib.Path(root)
  dataset = raw2raw_data.Raw2RawPaired(root, split=split, cameras=cameras)
  chosen = list(dataset.keys) if keys is None else list(keys)
  if limit:
    chosen = chosen[:limit]
  pairs = []
  for key in chosen:
    sample = dataset.load(key)
    pair = {'name': key, 'images': (sample['raw_a'], sample['raw_b']),
            'meta': []}
    for camera in cameras:
      path = root / 'paired' / camera / 'meta' / f'{key}.npz'
      meta = None
      if path.is_file():
        with np.load(path) as f:
          meta = {k: np.asarray(f[k]) for k in _META_KEYS if k in f}
      pair['meta'].append(meta)
    pairs.append(pair)
  if not pairs:
    raise ValueError(f'no {split} pairs in {root} for cameras {cameras}.')
  return pairs


def calibration_fits(anchors: Sequence[dict[str, Any]], source: int,
                     target: int, *, mode: str, kernel: str, channels: int,
                     ridge: float) -> tuple[list[jax.Array], str]:
  """One global mapping per anchor pair: fitted on its chart or its pixels.

  With mode 'chart' (the papers' baseline: a calibration chart shot by both
  cameras), anchors without a chart are skipped; if none has one, every
  anchor's pixels are used instead, and the second return value says which.

  Returns:
    (matrices, 'chart' | 'pixels').
  """
  charted = [a for a in anchors
             if a['meta'][source] is not None and
             len(a['meta'][source].get('chart_boxes', ())) > 0]
  fits, used = [], 'pixels'
  if mode == 'chart' and charted:
    used = 'chart'
    for a in charted:
      boxes = a['meta'][source]['chart_boxes']
      x = chart_means(a['images'][source], boxes)
      y = chart_means(a['images'][target], boxes)
      fits.append(fit_global(x, y, kernel=kernel, channels=channels,
                             ridge=ridge))
  else:
    for a in anchors:
      fits.append(fit_global(a['images'][source][None],
                             a['images'][target][None], kernel=kernel,
                             channels=channels, ridge=ridge))
  return fits, used


def pooled_fit(anchors: Sequence[dict[str, Any]], source: int, target: int
               ) -> jax.Array:
  """One global 3x3 fitted on every anchor pixel (stronger than the paper's)."""
  return fit_global(np.stack([a['images'][source] for a in anchors]),
                    np.stack([a['images'][target] for a in anchors]),
                    kernel='linear', channels=3, ridge=1e-6)


@functools.partial(jax.jit, static_argnames=('beta',))
def fda(image: jax.Array, style: jax.Array, *, beta: float) -> jax.Array:
  """FDA of `image` with the amplitude spectrum of `style` (resized to it)."""
  if style.shape != image.shape:
    style = jax.image.resize(style, image.shape, method='linear',
                             antialias=True)
  return jnp.clip(baselines.fda(image, style, beta=beta), 0.0, 1.0)


def chart_mae(prediction: Any, target: Any, meta: dict[str, Any] | None
              ) -> float:
  """Mean |difference| of the chart patch means; NaN without a chart."""
  boxes = None if meta is None else meta.get('chart_boxes')
  if boxes is None or not len(boxes):
    return float('nan')
  return float(jnp.mean(jnp.abs(chart_means(prediction, boxes) -
                                chart_means(target, boxes))))


def pair_scorer(pairs: Sequence[dict[str, Any]], convention: str
                ) -> tuple[Callable[[Sequence[Any], int],
                                    dict[str, np.ndarray]], str]:
  """score(predictions, target camera index) -> {metric: (N,) numpy}.

  `convention` ('srgb', 'metadata' or 'auto') chooses how DeltaE 2000 sees
  the packed raw: 'srgb' is Afifi's calc_deltaE2000 (greens averaged, read
  as sRGB); 'metadata' renders each image with the target capture's white
  balance and camera -> sRGB matrix (`rawjax.baselines.evaluate`); 'auto'
  takes 'metadata' when every test image has it.

  Returns:
    (score, the convention used).
  """
  has_meta = all(m is not None and 'wb_gains' in m and 'cam_to_srgb' in m
                 for p in pairs for m in p['meta'])
  if convention == 'metadata' and not has_meta:
    raise ValueError("config.eval.delta_e='metadata' needs meta/<name>.npz "
                     '(wb_gains, cam_to_srgb) beside every test image; this '
                     "dataset has none: use 'srgb' or 'auto'.")
  use_meta = convention == 'metadata' or (convention == 'auto' and has_meta)

  def score(predictions, target_index):
    if not use_meta:
      return scoring.score_images(
          predictions, [p['images'][target_index] for p in pairs],
          names=METRICS, view=color.packed_to_rgb)
    out = {k: [] for k in METRICS}
    for pair, prediction in zip(pairs, predictions):
      meta = pair['meta'][target_index]
      values = baselines.evaluate(prediction, pair['images'][target_index],
                                  meta['wb_gains'].astype(np.float32),
                                  meta['cam_to_srgb'].astype(np.float32))
      for k in METRICS:
        out[k].append(float(values[k]))
    return {k: np.asarray(v) for k, v in out.items()}

  return score, ('metadata' if use_meta else 'srgb')
