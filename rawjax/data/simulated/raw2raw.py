"""The simulated two-camera dataset in Afifi's raw2raw layout.

Both raw-to-raw methods (semi-supervised U-Nets, CSTPP) train on it when
`config.data.root` is empty: the spectral simulator (`rawjax.data.synthetic`)
renders each scene through two camera models and writes unpaired, anchor and
test folders (`rawjax.data.datasets.Raw2RawPaired` / `Raw2RawUnpaired` read
them), with each capture's metadata (white balance, camera -> sRGB, chart
boxes, the sRGB rendering) beside it.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax

from rawjax.data import simulated
from rawjax.io.staging import staged_directory

__all__ = ['dataset_root', 'ensure_synthetic']


def ensure_synthetic(directory: str | os.PathLike[str], *, num_scenes: int,
                     seed: int, height: int, width: int,
                     preset: str = 'raw2raw',
                     progress: bool = True) -> pathlib.Path:
  """A simulated raw2raw dataset under `directory`, generated if absent.

  The dataset folder is named by its settings
  (`raw2raw-<preset>-n<scenes>-s<seed>-<height>x<width>`), so configs with
  different data never share one. Generation writes into a temporary
  sibling folder and renames it into place, so an interrupted run leaves no
  half dataset (and concurrent processes each finish one; the first rename
  wins).

  Args:
    directory: the datasets cache (`rawjax.io.staging.datasets_cache`).
    num_scenes: scenes to simulate (split into unpaired, anchor and test).
    seed: the simulator's seed.
    height, width: mosaic size of each capture (packed: half of each).
    preset: a `rawjax.data.synthetic.PRESETS` name ('raw2raw',
      'multi_illum', ...).
    progress: show the simulator's progress bar.

  Returns:
    The dataset folder (holding dataset.json).
  """
  # The simulator is imported when a dataset is written, not to read one.
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory).expanduser()
  name = f'raw2raw-{preset}-n{num_scenes}-s{seed}-{height}x{width}'
  root = directory / name
  if (root / 'dataset.json').is_file():
    return root
  with staged_directory(root) as staging:
    config = synthetic.PRESETS[preset].replace(height=height, width=width)
    synthetic.write_dataset(staging, preset=preset, num=num_scenes,
                            seed=seed, config=config, progress=progress)
  return root


def dataset_root(data: Any) -> pathlib.Path:
  """`data.root`, or the dataset `data.synthetic` describes (made once).

  Args:
    data: a raw-to-raw config's `data` section: `root`, `cache_dir` and
      `synthetic` (preset, num_scenes, seed, height, width).
  """
  s = data.synthetic
  return simulated.dataset_root(data, build=lambda cache: ensure_synthetic(
      cache, num_scenes=s.num_scenes, seed=s.seed, height=s.height,
      width=s.width, preset=s.preset, progress=jax.process_index() == 0))
