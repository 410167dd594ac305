"""LiteISPNet's train state and per-device step (the released code's training).

One step, as `zrrjoint_model.py` / `train_zrr.sh`:

  1. x_hat = bilinear demosaic of the packed raw, GCM: y_tilde =
     C(x_hat, y, tau) (eq. 2);
  2. (y_w, m) = the target aligned onto y_tilde (eqs. 3, 4, 6;
     `alignment.align_target`), without gradient;
  3. y_hat = LiteISPNet(x) (eq. 1); both outputs multiplied by m;
  4. LiteISPGAN only: the PatchGAN discriminator's LSGAN update first
     (eq. 9), then L = L_GCM + L1 + VGG + 0.15 (1 - SSIM) [+ 0.01 L_adv]
     (eqs. 5, 7, 8, 11; `objective`).

GCM receives gradient only from its L1 term and LiteISPNet only from its
own terms (the flow is a constant), so the two networks' gradients come
from one forward pass each through their VJPs, and each network has its
own Adam (lr 1e-4, betas 0.9/0.999) halved every 40 epochs.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import losses, metrics
from rawjax.methods.liteisp import config as config_lib
from rawjax.methods.liteisp import data as data_lib
from rawjax.methods.liteisp import objective
from rawjax.methods.liteisp.alignment import align_target, demosaic_raw
from rawjax.train import state as state_lib
from rawjax.train import steps as train_steps

__all__ = ['init', 'learning_rate_schedule', 'load_weights', 'make_steps']


def learning_rate_schedule(config, *, epoch_steps: int | None = None
                           ) -> optax.Schedule:
  """StepLR per epoch: lr * factor ** floor(epoch / decay_epochs).

  `epoch_steps` defaults to `data.steps_per_epoch` (or the train split's
  batches per epoch).
  """
  o = config.optim
  epoch_steps = epoch_steps or data_lib.steps_per_epoch(config)
  return optax.exponential_decay(
      init_value=o.learning_rate,
      transition_steps=max(1, o.decay_epochs * epoch_steps),
      decay_rate=o.decay_factor, staircase=True)


def _optimizer(config, epoch_steps: int | None = None
               ) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(learning_rate_schedule(config, epoch_steps=epoch_steps),
                    b1=o.b1, b2=o.b2, eps=o.eps)


def load_weights(path: str, network: str) -> Any:
  """Flax params of `network` ('vgg19' or 'pwcnet') from a file.

  An .npz of `rawjax.convert.save_params` (Flax layout), else a torch
  state dict converted on the fly.
  """
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  p = pathlib.Path(path).expanduser()
  if not p.is_file():
    raise FileNotFoundError(f'{network} weights not found: {p}')
  if p.suffix == '.npz':
    with np.load(p) as f:
      flax_layout = any('/' in k for k in f.files)
    if flax_layout:
      return convert.load_params(p)
  state_dict = convert.load_state_dict(p)
  if network == 'vgg19':
    return convert.convert_vgg19(state_dict)
  converter = getattr(convert, 'convert_pwcnet', None)
  if converter is None:
    raise ValueError(f'{p}: no PWC-Net converter available; give an .npz of '
                     'Flax parameters.')
  return converter(state_dict)


def init(config, rng: jax.Array) -> dict[str, Any]:
  """LiteISPNet + GCM (+ discriminator) parameters and their Adam states.

  state = {'step', 'rng', 'params': {'isp', 'gcm'[, 'disc']},
  'opt_state': {'isp', 'gcm'[, 'disc']}[, 'batch_stats': {'disc'}],
  'frozen': {'vgg'[, 'pwc']}} ('frozen' holds the fixed VGG-19 and PWC-Net
  weights the losses and the aligner need; {} when unused).
  """
  config_lib.check_config(config)
  k_isp, k_gcm, k_disc, k_state = jax.random.split(train_steps.raw_key(rng),
                                                   4)
  s = 8 * 2
  raw = jnp.zeros((1, s, s, 4), jnp.float32)
  rgb = jnp.zeros((1, 2 * s, 2 * s, 3), jnp.float32)
  coord = jnp.zeros((1, 2 * s, 2 * s, 2), jnp.float32)
  isp, gcm = config_lib.isp_model(config), config_lib.gcm_model(config)
  params = {
      'isp': jax.jit(lambda k: isp.init(k, raw)['params'])(k_isp),
      'gcm': jax.jit(lambda k: gcm.init(k, rgb, rgb, coord)['params'])(k_gcm),
  }
  entries: dict[str, Any] = {}
  if config.gan.enabled:
    disc = config_lib.discriminator(config, axis_name=None)
    variables = jax.jit(lambda k: disc.init(k, rgb, train=False))(k_disc)
    params['disc'] = variables['params']
    entries['batch_stats'] = {'disc': variables['batch_stats']}
  tx = _optimizer(config, data_lib.steps_per_epoch(config))
  opt_state = {k: jax.jit(tx.init)(v) for k, v in params.items()}
  frozen: dict[str, Any] = {}
  if config.loss.vgg > 0:
    frozen['vgg'] = jax.tree.map(jnp.asarray, load_weights(
        config.loss.vgg_weights, 'vgg19'))
  if 'pwcnet' in (config.align.method, config_lib.eval_aligner(config)):
    frozen['pwc'] = jax.tree.map(jnp.asarray, load_weights(
        config.align.weights, 'pwcnet'))
  return state_lib.create(params=params, rng=k_state, opt_state=opt_state,
                          frozen=frozen, **entries)


def make_steps(config) -> list:
  """The per-device step: GCM + LiteISPNet (+ D first, for LiteISPGAN).

  `train_step(state, batch, rng) -> (state, metrics)`; batch holds this
  device's 'raw' (n, h, w, 4), 'rgb' (n, 2h, 2w, 3), 'coord'
  (n, 2h, 2w, 2). Gradients, BatchNorm statistics and metrics are averaged
  over the 'batch' axis. Metrics: 'loss' (eq. 11), 'loss_gcm', 'loss_l1',
  'loss_ssim', 'loss_vgg' (active terms), 'loss_adv' / 'loss_disc' (GAN),
  'mask_fraction', 'psnr_gcm' / 'psnr_isp' (masked outputs vs y_w) and the
  gradient / parameter / update norms of every network ('isp_grad_norm',
  'gcm_update_norm', 'disc_param_norm', ...).
  """
  config_lib.check_config(config)
  isp, gcm = config_lib.isp_model(config), config_lib.gcm_model(config)
  tx = _optimizer(config)
  align = dict(method=config.align.method,
               options=dict(config.align.options), eps=config.align.mask_eps,
               padding=config.align.padding)
  lw = config.loss
  use_gan = bool(config.gan.enabled)
  disc = config_lib.discriminator(config) if use_gan else None

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    params, frozen = state['params'], state['frozen']
    raw, rgb, coord = batch['raw'], batch['rgb'], batch['coord']
    x_hat = demosaic_raw(raw)
    gcm_out, gcm_vjp = jax.vjp(
        lambda p: gcm.apply({'params': p}, x_hat, rgb, coord), params['gcm'])
    target, mask = align_target(gcm_out, rgb, pwc_params=frozen.get('pwc'),
                                **align)
    out, isp_vjp = jax.vjp(lambda p: isp.apply({'params': p}, raw),
                           params['isp'])
    new_params, new_opt = dict(params), dict(state['opt_state'])
    new_state, report = dict(state), {}

    if use_gan:
      fake = jax.lax.stop_gradient(out * mask)

      def d_loss(p):
        logits, updates = disc.apply(
            {'params': p, 'batch_stats': state['batch_stats']['disc']},
            jnp.concatenate([fake, target]), train=True,
            mutable=['batch_stats'])
        fake_logits, real_logits = jnp.split(logits, 2)
        return losses.lsgan_discriminator_loss(
            real_logits=real_logits, fake_logits=fake_logits), updates

      loss_d, d_updates, update = train_steps.gradient_update(
          tx, d_loss, params=params['disc'],
          opt_state=state['opt_state']['disc'])
      new_params['disc'], new_opt['disc'] = update.params, update.opt_state
      new_state['batch_stats'] = {'disc': d_updates['batch_stats']}
      report['loss_disc'] = loss_d
      report.update({f'disc_{k}': v for k, v in update.diagnostics.items()})

    def isp_objective(y):
      terms = objective.masked_terms(
          output=y, target=target, mask=mask, ssim=lw.ssim > 0,
          vgg_params=frozen['vgg'] if lw.vgg > 0 else None,
          vgg_layer=lw.vgg_layer)
      if use_gan:
        # D in training mode as the reference (its statistics of this
        # batch), with the just-updated weights; its running averages are
        # not touched by the generator pass.
        logits, _ = disc.apply(
            {'params': new_params['disc'],
             'batch_stats': new_state['batch_stats']['disc']},
            y * mask, train=True, mutable=['batch_stats'])
        terms['adv'] = losses.lsgan_generator_loss(fake_logits=logits)
      total = objective.liteisp_total_loss(
          gcm=0.0, l1=terms['l1'], vgg=terms.get('vgg', 0.0),
          ssim=terms.get('ssim', 0.0), adversarial=terms.get('adv', 0.0),
          gcm_weight=0.0, l1_weight=lw.l1, vgg_weight=lw.vgg,
          ssim_weight=lw.ssim,
          adversarial_weight=config.gan.weight if use_gan else 0.0)
      return total, terms

    def gcm_objective(y):
      return objective.masked_l1_loss(prediction=y * mask, target=target)

    # The losses are differentiated with respect to the network outputs and
    # pulled back through each network's own VJP (one forward pass each).
    (isp_loss, terms), d_out = jax.value_and_grad(
        isp_objective, has_aux=True)(out)
    gcm_loss, d_gcm = jax.value_and_grad(gcm_objective)(gcm_out)
    grads = {'isp': isp_vjp(d_out)[0], 'gcm': gcm_vjp(d_gcm)[0]}
    for name in ('isp', 'gcm'):
      update = train_steps.apply_gradients(
          tx, params=params[name], opt_state=state['opt_state'][name],
          grads=grads[name])
      new_params[name], new_opt[name] = update.params, update.opt_state
      report.update({f'{name}_{k}': v for k, v in update.diagnostics.items()})
    total = lw.gcm * gcm_loss + isp_loss
    scalars = {'loss': total, 'loss_gcm': gcm_loss,
               'mask_fraction': jnp.mean(mask),
               'psnr_gcm': jnp.mean(metrics.psnr(
                   jnp.clip(gcm_out * mask, 0, 1), target)),
               'psnr_isp': jnp.mean(metrics.psnr(
                   jnp.clip(out * mask, 0, 1), target))}
    scalars.update({f'loss_{k}': v for k, v in terms.items()})
    scalars.update({k: v for k, v in report.items() if k.startswith('loss_')})
    scalars = train_steps.pmean(scalars)
    scalars.update({k: v for k, v in report.items()
                    if not k.startswith('loss_')})
    new_state.update(params=new_params, opt_state=new_opt)
    return new_state, scalars

  return [train_step]
