"""LoL low-light enhancement pairs: LOL (v1), LOL-v2 real and synthetic.

The SemiIE experiments use the three sets in their published layouts:

    <root>/                         version='v1' (LOLdataset.zip)
      our485/low/1.png   our485/high/1.png     485 training pairs
      eval15/low/1.png   eval15/high/1.png     15 test pairs

    <root>/                         version='v2-real' / 'v2-synthetic'
      Real_captured/Train/Low/low00001.png     689 training pairs
      Real_captured/Train/Normal/normal00001.png
      Real_captured/Test/Low/  Real_captured/Test/Normal/   100 test pairs
      Synthetic/Train/Low/r000da54ft.png       900 training pairs (the same
      Synthetic/Train/Normal/r000da54ft.png    name on both sides)
      Synthetic/Test/Low/  Synthetic/Test/Normal/

A low image pairs with the normal-light image of the same name once a
leading 'low' / 'normal' / 'high' is dropped (so low00001 <-> normal00001).

Each sample: 'low' and 'high' (H, W, 3) float32 sRGB in [0, 1] (8-bit PNG
/ 255). Reference grid: the image grid (scale 1). `prepare_lol` converts
a set once into resized prepared arrays (`rawjax.data.datasets.arrays`).
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
from collections.abc import Sequence

import numpy as np

from rawjax import io as rawio
from rawjax.data import sources
from rawjax.data.datasets import _layout, arrays
from rawjax.data.pipeline import Field

__all__ = ['LOLDataset', 'prepare_lol']

_FOLDERS = {
    ('v1', 'train'): ('our485/low', 'our485/high'),
    ('v1', 'test'): ('eval15/low', 'eval15/high'),
    ('v2-real', 'train'): ('Real_captured/Train/Low',
                           'Real_captured/Train/Normal'),
    ('v2-real', 'test'): ('Real_captured/Test/Low',
                          'Real_captured/Test/Normal'),
    ('v2-synthetic', 'train'): ('Synthetic/Train/Low',
                                'Synthetic/Train/Normal'),
    ('v2-synthetic', 'test'): ('Synthetic/Test/Low', 'Synthetic/Test/Normal'),
}
_PREFIX = re.compile(r'^(low|normal|high)', re.IGNORECASE)
_IMAGE_SUFFIXES = ('.png',)


def _pair_key(stem: str) -> str:
  return _PREFIX.sub('', stem)


class LOLDataset(_layout.FileDataset):
  """One LoL set and split (see the module docstring).

  Args:
    root: the folder holding our485/ and eval15/ (v1) or Real_captured/ and
      Synthetic/ (v2).
    version: 'v1', 'v2-real' or 'v2-synthetic'.
    split: 'train' or 'test'.

  Raises:
    DatasetLayoutError: a folder is missing or empty, or an image has no
      partner (each listed).
  """

  name = 'LOL'

  def __init__(self, root: str | os.PathLike[str], *, version: str = 'v1',
               split: str = 'train'):
    if (version, split) not in _FOLDERS:
      raise ValueError(
          f"LOL version must be 'v1', 'v2-real' or 'v2-synthetic' and split "
          f"'train' or 'test', got version={version!r}, split={split!r}.")
    self.version, self.split = version, split
    low_rel, high_rel = _FOLDERS[(version, split)]
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    low_dir = check.require_dir(low_rel, f'low-light images ({split})')
    high_dir = check.require_dir(high_rel, f'normal-light images ({split})')
    lows = check.files(low_dir, _IMAGE_SUFFIXES, 'low-light images')
    highs = check.files(high_dir, _IMAGE_SUFFIXES, 'normal-light images')
    low_by_key = {_pair_key(s): p for s, p in lows.items()}
    high_by_key = {_pair_key(s): p for s, p in highs.items()}
    keys = []
    if low_dir is not None and high_dir is not None and lows and highs:
      keys = check.pair(
          low_by_key, high_by_key,
          right_path=lambda k: high_dir / _partner_name(low_by_key[k], 'high'),
          right_what='normal-light image',
          left_path=lambda k: low_dir / _partner_name(high_by_key[k], 'low'),
          left_what='low-light image')
    check.raise_if_any()
    self.keys = keys
    self._low, self._high = low_by_key, high_by_key
    self.fields = {'low': Field('image'), 'high': Field('image')}

  def load(self, key: str) -> dict[str, np.ndarray]:
    low = self._read(self._low[key], 'low-light image', rawio.read_image)
    high = self._read(self._high[key], 'normal-light image', rawio.read_image)
    for image, path in ((low, self._low[key]), (high, self._high[key])):
      if image.ndim != 3:
        raise self._layout_error('LOL image', path,
                                 f'expected RGB, got shape {image.shape}')
    if low.shape != high.shape:
      raise self._layout_error(
          'normal-light image', self._high[key],
          f'shape {high.shape} differs from its low-light image {low.shape}')
    return {'low': low, 'high': high}


def _partner_name(path, side: str) -> str:
  """The expected file name of `path`'s partner on `side` ('low'/'high')."""
  stem = path.stem
  match = _PREFIX.match(stem)
  if match:
    prefix = match.group(0)
    new = {'low': 'low', 'high': 'normal'}[side]
    if prefix.isupper():
      new = new.upper()
    elif prefix[0].isupper():
      new = new.capitalize()
    stem = new + stem[len(prefix):]
  return stem + path.suffix


def prepare_lol(root: str | os.PathLike[str], out: str | os.PathLike[str], *,
                version: str = 'v1', num_labelled: int = 0,
                unlabelled_dirs: Sequence[str] = (),
                size: Sequence[int] = (400, 600),
                progress: bool = True) -> pathlib.Path:
  """LoL as prepared arrays for SemiIE (SemiISP's enhancement task), once.

  Labelled: the first `num_labelled` training pairs (0 = all; 'raw' = the
  low-light image, 'srgb' = its normal-light one); unlabelled: the
  normal-light images of the remaining training pairs plus every photograph
  under `unlabelled_dirs` (recursive; .png/.jpg/.jpeg/.tif/.tiff,
  EXIF-rotated: e.g. another LoL version's normal-light folder, or
  out-of-domain photographs); test:
  the test pairs. Images are resized to `size` (H, W; portrait images
  turned to landscape first).

  Returns:
    `out`, in the layout of `rawjax.data.datasets.arrays`.
  """
  out = pathlib.Path(out).expanduser()
  if (out / 'dataset.json').is_file():
    return out
  train = LOLDataset(root, version=version, split='train')
  test = LOLDataset(root, version=version, split='test')
  iterate = arrays.progress_iterator(progress)
  resize = functools.partial(arrays.resize_landscape, size=size)
  count = num_labelled or len(train)

  def pairs(dataset, keys):
    samples = [dataset.load(k) for k in iterate(keys)]
    return (np.stack([resize(s['low']) for s in samples]),
            np.stack([resize(s['high']) for s in samples]))

  # Listed before any image is read, so a bad folder fails at once.
  photos = [p for folder in unlabelled_dirs for p in
            sources.folder_sources(pathlib.Path(folder).expanduser(),
                                   recursive=True)]
  labelled = pairs(train, train.keys[:count])
  extra = [train.load(k)['high'] for k in train.keys[count:]]
  extra += [sources.load_source(p) for p in photos]
  if not extra:
    raise ValueError('prepare_lol: no unlabelled images (every training '
                     'pair is labelled and unlabelled_dirs is empty).')
  unlabelled = np.stack([resize(x) for x in extra])
  tests = pairs(test, test.keys)
  return arrays.prepare_arrays(
      out, labelled_raw=labelled[0], labelled_srgb=labelled[1],
      unlabelled_srgb=unlabelled, test_raw=tests[0], test_srgb=tests[1],
      info={'source': 'LOL', 'version': version, 'size': list(size)})
