"""pmap, shard_map and one device give the same step (rawjax.train.parallel).

The step under test is a small conv net with BatchNorm trained with Adam,
written per device the way methods write theirs (gradients, batch
statistics and metrics reduced over 'batch'), and run through the loop's
own `make_iteration`. The reference is the same function on one device
with the whole batch (where the reductions are over one device).

Tolerance: float32 sums over 4 shards of 2 images are added in another
order than over the whole batch of 8. After two Adam steps the losses must
agree to 1e-6 relative, and every parameter, BatchNorm statistic and Adam
moment to 1e-5 relative + 1e-6 absolute. Measured: losses differ by 4.5e-7
relative, state entries by at most 2.4e-7 absolute (4e-6 relative for
entries above 1e-3); pmap and shard_map gave bit-identical results. The
running BatchNorm mean is also checked against numpy on the whole batch.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rawjax import train
from rawjax.train import parallel

BATCH = 8  # 2 per device on the 4 test devices


class SmallNet(nn.Module):

  @nn.compact
  def __call__(self, x, *, train_mode):
    # No bias before BatchNorm: its true gradient is 0, and Adam would turn
    # the rounding noise of that 0 into full-size steps of either sign.
    x = nn.Conv(6, (3, 3), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train_mode, momentum=0.9,
                     axis_name='batch' if train_mode else None)(x)
    x = nn.relu(x)
    return nn.Conv(3, (3, 3))(x)


MODEL = SmallNet()
TX = optax.adam(1e-2)


def init_state():
  variables = MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)),
                         train_mode=False)
  return train.to_host(train.create_state(
      params=variables['params'], rng=jax.random.PRNGKey(1),
      batch_stats=variables['batch_stats'],
      opt_state=TX.init(variables['params'])))


def conv_step(state, batch, rng):
  del rng

  def loss_fn(params):
    out, updates = MODEL.apply(
        dict(params=params, batch_stats=state['batch_stats']),
        batch['x'], train_mode=True, mutable=['batch_stats'])
    return jnp.mean(jnp.square(out - batch['y'])), updates['batch_stats']

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state['params'])
  grads = jax.lax.pmean(grads, 'batch')
  updates, opt_state = TX.update(grads, state['opt_state'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  metrics = dict(loss=jax.lax.pmean(loss, 'batch'),
                 **train.diagnostics(grads=grads, params=state['params'],
                                     updates=updates))
  return dict(state, params=params, batch_stats=batch_stats,
              opt_state=opt_state), metrics


def batches(n):
  rng = np.random.default_rng(0)
  return [dict(x=rng.normal(size=(BATCH, 8, 8, 3)).astype(np.float32),
               y=rng.uniform(size=(BATCH, 8, 8, 3)).astype(np.float32))
          for _ in range(n)]


class CompileCounter:
  """Counts XLA compilations while active (jax.monitoring events)."""

  def __init__(self):
    self.count = 0

  def _listener(self, event, duration, **kwargs):
    del duration, kwargs
    if event == '/jax/core/compile/backend_compile_duration':
      self.count += 1

  def __enter__(self):
    jax.monitoring.register_event_duration_secs_listener(self._listener)
    return self

  def __exit__(self, *exc):
    jax.monitoring.unregister_event_duration_listener(self._listener)


def run(runner, state, data):
  """States after each step, losses, and compilations during the steps."""
  step = runner.compile(train.make_iteration([conv_step]))
  state = runner.replicate(state)
  placed = [runner.shard_batch(batch) for batch in data]
  jax.block_until_ready(placed)
  states, losses = [], []
  with CompileCounter() as compiles:
    for batch in placed:
      state, metrics, ok = step(state, batch)
      assert bool(runner.unreplicate(ok))
      losses.append(float(runner.unreplicate(metrics)['loss']))
      states.append(runner.unreplicate(state))
  return states, losses, compiles.count


@pytest.fixture(scope='module')
def results():
  state, data = init_state(), batches(2)
  return {
      'single': run(parallel.Parallel('pmap', devices=jax.devices()[:1]),
                    state, data),
      'pmap': run(parallel.Parallel('pmap'), state, data),
      'shard_map': run(parallel.Parallel('shard_map'), state, data),
  }


def test_four_test_devices():
  assert jax.local_device_count() == 4


@pytest.mark.parametrize('mode', ['pmap', 'shard_map'])
def test_same_loss_and_update_as_one_device(results, mode):
  reference_states, reference_losses, _ = results['single']
  states, losses, _ = results[mode]
  np.testing.assert_allclose(losses, reference_losses, rtol=1e-6)
  assert int(states[-1]['step']) == 2
  flat_ref = jax.tree_util.tree_leaves_with_path(reference_states[-1])
  flat = jax.tree.leaves(states[-1])
  assert len(flat) == len(flat_ref)
  for (path, want), got in zip(flat_ref, flat):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
  # The updates moved the parameters (the comparison is not vacuous).
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(),
                       states[-1]['params'], init_state()['params'])
  assert min(jax.tree.leaves(moved)) > 1e-3


@pytest.mark.parametrize('mode', ['single', 'pmap', 'shard_map'])
def test_batch_statistics_span_all_devices(results, mode):
  """Running means after one step are those of the whole batch (numpy)."""
  x = batches(1)[0]['x']
  kernel = np.asarray(init_state()['params']['Conv_0']['kernel'])
  padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
  conv = sum(padded[:, i:i + 8, j:j + 8, :] @ kernel[i, j]
             for i in range(3) for j in range(3))
  want = 0.1 * conv.mean(axis=(0, 1, 2))  # momentum 0.9, from zeros
  got = results[mode][0][0]['batch_stats']['BatchNorm_0']['mean']
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # One shard's statistics would be far off.
  shard_mean = 0.1 * conv[:2].mean(axis=(0, 1, 2))
  assert np.abs(shard_mean - want).max() > 100 * np.abs(got - want).max()


@pytest.mark.parametrize('mode', ['single', 'pmap', 'shard_map'])
def test_step_compiles_once(results, mode):
  """Feeding the step's outputs back in does not recompile it."""
  assert results[mode][2] == 1


@pytest.mark.parametrize('mode', ['pmap', 'shard_map'])
def test_replicate_unreplicate_round_trip(mode):
  runner = parallel.Parallel(mode)
  tree = dict(a=np.arange(6, dtype=np.float32).reshape(2, 3),
              step=np.asarray(7, np.int32))
  back = runner.unreplicate(runner.replicate(tree))
  np.testing.assert_array_equal(back['a'], tree['a'])
  assert back['step'].shape == () and int(back['step']) == 7


def test_shard_batch_layouts():
  batch = dict(x=np.arange(8 * 3, dtype=np.float32).reshape(8, 3))
  pmapped = parallel.Parallel('pmap').shard_batch(batch)['x']
  assert pmapped.shape == (4, 2, 3)
  np.testing.assert_array_equal(np.asarray(pmapped)[1], batch['x'][2:4])
  sharded = parallel.Parallel('shard_map').shard_batch(batch)['x']
  assert sharded.shape == (8, 3)
  np.testing.assert_array_equal(
      np.asarray(sharded.addressable_shards[1].data), batch['x'][2:4])


def test_shard_batch_names_an_indivisible_field():
  with pytest.raises(ValueError, match=r"batch\['y'\].*4 local device"):
    parallel.Parallel('pmap').shard_batch(dict(x=np.zeros((8, 2)),
                                               y=np.zeros((6, 2))))


def test_bad_mode_and_device_count():
  with pytest.raises(ValueError, match="'pmap' or 'shard_map'"):
    parallel.Parallel('pamp')
  config = train.base_config()
  config.parallel.num_devices = 9
  with pytest.raises(ValueError, match='num_devices=9.*4 device'):
    parallel.devices_from_config(config)
  config.parallel.num_devices = 2
  assert parallel.devices_from_config(config) == jax.local_devices()[:2]


@pytest.mark.parametrize('env,expected', [
    ({}, None),
    ({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1', 'SLURM_PROCID': '0'}, None),
    ({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4', 'SLURM_PROCID': '2'}, 'slurm'),
    ({'OMPI_COMM_WORLD_SIZE': '2'}, 'openmpi'),
    ({'TPU_WORKER_HOSTNAMES': 'localhost'}, None),
    ({'TPU_WORKER_HOSTNAMES': 'h0,h1'}, 'tpu'),
    ({'JAX_COORDINATOR_ADDRESS': '10.0.0.1:1234'}, 'env'),
])
def test_detect_multiprocess_environment(monkeypatch, env, expected):
  for name in ('SLURM_JOB_ID', 'SLURM_NTASKS', 'SLURM_PROCID',
               'OMPI_COMM_WORLD_SIZE', 'TPU_WORKER_HOSTNAMES',
               'TPU_PROCESS_ADDRESSES', 'MEGASCALE_COORDINATOR_ADDRESS',
               'JAX_COORDINATOR_ADDRESS'):
    monkeypatch.delenv(name, raising=False)
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  assert parallel.detect_multiprocess_environment() == expected
  if expected is None:
    assert not parallel.initialize_distributed()
