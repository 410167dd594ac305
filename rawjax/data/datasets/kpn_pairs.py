"""Aligned raw / sRGB pairs as .npz files: the kernel-prediction ISP's data.

The layout the alignment pipeline (`rawjax.align`) writes and the KPN
method trains on:

    <root>/train/<name>.npz, <root>/test/<name>.npz, one pair each:
      raw   (h, w, 4) float32 packed (R, Gr, Gb, B), black-subtracted, [0, 1]
      srgb  (2h, 2w, 3) aligned target sRGB, float32 in [0, 1] or uint8
      optional, for the classic-pipeline baseline of the evaluation:
      pattern (str, the CFA of the raw, e.g. 'RGGB'), wb_gains (3,),
      cam_to_srgb (3, 3)

Reference grid: the packed raw ('raw' scale 1, 'srgb' scale 2).
"""

from __future__ import annotations

import os

import numpy as np

from rawjax.data.datasets import _layout
from rawjax.data.pipeline import Field
from rawjax.isp.metadata import RawMetadata

__all__ = ['METADATA_KEYS', 'PairFolder']

# The arrays `PairFolder.metadata` needs for `rawjax.isp.process`.
METADATA_KEYS = ('pattern', 'wb_gains', 'cam_to_srgb')


class PairFolder(_layout.FileDataset):
  """Aligned raw/sRGB pairs: `<root>/<split>/<name>.npz` (module docstring).

  Each sample: 'raw' (h, w, 4) float32 packed raw in [0, 1] (reference grid,
  scale 1) and 'srgb' (2h, 2w, 3) float32 target in [0, 1] (scale 2), so the
  batching pipeline crops and augments both alike. `metadata(key)` returns
  the optional classic-pipeline metadata. With `white_balance`, 'raw' is
  multiplied by the file's as-shot 'wb_gains' (normalised to a minimum of 1,
  clipped at 1, as `process` does) before the network sees it.

  Raises:
    DatasetLayoutError: the split folder is missing or has no .npz file, or
      a file lacks 'raw' / 'srgb' or has mismatched shapes (named on read).
  """

  name = 'KPN pairs'

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'train',
               white_balance: bool = False):
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    self.split = split
    self.white_balance = bool(white_balance)
    folder = check.require_dir(split, f'{split} pairs (.npz with raw, srgb)')
    self._files = check.files(folder, ('.npz',), f'{split} pairs')
    check.raise_if_any()
    self.keys = sorted(self._files, key=_layout.natural_key)
    self.fields = {'raw': Field('packed', 1), 'srgb': Field('image', 2)}

  def _arrays(self, key: str) -> dict[str, np.ndarray]:
    path = self._files[key]

    def read(p):
      with np.load(p, allow_pickle=False) as f:
        absent = [k for k in ('raw', 'srgb') if k not in f.files]
        if absent:
          raise KeyError(f'array(s) {absent} not in the file (it has '
                         f'{f.files})')
        return {k: np.asarray(f[k]) for k in f.files}

    return self._read(path, f'{self.split} pair {key!r}', read)

  def load(self, key: str) -> dict[str, np.ndarray]:
    arrays = self._arrays(key)
    what = f'{self.split} pair {key!r}'
    raw = arrays['raw'].astype(np.float32)
    srgb = arrays['srgb']
    srgb = (srgb.astype(np.float32) / 255.0 if srgb.dtype == np.uint8 else
            srgb.astype(np.float32))
    if raw.ndim != 3 or raw.shape[-1] != 4:
      raise self._layout_error(what, self._files[key],
                               f"'raw' must be (h, w, 4) packed, got "
                               f'{raw.shape}')
    h, w = raw.shape[:2]
    if srgb.shape != (2 * h, 2 * w, 3):
      raise self._layout_error(what, self._files[key],
                               f"'srgb' must be (2h, 2w, 3) = "
                               f'{(2 * h, 2 * w, 3)} for raw {raw.shape}, got '
                               f'{srgb.shape}')
    if self.white_balance:
      if 'wb_gains' not in arrays:
        raise self._layout_error(
            what, self._files[key],
            "no 'wb_gains' array, needed by config.data.white_balance=True")
      gains = arrays['wb_gains'].astype(np.float32)
      gains = gains / gains.min()
      # As `rawjax.isp.process`: gains normalised to a minimum of 1, then
      # clipped at white.
      raw = np.minimum(raw * gains[[0, 1, 1, 2]], 1.0)
    return {'raw': raw, 'srgb': srgb}

  def metadata(self, key: str) -> RawMetadata | None:
    """RawMetadata for `process` on the normalised mosaic, or None."""
    arrays = self._arrays(key)
    if not all(k in arrays for k in METADATA_KEYS):
      return None
    return RawMetadata.create(
        pattern=str(arrays['pattern']), black_level=0.0, white_level=1.0,
        wb_gains=arrays['wb_gains'], cam_to_srgb=arrays['cam_to_srgb'])
