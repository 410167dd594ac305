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
    the target camera, in Afifi's sRGB convention or through the target
    capture's metadata, under one of `DELTAE_PROTOCOLS` ('target_metadata':
    both images with the target capture's white balance; 'paper': the
    paper's section 3 protocol, `paper_delta_e2000`);
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

from rawjax import baselines, metrics
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.eval import images as eval_images
from rawjax.eval import results as eval_results
from rawjax.eval import scoring
from rawjax.isp import color

__all__ = [
    'check_cameras', 'check_dataset_root', 'check_delta_e', 'DELTAE_PROTOCOLS',
    'DIRECTIONS', 'METRICS', 'anchor_indices', 'apply_mapping', 'calibrated',
    'calibration_fits', 'camera_names', 'chart_illuminant', 'chart_mae',
    'chart_means', 'direction_table', 'fda', 'fit_global', 'flat_scores',
    'load_pairs', 'pair_scorer', 'paper_delta_e2000', 'paper_raw_to_lab',
    'pooled_fit', 'require_train_split', 'shades_of_gray', 'target_illuminant',
    'write_direction_grid',
]

# (tag, source camera index, target camera index)
DIRECTIONS = (('a_to_b', 0, 1), ('b_to_a', 1, 0))
METRICS = ('psnr', 'ssim', 'mae', 'delta_e2000')
# 'target_metadata': prediction and ground truth through the target
# capture's white balance and matrix (ours); 'paper': the paper's protocol
# (`paper_delta_e2000`).
DELTAE_PROTOCOLS = ('target_metadata', 'paper')
_META_KEYS = ('wb_gains', 'cam_to_srgb', 'chart_boxes')
# The ColorChecker's last row, in chart order: white 9.5 ... black 2.
_NEUTRAL_PATCHES = slice(18, 24)
# A neutral patch with a channel mean at or above this is clipped.
_SATURATED = 0.98

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


def shades_of_gray(packed: Any, *, p: float) -> jax.Array:
  """The illuminant of packed raw by shades of grey (Finlayson & Trezzi).

  e_c = (mean over unclipped pixels of rgb_c ** p) ** (1/p) on (R, (Gr+Gb)/2,
  B); p = 1 is grey world, p -> inf white patch. Pixels with a channel at
  or above 0.98 (clipped) are left out.

  Args:
    packed: (h, w, 4) packed raw in [0, 1].
    p: the Minkowski norm, >= 1.

  Returns:
    (3,) the illuminant's camera RGB, green = 1.
  """
  rgb = jnp.clip(color.packed_to_rgb(jnp.asarray(packed, jnp.float32)),
                 0.0, 1.0).reshape(-1, 3)
  keep = jnp.all(rgb < _SATURATED, axis=-1, keepdims=True)
  norm = (jnp.sum(jnp.where(keep, rgb, 0.0) ** p, axis=0) /
          jnp.maximum(jnp.sum(keep), 1)) ** (1.0 / p)
  return norm / norm[1]


def chart_illuminant(packed: Any, boxes: Any) -> jax.Array:
  """The illuminant from a chart's achromatic patches (the paper's GT).

  The sum of the camera RGB means (greens averaged) of the ColorChecker's
  six neutral patches (chart order 19-24), leaving out any patch with a
  channel mean at or above 0.98 (clipped).

  Args:
    packed: (h, w, 4) packed raw in [0, 1].
    boxes: (24, 4) chart boxes in mosaic pixels, chart order
      (`rawjax.baselines.chart_patch_means`).

  Returns:
    (3,) camera RGB, green = 1.
  """
  means = chart_means(packed, np.asarray(boxes)[_NEUTRAL_PATCHES])
  rgb = color.packed_to_rgb(means)
  keep = jnp.all(rgb < _SATURATED, axis=-1, keepdims=True)
  total = jnp.sum(jnp.where(keep, rgb, 0.0), axis=0)
  return total / total[1]


def paper_raw_to_lab(packed: Any, *, illuminant: Any, cam_to_srgb: Any
                     ) -> jax.Array:
  """CIELAB of packed raw as the paper's DeltaE protocol converts it.

  Greens averaged, divided by the illuminant's camera RGB (green = 1: a
  neutral of that light becomes (g, g, g)), the camera's calibration matrix
  to linear sRGB (`rawjax.isp.camera_to_srgb_from_xyz_to_camera` of its
  ColorMatrix, i.e. the target capture's meta `cam_to_srgb`), XYZ (D65)
  and Lab (D65 white). Nothing is clipped: XYZ outside the sRGB gamut and
  negative noise reach Lab (the paper maps to XYZ, not to sRGB).

  Args:
    packed: (h, w, 4) packed raw in [0, 1].
    illuminant: (3,) camera RGB of the light.
    cam_to_srgb: (3, 3) the camera's matrix.

  Returns:
    (h, w, 3) Lab.
  """
  illuminant = jnp.asarray(illuminant, jnp.float32)
  rgb = color.packed_to_rgb(jnp.asarray(packed, jnp.float32))
  balanced = rgb * (illuminant[1] / illuminant)
  return color.xyz_to_lab(color.linear_srgb_to_xyz(
      color.apply_ccm(balanced, cam_to_srgb)))


@functools.partial(jax.jit, static_argnames=('p',))
def paper_delta_e2000(prediction: Any, target: Any, target_illuminant: Any,
                      cam_to_srgb: Any, *, p: float) -> jax.Array:
  """Mean CIEDE2000 of one pair in the paper's protocol (section 3).

  "We first transform each of the mapped raw images and corresponding
  ground-truth images to the CIE XYZ space [...] using the calibration
  matrices provided by each camera manufacturer. The illuminant vectors [...]
  of the mapped images were obtained using the [...] sensor-independent
  illuminant estimation method [9], while we used the achromatic patches in
  the color calibration chart to determine the illuminant vectors of
  ground-truth images." The target's light is `target_illuminant` (its
  chart, `chart_illuminant`); the prediction's light is estimated from the
  prediction itself by `shades_of_gray` with norm `p`, standing in for the
  learned estimator [9], which is not public. Both images use the target
  camera's matrix (`paper_raw_to_lab`), the mean is over all pixels.

  Args:
    prediction, target: (h, w, 4) packed raw in [0, 1].
    target_illuminant: (3,) the target's light, camera RGB.
    cam_to_srgb: (3, 3) the target camera's matrix.
    p: shades-of-grey norm for the prediction's light.

  Returns:
    () the mean DeltaE 2000.
  """
  lab_p = paper_raw_to_lab(prediction, cam_to_srgb=cam_to_srgb,
                           illuminant=shades_of_gray(prediction, p=p))
  lab_t = paper_raw_to_lab(target, cam_to_srgb=cam_to_srgb,
                           illuminant=target_illuminant)
  return metrics.mean_delta_e2000(lab_p, lab_t)


def target_illuminant(image: Any, meta: dict[str, Any]) -> jax.Array:
  """The ground truth's light: its chart's neutrals, else the as-shot one.

  Without a chart in the capture (Afifi's test images are chart-free shots
  of the charted scenes), the capture's as-shot neutral 1 / wb_gains stands
  in for the chart of the equivalent shot.
  """
  boxes = meta.get('chart_boxes')
  if boxes is not None and len(boxes):
    return chart_illuminant(image, boxes)
  neutral = 1.0 / np.asarray(meta['wb_gains'], np.float32)
  return jnp.asarray(neutral / neutral[1])


def pair_scorer(pairs: Sequence[dict[str, Any]], convention: str, *,
                protocol: str = 'target_metadata', estimator_p: float = 6.0
                ) -> tuple[Callable[[Sequence[Any], int],
                                    dict[str, np.ndarray]], str]:
  """score(predictions, target camera index) -> {metric: (N,) numpy}.

  `convention` ('srgb', 'metadata' or 'auto') chooses how DeltaE 2000 sees
  the packed raw: 'srgb' is Afifi's calc_deltaE2000 (greens averaged, read
  as sRGB); 'metadata' renders through the target capture's metadata;
  'auto' takes 'metadata' when every test image has it. With metadata,
  `protocol` (`DELTAE_PROTOCOLS`) chooses the rendering: 'target_metadata'
  puts both images through the target capture's white balance and camera
  -> sRGB matrix, clipped (`rawjax.baselines.evaluate`); 'paper' is the
  paper's protocol (`paper_delta_e2000`, the prediction's light estimated
  by shades of grey with norm `estimator_p`). PSNR, SSIM and MAE are the
  same in all.

  Returns:
    (score, the convention used: 'srgb', 'metadata' or 'paper').
  """
  if protocol not in DELTAE_PROTOCOLS:
    raise ValueError(f'config.eval.deltae_protocol must be one of '
                     f'{DELTAE_PROTOCOLS}, got {protocol!r}.')
  has_meta = all(m is not None and 'wb_gains' in m and 'cam_to_srgb' in m
                 for p in pairs for m in p['meta'])
  if protocol == 'paper' and not has_meta:
    raise ValueError("config.eval.deltae_protocol='paper' needs "
                     'meta/<name>.npz (wb_gains, cam_to_srgb, chart_boxes) '
                     'beside every test image; this dataset has none: use '
                     "'target_metadata' with config.eval.delta_e='srgb'.")
  if convention == 'metadata' and not has_meta:
    raise ValueError("config.eval.delta_e='metadata' needs meta/<name>.npz "
                     '(wb_gains, cam_to_srgb) beside every test image; this '
                     "dataset has none: use 'srgb' or 'auto'.")
  use_meta = convention == 'metadata' or (convention == 'auto' and has_meta)
  if protocol == 'paper' and not use_meta:
    raise ValueError("config.eval.deltae_protocol='paper' renders through "
                     "the metadata: set config.eval.delta_e to 'auto' or "
                     f"'metadata', got {convention!r}.")
  lights = {}
  if protocol == 'paper':
    lights = {(i, t): target_illuminant(p['images'][t], p['meta'][t])
              for i, p in enumerate(pairs) for t in (0, 1)}

  def score(predictions, target_index):
    if not use_meta:
      return scoring.score_images(
          predictions, [p['images'][target_index] for p in pairs],
          names=METRICS, view=color.packed_to_rgb)
    out = {k: [] for k in METRICS}
    for i, (pair, prediction) in enumerate(zip(pairs, predictions)):
      meta = pair['meta'][target_index]
      target = pair['images'][target_index]
      cam_to_srgb = meta['cam_to_srgb'].astype(np.float32)
      values = dict(baselines.evaluate(prediction, target,
                                       meta['wb_gains'].astype(np.float32),
                                       cam_to_srgb))
      if protocol == 'paper':
        values['delta_e2000'] = paper_delta_e2000(
            prediction, target, lights[i, target_index], cam_to_srgb,
            p=float(estimator_p))
      for k in METRICS:
        out[k].append(float(values[k]))
    return {k: np.asarray(v) for k, v in out.items()}

  used = 'srgb' if not use_meta else (
      'paper' if protocol == 'paper' else 'metadata')
  return score, used


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


def check_delta_e(config: Any) -> None:
  """`config.eval.delta_e`, `deltae_protocol`, `deltae_estimator_p` agree.

  The paper's protocol renders through each capture's metadata, so it
  cannot go with Afifi's sRGB reading (`delta_e='srgb'`).
  """
  from rawjax.train import config as config_lib  # pylint: disable=g-import-not-at-top
  config_lib.check_choice(config, 'eval.delta_e', ('auto', 'metadata', 'srgb'))
  protocol = config_lib.check_choice(config, 'eval.deltae_protocol',
                                     DELTAE_PROTOCOLS)
  p = config_lib.check_positive(config, 'eval.deltae_estimator_p')
  if p < 1:
    raise config_lib.ConfigError('eval.deltae_estimator_p', p,
                                 '>= 1 (a Minkowski norm; 1 = grey world)')
  if protocol == 'paper' and config.eval.delta_e == 'srgb':
    raise config_lib.ConfigError(
        'eval.deltae_protocol', protocol,
        "'target_metadata' when config.eval.delta_e='srgb'",
        hint="the paper's protocol needs the capture metadata: set "
        "config.eval.delta_e to 'auto' or 'metadata'")
