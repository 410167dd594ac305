"""The CSTPP methods: the CycleGAN's configs, pool, steps, eval; adaptation.

The data is a tiny raw2raw layout written here: camera B sees a fixed 3x3
colour matrix of camera A's (R, G, B), so the global 3x3 calibration of the
evaluation must recover it exactly.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.methods import cstpp
from rawjax.methods.cstpp import config as cstpp_config
from rawjax.train import checkpoint as checkpoint_lib
from rawjax.train import config as config_lib
from rawjax.train import method as method_lib
from rawjax.train.config import load_config_module
from train_methods import helpers

CONFIG_PATH = pathlib.Path(__file__).resolve().parents[2] / 'configs' / (
    'raw2raw_cstpp.py')
ADAPT_CONFIG_PATH = CONFIG_PATH.with_name('cstpp_adapt.py')
SIZE = 32  # packed


def _configs():
  return load_config_module(CONFIG_PATH)


CONFIGS = _configs()


def _scene(rng):
  return helpers.pack_rgb(helpers.smooth_rgb(
      rng, SIZE, base=(0.1, 0.4), amplitude=(0.1, 0.4), clip=(0.02, 0.9)))


def _srgb(packed):
  """A stand-in 8-bit sRGB rendering at full resolution (2x the packed)."""
  rgb = np.stack([packed[..., 0], packed[..., 1], packed[..., 3]], -1)
  return np.round(255 * rgb.repeat(2, 0).repeat(2, 1)).astype(np.uint8)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp('cstpp')
  rng = np.random.default_rng(0)
  chart = np.array([[0, 0, 16, 16], [16, 16, 32, 40], [32, 0, 64, 24]])
  helpers.write_raw2raw(
      root, lambda: _scene(rng), paired={'anchor': 2, 'test': 2}, unpaired=4,
      paired_meta=lambda split, i, image: dict(chart_boxes=chart,
                                               srgb=_srgb(image)),
      unpaired_meta=lambda image: dict(srgb=_srgb(image)))
  return root


def _small(variant, root):
  config = helpers.tiny_config(CONFIGS, variant, root, grid_images=1,
                               patch_size=32, pool_size=3)
  config.model.update(base_channels=4, channel_ratio=2, stem_channels=8,
                      embed_dim=16, depth=3, num_heads=2,
                      discriminator_features=4)
  return config


def test_configs_have_the_paper_settings():
  paper, quick = helpers.paper_and_quick(CONFIGS, 'cycle_gan')
  o = paper.optim
  assert (o.generator_lr, o.discriminator_lr, o.b1, o.b2, o.clip_norm) == (
      1e-5, 2e-5, 0.5, 0.999, 2.0)
  assert (paper.loss.cycle, paper.loss.identity, paper.loss.gan) == (10, 5, 1)
  assert paper.data.batch_size == 4 and paper.data.pool_size == 50
  # 50 epochs of the official preprocessing: 196 images x 4 patches / 4.
  assert paper.train.num_steps == 50 * 196
  assert (paper.data.protocol, tuple(paper.data.resize_to)) == (
      'resize_patches', (384, 512))
  assert quick.data.protocol == 'random_crops'  # the published quick runs
  assert paper.model.generator == quick.model.generator == 'cstpp'
  m = paper.model
  assert (m.embed_dim, m.depth, m.num_heads, m.qkv_bias, m.base_channels,
          m.channel_ratio) == (256, 6, 4, False, 32, 2)
  assert quick.data.synthetic.preset == 'multi_illum'
  for config in (paper, quick):
    config.lock()
    with pytest.raises(AttributeError, match='pool_sise'):
      config.data.pool_sise = 3
  with pytest.raises(ValueError, match="unknown variant 'fast'"):
    CONFIGS.get_config('fast')
  bad = CONFIGS.get_config('quick')
  bad.model.sharing = 'all'
  with pytest.raises(ValueError, match='config.model.sharing'):
    cstpp.make_steps(bad)
  bad = CONFIGS.get_config('quick')
  bad.model.transform = 'pixel'
  with pytest.raises(ValueError, match='config.model.transform'):
    cstpp.make_steps(bad)
  bad = CONFIGS.get_config('quick')
  bad.data.patch_size = 48
  with pytest.raises(ValueError, match='patch_size=48'):
    cstpp.make_steps(bad)


@pytest.mark.parametrize('key,value,match', [
    ('model.generator', 'unet', r"config.model.generator='unet' must be one "
     r"of \('cstpp', 'resnet'\)"),
    ('model.sharing', 'code', r"config.model.sharing='code' must be 'none' "
     r"with config.model.generator='resnet'"),
    ('model.resnet_features', 0, r'config.model.resnet_features=0 must be '
     r'an int >= 1'),
    ('model.resnet_blocks', -1, r'config.model.resnet_blocks=-1'),
    ('data.protocol', 'crops', r"config.data.protocol='crops' must be one "
     r"of \('resize_patches', 'random_crops'\)"),
    ('data.resize_to', (384,), r'config.data.resize_to=\(384,\) must be '
     r'\(height, width\)'),
    ('data.resize_to', (384, 128), r'each >= config.data.patch_size=256'),
    ('data.resize_method', 'cubic', r"config.data.resize_method='cubic'"),
    ('data.patch_grid', 'random', r"config.data.patch_grid='random'"),
])
def test_config_checks_of_the_generator_and_protocol_keys(key, value, match):
  config = CONFIGS.get_config()
  config.model.update(generator='resnet', sharing='none')
  section, name = key.split('.')
  config[section][name] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    cstpp.make_steps(config)
  # The keys read only with the resnet generator / resize protocol are not
  # checked without them.
  config = CONFIGS.get_config()
  config.data.resize_to = (1,)
  config.model.resnet_blocks = 0
  config.data.protocol = 'random_crops'
  cstpp.make_steps(config)
  config.data.resize_to = ()  # no resize: the full-resolution grid
  config.data.protocol = 'resize_patches'
  cstpp.make_steps(config)


def test_patch_grid_of_known_image_sizes():
  # The official 384 x 512 with 256 patches: 'cover' needs ceil(384 / 256)
  # = 2 rows spread over [0, 384 - 256] and 2 abutting columns.
  assert cstpp.patch_corners(384, 512, 256) == [(0, 0), (0, 256), (128, 0),
                                                (128, 256)]
  assert cstpp.patch_corners(384, 512, 256, grid='disjoint') == [(0, 0),
                                                                 (0, 256)]
  # 300 with 128: 3 patches at round(i * 172 / 2) = 0, 86, 172.
  assert cstpp.patch_corners(300, 128, 128) == [(0, 0), (86, 0), (172, 0)]
  assert cstpp.patch_corners(300, 128, 128, grid='disjoint') == [(0, 0),
                                                                 (128, 0)]
  with pytest.raises(ValueError, match='smaller than the patch'):
    cstpp.patch_corners(100, 512, 256)
  with pytest.raises(ValueError, match='grid must be one of'):
    cstpp.patch_corners(512, 512, 256, grid='overlap')


def _bilinear_reference(image, size):
  """Half-pixel-centre bilinear resampling, edge-clamped, one axis at a
  time, by its definition (cv2 INTER_LINEAR / align_corners=False)."""
  out = np.asarray(image, np.float64)
  for axis, n_out in enumerate(size):
    n_in = out.shape[axis]
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    t = (pos - lo).reshape([-1 if a == axis else 1 for a in range(3)])
    out = (np.take(out, lo, axis) * (1 - t) + np.take(out, hi, axis) * t)
  return out


def test_resize_packed_filters():
  rng = np.random.default_rng(0)
  image = rng.uniform(size=(12, 16, 4)).astype(np.float32)
  # 2x down: both filters give the 2 x 2 block means (bilinear: the output
  # centre falls midway between two input centres).
  blocks = image.reshape(6, 2, 8, 2, 4).mean(axis=(1, 3))
  for method in ('area', 'bilinear'):
    np.testing.assert_allclose(cstpp.resize_packed(image, (6, 8),
                                                   method=method),
                               blocks, atol=1e-6)
  # Area 3 -> 2 by hand: each output covers 1.5 inputs.
  row = np.float32([0.2, 0.8, 0.5]).reshape(1, 3, 1)
  np.testing.assert_allclose(
      cstpp.resize_packed(row, (1, 2))[0, :, 0],
      [(0.2 + 0.5 * 0.8) / 1.5, (0.5 * 0.8 + 0.5) / 1.5], atol=1e-6)
  # Non-integer factors (down 12 -> 9, up 16 -> 20): the definition.
  np.testing.assert_allclose(
      cstpp.resize_packed(image, (9, 20), method='bilinear'),
      _bilinear_reference(image, (9, 20)), atol=1e-5)
  # Per plane: a constant per channel stays that constant (no mixing).
  flat = np.broadcast_to(np.float32([0.1, 0.4, 0.5, 0.9]), (12, 16, 4))
  np.testing.assert_allclose(cstpp.resize_packed(flat, (7, 5)),
                             np.broadcast_to(flat[:1, :1], (7, 5, 4)),
                             atol=1e-6)
  np.testing.assert_array_equal(cstpp.resize_packed(image, (12, 16)), image)
  with pytest.raises(ValueError, match='method must be one of'):
    cstpp.resize_packed(image, (6, 8), method='cubic')


class _Images:
  fields = {'raw': pipeline_lib.Field('packed')}

  def __init__(self, images):
    self.images = images

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    return {'raw': self.images[i], 'name': f'im{i}'}


def test_grid_patches_cut_the_resized_images():
  rng = np.random.default_rng(1)
  images = [rng.uniform(size=(20, 28, 4)).astype(np.float32)
            for _ in range(2)]
  data = cstpp.GridPatches(_Images(images), patch_size=8, size=(12, 16))
  # 12 x 16 in the cover grid of 8: rows (0, 4), columns (0, 8).
  assert data.corners == [(0, 0), (0, 8), (4, 0), (4, 8)] and len(data) == 8
  resized = cstpp.resize_packed(images[1], (12, 16))
  sample = data[6]  # image 1, patch 2
  assert sample['name'] == 'im1#2'
  np.testing.assert_array_equal(sample['raw'], resized[4:12, 0:8])
  full = cstpp.GridPatches(_Images(images), patch_size=8, size=(),
                           grid='disjoint')
  assert len(full.corners) == 2 * 3
  np.testing.assert_array_equal(full[5]['raw'], images[0][8:16, 16:24])
  odd = cstpp.GridPatches(_Images([images[0], images[1][:16]]), patch_size=8,
                          size=())
  with pytest.raises(ValueError, match=r'resize_to=\(\) needs images of '
                     'one size'):
    odd[len(odd) - 1]


def test_train_data_protocols(dataset):
  config = _small('', dataset)  # the paper variant: 'resize_patches'
  config.data.update(resize_to=(48, 64), augment=())
  data = cstpp.make_data(config)
  # 4 unpaired images per camera x 4 patches (rows 0 / 16, columns 0 / 32)
  # = 16 items: 4 steps of 4 per epoch.
  assert [p.steps_per_epoch for p in data.pipelines.values()] == [4, 4]
  root = pathlib.Path(config.data.root)
  batch = data.batch(0)
  assert batch['a'].shape == batch['b'].shape == (4, 32, 32, 4)
  for key, camera in zip(('a', 'b'), data.cameras):
    images = raw2raw_data.Raw2RawUnpaired(root, camera=camera)
    patches = [cstpp.resize_packed(images[i]['raw'], (48, 64))[r:r + 32,
                                                               c:c + 32]
               for i in range(len(images)) for r, c in data.pipelines[
                   key].dataset.dataset.corners]
    # Every batch item is one of the grid patches, exactly.
    for item in batch[key]:
      assert min(np.abs(item - p).max() for p in patches) < 1e-6
  config.data.protocol = 'random_crops'
  crops = cstpp.make_data(config)
  assert [p.steps_per_epoch for p in crops.pipelines.values()] == [1, 1]
  assert crops.batch(0)['a'].shape == (4, 32, 32, 4)


def _pool_reference(stored, count, images, coins, indices):
  """junyanz ImagePool.query with the given random draws."""
  stored, out = [s.copy() for s in stored], []
  for image, coin, index in zip(images, coins, indices):
    if count < len(stored):
      stored[count] = image
      count += 1
      out.append(image)
    elif coin > 0.5:
      out.append(stored[index].copy())
      stored[index] = image
    else:
      out.append(image)
  return stored, count, out


def test_history_pool_matches_image_pool():
  pool = cstpp.pool_init(3, (2, 2, 1))
  rng = np.random.default_rng(0)
  query = jax.jit(cstpp.pool_query)
  stored, count = list(np.zeros((3, 2, 2, 1), np.float32)), 0
  for step in range(4):
    images = rng.uniform(size=(2, 2, 2, 1)).astype(np.float32)
    key = jax.random.PRNGKey(step)
    # The draws pool_query makes, for the reference.
    coins, indices = [], []
    for k in jax.random.split(key, 2):
      kc, ki = jax.random.split(k)
      coins.append(float(jax.random.uniform(kc)))
      indices.append(int(jax.random.randint(ki, (), 0, 3)))
    pool, out = query(pool, images, key)
    stored, count, expected = _pool_reference(stored, count, images, coins,
                                              indices)
    np.testing.assert_array_equal(out, np.stack(expected))
    np.testing.assert_array_equal(pool['images'], np.stack(stored))
    assert int(pool['count']) == count
  assert count == 3


def test_per_network_clipping_follows_the_official_order():
  grads = {'shared': jnp.array([3.0, 4.0]), 'a_to_b': jnp.array([0.0]),
           'b_to_a': jnp.array([12.0])}
  clipped, norm = cstpp.clip_generator_grads(grads, max_norm=2.0,
                                                 mode='per_network')
  assert float(norm) == pytest.approx(5.0)
  # G_AB: norm 5 -> scale 2/5: shared (1.2, 1.6). G_BA: norm
  # sqrt(1.2^2 + 1.6^2 + 12^2) = sqrt(148) -> scale 2/sqrt(148).
  scale = 2.0 / np.sqrt(148.0)
  np.testing.assert_allclose(clipped['shared'],
                             np.array([1.2, 1.6]) * scale, rtol=1e-5)
  np.testing.assert_allclose(clipped['b_to_a'], [12 * scale], rtol=1e-5)
  union, _ = cstpp.clip_generator_grads(grads, max_norm=2.0,
                                            mode='union')
  np.testing.assert_allclose(union['b_to_a'], [12 * 2 / 13], rtol=1e-5)


def test_flat_adam_updates_equal_the_per_tensor_ones():
  # optim.flatten changes the optimiser state's layout, not the update.
  rng = np.random.default_rng(3)
  params = {'conv': {'kernel': rng.normal(size=(3, 3, 4, 8)),
                     'bias': rng.normal(size=(8,))},
            'dense': rng.normal(size=(5, 2))}
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  config = CONFIGS.get_config('quick')
  results = {}
  for flatten in (True, False):
    config.optim.flatten = flatten
    tx = cstpp_config.adam(2e-4, config)
    p, state = params, tx.init(params)
    for i in range(3):
      grads = jax.tree.map(lambda x, i=i: jnp.cos(x * (i + 1)), p)
      updates, state = jax.jit(tx.update)(grads, state, p)
      p = optax.apply_updates(p, updates)
    results[flatten] = p
    leaves = jax.tree.leaves(state)
    assert (max(x.ndim for x in leaves) == 1) == flatten
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                       atol=1e-9),
               results[True], results[False])
  # The config keeps it a bool (ml_collections refuses another type); a
  # config without the key (written before it) means True.
  with pytest.raises(TypeError, match="field 'flatten'"):
    config.optim.flatten = 'yes'


def _one_step(config):
  """init + one pmapped (G, D) iteration on 4 devices."""
  method = method_lib.get_method('cycle_gan')
  state = method.init(config, jax.random.PRNGKey(0))
  steps = method.steps(config)
  assert [s.__name__ for s in steps] == ['generator_step',
                                         'discriminator_step']
  batch = method.make_data(config).batch(0)
  devices = helpers.four_devices()

  def iteration(state, batch, rng):
    state, g_metrics = steps[0](state, batch, rng)
    state, d_metrics = steps[1](state, batch, jax.random.fold_in(rng, 1))
    return state, g_metrics, d_metrics

  new, g_metrics, d_metrics = helpers.pmap_step(iteration, state, batch,
                                                devices=devices)
  return state, batch, new, g_metrics, d_metrics


@pytest.fixture(scope='module')
def quick_step(dataset):
  config = _small('quick', dataset)
  return (config,) + _one_step(config)


def _check_step(state, new, g_metrics, d_metrics, *, sharing):
  g_metrics = jax.tree.map(np.asarray, g_metrics)
  d_metrics = jax.tree.map(np.asarray, d_metrics)
  for metrics in (g_metrics, d_metrics):
    for key, value in metrics.items():
      assert np.all(np.isfinite(value)), key
      np.testing.assert_allclose(value, value[0], rtol=1e-5, err_msg=key)
  np.testing.assert_allclose(
      g_metrics['loss'][0], 10 * g_metrics['loss_cycle'][0] +
      5 * g_metrics['loss_identity'][0] + g_metrics['loss_gan'][0],
      rtol=1e-5)
  np.testing.assert_allclose(
      d_metrics['loss'][0], d_metrics['loss_d_a'][0] +
      d_metrics['loss_d_b'][0], rtol=1e-5)
  # Replicas agree on every state entry (pool, statistics, parameters).
  for leaf in jax.tree.leaves(new):
    np.testing.assert_array_equal(np.asarray(leaf), np.asarray(leaf)[:1]
                                  .repeat(4, 0))
  host = helpers.unreplicate(new)
  generator = host['params']['generator']
  assert set(generator) == {'shared', 'a_to_b', 'b_to_a'}
  own = jax.tree.leaves(generator['a_to_b'])
  assert own and (sharing == 'none') == (not generator['shared'])
  assert int(host['pool']['a']['count']) == 3  # 4 fakes, a pool of 3
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                       host['params']['discriminator'],
                       state['params']['discriminator'])
  assert all(v > 0 for v in jax.tree.leaves(moved))
  stats_moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                             host['batch_stats'], state['batch_stats'])
  assert max(jax.tree.leaves(stats_moved)) > 0
  return host


def test_one_step_quick(quick_step):
  config, state, _, new, g_metrics, d_metrics = quick_step
  _check_step(state, new, g_metrics, d_metrics, sharing='code')


def test_one_step_paper_with_the_other_options(dataset):
  # The paper variant with every alternative reading switched on: the
  # paper's sharing (only BN), CycleGAN's PatchGAN, the official term
  # bug, clipping over the union, per-device BN, 8-bit inputs, and the
  # 3-channel (10-term) generator.
  config = _small('', dataset)
  config.model.update(sharing='paper', discriminator='patchgan',
                      in_channels=3, sync_batch_norm=False)
  config.optim.clip = 'union'
  config.data.quantize_8bit = True
  state, _, new, g_metrics, d_metrics = _one_step(config)
  host = _check_step(state, new, g_metrics, d_metrics, sharing='paper')
  assert host['pool']['a']['images'].shape == (3, 32, 32, 3)
  head = host['params']['generator']['shared']['head']['fc2']['kernel']
  assert head.shape == (16, 30)  # shared head, 3 channels x 10 terms
  config = _small('', dataset)
  config.model.kernel = 'cstpp14_code'
  config.model.sharing = 'none'
  state = cstpp.init(config, jax.random.PRNGKey(0))
  assert not state['params']['generator']['shared']


def test_pool_and_state_survive_a_checkpoint(quick_step, tmp_path):
  config, _, _, new, _, _ = quick_step
  host = helpers.unreplicate(new)
  assert np.abs(host['pool']['b']['images']).max() > 0
  with checkpoint_lib.Checkpointer(tmp_path / 'ckpt',
                                   async_save=False) as ckpt:
    assert ckpt.save(1, host)
    template = jax.tree.map(np.zeros_like, host)
    restored, _ = ckpt.restore(template)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(host),
                          jax.tree.leaves(restored)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  assert int(restored['pool']['b']['count']) == 3


def test_evaluation_tables(quick_step, dataset):
  config, _, batch, new, _, _ = quick_step
  host = helpers.unreplicate(new)
  workdir = dataset.parent / 'eval-cstpp'
  scalars = cstpp.evaluate(config, host, workdir=workdir)
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_test_pairs'] == 2 and results['calibration'] == 'charts'
  for tag in ('a_to_b', 'b_to_a'):
    rows = results['directions'][tag]['rows']
    assert set(rows) == {'identity', 'global_3x3', 'global_3x3_pooled',
                         'oracle_3x3', 'ours'}
    # B is a 3x3 matrix of A: the calibrations are exact (clipping aside).
    assert rows['global_3x3_pooled']['psnr'] > 60
    assert rows['oracle_3x3']['psnr'] > 60
    assert rows['oracle_3x3']['delta_e2000'] < 0.01
    assert rows['identity']['delta_e2000'] > 1
    assert rows['global_3x3_pooled']['kl'] < rows['identity']['kl']
    assert rows['global_3x3']['repeats'] == 2
    for k in ('psnr', 'ssim', 'mae', 'delta_e2000', 'kl', 'chart_mae'):
      assert np.isfinite(scalars[f'{tag}/ours/{k}']), k
  table = (workdir / 'results.md').read_text()
  assert 'CSTPP (ours)' in table and 'cam-b -> cam-a' in table
  images = cstpp.sample_images(config, host, batch)
  assert images['a_to_b'].shape == (4, 32, 32, 3)


def test_cross_camera_adaptation_runs_through_the_method(quick_step, dataset,
                                                         tmp_path):
  config, _, _, new, _, _ = quick_step
  cstpp_workdir = tmp_path / 'cstpp'
  with checkpoint_lib.Checkpointer(cstpp_workdir / 'checkpoints',
                                   async_save=False) as ckpt:
    assert ckpt.save(1, helpers.unreplicate(new))
  adapt = load_config_module(ADAPT_CONFIG_PATH).get_config('quick')
  assert adapt.method == 'cstpp_adapt' and adapt.train.num_steps == 300
  adapt.model, adapt.data = config.model, config.data
  adapt.eval.num_grid_images = 1
  method = method_lib.get_method('cstpp_adapt')
  with pytest.raises(ValueError, match='adapt.cstpp_workdir'):
    method.init(adapt, jax.random.PRNGKey(0))
  adapt.adapt.update(cstpp_workdir=str(cstpp_workdir), patch_size=16,
                     batch_size=4,
                     isp_options='{"features": 4, "levels": 1, '
                                 '"out_channels": 3}')
  state = method.init(adapt, jax.random.PRNGKey(0))
  plain = state['params']['a']['plain']
  for x in ('a', 'b'):  # every ISP starts from the same draw
    for t in ('plain', 'augmented'):
      jax.tree.map(np.testing.assert_array_equal, state['params'][x][t],
                   plain)
  batch = next(iter(method.make_data(adapt)))
  assert batch['a_raw'].shape == batch['a_mapped'].shape == (4, 16, 16, 4)
  assert batch['b_srgb'].shape == (4, 16, 16, 3)  # packed resolution
  # The plain and augmented ISPs of a camera see the same patches.
  assert not np.array_equal(batch['a_raw'], batch['a_mapped'])
  new_state, metrics = helpers.pmap_step(method.steps(adapt)[0], state, batch,
                                         devices=jax.local_devices()[:2])
  metrics = jax.tree.map(lambda x: np.asarray(x)[0], metrics)
  np.testing.assert_allclose(metrics['loss'], sum(
      metrics[f'l1_{x}_{t}'] for x in 'ab' for t in ('plain', 'augmented')),
                             rtol=1e-5)
  host = helpers.unreplicate(new_state)
  workdir = tmp_path / 'adapt'
  scalars = method.evaluate(adapt, host, workdir=workdir)
  results = json.loads((workdir / 'results.json').read_text())
  # The step functions ran outside the loop, which counts the steps.
  assert results['num_test_pairs'] == 2 and results['steps'] == 0
  assert results['cstpp_step'] == int(np.asarray(new['step'])[0])
  title = 'ISP of cam-b, deployed on cam-a'
  rows = results['settings'][title]
  assert set(rows) == {'same camera (upper bound)', 'no mapping',
                       'adaptation (test time)', 'augmentation (train time)',
                       'final train L1'}
  assert rows['final train L1']['plain'] == pytest.approx(
      float(metrics['l1_b_plain']))
  for key, value in scalars.items():
    assert np.isfinite(value), key
  assert title in (workdir / 'results.md').read_text()
  assert (workdir / 'grid_isp_a.png').is_file()


def test_resnet_generator_layout_in_the_method():
  # CycleGAN's resnet_9blocks, 4 -> 4 (packed raw), ngf 64, layer by layer
  # (k * k * in * out + out, instance norm without parameters):
  #   c7s1-64      7*7*4*64 + 64     =     12,608
  #   d128         3*3*64*128 + 128  =     73,856
  #   d256         3*3*128*256 + 256 =    295,168
  #   9 x R256     18 * (3*3*256*256 + 256) = 10,621,440
  #   u128 (T)     3*3*256*128 + 128 =    295,040
  #   u64 (T)      3*3*128*64 + 64   =     73,792
  #   c7s1-4       7*7*64*4 + 4      =     12,548
  #   total                          = 11,384,452 per direction
  # (the 3 -> 3 RGB network is 11,378,179: tests/models).
  config = CONFIGS.get_config()
  config.model.update(generator='resnet', sharing='none')
  shapes = jax.eval_shape(lambda: cstpp.init(config, jax.random.PRNGKey(0)))
  generator = shapes['params']['generator']
  assert generator['shared'] == {}
  for tag in ('a_to_b', 'b_to_a'):
    count = sum(int(np.prod(x.shape))
                for x in jax.tree.leaves(generator[tag]))
    assert count == 11_384_452
    assert generator[tag]['up1']['kernel'].shape == (3, 3, 256, 128)
    assert shapes['batch_stats'][tag] == {}


def test_one_step_with_the_resnet_generator(dataset, tmp_path):
  config = _small('quick', dataset)
  config.model.update(generator='resnet', sharing='none', resnet_features=4,
                      resnet_blocks=1)
  state, batch, new, g_metrics, d_metrics = _one_step(config)
  for metrics in (g_metrics, d_metrics):
    for key, value in jax.tree.map(np.asarray, metrics).items():
      assert np.all(np.isfinite(value)), key
  g0 = jax.tree.map(lambda x: float(np.asarray(x)[0]), g_metrics)
  assert g0['loss'] == pytest.approx(10 * g0['loss_cycle'] + 5 *
                                     g0['loss_identity'] + g0['loss_gan'],
                                     rel=1e-5)
  host = helpers.unreplicate(new)
  assert host['batch_stats'] == {'a_to_b': {}, 'b_to_a': {}}
  # Both independent generators moved (Adam's first step moves every
  # parameter with a nonzero gradient).
  for tag in ('a_to_b', 'b_to_a'):
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                         host['params']['generator'][tag],
                         state['params']['generator'][tag])
    assert max(jax.tree.leaves(moved)) > 0, tag
  with checkpoint_lib.Checkpointer(tmp_path / 'checkpoints',
                                   async_save=False) as ckpt:
    assert ckpt.save(1, host)
  restored = cstpp.restore_state(config, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, restored['params'],
               host['params'])
  # Evaluation on the full 32 x 32 test images and a non-multiple-of-4 size.
  scalars = cstpp.evaluate(config, restored, workdir=tmp_path / 'eval')
  assert all(np.isfinite(v) for v in scalars.values())
  table = (tmp_path / 'eval' / 'results.md').read_text()
  assert cstpp.evaluation.RESNET_LABEL in table
  model = cstpp.generator_model(config)
  out = cstpp.translate(model, *cstpp.direction_variables(restored, 'a_to_b'),
                        np.full((10, 13, 4), 0.3, np.float32))
  assert out.shape == (10, 13, 4) and 0 <= out.min() <= out.max() <= 1
  with pytest.raises(ValueError, match='downsample=2'):
    cstpp.generator_model(config, downsample=2)
