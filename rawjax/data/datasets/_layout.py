"""Shared machinery of the dataset loaders: layout checks and file reading.

Every loader validates its on-disk layout when it is opened and raises one
`DatasetLayoutError` that names *every* missing piece (folder, file, pair
partner, variable inside a .mat file) and the path where it was expected, so
a user fixes a download in one pass instead of one crash at a time. Reading a
sample later wraps any decoding failure in the same error, naming the file.

Loaders return samples as dicts of numpy arrays on the host. Array work that
reuses the jnp ISP functions (packing, normalisation) runs on the host CPU
backend (`rawjax.data.pipeline.on_host`), never on an accelerator, so a data
pipeline does not compete with the training step for device memory.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from rawjax.data.pipeline import on_host, to_host  # noqa: F401

__all__ = ['DatasetLayoutError', 'FileDataset', 'LayoutCheck', 'Problem']

T = TypeVar('T')

# How many problems the error message spells out; `.problems` holds all.
_MESSAGE_LIMIT = 25


@dataclasses.dataclass(frozen=True)
class Problem:
  """One missing or unusable piece of a dataset layout.

  Attributes:
    what: what the piece is, e.g. "DSLR sRGB JPG of pair '17'".
    path: where it was expected (absolute).
    reason: 'missing' or a description of why it is unusable.
  """
  what: str
  path: str
  reason: str = 'missing'

  def __str__(self) -> str:
    return f'{self.reason}: {self.what} (expected at {self.path})'


class DatasetLayoutError(Exception):
  """A dataset folder does not have the layout its loader expects.

  Attributes:
    dataset: the dataset's name, e.g. 'ZRR'.
    root: the folder that was opened.
    problems: every `Problem` found (the message lists the first 25).
  """

  def __init__(self, dataset: str, root: str | os.PathLike[str],
               problems: Sequence[Problem]):
    self.dataset = dataset
    self.root = os.fspath(root)
    self.problems = tuple(problems)
    super().__init__(self._message())

  def _message(self) -> str:
    lines = [f'{self.dataset} dataset at {self.root}: '
             f'{len(self.problems)} problem(s) with the layout:']
    lines += [f'  - {p}' for p in self.problems[:_MESSAGE_LIMIT]]
    if len(self.problems) > _MESSAGE_LIMIT:
      lines.append(f'  ... and {len(self.problems) - _MESSAGE_LIMIT} more '
                   '(see DatasetLayoutError.problems)')
    return '\n'.join(lines)


class LayoutCheck:
  """Collects the problems of a layout, then raises them all at once.

  Usage: create one per dataset open, call the `require_*`/`files`/`pair`
  methods (they return what they found, or None/empty when it is missing),
  and finish with `raise_if_any()`.
  """

  def __init__(self, dataset: str, root: str | os.PathLike[str]):
    self.dataset = dataset
    self.root = pathlib.Path(root).expanduser().resolve()
    self.problems: list[Problem] = []
    if not self.root.is_dir():
      self.add(f'{dataset} root folder', self.root)

  def add(self, what: str, path: str | os.PathLike[str],
          reason: str = 'missing') -> None:
    self.problems.append(Problem(what, os.fspath(path), reason))

  def path(self, *parts: str) -> pathlib.Path:
    return self.root.joinpath(*parts)

  def require_dir(self, rel: str, what: str) -> pathlib.Path | None:
    path = self.path(rel)
    if path.is_dir():
      return path
    if self.root.is_dir():
      self.add(f'folder of {what}', path)
    return None

  def require_file(self, rel: str | os.PathLike[str],
                   what: str) -> pathlib.Path | None:
    path = self.path(os.fspath(rel))
    if path.is_file():
      return path
    if self.root.is_dir():
      self.add(what, path)
    return None

  def first_existing(self, candidates: Sequence[str], what: str, *,
                     kind: str = 'dir') -> pathlib.Path | None:
    """The first candidate path that exists; one problem naming all if none."""
    test = pathlib.Path.is_dir if kind == 'dir' else pathlib.Path.is_file
    for rel in candidates:
      if test(self.path(rel)):
        return self.path(rel)
    if self.root.is_dir():
      tried = ' or '.join(os.fspath(self.path(c)) for c in candidates)
      self.problems.append(Problem(what, tried))
    return None

  def files(self, folder: pathlib.Path | None, suffixes: Iterable[str],
            what: str) -> dict[str, pathlib.Path]:
    """Files of `folder` with one of `suffixes` (any case), keyed by stem.

    An existing folder without any such file is a problem too.
    """
    if folder is None:
      return {}
    suffixes = tuple(s.lower() for s in suffixes)
    found = {p.stem: p for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in suffixes}
    if not found:
      self.add(f'{what} ({"/".join(suffixes)} files)', folder / '*',
               reason='empty folder')
    return found

  def pair(self, left: Mapping[str, pathlib.Path],
           right: Mapping[str, pathlib.Path], *,
           right_path: Callable[[str], pathlib.Path], right_what: str,
           left_path: Callable[[str], pathlib.Path] | None = None,
           left_what: str | None = None) -> list[str]:
    """Keys present on both sides; each key missing a partner is a problem."""
    for key in sorted(set(left) - set(right)):
      self.add(f'{right_what} paired with {left[key]}', right_path(key),
               reason='missing pair')
    if left_path is not None:
      for key in sorted(set(right) - set(left)):
        self.add(f'{left_what} paired with {right[key]}', left_path(key),
                 reason='missing pair')
    return sorted(set(left) & set(right), key=natural_key)

  def raise_if_any(self) -> None:
    if self.problems:
      raise DatasetLayoutError(self.dataset, self.root, self.problems)


def natural_key(name: str) -> tuple:
  """Sorts '2' before '10' (ZRR and LOL number their files)."""
  parts = []
  for chunk in _split_digits(name):
    parts.append((0, int(chunk), '') if chunk.isdigit() else (1, 0, chunk))
  return tuple(parts)


def _split_digits(name: str) -> Iterator[str]:
  chunk = ''
  for ch in name:
    if chunk and ch.isdigit() != chunk[-1].isdigit():
      yield chunk
      chunk = ''
    chunk += ch
  if chunk:
    yield chunk


# --- reading ------------------------------------------------------------------


def read_file(dataset: str, root: str | os.PathLike[str],
              path: str | os.PathLike[str], what: str,
              reader: Callable[[str], T]) -> T:
  """Runs `reader(path)`, turning any failure into a `DatasetLayoutError`."""
  path = os.fspath(path)
  try:
    return reader(path)
  except DatasetLayoutError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    if not os.path.exists(path):
      problem = Problem(what, path)
    else:
      problem = Problem(what, path, f'unreadable ({type(e).__name__}: {e})')
    raise DatasetLayoutError(dataset, root, [problem]) from e


def read_png_integers(path: str) -> np.ndarray:
  """A PNG's stored integers, uint8 or uint16, shape (H, W) or (H, W, C).

  Sensor PNGs (ZRR's 10-bit Huawei mosaics, NUS's 16-bit camera RGB) need
  the integers themselves, before any black-level arithmetic. Pillow decodes
  greyscale and 8-bit files (fast); it would truncate 16-bit colour to 8
  bits, so those go through pypng.
  """
  with open(path, 'rb') as f:
    header = f.read(26)
  if len(header) < 26 or header[:8] != b'\x89PNG\r\n\x1a\n':
    raise ValueError('not a PNG file (bad signature)')
  bits, colour_type = header[24], header[25]
  if bits not in (8, 16) or colour_type == 3:
    raise ValueError(f'expected an 8- or 16-bit greyscale/RGB PNG, got '
                     f'{bits}-bit colour type {colour_type}')
  dtype = np.uint16 if bits == 16 else np.uint8
  if colour_type == 0 or bits == 8:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(path) as image:
      return np.asarray(image).astype(dtype, copy=False)
  import png  # pylint: disable=g-import-not-at-top
  width, height, rows, meta = png.Reader(filename=path).read()
  planes = int(meta['planes'])
  data = np.vstack([np.asarray(row, dtype) for row in rows]).reshape(
      height, width, planes)
  return data[..., 0] if planes == 1 else data


def read_jpeg(path: str) -> np.ndarray:
  """An 8-bit JPEG as float32 RGB in [0, 1], shape (H, W, 3) (Pillow decode)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    rgb = np.asarray(image.convert('RGB'))
  return rgb.astype(np.float32) / np.float32(255)


def load_mat(path: str, variables: Sequence[str]) -> dict[str, np.ndarray]:
  """The named variables of a MATLAB .mat file (scipy.io.loadmat).

  Raises:
    KeyError: a variable is absent (the message names it and lists those
      present).
  """
  import scipy.io  # pylint: disable=g-import-not-at-top
  content = scipy.io.loadmat(path)
  absent = [v for v in variables if v not in content]
  if absent:
    present = sorted(k for k in content if not k.startswith('__'))
    raise KeyError(f'variable(s) {", ".join(map(repr, absent))} not in the '
                   f'file (it has {", ".join(map(repr, present)) or "none"})')
  return {v: content[v] for v in variables}


def mat_strings(cell: Any) -> list[str]:
  """A MATLAB cell array of strings as loaded by scipy, flattened to str."""
  out = []
  for item in np.asarray(cell, dtype=object).ravel():
    while isinstance(item, np.ndarray) and item.dtype == object:
      item = item.ravel()[0]
    out.append(str(np.asarray(item).ravel()[0]) if isinstance(
        item, np.ndarray) else str(item))
  return out


# --- the common dataset interface ---------------------------------------------


class FileDataset(abc.ABC):
  """A random-access dataset read from files in a published layout.

  Subclasses set `name` (e.g. 'ZRR'), `root`, `fields` (a mapping from sample
  key to `rawjax.data.pipeline.Field`, which tells the batching pipeline how
  to crop and augment each array) and `keys` (one stable identifier per
  sample, e.g. the file stem), and implement `load(key)`.

  `dataset[i]` returns a dict with an array per field plus 'name' (the key).
  """

  name: str = 'dataset'
  root: pathlib.Path
  fields: Mapping[str, Any]
  keys: Sequence[str]

  def __len__(self) -> int:
    return len(self.keys)

  def __getitem__(self, index: int) -> dict[str, Any]:
    if not -len(self) <= index < len(self):
      raise IndexError(f'{self.name}: index {index} out of range for '
                       f'{len(self)} samples.')
    key = self.keys[index]
    sample = self.load(key)
    sample['name'] = key
    return sample

  def __repr__(self) -> str:
    return (f'{type(self).__name__}(root={os.fspath(self.root)!r}, '
            f'{len(self)} samples, fields={list(self.fields)})')

  @abc.abstractmethod
  def load(self, key: str) -> dict[str, np.ndarray]:
    """The arrays of one sample (without 'name')."""

  def _read(self, path: str | os.PathLike[str], what: str,
            reader: Callable[[str], T]) -> T:
    return read_file(self.name, self.root, path, what, reader)

  def _layout_error(self, what: str, path: str | os.PathLike[str],
                    reason: str) -> DatasetLayoutError:
    return DatasetLayoutError(self.name, self.root,
                              [Problem(what, os.fspath(path), reason)])
