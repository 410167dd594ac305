"""Non-learned raw-to-raw baselines: colour calibration, anchor pairs, FDA.

  * Global calibration: one polynomial mapping (`rawjax.isp.polynomial`:
    3x3, Afifi's 16-term kernelP, CSTPP's 14 terms, Cheung's 10 terms,
    Finlayson's root-polynomial) fitted by least squares to the pixels or
    the chart patches of a training set, applied to every test image.
  * Per-image calibration: the same fit on one image pair (an oracle, since
    it sees the target; it is how Afifi's dataset made its paired ground
    truth, and what the semi-supervised raw2raw paper's post-processing
    reduces a network output to).
  * The anchor-pair generator of the semi-supervised raw-to-raw paper:
    fit a polynomial to corresponding patches of two captures of a scene
    (e.g. their colour charts) and apply it to the whole first image,
    giving a pixel-aligned pseudo pair (`anchor_pair`).
  * FDA (Yang & Soatto, CVPR 2020): swap the low-frequency Fourier amplitude
    of the source for the target's (`fda`).

Images are packed raw (..., h, w, 4) in [0, 1]. Three-channel kernels run on
(R, (Gr + Gb) / 2, B) and write their green to both Gr and Gb.

    python -m rawjax.baselines --data DIR

prints the baseline table of a dataset written by `rawjax.data.synthetic`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks, metrics
from rawjax.isp import color, polynomial

__all__ = [
    'anchor_pair', 'apply_mapping', 'chart_patch_means', 'evaluate', 'fda',
    'fit_global_mapping', 'fit_image_mapping', 'main', 'patch_oracle',
    'raw_to_lab'
]


def _channels_for(kernel: str) -> int:
  return 3 if kernel in ('cheung10', 'hong11', 'polynomial2') else 4


def _kernel_input(packed: jnp.ndarray, kernel: str, channels: int | None):
  channels = channels or _channels_for(kernel)
  if channels == 3:
    return color.packed_to_rgb(packed)
  if channels != 4:
    raise ValueError(f'channels must be 3 (R, G, B) or 4 (R, Gr, Gb, B), got '
                     f'{channels}.')
  return packed


def _to_packed(output: jnp.ndarray) -> jnp.ndarray:
  if output.shape[-1] == 3:
    return output[..., (0, 1, 1, 2)]
  return output


def fit_image_mapping(source: ArrayLike, target: ArrayLike, *, kernel: str,
                      channels: int | None = None,
                      mask: ArrayLike | None = None,
                      ridge: float = 1e-6) -> jax.Array:
  """Per-image least-squares mapping between two packed raw images.

  Args:
    source, target: (..., h, w, 4) packed raw in [0, 1], pixel-aligned.
    kernel: a `rawjax.isp.KERNELS` name.
    channels: 3 to fit on (R, G, B) with greens averaged, 4 for packed
      (default: 3 for the three-channel kernels, else 4; 'linear' with
      channels=3 is the classic 3x3 matrix).
    mask: optional (..., h, w) weights, e.g. 0 at clipped pixels.
    ridge: see `rawjax.isp.fit_polynomial`.

  Returns:
    (..., T, C) mapping, C = channels.
  """
  fn = 'fit_image_mapping'
  source = _checks.as_float(source, name='source', fn=fn)
  target = _checks.as_float(target, name='target', fn=fn)
  _checks.check_channels(source, 4, name='source', fn=fn)
  _checks.check_same_shape(source, target, names='source and target', fn=fn)
  x = _kernel_input(source, kernel, channels)
  y = _kernel_input(target, kernel, x.shape[-1])
  lead = x.shape[:-3]
  n = x.shape[-3] * x.shape[-2]
  weights = None
  if mask is not None:
    weights = jnp.reshape(jnp.asarray(mask, x.dtype), lead + (n,))
  return polynomial.fit_polynomial(
      x.reshape(lead + (n, x.shape[-1])), y.reshape(lead + (n, y.shape[-1])),
      kernel=kernel, weights=weights, ridge=ridge)


def fit_global_mapping(sources: ArrayLike, targets: ArrayLike, *, kernel: str,
                       channels: int | None = None,
                       ridge: float = 1e-6) -> jax.Array:
  """One mapping fitted to all pixels (or patches) of a training set.

  Args:
    sources, targets: (N, h, w, 4) packed images, or (N, P, 4) patch means
      (any leading shape: everything before the channel axis is pooled).
    kernel, channels, ridge: as `fit_image_mapping`.

  Returns:
    (T, C) mapping.
  """
  fn = 'fit_global_mapping'
  sources = _checks.as_float(sources, name='sources', fn=fn)
  targets = _checks.as_float(targets, name='targets', fn=fn)
  _checks.check_channels(sources, 4, name='sources', fn=fn)
  _checks.check_same_shape(sources, targets, names='sources and targets',
                           fn=fn)
  x = _kernel_input(sources, kernel, channels)
  y = _kernel_input(targets, kernel, x.shape[-1])
  return polynomial.fit_polynomial(x.reshape(-1, x.shape[-1]),
                                   y.reshape(-1, y.shape[-1]), kernel=kernel,
                                   ridge=ridge)


def apply_mapping(source: ArrayLike, matrix: ArrayLike, *, kernel: str,
                  clip: bool = True) -> jax.Array:
  """Applies a mapping from `fit_*_mapping` to packed raw.

  Args:
    source: (..., h, w, 4) packed raw.
    matrix: (T, C) or (..., T, C) per image.
    kernel: the kernel it was fitted with (C = 3 or 4 from its shape).
    clip: clip the result to [0, 1], as the raw2raw data script does.

  Returns:
    (..., h, w, 4) packed raw.
  """
  source = _checks.as_float(source, name='source', fn='apply_mapping')
  matrix = jnp.asarray(matrix)
  x = _kernel_input(source, kernel, matrix.shape[-1])
  out = _to_packed(polynomial.apply_polynomial(x, matrix, kernel=kernel))
  return jnp.clip(out, 0.0, 1.0) if clip else out


def patch_oracle(source: ArrayLike, target: ArrayLike, *, patch: int = 16,
                 kernel: str = 'linear', channels: int | None = 3,
                 ridge: float = 1e-6, clip: bool = True) -> jax.Array:
  """The per-patch oracle: a mapping fitted to each patch of the pair.

  The source is cut into non-overlapping `patch` x `patch` squares; each
  square gets its own least-squares mapping to the same square of the
  target (it sees the target: an upper reference of what a spatially
  varying colour transform could reach, not a method). Squares at the
  right and bottom edges are partial when h or w is not a multiple of
  `patch`; their missing pixels are zeros, which add nothing to a
  polynomial fit without a constant term ('linear', the default 3x3).

  Args:
    source, target: (h, w, 4) packed raw, pixel-aligned.
    patch: side of the squares, packed pixels.
    kernel, channels, ridge: as `fit_image_mapping` (default the 3x3 on
      greens-averaged RGB).
    clip: as `apply_mapping`.

  Returns:
    (h, w, 4) mapped source.
  """
  fn = 'patch_oracle'
  source = _checks.as_float(source, name='source', fn=fn)
  target = _checks.as_float(target, name='target', fn=fn)
  _checks.check_channels(source, 4, name='source', fn=fn)
  _checks.check_same_shape(source, target, names='source and target', fn=fn)
  if source.ndim != 3:
    raise ValueError(f'{fn}: expected one (h, w, 4) image, got shape '
                     f'{tuple(source.shape)}.')
  if patch < 1:
    raise ValueError(f'{fn}: patch must be >= 1, got {patch}.')
  h, w = source.shape[:2]
  rows, cols = -(-h // patch), -(-w // patch)
  pad = ((0, rows * patch - h), (0, cols * patch - w), (0, 0))

  def squares(x):
    x = jnp.pad(x, pad).reshape(rows, patch, cols, patch, 4)
    return x.transpose(0, 2, 1, 3, 4).reshape(rows * cols, patch, patch, 4)

  sq = squares(source)
  matrix = fit_image_mapping(sq, squares(target), kernel=kernel,
                             channels=channels, ridge=ridge)
  mapped = apply_mapping(sq, matrix, kernel=kernel, clip=clip)
  mapped = mapped.reshape(rows, cols, patch, patch, 4).transpose(
      0, 2, 1, 3, 4).reshape(rows * patch, cols * patch, 4)
  return mapped[:h, :w]


def chart_patch_means(packed: ArrayLike, boxes: ArrayLike) -> jax.Array:
  """Mean colour of each chart patch.

  Args:
    packed: (..., h, w, C) packed raw.
    boxes: (..., P, 4) int (top, left, bottom, right) in *mosaic* pixels
      (even; bottom/right exclusive), as `Scene.chart_boxes`.

  Returns:
    (..., P, C) patch means.
  """
  fn = 'chart_patch_means'
  packed = _checks.as_float(packed, name='packed', fn=fn)
  boxes = jnp.asarray(boxes) // 2
  h, w = packed.shape[-3:-1]
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None, :]
  b = boxes[..., None, None, :]
  masks = ((rows >= b[..., 0]) & (rows < b[..., 2]) & (cols >= b[..., 1]) &
           (cols < b[..., 3])).astype(packed.dtype)
  sums = jnp.einsum('...phw,...hwc->...pc', masks, packed,
                    precision=jax.lax.Precision.HIGHEST)
  counts = jnp.maximum(masks.sum((-2, -1)), 1.0)[..., None]
  return sums / counts


def anchor_pair(source: ArrayLike, source_patches: ArrayLike,
                target_patches: ArrayLike, *, kernel: str = 'raw2raw16',
                ridge: float = 1e-4) -> tuple[jax.Array, jax.Array]:
  """The semi-supervised raw2raw anchor generator for one or more scenes.

  Fits `kernel` from corresponding patch colours of two captures of the
  same scene (their charts, or any matched regions) and maps the whole
  source image into the target camera's space: a pixel-aligned pseudo pair
  without registering the two captures.

  Args:
    source: (..., h, w, 4) packed raw of camera A.
    source_patches, target_patches: (..., P, 4) corresponding patch means
      (`chart_patch_means`) in cameras A and B.
    kernel: the polynomial (default Afifi's 16-term kernelP).
    ridge: larger than the pixel fits' default, since 24 chart patches
      barely determine 16 terms.

  Returns:
    (mapped source (..., h, w, 4) in [0, 1], mapping (..., T, C)).
  """
  fn = 'anchor_pair'
  source_patches = _checks.as_float(source_patches, name='source_patches',
                                    fn=fn)
  target_patches = _checks.as_float(target_patches, name='target_patches',
                                    fn=fn)
  _checks.check_same_shape(source_patches, target_patches,
                           names='source_patches and target_patches', fn=fn)
  x = _kernel_input(source_patches, kernel, None)
  y = _kernel_input(target_patches, kernel, x.shape[-1])
  matrix = polynomial.fit_polynomial(x, y, kernel=kernel, ridge=ridge)
  return apply_mapping(source, matrix, kernel=kernel), matrix


def fda(source: ArrayLike, target: ArrayLike, *, beta: float = 0.01
        ) -> jax.Array:
  """Fourier domain adaptation (Yang & Soatto 2020, eq. 1).

  The source's Fourier amplitude within the centred square of half-size
  b = floor(beta * min(H, W)) (integer frequencies |f_y|, |f_x| <= b, as the
  authors' numpy `low_freq_mutate_np`) is replaced by the target's; the
  source phase is kept.

  Args:
    source, target: (..., H, W, C) images of the same shape.
    beta: the band's size as a fraction of the image side (paper: 0.01 to
      0.09).

  Returns:
    (..., H, W, C) source content with target low-frequency 'style' (not
    clipped).
  """
  fn = 'fda'
  source = _checks.as_float(source, name='source', fn=fn)
  target = _checks.as_float(target, name='target', fn=fn)
  _checks.check_min_rank(source, 3, name='source', fn=fn,
                         layout='(..., H, W, C)')
  _checks.check_same_shape(source, target, names='source and target', fn=fn)
  if not 0 <= beta <= 0.5:
    raise ValueError(f'{fn}: beta must be in [0, 0.5], got {beta}.')
  h, w = source.shape[-3:-1]
  band = int(np.floor(min(h, w) * beta))
  fy = np.abs(np.fft.fftfreq(h) * h).round()
  fx = np.abs(np.fft.fftfreq(w) * w).round()
  low = jnp.asarray((fy[:, None] <= band) & (fx[None, :] <= band))[..., None]
  spectrum_s = jnp.fft.fft2(source, axes=(-3, -2))
  spectrum_t = jnp.fft.fft2(target, axes=(-3, -2))
  amplitude = jnp.where(low, jnp.abs(spectrum_t), jnp.abs(spectrum_s))
  mixed = amplitude * jnp.exp(1j * jnp.angle(spectrum_s))
  return jnp.real(jnp.fft.ifft2(mixed, axes=(-3, -2))).astype(source.dtype)


def raw_to_lab(packed: ArrayLike, *, wb_gains: ArrayLike,
               cam_to_srgb: ArrayLike) -> jax.Array:
  """CIELAB of packed raw as the reference pipeline displays it.

  Greens averaged, white balance (gains normalised to a minimum of 1, as
  `rawjax.isp.process`), clip at 1, camera -> linear sRGB, clip to [0, 1],
  then XYZ and Lab (D65). Prediction and ground truth both use the target
  camera's metadata, so the Delta E measures the mapping's error as seen.

  Args:
    packed: (..., h, w, 4) packed raw in [0, 1].
    wb_gains: (..., 3) the target capture's white balance.
    cam_to_srgb: (..., 3, 3) the target camera's matrix.

  Returns:
    (..., h, w, 3) Lab.
  """
  gains = jnp.asarray(wb_gains, jnp.float32)
  gains = gains / jnp.min(gains, axis=-1, keepdims=True)
  rgb = jnp.minimum(color.white_balance(color.packed_to_rgb(packed), gains),
                    1.0)
  linear = jnp.clip(color.apply_ccm(rgb, cam_to_srgb), 0.0, 1.0)
  return color.xyz_to_lab(color.linear_srgb_to_xyz(linear))


@jax.jit
def evaluate(prediction: ArrayLike, target: ArrayLike, wb_gains: ArrayLike,
             cam_to_srgb: ArrayLike) -> dict[str, jax.Array]:
  """PSNR, SSIM, MAE and mean CIEDE2000 per image of packed raw.

  PSNR/SSIM with data range 1 over the 4 packed channels, MAE the L1 mean
  (`rawjax.metrics`), Delta E 2000 on `raw_to_lab` of both images with the
  target capture's metadata.

  Args:
    prediction, target: (..., h, w, 4) packed raw in [0, 1].
    wb_gains: (..., 3); cam_to_srgb: (..., 3, 3) of the target captures.

  Returns:
    dict of (...,) arrays: 'psnr', 'ssim', 'mae', 'delta_e2000'.
  """
  lab_p = raw_to_lab(prediction, wb_gains=wb_gains, cam_to_srgb=cam_to_srgb)
  lab_t = raw_to_lab(target, wb_gains=wb_gains, cam_to_srgb=cam_to_srgb)
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'mae': metrics.mae(prediction, target),
          'delta_e2000': metrics.mean_delta_e2000(lab_p, lab_t)}


# ---------------------------------------------------------------- the table --

@dataclasses.dataclass
class _Split:
  names: list[str]
  images: dict[str, np.ndarray]  # camera slug -> (N, h, w, 4)
  wb_gains: dict[str, np.ndarray]  # (N, 3)
  cam_to_srgb: dict[str, np.ndarray]  # (N, 3, 3)
  chart_boxes: list[np.ndarray | None]
  multi: np.ndarray  # (N,) bool


def _load_split(root: pathlib.Path, entries: list[dict], slugs: Sequence[str],
                anchor: bool) -> _Split:
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  folder = 'anchor-raw-rggb' if anchor else 'raw-rggb'
  split = _Split([e['file'] for e in entries], {}, {}, {}, [],
                 np.array([e['multi_illuminant'] for e in entries], bool))
  for slug in slugs:
    images, gains, matrices = [], [], []
    for entry in entries:
      camera_dir = root / 'paired' / slug
      mat = camera_dir / folder / f'{entry["file"]}.mat'
      meta_path = camera_dir / 'meta' / f'{entry["file"]}.npz'
      for path in (mat, meta_path):
        if not path.is_file():
          raise FileNotFoundError(f'baselines: missing {path} (the dataset '
                                  'at --data is incomplete)')
      images.append(scipy_io.loadmat(mat)['raw_rggb'].astype(np.float32))
      with np.load(meta_path) as meta:
        gains.append(meta['wb_gains'])
        matrices.append(meta['cam_to_srgb'])
        if slug == slugs[0]:
          boxes = meta['chart_boxes']
          split.chart_boxes.append(boxes if len(boxes) else None)
    split.images[slug] = np.stack(images)
    split.wb_gains[slug] = np.stack(gains).astype(np.float32)
    split.cam_to_srgb[slug] = np.stack(matrices).astype(np.float32)
  return split


def _unpaired(root: pathlib.Path, slug: str, names: list[str], count: int,
              rng: np.random.Generator) -> np.ndarray:
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  chosen = rng.choice(len(names), size=count, replace=len(names) < count)
  return np.stack([scipy_io.loadmat(
      root / 'unpaired' / slug / 'raw-rggb' / f'{names[i]}.mat')['raw_rggb']
                   for i in chosen]).astype(np.float32)


def baseline_table(data: str | pathlib.Path, *, fda_beta: float = 0.01,
                   seed: int = 0) -> list[dict]:
  """Runs every baseline on a dataset written by `rawjax.data.synthetic`.

  Returns:
    One row per (method, direction, illumination group) with the mean
    PSNR, SSIM, MAE and Delta E 2000 over the test pairs.
  """
  root = pathlib.Path(data)
  info_path = root / 'dataset.json'
  if not info_path.is_file():
    raise FileNotFoundError(f'baselines: {info_path} not found; write the '
                            'dataset with `python -m rawjax.data.synthetic`.')
  info = json.loads(info_path.read_text())
  slugs = [c['slug'] for c in info['cameras']][:2]
  anchors = _load_split(root, info['splits']['anchor'], slugs, anchor=True)
  tests = _load_split(root, info['splits']['test'], slugs, anchor=False)
  rng = np.random.default_rng(seed)
  rows = []

  def report(method, direction, predictions, target_slug, subset=None):
    subset = np.ones(len(tests.names), bool) if subset is None else subset
    scores = evaluate(predictions, tests.images[target_slug],
                      tests.wb_gains[target_slug],
                      tests.cam_to_srgb[target_slug])
    scores = {k: np.asarray(v) for k, v in scores.items()}
    for group, members in (('single', ~tests.multi), ('multi', tests.multi)):
      members = members & subset
      if not members.any():
        continue
      rows.append({'method': method, 'direction': direction,
                   'illumination': group, 'n': int(members.sum()),
                   **{k: float(v[members].mean()) for k, v in scores.items()}})

  # Jitted once per kernel: op-by-op dispatch would compile every primitive
  # for every new shape, which dominates the run time on small datasets.
  fit_global_mapping_ = jax.jit(fit_global_mapping,
                                static_argnames=('kernel', 'channels'))
  fit_image_mapping_ = jax.jit(fit_image_mapping,
                               static_argnames=('kernel', 'channels'))
  apply_mapping_ = jax.jit(apply_mapping, static_argnames=('kernel',))
  chart_patch_means_ = jax.jit(chart_patch_means)
  fda_ = jax.jit(lambda x, t: jnp.clip(fda(x, t, beta=fda_beta), 0, 1))
  anchor_pair_ = jax.jit(lambda x, p, q: anchor_pair(x, p, q)[0])
  has_chart = np.array([b is not None for b in tests.chart_boxes])
  for a, b in ((slugs[0], slugs[1]), (slugs[1], slugs[0])):
    direction = f'{a} -> {b}'
    x, y = tests.images[a], tests.images[b]
    report('identity (no mapping)', direction, x, b)
    targets = _unpaired(root, b, info['splits']['unpaired'][b], len(x), rng)
    report(f'FDA (beta {fda_beta})', direction, fda_(x, targets), b)
    for kernel, channels, label in (('linear', 3, '3x3'),
                                    ('raw2raw16', 4, '16-term kernelP'),
                                    ('cstpp14', 4, '14-term CSTPP')):
      matrix = fit_global_mapping_(anchors.images[a], anchors.images[b],
                                   kernel=kernel, channels=channels)
      report(f'global {label} (anchor pixels)', direction,
             apply_mapping_(x, matrix, kernel=kernel), b)
    chart_anchors = [i for i, boxes in enumerate(anchors.chart_boxes)
                     if boxes is not None]
    if chart_anchors:
      boxes = np.stack([anchors.chart_boxes[i] for i in chart_anchors])
      patches_a = chart_patch_means_(anchors.images[a][chart_anchors], boxes)
      patches_b = chart_patch_means_(anchors.images[b][chart_anchors], boxes)
      matrix = fit_global_mapping_(patches_a, patches_b, kernel='linear',
                                   channels=3)
      report('global 3x3 (anchor charts)', direction,
             apply_mapping_(x, matrix, kernel='linear'), b)
    for kernel, channels, label in (('linear', 3, '3x3'),
                                    ('cheung10', 3, '10-term Cheung'),
                                    ('root_polynomial2', 3,
                                     'root-polynomial deg 2'),
                                    ('cstpp14', 4, '14-term CSTPP'),
                                    ('raw2raw16', 4, '16-term kernelP')):
      matrix = fit_image_mapping_(x, y, kernel=kernel, channels=channels)
      report(f'per-image {label} (oracle pixels)', direction,
             apply_mapping_(x, matrix, kernel=kernel), b)
    if has_chart.any():
      idx = np.flatnonzero(has_chart)
      boxes = np.stack([tests.chart_boxes[i] for i in idx])
      mapped = np.array(x)
      mapped[idx] = np.asarray(anchor_pair_(
          x[idx], chart_patch_means_(x[idx], boxes),
          chart_patch_means_(y[idx], boxes)))
      report('anchor pair 16-term (own chart)', direction, mapped, b,
             subset=has_chart)
  return rows


def format_table(rows: list[dict]) -> str:
  """The rows of `baseline_table` as a markdown table."""
  lines = ['| method | direction | illumination | n | PSNR (dB) | SSIM | '
           'MAE | DeltaE2000 |', '|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['method']} | {r['direction']} | {r['illumination']} "
                 f"| {r['n']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                 f"{r['mae']:.4f} | {r['delta_e2000']:.2f} |")
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  """`python -m rawjax.baselines --data DIR [--json PATH]`."""
  parser = argparse.ArgumentParser(
      prog='python -m rawjax.baselines',
      description='Baseline table (PSNR, SSIM, MAE, DeltaE2000) of the '
      'calibration and FDA baselines on a simulated raw2raw dataset.')
  parser.add_argument('--data', required=True,
                      help='folder written by python -m rawjax.data.synthetic')
  parser.add_argument('--fda-beta', type=float, default=0.01)
  parser.add_argument('--json', type=pathlib.Path, default=None,
                      help='also write the rows as JSON here')
  args = parser.parse_args(argv)
  rows = baseline_table(args.data, fda_beta=args.fda_beta)
  print(format_table(rows))
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))
  return rows


if __name__ == '__main__':
  main()
