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
  * `chart_mae`: Table 2's MAE of the colour-chart patch means;
  * `direction_table`, `flat_scores`, `write_direction_grid`: the two
    directions' results as a Markdown table, as the loop's flat scalars and
    as a titled comparison grid.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import baselines
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.eval import images as eval_images
from rawjax.eval import results as eval_results
from rawjax.eval import scoring
from rawjax.isp import color

__all__ = [
    'check_cameras', 'check_dataset_root', 'DIRECTIONS', 'METRICS', 'anchor_indices', 'apply_mapping', 'calibrated',
    'calibration_fits', 'camera_names', 'chart_mae', 'chart_means',
    'direction_table', 'fda', 'fit_global', 'flat_scores', 'load_pairs',
    'pair_scorer', 'pooled_fit', 'require_train_split',
    'write_direction_grid',
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


def require_train_split(split: str, *, method: str) -> None:
  """Raises unless `split` is 'train': a raw-to-raw method's data stream is
  for training only, as its evaluation reads the paired test split here."""
  if split != 'train':
    raise ValueError(f"{method} trains on split 'train' (evaluation reads "
                     f'the paired test split itself), got {split!r}.')


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


def calibrated(inputs: Sequence[Any], fits: Sequence[jax.Array], *,
               kernel: str) -> list[list[jax.Array]]:
  """Every fit applied to every input: one list of outputs per fit."""
  return [[apply_mapping(x, m, kernel=kernel) for x in inputs] for m in fits]


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


def flat_scores(directions: Mapping[str, Mapping[str, Any]],
                metrics: Sequence[str]) -> dict[str, float]:
  """{'<direction>/<method>/<metric>': value} of results['directions']."""
  return {f'{tag}/{method}/{k}': row[k]
          for tag, direction in directions.items()
          for method, row in direction['rows'].items() for k in metrics}


def direction_table(directions: Mapping[str, Mapping[str, Any]], *,
                    metrics: Sequence[str], headers: Sequence[str],
                    digits: Mapping[str, int],
                    labels: Mapping[str, str]) -> list[str]:
  """The Markdown lines of the papers' table: a row per method.

  Args:
    directions: {tag: {'title': 'A -> B', 'rows': {method: results row}}}
      (rows as `rawjax.eval.scoring.summarize` makes them; every direction
      has the same methods).
    metrics: the row keys of the columns, per direction.
    headers: their column titles (same order).
    digits: decimals per metric.
    labels: method -> the table's name for it (default: the key).
  """
  tags = list(directions)
  header = ['Method'] + [f'{directions[t]["title"]} {h}' for t in tags
                         for h in headers]
  rows = []
  for method in directions[tags[0]]['rows']:
    cells = [labels.get(method, method)]
    for t in tags:
      cells += eval_results.metric_cells(directions[t]['rows'][method],
                                         metrics, digits)
    rows.append(cells)
  return eval_results.markdown_table(header, rows)


def write_direction_grid(path: str | os.PathLike[str],
                         pairs: Sequence[dict[str, Any]], *, source: int,
                         target: int, outputs: Sequence[Any],
                         baseline: Sequence[Any], gain: float,
                         count: int) -> None:
  """The comparison grid of one direction, for the first `count` pairs.

  Columns: 'input (A)', 'ours', 'target (B)' (in `rawjax.isp.visualize_raw`),
  '|ours - target| x gain' and '|3x3 - target| x gain' (`error_map`,
  `baseline` the global 3x3 calibration's outputs); a row per test image,
  labelled with its name. Only process 0 writes; nothing for count 0.

  Args:
    path: the PNG to write.
    pairs: `load_pairs` output (the test pairs).
    source, target: camera indices (0 = A, 1 = B) of the direction.
    outputs, baseline: (h, w, 4) outputs of the method and the baseline,
      at least `count` of each, aligned with `pairs`.
    gain: the error maps' display gain.
    count: number of rows.
  """
  count = min(count, len(pairs))
  if not count or jax.process_index() != 0:
    return
  show = lambda x: np.asarray(color.visualize_raw(jnp.asarray(x)))  # noqa: E731
  rows = []
  for i in range(count):
    reference = pairs[i]['images'][target]
    rows.append([show(pairs[i]['images'][source]), show(outputs[i]),
                 show(reference),
                 eval_images.error_map(outputs[i], reference, gain=gain),
                 eval_images.error_map(baseline[i], reference, gain=gain)])
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  camera = 'AB'
  titles = [f'input ({camera[source]})', 'ours',
            f'target ({camera[target]})', f'|ours - target| x {gain:g}',
            f'|3x3 - target| x {gain:g}']
  eval_images.write_image_rows(path, rows, column_titles=titles,
                               row_labels=[p['name'] for p in pairs[:count]])


def check_dataset_root(config: Any, *, paired_splits: Sequence[str] = (
    'anchor', 'test')) -> None:
  """At start: `config.data.root`, when set, is a raw2raw dataset.

  Opens (lists, reads nothing) the unpaired folder of both cameras and the
  paired `paired_splits`, so a wrong folder is named before any work.
  """
  from rawjax.train import config as config_lib  # pylint: disable=g-import-not-at-top

  def layout(root):
    cameras = camera_names(config.data.cameras, root)
    for camera in cameras:
      raw2raw_data.Raw2RawUnpaired(root, camera=camera)
    for split in paired_splits:
      raw2raw_data.Raw2RawPaired(root, split=split, cameras=cameras)

  config_lib.check_existing_path(
      config, 'data.root', what='the raw2raw dataset: paired/, unpaired/',
      layout=layout)


def check_cameras(config: Any) -> None:
  """At start: `config.data.cameras` is () or two camera folder names."""
  from rawjax.train import config as config_lib  # pylint: disable=g-import-not-at-top
  cameras = tuple(config.data.cameras or ())
  if cameras and len(cameras) != 2:
    raise config_lib.ConfigError('data.cameras', cameras,
                                 'two camera folder names (A, B), or ()')
