"""CFA packing, pattern derivation and phase-preserving geometry."""

import functools

import colour_demosaicing
import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

PATTERNS = isp.PATTERNS


def _labelled_mosaic(h, w, pattern):
  """A mosaic whose value encodes its site's colour name (R=1, G=2, B=3)."""
  r, g, b = colour_demosaicing.masks_CFA_Bayer((h, w), pattern)
  return (1 * r + 2 * g + 3 * b).astype(np.float32)


@pytest.mark.parametrize('pattern', PATTERNS)
def test_pack_puts_each_colour_in_its_canonical_channel(pattern, variant):
  mosaic = _labelled_mosaic(6, 8, pattern)
  packed = variant(functools.partial(isp.pack, pattern=pattern))(mosaic)
  assert packed.shape == (3, 4, 4)
  np.testing.assert_array_equal(np.asarray(packed[0, 0]), [1, 2, 2, 3])


@pytest.mark.parametrize('pattern', PATTERNS)
def test_gr_is_the_green_on_the_red_rows(pattern):
  mosaic = np.arange(16, dtype=np.float32).reshape(4, 4)
  packed = np.asarray(isp.pack(mosaic, pattern=pattern))
  red_row = pattern.index('R') // 2
  assert packed[0, 0, 1] in mosaic[red_row]
  assert packed[0, 0, 2] in mosaic[1 - red_row]


@pytest.mark.parametrize('pattern', PATTERNS)
def test_unpack_inverts_pack_exactly(pattern, variant):
  mosaic = np.random.default_rng(0).random((2, 8, 10), np.float32)
  packed = isp.pack(mosaic, pattern=pattern)
  back = variant(functools.partial(isp.unpack, pattern=pattern))(packed)
  np.testing.assert_array_equal(np.asarray(back), mosaic)


# Each new shape compiles anew: few examples, small shapes.
@hypothesis.settings(deadline=None, max_examples=12)
@hypothesis.given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2,
                                            min_side=1, max_side=3).map(
                                                lambda s: (2 * s[0], 2 * s[1])),
               elements=hypothesis.strategies.floats(-1e3, 1e3, width=32)),
    hypothesis.strategies.sampled_from(PATTERNS))
def test_pack_unpack_round_trip_property(mosaic, pattern):
  back = isp.unpack(isp.pack(mosaic, pattern=pattern), pattern=pattern)
  np.testing.assert_array_equal(np.asarray(back), mosaic)
  again = isp.pack(back, pattern=pattern)
  np.testing.assert_array_equal(np.asarray(again),
                                np.asarray(isp.pack(mosaic, pattern=pattern)))


def test_pack_is_vmappable():
  mosaics = np.random.default_rng(1).random((3, 4, 6), np.float32)
  batched = jax.vmap(functools.partial(isp.pack, pattern='GRBG'))(mosaics)
  for i in range(3):
    np.testing.assert_array_equal(np.asarray(batched[i]),
                                  np.asarray(isp.pack(mosaics[i],
                                                      pattern='GRBG')))


@pytest.mark.parametrize('raw_pattern,desc,expected', [
    ([[0, 1], [3, 2]], b'RGBG', 'RGGB'),
    ([[2, 3], [1, 0]], b'RGBG', 'BGGR'),
    ([[1, 0], [2, 3]], b'RGBG', 'GRBG'),
    ([[3, 2], [0, 1]], b'RGBG', 'GBRG'),
    ([[0, 1], [1, 2]], 'RGB', 'RGGB'),
])
def test_pattern_from_rawpy(raw_pattern, desc, expected):
  assert isp.pattern_from_rawpy(raw_pattern, desc) == expected


def test_colour_index_to_channel_follows_the_green_rows():
  # rawpy for RGGB: index 1 is the green on the red row, 3 on the blue row.
  assert isp.colour_index_to_channel([[0, 1], [3, 2]], b'RGBG') == (0, 1, 3, 2)
  assert isp.colour_index_to_channel([[3, 2], [0, 1]], b'RGBG') == (0, 1, 3, 2)


@pytest.mark.parametrize('raw_pattern,desc,match', [
    (None, b'RGBG', 'no colour filter mosaic'),
    (np.zeros((6, 6), int), b'RGBG', 'X-Trans'),
    ([[0, 1], [2, 3]], b'CMYG', 'Unsupported CFA pattern'),
    ([[0, 0], [0, 0]], b'RGBG', 'Unsupported CFA pattern'),
])
def test_pattern_from_rawpy_rejects_non_bayer(raw_pattern, desc, match):
  with pytest.raises(ValueError, match=match):
    isp.pattern_from_rawpy(raw_pattern, desc)


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match='even height and width'):
    isp.pack(np.zeros((5, 4)), pattern='RGGB')
  with pytest.raises(ValueError, match='Unsupported CFA pattern'):
    isp.pack(np.zeros((4, 4)), pattern='RGBX')
  with pytest.raises(ValueError, match='4 channels'):
    isp.unpack(np.zeros((2, 2, 3)), pattern='RGGB')
  with pytest.raises(ValueError, match='layout'):
    isp.pack(np.zeros((4,)), pattern='RGGB')


def test_pynet_order_matches_the_reference_packing(variant):
  # PyNET/ZRR's extract_bayer_channels on an RGGB mosaic.
  raw = np.random.default_rng(5).random((6, 8), np.float32)
  reference = np.stack([raw[1::2, 1::2], raw[0::2, 1::2], raw[0::2, 0::2],
                        raw[1::2, 0::2]], axis=-1)
  packed = isp.pack(raw, pattern='RGGB')
  pynet = variant(isp.to_pynet_order)(packed)
  np.testing.assert_array_equal(np.asarray(pynet), reference)
  np.testing.assert_array_equal(np.asarray(variant(isp.from_pynet_order)(pynet)),
                                packed)


# --- geometry ----------------------------------------------------------------

def _mosaic_of_scene(scene, pattern):
  """Samples an RGB scene (H, W, 3) through a CFA."""
  masks = np.asarray(isp.bayer_masks(scene.shape[:2], pattern=pattern))
  return (scene * masks).sum(-1)


@pytest.mark.parametrize('pattern', PATTERNS)
@pytest.mark.parametrize('axis', ['horizontal', 'vertical'])
def test_flip_mosaic_is_the_mosaic_of_the_flipped_scene(pattern, axis, variant):
  scene = np.random.default_rng(2).random((8, 10, 3), np.float32)
  flip = functools.partial(isp.flip_mosaic, pattern=pattern, axis=axis)
  got = np.asarray(variant(flip)(_mosaic_of_scene(scene, pattern)))
  flipped = np.flip(scene, axis=1 if axis == 'horizontal' else 0)
  # The flipped scene seen through the same pattern, after the same crop.
  expected_full = _mosaic_of_scene(flipped, isp.flip_pattern(pattern, axis=axis))
  dy = (expected_full.shape[0] - got.shape[0]) // 2
  dx = (expected_full.shape[1] - got.shape[1]) // 2
  expected = expected_full[dy:dy + got.shape[0], dx:dx + got.shape[1]]
  np.testing.assert_array_equal(got, expected)
  # And the crop has restored the original phase.
  cropped_scene = flipped[dy:dy + got.shape[0], dx:dx + got.shape[1]]
  np.testing.assert_array_equal(got, _mosaic_of_scene(cropped_scene, pattern))


@pytest.mark.parametrize('pattern', PATTERNS)
@pytest.mark.parametrize('k', [1, 2, 3])
def test_rot90_mosaic_keeps_the_pattern(pattern, k):
  scene = np.random.default_rng(3).random((6, 8, 3), np.float32)
  got = np.asarray(isp.rot90_mosaic(_mosaic_of_scene(scene, pattern),
                                    pattern=pattern, k=k))
  rotated = np.rot90(scene, k=k, axes=(0, 1))
  h, w = rotated.shape[:2]
  dy, dx = (h - got.shape[0]) // 2, (w - got.shape[1]) // 2
  np.testing.assert_array_equal(
      got, _mosaic_of_scene(rotated[dy:h - dy, dx:w - dx], pattern))


@pytest.mark.parametrize('pattern', PATTERNS)
def test_packed_geometry_equals_mosaic_geometry(pattern, variant):
  """Packed flips/rotations are the packing of the transformed mosaic."""
  mosaic = np.random.default_rng(4).random((6, 8), np.float32)
  packed = isp.pack(mosaic, pattern=pattern)
  for axis in ('horizontal', 'vertical'):
    flipped = np.flip(mosaic, axis=1 if axis == 'horizontal' else 0)
    expected = isp.pack(flipped, pattern=isp.flip_pattern(pattern, axis=axis))
    got = variant(functools.partial(isp.flip_packed, axis=axis))(packed)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
  for k in range(4):
    rotated = np.rot90(mosaic, k=k)
    expected = isp.pack(rotated, pattern=isp.rot90_pattern(pattern, k=k))
    got = variant(functools.partial(isp.rot90_packed, k=k))(packed)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
  transposed = mosaic.T
  t_pattern = ''.join(np.array(list(pattern)).reshape(2, 2).T.ravel())
  np.testing.assert_array_equal(
      np.asarray(variant(isp.transpose_packed)(packed)),
      np.asarray(isp.pack(transposed, pattern=t_pattern)))


def test_crop_mosaic_keeps_phase_with_traced_offsets():
  mosaic = np.arange(100, dtype=np.float32).reshape(10, 10)

  @jax.jit
  def crop(top, left):
    return isp.crop_mosaic(mosaic, top=top, left=left, height=4, width=6)

  np.testing.assert_array_equal(np.asarray(crop(2, 4)), mosaic[2:6, 4:10])
  # Odd offsets round down to the even site: the phase never changes.
  np.testing.assert_array_equal(np.asarray(crop(3, 1)), mosaic[2:6, 0:6])
  assert isp.crop_pattern('RGGB', top=1, left=0) == 'GBRG'
  assert isp.crop_pattern('RGGB', top=1, left=1) == 'BGGR'
  with pytest.raises(ValueError, match='even'):
    isp.crop_mosaic(mosaic, top=0, left=0, height=3, width=4)
  with pytest.raises(ValueError, match='larger'):
    isp.crop_mosaic(mosaic, top=0, left=0, height=12, width=4)


def test_pack_gradient_is_finite():
  grad = jax.grad(lambda m: jnp.sum(isp.pack(m, pattern='BGGR') ** 2))(
      jnp.ones((4, 4)))
  assert np.isfinite(np.asarray(grad)).all()
