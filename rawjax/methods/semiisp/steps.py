"""SemiISP's per-device steps, one per phase (`Method.steps`).

  * 'isp' (phase 1): f_ISP (both variants, losses summed) on real pairs,
    with `isp_loss` (eq. 5 / eq. 14); memorises the predicted parameter
    sets;
  * 'semi' (phase 2): the target model on N_r real + N_p pseudo pairs (made
    in the step, `generate_pseudo_pairs`) with the online pseudo-data
    filtering of eqs. 10-13 (or the plain mean with `semi.filtering` off);
  * 'supervised' (phase 3 / the baseline): the target on real pairs.
Every update goes through `rawjax.train.steps.gradient_update`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rawjax import metrics
from rawjax.methods.semiisp.config import check_config, check_vgg_weights
from rawjax.methods.semiisp.networks import (
    isp_model, isp_variants, phase_optimizer, target_model)
from rawjax.methods.semiisp.objective import (
    isp_loss, online_pseudo_filtering_loss, per_sample_loss)
from rawjax.methods.semiisp.perceptual import load_vgg16
from rawjax.methods.semiisp.pseudo import (
    generate_pseudo_pairs, inverse_luts, memorise)
from rawjax.train.steps import AXIS_NAME, gradient_update, pmean

__all__ = ['make_steps']


def make_steps(config) -> list:
  """The per-device step of `config.phase` (closes over the config).

  Batches: 'raw', 'srgb' (n, p, p, 3) real pairs, plus 'unlabelled' in
  phase 'semi'. Metrics: 'loss', 'psnr' (on the real pairs, clipped), and
  for 'semi' 'loss_real', 'loss_pseudo', 'kept_fraction' (OPF), gradient /
  parameter / update norms. The pseudo-data are generated inside the step
  from the device's unlabelled images, with a per-device key.
  """
  check_config(config)
  if config.phase == 'isp':
    return [_isp_step(config)]
  if config.phase == 'supervised':
    return [_supervised_step(config)]
  return [_semi_step(config)]


def _advance(state, update, metrics, **entries):
  """(the state after `update`, the step's metrics with its diagnostics)."""
  state = dict(state, params=update.params, opt_state=update.opt_state,
               **entries)
  return state, {**metrics, **update.diagnostics}


def _clipped_psnr(prediction, target):
  """The device mean PSNR of the clipped outputs on the real pairs, dB."""
  return pmean(jnp.mean(metrics.psnr(jnp.clip(prediction, 0.0, 1.0),
                                     target)))


def _isp_step(config):
  tx = phase_optimizer(config)
  models = {v: isp_model(config, v) for v in isp_variants(config)}
  kind, scales = config.isp.loss, tuple(config.isp.loss_scales)
  vgg_weight, vgg_layer = float(config.isp.vgg_weight), config.isp.vgg_layer
  check_vgg_weights(config)
  # Eq. 5's frozen VGG16 is closed over, not put in the state: phase 1's
  # checkpoints (restored by phase 2) then do not depend on the weights.
  vgg_params = (jax.tree.map(jnp.asarray, load_vgg16(
      config.isp.vgg_weights, layer=vgg_layer)) if vgg_weight > 0 else None)

  def isp_step(state, batch, rng):
    del rng

    def objective(params):
      total, sets, outputs = 0.0, {}, {}
      for variant, model in models.items():
        z = model.apply({'params': params[variant]}, batch['raw'],
                        method='predict')
        outputs[variant] = model.apply({'params': params[variant]},
                                       batch['raw'], z, method='render')
        total = total + isp_loss(predictions=outputs[variant],
                                 targets=batch['srgb'], kind=kind,
                                 scales=scales, vgg_weight=vgg_weight,
                                 vgg_params=vgg_params, vgg_layer=vgg_layer)
        sets[variant] = z
      return total, (sets, outputs['global'])

    loss, (sets, output), update = gradient_update(
        tx, objective, params=state['params'], opt_state=state['opt_state'])
    # f_ISP renders within [0, 1]: its PSNR needs no clipping.
    out = pmean({'loss': loss, 'psnr': jnp.mean(metrics.psnr(
        output, batch['srgb']))})
    return _advance(state, update, out,
                    memory=memorise(state['memory'], sets))

  return isp_step


def _target_training(config):
  """(optimiser, target model, per-sample loss) of phase 'semi'/'supervised'."""
  section = config[config.phase]
  loss_of = functools.partial(per_sample_loss, kind=section.loss,
                              ssim_weight=float(section.ssim_weight))
  return phase_optimizer(config), target_model(config), loss_of


def _supervised_step(config):
  tx, model, loss_of = _target_training(config)

  def supervised_step(state, batch, rng):
    del rng

    def objective(params):
      prediction = model.apply({'params': params}, batch['raw'])
      return jnp.mean(loss_of(predictions=prediction,
                              targets=batch['srgb'])), prediction

    loss, prediction, update = gradient_update(
        tx, objective, params=state['params'], opt_state=state['opt_state'])
    return _advance(state, update, {
        'loss': pmean(loss), 'psnr': _clipped_psnr(prediction,
                                                   batch['srgb'])})

  return supervised_step


def _semi_step(config):
  tx, model, loss_of = _target_training(config)
  luts = None if config.pseudo.generator == 'upi' else inverse_luts(config)
  beta, filtering = float(config.semi.beta), bool(config.semi.filtering)

  def semi_step(state, batch, rng):
    # Each device makes different pseudo pairs.
    key = jax.random.fold_in(rng, jax.lax.axis_index(AXIS_NAME))
    pseudo_input, pseudo_target = generate_pseudo_pairs(
        config, state.get('isp'), batch['unlabelled'], key, luts=luts)
    n_real = batch['raw'].shape[0]

    def objective(params):
      inputs = jnp.concatenate([batch['raw'], pseudo_input])
      targets = jnp.concatenate([batch['srgb'], pseudo_target])
      prediction = model.apply({'params': params}, inputs)
      per_sample = loss_of(predictions=prediction, targets=targets)
      real, pseudo = per_sample[:n_real], per_sample[n_real:]
      if filtering:
        loss, aux = online_pseudo_filtering_loss(
            real_losses=real, pseudo_losses=pseudo, beta=beta,
            axis_name=AXIS_NAME)
      else:
        loss = jnp.mean(per_sample)
        aux = dict(real_loss=pmean(jnp.mean(real)),
                   pseudo_loss=pmean(jnp.mean(pseudo)),
                   kept=jax.lax.psum(jnp.asarray(pseudo.shape[0],
                                                 jnp.float32), AXIS_NAME))
      return loss, (aux, prediction[:n_real])

    loss, (aux, prediction), update = gradient_update(
        tx, objective, params=state['params'], opt_state=state['opt_state'])
    num_pseudo = jax.lax.psum(batch['unlabelled'].shape[0], AXIS_NAME)
    return _advance(state, update, {
        'loss': pmean(loss), 'loss_real': aux['real_loss'],
        'loss_pseudo': aux['pseudo_loss'],
        'kept_fraction': aux['kept'] / num_pseudo,
        'psnr': _clipped_psnr(prediction, batch['srgb'])})

  return semi_step
