"""The raw-to-raw dataset of Afifi & Abuolaim (BMVC 2021): iPhone X / Galaxy S9.

Two on-disk forms are read, the download and what its extraction script
(`raw_extraction.py` of mahmoudnafifi/raw2raw) writes from it:

    <root>/                                   source='dng' (the download)
      paired/iphone-x/dng/<T>.dng             mapped pairs, test + anchors
      paired/iphone-x/mapping/<T>.mat         'mapping_matrix', 16 x 4
      paired/samsung-s9/dng/<T>.dng
      paired/samsung-s9/mapping/<T>.mat
      unpaired/iphone-x/dng/<T>.dng           196 per camera
      unpaired/samsung-s9/dng/<T>.dng

    <root>/                                   source='mat' (after extraction)
      paired/<camera>/raw-rggb/<T>_A.mat      test pairs, 'raw_rggb' h x w x 4
      paired/<camera>/anchor-raw-rggb/<T>_A.mat   anchor pairs
      unpaired/<camera>/raw-rggb/<T>_B.mat
      (the script also writes vis/ and anchor-vis/ JPGs, not read here)

File names end in _A for iPhone captures and _B for Samsung ones. A pair is
(real capture of one camera, the same image mapped into the other camera's
raw space by its per-image 16-term polynomial `mapping_matrix`): the mapped
copy sits in the *other* camera's folder under the *same* name, so the pairs
are pixel-aligned by construction. 'anchor' pairs (12 hard-coded DNG names
per camera in the script; the README says 22 pairs in all) train, the other
paired images test; the unpaired sets have no partner.

Raw normalisation (DNG form), as the script: the visible mosaic,
x = (raw - black) / (white - black) clipped to [0, 1], packed to canonical
(R, Gr, Gb, B) with the file's CFA pattern (the script hard-codes RGGB for
the iPhone and GRBG for the Samsung, which is what their DNGs say). Levels:
`levels='auto'` uses the script's constants for the two cameras it knows
(iPhone black 528, white 4095; Samsung 0, 1023) and the DNG's BlackLevel /
WhiteLevel for any other camera folder; `levels='file'` always uses the
DNG's (the paper says "extracted from the associated DNG file").

Samples:
  Raw2RawPaired: 'raw_a', 'raw_b' (h, w, 4) float32 in [0, 1], canonical
    order, camera A = cameras[0] (iPhone X), B = cameras[1]; 'origin' int32
    0 when the real capture is A's (name ends in _A), 1 when it is B's, -1
    when the name says neither.
  Raw2RawUnpaired: 'raw' (h, w, 4) float32 in [0, 1].
The reference grid is the packed grid (every field has scale 1).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from rawjax import io as rawio
from rawjax.data.datasets import _layout
from rawjax.data.pipeline import Field
from rawjax.isp import cfa, levels as isp_levels, polynomial

__all__ = [
    'ANCHOR_FILES', 'CAMERAS', 'Raw2RawPaired', 'Raw2RawUnpaired',
    'SCRIPT_LEVELS', 'apply_mapping',
]

CAMERAS = ('iphone-x', 'samsung-s9')
# (black, white) hard-coded in raw_extraction.py.
SCRIPT_LEVELS = {'iphone-x': (528.0, 4095.0), 'samsung-s9': (0.0, 1023.0)}
# The anchor DNGs of raw_extraction.py (one timestamp is in both lists).
ANCHOR_FILES = {
    'iphone-x': (
        '2021-06-03_20-43-09.dng', '2021-06-03_20-48-56.dng',
        '2021-06-03_21-11-57.dng', '2021-06-03_21-17-18.dng',
        '2021-06-03_21-32-38.dng', '2021-06-03_22-03-52.dng',
        '2021-06-07_16-13-49.dng', '2021-06-07_16-18-15.dng',
        '2021-06-07_16-27-27.dng', '2021-06-07_16-31-10.dng',
        '2021-06-07_16-34-42.dng', '2021-06-07_16-39-03.dng'),
    'samsung-s9': (
        '2021-06-03_20-43-08.dng', '2021-06-03_20-48-55.dng',
        '2021-06-03_21-11-55.dng', '2021-06-03_21-17-16.dng',
        '2021-06-03_21-32-39.dng', '2021-06-03_22-00-28.dng',
        '2021-06-07_16-13-48.dng', '2021-06-07_16-18-14.dng',
        '2021-06-07_16-27-25.dng', '2021-06-07_16-31-14.dng',
        '2021-06-07_16-34-41.dng', '2021-06-07_16-39-03.dng'),
}
_SUFFIXES = ('_A', '_B')
_PAIRED_SUBDIR = {'test': 'raw-rggb', 'anchor': 'anchor-raw-rggb'}
_MAT_VARIABLE = 'raw_rggb'
_MAPPING_VARIABLE = 'mapping_matrix'


def apply_mapping(packed: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """The script's `mapping`: kernelP(packed) @ matrix, clipped to [0, 1].

  Args:
    packed: (h, w, 4) normalised raw (R, Gr, Gb, B) in [0, 1].
    matrix: (16, 4) `mapping_matrix`, rows in kernelP's term order
      (`rawjax.isp.polynomial` kernel 'raw2raw16'), output columns in
      (R, Gr, Gb, B).

  Returns:
    (h, w, 4) float32, the image in the other camera's raw space.
  """
  matrix = np.asarray(matrix, np.float64)
  if matrix.shape != (16, 4):
    raise ValueError(f'mapping_matrix must be 16 x 4, got {matrix.shape}.')
  with _layout.on_host():
    mapped = polynomial.apply_polynomial(packed, matrix, kernel='raw2raw16')
    return _layout.to_host(jnp.clip(mapped, 0.0, 1.0))


def _origin(name: str) -> int:
  for i, suffix in enumerate(_SUFFIXES):
    if name.endswith(suffix):
      return i
  return -1


class _Raw2RawBase(_layout.FileDataset):
  """Reading shared by the paired and unpaired sets."""

  name = 'raw2raw'

  def _init_common(self, root, cameras, source, levels):
    if levels not in ('auto', 'file'):
      raise ValueError(f"levels must be 'auto' or 'file', got {levels!r}.")
    if source not in ('auto', 'mat', 'dng'):
      raise ValueError(f"source must be 'auto', 'mat' or 'dng', got "
                       f'{source!r}.')
    self.cameras = tuple(cameras)
    self.levels = levels
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    return check

  def _pick_source(self, check: _layout.LayoutCheck, source: str,
                   mat_dirs: Sequence[str], dng_dirs: Sequence[str]) -> str:
    if source != 'auto':
      return source
    if any(check.path(d).is_dir() for d in mat_dirs):
      return 'mat'
    if any(check.path(d).is_dir() for d in dng_dirs):
      return 'dng'
    check.first_existing(
        list(mat_dirs) + list(dng_dirs),
        'extracted .mat folders (raw_extraction.py output) or DNG folders')
    check.raise_if_any()
    raise AssertionError('unreachable')

  def _read_mat(self, path: pathlib.Path) -> np.ndarray:
    def reader(p):
      raw = _layout.load_mat(p, [_MAT_VARIABLE])[_MAT_VARIABLE]
      if raw.ndim != 3 or raw.shape[-1] != 4:
        raise ValueError(f"'{_MAT_VARIABLE}' must be h x w x 4, got shape "
                         f'{raw.shape}')
      return raw.astype(np.float32)
    return self._read(path, 'packed raw .mat', reader)

  def _read_dng(self, path: pathlib.Path, camera: str) -> np.ndarray:
    raw = self._read(path, f'{camera} DNG', rawio.read_raw)
    if self.levels == 'auto' and camera in SCRIPT_LEVELS:
      black, white = SCRIPT_LEVELS[camera]
    else:
      black, white = raw.black_level, raw.white_level
    with _layout.on_host():
      packed = isp_levels.normalize(
          cfa.pack(raw.mosaic.astype(np.float32), pattern=raw.pattern),
          black_level=black, white_level=white, clip='both')
    return _layout.to_host(packed)


class Raw2RawPaired(_Raw2RawBase):
  """Aligned (camera A, camera B) packed-raw pairs: anchors or test.

  Args:
    root: the dataset folder (holding paired/).
    split: 'test' or 'anchor'.
    cameras: (A, B) camera folder names, iPhone X first as in the script
      (files of A end in _A). Other names (e.g. a generated dataset's) work
      in both forms.
    source: 'mat' (extracted), 'dng' (download), or 'auto' (mat when its
      folders exist).
    levels: 'auto' or 'file' (DNG form only; see the module docstring).
    anchors: DNG form only: camera -> anchor DNG file names; default the
      script's lists for the two known cameras. Required for other cameras.

  Raises:
    DatasetLayoutError: missing folders, a .mat without its partner in the
      other camera's folder, or a DNG without its mapping matrix.
  """

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'test',
               cameras: Sequence[str] = CAMERAS, source: str = 'auto',
               levels: str = 'auto',
               anchors: Mapping[str, Sequence[str]] | None = None):
    if split not in _PAIRED_SUBDIR:
      raise ValueError(f"split must be 'test' or 'anchor', got {split!r}.")
    check = self._init_common(root, cameras, source, levels)
    if len(self.cameras) != 2:
      raise ValueError(f'cameras must name two folders, got {cameras!r}.')
    self.split = split
    sub = _PAIRED_SUBDIR[split]
    self.source = self._pick_source(
        check, source, [f'paired/{c}/{sub}' for c in self.cameras],
        [f'paired/{c}/dng' for c in self.cameras])
    self.fields = {'raw_a': Field('packed'), 'raw_b': Field('packed'),
                   'origin': Field('meta')}
    if self.source == 'mat':
      self._open_mat(check, sub)
    else:
      self._open_dng(check, anchors)
    check.raise_if_any()

  def _open_mat(self, check: _layout.LayoutCheck, sub: str) -> None:
    a, b = self.cameras
    dirs = [check.require_dir(f'paired/{c}/{sub}',
                              f'{c} {self.split} pairs (.mat)')
            for c in self.cameras]
    found = [check.files(d, ('.mat',), f'{c} {self.split} pairs')
             for d, c in zip(dirs, self.cameras)]
    if dirs[0] is None or dirs[1] is None:
      self.keys = []
      return
    self.keys = check.pair(
        found[0], found[1],
        right_path=lambda k: dirs[1] / f'{k}.mat',
        right_what=f'{b} side of the pair (.mat)',
        left_path=lambda k: dirs[0] / f'{k}.mat',
        left_what=f'{a} side of the pair (.mat)')
    self._mats = found

  def _open_dng(self, check: _layout.LayoutCheck,
                anchors: Mapping[str, Sequence[str]] | None) -> None:
    if anchors is None:
      unknown = [c for c in self.cameras if c not in ANCHOR_FILES]
      if unknown:
        raise ValueError(
            f'the DNG form needs the anchor file names of camera(s) '
            f'{unknown} (anchors={{camera: [names]}}); only '
            f'{list(ANCHOR_FILES)} have the script\'s lists.')
      anchors = ANCHOR_FILES
    self.missing_anchors = {}
    self._entries = {}
    self.keys = []
    for index, camera in enumerate(self.cameras):
      dng_dir = check.require_dir(f'paired/{camera}/dng',
                                  f'{camera} paired DNGs')
      map_dir = check.require_dir(f'paired/{camera}/mapping',
                                  f'{camera} mapping matrices (.mat)')
      dngs = check.files(dng_dir, ('.dng',), f'{camera} paired DNGs')
      anchor_stems = {pathlib.Path(n).stem for n in anchors.get(camera, ())}
      self.missing_anchors[camera] = sorted(anchor_stems - set(dngs))
      want_anchor = self.split == 'anchor'
      stems = [s for s in dngs if (s in anchor_stems) == want_anchor]
      if map_dir is None:
        continue
      for stem in stems:
        mapping = map_dir / f'{stem}.mat'
        if not mapping.is_file():
          check.add(f'{camera} mapping matrix of {dngs[stem]}', mapping,
                    reason='missing pair')
          continue
        key = stem + _SUFFIXES[index]
        self._entries[key] = (camera, index, dngs[stem], mapping)
        self.keys.append(key)
    self.keys.sort(key=_layout.natural_key)

  def load(self, key: str) -> dict[str, np.ndarray]:
    if self.source == 'mat':
      raw_a = self._read_mat(self._mats[0][key])
      raw_b = self._read_mat(self._mats[1][key])
      if raw_a.shape != raw_b.shape:
        raise self._layout_error(
            f'{self.cameras[1]} side of pair {key}', self._mats[1][key],
            f'shape {raw_b.shape} differs from its partner\'s {raw_a.shape}')
      origin = _origin(key)
    else:
      camera, origin, dng, mapping_path = self._entries[key]
      real = self._read_dng(dng, camera)
      matrix = self._read(
          mapping_path, f'{camera} mapping matrix',
          lambda p: _layout.load_mat(p, [_MAPPING_VARIABLE])[
              _MAPPING_VARIABLE])
      try:
        mapped = apply_mapping(real, matrix)
      except ValueError as e:
        raise self._layout_error(f'{camera} mapping matrix', mapping_path,
                                 str(e)) from e
      raw_a, raw_b = (real, mapped) if origin == 0 else (mapped, real)
    return {'raw_a': raw_a, 'raw_b': raw_b,
            'origin': np.asarray(origin, np.int32)}


class Raw2RawUnpaired(_Raw2RawBase):
  """One camera's unpaired packed raws.

  Args:
    root: the dataset folder (holding unpaired/).
    camera: the camera folder name, e.g. 'iphone-x'.
    source: 'mat', 'dng' or 'auto' (as `Raw2RawPaired`).
    levels: 'auto' or 'file' (DNG form only).
  """

  def __init__(self, root: str | os.PathLike[str], *, camera: str,
               source: str = 'auto', levels: str = 'auto'):
    check = self._init_common(root, (camera,), source, levels)
    self.camera = camera
    self.source = self._pick_source(check, source,
                                    [f'unpaired/{camera}/raw-rggb'],
                                    [f'unpaired/{camera}/dng'])
    sub, suffixes = (('raw-rggb', ('.mat',)) if self.source == 'mat' else
                     ('dng', ('.dng',)))
    folder = check.require_dir(f'unpaired/{camera}/{sub}',
                               f'{camera} unpaired images')
    self._files = check.files(folder, suffixes, f'{camera} unpaired images')
    check.raise_if_any()
    self.keys = sorted(self._files, key=_layout.natural_key)
    self.fields = {'raw': Field('packed')}

  def load(self, key: str) -> dict[str, np.ndarray]:
    path = self._files[key]
    if self.source == 'mat':
      return {'raw': self._read_mat(path)}
    return {'raw': self._read_dng(path, self.camera)}
