"""The simulated SemiISP dataset: prepared arrays from one simulated camera.

SemiISP (`rawjax.methods.semiisp`) trains on it when `config.data.root` is
empty: the spectral simulator (`rawjax.data.synthetic`, preset 'raw2srgb',
or 'raw2srgb_v2' with `data.synthetic.preset`) renders L + U + T scenes
through one camera, written in the prepared-arrays layout
(`rawjax.data.datasets.arrays`) that FiveK and LoL are converted into.
"""

from __future__ import annotations

import itertools
import os
import pathlib
from typing import Any

import jax
import numpy as np

from rawjax.data import simulated
from rawjax.data.datasets import arrays
from rawjax.isp import color

__all__ = ['PRESETS', 'TASKS', 'dataset_root', 'prepare_synthetic']

TASKS = ('isp', 'enhance')
# Simulator preset -> the camera that captures the dataset ('raw2srgb_v2':
# its phone, whose camera-like ISP style 'phone' renders the targets).
PRESETS = {'raw2srgb': 'nikon-5100', 'raw2srgb_v2': 'nokia-n900'}


def prepare_synthetic(directory: str | os.PathLike[str], *, task: str,
                      num_labelled: int, num_unlabelled: int, num_test: int,
                      seed: int, height: int, width: int,
                      camera: str | None = None, preset: str = 'raw2srgb',
                      progress: bool = True) -> pathlib.Path:
  """A prepared dataset simulated by `rawjax.data.synthetic`.

  Scenes 0 .. L-1 are the labelled pairs, the next U scenes give the
  unlabelled sRGB images (their raws are kept apart, as
  `unlabelled_raw.npy`, for the real-pairs ceiling), the last T the test
  pairs, all captured by one camera (`camera`, a profile slug; None: the
  preset's, `PRESETS`). Preset 'raw2srgb_v2' draws the unlabelled scenes
  from the unlabelled share of its photograph catalogue, so labelled and
  test scenes never show those photographs.
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
    camera: the camera profile slug (None: the preset's).
    preset: 'raw2srgb' or 'raw2srgb_v2' (`PRESETS`).
    progress: show the simulator's progress bar.

  Returns:
    `directory`.
  """
  # The simulator is imported when a dataset is written, not to read one.
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  if task not in TASKS:
    raise ValueError(f'prepare_synthetic: task must be one of {TASKS}, got '
                     f'{task!r}.')
  if preset not in PRESETS:
    raise ValueError(f'prepare_synthetic: preset must be one of '
                     f'{tuple(PRESETS)}, got {preset!r}.')
  camera = camera or PRESETS[preset]
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'dataset.json').is_file():
    return directory
  config = synthetic.PRESETS[preset].replace(height=height, width=width)
  total = num_labelled + num_unlabelled + num_test
  raws, srgbs = [], []
  darken = np.random.default_rng([seed, 11])
  a, b = num_labelled, num_labelled + num_unlabelled
  if preset == 'raw2srgb':
    # One stream as before this option, so the published datasets (and
    # figures) are reproduced bit for bit.
    scenes = synthetic.generate_scenes(seed, total, config=config,
                                       cameras=[camera], progress=progress)
  else:
    scenes = itertools.chain(*(
        synthetic.generate_scenes(seed, list(indices), config=config,
                                  cameras=[camera], progress=progress,
                                  unlabelled=unlabelled)
        for indices, unlabelled in ((range(a), False), (range(a, b), True),
                                    (range(b, total), False)) if indices))
  for scene in scenes:
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
  return arrays.prepare_arrays(
      directory, labelled_raw=raws[:a], labelled_srgb=srgbs[:a],
      unlabelled_srgb=srgbs[a:b], test_raw=raws[b:], test_srgb=srgbs[b:],
      unlabelled_raw=raws[a:b],
      info={'source': 'rawjax.data.synthetic', 'preset': preset,
            'task': task, 'seed': seed, 'camera': camera,
            'size': [height // 2, width // 2]})


def dataset_root(data: Any, *, task: str) -> pathlib.Path:
  """`data.root` (a prepared folder), or the simulated one (made once).

  Args:
    data: a SemiISP config's `data` section: `root`, `cache_dir` and
      `synthetic` (num_labelled, num_unlabelled, num_test, seed, height,
      width, preset).
    task: 'isp' or 'enhance' (the config's `task`).

  Returns:
    The prepared folder; the simulated one is
    <cache>/semiisp-<task>-l<L>-u<U>-t<T>-s<seed>-<height>x<width>, with
    '-<preset>' appended for presets other than 'raw2srgb'.

  Raises:
    FileNotFoundError: `data.root` is set and holds no prepared dataset.
  """
  s = data.synthetic
  preset = s.get('preset', 'raw2srgb')

  def build(cache: pathlib.Path) -> pathlib.Path:
    name = (f'semiisp-{task}-l{s.num_labelled}-u{s.num_unlabelled}-'
            f't{s.num_test}-s{s.seed}-{s.height}x{s.width}')
    if preset != 'raw2srgb':
      name += f'-{preset}'
    return prepare_synthetic(
        cache / name, task=task, num_labelled=s.num_labelled,
        num_unlabelled=s.num_unlabelled, num_test=s.num_test, seed=s.seed,
        height=s.height, width=s.width, preset=preset,
        progress=jax.process_index() == 0)

  return simulated.dataset_root(data, build=build,
                                check=arrays.check_prepared)
