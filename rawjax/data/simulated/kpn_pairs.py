"""Aligned raw / sRGB .npz pairs of one simulated camera (the KPN's data).

The simulator's two-camera raw2raw dataset (`rawjax.data.simulated.raw2raw`,
'raw2srgb' preset: every capture has its sRGB rendering) exported, for one
camera, into the `rawjax.data.datasets.kpn_pairs.PairFolder` layout:
training pairs from its unpaired and anchor captures, test pairs from its
paired test captures, every file with the classic pipeline's metadata. The
targets are the reference colour stages on the clean, full-resolution
scene (no noise, no optical low-pass), 8-bit quantised.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from rawjax.data.simulated import raw2raw
from rawjax.io.staging import staged_directory

__all__ = ['ensure_synthetic_pairs', 'export_synthetic']


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
