"""Bayer colour filter arrays: patterns, packing, phase-preserving geometry.

Layouts (see docs/design.md):
  * a *mosaic* is one sensor plane, shape (..., H, W) with H, W even;
  * a *packed* raw is (..., H/2, W/2, 4) in the canonical order
    (R, Gr, Gb, B) whatever the sensor's CFA phase, where Gr is the green on
    the red rows and Gb the green on the blue rows.

A pattern is named by its 2x2 cell read row by row: 'RGGB', 'BGGR', 'GRBG' or
'GBRG'. Packing in canonical order means that spatial flips of a packed image
need no channel change, while a transpose or an odd 90-degree rotation swaps
the roles of Gr and Gb (`transpose_packed`, `rot90_packed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks

PATTERNS = ('RGGB', 'BGGR', 'GRBG', 'GBRG')
CHANNELS = ('R', 'Gr', 'Gb', 'B')
# Position of channel c of CHANNELS inside the 2x2 cell, row-major index.
_CELL = ((0, 0), (0, 1), (1, 0), (1, 1))
# PyNET (and the ZRR code) stack raw[1::2,1::2], raw[0::2,1::2], raw[0::2,0::2],
# raw[1::2,0::2] of an RGGB mosaic and name them (B, Gb, R, Gr): their "Gb"
# is the green on the red rows, i.e. our Gr. In canonical terms the order is
# (B, Gr, R, Gb).
_TO_PYNET = (3, 1, 0, 2)
_FROM_PYNET = (2, 1, 3, 0)


def validate_pattern(pattern: str) -> str:
  """Returns the upper-case pattern, or raises for an unsupported CFA."""
  if not isinstance(pattern, str) or pattern.upper() not in PATTERNS:
    raise ValueError(
        f'Unsupported CFA pattern {pattern!r}: rawjax handles the 2x2 Bayer '
        f'patterns {", ".join(PATTERNS)}.')
  return pattern.upper()


def channel_offsets(pattern: str) -> tuple[tuple[int, int], ...]:
  """(row, col) offsets inside the 2x2 cell of R, Gr, Gb and B."""
  pattern = validate_pattern(pattern)
  cells = {pattern[2 * r + c] + str(r): (r, c) for r, c in _CELL}
  red_row = next(r for r, c in _CELL if pattern[2 * r + c] == 'R')
  blue_row = 1 - red_row
  return (cells['R' + str(red_row)], cells['G' + str(red_row)],
          cells['G' + str(blue_row)], cells['B' + str(blue_row)])


def pattern_from_rawpy(raw_pattern: ArrayLike, color_desc: bytes | str) -> str:
  """The Bayer pattern name from rawpy's `raw_pattern` and `color_desc`.

  Args:
    raw_pattern: rawpy's smallest repeating cell of colour indices (2x2 for a
      Bayer sensor, 6x6 for X-Trans, None for a non-mosaic sensor).
    color_desc: rawpy's colour names indexed by those indices, e.g. b'RGBG'.

  Raises:
    ValueError: the sensor is not a 2x2 RGB Bayer mosaic.
  """
  if raw_pattern is None:
    raise ValueError('Unsupported CFA: the sensor has no colour filter mosaic '
                     '(raw_pattern is None; e.g. Foveon, scanner or linear '
                     'DNG).')
  raw_pattern = np.asarray(raw_pattern)
  if raw_pattern.shape != (2, 2):
    raise ValueError(
        f'Unsupported CFA: repeating cell of shape {raw_pattern.shape} '
        '(X-Trans and other non-Bayer mosaics are not supported).')
  if isinstance(color_desc, bytes):
    color_desc = color_desc.decode('ascii', 'replace')
  letters = ''.join(color_desc[int(i)] if 0 <= int(i) < len(color_desc)
                    else '?' for i in raw_pattern.ravel())
  return validate_pattern(letters)


def colour_index_to_channel(raw_pattern: ArrayLike,
                            color_desc: bytes | str) -> tuple[int, ...]:
  """For each canonical channel (R, Gr, Gb, B) the rawpy colour index.

  rawpy reports per-colour values (black levels, white balance) indexed by
  the entries of `raw_pattern`; this maps them to the canonical order.
  """
  pattern = pattern_from_rawpy(raw_pattern, color_desc)
  raw_pattern = np.asarray(raw_pattern)
  return tuple(int(raw_pattern[r, c]) for r, c in channel_offsets(pattern))


def pack(mosaic: ArrayLike, *, pattern: str) -> jax.Array:
  """Packs a Bayer mosaic into (R, Gr, Gb, B) planes.

  Args:
    mosaic: (..., H, W) with H and W even, any range.
    pattern: the mosaic's CFA pattern.

  Returns:
    (..., H/2, W/2, 4) in canonical order, same dtype as the input.
  """
  fn = 'pack'
  mosaic = jnp.asarray(mosaic)
  _checks.check_min_rank(mosaic, 2, name='mosaic', fn=fn, layout='(..., H, W)')
  _checks.check_even_hw(mosaic, name='mosaic', fn=fn)
  planes = [mosaic[..., r::2, c::2] for r, c in channel_offsets(pattern)]
  return jnp.stack(planes, axis=-1)


def unpack(packed: ArrayLike, *, pattern: str) -> jax.Array:
  """Inverse of `pack`: (..., h, w, 4) canonical planes -> (..., 2h, 2w)."""
  fn = 'unpack'
  packed = jnp.asarray(packed)
  _checks.check_min_rank(packed, 3, name='packed', fn=fn,
                         layout='(..., H/2, W/2, 4)')
  _checks.check_channels(packed, 4, name='packed', fn=fn)
  *lead, h, w, _ = packed.shape
  cell = [[None, None], [None, None]]
  for channel, (r, c) in enumerate(channel_offsets(pattern)):
    cell[r][c] = packed[..., channel]
  rows = [jnp.stack(cell[r], axis=-1).reshape(*lead, h, 2 * w)
          for r in range(2)]
  return jnp.stack(rows, axis=-2).reshape(*lead, 2 * h, 2 * w)


def to_pynet_order(packed: ArrayLike) -> jax.Array:
  """(R, Gr, Gb, B) -> PyNET/ZRR's order, (B, Gr, R, Gb) in our naming.

  PyNET's code calls its second channel "Gb" but takes it from the red rows
  (raw[0::2, 1::2] of RGGB), so it is our Gr.
  """
  packed = jnp.asarray(packed)
  _checks.check_channels(packed, 4, name='packed', fn='to_pynet_order')
  return packed[..., _TO_PYNET]


def from_pynet_order(packed: ArrayLike) -> jax.Array:
  """Inverse of `to_pynet_order`: PyNET/ZRR packing -> (R, Gr, Gb, B)."""
  packed = jnp.asarray(packed)
  _checks.check_channels(packed, 4, name='packed', fn='from_pynet_order')
  return packed[..., _FROM_PYNET]


# --- geometry ---------------------------------------------------------------

Axis = Literal['horizontal', 'vertical']


def _spatial_axis(axis: Axis, channels_last: bool) -> int:
  if axis not in ('horizontal', 'vertical'):
    raise ValueError(f"axis must be 'horizontal' or 'vertical', got {axis!r}.")
  offset = 1 if channels_last else 0
  return (-1 if axis == 'horizontal' else -2) - offset


def flip_packed(packed: ArrayLike, *, axis: Axis) -> jax.Array:
  """Mirrors a packed raw; canonical order needs no channel change.

  The result is the packing of the mirrored scene sampled on the original
  grid shifted by one pixel inside each cell (the usual packed-domain flip).
  """
  packed = jnp.asarray(packed)
  _checks.check_channels(packed, 4, name='packed', fn='flip_packed')
  return jnp.flip(packed, axis=_spatial_axis(axis, channels_last=True))


def transpose_packed(packed: ArrayLike) -> jax.Array:
  """Transposes H and W of a packed raw, swapping the roles of Gr and Gb."""
  packed = jnp.asarray(packed)
  _checks.check_channels(packed, 4, name='packed', fn='transpose_packed')
  packed = jnp.swapaxes(packed, -3, -2)
  return packed[..., (0, 2, 1, 3)]


def rot90_packed(packed: ArrayLike, *, k: int = 1) -> jax.Array:
  """Rotates a packed raw by k * 90 degrees counter-clockwise.

  An odd k swaps Gr and Gb (rows become columns). `k` is static.
  """
  packed = jnp.asarray(packed)
  _checks.check_channels(packed, 4, name='packed', fn='rot90_packed')
  k = int(k) % 4
  packed = jnp.rot90(packed, k=k, axes=(-3, -2))
  return packed[..., (0, 2, 1, 3)] if k % 2 else packed


def _pattern_array(pattern: str) -> np.ndarray:
  return np.array(list(validate_pattern(pattern))).reshape(2, 2)


def flip_pattern(pattern: str, *, axis: Axis) -> str:
  """The CFA pattern of a mirrored even-sized mosaic."""
  return ''.join(np.flip(_pattern_array(pattern),
                         axis=1 if axis == 'horizontal' else 0).ravel())


def rot90_pattern(pattern: str, *, k: int = 1) -> str:
  """The CFA pattern of an even-sized mosaic rotated k*90 deg CCW."""
  return ''.join(np.rot90(_pattern_array(pattern), k=int(k) % 4).ravel())


def crop_pattern(pattern: str, *, top: int, left: int) -> str:
  """The CFA pattern of a mosaic cropped at (top, left)."""
  cell = _pattern_array(pattern)
  return ''.join(np.roll(cell, (-(top % 2), -(left % 2)), axis=(0, 1)).ravel())


def _restore_phase(mosaic: jnp.ndarray, current: str, target: str) -> jax.Array:
  """Crops one row and/or column at both ends so `current` becomes `target`."""
  for dy in (0, 1):
    for dx in (0, 1):
      if crop_pattern(current, top=dy, left=dx) == target:
        h, w = mosaic.shape[-2:]
        return mosaic[..., dy:h - dy, dx:w - dx]
  raise AssertionError('unreachable: every Bayer phase is a shift of another')


def flip_mosaic(mosaic: ArrayLike, *, pattern: str, axis: Axis) -> jax.Array:
  """Mirrors a mosaic exactly and keeps its CFA pattern (Bayer-preserving).

  The mirrored mosaic has another phase; one row or column is cropped at both
  ends to restore `pattern` (Liu et al. 2019, BayerAug), so a horizontal flip
  returns (..., H, W-2) and a vertical one (..., H-2, W) for patterns whose
  phase changes.
  """
  mosaic = jnp.asarray(mosaic)
  _checks.check_even_hw(mosaic, name='mosaic', fn='flip_mosaic')
  flipped = jnp.flip(mosaic, axis=_spatial_axis(axis, channels_last=False))
  return _restore_phase(flipped, flip_pattern(pattern, axis=axis),
                        validate_pattern(pattern))


def rot90_mosaic(mosaic: ArrayLike, *, pattern: str, k: int = 1) -> jax.Array:
  """Rotates a mosaic exactly by k*90 deg CCW, cropping to keep `pattern`."""
  mosaic = jnp.asarray(mosaic)
  _checks.check_even_hw(mosaic, name='mosaic', fn='rot90_mosaic')
  rotated = jnp.rot90(mosaic, k=int(k) % 4, axes=(-2, -1))
  return _restore_phase(rotated, rot90_pattern(pattern, k=k),
                        validate_pattern(pattern))


def crop_mosaic(mosaic: ArrayLike, *, top: ArrayLike, left: ArrayLike,
                height: int, width: int) -> jax.Array:
  """Crops a mosaic at an even offset so that its CFA pattern is kept.

  Args:
    mosaic: (..., H, W).
    top, left: crop origin; may be traced (random crops under jit). Odd values
      are rounded down to the even row/column so the phase never changes.
    height, width: static, even crop size.
  """
  mosaic = jnp.asarray(mosaic)
  if height % 2 or width % 2:
    raise ValueError(f'crop_mosaic: height and width must be even, got '
                     f'{height}x{width}.')
  h, w = mosaic.shape[-2:]
  if height > h or width > w:
    raise ValueError(f'crop_mosaic: crop {height}x{width} is larger than the '
                     f'mosaic {h}x{w}.')
  top = jnp.asarray(top, jnp.int32) // 2 * 2
  left = jnp.asarray(left, jnp.int32) // 2 * 2
  lead = mosaic.ndim - 2
  starts = (0,) * lead + (top, left)
  return jax.lax.dynamic_slice(mosaic, starts, mosaic.shape[:lead] +
                               (height, width))


def bayer_masks(shape: Sequence[int], *, pattern: str) -> jax.Array:
  """(H, W, 3) float32 one-hot masks of the R, G and B sites of a mosaic."""
  pattern = validate_pattern(pattern)
  h, w = shape
  cell = np.zeros((2, 2, 3), np.float32)
  for (r, c), letter in zip(_CELL, pattern):
    cell[r, c, 'RGB'.index(letter)] = 1.0
  return jnp.asarray(np.tile(cell, ((h + 1) // 2, (w + 1) // 2, 1))[:h, :w])
