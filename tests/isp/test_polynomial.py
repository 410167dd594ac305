"""Polynomial kernels against colour-science and the papers' term lists."""

import functools
import warnings

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from rawjax import isp

with warnings.catch_warnings():
  warnings.simplefilter('ignore')
  from colour.characterisation import (  # pylint: disable=g-import-not-at-top
      matrix_augmented_Cheung2004, polynomial_expansion_Finlayson2015)

RNG = np.random.default_rng(0)
RGB = RNG.uniform(0.0, 1.0, (6, 5, 3)).astype(np.float32)
PACKED = RNG.uniform(0.0, 1.0, (6, 5, 4)).astype(np.float32)


@pytest.mark.parametrize('kernel,reference', [
    ('cheung10', lambda x: matrix_augmented_Cheung2004(x, 10)),
    ('hong11', lambda x: matrix_augmented_Cheung2004(x, 11)),
    ('polynomial2', lambda x: polynomial_expansion_Finlayson2015(x, 2, False)),
    ('root_polynomial2',
     lambda x: polynomial_expansion_Finlayson2015(x, 2, True)),
    ('root_polynomial3',
     lambda x: polynomial_expansion_Finlayson2015(x, 3, True)),
])
def test_three_channel_kernels_match_colour_science(variant, kernel,
                                                    reference):
  ours = variant(functools.partial(isp.polynomial_features, kernel=kernel))(
      RGB)
  np.testing.assert_allclose(ours, reference(RGB.astype(np.float64)),
                             rtol=2e-6, atol=2e-7)


def test_root_polynomial_is_sign_preserving_like_colour():
  x = np.array([[-0.3, 0.2, 0.5]], np.float32)
  np.testing.assert_allclose(
      isp.polynomial_features(x, kernel='root_polynomial3'),
      polynomial_expansion_Finlayson2015(x.astype(np.float64), 3, True),
      rtol=2e-6)


def test_raw2raw_kernelp_is_afifis_term_order(variant):
  r, gr, gb, b = np.moveaxis(PACKED, -1, 0)
  expected = np.stack([r, gr, gb, b, r * r, gr * gr, gb * gb, b * b, r * gr,
                       r * gb, r * b, gr * gb, gr * b, gb * b,
                       r * gr * gb * b, np.ones_like(r)], -1)
  ours = variant(functools.partial(isp.polynomial_features,
                                   kernel='raw2raw16'))(PACKED)
  np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_cstpp_terms_intended_and_as_released():
  r, gr, gb, b = np.moveaxis(PACKED, -1, 0)
  head = [r * r, gr * gr, gb * gb, b * b, r * gr, gr * gb, gb * b, r * gb,
          gr * b]
  tail = [r, gr, gb, b]
  np.testing.assert_allclose(
      isp.polynomial_features(PACKED, kernel='cstpp14'),
      np.stack(head + [r * b] + tail, -1), rtol=1e-6)
  # The released code forms Gr*B twice and never R*B (spec section 1.2.3).
  np.testing.assert_allclose(
      isp.polynomial_features(PACKED, kernel='cstpp14_code'),
      np.stack(head + [gr * b] + tail, -1), rtol=1e-6)


@pytest.mark.parametrize('kernel,terms', [('root_polynomial2', 10),
                                          ('root_polynomial3', 26)])
def test_four_channel_root_polynomials_are_degree_one(kernel, terms):
  features = isp.polynomial_features(PACKED, kernel=kernel)
  assert features.shape[-1] == terms == isp.polynomial_num_terms(kernel, 4)
  # Finlayson's defining property: scaling the exposure scales every term.
  np.testing.assert_allclose(
      isp.polynomial_features(2.5 * PACKED, kernel=kernel), 2.5 * features,
      rtol=2e-5)
  assert len({tuple(row) for row in np.asarray(features[0, 0:1]).T}) == terms


def test_root_gradient_is_finite_at_zero():
  grad = jax.grad(lambda x: isp.polynomial_features(
      x, kernel='root_polynomial3').sum())(jnp.zeros(3))
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize('kernel,channels', [('linear', 3), ('cheung10', 3),
                                             ('raw2raw16', 4), ('cstpp14', 4)])
def test_fit_matches_float64_lstsq(variant, kernel, channels):
  source = RNG.uniform(0, 1, (3, 200, channels)).astype(np.float32)
  target = RNG.uniform(0, 1, (3, 200, 4)).astype(np.float32)
  fit = variant(functools.partial(isp.fit_polynomial, kernel=kernel,
                                  ridge=0.0))
  ours = np.asarray(fit(source, target))
  for i in range(3):
    features = np.asarray(isp.polynomial_features(source[i], kernel=kernel),
                          np.float64)
    expected = np.linalg.lstsq(features, target[i].astype(np.float64),
                               rcond=None)[0]
    np.testing.assert_allclose(ours[i], expected, atol=5e-4 * max(
        1.0, np.abs(expected).max()))


def test_fit_reaches_the_least_squares_optimum_when_ill_conditioned():
  source = RNG.uniform(0, 1, (500, 4)).astype(np.float32)
  target = RNG.uniform(0, 1, (500, 4)).astype(np.float32)
  features = np.asarray(isp.polynomial_features(
      source, kernel='root_polynomial3'), np.float64)
  best = np.linalg.lstsq(features, target, rcond=None)[0]
  ours = np.asarray(isp.fit_polynomial(source, target, ridge=0.0,
                                       kernel='root_polynomial3'), np.float64)
  optimum = np.mean((features @ best - target)**2)
  assert np.mean((features @ ours - target)**2) <= optimum * (1 + 1e-3)


def test_weights_select_samples():
  source = RNG.uniform(0, 1, (300, 4)).astype(np.float32)
  target = RNG.uniform(0, 1, (300, 4)).astype(np.float32)
  mask = (np.arange(300) % 3 == 0).astype(np.float32)
  weighted = isp.fit_polynomial(source, target, kernel='raw2raw16',
                                weights=mask, ridge=0.0)
  subset = isp.fit_polynomial(source[::3], target[::3], kernel='raw2raw16',
                              ridge=0.0)
  np.testing.assert_allclose(weighted, subset, atol=2e-4)


def test_collinear_greens_stay_finite_with_the_default_ridge():
  source = RNG.uniform(0, 1, (400, 4)).astype(np.float32)
  source[:, 2] = source[:, 1]  # Gr == Gb exactly (noise-free raw)
  target = np.asarray(isp.apply_polynomial(
      source, RNG.normal(size=(16, 4)).astype(np.float32), kernel='raw2raw16'))
  matrix = isp.fit_polynomial(source, target, kernel='raw2raw16')
  assert np.all(np.isfinite(matrix))
  prediction = isp.apply_polynomial(source, matrix, kernel='raw2raw16')
  np.testing.assert_allclose(prediction, target, atol=2e-3)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(
    matrix=hnp.arrays(np.float32, (16, 4),
                      elements=st.floats(-2, 2, width=32)),
    seed=st.integers(0, 1000))
def test_fit_inverts_apply(matrix, seed):
  """fit(x, apply(x, M)) == M: the fit is the inverse of the application."""
  source = np.random.default_rng(seed).uniform(0.05, 1, (8, 8, 4)).astype(
      np.float32)
  target = isp.apply_polynomial(source, matrix, kernel='raw2raw16')
  recovered = isp.fit_polynomial(source.reshape(-1, 4),
                                 np.asarray(target).reshape(-1, 4),
                                 kernel='raw2raw16', ridge=0.0)
  np.testing.assert_allclose(
      isp.apply_polynomial(source, recovered, kernel='raw2raw16'), target,
      atol=2e-3 * max(1.0, float(np.abs(target).max())))


def test_apply_per_image_matrices(variant):
  matrices = RNG.normal(size=(2, 10, 3)).astype(np.float32)
  images = RNG.uniform(0, 1, (2, 4, 5, 3)).astype(np.float32)
  out = variant(functools.partial(isp.apply_polynomial, kernel='cheung10'))(
      images, matrices)
  for i in range(2):
    np.testing.assert_allclose(
        out[i], matrix_augmented_Cheung2004(images[i].astype(np.float64), 10)
        @ matrices[i], rtol=1e-4, atol=1e-5)


def test_bad_kernels_are_named():
  with pytest.raises(ValueError, match='Unknown polynomial kernel'):
    isp.polynomial_features(RGB, kernel='cubic')
  with pytest.raises(ValueError, match="'raw2raw16' takes 4 channels"):
    isp.polynomial_features(RGB, kernel='raw2raw16')
  with pytest.raises(ValueError, match='does not fit the 16 terms'):
    isp.apply_polynomial(PACKED, np.zeros((10, 4)), kernel='raw2raw16')
  with pytest.raises(ValueError, match='must agree'):
    isp.fit_polynomial(PACKED[0], PACKED[1, :4], kernel='linear')
