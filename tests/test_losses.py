"""The losses against their formulas.

The semi-supervised raw-to-raw objective (eqs. 3-6,
`rawjax.methods.raw2raw_semi.objective`), the shared LSGAN terms
(`rawjax.losses`) and CSTPP's objective (eqs. 8-12,
`rawjax.methods.cstpp.objective`).
"""

import functools

import jax
import numpy as np
import pytest

from rawjax import losses
from rawjax.methods.cstpp import objective as cstpp_objective
from rawjax.methods.raw2raw_semi import objective

RNG = np.random.default_rng(3)


def _images(*shape):
  return RNG.uniform(0, 1, shape).astype(np.float32)


def _frobenius_sq(x):
  return float(np.sum(np.asarray(x, np.float64)**2))


@pytest.mark.parametrize('reduction', objective.REDUCTIONS)
def test_reconstruction_loss_is_eq3(variant, reduction):
  images, recon = _images(5, 6, 7, 4), _images(5, 6, 7, 4)
  fn = functools.partial(objective.reconstruction_loss, reduction=reduction)
  value = variant(lambda i, r: fn(images=i, reconstructions=r))(images,
                                                                recon)
  # Eq. 3: 1/N sum_n ||I_n - Î_n||_F^2, one Frobenius norm per image.
  expected = np.mean([_frobenius_sq(images[n] - recon[n]) for n in range(5)])
  if reduction == 'mean':
    expected /= 6 * 7 * 4
  np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize('reduction', objective.REDUCTIONS)
def test_anchor_loss_sums_every_block(variant, reduction):
  shapes = [(3, 8, 8, 4), (3, 4, 4, 8), (3, 2, 2, 16)]
  feats_a = [RNG.normal(size=s).astype(np.float32) for s in shapes]
  feats_b = [RNG.normal(size=s).astype(np.float32) for s in shapes]
  fn = functools.partial(objective.anchor_loss, reduction=reduction)
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
  value = variant(lambda *x: objective.mapping_loss(
      targets_a=x[0], mapped_a=x[1], targets_b=x[2], mapped_b=x[3]))(
          ta, ma, tb, mb)
  # Eq. 5: 1/(2N) sum_n (||I_A,n - Î_A,n||^2 + ||I_B,n - Î_B,n||^2).
  expected = sum(_frobenius_sq(ta[n] - ma[n]) + _frobenius_sq(tb[n] - mb[n])
                 for n in range(4)) / (2 * 4)
  np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_total_loss_is_eq6_with_switches():
  np.testing.assert_allclose(objective.semi_supervised_raw2raw_loss(
      reconstruction=1.0, anchor=2.0, mapping=4.0), 7.0)
  # A switched-off term contributes exactly nothing, even when not finite.
  np.testing.assert_allclose(objective.semi_supervised_raw2raw_loss(
      reconstruction=np.nan, anchor=2.0, mapping=4.0,
      reconstruction_weight=0.0, mapping_weight=0.5), 4.0)


def test_gradient_of_eq3_is_analytic():
  images, recon = _images(2, 3, 3, 4), _images(2, 3, 3, 4)
  grad = jax.grad(lambda r: objective.reconstruction_loss(
      images=images, reconstructions=r))(recon)
  np.testing.assert_allclose(grad, 2 * (recon - images) / 2, rtol=1e-5)


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='shapes differ'):
    objective.reconstruction_loss(images=_images(2, 4, 4, 4),
                               reconstructions=_images(2, 4, 4, 3))
  with pytest.raises(ValueError, match='reduction must be one of'):
    objective.squared_frobenius(_images(1, 2), _images(1, 2), reduction='l1')
  with pytest.raises(ValueError, match='same non-zero number of encoder'):
    objective.anchor_loss(features_a=[_images(1, 2, 2, 1)], features_b=[])
  with pytest.raises(TypeError):
    objective.reconstruction_loss(_images(1, 2), _images(1, 2))  # keyword-only


def test_lsgan_terms():
  fake, real = _images(3, 5) * 2, _images(3, 5) * 2
  np.testing.assert_allclose(losses.lsgan_generator_loss(fake_logits=fake),
                             np.mean((fake - 1.0)**2), rtol=1e-6)
  np.testing.assert_allclose(
      losses.lsgan_discriminator_loss(real_logits=real, fake_logits=fake),
      0.5 * (np.mean((real - 1.0)**2) + np.mean(fake**2)), rtol=1e-6)
  with pytest.raises(TypeError):
    losses.lsgan_generator_loss(fake)  # keyword-only


def test_cstpp_objective():
  a, b, same_a, same_b, rec_a, rec_b = (_images(2, 4, 4, 4) for _ in range(6))
  l1 = lambda x, y: np.mean(np.abs(x - y))  # noqa: E731
  identity = cstpp_objective.identity_loss(same_a=same_a, real_a=a,
                                           same_b=same_b, real_b=b)
  cycle = cstpp_objective.cycle_loss(rec_a=rec_a, real_a=a, rec_b=rec_b,
                                     real_b=b)
  np.testing.assert_allclose(identity, l1(same_a, a) + l1(same_b, b),
                             rtol=1e-6)
  np.testing.assert_allclose(cycle, l1(rec_a, a) + l1(rec_b, b), rtol=1e-6)
  scores_a, scores_b = _images(2, 1), _images(2, 1)
  gan = cstpp_objective.adversarial_loss(fake_a_scores=scores_a,
                                         fake_b_scores=scores_b)
  np.testing.assert_allclose(gan, np.mean((scores_a - 1)**2) +
                             np.mean((scores_b - 1)**2), rtol=1e-6)
  total = cstpp_objective.generator_loss(
      {'cycle': cycle, 'identity': identity, 'gan': gan},
      weights={'cycle': 10.0, 'identity': 5.0, 'gan': 1.0})
  np.testing.assert_allclose(total, 10 * cycle + 5 * identity + gan,
                             rtol=1e-6)
  np.testing.assert_allclose(
      cstpp_objective.discriminator_loss(real_scores=scores_a,
                                         fake_scores=scores_b),
      0.5 * (np.mean((scores_a - 1)**2) + np.mean(scores_b**2)), rtol=1e-6)
