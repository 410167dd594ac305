"""The semi-supervised raw-to-raw losses (eqs. 3-6) against their formulas."""

import functools

import jax
import numpy as np
import pytest

from rawjax import losses

RNG = np.random.default_rng(3)


def _images(*shape):
  return RNG.uniform(0, 1, shape).astype(np.float32)


def _frobenius_sq(x):
  return float(np.sum(np.asarray(x, np.float64)**2))


@pytest.mark.parametrize('reduction', losses.REDUCTIONS)
def test_reconstruction_loss_is_eq3(variant, reduction):
  images, recon = _images(5, 6, 7, 4), _images(5, 6, 7, 4)
  fn = functools.partial(losses.reconstruction_loss, reduction=reduction)
  value = variant(lambda i, r: fn(images=i, reconstructions=r))(images,
                                                                recon)
  # Eq. 3: 1/N sum_n ||I_n - Î_n||_F^2, one Frobenius norm per image.
  expected = np.mean([_frobenius_sq(images[n] - recon[n]) for n in range(5)])
  if reduction == 'mean':
    expected /= 6 * 7 * 4
  np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize('reduction', losses.REDUCTIONS)
def test_anchor_loss_sums_every_block(variant, reduction):
  shapes = [(3, 8, 8, 4), (3, 4, 4, 8), (3, 2, 2, 16)]
  feats_a = [RNG.normal(size=s).astype(np.float32) for s in shapes]
  feats_b = [RNG.normal(size=s).astype(np.float32) for s in shapes]
  fn = functools.partial(losses.anchor_loss, reduction=reduction)
  value = variant(lambda a, b: fn(features_a=a, features_b=b))(feats_a,
                                                                feats_b)
  # Eq. 4: 1/N sum_e sum_n ||X^e_A,n - X^e_B,n||_F^2.
  expected = 0.0
  for a, b in zip(feats_a, feats_b):
    per_block = sum(_frobenius_sq(a[n] - b[n]) for n in range(3)) / 3
    expected += per_block / (a[0].size if reduction == 'mean' else 1)
  np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_mapping_loss_is_eq5(variant):
  ta, ma, tb, mb = (_images(4, 5, 5, 4) for _ in range(4))
  value = variant(lambda *x: losses.mapping_loss(
      targets_a=x[0], mapped_a=x[1], targets_b=x[2], mapped_b=x[3]))(
          ta, ma, tb, mb)
  # Eq. 5: 1/(2N) sum_n (||I_A,n - Î_A,n||^2 + ||I_B,n - Î_B,n||^2).
  expected = sum(_frobenius_sq(ta[n] - ma[n]) + _frobenius_sq(tb[n] - mb[n])
                 for n in range(4)) / (2 * 4)
  np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_total_loss_is_eq6_with_switches():
  np.testing.assert_allclose(losses.semi_supervised_raw2raw_loss(
      reconstruction=1.0, anchor=2.0, mapping=4.0), 7.0)
  # A switched-off term contributes exactly nothing, even when not finite.
  np.testing.assert_allclose(losses.semi_supervised_raw2raw_loss(
      reconstruction=np.nan, anchor=2.0, mapping=4.0,
      reconstruction_weight=0.0, mapping_weight=0.5), 4.0)


def test_gradient_of_eq3_is_analytic():
  images, recon = _images(2, 3, 3, 4), _images(2, 3, 3, 4)
  grad = jax.grad(lambda r: losses.reconstruction_loss(
      images=images, reconstructions=r))(recon)
  np.testing.assert_allclose(grad, 2 * (recon - images) / 2, rtol=1e-5)


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='shapes differ'):
    losses.reconstruction_loss(images=_images(2, 4, 4, 4),
                               reconstructions=_images(2, 4, 4, 3))
  with pytest.raises(ValueError, match='reduction must be one of'):
    losses.squared_frobenius(_images(1, 2), _images(1, 2), reduction='l1')
  with pytest.raises(ValueError, match='same non-zero number of encoder'):
    losses.anchor_loss(features_a=[_images(1, 2, 2, 1)], features_b=[])
  with pytest.raises(TypeError):
    losses.reconstruction_loss(_images(1, 2), _images(1, 2))  # keyword-only
