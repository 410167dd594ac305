"""SemiISP's pseudo-data: f_ISP's memory, one-to-many sRGB-to-RAW, noise.

Phase 1 memorises the parameter sets f_ISP predicted (`memorise`, a ring
buffer in the train state); phase 2 turns unlabelled sRGB images into
pseudo (raw, sRGB) pairs inside its jitted step (`generate_pseudo_pairs`):

  * 'one_to_many' (eq. 9): raw = f_ISP^-1(sRGB; P), P drawn uniformly from
    the memory (`sample_sets`), per ISP unit or per function unit;
  * 'deterministic' ("w/o one-to-many", Tables 2/3): one fixed P, the mean
    of the memorised sets;
  * 'upi': Brooks et al.'s unprocessing, no f_ISP;

optionally with the sRGB quality update (USQ) and eq. 15's noise
(`add_pseudo_noise`). f_ISP^-1 is eq. 6 (`pseudo_raw`) with the inverse
tables of f_GM (and f_IT) precomputed once (`inverse_luts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from rawjax.isp import noise as noise_lib, pqdynamic
from rawjax.isp.unprocess import unprocess as upi_unprocess
from rawjax.methods.semiisp.networks import isp_model
from rawjax.models import pqdynamic_net
from rawjax.train.steps import AXIS_NAME

__all__ = [
    'UNIT_SLICES', 'add_pseudo_noise', 'generate_pseudo_pairs',
    'inverse_luts', 'mean_set', 'memorise', 'pseudo_raw', 'sample_sets',
    'z_shape',
]

# Slices of the unconstrained parameter vector per function unit
# (`pqdynamic.params_from_unconstrained`'s layout).
UNIT_SLICES = {'cc': (0, 9), 'ga': (9, 18), 'gm': (18, 27), 'cs': (27, 36),
               'itm': (36, 45)}


def z_shape(model: pqdynamic_net.PQDynamicNet) -> tuple[int, ...]:
  """The shape of one memorised set: (K,) global, (g, g, K) local."""
  if model.variant == 'local':
    return (model.grid, model.grid, model.num_params)
  return (model.num_params,)


def memorise(memory: Mapping[str, jax.Array], sets: Mapping[str, jax.Array],
             *, axis_name: str | None = AXIS_NAME) -> dict[str, jax.Array]:
  """Writes a batch of parameter sets into the ring buffer (a pure update).

  Args:
    memory: {'count': int32 scalar (sets written so far), variant: (M,
      *z_shape) buffers}.
    sets: variant -> this device's (b, *z_shape) predicted sets.
    axis_name: gather every device's sets first (all devices then hold the
      same buffer); None on one device.

  Returns:
    The new memory: set i of the (gathered) batch goes to slot
    (count + i) mod M, so the buffer holds the last M sets.
  """
  count = memory['count']
  new = dict(memory)
  written = 0
  for variant, z in sets.items():
    z = jax.lax.stop_gradient(z)
    if axis_name is not None:
      z = jax.lax.all_gather(z, axis_name).reshape(-1, *z.shape[1:])
    buffer = memory[variant]
    slots = (count + jnp.arange(z.shape[0])) % buffer.shape[0]
    new[variant] = buffer.at[slots].set(z.astype(buffer.dtype))
    written = z.shape[0]
  new['count'] = count + written
  return new


def _valid_sets(memory, variant):
  buffer = jnp.asarray(memory[variant])
  return jnp.clip(memory['count'], 1, buffer.shape[0]), buffer


def sample_sets(key: jax.Array, memory: Mapping[str, jax.Array], n: int, *,
                variant: str = 'global', sampling: str = 'isp_unit'
                ) -> jax.Array:
  """n parameter sets drawn uniformly from the memorised ones (eq. 9).

  'isp_unit': each draw is one memorised set; 'function_unit': each
  function unit (CC, GA, GM, CS[, IT]) comes from its own uniformly drawn
  set (the paper's choice with plentiful data).

  Returns:
    (n, *z_shape) unconstrained values.
  """
  valid, buffer = _valid_sets(memory, variant)
  num_params = buffer.shape[-1]
  units = [s for s in UNIT_SLICES.values() if s[1] <= num_params]
  draws = 1 if sampling == 'isp_unit' else len(units)
  index = jax.random.randint(key, (n, draws), 0, valid)
  if draws == 1:
    return buffer[index[:, 0]]
  parts = [buffer[index[:, u]][..., a:b] for u, (a, b) in enumerate(units)]
  return jnp.concatenate(parts, axis=-1)


def mean_set(memory: Mapping[str, jax.Array], variant: str,
             n: int) -> jax.Array:
  """The mean of the memorised sets, repeated: (n, *z_shape) unconstrained.

  The one fixed set of the 'deterministic' generator (unwritten slots are
  left out).
  """
  valid, buffer = _valid_sets(memory, variant)
  weight = (jnp.arange(buffer.shape[0]) < valid).astype(buffer.dtype)
  weight = weight.reshape((-1,) + (1,) * (buffer.ndim - 1))
  mean = jnp.sum(buffer * weight, axis=0) / valid
  return jnp.broadcast_to(mean, (n, *buffer.shape[1:]))


def inverse_luts(config) -> pqdynamic.InverseLUTs:
  """The f_GM^-1 (and, for 'enhance', f_IT^-1) tables at `pseudo.lut_shape`.

  Compile-time constants of the phase-2 step: a coarse grid that
  `pseudo.newton_steps` Newton steps refine.
  """
  shape = tuple(int(d) for d in config.pseudo.lut_shape)
  ranges = isp_model(config, 'global').ranges
  gm = pqdynamic.gamma_tone_map_lut(p_range=ranges.gamma, shape=shape,
                                    progress=False)
  itm = (pqdynamic.inverse_tone_map_lut(p_range=ranges.itm_exponent,
                                        shape=shape, progress=False)
         if config.task == 'enhance' else None)
  return pqdynamic.InverseLUTs(gm, itm)


def pseudo_raw(model: pqdynamic_net.PQDynamicNet, srgb: jax.Array,
               z: jax.Array, luts: pqdynamic.InverseLUTs,
               newton_steps: int) -> jax.Array:
  """f_ISP^-1(srgb; P(z)) (eqs. 6 and 9): (n, H, W, 3) pseudo-RAW in [0, 1].

  z: (n, *z_shape) unconstrained sets of `model`'s variant (per-pixel
  interpolated for 'local').
  """
  h, w = srgb.shape[1:3]
  params = model.to_params(z, h, w)
  return pqdynamic.isp_inverse(srgb, params, luts=luts,
                               newton_steps=newton_steps,
                               per_pixel=model.variant == 'local')


def add_pseudo_noise(config, level_key: jax.Array, noise_key: jax.Array,
                     raw: jax.Array) -> jax.Array:
  """Shot + read noise on clean (n, H, W, 3) pseudo-RAW (eq. 15, unclipped).

  Levels per image from `pseudo.noise_levels`: 'semiisp' (eq. 15's uniform
  ranges) or 'upi' (UPI's log-uniform shot over `pseudo.shot_range` with
  log-linear read, the simulator's model). With `pseudo.averaged_greens`
  the G channel gets half the variance: it stands for the mean of the two
  green sites of a Bayer cell, each noisy at the full level.
  """
  if raw.ndim != 4 or raw.shape[-1] != 3:
    raise ValueError('add_pseudo_noise: expected (n, H, W, 3) pseudo-RAW, '
                     f'got shape {raw.shape}.')
  pseudo = config.pseudo
  n = raw.shape[0]
  if pseudo.noise_levels == 'upi':
    levels = noise_lib.random_noise_levels(
        level_key, shape=(n,), shot_range=tuple(pseudo.shot_range))
  else:
    levels = noise_lib.random_semiisp_noise_levels(
        level_key, shape=(n,), shot_max=pseudo.shot_max,
        read_max=pseudo.read_max)
  scale = (jnp.array([1.0, 0.5, 1.0], raw.dtype) if pseudo.averaged_greens
           else jnp.ones((3,), raw.dtype))
  shot = levels.shot[:, None, None, None] * scale
  read = levels.read[:, None, None, None] * scale
  return noise_lib.add_noise(noise_key, raw, shot, read)


def generate_pseudo_pairs(config, isp_state: Mapping[str, Any],
                          srgb: jax.Array, key: jax.Array, *,
                          luts: pqdynamic.InverseLUTs | None
                          ) -> tuple[jax.Array, jax.Array]:
  """Pseudo (raw, sRGB target) pairs from unlabelled sRGB (traceable).

  With USQ: sRGB -> f_ISP^-1 (a random global P) -> f_ISP with the trained
  local encoder's P -> updated sRGB (the pseudo ground truth) -> f_ISP^-1
  (a fresh P, `pseudo.inverse_variant`) -> the pseudo-RAW.

  Args:
    config: the method config (`pseudo` section).
    isp_state: {'params': {variant: f_ISP params}, 'memory': ring buffer}
      from phase 1 (unused by the 'upi' generator).
    srgb: (n, H, W, 3) unlabelled sRGB in [0, 1].
    key: PRNG key.
    luts: the inverse tables (`inverse_luts`); None only for 'upi'.

  Returns:
    (raw, target), each (n, H, W, 3): the pseudo input (noisy if
    `pseudo.noise`, clipped to [0, 1]) and its ground truth (the input sRGB,
    or the updated sRGB with USQ).
  """
  pseudo = config.pseudo
  n = srgb.shape[0]
  keys = jax.random.split(key, 4)
  target = srgb
  if pseudo.generator == 'upi':
    raw, _ = upi_unprocess(keys[0], srgb, layout='rgb')
  else:
    memory = isp_state['memory']
    global_model = isp_model(config, 'global')

    def draw(k, variant, sampling):
      if pseudo.generator == 'deterministic':
        return mean_set(memory, variant, n)
      return sample_sets(k, memory, n, variant=variant, sampling=sampling)

    final_variant = pseudo.inverse_variant
    final_model = isp_model(config, final_variant)
    if pseudo.usq:
      first = pseudo_raw(global_model, srgb,
                         draw(keys[0], 'global', 'isp_unit'), luts,
                         pseudo.newton_steps)
      local = isp_model(config, 'local')
      local_params = {'params': isp_state['params']['local']}
      target = local.apply(local_params, first)
      raw = pseudo_raw(final_model, target,
                       draw(keys[1], final_variant, pseudo.sampling), luts,
                       pseudo.newton_steps)
    else:
      raw = pseudo_raw(final_model, srgb,
                       draw(keys[1], final_variant, pseudo.sampling), luts,
                       pseudo.newton_steps)
  if pseudo.noise:
    raw = jnp.clip(add_pseudo_noise(config, keys[2], keys[3], raw), 0.0, 1.0)
  return jax.lax.stop_gradient(raw), jax.lax.stop_gradient(target)
