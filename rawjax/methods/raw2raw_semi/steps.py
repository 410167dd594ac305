"""The train state and the per-device train step.

One Adam (`config.optimizer`) over both cameras' U-Nets minimises eq. 6
(`objective.training_objective`); the update goes through the engine's
`rawjax.train.steps.gradient_update` (device mean, Adam, diagnostics).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from rawjax import metrics
from rawjax.methods.raw2raw_semi import config as config_lib
from rawjax.methods.raw2raw_semi import objective
from rawjax.train import state as state_lib
from rawjax.train import steps as steps_lib

__all__ = ['init', 'make_steps']


def init(config, rng: jax.Array) -> dict[str, Any]:
  """The two cameras' U-Nets and their Adam state.

  `config.model_init`: 'independent' (separate random draws) or 'shared'
  (both start from the same draw, so the encoders agree at step 0).

  Returns:
    {'step', 'rng', 'params': {'camera_a': ..., 'camera_b': ...},
    'opt_state'}.
  """
  config_lib.check_config(config)
  model = config_lib.model(config)
  key_a, key_b, key_state = jax.random.split(steps_lib.raw_key(rng), 3)
  size = 2**model.levels
  dummy = jnp.zeros((1, size, size, model.in_channels), jnp.float32)
  # Jitted: op-by-op initialisation would compile every layer's ops apart.
  init_params = jax.jit(lambda key: model.init(key, dummy)['params'])
  if config.model_init == 'shared':
    key_b = key_a  # both cameras' networks start from the same weights
  params = {'camera_a': init_params(key_a), 'camera_b': init_params(key_b)}
  opt_state = jax.jit(config_lib.optimizer(config).init)(params)
  return state_lib.create(params=params, rng=key_state, opt_state=opt_state)


def make_steps(config) -> list:
  """The per-device train step(s), closing over the config's settings.

  `train_step(state, batch, rng) -> (state, metrics)`: batch holds this
  device's 'unpaired_a', 'unpaired_b', 'anchor_a', 'anchor_b' (n, p, p, 4);
  gradients and metrics are averaged over the device axis
  (`rawjax.train.steps.AXIS_NAME`), so it runs under `jax.pmap` /
  `shard_map` with that axis name (one device is a map over one). Metrics:
  'loss' (eq. 6), 'loss_reconstruction', 'loss_anchor', 'loss_mapping' (the
  active terms), 'anchor_psnr_a_to_b' / '_b_to_a' (network output on the
  anchor patches, clipped to [0, 1]), and gradient / parameter / update
  norms.
  """
  config_lib.check_config(config)
  model = config_lib.model(config)
  tx = config_lib.optimizer(config)
  weights = config_lib.loss_weights(config)
  reduction = config.loss.reduction

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    loss_fn = functools.partial(objective.training_objective, model,
                                batch=batch, weights=weights,
                                reduction=reduction)
    loss, (terms, mapped), update = steps_lib.gradient_update(
        tx, loss_fn, params=state['params'], opt_state=state['opt_state'])
    out = {'loss': loss}
    out.update({f'loss_{k}': v for k, v in terms.items()})
    for tag, image in mapped.items():
      target = batch['anchor_b' if tag == 'a_to_b' else 'anchor_a']
      out[f'anchor_psnr_{tag}'] = jnp.mean(metrics.psnr(
          jnp.clip(image, 0.0, 1.0), target))
    out = steps_lib.pmean(out)
    out.update(update.diagnostics)
    return dict(state, params=update.params, opt_state=update.opt_state), out

  return [train_step]
