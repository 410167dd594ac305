"""Aligning a phone capture with a high-end camera image (Xing et al. 2022).

    result = align_pair(phone_rgb, camera_rgb)
    python -m rawjax.align --input phone.png --target camera.png --out DIR

Stages (poster Sec. 2; official scripts Changlin-Lee/isp_dataset):
  1. global: SIFT features, Lowe ratio test, RANSAC homography camera ->
     phone (OpenCV; `pip install opencv-python-headless`), the camera image
     warped onto the phone grid in JAX (`warp_homography`, with its mask);
  2. patches: the warped camera image is split into non-overlapping
     `patch_size` patches; for each, the best matching phone patch within
     +-`search_range` px is found by normalised cross-correlation (JAX);
  3. flow filter (`alignment_refine_flow.py`): mean flow magnitude between
     the phone patch and the camera patch (`estimate_flow`), patches above
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
re-alignment (the scripts' folder names).
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
from tqdm import tqdm

from rawjax.isp.warp import flow_magnitude, warp_homography
from rawjax.models.flow import estimate_flow

__all__ = ['AlignConfig', 'AlignResult', 'PatchRecord', 'align_pair',
           'ncc_search', 'sift_homography', 'save_histogram', 'main']


@dataclasses.dataclass(frozen=True)
class AlignConfig:
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


@dataclasses.dataclass
class PatchRecord:
  row: int             # top-left of the patch on the phone grid (before NCC)
  col: int
  shift: tuple[int, int] = (0, 0)   # NCC (dy, dx): phone patch at row+dy
  ncc: float = 0.0
  flow_score: float = float('nan')  # mean flow magnitude, px
  keypoints: tuple[int, int] = (0, 0)
  local_homography: np.ndarray | None = None  # camera patch -> phone patch
  status: str = 'kept'  # or the reason it was rejected


@dataclasses.dataclass
class AlignResult:
  homography: np.ndarray          # camera -> phone pixel coordinates
  records: list[PatchRecord]
  input_patches: np.ndarray       # (K, P, P, C) phone, kept patches
  target_patches: np.ndarray      # (K, P, P, C) camera, aligned to them
  kept: list[int]                 # indices into records


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


def align_pair(phone: np.ndarray, camera: np.ndarray, *,
               config: AlignConfig = AlignConfig(),
               progress: bool = False) -> AlignResult:
  """Aligns `camera` (H2, W2, 3) onto `phone` (H, W, 3), both in [0, 1].

  Returns:
    `AlignResult` with the global homography, a record per patch (its NCC
    shift, flow score, keypoints, local homography and status) and the kept
    patch pairs.
  """
  phone = np.asarray(phone, np.float32)
  camera = np.asarray(camera, np.float32)
  if phone.ndim != 3 or camera.ndim != 3 or phone.shape[-1] != camera.shape[-1]:
    raise ValueError(f'align_pair: expected two (H, W, C) images with the '
                     f'same C, got {phone.shape} and {camera.shape}.')
  cfg = config
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
  records = []
  for row in range(r, h - p - r + 1, p):
    for col in range(r, w - p - r + 1, p):
      rec = PatchRecord(row, col)
      if mask[row:row + p, col:col + p].min() < 1:
        rec.status = 'outside'
      records.append(rec)
  live = [i for i, rec in enumerate(records) if rec.status == 'kept']
  if live:
    templates = np.stack([warped[records[i].row:records[i].row + p,
                                 records[i].col:records[i].col + p]
                          for i in live])
    windows = np.stack([phone[records[i].row - r:records[i].row + p + r,
                              records[i].col - r:records[i].col + p + r]
                        for i in live])
    scores = np.asarray(ncc_search(templates, windows))
    for k, i in enumerate(live):
      best = np.unravel_index(np.argmax(scores[k]), scores[k].shape)
      records[i].shift = (int(best[0]) - r, int(best[1]) - r)
      records[i].ncc = float(scores[k][best])
    inputs = np.stack([_crop(phone, records[i], p) for i in live])
    flow_fn = jax.jit(lambda a, b: estimate_flow(a, b, method=cfg.flow_method))
    flows = np.concatenate([np.asarray(flow_fn(*_padded_batch(
        inputs, templates, k, 8)))[:min(8, len(live) - k)]
                            for k in range(0, len(live), 8)])
    flow_scores = np.asarray(jnp.mean(flow_magnitude(flows), axis=(1, 2)))
  kept, inp, tgt = [], [], []
  iterator = tqdm(list(enumerate(live)), desc='patches', disable=not progress)
  for k, i in iterator:
    rec = records[i]
    rec.flow_score = float(flow_scores[k])
    if rec.flow_score > cfg.max_flow:
      rec.status = 'flow'
      continue
    cam_patch = templates[k]
    if cfg.min_keypoints > 0:
      n1 = len(_sift(inputs[k], cfg.n_features)[0])
      n2 = len(_sift(cam_patch, cfg.n_features)[0])
      rec.keypoints = (n1, n2)
      if n1 <= cfg.min_keypoints and n2 <= cfg.min_keypoints:
        rec.status = 'keypoints'
        continue
    if cfg.realign:
      local, _ = sift_homography(
          cam_patch, inputs[k], ratio=cfg.ratio,
          ransac_threshold=cfg.ransac_threshold, n_features=cfg.n_features,
          min_matches=cfg.min_matches)
      if local is None and cfg.affine_fallback:
        # Too few SIFT matches in the patch: re-warp the camera patch by the
        # affine least-squares fit of the estimated flow instead.
        local = np.linalg.inv(_affine_from_flow(flows[k]))
      if local is None:
        if cfg.drop_unrealigned:
          rec.status = 'realign'
          continue
      else:
        rec.local_homography = local
        cam_patch = np.asarray(_warp_patch(
            cam_patch, np.linalg.inv(local).astype(np.float32)))
    kept.append(i)
    inp.append(inputs[k])
    tgt.append(cam_patch)
  c = phone.shape[-1]
  return AlignResult(
      homography=matrix, records=records,
      input_patches=np.stack(inp) if inp else np.zeros((0, p, p, c)),
      target_patches=np.stack(tgt) if tgt else np.zeros((0, p, p, c)),
      kept=kept)


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


@jax.jit
def _warp_patch(patch, matrix):
  return warp_homography(patch, matrix)[0]


def _crop(image, rec, p):
  y, x = rec.row + rec.shift[0], rec.col + rec.shift[1]
  return image[y:y + p, x:x + p]


def write_result(result: AlignResult, out_dir: str | pathlib.Path, *,
                 raw: np.ndarray | None = None) -> pathlib.Path:
  """Writes `<i>_input.png`, `<i>_gt.png` (and `<i>.npy` raw crops of the
  phone mosaic at the same pixel position), `records.json` and
  `misalignment_histogram.png` into out_dir."""
  from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  p = result.input_patches.shape[1] if len(result.kept) else 0
  for n, i in enumerate(result.kept):
    write_image(out / f'{n:06d}_input.png', result.input_patches[n])
    write_image(out / f'{n:06d}_gt.png', np.clip(result.target_patches[n], 0, 1))
    if raw is not None:
      np.save(out / f'{n:06d}.npy', _crop(raw, result.records[i], p))
  records = [{**dataclasses.asdict(r), 'local_homography': (
      None if r.local_homography is None else r.local_homography.tolist())}
             for r in result.records]
  (out / 'records.json').write_text(json.dumps(
      {'homography': result.homography.tolist(), 'records': records}, indent=1))
  return save_histogram([r.flow_score for r in result.records],
                        out / 'misalignment_histogram.png')


def main(argv: Sequence[str] | None = None) -> pathlib.Path:
  """`python -m rawjax.align --input PHONE --target CAMERA --out DIR`."""
  parser = argparse.ArgumentParser(prog='python -m rawjax.align',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--input', required=True,
                      help='phone image (PNG/JPG/TIFF) or raw file (rendered '
                      'with rawjax.isp.process; its mosaic crops are saved)')
  parser.add_argument('--target', required=True, help='high-end camera image')
  parser.add_argument('--out', required=True)
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
  from rawjax import io as rawio  # pylint: disable=g-import-not-at-top
  raw = None
  if pathlib.Path(args.input).suffix.lower() in ('.dng', '.nef', '.cr2',
                                                 '.arw', '.raf', '.rw2'):
    from rawjax import isp  # pylint: disable=g-import-not-at-top
    image = rawio.read_raw(args.input)
    raw = np.asarray(image.mosaic)
    phone = np.asarray(jax.jit(isp.process)(image.mosaic, image.metadata()))
  else:
    phone = rawio.read_image(args.input)
  camera = rawio.read_image(args.target)
  result = align_pair(phone, camera, config=config, progress=True)
  hist = write_result(result, args.out, raw=raw)
  print(f'{len(result.kept)} of {len(result.records)} patches kept -> '
        f'{args.out}; histogram {hist}')
  return hist


if __name__ == '__main__':
  main()
