"""The kernel-prediction ISP method: configs, data, one step, evaluation.

The tiny dataset is written here with numpy in the `PairFolder` layout:
smooth packed raw with greens equal, and as target the classic pipeline's
rendering of it (`rawjax.isp.process` with the stored metadata) plus a
known offset, so the evaluation's `process` row has a PSNR fixed in advance.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from rawjax.data.datasets import DatasetLayoutError
from rawjax.isp import cfa, pipeline as isp_pipeline
from rawjax.isp.metadata import RawMetadata
from rawjax.data.datasets import PairFolder
from rawjax.methods import kpn as kpn_isp
from rawjax.train import method as method_lib
from rawjax.train.config import load_config_module
from train_methods import helpers

CONFIG_PATH = pathlib.Path(__file__).resolve().parents[2] / 'configs' / (
    'kpn_isp.py')
SIZE = 16  # packed
PATTERN = 'GRBG'
WB = np.array([1.8, 1.0, 1.4], np.float32)
CCM = np.array([[1.5, -0.4, -0.1], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]],
               np.float32)
OFFSET = 0.02  # target = process(raw) + OFFSET: process PSNR = 20 log10(50)


CONFIGS = load_config_module(CONFIG_PATH)


def _raw(rng):
  return helpers.pack_rgb(helpers.smooth_rgb(
      rng, SIZE, base=(0.1, 0.3), amplitude=0.15, clip=(0.02, 0.6)))


@jax.jit
def _process_jit(raw):
  metadata = RawMetadata.create(pattern=PATTERN, black_level=0.0,
                                white_level=1.0, wb_gains=WB,
                                cam_to_srgb=CCM)
  return isp_pipeline.process(cfa.unpack(raw, pattern=PATTERN), metadata)


def _process(raw):
  return np.asarray(_process_jit(jnp.asarray(raw, jnp.float32)))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp('kpn_pairs')
  rng = np.random.default_rng(0)
  for split, count in (('train', 4), ('test', 3)):
    (root / split).mkdir()
    for i in range(count):
      raw = _raw(rng)
      srgb = np.clip(_process(raw), 0, 1 - OFFSET) + OFFSET
      arrays = {'raw': raw, 'srgb': srgb.astype(np.float32), 'wb_gains': WB}
      if split == 'test':
        arrays.update(pattern=PATTERN, cam_to_srgb=CCM)
      np.savez(root / split / f'pair-{i}.npz', **arrays)
  return root


def _small(variant, root):
  config = helpers.tiny_config(CONFIGS, variant, root, grid_images=2,
                               patch_size=8, batch_size=4)
  config.model.update(features=4, levels=1, kernel_size=3)
  config.optim.warmup_steps = 0  # the first step moves every parameter
  return config


def test_configs_build_and_reject_typos():
  paper, quick = helpers.paper_and_quick(CONFIGS, 'kpn_isp')
  assert paper.model.name == quick.model.name == 'kpn'
  assert paper.data.patch_size == 64  # the dataset's 128 x 128 patches
  assert paper.loss.l1 == 1.0 and paper.loss.ssim == 0.0
  assert quick.data.synthetic.preset == 'raw2srgb'
  assert quick.data.white_balance and not paper.data.white_balance
  assert paper.model.kernel_size % 2 == quick.model.kernel_size % 2 == 1
  helpers.assert_configs_reject_typos(
      CONFIGS, (paper, quick),
      {'data.patch_sizee': 64, 'train.num_step': 5})


def test_bad_settings_are_named(dataset):
  config = _small('quick', dataset)
  config.data.patch_size = 5
  with pytest.raises(ValueError, match='config.data.patch_size=5'):
    kpn_isp.init(config, jax.random.PRNGKey(0))
  config = _small('quick', dataset)
  config.loss.update(l1=0.0, ssim=0.0)
  with pytest.raises(ValueError, match='nothing to train'):
    kpn_isp.make_steps(config)
  config = _small('quick', dataset)
  config.model = ml_collections.ConfigDict(dict(name='unet', features=4,
                                                levels=2))
  with pytest.raises(ValueError, match="kernel-prediction ISP"):
    kpn_isp.make_steps(config)
  with pytest.raises(ValueError, match="split 'train'"):
    kpn_isp.make_data(_small('quick', dataset), split='test')


def test_pair_folder_layout_errors(tmp_path, dataset):
  with pytest.raises(DatasetLayoutError, match='train pairs'):
    PairFolder(tmp_path, split='train')
  (tmp_path / 'train').mkdir()
  np.savez(tmp_path / 'train' / 'bad.npz', raw=np.zeros((4, 4, 4)),
           srgb=np.zeros((4, 4, 3)))
  np.savez(tmp_path / 'train' / 'nosrgb.npz', raw=np.zeros((4, 4, 4)))
  folder = PairFolder(tmp_path, split='train')
  with pytest.raises(DatasetLayoutError, match=r"'srgb' must be \(2h, 2w"):
    folder.load('bad')
  with pytest.raises(DatasetLayoutError, match=r"\['srgb'\] not in"):
    folder.load('nosrgb')
  test = PairFolder(dataset, split='test')
  assert test.metadata('pair-0').pattern == PATTERN
  assert PairFolder(dataset, split='train').metadata('pair-0') is None
  # white_balance: the as-shot gains (minimum 1) times the raw, clipped at 1.
  balanced = PairFolder(dataset, split='test', white_balance=True)
  raw = test.load('pair-0')['raw']
  gains = WB / WB.min()
  np.testing.assert_allclose(
      balanced.load('pair-0')['raw'],
      np.minimum(raw * gains[[0, 1, 1, 2]], 1.0), rtol=1e-6)
  np.savez(tmp_path / 'train' / 'nowb.npz', raw=np.zeros((4, 4, 4)),
           srgb=np.zeros((8, 8, 3)))
  with pytest.raises(DatasetLayoutError, match="no 'wb_gains'"):
    PairFolder(tmp_path, split='train', white_balance=True).load(
        'nowb')


def test_train_data_is_aligned_and_resumable(dataset):
  config = _small('quick', dataset)
  config.data.white_balance = False  # the raw as stored, to re-render it
  data = kpn_isp.make_data(config)
  batch = helpers.merge_devices(data.batch(2))
  assert batch['raw'].shape == (4, 8, 8, 4)
  assert batch['srgb'].shape == (4, 16, 16, 3)
  # Random crops keep the pairs aligned: the target is the (local, 3 x 3
  # support) bilinear process() rendering of the whole raw, so rendering the
  # cropped raw gives the cropped target away from a 2-pixel border.
  config.data.augment = ()
  crops = helpers.merge_devices(kpn_isp.make_data(config).batch(1))
  for raw, srgb in zip(crops['raw'], crops['srgb']):
    rendered = np.clip(_process(raw), 0, 1 - OFFSET) + OFFSET
    np.testing.assert_allclose(rendered[2:-2, 2:-2], srgb[2:-2, 2:-2],
                               atol=1e-5)
  with data.iterate(start_step=2) as resumed:
    again = helpers.merge_devices(next(resumed))
  for key in batch:
    np.testing.assert_array_equal(again[key], batch[key])


@pytest.mark.parametrize('variant', ['', 'quick'])
def test_one_step_per_config(dataset, variant):
  config = _small(variant, dataset)
  if variant == '':
    config.loss.ssim = 0.1  # the optional SSIM term
  method = method_lib.get_method('kpn_isp')
  state = method.init(config, jax.random.PRNGKey(0))
  assert set(state) == {'step', 'rng', 'params', 'opt_state'}
  steps = method.steps(config)
  batch = method.make_data(config).batch(0)  # (1 device, 4, ...)
  new, metrics = helpers.pmap_step(steps[0], state,
                                   helpers.merge_devices(batch),
                                   devices=helpers.four_devices())
  keys = ['loss', 'loss_l1', 'psnr', 'grad_norm', 'update_norm']
  keys += ['loss_ssim'] if variant == '' else []
  metrics = helpers.assert_replicas_agree(metrics, keys, rtol=1e-6)
  if variant == '':
    np.testing.assert_allclose(
        metrics['loss'][0],
        metrics['loss_l1'][0] + 0.1 * (1 - metrics['loss_ssim'][0]),
        rtol=1e-5)
  else:
    np.testing.assert_allclose(metrics['loss'], metrics['loss_l1'])
  helpers.assert_every_parameter_moved(new, state)
  if variant == '':
    return
  host = helpers.unreplicate(new)
  workdir = dataset.parent / 'eval-quick'
  scalars = method.evaluate(config, host, workdir=workdir)
  _check_evaluation(scalars, workdir, dataset, config, host)
  images = method.sample_images(config, host, batch)
  assert set(images) == {'raw', 'kpn', 'target'}
  for value in images.values():
    assert value.shape == (4, 16, 16, 3)
    assert 0 <= value.min() and value.max() <= 1
  # Any input size: padded to the U-Net's multiple and cropped back.
  model = kpn_isp.kpn_model(config)
  raw = np.random.default_rng(2).uniform(0, 1, (9, 6, 4)).astype(np.float32)
  out = kpn_isp.render(model, jax.tree.map(jnp.asarray, host['params']), raw)
  assert out.shape == (18, 12, 3) and 0 <= out.min() and out.max() <= 1
  with pytest.raises(ValueError, match=r'expected \(h, w, 4\)'):
    kpn_isp.render(model, host['params'], raw[..., :3])


def _check_evaluation(scalars, workdir, root, config, state):
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_test_images'] == 3 == results['num_with_metadata']
  # process() against its own rendering + OFFSET (where not clipped).
  expected = []
  for i in range(3):
    with np.load(root / 'test' / f'pair-{i}.npz') as f:
      expected.append(peak_signal_noise_ratio(
          f['srgb'], np.clip(_process(f['raw']), 0, 1), data_range=1.0))
  np.testing.assert_allclose(scalars['process/psnr'], np.mean(expected),
                             rtol=1e-4)
  assert abs(np.mean(expected) - 20 * np.log10(1 / OFFSET)) < 0.5
  # The KPN row: skimage PSNR of the rendered outputs.
  model = kpn_isp.kpn_model(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  kpn_psnr = []
  for i in range(3):
    with np.load(root / 'test' / f'pair-{i}.npz') as f:
      raw = f['raw']
      if config.data.white_balance:  # the quick config's network input
        raw = np.minimum(raw * (WB / WB.min())[[0, 1, 1, 2]], 1.0)
      out = kpn_isp.render(model, params, raw)
      assert out.shape == (2 * SIZE, 2 * SIZE, 3)
      kpn_psnr.append(peak_signal_noise_ratio(f['srgb'], out, data_range=1.0))
  np.testing.assert_allclose(scalars['kpn/psnr'], np.mean(kpn_psnr),
                             rtol=1e-4)
  for name in ('kpn', 'process'):
    row = results['rows'][name]
    assert 0 < row['ssim'] <= 1 and row['delta_e2000'] >= 0
  assert scalars['process/delta_e2000'] < scalars['kpn/delta_e2000']
  table = (workdir / 'results.md').read_text()
  assert 'rawjax.isp.process' in table and 'KPN' in table
  from rawjax.io import read_image  # pylint: disable=g-import-not-at-top
  grid = read_image(workdir / 'grid.png')
  # Two rows (eval.num_grid_images) of six images, under a band of column
  # titles and beside their row labels.
  tile = 2 * SIZE + 2
  assert grid.shape[0] > 2 * tile + 2 and grid.shape[1] > 6 * tile + 2


def _fake_raw2raw(out, *, num, **kwargs):
  """What `synthetic.write_dataset` writes, reduced to what the export reads.

  dataset.json (cameras, splits), raw-rggb/<file>.mat ('raw_rggb') and
  meta/<file>.npz (srgb uint8, pattern, wb_gains, cam_to_srgb); the real
  writer (a few seconds of compilation) is exercised by the quick run.
  """
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  del kwargs
  rng = np.random.default_rng(num)
  cameras = ('cam-a', 'cam-b')
  splits = {'anchor': [{'file': 'scene-0_A'}], 'test': [{'file': 'scene-1_B'}],
            'unpaired': {'cam-a': ['scene-2_A', 'scene-4_A'],
                         'cam-b': ['scene-3_B']}}

  def write(folder, raw_dir, name):
    for sub in (raw_dir, 'meta'):
      (folder / sub).mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(folder / raw_dir / f'{name}.mat',
                     {'raw_rggb': rng.uniform(0, 1, (4, 6, 4))})
    np.savez(folder / 'meta' / f'{name}.npz',
             srgb=rng.integers(0, 256, (8, 12, 3), dtype=np.uint8),
             pattern='RGGB', wb_gains=WB, cam_to_srgb=CCM)

  for camera in cameras:
    write(out / 'paired' / camera, 'anchor-raw-rggb', 'scene-0_A')
    write(out / 'paired' / camera, 'raw-rggb', 'scene-1_B')
    for name in splits['unpaired'][camera]:
      write(out / 'unpaired' / camera, 'raw-rggb', name)
  (out / 'dataset.json').write_text(json.dumps(
      {'cameras': [{'slug': c} for c in cameras], 'splits': splits}))


def test_synthetic_export(tmp_path, monkeypatch):
  """The quick config's data: simulated once, exported to PairFolder."""
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  calls = []

  def fake_write(out, **kwargs):
    calls.append(kwargs)
    _fake_raw2raw(out, **kwargs)

  monkeypatch.setattr(synthetic, 'write_dataset', fake_write)
  config = ml_collections.ConfigDict(CONFIGS.get_config('quick').to_dict())
  config.data.cache_dir = str(tmp_path)
  root = kpn_isp.dataset_root(config)
  assert calls[0]['preset'] == 'raw2srgb' and calls[0]['num'] == 240
  assert root.name == 'kpn-raw2raw-raw2srgb-n240-s0-256x256-first'
  train = PairFolder(root, split='train')
  test = PairFolder(root, split='test')
  assert train.keys == ['scene-0_A', 'scene-2_A', 'scene-4_A']  # cam-a's
  assert test.keys == ['scene-1_B']
  sample = test.load('scene-1_B')
  assert sample['raw'].shape == (4, 6, 4) and sample['srgb'].shape == (8, 12,
                                                                       3)
  assert 0 <= sample['srgb'].min() and sample['srgb'].max() <= 1
  assert test.metadata('scene-1_B').pattern == 'RGGB'
  np.testing.assert_allclose(
      PairFolder(root, split='train', white_balance=True).load(
          'scene-2_A')['raw'],
      np.minimum(train.load('scene-2_A')['raw'] *
                 (WB / WB.min())[[0, 1, 1, 2]], 1), rtol=1e-6)
  assert kpn_isp.dataset_root(config) == root and len(calls) == 1
  config.data.camera = 'cam-c'
  with pytest.raises(ValueError, match="camera 'cam-c' is not in"):
    kpn_isp.dataset_root(config)
