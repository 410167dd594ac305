"""Gradient clipping at global norm 2 per network, as the official trainer.

The functions `generator_clip` and `discriminator_clip` return the
`transform` that `rawjax.train.steps.apply_gradients` applies after the
device mean and before Adam; each reports the norms before clipping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = [
    'clip_by_global_norm', 'clip_generator_grads', 'discriminator_clip',
    'generator_clip',
]

Transform = Callable[[Any], tuple[Any, dict[str, jax.Array]]]


def clip_by_global_norm(tree: Any, max_norm: float) -> tuple[Any, jax.Array]:
  """torch's clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)).

  Returns:
    (the scaled tree, its global L2 norm before scaling).
  """
  norm = optax.tree.norm(tree)
  scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
  return jax.tree.map(lambda x: x * scale, tree), norm


def clip_generator_grads(grads: Any, *, max_norm: float,
                         mode: str) -> tuple[Any, jax.Array]:
  """Per network (official order) or over the union; returns (grads, norm).

  'per_network': clip (shared + a_to_b) to `max_norm` (torch's
  clip_grad_norm_(G_AB)), then (clipped shared + b_to_a) (G_BA), as the
  official trainer with its shared tensors. 'union': one global norm.

  Args:
    grads: {'shared', 'a_to_b', 'b_to_a'} gradients of the generators
      (`rawjax.models.cstpp.split_params` layout).
    max_norm: the clipping norm (`config.optim.clip_norm`).
    mode: 'per_network' or 'union' (`config.optim.clip`).

  Returns:
    (clipped grads, norm before clipping: G_AB's or the union's).
  """
  if mode == 'union':
    return clip_by_global_norm(grads, max_norm)
  ab, norm = clip_by_global_norm(
      {'shared': grads['shared'], 'own': grads['a_to_b']}, max_norm)
  ba, _ = clip_by_global_norm(
      {'shared': ab['shared'], 'own': grads['b_to_a']}, max_norm)
  return {'shared': ba['shared'], 'a_to_b': ab['own'],
          'b_to_a': ba['own']}, norm


def generator_clip(*, max_norm: float, mode: str) -> Transform:
  """`clip_generator_grads` as a transform; reports 'grad_norm' (unclipped)."""
  def transform(grads):
    grads, norm = clip_generator_grads(grads, max_norm=max_norm, mode=mode)
    return grads, {'grad_norm': norm}
  return transform


def discriminator_clip(*, max_norm: float) -> Transform:
  """D_A and D_B clipped apart.

  Reports 'grad_norm_a', 'grad_norm_b' and their union 'grad_norm', all
  before clipping.
  """
  def transform(grads):
    grads, report = dict(grads), {}
    for k in ('a', 'b'):
      grads[k], report[f'grad_norm_{k}'] = clip_by_global_norm(grads[k],
                                                               max_norm)
    report['grad_norm'] = jnp.hypot(report['grad_norm_a'],
                                    report['grad_norm_b'])
    return grads, report
  return transform
