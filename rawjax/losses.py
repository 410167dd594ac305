"""Losses that more than one paper uses: keyword-only pure functions.

Each paper's own objective lives in its method package, with that paper's
equation numbers: `rawjax.methods.raw2raw_semi.objective` (eqs. 3-6),
`rawjax.methods.cstpp.objective` (eqs. 8-12), `rawjax.methods.liteisp.objective`
(eqs. 5-11), `rawjax.methods.kpn.objective` and
`rawjax.methods.semiisp.objective` (eqs. 10-14). Here: the least-squares GAN
terms (Mao et al., ICCV 2017) that LiteISPGAN and the CSTPP CycleGAN share.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ['lsgan_discriminator_loss', 'lsgan_generator_loss']


def lsgan_generator_loss(*, fake_logits: ArrayLike) -> jax.Array:
  """LSGAN generator term: mean (D(G(x)) - 1)^2 over all logits.

  LiteISPNet eq. 8 as its code computes it (the paper writes
  1/2 E[(D - 1)^2]; `GANLoss('lsgan')` is torch's MSELoss against 1 without
  the 1/2, weighted 0.01 in the total); CSTPP eq. 10, per discriminator.

  Args:
    fake_logits: discriminator outputs on generated images, any shape.
  """
  return jnp.mean(jnp.square(jnp.asarray(fake_logits) - 1.0))


def lsgan_discriminator_loss(*, real_logits: ArrayLike,
                             fake_logits: ArrayLike) -> jax.Array:
  """LSGAN discriminator term: 1/2 (mean (D(y) - 1)^2 + mean D(G(x))^2).

  LiteISPNet eq. 9; CSTPP eq. 12 per discriminator, with the CycleGAN
  code's factor 1/2.
  """
  return 0.5 * (jnp.mean(jnp.square(jnp.asarray(real_logits) - 1.0)) +
                jnp.mean(jnp.square(jnp.asarray(fake_logits))))
