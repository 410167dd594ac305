"""Black/white level normalisation and its inverse."""

import functools

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

BLACK = np.array([512.0, 500.0, 520.0, 510.0], np.float32)


def test_normalize_matches_the_formula_per_channel(variant):
  packed = np.random.default_rng(0).uniform(0, 16383, (2, 3, 4, 4))
  got = variant(functools.partial(isp.normalize, black_level=BLACK,
                                  white_level=16383.0, clip='none'))(packed)
  expected = (packed - BLACK) / (16383.0 - BLACK)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('clip,lo,hi', [('none', -0.05, 1.3), ('lower', 0, 1.3),
                                        ('both', 0, 1)])
def test_clip_policies(clip, lo, hi):
  packed = np.array([[[400.0, 512.0, 16383.0, 20000.0]]])
  got = np.asarray(isp.normalize(packed, black_level=512.0,
                                 white_level=16383.0, clip=clip))
  assert got.min() >= lo - 1e-6 and got.max() <= hi
  if clip == 'none':
    assert got.min() < 0 and got.max() > 1
  with pytest.raises(ValueError, match='clip'):
    isp.normalize(packed, black_level=512.0, white_level=16383.0, clip='x')


@hypothesis.settings(deadline=None, max_examples=25)
@hypothesis.given(
    hnp.arrays(np.float32, (2, 3, 4),
               elements=hypothesis.strategies.floats(0, 65535, width=32)),
    hnp.arrays(np.float32, (4,),
               elements=hypothesis.strategies.floats(0, 4096, width=32)),
    hypothesis.strategies.floats(8192, 65535))
def test_denormalize_inverts_normalize(packed, black, white):
  x = isp.normalize(packed, black_level=black, white_level=white, clip='none')
  back = isp.denormalize(x, black_level=black, white_level=white)
  np.testing.assert_allclose(np.asarray(back), packed, rtol=1e-5, atol=0.02)


def test_per_image_levels_broadcast_over_a_batch(variant):
  packed = np.full((2, 2, 2, 4), 1000.0, np.float32)
  black = np.stack([np.zeros(4), np.full(4, 500.0)]).astype(np.float32)
  white = np.array([2000.0, 1500.0], np.float32)
  got = np.asarray(variant(functools.partial(isp.normalize, clip='none'))(
      packed, black_level=black, white_level=white))
  np.testing.assert_allclose(got[0], 0.5)
  np.testing.assert_allclose(got[1], 0.5)


def test_gradient_is_finite_at_the_range_ends():
  for value in (0.0, 512.0, 16383.0):
    grad = jax.grad(lambda x: jnp.sum(isp.normalize(
        x, black_level=BLACK, white_level=16383.0, clip='both')))(
            jnp.full((1, 1, 4), value))
    assert np.isfinite(np.asarray(grad)).all()


def test_bad_levels_raise():
  with pytest.raises(ValueError, match='4 values'):
    isp.normalize(np.zeros((2, 2, 4)), black_level=np.zeros(3),
                  white_level=1.0)
  with pytest.raises(ValueError, match='4 channels'):
    isp.normalize(np.zeros((2, 2, 3)), black_level=0.0, white_level=1.0)


@pytest.mark.parametrize('black, white', [(1023.0, 1023.0), (2000.0, 1023.0),
                                          (BLACK, 510.0)])
def test_black_not_below_white_is_refused(black, white):
  packed = np.random.default_rng(31).uniform(0, 1023, (2, 2, 4))
  for fn in (isp.normalize, isp.denormalize):
    with pytest.raises(ValueError, match=f'{fn.__name__}: black_level must be '
                       'below white_level'):
      fn(packed, black_level=black, white_level=white)


def test_traced_black_not_below_white_gives_nan():
  packed = np.random.default_rng(32).uniform(0, 1023, (2, 2, 4))
  got = jax.jit(lambda b, w: isp.normalize(packed, black_level=b,
                                           white_level=w))(
                                               jnp.array([64.0, 64, 2000, 64]),
                                               1023.0)
  got = np.asarray(got)
  assert np.isnan(got[..., 2]).all() and np.isfinite(got[..., [0, 1, 3]]).all()
