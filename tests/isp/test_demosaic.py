"""Bilinear and Malvar demosaicing and mosaicing, against colour-demosaicing."""

import functools
import warnings

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

with warnings.catch_warnings():
  # colour-science warns about optional dependencies on import.
  warnings.simplefilter('ignore')
  import colour_demosaicing  # pylint: disable=g-import-not-at-top

PATTERNS = isp.PATTERNS
METHODS = {
    'bilinear': (isp.demosaic_bilinear,
                 colour_demosaicing.demosaicing_CFA_Bayer_bilinear),
    'malvar': (isp.demosaic_malvar,
               colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004),
}
ATOL = 1e-5
# Eager tests reuse these shapes: JAX compiles every op once per shape, which
# dominates the running time of this file.
SHAPES = [(6, 10), (32, 48)]


def _reference(method, mosaic, pattern):
  """colour-demosaicing in float64; it squeezes singleton axes, we do not."""
  out = METHODS[method][1](np.asarray(mosaic, np.float64), pattern)
  return out.reshape(mosaic.shape + (3,))


def _random(shape, seed=0):
  return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize('pattern', PATTERNS)
@pytest.mark.parametrize('method', METHODS)
def test_matches_colour_demosaicing(method, pattern, variant):
  fn = functools.partial(METHODS[method][0], pattern=pattern)
  mosaics = [_random(shape) for shape in SHAPES]
  # Both sizes in one call: under jit, one compilation instead of two.
  outs = variant(lambda ms: [fn(m) for m in ms])(mosaics)
  for mosaic, out in zip(mosaics, outs):
    assert out.shape == mosaic.shape + (3,) and out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out),
                               _reference(method, mosaic, pattern),
                               rtol=0, atol=ATOL, err_msg=str(mosaic.shape))


@pytest.mark.parametrize('method', METHODS)
def test_matches_colour_demosaicing_on_tiny_and_thin_mosaics(method):
  # Two-pixel sides: the symmetric extension reaches across the whole image.
  shapes = [(2, 2), (2, 8), (8, 2)]
  mosaics = [_random(shape, seed=1) for shape in shapes]

  @jax.jit  # One compilation for all twelve cases.
  def run(mosaics):
    return [[METHODS[method][0](m, pattern=p) for p in PATTERNS]
            for m in mosaics]

  for mosaic, outs in zip(mosaics, run(mosaics)):
    for pattern, out in zip(PATTERNS, outs):
      np.testing.assert_allclose(np.asarray(out),
                                 _reference(method, mosaic, pattern),
                                 rtol=0, atol=ATOL,
                                 err_msg=f'{mosaic.shape} {pattern}')


@pytest.mark.parametrize('method', METHODS)
def test_flat_field_borders_follow_scipy_reflect(method):
  # colour-demosaicing's bilinear reflects the *masked* planes: a flat field
  # is not flat on the outer ring (2.25 in the red corner of RGGB). Malvar
  # filters the mosaic itself and keeps it flat.
  out = np.asarray(METHODS[method][0](np.ones(SHAPES[0], np.float32),
                                      pattern='RGGB'))
  np.testing.assert_allclose(out[1:-1, 1:-1], 1.0, atol=1e-6)
  expected_corner = 2.25 if method == 'bilinear' else 1.0
  np.testing.assert_allclose(out[0, 0, 0], expected_corner, atol=1e-6)


@pytest.mark.parametrize('method', METHODS)
def test_batch_and_vmap_equal_per_image(method):
  fn = functools.partial(METHODS[method][0], pattern='GBRG')
  batch = _random((3,) + SHAPES[0], seed=2)
  per_image = np.stack([np.asarray(fn(m)) for m in batch])
  # Equal up to float rounding: XLA may fuse the batched program differently.
  np.testing.assert_allclose(np.asarray(jax.jit(fn)(batch)), per_image,
                             rtol=0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(batch)),
                             per_image, rtol=0, atol=1e-6)


@pytest.mark.parametrize('pattern', PATTERNS)
def test_mosaic_matches_colour_demosaicing(pattern, variant):
  rgb = _random((6, 10, 3), seed=3)
  out = variant(functools.partial(isp.mosaic, pattern=pattern))(rgb)
  np.testing.assert_array_equal(
      np.asarray(out),
      colour_demosaicing.mosaicing_CFA_Bayer(rgb, pattern).astype(np.float32))


@pytest.mark.parametrize('pattern', PATTERNS)
@pytest.mark.parametrize('method', METHODS)
def test_mosaic_inverts_demosaic_exactly(method, pattern):
  for shape in SHAPES:
    mosaic = _random(shape, seed=4)
    back = np.asarray(isp.mosaic(METHODS[method][0](mosaic, pattern=pattern),
                                 pattern=pattern))
    if method == 'malvar':
      np.testing.assert_array_equal(back, mosaic)
    else:
      # Exact inside; on the outer ring colour-demosaicing's bilinear (which
      # we match) counts reflected samples twice, so sites change there.
      np.testing.assert_array_equal(back[1:-1, 1:-1], mosaic[1:-1, 1:-1])


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(
    data=st.data(), pattern=st.sampled_from(PATTERNS),
    method=st.sampled_from(list(METHODS)), shape=st.sampled_from(SHAPES))
def test_property_reference_and_round_trip(data, pattern, method, shape):
  # No subnormals: XLA on CPU flushes them to zero in arithmetic.
  mosaic = data.draw(hnp.arrays(
      np.float32, shape,
      elements=st.floats(0, 1, width=32, allow_subnormal=False)))
  out = METHODS[method][0](mosaic, pattern=pattern)
  np.testing.assert_allclose(np.asarray(out),
                             _reference(method, mosaic, pattern),
                             rtol=0, atol=ATOL)
  back = np.asarray(isp.mosaic(out, pattern=pattern))
  inner = np.s_[:, :] if method == 'malvar' else np.s_[1:-1, 1:-1]
  np.testing.assert_array_equal(back[inner], mosaic[inner])


@pytest.mark.parametrize('method', METHODS)
def test_gradient_is_finite_including_at_0_and_1(method):
  fn = functools.partial(METHODS[method][0], pattern='BGGR')
  shape = SHAPES[0]
  weights = _random(shape + (3,), seed=5)
  loss = lambda m: jnp.sum(weights * fn(m) ** 2)

  @jax.jit  # One compilation; eagerly every transposed op compiles alone.
  def check(mosaics, x, y):
    grads = [jax.grad(loss)(m) for m in mosaics]
    # A linear map: its vjp is its transpose, <A x, y> == <x, A^T y>.
    out, vjp = jax.vjp(fn, x)
    return grads, jnp.sum(out * y), jnp.sum(x * vjp(y)[0])

  mosaics = [np.zeros(shape, np.float32), np.ones(shape, np.float32),
             _random(shape, seed=6)]
  grads, forward, adjoint = check(mosaics, _random(shape, seed=7),
                                  _random(shape + (3,), seed=8))
  for g in grads:
    assert g.shape == shape and np.isfinite(np.asarray(g)).all()
  np.testing.assert_allclose(float(forward), float(adjoint), rtol=1e-5)


@pytest.mark.parametrize('method', METHODS)
def test_integer_input_is_cast_to_float32(method):
  out = METHODS[method][0](np.full(SHAPES[0], 2, np.int32), pattern='RGGB')
  assert out.dtype == jnp.float32


@pytest.mark.parametrize('fn', [isp.demosaic_bilinear, isp.demosaic_malvar])
def test_bad_mosaics_raise_clear_errors(fn):
  with pytest.raises(ValueError, match='even height and width'):
    fn(np.zeros((5, 6), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match='even height and width'):
    fn(np.zeros((6, 7), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match=r'\(\.\.\., H, W\)'):
    fn(np.zeros((6,), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match='Unsupported CFA pattern'):
    fn(np.zeros((6, 6), np.float32), pattern='RGBG')
  with pytest.raises(ValueError, match='must not be empty'):
    fn(np.zeros((0, 6), np.float32), pattern='RGGB')


def test_bad_rgb_raises_clear_errors():
  with pytest.raises(ValueError, match=r'\(\.\.\., H, W, 3\)'):
    isp.mosaic(np.zeros((6, 6), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match='3 channels'):
    isp.mosaic(np.zeros((6, 6, 4), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match='even height and width'):
    isp.mosaic(np.zeros((5, 6, 3), np.float32), pattern='RGGB')
  with pytest.raises(ValueError, match='Unsupported CFA pattern'):
    isp.mosaic(np.zeros((6, 6, 3), np.float32), pattern='XYZW')
