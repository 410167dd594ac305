"""The per-image metadata that the classic pipeline consumes, as a pytree."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from rawjax import _checks
from rawjax.isp import cfa


@flax.struct.dataclass
class RawMetadata:
  """What `process` needs to render a mosaic; a pytree (vmappable, jittable).

  Attributes:
    pattern: static CFA pattern name ('RGGB', 'BGGR', 'GRBG', 'GBRG').
    black_level: (..., 4) black level per canonical channel (R, Gr, Gb, B),
      sensor units.
    white_level: (...) saturation level, sensor units.
    wb_gains: (..., 3) white-balance gains (R, G, B) normalised to G = 1.
    cam_to_srgb: (..., 3, 3) white-balanced camera RGB -> linear sRGB (D65),
      rows summing to 1 (a neutral stays neutral), as LibRaw's `rgb_cam`.
    gain_map: None, or (..., H/2, W/2, 4) float32 lens/colour shading
      correction gain per packed pixel in canonical (R, Gr, Gb, B) order
      (the DNG GainMap opcodes evaluated by
      `rawjax.isp.gain_from_gain_maps`), multiplied into the normalised raw
      by `process`.
  """
  black_level: jax.Array
  white_level: jax.Array
  wb_gains: jax.Array
  cam_to_srgb: jax.Array
  pattern: str = flax.struct.field(pytree_node=False, default='RGGB')
  gain_map: jax.Array | None = None

  @classmethod
  def create(cls, *, pattern: str, black_level, white_level, wb_gains,
             cam_to_srgb, gain_map=None) -> 'RawMetadata':
    """Validates and converts to float32 arrays.

    Shapes are checked always; values when they are concrete (not traced):
    white-balance gains finite and > 0, black level finite and >= 0, black
    below white (per channel and image), a finite `cam_to_srgb`. Traced
    values are not checked here; `process` then renders NaN for black >=
    white or a gain <= 0 (see `normalize`, `white_balance`).

    Raises:
      ValueError: a wrong shape or, for concrete values, a broken rule above
        (the message names the argument).
    """
    fn = 'RawMetadata.create'
    black_level = jnp.asarray(black_level, jnp.float32)
    if black_level.shape[-1:] not in ((), (1,), (4,)):
      raise ValueError(f'{fn}: black_level must be a scalar or have 4 values '
                       f'(R, Gr, Gb, B), got shape {tuple(black_level.shape)}.')
    black_level = jnp.broadcast_to(black_level, black_level.shape[:-1] + (4,)
                                   if black_level.ndim else (4,))
    white_level = jnp.asarray(white_level, jnp.float32)
    wb_gains = jnp.asarray(wb_gains, jnp.float32)
    cam_to_srgb = jnp.asarray(cam_to_srgb, jnp.float32)
    _checks.check_positive(wb_gains, name='wb_gains', fn=fn)
    _checks.check_values(black_level, lambda v: np.isfinite(v) & (v >= 0),
                         name='black_level', fn=fn, rule='finite and >= 0')
    _checks.check_below(black_level, white_level[..., None],
                        names='black_level and white_level', fn=fn)
    _checks.check_finite(cam_to_srgb, name='cam_to_srgb', fn=fn)
    if wb_gains.shape[-1:] != (3,):
      raise ValueError(f'RawMetadata: wb_gains must have 3 values (R, G, B), '
                       f'got shape {tuple(wb_gains.shape)}.')
    if cam_to_srgb.shape[-2:] != (3, 3):
      raise ValueError(f'RawMetadata: cam_to_srgb must be 3x3, got shape '
                       f'{tuple(cam_to_srgb.shape)}.')
    if gain_map is not None:
      gain_map = jnp.asarray(gain_map, jnp.float32)
      if gain_map.ndim < 3 or gain_map.shape[-1] != 4:
        raise ValueError(f'RawMetadata: gain_map must be (..., H/2, W/2, 4) '
                         f'(R, Gr, Gb, B), got shape {tuple(gain_map.shape)}.')
    return cls(pattern=cfa.validate_pattern(pattern),
               black_level=black_level, white_level=white_level,
               wb_gains=wb_gains, cam_to_srgb=cam_to_srgb, gain_map=gain_map)
