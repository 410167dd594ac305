"""RawMetadata.create: shapes and, when concrete, values are validated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import isp

GOOD = dict(pattern='RGGB', black_level=64.0, white_level=1023.0,
            wb_gains=[2.0, 1.0, 1.5], cam_to_srgb=np.eye(3))


def test_valid_metadata_is_float32():
  md = isp.RawMetadata.create(**GOOD)
  assert md.black_level.shape == (4,) and md.black_level.dtype == jnp.float32
  assert md.white_level.dtype == jnp.float32


def test_batched_levels():
  md = isp.RawMetadata.create(**{**GOOD, 'black_level': np.full((2, 4), 64.0),
                                 'white_level': [1023.0, 4095.0],
                                 'wb_gains': np.ones((2, 3)),
                                 'cam_to_srgb': np.stack([np.eye(3)] * 2)})
  assert md.black_level.shape == (2, 4)


@pytest.mark.parametrize('gains', [[0.0, 1.0, 1.0], [np.nan, 1.0, 1.0],
                                   [2.0, -1.0, 1.0], [np.inf, 1.0, 1.0]])
def test_bad_white_balance_gains(gains):
  with pytest.raises(ValueError, match='RawMetadata.create: wb_gains must be '
                     'finite and > 0'):
    isp.RawMetadata.create(**{**GOOD, 'wb_gains': gains})


@pytest.mark.parametrize('black, white', [(1023.0, 1023.0), (2000.0, 1023.0),
                                          ([0, 0, 1100, 0], 1023.0),
                                          (64.0, np.nan)])
def test_black_not_below_white(black, white):
  with pytest.raises(ValueError, match='black_level must be below '
                     'white_level'):
    isp.RawMetadata.create(**{**GOOD, 'black_level': black,
                              'white_level': white})


def test_negative_or_nan_black():
  for black in (-1.0, np.nan):
    with pytest.raises(ValueError, match='black_level must be finite'):
      isp.RawMetadata.create(**{**GOOD, 'black_level': black})


def test_nan_colour_matrix():
  m = np.eye(3)
  m[1, 2] = np.nan
  with pytest.raises(ValueError, match='cam_to_srgb must be finite'):
    isp.RawMetadata.create(**{**GOOD, 'cam_to_srgb': m})


def test_traced_values_are_not_checked_but_render_nan():
  # Inside jit the values are unknown: no error, and process shows NaN.
  rng = np.random.default_rng(21)
  mosaic = rng.integers(64, 1023, (16, 16)).astype(np.float32)

  def render(gains, white):
    md = isp.RawMetadata.create(**{**GOOD, 'wb_gains': gains,
                                   'white_level': white})
    return isp.process(mosaic, md)
  ok = jax.jit(render)(jnp.array([2.0, 1.0, 1.5]), 1023.0)
  assert np.isfinite(np.asarray(ok)).all()
  bad = jax.jit(render)(jnp.array([2.0, 1.0, 1.5]), 10.0)
  assert np.isnan(np.asarray(bad)).all()
  zero_gain = jax.jit(render)(jnp.array([0.0, 1.0, 1.5]), 1023.0)
  assert np.isnan(np.asarray(zero_gain)).any()
