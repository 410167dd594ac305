"""Checkpoints you can trust: digests, fallback past corruption, save errors.

Runs use the toy method of `toy.py` with one more constant state entry (a
1024-float "ballast", stored in a data file of its own) on the 4 host CPU
devices of tests/conftest.py: 8 steps, a checkpoint every 2, the newest 2
kept, async saves, per-sample weights drawn from the step keys. One run to
step 8 is shared; each case corrupts a copy of its workdir. Save failures
are simulated by a patched orbax handler whose commit raises ENOSPC.
"""

from __future__ import annotations

import errno
import json
import logging
import pathlib
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from rawjax import train
from rawjax.train import checkpoint as checkpoint_lib
from rawjax.train import method as method_lib

from . import toy
from .test_loop import assert_trees_equal


WIDE = 'test_linear_regression_wide'
BALLAST = 1024  # float32s: stored out of line, in a data file of its own


def _wide_init(config, rng):
  # A constant entry the steps carry along: big enough that OCDBT stores it
  # in a data file of its own, outside its CRC-checked b-tree nodes, where
  # flipped bytes load silently unless the digest catches them.
  state = toy.init(config, rng)
  ballast = np.random.default_rng([config.seed, 4]).normal(size=BALLAST)
  return dict(state, ballast=ballast.astype(np.float32))


def _wide_factory():
  return method_lib.Method(
      name=WIDE, init=_wide_init, steps=toy.make_steps,
      make_data=toy.make_data, evaluate=toy.evaluate)


try:
  method_lib.register_method(WIDE)(_wide_factory)
except ValueError:  # registered once per process
  pass


def run_config():
  config = toy.get_config()
  config.method = WIDE
  config.toy.random_weights = True  # resume must also get the keys right
  config.train.eval_at_end = False
  return config


def template(config):
  return train.to_host(_wide_init(config, jax.random.PRNGKey(config.seed)))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, final state) of an uninterrupted 8-step run."""
  workdir = tmp_path_factory.mktemp('trained')
  return workdir, train.train_and_evaluate(run_config(), workdir)


def data_file(step_dir: pathlib.Path) -> pathlib.Path:
  """The largest array data file of a checkpoint (the ballast)."""
  files = [p for p in (step_dir / 'state').rglob('*')
           if p.is_file() and p.parent.name == 'd']
  return max(files, key=lambda p: (p.stat().st_size, p.name))


def truncate(step_dir, rng):
  path = data_file(step_dir)
  size = path.stat().st_size
  with open(path, 'r+b') as f:
    f.truncate(int(rng.integers(size // 4, size // 2)))


def delete_data(step_dir, rng):
  del rng
  data_file(step_dir).unlink()


def delete_metadata(step_dir, rng):
  del rng
  (step_dir / 'state' / '_METADATA').unlink()


def delete_manifest(step_dir, rng):
  del rng
  (step_dir / 'state' / 'manifest.ocdbt').unlink()


def flip_16_bytes(step_dir, rng):
  path = data_file(step_dir)
  data = bytearray(path.read_bytes())
  start = int(rng.integers(len(data) // 4, 3 * len(data) // 4 - 16))
  for i in range(start, start + 16):
    data[i] ^= 0xFF
  path.write_bytes(bytes(data))


@pytest.mark.parametrize('corrupt,reason', [
    (truncate, 'load-failed'),
    (delete_data, 'load-failed'),
    (delete_metadata, 'missing-state-METADATA'),
    (delete_manifest, 'missing-state-manifest-ocdbt'),
    (flip_16_bytes, 'digest-mismatch'),
])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(
    tmp_path, trained, caplog, corrupt, reason):
  source, want = trained
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  checkpoints = workdir / 'checkpoints'
  corrupt(checkpoints / '8', np.random.default_rng(17))
  caplog.set_level(logging.WARNING)

  resumed = train.train_and_evaluate(run_config(), workdir)

  assert_trees_equal(resumed, want)
  lines = [r.getMessage() for r in caplog.records
           if 'newest checkpoint that verifies' in r.getMessage()]
  assert len(lines) == 1 and '\n' not in lines[0], lines
  assert lines[0].startswith('checkpoint 8 ') and 'restored step 6' in lines[0]
  kept = checkpoints / 'corrupt' / f'8-{reason}'
  assert kept.is_dir() and (kept / 'state').is_dir(), sorted(
      p.name for p in (checkpoints / 'corrupt').iterdir())
  # Steps 7 and 8 were trained again and saved; the bad 8 did not count
  # against max_to_keep.
  with checkpoint_lib.Checkpointer(checkpoints) as checkpointer:
    assert checkpointer.all_steps() == [6, 8]
    again, _ = checkpointer.restore(template(run_config()))
  assert_trees_equal(again, want)


def test_a_config_change_is_refused_not_taken_for_corruption(trained,
                                                             tmp_path):
  source, _ = trained
  shutil.copytree(source / 'checkpoints', tmp_path / 'checkpoints')
  state = template(run_config())
  state['ballast'] = np.zeros(BALLAST + 1, np.float32)
  with checkpoint_lib.Checkpointer(tmp_path / 'checkpoints') as checkpointer:
    with pytest.raises(ValueError, match=r'checkpoint 8 .* does not match the '
                       r'state built from the config.*ballast.*\(1024,\).*'
                       r'\(1025,\)'):
      checkpointer.restore(state)
    assert checkpointer.all_steps() == [6, 8]
  assert not (tmp_path / 'checkpoints' / 'corrupt').exists()


def small_state(step, rng):
  return dict(step=np.asarray(step, np.int32),
              params=dict(w=rng.normal(size=BALLAST).astype(np.float32)))


def test_no_verifying_checkpoint_is_a_clear_error(tmp_path):
  rng = np.random.default_rng(5)
  with checkpoint_lib.Checkpointer(tmp_path, async_save=False) as checkpointer:
    for step in (1, 2):
      assert checkpointer.save(step, small_state(step, rng))
  for step in (1, 2):
    flip_16_bytes(tmp_path / str(step), rng)
  with checkpoint_lib.Checkpointer(tmp_path, async_save=False) as checkpointer:
    with pytest.raises(checkpoint_lib.CheckpointCorruptError,
                       match=r'checkpoint 2 in .* fails its digest '
                       r'\(in params/w\)'):
      checkpointer.restore(small_state(0, rng), step=2)
    assert checkpointer.all_steps() == [1, 2]  # an explicit step stays put
    with pytest.raises(checkpoint_lib.CheckpointCorruptError,
                       match=r'no checkpoint .* verifies: checkpoint 2 .*; '
                       r'checkpoint 1 .*Nothing was deleted'):
      checkpointer.restore(small_state(0, rng))
  assert sorted(p.name for p in (tmp_path / 'corrupt').iterdir()) == [
      '1-digest-mismatch', '2-digest-mismatch']


def test_a_checkpoint_without_a_digest_still_restores(tmp_path, caplog):
  # Written as before digests existed: state and meta only.
  rng = np.random.default_rng(6)
  state = small_state(3, rng)
  with ocp.CheckpointManager(tmp_path, item_handlers=dict(
      state=ocp.StandardCheckpointHandler(),
      meta=ocp.JsonCheckpointHandler())) as manager:
    manager.save(3, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave({})))
  caplog.set_level(logging.WARNING)
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
    restored, _ = checkpointer.restore(small_state(0, rng))
  assert_trees_equal(restored, state)
  assert any('has no digest' in r.getMessage() for r in caplog.records)


def test_the_data_state_is_saved_verified_and_falls_back(tmp_path, caplog):
  # grain's handler writes one JSON file per process under data/; the
  # digest covers it, so an edited file is corruption like a flipped byte.
  rng = np.random.default_rng(7)
  states = {step: small_state(step, rng) for step in (1, 2, 3)}
  data = {step: dict(version=1, start_step=0, step=step,
                     grain=dict(next_index=step)) for step in (1, 2)}
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:  # async
    for step, state in states.items():
      assert checkpointer.save(step, state, meta=dict(skipped_steps=0),
                               data=data.get(step))
  data_file = tmp_path / '2' / 'data' / 'process_0-of-1.json'
  assert json.loads(data_file.read_text()) == data[2]
  assert not (tmp_path / '3' / 'data').exists()
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
    # Step 3 has no data state (as every checkpoint before grain): None.
    restored, _, got = checkpointer.restore_with_data(small_state(0, rng))
    assert_trees_equal(restored, states[3])
    assert got is None
    restored, _, got = checkpointer.restore_with_data(small_state(0, rng),
                                                      step=2)
    assert_trees_equal(restored, states[2])
    assert got == data[2]
  shutil.rmtree(tmp_path / '3')
  data_file.write_text(data_file.read_text().replace('"step": 2',
                                                     '"step": 9'))
  caplog.set_level(logging.WARNING)
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
    restored, _, got = checkpointer.restore_with_data(small_state(0, rng))
  assert_trees_equal(restored, states[1])
  assert got == data[1]
  assert any('checkpoint 2 fails its digest (in data/process_0-of-1.json)'
             in r.getMessage() for r in caplog.records)


def test_max_to_keep_never_removes_the_last_verified_checkpoint(
    tmp_path, monkeypatch):
  rng = np.random.default_rng(7)
  verify = checkpoint_lib.Checkpointer._verify_written

  def corrupt_then_verify(self, step, tree, record):
    if step == 3:  # bit rot between the write and its read-back
      flip_16_bytes(pathlib.Path(self.directory) / '3', rng)
    return verify(self, step, tree, record)

  monkeypatch.setattr(checkpoint_lib.Checkpointer, '_verify_written',
                      corrupt_then_verify)
  states = {step: small_state(step, rng) for step in (1, 2, 3)}
  with checkpoint_lib.Checkpointer(tmp_path, max_to_keep=1,
                                   async_save=False) as checkpointer:
    assert checkpointer.save(1, states[1])
    assert checkpointer.save(2, states[2])
    assert checkpointer.all_steps() == [2]
    with pytest.raises(checkpoint_lib.CheckpointSaveError,
                       match=r'step 3 .* does not read back \(fails its '
                       r'digest.*intact'):
      checkpointer.save(3, states[3])
    assert checkpointer.all_steps() == [2]
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
    restored, _ = checkpointer.restore(states[1])
  assert_trees_equal(restored, states[2])
  assert [p.name for p in (tmp_path / 'corrupt').iterdir()] == [
      '3-digest-mismatch']


class _FailingFuture:
  """A commit future whose background write hit a full disk."""

  def __init__(self, path):
    self.path = path

  def result(self, timeout=None):
    del timeout
    raise OSError(errno.ENOSPC, 'No space left on device', str(self.path))

  def cancel(self):
    return None


def fail_writes(monkeypatch, *, at_step):
  """StandardCheckpointHandler writes of step `at_step` fail with ENOSPC.

  The real write runs first (so a temporary folder with partial content
  exists); its commit then fails in the background, as on a full disk.
  """
  original = ocp.StandardCheckpointHandler.async_save

  async def async_save(self, directory, *args, **kwargs):
    futures = list(await original(self, directory, *args, **kwargs) or [])
    path = getattr(directory, 'path', directory)
    if str(path).split('/')[-2].startswith(f'{at_step}.'):
      futures.append(_FailingFuture(path))
    return futures

  monkeypatch.setattr(ocp.StandardCheckpointHandler, 'async_save', async_save)


def assert_one_line_enospc(error, directory):
  message = str(error.value)
  assert '\n' not in message
  assert str(directory) in message and 'No space left on device' in message
  assert error.value.errno == errno.ENOSPC
  assert isinstance(error.value, OSError)


@pytest.mark.parametrize('async_save', [False, True])
def test_a_failed_save_raises_and_leaves_no_temporary_folder(
    tmp_path, monkeypatch, async_save):
  rng = np.random.default_rng(8)
  fail_writes(monkeypatch, at_step=2)
  states = {step: small_state(step, rng) for step in (1, 2)}
  with checkpoint_lib.Checkpointer(tmp_path, async_save=async_save
                                   ) as checkpointer:
    assert checkpointer.save(1, states[1])
    with pytest.raises(checkpoint_lib.CheckpointSaveError) as error:
      checkpointer.save(2, states[2])
      checkpointer.wait()  # async: the background failure surfaces here
    assert_one_line_enospc(error, tmp_path)
    assert 'step 2' in str(error.value)
    with pytest.raises(checkpoint_lib.CheckpointSaveError):
      checkpointer.save(3, small_state(3, rng))  # no quiet carrying on
  assert sorted(p.name for p in tmp_path.iterdir()) == ['1']
  with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
    restored, _ = checkpointer.restore(states[2])
  assert_trees_equal(restored, states[1])


def test_a_full_disk_stops_the_run_at_the_failed_save(tmp_path, monkeypatch):
  fail_writes(monkeypatch, at_step=4)
  with pytest.raises(checkpoint_lib.CheckpointSaveError) as error:
    train.train_and_evaluate(run_config(), tmp_path)
  assert_one_line_enospc(error, tmp_path / 'checkpoints')
  assert 'step 4' in str(error.value)
  assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == ['2']
  # Stopped at once: at the latest when the next save point is reached.
  steps = [int(line.split('"step": ')[1].split(',')[0]) for line in
           (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert max(steps) <= 6


def test_short_free_space_is_warned_before_the_save(tmp_path, monkeypatch,
                                                    caplog):
  rng = np.random.default_rng(9)
  caplog.set_level(logging.WARNING)
  with checkpoint_lib.Checkpointer(tmp_path, async_save=False) as checkpointer:
    checkpointer.save(1, small_state(1, rng))
    monkeypatch.setattr(checkpoint_lib.shutil, 'disk_usage',
                        lambda path: shutil._ntuple_diskusage(10**9, 10**9, 10))
    checkpointer.save(2, small_state(2, rng))
  warnings = [r.getMessage() for r in caplog.records if 'free in' in
              r.getMessage()]
  assert len(warnings) == 1 and 'step 2' in warnings[0], warnings
