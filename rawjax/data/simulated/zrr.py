"""Misaligned RAW / sRGB pairs in the ZRR layout, simulated (LiteISPNet's data).

Zhang et al.'s ZRR pairs a phone's raw with a DSLR's photograph of the same
scene: another camera's colours (colour inconsistency) and a small,
spatially varying displacement (misalignment). The simulation reproduces
both with a known truth: the raws of one simulated camera, the sRGB
rendering of *another* camera displaced by a smooth random warp
(`smooth_warp_flow`), and the undisplaced rendering kept beside it for
evaluation. `ensure_synthetic_zrr` writes the dataset once into a folder
named by its settings; `rawjax.data.datasets.zrr.ZRRDataset` reads it.
"""

from __future__ import annotations

import json
import math
import os
import pathlib

import numpy as np

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import zrr
from rawjax.io.staging import staged_directory
from rawjax.isp import cfa
from rawjax.isp.warp import backward_warp

__all__ = ['ensure_synthetic_zrr', 'smooth_warp_flow', 'write_zrr_sample']


def smooth_warp_flow(rng: np.random.Generator, height: int, width: int, *,
                     max_shift: float) -> np.ndarray:
  """A random smooth displacement field (height, width, 2), pixels (x, y).

  Per channel: a random translation in [-max_shift/2, max_shift/2] plus a
  sinusoid of random orientation, phase, 0.3-1 cycles per image and
  amplitude in [0.25, 0.5] max_shift: a spatially varying, parallax-like
  misalignment whose magnitude stays below max_shift. Zero mean over the
  distribution, so an unaligned model cannot learn one global shift.
  """
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
  channels = []
  for _ in range(2):
    shift = rng.uniform(-0.5, 0.5) * max_shift
    angle = rng.uniform(0, 2 * np.pi)
    cycles = rng.uniform(0.3, 1.0)
    amplitude = rng.uniform(0.25, 0.5) * max_shift
    phase = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    channels.append(shift + amplitude * np.sin(2 * np.pi * cycles * t + phase))
  return np.stack(channels, axis=-1).astype(np.float32)


def write_zrr_sample(root: pathlib.Path, folder: str, key: int,
                     scene_seed: int, index: int, *, size: int, margin: int,
                     max_shift: float, preset: str) -> None:
  """Scene `index` of `scene_seed` as ZRR pair `key` of `root/folder`.

  The scene is rendered `margin` pixels larger on every side than the
  size x size crop, so the warp (|d| < max_shift) never samples outside it.
  Writes huawei_raw/<key>.png (the first camera's RGGB mosaic, 16-bit PNG
  of 10-bit counts, black 63 / white 1020), canon/<key>.jpg (the second
  camera's sRGB, warped, JPEG quality 95) and canon_aligned/<key>.png (the
  same rendering unwarped, 8 bits).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
  full = size + 2 * margin
  config = synthetic.PRESETS[preset].replace(height=full, width=full)
  scene = synthetic.generate_scene(scene_seed, index, config=config)
  phone, dslr = (scene.captures[c.slug] for c in synthetic.DEFAULT_CAMERAS[:2])
  half = margin // 2
  packed = phone.packed[half:half + size // 2, half:half + size // 2]
  with pipeline_lib.on_host():
    mosaic = np.asarray(cfa.unpack(packed, pattern='RGGB'))
    flow = smooth_warp_flow(np.random.default_rng([scene_seed, index, 7]),
                            full, full, max_shift=max_shift)
    warped, _ = backward_warp(dslr.srgb, flow, padding='border',
                              apply_mask=False)
    warped = np.asarray(warped)
  counts = np.round(np.clip(mosaic, 0, 1) * (zrr.WHITE_LEVEL -
                                              zrr.BLACK_LEVEL) +
                    zrr.BLACK_LEVEL).astype(np.uint16)
  crop = (slice(margin, margin + size), slice(margin, margin + size))
  write_image(root / folder / 'huawei_raw' / f'{key}.png', counts,
              bit_depth=16)
  target = np.round(np.clip(warped[crop], 0, 1) * 255).astype(np.uint8)
  Image.fromarray(target).save(root / folder / 'canon' / f'{key}.jpg',
                               quality=95)
  write_image(root / folder / 'canon_aligned' / f'{key}.png',
              np.clip(dslr.srgb[crop], 0, 1), bit_depth=8)


def ensure_synthetic_zrr(directory: str | os.PathLike[str], *,
                         num_train: int, num_test: int, seed: int, size: int,
                         max_shift: float, preset: str = 'raw2srgb',
                         progress: bool = True) -> pathlib.Path:
  """A simulated dataset in the ZRR layout under `directory` (made once).

  <root>/{train,test}/huawei_raw/<i>.png: size x size RGGB mosaics of the
  first simulated camera, 10-bit values with ZRR's black 63 / white 1020;
  <root>/{train,test}/canon/<i>.jpg: the *second* camera's sRGB rendering
  of the same scene (JPEG quality 95), displaced by `smooth_warp_flow`
  (|d| < max_shift px, seeded per image); canon_aligned/<i>.png: the same
  rendering without the displacement (the evaluation's true target). The
  scenes are rendered with a margin so the warp never samples outside.
  Written to a temporary folder and renamed, so an interrupted run leaves
  nothing half-made.

  Returns:
    <directory>/zrr-<preset>-n<train>+<test>-s<seed>-<size>-shift<max_shift>.
  """
  directory = pathlib.Path(directory).expanduser()
  name = (f'zrr-{preset}-n{num_train}+{num_test}-s{seed}-{size}-'
          f'shift{max_shift:g}')
  root = directory / name
  if (root / 'dataset.json').is_file():
    return root
  if size % 16:
    raise ValueError(f'synthetic ZRR size must be a multiple of 16, got '
                     f'{size}.')
  margin = 2 * int(math.ceil(max_shift / 2.0 + 1))
  # Test scenes continue the train scenes' indices: no scene is in both.
  jobs = [('train', i, i) for i in range(num_train)] + [
      ('test', i, num_train + i) for i in range(num_test)]
  with staged_directory(root) as staging:
    for folder in ('train', 'test'):
      for sub in ('huawei_raw', 'canon', 'canon_aligned'):
        (staging / folder / sub).mkdir(parents=True)
    iterator = jobs
    if progress:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      iterator = tqdm(jobs, desc='synthetic ZRR', unit='scene')
    for folder, key, index in iterator:
      write_zrr_sample(staging, folder, key, seed, index, size=size,
                       margin=margin, max_shift=max_shift, preset=preset)
    (staging / 'dataset.json').write_text(json.dumps(dict(
        generator='rawjax.data.simulated.zrr.ensure_synthetic_zrr',
        preset=preset, seed=seed, num_train=num_train, num_test=num_test,
        size=size, max_shift=max_shift, margin=margin), indent=1))
  return root
