"""What every method's per-device step shares: one gradient update, keys, schedules.

A method's step (see `rawjax.train.method`) computes its paper's loss and
hands the update to `apply_gradients` / `gradient_update`, which reduce the
gradients over the device axis, apply the optax transformation and report
big_vision's diagnostics. Written once here, the sequence (value_and_grad,
`lax.pmean`, `tx.update`, `optax.apply_updates`, norms) is the same in every
method, so pmap, shard_map and single-device runs agree everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rawjax.train.parallel import AXIS_NAME
from rawjax.train.state import diagnostics

__all__ = [
    'AXIS_NAME', 'Update', 'apply_gradients', 'gradient_update', 'pmean',
    'raw_key', 'warmup_cosine_schedule',
]

GradientTransform = Callable[[Any], tuple[Any, dict[str, jax.Array]]]


class Update(NamedTuple):
  """The result of one optimiser update of one network.

  Attributes:
    params: the updated parameters.
    opt_state: the updated optimiser state.
    diagnostics: {'grad_norm', 'param_norm', 'update_norm', ...} float32
      scalars, equal on every device (the gradients are reduced first).
  """
  params: Any
  opt_state: Any
  diagnostics: dict[str, jax.Array]


def pmean(tree: Any) -> Any:
  """The mean of `tree` over the devices of the step (axis `AXIS_NAME`)."""
  return jax.lax.pmean(tree, AXIS_NAME)


def apply_gradients(tx: optax.GradientTransformation, *, params: Any,
                    opt_state: Any, grads: Any,
                    transform: GradientTransform | None = None,
                    reduce: bool = True) -> Update:
  """One optimiser update from per-device gradients.

  Args:
    tx: the optax transformation of this network.
    params: the parameters the step started from.
    opt_state: `tx`'s state for `params`.
    grads: this device's gradients (a pytree like `params`).
    transform: optional `grads -> (grads, metrics)` applied after the device
      mean and before the update (e.g. CSTPP's gradient clipping); its
      metrics join the diagnostics and override them on a name clash.
    reduce: average `grads` over the device axis first (False when the
      caller already did).

  Returns:
    `Update(params, opt_state, diagnostics)`.
  """
  if reduce:
    grads = pmean(grads)
  extra = {}
  if transform is not None:
    grads, extra = transform(grads)
  updates, opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  report = diagnostics(grads=grads, params=params, updates=updates)
  report.update(extra)
  return Update(new_params, opt_state, report)


def gradient_update(tx: optax.GradientTransformation,
                    loss_fn: Callable[[Any], tuple[jax.Array, Any]], *,
                    params: Any, opt_state: Any,
                    transform: GradientTransform | None = None
                    ) -> tuple[jax.Array, Any, Update]:
  """value_and_grad of `loss_fn(params) -> (loss, aux)`, then `apply_gradients`.

  Returns:
    (loss, aux, update): this device's loss and auxiliary output (the caller
    reduces the metrics it reports) and the `Update`.
  """
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  update = apply_gradients(tx, params=params, opt_state=opt_state,
                           grads=grads, transform=transform)
  return loss, aux, update


def raw_key(rng: Any) -> jax.Array:
  """A raw uint32 key for the train state (typed PRNG keys become key data).

  Checkpoints hold numeric host arrays only, so states store raw keys.
  """
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  return rng


def warmup_cosine_schedule(*, learning_rate: float, schedule: str,
                           num_steps: int, warmup_steps: int = 0,
                           final_fraction: float = 0.0) -> optax.Schedule:
  """'constant', or a linear warm-up followed by a cosine decay ('cosine').

  'cosine': linear warm-up from 0 over `warmup_steps` to `learning_rate`,
  then cosine decay to `learning_rate * final_fraction` at `num_steps`.
  """
  if schedule == 'constant':
    return optax.constant_schedule(learning_rate)
  if schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps,
        decay_steps=max(num_steps, warmup_steps + 1),
        end_value=learning_rate * final_fraction)
  raise ValueError("config.optim.schedule must be 'constant' or 'cosine', "
                   f'got {schedule!r}.')
