"""The camera-like ISP: ranges, monotonicity, gradients, jit/vmap, references."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from rawjax import isp
from rawjax.isp import camera_isp as ci

STYLE_NAMES = sorted(ci.STYLES)


def _scene(rng: np.random.Generator, shape=(40, 48)) -> np.ndarray:
  """Scene-linear RGB: smooth log-normal illumination times texture.

  Includes exact zeros and values well above 1, the edges of the input range.
  """
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  illumination = 2.0 ** (4.0 * (xx - 0.5) + rng.normal(0, 0.3))
  texture = rng.uniform(0.05, 1.0, (h, w, 3))
  scene = (illumination[..., None] * texture).astype(np.float32)
  scene[0, 0] = 0.0
  scene[1, 1] = 12.0
  return scene


def _reference_guided_filter(guide, src, radius, eps):
  """He et al. 2010 Algorithm 1 in float64 with scipy's box filter."""
  box = functools.partial(ndimage.uniform_filter, size=2 * radius + 1,
                          mode='reflect')
  guide = np.asarray(guide, np.float64)
  src = np.asarray(src, np.float64)
  mean_i, mean_p = box(guide), box(src)
  var_i = box(guide * guide) - mean_i * mean_i
  cov_ip = box(guide * src) - mean_i * mean_p
  a = cov_ip / (var_i + eps)
  b = mean_p - a * mean_i
  return box(a) * guide + box(b)


# --- ranges and monotonicity -------------------------------------------------

@pytest.mark.parametrize('strength,clip_limit', [(0.0, 2.0), (0.5, 2.0),
                                                 (1.0, 1.0), (1.0, 4.0)])
def test_tone_curve_is_strictly_monotone_into_unit_interval(strength,
                                                            clip_limit):
  rng = np.random.default_rng(11)
  scene = _scene(rng)
  curve = ci.histogram_tone_curve(scene, strength=strength,
                                  clip_limit=clip_limit)
  assert curve.nodes.shape == (33,) and curve.white.shape == ()
  white = float(curve.white)
  np.testing.assert_allclose(white, float(ci._luminance(scene).max()),
                             rtol=1e-6)
  y = np.linspace(0.0, white, 4001, dtype=np.float32)[None]
  out = np.asarray(ci.apply_tone_curve(curve, y))[0]
  assert np.all(np.diff(out) > 0), 'not strictly increasing on [0, max]'
  assert out[0] == 0.0 and out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_allclose(out[-1], 1.0, atol=1e-5)
  assert np.all(np.diff(np.asarray(curve.nodes)) > 0)


def test_tone_curve_adapts_to_the_histogram():
  rng = np.random.default_rng(12)
  dark = _scene(rng) * np.float32(0.05)
  dark[1, 1] = 12.0  # the same white point, a different histogram
  curve_dark = ci.histogram_tone_curve(dark, strength=1.0)
  curve = ci.histogram_tone_curve(_scene(rng), strength=1.0)
  # Equalisation spends more output range where the dark image's mass is.
  assert float(curve_dark.nodes[8]) > float(curve.nodes[8]) + 0.05


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_render_range_shape_and_determinism(style):
  rng = np.random.default_rng(13)
  scene = _scene(rng)
  out = np.asarray(ci.render(scene, style=style))
  assert out.shape == scene.shape and out.dtype == np.float32
  assert out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_array_equal(out, np.asarray(ci.render(scene, style=style)))


def test_render_accepts_a_camera_style_and_styles_differ():
  rng = np.random.default_rng(14)
  scene = _scene(rng)
  phone = np.asarray(ci.render(scene, style='phone'))
  np.testing.assert_array_equal(
      phone, np.asarray(ci.render(scene, style=ci.STYLES['phone'])))
  expert = np.asarray(ci.render(scene, style='expert'))
  assert np.abs(phone - expert).mean() > 0.02
  softer = dataclasses.replace(ci.STYLES['phone'], ltm_radius_fraction=0.0,
                               sharpen_amount=0.0)
  assert np.abs(np.asarray(ci.render(scene, style=softer)) - phone).mean() > 0.01
  with pytest.raises(dataclasses.FrozenInstanceError):
    ci.STYLES['phone'].saturation = 2.0  # type: ignore[misc]


# --- gradients, jit, vmap ------------------------------------------------------

STAGES = {
    'white_balance_shift': functools.partial(ci.white_balance_shift,
                                             warmth=0.1, tint=0.05),
    'auto_exposure': ci.auto_exposure,
    'auto_exposure_percentile': functools.partial(ci.auto_exposure,
                                                  percentile=97.0,
                                                  target=0.8),
    'local_tone_map': functools.partial(ci.local_tone_map, radius=4),
    'tone_curve': lambda x: ci.apply_tone_curve(
        ci.histogram_tone_curve(x), ci._luminance(x)),
    'adjust_saturation_hue': lambda x: ci.adjust_saturation_hue(
        jnp.clip(x, 0, 1), saturation=1.3, vibrance=0.5, luma_slope=-0.3,
        hue_degrees=10.0),
    'sharpen': lambda x: ci.sharpen(jnp.clip(x, 0, 1), amount=0.8),
    'guided_filter': lambda x: ci.guided_filter(x[..., 1], x, radius=3,
                                                eps=0.01),
    **{f'render_{s}': functools.partial(ci.render, style=s)
       for s in STYLE_NAMES},
}


@pytest.mark.parametrize('name', sorted(STAGES))
def test_gradients_are_finite(name):
  rng = np.random.default_rng(15)
  scene = _scene(rng, (24, 28))
  weights = rng.normal(size=np.shape(STAGES[name](scene))).astype(np.float32)
  grad = jax.grad(lambda x: jnp.sum(STAGES[name](x) * weights))(scene)
  assert np.all(np.isfinite(grad)), f'{name}: non-finite gradient'
  assert np.abs(grad).max() > 0, f'{name}: gradient identically zero'


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_render_jit_equals_eager(style, variant):
  rng = np.random.default_rng(16)
  scene = _scene(rng)
  fn = functools.partial(ci.render, style=style)
  np.testing.assert_allclose(variant(fn)(scene), fn(scene), atol=2e-5)


def test_vmap_and_batch_dims_equal_a_loop():
  rng = np.random.default_rng(17)
  batch = np.stack([_scene(rng) * np.float32(k) for k in (0.3, 1.0, 3.0)])
  loop = np.stack([np.asarray(ci.render(x, style='phone')) for x in batch])
  vmapped = jax.vmap(functools.partial(ci.render, style='phone'))(batch)
  np.testing.assert_allclose(vmapped, loop, atol=2e-5)
  np.testing.assert_allclose(ci.render(batch, style='phone'), loop, atol=2e-5)
  gains = ci.exposure_gain(batch)
  assert gains.shape == (3,)


# --- references -----------------------------------------------------------------

@pytest.mark.parametrize('radius,eps', [(1, 1e-3), (4, 1e-2), (9, 0.1)])
def test_guided_filter_matches_scipy_reference(radius, eps):
  rng = np.random.default_rng(18)
  guide = rng.random((33, 41), np.float32)
  guide[:, 20:] += 2.0  # an edge
  src = (guide + rng.normal(0, 0.1, guide.shape)).astype(np.float32)
  out = ci.guided_filter(guide, src, radius=radius, eps=eps)
  # float32 window sums against float64: 1e-5 of the value range (~3).
  np.testing.assert_allclose(out, _reference_guided_filter(guide, src, radius,
                                                           eps), atol=3e-5)


def test_guided_filter_channels_and_batch():
  rng = np.random.default_rng(19)
  guide = rng.random((2, 20, 24), np.float32)
  src = rng.random((2, 20, 24, 3), np.float32)
  out = np.asarray(ci.guided_filter(guide, src, radius=3, eps=0.01))
  assert out.shape == src.shape
  for n in range(2):
    for c in range(3):
      np.testing.assert_allclose(
          out[n, ..., c],
          _reference_guided_filter(guide[n], src[n, ..., c], 3, 0.01),
          atol=1e-5)


def test_guided_filter_keeps_edges_and_smooths_flat_regions():
  rng = np.random.default_rng(20)
  step = np.zeros((32, 32), np.float32)
  step[:, 16:] = 1.0
  noisy = (step + rng.normal(0, 0.02, step.shape)).astype(np.float32)
  out = np.asarray(ci.guided_filter(noisy, noisy, radius=4, eps=1e-3))
  assert np.abs(out - step).max() < 0.1            # the edge stays sharp
  assert out[:, :12].std() < 0.5 * noisy[:, :12].std()   # noise is smoothed


def test_exposure_uses_the_log_average_key():
  rng = np.random.default_rng(21)
  scene = _scene(rng)
  y = np.asarray(ci._luminance(scene), np.float64)
  key = np.exp(np.mean(np.log(y + 1e-6)))
  np.testing.assert_allclose(ci.exposure_gain(scene), 0.18 / key, rtol=1e-4)
  np.testing.assert_allclose(
      ci.exposure_gain(scene, percentile=50.0, target=0.2),
      0.2 / np.percentile(y, 50.0), rtol=1e-4)


def test_saturation_keeps_luminance_and_greys():
  rng = np.random.default_rng(22)
  display = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
  display[0, :] = display[0, :, :1]  # a grey row
  out = np.asarray(ci.adjust_saturation_hue(display, saturation=0.8,
                                            vibrance=0.4, hue_degrees=20.0))
  inside = np.all(np.asarray(
      ci.adjust_saturation_hue(display, saturation=0.8, vibrance=0.4,
                               hue_degrees=20.0)) > 0, axis=-1)
  np.testing.assert_allclose(ci._luminance(out)[inside],
                             ci._luminance(display)[inside], atol=1e-5)
  np.testing.assert_allclose(out[0], display[0], atol=1e-5)
  np.testing.assert_allclose(
      ci.adjust_saturation_hue(display), display, atol=1e-5)


def test_sharpen_is_identity_on_flat_images_and_boosts_edges():
  flat = np.full((16, 16, 3), 0.4, np.float32)
  np.testing.assert_allclose(ci.sharpen(flat, amount=1.0), flat, atol=1e-6)
  edge = np.full((16, 16, 3), 0.3, np.float32)
  edge[:, 8:] = 0.6
  out = np.asarray(ci.sharpen(edge, amount=1.0))
  assert out[:, 7].max() < 0.3 and out[:, 8].min() > 0.6  # overshoot


# --- content dependence -------------------------------------------------------

def test_exposure_gain_depends_on_brightness():
  rng = np.random.default_rng(23)
  scene = _scene(rng)
  gain, gain_bright = np.asarray(ci.exposure_gain(
      np.stack([scene, 4 * scene])))
  # Exactly 4 but for the black pixel, whose log is floored at 1e-6.
  np.testing.assert_allclose(gain / gain_bright, 4.0, rtol=2e-3)


def _two_region_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Dark textured left half, bright textured right half, equal flecks.

  Isolated pixels of one value (0.2) sit on a sparse grid in both halves: a
  bright detail on a dark surround on the left, a dark detail on a bright
  surround on the right. Returns the scene and the two fleck masks.
  """
  rng = np.random.default_rng(24)
  h, w = 48, 64
  texture = 2.0 ** rng.uniform(-0.5, 0.5, (h, w))
  level = np.where(np.arange(w) < w // 2, 0.03, 1.0)
  scene = np.repeat((texture * level)[..., None], 3, axis=-1)
  flecks = np.zeros((h, w), bool)
  flecks[3::6, 3::6] = True
  scene[flecks] = 0.2
  left = flecks & (np.arange(w) < w // 2)
  right = flecks & (np.arange(w) >= w // 2)
  return scene.astype(np.float32), left, right


def test_local_tone_map_is_not_a_global_curve():
  scene, left, right = _two_region_scene()
  out = np.asarray(ci.local_tone_map(scene, radius=4, eps=0.1,
                                     compression=0.5, detail=1.5))
  # A global curve (e.g. PQDynamicISP's) maps equal inputs to equal outputs;
  # here the fleck on the dark surround comes out more than twice as bright.
  assert np.median(out[left][:, 1]) > 2 * np.median(out[right][:, 1])


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_render_maps_one_value_to_two_outputs(style):
  scene, left, right = _two_region_scene()
  out = np.asarray(ci.render(scene, style=style))
  difference = np.median(out[left][:, 1]) - np.median(out[right][:, 1])
  assert difference > 0.1, difference


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize('fn', [ci.render, ci.auto_exposure, ci.exposure_gain,
                                ci.local_tone_map, ci.histogram_tone_curve,
                                ci.adjust_saturation_hue, ci.sharpen,
                                ci.white_balance_shift])
def test_bad_images_are_named(fn):
  with pytest.raises(TypeError, match='floating-point'):
    fn(np.zeros((16, 16, 3), np.uint8))
  with pytest.raises(ValueError, match='3 channels'):
    fn(np.zeros((16, 16, 4), np.float32))
  with pytest.raises(ValueError, match='at least 3 dims'):
    fn(np.zeros((16, 3), np.float32))


def test_bad_options_are_named():
  image = np.ones((16, 16, 3), np.float32)
  with pytest.raises(ValueError, match="unknown style 'film'"):
    ci.render(image, style='film')
  with pytest.raises(ValueError, match='radius'):
    ci.guided_filter(image[..., 0], image[..., 0], radius=16, eps=0.1)
  with pytest.raises(ValueError, match='same shape|shape of guide'):
    ci.guided_filter(image[..., 0], image[:8, :, 0], radius=2, eps=0.1)
  with pytest.raises(ValueError, match='eps'):
    ci.guided_filter(image[..., 0], image[..., 0], radius=2, eps=0.0)
  with pytest.raises(ValueError, match='percentile'):
    ci.exposure_gain(image, percentile=0.0)
  with pytest.raises(ValueError, match='strength'):
    ci.histogram_tone_curve(image, strength=1.5)
  with pytest.raises(ValueError, match='at least 8x8'):
    ci.render(np.ones((4, 16, 3), np.float32))


def test_exported_from_isp():
  for name in ('render', 'CameraStyle', 'STYLES', 'guided_filter',
               'local_tone_map', 'histogram_tone_curve', 'auto_exposure',
               'adjust_saturation_hue', 'sharpen'):
    assert getattr(isp, name) is getattr(ci, name)
