"""The per-device steps: the generator step, then the discriminator step.

`generator_step` updates both generators (eqs. 8-11), pushes this step's
fakes (gathered from all devices) through the history pools and leaves the
pools' answers in `state['pool_out']`; `discriminator_step` updates D_A and
D_B (eq. 12) on real images and on its device's share of those answers. So
the discriminators see the fakes of the generator step of the same
iteration, before the generator update, exactly as the official loop (which
uses fake.detach() after the G step). Both updates go through
`rawjax.train.steps.gradient_update`, with the official clipping as its
`transform` (`rawjax.methods.cstpp.clipping`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rawjax.methods.cstpp import clipping
from rawjax.methods.cstpp import config as config_lib
from rawjax.methods.cstpp import objective
from rawjax.methods.cstpp.inference import model_view, quantize
from rawjax.methods.cstpp.pool import pool_query
from rawjax.models import cstpp
from rawjax.train import steps as steps_lib

__all__ = ['GENERATOR_CALLS', 'make_steps']

# The official G step's generator calls: (direction 0 = A->B / 1 = B->A,
# input 0 real_a / 1 real_b / 2 fake_b / 3 fake_a); outputs same_b, same_a,
# fake_b, fake_a, rec_a, rec_b.
GENERATOR_CALLS = ((0, 1), (1, 0), (0, 0), (1, 1), (1, 2), (0, 3))


def make_steps(config) -> list:
  """[generator_step, discriminator_step], per device over the device axis.

  Batch (this device's share): {'a': (n, p, p, C), 'b': (n, p, p, C)}
  unpaired images of the two cameras. Metrics: 'loss' (L_G or the summed
  discriminator losses), the loss terms, D scores, gradient norms (before
  clipping) and parameter / update norms.
  """
  config_lib.check_config(config)
  axis = steps_lib.AXIS_NAME
  sync = config.model.sync_batch_norm
  g = config_lib.generator_model(config, train_axis=axis if sync else None)
  d = config_lib.discriminator_model(config)
  o, w = config.optim, dict(config.loss)
  tx_g = config_lib.adam(o.generator_lr, config)
  tx_d = config_lib.adam(o.discriminator_lr, config)
  clip_g = clipping.generator_clip(max_norm=o.clip_norm, mode=o.clip)
  clip_d = clipping.discriminator_clip(max_norm=o.clip_norm)
  quantized = config.data.quantize_8bit

  def view(images):
    return model_view(config, quantize(images, quantized))

  def generator_calls(split, stats, real_a, real_b):
    """The six generator calls of the official G step, in its order.

    Each call is separate, in train mode, with its own batch statistics and
    running-statistics update, as PyTorch. (A `lax.scan` over the calls
    compiled no faster here and ran 3-6x slower on CPU, so they are
    unrolled.)
    """
    outputs = []
    for direction, source in GENERATOR_CALLS:
      tag = cstpp.DIRECTIONS[direction]
      x = (real_a, real_b, *outputs[2:4])[source]
      y, updates = g.apply({'params': cstpp.merge_params(split, tag),
                            'batch_stats': stats[tag]}, x, train=True,
                           mutable=['batch_stats'])
      # The ResNet generator has no BatchNorm: no statistics to update.
      stats = dict(stats, **{tag: updates.get('batch_stats', {})})
      outputs.append(y)
    return outputs, stats

  def discriminate(d_params, images):
    """D_A on images[0], D_B on images[1] (one vmapped call)."""
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), d_params['a'],
                           d_params['b'])
    return jax.vmap(lambda p, x: d.apply({'params': p}, x))(stacked, images)

  def generator_objective(g_params, d_params, stats, real_a, real_b):
    outputs, stats = generator_calls(g_params, stats, real_a, real_b)
    same_b, same_a, fake_b, fake_a, rec_a, rec_b = outputs
    scores = discriminate(d_params, jnp.stack([fake_a, fake_b]))
    terms = {
        'identity': objective.identity_loss(same_a=same_a, real_a=real_a,
                                            same_b=same_b, real_b=real_b),
        'gan': objective.adversarial_loss(fake_a_scores=scores[0],
                                          fake_b_scores=scores[1]),
        'cycle': objective.cycle_loss(rec_a=rec_a, real_a=real_a,
                                      rec_b=rec_b, real_b=real_b),
    }
    total = objective.generator_loss(terms, weights=w)
    return total, (terms, stats, {'a': fake_a, 'b': fake_b})

  def generator_step(state, batch, rng):
    real_a, real_b = view(batch['a']), view(batch['b'])
    params = state['params']
    loss_fn = functools.partial(generator_objective,
                                d_params=params['discriminator'],
                                stats=state['batch_stats'], real_a=real_a,
                                real_b=real_b)
    loss, (terms, stats, fakes), update = steps_lib.gradient_update(
        tx_g, loss_fn, params=params['generator'], opt_state=state['opt_g'],
        transform=clip_g)
    stats = steps_lib.pmean(stats)
    pool, pool_out = {}, {}
    for i, k in enumerate(('a', 'b')):
      gathered = jax.lax.all_gather(jax.lax.stop_gradient(fakes[k]), axis,
                                    tiled=True)
      pool[k], pool_out[k] = pool_query(state['pool'][k], gathered,
                                        jax.random.fold_in(rng, i))
    out = {'loss': loss, **{f'loss_{k}': v for k, v in terms.items()}}
    out = steps_lib.pmean(out)
    out.update(update.diagnostics)
    new = dict(state, params=dict(params, generator=update.params),
               batch_stats=stats, opt_g=update.opt_state, pool=pool,
               pool_out=pool_out)
    return new, out

  def discriminator_objective(d_params, real, fake):
    # Real and pooled fake images in one call per discriminator (instance
    # norm is per image, so this equals separate calls).
    n = real['a'].shape[0]
    scores = discriminate(d_params, jnp.stack(
        [jnp.concatenate([real[k], fake[k]]) for k in ('a', 'b')]))
    losses, report = {}, {}
    for i, k in enumerate(('a', 'b')):
      real_scores, fake_scores = scores[i, :n], scores[i, n:]
      losses[k] = objective.discriminator_loss(real_scores=real_scores,
                                               fake_scores=fake_scores)
      report[f'd_{k}_real'] = jnp.mean(real_scores)
      report[f'd_{k}_fake'] = jnp.mean(fake_scores)
    return losses['a'] + losses['b'], (losses, report)

  def discriminator_step(state, batch, rng):
    del rng
    real = {k: view(batch[k]) for k in ('a', 'b')}
    n = real['a'].shape[0]
    start = jax.lax.axis_index(axis) * n
    fake = {k: jax.lax.dynamic_slice_in_dim(state['pool_out'][k], start, n)
            for k in ('a', 'b')}
    params = state['params']
    loss_fn = functools.partial(discriminator_objective, real=real, fake=fake)
    loss, (losses, scores), update = steps_lib.gradient_update(
        tx_d, loss_fn, params=params['discriminator'],
        opt_state=state['opt_d'], transform=clip_d)
    out = {'loss': loss, 'loss_d_a': losses['a'], 'loss_d_b': losses['b'],
           **scores}
    out = steps_lib.pmean(out)
    out.update(update.diagnostics)
    return dict(state, params=dict(params, discriminator=update.params),
                opt_d=update.opt_state), out

  return [generator_step, discriminator_step]
