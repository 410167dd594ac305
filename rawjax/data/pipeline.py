"""Batching on grain: random patches, the papers' augmentations, sharding.

A dataset (any `rawjax.data.datasets` loader, or anything with `__len__`,
`__getitem__` returning a dict of arrays, and a `fields` mapping) is a grain
random-access source; `Pipeline` turns it into a deterministic, resumable
stream of batches shaped for `jax.pmap`:

    pipeline = Pipeline(dataset, per_device_batch=4, patch_size=128, seed=0)
    with pipeline.iterate(start_step=restored_step) as batches:
      for batch in batches:          # batch['raw']: (local_devices, 4, ...)
        state, metrics = p_train_step(state, batch, rng)

Every array of a sample is described by a `Field`: its `kind` says how it is
cropped and augmented, its `scale` how many of its pixels one pixel of the
sample's *reference grid* covers. Loaders that hold raw data use the Bayer
cell grid (the packed resolution) as the reference grid, so a packed raw has
scale 1 and a full-resolution mosaic, sRGB target or coordinate map has
scale 2; patch sizes and crop offsets are counted on that grid, which makes
every mosaic crop start on an even row and column (CFA phase kept).

Augmentation (the dihedral group: flips, transposes, 90-degree rotations) is
drawn once per sample and applied identically to every field:
  * packed raw: the packed-domain flip of the papers (`rawjax.isp.
    flip_packed` / `transpose_packed`: a transpose or an odd rotation swaps
    Gr and Gb, so channels keep their canonical meaning; no phase
    correction);
  * mosaic: packed, transformed as above, unpacked with the same pattern, so
    the mosaic keeps its CFA pattern and its size and stays exactly the
    unpacking of its augmented packed version;
  * image (RGB, masks, coordinate maps): plain spatial flips/transposes of
    the array; coordinate values move with their pixels and are not
    rewritten (ZRR's `augment`, so after a transpose the x channel varies
    along H);
  * meta (illuminants, scalars): unchanged.
All of it is numpy index arithmetic (views, no resampling, no jax), so it
runs in grain's worker processes without compiling anything.

The grain graph of `Pipeline` (one `grain.MapDataset` per stream):

    MapDataset.source(dataset)       random access to the loader
    -> _EpochSampler                 global record g of the stream -> a
                                     sample of the seeded epoch permutation,
                                     with its step, slot and own RNG
    -> _ProcessShare                 this process's block of every
                                     global batch, the only records it reads
    -> .map(RandomPatch) .map(RandomDihedral)   grain transforms
    -> .batch(local batch, batch_fn=collate)    element s = step s
    -> .to_iter_dataset(ReadOptions(num_threads, prefetch))
    -> .mp_prefetch(worker_count)    worker processes (0: in-process)

Sharding: with P processes of D local devices each and a per-device batch b,
the global batch is G = P * D * b. Step s of epoch e takes G consecutive
indices of a seeded permutation of the dataset (global records s*G to
(s+1)*G - 1); process p keeps its slice [p * D * b, (p + 1) * D * b) of
every global batch, reads only those samples and returns arrays shaped
(D, b, ...).
Crops and augmentations are drawn from an RNG seeded by (seed, step, slot
in the global batch), so the union of all processes' batches does not
depend on how many processes there are, nor on the number of grain
threads or worker processes (a worker computes whole batches, steps w,
w + W, ...), and `iterate(start_step=k)` continues an interrupted run
exactly. The same index rule, shares and seeds as the hand-written
pipeline this replaces, so the batches are unchanged.

Resumption: `BatchIterator.get_state()` is the grain iterator's state (a
JSON dict) plus the stream's first step; the training loop saves it in the
Orbax checkpoint beside the train state (`rawjax.train.checkpoint`) and
hands it back to `Pipeline.iterate(state=...)`. Without it (older
checkpoints) `iterate(start_step=k)` gives the same batches: the state of a
step-indexed stream is its step.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from absl import flags as absl_flags
import grain
import jax
import jax.numpy as jnp
import numpy as np

from rawjax.isp import cfa

__all__ = [
    'AUGMENTATIONS', 'BatchIterator', 'Field', 'Pipeline', 'RandomDihedral',
    'RandomPatch', 'Resampled', 'ZippedIterator', 'ZippedPipelines',
    'apply_dihedral', 'crop', 'dihedral_element', 'draw_augmentation',
    'on_host', 'random_patch', 'reference_size', 'shard', 'stream_seed',
    'to_host',
]

Kind = Literal['packed', 'mosaic', 'image', 'meta']
_KINDS = ('packed', 'mosaic', 'image', 'meta')

# Ops a sample can draw, each independently: flips and the transpose with
# probability 1/2 (ZRR's `augment`), 'rot90' a uniform k in {0, 1, 2, 3}
# counter-clockwise quarter turns (CSTPP). Any sequence composes to one of
# the 8 elements of the dihedral group.
AUGMENTATIONS = ('hflip', 'vflip', 'transpose', 'rot90')

# Random-number streams, kept apart inside one seed.
_ORDER_STREAM, _SAMPLE_STREAM = 0, 1

# The version of `BatchIterator.get_state()`'s dict.
_STATE_VERSION = 1


@contextlib.contextmanager
def on_host():
  """Runs eager or jitted jnp work on the host CPU backend.

  The loaders, which reuse the jnp ISP functions for packing and
  normalisation, never place data on an accelerator, so they do not compete
  with the training step for device memory.
  """
  with jax.default_device(jax.local_devices(backend='cpu')[0]):
    yield


def to_host(x: Any) -> np.ndarray:
  """A jax (or numpy) array as a host numpy array."""
  return np.asarray(jax.device_get(x))


@dataclasses.dataclass(frozen=True)
class Field:
  """How the pipeline treats one array of a sample.

  Attributes:
    kind: 'packed' (h, w, 4) canonical (R, Gr, Gb, B) raw; 'mosaic' (H, W)
      Bayer mosaic; 'image' (H, W, C) RGB, mask or coordinate map; 'meta'
      any non-spatial array (illuminant, gains), passed through.
    scale: pixels of this array per pixel of the sample's reference grid
      (1 for packed raw on the Bayer-cell grid, 2 for full-resolution arrays
      beside it). Mosaics need an even scale so crops keep the CFA phase.
    pattern: the mosaic's CFA pattern (mosaics only).
  """
  kind: Kind
  scale: int = 1
  pattern: str | None = None

  def __post_init__(self):
    if self.kind not in _KINDS:
      raise ValueError(f'Field kind must be one of {_KINDS}, got '
                       f'{self.kind!r}.')
    if not isinstance(self.scale, int) or self.scale < 1:
      raise ValueError(f'Field scale must be a positive int, got '
                       f'{self.scale!r}.')
    if self.kind == 'mosaic':
      if self.pattern is None:
        raise ValueError('A mosaic Field needs its CFA pattern.')
      object.__setattr__(self, 'pattern', cfa.validate_pattern(self.pattern))
      if self.scale % 2:
        raise ValueError(
            f'A mosaic Field needs an even scale (one reference pixel = '
            f'whole 2x2 Bayer cells) so crops keep its CFA phase; got '
            f'scale {self.scale}.')
    elif self.pattern is not None:
      raise ValueError(f'Only mosaic Fields take a pattern (kind '
                       f'{self.kind!r}).')

  @property
  def spatial(self) -> bool:
    return self.kind != 'meta'


def _spatial_shape(x: np.ndarray, field: Field, key: str) -> tuple[int, int]:
  want = {'packed': 3, 'mosaic': 2, 'image': 3}[field.kind]
  if x.ndim != want or (field.kind == 'packed' and x.shape[-1] != 4):
    layout = {'packed': '(h, w, 4)', 'mosaic': '(H, W)',
              'image': '(H, W, C)'}[field.kind]
    raise ValueError(f'field {key!r} ({field.kind}) must have layout '
                     f'{layout}, got shape {x.shape}.')
  return x.shape[0], x.shape[1]


def reference_size(sample: Mapping[str, Any],
                   fields: Mapping[str, Field]) -> tuple[int, int]:
  """(H, W) of the sample's reference grid, checked across all fields."""
  sizes = {}
  for key, field in fields.items():
    if not field.spatial:
      continue
    h, w = _spatial_shape(np.asarray(sample[key]), field, key)
    if h % field.scale or w % field.scale:
      raise ValueError(f'field {key!r} is {h}x{w}, not a multiple of its '
                       f'scale {field.scale}.')
    sizes[key] = (h // field.scale, w // field.scale)
  if not sizes:
    raise ValueError('the sample has no spatial field to crop or augment.')
  if len(set(sizes.values())) > 1:
    detail = ', '.join(f'{k}: {fields[k].scale} x {s}' for k, s in
                       sizes.items())
    name = sample.get('name', '?')
    raise ValueError(f'sample {name!r}: its fields do not cover the same '
                     f'reference grid (scale x size: {detail}).')
  return next(iter(sizes.values()))


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(size, (int, np.integer)):
    return int(size), int(size)
  h, w = size
  return int(h), int(w)


def crop(sample: Mapping[str, Any], fields: Mapping[str, Field], *,
         top: int, left: int, size: int | Sequence[int]) -> dict[str, Any]:
  """Crops every spatial field to the same reference-grid window.

  Args:
    sample: dict of host arrays (other keys are copied unchanged).
    fields: the sample's `Field`s.
    top, left: window origin in reference pixels.
    size: window (height, width) in reference pixels, or one int.

  Returns:
    A new dict; a field of scale s is cropped at (s * top, s * left) to
    (s * height, s * width), as a numpy view. Mosaic offsets are even
    because s is, so mosaics keep their CFA pattern.
  """
  height, width = _pair(size)
  ref_h, ref_w = reference_size(sample, fields)
  if (min(top, left, height, width) < 0 or top + height > ref_h or
      left + width > ref_w):
    raise ValueError(
        f'crop window {height}x{width} at ({top}, {left}) does not fit '
        f'sample {sample.get("name", "?")!r} of {ref_h}x{ref_w} reference '
        'pixels.')
  out = dict(sample)
  for key, field in fields.items():
    if not field.spatial:
      continue
    s = field.scale
    x = np.asarray(sample[key])
    # A mosaic's scale is even, so this window starts on a whole Bayer cell
    # (what `rawjax.isp.crop_mosaic` does, without a device round trip).
    out[key] = x[s * top:s * (top + height), s * left:s * (left + width)]
  return out


def random_patch(rng: np.random.Generator, sample: Mapping[str, Any],
                 fields: Mapping[str, Field], *,
                 size: int | Sequence[int]) -> dict[str, Any]:
  """A uniformly placed `size` window of every field (see `crop`).

  Raises:
    ValueError: the sample is smaller than the window (the message names
      the sample).
  """
  height, width = _pair(size)
  ref_h, ref_w = reference_size(sample, fields)
  if ref_h < height or ref_w < width:
    raise ValueError(
        f'sample {sample.get("name", "?")!r} is {ref_h}x{ref_w} reference '
        f'pixels, smaller than the {height}x{width} patch.')
  top = int(rng.integers(0, ref_h - height + 1))
  left = int(rng.integers(0, ref_w - width + 1))
  return crop(sample, fields, top=top, left=left, size=(height, width))


# --- augmentation -------------------------------------------------------------

# A 3x3 grid has 8 distinct dihedral images: the lookup that reduces any op
# sequence to the canonical element (transpose, then vertical flip, then
# horizontal flip).
_GRID = np.arange(9).reshape(3, 3)


def _numpy_op(grid: np.ndarray, op: str) -> np.ndarray:
  if op == 'hflip':
    return grid[:, ::-1]
  if op == 'vflip':
    return grid[::-1, :]
  if op == 'transpose':
    return grid.T
  if op == 'rot90':
    return np.rot90(grid)
  raise ValueError(f'unknown augmentation {op!r}; use one of {AUGMENTATIONS}.')


def _canonical(transpose: bool, vflip: bool, hflip: bool) -> np.ndarray:
  grid = _GRID
  for flag, op in ((transpose, 'transpose'), (vflip, 'vflip'),
                   (hflip, 'hflip')):
    if flag:
      grid = _numpy_op(grid, op)
  return grid


_ELEMENTS = {
    _canonical(*bits).tobytes(): bits
    for bits in itertools.product((False, True), repeat=3)}


def dihedral_element(ops: Sequence[str]) -> tuple[bool, bool, bool]:
  """Reduces ops applied in order to canonical (transpose, vflip, hflip).

  Args:
    ops: a sequence of 'hflip' (mirror left-right), 'vflip' (upside down),
      'transpose' (swap H and W) and 'rot90' (a quarter turn counter-
      clockwise, as `jnp.rot90` and `rawjax.isp.rot90_packed`).

  Returns:
    Flags such that transposing, then flipping vertically, then horizontally
    has the same effect; e.g. ('rot90',) -> (True, True, False).
  """
  grid = _GRID
  for op in ops:
    grid = _numpy_op(grid, op)
  return _ELEMENTS[grid.tobytes()]


def draw_augmentation(rng: np.random.Generator,
                      ops: Sequence[str]) -> tuple[bool, bool, bool]:
  """Draws each op of `ops` (see `AUGMENTATIONS`) and reduces the result.

  'hflip', 'vflip' and 'transpose' are applied with probability 1/2 each,
  'rot90' a uniform number of quarter turns, in the order given. ZRR's
  ('hflip', 'vflip', 'transpose') and CSTPP's ('vflip', 'hflip', 'rot90')
  both give each of the 8 dihedral elements probability 1/8.
  """
  drawn = []
  for op in ops:
    if op == 'rot90':
      drawn += ['rot90'] * int(rng.integers(4))
    elif op in AUGMENTATIONS:
      if rng.random() < 0.5:
        drawn.append(op)
    else:
      raise ValueError(f'unknown augmentation {op!r}; use one of '
                       f'{AUGMENTATIONS}.')
  return dihedral_element(drawn)


def _packed_op(x, transpose, vflip, hflip):
  if transpose:
    x = cfa.transpose_packed(x)
  if vflip:
    x = cfa.flip_packed(x, axis='vertical')
  if hflip:
    x = cfa.flip_packed(x, axis='horizontal')
  return x


def _image_op(x, transpose, vflip, hflip):
  if transpose:
    x = jnp.swapaxes(x, -3, -2)
  if vflip:
    x = jnp.flip(x, axis=-3)
  if hflip:
    x = jnp.flip(x, axis=-2)
  return x


@functools.partial(jax.jit, static_argnames=('kinds', 'patterns', 'element'))
def _dihedral(arrays, *, kinds, patterns, element):
  out = []
  for x, kind, pattern in zip(arrays, kinds, patterns):
    if kind == 'packed':
      x = _packed_op(x, *element)
    elif kind == 'mosaic':
      x = cfa.unpack(_packed_op(cfa.pack(x, pattern=pattern), *element),
                     pattern=pattern)
    elif kind == 'image':
      x = _image_op(x, *element)
    out.append(x)
  return tuple(out)


def apply_dihedral(sample: Mapping[str, Any], fields: Mapping[str, Field], *,
                   transpose: bool = False, vflip: bool = False,
                   hflip: bool = False) -> dict[str, Any]:
  """Applies one dihedral element to every field of a sample, identically.

  The element is: transpose H and W if `transpose`, then flip upside down if
  `vflip`, then mirror left-right if `hflip` (`dihedral_element` turns any
  op sequence into these flags). Per field kind: packed raw through
  `rawjax.isp.transpose_packed` / `flip_packed` (Gr and Gb swap on a
  transpose); mosaics packed with their pattern, transformed the same way
  and unpacked (pattern and size kept); images with plain array ops; meta
  unchanged. Exact (no resampling): values are only moved.

  Runs jitted on the host CPU (one compile per element and field shapes):
  XLA's transposes release Python's lock and write contiguous arrays, which
  grain's threads then batch with plain copies; numpy views of transposed
  samples made the batching copy 1.3-2x slower (measured side by side,
  benchmarks/data_pipeline.py workloads).
  """
  element = (bool(transpose), bool(vflip), bool(hflip))
  out = dict(sample)
  keys = [k for k, f in fields.items() if f.spatial]
  if not any(element) or not keys:
    return out
  for key in keys:
    _spatial_shape(np.asarray(sample[key]), fields[key], key)
  with on_host():
    results = _dihedral(
        tuple(np.asarray(sample[k]) for k in keys),
        kinds=tuple(fields[k].kind for k in keys),
        patterns=tuple(fields[k].pattern for k in keys), element=element)
  for key, value in zip(keys, results):
    out[key] = to_host(value)
  return out


# --- sharding -----------------------------------------------------------------


def shard(batch: Mapping[str, np.ndarray],
          local_device_count: int) -> dict[str, np.ndarray]:
  """Reshapes a host-local batch (L, ...) to (local_device_count, L/D, ...)."""
  out = {}
  for key, x in batch.items():
    x = np.asarray(x)
    if x.shape[0] % local_device_count:
      raise ValueError(f'batch field {key!r} has {x.shape[0]} samples, not '
                       f'divisible by {local_device_count} local devices.')
    out[key] = x.reshape(local_device_count, -1, *x.shape[1:])
  return out


# --- the grain graph ----------------------------------------------------------


@dataclasses.dataclass
class _Record:
  """One sample on its way through the transforms.

  `rng` is seeded by (seed, step, slot): the transforms draw from it in
  order (patch position, then augmentation), so a record's result does not
  depend on which thread or worker process computes it.
  """
  sample: dict[str, Any]
  step: int
  slot: int
  valid: bool
  rng: np.random.Generator


class _EpochSampler(grain.MapDataset):
  """Global record g of the stream -> its sample, step, slot and RNG.

  Record g is slot g % G of step g // G (G the global batch). A step of
  epoch e takes G consecutive entries of the epoch's seeded permutation;
  past the end of the data (the last batch of an evaluation pass) the
  record is the epoch's first sample, flagged invalid.
  """

  def __init__(self, source: grain.MapDataset, *, global_batch: int,
               steps_per_epoch: int, num_steps: int | None, shuffle: bool,
               seed: int):
    super().__init__(source)
    self._size = len(source)
    self._global_batch = global_batch
    self._steps_per_epoch = steps_per_epoch
    self._shuffle = shuffle
    self._seed = seed
    # Endless streams: as many records as an index can address.
    self._length = (sys.maxsize if num_steps is None else
                    num_steps * global_batch)
    self._orders: collections.OrderedDict[int, np.ndarray] = (
        collections.OrderedDict())
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return self._length

  def order(self, epoch: int) -> np.ndarray:
    """The dataset permutation of `epoch` (identity without shuffle)."""
    if not self._shuffle:
      return np.arange(self._size)
    with self._lock:
      if epoch not in self._orders:
        rng = np.random.default_rng([self._seed, _ORDER_STREAM, epoch])
        self._orders[epoch] = rng.permutation(self._size)
        # Threads may straddle an epoch boundary: keep the last two.
        while len(self._orders) > 2:
          self._orders.popitem(last=False)
      return self._orders[epoch]

  def locate(self, record: int) -> tuple[int, int, int, bool]:
    """(step, slot, dataset index, valid) of global record `record`."""
    step, slot = divmod(record, self._global_batch)
    epoch, position = divmod(step, self._steps_per_epoch)
    within = position * self._global_batch + slot
    valid = within < self._size
    return step, slot, int(self.order(epoch)[within if valid else 0]), valid

  def __getitem__(self, record):
    if isinstance(record, slice):
      return self.slice(record)
    step, slot, index, valid = self.locate(record)
    rng = np.random.default_rng([self._seed, _SAMPLE_STREAM, step, slot])
    return _Record(dict(self._parent[index]), step, slot, valid, rng)

  def __getstate__(self):
    state = dict(self.__dict__)
    del state['_lock']
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def __str__(self) -> str:
    return (f'_EpochSampler(global_batch={self._global_batch}, '
            f'shuffle={self._shuffle}, seed={self._seed})')


class _ProcessShare(grain.MapDataset):
  """This process's records of the global stream: its block of every batch.

  Local record r is slot p * L + r % L of step r // L (L the local batch,
  p the process): each process reads only its contiguous share
  [p * L, (p + 1) * L) of every global batch, and the processes' batches
  concatenated in process order are the global batch.
  """

  def __init__(self, parent: grain.MapDataset, *, process_index: int,
               process_count: int, local_batch: int):
    super().__init__(parent)
    self._process_index = process_index
    self._process_count = process_count
    self._local_batch = local_batch
    self._length = len(parent) // process_count

  def __len__(self) -> int:
    return self._length

  def global_record(self, record: int) -> int:
    step, within = divmod(record, self._local_batch)
    return ((step * self._process_count + self._process_index) *
            self._local_batch + within)

  def __getitem__(self, record):
    if isinstance(record, slice):
      return self.slice(record)
    return self._parent[self.global_record(record)]

  def __str__(self) -> str:
    return (f'_ProcessShare({self._process_index} of '
            f'{self._process_count}, local batch {self._local_batch})')


class RandomPatch(grain.transforms.Map):
  """A grain transform: a uniformly placed window of every field.

  Draws its position from the record's (seed, step, slot) RNG (see
  `random_patch`); `size` in reference pixels.
  """

  def __init__(self, fields: Mapping[str, Field], size: int | Sequence[int]):
    self.fields = dict(fields)
    self.size = _pair(size)

  def map(self, record: _Record) -> _Record:
    record.sample = random_patch(record.rng, record.sample, self.fields,
                                 size=self.size)
    return record


class RandomDihedral(grain.transforms.Map):
  """A grain transform: one drawn dihedral element on every field.

  Draws `ops` (see `draw_augmentation`) from the record's RNG, after any
  earlier transform's draws, and applies the element (`apply_dihedral`).
  """

  def __init__(self, fields: Mapping[str, Field], ops: Sequence[str]):
    self.fields = dict(fields)
    self.ops = tuple(ops)

  def map(self, record: _Record) -> _Record:
    element = draw_augmentation(record.rng, self.ops)
    record.sample = apply_dihedral(record.sample, self.fields,
                                   transpose=element[0], vflip=element[1],
                                   hflip=element[2])
    return record


class _Collate:
  """grain batch_fn: a local batch of records -> (D, b, ...) arrays."""

  def __init__(self, fields: Sequence[str], *, local_device_count: int,
               valid: bool):
    self.fields = tuple(fields)
    self.local_device_count = local_device_count
    self.valid = valid

  def __call__(self, records: Sequence[_Record]) -> dict[str, np.ndarray]:
    samples = [r.sample for r in records]
    batch = {}
    for key in self.fields:
      arrays = [np.asarray(s[key]) for s in samples]
      shapes = {a.shape for a in arrays}
      if len(shapes) > 1:
        names = [s.get('name', '?') for s in samples]
        hint = 'set patch_size to batch samples of different sizes'
        turned = {s[:2] for s in shapes} | {s[1::-1] for s in shapes}
        if len(turned) == 2 and len({s[2:] for s in shapes}) == 1:
          hint = ('transposes and quarter turns of non-square samples change '
                  'their shape: set a square patch_size or drop '
                  "'transpose'/'rot90' from augment")
        raise ValueError(
            f'field {key!r} has different shapes in one batch '
            f'({sorted(shapes)}; samples {names}); {hint}.')
      stacked = np.stack(arrays)
      if np.issubdtype(stacked.dtype, np.floating):
        stacked = stacked.astype(np.float32, copy=False)
      batch[key] = stacked
    if self.valid:
      batch['valid'] = np.array([r.valid for r in records])
    return shard(batch, self.local_device_count)


class Pipeline:
  """Deterministic, host-sharded, prefetched batches from a dataset (grain).

  Args:
    dataset: random-access dataset: `len()`, `dataset[i]` -> dict of
      arrays, and a `fields` mapping of `Field`s (all rawjax loaders). With
      `worker_count` > 0 it must pickle (the loaders do).
    per_device_batch: samples per device per step.
    patch_size: reference-grid patch (int or (h, w)) cut at a uniform random
      position from every sample, or None for whole samples (they must then
      share one size to be stacked).
    augment: ops drawn per sample (see `draw_augmentation`); () for none.
      ZRR uses ('hflip', 'vflip', 'transpose'), CSTPP ('vflip', 'hflip',
      'rot90'); both are uniform over the 8 dihedral elements.
    shuffle: reshuffle the dataset every epoch (seeded); False keeps order.
    seed: the seed of every random choice (order, crops, augmentations).
    num_epochs: None for an endless stream, else the number of passes.
    drop_remainder: drop the last partial global batch of each epoch (the
      default, for training). False pads it with copies of the epoch's
      first sample and adds a boolean 'valid' array shaped like the batch's
      leading axes, for evaluation.
    fields: keys of `dataset.fields` to batch (default all); other keys of
      a sample (e.g. 'name') are dropped.
    local_device_count: devices of this process (default
      `jax.local_device_count()`); the leading batch axis.
    process_index, process_count: this process and how many there are
      (default `jax.process_index()` / `jax.process_count()`).
    num_workers: threads computing batches in each reading process (grain
      `ReadOptions.num_threads`; decoders that release the GIL, PIL's JPEG
      and PNG, LibRaw, gain from them).
    prefetch: batches prepared ahead by those threads (grain
      `ReadOptions.prefetch_buffer_size`), and per worker process.
    worker_count: grain worker processes (`mp_prefetch`); 0 reads in this
      process. Each worker computes whole batches (steps w, w + W, ...), so
      the batches do not depend on it; workers pay off for decoding that
      holds the GIL, not for data already in memory (every batch is copied
      through shared memory).

  Batch of step s: dict field -> np.ndarray (local_device_count,
  per_device_batch, ...), float fields as float32.
  """

  def __init__(self, dataset: Any, *, per_device_batch: int,
               patch_size: int | Sequence[int] | None = None,
               augment: Sequence[str] = ('hflip', 'vflip', 'transpose'),
               shuffle: bool = True, seed: int = 0,
               num_epochs: int | None = None, drop_remainder: bool = True,
               fields: Sequence[str] | None = None,
               local_device_count: int | None = None,
               process_index: int | None = None,
               process_count: int | None = None,
               num_workers: int = 2, prefetch: int = 2,
               worker_count: int = 0):
    self.dataset = dataset
    all_fields = dict(getattr(dataset, 'fields', {}) or {})
    if not all_fields:
      raise ValueError('the dataset has no `fields` mapping (key -> Field).')
    keys = list(all_fields) if fields is None else list(fields)
    unknown = [k for k in keys if k not in all_fields]
    if unknown:
      raise ValueError(f'unknown field(s) {unknown}; the dataset has '
                       f'{list(all_fields)}.')
    self.fields = {k: all_fields[k] for k in keys}
    if per_device_batch < 1:
      raise ValueError(f'per_device_batch must be >= 1, got '
                       f'{per_device_batch}.')
    for op in augment:
      if op not in AUGMENTATIONS:
        raise ValueError(f'unknown augmentation {op!r}; use one of '
                         f'{AUGMENTATIONS}.')
    if seed < 0:
      raise ValueError(f'seed must be >= 0, got {seed}.')
    if worker_count < 0:
      raise ValueError(f'worker_count must be >= 0, got {worker_count}.')
    self.per_device_batch = int(per_device_batch)
    self.patch_size = None if patch_size is None else _pair(patch_size)
    self.augment = tuple(augment)
    self.shuffle = bool(shuffle)
    self.seed = int(seed)
    self.num_epochs = num_epochs
    self.drop_remainder = bool(drop_remainder)
    self.local_device_count = int(local_device_count or
                                  jax.local_device_count())
    self.process_index = int(jax.process_index() if process_index is None
                             else process_index)
    self.process_count = int(jax.process_count() if process_count is None
                             else process_count)
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f'process_index {self.process_index} is not in '
                       f'[0, {self.process_count}).')
    self.num_workers = max(1, int(num_workers))
    self.prefetch = max(1, int(prefetch))
    self.worker_count = int(worker_count)
    self.size = len(dataset)
    if self.size == 0:
      raise ValueError(f'the dataset {dataset!r} is empty.')
    g = self.global_batch_size
    if self.drop_remainder:
      self.steps_per_epoch = self.size // g
      if self.steps_per_epoch == 0:
        raise ValueError(
            f'the dataset has {self.size} samples, fewer than one global '
            f'batch of {g} ({self.process_count} process(es) x '
            f'{self.local_device_count} device(s) x {self.per_device_batch})'
            '; lower per_device_batch or set drop_remainder=False.')
    else:
      self.steps_per_epoch = -(-self.size // g)
    self._sampler = _EpochSampler(
        grain.MapDataset.source(dataset), global_batch=g,
        steps_per_epoch=self.steps_per_epoch, num_steps=self.num_steps,
        shuffle=self.shuffle, seed=self.seed)
    self._share = _ProcessShare(
        self._sampler, process_index=self.process_index,
        process_count=self.process_count, local_batch=self.local_batch_size)
    records = self._share
    if self.patch_size is not None:
      records = records.map(RandomPatch(self.fields, self.patch_size))
    if self.augment:
      records = records.map(RandomDihedral(self.fields, self.augment))
    self.steps: grain.MapDataset = records.batch(
        self.local_batch_size, drop_remainder=False,
        batch_fn=_Collate(self.fields, local_device_count=
                          self.local_device_count,
                          valid=not self.drop_remainder))
    """The stream as a grain MapDataset: `steps[s]` is the batch of step s."""

  @property
  def local_batch_size(self) -> int:
    return self.local_device_count * self.per_device_batch

  @property
  def global_batch_size(self) -> int:
    return self.process_count * self.local_batch_size

  @property
  def num_steps(self) -> int | None:
    """Steps of the whole stream (None when endless)."""
    if self.num_epochs is None:
      return None
    return self.num_epochs * self.steps_per_epoch

  def __len__(self) -> int:
    if self.num_steps is None:
      raise TypeError('an endless Pipeline (num_epochs=None) has no length.')
    return self.num_steps

  def _check_step(self, step: int) -> None:
    if step < 0 or (self.num_steps is not None and step >= self.num_steps):
      raise IndexError(f'step {step} outside the stream of '
                       f'{self.num_steps} steps.')

  def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(dataset indices, valid flags) this process reads at `step`."""
    self._check_step(step)
    local = self.local_batch_size
    located = [self._sampler.locate(self._share.global_record(step * local + j))
               for j in range(local)]
    return (np.array([x[2] for x in located]),
            np.array([x[3] for x in located]))

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """The batch of global step `step` for this process (synchronous)."""
    self._check_step(step)
    return self.steps[step]

  def dataset_at(self, start_step: int) -> grain.IterDataset:
    """The grain IterDataset of the batches from `start_step` on."""
    if start_step < 0:
      raise ValueError(f'start_step must be >= 0, got {start_step}.')
    stream = self.steps[start_step:].to_iter_dataset(grain.ReadOptions(
        num_threads=self.num_workers, prefetch_buffer_size=self.prefetch))
    if self.worker_count:
      # grain reads its absl flags when it starts workers; outside an absl
      # app (a notebook, pytest) nothing parsed them: use their defaults.
      if not absl_flags.FLAGS.is_parsed():
        absl_flags.FLAGS.mark_as_parsed()
      stream = stream.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self.worker_count,
          per_worker_buffer_size=self.prefetch))
    return stream

  def iterate(self, *, start_step: int = 0,
              state: Mapping[str, Any] | None = None) -> BatchIterator:
    """Batches from `start_step` on, or from a saved iterator `state`.

    Args:
      start_step: the step of the first batch.
      state: `BatchIterator.get_state()` of an earlier iterator (e.g. from a
        checkpoint); overrides `start_step`.
    """
    return BatchIterator(self, start_step=start_step, state=state)

  def __iter__(self) -> BatchIterator:
    return self.iterate(start_step=0)


class BatchIterator:
  """A `Pipeline`'s batches from grain's iterator, with a resumable state.

  `close()` (also on `with` exit, at the end of the stream and after an
  error, which `next()` re-raises) stops grain's threads and worker
  processes. `step` is the step of the batch `next()` returns next;
  `get_state()` is the JSON dict to resume from (`Pipeline.iterate(
  state=)`): the first step of this stream, `step`, and grain's iterator
  state.
  """

  def __init__(self, pipeline: Pipeline, *, start_step: int = 0,
               state: Mapping[str, Any] | None = None):
    if state is not None:
      _check_state(state)
      start_step = int(state['start_step'])
    if start_step < 0:
      raise ValueError(f'start_step must be >= 0, got {start_step}.')
    self.pipeline = pipeline
    self.start_step = int(start_step)
    self._iterator = iter(pipeline.dataset_at(self.start_step))
    self.step = self.start_step
    self._closed = False
    if state is not None:
      self.set_state(state)

  @property
  def closed(self) -> bool:
    return self._closed

  def get_state(self) -> dict[str, Any]:
    """JSON-serialisable state: resumes after the last batch returned."""
    return dict(version=_STATE_VERSION, start_step=self.start_step,
                step=self.step, grain=self._iterator.get_state())

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Moves this iterator to a state of `get_state()` of the same stream.

    Raises:
      ValueError: not a state, or one of a stream started at another step
        (use `Pipeline.iterate(state=)` for those).
    """
    _check_state(state)
    if int(state['start_step']) != self.start_step:
      raise ValueError(
          f"the state is of a stream started at step {state['start_step']}, "
          f'this one started at {self.start_step}; use '
          'Pipeline.iterate(state=...).')
    self._iterator.set_state(state['grain'])
    self.step = int(state['step'])

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._closed:
      raise StopIteration
    try:
      batch = next(self._iterator)
    except BaseException:
      self.close()
      raise
    self.step += 1
    return batch

  def close(self) -> None:
    """Stops grain's threads and worker processes (idempotent)."""
    if not self._closed:
      self._closed = True
      self._iterator.close()

  def __enter__(self) -> BatchIterator:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __del__(self):
    # Worker processes and threads must not outlive a dropped iterator.
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass  # interpreter shutdown: grain cleans up its own processes


def _check_state(state: Mapping[str, Any]) -> None:
  if (not isinstance(state, Mapping) or
      state.get('version') != _STATE_VERSION or
      not {'start_step', 'step', 'grain'} <= set(state)):
    raise ValueError(f'not a Pipeline iterator state (version '
                     f'{_STATE_VERSION}): {state!r:.200}')


# --- several streams as one ---------------------------------------------------


def stream_seed(seed: int, stream: int) -> int:
  """An independent seed for stream number `stream` of a run seeded `seed`."""
  return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


class Resampled:
  """A view of a dataset: chosen indices, repeated to a minimum length.

  So that a small subset (8 anchor pairs, 100 labelled images) still fills
  one global batch of its pipeline.
  """

  def __init__(self, dataset: Any, indices: Sequence[int], minimum: int):
    if not len(indices):
      raise ValueError(f'{dataset!r} has no samples to train on.')
    repeats = max(1, -(-minimum // len(indices)))
    self.dataset = dataset
    self.fields = dataset.fields
    self.indices = list(indices) * repeats

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self.dataset[self.indices[index]]


class ZippedPipelines:
  """Several `Pipeline`s stepped together: one resumable training stream.

  A method's data class sets `self.pipelines` (name -> `Pipeline`, each with
  its own seed) and defines `merge(parts)`, which turns {name: that
  pipeline's batch} into the method's batch. Batch s of the stream merges
  batch s of every pipeline, so `iterate(start_step=k)` resumes all of them
  exactly at step k, and `iterate(state=)` from their saved states.
  """

  pipelines: dict[str, Pipeline]

  def merge(self, parts: Mapping[str, Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    raise NotImplementedError

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """The batch of step `step` (synchronous)."""
    return self.merge({k: p.batch(step) for k, p in self.pipelines.items()})

  def iterate(self, *, start_step: int = 0,
              state: Mapping[str, Any] | None = None) -> ZippedIterator:
    return ZippedIterator(self, start_step=start_step, state=state)

  def __iter__(self) -> ZippedIterator:
    return self.iterate(start_step=0)


class ZippedIterator:
  """Zips the pipelines' iterators; `close()` stops them all.

  `get_state()` is {'step': ..., 'streams': {name: BatchIterator state}}.
  """

  def __init__(self, data: ZippedPipelines, *, start_step: int = 0,
               state: Mapping[str, Any] | None = None):
    self._merge = data.merge
    if state is not None:
      streams = state.get('streams') if isinstance(state, Mapping) else None
      if not isinstance(streams, Mapping) or set(streams) != set(
          data.pipelines):
        raise ValueError(f'the saved data state has streams '
                         f'{sorted(streams or ())}, the data has '
                         f'{sorted(data.pipelines)}.')
      start_step = int(state['step'])
    self._iterators = {}
    try:
      for k, p in data.pipelines.items():
        self._iterators[k] = p.iterate(
            start_step=start_step,
            state=None if state is None else state['streams'][k])
    except BaseException:
      self.close()
      raise
    self.step = int(start_step)

  def get_state(self) -> dict[str, Any]:
    return dict(step=self.step, streams={k: it.get_state() for k, it in
                                         self._iterators.items()})

  def __iter__(self) -> ZippedIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    try:
      parts = {k: next(it) for k, it in self._iterators.items()}
    except BaseException:
      self.close()
      raise
    self.step += 1
    return self._merge(parts)

  def close(self) -> None:
    for iterator in self._iterators.values():
      iterator.close()

  def __enter__(self) -> ZippedIterator:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
