"""SemiISP's train state per phase, and restoring another phase's state.

  * 'isp': {'params': {variant: f_ISP params}, 'opt_state', 'memory':
    {'count', variant: (M, *z_shape) float32}};
  * 'semi': {'params': target params, 'opt_state', 'isp': {'params',
    'memory'}} with 'isp' restored from phase 1 (`pseudo.isp_workdir`),
    except for the 'upi' generator;
  * 'supervised': {'params': target params, 'opt_state'}, the params
    restored from phase 2 (`supervised.init_from`) when fine-tuning.
Every state also has 'step' and 'rng' (`rawjax.train.state.create`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from rawjax.methods.semiisp.config import check_config, phase_config
from rawjax.methods.semiisp.networks import (
    isp_model, isp_variants, optimizer, phase_optimizer, target_model)
from rawjax.methods.semiisp.pseudo import z_shape
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer
from rawjax.train.steps import raw_key

__all__ = ['init', 'restore_phase']


def _init_params(model, key, size: int):
  dummy = jnp.zeros((1, size, size, 3), jnp.float32)
  return jax.jit(lambda k: model.init(k, dummy)['params'])(key)


def _model_size(config) -> int:
  """A square input size every model accepts (multiple of 2**levels)."""
  levels = int(config.model.get('levels', 0))
  return max(16, 2**levels)


def init(config, rng: jax.Array) -> dict[str, Any]:
  """The initial state of `config.phase` (see the module docstring).

  Raises:
    FileNotFoundError: a phase to restore from has no checkpoint.
    ValueError: phase 1's memory is empty.
  """
  check_config(config)
  rng = raw_key(rng)
  key_model, key_state = jax.random.split(rng)
  tx = phase_optimizer(config)
  if config.phase == 'isp':
    params, memory = {}, {'count': jnp.zeros((), jnp.int32)}
    for i, variant in enumerate(isp_variants(config)):
      model = isp_model(config, variant)
      params[variant] = _init_params(model, jax.random.fold_in(key_model, i),
                                     model.resize)
      memory[variant] = jnp.zeros((config.isp.memory_size, *z_shape(model)),
                                  jnp.float32)
    return state_lib.create(params=params, rng=key_state,
                            opt_state=jax.jit(tx.init)(params),
                            memory=memory)
  model = target_model(config)
  params = _init_params(model, key_model, _model_size(config))
  entries = {}
  if config.phase == 'semi' and config.pseudo.generator != 'upi':
    isp = restore_phase(config, 'isp', config.pseudo.isp_workdir)
    if int(isp['memory']['count']) == 0:
      raise ValueError(f'phase 1 in {config.pseudo.isp_workdir} memorised no '
                       'parameter sets (train it first).')
    entries['isp'] = {'params': isp['params'], 'memory': isp['memory']}
  if config.phase == 'supervised' and config.supervised.init_from:
    params = restore_phase(config, 'semi',
                           config.supervised.init_from)['params']
  return state_lib.create(params=params, rng=key_state,
                          opt_state=jax.jit(tx.init)(params), **entries)


def restore_phase(config, phase: str, workdir: str | os.PathLike[str]
                  ) -> dict[str, Any]:
  """The newest checkpoint of a `phase` run in `workdir` (host numpy).

  The template state is built from `config` set to that phase, so the two
  runs must share the model and f_ISP settings.
  """
  if not workdir:
    key = ('pseudo.isp_workdir' if phase == 'isp' else
           'supervised.init_from')
    raise ValueError(f'restoring phase {phase!r} needs its workdir (set '
                     f'config.{key}).')
  directory = pathlib.Path(workdir).expanduser() / 'checkpoints'
  source = phase_config(config, phase, **(
      {'supervised.init_from': ''} if phase == 'supervised' else {}))
  if phase == 'semi':
    # Phase 2's own f_ISP entry: shapes only (no second restore).
    template = _semi_template(source)
  else:
    template = state_lib.to_host(init(source, jax.random.PRNGKey(0)))
  with Checkpointer(directory, async_save=False) as checkpointer:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(
          f'no {phase!r} checkpoint in {directory}; run that phase first '
          f'(config.phase={phase!r}).')
    restored, _ = checkpointer.restore(template)
  return restored


def _semi_template(config) -> dict[str, Any]:
  rng = jax.random.PRNGKey(0)
  target = state_lib.to_host(init(phase_config(
      config, 'supervised', **{'supervised.init_from': ''}), rng))
  tx = optimizer(config.semi, config.semi.num_steps)
  target['opt_state'] = state_lib.to_host(
      jax.jit(tx.init)(target['params']))
  if config.pseudo.generator != 'upi':
    isp = state_lib.to_host(init(phase_config(config, 'isp'), rng))
    target['isp'] = {'params': isp['params'], 'memory': isp['memory']}
  return target
