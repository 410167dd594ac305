"""Prepared arrays: a dataset converted once into uint16 .npy splits.

The layout SemiISP trains from (`rawjax.methods.semiisp`), written by
`prepare_arrays` from FiveK (`rawjax.data.datasets.fivek.prepare_fivek`),
LoL (`rawjax.data.datasets.lol.prepare_lol`) or the simulator
(`rawjax.data.simulated.semiisp`):

    <root>/
      dataset.json            the source's settings and the counts
      labelled_raw.npy        (L, H, W, 3) input of the labelled pairs
      labelled_srgb.npy       (L, H, W, 3) their targets
      unlabelled_srgb.npy     (U, H, W, 3) sRGB images without a raw
      test_raw.npy            (T, H, W, 3) held-out inputs
      test_srgb.npy           (T, H, W, 3) their targets

Values are stored as round(clip(x, 0, 1) * 65535) uint16 and read back as
float32 x / 65535 in [0, 1]. `load_split` memory-maps the files, so a large
dataset is read image by image.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data import pipeline
from rawjax.io.staging import staged_directory

__all__ = [
    'SCALE', 'SPLITS', 'ArrayDataset', 'check_prepared', 'load_split',
    'pool2x2', 'prepare_arrays', 'progress_iterator', 'resize_landscape',
]

SCALE = 65535.0
SPLITS = ('labelled', 'unlabelled', 'test')
_ARRAYS = ('labelled_raw', 'labelled_srgb', 'unlabelled_srgb', 'test_raw',
           'test_srgb')


def prepare_arrays(directory: str | os.PathLike[str], *,
                   labelled_raw: np.ndarray, labelled_srgb: np.ndarray,
                   unlabelled_srgb: np.ndarray, test_raw: np.ndarray,
                   test_srgb: np.ndarray,
                   unlabelled_raw: np.ndarray | None = None,
                   info: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Writes a prepared dataset folder (atomically: staged, then renamed).

  Args:
    directory: the folder to write; left as it is when it already holds a
      dataset.json (prepared once).
    labelled_raw, labelled_srgb, unlabelled_srgb, test_raw, test_srgb:
      (N, H, W, 3) float images in [0, 1] (clipped); images of one array
      share a size.
    unlabelled_raw: the unlabelled scenes' true raws, (U, H, W, 3), when
      the source has them (the simulator does, FiveK and LoL do not): the
      real-pairs ceiling of the SemiISP comparison trains on them.
    info: settings of the source, stored in dataset.json with the counts.

  Returns:
    `directory`.
  """
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'dataset.json').is_file():
    return directory
  arrays = {'labelled_raw': labelled_raw, 'labelled_srgb': labelled_srgb,
            'unlabelled_srgb': unlabelled_srgb, 'test_raw': test_raw,
            'test_srgb': test_srgb}
  if unlabelled_raw is not None:
    if len(unlabelled_raw) != len(unlabelled_srgb):
      raise ValueError(
          f'prepare_arrays: unlabelled_raw has {len(unlabelled_raw)} images '
          f'but unlabelled_srgb {len(unlabelled_srgb)}; they are pairs.')
    arrays['unlabelled_raw'] = unlabelled_raw
  with staged_directory(directory) as staging:
    staging.mkdir()
    for name, array in arrays.items():
      array = np.asarray(array, np.float32)
      if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f'prepare_arrays: {name} must be (N, H, W, 3), got '
                         f'{array.shape}.')
      np.save(staging / f'{name}.npy',
              np.round(np.clip(array, 0.0, 1.0) * SCALE).astype(np.uint16))
    summary = dict(info or {})
    summary['counts'] = {k: int(len(v)) for k, v in arrays.items()}
    (staging / 'dataset.json').write_text(json.dumps(summary, indent=1))
  return directory


def check_prepared(root: str | os.PathLike[str]) -> None:
  """Raises FileNotFoundError unless `root` holds a prepared dataset.json."""
  root = pathlib.Path(root)
  if not (root / 'dataset.json').is_file():
    raise FileNotFoundError(
        f'{root} is not a prepared dataset (no dataset.json); convert FiveK '
        '/ LoL once with rawjax.data.datasets.fivek.prepare_fivek / '
        'rawjax.data.datasets.lol.prepare_lol.')


def load_split(root: str | os.PathLike[str], split: str, *,
               limit: int = 0, with_raw: bool = False
               ) -> dict[str, np.ndarray]:
  """One split of a prepared folder as uint16 memory maps.

  Args:
    root: the prepared folder.
    split: 'labelled', 'unlabelled' or 'test'.
    limit: keep the first `limit` images (0 = all).
    with_raw: for 'unlabelled', also the scenes' true raws (only simulated
      folders store them; `prepare_arrays(unlabelled_raw=)`).

  Returns:
    {'raw', 'srgb'} ({'srgb'} for 'unlabelled' unless `with_raw`), each
    (N, H, W, 3) uint16.

  Raises:
    FileNotFoundError: a file of the split is missing (for the unlabelled
      raws: the folder was prepared without them).
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
  root = pathlib.Path(root)
  fields = (('srgb',) if split == 'unlabelled' and not with_raw else
            ('raw', 'srgb'))
  out = {}
  for field in fields:
    path = root / f'{split}_{field}.npy'
    if not path.is_file():
      if split == 'unlabelled' and field == 'raw':
        raise FileNotFoundError(
            f'the prepared dataset {root} has no unlabelled_raw.npy: the '
            "unlabelled scenes' true raws exist only in folders the "
            'simulator wrote since they are stored (FiveK and LoL have '
            'none); delete a cached simulated folder to have it rewritten.')
      raise FileNotFoundError(f'the prepared dataset {root} lacks '
                              f'{path.name}.')
    array = np.load(path, mmap_mode='r')
    out[field] = array[:limit] if limit else array
  return out


class ArrayDataset:
  """Random access to a loaded split: dicts of float32 images in [0, 1].

  Args:
    arrays: field -> (N, H, W, 3) uint16 array (`load_split`).
    minimum: the split is repeated to at least this many samples, so that
      one global batch fits (100 pairs, batch 128...).
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], *,
               minimum: int = 1):
    self.arrays = dict(arrays)
    self.fields = {k: pipeline.Field('image') for k in self.arrays}
    self.count = len(next(iter(self.arrays.values())))
    if self.count == 0:
      raise ValueError('ArrayDataset: the split is empty.')
    self.repeats = max(1, -(-minimum // self.count))

  def __len__(self) -> int:
    return self.count * self.repeats

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index %= self.count
    return {k: np.asarray(v[index], np.float32) / SCALE
            for k, v in self.arrays.items()}


# --- helpers of the preparations ----------------------------------------------


def pool2x2(image: np.ndarray) -> np.ndarray:
  """(H, W, C) -> (H // 2, W // 2, C) mean of 2 x 2 blocks.

  Brings a rendering onto its raw's Bayer-cell grid; an odd last row or
  column is dropped.
  """
  h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
  image = image[:h, :w]
  return image.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


def resize_landscape(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """(h, w, C) turned to landscape (if portrait), resized to `size` (H, W).

  Antialiased bilinear, float32.
  """
  if image.shape[0] > image.shape[1]:
    image = np.swapaxes(image, 0, 1)
  return np.asarray(jax.image.resize(
      jnp.asarray(image, jnp.float32), (*size, image.shape[-1]),
      method='linear', antialias=True))


def progress_iterator(enabled: bool) -> Callable[[Iterable[Any]],
                                                 Iterable[Any]]:
  """`iterable -> iterable` with a tqdm bar (per image) when `enabled`."""
  if not enabled:
    return lambda x: x
  import tqdm  # pylint: disable=g-import-not-at-top
  return lambda x: tqdm.tqdm(x, unit='image')
