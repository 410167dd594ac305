"""The batching pipeline on grain: patches, augmentations, sharding, resume.

Augmentations are checked exactly against numpy's flips/transposes (the
independent reference), across every field of a sample; packed-raw
rotations against the jnp `rawjax.isp.rot90_packed` and mosaic rotations;
sharding on the 4 host CPU devices of tests/conftest.py; per-process
slicing with a faked process index/count; resumption from a step and from
the grain iterator state, in process and with 2 grain worker processes.
"""

import gc
import itertools
import json
import threading
import time

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import pytest

from rawjax import isp
from rawjax.data import pipeline
from rawjax.data.datasets import zrr
from rawjax.data.pipeline import Field

ELEMENTS = list(itertools.product((False, True), repeat=3))
PACKED_H, PACKED_W = 6, 8  # one shape for every test: compiles are reused


class ArrayDataset:
  """An in-memory dataset: a packed raw, its mosaic, an RGB image derived
  from the raw by 2x2 replication, a coordinate map and an illuminant."""

  fields = {'raw': Field('packed', 1), 'mosaic': Field('mosaic', 2, 'GRBG'),
            'rgb': Field('image', 2), 'coord': Field('image', 2),
            'illuminant': Field('meta')}

  def __init__(self, size=10, height=PACKED_H, width=PACKED_W, fail_at=None):
    self.size, self.height, self.width = size, height, width
    self.fail_at = fail_at
    self.reads = 0

  def __len__(self):
    return self.size

  def __getitem__(self, index):
    self.reads += 1
    if index == self.fail_at:
      raise OSError(f'sample {index} is unreadable')
    rng = np.random.default_rng(index)
    raw = rng.random((self.height, self.width, 4)).astype(np.float32)
    raw[0, 0] = index  # identifies the sample in a batch
    return {'raw': raw,
            'mosaic': np.asarray(isp.unpack(raw, pattern='GRBG')),
            'rgb': _replicate(raw[..., (0, 1, 3)]),
            'coord': zrr.coordinate_map(2 * self.height, 2 * self.width),
            'illuminant': np.full(3, index, np.float32), 'name': str(index)}


def _replicate(x):
  return np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)


def _numpy_element(x, transpose, vflip, hflip):
  """The independent reference: numpy on the (H, W) axes of (H, W, ...)."""
  if transpose:
    x = np.swapaxes(x, 0, 1)
  if vflip:
    x = x[::-1]
  if hflip:
    x = x[:, ::-1]
  return x


@pytest.fixture(scope='module')
def sample():
  return ArrayDataset()[3]


@pytest.mark.parametrize('element', ELEMENTS)
def test_dihedral_is_exact_and_identical_across_fields(sample, element):
  out = pipeline.apply_dihedral(sample, ArrayDataset.fields,
                                transpose=element[0], vflip=element[1],
                                hflip=element[2])
  swap = (0, 2, 1, 3) if element[0] else (0, 1, 2, 3)
  np.testing.assert_array_equal(
      out['raw'], _numpy_element(sample['raw'], *element)[..., swap])
  np.testing.assert_array_equal(out['rgb'],
                                _numpy_element(sample['rgb'], *element))
  # Coordinate maps move with their pixels, values untouched.
  np.testing.assert_array_equal(out['coord'],
                                _numpy_element(sample['coord'], *element))
  np.testing.assert_array_equal(out['illuminant'], sample['illuminant'])
  # Same spatial transform in every field: the RGB is still the 2x2
  # replication of the raw's R, G and B planes.
  np.testing.assert_array_equal(out['rgb'][..., 0],
                                _replicate(out['raw'][..., 0]))
  np.testing.assert_array_equal(out['rgb'][..., 2],
                                _replicate(out['raw'][..., 3]))
  # The mosaic keeps its pattern and size and unpacks the augmented raw.
  assert out['mosaic'].shape == _numpy_element(sample['mosaic'],
                                                *element).shape
  np.testing.assert_array_equal(
      np.asarray(isp.pack(out['mosaic'], pattern='GRBG')), out['raw'])


@pytest.mark.parametrize('k', [1, 2, 3])
def test_packed_rotations_agree_with_mosaic_rotations(sample, k):
  element = pipeline.dihedral_element(['rot90'] * k)
  out = pipeline.apply_dihedral(sample, ArrayDataset.fields,
                                transpose=element[0], vflip=element[1],
                                hflip=element[2])
  np.testing.assert_array_equal(
      out['raw'], np.asarray(isp.rot90_packed(sample['raw'], k=k)))
  # Rotating the mosaic itself changes its phase; packing it with the
  # rotated pattern gives the same canonical planes.
  rotated = np.rot90(sample['mosaic'], k=k)
  np.testing.assert_array_equal(
      out['raw'], np.asarray(isp.pack(
          rotated, pattern=isp.rot90_pattern('GRBG', k=k))))


_INVERSE = {'hflip': ['hflip'], 'vflip': ['vflip'],
            'transpose': ['transpose'], 'rot90': ['rot90'] * 3}


@hypothesis.settings(deadline=None, max_examples=20)
@hypothesis.given(st.lists(st.sampled_from(pipeline.AUGMENTATIONS),
                           max_size=5))
def test_inverse_element_restores_every_field_exactly(ops):
  sample = ArrayDataset()[3]
  forward = pipeline.dihedral_element(ops)
  inverse = pipeline.dihedral_element(
      [o for op in reversed(ops) for o in _INVERSE[op]])
  out = pipeline.apply_dihedral(sample, ArrayDataset.fields,
                                transpose=forward[0], vflip=forward[1],
                                hflip=forward[2])
  back = pipeline.apply_dihedral(out, ArrayDataset.fields,
                                 transpose=inverse[0], vflip=inverse[1],
                                 hflip=inverse[2])
  for key in ArrayDataset.fields:
    np.testing.assert_array_equal(back[key], sample[key])


def test_dihedral_element_reduces_op_sequences():
  grid = np.arange(12).reshape(3, 4)
  ops = ['hflip', 'vflip', 'transpose', 'rot90']
  rng = np.random.default_rng(0)
  for _ in range(50):
    sequence = list(rng.choice(ops, size=rng.integers(0, 6)))
    want = grid
    for op in sequence:
      want = {'hflip': lambda g: g[:, ::-1], 'vflip': lambda g: g[::-1],
              'transpose': lambda g: g.T, 'rot90': np.rot90}[op](want)
    flags = pipeline.dihedral_element(sequence)
    np.testing.assert_array_equal(_numpy_element(grid, *flags), want)
  with pytest.raises(ValueError, match='unknown augmentation'):
    pipeline.dihedral_element(['shear'])


@pytest.mark.parametrize('ops', [('hflip', 'vflip', 'transpose'),
                                 ('vflip', 'hflip', 'rot90')])
def test_papers_augmentations_are_uniform_over_the_group(ops):
  rng = np.random.default_rng(0)
  counts = {e: 0 for e in ELEMENTS}
  draws = 8000
  for _ in range(draws):
    counts[pipeline.draw_augmentation(rng, ops)] += 1
  # Binomial(8000, 1/8): sd 29.6; 5 sd bounds.
  for element, count in counts.items():
    assert abs(count - draws / 8) < 150, (element, count)


def test_random_patch_keeps_the_cfa_phase_and_aligns_fields(sample):
  rng = np.random.default_rng(1)
  for _ in range(10):
    patch = pipeline.random_patch(rng, sample, ArrayDataset.fields, size=3)
    assert patch['raw'].shape == (3, 3, 4)
    assert patch['mosaic'].shape == patch['rgb'].shape[:2] == (6, 6)
    # The mosaic crop starts on a whole Bayer cell: it is still GRBG.
    np.testing.assert_array_equal(
        np.asarray(isp.pack(patch['mosaic'], pattern='GRBG')), patch['raw'])
    np.testing.assert_array_equal(patch['rgb'][..., 0],
                                  _replicate(patch['raw'][..., 0]))
    top = int(np.argmin(np.abs(sample['coord'][:, 0, 1] -
                               patch['coord'][0, 0, 1])))
    left = int(np.argmin(np.abs(sample['coord'][0, :, 0] -
                                patch['coord'][0, 0, 0])))
    np.testing.assert_array_equal(patch['raw'],
                                  sample['raw'][top // 2:top // 2 + 3,
                                                left // 2:left // 2 + 3])
  with pytest.raises(ValueError, match="sample '3' is 6x8 reference pixels, "
                     'smaller than the 7x7 patch'):
    pipeline.random_patch(rng, sample, ArrayDataset.fields, size=7)
  with pytest.raises(ValueError, match='does not fit'):
    pipeline.crop(sample, ArrayDataset.fields, top=4, left=0, size=3)


def test_fields_must_share_one_reference_grid(sample):
  bad = dict(ArrayDataset.fields, rgb=Field('image', 1))
  with pytest.raises(ValueError, match='do not cover the same reference'):
    pipeline.reference_size(sample, bad)
  with pytest.raises(ValueError, match='even scale'):
    Field('mosaic', 1, 'RGGB')
  with pytest.raises(ValueError, match='needs its CFA pattern'):
    Field('mosaic', 2)


def test_batches_are_sharded_for_pmap_on_the_local_devices():
  assert jax.local_device_count() == 4
  pipe = pipeline.Pipeline(ArrayDataset(size=17), per_device_batch=2,
                           patch_size=4, seed=0, num_workers=1)
  assert pipe.global_batch_size == 8 and pipe.steps_per_epoch == 2
  batch = pipe.batch(0)
  assert batch['raw'].shape == (4, 2, 4, 4, 4)
  assert batch['mosaic'].shape == (4, 2, 8, 8)
  assert batch['rgb'].shape == (4, 2, 8, 8, 3)
  assert batch['illuminant'].shape == (4, 2, 3)
  assert 'name' not in batch and batch['raw'].dtype == np.float32
  # Every sample of the batch is distinct, and pmap takes the batch as is.
  ids = batch['illuminant'][..., 0].ravel()
  assert len(set(ids)) == 8
  sums = jax.pmap(lambda x: x.sum(axis=(1, 2, 3)))(batch['rgb'])
  np.testing.assert_allclose(np.asarray(sums), batch['rgb'].sum(axis=(2, 3, 4)),
                             rtol=1e-5)


def test_each_process_reads_its_slice_of_the_global_batch():
  common = dict(per_device_batch=2, patch_size=4, seed=7,
                augment=('vflip', 'hflip', 'rot90'), num_workers=1)
  whole = pipeline.Pipeline(ArrayDataset(size=24), local_device_count=4,
                            process_count=1, **common)
  datasets = [ArrayDataset(size=24), ArrayDataset(size=24)]
  parts = [pipeline.Pipeline(datasets[p], local_device_count=2,
                             process_index=p, process_count=2, **common)
           for p in range(2)]
  assert parts[0].global_batch_size == whole.global_batch_size == 8
  seen = []
  for step in range(whole.steps_per_epoch):
    want = whole.batch(step)
    got = [part.batch(step) for part in parts]
    for key in want:
      joined = np.concatenate([g[key].reshape(-1, *g[key].shape[2:])
                               for g in got])
      np.testing.assert_array_equal(
          joined, want[key].reshape(-1, *want[key].shape[2:]))
    assert got[0]['raw'].shape[:2] == (2, 2)
    index = [part.indices(step)[0] for part in parts]
    assert not set(index[0]) & set(index[1])
    seen += list(index[0]) + list(index[1])
  # Each process read only its own samples; one epoch covers the dataset.
  assert sorted(seen) == list(range(24))
  assert datasets[0].reads == datasets[1].reads == 12


def test_streams_are_deterministic_and_resume_exactly():
  common = dict(per_device_batch=1, patch_size=4, num_workers=2, prefetch=2,
                local_device_count=4)
  run = pipeline.Pipeline(ArrayDataset(size=9), seed=3, **common)
  assert run.steps_per_epoch == 2
  with run.iterate() as stream:
    first = [next(stream) for _ in range(5)]  # crosses two epoch boundaries
    assert stream.step == 5
  again = pipeline.Pipeline(ArrayDataset(size=9), seed=3, **common)
  with again.iterate(start_step=3) as stream:
    resumed = [next(stream) for _ in range(2)]
  for a, b in zip(first[3:], resumed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  other = pipeline.Pipeline(ArrayDataset(size=9), seed=4, **common).batch(0)
  assert not np.array_equal(other['raw'], first[0]['raw'])
  # An epoch draws distinct samples; the next epoch reshuffles.
  ids = [b['illuminant'][:, 0, 0] for b in first[:4]]
  epoch0, epoch1 = np.concatenate(ids[:2]), np.concatenate(ids[2:4])
  assert len(set(epoch0)) == len(set(epoch1)) == 8
  assert not np.array_equal(epoch0, epoch1)


def test_evaluation_pass_covers_every_sample_once_with_a_valid_mask():
  pipe = pipeline.Pipeline(ArrayDataset(size=10), per_device_batch=1,
                           augment=(), shuffle=False, num_epochs=1,
                           drop_remainder=False, local_device_count=4)
  assert len(pipe) == 3
  batches = list(pipe)
  valid = np.concatenate([b['valid'].ravel() for b in batches])
  ids = np.concatenate([b['illuminant'][..., 0].ravel() for b in batches])
  assert valid.tolist() == [True] * 10 + [False] * 2
  assert ids[valid].tolist() == list(range(10))
  np.testing.assert_array_equal(batches[0]['raw'][0, 0],
                                ArrayDataset()[0]['raw'])


def _grain_threads():
  return [t for t in threading.enumerate() if t.name.startswith(
      ('grain-prefetch', 'rawjax-data'))]


def _wait_for_no_grain_threads(timeout=5.0):
  deadline = time.monotonic() + timeout
  while _grain_threads() and time.monotonic() < deadline:
    time.sleep(0.02)
  return _grain_threads()


def test_iterator_stops_grain_on_close_on_errors_and_when_dropped():
  pipe = pipeline.Pipeline(ArrayDataset(size=8), per_device_batch=1,
                           patch_size=2, local_device_count=4, prefetch=1)
  stream = pipe.iterate()
  next(stream)
  assert _grain_threads()
  stream.close()
  assert stream.closed and not _wait_for_no_grain_threads()
  with pytest.raises(StopIteration):
    next(stream)
  stream.close()  # idempotent

  with pipe.iterate() as stream:
    next(stream)
  assert stream.closed and not _wait_for_no_grain_threads()

  failing = pipeline.Pipeline(ArrayDataset(size=8, fail_at=5),
                              per_device_batch=1, shuffle=False, augment=(),
                              local_device_count=4, num_workers=2)
  stream = failing.iterate()
  next(stream)
  with pytest.raises(OSError, match='sample 5 is unreadable'):
    next(stream)
  assert stream.closed and not _wait_for_no_grain_threads()

  stream = pipe.iterate()
  next(stream)
  del stream
  gc.collect()
  assert not _wait_for_no_grain_threads()


def _assert_same_batches(got, want):
  assert len(got) == len(want)
  for a, b in zip(got, want):
    assert set(a) == set(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_saved_iterator_state_resumes_exactly_and_survives_json():
  common = dict(per_device_batch=1, patch_size=4, local_device_count=4,
                seed=3, num_workers=2, prefetch=3)
  pipe = pipeline.Pipeline(ArrayDataset(size=9), **common)
  want = [pipe.batch(step) for step in range(2, 7)]
  with pipe.iterate(start_step=2) as stream:
    first = [next(stream) for _ in range(2)]
    state = json.loads(json.dumps(stream.get_state()))
    assert state['step'] == stream.step == 4
  _assert_same_batches(first, want[:2])
  # A fresh pipeline (a restarted process) continues from the state.
  again = pipeline.Pipeline(ArrayDataset(size=9), **common)
  with again.iterate(state=state) as stream:
    assert stream.step == 4
    _assert_same_batches([next(stream) for _ in range(3)], want[2:])
  with pytest.raises(ValueError, match='not a Pipeline iterator state'):
    again.iterate(state={'next_index': 3})


def test_worker_processes_give_the_same_batches_and_resume():
  # Two spawned worker processes, each computing whole batches (one start
  # of the workers: they import jax, seconds each on a loaded machine).
  common = dict(per_device_batch=1, patch_size=4, local_device_count=4,
                seed=5, num_workers=1, prefetch=1)
  want = [pipeline.Pipeline(ArrayDataset(size=12), **common).batch(step)
          for step in range(1, 6)]
  workers = pipeline.Pipeline(ArrayDataset(size=12), worker_count=2,
                              **common)
  with workers.iterate(start_step=1) as stream:
    got = [next(stream)]
    state = json.loads(json.dumps(stream.get_state()))
    got += [next(stream) for _ in range(4)]
    _assert_same_batches(got, want)
    # Back to the saved state: grain resets its workers to it.
    stream.set_state(state)
    assert stream.step == 2
    _assert_same_batches([next(stream) for _ in range(2)], want[1:3])


class _Zipped(pipeline.ZippedPipelines):

  def __init__(self):
    self.pipelines = {
        name: pipeline.Pipeline(ArrayDataset(size=8), per_device_batch=1,
                                patch_size=2, local_device_count=4,
                                seed=pipeline.stream_seed(0, i))
        for i, name in enumerate(('a', 'b'))}

  def merge(self, parts):
    return {k: v['raw'] for k, v in parts.items()}


def test_zipped_streams_resume_from_their_saved_states():
  data = _Zipped()
  want = [data.batch(step) for step in range(4)]
  assert not np.array_equal(want[0]['a'], want[0]['b'])  # own seeds
  with data.iterate() as stream:
    next(stream)
    state = json.loads(json.dumps(stream.get_state()))
  assert state['step'] == 1 and set(state['streams']) == {'a', 'b'}
  with _Zipped().iterate(state=state) as stream:
    _assert_same_batches([next(stream) for _ in range(3)], want[1:])
  with pytest.raises(ValueError, match='streams'):
    data.iterate(state=dict(step=1, streams={'a': state['streams']['a']}))


def test_pipeline_rejects_bad_configurations():
  with pytest.raises(ValueError, match='fewer than one global batch of 8'):
    pipeline.Pipeline(ArrayDataset(size=5), per_device_batch=2,
                      local_device_count=4)
  with pytest.raises(ValueError, match='unknown field'):
    pipeline.Pipeline(ArrayDataset(), per_device_batch=1, fields=['depth'])
  with pytest.raises(ValueError, match='unknown augmentation'):
    pipeline.Pipeline(ArrayDataset(), per_device_batch=1, augment=('zoom',))
  with pytest.raises(ValueError, match='process_index 2'):
    pipeline.Pipeline(ArrayDataset(), per_device_batch=1, process_index=2,
                      process_count=2)
  uneven = pipeline.Pipeline(_MixedSizes(size=8), per_device_batch=1,
                             augment=(), local_device_count=4)
  with pytest.raises(ValueError, match='set patch_size'):
    uneven.batch(0)
  transposed = pipeline.Pipeline(ArrayDataset(size=8), per_device_batch=2,
                                 augment=('transpose',), seed=1,
                                 local_device_count=4)
  with pytest.raises(ValueError, match='non-square samples'):
    transposed.batch(0)


class _MixedSizes(ArrayDataset):

  def __getitem__(self, index):
    self.height = PACKED_H if index % 2 else PACKED_H - 2
    return super().__getitem__(index)
