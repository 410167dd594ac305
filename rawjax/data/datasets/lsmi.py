"""LSMI, the Large Scale Multi-Illuminant dataset (Kim et al., ICCV 2021).

CSTPP evaluates multi-illumination raw-to-raw mapping on it ("preprocessed
following [19]", i.e. the official LSMI scripts). One camera's folder, after
the official `0_cvt2tiff.py` (dcraw -h -D -4 -T: half-size 3-channel 16-bit
TIFF, no black subtraction) and `1_make_mixture_map.py`:

    <root>/<camera>/                   camera: galaxy, nikon or sony
      meta.json     {place: {"NumOfLights", "MCCCoord": {"mcc1": 4 [x, y]
                    corners in full-resolution raw pixels, "mcc2", "mcc3"},
                    "Light1", "Light2", "Light3": G=1 chromaticities}}
      split.json    {"train": [places], "val": [...], "test": [...]} (a key's
                    last '_'-separated word names its split)
      Place0/Place0_1.tiff     the scene under light 1 alone
      Place0/Place0_12.tiff    under lights 1 and 2 (also _13, _123)
      Place0/Place0_12.npy     mixture map, H x W x 2: each pixel's share of
                               light 1 and light 2 (-1 where uncalculable)
      Place0/Place0_1.dng      the raw files (.dng galaxy, .nef nikon,
                               .arw sony) and sRGB JPGs

Samples (one per image of every place of the split):
  'image' (source='tiff'): (H, W, 3) float32 camera RGB, (x - black) /
    (white - black) clipped to [0, 1]; or 'raw' (source='raw'): (H, W, 4)
    canonical packed raw read with `rawjax.io.read_raw` and normalised with
    the file's levels. Both are on the half-resolution grid the mixture maps
    use (one pixel per Bayer cell).
  'mixture': (H, W, 3) float32 share of Light1, Light2, Light3 per pixel
    (0 for lights off in this image and where uncalculable).
  'illumination': (H, W, 3) float32 per-pixel illuminant, the sum of
    share x chromaticity (the official `mix_chroma`); (1, 1, 1) where
    uncalculable, as the official preprocessing.
  'mask': (H, W, 1) float32, 0 on the three colour charts.
  'illuminants': (3, 3) float32 Light1..3 chromaticities (rows; zeros for
    lights that are off in this image).

TIFF levels: `black_level`/`white_level` when given; otherwise Sony's are
128 and 4095 (the official scripts) and the others are read, like the
official scripts' template file, from the first raw file of the camera
folder (LibRaw: minimum per-channel black, white level).
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np

from rawjax import io as rawio
from rawjax.data.datasets import _layout
from rawjax.data.pipeline import Field
from rawjax.isp import cfa, levels

__all__ = ['LSMIDataset', 'RAW_EXTENSIONS']

RAW_EXTENSIONS = {'galaxy': '.dng', 'nikon': '.nef', 'sony': '.arw'}
# dcraw -D TIFF levels of the Sony set in the official scripts.
_TIFF_LEVELS = {'sony': (128.0, 4095.0)}
_IMAGE = re.compile(r'^(?P<place>.+)_(?P<lights>[123]+)$')
_ZERO_MASK = -1.0


class LSMIDataset(_layout.FileDataset):
  """One camera and split of LSMI (see the module docstring).

  Args:
    root: the folder holding galaxy/, nikon/, sony/.
    camera: 'galaxy', 'nikon' or 'sony' (any folder name works).
    split: a split of split.json: 'train', 'val' or 'test'.
    source: 'tiff' (dcraw half-size RGB) or 'raw' (packed raw files).
    black_level, white_level: TIFF levels (see the module docstring).
    raw_extension: raw file extension (default by camera).

  Raises:
    DatasetLayoutError: missing camera folder, meta.json, split.json, place
      folders, images, mixture maps of multi-light images, or metadata.
  """

  name = 'LSMI'

  def __init__(self, root: str | os.PathLike[str], *, camera: str = 'galaxy',
               split: str = 'train', source: str = 'tiff',
               black_level: float | None = None,
               white_level: float | None = None,
               raw_extension: str | None = None):
    if source not in ('tiff', 'raw'):
      raise ValueError(f"source must be 'tiff' or 'raw', got {source!r}.")
    self.camera, self.split, self.source = camera, split, source
    self.raw_extension = (raw_extension or
                          RAW_EXTENSIONS.get(camera, '.dng')).lower()
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    cam_dir = check.require_dir(camera, f'camera {camera}')
    meta_path = split_path = None
    if cam_dir is not None:
      meta_path = check.require_file(f'{camera}/meta.json',
                                     f'{camera} metadata (meta.json)')
      split_path = check.require_file(f'{camera}/split.json',
                                      f'{camera} split (split.json)')
    check.raise_if_any()
    meta = self._read(meta_path, 'meta.json', _read_json)
    splits = self._read(split_path, 'split.json', _read_json)
    places = [p for key, names in splits.items()
              if key.split('_')[-1] == split for p in names]
    if not places:
      available = sorted({k.split('_')[-1] for k in splits})
      raise ValueError(f'LSMI: split {split!r} is not in {split_path} '
                       f'(it has {available}).')
    suffix = '.tiff' if source == 'tiff' else self.raw_extension
    accepted = ('.tiff', '.tif') if source == 'tiff' else (suffix,)
    self._files, self._maps, self._place = {}, {}, {}
    for place in places:
      folder = check.require_dir(f'{camera}/{place}', f'place {place}')
      if place not in meta:
        check.add(f'entry of place {place!r} in meta.json', meta_path)
      if folder is None:
        continue
      images = {p.stem: p for p in sorted(folder.iterdir())
                if p.suffix.lower() in accepted and _IMAGE.match(p.stem)}
      if not images:
        check.add(f'images of place {place} ({place}_<lights>{suffix})',
                  folder / f'{place}_1{suffix}')
      for stem, path in images.items():
        lights = _IMAGE.match(stem)['lights']
        if len(lights) > 1:
          mixture = folder / f'{stem}.npy'
          if not mixture.is_file():
            check.add(f'mixture map of {path.name} (1_make_mixture_map.py '
                      'output)', mixture)
            continue
          self._maps[stem] = mixture
        self._files[stem] = path
        self._place[stem] = place
    check.raise_if_any()
    self._meta = meta
    self.keys = sorted(self._files, key=_layout.natural_key)
    if source == 'tiff':
      self.black_level, self.white_level = self._tiff_levels(
          check, black_level, white_level)
    else:
      self.black_level, self.white_level = black_level, white_level
    image_field = 'image' if source == 'tiff' else 'raw'
    self.fields = {
        image_field: Field('image' if source == 'tiff' else 'packed'),
        'mixture': Field('image'), 'illumination': Field('image'),
        'mask': Field('image'), 'illuminants': Field('meta')}

  def _tiff_levels(self, check, black, white):
    if black is not None and white is not None:
      return float(black), float(white)
    if self.camera in _TIFF_LEVELS:
      default = _TIFF_LEVELS[self.camera]
      return (default[0] if black is None else float(black),
              default[1] if white is None else float(white))
    template = next(iter(sorted(
        p for p in check.path(self.camera).glob('*/*')
        if p.suffix.lower() == self.raw_extension)), None)
    if template is None:
      check.add(f'a {self.raw_extension} raw file to read the TIFF black and '
                'white levels from (or pass black_level and white_level)',
                check.path(self.camera, f'<place>/<place>_1'
                           f'{self.raw_extension}'))
      check.raise_if_any()
    raw = self._read(template, 'raw file (levels)', rawio.read_raw)
    return (float(np.min(raw.black_level)) if black is None else
            float(black), float(raw.white_level) if white is None else
            float(white))

  def illuminants(self, key: str) -> np.ndarray:
    """(3, 3) float32 Light1..3 chromaticities, zero rows for lights off."""
    place = self._place[key]
    info = self._meta[place]
    out = np.zeros((3, 3), np.float32)
    for light in _IMAGE.match(key)['lights']:
      value = info.get(f'Light{light}')
      if value is None:
        raise self._layout_error(
            f'Light{light} of place {place!r} in meta.json (run '
            '1_make_mixture_map.py)', self.root / self.camera / 'meta.json',
            'missing')
      out[int(light) - 1] = np.asarray(value, np.float32)
    return out

  def chart_mask(self, key: str, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 1) float32, 0 inside the place's charts (MCCCoord / 2)."""
    from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
    canvas = Image.new('L', (shape[1], shape[0]), 1)
    draw = ImageDraw.Draw(canvas)
    charts = self._meta[self._place[key]].get('MCCCoord', {})
    for corners in charts.values():
      points = (np.asarray(corners, np.float64) / 2).astype(int)
      draw.polygon([tuple(map(int, p)) for p in points], fill=0)
    return np.asarray(canvas, np.float32)[..., None]

  def _image(self, key: str) -> np.ndarray:
    path = self._files[key]
    if self.source == 'tiff':
      import tifffile  # pylint: disable=g-import-not-at-top
      data = self._read(path, 'dcraw TIFF', tifffile.imread)
      if data.ndim != 3 or data.shape[-1] != 3:
        raise self._layout_error('dcraw TIFF', path, f'expected H x W x 3, '
                                 f'got shape {data.shape}')
      x = (data.astype(np.float32) - np.float32(self.black_level)) / (
          np.float32(self.white_level - self.black_level))
      with _layout.on_host():
        return _layout.to_host(levels.apply_clip(x, clip='both'))
    raw = self._read(path, 'raw file', rawio.read_raw)
    black = raw.black_level if self.black_level is None else self.black_level
    white = raw.white_level if self.white_level is None else self.white_level
    with _layout.on_host():
      return _layout.to_host(levels.normalize(
          cfa.pack(raw.mosaic.astype(np.float32), pattern=raw.pattern),
          black_level=black, white_level=white, clip='both'))

  def load(self, key: str) -> dict[str, np.ndarray]:
    image = self._image(key)
    shape = image.shape[:2]
    lights = _IMAGE.match(key)['lights']
    shares = np.ones((*shape, 1), np.float32)
    if len(lights) > 1:
      path = self._maps[key]
      shares = self._read(path, 'mixture map', np.load).astype(np.float32)
      if shares.shape != (*shape, len(lights)):
        raise self._layout_error(
            'mixture map', path, f'shape {shares.shape}, expected '
            f'{(*shape, len(lights))} for lights {lights} of a {shape} image')
    uncalculable = np.any(shares == _ZERO_MASK, axis=-1, keepdims=True)
    shares = np.where(uncalculable, 0.0, shares)
    mixture = np.zeros((*shape, 3), np.float32)
    for channel, light in enumerate(lights):
      mixture[..., int(light) - 1] = shares[..., channel]
    illuminants = self.illuminants(key)
    illumination = np.where(uncalculable, np.float32(1.0),
                            mixture @ illuminants).astype(np.float32)
    return {'image' if self.source == 'tiff' else 'raw': image,
            'mixture': mixture, 'illumination': illumination,
            'mask': self.chart_mask(key, shape), 'illuminants': illuminants}


def _read_json(path: str):
  return json.loads(pathlib.Path(path).read_text())
