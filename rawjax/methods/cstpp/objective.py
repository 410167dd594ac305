"""The objective of CSTPP's CycleGAN (Xie et al., ACM MM 2024, eqs. 8-12).

Keyword-only pure functions of the generators' and discriminators' outputs,
as the official trainer computes them (spec section 1.4; L1 = mean over all
elements, LSGAN squares = mean over the scores):

  * `cycle_loss`, eq. 8: |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1;
  * `identity_loss`, eq. 9: |G_BA(a) - a|_1 + |G_AB(b) - b|_1;
  * `adversarial_loss`, eq. 10 for both discriminators:
    (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2
    (`rawjax.losses.lsgan_generator_loss`);
  * `generator_loss`, eq. 11:
    L_G = 10 L_cycle + 5 L_identity + L_adv (alpha, beta = `config.loss`);
  * `discriminator_loss`, eq. 12 x 0.5 per discriminator:
    0.5 (mean (D(real) - 1)^2 + mean D(fake)^2)
    (`rawjax.losses.lsgan_discriminator_loss`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import losses

__all__ = [
    'adversarial_loss', 'cycle_loss', 'discriminator_loss', 'generator_loss',
    'identity_loss', 'l1',
]


def l1(x: ArrayLike, y: ArrayLike) -> jax.Array:
  """Mean |x - y| over all elements (torch's L1Loss)."""
  return jnp.mean(jnp.abs(jnp.asarray(x) - jnp.asarray(y)))


def identity_loss(*, same_a: ArrayLike, real_a: ArrayLike,
                  same_b: ArrayLike, real_b: ArrayLike) -> jax.Array:
  """Eq. 9: |G_BA(a) - a|_1 + |G_AB(b) - b|_1: each generator leaves its
  target camera's images as they are.

  Args:
    same_a: (N, p, p, C) G_BA(real_a); same_b: G_AB(real_b).
    real_a, real_b: (N, p, p, C) the real images of the two cameras.
  """
  return l1(same_a, real_a) + l1(same_b, real_b)


def cycle_loss(*, rec_a: ArrayLike, real_a: ArrayLike, rec_b: ArrayLike,
               real_b: ArrayLike) -> jax.Array:
  """Eq. 8: |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1 (cycle
  consistency).

  Args:
    rec_a: (N, p, p, C) G_BA(G_AB(real_a)); rec_b: G_AB(G_BA(real_b)).
    real_a, real_b: (N, p, p, C) the real images.
  """
  return l1(rec_a, real_a) + l1(rec_b, real_b)


def adversarial_loss(*, fake_a_scores: ArrayLike,
                     fake_b_scores: ArrayLike) -> jax.Array:
  """Eq. 10 for both discriminators: mean (D_B(G_AB(a)) - 1)^2 +
  mean (D_A(G_BA(b)) - 1)^2.

  Args:
    fake_a_scores: D_A's scores of G_BA(real_b), any shape.
    fake_b_scores: D_B's scores of G_AB(real_a).
  """
  return (losses.lsgan_generator_loss(fake_logits=fake_b_scores) +
          losses.lsgan_generator_loss(fake_logits=fake_a_scores))


def generator_loss(terms: Mapping[str, ArrayLike], *,
                   weights: Mapping[str, float]) -> jax.Array:
  """Eq. 11: L_G = w_cycle L_cycle + w_identity L_identity + w_gan L_adv.

  Args:
    terms: {'cycle', 'identity', 'gan'} float32 scalars.
    weights: the same keys (the paper: 10, 5, 1; `config.loss`).
  """
  return (weights['cycle'] * terms['cycle'] +
          weights['identity'] * terms['identity'] +
          weights['gan'] * terms['gan'])


def discriminator_loss(*, real_scores: ArrayLike,
                       fake_scores: ArrayLike) -> jax.Array:
  """Eq. 12 x 0.5, one discriminator: 0.5 (mean (D(real) - 1)^2 +
  mean D(fake)^2), fakes from the history pool."""
  return losses.lsgan_discriminator_loss(real_logits=real_scores,
                                         fake_logits=fake_scores)
