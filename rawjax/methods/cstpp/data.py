"""The training stream: unpaired patches of both cameras, drawn apart.

Two data protocols (`config.data.protocol`, docs/cstpp.md):

  * 'resize_patches' (the paper config's default): the official
    preprocessing (`data_preprocess/1_data_process_samsung_iphone.py`,
    `--processed_image_size [512,384] --patch_size 256 --type split`): every
    packed image is resized to `data.resize_to` = (384, 512) (H, W; cv2's
    (512, 384) is (width, height)), then cut into the fixed grid of
    `data.patch_size` patches (`patch_corners`); the epoch is every patch of
    every image once, in a seeded random order. The official
    `split_large_image` is not released: the resize filter
    (`data.resize_method`), the grid (`data.patch_grid`: 'cover' overlaps
    the last row / column of patches so nothing is dropped, 'disjoint' drops
    the remainder) and the image axis of 512 are our choices.
    `data.resize_to=()` skips the resize (the grid of the full-resolution
    image: the other reading of `--type split`).
  * 'random_crops': one `data.patch_size` crop at a uniform random position
    of the full-resolution packed image per image and step (one item per
    image per epoch).

The resize is CFA-aware in that it works on the packed image: each of the
four planes (R, Gr, Gb, B) is resampled separately on the Bayer-cell grid,
so colours never mix (resizing the mosaic would blend neighbouring
colours); as in the official 4-channel resize, the planes' half-cell
offsets are not rescaled.

The official loader couples file i of A with file i of B for ever; here A
and B are two seeded streams, so they are re-paired at random every epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval.raw2raw import camera_names, require_train_split
from rawjax.methods.cstpp.config import (
    PATCH_GRIDS, RESIZE_METHODS, check_config)

__all__ = ['GridPatches', 'TrainData', 'make_data', 'patch_corners',
           'process_share', 'resize_packed']


def process_share(batch_size: int, key: str, *, process_index: int,
                  process_count: int) -> slice:
  """This process's slice of a global batch of `batch_size` (config `key`).

  Raises:
    ValueError: the batch does not split evenly over the processes.
  """
  if batch_size % process_count:
    raise ValueError(f'config.{key}={batch_size} does not split over '
                     f'{process_count} processes.')
  share = batch_size // process_count
  return slice(process_index * share, (process_index + 1) * share)


def _grid_offsets(length: int, patch: int, grid: str) -> list[int]:
  if length < patch:
    raise ValueError(f'patch_corners: a side of {length} pixels is smaller '
                     f'than the patch ({patch}).')
  if grid == 'disjoint':
    return list(range(0, length - patch + 1, patch))
  count = -(-length // patch)
  if count == 1:
    return [0]
  # Evenly spread from 0 to length - patch: the fewest patches that cover
  # the side, overlapping as little and as evenly as possible.
  return [round(i * (length - patch) / (count - 1)) for i in range(count)]


def patch_corners(height: int, width: int, patch: int, *,
                  grid: str = 'cover') -> list[tuple[int, int]]:
  """Top-left (row, column) of the fixed patch grid of a (height, width)
  image, row-major.

  'cover': ceil(n / patch) patches per side, spread evenly from 0 to
  n - patch (the last ones overlap their neighbours; nothing is dropped);
  384 x 512 with 256 gives rows (0, 128), columns (0, 256). 'disjoint':
  floor(n / patch) abutting patches from 0 (the remainder is dropped);
  384 x 512 gives (0, 0), (0, 256).

  Raises:
    ValueError: a side is smaller than `patch`, or `grid` is unknown.
  """
  if grid not in PATCH_GRIDS:
    raise ValueError(f'patch_corners: grid must be one of {PATCH_GRIDS}, got '
                     f'{grid!r}.')
  rows = _grid_offsets(height, patch, grid)
  cols = _grid_offsets(width, patch, grid)
  return [(r, c) for r in rows for c in cols]


@functools.lru_cache(maxsize=16)
def _resize_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
  """The (n_out, n_in) operator of one axis (both filters are separable)."""
  if method == 'area':
    # Output pixel i averages the input span [i s, (i + 1) s), s = n_in /
    # n_out: each input pixel weighted by its overlap with the span.
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
  # jax.image.resize is linear: resizing the identity along one axis gives
  # its matrix, applied in numpy so the loader threads do no per-image jax
  # dispatch.
  with pipeline_lib.on_host():
    matrix = jax.image.resize(jnp.eye(n_in, dtype=jnp.float32),
                              (n_out, n_in), method='linear', antialias=False)
  return np.asarray(matrix, np.float32)


def resize_packed(image: Any, size: Sequence[int], *,
                  method: str = 'area') -> np.ndarray:
  """A packed raw (h, w, C) resized to `size` = (H, W), float32 in the
  input's range (both filters are convex combinations, so [0, 1] stays).

  Each channel (a CFA plane on the Bayer-cell grid) is resampled on its
  own. 'area': every output pixel is the mean of the input area it covers
  (pixels weighted by overlap; cv2's INTER_AREA when downscaling, no
  aliasing; piecewise constant when upscaling). 'bilinear': half-pixel
  centres, edge-clamped, no antialiasing (cv2's default INTER_LINEAR,
  PyTorch's align_corners=False, `jax.image.resize` 'linear' without
  antialias).

  Raises:
    ValueError: `method` is unknown or `image` is not (h, w, C).
  """
  if method not in RESIZE_METHODS:
    raise ValueError(f'resize_packed: method must be one of '
                     f'{RESIZE_METHODS}, got {method!r}.')
  image = np.asarray(image, np.float32)
  if image.ndim != 3:
    raise ValueError(f'resize_packed: expected (h, w, C), got shape '
                     f'{image.shape}.')
  (h, w), (out_h, out_w) = image.shape[:2], tuple(size)
  if (h, w) == (out_h, out_w):
    return image
  rows = _resize_matrix(h, out_h, method)
  cols = _resize_matrix(w, out_w, method)
  return np.einsum('ih,hwc,jw->ijc', rows, image, cols, optimize=True)


class GridPatches:
  """The 'resize_patches' view of a dataset: item k is patch k % P of image
  k // P, P = len(patch grid).

  Args:
    dataset: a random-access dataset with a packed field 'raw'.
    patch_size: the square patch, packed pixels.
    size: (H, W) every image is resized to, or () for none (then every
      image must have the size of the first).
    method: the resize filter (`resize_packed`).
    grid: 'cover' or 'disjoint' (`patch_corners`).

  `fields` = {'raw': the dataset's}; a sample is {'raw': (p, p, C) float32,
  'name': '<image name>#<patch index>'}.
  """

  def __init__(self, dataset: Any, *, patch_size: int, size: Sequence[int],
               method: str = 'area', grid: str = 'cover'):
    self.dataset = dataset
    self.fields = {'raw': dataset.fields['raw']}
    self.patch_size = int(patch_size)
    self.size = tuple(size)
    self.method = method
    grid_size = self.size or np.shape(dataset[0]['raw'])[:2]
    self.image_size = tuple(int(n) for n in grid_size)
    self.corners = patch_corners(*self.image_size, self.patch_size,
                                 grid=grid)

  def __len__(self) -> int:
    return len(self.dataset) * len(self.corners)

  def __getitem__(self, index: int) -> dict[str, Any]:
    image_index, patch_index = divmod(int(index), len(self.corners))
    sample = self.dataset[image_index]
    raw = np.asarray(sample['raw'], np.float32)
    if self.size:
      raw = resize_packed(raw, self.size, method=self.method)
    elif raw.shape[:2] != self.image_size:
      raise ValueError(
          f'image {image_index} ({sample.get("name", "?")}) is '
          f'{raw.shape[:2]} packed, not {self.image_size} as the first: '
          'config.data.resize_to=() needs images of one size; set '
          'data.resize_to.')
    r, c = self.corners[patch_index]
    p = self.patch_size
    name = sample.get('name', str(image_index))
    return {'raw': raw[r:r + p, c:c + p], 'name': f'{name}#{patch_index}'}


class TrainData(pipeline_lib.ZippedPipelines):
  """Unpaired patches of both cameras, drawn independently.

  Batch of step s: {'a': (N, p, p, C), 'b': (N, p, p, C)} float32 in
  [0, 1], N = data.batch_size / process_count. Two seeded
  `rawjax.data.Pipeline` streams (the patches of `data.protocol`, dihedral
  augmentation from data.augment); `iterate(start_step=k)` resumes both
  exactly.
  """

  def __init__(self, config, *, split: str = 'train', process_index: int = 0,
               process_count: int = 1):
    require_train_split(split, method='cycle_gan')
    check_config(config)
    data = config.data
    process_share(data.batch_size, 'data.batch_size',
                  process_index=process_index, process_count=process_count)
    self.root = dataset_root(data)
    self.cameras = camera_names(data.cameras, self.root)
    n = data.batch_size
    grid = data.protocol == 'resize_patches'
    self.pipelines = {}
    for i, (key, camera) in enumerate(zip(('a', 'b'), self.cameras)):
      dataset = raw2raw_data.Raw2RawUnpaired(self.root, camera=camera)
      if grid:
        dataset = GridPatches(dataset, patch_size=data.patch_size,
                              size=tuple(data.resize_to),
                              method=data.resize_method,
                              grid=data.patch_grid)
      self.pipelines[key] = pipeline_lib.Pipeline(
          pipeline_lib.Resampled(dataset, range(len(dataset)), n),
          per_device_batch=n // process_count, fields=('raw',),
          patch_size=None if grid else data.patch_size,
          augment=tuple(data.augment),
          seed=pipeline_lib.stream_seed(config.seed, 10 + i),
          local_device_count=1, process_index=process_index,
          process_count=process_count, num_workers=data.num_workers,
          worker_count=data.get('worker_count', 0),
          prefetch=data.prefetch)

  def merge(self, parts):
    return {k: np.asarray(v['raw'])[0] for k, v in parts.items()}


# The Method interface's make_data(config, *, split, process_index,
# process_count): the stream itself.
make_data = TrainData
