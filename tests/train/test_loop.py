"""The generic loop: resume exactness, NaN skipping, outputs, configs.

The method is the toy linear regression of `toy.py` (SGD with momentum),
whose runs a float64 numpy replay reproduces independently. Runs use the 4
host CPU devices of tests/conftest.py under pmap.
"""

import json
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
import optax
import pytest
from tensorboardX.proto import event_pb2

from rawjax import eval as rawjax_eval
from rawjax import io as rawio
from rawjax import train
from rawjax.data import pipeline as pipeline_lib
from rawjax.train import checkpoint as checkpoint_lib
from rawjax.train import method as method_lib
from rawjax.train import parallel

from . import toy

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOY_CONFIG = pathlib.Path(toy.__file__).resolve()


def assert_trees_equal(got, want):
  """Bit-exact equality of two host pytrees, naming the first difference."""
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got),
                          jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def read_scalar_events(directory):
  """{tag: {step: value}} from TensorBoard event files (TFRecord framing)."""
  scalars = {}
  for path in pathlib.Path(directory).glob('events.out.tfevents.*'):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack('<Q', data[offset:offset + 8])
      record = data[offset + 12:offset + 12 + length]
      offset += 12 + length + 4
      event = event_pb2.Event.FromString(record)
      for value in event.summary.value:
        if value.HasField('simple_value'):
          scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars


def kill_config(**toy_options):
  config = toy.get_config('kill')
  config.toy.delay = 0.0
  for key, value in toy_options.items():
    config.toy[key] = value
  return config


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The 'kill' variant trained in one go (no delay): the reference state."""
  return train.train_and_evaluate(kill_config(),
                                  tmp_path_factory.mktemp('uninterrupted'))


@pytest.fixture(scope='module')
def nan_run(tmp_path_factory):
  """8 steps, data step 2 all NaN, images and evaluations every 4 steps."""
  config = toy.get_config()
  config.toy.nan_steps = (2,)
  config.logging.images_every_steps = 4
  config.train.eval_every_steps = 4
  workdir = tmp_path_factory.mktemp('nan_run')
  return config, workdir, train.train_and_evaluate(config, workdir)


# --- resumption -------------------------------------------------------------


def test_sigkill_then_resume_reaches_the_uninterrupted_parameters(
    tmp_path, uninterrupted):
  workdir = tmp_path / 'run'
  log = tmp_path / 'train.log'
  with open(log, 'wb') as out:
    process = subprocess.Popen(
        [sys.executable, '-m', 'launch.train', f'--config={TOY_CONFIG}:kill',
         f'--workdir={workdir}'], cwd=ROOT, stdout=out,
        stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + 180
    finished = []
    while not finished:
      assert process.poll() is None, (
          f'training ended before it was killed:\n{log.read_text()[-3000:]}')
      assert time.monotonic() < deadline, 'no checkpoint within 180 s'
      time.sleep(0.05)
      if (workdir / 'checkpoints').is_dir():
        finished = [p for p in (workdir / 'checkpoints').iterdir()
                    if p.name.isdigit()]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == -signal.SIGKILL
  with checkpoint_lib.Checkpointer(workdir / 'checkpoints') as checkpointer:
    killed_at = checkpointer.latest_step()
  assert killed_at is not None and 0 < killed_at < 30

  resumed = train.train_and_evaluate(kill_config(), workdir)
  assert int(resumed['step']) == 30
  assert_trees_equal(resumed, uninterrupted)
  metrics = [json.loads(line) for line in
             (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert metrics[-1]['eval/step'] == 30


# --- the data iterator's state in the checkpoint -----------------------------

PIPELINE_METHOD = 'test_linear_regression_pipeline'
ITERATE_CALLS = []  # keyword arguments of every Pipeline.iterate call


class _Samples:
  """40 noiseless (x, y) pairs of the toy regression, in memory."""

  fields = {'x': pipeline_lib.Field('meta'), 'y': pipeline_lib.Field('meta')}

  def __init__(self, seed):
    w, b = toy.true_parameters(seed)
    self.x = np.random.default_rng([seed, 5]).normal(
        size=(40, toy.FEATURES)).astype(np.float32)
    self.y = (self.x @ w + b).astype(np.float32)

  def __len__(self):
    return len(self.x)

  def __getitem__(self, index):
    return dict(x=self.x[index], y=self.y[index])


class _Stateless:
  """A BatchIterator without get_state: what older loops checkpointed."""

  def __init__(self, iterator):
    self._iterator = iterator

  def __iter__(self):
    return self

  def __next__(self):
    return next(self._iterator)

  def close(self):
    self._iterator.close()


class _RecordingPipeline(pipeline_lib.Pipeline):

  def __init__(self, *args, save_state, **kwargs):
    super().__init__(*args, **kwargs)
    self.save_state = save_state

  def iterate(self, **kwargs):
    ITERATE_CALLS.append(kwargs)
    iterator = super().iterate(**kwargs)
    return iterator if self.save_state else _Stateless(iterator)


def _pipeline_data(config, *, split, process_index, process_count):
  del split
  devices = jax.local_device_count()
  return _RecordingPipeline(
      _Samples(config.seed), save_state=config.toy.save_data_state,
      per_device_batch=config.toy.batch_size // (devices * process_count),
      augment=(), seed=config.seed, local_device_count=devices,
      process_index=process_index, process_count=process_count,
      num_workers=1, prefetch=1)


try:
  method_lib.register_method(PIPELINE_METHOD)(lambda: method_lib.Method(
      name=PIPELINE_METHOD, init=toy.init, steps=toy.make_steps,
      make_data=_pipeline_data, evaluate=toy.evaluate))
except ValueError:  # registered once per process
  pass


def _pipeline_config(num_steps, *, save_data_state=True):
  config = toy.get_config()
  config.method = PIPELINE_METHOD
  config.train.num_steps = num_steps  # 5 steps an epoch: 8 crosses one
  config.train.eval_at_end = False
  config.toy.save_data_state = save_data_state
  return config


def test_the_data_state_is_checkpointed_and_resumes_exactly(tmp_path):
  uninterrupted = train.train_and_evaluate(_pipeline_config(8),
                                           tmp_path / 'whole')
  for name, saved in (('with_state', True), ('older', False)):
    workdir = tmp_path / name
    train.train_and_evaluate(_pipeline_config(4, save_data_state=saved),
                             workdir)
    data_file = workdir / 'checkpoints' / '4' / 'data' / 'process_0-of-1.json'
    assert data_file.is_file() == saved
    if saved:
      state = json.loads(data_file.read_text())
      assert state['step'] == 4 and state['start_step'] == 0
    ITERATE_CALLS.clear()
    resumed = train.train_and_evaluate(_pipeline_config(8), workdir)
    # With a data state the loop hands it back; a checkpoint without one
    # (older loops) resumes the data by its (seed, step) rule.
    assert ITERATE_CALLS == ([dict(state=state)] if saved else
                             [dict(start_step=4)])
    assert_trees_equal(resumed, uninterrupted)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
  """launch.train as 2 processes x 2 devices (jax.distributed, pmap across
  processes, each reading its half of the batch) = 1 process x 4 devices."""
  config = toy.get_config()
  config.train.num_steps = 4
  single = train.train_and_evaluate(config, tmp_path / 'single')
  workdir, port = tmp_path / 'multi', _free_port()
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  logs = [tmp_path / f'process{i}.log' for i in range(2)]
  processes = []
  for i, log in enumerate(logs):
    with open(log, 'wb') as out:
      processes.append(subprocess.Popen(
          [sys.executable, '-m', 'launch.train', f'--config={TOY_CONFIG}',
           f'--workdir={workdir}', '--config.train.num_steps=4',
           f'--coordinator_address=localhost:{port}', '--num_processes=2',
           f'--process_id={i}'], cwd=ROOT, env=env, stdout=out,
          stderr=subprocess.STDOUT))
  try:
    for process, log in zip(processes, logs):
      assert process.wait(timeout=240) == 0, log.read_text()[-3000:]
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  with checkpoint_lib.Checkpointer(workdir / 'checkpoints') as checkpointer:
    multi, _ = checkpointer.restore(single)
  assert int(multi['step']) == 4
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(multi),
                          jax.tree.leaves(single)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
  # Process 1 wrote no logs of its own: one metrics line per step + eval.
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert len(lines) == 5


def test_sigterm_saves_stops_and_resumes_exactly(tmp_path, uninterrupted):
  """SIGTERM while data step 4 is prepared: step 5 is saved, then resumed.

  The data here is a plain generator, which the loop replays on resume.
  """
  before = signal.getsignal(signal.SIGTERM)
  stopped = train.train_and_evaluate(
      kill_config(sigterm_at_step=4, iterable='generator'), tmp_path)
  assert signal.getsignal(signal.SIGTERM) is before
  assert int(stopped['step']) == 5
  with checkpoint_lib.Checkpointer(tmp_path / 'checkpoints') as checkpointer:
    assert checkpointer.latest_step() == 5
  assert not (tmp_path / 'eval').exists()  # a stop is not the end

  resumed = train.train_and_evaluate(kill_config(iterable='generator'),
                                     tmp_path)
  assert_trees_equal(resumed, uninterrupted)


def test_a_finished_run_is_not_trained_again(nan_run):
  config, workdir, final = nan_run
  mtime = (workdir / 'metrics.jsonl').stat().st_mtime_ns
  again = train.train_and_evaluate(config, workdir)
  assert_trees_equal(again, final)
  assert (workdir / 'metrics.jsonl').stat().st_mtime_ns == mtime


# --- bad steps ----------------------------------------------------------------


def test_nan_batch_is_skipped_and_counted(nan_run):
  config, workdir, final = nan_run
  assert int(final['step']) == 8
  # Independent float64 replay that drops data step 2 (and only it).
  want = toy.reference_sgd(config, 8)
  np.testing.assert_allclose(final['params']['w'], want['w'], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(final['params']['b'], want['b'], rtol=1e-5,
                             atol=1e-6)
  clean = toy.get_config()
  unskipped = toy.reference_sgd(clean, 8)
  assert np.abs(unskipped['w'] - want['w']).max() > 1e-2
  records = {r['step']: r for r in map(
      json.loads, (workdir / 'metrics.jsonl').read_text().splitlines())
             if 'train/skipped_steps' in r}
  assert [records[s]['train/skipped_steps'] for s in range(1, 9)] == [
      0, 0, 1, 1, 1, 1, 1, 1]
  assert 'train/loss' not in records[3] and 'train/loss' in records[4]
  with checkpoint_lib.Checkpointer(workdir / 'checkpoints') as checkpointer:
    _, meta = checkpointer.restore(final)
  assert meta == {'skipped_steps': 1}


def test_too_many_bad_steps_stop_training(tmp_path):
  config = toy.get_config()
  config.toy.nan_steps = (1, 2, 3)
  config.train.max_bad_steps = 2
  config.checkpoint.every_steps = 1
  with pytest.raises(train.TrainingDivergedError,
                     match=r'3 updates were non-finite .*step 4.*'
                     r'max_bad_steps=2.*checkpoint is step 3'):
    train.train_and_evaluate(config, tmp_path)
  with checkpoint_lib.Checkpointer(tmp_path / 'checkpoints') as checkpointer:
    assert checkpointer.all_steps() == [2, 3]  # max_to_keep=2
    state, meta = checkpointer.restore(train.to_host(
        toy.init(config, jax.random.PRNGKey(0))))
  assert meta == {'skipped_steps': 2}
  want = toy.reference_sgd(config, 1)  # only data step 0 was usable
  np.testing.assert_allclose(state['params']['w'], want['w'], rtol=1e-5,
                             atol=1e-6)


def test_checkpointer_never_saves_a_non_finite_state(tmp_path):
  good = dict(step=np.asarray(1, np.int32),
              params=dict(w=np.ones(3, np.float32)))
  bad = dict(step=np.asarray(2, np.int32),
             params=dict(w=np.array([1, np.inf, 0], np.float32)))
  with checkpoint_lib.Checkpointer(tmp_path, async_save=False) as checkpointer:
    assert checkpointer.save(1, good)
    assert not checkpointer.save(2, bad)
    assert checkpointer.all_steps() == [1]
    restored, _ = checkpointer.restore(bad)
    np.testing.assert_array_equal(restored['params']['w'], np.ones(3))
    other = dict(step=good['step'], params=dict(w=np.ones(4, np.float32)))
    with pytest.raises(ValueError,
                       match=r"params/w.*\(3,\).*\(4,\)"):
      checkpointer.restore(other)
    with pytest.raises(FileNotFoundError, match='step 7'):
      checkpointer.restore(good, step=7)


def test_checkpointer_restores_optimizer_states(tmp_path):
  # optax states are NamedTuples, which orbax's metadata stores as dicts:
  # the layout check must still see the same tree.
  params = {'w': np.ones(3, np.float32)}
  state = {'step': np.asarray(5, np.int32), 'params': params,
           'opt_state': jax.tree.map(np.asarray, optax.adam(0.1).init(params))}
  with checkpoint_lib.Checkpointer(tmp_path, async_save=False) as checkpointer:
    assert checkpointer.save(5, state)
    restored, _ = checkpointer.restore(state)
  assert isinstance(restored['opt_state'][0], optax.ScaleByAdamState)
  jax.tree.map(np.testing.assert_array_equal, restored, state)


# --- outputs ------------------------------------------------------------------


def test_writers_opened_in_one_second_keep_their_events(tmp_path):
  # Event files are named by the second they are opened in; a run resumed
  # at once must not truncate the first run's file.
  for step in (1, 2):
    writer = train.MetricWriter(tmp_path)
    writer.scalars(step, {'train/loss': float(step)})
    writer.close()
  assert read_scalar_events(tmp_path / 'tensorboard')['train/loss'] == {
      1: 1.0, 2: 2.0}


def test_tensorboard_and_json_logs_agree(nan_run):
  _, workdir, _ = nan_run
  events = read_scalar_events(workdir / 'tensorboard')
  records = [json.loads(line) for line in
             (workdir / 'metrics.jsonl').read_text().splitlines()]
  losses = {r['step']: r['train/loss'] for r in records if 'train/loss' in r}
  assert sorted(losses) == [1, 2, 4, 5, 6, 7, 8]
  assert set(events['train/loss']) == set(losses)
  for step, loss in losses.items():
    assert events['train/loss'][step] == pytest.approx(loss, rel=1e-6)
  for tag in ('train/grad_norm', 'train/param_norm', 'train/update_norm',
              'train/skipped_steps', 'eval/parameter_mse'):
    assert tag in events
  assert json.loads((workdir / 'config.json').read_text())['toy'][
      'nan_steps'] == [2]
  # Periodic evaluation at step 4, final one at step 8.
  assert sorted(events['eval/step'].items()) == [(4, 4.0), (8, 8.0)]
  for step in (4, 8):
    written = json.loads(
        (workdir / 'eval' / f'step_{step:08d}' / 'results.json').read_text())
    assert written['step'] == step == written['results']['step']


def test_sample_grids_are_written(nan_run):
  config, workdir, _ = nan_run
  names = sorted(p.name for p in (workdir / 'images').iterdir())
  assert names == ['inputs_00000004.png', 'inputs_00000008.png',
                   'weighted_00000004.png', 'weighted_00000008.png']
  grid = rawio.read_image(workdir / 'images' / 'inputs_00000004.png')
  x = toy.global_batch(config, 3)['x'].reshape(-1, 2, 2, 3)  # data step 3
  want = rawjax_eval.image_grid(1 / (1 + np.exp(-x)))
  assert grid.shape == want.shape == (3 * 4 + 2, 3 * 4 + 2, 3)
  np.testing.assert_allclose(grid, want, atol=0.5 / 255 + 1e-6)


def test_evaluate_checkpoint_writes_results(nan_run, tmp_path):
  config, workdir, final = nan_run
  results = train.evaluate_checkpoint(config, workdir)
  w, b = toy.true_parameters(config.seed)
  error = np.concatenate([final['params']['w'] - w,
                          [final['params']['b'] - b]])
  assert results['parameter_mse'] == pytest.approx(np.mean(error**2),
                                                   rel=1e-6)
  written = json.loads((workdir / 'eval' / 'results.json').read_text())
  assert written['step'] == 8
  assert written['results']['parameter_mse'] == results['parameter_mse']
  assert '| parameter_mse |' in (workdir / 'eval' / 'results.md').read_text()
  with pytest.raises(FileNotFoundError, match='no checkpoint.*train first'):
    train.evaluate_checkpoint(config, tmp_path)


# --- configs and contracts ----------------------------------------------------


def test_config_typo_in_a_file_names_the_key():
  config = toy.get_config()
  with pytest.raises(AttributeError,
                     match='num_step.*Did you mean "num_steps"'):
    config.train.num_step = 3
  with config.train.unlocked():  # deliberate additions stay possible
    config.train.extra = 1


def _parse(argv):
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config', lock_config=True,
                                  flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  return flag_values.config


@pytest.mark.filterwarnings('ignore:the load_module:DeprecationWarning')
def test_config_typo_on_the_command_line_names_the_key():
  base = ['launch.train', f'--config={TOY_CONFIG}:kill']
  config = _parse(base + ['--config.train.num_steps=5',
                          '--config.parallel.mode=shard_map'])
  assert config.train.num_steps == 5 and config.toy.delay == 0.15
  assert config.parallel.mode == 'shard_map'
  with pytest.raises(AttributeError, match='num_stpes.*num_steps'):
    _parse(base + ['--config.train.num_stpes=5'])
  with pytest.raises(AttributeError, match='learning_rat'):
    _parse(base + ['--config.toy.learning_rat=0.1'])


@pytest.mark.parametrize('key,value,message', [
    ('parallel.mode', 'pamp',
     r"config.parallel.mode='pamp' must be one of \('pmap'"),
    ('train.num_steps', 0, 'config.train.num_steps=0 must be an int >= 1'),
    ('train.max_bad_steps', -1, 'config.train.max_bad_steps'),
    ('checkpoint.every_steps', 1.5, 'config.checkpoint.every_steps'),
    ('logging.tensorboard', 'yes',
     "config.logging.tensorboard='yes' must be True or False"),
    ('method', '', 'config.method must name'),
])
def test_validate_config_names_bad_values(key, value, message):
  config = toy.get_config()
  *sections, name = key.split('.')
  target = config[sections[0]] if sections else config
  with target.ignore_type():
    target[name] = value
  with pytest.raises(ValueError, match=message):
    train.validate_config(config)


def test_validate_config_wants_the_base_sections():
  config = toy.get_config()
  del config['logging']
  with pytest.raises(ValueError, match="no 'logging'.*base_config"):
    train.validate_config(config)
  train.validate_config(toy.get_config())


def _identity_iteration_error(step_fn):
  runner = parallel.Parallel('pmap', devices=jax.devices()[:1])
  state = train.to_host(toy.init(toy.get_config(), jax.random.PRNGKey(0)))
  batch = toy.global_batch(toy.get_config(), 0)
  iteration = runner.compile(train.make_iteration([step_fn]))
  iteration(runner.replicate(state), runner.shard_batch(batch))


def test_step_contract_errors_are_clear():
  def drops_momentum(state, batch, rng):
    del batch, rng
    return dict(step=state['step'], rng=state['rng'],
                params=state['params']), dict(loss=0.0)

  def changes_dtype(state, batch, rng):
    del batch, rng
    params = dict(state['params'], b=state['params']['b'].astype('bfloat16'))
    return dict(state, params=params), dict(loss=0.0)

  def no_loss(state, batch, rng):
    del batch, rng
    return state, dict(error=0.0)

  with pytest.raises(ValueError, match="'drops_momentum' returned a state "
                     'with other entries'):
    _identity_iteration_error(drops_momentum)
  with pytest.raises(ValueError, match=r"'changes_dtype' changed state\['params"
                     r"'\]\['b'\] from float32\[\] to bfloat16\[\]"):
    _identity_iteration_error(changes_dtype)
  with pytest.raises(ValueError, match='reports no "loss"'):
    _identity_iteration_error(no_loss)


def test_state_contract():
  with pytest.raises(ValueError, match='typed PRNG key'):
    train.create_state(params={}, rng=jax.random.key(0))
  with pytest.raises(ValueError, match=r"lacks \['rng'\]"):
    train.check_state(dict(step=np.int32(0), params={}))
  metrics = train.diagnostics(grads=dict(a=np.array([3.0, 4.0])),
                              params=dict(a=np.array([1.0, 0.0])),
                              updates=dict(a=np.array([0.0, -2.0])))
  assert {k: float(v) for k, v in metrics.items()} == {
      'grad_norm': 5.0, 'param_norm': 1.0, 'update_norm': 2.0}
