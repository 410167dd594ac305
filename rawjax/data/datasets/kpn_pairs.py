"""Aligned raw / sRGB pairs as .npz files: the kernel-prediction ISP's data.

The layout the alignment pipeline (`rawjax.align`) writes and the KPN
method trains on:

    <root>/train/<name>.npz, <root>/test/<name>.npz, one pair each:
      raw   (h, w, 4) float32 packed (R, Gr, Gb, B), black-subtracted, [0, 1]
      srgb  (2h, 2w, 3) aligned target sRGB, float32 in [0, 1] or uint8
      optional, for the classic-pipeline baseline of the evaluation:
      pattern (str, the CFA of the raw, e.g. 'RGGB'), wb_gains (3,),
      cam_to_srgb (3, 3)
    <root>/<split>/<image>.manifest.json (optional, `rawjax.align.write_pairs`):
      one entry per patch of an aligned image: 'file' (the .npz stem, or
      null), 'kept' (false: rejected by the flow / keypoint / re-alignment
      filter), 'status', 'flow_score' (misalignment, px) and the alignment
      record. Files a manifest marks as rejected are left out unless
      `include_rejected`; files no manifest names are pairs like any other.

Reference grid: the packed raw ('raw' scale 1, 'srgb' scale 2).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

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

  Alignment manifests (`<split>/*.manifest.json`) are honoured: the pairs
  they mark as rejected are not in `keys` unless `include_rejected`;
  `records[key]` is a listed pair's manifest entry (kept flag, status,
  misalignment score 'flow_score' in px), `rejected` the left-out keys.

  Raises:
    DatasetLayoutError: the split folder is missing or has no .npz file (or
      every pair is rejected), a manifest is unreadable or names a kept
      file that is missing, or a file lacks 'raw' / 'srgb' or has
      mismatched shapes (named on read).
  """

  name = 'KPN pairs'

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'train',
               white_balance: bool = False, include_rejected: bool = False):
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    self.split = split
    self.white_balance = bool(white_balance)
    folder = check.require_dir(split, f'{split} pairs (.npz with raw, srgb)')
    self._files = check.files(folder, ('.npz',), f'{split} pairs')
    self.records: dict[str, dict[str, Any]] = {}
    if folder is not None:
      self.records = _manifest_records(check, folder, set(self._files))
    check.raise_if_any()
    self.rejected = sorted(
        (k for k in self._files if not self.records.get(k, {}).get('kept', 1)),
        key=_layout.natural_key)
    if not include_rejected:
      for key in self.rejected:
        del self._files[key]
      if not self._files:
        check.add(f'{split} pairs', folder,
                  'every one rejected by the alignment manifests '
                  '(include_rejected=True reads them)')
        check.raise_if_any()
    self.keys = sorted(self._files, key=_layout.natural_key)
    self.fields = {'raw': Field('packed', 1), 'srgb': Field('image', 2)}

  def misalignment(self, key: str) -> float:
    """The alignment's misalignment score (mean flow, px), NaN if unknown."""
    score = self.records.get(key, {}).get('flow_score')
    return float('nan') if score is None else float(score)

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


def _manifest_records(check: _layout.LayoutCheck, folder: pathlib.Path,
                      files: set[str]) -> dict[str, dict[str, Any]]:
  """{npz stem: manifest entry} of every `*.manifest.json` in `folder`."""
  records = {}
  for path in sorted(folder.glob('*.manifest.json')):
    try:
      patches = json.loads(path.read_text())['patches']
      entries = [(e['file'], e) for e in patches if e.get('file')]
      for _, entry in entries:
        bool(entry['kept'])
    except (OSError, ValueError, KeyError, TypeError) as e:
      check.add('alignment manifest', path,
                f'unreadable ({type(e).__name__}: {e})')
      continue
    for file, entry in entries:
      if entry['kept'] and file not in files:
        check.add(f'the pair {file}.npz its manifest {path.name} keeps',
                  folder / f'{file}.npz')
      records[file] = entry
  return records
