"""Shared scoring of image pairs and results rows."""

import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import eval as rawjax_eval
from rawjax import metrics
from rawjax.isp import color


def _pair(seed, shape=(2, 16, 16, 3)):
  rng = np.random.default_rng(seed)
  target = rng.uniform(0.05, 0.95, shape).astype(np.float32)
  noise = rng.normal(0.0, 0.03, shape).astype(np.float32)
  return target + noise, target


def test_image_scores_equal_the_metrics():
  prediction, target = _pair(0)
  got = rawjax_eval.image_scores(
      prediction, target, names=('psnr', 'ssim', 'mae', 'delta_e2000', 'kl'))
  lab = lambda x: color.srgb_to_lab(jnp.clip(x, 0, 1))  # noqa: E731
  want = {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'mae': metrics.mae(prediction, target),
          'delta_e2000': metrics.mean_delta_e2000(lab(prediction),
                                                  lab(target)),
          'kl': metrics.histogram_kl(prediction, target)}
  for name, value in want.items():
    assert got[name].shape == (2,)
    np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6,
                               err_msg=name)


def test_view_and_data_range_options():
  prediction, target = _pair(1, (1, 8, 8, 4))
  got = rawjax_eval.image_scores(prediction, target, names=('delta_e2000',),
                                 view=color.packed_to_rgb)
  lab = lambda x: color.srgb_to_lab(  # noqa: E731
      jnp.clip(color.packed_to_rgb(x), 0, 1))
  np.testing.assert_allclose(
      got['delta_e2000'],
      metrics.mean_delta_e2000(lab(prediction), lab(target)), rtol=1e-5)
  scaled = rawjax_eval.image_scores(prediction * 255, target * 255,
                                    names=('psnr',), data_range=255.0)
  unit = rawjax_eval.image_scores(prediction, target, names=('psnr',))
  np.testing.assert_allclose(scaled['psnr'], unit['psnr'], rtol=1e-4)
  clipped = rawjax_eval.image_scores(prediction, target, names=('mae',),
                                     clip=True)
  np.testing.assert_allclose(
      clipped['mae'], metrics.mae(np.clip(prediction, 0, 1), target),
      rtol=1e-6)


def test_score_images_handles_pairs_of_different_sizes():
  small, small_t = _pair(2, (8, 8, 3))
  large, large_t = _pair(3, (12, 20, 3))
  scores = rawjax_eval.score_images([small, large], [small_t, large_t],
                                    names=('psnr', 'mae'))
  assert set(scores) == {'psnr', 'mae'}
  np.testing.assert_allclose(scores['mae'][1], metrics.mae(large, large_t),
                             rtol=1e-6)
  with pytest.raises(ValueError, match='2 predictions for 1 targets'):
    rawjax_eval.score_images([small, large], [small_t])


def test_unknown_score_is_named():
  prediction, target = _pair(4)
  with pytest.raises(ValueError, match='lpips'):
    rawjax_eval.image_scores(prediction, target, names=('psnr', 'lpips'))


def test_summarize_over_repeats_and_images():
  repeats = [{'psnr': np.array([30.0, 32.0])},
             {'psnr': np.array([34.0, np.nan])}]
  row = rawjax_eval.summarize(repeats, ('psnr',))
  np.testing.assert_allclose(row['psnr'], (31.0 + 34.0) / 2)
  np.testing.assert_allclose(row['psnr_std'], 1.5)
  assert row['repeats'] == 2
  single = rawjax_eval.summarize(repeats[:1], ('psnr',))
  assert single['psnr'] == 31.0 and single['psnr_std'] is None
  images = rawjax_eval.summarize(repeats[:1], ('psnr',), spread='images')
  assert images['psnr_std'] == 1.0
  empty = rawjax_eval.summarize([{'chart_mae': np.array([np.nan])}],
                                ('chart_mae',))
  assert np.isnan(empty['chart_mae'])
  with pytest.raises(ValueError, match='exactly one repeat'):
    rawjax_eval.summarize(repeats, ('psnr',), spread='images')
  with pytest.raises(ValueError, match='spread'):
    rawjax_eval.summarize(repeats, ('psnr',), spread='pixels')


def test_results_files(tmp_path):
  rawjax_eval.write_results(tmp_path / 'eval', {'psnr': np.float32(31.5),
                                                'per_image': np.ones(2)},
                            '# table\n')
  assert (tmp_path / 'eval' / 'results.md').read_text() == '# table\n'
  text = (tmp_path / 'eval' / 'results.json').read_text()
  assert '"psnr": 31.5' in text
  rawjax_eval.write_default_results(tmp_path / 'default',
                                    {'loss': 0.25, 'name': 'x'}, step=3)
  md = (tmp_path / 'default' / 'results.md').read_text()
  assert '| loss | 0.25 |' in md and 'name' not in md
  cells = rawjax_eval.metric_cells({'psnr': 30.123, 'psnr_std': 0.5,
                                    'ssim': 0.9, 'ssim_std': None},
                                   ('psnr', 'ssim'), {'psnr': 2, 'ssim': 3})
  assert cells == ['30.12 +- 0.50', '0.900']
  assert rawjax_eval.markdown_table(('a', 'b'), [(1, 2)]) == [
      '| a | b |', '|---|---|', '| 1 | 2 |']


def test_sample_covariance_option_is_skimage_s_flag():
  prediction, target = _pair(5)
  got = rawjax_eval.image_scores(prediction, target, names=('ssim',),
                                 sample_covariance=True)
  np.testing.assert_allclose(
      got['ssim'], metrics.ssim(prediction, target,
                                use_sample_covariance=True), rtol=1e-6)
  default = rawjax_eval.image_scores(prediction, target, names=('ssim',))
  assert not np.allclose(got['ssim'], default['ssim'], rtol=1e-7, atol=0)
