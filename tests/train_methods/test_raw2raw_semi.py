"""The semi-supervised raw-to-raw method: configs, data, one step, evaluation.

The data is a tiny dataset in the raw2raw layout written here with numpy:
camera B sees exactly a 3x3 colour matrix of camera A's (R, G, B) (greens
equal), so the calibration baselines must recover it, and every anchor crop
of B must be that matrix applied to the same crop of A.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import io as scipy_io
from skimage.metrics import peak_signal_noise_ratio

from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.isp import polynomial
from rawjax.methods import raw2raw_semi
from rawjax.train import method as method_lib
from rawjax.train.config import load_config_module
from train_methods import helpers

CONFIG_PATH = pathlib.Path(__file__).resolve().parents[2] / 'configs' / (
    'raw2raw_semi.py')
CAMERAS = helpers.CAMERAS
SIZE = 32  # packed


CONFIGS = load_config_module(CONFIG_PATH)


def _scene(rng):
  """A smooth random scene for camera A, greens equal, in [0.02, 0.9]."""
  return helpers.pack_rgb(helpers.smooth_rgb(
      rng, SIZE, base=(0.05, 0.4), amplitude=(0.1, 0.4), clip=(0.02, 0.9),
      phase=True))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp('raw2raw')
  rng = np.random.default_rng(0)
  chart = np.array([[0, 0, 16, 16], [16, 16, 32, 40], [32, 0, 64, 24],
                    [40, 40, 64, 64]])  # mosaic pixels
  meta = {'wb_gains': np.array([2.0, 1.0, 1.5], np.float32),
          'cam_to_srgb': np.eye(3, dtype=np.float32),
          'shot_noise': np.float64(1e-4), 'read_noise': np.float64(1e-6)}

  def paired_meta(split, i, image):
    del image
    boxes = chart if split == 'anchor' and i < 2 else np.zeros((0, 4))
    return dict(meta, chart_boxes=boxes)

  helpers.write_raw2raw(root, lambda: _scene(rng),
                        paired={'anchor': 3, 'test': 3}, unpaired=4,
                        paired_meta=paired_meta)
  return root


def _small(variant, root):
  """The variant's config on the tiny dataset with a 2-level U-Net."""
  config = helpers.tiny_config(CONFIGS, variant, root, grid_images=2,
                               patch_size=16)
  config.model.update(features=4, levels=2)
  config.inference.postfit_size = 16
  return config


def test_configs_build_and_reject_typos():
  paper, quick = helpers.paper_and_quick(CONFIGS, 'raw2raw_semi')
  # The paper's settings.
  assert (paper.optim.learning_rate, paper.optim.b1, paper.optim.b2) == (
      1e-4, 0.9, 0.999)
  assert paper.data.patch_size == 256
  assert paper.data.unpaired_batch * 2 + paper.data.anchor_batch * 2 == 16
  assert paper.loss.reconstruction == paper.loss.anchor == (
      paper.loss.mapping) == 1.0
  assert paper.optim.schedule == 'constant'
  assert paper.eval.deltae_protocol == quick.eval.deltae_protocol == (
      'target_metadata')
  helpers.assert_configs_reject_typos(
      CONFIGS, (paper, quick),
      {'data.patch_sizee': 64, 'train.num_step': 5})


def test_bad_settings_are_named(dataset):
  config = _small('quick', dataset)
  config.data.patch_size = 18
  with pytest.raises(ValueError, match='config.data.patch_size=18'):
    raw2raw_semi.init(config, jax.random.PRNGKey(0))
  config = _small('quick', dataset)
  config.loss.reduction = 'l1'
  with pytest.raises(ValueError, match='config.loss.reduction'):
    raw2raw_semi.make_steps(config)
  config = _small('quick', dataset)
  config.loss.update(reconstruction=0.0, anchor=0.0, mapping=0.0)
  with pytest.raises(ValueError, match='not all 0'):
    raw2raw_semi.make_steps(config)
  with pytest.raises(ValueError, match="split 'train'"):
    raw2raw_semi.make_data(_small('quick', dataset), split='test')
  # The paper's DeltaE protocol renders through the metadata.
  config = _small('quick', dataset)
  config.eval.update(deltae_protocol='paper', delta_e='srgb')
  with pytest.raises(ValueError, match="config.eval.deltae_protocol='paper'"):
    raw2raw_semi.make_steps(config)


def test_delta_e_study_rows(dataset):
  from rawjax.methods.raw2raw_semi import delta_e_study  # pylint: disable=g-import-not-at-top
  result = delta_e_study.study(_small('quick', dataset))
  assert result['matrices'][CAMERAS[1]] == {'row_norms': [1.0, 1.0, 1.0],
                                            'condition': 1.0}
  for direction in result['directions'].values():
    rows = direction['rows']
    # B is exactly a 3x3 map of A: the pooled and per-image fits recover it.
    for row in ('global_3x3_pooled', 'oracle_3x3'):
      assert rows[row]['psnr'] > 50 and rows[row]['de_metadata'] < 0.2
    assert rows['identity']['de_metadata'] > 2.0
    noise = rows['target_noise']
    assert 0.0 < noise['de_metadata'] < rows['identity']['de_metadata']
    # A 5x5 box filter divides the noise variance by 25.
    assert noise['de_box5'] < 0.5 * noise['de_metadata']
  table = delta_e_study.markdown(result)
  assert 'Target + its own noise' in table and CAMERAS[1] in table


def test_train_data_is_aligned_and_resumable(dataset):
  config = _small('quick', dataset)
  data = raw2raw_semi.make_data(config, split='train', process_index=0,
                                process_count=1)
  batch = data.batch(3)
  assert set(batch) == {'unpaired_a', 'unpaired_b', 'anchor_a', 'anchor_b'}
  for key, count in (('unpaired_a', 4), ('unpaired_b', 4), ('anchor_a', 4),
                     ('anchor_b', 4)):
    assert batch[key].shape == (count, 16, 16, 4)
    assert batch[key].dtype == np.float32
  # Both sides of an anchor pair get the same crop and augmentation.
  np.testing.assert_allclose(batch['anchor_b'],
                             helpers.camera_b(batch['anchor_a']), atol=1e-6)
  with data.iterate(start_step=3) as resumed:
    again = next(resumed)
  for key in batch:
    np.testing.assert_array_equal(again[key], batch[key])
  # Two processes read disjoint halves of the same global batch.
  halves = [raw2raw_semi.make_data(config, process_index=p,
                                   process_count=2).batch(3)
            for p in range(2)]
  np.testing.assert_array_equal(
      np.concatenate([h['unpaired_b'] for h in halves]), batch['unpaired_b'])
  # Table 2's x = 1: every anchor sample comes from the same pair.
  config.data.num_anchors = 1
  one = raw2raw_semi.make_data(config)
  assert len(one.anchor_keys) == 1
  assert len(set(one.pipelines['anchor'].dataset.indices)) == 1
  assert one.batch(0)['anchor_a'].shape == (4, 16, 16, 4)


@pytest.mark.parametrize('variant', ['', 'quick'])
def test_one_step_per_config(dataset, variant):
  config = _small(variant, dataset)
  # A warm-up schedule gives step 0 a learning rate of 0; this test checks
  # that one step moves every parameter.
  config.optim.warmup_steps = 0
  method = method_lib.get_method('raw2raw_semi')
  state = method.init(config, jax.random.PRNGKey(0))
  assert set(state) == {'step', 'rng', 'params', 'opt_state'}
  steps = method.steps(config)
  assert len(steps) == 1
  batch = method.make_data(config, split='train', process_index=0,
                           process_count=1).batch(0)
  devices = helpers.four_devices()
  new, metrics = helpers.pmap_step(steps[0], state, batch, devices=devices)
  metrics = helpers.assert_replicas_agree(
      metrics, ('loss', 'loss_reconstruction', 'loss_anchor', 'loss_mapping',
                'grad_norm', 'param_norm', 'update_norm',
                'anchor_psnr_a_to_b', 'anchor_psnr_b_to_a'), rtol=1e-6)
  np.testing.assert_allclose(
      metrics['loss'][0], metrics['loss_reconstruction'][0] +
      metrics['loss_anchor'][0] + metrics['loss_mapping'][0], rtol=1e-5)
  helpers.assert_every_parameter_moved(new, state)
  if variant == 'quick':
    # One device on the whole batch gives the same loss and parameters:
    # the per-device losses are means over equal shares (float32
    # summation order only).
    single, single_metrics = helpers.pmap_step(steps[0], state, batch,
                                               devices=devices[:1])
    np.testing.assert_allclose(single_metrics['loss'][0],
                               metrics['loss'][0], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a[0], b[0], rtol=1e-4, atol=1e-6), single['params'], new['params'])
  # The evaluation of this state (tiny dataset): tables and grids.
  host = helpers.unreplicate(new)
  if variant == '':
    return
  workdir = dataset.parent / f'eval-{variant or "paper"}'
  scalars = method.evaluate(config, host, workdir=workdir)
  _check_evaluation(scalars, workdir, dataset)
  images = method.sample_images(config, host, batch)
  for value in images.values():
    assert value.shape == (4, 16, 16, 3)
    assert 0 <= value.min() and value.max() <= 1


def _check_evaluation(scalars, workdir, root):
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_test_pairs'] == 3 and results['num_anchors'] == 3
  assert results['calibration'] == 'chart'
  assert results['delta_e_convention'] == 'metadata'
  tests = {f.stem: scipy_io.loadmat(f)['raw_rggb'] for f in sorted(
      (root / 'paired' / CAMERAS[0] / 'raw-rggb').glob('*.mat'))}
  partners = {k: scipy_io.loadmat(
      root / 'paired' / CAMERAS[1] / 'raw-rggb' / f'{k}.mat')['raw_rggb']
              for k in tests}
  expected = np.mean([peak_signal_noise_ratio(partners[k], tests[k],
                                              data_range=1.0) for k in tests])
  np.testing.assert_allclose(scalars['a_to_b/identity/psnr'], expected,
                             rtol=1e-4)
  # B is exactly a 3x3 matrix of A, so the 3x3 calibrations (from two anchor
  # charts, or from all anchor pixels) recover it in both directions.
  for tag in ('a_to_b', 'b_to_a'):
    rows = results['directions'][tag]['rows']
    assert set(rows) == {'identity', 'global_3x3', 'global_poly',
                         'global_3x3_pooled', 'fda', 'ours_network', 'ours'}
    assert rows['global_3x3']['repeats'] == 2
    assert rows['fda']['repeats'] == 3
    assert rows['global_3x3']['psnr'] > 60, rows['global_3x3']
    assert rows['global_3x3_pooled']['psnr'] > 60
    assert rows['global_3x3_pooled']['delta_e2000'] < 0.05
    for row in rows.values():
      assert all(np.isfinite(row[k]) for k in ('psnr', 'ssim', 'mae',
                                               'delta_e2000'))
    assert scalars[f'{tag}/ours/psnr'] == rows['ours']['psnr']
  table = (workdir / 'results.md').read_text()
  assert 'Global calibration (3x3)' in table and 'cam-b -> cam-a' in table
  from rawjax.io import read_image  # pylint: disable=g-import-not-at-top
  grid = read_image(workdir / 'grid_a_to_b.png')
  # Two test images under a band of column titles, right of their labels.
  height, width = grid.shape[:2]
  assert height > 2 * (SIZE + 2) + 2 and width > 5 * (SIZE + 2) + 2


def test_loss_switches_drop_terms(dataset):
  config = _small('quick', dataset)
  config.model.levels = 1
  config.loss.update(reconstruction=0.0, anchor=0.0)  # Table 1: only L_m
  state = raw2raw_semi.init(config, jax.random.PRNGKey(0))
  batch = raw2raw_semi.make_data(config).batch(0)
  _, metrics = helpers.pmap_step(raw2raw_semi.make_steps(config)[0], state,
                                 batch, devices=jax.local_devices()[:1],
                                 seed=0)
  assert 'loss_anchor' not in metrics and 'loss_reconstruction' not in metrics
  np.testing.assert_allclose(metrics['loss'], metrics['loss_mapping'])


def test_postfit_and_network_size():
  rng = np.random.default_rng(5)
  # Smooth content, so the downsampled image spans the full image's range:
  # the fit is then an interpolation, as it is for real photographs (white
  # noise would shrink the range and make the fit an extrapolation).
  coarse = rng.uniform(0.05, 0.8, (6, 10, 4)).astype(np.float32)
  image = np.asarray(jax.image.resize(coarse, (24, 40, 4), 'linear'))
  matrix = np.eye(16, 4, dtype=np.float32) * 0.9
  matrix[15] = 0.01
  matrix[8] = [0.05, 0.0, 0.0, 0.02]
  small = np.asarray(raw2raw_semi.resize(jnp.asarray(image), (12, 20)))
  # A "network" whose output is exactly a kernelP polynomial of its input:
  # the post-fit recovers that polynomial and applies it at full size.
  output = polynomial.apply_polynomial(small, matrix, kernel='raw2raw16')
  mapped = raw2raw_semi.apply_postfit(small, output, image, kernel='raw2raw16')
  expected = np.clip(polynomial.apply_polynomial(image, matrix,
                                                 kernel='raw2raw16'), 0, 1)
  np.testing.assert_allclose(mapped, expected, atol=2e-4)
  assert raw2raw_semi.network_size(1512, 2016, max_side=656,
                                   multiple=16) == (496, 656)
  assert raw2raw_semi.network_size(40, 24, max_side=656,
                                   multiple=16) == (48, 32)


def test_translate_any_size(dataset):
  config = _small('quick', dataset)
  model = raw2raw_semi.model(config)
  state = raw2raw_semi.init(config, jax.random.PRNGKey(0))
  params = state['params']
  image = np.random.default_rng(2).uniform(0, 1, (20, 12, 4)).astype(
      np.float32)
  for postfit in (True, False):
    out = raw2raw_semi.translate(model, params['camera_a'],
                                 params['camera_b'], image, postfit=postfit,
                                 postfit_size=16)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
  with pytest.raises(ValueError, match=r'expected \(h, w, 4\)'):
    raw2raw_semi.translate(model, params['camera_a'], params['camera_b'],
                           image[..., :3])


def test_synthetic_data_is_generated_once(tmp_path, monkeypatch):
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  calls = []

  def fake_write_dataset(out, **kwargs):
    calls.append(kwargs)
    out.mkdir(parents=True)
    (out / 'dataset.json').write_text('{}')

  monkeypatch.setattr(synthetic, 'write_dataset', fake_write_dataset)
  config = ml_collections.ConfigDict(CONFIGS.get_config('quick').to_dict())
  config.data.cache_dir = str(tmp_path)
  root = dataset_root(config.data)
  assert root == tmp_path / 'datasets' / 'raw2raw-raw2raw-n200-s0-256x256'
  assert (root / 'dataset.json').is_file()
  assert calls[0]['num'] == 200 and calls[0]['config'].height == 256
  assert dataset_root(config.data) == root
  assert len(calls) == 1  # reused, not regenerated

  def failing_write_dataset(out, **kwargs):
    out.mkdir(parents=True)
    raise KeyboardInterrupt

  monkeypatch.setattr(synthetic, 'write_dataset', failing_write_dataset)
  config.data.synthetic.num_scenes = 50
  with pytest.raises(KeyboardInterrupt):
    dataset_root(config.data)
  assert sorted(p.name for p in (tmp_path / 'datasets').iterdir()) == [
      root.name]  # no half-written dataset left behind
