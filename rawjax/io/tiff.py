"""TIFF structure inspection for TIFF-based camera raws (with tifffile).

`inspect_tiff(path, size)` parses every IFD of a TIFF-based raw (the IFD chain
and its SubIFDs), keeps the tags as plain Python values with their TIFF data
type, and lists the structural problems `rawjax.io.read_raw` rejects: image
data past the end of the file, and for DNGs (whose TIFF structure is fully
specified) tags tifffile had to drop or a raw IFD without readable strip/tile
offsets. The tag helpers (`numbers`, `matrix`, `integer`, `text`) read such
values leniently: None for anything absent or malformed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import numpy as np
import tifffile

TIFF_MAGICS = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')

# TIFF / DNG tag codes the inspector itself needs.
NEW_SUBFILE_TYPE, PHOTOMETRIC, EXIF_IFD, DNG_VERSION = 254, 262, 34665, 50706
CFA_PHOTOMETRICS = (32803, 34892)  # CFA, LinearRaw


@dataclasses.dataclass
class TiffInfo:
  """What tifffile found in a TIFF-based file (plain Python values)."""
  ifd0: dict[int, Any] = dataclasses.field(default_factory=dict)
  ifds: list[dict[int, Any]] = dataclasses.field(default_factory=list)
  exif: dict[str, Any] = dataclasses.field(default_factory=dict)
  problems: list[str] = dataclasses.field(default_factory=list)
  parse_error: str | None = None
  # The tags of the first full-resolution CFA (or LinearRaw) IFD, which
  # carries the per-raw DNG tags such as the OpcodeLists.
  raw_ifd: dict[int, Any] | None = None

  @property
  def is_dng(self) -> bool:
    return DNG_VERSION in self.ifd0

  def find(self, code: int) -> Any:
    """A tag value from IFD0, else from the first other IFD that has it."""
    if code in self.ifd0:
      return self.ifd0[code]
    for ifd in self.ifds:
      if code in ifd:
        return ifd[code]
    return None


class TagValue:
  """A tag value with its TIFF data type (rationals stay flat num/den)."""

  def __init__(self, value: Any, dtype: int):
    self.value = value
    self.dtype = dtype


class CaptureTifffileLog(logging.Filter):
  """Captures (and hides) tifffile log records emitted by one thread."""

  def __init__(self):
    super().__init__()
    self.thread = threading.get_ident()
    self.records: list[logging.LogRecord] = []

  def filter(self, record: logging.LogRecord) -> bool:
    if record.thread != self.thread:
      return True
    self.records.append(record)
    return False


def walk_pages(pages: Any, depth: int = 0, limit: int = 64):
  """TiffPages and their SubIFDs, depth first, bounded."""
  if pages is None or depth > 3:
    return
  for i, page in enumerate(pages):
    if i >= limit:
      return
    if not isinstance(page, tifffile.TiffPage):
      continue
    yield page
    try:
      sub = page.pages if page.subifds else None
    except Exception:  # pylint: disable=broad-except
      sub = None
    yield from walk_pages(sub, depth + 1, limit)


def inspect_tiff(path: str, size: int) -> TiffInfo | None:
  """Parses a TIFF-based raw's IFDs and checks them against the file size.

  Returns None when the file is not TIFF-based.
  """
  with open(path, 'rb') as f:
    if f.read(4) not in TIFF_MAGICS:
      return None
  info = TiffInfo()
  capture = CaptureTifffileLog()
  logger = logging.getLogger('tifffile')
  logger.addFilter(capture)
  try:
    with tifffile.TiffFile(path) as tif:
      for index, page in enumerate(walk_pages(tif.pages)):
        tags = {}
        for tag in page.tags.values():
          if tag.code == EXIF_IFD:
            if index == 0 and isinstance(tag.value, dict):
              info.exif = dict(tag.value)
            continue
          tags[tag.code] = TagValue(tag.value, int(tag.dtype))
        if index == 0:
          info.ifd0 = tags
        else:
          info.ifds.append(tags)
        offsets = tuple(np.ravel(page.dataoffsets if page.dataoffsets
                                 is not None else ()).tolist())
        counts = tuple(np.ravel(page.databytecounts if page.databytecounts
                                is not None else ()).tolist())
        end = max((int(o) + int(c) for o, c in zip(offsets, counts)
                   if int(c) > 0), default=0)
        if end > size:
          info.problems.append(
              f'the image data of the IFD at byte {page.offset} ends at byte '
              f'{end} but the file has only {size} bytes (truncated file)')
        photometric = tags.get(PHOTOMETRIC)
        subfile = tags.get(NEW_SUBFILE_TYPE)
        is_raw_ifd = (photometric is not None and
                      photometric.value in CFA_PHOTOMETRICS and
                      (subfile is None or subfile.value == 0))
        if is_raw_ifd and info.raw_ifd is None:
          info.raw_ifd = tags
        if is_raw_ifd and (not offsets or len(counts) != len(offsets)):
          info.problems.append(
              f'the raw IFD at byte {page.offset} has no readable strip/tile '
              'offsets or byte counts (truncated or corrupt file)')
  except Exception as e:  # pylint: disable=broad-except
    # Not parseable as TIFF: leave the verdict to LibRaw and the mosaic checks.
    info.parse_error = f'{type(e).__name__}: {e}'
  finally:
    logger.removeFilter(capture)
  errors = [r.getMessage() for r in capture.records
            if r.levelno >= logging.ERROR]
  if info.is_dng:
    info.problems.extend(
        f'corrupt or truncated TIFF structure ({msg})' for msg in errors[:3])
  else:
    # Vendor raws may carry odd tags; only the data extents count for them.
    info.problems = [p for p in info.problems if 'ends at byte' in p]
  return info


def numbers(tag: TagValue | None) -> np.ndarray | None:
  """A numeric tag as float64; rationals from flat (num, den, ...) tuples."""
  if tag is None or tag.value is None:
    return None
  value = tag.value
  if isinstance(value, (bytes, str)):
    return None
  try:
    arr = np.asarray(value, np.float64).ravel()
  except (TypeError, ValueError):
    return None
  if tag.dtype in (5, 10):  # RATIONAL, SRATIONAL
    if arr.size % 2:
      return None
    num, den = arr[0::2], arr[1::2]
    if np.any(den == 0):
      return None
    arr = num / den
  if arr.size == 0 or not np.all(np.isfinite(arr)):
    return None
  return arr


def matrix(tag: TagValue | None, *, cols: int | None = None,
            rows: int | None = None) -> np.ndarray | None:
  arr = numbers(tag)
  if arr is None:
    return None
  if cols is not None:
    return arr.reshape(-1, cols) if arr.size % cols == 0 else None
  if rows is not None:
    return arr.reshape(rows, -1) if arr.size % rows == 0 else None
  n = int(round(np.sqrt(arr.size)))
  return arr.reshape(n, n) if n * n == arr.size else None


def integer(tag: TagValue | None) -> int | None:
  arr = numbers(tag)
  return int(arr[0]) if arr is not None else None


def text(tag: TagValue | None) -> str | None:
  if tag is None or tag.value is None:
    return None
  value = tag.value
  if isinstance(value, bytes):
    value = value.decode('latin-1')
  if not isinstance(value, str):
    return None
  value = value.strip('\x00 \t\r\n')
  return value or None
