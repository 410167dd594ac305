"""The train state as a plain dict pytree, and per-step diagnostics.

A state is a `dict` with at least
  * 'step': int32 scalar, the number of iterations done (the loop advances
    it; a method's steps may leave it alone);
  * 'rng': a raw uint32 PRNG key (`jax.random.PRNGKey(seed)`, or a split of
    it). The loop derives every step's key from (state['rng'], step), so a
    resumed run draws exactly the numbers an uninterrupted one would;
  * 'params': the trainable parameters;
plus whatever the method needs (optimiser states, BatchNorm statistics,
history pools...). Leaves are numeric arrays only: typed PRNG key arrays
(`jax.random.key`) are refused with a clear error, because checkpoints hold
host numpy arrays; store `jax.random.key_data(key)` instead.

Methods build states with `create` and report diagnostics with
`diagnostics(grads=, params=, updates=)` (big_vision's gradient, parameter
and update norms), merged into their step metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    'all_finite', 'check_state', 'create', 'diagnostics', 'host_all_finite',
    'to_host',
]


def create(*, params: Any, rng: jax.Array, step: int = 0,
           **entries: Any) -> dict[str, Any]:
  """A train state dict: step (int32), rng (raw uint32 key), params, entries.

  Example: `create(params=params, rng=rng, opt_state=tx.init(params),
  batch_stats=variables['batch_stats'])`.
  """
  state = dict(step=jnp.asarray(step, jnp.int32), rng=jnp.asarray(rng),
               params=params, **entries)
  check_state(state)
  return state


def check_state(state: Any) -> None:
  """Raises ValueError if `state` is not a dict with numeric step/rng/params.

  Names the first problem: a missing key, a non-scalar or non-integer
  'step', a typed PRNG key leaf (with its path), a non-array leaf.
  """
  if not isinstance(state, Mapping):
    raise ValueError(f'a train state must be a dict, got {type(state)}.')
  missing = [k for k in ('step', 'rng', 'params') if k not in state]
  if missing:
    raise ValueError(f'the train state lacks {missing} (keys: '
                     f'{sorted(state)}).')
  step = state['step']
  if (not hasattr(step, 'dtype') or np.ndim(step) != 0 or
      not np.issubdtype(step.dtype, np.integer)):
    raise ValueError(f"state['step'] must be an integer scalar array, got "
                     f'{step!r}.')
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    name = jax.tree_util.keystr(path)
    if not hasattr(leaf, 'dtype') or not hasattr(leaf, 'shape'):
      raise ValueError(f'state{name} is a {type(leaf).__name__}, not an '
                       'array; train-state leaves must be arrays.')
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      raise ValueError(
          f'state{name} is a typed PRNG key array; store a raw uint32 key '
          '(jax.random.key_data(key) or jax.random.PRNGKey(seed)) so that '
          'checkpoints can hold it.')


def diagnostics(*, grads: Any, params: Any,
                updates: Any | None = None) -> dict[str, jax.Array]:
  """Global L2 norms of gradients, parameters and (optionally) updates.

  Args:
    grads: gradient pytree (after the cross-device mean, so every device
      reports the same number).
    params: parameters the step started from.
    updates: optimiser updates (what was added to params), if available.

  Returns:
    {'grad_norm', 'param_norm'[, 'update_norm']}: float32 scalars.
  """
  out = dict(grad_norm=optax.tree.norm(grads),
             param_norm=optax.tree.norm(params))
  if updates is not None:
    out['update_norm'] = optax.tree.norm(updates)
  return out


def _is_float(x: Any) -> bool:
  return jnp.issubdtype(x.dtype, jnp.inexact)


def all_finite(tree: Any) -> jax.Array:
  """Traceable: True iff every float leaf of `tree` is free of NaN/inf."""
  checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if _is_float(x)]
  return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


def host_all_finite(tree: Any) -> bool:
  """Host-side `all_finite` for numpy trees (no device work)."""
  return all(bool(np.isfinite(x).all()) for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


def to_host(tree: Any) -> Any:
  """Copies a pytree of (single-device or fully addressable) arrays to numpy.

  Every leaf becomes an `np.ndarray` (0-d arrays for scalars, which orbax
  needs).
  """
  return jax.tree.map(lambda x: np.array(jax.device_get(x)), tree)
