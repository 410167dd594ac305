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
    (0 switches a term off: the ablation rows of Table 1);
  * `training_objective`: eq. 6 of one device's batch through the two
    networks (the forward passes that feed eqs. 3-5).

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

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    'REDUCTIONS', 'anchor_loss', 'mapping_loss', 'reconstruction_loss',
    'semi_supervised_raw2raw_loss', 'squared_frobenius', 'training_objective',
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


def _concat_features(*lists):
  return [jnp.concatenate(blocks, axis=0) for blocks in zip(*lists)]


def training_objective(model: Any, params: Mapping[str, Any],
                       batch: Mapping[str, jax.Array], *,
                       weights: Mapping[str, float], reduction: str
                       ) -> tuple[jax.Array, tuple[dict[str, jax.Array],
                                                   dict[str, jax.Array]]]:
  """Eq. 6 on one device's batch, through E_A, D_A, E_B, D_B.

  Args:
    model: the encoder-decoder (`encode` returns every block's output,
      `decode` takes them).
    params: {'camera_a': ..., 'camera_b': ...} the two networks' parameters.
    batch: 'unpaired_a', 'unpaired_b' (n, p, p, C) and 'anchor_a',
      'anchor_b' (m, p, p, C) images in [0, 1].
    weights: {'reconstruction', 'anchor', 'mapping'} (a 0 weight skips the
      term and the forward passes only it needs).
    reduction: 'sum' (the paper) or 'mean', see the module docstring.

  Returns:
    (L, (terms, mapped)): the float32 total of eq. 6; the active terms
    {'reconstruction' (eq. 3), 'anchor' (eq. 4), 'mapping' (eq. 5)}; with
    the mapping term, the decoder-swap outputs {'a_to_b': D_B(E_A(anchor_a)),
    'b_to_a': D_A(E_B(anchor_b))} (unclipped).
  """
  encode = functools.partial(model.apply, method='encode')
  decode = functools.partial(model.apply, method='decode')
  pa = {'params': params['camera_a']}
  pb = {'params': params['camera_b']}
  use_unpaired = weights['reconstruction'] != 0
  use_anchors = weights['anchor'] != 0 or weights['mapping'] != 0
  use_mapping = weights['mapping'] != 0
  parts_a = ([batch['unpaired_a']] if use_unpaired else []) + (
      [batch['anchor_a']] if use_anchors else [])
  parts_b = ([batch['unpaired_b']] if use_unpaired else []) + (
      [batch['anchor_b']] if use_anchors else [])
  # One encoder call per camera over its unpaired and anchor images.
  features_a = encode(pa, jnp.concatenate(parts_a, axis=0))
  features_b = encode(pb, jnp.concatenate(parts_b, axis=0))
  n = batch['unpaired_a'].shape[0] if use_unpaired else 0
  m = batch['unpaired_b'].shape[0] if use_unpaired else 0
  unpaired_a = [f[:n] for f in features_a]
  unpaired_b = [f[:m] for f in features_b]
  anchor_a = [f[n:] for f in features_a]
  anchor_b = [f[m:] for f in features_b]
  # One decoder call per camera: its own unpaired codes (reconstruction) and
  # the other camera's anchor codes (the swap of eq. 5).
  inputs_da = ([unpaired_a] if use_unpaired else []) + (
      [anchor_b] if use_mapping else [])
  inputs_db = ([unpaired_b] if use_unpaired else []) + (
      [anchor_a] if use_mapping else [])
  out_a = decode(pa, _concat_features(*inputs_da)) if inputs_da else None
  out_b = decode(pb, _concat_features(*inputs_db)) if inputs_db else None
  terms, mapped = {}, {}
  if use_unpaired:
    terms['reconstruction'] = reconstruction_loss(
        images=jnp.concatenate([batch['unpaired_a'], batch['unpaired_b']]),
        reconstructions=jnp.concatenate([out_a[:n], out_b[:m]]),
        reduction=reduction)
  if weights['anchor'] != 0:
    terms['anchor'] = anchor_loss(features_a=anchor_a, features_b=anchor_b,
                                  reduction=reduction)
  if use_mapping:
    mapped = {'b_to_a': out_a[n:], 'a_to_b': out_b[m:]}
    terms['mapping'] = mapping_loss(
        targets_a=batch['anchor_a'], mapped_a=mapped['b_to_a'],
        targets_b=batch['anchor_b'], mapped_b=mapped['a_to_b'],
        reduction=reduction)
  total = semi_supervised_raw2raw_loss(
      reconstruction=terms.get('reconstruction', 0.0),
      anchor=terms.get('anchor', 0.0), mapping=terms.get('mapping', 0.0),
      reconstruction_weight=weights['reconstruction'],
      anchor_weight=weights['anchor'], mapping_weight=weights['mapping'])
  return total, (terms, mapped)
