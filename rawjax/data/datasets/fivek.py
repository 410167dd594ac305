"""MIT-Adobe FiveK: 5,000 camera raws (DNG) and five experts' retouched TIFFs.

The SemiISP paper's ISP tasks pair each raw with expert C's rendering. The
layout of the official archive plus the expert TIFFs of the dataset site:

    <root>/
      raw_photos/HQa1to700/photos/a0001-jmac_DSC1459.dng   (fivek_dataset/
      raw_photos/HQa701to1400/photos/...                   of the archive)
      ...
      tiff16_c/a0001-jmac_DSC1459.tif    expert C, 16-bit ProPhoto RGB
      tiff16_a/ ... tiff16_e/            the other experts (optional)

DNGs are found recursively under raw_photos/ (or raw/, dng/); the expert
folder is tiff16_<expert>/ (also looked for under processed/ and
ProPhotoRGB/), or `target_dir`. Pairs are matched by file stem.

Splits (the usual FiveK split, whose counts the SemiISP paper uses): images
sorted by name, the first 4,500 ('train', a0001-a4500) and the last 500
('test'); 'all' keeps every pair. `limit` keeps the first N of the split
(the paper's 100 and 500 labelled-pair subsets; which 100 it drew is not
published).

Each sample:
  'raw': (h, w, 4) float32 canonical packed raw, (x - black) / (white -
    black) with the DNG's levels, clipped to [0, 1]; cropped to the DNG's
    DefaultCrop (rounded inward to whole Bayer cells) and turned upright by
    its EXIF orientation (packed-domain flips/transposes), like the
    rendered TIFF.
  'target': (2h, 2w, 3) float32 expert rendering in [0, 1], in the TIFF's
    colour space (ProPhoto RGB for the site's tiff16_* files).
Reference grid: the Bayer-cell grid ('raw' scale 1, 'target' scale 2).
When the rendering and the cropped raw differ by a few pixels
(`align='crop'`, at most `max_mismatch` pixels a side) both are centre-
cropped to the common size; `align='strict'` raises instead. The SemiISP
paper works at 480p: `prepare_fivek` converts FiveK once into resized
prepared arrays (`rawjax.data.datasets.arrays`), or cut patches with the
pipeline.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from rawjax import io as rawio
from rawjax.data import pipeline, sources
from rawjax.data.datasets import _layout, arrays
from rawjax.data.pipeline import Field
from rawjax.isp import cfa, color, levels

__all__ = ['FiveKDataset', 'ORIENTATION_OPS', 'prepare_fivek']

# EXIF orientation -> ops turning the stored image upright (see
# `rawjax.data.pipeline.dihedral_element`).
ORIENTATION_OPS = {
    1: (), 2: ('hflip',), 3: ('rot90', 'rot90'), 4: ('vflip',),
    5: ('transpose',), 6: ('rot90', 'rot90', 'rot90'),
    7: ('transpose', 'rot90', 'rot90'), 8: ('rot90',),
}
_NUM_TRAIN = 4500


class FiveKDataset(_layout.FileDataset):
  """FiveK raw / expert-rendering pairs (see the module docstring).

  Args:
    root: the folder holding raw_photos/ and tiff16_<expert>/.
    split: 'train', 'test' or 'all'.
    expert: 'a' to 'e' (default 'c', the SemiISP target).
    target_dir: expert folder relative to root (overrides `expert`).
    num_train: size of the training split (4,500).
    limit: keep only the first `limit` pairs of the split.
    align: 'crop' or 'strict' (see the module docstring).
    max_mismatch: largest size difference per side 'crop' accepts, pixels.

  Raises:
    DatasetLayoutError: no DNG or expert folder, or a DNG without its
      expert TIFF (and the reverse).
  """

  name = 'FiveK'

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'train',
               expert: str = 'c', target_dir: str | None = None,
               num_train: int = _NUM_TRAIN, limit: int | None = None,
               align: str = 'crop', max_mismatch: int = 16):
    if split not in ('train', 'test', 'all'):
      raise ValueError(f"split must be 'train', 'test' or 'all', got "
                       f'{split!r}.')
    if align not in ('crop', 'strict'):
      raise ValueError(f"align must be 'crop' or 'strict', got {align!r}.")
    if expert not in tuple('abcde'):
      raise ValueError(f"expert must be one of 'a'..'e', got {expert!r}.")
    self.split, self.align, self.max_mismatch = split, align, max_mismatch
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    raw_dir = check.first_existing(['raw_photos', 'fivek_dataset/raw_photos',
                                    'raw', 'dng'], 'FiveK DNGs')
    tiff = target_dir or f'tiff16_{expert}'
    candidates = [tiff] if target_dir else [
        tiff, f'processed/{tiff}', f'ProPhotoRGB/{tiff}']
    target_folder = check.first_existing(
        candidates, f'expert {expert.upper()} renderings (16-bit TIFF)')
    dngs = {}
    if raw_dir is not None:
      dngs = {p.stem: p for p in sorted(raw_dir.rglob('*'))
              if p.suffix.lower() == '.dng'}
      if not dngs:
        check.add('FiveK DNGs (*.dng, searched recursively)', raw_dir / '**',
                  reason='empty folder')
    targets = check.files(target_folder, ('.tif', '.tiff'),
                          f'expert {expert.upper()} renderings')
    keys = []
    if dngs and targets:
      keys = check.pair(
          dngs, targets,
          right_path=lambda k: target_folder / f'{k}.tif',
          right_what=f'expert {expert.upper()} rendering',
          left_path=lambda k: raw_dir / '**' / f'{k}.dng',
          left_what='DNG')
    check.raise_if_any()
    keys = sorted(keys)
    if split == 'train':
      keys = keys[:num_train]
    elif split == 'test':
      keys = keys[num_train:]
    if limit is not None:
      keys = keys[:int(limit)]
    self.keys = keys
    self._dngs, self._targets = dngs, targets
    self.fields = {'raw': Field('packed', 1), 'target': Field('image', 2)}

  def read_raw(self, key: str) -> np.ndarray:
    """The normalised, cropped, upright packed raw of `key`."""
    path = self._dngs[key]
    raw = self._read(path, 'DNG', rawio.read_raw)
    mosaic = raw.mosaic
    if raw.default_crop is not None:
      top, left, height, width = raw.default_crop
      # Whole Bayer cells only, so the pattern is unchanged.
      top2, left2 = -(-top // 2) * 2, -(-left // 2) * 2
      bottom = (top + height) // 2 * 2
      right = (left + width) // 2 * 2
      if bottom > top2 and right > left2:
        mosaic = mosaic[top2:bottom, left2:right]
    with _layout.on_host():
      packed = _layout.to_host(levels.normalize(
          cfa.pack(mosaic.astype(np.float32), pattern=raw.pattern),
          black_level=raw.black_level, white_level=raw.white_level,
          clip='both'))
    flags = pipeline.dihedral_element(ORIENTATION_OPS.get(raw.orientation,
                                                          ()))
    upright = pipeline.apply_dihedral(
        {'raw': packed}, {'raw': self.fields['raw']}, transpose=flags[0],
        vflip=flags[1], hflip=flags[2])
    return upright['raw']

  def read_target(self, key: str) -> np.ndarray:
    """The expert rendering of `key` as stored, (H, W, 3) in [0, 1]."""
    return self._read(self._targets[key], 'expert rendering',
                      rawio.read_image)

  def load(self, key: str) -> dict[str, np.ndarray]:
    packed = self.read_raw(key)
    path = self._targets[key]
    target = self.read_target(key)
    if target.ndim != 3:
      raise self._layout_error('expert rendering', path,
                               f'expected RGB, got shape {target.shape}')
    h, w = packed.shape[:2]
    th, tw = target.shape[:2]
    if (th, tw) != (2 * h, 2 * w):
      too_far = max(abs(th - 2 * h), abs(tw - 2 * w)) > self.max_mismatch
      if self.align == 'strict' or too_far:
        raise self._layout_error(
            'expert rendering', path,
            f'size {tw}x{th} does not match its raw ({2 * w}x{2 * h} after '
            f"DefaultCrop and orientation; align={self.align!r}, "
            f'max_mismatch={self.max_mismatch})')
      ch, cw = min(h, th // 2), min(w, tw // 2)
      packed = packed[(h - ch) // 2:(h - ch) // 2 + ch,
                      (w - cw) // 2:(w - cw) // 2 + cw]
      top, left = (th - 2 * ch) // 2, (tw - 2 * cw) // 2
      target = target[top:top + 2 * ch, left:left + 2 * cw]
    return {'raw': packed, 'target': target}



def prepare_fivek(root: str | os.PathLike[str], out: str | os.PathLike[str],
                  *, task: str = 'general', num_labelled: int = 100,
                  num_unlabelled: int = 4400, size: Sequence[int] = (480, 640),
                  expert: str = 'c', input_dir: str = '',
                  unlabelled_dirs: Sequence[str | os.PathLike[str]] = (),
                  progress: bool = True) -> pathlib.Path:
  """FiveK as prepared arrays for SemiISP's ISP tasks, written once.

  Labelled: the first `num_labelled` training pairs (sorted names; which
  100 / 500 the paper drew is not published); unlabelled: the expert
  renderings of the next `num_unlabelled` training images (their raws are
  not used; in-domain: the targets' style), then every photograph under
  `unlabelled_dirs` (recursive; .png/.jpg/.jpeg/.tif/.tiff, EXIF-rotated:
  out-of-domain images such as COCO, the paper's choice; as
  `lol.prepare_lol`); num_unlabelled=0 with a folder keeps only the
  photographs; test: the 500 test pairs. Every image is resized to `size`
  (480 x 640, the paper's resolution; portrait images are turned to
  landscape first); the renderings are pooled 2 x 2 to the Bayer-cell grid
  first.
  task 'general' (RAW -> sRGB): input = packed raw, greens averaged.
  task 'tone' (tone mapping): input = the 16-bit linear renderings in
  `input_dir` (relative to root, paired by name, e.g. the 480p linear
  ProPhoto inputs distributed with 3D-LUT methods).

  Returns:
    `out`, in the layout of `rawjax.data.datasets.arrays`.
  """
  if task not in ('general', 'tone'):
    raise ValueError(f"prepare_fivek: task must be 'general' or 'tone', got "
                     f'{task!r}.')
  if task == 'tone' and not input_dir:
    raise ValueError("prepare_fivek: task 'tone' needs input_dir, the folder "
                     '(under root) of the linear input renderings.')
  out = pathlib.Path(out).expanduser()
  if (out / 'dataset.json').is_file():
    return out
  train = FiveKDataset(root, split='train', expert=expert)
  test = FiveKDataset(root, split='test', expert=expert)
  iterate = arrays.progress_iterator(progress)
  resize = functools.partial(arrays.resize_landscape, size=size)

  def pairs(dataset, keys):
    raws, srgbs = [], []
    for key in iterate(keys):
      sample = dataset.load(key)
      srgbs.append(resize(arrays.pool2x2(sample['target'])))
      if task == 'general':
        raw = np.asarray(color.packed_to_rgb(sample['raw']))
      else:
        path = pathlib.Path(dataset.root) / input_dir / f'{key}.tif'
        if not path.is_file():
          raise FileNotFoundError(f'prepare_fivek: no linear input {path} '
                                  f'for {key}.')
        raw = rawio.read_image(path)
      raws.append(resize(raw))
    return np.stack(raws), np.stack(srgbs)

  labelled_keys = train.keys[:num_labelled]
  unlabelled_keys = train.keys[num_labelled:num_labelled + num_unlabelled]
  # Listed before any image is read, so a bad folder fails at once.
  photos = [p for folder in unlabelled_dirs for p in
            sources.folder_sources(pathlib.Path(folder).expanduser(),
                                   recursive=True)]
  if not unlabelled_keys and not photos:
    raise ValueError('prepare_fivek: no unlabelled images (num_unlabelled=0 '
                     'and unlabelled_dirs is empty).')
  labelled = pairs(train, labelled_keys)
  # Only the renderings of the unlabelled images: their raws are not read.
  # The photographs are at display resolution already: no 2 x 2 pooling.
  unlabelled = np.stack(
      [resize(arrays.pool2x2(train.read_target(k)))
       for k in iterate(unlabelled_keys)] +
      [resize(sources.load_source(p)) for p in iterate(photos)])
  tests = pairs(test, test.keys)
  return arrays.prepare_arrays(
      out, labelled_raw=labelled[0], labelled_srgb=labelled[1],
      unlabelled_srgb=unlabelled, test_raw=tests[0], test_srgb=tests[1],
      info={'source': 'FiveK', 'task': task, 'expert': expert,
            'size': list(size), 'num_expert_unlabelled': len(unlabelled_keys),
            'unlabelled_dirs': [str(d) for d in unlabelled_dirs]})
