"""Lens/colour shading and the DNG GainMap opcode (rawjax.isp.shading)."""

import functools
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

PHONE = dict(corner_falloff=[0.55, 0.65, 0.65, 0.7], center=(0.06, -0.04),
             anisotropy=1.1)


def _interpolation_bound(falloff, map_points):
  """Bound on |gain_from_gain_maps(gain_maps_from_falloff(s)) - 1 / s|.

  Both steps are linear interpolations of g = 1 / s: the map samples come
  from the channel's pixel centres (spacing 1 packed pixel), and the reader
  interpolates the samples bilinearly (spacing h / (MapPointsV - 1) and
  w / (MapPointsH - 1) packed pixels). Linear interpolation with spacing d
  errs by at most d^2 / 8 max|g''| per axis; g'' is estimated from second
  differences of the exact gain.
  """
  g = 1.0 / np.asarray(falloff, np.float64)
  h, w, _ = g.shape
  gyy = np.abs(g[2:] - 2 * g[1:-1] + g[:-2]).max()
  gxx = np.abs(g[:, 2:] - 2 * g[:, 1:-1] + g[:, :-2]).max()
  dv, du = h / (map_points[0] - 1), w / (map_points[1] - 1)
  return (dv**2 + 1) / 8 * gyy + (du**2 + 1) / 8 * gxx


# --- the falloff model --------------------------------------------------------


def test_falloff_shape_range_and_corner_value():
  s = np.asarray(isp.radial_falloff(30, 40, corner_falloff=[0.4, 0.5, 0.5,
                                                            0.6]))
  assert s.shape == (30, 40, 4) and s.dtype == np.float32
  assert np.all(s > 0) and np.all(s <= 1)
  # Circular falloff about the centre: the centre pixels lose almost nothing,
  # the corner pixel (half a pixel inside the corner) almost exactly f.
  np.testing.assert_allclose(s[14:16, 19:21], 1.0, atol=2e-3)
  r_corner = np.hypot(14.5, 19.5) / np.hypot(15, 20)
  np.testing.assert_allclose(s[0, 0], 1 - np.array([0.4, 0.5, 0.5, 0.6]) *
                             r_corner**2, rtol=1e-6)
  assert np.all(s[0, 0] > 1 - np.array([0.4, 0.5, 0.5, 0.6]))


def test_falloff_decreases_with_radius():
  h, w = 24, 36
  s = np.asarray(isp.radial_falloff(h, w, corner_falloff=0.6,
                                    exponent=3.0))[..., 0]
  y, x = np.mgrid[:h, :w] + 0.5
  r = np.hypot(y - h / 2, x - w / 2).ravel()
  order = np.argsort(r, kind='stable')
  values = s.ravel()[order]
  # Equal radii give equal values (to rounding), larger radii lower values.
  assert np.all(np.diff(values) <= 1e-6)
  assert values[0] > values[-1]


def test_center_offset_moves_the_maximum_and_the_farthest_corner():
  h, w = 40, 40
  s = np.asarray(isp.radial_falloff(h, w, corner_falloff=0.5,
                                    center=(0.5, -0.5)))[..., 0]
  # dy = +0.5 half-heights down, dx = -0.5 half-widths left: (30, 10).
  i, j = np.unravel_index(np.argmax(s), s.shape)
  assert abs(i + 0.5 - 30) <= 0.5 and abs(j + 0.5 - 10) <= 0.5
  # The farthest corner is now the top-right one; it has the minimum.
  assert np.unravel_index(np.argmin(s), s.shape) == (0, w - 1)
  assert s[h - 1, 0] > s[0, w - 1]


def test_anisotropy_stretches_the_horizontal_scale():
  h, w, a = 41, 41, 2.0
  s1 = np.asarray(isp.radial_falloff(h, w, corner_falloff=0.5))[..., 0]
  s2 = np.asarray(isp.radial_falloff(h, w, corner_falloff=0.5,
                                     anisotropy=a))[..., 0]
  c = h // 2
  # Circular: same loss at the same distance along both axes.
  np.testing.assert_allclose(s1[c, c + 10], s1[c + 10, c], rtol=1e-6)
  # a = 2: 10 pixels horizontally lose what 5 pixels vertically lose.
  assert s2[c, c + 10] > s2[c + 10, c]
  np.testing.assert_allclose(1 - s2[c, c + 10], 1 - s2[c + 5, c], rtol=1e-5)


def test_falloff_under_jit_and_vmap():
  fn = functools.partial(isp.radial_falloff, 8, 12)
  params = dict(corner_falloff=jnp.array([0.2, 0.3, 0.3, 0.4]),
                center=jnp.array([0.1, 0.2]), anisotropy=jnp.array(1.3),
                exponent=jnp.array(2.5))
  eager = fn(**params)
  jitted = jax.jit(lambda p: fn(**p))(params)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-7)
  many = jax.vmap(lambda f: fn(corner_falloff=f))(jnp.array([0.1, 0.5]))
  assert many.shape == (2, 8, 12, 4)


def test_falloff_gradients_are_finite():
  # An odd size puts a pixel centre exactly on the optical centre (r = 0).
  def loss(f, c, a, p):
    return jnp.sum(isp.radial_falloff(9, 9, corner_falloff=f, center=c,
                                      anisotropy=a, exponent=p))
  grads = jax.grad(loss, argnums=(0, 1, 2, 3))(
      jnp.array([0.0, 0.3, 0.3, 0.9]), jnp.array([0.0, 0.0]),
      jnp.array(1.0), jnp.array(2.0))
  for g in grads:
    assert np.all(np.isfinite(np.asarray(g)))
  assert float(grads[3]) != 0.0


@pytest.mark.parametrize('kwargs, match', [
    (dict(corner_falloff=1.0), 'corner_falloff'),
    (dict(corner_falloff=[0.1, 0.2]), 'corner_falloff'),
    (dict(corner_falloff=-0.1), 'corner_falloff'),
    (dict(corner_falloff=0.5, anisotropy=0.0), 'anisotropy'),
    (dict(corner_falloff=0.5, exponent=-1.0), 'exponent'),
    (dict(corner_falloff=0.5, center=(0.0,)), 'center'),
])
def test_falloff_rejects_bad_parameters(kwargs, match):
  with pytest.raises(ValueError, match=match):
    isp.radial_falloff(8, 8, **kwargs)
  with pytest.raises(ValueError, match='height and width'):
    isp.radial_falloff(0, 8, corner_falloff=0.5)


# --- apply / correct ----------------------------------------------------------


def test_correct_inverts_apply(variant):
  rng = np.random.default_rng(11)
  h, w = rng.integers(2, 20, size=2)
  for _ in range(3):
    falloff = isp.radial_falloff(
        int(h), int(w), corner_falloff=rng.uniform(0, 0.9, 4),
        center=rng.uniform(-0.5, 0.5, 2), anisotropy=rng.uniform(0.5, 2),
        exponent=rng.uniform(1, 4))
    x = rng.uniform(0, 1, (3, int(h), int(w), 4)).astype(np.float32)
    shaded = variant(isp.apply_shading)(x, falloff)
    np.testing.assert_allclose(np.asarray(shaded), x * np.asarray(falloff),
                               rtol=1e-6)
    back = variant(isp.correct_shading)(shaded, falloff)
    np.testing.assert_allclose(np.asarray(back), x, rtol=2e-6, atol=1e-7)


def test_correct_shading_gradient_is_finite_at_zero_falloff():
  falloff = jnp.array([0.0, 1e-9, 0.5, 1.0])
  x = jnp.ones((1, 1, 4))
  out = isp.correct_shading(x, falloff)
  assert np.all(np.isfinite(np.asarray(out)))
  gx, gf = jax.grad(lambda a, b: jnp.sum(isp.correct_shading(a, b)),
                    argnums=(0, 1))(x, falloff)
  assert np.all(np.isfinite(np.asarray(gx)))
  assert np.all(np.isfinite(np.asarray(gf)))


def test_shading_rejects_bad_shapes():
  with pytest.raises(ValueError, match='4 channels'):
    isp.apply_shading(np.ones((4, 4, 3)), np.ones((4, 4, 3)))
  with pytest.raises(ValueError, match='does not broadcast'):
    isp.correct_shading(np.ones((4, 4, 4)), np.ones((5, 4, 4)))


# --- the GainMap opcode bytes -------------------------------------------------


def _random_gain_map(rng, **overrides):
  points_v, points_h = rng.integers(1, 6, size=2)
  fields = dict(
      Top=int(rng.integers(0, 2)), Left=int(rng.integers(0, 2)), Bottom=40,
      Right=60, Plane=0, Planes=1, RowPitch=2, ColPitch=2,
      MapPointsV=int(points_v), MapPointsH=int(points_h),
      MapSpacingV=float(rng.uniform(0.1, 0.4)),
      MapSpacingH=float(rng.uniform(0.1, 0.4)),
      MapOriginV=float(rng.uniform(-0.1, 0.2)),
      MapOriginH=float(rng.uniform(-0.1, 0.2)), MapPlanes=1,
      gains=rng.uniform(0.8, 3.0, (points_v, points_h, 1)))
  fields.update(overrides)
  if fields['MapPointsV'] == 1:
    fields.update(MapSpacingV=1.0, MapOriginV=0.0)
  if fields['MapPointsH'] == 1:
    fields.update(MapSpacingH=1.0, MapOriginH=0.0)
  return isp.GainMap(**fields)


def test_gain_map_bytes_follow_the_spec_layout():
  rng = np.random.default_rng(3)
  gm = _random_gain_map(rng, MapPointsV=3, MapPointsH=4, MapPlanes=2,
                        gains=rng.uniform(0.5, 2, (3, 4, 2)))
  data = gm.to_bytes()
  assert len(data) == 76 + 4 * 3 * 4 * 2
  # Independent decoding of DNG 1.4 chapter 7: ten uint32 (the area spec
  # and the map size), four float64, uint32 MapPlanes, float32 gains; all
  # big-endian.
  ints = struct.unpack('>10I', data[:40])
  assert ints == (gm.Top, gm.Left, 40, 60, 0, 1, 2, 2, 3, 4)
  assert struct.unpack('>4d', data[40:72]) == (
      gm.MapSpacingV, gm.MapSpacingH, gm.MapOriginV, gm.MapOriginH)
  assert struct.unpack('>I', data[72:76]) == (2,)
  gains = struct.unpack(f'>{3 * 4 * 2}f', data[76:])
  # Row by row, then column, then plane.
  np.testing.assert_array_equal(np.array(gains, np.float32).reshape(3, 4, 2),
                                gm.gains)
  back = isp.GainMap.from_bytes(data)
  assert back.to_bytes() == data
  for name in ('Top', 'Left', 'MapPointsV', 'MapOriginH', 'MapPlanes'):
    assert getattr(back, name) == getattr(gm, name)


def test_opcode_list_round_trip_keeps_unknown_opcodes():
  rng = np.random.default_rng(4)
  maps = [_random_gain_map(rng) for _ in range(3)]
  unknown = isp.OpaqueOpcode(opcode_id=1, dng_version=(1, 3, 0, 0), flags=1,
                             parameters=bytes(rng.integers(0, 256, 20,
                                                           dtype=np.uint8)))
  ops = [maps[0], unknown, maps[1], maps[2]]
  data = isp.encode_opcode_list(ops)
  # The list header and the first opcode header, decoded by hand.
  assert struct.unpack('>I', data[:4]) == (4,)
  opcode_id, v0, v1, v2, v3, flags, size = struct.unpack('>I4BII', data[4:20])
  assert (opcode_id, (v0, v1, v2, v3), flags) == (9, (1, 3, 0, 0), 0)
  assert size == len(maps[0].to_bytes())
  decoded = isp.decode_opcode_list(data)
  assert [type(op) for op in decoded] == [isp.GainMap, isp.OpaqueOpcode,
                                          isp.GainMap, isp.GainMap]
  assert decoded[1] == unknown
  assert isp.encode_opcode_list(decoded) == data
  assert isp.decode_opcode_list(isp.encode_opcode_list([])) == []


def test_malformed_opcode_lists_raise():
  rng = np.random.default_rng(5)
  data = isp.encode_opcode_list([_random_gain_map(rng), _random_gain_map(rng)])
  with pytest.raises(ValueError, match='count alone'):
    isp.decode_opcode_list(data[:3])
  with pytest.raises(ValueError, match='truncated'):
    isp.decode_opcode_list(data[:-1])
  with pytest.raises(ValueError, match='header'):
    isp.decode_opcode_list(struct.pack('>I', 3) + data[4:])
  with pytest.raises(ValueError, match='end at byte'):
    isp.decode_opcode_list(data + b'\0')
  # A GainMap whose byte count disagrees with its map size.
  gm = _random_gain_map(rng).to_bytes()
  bad = struct.pack('>II4BII', 1, 9, 1, 3, 0, 0, 0, len(gm) - 4) + gm[:-4]
  with pytest.raises(ValueError, match=r'opcode #0 \(GainMap\).*needs'):
    isp.decode_opcode_list(bad)
  with pytest.raises(ValueError, match='fixed part'):
    isp.GainMap.from_bytes(gm[:50])


def test_gain_map_validates_its_fields():
  rng = np.random.default_rng(6)
  with pytest.raises(ValueError, match='gains must have shape'):
    _random_gain_map(rng, MapPointsV=2, MapPointsH=2,
                     gains=np.ones((2, 3, 1)))
  with pytest.raises(ValueError, match='empty rectangle'):
    _random_gain_map(rng, Bottom=0)
  with pytest.raises(ValueError, match='RowPitch'):
    _random_gain_map(rng, RowPitch=0)
  with pytest.raises(ValueError, match='MapSpacingV'):
    _random_gain_map(rng, MapPointsV=2, MapSpacingV=0.0,
                     gains=np.ones((2, int(rng.integers(1, 2)), 1)),
                     MapPointsH=1)
  with pytest.raises(ValueError, match='finite'):
    _random_gain_map(rng, MapPointsV=1, MapPointsH=1,
                     gains=np.full((1, 1, 1), np.nan))


# --- falloff <-> GainMaps -----------------------------------------------------


def _reference_gain(gm, row, col, height, width):
  """One pixel's gain, written after dng_gain_map_interpolator (DNG SDK)."""
  def index(pos, size, origin, spacing, points):
    f = ((pos + 0.5) / size - origin) / spacing
    if f <= 0:
      return 0, 0, 0.0
    if f >= points - 1:
      return points - 1, points - 1, 0.0
    i = int(f)
    return i, i + 1, f - i
  r0, r1, fr = index(row, height, gm.MapOriginV, gm.MapSpacingV,
                     gm.MapPointsV)
  c0, c1, fc = index(col, width, gm.MapOriginH, gm.MapSpacingH,
                     gm.MapPointsH)
  g = gm.gains[..., 0].astype(np.float64)
  top = g[r0, c0] * (1 - fc) + g[r0, c1] * fc
  bottom = g[r1, c0] * (1 - fc) + g[r1, c1] * fc
  return top * (1 - fr) + bottom * fr


@pytest.mark.parametrize('pattern', isp.PATTERNS)
def test_gain_from_gain_maps_matches_the_sdk_interpolator(pattern):
  rng = np.random.default_rng(7)
  height, width = 40, 60
  # One map per phase, with origins and spacings that leave parts of the
  # image outside the map (clamped), plus a full-image map at pitch 1 that
  # multiplies every pixel, and one for plane 1 that a CFA image ignores.
  maps = [_random_gain_map(rng, Top=t, Left=l)
          for t, l in ((0, 0), (0, 1), (1, 0), (1, 1))]
  maps.append(_random_gain_map(rng, Top=0, Left=0, RowPitch=1, ColPitch=1))
  maps.append(_random_gain_map(rng, Plane=1))
  got = isp.gain_from_gain_maps(maps, height=height, width=width,
                                pattern=pattern)
  assert got.shape == (20, 30, 4) and got.dtype == np.float32
  expected = np.ones((height, width))
  for gm in maps[:5]:
    for row in range(gm.Top, gm.Bottom, gm.RowPitch):
      for col in range(gm.Left, gm.Right, gm.ColPitch):
        expected[row, col] *= _reference_gain(gm, row, col, height, width)
  packed = np.stack([expected[r::2, c::2]
                     for r, c in isp.channel_offsets(pattern)], axis=-1)
  np.testing.assert_allclose(got, packed, rtol=1e-6)


@pytest.mark.parametrize('pattern', isp.PATTERNS)
@pytest.mark.parametrize('map_points', [(17, 17), (9, 13)])
def test_gain_maps_from_falloff_recover_the_correction(pattern, map_points):
  h, w = 48, 64
  falloff = np.asarray(isp.radial_falloff(h, w, **PHONE))
  maps = isp.gain_maps_from_falloff(falloff, pattern=pattern,
                                    map_points=map_points)
  assert len(maps) == 4
  assert [(m.Top, m.Left) for m in maps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
  for m in maps:
    assert (m.Bottom, m.Right, m.RowPitch, m.ColPitch) == (96, 128, 2, 2)
    assert (m.Plane, m.Planes, m.MapPlanes) == (0, 1, 1)
    assert (m.MapPointsV, m.MapPointsH) == map_points
    assert m.MapOriginV == 0 and m.MapOriginH == 0
    np.testing.assert_allclose(m.MapSpacingV * (map_points[0] - 1), 1)
  # The map of the phase that holds R samples 1 / falloff of R: at the image
  # centre it is close to the R falloff's centre value.
  r_phase = isp.channel_offsets(pattern)[0]
  r_map = maps[[(0, 0), (0, 1), (1, 0), (1, 1)].index(r_phase)]
  np.testing.assert_allclose(
      r_map.gains[map_points[0] // 2, map_points[1] // 2, 0],
      1 / falloff[h // 2, w // 2, 0], rtol=5e-3)
  gain = isp.gain_from_gain_maps(maps, height=2 * h, width=2 * w,
                                 pattern=pattern)
  err = np.abs(gain - 1 / falloff).max()
  bound = _interpolation_bound(falloff, map_points)
  assert err <= bound, (err, bound)
  # The corrected flat field is flat to the interpolation error.
  flat = gain * falloff
  assert np.abs(flat - 1).max() <= bound * falloff.max()


def test_dense_gain_maps_are_nearly_exact():
  falloff = np.asarray(isp.radial_falloff(20, 30, corner_falloff=0.3))
  maps = isp.gain_maps_from_falloff(falloff, pattern='RGGB',
                                    map_points=(41, 61))
  gain = isp.gain_from_gain_maps(maps, height=40, width=60, pattern='RGGB')
  np.testing.assert_allclose(gain * falloff, 1.0, atol=2e-3)


def test_gain_map_helpers_reject_bad_input():
  falloff = np.ones((4, 4, 4))
  with pytest.raises(ValueError, match='falloff must be'):
    isp.gain_maps_from_falloff(np.ones((4, 4)), pattern='RGGB')
  with pytest.raises(ValueError, match='positive'):
    isp.gain_maps_from_falloff(np.zeros((4, 4, 4)), pattern='RGGB')
  with pytest.raises(ValueError, match='map_points'):
    isp.gain_maps_from_falloff(falloff, pattern='RGGB', map_points=(0, 3))
  with pytest.raises(ValueError, match='Unsupported CFA'):
    isp.gain_maps_from_falloff(falloff, pattern='RGBW')
  with pytest.raises(ValueError, match='even'):
    isp.gain_from_gain_maps([], height=7, width=8, pattern='RGGB')
  with pytest.raises(TypeError, match='GainMap'):
    isp.gain_from_gain_maps([object()], height=8, width=8, pattern='RGGB')
  np.testing.assert_array_equal(
      isp.gain_from_gain_maps([], height=8, width=8, pattern='RGGB'), 1.0)
