"""Black- and white-level normalisation of packed raw, and its inverse.

    x_norm = (x - black_c) / (white - black_c)

per canonical channel c in (R, Gr, Gb, B). Clipping is an explicit choice:
'none' keeps sub-black noise and super-white values (what noise models and
invertibility need), 'both' clips to [0, 1] (what a display pipeline needs),
'lower' clips at 0 only.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import _math

Clip = Literal['none', 'lower', 'both']


def _levels(x: ArrayLike, black_level: ArrayLike, white_level: ArrayLike,
            fn: str):
  """Validates and returns x, black and white broadcastable to (..., h, w, 4)."""
  x = _checks.as_float(x, name='packed', fn=fn)
  _checks.check_channels(x, 4, name='packed', fn=fn)
  black = _checks.as_float(black_level, name='black_level', fn=fn)
  white = _checks.as_float(white_level, name='white_level', fn=fn)
  if black.ndim > 0 and black.shape[-1] not in (1, 4):
    raise ValueError(f'{fn}: black_level must be a scalar or have 4 values '
                     f'(R, Gr, Gb, B) on its last axis, got shape '
                     f'{tuple(black.shape)}.')
  # Per-image levels carry the batch dims; give them the spatial axes.
  if black.ndim > 0:
    black = black[..., None, None, :]
  if white.ndim > 0:
    white = white[..., None, None, None]
  _checks.check_below(black, white, names='black_level and white_level',
                      fn=fn)
  return x, black, white


def normalize(packed: ArrayLike, *, black_level: ArrayLike,
              white_level: ArrayLike, clip: Clip = 'both') -> jax.Array:
  """Maps packed raw sensor values to [0, 1] (before clipping).

  Args:
    packed: (..., h, w, 4) raw values in sensor units.
    black_level: scalar or (..., 4) per-channel black in canonical order.
    white_level: scalar (or batch-broadcastable) saturation level.
    clip: 'none', 'lower' (at 0) or 'both' (to [0, 1]).

  Returns:
    float32 (..., h, w, 4).

  Raises:
    ValueError: a concrete black level is not below the white level. When
      the levels are traced (e.g. metadata inside `jit`) this cannot be
      checked; the channels whose black level is not below white are NaN
      instead of a silent constant.
  """
  x, black, white = _levels(packed, black_level, white_level, 'normalize')
  y = _math.safe_divide(x - black, white - black)
  return apply_clip(jnp.where(white > black, y, jnp.nan), clip=clip)


def denormalize(x: ArrayLike, *, black_level: ArrayLike,
                white_level: ArrayLike) -> jax.Array:
  """Inverse of `normalize` (without clipping): back to sensor units.

  Raises:
    ValueError: a concrete black level is not below the white level.
  """
  x, black, white = _levels(x, black_level, white_level, 'denormalize')
  return x * (white - black) + black


def apply_clip(x: ArrayLike, *, clip: Clip) -> jax.Array:
  """Applies a named clipping policy to normalised values."""
  x = jnp.asarray(x)
  if clip == 'none':
    return x
  if clip == 'lower':
    return jnp.maximum(x, 0.0)
  if clip == 'both':
    return jnp.clip(x, 0.0, 1.0)
  raise ValueError(f"clip must be 'none', 'lower' or 'both', got {clip!r}.")
