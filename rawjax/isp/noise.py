"""Heteroscedastic shot + read noise of raw sensor data, and its sampling.

Both noise models used in this project are the same Gaussian approximation of
a Poisson-Gaussian sensor,

    x_noisy ~ N(mu = x, sigma^2 = shot * x + read),

with `shot` the variance per unit of signal and `read` the signal-independent
variance (a variance, not a standard deviation, in both sources). They differ
in how the two levels are drawn per image:

  * UPI (Brooks et al., "Unprocessing Images for Learned Raw Denoising",
    CVPR 2019; `random_noise_levels` of the official code): log shot uniform
    in [log 1e-4, log 0.012], log read = 2.18 log shot + 1.20 + N(0, 0.26^2),
    a line fitted to the calibrated noise of real sensors;
  * SemiISP (Yoshimura et al. 2025, eq. 15 with the ranges of its appendix
    A): shot ~ U(0, 0.01) and read ~ U(0, 0.0002), independent.

Sampling is reparameterised (x + sqrt(variance) * z with z ~ N(0, 1)), so the
noisy image is differentiable with respect to the clean one and to the levels.
Negative signal (already noisy input) is treated as 0 in the variance, where
UPI would take the square root of a negative number.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import _checks

NoiseModel = Literal['upi', 'semiisp']

# Below this variance the standard deviation is taken as 0: the value changes
# by at most 1e-6 sigma-units and the gradient of sqrt stays finite (<= 5e5).
_MIN_VARIANCE = 1e-12


class NoiseLevels(NamedTuple):
  """Per-image noise levels (a pytree); leading dims are the batch dims.

  Attributes:
    shot: variance per unit of signal (sigma_s^2 in SemiISP eq. 15).
    read: signal-independent variance (sigma_r^2 in SemiISP eq. 15).
  """
  shot: jax.Array
  read: jax.Array


def random_noise_levels(key: jax.Array, *, shape: tuple[int, ...] = (),
                        shot_range: tuple[float, float] = (1e-4, 0.012),
                        slope: float = 2.18, intercept: float = 1.20,
                        read_log_std: float = 0.26) -> NoiseLevels:
  """UPI's shot and read noise levels (log-log linear relation).

  log(shot) ~ U(log shot_range[0], log shot_range[1]);
  log(read) = slope * log(shot) + intercept + N(0, read_log_std^2).
  Defaults are UPI's (Brooks et al. 2019; `random_noise_levels` of the
  official code). One key draws both: split into (shot, read) keys.

  Args:
    key: PRNG key.
    shape: batch shape of the levels (one pair per image).
    shot_range: bounds of the shot variance per unit signal, 0 < low < high.
    slope, intercept: the line relating log read to log shot.
    read_log_std: standard deviation of log read around the line.

  Returns:
    `NoiseLevels` of float32 arrays of shape `shape`; `read` is a variance.
  """
  low, high = shot_range
  if not 0.0 < low < high:
    raise ValueError('random_noise_levels: shot_range must satisfy '
                     f'0 < low < high, got {shot_range}.')
  shot_key, read_key = jax.random.split(key)
  log_shot = jax.random.uniform(shot_key, shape, minval=math.log(low),
                                maxval=math.log(high))
  log_read = (slope * log_shot + intercept +
              read_log_std * jax.random.normal(read_key, shape))
  return NoiseLevels(shot=jnp.exp(log_shot), read=jnp.exp(log_read))


def random_semiisp_noise_levels(key: jax.Array, *,
                                shape: tuple[int, ...] = (),
                                shot_max: float = 0.01,
                                read_max: float = 0.0002) -> NoiseLevels:
  """SemiISP's noise levels (eq. 15): shot ~ U(0, 0.01), read ~ U(0, 2e-4).

  The paper writes them as sigma_s^2 and sigma_r^2 (both variances, drawn per
  image) and gives the ranges in its appendix A.

  Args:
    key: PRNG key (split into shot and read keys).
    shape: batch shape of the levels (one pair per image).
    shot_max, read_max: upper bounds of the two uniform distributions.

  Returns:
    `NoiseLevels` of float32 arrays of shape `shape`.
  """
  if shot_max < 0 or read_max < 0:
    raise ValueError('random_semiisp_noise_levels: shot_max and read_max must '
                     f'be >= 0, got {shot_max} and {read_max}.')
  shot_key, read_key = jax.random.split(key)
  return NoiseLevels(
      shot=jax.random.uniform(shot_key, shape, maxval=shot_max),
      read=jax.random.uniform(read_key, shape, maxval=read_max))


def _per_image(level: ArrayLike, x: jnp.ndarray, *, name: str,
               fn: str) -> jnp.ndarray:
  """Expands (...)-shaped per-image levels over the trailing image axes.

  A level with fewer dims than `x` must match its leading dims (a scalar is
  shared); one with as many dims broadcasts as it is (e.g. per channel).
  """
  level = _checks.as_float(level, name=name, fn=fn)
  if level.ndim < x.ndim:
    if level.shape != x.shape[:level.ndim]:
      raise ValueError(
          f'{fn}: {name} of shape {tuple(level.shape)} must match the leading '
          f'(batch) dims of the image {tuple(x.shape)}, or be a scalar.')
    return level.reshape(level.shape + (1,) * (x.ndim - level.ndim))
  if level.ndim > x.ndim:
    raise ValueError(f'{fn}: {name} of shape {tuple(level.shape)} has more '
                     f'dims than the image {tuple(x.shape)}.')
  return level


def noise_variance(x: ArrayLike, shot: ArrayLike, read: ArrayLike) -> jax.Array:
  """Per-pixel variance shot * max(x, 0) + read.

  UPI feeds this map, computed from the *noisy* image, to its network as the
  noise estimate; `add_noise` uses it on the clean image.

  Args:
    x: raw image of any layout ((..., h, w, 4) packed, (..., H, W) mosaic),
      normalised to [0, 1].
    shot, read: per-image levels, scalars or with x's leading batch dims.

  Returns:
    The variance, same shape as `x`, >= read.
  """
  fn = 'noise_variance'
  x = _checks.as_float(x, name='x', fn=fn)
  shot = _per_image(shot, x, name='shot', fn=fn)
  read = _per_image(read, x, name='read', fn=fn)
  # where, not maximum: at x = 0 the gradient is that of x (maximum splits it).
  return shot * jnp.where(x >= 0.0, x, 0.0) + read


def add_noise(key: jax.Array, x: ArrayLike, shot: ArrayLike,
              read: ArrayLike) -> jax.Array:
  """Draws x_noisy ~ N(x, shot * x + read) by reparameterisation.

  x_noisy = x + sqrt(noise_variance(x, shot, read)) * z, z ~ N(0, 1) i.i.d.
  per pixel (UPI's `add_noise`; SemiISP eq. 15). Differentiable with respect
  to x, shot and read; the gradients stay finite where the variance is 0.
  No clipping: the result can leave [0, 1], as in both sources.

  Args:
    key: PRNG key.
    x: clean raw image of any layout, normalised to [0, 1].
    shot: variance per unit signal, scalar or per image (x's leading dims).
    read: signal-independent variance, scalar or per image.

  Returns:
    Noisy image, same shape and float dtype as `x`.
  """
  x = _checks.as_float(x, name='x', fn='add_noise')
  variance = noise_variance(x, shot, read)
  positive = variance > _MIN_VARIANCE
  std = jnp.where(positive, jnp.sqrt(jnp.where(positive, variance, 1.0)), 0.0)
  return x + std * jax.random.normal(key, x.shape, x.dtype)


def add_random_noise(key: jax.Array, x: ArrayLike, *,
                     model: NoiseModel = 'upi',
                     image_ndim: int = 3) -> tuple[jax.Array, NoiseLevels]:
  """Draws per-image noise levels from `model`, then adds that noise.

  Args:
    key: PRNG key (split into a level key and a noise key).
    x: clean raw images; the last `image_ndim` axes are one image, the axes
      before them are batch axes with one pair of levels each.
    model: 'upi' (`random_noise_levels`) or 'semiisp'
      (`random_semiisp_noise_levels`, SemiISP eq. 15).
    image_ndim: 3 for packed (h, w, 4) or RGB images, 2 for mosaics.

  Returns:
    (noisy image like `x`, the `NoiseLevels` with x's batch shape).
  """
  fn = 'add_random_noise'
  x = _checks.as_float(x, name='x', fn=fn)
  if not 1 <= image_ndim <= x.ndim:
    raise ValueError(f'{fn}: image_ndim must be between 1 and x.ndim = '
                     f'{x.ndim}, got {image_ndim}.')
  batch_shape = x.shape[:x.ndim - image_ndim]
  level_key, noise_key = jax.random.split(key)
  if model == 'upi':
    levels = random_noise_levels(level_key, shape=batch_shape)
  elif model == 'semiisp':
    levels = random_semiisp_noise_levels(level_key, shape=batch_shape)
  else:
    raise ValueError(f"{fn}: model must be 'upi' or 'semiisp', got {model!r}.")
  return add_noise(noise_key, x, levels.shot, levels.read), levels
