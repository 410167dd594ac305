"""Aligned raw / sRGB .npz pairs of one simulated camera (the KPN's data).

The simulator's two-camera raw2raw dataset (`rawjax.data.simulated.raw2raw`,
'raw2srgb' preset: every capture has its sRGB rendering) exported, for one
camera, into the `rawjax.data.datasets.kpn_pairs.PairFolder` layout:
training pairs from its unpaired and anchor captures, test pairs from its
paired test captures, every file with the classic pipeline's metadata. The
targets are the reference colour stages on the clean, full-resolution
scene (no noise, no optical low-pass), 8-bit quantised.

`align_simulated` turns such pairs into the output of the paper's data
pipeline: each target becomes a "high-end camera" image seen through a
known warp (`misaligned_view`: a global similarity plus smooth local flow
and local rotations that no shift can undo), which `rawjax.align` aligns
back onto the phone rendering (`rawjax.isp.process` of the raw) and writes
as KPN pairs with their manifests, the kept/rejected flags and, from the
known warp, each patch's true misalignment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data.simulated import raw2raw
from rawjax.io.staging import staged_directory

__all__ = ['Warp', 'align_simulated', 'ensure_aligned_pairs',
           'ensure_synthetic_pairs', 'export_synthetic', 'misaligned_view',
           'random_warp', 'true_misalignment']


def _save_pair(path: pathlib.Path, raw_path: pathlib.Path,
               meta_path: pathlib.Path, *, with_metadata: bool) -> None:
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  raw = scipy_io.loadmat(raw_path)['raw_rggb'].astype(np.float32)
  with np.load(meta_path) as meta:
    arrays = {'raw': raw, 'srgb': meta['srgb'].astype(np.float32) / 255.0}
    if with_metadata:
      arrays.update(pattern=str(meta['pattern']),
                    wb_gains=meta['wb_gains'].astype(np.float32),
                    cam_to_srgb=meta['cam_to_srgb'].astype(np.float32))
  np.savez(path, **arrays)


def export_synthetic(source: str | os.PathLike[str],
                     out: str | os.PathLike[str], *, camera: str = ''
                     ) -> pathlib.Path:
  """A simulated raw2raw-layout dataset as `PairFolder` pairs of one camera.

  train/: the camera's unpaired and anchor captures; test/: its paired test
  captures; every file has pattern, wb_gains and cam_to_srgb (the classic
  pipeline's metadata; the as-shot gains for `data.white_balance`).
  Written into a temporary sibling and renamed, so an interrupted export
  leaves nothing half-written.

  Args:
    source: folder written by `rawjax.data.synthetic.write_dataset` (with
      sRGB, i.e. the 'raw2srgb' preset).
    out: the `PairFolder` root to create (returned at once if it exists).
    camera: camera slug ('' = the first camera of dataset.json).

  Raises:
    ValueError: `camera` is not one of the source's cameras.
  """
  source, out = pathlib.Path(source), pathlib.Path(out)
  if (out / 'test').is_dir():
    return out
  info = json.loads((source / 'dataset.json').read_text())
  camera = camera or info['cameras'][0]['slug']
  slugs = [c['slug'] for c in info['cameras']]
  if camera not in slugs:
    raise ValueError(f'export_synthetic: camera {camera!r} is not in '
                     f'{source} (cameras: {slugs}).')
  splits = info['splits']
  jobs = [('train', source / 'unpaired' / camera, 'raw-rggb', f)
          for f in splits['unpaired'][camera]]
  jobs += [('train', source / 'paired' / camera, 'anchor-raw-rggb', a['file'])
           for a in splits['anchor']]
  jobs += [('test', source / 'paired' / camera, 'raw-rggb', t['file'])
           for t in splits['test']]
  with staged_directory(out, marker='test') as staging:
    for split in ('train', 'test'):
      (staging / split).mkdir(parents=True)
    for split, folder, raw_dir, name in jobs:
      _save_pair(staging / split / f'{name}.npz',
                 folder / raw_dir / f'{name}.mat',
                 folder / 'meta' / f'{name}.npz', with_metadata=True)
  return out


def ensure_synthetic_pairs(directory: str | os.PathLike[str], *,
                           num_scenes: int, seed: int, height: int,
                           width: int, preset: str = 'raw2srgb',
                           camera: str = '', progress: bool = True
                           ) -> pathlib.Path:
  """The simulated pairs of `camera` under `directory`, made on first use.

  Simulates the raw2raw dataset of these settings once
  (`rawjax.data.simulated.raw2raw.ensure_synthetic`) and exports it
  (`export_synthetic`) beside it.

  Returns:
    <directory>/kpn-<raw2raw dataset name>-<camera or 'first'>.
  """
  directory = pathlib.Path(directory).expanduser()
  source = raw2raw.ensure_synthetic(
      directory, num_scenes=num_scenes, seed=seed, height=height,
      width=width, preset=preset, progress=progress)
  return export_synthetic(
      source, directory / f'kpn-{source.name}-{camera or "first"}',
      camera=camera)


@dataclasses.dataclass(frozen=True)
class Warp:
  """Camera pixel (x, y) -> the phone point it shows (pixels, centres at
  integers): q = S (x, y) (similarity about the image centre), then
  q + background(q) + sum of local rotations.

  background(q) = amplitude * (sin(2 pi qx / 400) + cos(2 pi qy / 300),
  cos(2 pi (qx + qy) / 500)) / 2 (smooth, sub-pixel; rigid per patch to
  first order). Each rotation (cy, cx, size, angle) turns the points of a
  size x size box centred on (cy, cx) about its centre by `angle` radians,
  weighted by a box with linear ramps of size / 5 px: displacements from 0
  at the centre to ~angle * size / sqrt(2) at the corners, so no integer
  shift removes them.
  """
  matrix: tuple[tuple[float, ...], ...]   # 3 x 3, camera -> phone
  amplitude: float
  rotations: tuple[tuple[float, float, float, float], ...]

  def __call__(self, x: np.ndarray, y: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(self.matrix, np.float64)
    d = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    qx = (m[0, 0] * x + m[0, 1] * y + m[0, 2]) / d
    qy = (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / d
    a = 0.5 * self.amplitude
    fx = a * (np.sin(2 * np.pi * qx / 400.0) + np.cos(2 * np.pi * qy / 300.0))
    fy = a * 2.0 * np.cos(2 * np.pi * (qx + qy) / 500.0)
    for cy, cx, size, angle in self.rotations:
      ramp = size / 5.0
      weight = (_box(qy, cy - size / 2, cy + size / 2, ramp) *
                _box(qx, cx - size / 2, cx + size / 2, ramp))
      fx = fx + weight * ((np.cos(angle) - 1) * (qx - cx) -
                          np.sin(angle) * (qy - cy))
      fy = fy + weight * (np.sin(angle) * (qx - cx) +
                          (np.cos(angle) - 1) * (qy - cy))
    return qx + fx, qy + fy


def _box(t, lo, hi, ramp):
  return (np.clip((t - lo + ramp) / ramp, 0, 1) *
          np.clip((hi + ramp - t) / ramp, 0, 1))


def random_warp(rng: np.random.Generator, *, height: int, width: int,
                num_rotations: int, rotation_size: int,
                rotation_shift: float = 2.5, amplitude: float = 0.3
                ) -> Warp:
  """A `Warp` for a (height, width) image: scale 0.96..0.99 and rotation
  +-0.02 rad about the centre, translation +-4 px, background `amplitude`
  px, and `num_rotations` local rotations of `rotation_size` px boxes at
  random places, angle +-`rotation_shift` / (0.38 size) (mean displacement
  over the box about `rotation_shift` px)."""
  s = rng.uniform(0.96, 0.99)
  t = rng.uniform(-0.02, 0.02)
  cy, cx = (height - 1) / 2, (width - 1) / 2
  a = np.array([[s * np.cos(t), -s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]])
  offset = np.array([cx, cy]) - a @ np.array([cx, cy]) + rng.uniform(-4, 4, 2)
  matrix = np.eye(3)
  matrix[:2, :2], matrix[:2, 2] = a, offset
  rotations = []
  for _ in range(num_rotations):
    angle = rng.choice([-1, 1]) * rotation_shift / (0.38 * rotation_size)
    rotations.append((float(rng.uniform(0, height)),
                      float(rng.uniform(0, width)), float(rotation_size),
                      float(angle)))
  return Warp(tuple(map(tuple, matrix.tolist())), float(amplitude),
              tuple(rotations))


@jax.jit
def _process(mosaic, metadata):
  from rawjax.isp import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.process(mosaic, metadata)


@jax.jit
def _sample(image, x, y):
  from rawjax.isp.warp import sample_bilinear  # pylint: disable=g-import-not-at-top
  return sample_bilinear(image, x, y)


def misaligned_view(image: np.ndarray, warp: Warp) -> np.ndarray:
  """The camera image (H, W, C): pixel c shows `image` at `warp(c)`
  (bilinear, zero outside), float32 in the image's range."""
  h, w = image.shape[:2]
  ys, xs = np.meshgrid(np.arange(h, dtype=np.float64),
                       np.arange(w, dtype=np.float64), indexing='ij')
  px, py = warp(xs, ys)
  return np.asarray(_sample(jnp.asarray(image, jnp.float32),
                            jnp.asarray(px, jnp.float32),
                            jnp.asarray(py, jnp.float32)))


def true_misalignment(warp: Warp, homography: np.ndarray, record: Any, *,
                      patch_size: int) -> float:
  """Mean true displacement (px) between a patch's two crops after NCC.

  The camera crop at phone-grid pixel z shows phone point
  warp(K^-1 z) (K: the estimated homography camera -> phone, the camera
  image warped by it); the phone crop shows z + shift. This is what the
  flow filter estimates (before the per-patch re-alignment).
  """
  ys, xs = np.meshgrid(np.arange(patch_size) + record.row,
                       np.arange(patch_size) + record.col, indexing='ij')
  k = np.linalg.inv(np.asarray(homography, np.float64))
  d = k[2, 0] * xs + k[2, 1] * ys + k[2, 2]
  cx = (k[0, 0] * xs + k[0, 1] * ys + k[0, 2]) / d
  cy = (k[1, 0] * xs + k[1, 1] * ys + k[1, 2]) / d
  sx, sy = warp(cx, cy)
  return float(np.mean(np.hypot(sx - xs - record.shift[1],
                                sy - ys - record.shift[0])))


def align_simulated(source: str | os.PathLike[str],
                    out: str | os.PathLike[str], *, config: Any, seed: int = 0,
                    num_rotations: int = 2, rotation_shift: float = 2.5,
                    splits: tuple[str, ...] = ('train', 'test'),
                    progress: bool = False) -> pathlib.Path:
  """The paper's data pipeline on simulated pairs: misalign, then align.

  For every pair of `source` (a `PairFolder` whose files carry the classic
  pipeline's metadata): the phone image is `rawjax.isp.process` of its raw,
  the camera image its target seen through `random_warp` (seeded by `seed`
  and the pair's index; rotation boxes of the patch size); `rawjax.align`
  aligns the camera image onto the phone image (`config`, an
  `AlignConfig`, with `cell=2`) and writes the pairs and the manifest
  into `out/<split>/` (the file names start with the source key). Each
  manifest's 'extra' holds the warp and every evaluated patch's
  'true_misalignment' (px, `true_misalignment`). A pair whose global
  homography fails gets a manifest with 'error' and no patches. Written
  into a temporary sibling and renamed (returned at once if it exists).

  Raises:
    ValueError: a source pair has no metadata (pattern, wb_gains,
      cam_to_srgb).
  """
  from rawjax import align  # pylint: disable=g-import-not-at-top
  from rawjax.data.datasets.kpn_pairs import PairFolder  # pylint: disable=g-import-not-at-top
  from rawjax.isp import cfa  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(out)
  if (out / splits[-1]).is_dir():
    return out
  with staged_directory(out, marker=splits[-1]) as staging:
    for split in splits:
      folder = PairFolder(source, split=split)
      (staging / split).mkdir(parents=True)
      keys = folder.keys
      if progress:
        from tqdm import tqdm  # pylint: disable=g-import-not-at-top
        keys = tqdm(keys, desc=f'aligning {split}')
      for index, key in enumerate(keys):
        sample, meta = folder.load(key), folder.metadata(key)
        if meta is None:
          raise ValueError(f'align_simulated: {source}/{split}/{key}.npz has '
                           'no pattern/wb_gains/cam_to_srgb to render the '
                           'phone image.')
        mosaic = np.asarray(cfa.unpack(sample['raw'], pattern=meta.pattern))
        phone = np.asarray(_process(mosaic, meta))
        h, w = phone.shape[:2]
        warp = random_warp(
            np.random.default_rng([seed, splits.index(split), index]), height=h,
            width=w, num_rotations=num_rotations,
            rotation_size=config.patch_size, rotation_shift=rotation_shift)
        camera = misaligned_view(sample['srgb'], warp)
        extra = {'source': key, 'warp': dataclasses.asdict(warp)}
        try:
          result = align.align_pair(phone, camera, config=config, cell=2)
        except ValueError as e:
          (staging / split / f'{key}{align.MANIFEST_SUFFIX}').write_text(
              json.dumps({'format': align.MANIFEST_FORMAT, 'name': key,
                          'error': str(e), 'patches': [], 'extra': extra}))
          continue
        extra['true_misalignment'] = {
            str(i): true_misalignment(warp, result.homography,
                                      result.records[i],
                                      patch_size=config.patch_size)
            for i in result.evaluated}
        align.write_pairs(result, staging, mosaic=mosaic, metadata=meta,
                          split=split, name=key, histogram=False, extra=extra)
  return out


def ensure_aligned_pairs(directory: str | os.PathLike[str], *,
                         num_scenes: int, seed: int, height: int, width: int,
                         config: Any, preset: str = 'raw2srgb',
                         camera: str = '', num_rotations: int = 2,
                         rotation_shift: float = 2.5, progress: bool = True
                         ) -> pathlib.Path:
  """`ensure_synthetic_pairs`, misaligned and re-aligned (`align_simulated`).

  Returns:
    <simulated pairs>-aligned-<hash of the alignment settings>, beside them.
  """
  import hashlib  # pylint: disable=g-import-not-at-top
  source = ensure_synthetic_pairs(
      directory, num_scenes=num_scenes, seed=seed, height=height, width=width,
      preset=preset, camera=camera, progress=progress)
  settings = json.dumps([dataclasses.asdict(config), seed, num_rotations,
                         rotation_shift], sort_keys=True)
  tag = hashlib.sha1(settings.encode()).hexdigest()[:8]
  return align_simulated(source, source.parent / f'{source.name}-aligned-{tag}',
                         config=config, seed=seed, num_rotations=num_rotations,
                         rotation_shift=rotation_shift, progress=progress)
