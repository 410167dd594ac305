"""Bayer demosaicing (bilinear, Malvar-He-Cutler 2004) and its inverse.

Both demosaics are linear filters whose taps depend only on the output
channel and the position inside the 2x2 CFA cell. They are computed in the
packed domain: a first pass de-interleaves the mosaic into its four phase
planes, extended by one cell of half-sample symmetric padding; a fused pass
computes each output channel at each of the four cell positions as a short
weighted sum of unit-stride slices of those planes and interleaves the twelve
half-resolution results into RGB with one reshape. Generic convolutions of
masked full-resolution planes (the textbook form, colour-demosaicing's) make
several passes over 3-channel images instead.

Borders follow colour-demosaicing exactly: scipy.ndimage.convolve with mode
'reflect' (half-sample symmetric, `jnp.pad` mode 'symmetric'). Malvar filters
the mosaic itself, so the symmetric padding is all it needs. Bilinear filters
each colour's *masked* plane, and scipy reflects the mask with the data: near
the border the kernel sees another colour phase than in the interior. Those
taps get weights that vary along the border, built as outer products of
constant row and column vectors; multiplying by constants keeps the gradient
as cheap as the forward pass (broadcasting data would make it reduce).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import cfa

_RGB = 'RGB'

# Losson et al. 2010, as in colour-demosaicing.
_BILINEAR_G = np.array([[0, 1, 0],
                        [1, 4, 1],
                        [0, 1, 0]]) / 4
_BILINEAR_RB = np.array([[1, 2, 1],
                         [2, 4, 2],
                         [1, 2, 1]]) / 4

# Malvar, He & Cutler 2004, figure 2 (alpha = 1/2, beta = 5/8, gamma = 3/4).
_MALVAR_G_AT_RB = np.array([[0, 0, -1, 0, 0],
                            [0, 0, 2, 0, 0],
                            [-1, 2, 4, 2, -1],
                            [0, 0, 2, 0, 0],
                            [0, 0, -1, 0, 0]]) / 8
# R at a green site of a red row (or B at a green site of a blue row): the
# wanted colour lies to the left and right.
_MALVAR_RB_AT_G_ROW = np.array([[0, 0, 0.5, 0, 0],
                                [0, -1, 0, -1, 0],
                                [-1, 4, 5, 4, -1],
                                [0, -1, 0, -1, 0],
                                [0, 0, 0.5, 0, 0]]) / 8
_MALVAR_RB_AT_G_COL = _MALVAR_RB_AT_G_ROW.T
_MALVAR_RB_AT_BR = np.array([[0, 0, -1.5, 0, 0],
                             [0, 2, 0, 2, 0],
                             [-1.5, 0, 6, 0, -1.5],
                             [0, 2, 0, 2, 0],
                             [0, 0, -1.5, 0, 0]]) / 8

# One group of taps of an output plane: sum the slices at `offsets`, then
# multiply by `weight` and, unless None, by the constant row (h,) and column
# (w,) vectors that switch the group on and off along the borders.
_Group = tuple[float, 'np.ndarray | None', 'np.ndarray | None',
               tuple[tuple[int, int], ...]]


def _colour_table(pattern: str) -> np.ndarray:
  """(2, 2) index into 'RGB' of the colour at each cell position."""
  return np.array([_RGB.index(letter) for letter in pattern]).reshape(2, 2)


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
  """scipy's 'reflect' (half-sample symmetric) index, up to n of overhang."""
  return np.where(i < 0, -1 - i, np.where(i >= n, 2 * n - 1 - i, i))


def _kernel(method: str, pattern: str, a: int, b: int, k: int) -> np.ndarray:
  """The scipy convolution kernel giving channel k at cell position (a, b)."""
  if method == 'bilinear':
    return _BILINEAR_G if k == 1 else _BILINEAR_RB
  site = _colour_table(pattern)[a, b]
  if k == site:
    return np.array([[1.0]])
  if k == 1:
    return _MALVAR_G_AT_RB
  if site != 1:
    return _MALVAR_RB_AT_BR
  # A green site interpolates along its row when the row is one where the
  # wanted colour lives.
  (red_row, _), *_ = cfa.channel_offsets(pattern)
  wanted_row = red_row if k == 0 else 1 - red_row
  return _MALVAR_RB_AT_G_ROW if a == wanted_row else _MALVAR_RB_AT_G_COL


@functools.lru_cache(maxsize=64)
def _plan(method: str, pattern: str, h: int,
          w: int) -> dict[tuple[int, int, int], tuple[_Group, ...]]:
  """Tap groups per (cell row a, cell col b, channel k) for an (2h, 2w) mosaic.

  Tap (dy, dx) of output pixel (2i + a, 2j + b) reads the symmetric-padded
  mosaic at (2i + a + dy, 2j + b + dx). Malvar's weight is the kernel's.
  Bilinear's is the kernel's times the reflected mask of colour k there,
  which is the interior's except on the first or last cell row or column:
  the row and column vectors carry that.
  """
  table = _colour_table(pattern)
  plan = {}
  for a in (0, 1):
    for b in (0, 1):
      for k in range(3):
        flipped = _kernel(method, pattern, a, b, k)[::-1, ::-1]  # scipy flips
        centre = flipped.shape[0] // 2
        groups: dict[tuple, list[tuple[int, int]]] = {}
        vectors = {}
        for (u, v), weight in np.ndenumerate(flipped):
          if weight == 0:
            continue
          dy, dx = u - centre, v - centre
          if method == 'malvar':
            groups.setdefault((float(weight), None, None), []).append((dy, dx))
            continue
          row_parity = _reflect(2 * np.arange(h) + a + dy, 2 * h) % 2
          col_parity = _reflect(2 * np.arange(w) + b + dx, 2 * w) % 2
          for s, t in zip(*np.nonzero(table == k)):
            rows, cols = row_parity == s, col_parity == t
            if not (rows.any() and cols.any()):
              continue
            key = (float(weight),
                   None if rows.all() else rows.tobytes(),
                   None if cols.all() else cols.tobytes())
            vectors[key[1]], vectors[key[2]] = rows, cols
            groups.setdefault(key, []).append((dy, dx))
        plan[a, b, k] = tuple(
            (weight,
             None if rows is None else vectors[rows].astype(np.float32),
             None if cols is None else vectors[cols].astype(np.float32),
             tuple(offsets))
            for (weight, rows, cols), offsets in sorted(
                groups.items(), key=lambda item: (item[0][1] is not None,
                                                  item[0][2] is not None,
                                                  item[0][0])))
  return plan


def _padded_phases(x: jnp.ndarray) -> jnp.ndarray:
  """(..., 2, 2, h + 2, w + 2): `pad(x, 2, 'symmetric')[..., p::2, q::2]`.

  Built from the phase planes rather than by padding the mosaic, which XLA
  does in more passes: full-resolution rows -2 and -1 are rows 1 and 0, i.e.
  the first cell row of the other row phase, and likewise on every side.
  """
  *lead, height, width = x.shape
  phases = jnp.moveaxis(x.reshape(*lead, height // 2, 2, width // 2, 2),
                        (-3, -1), (-4, -3))
  other = jnp.flip(phases, axis=-4)
  phases = jnp.concatenate([other[..., :1, :], phases, other[..., -1:, :]],
                           axis=-2)
  other = jnp.flip(phases, axis=-3)
  return jnp.concatenate([other[..., :1], phases, other[..., -1:]], axis=-1)


def _demosaic(x: jnp.ndarray, pattern: str, method: str) -> jnp.ndarray:
  """(..., H, W) mosaic -> (..., H, W, 3) with the taps of `_plan`."""
  *lead, height, width = x.shape
  h, w = height // 2, width // 2
  padded = _padded_phases(x)
  # Separate arrays per phase: in the gradient the transpose of a slice is a
  # pad to its operand's shape, which then covers one phase, not four.
  phases = [[padded[..., p, q, :, :] for q in (0, 1)] for p in (0, 1)]
  plan = _plan(method, pattern, h, w)

  def tap(a, b, dy, dx):
    r, c = a + dy, b + dx
    return phases[r % 2][c % 2][..., 1 + r // 2:1 + r // 2 + h,
                                1 + c // 2:1 + c // 2 + w]

  def plane(a, b, k):
    total = None
    for weight, rows, cols, offsets in plan[a, b, k]:
      group = functools.reduce(jnp.add,
                               [tap(a, b, dy, dx) for dy, dx in offsets])
      # Python floats are weakly typed: the input's precision is kept, and a
      # single unit tap stays an exact copy.
      if weight != 1.0:
        group = group * weight
      if rows is not None:
        group = group * rows[:, None].astype(group.dtype)
      if cols is not None:
        group = group * cols.astype(group.dtype)
      total = group if total is None else total + group
    return total

  cell = jnp.stack([jnp.stack([jnp.stack([plane(a, b, k) for k in range(3)],
                                         axis=-1) for b in (0, 1)], axis=-2)
                    for a in (0, 1)], axis=-4)  # (..., h, 2, w, 2, 3)
  return cell.reshape(*lead, height, width, 3)


def _validate_mosaic(mosaic: ArrayLike, fn: str) -> jnp.ndarray:
  x = _checks.as_float(mosaic, name='mosaic', fn=fn)
  _checks.check_min_rank(x, 2, name='mosaic', fn=fn, layout='(..., H, W)')
  _checks.check_even_hw(x, name='mosaic', fn=fn)
  if 0 in x.shape[-2:]:
    raise ValueError(f'{fn}: mosaic must not be empty, got shape '
                     f'{tuple(x.shape)}.')
  return x


def demosaic_bilinear(mosaic: ArrayLike, *, pattern: str) -> jax.Array:
  """Bilinear Bayer demosaicing (as surveyed by Losson, Macaire & Yang 2010).

  Each colour plane, zero except at its own sites, is convolved with
  [[0,1,0],[1,4,1],[0,1,0]]/4 (green) or [[1,2,1],[2,4,2],[1,2,1]]/4 (red,
  blue). Matches `colour_demosaicing.demosaicing_CFA_Bayer_bilinear` (1e-6 for
  data in [0, 1]) including its borders: scipy reflects the masked planes
  (mode 'reflect'), so on the outer one-pixel ring a sample can be counted
  twice; e.g. a flat field of ones becomes 2.25 in the corner of the red
  channel of an RGGB mosaic. In the interior each site keeps its own value,
  so `mosaic(demosaic_bilinear(m))` equals `m` there exactly, but not on that
  ring. No clipping.

  Args:
    mosaic: (..., H, W), H and W even and positive, any range (typically
      [0, 1]); integer input is cast to float32.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W, 3) RGB in the camera's colour space, float32 for float32 or
    integer input.
  """
  fn = 'demosaic_bilinear'
  pattern = cfa.validate_pattern(pattern)
  x = _validate_mosaic(mosaic, fn)
  return _demosaic(x, pattern, 'bilinear')


def demosaic_malvar(mosaic: ArrayLike, *, pattern: str) -> jax.Array:
  """Malvar-He-Cutler gradient-corrected linear demosaicing.

  H. S. Malvar, L.-W. He and R. Cutler, "High-quality linear interpolation
  for demosaicing of Bayer-patterned color images", ICASSP 2004: bilinear
  interpolation corrected by the Laplacian of the colour sampled at the site,
  with the paper's 5x5 kernels. Matches
  `colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004` (1e-6 for data in
  [0, 1]), borders included (half-sample symmetric extension of the mosaic).
  No clipping: the output can leave the input range near edges. Each site
  keeps its own value exactly, so `mosaic(demosaic_malvar(m)) == m`.

  Args:
    mosaic: (..., H, W), H and W even and positive, any range (typically
      [0, 1]); integer input is cast to float32.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W, 3) RGB in the camera's colour space, float32 for float32 or
    integer input.
  """
  fn = 'demosaic_malvar'
  pattern = cfa.validate_pattern(pattern)
  x = _validate_mosaic(mosaic, fn)
  return _demosaic(x, pattern, 'malvar')


def mosaic(rgb: ArrayLike, *, pattern: str) -> jax.Array:
  """Bayer sampling: keeps, at each pixel, the channel its CFA site records.

  The inverse projection of the demosaics (as
  `colour_demosaicing.mosaicing_CFA_Bayer`): a pure selection, so values and
  their gradients pass through unchanged.

  Args:
    rgb: (..., H, W, 3), H and W even, any range.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W) mosaic, same float dtype as `rgb` (float32 for integers).
  """
  fn = 'mosaic'
  pattern = cfa.validate_pattern(pattern)
  x = _checks.as_float(rgb, name='rgb', fn=fn)
  _checks.check_min_rank(x, 3, name='rgb', fn=fn, layout='(..., H, W, 3)')
  _checks.check_channels(x, 3, name='rgb', fn=fn)
  _checks.check_even_hw(x, name='rgb', fn=fn, hw_axes=(-3, -2))
  planes = [x[..., r::2, c::2, _colour_table(pattern)[r, c]]
            for r, c in cfa.channel_offsets(pattern)]
  return cfa.unpack(jnp.stack(planes, axis=-1), pattern=pattern)
