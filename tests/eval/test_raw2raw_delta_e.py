"""The raw-to-raw DeltaE protocols of rawjax.eval.raw2raw.

References: numpy formulas for shades of grey and the chart's neutral
patches; colour-science (`RGB_to_XYZ` with linear sRGB, `XYZ_to_Lab`,
`delta_E` CIE 2000) for the paper's raw -> Lab path and its DeltaE.
"""

import functools

import jax
import numpy as np
import pytest

from rawjax.eval import raw2raw
from rawjax.train.config import ConfigError

colour = pytest.importorskip('colour')

_D65 = np.array([0.3127, 0.3290])
_CCM = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.1, -0.5, 1.4]],
                np.float32)


def _rng(seed):
  return np.random.default_rng(seed)


def _packed_from_rgb(rgb):
  """(h, w, 3) -> packed (h, w, 4) with both greens equal."""
  return np.concatenate([rgb[..., :1], rgb[..., 1:2], rgb[..., 1:2],
                         rgb[..., 2:]], -1).astype(np.float32)


def test_shades_of_gray_is_the_minkowski_mean_of_unclipped_pixels(variant):
  rgb = _rng(0).uniform(0.0, 0.9, (12, 10, 3)).astype(np.float32)
  rgb[0, :4] = [0.99, 0.5, 0.5]  # clipped in R: left out
  packed = _packed_from_rgb(rgb)
  keep = np.all(rgb.reshape(-1, 3) < 0.98, axis=-1)
  for p in (1.0, 6.0):
    got = np.asarray(variant(functools.partial(raw2raw.shades_of_gray,
                                               p=p))(packed))
    want = np.mean(rgb.reshape(-1, 3)[keep].astype(np.float64) ** p,
                   0) ** (1 / p)
    np.testing.assert_allclose(got, want / want[1], rtol=2e-5)


def test_chart_illuminant_uses_the_unclipped_neutral_patches():
  light = np.array([0.5, 1.0, 0.7])
  packed = _packed_from_rgb(_rng(1).uniform(0, 0.3, (48, 48, 3)))
  boxes = np.zeros((24, 4), np.int32)
  for k in range(24):  # 8 x 8 mosaic pixels = 4 x 4 packed, in a 6 x 4 grid
    r, c = divmod(k, 6)
    boxes[k] = [16 * r, 16 * c, 16 * r + 8, 16 * c + 8]
  for k, level in zip(range(18, 24), (1.5, 0.8, 0.5, 0.3, 0.15, 0.05)):
    t, l, b, r = boxes[k] // 2
    packed[t:b, l:r] = _packed_from_rgb(np.minimum(level * light, 1.0)[
        None, None] * np.ones((b - t, r - l, 1)))
  got = np.asarray(raw2raw.chart_illuminant(packed, boxes))
  # The white patch (1.5 x light) clips in G and B: only the other five count.
  np.testing.assert_allclose(got, light, rtol=1e-5)
  # A non-neutral patch changes nothing.
  t, l, b, r = boxes[0] // 2
  packed[t:b, l:r] = 0.9
  np.testing.assert_allclose(raw2raw.chart_illuminant(packed, boxes), light,
                             rtol=1e-5)


def test_paper_raw_to_lab_matches_colour_science():
  # Under jit, as paper_delta_e2000 runs it (an eager pass costs ~10 s).
  rgb = _rng(2).uniform(0.0, 1.0, (6, 5, 3)).astype(np.float32)
  light = np.array([0.45, 1.0, 0.8], np.float32)
  got = np.asarray(jax.jit(functools.partial(
      raw2raw.paper_raw_to_lab, illuminant=light, cam_to_srgb=_CCM))(
          _packed_from_rgb(rgb)))
  linear = (rgb / light) @ _CCM.T.astype(np.float64)
  srgb = colour.RGB_COLOURSPACES['sRGB']
  xyz = colour.RGB_to_XYZ(linear, srgb, illuminant=_D65,
                          apply_cctf_decoding=False)
  want = colour.XYZ_to_Lab(xyz, illuminant=_D65)
  np.testing.assert_allclose(got, want, atol=2e-2)
  # A neutral of that light comes out achromatic (a* = b* = 0).
  grey = _packed_from_rgb(np.full((2, 2, 3), 0.4, np.float32) * light)
  lab = np.asarray(raw2raw.paper_raw_to_lab(
      grey, illuminant=light, cam_to_srgb=np.eye(3, dtype=np.float32)))
  # (to 0.01: the sRGB matrix and the D65 white are rounded separately)
  np.testing.assert_allclose(lab[..., 1:], 0.0, atol=1e-2)


def test_paper_delta_e_estimates_the_prediction_s_light():
  rng = _rng(3)
  # Below 0.8, so the tint below clips no pixel and changes no estimate set.
  target = _packed_from_rgb(rng.uniform(0.05, 0.8, (16, 16, 3)))
  light = raw2raw.shades_of_gray(target, p=6.0)
  same = float(raw2raw.paper_delta_e2000(target, target, light, _CCM, p=6.0))
  assert abs(same) < 1e-4
  # A global channel gain is the light's job: the estimate divides it out.
  tinted = target * np.array([0.8, 1, 1, 1.2], np.float32)
  assert float(raw2raw.paper_delta_e2000(tinted, target, light, _CCM,
                                         p=6.0)) < 1e-3
  prediction = np.clip(target + rng.normal(0, 0.03, target.shape), 0,
                       1).astype(np.float32)
  got = float(raw2raw.paper_delta_e2000(prediction, target, light, _CCM,
                                        p=6.0))
  lab_p = raw2raw.paper_raw_to_lab(
      prediction, illuminant=raw2raw.shades_of_gray(prediction, p=6.0),
      cam_to_srgb=_CCM)
  lab_t = raw2raw.paper_raw_to_lab(target, illuminant=light, cam_to_srgb=_CCM)
  want = np.mean(colour.delta_E(np.asarray(lab_p, np.float64),
                                np.asarray(lab_t, np.float64),
                                method='CIE 2000'))
  np.testing.assert_allclose(got, want, rtol=1e-4)
  assert got > 1.0


def _pairs(with_meta=True):
  rng = _rng(4)
  pairs = []
  for i in range(2):
    images = tuple(_packed_from_rgb(rng.uniform(0.05, 0.9, (16, 16, 3)))
                   for _ in range(2))
    meta = {'wb_gains': np.array([2.0, 1.0, 1.5], np.float32),
            'cam_to_srgb': _CCM, 'chart_boxes': np.zeros((0, 4), np.int32)}
    pairs.append({'name': f'p{i}', 'images': images,
                  'meta': [dict(meta), dict(meta)] if with_meta else
                  [None, None]})
  return pairs


def test_pair_scorer_protocols():
  pairs = _pairs()
  predictions = [np.clip(p['images'][1] * 1.05, 0, 1) for p in pairs]
  ours, used = raw2raw.pair_scorer(pairs, 'auto')
  paper, used_paper = raw2raw.pair_scorer(pairs, 'auto', protocol='paper',
                                          estimator_p=1.0)
  assert (used, used_paper) == ('metadata', 'paper')
  a, b = ours(predictions, 1), paper(predictions, 1)
  for k in ('psnr', 'ssim', 'mae'):
    np.testing.assert_allclose(a[k], b[k])
  # Without a chart the target's light is its as-shot neutral 1 / wb_gains.
  neutral = np.float32([0.5, 1.0, 1 / 1.5])
  want = [float(raw2raw.paper_delta_e2000(x, p['images'][1], neutral, _CCM,
                                          p=1.0))
          for x, p in zip(predictions, pairs)]
  np.testing.assert_allclose(b['delta_e2000'], want, rtol=1e-5)
  assert np.all(np.abs(a['delta_e2000'] - b['delta_e2000']) > 1e-3)
  with pytest.raises(ValueError, match='deltae_protocol'):
    raw2raw.pair_scorer(pairs, 'srgb', protocol='paper')
  with pytest.raises(ValueError, match="deltae_protocol='paper' needs"):
    raw2raw.pair_scorer(_pairs(with_meta=False), 'auto', protocol='paper')
  with pytest.raises(ValueError, match='deltae_protocol must be one of'):
    raw2raw.pair_scorer(pairs, 'auto', protocol='papper')


def test_config_check_names_the_protocol_keys():
  import ml_collections  # pylint: disable=g-import-not-at-top

  def config(**eval_values):
    values = dict(delta_e='auto', deltae_protocol='target_metadata',
                  deltae_estimator_p=6.0)
    values.update(eval_values)
    return ml_collections.ConfigDict({'eval': values})

  raw2raw.check_delta_e(config())
  raw2raw.check_delta_e(config(deltae_protocol='paper'))
  for bad, key in (({'deltae_protocol': 'papr'}, 'eval.deltae_protocol'),
                   ({'deltae_protocol': 'paper', 'delta_e': 'srgb'},
                    'eval.deltae_protocol'),
                   ({'deltae_estimator_p': 0.5}, 'eval.deltae_estimator_p'),
                   ({'delta_e': 'xyz'}, 'eval.delta_e')):
    with pytest.raises(ConfigError, match=f'config.{key}='):
      raw2raw.check_delta_e(config(**bad))
