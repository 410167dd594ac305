"""UPI unprocessing against a float64 transcription of the official code.

The references below (`_upi_*`) restate google-research/unprocessing
(`unprocess.py`, `process.py`) in numpy, including TensorFlow's legacy
`resize_bilinear` (align_corners=False, half_pixel_centers=False) that its
demosaic relies on; they share no code with rawjax.
"""

import functools

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rawjax import isp

RNG = np.random.default_rng(0)
N_SAMPLES = 20000
# KS p-values are deterministic (fixed keys); 1e-3 only fails on a real
# mismatch of the distribution.
P_MIN = 1e-3

XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469],
     [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906],
     [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496],
     [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933],
     [-0.097, 0.1581, 0.5181]]])
RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])


# --- float64 transcription of the official code ------------------------------

def _upi_rgb2cam(weights):
  xyz2cam = np.einsum('n,nij->ij', weights, XYZ_TO_CAMS) / weights.sum()
  rgb2cam = xyz2cam @ RGB_TO_XYZ
  return rgb2cam / rgb2cam.sum(-1, keepdims=True)


def _upi_unprocess(image, rgb2cam, rgb_gain, red_gain, blue_gain):
  """(H, W, 3) sRGB -> (H/2, W/2, 4) RGGB and the pre-clip camera image."""
  x = np.clip(image.astype(np.float64), 0, 1)
  x = 0.5 - np.sin(np.arcsin(1 - 2 * x) / 3)
  x = np.maximum(x, 1e-8) ** 2.2
  x = np.tensordot(x, rgb2cam, axes=[[-1], [-1]])
  gains = np.array([1 / red_gain, 1.0, 1 / blue_gain]) / rgb_gain
  gray = x.mean(-1, keepdims=True)
  mask = (np.maximum(gray - 0.9, 0) / 0.1) ** 2
  x = x * np.maximum(mask + (1 - mask) * gains, gains)
  unclipped = x
  x = np.clip(x, 0, 1)
  packed = np.stack([x[0::2, 0::2, 0], x[0::2, 1::2, 1], x[1::2, 0::2, 1],
                     x[1::2, 1::2, 2]], axis=-1)
  return packed, unclipped


def _tf_resize_bilinear_x2(plane):
  """TF1 resize_bilinear of (h, w) to (2h, 2w), legacy pixel alignment."""
  h, w = plane.shape
  def axis(n):
    src = np.arange(2 * n) * 0.5
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n - 1), src - lo
  y0, y1, fy = axis(h)
  x0, x1, fx = axis(w)
  top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
  bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
  return top * (1 - fy[:, None]) + bottom * fy[:, None]


def _space_to_depth(x):  # (H, W) -> (H/2, W/2, 4), block order (0,0),(0,1)..
  return np.stack([x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2],
                   x[1::2, 1::2]], -1)


def _depth_to_space(x):  # inverse of _space_to_depth
  h, w, _ = x.shape
  out = np.empty((2 * h, 2 * w))
  out[0::2, 0::2], out[0::2, 1::2] = x[..., 0], x[..., 1]
  out[1::2, 0::2], out[1::2, 1::2] = x[..., 2], x[..., 3]
  return out


def _upi_demosaic(packed):
  """The official `process.demosaic` for one RGGB image, in numpy."""
  red = _tf_resize_bilinear_x2(packed[..., 0])
  green_red = _tf_resize_bilinear_x2(packed[..., 1][:, ::-1])[:, ::-1]
  green_blue = _tf_resize_bilinear_x2(packed[..., 2][::-1])[::-1]
  green_red, green_blue = _space_to_depth(green_red), _space_to_depth(
      green_blue)
  green = _depth_to_space(np.stack([
      (green_red[..., 0] + green_blue[..., 0]) / 2, green_red[..., 1],
      green_blue[..., 2], (green_red[..., 3] + green_blue[..., 3]) / 2], -1))
  blue = _tf_resize_bilinear_x2(packed[..., 3][::-1, ::-1])[::-1, ::-1]
  return np.stack([red, green, blue], -1)


def _upi_process(packed, red_gain, blue_gain, cam2rgb):
  """The official `process.process` for one image, in numpy."""
  x = np.clip(packed * np.array([red_gain, 1, 1, blue_gain]), 0, 1)
  x = _upi_demosaic(x)
  x = np.clip(np.einsum('ij,hwj->hwi', cam2rgb, x), 0, 1)
  return np.maximum(x, 1e-8) ** (1 / 2.2)


# One compilation each, shared by the tests that are not about eager mode.
unprocess_jit = jax.jit(isp.unprocess, static_argnames=('layout', 'pattern'))
unprocess_with_metadata_jit = jax.jit(isp.unprocess_with_metadata)
upi_process_jit = jax.jit(isp.upi_process, static_argnames=(
    'demosaic', 'apply_rgb_gain', 'apply_tone_curve'))


batched_metadata_jit = jax.jit(functools.partial(isp.random_upi_metadata,
                                                 shape=(4,)))


def _metadata(seed):
  return isp.random_upi_metadata(jax.random.PRNGKey(seed))


def _desaturated_midtones(shape, rng=RNG):
  """sRGB images inside the region where no UPI stage clips.

  Gray levels in [0.1, 0.7] and chroma within +-15% of the gray: the linear
  camera values stay in about [0.01, 0.55] for every camera mix (positive, so
  no clip at 0), the camera gray stays far below the 0.9 inflection of the
  safe gains, and the raw (camera / rgb_gain / WB) stays below 1 unless
  1 / rgb_gain > 1.8 (a 10-sigma draw). The round-trip tests assert these
  conditions on the float64 reference.
  """
  gray = rng.uniform(0.1, 0.7, shape[:-1] + (1,))
  chroma = rng.uniform(-0.15, 0.15, shape) * gray
  return (gray + chroma).astype(np.float32)


# --- sampled parameters ------------------------------------------------------

def test_random_ccm_rows_sum_to_one_and_match_the_official_mix():
  key = jax.random.PRNGKey(1)
  ccms = np.asarray(isp.random_ccm(key, shape=(64,)), np.float64)
  assert ccms.shape == (64, 3, 3)
  np.testing.assert_allclose(ccms.sum(-1), 1.0, atol=1e-6)
  # The documented draw: weights = uniform(key, shape + (4,), 1e-8, 1e8).
  weights = np.asarray(jax.random.uniform(key, (64, 4), minval=1e-8,
                                          maxval=1e8), np.float64)
  assert weights.min() >= 1e-8 and weights.max() <= 1e8
  reference = np.stack([_upi_rgb2cam(w) for w in weights])
  np.testing.assert_allclose(ccms, reference, atol=2e-6)
  # Each row is a convex combination of the cameras' row-normalised rows
  # (weights w_i * row sum_i, all positive), so it lies within their range.
  per_camera = np.stack([_upi_rgb2cam(np.eye(4)[i]) for i in range(4)])
  assert np.all(ccms >= per_camera.min(0) - 1e-6)
  assert np.all(ccms <= per_camera.max(0) + 1e-6)
  # Different images get different matrices.
  assert np.ptp(ccms[:, 0, 0]) > 1e-3


def test_random_ccm_single_camera_is_dcraw_rgb_cam(variant):
  camera = XYZ_TO_CAMS[2]
  fn = variant(functools.partial(isp.random_ccm, xyz_to_cameras=camera[None]))
  srgb_to_cam = np.asarray(fn(jax.random.PRNGKey(0)))
  np.testing.assert_allclose(srgb_to_cam, _upi_rgb2cam(np.eye(4)[2]),
                             atol=1e-6)
  # UPI's cam2rgb is LibRaw's rgb_cam for that XYZ -> camera matrix.
  md = isp.UPIMetadata.create(srgb_to_cam=srgb_to_cam, rgb_gain=1.0,
                              red_gain=2.0, blue_gain=1.7)
  np.testing.assert_allclose(
      np.asarray(md.cam_to_srgb),
      np.asarray(isp.camera_to_srgb_from_xyz_to_camera(camera)), atol=1e-5)
  with pytest.raises(ValueError, match='xyz_to_cameras'):
    isp.random_ccm(jax.random.PRNGKey(0), xyz_to_cameras=np.eye(3))


def test_random_gains_ranges_and_distributions(variant):
  gains = variant(functools.partial(isp.random_gains, shape=(N_SAMPLES,)))(
      jax.random.PRNGKey(2))
  red, blue = np.asarray(gains.red_gain), np.asarray(gains.blue_gain)
  inverse_rgb = 1.0 / np.asarray(gains.rgb_gain, np.float64)
  assert red.shape == blue.shape == inverse_rgb.shape == (N_SAMPLES,)
  assert red.min() >= 1.9 and red.max() <= 2.4
  assert blue.min() >= 1.5 and blue.max() <= 1.9
  assert red.min() < 1.905 and red.max() > 2.395  # fills its range
  assert stats.kstest(red, 'uniform', args=(1.9, 0.5)).pvalue > P_MIN
  assert stats.kstest(blue, 'uniform', args=(1.5, 0.4)).pvalue > P_MIN
  # rgb_gain = 1 / N(0.8, 0.1^2).
  assert stats.kstest(inverse_rgb, 'norm', args=(0.8, 0.1)).pvalue > P_MIN
  assert abs(inverse_rgb.mean() - 0.8) < 4 * 0.1 / np.sqrt(N_SAMPLES)
  assert abs(inverse_rgb.std() - 0.1) < 0.003
  assert inverse_rgb.min() > 0  # never a negative or infinite gain here
  # Independent draws of the three gains.
  assert abs(np.corrcoef(red, blue)[0, 1]) < 0.03
  assert abs(np.corrcoef(red, inverse_rgb)[0, 1]) < 0.03


def test_random_upi_metadata_is_consistent():
  single = isp.random_upi_metadata(jax.random.PRNGKey(3), layout='mosaic',
                                   pattern='GBRG')
  assert single.layout == 'mosaic' and single.pattern == 'GBRG'
  assert single.srgb_to_cam.shape == (3, 3) and single.rgb_gain.shape == ()
  md = batched_metadata_jit(jax.random.PRNGKey(3))
  assert md.srgb_to_cam.shape == (4, 3, 3) and md.rgb_gain.shape == (4,)
  identity = np.einsum('nij,njk->nik', np.asarray(md.srgb_to_cam, np.float64),
                       np.asarray(md.cam_to_srgb, np.float64))
  np.testing.assert_allclose(identity, np.broadcast_to(np.eye(3), (4, 3, 3)),
                             atol=1e-5)
  # cam_to_srgb rows sum to 1 as well (white -> white).
  np.testing.assert_allclose(np.asarray(md.cam_to_srgb).sum(-1), 1, atol=1e-5)
  with pytest.raises(ValueError, match='layout'):
    isp.random_upi_metadata(jax.random.PRNGKey(0), layout='planar')
  with pytest.raises(ValueError, match='CFA'):
    isp.random_upi_metadata(jax.random.PRNGKey(0), pattern='RGBW')
  with pytest.raises(ValueError, match='batch shape'):
    isp.UPIMetadata.create(srgb_to_cam=np.eye(3), rgb_gain=[1.0, 1.0],
                           red_gain=2.0, blue_gain=1.7)


# --- tone curve and gamma ----------------------------------------------------

def test_inverse_smoothstep_equals_the_official_formula(variant):
  y = np.concatenate([np.linspace(0, 1, 2001), [1e-7, 1 - 1e-7, -0.5, 1.5]])
  y = y.astype(np.float32)
  ours = np.asarray(variant(isp.inverse_smoothstep)(y))
  clipped = np.clip(y.astype(np.float64), 0, 1)
  official = 0.5 - np.sin(np.arcsin(1 - 2 * clipped) / 3)
  np.testing.assert_allclose(ours, official, atol=3e-7)
  forward = np.asarray(variant(isp.smoothstep)(y))
  np.testing.assert_allclose(forward, 3 * clipped**2 - 2 * clipped**3,
                             atol=3e-7)


# 40 draws of 64 float32 values in [0, 1] for the round-trip properties.
_unit_floats = hypothesis.given(hnp.arrays(
    np.float32, (64,), elements=hypothesis.strategies.floats(0, 1, width=32)))
_forty_examples = hypothesis.settings(deadline=None, max_examples=40)


@_forty_examples
@_unit_floats
def test_inverse_smoothstep_inverts_smoothstep(x):
  y = np.asarray(isp.smoothstep(x))
  np.testing.assert_allclose(np.asarray(isp.smoothstep(
      isp.inverse_smoothstep(y))), y, atol=1e-6)
  # Near 0 and 1 smoothstep is flat, so float32 y (spacing 6e-8 below 1)
  # pins x only to sqrt(6e-8 / 3) ~ 1.4e-4 there; elsewhere much tighter.
  back = np.asarray(isp.inverse_smoothstep(y))
  slope = np.maximum(6 * x * (1 - x), 1e-12)
  tolerance = np.minimum(2e-6 + 1.2e-7 / slope, 1.5e-4)
  assert np.all(np.abs(back - x) <= tolerance)


@_forty_examples
@_unit_floats
def test_gamma_round_trips(x):
  expanded = np.asarray(isp.gamma_expansion(x))
  np.testing.assert_allclose(expanded, np.maximum(x, 1e-8) ** 2.2,
                             rtol=2e-6, atol=1e-12)
  back = np.asarray(isp.gamma_compression(expanded))
  # UPI's 1e-8 floor: values below 1e-8 ** (1 / 2.2) = 2.3e-4 come back there.
  np.testing.assert_allclose(back, np.maximum(x, 1e-8 ** (1 / 2.2)),
                             rtol=3e-6, atol=1e-9)
  compressed = np.asarray(isp.gamma_compression(x))
  np.testing.assert_allclose(np.asarray(isp.gamma_expansion(compressed)),
                             np.maximum(x, 1e-8), rtol=5e-6)


def test_tone_and_gamma_gradients_are_finite_at_the_ends():
  x = jnp.array([0.0, 1e-9, 1e-4, 0.5, 1 - 1e-7, 1.0])
  functions = (isp.inverse_smoothstep, isp.smoothstep, isp.gamma_expansion,
               isp.gamma_compression)
  all_grads = jax.jit(lambda x: [jax.vmap(jax.grad(fn))(x)
                                 for fn in functions])(x)
  for fn, grads in zip(functions, all_grads):
    assert np.all(np.isfinite(np.asarray(grads))), fn.__name__
  # The interior slope of the inverse is exact: 1 / smoothstep'(x).
  grad = float(jax.grad(isp.inverse_smoothstep)(0.3))
  x03 = float(isp.inverse_smoothstep(0.3))
  np.testing.assert_allclose(grad, 1 / (6 * x03 * (1 - x03)), rtol=1e-5)


# --- unprocess and its stages -----------------------------------------------

def test_unprocess_matches_the_official_code(variant):
  # Bright, saturated content exercises the safe gains and both clips.
  image = RNG.uniform(0, 1, (4, 6, 3)).astype(np.float32)
  image[0, :4] = [[1.0, 1.0, 1.0], [1.0, 0.97, 0.99], [0, 0, 1], [1, 0, 0]]
  sampled = [_metadata(seed) for seed in range(2)]
  # rgb_gain < 1 (1 in 44 draws) brightens the raw, so highlights clip at 1.
  brightening = isp.UPIMetadata.create(
      srgb_to_cam=sampled[0].srgb_to_cam, rgb_gain=0.8, red_gain=1.9,
      blue_gain=1.5)
  unprocess = variant(isp.unprocess_with_metadata)
  for md in sampled + [brightening]:
    reference, unclipped = _upi_unprocess(
        image, np.asarray(md.srgb_to_cam, np.float64), float(md.rgb_gain),
        float(md.red_gain), float(md.blue_gain))
    ours = np.asarray(unprocess(image, md))
    assert ours.shape == (2, 3, 4)
    np.testing.assert_allclose(ours, reference, atol=2e-6)
  assert unclipped.max() > 1.0 and unclipped.min() < 0.0  # both clips acted
  # Saturated white stays saturated: the safe gains never dim it below 1.
  white = unprocess(np.ones((4, 6, 3), np.float32), brightening)
  np.testing.assert_allclose(np.asarray(white), 1.0, atol=1e-6)


def test_unprocess_draws_its_metadata_from_the_key(variant):
  image = _desaturated_midtones((4, 6, 3))
  key = jax.random.PRNGKey(5)
  raw, md = variant(isp.unprocess)(key, image)
  expected = isp.random_upi_metadata(key)
  for field in ('srgb_to_cam', 'rgb_gain', 'red_gain', 'blue_gain'):
    np.testing.assert_allclose(np.asarray(getattr(md, field)),
                               np.asarray(getattr(expected, field)),
                               rtol=1e-6)
  np.testing.assert_allclose(
      np.asarray(raw), np.asarray(isp.unprocess_with_metadata(image, expected)),
      atol=1e-7)
  assert float(raw.min()) >= 0 and float(raw.max()) <= 1


def test_layouts_sample_the_same_camera_image():
  image = RNG.uniform(0, 1, (4, 6, 3)).astype(np.float32)
  md = _metadata(6)
  for pattern in isp.PATTERNS:
    def with_layout(layout, pattern=pattern):
      return isp.unprocess_with_metadata(image, md.replace(layout=layout,
                                                           pattern=pattern))
    rgb, mosaic, packed = map(with_layout, ('rgb', 'mosaic', 'packed'))
    assert rgb.shape == (4, 6, 3) and mosaic.shape == (4, 6)
    assert packed.shape == (2, 3, 4)
    np.testing.assert_array_equal(np.asarray(mosaic),
                                  np.asarray(isp.mosaic(rgb, pattern=pattern)))
    np.testing.assert_array_equal(np.asarray(packed),
                                  np.asarray(isp.pack(mosaic, pattern=pattern)))
    # The red plane comes from the red sites of the pattern.
    (r, c), *_ = isp.channel_offsets(pattern)
    np.testing.assert_array_equal(np.asarray(packed[..., 0]),
                                  np.asarray(rgb[r::2, c::2, 0]))


def test_unprocess_draws_one_parameter_set_per_image():
  images = _desaturated_midtones((4, 4, 6, 3))
  raw, md = unprocess_jit(jax.random.PRNGKey(7), images)
  assert raw.shape == (4, 2, 3, 4) and md.srgb_to_cam.shape == (4, 3, 3)
  assert len(set(np.asarray(md.red_gain).tolist())) == 4
  assert len(set(np.asarray(md.srgb_to_cam[:, 0, 0]).tolist())) == 4
  np.testing.assert_allclose(
      np.asarray(raw), np.asarray(unprocess_with_metadata_jit(images, md)),
      atol=1e-6)


# --- demosaic and the forward pipeline --------------------------------------

def test_demosaic_upi_equals_the_official_demosaic(variant):
  packed = RNG.uniform(0, 1, (2, 2, 3, 4)).astype(np.float32)
  ours = np.asarray(variant(functools.partial(isp.demosaic_upi,
                                              pattern='RGGB'))(packed))
  for i in range(2):
    np.testing.assert_allclose(ours[i], _upi_demosaic(packed[i]), atol=1e-6)
  # A flat field stays flat (edge replication), unlike the reflected masks.
  flat = np.asarray(isp.demosaic_upi(np.ones((2, 3, 4)), pattern='RGGB'))
  np.testing.assert_allclose(flat, 1.0, atol=1e-7)


def test_demosaic_upi_is_bilinear_inside_the_image():
  mosaic = RNG.uniform(0, 1, (8, 12)).astype(np.float32)

  @jax.jit
  def both(m):
    return [(isp.demosaic_upi(isp.pack(m, pattern=p), pattern=p),
             isp.demosaic_bilinear(m, pattern=p)) for p in patterns]

  # UPI's phase, and the one where every channel sits elsewhere in the cell.
  patterns = ('RGGB', 'GBRG')
  for pattern, (ours, bilinear) in zip(patterns, both(mosaic)):
    ours, bilinear = np.asarray(ours), np.asarray(bilinear)
    np.testing.assert_allclose(ours[1:-1, 1:-1], bilinear[1:-1, 1:-1],
                               atol=1e-6)
    assert np.abs(ours - bilinear).max() > 0.1  # the outer ring differs
    # Each site keeps its own sample.
    np.testing.assert_array_equal(
        np.asarray(isp.mosaic(ours, pattern=pattern)), mosaic)


def test_upi_process_official_mode_matches_process_py(variant):
  packed = RNG.uniform(0, 0.6, (4, 2, 3, 4)).astype(np.float32)
  md = batched_metadata_jit(jax.random.PRNGKey(8))
  fn = variant(functools.partial(isp.upi_process, apply_rgb_gain=False,
                                 apply_tone_curve=False))
  ours = np.asarray(fn(packed, md))
  for i in range(4):
    reference = _upi_process(packed[i], float(md.red_gain[i]),
                             float(md.blue_gain[i]),
                             np.asarray(md.cam_to_srgb[i], np.float64))
    np.testing.assert_allclose(ours[i], reference, atol=2e-6)


def _assert_no_clipping(image, md):
  """The round trip's precondition, checked on the float64 reference."""
  _, camera = _upi_unprocess(
      image, np.asarray(md.srgb_to_cam, np.float64), float(md.rgb_gain),
      float(md.red_gain), float(md.blue_gain))
  linear_gray = (0.5 - np.sin(np.arcsin(1 - 2 * image.astype(np.float64)) /
                              3)) ** 2.2
  assert camera.min() > 1e-3 and camera.max() < 0.99
  assert linear_gray.mean(-1).max() < 0.9  # the safe-gain mask stays 0
  rendered = camera * np.array([float(md.red_gain), 1, float(md.blue_gain)])
  assert (rendered * float(md.rgb_gain)).max() < 0.99


def test_upi_process_inverts_unprocess_without_noise():
  """Done-when: upi_process(unprocess(x)) == x to 1e-4, noise off.

  Full-resolution camera RGB ('rgb' layout) has no missing samples, so every
  pixel of 16 random images under 16 random cameras (vmapped over keys and
  images) round-trips; the images avoid the highlight and gamut clipping
  (`_desaturated_midtones`), which `_assert_no_clipping` confirms.
  """
  images = _desaturated_midtones((16, 4, 6, 3))
  keys = jax.random.split(jax.random.PRNGKey(9), 16)
  unprocess_rgb = functools.partial(isp.unprocess, layout='rgb')
  raw, md = jax.jit(jax.vmap(unprocess_rgb))(keys, images)
  back = np.asarray(upi_process_jit(raw, md))
  assert np.abs(back - images).max() <= 1e-4
  for i in range(16):
    _assert_no_clipping(images[i], jax.tree.map(lambda a, i=i: a[i], md))
  # vmap drew each image's parameters from its own key.
  for i in (0, 15):
    md_i = isp.random_upi_metadata(keys[i], layout='rgb')
    np.testing.assert_allclose(np.asarray(md.srgb_to_cam[i]),
                               np.asarray(md_i.srgb_to_cam), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(md.rgb_gain[i]),
                               np.asarray(md_i.rgb_gain), rtol=1e-6)


def test_round_trip_through_the_bayer_mosaic():
  """Bayer sampling drops 2/3 of the values; the demosaic restores them
  exactly where they are bilinear in the raw: flat colours (UPI's edge
  replication keeps even the borders exact)."""
  colours = _desaturated_midtones((4, 1, 1, 3))
  images = np.broadcast_to(colours, (4, 4, 6, 3))
  md = batched_metadata_jit(jax.random.PRNGKey(10))
  for layout, pattern in (('packed', 'RGGB'), ('mosaic', 'GBRG')):
    md = md.replace(layout=layout, pattern=pattern)
    raw = unprocess_with_metadata_jit(images, md)
    assert np.abs(np.asarray(upi_process_jit(raw, md)) - images).max() <= 1e-4
  # 'bilinear' (reflected masks) is exact only away from the border.
  bilinear = np.asarray(upi_process_jit(raw, md, demosaic='bilinear'))
  assert np.abs(bilinear - images)[:, 1:-1, 1:-1].max() <= 1e-4
  assert np.abs(bilinear - images).max() > 1e-3


def test_gradients_are_finite():
  image = jnp.asarray(RNG.uniform(0, 1, (4, 6, 3)), jnp.float32)
  image = image.at[0, 0].set(0.0).at[0, 1].set(1.0)
  md = _metadata(11)

  def loss(x, md):
    raw = isp.unprocess_with_metadata(x, md)
    return jnp.sum(isp.upi_process(raw, md) ** 2)

  grad_x, grad_md = jax.jit(jax.grad(loss, argnums=(0, 1)))(image, md)
  assert np.all(np.isfinite(np.asarray(grad_x)))
  assert np.abs(np.asarray(grad_x)).max() > 0
  for leaf in jax.tree.leaves(grad_md):
    assert np.all(np.isfinite(np.asarray(leaf)))


def test_bad_input_is_rejected():
  md = _metadata(0)
  with pytest.raises(ValueError, match='3 channels'):
    isp.unprocess(jax.random.PRNGKey(0), np.zeros((4, 4, 4)))
  with pytest.raises(ValueError, match='even'):
    isp.unprocess(jax.random.PRNGKey(0), np.zeros((5, 4, 3)))
  with pytest.raises(ValueError, match='layout'):
    isp.unprocess(jax.random.PRNGKey(0), np.zeros((4, 4, 3)), layout='bayer')
  with pytest.raises(ValueError, match="'packed'"):
    isp.upi_process(np.zeros((4, 4, 3)), md)
  with pytest.raises(ValueError, match='demosaic'):
    isp.upi_process(np.zeros((2, 2, 4)), md, demosaic='ahd')
  with pytest.raises(ValueError, match='batch shape'):
    isp.upi_process(np.zeros((3, 2, 2, 4)),
                    batched_metadata_jit(jax.random.PRNGKey(0)))
  with pytest.raises(TypeError, match='UPIMetadata'):
    isp.upi_process(np.zeros((2, 2, 4)), isp.RawMetadata.create(
        pattern='RGGB', black_level=0, white_level=1, wb_gains=[2, 1, 1.5],
        cam_to_srgb=np.eye(3)))
