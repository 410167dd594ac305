"""The LiteISPNet + GCM method: configs, data, one step per variant, evaluation.

The data is a tiny ZRR-layout dataset written here with numpy: the DSLR
target is a fixed colour transform of the raw's RGB shifted by one pixel, so
the aligner has something to find, and the true aligned target is stored
beside it.
"""

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

from rawjax import convert, models
from rawjax.io import write_image
from rawjax.data.datasets import zrr
from rawjax.data.simulated import zrr as zrr_simulation
from rawjax.methods import liteisp
from rawjax.methods.liteisp import inference
from rawjax.train import method as method_lib
from rawjax.train.config import load_config_module
from train_methods import helpers

CONFIG_PATH = pathlib.Path(__file__).resolve().parents[2] / 'configs' / (
    'liteisp_zrr.py')
SIZE = 32  # mosaic side


CONFIGS = load_config_module(CONFIG_PATH)


def _scene(rng):
  return helpers.smooth_rgb(rng, SIZE, base=(0.2, 0.5), amplitude=0.3,
                            clip=(0.02, 0.95), phase=True, margin=2)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp('zrr')
  rng = np.random.default_rng(0)
  for split, count in (('train', 4), ('test', 2)):
    for sub in ('huawei_raw', 'canon', 'canon_aligned'):
      (root / split / sub).mkdir(parents=True)
    for i in range(count):
      rgb = _scene(rng)
      linear = rgb[1:-1, 1:-1]
      mosaic = np.zeros((SIZE, SIZE))
      mosaic[0::2, 0::2] = linear[0::2, 0::2, 0]
      mosaic[0::2, 1::2] = linear[0::2, 1::2, 1]
      mosaic[1::2, 0::2] = linear[1::2, 0::2, 1]
      mosaic[1::2, 1::2] = linear[1::2, 1::2, 2]
      counts = np.round(mosaic * 957 + 63).astype(np.uint16)
      write_image(root / split / 'huawei_raw' / f'{i}.png', counts,
                  bit_depth=16)
      dslr = np.clip(rgb ** (1 / 2.2) * 0.9, 0, 1)
      shifted = (dslr[1:-1, 2:] * 255).round().astype(np.uint8)
      Image.fromarray(shifted).save(root / split / 'canon' / f'{i}.jpg',
                                    quality=95)
      write_image(root / split / 'canon_aligned' / f'{i}.png',
                  dslr[1:-1, 1:-1], bit_depth=8)
  return root


@pytest.fixture(scope='module')
def vgg_weights(tmp_path_factory):
  net = models.VGG19(layer='relu1_1')
  params = jax.jit(net.init)(jax.random.PRNGKey(0),
                             jnp.zeros((1, 8, 8, 3)))['params']
  return str(convert.save_params(
      tmp_path_factory.mktemp('vgg') / 'vgg.npz', params))


def _small(variant, root, vgg_path=''):
  config = helpers.tiny_config(CONFIGS, variant, root, grid_images=1,
                               batch_size=4)
  config.model.update(channels=(4, 8, 8), num_blocks=1, reduction=2)
  config.gcm.update(guide_features=4, features=8)
  config.gan.features = 4
  config.align.options = {'levels': 2, 'iterations': 1}
  config.loss.update(vgg_weights=vgg_path, vgg_layer='relu1_1')
  return config


def test_configs_build_and_reject_typos():
  paper, quick = helpers.paper_and_quick(CONFIGS, 'liteisp')
  assert (paper.optim.learning_rate, paper.optim.b1, paper.optim.b2) == (
      1e-4, 0.9, 0.999)
  assert (paper.optim.decay_epochs, paper.optim.decay_factor,
          paper.optim.epochs) == (40, 0.5, 80)
  assert paper.data.batch_size == 16 and paper.data.steps_per_epoch == 2927
  assert paper.train.num_steps == 80 * 2927
  assert (paper.loss.gcm, paper.loss.l1, paper.loss.vgg, paper.loss.ssim) == (
      1.0, 1.0, 1.0, 0.15)
  assert paper.gan.weight == 0.01 and paper.align.method == 'pyramid'
  assert paper.align.padding == 'zeros' and quick.align.padding == 'border'
  assert tuple(paper.model.channels) == (64, 128, 128)
  helpers.assert_configs_reject_typos(CONFIGS, (paper, quick),
                                      {'data.batch_sise': 4})


def test_bad_settings_are_named(dataset):
  config = _small('', dataset)
  with pytest.raises(ValueError, match=r'config.loss.vgg_weights=PATH.*'
                     r'python -m rawjax.convert vgg19'):
    liteisp.init(config, jax.random.PRNGKey(0))
  config = _small('quick', dataset)
  config.align.method = 'raft'
  with pytest.raises(ValueError, match='config.align.method'):
    liteisp.make_steps(config)
  config = _small('quick', dataset)
  config.align.method = 'pwcnet'
  with pytest.raises(ValueError, match='config.align.weights'):
    liteisp.make_steps(config)
  config = _small('quick', dataset)
  config.align.padding = 'reflect'
  with pytest.raises(ValueError, match='config.align.padding'):
    liteisp.make_steps(config)
  with pytest.raises(ValueError, match="split 'train'"):
    liteisp.make_data(_small('quick', dataset), split='test')


def test_learning_rate_halves_every_40_epochs():
  config = CONFIGS.get_config()
  schedule = liteisp.learning_rate_schedule(config, epoch_steps=10)
  assert [float(schedule(s)) for s in (0, 399, 400, 799, 800)] == pytest.approx(
      [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5])


@pytest.mark.parametrize('variant', ['', 'quick'])
def test_one_step_per_config(dataset, vgg_weights, variant, tmp_path):
  config = _small(variant, dataset, vgg_weights)
  if variant == '':
    config.gan.enabled = True  # LiteISPGAN: D step + VGG term
    # The flow estimator runs in the 'quick' case; here the cheaper
    # no-alignment ablation keeps the GAN program small.
    config.align.method = 'none'
  method = method_lib.get_method('liteisp')
  state = method.init(config, jax.random.PRNGKey(0))
  expected = {'step', 'rng', 'params', 'opt_state', 'frozen'}
  if variant == '':
    expected.add('batch_stats')
    assert set(state['params']) == {'isp', 'gcm', 'disc'}
    assert 'vgg' in state['frozen']
  assert set(state) == expected
  data = method.make_data(config, split='train')
  batch = helpers.unreplicate(data.batch(0))
  assert batch['raw'].shape == (4, 16, 16, 4)
  assert batch['rgb'].shape == (4, 32, 32, 3)
  assert batch['coord'].shape == (4, 32, 32, 2)
  steps = method.steps(config)
  new, metrics = helpers.pmap_step(steps[0], state, batch,
                                   devices=helpers.four_devices())
  keys = ['loss', 'loss_gcm', 'loss_l1', 'loss_ssim', 'mask_fraction',
          'psnr_isp', 'isp_grad_norm', 'gcm_update_norm']
  if variant == '':
    keys += ['loss_vgg', 'loss_adv', 'loss_disc', 'disc_grad_norm']
  metrics = helpers.assert_replicas_agree(metrics, keys, rtol=1e-5)
  terms = metrics['loss_gcm'] + metrics['loss_l1'] + 0.15 * metrics[
      'loss_ssim'] + (metrics['loss_vgg'] + 0.01 * metrics['loss_adv']
                      if variant == '' else 0)
  np.testing.assert_allclose(metrics['loss'], terms, rtol=1e-5)
  assert 0.5 < metrics['mask_fraction'][0] <= 1.0
  changed = jax.tree.map(lambda a, b: float(np.abs(a[0] - b).max()) > 0,
                         new['params'], state['params'])
  # Every network is updated (a tiny channel-attention layer may have all
  # of its 2-3 hidden ReLUs dead at initialisation: zero gradient there).
  for name, leaves in changed.items():
    flags = jax.tree.leaves(leaves)
    assert np.mean(flags) > 0.9, name
  if variant == '':
    return
  host = helpers.unreplicate(new)
  scalars = method.evaluate(config, host, workdir=tmp_path)
  for setting in ('original', 'align_raw', 'align_result', 'true_aligned'):
    for metric in ('psnr', 'ssim'):
      assert np.isfinite(scalars[f'{setting}/{metric}'])
  assert (tmp_path / 'results.md').read_text().count('|') > 10
  # One row (eval.num_grid_images) of five 32 x 32 images, under a band of
  # column titles and beside its row label.
  from rawjax.io import read_image  # pylint: disable=g-import-not-at-top
  grid = read_image(tmp_path / 'grid.png')
  assert grid.shape[0] > 32 + 4 and grid.shape[1] > 5 * (32 + 2) + 2
  images = method.sample_images(config, host, batch)
  assert images['output'].shape == (4, 32, 32, 3)


def test_alignment_recovers_the_known_shift(dataset):
  sample = zrr.ZRRDataset(dataset, split='test').load('0')
  target = jnp.asarray(sample['rgb'])[None]
  true = np.asarray(Image.open(dataset / 'test' / 'canon_aligned' / '0.png'),
                    np.float32)[None] / 255
  warped, mask = liteisp.align_target(jnp.asarray(true), target,
                                      method='pyramid')
  inside = np.asarray(mask[..., 0]) > 0
  # The target is the aligned image moved one pixel left: warping it back
  # brings it much closer (JPEG noise aside).
  before = np.abs(np.asarray(target) - true).mean()
  after = np.abs(np.asarray(warped) - true)[inside].mean()
  assert after < 0.5 * before
  none, ones = liteisp.align_target(true, target, method='none')
  np.testing.assert_array_equal(none, target)
  assert float(np.min(ones)) == 1.0
  # 'border' supervises every pixel: the same warp where the reference's
  # mask keeps it, the clamped edge where it does not.
  clamped, all_ones = liteisp.align_target(jnp.asarray(true), target,
                                           method='pyramid', padding='border')
  assert float(np.min(all_ones)) == 1.0 and not inside.all()
  np.testing.assert_allclose(np.asarray(clamped)[inside],
                             np.asarray(warped)[inside], atol=1e-6)
  assert np.abs(np.asarray(clamped) - true)[~inside].mean() < before


def test_training_warp_is_the_reference_backwarp(monkeypatch):
  # align_target with padding 'zeros' against the reference's own backwarp
  # (sniklaus' grid_sample, tests/torch_reference), which samples at
  # x + u W/(W-1): with ~20 px flows at 96 px the scaling moves taps by
  # 0.2 px, so the exact-displacement warp differs visibly.
  torch = pytest.importorskip('torch')
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from torch_reference import pwcnet_torch  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(11)
  h, w = 80, 96
  target = rng.random((1, h, w, 3), dtype=np.float32)
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
  flow = np.stack([20 * np.sin(ys / 17.0) + 3, -20 * np.cos(xs / 23.0)],
                  -1)[None].astype(np.float32)
  monkeypatch.setattr('rawjax.models.flow.estimate_flow',
                      lambda *a, **k: jnp.asarray(flow))
  with torch.no_grad():
    ref, ref_mask = pwcnet_torch.backwarp(
        torch.from_numpy(target.transpose(0, 3, 1, 2).copy()),
        torch.from_numpy(flow.transpose(0, 3, 1, 2).copy()),
        return_mask=True)
  ref = ref.numpy().transpose(0, 2, 3, 1)
  ref_mask = ref_mask.numpy().transpose(0, 2, 3, 1)
  align = jax.jit(lambda s, t: liteisp.align_target(s, t, method='pyramid'))
  warped, mask = align(target, target)
  np.testing.assert_array_equal(np.asarray(mask), ref_mask)
  np.testing.assert_allclose(np.asarray(warped), ref, atol=1e-5)
  assert 0.3 < ref_mask.mean() < 0.95
  exact, exact_mask = liteisp.align_target(target, target, method='pyramid',
                                           reference_scaling=False)
  assert np.abs(np.asarray(exact) - ref).max() > 0.05
  assert np.sum(np.asarray(exact_mask) != ref_mask) > 0
  # 'border' keeps the reference's sampling positions inside the mask.
  border, _ = liteisp.align_target(target, target, method='pyramid',
                                   padding='border')
  inside = ref_mask[..., 0] > 0
  np.testing.assert_allclose(np.asarray(border)[inside], ref[inside],
                             atol=1e-5)


def test_full_frame_tiling_matches_the_whole_frame():
  model = models.LiteISPNet(channels=(4, 8, 8), num_blocks=1, reduction=2)
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               jnp.zeros((1, 16, 16, 4)))['params']
  raw = np.random.default_rng(3).uniform(0, 1, (40, 24, 4)).astype(np.float32)
  # A frame no larger than the tile runs in one piece: the plain forward.
  whole = liteisp.process_full_frame(model, params, raw, tile=64, overlap=8)
  direct = inference.apply_fn(model)(
      params, raw[None], zrr.coordinate_map(40, 24)[None])[0]
  np.testing.assert_allclose(whole, direct, atol=1e-5)
  tiled = liteisp.process_full_frame(model, params, raw, tile=24, overlap=16)
  assert tiled.shape == (80, 48, 3)
  assert np.abs(tiled - direct).mean() < 0.05 * np.abs(direct).mean()


def test_synthetic_data_is_generated_once(tmp_path, monkeypatch):
  calls = []

  def fake_sample(root, folder, key, seed, index, **kwargs):
    calls.append((folder, key, index, kwargs))

  monkeypatch.setattr(zrr_simulation, 'write_zrr_sample', fake_sample)
  config = ml_collections.ConfigDict(CONFIGS.get_config('quick').to_dict())
  config.data.cache_dir = str(tmp_path)
  root = liteisp.dataset_root(config)
  assert root.name == 'zrr-raw2srgb-n128+16-s0-128-shift3'
  assert len(calls) == 144 and calls[-1][:3] == ('test', 15, 143)
  assert calls[0][3]['margin'] >= 2 * 3.0 / 2
  assert liteisp.dataset_root(config) == root and len(calls) == 144
  flow = zrr_simulation.smooth_warp_flow(np.random.default_rng(0), 64, 64,
                                         max_shift=3.0)
  assert flow.shape == (64, 64, 2) and np.abs(flow).max() < 3.0
