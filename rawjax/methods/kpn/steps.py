"""The kernel-prediction ISP's train state and per-device step.

Adam (betas 0.9 / 0.999) on `objective.kpn_loss`, the learning rate
`config.optim` with an optional linear warm-up and cosine decay
(`rawjax.train.steps.warmup_cosine_schedule`); the poster fixes none of
these (docs/kpn.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from rawjax import metrics
from rawjax.methods.kpn import config as config_lib
from rawjax.methods.kpn.objective import kpn_loss
from rawjax.train import state as state_lib
from rawjax.train import steps as train_steps

__all__ = ['init', 'make_steps']


def _optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  schedule = train_steps.warmup_cosine_schedule(
      learning_rate=o.learning_rate, schedule=o.schedule,
      num_steps=config.train.num_steps, warmup_steps=o.warmup_steps,
      final_fraction=o.final_fraction)
  return optax.adam(learning_rate=schedule, b1=o.b1, b2=o.b2, eps=o.eps)


def init(config, rng: jax.Array) -> dict[str, Any]:
  """state = {'step', 'rng', 'params' (the KPN), 'opt_state' (Adam)}."""
  config_lib.check_config(config)
  model = config_lib.kpn_model(config)
  key_params, key_state = jax.random.split(train_steps.raw_key(rng))
  multiple = 2**model.levels
  size = multiple * -(-model.kernel_size // multiple)  # reflect needs > r
  dummy = jnp.zeros((1, size, size, 4), jnp.float32)
  params = jax.jit(lambda key: model.init(key, dummy)['params'])(key_params)
  opt_state = jax.jit(_optimizer(config).init)(params)
  return state_lib.create(params=params, rng=key_state, opt_state=opt_state)


def make_steps(config) -> list:
  """[train_step]: `train_step(state, batch, rng) -> (state, metrics)`.

  batch holds this device's 'raw' (n, p, p, 4) and 'srgb' (n, 2p, 2p, 3);
  gradients and metrics are averaged over the 'batch' axis. Metrics:
  'loss', 'loss_l1', 'loss_ssim' (the SSIM itself, when weighted), 'psnr'
  (clipped output vs target), gradient / parameter / update norms.
  """
  config_lib.check_config(config)
  model = config_lib.kpn_model(config)
  tx = _optimizer(config)
  l1_weight, ssim_weight = float(config.loss.l1), float(config.loss.ssim)

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    target = batch['srgb']

    def loss_fn(params):
      prediction = model.apply({'params': params}, batch['raw'])
      total, terms = kpn_loss(prediction=prediction, target=target,
                              l1_weight=l1_weight, ssim_weight=ssim_weight)
      return total, (terms, prediction)

    loss, (terms, prediction), update = train_steps.gradient_update(
        tx, loss_fn, params=state['params'], opt_state=state['opt_state'])
    out = {'loss': loss, **{f'loss_{k}': v for k, v in terms.items()},
           'psnr': jnp.mean(metrics.psnr(jnp.clip(prediction, 0.0, 1.0),
                                         target))}
    out = train_steps.pmean(out)
    out.update(update.diagnostics)
    return dict(state, params=update.params, opt_state=update.opt_state), out

  return [train_step]
