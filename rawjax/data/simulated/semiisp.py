"""The simulated SemiISP dataset: prepared arrays from one simulated camera.

SemiISP (`rawjax.methods.semiisp`) trains on it when `config.data.root` is
empty: the spectral simulator (`rawjax.data.synthetic`, preset 'raw2srgb')
renders L + U + T scenes through one camera, written in the
prepared-arrays layout (`rawjax.data.datasets.arrays`) that FiveK and LoL
are converted into.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import numpy as np

from rawjax.data import simulated
from rawjax.data.datasets import arrays
from rawjax.isp import color

__all__ = ['TASKS', 'dataset_root', 'prepare_synthetic']

TASKS = ('isp', 'enhance')


def prepare_synthetic(directory: str | os.PathLike[str], *, task: str,
                      num_labelled: int, num_unlabelled: int, num_test: int,
                      seed: int, height: int, width: int,
                      camera: str = 'nikon-5100',
                      progress: bool = True) -> pathlib.Path:
  """A prepared dataset simulated by `rawjax.data.synthetic` ('raw2srgb').

  Scenes 0 .. L-1 are the labelled pairs, the next U scenes give the
  unlabelled sRGB images (their raws are discarded), the last T the test
  pairs, all captured by one camera (`camera`, a built-in profile slug).
  Task 'isp': 'raw' = packed raw with greens averaged (camera RGB on the
  Bayer-cell grid, with the preset's shot + read noise), 'srgb' = the
  reference rendering pooled 2x2 to that grid. Task 'enhance' (a LoL
  stand-in): 'srgb' is that rendering, 'raw' its low-light version
  srgb_encode(e * srgb_decode(srgb)) with a per-image exposure
  e ~ U(0.05, 0.25).

  Args:
    directory: the folder to write (returned at once if it holds a
      dataset.json).
    task: 'isp' or 'enhance'.
    num_labelled, num_unlabelled, num_test: L, U and T.
    seed: the simulator's seed (and the exposures').
    height, width: mosaic size of each capture; the arrays are
      (height / 2, width / 2).
    camera: the camera profile slug.
    progress: show the simulator's progress bar.

  Returns:
    `directory`.
  """
  # The simulator is imported when a dataset is written, not to read one.
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  if task not in TASKS:
    raise ValueError(f'prepare_synthetic: task must be one of {TASKS}, got '
                     f'{task!r}.')
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'dataset.json').is_file():
    return directory
  config = synthetic.PRESETS['raw2srgb'].replace(height=height, width=width)
  total = num_labelled + num_unlabelled + num_test
  raws, srgbs = [], []
  darken = np.random.default_rng([seed, 11])
  for scene in synthetic.generate_scenes(seed, total, config=config,
                                         cameras=[camera], progress=progress):
    capture = next(iter(scene.captures.values()))
    srgb = arrays.pool2x2(np.asarray(capture.srgb, np.float32))
    if task == 'isp':
      raw = np.asarray(color.packed_to_rgb(capture.packed))
    else:
      exposure = darken.uniform(0.05, 0.25)
      raw = np.asarray(color.srgb_encode(exposure * color.srgb_decode(srgb)))
    raws.append(np.asarray(raw, np.float32))
    srgbs.append(srgb)
  raws, srgbs = np.stack(raws), np.stack(srgbs)
  a, b = num_labelled, num_labelled + num_unlabelled
  return arrays.prepare_arrays(
      directory, labelled_raw=raws[:a], labelled_srgb=srgbs[:a],
      unlabelled_srgb=srgbs[a:b], test_raw=raws[b:], test_srgb=srgbs[b:],
      info={'source': 'rawjax.data.synthetic', 'preset': 'raw2srgb',
            'task': task, 'seed': seed, 'camera': camera,
            'size': [height // 2, width // 2]})


def dataset_root(data: Any, *, task: str) -> pathlib.Path:
  """`data.root` (a prepared folder), or the simulated one (made once).

  Args:
    data: a SemiISP config's `data` section: `root`, `cache_dir` and
      `synthetic` (num_labelled, num_unlabelled, num_test, seed, height,
      width).
    task: 'isp' or 'enhance' (the config's `task`).

  Returns:
    The prepared folder; the simulated one is
    <cache>/semiisp-<task>-l<L>-u<U>-t<T>-s<seed>-<height>x<width>.

  Raises:
    FileNotFoundError: `data.root` is set and holds no prepared dataset.
  """
  s = data.synthetic

  def build(cache: pathlib.Path) -> pathlib.Path:
    name = (f'semiisp-{task}-l{s.num_labelled}-u{s.num_unlabelled}-'
            f't{s.num_test}-s{s.seed}-{s.height}x{s.width}')
    return prepare_synthetic(
        cache / name, task=task, num_labelled=s.num_labelled,
        num_unlabelled=s.num_unlabelled, num_test=s.num_test, seed=s.seed,
        height=s.height, width=s.width, progress=jax.process_index() == 0)

  return simulated.dataset_root(data, build=build,
                                check=arrays.check_prepared)
