"""Zurich RAW-to-RGB (ZRR): Huawei P20 raw PNGs paired with Canon 5D sRGB JPGs.

The layout of the PyNET release, as read by the RAW-to-sRGB (LiteISPNet)
code (`data/zrr_dataset.py`):

    <root>/
      train/huawei_raw/0.png ... 46838.png   448x448 Bayer mosaics, 16-bit PNG
      train/canon/0.jpg ... 46838.jpg        448x448 sRGB, 8-bit JPEG
      test/huawei_raw/0.png ... 1203.png
      test/canon/0.jpg ... 1203.jpg
      full_resolution/huawei_raw/1072.png ...   (optional; visual results only)

Splits: 'train', 'test', 'val' (the reference validates on the test folder,
so 'val' is an alias of 'test') and 'full_resolution' (raw only).

Each sample:
  'raw': (h, w, 4) float32 packed raw in canonical (R, Gr, Gb, B) order,
    x = max(raw - 63, 0) / (1020 - 63) (the reference's `remove_black_level`:
    only the lower side is clipped, so values reach (1023 - 63) / 957, about
    1.003). The mosaic is RGGB with R at (0, 0). The reference packs it in
    PyNET's order (B, G_R, R, G_B), naming the green of the red rows "Gb";
    this loader returns the canonical order, so that the PyNET tensor is
    raw[..., (3, 1, 0, 2)].
  'rgb': (2h, 2w, 3) float32 DSLR sRGB in [0, 1] (JPEG / 255, decoded with
    Pillow; the reference decodes with OpenCV, whose libjpeg may differ in
    the last bit).
  'coord': (2h, 2w, 2) float32 GCM coordinate map, channel 0 = x, channel 1
    = y, pixel centres in [-1, 1] (the reference's `get_coord(H, W, 1, 1)`);
    augmented with the images. Only with `coords=True`.
Reference grid: the Bayer-cell grid ('raw' has scale 1, 'rgb' and 'coord'
scale 2).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from rawjax.data.datasets import _layout
from rawjax.data.pipeline import Field
from rawjax.isp import cfa, levels

__all__ = ['BLACK_LEVEL', 'WHITE_LEVEL', 'ZRRDataset', 'coordinate_map']

BLACK_LEVEL = 63
WHITE_LEVEL = 1020
_SPLITS = {'train': 'train', 'test': 'test', 'val': 'test',
           'full_resolution': 'full_resolution'}


def coordinate_map(height: int, width: int, *, x_extent: float = 1.0,
                   y_extent: float = 1.0) -> np.ndarray:
  """(height, width, 2) float32 pixel-centre coordinates, (x, y) channels.

  x runs from -x_extent + x_extent/width to x_extent - x_extent/width along
  W (the reference's `get_coord`; with extent 1 these are the pixel centres
  of [-1, 1], e.g. -0.75, -0.25, 0.25, 0.75 for 4 pixels), y likewise along
  H.
  """
  x = np.linspace(-x_extent + x_extent / width, x_extent - x_extent / width,
                  width)
  y = np.linspace(-y_extent + y_extent / height,
                  y_extent - y_extent / height, height)
  grid = np.stack(np.broadcast_arrays(x[None, :], y[:, None]), axis=-1)
  return grid.astype(np.float32)


class ZRRDataset(_layout.FileDataset):
  """The ZRR dataset in its published layout (see the module docstring).

  Args:
    root: the folder holding train/, test/ (and full_resolution/).
    split: 'train', 'test', 'val' (= 'test') or 'full_resolution'.
    coords: add the GCM coordinate map 'coord'.
    pattern: CFA pattern of the Huawei mosaics ('RGGB' in the reference).
    black_level, white_level: sensor levels (63 and 1020 in the reference).

  Raises:
    DatasetLayoutError: a folder is missing or empty, or a raw PNG has no
      JPG partner (or the reverse); every such piece is listed.
  """

  name = 'ZRR'

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'train',
               coords: bool = False, pattern: str = 'RGGB',
               black_level: float = BLACK_LEVEL,
               white_level: float = WHITE_LEVEL):
    if split not in _SPLITS:
      raise ValueError(f'ZRR split must be one of {sorted(_SPLITS)}, got '
                       f'{split!r}.')
    self.split = split
    self.pattern = cfa.validate_pattern(pattern)
    self.black_level = float(black_level)
    self.white_level = float(white_level)
    self.coords = bool(coords)
    folder = _SPLITS[split]
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    raw_dir = check.require_dir(f'{folder}/huawei_raw',
                                f'Huawei raw PNGs ({split} split)')
    raws = check.files(raw_dir, ('.png',), f'Huawei raw PNGs ({split})')
    self.has_rgb = folder != 'full_resolution'
    if self.has_rgb:
      rgb_dir = check.require_dir(f'{folder}/canon',
                                  f'Canon sRGB JPGs ({split} split)')
      rgbs = check.files(rgb_dir, ('.jpg', '.jpeg'),
                         f'Canon sRGB JPGs ({split})')
      if raw_dir is not None and rgb_dir is not None:
        keys = check.pair(
            raws, rgbs,
            right_path=lambda k: rgb_dir / f'{k}.jpg',
            right_what='Canon sRGB JPG',
            left_path=lambda k: raw_dir / f'{k}.png',
            left_what='Huawei raw PNG')
      else:
        keys = []
      self._rgb = rgbs
    else:
      keys = sorted(raws, key=_layout.natural_key)
      self._rgb = {}
    check.raise_if_any()
    self._raw = raws
    self.keys = keys
    self.fields = {'raw': Field('packed', 1)}
    if self.has_rgb:
      self.fields['rgb'] = Field('image', 2)
    if self.coords:
      self.fields['coord'] = Field('image', 2)

  def read_mosaic(self, key: str) -> np.ndarray:
    """The stored integer mosaic of sample `key`, (H, W) uint16."""
    path = self._raw[key]
    mosaic = self._read(path, 'Huawei raw PNG', _layout.read_png_integers)
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
      raise self._layout_error(
          'Huawei raw PNG', path,
          f'not a single-channel mosaic with even sides (shape '
          f'{mosaic.shape})')
    return mosaic

  def load(self, key: str) -> dict[str, np.ndarray]:
    mosaic = self.read_mosaic(key)
    with _layout.on_host():
      packed = levels.normalize(
          cfa.pack(mosaic.astype(np.float32), pattern=self.pattern),
          black_level=self.black_level, white_level=self.white_level,
          clip='lower')
    sample = {'raw': _layout.to_host(packed)}
    height, width = mosaic.shape
    if self.has_rgb:
      path = pathlib.Path(self._rgb[key])
      rgb = self._read(path, 'Canon sRGB JPG', _layout.read_jpeg)
      if rgb.shape[:2] != (height, width):
        raise self._layout_error(
            'Canon sRGB JPG', path,
            f'size {rgb.shape[1]}x{rgb.shape[0]} does not match its raw '
            f'mosaic {width}x{height}')
      sample['rgb'] = rgb
    if self.coords:
      sample['coord'] = coordinate_map(height, width)
    return sample
