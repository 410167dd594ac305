"""Colour stages against colour-science, with round trips and gradients."""

import functools
import warnings

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

with warnings.catch_warnings():
  warnings.simplefilter('ignore')
  import colour  # pylint: disable=g-import-not-at-top
  from colour.temperature.robertson1968 import uv_to_CCT_Robertson1968

RNG = np.random.default_rng(0)
unit = hypothesis.strategies.floats(0, 1, width=32)


def test_srgb_curves_match_colour_science(variant):
  x = np.concatenate([np.linspace(0, 1, 1001), [0.0031308, 0.04045]])
  x = x.astype(np.float32)
  encoded = variant(isp.srgb_encode)(x)
  np.testing.assert_allclose(np.asarray(encoded),
                             colour.cctf_encoding(x, function='sRGB'),
                             atol=2e-6)
  np.testing.assert_allclose(np.asarray(variant(isp.srgb_decode)(x)),
                             colour.cctf_decoding(x, function='sRGB'),
                             atol=2e-6)


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(hnp.arrays(np.float32, (5, 3), elements=unit))
def test_srgb_round_trip(x):
  np.testing.assert_allclose(np.asarray(isp.srgb_decode(isp.srgb_encode(x))),
                             x, atol=2e-6)


def test_xyz_srgb_matrices_match_colour_science(variant):
  rgb = RNG.random((4, 5, 3)).astype(np.float32)
  xyz = variant(isp.linear_srgb_to_xyz)(rgb)
  reference = colour.RGB_to_XYZ(rgb, colour.RGB_COLOURSPACES['sRGB'],
                                apply_cctf_decoding=False)
  np.testing.assert_allclose(np.asarray(xyz), reference, atol=2e-6)
  back = variant(isp.xyz_to_linear_srgb)(xyz)
  np.testing.assert_allclose(np.asarray(back), rgb, atol=2e-6)


def test_lab_matches_colour_science(variant):
  xyz = RNG.random((50, 3)).astype(np.float32) * [0.95, 1.0, 1.09]
  xyz[:5] *= 1e-3  # the linear segment near black
  lab = variant(isp.xyz_to_lab)(xyz)
  np.testing.assert_allclose(np.asarray(lab), colour.XYZ_to_Lab(xyz),
                             atol=2e-4)
  np.testing.assert_allclose(np.asarray(variant(isp.lab_to_xyz)(lab)), xyz,
                             atol=2e-6)
  d50 = functools.partial(isp.xyz_to_lab, white_xy=isp.D50_XY)
  np.testing.assert_allclose(
      np.asarray(d50(xyz)),
      colour.XYZ_to_Lab(xyz, illuminant=np.array(isp.D50_XY)), atol=2e-4)


def test_srgb_to_lab_matches_colour_science(variant):
  rgb = RNG.random((6, 7, 3)).astype(np.float32)
  expected = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))
  np.testing.assert_allclose(np.asarray(variant(isp.srgb_to_lab)(rgb)),
                             expected, atol=1e-4)
  np.testing.assert_allclose(
      np.asarray(variant(isp.lab_to_srgb)(isp.srgb_to_lab(rgb))), rgb,
      atol=1e-5)


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(hnp.arrays(np.float32, (4, 3), elements=unit))
def test_lab_round_trip(rgb):
  xyz = np.asarray(isp.linear_srgb_to_xyz(rgb))
  np.testing.assert_allclose(np.asarray(isp.lab_to_xyz(isp.xyz_to_lab(xyz))),
                             xyz, atol=3e-6)


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(hnp.arrays(np.float32, (2, 3, 4), elements=unit),
                  hnp.arrays(np.float32, (3,), elements=hypothesis.strategies
                             .floats(0.25, 4, width=32)))
def test_white_balance_round_trip_on_packed(packed, gains):
  balanced = isp.white_balance(packed, gains)
  np.testing.assert_allclose(np.asarray(balanced),
                             packed * gains[[0, 1, 1, 2]], rtol=1e-6, atol=1e-12)
  np.testing.assert_allclose(
      np.asarray(isp.inverse_white_balance(balanced, gains)), packed,
      rtol=1e-5, atol=1e-7)


def test_white_balance_per_image_gains(variant):
  rgb = np.ones((2, 3, 4, 3), np.float32)
  gains = np.array([[2.0, 1.0, 1.5], [1.0, 1.0, 3.0]], np.float32)
  got = np.asarray(variant(isp.white_balance)(rgb, gains))
  np.testing.assert_allclose(got[0, 1, 2], [2.0, 1.0, 1.5])
  np.testing.assert_allclose(got[1, 0, 0], [1.0, 1.0, 3.0])


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(hnp.arrays(np.float32, (3, 2, 3), elements=unit))
def test_ccm_round_trip(rgb):
  ccm = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])
  out = isp.apply_ccm(rgb, ccm)
  np.testing.assert_allclose(np.asarray(out), rgb @ ccm.T, atol=1e-6)
  np.testing.assert_allclose(np.asarray(isp.inverse_ccm(out, ccm)), rgb,
                             atol=1e-5)


def test_per_image_ccm_and_vmap(variant):
  rgb = RNG.random((2, 3, 3, 3)).astype(np.float32)
  ccms = RNG.normal(size=(2, 3, 3)).astype(np.float32) + 2 * np.eye(3)
  got = variant(isp.apply_ccm)(rgb, ccms)
  per_image = jax.vmap(isp.apply_ccm)(rgb, ccms)
  for i in range(2):
    np.testing.assert_allclose(np.asarray(got[i]), rgb[i] @ ccms[i].T,
                               atol=1e-5)
  np.testing.assert_allclose(np.asarray(per_image), np.asarray(got), atol=1e-6)


def test_visualize_raw_is_the_papers_formula(variant):
  packed = RNG.random((3, 4, 4)).astype(np.float32)
  got = np.asarray(variant(isp.visualize_raw)(packed))
  rgb = np.stack([packed[..., 0], packed[..., 1:3].mean(-1), packed[..., 3]],
                 -1)
  np.testing.assert_allclose(got, (0.9 * rgb) ** (1 / 1.6), atol=1e-6)


def test_bradford_matches_colour_science():
  got = isp.bradford_adaptation(isp.D65_XY, isp.D50_XY)
  expected = colour.adaptation.matrix_chromatic_adaptation_VonKries(
      colour.xy_to_XYZ(isp.D65_XY), colour.xy_to_XYZ(isp.D50_XY),
      transform='Bradford')
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)


@pytest.mark.parametrize('fn', [
    isp.srgb_encode, isp.srgb_decode, isp.srgb_to_lab,
    lambda x: isp.xyz_to_lab(x), lambda x: isp.lab_to_xyz(100 * x),
    isp.visualize_raw,
    lambda x: isp.inverse_white_balance(x, jnp.full(3, 1e-30))])
@pytest.mark.parametrize('value', [0.0, 1.0])
def test_gradients_are_finite_at_the_range_ends(fn, value):
  channels = 4 if fn is isp.visualize_raw else 3
  grad = jax.grad(lambda x: jnp.sum(fn(x)))(jnp.full((2, 2, channels), value))
  assert np.isfinite(np.asarray(grad)).all()


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match='3 values'):
    isp.white_balance(np.ones((2, 2, 3)), np.ones(4))
  with pytest.raises(ValueError, match='3x3 matrix'):
    isp.apply_ccm(np.ones((2, 2, 3)), np.ones((3, 4)))
  with pytest.raises(ValueError, match='3 channels'):
    isp.apply_ccm(np.ones((2, 2, 4)), np.eye(3))
  with pytest.raises(ValueError, match='4 channels'):
    isp.visualize_raw(np.ones((2, 2, 3)))


# --- camera colour from metadata ----------------------------------------------

def test_xy_to_cct_matches_colour_science(variant):
  xy = np.array([[0.3127, 0.3290], [0.4476, 0.4074], [0.3457, 0.3585],
                 [0.28, 0.29], [0.5, 0.41], [0.38, 0.38]], np.float32)
  expected = uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(xy))[:, 0]
  np.testing.assert_allclose(np.asarray(variant(isp.xy_to_cct)(xy)), expected,
                             rtol=2e-6)


def test_dng_colour_without_forward_matrix_is_adapted_inverse():
  """One calibration, no ForwardMatrix: a closed form to compare with."""
  xyz_to_camera = np.array([[0.9, -0.3, -0.05], [-0.4, 1.3, 0.1],
                            [-0.05, 0.2, 0.6]])
  white_xy = np.array([0.40, 0.39])
  neutral = xyz_to_camera @ colour.xy_to_XYZ(white_xy)
  neutral = neutral / neutral[1]
  camera_to_xyz, xy = isp.dng_camera_to_xyz_d50(
      as_shot_neutral=neutral, color_matrix_1=xyz_to_camera, illuminant_1=21)
  np.testing.assert_allclose(np.asarray(xy), white_xy, atol=1e-5)
  adapt = colour.adaptation.matrix_chromatic_adaptation_VonKries(
      colour.xy_to_XYZ(white_xy), colour.xy_to_XYZ(isp.D50_XY), 'Bradford')
  expected = adapt @ np.linalg.inv(xyz_to_camera)
  ratio = np.asarray(camera_to_xyz) / expected
  np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-4)


BLACKMAGIC = dict(
    as_shot_neutral=[0.4533, 1, 0.53],
    color_matrix_1=np.reshape([0.94953, -0.45496, 0.02829, -0.35699, 1.32274,
                               0.19503, -0.04625, 0.15492, 0.73498], (3, 3)),
    color_matrix_2=np.reshape([0.68795, -0.24747, -0.04866, -0.39256, 1.20114,
                               0.15793, -0.08916, 0.20063, 0.58148], (3, 3)),
    illuminant_1=17, illuminant_2=21,
    forward_matrix_1=np.reshape([0.40018, 0.46878, 0.09517, 0.03209, 0.99278,
                                 -0.02487, -0.00228, -0.45168, 1.2794], (3, 3)),
    forward_matrix_2=np.reshape([0.61439, 0.34862, 0.00112, 0.20367, 0.95223,
                                 -0.1559, 0.01959, -0.22077, 1.02661], (3, 3)))


@pytest.mark.parametrize('use_forward', [True, False])
def test_dng_neutral_maps_to_d50_white(use_forward):
  tags = dict(BLACKMAGIC)
  if not use_forward:
    tags.pop('forward_matrix_1')
    tags.pop('forward_matrix_2')
  camera_to_xyz, xy = isp.dng_camera_to_xyz_d50(**tags)
  white = np.asarray(camera_to_xyz) @ np.asarray(tags['as_shot_neutral'])
  np.testing.assert_allclose(white / white[1], colour.xy_to_XYZ(isp.D50_XY),
                             atol=1e-5)
  # The white point is the fixed point of the interpolated ColorMatrix.
  t = float(isp.xy_to_cct(xy))
  g = np.clip((1 / t - 1 / 6500) / (1 / 2850 - 1 / 6500), 0, 1)
  cm = g * tags['color_matrix_1'] + (1 - g) * tags['color_matrix_2']
  xyz = np.linalg.solve(cm, tags['as_shot_neutral'])
  np.testing.assert_allclose(np.asarray(xy), xyz[:2] / xyz.sum(), atol=1e-5)
  srgb = np.asarray(isp.camera_to_srgb_dng(camera_to_xyz))
  out = srgb @ np.asarray(tags['as_shot_neutral'])
  # IEC 61966-2-1's 4-decimal matrix puts sRGB white 2e-4 off D65's xy.
  np.testing.assert_allclose(out / out[1], [1, 1, 1], atol=3e-4)


def test_dcraw_camera_to_srgb_equals_libraw():
  """LibRaw's rgb_cam for the Blackmagic DNG (SOURCES.md), from ColorMatrix2."""
  got = isp.camera_to_srgb_from_xyz_to_camera(BLACKMAGIC['color_matrix_2'])
  libraw = [[1.58851, -0.28631, -0.30220], [-0.21265, 1.50250, -0.28985],
            [0.02042, -0.48443, 1.46401]]
  np.testing.assert_allclose(np.asarray(got), libraw, atol=1e-5)
  np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, atol=1e-5)


def test_unknown_illuminant_raises():
  with pytest.raises(ValueError, match='CalibrationIlluminant'):
    isp.dng_camera_to_xyz_d50(as_shot_neutral=[1, 1, 1],
                              color_matrix_1=np.eye(3), illuminant_1=99)


@pytest.mark.parametrize('gains', [[0.0, 1.0, 1.0], [1.0, -2.0, 1.0],
                                   [1.0, 1.0, np.nan]])
def test_white_balance_refuses_gains_not_positive(gains):
  image = np.random.default_rng(41).uniform(0, 1, (2, 2, 3))
  for fn in (isp.white_balance, isp.inverse_white_balance):
    with pytest.raises(ValueError, match='gains must be finite and > 0'):
      fn(image, gains)


def test_traced_bad_gain_gives_nan_channel():
  image = np.random.default_rng(42).uniform(0, 1, (2, 2, 4))
  got = np.asarray(jax.jit(isp.white_balance)(image,
                                              jnp.array([2.0, 1.0, -1.0])))
  assert np.isnan(got[..., 3]).all() and np.isfinite(got[..., :3]).all()


def test_apply_ccm_refuses_a_non_square_matrix():
  for fn in (isp.apply_ccm, isp.inverse_ccm):
    with pytest.raises(ValueError, match='ccm must be a 3x3 matrix'):
      fn(np.ones((2, 2, 3)), np.ones((2, 3)))


@pytest.mark.parametrize('fn', [
    isp.srgb_encode, isp.srgb_decode, isp.srgb_to_lab, isp.xyz_to_lab,
    isp.lab_to_xyz, isp.linear_srgb_to_xyz, isp.xyz_to_linear_srgb,
    lambda x: isp.white_balance(x, [2.0, 1.0, 1.5]),
    lambda x: isp.apply_ccm(x, np.eye(3))])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int32, np.bool_])
def test_colour_functions_refuse_integer_images(fn, dtype):
  image = np.random.default_rng(43).integers(0, 2, (2, 2, 3)).astype(dtype)
  with pytest.raises(TypeError, match='must be a floating-point array'):
    fn(image)
  fn(image.astype(np.float32))  # an explicit conversion is fine
