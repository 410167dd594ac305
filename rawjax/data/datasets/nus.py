"""NUS 8-camera colour-constancy dataset (Cheng, Prasad & Brown 2014).

The semi-supervised raw-to-raw paper maps Canon EOS 600D <-> Nikon D5200
images of this dataset, using the 16-bit PNGs "minimally processed using
the DCRAW converter" (3-channel camera RGB, no white balance) and the black
and white levels of the dataset's ground-truth file. One camera's folder:

    <root>/Canon600D/
      Canon600D_gt.mat           groundtruth_illuminants (N x 3),
                                 darkness_level, saturation_level,
                                 CC_coords (N x 4: y1, y2, x1, x2 of the
                                 chart), all_image_names (N cell strings)
      PNG/Canon600D_0001.PNG ... 16-bit RGB camera-space images

Unzipped downloads differ in where they put the PNGs; the image folder is
looked for, in order, at PNG/, <camera>_PNG/PNG/, Images/, images/ (or pass
`image_dir`), and the .mat at <camera>_gt.mat or ground_truth/<camera>_gt.mat.

Each sample (of one camera):
  'image': (H, W, 3) float32 camera RGB, clip((x - darkness_level) /
    (saturation_level - darkness_level), 0, 1) (`clip` option).
  'mask': (H, W, 1) float32, 0 on the colour chart's bounding box, 1
    elsewhere (multiply to hide the chart from a network).
  'illuminant': (3,) float32 ground-truth illuminant in camera RGB, as
    stored (the file's rows are not normalised).
Reference grid: the image grid (all spatial fields have scale 1).

The 17 test and 5 anchor scene pairs the paper picked by hand are not
published: pass their names with `names` (a list, or a text file with one
name per line) to restrict a camera to them.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from rawjax.data.datasets import _layout
from rawjax.data.pipeline import Field
from rawjax.isp import levels

__all__ = ['NUSDataset']

_GT_VARIABLES = ('groundtruth_illuminants', 'darkness_level',
                 'saturation_level', 'CC_coords', 'all_image_names')


def _names(names: Sequence[str] | str | os.PathLike[str] | None):
  if names is None:
    return None
  if isinstance(names, (str, os.PathLike)):
    lines = pathlib.Path(names).read_text().splitlines()
    return [pathlib.Path(n.strip()).stem for n in lines if n.strip()]
  return [pathlib.Path(n).stem for n in names]


class NUSDataset(_layout.FileDataset):
  """One camera of the NUS dataset (see the module docstring).

  Args:
    root: the folder holding the camera folders.
    camera: camera folder, e.g. 'Canon600D' or 'NikonD5200'.
    names: restrict to these image names (list or text file).
    image_dir: the PNG folder relative to the camera folder (default:
      found among the usual places).
    clip: clip normalised values to [0, 1] ('both'), at 0 only ('lower') or
      not at all ('none').

  Raises:
    DatasetLayoutError: no camera folder, ground-truth .mat (or one of its
      variables), image folder, or a listed image is absent.
  """

  name = 'NUS'

  def __init__(self, root: str | os.PathLike[str], *,
               camera: str = 'Canon600D',
               names: Sequence[str] | str | os.PathLike[str] | None = None,
               image_dir: str | None = None, clip: str = 'both'):
    if clip not in ('both', 'lower', 'none'):
      raise ValueError(f"clip must be 'both', 'lower' or 'none', got "
                       f'{clip!r}.')
    self.camera = camera
    self.clip = clip
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    cam_dir = check.require_dir(camera, f'camera {camera}')
    gt_path = image_folder = None
    if cam_dir is not None:
      gt_path = check.first_existing(
          [f'{camera}/{camera}_gt.mat', f'{camera}/ground_truth/'
           f'{camera}_gt.mat'], 'ground-truth file', kind='file')
      candidates = ([image_dir] if image_dir else
                    ['PNG', f'{camera}_PNG/PNG', 'Images', 'images'])
      image_folder = check.first_existing(
          [f'{camera}/{c}' for c in candidates], f'{camera} PNG images')
    check.raise_if_any()
    gt = self._read(gt_path, 'ground-truth file',
                    lambda p: _layout.load_mat(p, _GT_VARIABLES))
    all_names = _layout.mat_strings(gt['all_image_names'])
    illuminants = np.asarray(gt['groundtruth_illuminants'], np.float32)
    chart = np.asarray(gt['CC_coords'], np.float64)
    if (illuminants.shape != (len(all_names), 3) or
        chart.shape != (len(all_names), 4)):
      raise self._layout_error(
          'ground-truth file', gt_path,
          f'{len(all_names)} image names but groundtruth_illuminants '
          f'{illuminants.shape} and CC_coords {chart.shape}')
    self.darkness_level = float(np.asarray(gt['darkness_level']).ravel()[0])
    self.saturation_level = float(
        np.asarray(gt['saturation_level']).ravel()[0])
    wanted = _names(names)
    index = {n: i for i, n in enumerate(all_names)}
    if wanted is not None:
      unknown = [n for n in wanted if n not in index]
      for n in unknown:
        check.add(f'image {n!r} (asked for) in all_image_names', gt_path)
    keys = [n for n in (wanted or all_names) if n in index]
    pngs = {p.stem: p for p in image_folder.iterdir()
            if p.suffix.lower() == '.png'}
    for n in keys:
      if n not in pngs:
        check.add(f'{camera} image listed in {gt_path.name}',
                  image_folder / f'{n}.PNG')
    check.raise_if_any()
    self.keys = keys
    self._pngs = pngs
    self._illuminant = {n: illuminants[index[n]] for n in keys}
    self._chart = {n: chart[index[n]] for n in keys}
    self.fields = {'image': Field('image'), 'mask': Field('image'),
                   'illuminant': Field('meta')}

  def chart_mask(self, key: str, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 1) float32: 0 on the chart box (CC_coords y1, y2, x1, x2)."""
    y1, y2, x1, x2 = self._chart[key]
    mask = np.ones((*shape, 1), np.float32)
    rows = slice(max(0, int(min(y1, y2))), max(0, int(max(y1, y2))))
    cols = slice(max(0, int(min(x1, x2))), max(0, int(max(x1, x2))))
    mask[rows, cols] = 0.0
    return mask

  def load(self, key: str) -> dict[str, np.ndarray]:
    path = self._pngs[key]
    data = self._read(path, f'{self.camera} PNG', _layout.read_png_integers)
    if data.ndim != 3 or data.shape[-1] != 3:
      raise self._layout_error(f'{self.camera} PNG', path,
                               f'expected 3-channel RGB, got shape '
                               f'{data.shape}')
    x = (data.astype(np.float32) - np.float32(self.darkness_level)) / (
        np.float32(self.saturation_level - self.darkness_level))
    with _layout.on_host():
      x = _layout.to_host(levels.apply_clip(x, clip=self.clip))
    return {'image': x, 'mask': self.chart_mask(key, data.shape[:2]),
            'illuminant': self._illuminant[key].copy()}
