"""The train state: generators, discriminators, optimisers, history pools.

state = {'step', 'rng', 'params': {'generator': {'shared', 'a_to_b',
'b_to_a'}, 'discriminator': {'a', 'b'}}, 'batch_stats': {'a_to_b',
'b_to_a'} (empty dicts for the ResNet generator), 'opt_g', 'opt_d',
'pool': {'a', 'b'}: {'images' (50, p, p, C), 'count'}, 'pool_out': {'a',
'b'}: (global batch, p, p, C)}. Everything is replicated across devices,
so a checkpoint holds all of it.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.methods.cstpp import config as config_lib
from rawjax.methods.cstpp.pool import pool_init
from rawjax.models import cstpp
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer
from rawjax.train.steps import raw_key

__all__ = ['init', 'restore_state']


def init(config, rng: jax.Array) -> dict[str, Any]:
  """Generators (shared backbone), discriminators, optimisers, pools.

  G_AB and G_BA are initialised independently; the shared arrays are G_AB's
  (the official code builds G_BA, then replaces its Conv/Linear layers by
  G_AB's).
  """
  config_lib.check_config(config)
  g = config_lib.generator_model(config)
  d = config_lib.discriminator_model(config)
  keys = jax.random.split(raw_key(rng), 5)
  p = config.data.patch_size
  c = config.model.in_channels
  dummy = jnp.zeros((1, p, p, c), jnp.float32)
  # The ResNet generator's parameters do not depend on the input size and a
  # 256 x 256 init forward costs ~100 GFLOP; its smallest input suffices.
  g_dummy = (jnp.zeros((1, 8, 8, c), jnp.float32)
             if config.model.generator == 'resnet' else dummy)

  @jax.jit
  def build(keys):
    # vmapped over the two draws: one traced init per network type.
    v = jax.vmap(lambda k: g.init(k, g_dummy, train=False))(keys[:2])
    v_ab, v_ba = (jax.tree.map(lambda t, i=i: t[i], v) for i in range(2))
    dv = jax.vmap(lambda k: d.init(k, dummy)['params'])(keys[2:4])
    params = {
        'generator': cstpp.split_params(v_ab['params'], v_ba['params'],
                                        sharing=config.model.sharing),
        'discriminator': {k: jax.tree.map(lambda t, i=i: t[i], dv)
                          for i, k in enumerate(('a', 'b'))}}
    # CycleGAN's ResNet generator (instance norm) has no batch_stats.
    stats = {'a_to_b': v_ab.get('batch_stats', {}),
             'b_to_a': v_ba.get('batch_stats', {})}
    return params, stats

  params, stats = build(keys)
  o = config.optim
  opt_g = jax.jit(config_lib.adam(o.generator_lr, config).init)(
      params['generator'])
  opt_d = jax.jit(config_lib.adam(o.discriminator_lr, config).init)(
      params['discriminator'])
  shape = (p, p, c)
  pool = {k: pool_init(config.data.pool_size, shape) for k in ('a', 'b')}
  pool_out = {k: jnp.zeros((config.data.batch_size, *shape), jnp.float32)
              for k in ('a', 'b')}
  return state_lib.create(params=params, rng=keys[4], batch_stats=stats,
                          opt_g=opt_g, opt_d=opt_d, pool=pool,
                          pool_out=pool_out)


def restore_state(config, workdir: str | pathlib.Path) -> dict[str, Any]:
  """The newest checkpoint of a CSTPP training workdir, as a host state.

  Raises:
    FileNotFoundError: the workdir has no checkpoint.
  """
  shapes = jax.eval_shape(lambda: init(config, jax.random.PRNGKey(0)))
  template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  with Checkpointer(pathlib.Path(workdir) / 'checkpoints',
                    async_save=False) as checkpointer:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(f'no checkpoint under {workdir}/checkpoints; '
                              'train CSTPP first (python -m launch.train '
                              '--config=configs/raw2raw_cstpp.py ...).')
    state, _ = checkpointer.restore(template)
  return state
