"""The objective of semi-supervised raw-to-raw mapping (Afifi & Abuolaim, BMVC 2021).

Keyword-only pure loss functions, one per equation of the paper, with two
encoder-decoders (E_A, D_A) and (E_B, D_B):

  * `reconstruction_loss`, eq. 3: L_r = 1/N sum_n ||I_n - D(E(I_n))||_F^2 on
    the unpaired images of each camera;
  * `anchor_loss`, eq. 4: L_a = 1/N sum_e sum_n ||X^e_A,n - X^e_B,n||_F^2
    between the outputs of *every* encoder block e for the two captures of
    an anchor pair;
  * `mapping_loss`, eq. 5: L_m = 1/(2N) sum_n ||I_A,n - D_A(E_B(I_B,n))||_F^2
    + ||I_B,n - D_B(E_A(I_A,n))||_F^2 on the anchor pairs (decoder swap);
  * `semi_supervised_raw2raw_loss`, eq. 6: L = L_r + L_a + L_m, with weights
    (0 switches a term off: the ablation rows of Table 1).

Norm and normalisation. The paper writes squared Frobenius norms of whole
images (and feature maps) averaged over the mini-batch: the squared error is
*summed* over pixels and channels of a sample, then averaged over samples.
That is `reduction='sum'` (the default, the paper's equations as written).
Its consequence: the terms' relative weights depend on the patch size and on
the feature-map sizes (a 64x64x24 first block counts 64 times more elements
than an 8x8x192 one). `reduction='mean'` divides each norm by its number of
elements (per-element mean squared error; for eq. 4 each block's mean, summed
over blocks), which makes the weights independent of the patch size. Both are
mean-over-batch, so under data parallelism the per-device loss averaged with
`lax.pmean` equals the loss of the whole batch (equal shares per device).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    'REDUCTIONS', 'anchor_loss', 'mapping_loss', 'reconstruction_loss',
    'semi_supervised_raw2raw_loss', 'squared_frobenius',
]

REDUCTIONS = ('sum', 'mean')


def squared_frobenius(x: ArrayLike, y: ArrayLike, *,
                      reduction: str = 'sum') -> jax.Array:
  """Batch mean of the per-sample squared Frobenius norm ||x_n - y_n||_F^2.

  Args:
    x, y: (N, ...) arrays of the same shape (N samples).
    reduction: 'sum' (sum over each sample's elements) or 'mean' (their mean).

  Returns:
    float32 scalar: 1/N sum_n ||x_n - y_n||^2 ('sum') or its per-element
    mean ('mean').
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.shape != y.shape:
    raise ValueError(f'squared_frobenius: shapes differ, {x.shape} and '
                     f'{y.shape}.')
  if x.ndim < 1 or x.shape[0] == 0:
    raise ValueError(f'squared_frobenius: need (N, ...) with N >= 1, got '
                     f'shape {x.shape}.')
  if reduction not in REDUCTIONS:
    raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                     f'{reduction!r}.')
  per_sample = jnp.sum(jnp.square(x - y).reshape(x.shape[0], -1), axis=1)
  if reduction == 'mean':
    per_sample = per_sample / max(1, x[0].size)
  return jnp.mean(per_sample)


def reconstruction_loss(*, images: ArrayLike, reconstructions: ArrayLike,
                        reduction: str = 'sum') -> jax.Array:
  """Eq. 3: autoencoding error on unpaired images.

  Args:
    images: (N, H, W, C) inputs I_n (either camera, or both concatenated).
    reconstructions: (N, H, W, C) D(E(I_n)) by the same camera's network.
    reduction: see the module docstring ('sum' = the paper's equation).

  Returns:
    float32 scalar L_r.
  """
  return squared_frobenius(images, reconstructions, reduction=reduction)


def anchor_loss(*, features_a: Sequence[ArrayLike],
                features_b: Sequence[ArrayLike],
                reduction: str = 'sum') -> jax.Array:
  """Eq. 4: latent distance between the cameras over all encoder blocks.

  Args:
    features_a: E outputs of E_A's blocks for the anchor images of camera A,
      each (N, h_e, w_e, c_e).
    features_b: the same blocks of E_B for the paired images of camera B.
    reduction: 'sum' (the paper) or 'mean' (each block's per-element mean).

  Returns:
    float32 scalar L_a = sum_e 1/N sum_n ||X^e_A,n - X^e_B,n||^2.
  """
  features_a, features_b = list(features_a), list(features_b)
  if not features_a or len(features_a) != len(features_b):
    raise ValueError(f'anchor_loss: need the same non-zero number of encoder '
                     f'blocks for both cameras, got {len(features_a)} and '
                     f'{len(features_b)}.')
  return sum(squared_frobenius(a, b, reduction=reduction)
             for a, b in zip(features_a, features_b))


def mapping_loss(*, targets_a: ArrayLike, mapped_a: ArrayLike,
                 targets_b: ArrayLike, mapped_b: ArrayLike,
                 reduction: str = 'sum') -> jax.Array:
  """Eq. 5: the decoder-swap error on the anchor pairs.

  Args:
    targets_a: (N, H, W, C) anchor images of camera A.
    mapped_a: (N, H, W, C) D_A(E_B(I_B)), B's images mapped to A.
    targets_b: (N, H, W, C) anchor images of camera B.
    mapped_b: (N, H, W, C) D_B(E_A(I_A)).
    reduction: see the module docstring.

  Returns:
    float32 scalar L_m = 1/(2N) sum_n (||I_A,n - Î_A,n||^2 +
    ||I_B,n - Î_B,n||^2).
  """
  return 0.5 * (squared_frobenius(targets_a, mapped_a, reduction=reduction) +
                squared_frobenius(targets_b, mapped_b, reduction=reduction))


def semi_supervised_raw2raw_loss(*, reconstruction: ArrayLike,
                                 anchor: ArrayLike, mapping: ArrayLike,
                                 reconstruction_weight: float = 1.0,
                                 anchor_weight: float = 1.0,
                                 mapping_weight: float = 1.0) -> jax.Array:
  """Eq. 6: L = L_r + L_a + L_m (paper weights 1); a 0 weight drops a term.

  A dropped term contributes exactly 0 (even if it is not finite), which is
  how the ablations of Table 1 train.
  """
  total = jnp.zeros((), jnp.float32)
  for value, weight in ((reconstruction, reconstruction_weight),
                        (anchor, anchor_weight), (mapping, mapping_weight)):
    if weight:
      total = total + weight * jnp.asarray(value, jnp.float32)
  return total
