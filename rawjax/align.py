"""Aligning a phone capture with a high-end camera image (Xing et al. 2022).

    result = align_pair(phone_rgb, camera_rgb, cell=2)
    write_pairs(result, out, mosaic=phone_mosaic, metadata=raw_metadata,
                split='train', name='scene-0')
    python -m rawjax.align --input phone.dng --target camera.png --out DIR

The output is the kernel-prediction ISP's training data: `DIR/<split>/`
holds one `rawjax.data.datasets.kpn_pairs.PairFolder` .npz per patch (packed
phone raw, aligned camera sRGB, the classic pipeline's metadata) and, per
aligned image, `<name>.manifest.json` with every patch's kept/rejected flag,
misalignment score and alignment record, which `PairFolder` honours.

Stages (poster Sec. 2; official scripts Changlin-Lee/isp_dataset):
  1. global: SIFT features, Lowe ratio test, RANSAC homography camera ->
     phone (OpenCV; `pip install opencv-python-headless`), the camera image
     warped onto the phone grid in JAX (`warp_homography`, with its mask);
  2. patches: the warped camera image is split into non-overlapping
     `patch_size` patches; for each, the best matching phone patch within
     +-`search_range` px is found by normalised cross-correlation (JAX);
  3. flow filter (`alignment_refine_flow.py`): mean flow magnitude between
     the phone patch and the camera patch (`estimate_flow` with
     `flow_method` 'pyramid', weight-free, or 'pwcnet', the paper's
     estimator, with converted weights `pwcnet_weights`), patches above
     `max_flow` = 1.2 px are rejected;
  4. keypoint filter (`alignment_refine_sift.py`): rejected when both patches
     have <= `min_keypoints` = 40 SIFT keypoints;
  5. per-patch re-alignment (`alignment_realign_sift.py`): SIFT, FLANN
     kd-tree (5 trees, 50 checks), ratio 0.7, > 10 good matches, RANSAC 5.0,
     homography camera patch -> phone patch, camera patch re-warped; a patch
     without enough matches keeps its NCC alignment (`drop_unrealigned=True`
     skips it as the script does; `affine_fallback`, our addition,
     re-warps it by the affine fit of its estimated flow instead).

Defaults from the official scripts: patch 128, ratio 0.7, RANSAC threshold
5.0, SIFT nfeatures 10000, > 10 matches, 40 keypoints, 1.2 px. Not in the
scripts (the global stage is unpublished), chosen here: the global stage
uses the same SIFT/ratio/RANSAC parameters; NCC search range +-8 px on all
channels jointly at integer shifts; patches whose warped camera content is
not fully valid are dropped; the order is flow filter -> keypoint filter ->
re-alignment (the scripts' folder names). With `cell=2` (a raw phone
capture) both crops of a patch move by the same 0 or 1 px so the phone crop
starts on a 2 x 2 CFA cell: every raw patch keeps the sensor's CFA phase
and the NCC shift between the two crops is unchanged.

Thresholds per estimator (docs/flow_and_alignment.md): 'pwcnet' uses the
paper's 1.2 px (the poster's filter is PWC-Net); the weight-free 'pyramid'
measures the true mean displacement of the synthetic warp within 0.07 px
(tests/test_align.py), so the same 1.2 px applies.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from rawjax.isp.warp import flow_magnitude, warp_homography
from rawjax.models.flow import estimate_flow

__all__ = ['AlignConfig', 'AlignResult', 'FLOW_METHODS', 'MANIFEST_SUFFIX',
           'PatchRecord', 'align_pair', 'load_pwcnet_params', 'main',
           'ncc_search', 'save_histogram', 'sift_homography', 'write_pairs']

FLOW_METHODS = ('pyramid', 'pwcnet')
# `<split>/<name>.manifest.json`: the flags `PairFolder` honours.
MANIFEST_SUFFIX = '.manifest.json'
MANIFEST_FORMAT = 'rawjax.align/pairs-1'


@dataclasses.dataclass(frozen=True)
class AlignConfig:
  """Alignment settings (module docstring); `pwcnet_weights` is a converted
  .npz (`python -m rawjax.convert pwcnet`) or the published PyTorch
  checkpoint / an .npz of its tensors, read when `flow_method='pwcnet'`;
  `flow_regularization` is the weight-free estimator's Tikhonov weight
  (`pyramid_flow(regularization=...)`; its default 1e-3; 0.1 for noisy
  phone images, docs/flow_and_alignment.md)."""
  patch_size: int = 128
  search_range: int = 8
  ratio: float = 0.7
  ransac_threshold: float = 5.0
  n_features: int = 10000
  min_matches: int = 10
  min_keypoints: int = 40
  max_flow: float = 1.2
  realign: bool = True
  drop_unrealigned: bool = False
  affine_fallback: bool = True
  flow_method: str = 'pyramid'
  pwcnet_weights: str = ''
  flow_regularization: float = 1e-3


@dataclasses.dataclass
class PatchRecord:
  row: int             # top-left of the camera patch on the phone grid
  col: int
  shift: tuple[int, int] = (0, 0)   # NCC (dy, dx): phone patch at row+dy
  ncc: float = 0.0
  flow_score: float = float('nan')  # mean flow magnitude, px
  keypoints: tuple[int, int] = (0, 0)
  local_homography: np.ndarray | None = None  # camera patch -> phone patch
  status: str = 'kept'  # or the reason it was rejected

  @property
  def phone_origin(self) -> tuple[int, int]:
    """Top-left (row, col) of the phone patch (and its raw crop)."""
    return self.row + self.shift[0], self.col + self.shift[1]


@dataclasses.dataclass
class AlignResult:
  """Every patch's record, and the crops of those that reached the filters.

  `input_patches[k]` (phone) and `target_patches[k]` (camera, aligned to it,
  re-warped when kept and re-aligned) belong to `records[evaluated[k]]`,
  kept or rejected by the flow / keypoint / re-alignment stage; patches
  outside the camera's view have no crop.
  """
  homography: np.ndarray          # camera -> phone pixel coordinates
  records: list[PatchRecord]
  input_patches: np.ndarray       # (E, P, P, C) phone
  target_patches: np.ndarray      # (E, P, P, C) camera
  evaluated: list[int]            # indices into records
  config: AlignConfig = AlignConfig()

  @property
  def kept(self) -> list[int]:
    """Indices into records of the kept patches."""
    return [i for i in self.evaluated if self.records[i].status == 'kept']


def _cv2():
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        'rawjax.align needs OpenCV for SIFT and RANSAC: pip install '
        'opencv-python-headless (the [vision] extra).') from e
  return cv2


def _gray_u8(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image, np.float32)
  if image.ndim == 3:
    image = image @ np.array([0.299, 0.587, 0.114], np.float32)
  return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def _sift(image, n_features):
  cv2 = _cv2()
  return cv2.SIFT_create(nfeatures=n_features).detectAndCompute(
      _gray_u8(image), None)


def sift_homography(source: np.ndarray, destination: np.ndarray, *,
                    ratio: float = 0.7, ransac_threshold: float = 5.0,
                    n_features: int = 10000, min_matches: int = 10
                    ) -> tuple[np.ndarray | None, int]:
  """Homography source -> destination pixel coordinates, or None.

  SIFT on the grey images (values in [0, 1]), FLANN kd-tree matching (5
  trees, 50 checks), k = 2, Lowe ratio test, RANSAC with `ransac_threshold`
  px; None when there are <= `min_matches` good matches.

  Returns:
    (3x3 float64 matrix or None, number of good matches).
  """
  cv2 = _cv2()
  kp1, des1 = _sift(source, n_features)
  kp2, des2 = _sift(destination, n_features)
  if des1 is None or des2 is None or len(kp1) < 2 or len(kp2) < 2:
    return None, 0
  flann = cv2.FlannBasedMatcher({'algorithm': 1, 'trees': 5}, {'checks': 50})
  good = [m for m, n in (p for p in flann.knnMatch(des1, des2, k=2)
                         if len(p) == 2) if m.distance < ratio * n.distance]
  if len(good) <= min_matches:
    return None, len(good)
  src = np.float32([kp1[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
  dst = np.float32([kp2[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
  matrix, _ = cv2.findHomography(src, dst, cv2.RANSAC, ransac_threshold)
  return (None if matrix is None else matrix.astype(np.float64)), len(good)


def _box_sum(x: jax.Array, size: int) -> jax.Array:
  """Sums over all size x size windows (valid) of (H, W) via cumsums."""
  c = jnp.pad(jnp.cumsum(jnp.cumsum(x, 0), 1), ((1, 0), (1, 0)))
  return c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]


@jax.jit
def ncc_search(templates: jax.Array, windows: jax.Array) -> jax.Array:
  """NCC of each template with every same-size crop of its search window.

  Args:
    templates: (K, P, P, C).
    windows: (K, P + 2R, P + 2R, C).

  Returns:
    (K, 2R + 1, 2R + 1) NCC in [-1, 1]; entry (R + dy, R + dx) compares the
    template with window[R + dy : R + dy + P, R + dx : R + dx + P].
  """
  p = templates.shape[1]
  n = p * p * templates.shape[-1]

  def one(t, w):
    t = t - jnp.mean(t)
    cross = jax.lax.conv_general_dilated(
        w[None], t[..., None], (1, 1), 'VALID',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))[0, ..., 0]
    s1 = _box_sum(jnp.sum(w, -1), p)
    s2 = _box_sum(jnp.sum(w * w, -1), p)
    var_w = jnp.maximum(s2 - s1 * s1 / n, 1e-12)
    var_t = jnp.maximum(jnp.sum(t * t), 1e-12)
    return cross / jnp.sqrt(var_w * var_t)

  return jax.vmap(one)(templates, windows)


def save_histogram(scores: Sequence[float], path: str | pathlib.Path, *,
                   threshold: float = 1.2, bin_width: float = 0.1) -> pathlib.Path:
  """Misalignment histogram PNG like the poster's Figure 4 (PIL drawing)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  scores = np.asarray([s for s in scores if np.isfinite(s)], np.float64)
  top = max(3.0, float(np.ceil(scores.max() * 10) / 10) if scores.size else 3)
  edges = np.arange(0.0, top + bin_width, bin_width)
  counts, _ = np.histogram(np.clip(scores, 0, top - 1e-9), edges)
  width, height, left, bottom = 640, 400, 60, 50
  img = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(img)
  plot_w, plot_h = width - left - 20, height - bottom - 40
  peak = max(1, int(counts.max()) if counts.size else 1)
  bar = plot_w / len(counts)
  for i, c in enumerate(counts):
    x0 = left + i * bar
    y0 = height - bottom - plot_h * c / peak
    colour = (70, 120, 200) if edges[i] < threshold else (200, 90, 70)
    draw.rectangle([x0 + 1, y0, x0 + bar - 1, height - bottom], fill=colour)
  draw.line([left, height - bottom, width - 20, height - bottom], fill='black')
  draw.line([left, 40, left, height - bottom], fill='black')
  xt = left + plot_w * threshold / top
  draw.line([xt, 40, xt, height - bottom], fill=(0, 0, 0), width=2)
  for v in np.arange(0, top + 1e-9, 0.5):
    x = left + plot_w * v / top
    draw.text((x - 8, height - bottom + 5), f'{v:.1f}', fill='black')
  draw.text((left, height - 20), 'misalignment: mean flow magnitude (px)',
            fill='black')
  kept = scores[scores <= threshold]
  draw.text((left, 10), f'patches {scores.size}, kept {kept.size} '
            f'(<= {threshold} px), mean kept '
            f'{kept.mean() if kept.size else float("nan"):.2f} px, '
            f'max count {peak}', fill='black')
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  img.save(path)
  return path


def load_pwcnet_params(path: str | pathlib.Path) -> dict[str, Any]:
  """PWC-Net parameters for `flow_method='pwcnet'`.

  Accepts the Flax .npz of `python -m rawjax.convert pwcnet` ('/'-joined
  parameter paths, `rawjax.convert.save_params`), or a sniklaus pytorch-pwc
  state dict (the published `network-default.pytorch` / LiteISPNet's
  `ckpt/pwc-net.pth`, read with torch, or an .npz of its tensors), converted
  with `rawjax.convert.convert_pwcnet`.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: the state dict is not PWC-Net's (the converter names every
      missing / misshapen / unexpected key).
  """
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f'AlignConfig.pwcnet_weights: no file {path} '
                            '(a converted .npz or the PyTorch checkpoint).')
  if path.suffix == '.npz':
    with np.load(path) as f:
      flax_layout = bool(f.files) and all('/' in k for k in f.files)
    if flax_layout:
      return convert.load_params(path)
  return convert.convert_pwcnet(convert.load_state_dict(path))


def _check_config(cfg: AlignConfig) -> None:
  if cfg.flow_method not in FLOW_METHODS:
    raise ValueError(f'AlignConfig.flow_method={cfg.flow_method!r}: expected '
                     f'one of {FLOW_METHODS}.')
  if cfg.flow_method == 'pwcnet' and not cfg.pwcnet_weights:
    raise ValueError(
        "AlignConfig.flow_method='pwcnet' needs pwcnet_weights=<path> "
        '(--pwcnet-weights): the .npz of `python -m rawjax.convert pwcnet '
        "network-default.pytorch pwcnet.npz` (sniklaus' PWC-Net, LiteISPNet's "
        "ckpt/pwc-net.pth) or that checkpoint itself; flow_method='pyramid' "
        'needs no weights.')
  if cfg.flow_method == 'pyramid' and cfg.pwcnet_weights:
    raise ValueError(
        f'AlignConfig.pwcnet_weights={cfg.pwcnet_weights!r} is only read by '
        "flow_method='pwcnet' (flow_method is 'pyramid').")
  if not cfg.flow_regularization > 0:
    raise ValueError(f'AlignConfig.flow_regularization='
                     f'{cfg.flow_regularization} must be > 0.')
  if cfg.patch_size < 16 or cfg.search_range < 0:
    raise ValueError(f'AlignConfig: patch_size={cfg.patch_size} must be >= 16 '
                     f'and search_range={cfg.search_range} >= 0.')


@functools.partial(jax.jit, static_argnames=('method', 'regularization'))
def _mean_flow(params, phone, camera, *, method, regularization):
  """(N, P, P, C) x2 -> per-patch flows and mean flow magnitudes (px)."""
  options = {} if method == 'pwcnet' else {'regularization': regularization}
  flows = estimate_flow(phone, camera, method=method, params=params,
                        **options)
  return flows, jnp.mean(flow_magnitude(flows), axis=(1, 2))


def _flow_scores(cfg: AlignConfig, phone: np.ndarray, camera: np.ndarray,
                 *, batch: int) -> tuple[np.ndarray, np.ndarray]:
  """Flows (K, P, P, 2) camera -> phone patch and their mean magnitudes.

  Batches of `batch`, the last one zero-padded, so one compilation serves
  every image of a size.
  """
  params = (None if cfg.flow_method == 'pyramid' else
            jax.tree.map(jnp.asarray, load_pwcnet_params(cfg.pwcnet_weights)))
  flows, scores = [], []
  for k in range(0, len(phone), batch):
    a, b = _padded_batch(phone, camera, k, batch)
    f, s = _mean_flow(params, a, b, method=cfg.flow_method,
                      regularization=float(cfg.flow_regularization))
    n = min(batch, len(phone) - k)
    flows.append(np.asarray(f)[:n])
    scores.append(np.asarray(s)[:n])
  return np.concatenate(flows), np.concatenate(scores)


def align_pair(phone: np.ndarray, camera: np.ndarray, *,
               config: AlignConfig = AlignConfig(), cell: int = 1,
               progress: bool = False) -> AlignResult:
  """Aligns `camera` (H2, W2, C) onto `phone` (H, W, C), both in [0, 1].

  Args:
    phone, camera: the two images, float in [0, 1].
    config: `AlignConfig`.
    cell: phone crops start on multiples of `cell` pixels (2 for a Bayer
      phone raw: the raw crop keeps the sensor's CFA phase); the camera crop
      moves with it, so the NCC shift is kept.
    progress: a tqdm bar over the patches.

  Returns:
    `AlignResult` with the global homography, a record per patch (its NCC
    shift, flow score, keypoints, local homography and status) and the crops
    of the patches that reached the filters.

  Raises:
    ValueError: bad shapes or `config` (e.g. 'pwcnet' without weights), or no
      global homography.
  """
  cfg = config
  _check_config(cfg)
  phone = np.asarray(phone, np.float32)
  camera = np.asarray(camera, np.float32)
  if phone.ndim != 3 or camera.ndim != 3 or phone.shape[-1] != camera.shape[-1]:
    raise ValueError(f'align_pair: expected two (H, W, C) images with the '
                     f'same C, got {phone.shape} and {camera.shape}.')
  if cell not in (1, 2):
    raise ValueError(f'align_pair: cell must be 1 or 2, got {cell}.')
  matrix, n_good = sift_homography(
      camera, phone, ratio=cfg.ratio, ransac_threshold=cfg.ransac_threshold,
      n_features=cfg.n_features, min_matches=cfg.min_matches)
  if matrix is None:
    raise ValueError(f'align_pair: no global homography ({n_good} good SIFT '
                     f'matches, need > {cfg.min_matches}).')
  h, w = phone.shape[:2]
  warped, mask = jax.jit(warp_homography, static_argnames='shape')(
      camera, np.linalg.inv(matrix).astype(np.float32), shape=(h, w))
  warped, mask = np.asarray(warped), np.asarray(mask)[..., 0]
  p, r = cfg.patch_size, cfg.search_range
  # Cell snapping moves a camera crop up/left by up to cell - 1 px.
  m = cell - 1
  records = []
  for row in range(max(r, m), h - p - r + 1, p):
    for col in range(max(r, m), w - p - r + 1, p):
      rec = PatchRecord(row, col)
      if mask[row - m:row + p, col - m:col + p].min() < 1:
        rec.status = 'outside'
      records.append(rec)
  live = [i for i, rec in enumerate(records) if rec.status == 'kept']
  c = phone.shape[-1]
  if not live:
    empty = np.zeros((0, p, p, c), np.float32)
    return AlignResult(matrix, records, empty, empty, [], cfg)
  templates = np.stack([_crop(warped, records[i].row, records[i].col, p)
                        for i in live])
  windows = np.stack([phone[records[i].row - r:records[i].row + p + r,
                            records[i].col - r:records[i].col + p + r]
                      for i in live])
  # Padded to one batch size per image size, so a dataset of equal-sized
  # images compiles the search once.
  pad = len(records) - len(live)
  scores = np.asarray(ncc_search(
      np.concatenate([templates, np.zeros((pad,) + templates.shape[1:],
                                          np.float32)]),
      np.concatenate([windows, np.zeros((pad,) + windows.shape[1:],
                                        np.float32)])))[:len(live)]
  for k, i in enumerate(live):
    rec = records[i]
    best = np.unravel_index(np.argmax(scores[k]), scores[k].shape)
    rec.ncc = float(scores[k][best])
    dy, dx = int(best[0]) - r, int(best[1]) - r
    # Snap the phone crop to the CFA cell; the camera crop follows.
    sy, sx = (rec.row + dy) % cell, (rec.col + dx) % cell
    rec.row, rec.col, rec.shift = rec.row - sy, rec.col - sx, (dy, dx)
    templates[k] = _crop(warped, rec.row, rec.col, p)
  inputs = np.stack([_crop(phone, *records[i].phone_origin, p) for i in live])
  # The batch depends on the image size only (all patches of a small image
  # in one call; at most 16 at a time for memory).
  flows, flow_scores = _flow_scores(cfg, inputs, templates,
                                    batch=min(len(records), 16))
  targets = templates.copy()
  # The warped camera image and its mask, framed by p / 4 invalid pixels:
  # every re-warp crop has one shape (one compilation).
  framed = np.pad(np.concatenate([warped, mask[..., None]], axis=-1),
                  ((p // 4, p // 4), (p // 4, p // 4), (0, 0)))
  iterator = tqdm(list(enumerate(live)), desc='patches', disable=not progress)
  for k, i in iterator:
    rec = records[i]
    rec.flow_score = float(flow_scores[k])
    if rec.flow_score > cfg.max_flow:
      rec.status = 'flow'
      continue
    if cfg.min_keypoints > 0:
      n1 = len(_sift(inputs[k], cfg.n_features)[0])
      n2 = len(_sift(templates[k], cfg.n_features)[0])
      rec.keypoints = (n1, n2)
      if n1 <= cfg.min_keypoints and n2 <= cfg.min_keypoints:
        rec.status = 'keypoints'
        continue
    if cfg.realign:
      local, _ = sift_homography(
          templates[k], inputs[k], ratio=cfg.ratio,
          ransac_threshold=cfg.ransac_threshold, n_features=cfg.n_features,
          min_matches=cfg.min_matches)
      if local is None and cfg.affine_fallback:
        # Too few SIFT matches in the patch: re-warp the camera patch by the
        # affine least-squares fit of the estimated flow instead.
        local = np.linalg.inv(_affine_from_flow(flows[k]))
      if local is None:
        if cfg.drop_unrealigned:
          rec.status = 'realign'
      else:
        # Re-warped from the whole warped camera image, not the crop, so
        # the patch border samples real content (no black frame in the
        # target); a local homography reaching outside the valid camera
        # view keeps the NCC alignment.
        rewarped, valid = _rewarp(framed, rec.row, rec.col, p,
                                  np.linalg.inv(local))
        if valid:
          rec.local_homography = local
          targets[k] = rewarped
        elif cfg.drop_unrealigned:
          rec.status = 'realign'
  return AlignResult(homography=matrix, records=records,
                     input_patches=inputs, target_patches=targets,
                     evaluated=live, config=cfg)


def _padded_batch(a, b, start, size):
  """a[start:start+size], b[...] padded with zeros to `size` (one compile)."""
  def pad(x):
    x = x[start:start + size]
    return np.concatenate([x, np.zeros((size - len(x),) + x.shape[1:],
                                       x.dtype)]) if len(x) < size else x
  return pad(a), pad(b)


def _affine_from_flow(flow: np.ndarray) -> np.ndarray:
  """3x3 M (output -> input coords) with M z ~= z + flow(z), least squares."""
  h, w = flow.shape[:2]
  ys, xs = np.meshgrid(np.arange(h, dtype=np.float64),
                       np.arange(w, dtype=np.float64), indexing='ij')
  design = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)], -1)
  target = np.stack([xs.ravel() + flow[..., 0].ravel(),
                     ys.ravel() + flow[..., 1].ravel()], -1)
  coef, *_ = np.linalg.lstsq(design, target, rcond=None)
  return np.vstack([coef.T, [0.0, 0.0, 1.0]])


@functools.partial(jax.jit, static_argnames='size')
def _warp_patch(image, matrix, *, size):
  return warp_homography(image, matrix, shape=(size, size))


def _rewarp(framed, row, col, p, inverse_local):
  """Camera patch at (row, col) re-warped by the local homography.

  out(z) = template(L^-1 z) with template(q) = warped(row + q), sampled from
  a crop with a margin of m = p / 4 px so content beyond the patch is used.

  Args:
    framed: the warped camera image with its mask as a last channel,
      zero-padded by m on each side.

  Returns:
    ((p, p, C) patch, whether every sample was inside the valid view).
  """
  m = p // 4
  crop = framed[row:row + p + 2 * m, col:col + p + 2 * m]
  shift = np.array([[1.0, 0.0, m], [0.0, 1.0, m], [0.0, 0.0, 1.0]])
  matrix = (shift @ inverse_local).astype(np.float32)
  out, inside = _warp_patch(crop, matrix, size=p)
  out, inside = np.asarray(out), np.asarray(inside)
  ok = bool(inside.min() >= 1) and bool(out[..., -1].min() > 1 - 1e-3)
  return out[..., :-1], ok


def _crop(image, y, x, p):
  return image[y:y + p, x:x + p]


def _record_json(rec: PatchRecord) -> dict[str, Any]:
  out = dataclasses.asdict(rec)
  out['local_homography'] = (None if rec.local_homography is None else
                             rec.local_homography.tolist())
  out['flow_score'] = (None if not np.isfinite(rec.flow_score) else
                       rec.flow_score)
  out['phone_origin'] = list(rec.phone_origin)
  return out


def write_pairs(result: AlignResult, out_dir: str | pathlib.Path, *,
                mosaic: np.ndarray, metadata: Any, split: str = 'train',
                name: str = 'image', histogram: bool = True,
                extra: dict[str, Any] | None = None) -> pathlib.Path:
  """Writes the patches as KPN pairs and their manifest; returns the manifest.

  `out_dir/<split>/<name>-<index>.npz` for every evaluated patch (kept or
  rejected by the flow / keypoint / re-alignment stage; index = its record),
  in the `rawjax.data.datasets.kpn_pairs.PairFolder` format:
    raw    (P/2, P/2, 4) float32 packed (R, Gr, Gb, B) phone raw at the phone
           patch's position, black-subtracted and divided by white - black,
           clipped to [0, 1] (`rawjax.isp.levels.normalize`);
    srgb   (P, P, 3) float32 camera patch aligned to it, in [0, 1];
    pattern, wb_gains (3,), cam_to_srgb (3, 3): the phone's classic-pipeline
           metadata (the crop keeps the sensor's CFA phase).
  `out_dir/<split>/<name>.manifest.json`: homography, config and one entry
  per patch: file (or null outside the camera's view), kept, status,
  flow_score (the misalignment score, px) and the alignment record;
  `extra` is stored under 'extra'. With `histogram`,
  `<name>.misalignment.png` (the poster's Figure 4, `save_histogram`).

  Args:
    result: `align_pair` output, computed with `cell=2`.
    mosaic: (H, W) phone Bayer mosaic in sensor units, on the grid of the
      phone image that was aligned.
    metadata: the mosaic's `RawMetadata` (pattern, black_level (4,),
      white_level, wb_gains, cam_to_srgb); a gain map is not applied.

  Raises:
    ValueError: the mosaic does not match the phone grid, or a phone crop
      starts off the 2 x 2 CFA cell (align with cell=2).
  """
  from rawjax.isp import cfa  # pylint: disable=g-import-not-at-top
  from rawjax.isp import levels  # pylint: disable=g-import-not-at-top
  mosaic = np.asarray(mosaic)
  if mosaic.ndim != 2:
    raise ValueError(f'write_pairs: mosaic must be (H, W), got {mosaic.shape}.')
  folder = pathlib.Path(out_dir) / split
  folder.mkdir(parents=True, exist_ok=True)
  p = result.config.patch_size
  black = np.asarray(metadata.black_level, np.float32).reshape(-1)
  white = float(np.asarray(metadata.white_level))
  pattern = str(metadata.pattern)
  entries = {}
  for k, i in enumerate(result.evaluated):
    rec = result.records[i]
    y, x = rec.phone_origin
    if y % 2 or x % 2:
      raise ValueError(f'write_pairs: patch {i} starts at odd phone pixel '
                       f'({y}, {x}); align with align_pair(..., cell=2) so '
                       'raw crops keep the CFA phase.')
    crop = mosaic[y:y + p, x:x + p].astype(np.float32)
    if crop.shape != (p, p):
      raise ValueError(f'write_pairs: mosaic {mosaic.shape} does not cover '
                       f'patch {i} at ({y}, {x}); it must be on the grid of '
                       'the aligned phone image.')
    raw = np.asarray(levels.normalize(cfa.pack(crop, pattern=pattern),
                                      black_level=black, white_level=white))
    file = f'{name}-{i:04d}'
    np.savez(folder / f'{file}.npz', raw=raw,
             srgb=np.clip(result.target_patches[k], 0, 1).astype(np.float32),
             pattern=pattern,
             wb_gains=np.asarray(metadata.wb_gains, np.float32),
             cam_to_srgb=np.asarray(metadata.cam_to_srgb, np.float32))
    entries[i] = file
  patches = [dict(file=entries.get(i), kept=rec.status == 'kept',
                  **_record_json(rec)) for i, rec in enumerate(result.records)]
  manifest = folder / f'{name}{MANIFEST_SUFFIX}'
  manifest.write_text(json.dumps(
      {'format': MANIFEST_FORMAT, 'name': name,
       'homography': result.homography.tolist(),
       'config': dataclasses.asdict(result.config),
       'threshold': result.config.max_flow, 'patches': patches,
       'extra': extra or {}}, indent=1))
  if histogram:
    save_histogram([r.flow_score for r in result.records],
                   folder / f'{name}.misalignment.png',
                   threshold=result.config.max_flow)
  return manifest


_RAW_SUFFIXES = ('.dng', '.nef', '.cr2', '.arw', '.raf', '.rw2')


def main(argv: Sequence[str] | None = None) -> pathlib.Path:
  """`python -m rawjax.align --input RAW --target CAMERA --out DIR`."""
  parser = argparse.ArgumentParser(prog='python -m rawjax.align',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--input', required=True,
                      help='phone raw file (DNG, NEF, ...), rendered with '
                      'rawjax.isp.process for the alignment; its packed '
                      'mosaic crops are the pairs\' raw')
  parser.add_argument('--target', required=True, help='high-end camera image')
  parser.add_argument('--out', required=True,
                      help='PairFolder root; pairs go to OUT/<split>/')
  parser.add_argument('--split', default='train', help='train or test')
  parser.add_argument('--name', default='',
                      help='file-name prefix (default: the input\'s stem)')
  defaults = AlignConfig()
  for field in dataclasses.fields(AlignConfig):
    kind = type(getattr(defaults, field.name))
    if kind is bool:
      parser.add_argument(f'--{field.name.replace("_", "-")}',
                          type=lambda s: s.lower() in ('1', 'true', 'yes'),
                          default=getattr(defaults, field.name))
    else:
      parser.add_argument(f'--{field.name.replace("_", "-")}', type=kind,
                          default=getattr(defaults, field.name))
  args = parser.parse_args(argv)
  config = AlignConfig(**{f.name: getattr(args, f.name)
                          for f in dataclasses.fields(AlignConfig)})
  if pathlib.Path(args.input).suffix.lower() not in _RAW_SUFFIXES:
    parser.error(f'--input {args.input}: the KPN pairs need the phone\'s raw '
                 f'capture ({", ".join(_RAW_SUFFIXES)}), not an RGB image.')
  _check_config(config)
  from rawjax import io as rawio  # pylint: disable=g-import-not-at-top
  from rawjax import isp  # pylint: disable=g-import-not-at-top
  image = rawio.read_raw(args.input)
  metadata = image.metadata()
  phone = np.asarray(jax.jit(isp.process)(image.mosaic, metadata))
  camera = rawio.read_image(args.target)
  result = align_pair(phone, camera, config=config, cell=2, progress=True)
  name = args.name or pathlib.Path(args.input).stem
  manifest = write_pairs(result, args.out, mosaic=np.asarray(image.mosaic),
                         metadata=metadata, split=args.split, name=name)
  print(f'{len(result.kept)} of {len(result.records)} patches kept '
        f'({len(result.evaluated)} written) -> {manifest.parent}; manifest '
        f'{manifest.name}')
  return manifest


if __name__ == '__main__':
  main()
